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
#                   bin/ecslocal on 127.0.0.1, then the short rehearsal (in `make test`)
#   rehearse        bench/rollout/rehearse in full: Gangway's task definition with the
#                   proxy image of `make image` on bin/ecslocal behind its HAProxy, under
#                   counted load: proxy rollout deploy of a good revision and of one whose app
#                   never turns healthy, StopTask of every task, scaling; prints the table
#                   that docs/benchmarks.md records ("ECS rehearsal") and writes each
#                   scenario's timeline to bin/rehearse.html (one page, no network)

.PHONY: ecslocal test-ecslocal rehearse

# The rehearsal runs the binaries and the image that make builds.
REHEARSE_ENV = GANGWAY_ECSLOCAL_REQUIRE=1 GANGWAY_ECSLOCAL_BIN=$(CURDIR)/bin/ecslocal \
  GANGWAY_PROXY_BIN=$(CURDIR)/bin/proxy GANGWAY_PROXY_LAYOUT=$(CURDIR)/$(IMAGE_OUT)/oci

ecslocal:
	@mkdir -p bin
	$(GOBUILD) -o bin/ecslocal ./cmd/ecslocal

# synth: the CloudFormation tests load the synthesized template (cdk/cdk.out).
test-ecslocal: ecslocal build image synth
	@scripts/apt-install.sh runc iproute2 haproxy
	@scripts/install-lambda-rie.sh
	GANGWAY_ECSLOCAL_REQUIRE=1 GANGWAY_AWS_CLI="$$(scripts/moto-install.sh) -m awscli" \
	  $(GO) test -race -count=1 ./cmd/ecslocal/ ./internal/ecslocal/...
	scripts/ecslocal-localstack.sh
	$(REHEARSE_ENV) $(GO) test -race -count=1 -timeout 15m ./bench/rollout/rehearse/

rehearse: ecslocal build image
	@scripts/apt-install.sh runc iproute2 haproxy
	$(REHEARSE_ENV) GANGWAY_REHEARSE=full GANGWAY_REHEARSE_TABLE=$(CURDIR)/bin/rehearse.md \
	  GANGWAY_REHEARSE_REPORT=$(CURDIR)/bin/rehearse.html \
	  $(GO) test -count=1 -timeout 30m -v -run '^TestProxyOnECSLocal$$' ./bench/rollout/rehearse/
	@cat bin/rehearse.md

TEST_SUITES += test-ecslocal
