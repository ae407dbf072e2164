# The control plane's benchmark: one ADS server, 1,000 simulated data planes on real gRPC
# streams over loopback, 10,000 routes (docs/benchmarks.md, section xDS).
.PHONY: bench-xds
BENCHES += bench-xds
BENCH_XDS_FLAGS ?= -clients 1000 -routes 10000 -rounds 3

bench-xds:
	$(GO) run ./bench/xds $(BENCH_XDS_FLAGS)

# Resources come from the network: ToSpec must never panic on them.
FUZZ_TARGETS += ./internal/xds/resource:FuzzToSpec
