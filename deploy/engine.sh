#!/usr/bin/env bash
# A container engine for the deploy test (tests/deploy/), on a Debian machine without
# systemd: Debian's docker.io, docker-compose and mmdebstrap installed with apt (no service
# starts by itself), and dockerd started by hand in the background.
#
#   deploy/engine.sh install          apt-get install what is missing (deploy/apt-install.sh)
#   deploy/engine.sh start STATE_DIR  start dockerd unless one answers; prints "started PID",
#                                     "running" (someone else's), or "unusable: WHY" (exit 3)
#   deploy/engine.sh stop PID         stop the dockerd this script started
set -euo pipefail

PACKAGES=(docker.io docker-compose mmdebstrap)
DOCKER=/usr/bin/docker  # Debian's client, the one that matches its dockerd

say() { echo "[engine] $*" >&2; }

install() {
  "$(dirname "$0")/apt-install.sh" "${PACKAGES[@]}"
}

start() {
  local state=$1
  mkdir -p "$state"
  if "$DOCKER" info >/dev/null 2>&1; then
    echo running
    return 0
  fi
  # Containers get the MTU of the host's way out (smaller than 1500 on some virtual machines).
  local dev mtu
  dev=$(ip -o route get 1.1.1.1 2>/dev/null | sed -n 's/.* dev \([^ ]*\).*/\1/p')
  mtu=$(cat "/sys/class/net/${dev:-eth0}/mtu" 2>/dev/null || echo 1500)
  say "starting dockerd (mtu $mtu), log in $state/dockerd.log"
  setsid dockerd --mtu "$mtu" --pidfile "$state/dockerd.pid" >"$state/dockerd.log" 2>&1 </dev/null &
  local pid=$!
  for _ in $(seq 1 120); do
    if "$DOCKER" info >/dev/null 2>&1; then
      echo "started $(cat "$state/dockerd.pid" 2>/dev/null || echo "$pid")"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "unusable: dockerd exited: $(grep -E 'level=(fatal|error)' "$state/dockerd.log" | tail -1 | cut -c1-300)"
      return 3
    fi
    sleep 0.5
  done
  kill "$pid" 2>/dev/null || true
  echo "unusable: dockerd did not answer within 60 s: $(tail -1 "$state/dockerd.log" | cut -c1-300)"
  return 3
}

stop() {
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.5
  done
  say "dockerd $pid did not stop within 30 s; killing it"
  kill -KILL "$pid" 2>/dev/null || true
}

case "${1:-}" in
  install) install ;;
  start) start "${2:?state directory}" ;;
  stop) stop "${2:?pid}" ;;
  *) echo "usage: $0 install | start STATE_DIR | stop PID" >&2; exit 2 ;;
esac
