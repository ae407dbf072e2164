#!/usr/bin/env bash
# Installs the Go tools that lint and test need. Idempotent: a tool already at the pinned
# version is left alone.
set -euo pipefail

STATICCHECK_VERSION=v0.8.2
gobin="$(go env GOPATH)/bin"

if ! "$gobin/staticcheck" -version 2>/dev/null | grep -q "(${STATICCHECK_VERSION#v})"; then
  echo "installing staticcheck $STATICCHECK_VERSION"
  go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
fi
