#!/usr/bin/env bash
# cdk-npm.sh: installs the pinned aws-cdk CLI into cdk/node_modules from cdk/package-lock.json.
# Idempotent: runs `npm ci` only when node_modules is missing or older than the lock file.
set -euo pipefail
cd "$(dirname "$0")/../cdk"

stamp=node_modules/.package-lock.json
if [ -x node_modules/.bin/cdk ] && [ -f "$stamp" ] && [ "$stamp" -nt package-lock.json ]; then
  exit 0
fi
command -v npm >/dev/null || ../scripts/apt-install.sh nodejs npm
echo "installing the aws-cdk CLI (npm ci in cdk/)"
npm ci --no-audit --no-fund --loglevel=error
