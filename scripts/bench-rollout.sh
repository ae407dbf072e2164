#!/usr/bin/env bash
# bench-rollout.sh [harness flags...]: the rollout harness at full size. It installs
# HAProxy, builds bin/proxy and bin/healthcheck, and runs bench/rollout for Gangway and the
# naive baseline: rolling and stoptask go on until each has 500,000 requests and 25
# replacements, kill9 kills 25 replicas, scale-in and scale-out move 2 each. The HTTP
# clients are paced to 2,400 requests/s so that the 2-core machine keeps some headroom
# for the timers of HAProxy and the proxies. It prints
# both tables and records them, with the command, in docs/benchmarks.md ("## Rollout").
# Extra flags are passed to the harness and override these. Bounded: each scenario stops
# after 10 minutes at most; a full run takes about 15 minutes on 2 cores.
#
# The upstream-outage comparison (about 2 minutes) has a section of its own:
#   scripts/bench-rollout.sh -scenarios upstream-outage -variants gangway,ready-check \
#     -section '## Rollout: upstream outage'
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/apt-install.sh haproxy
make --no-print-directory build

# The run uses its own copy of the binaries, so that a rebuild of bin/ during the run
# cannot mix two versions of the proxy.
mkdir -p bench/out/rollout-bin
cp bin/proxy bin/healthcheck bench/out/rollout-bin/
go build -o bench/out/rollout-bin/harness ./bench/rollout
exec bench/out/rollout-bin/harness \
  -proxy bench/out/rollout-bin/proxy -healthcheck bench/out/rollout-bin/healthcheck \
  -replicas 3 -actions 25 -requests 500000 \
  -h1 16 -h2-conns 2 -h2-streams 8 -rate 2400 -ws 8 -slow-every 50 \
  -max-scenario 10m \
  -markdown docs/benchmarks.md \
  "$@"
