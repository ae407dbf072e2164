#!/usr/bin/env bash
# cdk-synth.sh [cdk synth args...]: synthesizes the CDK app in cdk/ into cdk/cdk.out with the
# pinned CLI. Needs the hook built first (`make cdk-hook`; `make synth` does both).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/cdk-npm.sh"
cd "$root/cdk"
export CDK_DISABLE_VERSION_CHECK=1 CDK_DISABLE_CLI_TELEMETRY=1
# --quiet: the template goes to cdk.out, not the terminal.
npx --no-install cdk synth --quiet --no-notices "$@"
ls cdk.out/*.template.json
