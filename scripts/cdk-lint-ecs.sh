#!/usr/bin/env bash
# cdk-lint-ecs.sh: renders the task definition, service and target groups of every template
# in cdk/cdk.out (`make synth`) and cdk/build/templates (the variants the construct's tests
# synthesize) as AWS CLI input (cdk/cmd/ecs-input), and runs bin/proxy lint on them with the
# flags each template records, so that what the construct synthesizes is what the linter
# accepts. Needs bin/proxy (`make build`).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/cdk/build/ecs-input"
rm -rf "$out"

shopt -s nullglob
templates=("$root"/cdk/cdk.out/*.template.json "$root"/cdk/build/templates/*.template.json)
if [ ${#templates[@]} -eq 0 ]; then
  echo "cdk-lint-ecs: no templates (run make synth)" >&2
  exit 1
fi
mapfile -t dirs < <(cd "$root/cdk" && go run ./cmd/ecs-input -out "$out" "${templates[@]}")

failed=0
errfile=$(mktemp)
trap 'rm -f "$errfile"' EXIT
for dir in "${dirs[@]}"; do
  read -r -a flags < "$dir/lint-flags"
  services=("$dir"/service-*.json)
  for tg in "$dir"/target-group-*.json; do
    case "$tg" in *NoRoute*) continue ;; esac # never has targets: no health check to budget
    set +e
    report=$("$root/bin/proxy" lint -output json -container proxy -service "${services[0]}" \
      -target-group "$tg" "${flags[@]}" "$dir"/taskdef-*.json 2>"$errfile")
    set -e
    if ! python3 -c '
import json, sys
bad = 0
for f in json.load(sys.stdin):
    if f.get("error"):
        print(f["file"] + ": " + f["error"]); bad += 1
    for v in f["findings"]:
        print("%s: %s = %s: %s" % (f["file"], v["field"], v["value"], v["rule"])); bad += 1
sys.exit(1 if bad else 0)' <<<"$report"; then
      cat "$errfile" >&2
      echo "cdk-lint-ecs: $dir with $(basename "$tg"): findings above" >&2
      failed=1
    fi
  done
done
[ "$failed" = 0 ] || exit 1
echo "proxy lint: ${#dirs[@]} synthesized task definition(s) clean"
