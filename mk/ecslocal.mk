# ecslocal (cmd/ecslocal, internal/ecslocal/...): the Amazon ECS and Elastic Load Balancing v2
# emulator; docs/ecslocal.md says what it models. Targets:
#   ecslocal        builds bin/ecslocal
#   test-ecslocal   its tests with -race, the AWS CLI test included (the CLI pinned by
#                   scripts/moto-install.sh), the load-balancer tests (haproxy) and the
#                   container tests (root, runc, iproute2; all three packages
#                   installed here; `go test ./...` skips them, saying why, when not root or
#                   a package is missing),
#                   then the localstack/ tests that ecslocal covers run against a
#                   bin/ecslocal on 127.0.0.1 (in `make test`)

.PHONY: ecslocal test-ecslocal

ecslocal:
	@mkdir -p bin
	$(GOBUILD) -o bin/ecslocal ./cmd/ecslocal

test-ecslocal: ecslocal
	@scripts/apt-install.sh runc iproute2 haproxy
	GANGWAY_ECSLOCAL_REQUIRE=1 GANGWAY_AWS_CLI="$$(scripts/moto-install.sh) -m awscli" \
	  $(GO) test -race -count=1 ./cmd/ecslocal/ ./internal/ecslocal/...
	scripts/ecslocal-localstack.sh

TEST_SUITES += test-ecslocal
