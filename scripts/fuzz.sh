#!/usr/bin/env bash
# fuzz.sh FUZZTIME PKG:FUZZFUNC... runs each fuzz target for FUZZTIME and fails on the first
# one that fails.
#
# One failure is not the target's: Go's fuzzing coordinator before Go 1.27 can report the
# end of a duration -fuzztime as "context deadline exceeded" when the deadline races its
# workers' shutdown (https://go.dev/issue/75804), on a loaded machine more often. Such a run
# wrote no failing input; it is run once more, and fails only if it fails again. A run that
# wrote a failing input (testdata/fuzz/FUZZFUNC/...) always fails.
set -uo pipefail
GO=${GO:-go}
fuzztime=$1
shift
for target in "$@"; do
  pkg=${target%%:*}
  fn=${target##*:}
  corpus="$pkg/testdata/fuzz/$fn"
  for attempt in 1 2; do
    echo "fuzz $pkg $fn ($fuzztime)"
    before=$(ls "$corpus" 2>/dev/null | wc -l)
    out=$("$GO" test -run='^$' -fuzz="^$fn\$" -fuzztime="$fuzztime" "$pkg" 2>&1)
    status=$?
    echo "$out"
    [ $status -eq 0 ] && break
    after=$(ls "$corpus" 2>/dev/null | wc -l)
    if [ "$attempt" -eq 1 ] && [ "$after" -eq "$before" ] &&
      echo "$out" | grep -A1 -E "^--- FAIL: $fn " | tail -n 1 | grep -qx '    context deadline exceeded'; then
      echo "fuzz.sh: $fn ended with \"context deadline exceeded\" and wrote no failing input (Go's coordinator, go.dev/issue/75804): running it again"
      continue
    fi
    exit 1
  done
done
