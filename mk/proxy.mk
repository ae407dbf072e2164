# The data plane's benchmark: Gangway vs nginx, HAProxy and Caddy (docs/benchmarks.md).
.PHONY: bench-proxy
BENCHES += bench-proxy
BENCH_PROXY_FLAGS ?=

bench-proxy: build
	scripts/bench-proxy.sh $(BENCH_PROXY_FLAGS)

# A short run of the benchmark itself, so that make test catches a broken benchmark: one
# round per protocol, a run of each at a fixed rate, a few held connections, the read after
# a quiet while and, as root, every proxy under a one-CPU limit and, when there is a memory
# controller (cgroup v2, or v1 at /sys/fs/cgroup/memory), in a memory cgroup of its own with
# room enough that nothing is starved. Figures from so short a run mean nothing; a failed
# request, or a missing row or table, fails it.
.PHONY: test-bench-proxy
TEST_SUITES += test-bench-proxy
BENCH_PROXY_MEMCG := $(if $(filter 0,$(shell id -u)),$(shell { grep -qw memory /sys/fs/cgroup/cgroup.subtree_control || test -f /sys/fs/cgroup/memory/memory.limit_in_bytes; } 2>/dev/null && echo yes))
BENCH_PROXY_SMOKE := -only-gangway -baseline bin/proxy -rounds 1 -duration 1s -rate 2000 -hold 20,40 -settle 3s -starts 2 \
  $(if $(filter 0,$(shell id -u)),-cpu-limit 1) $(if $(BENCH_PROXY_MEMCG),-memory-limit 256)

# and the fixed-count form of the paired comparison: two rounds of 2,000 requests a protocol.
BENCH_PROXY_PAIRED_SMOKE := -only-gangway -baseline bin/proxy -rounds 2 -requests 2000 -hold '' -settle 0 -starts 1

test-bench-proxy: build
	@out=$$(scripts/bench-proxy.sh $(BENCH_PROXY_SMOKE) 2>&1) || { echo "$$out"; exit 1; }; \
	echo "$$out" | tail -n 6; \
	if echo "$$out" | grep -E ' errors [1-9]'; then echo "test-bench-proxy: requests failed"; exit 1; fi; \
	if echo "$$out" | grep -E '(h1|h2) 0 req/s'; then echo "test-bench-proxy: a run completed no request"; exit 1; fi; \
	echo "$$out" | grep -q '^| Gangway (baseline), quiet 3s |' || { echo "$$out"; echo "test-bench-proxy: no row for the read after a quiet while"; exit 1; }; \
	echo "$$out" | grep -A6 '^At a fixed rate of 2000 requests a second' | grep -qE '^\| Gangway \| [0-9]+ \| [0-9.]+ ms \| [0-9.]+ ms \|' || { echo "$$out"; echo "test-bench-proxy: no row at the fixed rate"; exit 1; }; \
	if [ -n "$(BENCH_PROXY_MEMCG)" ]; then \
	  echo "$$out" | grep -q '^| target | HTTP/1.1 major faults |' || { echo "$$out"; echo "test-bench-proxy: no memory table under -memory-limit"; exit 1; }; \
	fi; \
	out=$$(scripts/bench-proxy.sh $(BENCH_PROXY_PAIRED_SMOKE) 2>&1) || { echo "$$out"; exit 1; }; \
	if echo "$$out" | grep -E ' errors [1-9]|(h1|h2) 0 req/s'; then echo "test-bench-proxy: -requests: requests failed or none completed"; exit 1; fi; \
	echo "$$out" | grep -E '^CPU per request, Gangway ÷ its baseline, round by round .*; median [0-9.]+ / [0-9.]+,' || { echo "$$out"; echo "test-bench-proxy: -requests: no paired ratios"; exit 1; }

# Arbitrary bytes against the HTTP/1 server: no panic, no hang, well-formed responses.
FUZZ_TARGETS += ./internal/h1server:FuzzServe
# Arbitrary bytes through the whole proxy to a recording upstream: the upstream sees only
# requests h1server parsed, each response reaches the request that caused it
# (internal/proxy/boundary_fuzz_test.go).
FUZZ_TARGETS += ./internal/proxy:FuzzProxyBoundaries
# Arbitrary frames after the preface against the HTTP/2 server: no panic, no hang, and work
# per connection within its limits (internal/h2server/fuzz_test.go).
FUZZ_TARGETS += ./internal/h2server:FuzzConn
# Any path through the listener's path normalization: the result is normal, and normalizing
# it again changes nothing (internal/proxy/pathnorm_test.go).
FUZZ_TARGETS += ./internal/proxy:FuzzNormalizePath
# Any bytes as an upstream's answer: the pool's own response parser reads what
# http.ReadResponse reads, or leaves the response to it (internal/upstream/h1read_test.go).
FUZZ_TARGETS += ./internal/upstream:FuzzReadResponse

# fuzz-long: every fuzz target of the repository for FUZZ_LONG_TIME each, where make test
# gives each FUZZTIME (5 s).
.PHONY: fuzz-long
FUZZ_LONG_TIME ?= 5m

fuzz-long:
	$(MAKE) test-fuzz FUZZTIME=$(FUZZ_LONG_TIME)

# HTTP/2 conformance: h2spec against a real listener, over h2c and TLS
# (internal/proxy/h2spec_test.go, which lists the cases known to fail and why).
# `go test ./...` skips it, saying why, when GANGWAY_H2SPEC is not set.
.PHONY: test-h2spec
TEST_SUITES += test-h2spec

test-h2spec:
	@scripts/install-h2spec.sh
	GANGWAY_H2SPEC=$(CURDIR)/bin/h2spec $(GO) test -race -count=1 -v -run '^TestH2spec$$' ./internal/proxy/
