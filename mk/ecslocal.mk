# ecslocal (cmd/ecslocal, internal/ecslocal/...): the Amazon ECS and Elastic Load Balancing v2
# emulator; docs/ecslocal.md says what it models. Targets:
#   ecslocal        builds bin/ecslocal
#   test-ecslocal   its tests with -race, the AWS CLI test included (the CLI pinned by
#                   scripts/moto-install.sh), the Lambda tests (the readiness hook under
#                   aws-lambda-rie, pinned by scripts/install-lambda-rie.sh into bin/), the
#                   CloudFormation tests (the template of `make synth`),
#                   the load-balancer tests (haproxy) and the
#                   container tests (root, runc, iproute2; all three packages
#                   installed here; `go test ./...` skips them, saying why, when not root or
#                   a package is missing),
#                   then the localstack/ tests that ecslocal covers run against a
#                   bin/ecslocal on 127.0.0.1, then the short rehearsals (in `make test`):
#                   the hand-built ROLLING service, and the CDK stack (BLUE_GREEN: a good and a
#                   never-ready revision through proxy rollout deploy)
#   rehearse-stacks the CDK app synthesized once per strategy (BLUE_GREEN, ROLLING, CANARY)
#                   into cdk/build/rehearse/STRATEGY, the readiness hook built for this
#                   machine (cdk/build/rehearse/hook), for bin/ecslocal -template
#   rehearse        bench/rollout/rehearse in full: Gangway's task definition with the
#                   proxy image of `make image` on bin/ecslocal behind its HAProxy, under
#                   counted load: proxy rollout deploy of a good revision and of one whose app
#                   never turns healthy, StopTask of every task, scaling; prints the table
#                   that docs/benchmarks.md records ("ECS rehearsal") and writes each
#                   scenario's timeline to bin/rehearse.html (one page, no network); then
#                   the CDK stack of rehearse-stacks on bin/ecslocal -template under load on
#                   its production listener: every scenario of docs/benchmarks.md's
#                   "Rehearsal of the CDK stack", in the same table and page

.PHONY: ecslocal test-ecslocal rehearse rehearse-stacks

# The rehearsal runs the binaries and the image that make builds.
REHEARSE_ENV = GANGWAY_ECSLOCAL_REQUIRE=1 GANGWAY_ECSLOCAL_BIN=$(CURDIR)/bin/ecslocal \
  GANGWAY_PROXY_BIN=$(CURDIR)/bin/proxy GANGWAY_PROXY_LAYOUT=$(CURDIR)/$(IMAGE_OUT)/oci \
  GANGWAY_REHEARSE_STACKS=$(REHEARSE_STACKS)

# The stack runs as synthesized but for the hook's architecture: the construct builds it for
# arm64 (Lambda's Graviton), aws-lambda-rie runs it here, so it is built for this machine.
REHEARSE_STACKS    := $(CURDIR)/$(CDK_DIR)/build/rehearse
REHEARSE_STRATEGIES = BLUE_GREEN ROLLING CANARY
# The construct's sidecar configuration with WebSocket upgrades allowed (the sidecar
# variables refuse them), for the load's WebSocket clients.
REHEARSE_PROXY_CONFIG := $(CURDIR)/bench/rollout/rehearse/testdata/proxy.yaml

rehearse-stacks:
	@mkdir -p $(REHEARSE_STACKS)/hook
	cd $(CDK_DIR) && GOOS=linux GOARCH=$$($(GO) env GOHOSTARCH) CGO_ENABLED=0 \
	  $(GO) build -trimpath -tags lambda.norpc -ldflags '-s -w' -o $(REHEARSE_STACKS)/hook/bootstrap ./cmd/readiness-hook
	scripts/cdk-npm.sh
	for s in $(REHEARSE_STRATEGIES); do \
	  (cd $(CDK_DIR) && $(CDK_ENV) CDK_DISABLE_VERSION_CHECK=1 CDK_DISABLE_CLI_TELEMETRY=1 npx --no-install cdk synth --quiet --no-notices \
	    -c gangway:strategy=$$s -c gangway:hookAssetDir=$(REHEARSE_STACKS)/hook \
	    -c gangway:proxyConfigFile=$(REHEARSE_PROXY_CONFIG) -o $(REHEARSE_STACKS)/$$s) || exit 1; \
	done

ecslocal:
	@mkdir -p bin
	$(GOBUILD) -o bin/ecslocal ./cmd/ecslocal

# synth: the CloudFormation tests load the synthesized template (cdk/cdk.out).
test-ecslocal: ecslocal build image synth rehearse-stacks
	@scripts/apt-install.sh runc iproute2 haproxy
	@scripts/install-lambda-rie.sh
	GANGWAY_ECSLOCAL_REQUIRE=1 GANGWAY_AWS_CLI="$$(scripts/moto-install.sh) -m awscli" \
	  $(GO) test -race -count=1 ./cmd/ecslocal/ ./internal/ecslocal/...
	scripts/ecslocal-localstack.sh
	$(REHEARSE_ENV) $(GO) test -race -count=1 -timeout 25m ./bench/rollout/rehearse/

rehearse: ecslocal build image rehearse-stacks
	@scripts/apt-install.sh runc iproute2 haproxy
	@scripts/install-lambda-rie.sh
	$(REHEARSE_ENV) GANGWAY_REHEARSE=full GANGWAY_REHEARSE_TABLE=$(CURDIR)/bin/rehearse.md \
	  GANGWAY_REHEARSE_REPORT=$(CURDIR)/bin/rehearse.html \
	  $(GO) test -count=1 -timeout 60m -v -run '^(TestProxyOnECSLocal|TestStackOnECSLocal)$$' ./bench/rollout/rehearse/
	@cat bin/rehearse.md

TEST_SUITES += test-ecslocal
SUITE_PACKAGES += ./cmd/ecslocal ./internal/ecslocal/...
