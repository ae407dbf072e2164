#!/usr/bin/env bash
# cdk-lint.sh: runs cfn-lint (pinned, installed from PyPI when missing or at another version)
# on every template in cdk/cdk.out (`make synth`) and cdk/build/templates (the variants the
# construct's tests synthesize under `make cdk-test`).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
CFN_LINT_VERSION=1.58.0

python=${PYTHON:-python3}
cfnlint() { "$python" -c 'import sys; from cfnlint.runner import main; sys.argv[0] = "cfn-lint"; sys.exit(main())' "$@"; }
if ! cfnlint --version 2>/dev/null | grep -q "cfn-lint $CFN_LINT_VERSION\$"; then
  command -v "$python" >/dev/null || "$root/scripts/apt-install.sh" python3 python3-pip
  echo "installing cfn-lint $CFN_LINT_VERSION"
  "$python" -m pip install --quiet --disable-pip-version-check "cfn-lint==$CFN_LINT_VERSION" \
    || "$python" -m pip install --quiet --disable-pip-version-check --break-system-packages "cfn-lint==$CFN_LINT_VERSION"
fi

shopt -s nullglob
templates=("$root"/cdk/cdk.out/*.template.json "$root"/cdk/build/templates/*.template.json)
if [ ${#templates[@]} -eq 0 ]; then
  echo "cdk-lint: no templates in cdk/cdk.out (run make synth)" >&2
  exit 1
fi
cfnlint --version
# W3005: CDK adds explicit DependsOn that cfn-lint finds redundant with a Ref; harmless.
cfnlint --ignore-checks W3005 -- "${templates[@]}"
echo "cfn-lint: ${#templates[@]} template(s) clean"
