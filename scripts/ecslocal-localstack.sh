#!/usr/bin/env bash
# ecslocal-localstack.sh: runs the localstack/ tests that ecslocal covers against bin/ecslocal
# on a free port of 127.0.0.1, and stops it on exit. As root (CI), with the proxy image of
# `make image` in bin/image/oci, ecslocal runs tasks, and the discovery of RunTask tasks runs
# too: the proxy image stands in for the nginx image the test names (the test needs running
# awsvpc tasks with addresses, not nginx). Otherwise the discovery test is left to moto.
set -euo pipefail
cd "$(dirname "$0")/.."

tests='TestRegisterTaskDefinitions|TestServiceCreateAndDeploy|TestWatchAgainstEndpoint'
mode=(-no-containers)
if [ "$(id -u)" -eq 0 ] && [ -f bin/image/oci/index.json ]; then
  tests="$tests|TestDiscoveryFindsRunTaskTasks"
  mode=(-image "public.ecr.aws/docker/library/nginx:stable-alpine=bin/image/oci"
        -name "ls$(printf '%02x' $((RANDOM % 256)))" -subnet "198.19.$((50 + RANDOM % 50)).0/24")
elif [ "${CI:-}" = true ]; then
  echo "ecslocal-localstack.sh: CI needs root and bin/image/oci (make image) to run the discovery test" >&2
  exit 1
fi

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
log="$(mktemp -t ecslocal.XXXXXX.log)"
state="$(mktemp -d -t ecslocal-state.XXXXXX)"
bin/ecslocal -addr "127.0.0.1:$port" "${mode[@]}" -state-dir "$state" >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$log" "$state"' EXIT
trap 'echo "ecslocal log:" >&2; tail -c 4096 "$log" >&2' ERR
for _ in $(seq 1 50); do
  if grep -q "serving" "$log"; then break; fi
  if ! kill -0 "$pid" 2>/dev/null; then echo "ecslocal exited:" >&2; cat "$log" >&2; exit 1; fi
  sleep 0.1
done

export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
export GANGWAY_TEST_SUBNET=subnet-ecslocal GANGWAY_TEST_SECURITY_GROUP=sg-ecslocal
go test -race -count=1 -v -run "^($tests)\$" ./localstack/
