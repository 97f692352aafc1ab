#!/usr/bin/env bash
# Writes a CycloneDX SBOM (JSON, licenses detected, the standard library
# included) of the apivideo_exporter binary for each platform:
#   scripts/sbom.sh OUTDIR PREFIX "linux/amd64 darwin/arm64 ..."
# gives OUTDIR/PREFIX.<os>-<arch>.cdx.json. Without serial number or
# timestamp, so that the same commit gives the same files.
#
# cyclonedx-gomod takes the main module's version from git (a tag on HEAD,
# else a pseudo-version) and cannot open a linked worktree: there it reads a
# clone of the commit instead, which holds the committed files only.
set -euo pipefail
out=${1:?usage: $0 OUTDIR PREFIX PLATFORMS}
prefix=${2:?usage: $0 OUTDIR PREFIX PLATFORMS}
platforms=${3:?usage: $0 OUTDIR PREFIX PLATFORMS}
cyclonedx=github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod@v1.10.0

mkdir -p "$out"
out=$(cd "$out" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Built for this machine once: GOOS and GOARCH below describe the target.
GOBIN="$tmp/bin" go install "$cyclonedx"
src=.
if [ "$(git rev-parse --git-dir)" != "$(git rev-parse --git-common-dir)" ]; then
  src="$tmp/src"
  git clone -q --no-checkout "$(git rev-parse --git-common-dir)" "$src"
  git -C "$src" checkout -q "$(git rev-parse HEAD)"
fi
for p in $platforms; do
  file="$out/$prefix.${p%/*}-${p#*/}.cdx.json"
  echo ">> $file"
  (cd "$src" && GOOS=${p%/*} GOARCH=${p#*/} CGO_ENABLED=0 "$tmp/bin/cyclonedx-gomod" app \
    -json -licenses -std -noserial -notimestamp -output "$file" .)
done
