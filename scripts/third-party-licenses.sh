#!/usr/bin/env bash
# Copies the license and notice files of every module linked into the
# apivideo_exporter binary on any of the release platforms, and Go's own
# (the standard library is linked in too), into DIR/<module path>/. Fails
# when a module has no license file, so that no release ships without one.
#   scripts/third-party-licenses.sh DIR "linux/amd64 darwin/arm64 ..."
set -euo pipefail
out=${1:?usage: $0 DIR PLATFORMS}
platforms=${2:?usage: $0 DIR PLATFORMS}

rm -rf "$out"
mkdir -p "$out"
modules=$(
  for p in $platforms; do
    GOOS=${p%/*} GOARCH=${p#*/} CGO_ENABLED=0 go list -deps \
      -f '{{with .Module}}{{if not .Main}}{{.Path}}@{{.Version}} {{.Dir}}{{end}}{{end}}' .
  done | sort -u
)
copy_licenses() { # name source-dir
  local name=$1 dir=$2 found=0
  mkdir -p "$out/$name"
  for f in "$dir"/*; do
    [ -f "$f" ] || continue
    case "$(basename "$f" | tr '[:lower:]' '[:upper:]')" in
      LICENSE* | LICENCE* | COPYING* | NOTICE* | PATENTS*)
        cp "$f" "$out/$name/"
        chmod 644 "$out/$name/$(basename "$f")"
        found=1
        ;;
    esac
  done
  if [ "$found" -eq 0 ]; then
    echo "FATAL: no license file in $dir ($name)" >&2
    exit 1
  fi
}
while read -r mod dir; do
  [ -n "$mod" ] || continue
  copy_licenses "${mod%@*}" "$dir"
done <<<"$modules"
copy_licenses "go" "$(go env GOROOT)"

# The list of what was copied, with each module's version.
{
  echo "Modules linked into apivideo_exporter, with their versions; their license and"
  echo "notice files are in the directory of the same path."
  echo
  echo "go@$(go env GOVERSION | sed 's/^go//')"
  sed 's/ .*//' <<<"$modules"
} >"$out/MODULES.txt"
