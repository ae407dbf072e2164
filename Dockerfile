# syntax=docker/dockerfile:1
#
# Gangway's proxy image, for teams that build with Docker or BuildKit:
#
#   docker buildx build --platform linux/amd64,linux/arm64 \
#     --build-arg VERSION=$(git describe --tags --always --dirty) \
#     --build-arg REVISION=$(git rev-parse HEAD) \
#     --build-arg CREATED=$(date -u -d @$(git log -1 --format=%ct) +%Y-%m-%dT%H:%M:%SZ) \
#     -t REGISTRY/gangway-proxy:TAG --push .
#
# `make image` builds the same image without an engine (docs/image.md): same files, owners,
# user, entrypoint, command, port, health check and labels. internal/image/dockerfile_test.go
# keeps the two in agreement.

ARG GO_VERSION=1.26.8

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
ARG REVISION=unknown
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY cmd/ cmd/
COPY internal/ internal/
# The settings that change the generated code, as internal/image sets them.
ENV CGO_ENABLED=0 GOAMD64=v1 GOARM64=v8.0 GOFLAGS=-buildvcs=false
RUN GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -ldflags "-s -w -X github.com/gangway-ecs/gangway/internal/version.Version=${VERSION} -X github.com/gangway-ecs/gangway/internal/version.Commit=${REVISION}" -o /out/proxy ./cmd/proxy && \
    GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -ldflags "-s -w -X github.com/gangway-ecs/gangway/internal/version.Version=${VERSION} -X github.com/gangway-ecs/gangway/internal/version.Commit=${REVISION}" -o /out/healthcheck ./cmd/healthcheck

# An empty base: two static binaries, the users, nothing else (no shell, no /tmp). The CA
# roots are compiled into /proxy.
FROM scratch
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z
COPY --chmod=0644 internal/image/rootfs/etc/ /etc/
COPY --from=build --chmod=0755 /out/proxy /out/healthcheck /
USER 65532:65532
EXPOSE 8080/tcp
HEALTHCHECK --interval=5s --timeout=2s --start-period=15s --retries=3 CMD ["/healthcheck"]
LABEL org.opencontainers.image.source="https://github.com/gangway-ecs/gangway" \
      org.opencontainers.image.title="gangway-proxy" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"
ENTRYPOINT ["/proxy"]
CMD ["run"]
