# syntax=docker/dockerfile:1

# Build:
#   docker build \
#     --build-arg VERSION=$(git describe --tags --always) \
#     --build-arg REVISION=$(git rev-parse HEAD) \
#     --build-arg BRANCH=$(git rev-parse --abbrev-ref HEAD) \
#     --build-arg BUILD_DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ) \
#     -t apivideo_exporter .
# Multi-platform: docker buildx build --platform linux/amd64,linux/arm64 ...
#
# Run:
#   docker run -p 9856:9856 -e APIVIDEO_API_KEY=... apivideo_exporter
#   docker run -p 9856:9856 apivideo_exporter --demo

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src

# Dependencies first, so that they stay cached while the code changes.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download

COPY . .

ARG TARGETOS=linux
ARG TARGETARCH
ARG VERSION=dev
ARG REVISION=unknown
ARG BRANCH=unknown
ARG BUILD_USER=docker
ARG BUILD_DATE=unknown
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath \
      -ldflags "-s -w \
        -X github.com/prometheus/common/version.Version=${VERSION} \
        -X github.com/prometheus/common/version.Revision=${REVISION} \
        -X github.com/prometheus/common/version.Branch=${BRANCH} \
        -X github.com/prometheus/common/version.BuildUser=${BUILD_USER} \
        -X github.com/prometheus/common/version.BuildDate=${BUILD_DATE}" \
      -o /out/apivideo_exporter .

# Static binary on distroless: CA certificates and tzdata, no shell, and the
# nonroot user (65532:65532).
FROM gcr.io/distroless/static-debian12:nonroot

ARG VERSION=dev
ARG REVISION=unknown
# RFC 3339, as the OCI annotation requires; empty when not given.
ARG BUILD_DATE
LABEL org.opencontainers.image.title="apivideo_exporter" \
      org.opencontainers.image.description="Prometheus exporter for the delegated upload tokens of an api.video account" \
      org.opencontainers.image.source="https://github.com/apivideo-exporter/apivideo_exporter" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${BUILD_DATE}" \
      org.opencontainers.image.licenses="Apache-2.0"

COPY LICENSE /license/LICENSE
COPY --from=build /out/apivideo_exporter /bin/apivideo_exporter

USER 65532:65532
EXPOSE 9856
ENTRYPOINT ["/bin/apivideo_exporter"]
