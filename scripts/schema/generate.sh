#!/usr/bin/env bash
# Regenerates crates/deployer/schema/required-fields-1.33.json from k8s-openapi's JSON schemas
# (its `schemars` feature): the required fields of the built-in kinds ferry checks offline, and
# the references needed to reach them. Run it when k8s-openapi's Kubernetes version changes
# (then rename the file and `schema::KUBERNETES_VERSION`). Not part of the workspace: building
# k8s-openapi with schemars costs minutes that no ferry build should pay.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/../../crates/deployer/schema/required-fields-1.33.json"
cargo run --quiet --release --manifest-path "$here/Cargo.toml" --target-dir "$here/target" \
  | python3 -c 'import json,sys; json.dump(json.load(sys.stdin), sys.stdout, indent=0, sort_keys=True)' > "$out"
echo "wrote $out"
