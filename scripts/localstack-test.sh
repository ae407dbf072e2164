#!/usr/bin/env bash
# localstack-test.sh: runs the tests in localstack/ against an AWS endpoint.
#
# With AWS_ENDPOINT_URL set (LocalStack, say), it uses that endpoint. Otherwise it installs
# moto server (scripts/moto-install.sh), starts it on a free port of 127.0.0.1, and stops it
# on exit. Then it registers every task definition in taskdefs/ through the AWS CLI (whose
# client-side validation checks the JSON) and runs `go test ./localstack/`.
set -euo pipefail
cd "$(dirname "$0")/.."

py="$(scripts/moto-install.sh)"
aws() { "$py" -m awscli "$@"; }

export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
export AWS_REGION="${AWS_REGION:-$AWS_DEFAULT_REGION}"
export AWS_PAGER=""

if [ -z "${AWS_ENDPOINT_URL:-}" ]; then
  port="$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  log="$(mktemp -t moto-server.XXXXXX.log)"
  "$py" -m moto.server -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
  moto_pid=$!
  trap 'kill "$moto_pid" 2>/dev/null; wait "$moto_pid" 2>/dev/null; rm -f "$log"' EXIT
  export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
  for _ in $(seq 1 100); do
    if "$py" -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1], timeout=1)" "$AWS_ENDPOINT_URL/moto-api/" 2>/dev/null; then
      break
    fi
    if ! kill -0 "$moto_pid" 2>/dev/null; then
      echo "moto server exited:" >&2; cat "$log" >&2; exit 1
    fi
    sleep 0.2
  done
  # moto advances a task one state (RUNNING -> DEACTIVATING -> ...) on every DescribeTasks;
  # real ECS tasks stay RUNNING until stopped. Make moto's do the same.
  "$py" - "$AWS_ENDPOINT_URL" <<'PY'
import json, sys, urllib.request
body = json.dumps({"model_name": "ecs::task", "transition": {"progression": "manual", "times": 1000000}}).encode()
urllib.request.urlopen(urllib.request.Request(sys.argv[1] + "/moto-api/state-manager/set-transition", data=body, method="POST"), timeout=10)
PY
  echo "moto server on $AWS_ENDPOINT_URL"
else
  echo "using the endpoint in AWS_ENDPOINT_URL: $AWS_ENDPOINT_URL"
fi

# A subnet and a security group of the default VPC, for awsvpc services and tasks.
GANGWAY_TEST_SUBNET="$(aws ec2 describe-subnets --query 'Subnets[0].SubnetId' --output text)"
GANGWAY_TEST_SECURITY_GROUP="$(aws ec2 describe-security-groups --query 'SecurityGroups[0].GroupId' --output text)"
export GANGWAY_TEST_SUBNET GANGWAY_TEST_SECURITY_GROUP

for f in taskdefs/*.json; do
  arn="$(aws ecs register-task-definition --cli-input-json "file://$f" --query taskDefinition.taskDefinitionArn --output text)"
  echo "aws ecs register-task-definition $f: $arn"
done

go test -race -count=1 -v ./localstack/...
