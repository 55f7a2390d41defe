#!/usr/bin/env bash
# Stand-ins for the base images that docker-compose.yml and the Dockerfiles name, for a
# machine that reaches Debian's mirror and PyPI but no image registry. Each is a Debian
# bookworm root filesystem made by mmdebstrap from the mirror this machine's apt uses, with
# this machine's extra CA certificates and pip settings, imported under the real name:
#
#   debian:bookworm-slim  apt and ca-certificates (deploy/proxy/Dockerfile adds nginx)
#   python:3.11-slim      Debian's python3 (3.11) as a venv in /usr/local: python and pip on
#                         the PATH, packages in /usr/local/lib/python3.11/site-packages
#   redis:7               Debian's redis-server, started in /data
#
# An image is built only when its tag is missing, or was made from other host settings
# (a label holds their hash). Where a registry is reachable, skip this script: `docker
# compose build` pulls the real images. Usage: deploy/base-images.sh [--rebuild]
set -euo pipefail

DOCKER=${DOCKER:-/usr/bin/docker}
LABEL=org.realtime-server.host-settings
REBUILD=${1:-}

say() { echo "[base-images] $*" >&2; }

# The apt sources of this machine, read now (never written into the project).
SOURCES=()
for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  [ -s "$file" ] && SOURCES+=("$file")
done
[ ${#SOURCES[@]} -gt 0 ] || { say "no apt sources on this machine"; exit 1; }

# How apt reaches them: proxies and date checks, as apt-config resolves them here.
APTOPTS=()
while IFS= read -r line; do
  APTOPTS+=("--aptopt=$line")
done < <(apt-config dump | grep -E '^Acquire::(Check-Valid-Until|Check-Date|https?::Proxy|Retries) ' || true)

# Extra CA certificates (a proxy's, a private mirror's) and pip's global configuration.
CERTS=(/usr/local/share/ca-certificates/*.crt)
[ -e "${CERTS[0]}" ] || CERTS=()
PIP_CONF=/etc/pip.conf
[ -f "$PIP_CONF" ] || PIP_CONF=""

# What an image is made from: these settings and this script. A change rebuilds it.
HOST_HASH=$(cat "$0" "${SOURCES[@]}" "${CERTS[@]}" ${PIP_CONF:+"$PIP_CONF"} <(printf '%s\n' "${APTOPTS[@]}") | sha256sum | cut -c1-16)

# No manuals, documentation or translations, as in Debian's own slim images.
CUSTOMIZE=(
  --dpkgopt='path-exclude=/usr/share/man/*'
  --dpkgopt='path-exclude=/usr/share/locale/*'
  --dpkgopt='path-exclude=/usr/share/doc/*'
  --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --customize-hook='mkdir -p "$1/usr/local/share/ca-certificates"'
)
for cert in "${CERTS[@]}"; do
  CUSTOMIZE+=(--customize-hook="cp '$cert' \"\$1/usr/local/share/ca-certificates/\"")
done
CUSTOMIZE+=(--customize-hook='chroot "$1" update-ca-certificates >/dev/null 2>&1')
[ -z "$PIP_CONF" ] || CUSTOMIZE+=(--customize-hook="cp '$PIP_CONF' \"\$1/etc/pip.conf\"")
CUSTOMIZE+=(--customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin')

# build TAG PACKAGES [extra mmdebstrap options...] -- [docker import --change options...]
build() {
  local tag=$1 packages=$2
  shift 2
  local debootstrap_opts=() changes=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do debootstrap_opts+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  while [ $# -gt 0 ]; do changes+=(--change "$1"); shift; done

  local have
  have=$("$DOCKER" image inspect -f "{{ index .Config.Labels \"$LABEL\" }}" "$tag" 2>/dev/null || true)
  if [ "$have" = "$HOST_HASH" ] && [ "$REBUILD" != --rebuild ]; then
    say "$tag: cached"
    return 0
  fi
  say "$tag: mmdebstrap bookworm with ca-certificates${packages:+ $packages}, then docker import"
  local started=$SECONDS
  mmdebstrap --quiet --mode=root --variant=apt --format=tar \
    --include="ca-certificates${packages:+,$packages}" "${APTOPTS[@]}" "${CUSTOMIZE[@]}" "${debootstrap_opts[@]}" \
    bookworm - "${SOURCES[@]}" \
    | "$DOCKER" import "${changes[@]}" --change "LABEL $LABEL=$HOST_HASH" - "$tag" >/dev/null
  say "$tag: built in $((SECONDS - started)) s"
}

build debian:bookworm-slim "" -- \
  'ENV LANG=C.UTF-8' 'CMD ["bash"]'

build python:3.11-slim python3,python3-venv \
  --customize-hook='chroot "$1" python3 -m venv /usr/local' \
  --customize-hook='chroot "$1" /usr/local/bin/python -m pip --version >/dev/null' \
  -- 'ENV LANG=C.UTF-8' 'CMD ["python3"]'

build redis:7 redis-server \
  --customize-hook='mkdir -p "$1/data"' \
  -- 'WORKDIR /data' 'EXPOSE 6379' 'CMD ["redis-server"]'
