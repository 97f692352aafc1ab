#!/usr/bin/env bash
# Verifies the units of examples/systemd with systemd-analyze, as systemd
# would load them once installed: in a scratch root holding the units in
# /etc/systemd/system, the exporter BINARY in /usr/local/bin and the
# distribution's own units. Any message fails, since verify exits 0 on
# settings it ignores. Then checks the service's hardening: the directives
# the units promise, and an exposure of at most 2.0 in systemd-analyze
# security.
#   scripts/verify-systemd.sh BINARY
set -euo pipefail
binary=${1:?usage: $0 BINARY}
units=(apivideo_exporter.service apivideo_exporter.socket)

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/usr/local/bin" "$root/bin" "$root/etc/systemd/system" "$root/usr/lib/systemd"
cp "$binary" "$root/usr/local/bin/apivideo_exporter"
# ExecReload's /bin/kill (procps) is on every system that runs systemd, not
# necessarily on this one: verify only needs an executable there.
printf '#!/bin/sh\n' >"$root/bin/kill"
chmod 755 "$root/bin/kill"
cp -a /usr/lib/systemd/system "$root/usr/lib/systemd/"
ln -s usr/lib "$root/lib"
for u in "${units[@]}"; do cp "examples/systemd/$u" "$root/etc/systemd/system/"; done

out=$(systemd-analyze verify --man=no --root="$root" "${units[@]}" 2>&1) || { echo "$out" >&2; exit 1; }
if [ -n "$out" ]; then
  echo "FATAL: systemd-analyze verify:" >&2
  echo "$out" >&2
  exit 1
fi

for want in DynamicUser=yes ProtectSystem=strict NoNewPrivileges=yes \
  'LoadCredential=api-key:' '--apivideo.api-key-file=${CREDENTIALS_DIRECTORY}/api-key' --web.systemd-socket; do
  grep -qF -- "$want" examples/systemd/apivideo_exporter.service || { echo "FATAL: the service has no $want" >&2; exit 1; }
done
grep -q '^ListenStream=' examples/systemd/apivideo_exporter.socket || { echo "FATAL: the socket listens nowhere" >&2; exit 1; }

# 0 to 100 here, 0.0 to 10.0 in the report.
systemd-analyze security --offline=yes --root="$root" --threshold=20 apivideo_exporter.service | tail -1
echo "examples/systemd: ${units[*]} verified"
