#!/usr/bin/env bash
# The AWS CLI (PyPI awscli, in its own venv): the independent implementation ferry's EKS
# tokens are checked against (`aws eks get-token` with the same credentials and signing time).
#   install: venv under /opt/ferry-test/awscli     start: FERRY_TEST_AWS_CLI=<path to aws>
# Nothing runs: `start` only records where the binary is.
set -euo pipefail
venv=/opt/ferry-test/awscli

case "$1" in
  install)
    if [ ! -x "$venv/bin/aws" ]; then
      python3 -m venv "$venv"
      "$venv/bin/pip" install -q --disable-pip-version-check 'awscli==1.*'
    fi
    ;;
  start)
    bin="$venv/bin/aws"
    [ -x "$bin" ] || bin=$(command -v aws || true)
    [ -n "$bin" ] || { echo "the AWS CLI is not installed: scripts/servers.sh install" >&2; exit 1; }
    echo "FERRY_TEST_AWS_CLI=$bin" >>"${FERRY_SERVERS_ENV:?run through scripts/servers.sh}"
    ;;
  stop) ;;
  *) echo "usage: $0 install|start|stop" >&2; exit 2 ;;
esac
