#!/usr/bin/env bash
# knot, an authoritative DNS server (Debian `knot`), for RFC 2136 dynamic updates signed with TSIG,
# plus `dig` (bind9-dnsutils) as the independent client the tests check answers with.
#   install: apt packages     start: 127.0.0.1:$FERRY_KNOT_PORT (5053), UDP and TCP
#
# Zones (each starts from a fresh zone file on every start; knot keeps no state between starts):
#   ferry.test            updatable with any of the three TSIG keys (hmac-sha256/384/512)
#   ferry-apex.test       the same, for tests that manage a zone apex
#   ferry-readonly.test   the keys may transfer but not update it (a zone the key cannot edit)
# Tests read FERRY_TEST_KNOT (host:port), FERRY_TEST_KNOT_ZONE, FERRY_TEST_KNOT_APEX_ZONE,
# FERRY_TEST_KNOT_READONLY_ZONE, and FERRY_TEST_KNOT_TSIG_{KEY,ALGORITHM,SECRET} (hmac-sha256),
# FERRY_TEST_KNOT_TSIG384_{KEY,SECRET}, FERRY_TEST_KNOT_TSIG512_{KEY,SECRET}.
# The secrets are throw-away test keys made at start; they are written to the servers' env file
# and knot's config, both 0600.
# Knot's state is shared by every test process: tests use unique record names, not resets.
set -euo pipefail
name=knot
port="${FERRY_KNOT_PORT:-5053}"
dir="${FERRY_SERVERS_DIR:?run through scripts/servers.sh}/$name"
pidfile="$dir/$name.pid"
zones=(ferry.test ferry-apex.test ferry-readonly.test)

secret() { head -c 32 /dev/urandom | base64; }

write_zone() {
  local zone=$1
  cat >"$dir/zones/$zone.zone" <<EOF
\$ORIGIN $zone.
\$TTL 300
@   SOA ns1.$zone. hostmaster.$zone. 1 3600 600 86400 60
@   NS  ns1.$zone.
ns1 A   127.0.0.1
EOF
}

case "$1" in
  install)
    if ! command -v knotd >/dev/null || ! command -v dig >/dev/null; then
      apt-get install -y -qq --no-install-recommends knot bind9-dnsutils >/dev/null
    fi
    ;;
  start)
    command -v knotd >/dev/null || { echo "knot is not installed: scripts/servers.sh install" >&2; exit 1; }
    mkdir -p "$dir"
    if [ -e "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      # Already running: reuse its keys.
      cat "$dir/env" >>"$FERRY_SERVERS_ENV"
      exit 0
    fi
    rm -rf "$dir/zones" "$dir/db" "$dir/run"
    mkdir -p "$dir/zones" "$dir/db" "$dir/run"
    umask 077
    s256=$(secret); s384=$(secret); s512=$(secret)
    for z in "${zones[@]}"; do write_zone "$z"; done
    cat >"$dir/knot.conf" <<EOF
server:
    listen: 127.0.0.1@$port
    rundir: "$dir/run"
    pidfile: "$dir/run/knot.pid"
log:
  - target: "$dir/knot.log"
    any: info
database:
    storage: "$dir/db"
key:
  - id: ferry-test-key
    algorithm: hmac-sha256
    secret: $s256
  - id: ferry-test-key-384
    algorithm: hmac-sha384
    secret: $s384
  - id: ferry-test-key-512
    algorithm: hmac-sha512
    secret: $s512
acl:
  - id: update
    key: [ferry-test-key, ferry-test-key-384, ferry-test-key-512]
    action: [update, transfer]
  - id: transfer-only
    key: [ferry-test-key, ferry-test-key-384, ferry-test-key-512]
    action: transfer
template:
  - id: default
    storage: "$dir/zones"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: changes
    semantic-checks: on
zone:
  - domain: ferry.test
    acl: update
  - domain: ferry-apex.test
    acl: update
  - domain: ferry-readonly.test
    acl: transfer-only
EOF
    cat >"$dir/env" <<EOF
FERRY_TEST_KNOT=127.0.0.1:$port
FERRY_TEST_KNOT_ZONE=ferry.test
FERRY_TEST_KNOT_APEX_ZONE=ferry-apex.test
FERRY_TEST_KNOT_READONLY_ZONE=ferry-readonly.test
FERRY_TEST_KNOT_TSIG_KEY=ferry-test-key
FERRY_TEST_KNOT_TSIG_ALGORITHM=hmac-sha256
FERRY_TEST_KNOT_TSIG_SECRET=$s256
FERRY_TEST_KNOT_TSIG384_KEY=ferry-test-key-384
FERRY_TEST_KNOT_TSIG384_SECRET=$s384
FERRY_TEST_KNOT_TSIG512_KEY=ferry-test-key-512
FERRY_TEST_KNOT_TSIG512_SECRET=$s512
EOF
    knotd -c "$dir/knot.conf" -d
    for _ in $(seq 1 50); do
      [ -s "$dir/run/knot.pid" ] && break
      sleep 0.1
    done
    cp "$dir/run/knot.pid" "$pidfile" 2>/dev/null || { echo "knot did not start; see $dir/knot.log" >&2; exit 1; }
    for _ in $(seq 1 50); do
      dig +short +time=1 +tries=1 -p "$port" @127.0.0.1 ferry.test SOA >/dev/null 2>&1 && break
      sleep 0.1
    done
    dig +short +time=1 +tries=1 -p "$port" @127.0.0.1 ferry.test SOA | grep -q hostmaster \
      || { echo "knot does not answer for ferry.test; see $dir/knot.log" >&2; exit 1; }
    cat "$dir/env" >>"$FERRY_SERVERS_ENV"
    ;;
  stop)
    if [ -e "$pidfile" ]; then kill "$(cat "$pidfile")" 2>/dev/null || true; rm -f "$pidfile"; fi
    ;;
  *) echo "usage: $0 install|start|stop" >&2; exit 2 ;;
esac
