#!/usr/bin/env bash
# Install, start and stop the real local servers ferry's tests use.
#
#   scripts/servers.sh install   apt-get update, then each server's packages (as root)
#   scripts/servers.sh start     start every server on 127.0.0.1; addresses go to target/test-servers/env
#   scripts/servers.sh stop      stop every server started by `start`
#   scripts/servers.sh status    list what runs
#
# Each server has its own script in scripts/servers/NAME.sh answering install|start|stop.
# A server's `start` appends KEY=VALUE lines to "$FERRY_SERVERS_ENV" and keeps its state and
# PID files under "$FERRY_SERVERS_DIR/NAME".
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
export FERRY_SERVERS_DIR="${FERRY_SERVERS_DIR:-$root/target/test-servers}"
export FERRY_SERVERS_ENV="$FERRY_SERVERS_DIR/env"
mkdir -p "$FERRY_SERVERS_DIR"

servers=()
for script in "$root"/scripts/servers/*.sh; do
  [ -e "$script" ] && servers+=("$script")
done

cmd="${1:-}"
case "$cmd" in
  install)
    if [ "$(id -u)" -ne 0 ]; then
      echo "scripts/servers.sh install needs root (apt-get)" >&2
      exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    for s in "${servers[@]}"; do bash "$s" install; done
    ;;
  start)
    rm -f "$FERRY_SERVERS_ENV" && (umask 077 && : > "$FERRY_SERVERS_ENV")
    for s in "${servers[@]}"; do bash "$s" start; done
    echo "test servers started; addresses in $FERRY_SERVERS_ENV (passwords and secrets masked here):"
    sed -E 's/^([A-Z0-9_]*(PASSWORD|SECRET)[A-Z0-9_]*)=.*/\1=***/; s/^/  /' "$FERRY_SERVERS_ENV"
    ;;
  stop)
    status=0
    for s in "${servers[@]}"; do bash "$s" stop || status=1; done
    exit $status
    ;;
  status)
    for pidfile in "$FERRY_SERVERS_DIR"/*/*.pid; do
      [ -e "$pidfile" ] || continue
      pid=$(cat "$pidfile")
      if kill -0 "$pid" 2>/dev/null; then state=running; else state=dead; fi
      echo "$(basename "$(dirname "$pidfile")")/$(basename "$pidfile" .pid): pid $pid $state"
    done
    ;;
  *)
    echo "usage: scripts/servers.sh install|start|stop|status" >&2
    exit 2
    ;;
esac
