#!/usr/bin/env bash
# moto-install.sh: makes moto server and the AWS CLI (both pinned) available, and prints the
# Python interpreter that has them. Idempotent: fast when the versions are already there
# (the user's python3, or the project's virtualenv under ~/.cache/gangway).
set -euo pipefail

# The one moto version of the project: localstack-test.sh and cdk-deploy-moto.sh run this
# script, and localstack/docker-compose.yml's image carries the same tag
# (localstack/versions_test.go keeps them equal).
MOTO_VERSION=5.2.1
AWSCLI_VERSION=1.45.11
# awscli pins botocore; pinning boto3 to the matching release spares pip a long backtrack.
BOTOCORE_VERSION=1.43.11
here="$(cd "$(dirname "$0")" && pwd)"

has_pins() {
  "$1" - "$MOTO_VERSION" "$AWSCLI_VERSION" 2>/dev/null <<'PY'
import importlib.metadata as m, sys
ok = m.version("moto") == sys.argv[1] and m.version("awscli") == sys.argv[2]
m.version("flask"); m.version("flask-cors")  # the [server] extra
sys.exit(0 if ok else 1)
PY
}

if command -v python3 >/dev/null 2>&1 && has_pins python3; then
  command -v python3
  exit 0
fi

venv="${XDG_CACHE_HOME:-$HOME/.cache}/gangway/moto-$MOTO_VERSION-awscli-$AWSCLI_VERSION"
if [ -x "$venv/bin/python" ] && has_pins "$venv/bin/python"; then
  echo "$venv/bin/python"
  exit 0
fi

command -v python3 >/dev/null 2>&1 || "$here/apt-install.sh" python3 python3-venv >&2
rm -rf "$venv"
if ! python3 -m venv "$venv" >&2 2>/dev/null; then
  "$here/apt-install.sh" python3-venv >&2
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
fi
echo "installing moto[server]==$MOTO_VERSION and awscli==$AWSCLI_VERSION into $venv" >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  "moto[server]==$MOTO_VERSION" "awscli==$AWSCLI_VERSION" \
  "boto3==$BOTOCORE_VERSION" "botocore==$BOTOCORE_VERSION" >&2
echo "$venv/bin/python"
