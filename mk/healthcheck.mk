# Health probe (cmd/healthcheck). Targets:
#   bench-healthcheck  bin/healthcheck against curl, both probing the proxy's /readyz
#                      (hyperfine); results are recorded in docs/benchmarks.md
# The response parser's fuzz target joins the short fuzz runs of `make test`.

.PHONY: bench-healthcheck

FUZZ_TARGETS += ./cmd/healthcheck:FuzzParseResponse

bench-healthcheck:
	scripts/bench-healthcheck.sh

BENCHES += bench-healthcheck
