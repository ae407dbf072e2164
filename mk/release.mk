# A release, everything from the commit (make image's inputs), so the same commit gives the
# same bytes. Targets:
#   release       $(RELEASE_OUT): gangway-proxy-linux-{amd64,arm64} and
#                 gangway-healthcheck-linux-{amd64,arm64} (the binaries inside the image),
#                 image/ (make image's OCI layout and docker-load tarballs), gangway.spdx.json
#                 (an SPDX 2.3 SBOM from the binaries' module graph, cmd/gangway-sbom) and
#                 SHA256SUMS over every file
#   test-release  the release twice, into two directories: their SHA256SUMS must be equal (in
#                 `make test`)
# A release is tagged first (git tag -a vX.Y.Z), so that VERSION is the tag; CHANGELOG.md
# has its notes.

.PHONY: release test-release

RELEASE_OUT ?= bin/release

release:
	rm -rf $(RELEASE_OUT)
	$(MAKE) --no-print-directory image IMAGE_OUT=$(RELEASE_OUT)/image IMAGE_FLAGS='-bin $(RELEASE_OUT)'
	$(GO) run ./cmd/gangway-sbom -name gangway -version $(VERSION) -created $(SOURCE_DATE_EPOCH) \
	  -o $(RELEASE_OUT)/gangway.spdx.json $(RELEASE_OUT)/gangway-proxy-* $(RELEASE_OUT)/gangway-healthcheck-*
	cd $(RELEASE_OUT) && find . -type f ! -name SHA256SUMS | LC_ALL=C sort | sed 's|^\./||' \
	  | xargs sha256sum > SHA256SUMS
	@echo "$(RELEASE_OUT)/SHA256SUMS:"; cat $(RELEASE_OUT)/SHA256SUMS

# The second run finds every package in the build cache; the links and the image's
# compression are what it repeats.
test-release:
	$(MAKE) --no-print-directory release RELEASE_OUT=bin/release-check-a >/dev/null
	$(MAKE) --no-print-directory release RELEASE_OUT=bin/release-check-b >/dev/null
	diff bin/release-check-a/SHA256SUMS bin/release-check-b/SHA256SUMS
	@echo "test-release: two releases of $(VERSION) are identical ($$(wc -l < bin/release-check-a/SHA256SUMS) files)"
	rm -rf bin/release-check-a bin/release-check-b

TEST_SUITES += test-release
