#!/usr/bin/env bash
# Benchmark: the kubectl exec credential plugin, ferry vs the AWS CLI.
#
# kubectl runs the plugin of an EKS kubeconfig whenever its cached token expires (and on every
# invocation in a fresh CI job), so its start-up and minting time is latency on every kubectl
# call. This runs `ferry auth token --env bench` (EKS, static keys: no network, the token is
# minted in-process) and `aws eks get-token` (the plugin `aws eks update-kubeconfig` writes)
# with the same credentials, N times each, and prints wall time and peak memory per run.
#
#   crates/auth/benches/exec-plugin.sh [N]       (default N=30; builds ferry in release mode)
# Needs the AWS CLI: scripts/servers.sh install (FERRY_TEST_AWS_CLI) or `aws` on PATH.
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
n="${1:-30}"
cd "$root"

aws_bin="${FERRY_TEST_AWS_CLI:-}"
if [ -z "$aws_bin" ] && [ -f target/test-servers/env ]; then
  aws_bin=$(sed -n 's/^FERRY_TEST_AWS_CLI=//p' target/test-servers/env)
fi
aws_bin="${aws_bin:-$(command -v aws || true)}"
[ -x "$aws_bin" ] || { echo "the AWS CLI is not installed: scripts/servers.sh install" >&2; exit 1; }

cargo build -q --release -p ferry-cli
ferry="$root/target/release/ferry"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat >"$work/ferry.toml" <<'TOML'
[app]
name = "bench"

[env.bench.cluster]
provider = "eks"
cluster = "bench-cluster"
region = "eu-west-1"

[env.bench.auth.aws]
credentials = "static"
TOML

export AWS_ACCESS_KEY_ID=AKIABENCHMARKEXAMPLE
export AWS_SECRET_ACCESS_KEY=benchmarkSecretKeyNotARealOne0123456789a
export AWS_CONFIG_FILE="$work/none" AWS_SHARED_CREDENTIALS_FILE="$work/none"
export AWS_STS_REGIONAL_ENDPOINTS=regional NO_COLOR=1

# One run of a command: "seconds maxrss_kb"; fails if the command fails or prints no token.
one() {
  local out
  out=$(/usr/bin/time -f '%e %M' -o "$work/time" "$@" 2>/dev/null) || { echo "failed: $*" >&2; exit 1; }
  grep -q '"token": *"k8s-aws-v1\.' <<<"$out" || { echo "no token from: $*" >&2; exit 1; }
  cat "$work/time"
}

stats() { # label, file of "secs kb" lines
  sort -n -k1 "$2" | awk -v label="$1" '
    { t[NR] = $1; sum += $1; if ($2 > rss) rss = $2 }
    END {
      p95 = t[int(NR * 0.95 + 0.999)]; if (p95 == "") p95 = t[NR]
      printf "%-28s runs %3d  mean %6.0f ms  median %6.0f ms  p95 %6.0f ms  peak RSS %6.1f MiB\n",
        label, NR, sum / NR * 1000, t[int((NR + 1) / 2)] * 1000, p95 * 1000, rss / 1024
    }'
}

: >"$work/ferry.times"; : >"$work/aws.times"
for _ in $(seq 1 "$n"); do
  one "$ferry" auth token --env bench --config "$work/ferry.toml" >>"$work/ferry.times"
  one "$aws_bin" eks get-token --cluster-name bench-cluster --region eu-west-1 >>"$work/aws.times"
done

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/ {print $2}') GiB; $("$aws_bin" --version 2>&1 | cut -d' ' -f1-2)"
stats "ferry auth token (release)" "$work/ferry.times"
stats "aws eks get-token" "$work/aws.times"
