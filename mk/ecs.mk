# ECS tooling: task definitions, proxy lint, rollout, discovery (internal/ecs, taskdefs/,
# localstack/). Targets:
#   localstack-test  register every task definition (SDK and AWS CLI), create and update a
#                    service, discover RunTask tasks — against AWS_ENDPOINT_URL, or a moto
#                    server started on 127.0.0.1 (in `make test`)
#   lint-taskdefs    proxy lint on every shipped task definition, with the shipped target
#                    group and service settings (in `make test`)

.PHONY: localstack-test lint-taskdefs

localstack-test:
	scripts/localstack-test.sh

lint-taskdefs: build
	bin/proxy lint -target-group taskdefs/settings/target-group.json \
	  -service taskdefs/settings/service.json taskdefs/*.json

TEST_SUITES += localstack-test lint-taskdefs
