#!/usr/bin/env bash
# moto, the AWS API emulator (STS, EKS, ECR, Route53), from PyPI in its own venv.
#   install: venv under /opt/ferry-test/moto     start: 127.0.0.1:$FERRY_MOTO_PORT (5010)
# Tests read FERRY_TEST_MOTO (the endpoint URL). moto's state is shared by every test process:
# tests use unique names instead of resetting it.
set -euo pipefail
name=moto
venv=/opt/ferry-test/moto
port="${FERRY_MOTO_PORT:-5010}"
dir="${FERRY_SERVERS_DIR:?run through scripts/servers.sh}/$name"
pidfile="$dir/$name.pid"

case "$1" in
  install)
    if [ ! -x "$venv/bin/moto_server" ]; then
      python3 -m venv "$venv"
      "$venv/bin/pip" install -q --disable-pip-version-check 'moto[server]==5.2.5'
    fi
    ;;
  start)
    mkdir -p "$dir"
    bin="$venv/bin/moto_server"
    [ -x "$bin" ] || bin=$(command -v moto_server || true)
    [ -n "$bin" ] || { echo "moto is not installed: scripts/servers.sh install" >&2; exit 1; }
    if [ -e "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then :; else
      "$bin" -H 127.0.0.1 -p "$port" >"$dir/moto.log" 2>&1 &
      echo $! >"$pidfile"
    fi
    for _ in $(seq 1 100); do
      curl -fsS -o /dev/null "http://127.0.0.1:$port/moto-api/" 2>/dev/null && break
      sleep 0.1
    done
    curl -fsS -o /dev/null "http://127.0.0.1:$port/moto-api/" || { echo "moto did not start; see $dir/moto.log" >&2; exit 1; }
    echo "FERRY_TEST_MOTO=http://127.0.0.1:$port" >>"$FERRY_SERVERS_ENV"
    ;;
  stop)
    if [ -e "$pidfile" ]; then kill "$(cat "$pidfile")" 2>/dev/null || true; rm -f "$pidfile"; fi
    ;;
  *) echo "usage: $0 install|start|stop" >&2; exit 2 ;;
esac
