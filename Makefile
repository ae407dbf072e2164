# Gangway: build, run, test, lint, bench.
#
# Every target that needs a tool installs it first (scripts/install-*.sh are idempotent
# and fast when the tool is already present), so a fresh machine needs nothing by hand.

SHELL       := /usr/bin/env bash
GO          ?= go
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT      ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
# LDFLAGS is internal/version.LDFlags("$(VERSION)", "$(COMMIT)"), for both binaries; the
# image builder and the Dockerfile pass the same (internal/image's tests hold them equal).
LDFLAGS     := -s -w -X github.com/gangway-ecs/gangway/internal/version.Version=$(VERSION) -X github.com/gangway-ecs/gangway/internal/version.Commit=$(COMMIT)
GOBUILD     := CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)'
GOBIN_DIR   := $(shell $(GO) env GOPATH)/bin
STATICCHECK := $(GOBIN_DIR)/staticcheck
FUZZTIME    ?= 5s

.PHONY: all build install run test test-go test-unit test-fuzz lint tools bench clean

all: build

build:
	@mkdir -p bin
	$(GOBUILD) -o bin/proxy ./cmd/proxy
	$(GOBUILD) -o bin/healthcheck ./cmd/healthcheck

# install: the binaries under $(PREFIX)/bin with the names packaging/systemd uses
# (gangway-proxy, gangway-healthcheck), and the unit with its ExecStart pointing there. In a
# container image they sit at /proxy and /healthcheck instead (the task definitions' paths).
PREFIX         ?= /usr/local
DESTDIR        ?=
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
BINDIR         ?= bin

install: build
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(SYSTEMDUNITDIR)
	install -m 0755 $(BINDIR)/proxy $(DESTDIR)$(PREFIX)/bin/gangway-proxy
	install -m 0755 $(BINDIR)/healthcheck $(DESTDIR)$(PREFIX)/bin/gangway-healthcheck
	sed 's|/usr/local/bin/gangway-proxy|$(PREFIX)/bin/gangway-proxy|' packaging/systemd/gangway-proxy.service \
	  > $(DESTDIR)$(SYSTEMDUNITDIR)/gangway-proxy.service
	chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/gangway-proxy.service

# run: the proxy on its embedded default configuration. On a terminal it says what Ctrl-C
# does: readiness fails and requests are still served for shutdown.delay (12 s), then those
# in flight drain; a second Ctrl-C exits at once.
run: build
	bin/proxy run

tools:
	@scripts/install-tools.sh

lint: tools
	$(GO) vet ./...
	$(STATICCHECK) ./...

# test: everything a change must pass. Suites with their own targets (mk/*.mk) add
# themselves to TEST_SUITES.
TEST_SUITES :=

test: lint build test-unit test-fuzz test-suites

# The Debian packages that `go test ./...` runs tests with, where it would otherwise skip them
# (CI=true makes those tests fail instead): runc, iproute2 and haproxy for ecslocal's,
# promtool (prometheus) for the alert rules, haproxy and nginx-light for the check that
# bench/proxy's peers do Gangway's forwarding work. Installed only when missing.
TEST_PACKAGES := runc iproute2 haproxy prometheus nginx-light

# test-go: every package's tests. make test runs test-unit instead, which leaves out the
# packages that a suite of TEST_SUITES tests in full, with the parts they need installed
# (SUITE_PACKAGES, which mk/*.mk extend), so that no test runs twice.
SUITE_PACKAGES :=

test-go:
	@scripts/apt-install.sh $(TEST_PACKAGES)
	$(GO) test -race -count=1 ./...

test-unit:
	@scripts/apt-install.sh $(TEST_PACKAGES)
	@pkgs=$$($(GO) list ./... | grep -v -x -F "$$($(GO) list $(SUITE_PACKAGES))") || exit 1; \
	echo "$(GO) test -race -count=1 ./... (but $(SUITE_PACKAGES), which their suites test)"; \
	$(GO) test -race -count=1 $$pkgs

test-fuzz:
	@GO=$(GO) scripts/fuzz.sh $(FUZZTIME) $(FUZZ_TARGETS)

BENCHES :=

clean:
	rm -rf bin

FUZZ_TARGETS :=

-include mk/*.mk

# Rules whose prerequisites are lists that mk/*.mk files extend come after the include.
test-suites: $(TEST_SUITES)

bench: build $(BENCHES)
