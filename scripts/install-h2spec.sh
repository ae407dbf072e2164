#!/usr/bin/env bash
# Installs h2spec, the HTTP/2 conformance tester, as bin/h2spec (`make test-h2spec` runs it).
# Its version, v2.2.1, and those of its dependencies are pinned in scripts/h2spec/go.mod.
# Idempotent: a binary built from exactly those versions is left alone.
set -euo pipefail

cd "$(dirname "$0")/.."
bin="$PWD/bin"
mod="$PWD/scripts/h2spec"

# "module version" for every requirement of the pinned build, and for every module linked
# into the installed binary; the binary is current when each of the latter is among the former.
want="$(awk '/^require \(/ { r = 1; next } r && /^\)/ { r = 0 } r { print $1, $2 }' "$mod/go.mod" | sort)"
have="$(go version -m "$bin/h2spec" 2>/dev/null | awk '$1 == "mod" || $1 == "dep" { print $2, $3 }' | sort || true)"
if grep -q '^github.com/summerwind/h2spec ' <<<"$have" && [ -z "$(comm -13 <(echo "$want") <(echo "$have"))" ]; then
  exit 0
fi

echo "installing h2spec ($(grep '^github.com/summerwind/h2spec ' <<<"$want"))"
mkdir -p "$bin"
(cd "$mod" && GOWORK=off GOBIN="$bin" go install github.com/summerwind/h2spec/cmd/h2spec)
