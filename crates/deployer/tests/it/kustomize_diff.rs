//! Differential tests: ferry's built-in kustomize against `kubectl kustomize` (kustomize v5.5)
//! on the same fixtures; outputs must be equal up to key and document order.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize as _;
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kustomize")
}

fn kubectl() -> String {
    ferry_testkit::lookup("FERRY_TEST_KUBECTL").unwrap_or_else(|| "kubectl".to_owned())
}

fn sort_key(v: &Value) -> String {
    let s = |p: &str| {
        v.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    format!(
        "{}|{}|{}|{}",
        s("/apiVersion"),
        s("/kind"),
        s("/metadata/namespace"),
        s("/metadata/name")
    )
}

fn reference(dir: &Path) -> Vec<Value> {
    let out = Command::new(kubectl())
        .arg("kustomize")
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run kubectl (set FERRY_TEST_KUBECTL): {e}"));
    assert!(
        out.status.success(),
        "kubectl kustomize {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut docs: Vec<Value> = serde_norway::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect();
    docs.sort_by_key(sort_key);
    docs
}

fn ferry(dir: &Path) -> Vec<Value> {
    let mut docs: Vec<Value> = ferry_deployer::render::render(dir)
        .unwrap_or_else(|e| panic!("ferry cannot build {}: {e}", dir.display()))
        .into_iter()
        .map(|m| m.object)
        .collect();
    docs.sort_by_key(sort_key);
    docs
}

fn assert_same(rel: &str) {
    let dir = fixtures().join(rel);
    let want = reference(&dir);
    let got = ferry(&dir);
    let keys = |docs: &[Value]| docs.iter().map(sort_key).collect::<Vec<_>>();
    assert_eq!(keys(&got), keys(&want), "{rel}: different objects");
    for (g, w) in got.iter().zip(&want) {
        assert!(
            g == w,
            "{rel}: {} differs\n--- ferry\n{}\n--- kubectl kustomize\n{}",
            sort_key(w),
            serde_json::to_string_pretty(g).unwrap(),
            serde_json::to_string_pretty(w).unwrap()
        );
    }
}

#[test]
fn seed_003_base() {
    assert_same("platform/base");
}

#[test]
fn seed_003_dev_overlay() {
    assert_same("platform/overlays/dev");
}

#[test]
fn seed_003_staging_overlay() {
    assert_same("platform/overlays/staging");
}

#[test]
fn seed_003_prod_overlay() {
    assert_same("platform/overlays/prod");
}

#[test]
fn generators_labels_and_references_base() {
    assert_same("features/base");
}

#[test]
fn every_supported_field_overlay() {
    assert_same("features/overlay");
}
