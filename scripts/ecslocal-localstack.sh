#!/usr/bin/env bash
# ecslocal-localstack.sh: runs the localstack/ tests that ecslocal covers against bin/ecslocal
# on a free port of 127.0.0.1, and stops it on exit. The tests that need running tasks
# (discovery of RunTask tasks) are left to moto (scripts/localstack-test.sh) until ecslocal
# runs containers.
set -euo pipefail
cd "$(dirname "$0")/.."

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
log="$(mktemp -t ecslocal.XXXXXX.log)"
state="$(mktemp -d -t ecslocal-state.XXXXXX)"
bin/ecslocal -addr "127.0.0.1:$port" -no-containers -state-dir "$state" >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$log" "$state"' EXIT
for _ in $(seq 1 50); do
  if grep -q "serving" "$log"; then break; fi
  if ! kill -0 "$pid" 2>/dev/null; then echo "ecslocal exited:" >&2; cat "$log" >&2; exit 1; fi
  sleep 0.1
done

export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
export GANGWAY_TEST_SUBNET=subnet-ecslocal GANGWAY_TEST_SECURITY_GROUP=sg-ecslocal
go test -race -count=1 -v -run '^(TestRegisterTaskDefinitions|TestServiceCreateAndDeploy|TestWatchAgainstEndpoint)$' ./localstack/
