#!/usr/bin/env bash
# Install Debian packages that are missing, without letting any of them start a service:
# a /usr/sbin/policy-rc.d that exits 101 guards the install (left alone if one is there,
# else made for it and removed after). Used by deploy/engine.sh and the deploy tests.
#   deploy/apt-install.sh PACKAGE...
set -euo pipefail

missing=()
for pkg in "$@"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

guard=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\n# No service starts by itself during this install.\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  guard=/usr/sbin/policy-rc.d
fi
trap '[ -z "$guard" ] || rm -f "$guard"' EXIT

echo "[apt] installing ${missing[*]}" >&2
# Another install may be under way (the test suite runs on two workers): wait for its lock.
wait_lock=(-o DPkg::Lock::Timeout=600)
apt-get "${wait_lock[@]}" update -qq
DEBIAN_FRONTEND=noninteractive apt-get "${wait_lock[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
