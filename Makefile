# Builds, tests and packages apivideo_exporter the way Prometheus exporters
# are released: `make tarballs` writes one archive per platform with
# sha256sums.txt and a CycloneDX SBOM per platform into .tarballs/, and
# `make docker` builds the image from the same static binaries.
#
# The version is the VERSION file; the commit, branch and the commit's date
# are stamped beside it, so that --version, apivideo_exporter_build_info and
# the image labels all say which release and which commit they are. Builds
# are reproducible: the same commit and Go give the same bytes.

GO            ?= go
BINARY        := apivideo_exporter
VERSION       := $(shell cat VERSION)
REVISION      ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BRANCH        ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)
# The commit's time, not the clock's, so that a rebuild gives the same bytes.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
BUILD_DATE    := $(shell date -u -d @$(SOURCE_DATE_EPOCH) +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || date -u -r $(SOURCE_DATE_EPOCH) +%Y-%m-%dT%H:%M:%SZ)
BUILD_USER    ?= make

PLATFORMS     ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64
BUILD_DIR     := .build
TARBALL_DIR   := .tarballs
LICENSES_DIR  := $(BUILD_DIR)/third_party_licenses

STATICCHECK   := honnef.co/go/tools/cmd/staticcheck@v0.8.2

# `docker` by default; `make docker DOCKER=buildah` or DOCKER=podman build
# the same Dockerfile, which needs no BuildKit.
DOCKER        ?= docker
DOCKER_IMAGE  ?= apivideo_exporter
# The architectures `make docker` builds, each tagged
# $(DOCKER_IMAGE):$(VERSION)-<arch>; the host's is also tagged
# $(DOCKER_IMAGE):$(VERSION). `make docker-manifest` joins them.
DOCKER_ARCHS  ?= $(shell $(GO) env GOARCH)
HOST_ARCH     := $(shell $(GO) env GOARCH)

VERSION_PKG   := github.com/prometheus/common/version
LDFLAGS       := -s -w -buildid= \
	-X $(VERSION_PKG).Version=$(VERSION) \
	-X $(VERSION_PKG).Revision=$(REVISION) \
	-X $(VERSION_PKG).Branch=$(BRANCH) \
	-X $(VERSION_PKG).BuildUser=$(BUILD_USER) \
	-X $(VERSION_PKG).BuildDate=$(BUILD_DATE)
GOBUILD       := CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)'

# A tar that gives the same archive for the same files.
TAR           := tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@$(SOURCE_DATE_EPOCH)

.PHONY: all
all: lint test build

.PHONY: build
build: ## The binary for this machine, ./apivideo_exporter.
	$(GOBUILD) -o $(BINARY) .

.PHONY: test
test: ## Every test of the exporter's module, the end-to-end ones included, then of the deploy module (prometheus, promtool and helm needed).
	$(GO) test -tags prometheus ./...
	cd deploy && $(GO) test ./...

.PHONY: lint
lint: ## gofmt, go vet and staticcheck on both modules.
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet -tags prometheus ./...
	$(GO) run $(STATICCHECK) -tags prometheus ./...
	cd deploy && $(GO) vet ./... && $(GO) run $(STATICCHECK) ./...

.PHONY: crossbuild
crossbuild: ## Static binaries for $(PLATFORMS) in .build/<os>-<arch>/.
	@for p in $(PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; ext=; [ "$$os" = windows ] && ext=.exe; \
		echo ">> building $$os/$$arch"; \
		GOOS=$$os GOARCH=$$arch $(GOBUILD) -o $(BUILD_DIR)/$$os-$$arch/$(BINARY)$$ext . || exit 1; \
	done

.PHONY: licenses
licenses: ## The license and notice files of every linked module, in .build/third_party_licenses/.
	scripts/third-party-licenses.sh $(LICENSES_DIR) "$(PLATFORMS)"

.PHONY: tarballs
tarballs: crossbuild licenses ## One .tar.gz per platform in .tarballs/, with sha256sums.txt and the SBOMs.
	@rm -rf $(TARBALL_DIR) && mkdir -p $(TARBALL_DIR)
	@for p in $(PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; ext=; [ "$$os" = windows ] && ext=.exe; \
		name=$(BINARY)-$(VERSION).$$os-$$arch; stage=$(BUILD_DIR)/tarballs/$$name; \
		echo ">> packaging $$name.tar.gz"; \
		rm -rf $$stage && mkdir -p $$stage || exit 1; \
		cp $(BUILD_DIR)/$$os-$$arch/$(BINARY)$$ext LICENSE NOTICE $$stage/ || exit 1; \
		cp -R $(LICENSES_DIR) $$stage/third_party_licenses || exit 1; \
		chmod -R u=rwX,go=rX $$stage; \
		$(TAR) -C $(BUILD_DIR)/tarballs -cf - $$name | gzip -9n > $(TARBALL_DIR)/$$name.tar.gz || exit 1; \
	done
	@$(MAKE) --no-print-directory sbom
	cd $(TARBALL_DIR) && sha256sum *.tar.gz *.cdx.json > sha256sums.txt
	@cat $(TARBALL_DIR)/sha256sums.txt

.PHONY: sbom
sbom: ## A CycloneDX SBOM (JSON, licenses detected) per platform in .tarballs/.
	scripts/sbom.sh $(TARBALL_DIR) $(BINARY)-$(VERSION) "$(PLATFORMS)"

.PHONY: docker
docker: ## The image for $(DOCKER_ARCHS), from the binaries of crossbuild.
	@$(MAKE) --no-print-directory crossbuild licenses PLATFORMS="$(foreach a,$(DOCKER_ARCHS),linux/$(a))"
	@for arch in $(DOCKER_ARCHS); do \
		echo ">> building $(DOCKER_IMAGE):$(VERSION)-$$arch with $(DOCKER)"; \
		$(DOCKER) build --platform linux/$$arch \
			--build-arg ARCH=$$arch --build-arg OS=linux \
			--build-arg VERSION=$(VERSION) --build-arg REVISION=$(REVISION) \
			--build-arg BUILD_DATE=$(BUILD_DATE) \
			-t $(DOCKER_IMAGE):$(VERSION)-$$arch . || exit 1; \
		if [ "$$arch" = "$(HOST_ARCH)" ]; then $(DOCKER) tag $(DOCKER_IMAGE):$(VERSION)-$$arch $(DOCKER_IMAGE):$(VERSION) || exit 1; fi; \
	done

.PHONY: docker-manifest
docker-manifest: ## A multi-arch manifest $(DOCKER_IMAGE):$(VERSION) over the pushed $(DOCKER_ARCHS) images.
	$(DOCKER) manifest create --amend $(DOCKER_IMAGE):$(VERSION) $(foreach a,$(DOCKER_ARCHS),$(DOCKER_IMAGE):$(VERSION)-$(a))
	$(DOCKER) manifest push $(DOCKER_IMAGE):$(VERSION)

.PHONY: clean
clean:
	rm -rf $(BUILD_DIR) $(TARBALL_DIR) $(BINARY)

.PHONY: help
help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'
