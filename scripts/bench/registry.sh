#!/usr/bin/env bash
# Benchmark: ferry image push/copy against `skopeo copy`, same machine, same registry, same run.
#
#   scripts/bench/registry.sh [ROUNDS]      (default 3; needs `scripts/servers.sh start`)
#
# Per round, generates a fresh ~200 MB OCI image layout (7 gzip layers: 100, 40, 40 and 4 x 5 MB
# of random data, which does not compress, as real binaries mostly do not), then each tool into
# a fresh repository:
#   push      the layout into an empty repository (every byte moves)
#   re-push   the same again (nothing should move)
#   copy      to another repository on the same registry (a mount: nothing should move)
#   x-copy    to another registry (noauth -> htpasswd: every byte moves, download + upload)
# The order ferry/skopeo alternates between rounds. It prints the median wall time and peak RSS
# of each, and exits 1 if ferry is slower than skopeo on any push or copy by more than 10 %.
# The ferry binary is target/release/ferry (built if missing). Figures go to README's
# Performance section with the machine they were measured on.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
rounds="${1:-3}"
env_file="$root/target/test-servers/env"
[ -e "$env_file" ] || { echo "start the test servers first: scripts/servers.sh start" >&2; exit 2; }
set -a; . "$env_file"; set +a
noauth="$FERRY_TEST_REGISTRY_NOAUTH"
other="$FERRY_TEST_REGISTRY_HTPASSWD"
creds="$FERRY_TEST_REGISTRY_USER:$FERRY_TEST_REGISTRY_PASSWORD"
ferry="${FERRY_BIN:-$root/target/release/ferry}"
[ -x "$ferry" ] || (cd "$root" && cargo build --release -p ferry-cli --all-features)
command -v skopeo >/dev/null || { echo "skopeo is not installed: scripts/servers.sh install" >&2; exit 2; }

work=$(mktemp -d /var/tmp/ferry-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
# A fresh image per round: skopeo remembers where it pushed each blob (its blob-info cache)
# and mounts from there next time, which would turn its later "pushes" into mounts.
gen_layout() {
python3 - "$1" <<'PY'
import gzip, hashlib, io, json, os, sys, tarfile
out = sys.argv[1]
blobs = os.path.join(out, "blobs", "sha256")
os.makedirs(blobs)
def put(data):
    d = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, d), "wb") as f:
        f.write(data)
    return "sha256:" + d, len(data)
layers, diff_ids = [], []
for i, mb in enumerate([100, 40, 40, 5, 5, 5, 5]):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as t:
        info = tarfile.TarInfo(f"layer{i}.bin")
        data = os.urandom(mb * 1000 * 1000)
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    tar = raw.getvalue()
    diff_ids.append("sha256:" + hashlib.sha256(tar).hexdigest())
    digest, size = put(gzip.compress(tar, compresslevel=1, mtime=0))
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest, "size": size})
config = json.dumps({"architecture": "amd64", "os": "linux",
                     "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
cd, cs = put(config)
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
    "layers": layers}).encode()
md, ms = put(manifest)
with open(os.path.join(out, "oci-layout"), "w") as f:
    json.dump({"imageLayoutVersion": "1.0.0"}, f)
with open(os.path.join(out, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": md, "size": ms, "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}, f)
print(f"{sum(l['size'] for l in layers) / 1e6:.0f} MB in {len(layers)} layers", file=sys.stderr)
PY
}

run_id=$(date +%s)
results="$work/results"
: >"$results"
# measure NAME TOOL COMMAND...: appends "NAME TOOL SECONDS MAXRSS_KB"
measure() {
  local name=$1 tool=$2; shift 2
  local t="$work/time"
  /usr/bin/time -f "%e %M" -o "$t" "$@" >"$work/out" 2>"$work/err" || {
    echo "$tool $name failed:" >&2; cat "$work/err" >&2; exit 1; }
  echo "$name $tool $(cat "$t")" >>"$results"
}
sk=(skopeo copy --quiet --src-tls-verify=false --dest-tls-verify=false)

for r in $(seq 1 "$rounds"); do
  layout="$work/layout-$r"
  echo "round $r/$rounds: generating a ~200 MB OCI layout ..." >&2
  gen_layout "$layout"
  f="bench/ferry-$run_id-$r"; s="bench/skopeo-$run_id-$r"
  order=(ferry skopeo); [ $((r % 2)) -eq 0 ] && order=(skopeo ferry)
  for tool in "${order[@]}"; do
    if [ "$tool" = ferry ]; then
      measure push ferry "$ferry" image push "oci:$layout:latest" "$noauth/$f:v1" --quiet
      measure re-push ferry "$ferry" image push "oci:$layout:latest" "$noauth/$f:v1" --quiet
      measure copy ferry "$ferry" image copy "$noauth/$f:v1" "$noauth/$f-copy:v1" --quiet
      measure x-copy ferry env FERRY_REGISTRY_USERNAME="$FERRY_TEST_REGISTRY_USER" FERRY_REGISTRY_PASSWORD="$FERRY_TEST_REGISTRY_PASSWORD" \
        "$ferry" image copy "$noauth/$f:v1" "$other/$f:v1" --quiet
    else
      measure push skopeo "${sk[@]}" "oci:$layout:latest" "docker://$noauth/$s:v1"
      measure re-push skopeo "${sk[@]}" "oci:$layout:latest" "docker://$noauth/$s:v1"
      measure copy skopeo "${sk[@]}" "docker://$noauth/$s:v1" "docker://$noauth/$s-copy:v1"
      measure x-copy skopeo "${sk[@]}" --dest-creds "$creds" "docker://$noauth/$s:v1" "docker://$other/$s:v1"
    fi
  done
  rm -rf "$layout"
  # Both tools pushed the same bytes: the digests must agree.
  fd=$("$ferry" image resolve "$noauth/$f:v1"); sd=$(skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$noauth/$s:v1")
  [ "$fd" = "$sd" ] || { echo "digest mismatch: ferry $fd, skopeo $sd" >&2; exit 1; }
done

cpu=$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
echo
echo "machine: $(nproc) cores ($cpu), $(free -g | awk '/Mem:/ {print $2}') GiB RAM, $(uname -sr); registry: docker-registry $(docker-registry --version | awk '{print $3}') on loopback, filesystem storage; skopeo $(skopeo --version | awk '{print $3}'); $rounds rounds, median"
python3 - "$results" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
data = {}
for name, tool, secs, rss in rows:
    data.setdefault((name, tool), []).append((float(secs), int(rss)))
slower = []
print(f"| {'operation':<8} | {'ferry s':>8} | {'skopeo s':>8} | {'ferry/skopeo':>12} | {'ferry RSS MB':>12} | {'skopeo RSS MB':>13} |")
print("|" + "|".join("-" * w for w in [10, 10, 10, 14, 14, 15]) + "|")
for name in ["push", "re-push", "copy", "x-copy"]:
    f = data[(name, "ferry")]; s = data[(name, "skopeo")]
    fs, ss = statistics.median(x[0] for x in f), statistics.median(x[0] for x in s)
    fr, sr = max(x[1] for x in f) / 1024, max(x[1] for x in s) / 1024
    ratio = fs / ss if ss > 0 else float("inf")
    print(f"| {name:<8} | {fs:>8.2f} | {ss:>8.2f} | {ratio:>12.2f} | {fr:>12.0f} | {sr:>13.0f} |")
    if fs > ss * 1.10 and fs - ss > 0.05:
        slower.append(name)
if slower:
    print(f"ferry is slower than skopeo at: {', '.join(slower)}")
    sys.exit(1)
print("ferry is not slower than skopeo at any operation")
PY
