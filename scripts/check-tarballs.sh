#!/usr/bin/env bash
# Checks what `make tarballs` wrote into DIR (default .tarballs): the
# checksums, each archive's contents (the static binary for its platform,
# LICENSE, NOTICE, the third-party licenses) and SBOM, and that the binary
# of this machine's platform prints the VERSION file and the commit with
# --version.
set -euo pipefail
dir=${1:-.tarballs}
version=$(cat VERSION)
revision=$(git rev-parse HEAD)
host="$(go env GOOS)-$(go env GOARCH)"

(cd "$dir" && sha256sum --check --strict --quiet sha256sums.txt)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
n=0
for tarball in "$dir"/apivideo_exporter-"$version".*.tar.gz; do
  name=$(basename "$tarball" .tar.gz)
  platform=${name##*.}
  grep -q " $name.tar.gz\$" "$dir/sha256sums.txt" || { echo "FATAL: $name.tar.gz not in sha256sums.txt" >&2; exit 1; }
  sbom="$dir/$name.cdx.json"
  grep -q '"bomFormat": "CycloneDX"' "$sbom" || { echo "FATAL: $sbom is not a CycloneDX SBOM" >&2; exit 1; }
  grep -q '"name": "github.com/prometheus/client_golang"' "$sbom" || { echo "FATAL: $sbom lists no client_golang" >&2; exit 1; }
  tar -xzf "$tarball" -C "$work"
  ext=""
  [ "${platform%-*}" = windows ] && ext=.exe
  for f in "apivideo_exporter$ext" LICENSE NOTICE third_party_licenses/MODULES.txt \
    third_party_licenses/go/LICENSE third_party_licenses/github.com/prometheus/client_golang/LICENSE; do
    [ -f "$work/$name/$f" ] || { echo "FATAL: $name.tar.gz has no $f" >&2; exit 1; }
  done
  # The binary is for the archive's platform, static and stamped with the
  # commit (-trimpath keeps -ldflags out of the recorded build settings).
  info=$(go version -m "$work/$name/apivideo_exporter$ext")
  for want in "GOOS=${platform%-*}" "GOARCH=${platform#*-}" "CGO_ENABLED=0" "-trimpath=true"; do
    grep -qF -- "$want" <<<"$info" || { echo "FATAL: $name: build setting $want missing from go version -m" >&2; exit 1; }
  done
  grep -qaF "$revision" "$work/$name/apivideo_exporter$ext" || { echo "FATAL: $name: the binary is not stamped with $revision" >&2; exit 1; }
  if [ "$platform" = "$host" ]; then
    out=$("$work/$name/apivideo_exporter" --version 2>&1)
    echo "$out"
    grep -q "^apivideo_exporter, version $version (branch: .*, revision: $revision)\$" <<<"$out" ||
      { echo "FATAL: --version does not print version $version and revision $revision" >&2; exit 1; }
    ran=1
  fi
  n=$((n + 1))
done
[ "$n" -gt 0 ] || { echo "FATAL: no tarball of version $version in $dir" >&2; exit 1; }
[ "${ran:-}" = 1 ] || { echo "FATAL: no tarball for $host to run" >&2; exit 1; }
echo "$n tarballs of version $version checked"
