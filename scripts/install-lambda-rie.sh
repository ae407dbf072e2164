#!/usr/bin/env bash
# Installs AWS's Lambda Runtime Interface Emulator as bin/aws-lambda-rie, the runtime under
# which ecslocal runs a Lambda function's bootstrap unmodified (docs/ecslocal.md, "Lambda").
# The module has no release tags on the module proxy, so the pin is a commit's pseudo-version.
# Idempotent: a binary built from exactly that version is left alone.
set -euo pipefail

RIE_MODULE=github.com/aws/aws-lambda-runtime-interface-emulator
RIE_VERSION=v0.0.0-20261030222936-bef5c4ba774d

cd "$(dirname "$0")/.."
bin="$PWD/bin"
if go version -m "$bin/aws-lambda-rie" 2>/dev/null | awk '$1 == "mod" { print $2, $3 }' | grep -qx "$RIE_MODULE $RIE_VERSION"; then
  exit 0
fi
echo "installing aws-lambda-rie ($RIE_VERSION)"
mkdir -p "$bin"
GOWORK=off GOFLAGS=-mod=mod GOBIN="$bin" CGO_ENABLED=0 go install "$RIE_MODULE/cmd/aws-lambda-rie@$RIE_VERSION"
