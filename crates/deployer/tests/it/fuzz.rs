//! Mutation fuzzing of what ferry reads before it writes anything: manifests (YAML and JSON)
//! and kustomizations. Each mutated input must be refused or accepted with a located answer,
//! never a panic, and in well under 2 s. A fixed number of cases keeps the time budget fixed.

use std::time::{Duration, Instant};

use proptest::prelude::*;

const MANIFEST: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: "shop/web:1.0"
          ports: [{containerPort: 8080}]
          env:
            - {name: MODE, value: "fast"}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
"#;

const KUSTOMIZATION: &str = r#"apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: shop
namePrefix: prod-
commonLabels: {team: a}
resources: [app.yaml]
images:
  - {name: shop/web, newTag: "2.0"}
configMapGenerator:
  - name: settings
    literals: [MODE=fast, LEVEL=2]
patches:
  - target: {kind: Deployment, name: web}
    patch: |-
      - op: replace
        path: /spec/replicas
        value: 3
"#;

/// Mutations that keep inputs YAML-shaped enough to reach deep into the parsers.
fn mutate(text: &str, edits: &[(u8, usize, u8)]) -> String {
    const PIECES: [&str; 16] = [
        "[", "]", "{", "}", ": ", "- ", "\n  ", "\"", "'", "&a ", "*a", "!!str ", "---\n", "#",
        "\u{0}", "<<: *a\n",
    ];
    let mut bytes = text.as_bytes().to_vec();
    for &(op, at, b) in edits {
        if bytes.is_empty() {
            bytes.push(b);
            continue;
        }
        let i = at % bytes.len();
        match op % 5 {
            0 => bytes[i] = b,
            1 => {
                bytes.remove(i);
            }
            2 => {
                let piece = PIECES[usize::from(b) % PIECES.len()].as_bytes();
                bytes.splice(i..i, piece.iter().copied());
            }
            3 => {
                let end = (i + usize::from(b) % 40).min(bytes.len());
                let copy: Vec<u8> = bytes[i..end].to_vec();
                bytes.splice(i..i, copy);
            }
            _ => bytes.truncate(i),
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

const BUDGET: Duration = Duration::from_secs(2);

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn mutated_manifests_are_answered_without_panics(
        edits in prop::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..12),
        json in any::<bool>(),
    ) {
        let (name, base) = if json {
            let docs: Vec<serde_json::Value> = serde_norway::Deserializer::from_str(MANIFEST)
                .map(|d| serde::Deserialize::deserialize(d).unwrap())
                .collect();
            ("app.json", serde_json::to_string_pretty(&docs[0]).unwrap())
        } else {
            ("app.yaml", MANIFEST.to_owned())
        };
        let text = mutate(&base, &edits);
        let started = Instant::now();
        if let Ok(manifests) = ferry_deployer::render::parse_documents(std::path::Path::new(name), &text) {
            let _ = ferry_deployer::validate::check_offline(&manifests);
            let _ = ferry_deployer::schema::problems(
                &manifests,
                ferry_deployer::apply::FieldValidation::Strict,
                &|_| Some(text.clone()),
                &[],
            );
        }
        prop_assert!(started.elapsed() < BUDGET, "{:?} for {text:?}", started.elapsed());
    }

    #[test]
    fn mutated_kustomizations_are_answered_without_panics(
        edits in prop::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..10),
    ) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("kustomization.yaml"), mutate(KUSTOMIZATION, &edits)).unwrap();
        std::fs::write(dir.path().join("app.yaml"), MANIFEST).unwrap();
        let started = Instant::now();
        let _ = ferry_deployer::render::render(dir.path());
        prop_assert!(started.elapsed() < BUDGET, "{:?}", started.elapsed());
    }
}
