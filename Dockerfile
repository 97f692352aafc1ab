# The image of a release: the static binary `make crossbuild` wrote for
# linux/$ARCH, on distroless. It runs nothing at build time, so that plain
# `docker build` (no BuildKit), buildah and podman build every architecture
# alike, without emulation. `make docker` builds it:
#
#   make docker                                   # this machine's architecture
#   make docker DOCKER_ARCHS="amd64 arm64"        # both, tagged :<version>-<arch>
#   make docker DOCKER=buildah                    # with buildah
#
# which comes down to
#
#   make crossbuild licenses PLATFORMS=linux/arm64
#   docker build --platform linux/arm64 --build-arg ARCH=arm64 \
#     --build-arg VERSION=$(cat VERSION) --build-arg REVISION=$(git rev-parse HEAD) \
#     --build-arg BUILD_DATE=... -t apivideo_exporter:$(cat VERSION)-arm64 .
#
# Run:
#   docker run -p 9856:9856 -e APIVIDEO_API_KEY=... apivideo_exporter:<version>
#   docker run -p 9856:9856 apivideo_exporter:<version> --demo

# CA certificates and tzdata, no shell, and the nonroot user (65532:65532).
# gcr.io/distroless/static-debian12:nonroot, pinned by the digest of its
# multi-architecture index so that every architecture and every rebuild
# starts from the same bytes; bump the digest on purpose, in a commit.
FROM gcr.io/distroless/static-debian12@sha256:d093aa3e30dbadd3efe1310db061a14da60299baff8450a17fe0ccc514a16639

ARG OS=linux
ARG ARCH=amd64
ARG VERSION=unknown
ARG REVISION=unknown
# RFC 3339, as the OCI annotation requires; make passes the commit's time.
ARG BUILD_DATE
LABEL org.opencontainers.image.title="apivideo_exporter" \
      org.opencontainers.image.description="Prometheus exporter for the delegated upload tokens of an api.video account" \
      org.opencontainers.image.source="https://github.com/apivideo-exporter/apivideo_exporter" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${BUILD_DATE}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="gcr.io/distroless/static-debian12:nonroot"

COPY LICENSE NOTICE /license/
COPY .build/third_party_licenses /license/third_party_licenses
COPY .build/${OS}-${ARCH}/apivideo_exporter /bin/apivideo_exporter

USER 65532:65532
EXPOSE 9856
ENTRYPOINT ["/bin/apivideo_exporter"]
