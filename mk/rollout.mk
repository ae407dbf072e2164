# Rollout harness (bench/rollout): bin/proxy replicas behind HAProxy, replaced the way ECS
# does it under load, Gangway against a naive baseline. Targets:
#   test-rollout        the HAProxy driver's tests against a real HAProxy, and the timeline
#                       report rendered in headless Chromium (in `make test`; `go test ./...`
#                       skips them, saying why, when HAProxy or Chromium is missing)
#   test-rollout-smoke  the whole harness at its smallest size: 2 replicas, 1 action per
#                       scenario, Gangway only; asserts 0 failed requests outside kill9
#   bench-rollout       the full run (scripts/bench-rollout.sh); writes the "## Rollout"
#                       section of docs/benchmarks.md. ROLLOUT_FLAGS adds harness flags.

.PHONY: test-rollout test-rollout-smoke bench-rollout

test-rollout:
	@scripts/apt-install.sh haproxy chromium
	GANGWAY_ROLLOUT_REQUIRE=1 GANGWAY_CHROMIUM_REQUIRE=1 \
	  $(GO) test -race -count=1 ./bench/rollout/internal/haproxy/ ./bench/rollout/internal/timeline/

test-rollout-smoke: build
	@scripts/apt-install.sh haproxy
	GANGWAY_ROLLOUT_REQUIRE=1 GANGWAY_ROLLOUT_SMOKE=1 $(GO) test -race -count=1 -timeout 10m -run '^TestSmoke$$' -v ./bench/rollout/internal/rollout/

bench-rollout:
	scripts/bench-rollout.sh $(ROLLOUT_FLAGS)

TEST_SUITES += test-rollout test-rollout-smoke
SUITE_PACKAGES += ./bench/rollout/internal/haproxy ./bench/rollout/internal/timeline
BENCHES += bench-rollout
