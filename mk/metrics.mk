# Observability reference (docs/metrics.md, docs/prometheus/). Targets:
#   test-metrics  promtool check rules and promtool test rules (gangway-rules.test.yml) on
#                 docs/prometheus/gangway-rules.yml, through the Go test that also holds the
#                 rules to the documented metrics (in `make test`; installs Debian's
#                 prometheus package, which has promtool)
# `go test ./...` also runs TestMetricsDoc (the table against the code and a scrape), and
# TestAlertRules skips without promtool outside CI.

.PHONY: test-metrics

test-metrics:
	scripts/apt-install.sh prometheus
	CI=true $(GO) test -race -count=1 -v -run '^TestAlertRules$$' ./cmd/proxy/

TEST_SUITES += test-metrics
