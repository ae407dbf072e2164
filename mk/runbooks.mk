# The runbooks and the getting-started guide on ecslocal (docs/runbooks/ecslocal_test.go).
#   test-runbooks   starts bin/ecslocal with the proxy image of `make image` as
#                   docs/getting-started.md's "Try it locally" blocks say, runs those blocks
#                   in order (the service created, a good revision deployed, a bad one rolled
#                   back, proxy rollout init), then README.md's block for a service deployed
#                   by hand and each runbook the test can drive into its state, checking each
#                   block's exit code and what its output shows; then a second bin/ecslocal
#                   creates the rehearsal's BLUE_GREEN stack of `make rehearse-stacks` (its
#                   hook built for this machine and run by aws-lambda-rie; its listeners on
#                   ports 80, 443 and 9443 of a loopback IP of its own, -lb-addr 127.0.0.X),
#                   and README.md's stack block, listener-weights.md, deployment-failed.md
#                   (after a revision its 5xx alarm rolled back), cloudformation-stuck.md
#                   (a stack update held by its deployment's hook, then deployment-stuck.md
#                   on that deployment, whose rollback rolls the stack back) and the
#                   blocks that read the stack's rules, alarms, logs and hook function run on
#                   it; prints the blocks it did not run, and why (root, runc, iproute2,
#                   haproxy, jq, curl; in `make test`)

.PHONY: test-runbooks

test-runbooks: ecslocal build image rehearse-stacks
	@scripts/apt-install.sh runc iproute2 haproxy jq curl
	@scripts/install-lambda-rie.sh
	GANGWAY_ECSLOCAL_REQUIRE=1 GANGWAY_RUNBOOKS_ECSLOCAL=1 PATH="$$(dirname "$$(scripts/moto-install.sh)"):$$PATH" \
	  $(GO) test -count=1 -timeout 20m -v -run '^TestRunbooksOnECSLocal$$' ./docs/runbooks/

TEST_SUITES += test-runbooks
