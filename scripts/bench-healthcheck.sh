#!/usr/bin/env bash
# bench-healthcheck.sh: how long one container health check takes, bin/healthcheck against
# curl, both asking the proxy's probe server for /readyz. It builds, starts `bin/proxy run`
# on its default configuration, waits for readiness, runs hyperfine, prints both medians and
# their ratio, and stops the proxy. The hyperfine JSON goes to bench/out/healthcheck.json.
set -euo pipefail
cd "$(dirname "$0")/.."

addr=127.0.0.1:28080
url="http://$addr/readyz"
out=bench/out/healthcheck.json
log=bench/out/healthcheck-proxy.log

scripts/apt-install.sh hyperfine curl jq
make --no-print-directory build

if [ ! -x bin/proxy ]; then
  echo "bench-healthcheck: bin/proxy is missing; the numbers must come from the real probe server" >&2
  exit 1
fi
if curl -s -o /dev/null --max-time 1 "$url"; then
  echo "bench-healthcheck: something already answers on $addr; stop it first" >&2
  exit 1
fi

mkdir -p bench/out
bin/proxy run >"$log" 2>&1 &
proxy=$!
stop() {
  kill -TERM "$proxy" 2>/dev/null || true
  wait "$proxy" 2>/dev/null || true
}
trap stop EXIT

ready=""
for _ in $(seq 100); do
  if curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null; then
    ready=1
    break
  fi
  if ! kill -0 "$proxy" 2>/dev/null; then
    echo "bench-healthcheck: bin/proxy run exited:" >&2
    cat "$log" >&2
    exit 1
  fi
  sleep 0.1
done
if [ -z "$ready" ]; then
  echo "bench-healthcheck: $url did not answer 200 within 10s:" >&2
  cat "$log" >&2
  exit 1
fi

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
hyperfine --warmup 20 --runs 300 -N --export-json "$out" \
  -n healthcheck "bin/healthcheck -addr $addr -probe ready" \
  -n curl "curl -fsS $url"

# Wall-clock medians decide; the CPU time (user + system, mean) says the same with less noise
# from whatever else the machine runs.
jq -r '
  def ms: . * 1e6 | round / 1e3;
  (.results[] | select(.command == "healthcheck")) as $probe |
  (.results[] | select(.command == "curl")) as $curl |
  "median:   healthcheck \($probe.median | ms) ms, curl \($curl.median | ms) ms, " +
    "curl / healthcheck = \($curl.median / $probe.median * 100 | round / 100)",
  "cpu time: healthcheck \($probe.user + $probe.system | ms) ms, curl \($curl.user + $curl.system | ms) ms, " +
    "curl / healthcheck = \(($curl.user + $curl.system) / ($probe.user + $probe.system) * 100 | round / 100)"
' "$out"
