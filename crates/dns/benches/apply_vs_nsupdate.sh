#!/usr/bin/env bash
# Pointing N names at a load balancer on knot: `ferry dns apply` against the by-hand way the
# seed teams script it (one nsupdate message, then dig until every name answers).
#
#   crates/dns/benches/apply_vs_nsupdate.sh [N]      (default N=200; needs scripts/servers.sh start)
#
# ferry's figure includes what nsupdate does not do: reading the zone (AXFR), planning with
# ownership (N ownership TXT records written too, in the same atomic UPDATE), and verifying
# every name against the authoritative server. Run it with a release build:
#   cargo build --release -p ferry-cli && FERRY=target/release/ferry crates/dns/benches/apply_vs_nsupdate.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
n="${1:-200}"
ferry="${FERRY:-$root/target/release/ferry}"
[ -x "$ferry" ] || { echo "build ferry first: cargo build --release -p ferry-cli" >&2; exit 1; }
set -a
# shellcheck disable=SC1091
. "$root/target/test-servers/env"
set +a
host=${FERRY_TEST_KNOT%:*}
port=${FERRY_TEST_KNOT#*:}
zone=$FERRY_TEST_KNOT_ZONE
key="hmac-sha256:$FERRY_TEST_KNOT_TSIG_KEY:$FERRY_TEST_KNOT_TSIG_SECRET"
run=$(date +%s)$$
ms() { echo $(( ($2 - $1) / 1000000 )); }

# --- ferry -------------------------------------------------------------------------------
dir=$(mktemp -d)
records=$(for i in $(seq 1 "$n"); do printf '"f%s.b%s.%s",' "$i" "$run" "$zone"; done)
cat >"$dir/ferry.toml" <<TOML
[app]
name = "bench"
[env.bench.dns]
provider = "rfc2136"
zone = "$zone"
records = [${records%,}]
ttl = 60
target = "192.0.2.50"
[env.bench.dns.rfc2136]
server = "$FERRY_TEST_KNOT"
key_name = "$FERRY_TEST_KNOT_TSIG_KEY"
[env.bench.dns.verify]
interval = "100ms"
resolvers = []
TOML
t0=$(date +%s%N)
FERRY_TSIG_SECRET=$FERRY_TEST_KNOT_TSIG_SECRET "$ferry" dns apply --env bench --config "$dir/ferry.toml" >/dev/null
t1=$(date +%s%N)
FERRY_TSIG_SECRET=$FERRY_TEST_KNOT_TSIG_SECRET "$ferry" dns apply --env bench --config "$dir/ferry.toml" >/dev/null
t2=$(date +%s%N)

# --- nsupdate + dig ----------------------------------------------------------------------
script="$dir/nsupdate.txt"
{
  echo "server $host $port"
  echo "zone $zone"
  for i in $(seq 1 "$n"); do echo "update add m$i.b$run.$zone 60 A 192.0.2.50"; done
  echo "send"
} >"$script"
t3=$(date +%s%N)
nsupdate -y "$key" "$script"
for i in $(seq 1 "$n"); do
  until [ "$(dig +short +time=1 +tries=1 -p "$port" "@$host" "m$i.b$run.$zone" A)" = "192.0.2.50" ]; do sleep 0.1; done
done
t4=$(date +%s%N)
rm -rf "$dir"

echo "names: $n (knot $FERRY_TEST_KNOT, $(nproc) cores)"
printf '%-58s %8s ms\n' "ferry dns apply (AXFR, plan, UPDATE(s) with ${n} A + ${n} TXT, verify):" "$(ms "$t0" "$t1")"
printf '%-58s %8s ms\n' "ferry dns apply again (AXFR, plan: nothing to do, verify):" "$(ms "$t1" "$t2")"
printf '%-58s %8s ms\n' "nsupdate (1 UPDATE with ${n} A) + dig until each answers:" "$(ms "$t3" "$t4")"
