#!/usr/bin/env bash
# bench-proxy.sh [flags]: Gangway's data plane against nginx, HAProxy and Caddy, with wrk
# (HTTP/1.1 keep-alive) and h2load (HTTP/2), all in one bounded run; prints the Markdown
# table recorded in docs/benchmarks.md. Flags go to bench/proxy (-duration, -c, -hold...).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/apt-install.sh nginx-light haproxy caddy wrk nghttp2-client
make --no-print-directory build >/dev/null
exec go run ./bench/proxy -proxy bin/proxy "$@"
