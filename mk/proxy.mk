# The data plane's benchmark: Gangway vs nginx, HAProxy and Caddy (docs/benchmarks.md).
.PHONY: bench-proxy
BENCHES += bench-proxy
BENCH_PROXY_FLAGS ?=

bench-proxy: build
	scripts/bench-proxy.sh $(BENCH_PROXY_FLAGS)

# The HTTP/1 framing checks against net/http's own parser (internal/proxy/h1conn_test.go).
FUZZ_TARGETS += ./internal/proxy:FuzzFraming
