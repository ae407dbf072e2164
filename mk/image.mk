# The proxy's container image, built without a container engine (internal/image,
# cmd/gangway-image; docs/image.md). Targets:
#   image       bin/image/oci (an OCI layout of the linux/amd64 + linux/arm64 index) and
#               bin/image/proxy-ARCH.tar (one `docker load` tarball per platform); prints each
#               image's sizes and digest, and the index digest
#   image-push  IMAGE=registry/repository:tag: pushes the index, prints repository@sha256:...
#   test-image  the image run with runc as ECS runs it (in `make test`; installs runc)
# The same commit gives the same digest: every input comes from git.

.PHONY: image image-push test-image

IMAGE_OUT         ?= bin/image
IMAGE_FLAGS       ?=
IMAGE_REVISION    := $(COMMIT)
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)

image:
	$(GO) run ./cmd/gangway-image build -out $(IMAGE_OUT) \
	  -version $(VERSION) -revision $(IMAGE_REVISION) -created $(SOURCE_DATE_EPOCH) $(IMAGE_FLAGS)

image-push: image
	@test -n "$(IMAGE)" || { echo "make image-push: set IMAGE=registry/repository:tag" >&2; exit 2; }
	$(GO) run ./cmd/gangway-image push -layout $(IMAGE_OUT)/oci -image $(IMAGE)

# `go test ./...` runs the build, layer, config, tarball and registry tests; this suite adds
# the runc run, which needs root. CI runs as root: a runc that cannot be installed fails it.
test-image:
	@if [ "$$(id -u)" -eq 0 ] || [ "$${CI:-}" = true ]; then scripts/apt-install.sh runc iproute2; \
	  else echo "test-image: not root, so runc is not installed and the runc test says why it skips"; fi
	GANGWAY_IMAGE_RUNC=1 $(GO) test -race -count=1 -v -run '^TestRunsUnderRuncLikeECS$$' ./internal/image/

TEST_SUITES += test-image
