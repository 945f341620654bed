#!/usr/bin/env bash
# The whole test suite, as CI runs it on a fresh machine (as root):
# install and start the local test servers, run every test, stop the servers.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/servers.sh install
scripts/servers.sh start
trap 'scripts/servers.sh stop' EXIT
set -a
# shellcheck disable=SC1091
. target/test-servers/env
set +a

# The portability rule: the deploy engine builds with no cloud SDK.
scripts/check-deps.sh
# Tests outside ferry-cli run the real binary (ferry_testkit::ferry_bin).
cargo build -p ferry-cli --all-features
cargo nextest run --workspace --all-features --no-fail-fast
cargo test --workspace --all-features --doc
