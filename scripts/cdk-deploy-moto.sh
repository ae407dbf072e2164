#!/usr/bin/env bash
# cdk-deploy-moto.sh: `cdk bootstrap` and `cdk deploy` of the app in cdk/ against a moto server
# started here on 127.0.0.1, then cdk/moto/verify.py reads back what moto created. Needs the
# hook built (`make cdk-deploy-moto` does both). What moto does not implement is listed by the
# verifier as GAP lines and in cdk/README.md; a FAIL line fails the script.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# moto server and boto3 at the one version every suite uses (pinned in moto-install.sh).
python=${PYTHON:-$("$root/scripts/moto-install.sh")}
"$root/scripts/cdk-npm.sh"

port=$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
work=$(mktemp -d)
"$python" -m moto.server -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
moto_pid=$!
cleanup() {
  kill "$moto_pid" 2>/dev/null || true
  wait "$moto_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 1 100); do
  curl -sf -o /dev/null "http://127.0.0.1:$port/moto-api/" && break
  kill -0 "$moto_pid" 2>/dev/null || { cat "$work/moto.log"; echo "moto server exited" >&2; exit 1; }
  sleep 0.2
done

# "localhost", not 127.0.0.1: moto's CloudFormation finds the template the CLI uploaded to its
# S3 by parsing the TemplateURL, and only recognises path-style URLs on "localhost".
export AWS_ENDPOINT_URL="http://localhost:$port"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export CDK_DEFAULT_ACCOUNT=123456789012 CDK_DEFAULT_REGION=us-east-1
export CDK_DISABLE_VERSION_CHECK=1 CDK_DISABLE_CLI_TELEMETRY=1 AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE=1

# moto's CloudFormation cannot create AWS::CertificateManager::Certificate, so the stack gets
# a certificate requested from moto's ACM API instead (context gangway:certificateArn).
cert=$("$python" -c '
import boto3, os
acm = boto3.client("acm", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
print(acm.request_certificate(DomainName="app.example.com", ValidationMethod="DNS")["CertificateArn"])')

out="$root/cdk/build/cdk.out.moto"
cd "$root/cdk"
cdk=(npx --no-install cdk --no-notices --output "$out")
echo "== cdk bootstrap (moto at $AWS_ENDPOINT_URL)"
"${cdk[@]}" bootstrap "aws://$CDK_DEFAULT_ACCOUNT/$CDK_DEFAULT_REGION" -c "gangway:certificateArn=$cert"
echo "== cdk deploy"
"${cdk[@]}" deploy Gangway --require-approval never --progress events -c "gangway:certificateArn=$cert"
echo "== verify"
"$python" moto/verify.py Gangway "$out/Gangway.template.json"
