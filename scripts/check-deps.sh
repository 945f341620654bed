#!/usr/bin/env bash
# The portability rule, checked: the deploy engine builds without any cloud SDK.
#   `cargo tree -p ferry-deployer --no-default-features` (dev-dependencies included) must hold no
#   aws-* crate at all (neither the AWS SDK nor aws-lc-rs: the engine's rustls uses ring) and no
#   azure* crate, and the crate must compile that way.
# Also checks that the eks/aks features are what bring those crates in, so the check cannot
# pass by accident (e.g. if the features stopped pulling the SDKs the rule would be vacuous).
# And the test-double rule: ferry-sim shares no code with ferry-deployer.
set -euo pipefail
cd "$(dirname "$0")/.."

cloud='^(aws-[a-z0-9_-]+|azure[a-z0-9_-]*) v'

tree=$(cargo tree -p ferry-deployer --no-default-features --prefix none --format '{p}')
if found=$(grep -E "$cloud" <<<"$tree" | sort -u) && [ -n "$found" ]; then
  echo "check-deps: ferry-deployer without default features depends on cloud crates:" >&2
  sed 's/^/  /' <<<"$found" >&2
  echo "put them behind a provider feature (eks, aks, ...)" >&2
  exit 1
fi
echo "check-deps: ferry-deployer --no-default-features: no aws-*/azure* crate ($(wc -l <<<"$tree") crates)"

cargo check -q -p ferry-deployer --no-default-features
echo "check-deps: ferry-deployer --no-default-features compiles"

with=$(cargo tree -p ferry-deployer --no-default-features --features eks -e normal --prefix none --format '{p}')
grep -qE '^aws-sdk-eks v' <<<"$with" || { echo "check-deps: feature eks no longer brings aws-sdk-eks: is the check still meaningful?" >&2; exit 1; }
echo "check-deps: feature eks brings the AWS SDK, as expected"

# ferry-sim is the deploy engine's test double: it must share no code with it, so neither
# ferry-sim nor anything it depends on (dev-dependencies included) may be ferry-deployer.
if cargo tree -p ferry-sim --all-features --prefix none --format '{p}' | grep -qE '^ferry-deployer v'; then
  echo "check-deps: ferry-sim depends on ferry-deployer; the test double must share no code with what it tests" >&2
  exit 1
fi
echo "check-deps: ferry-sim shares no code with ferry-deployer"
