//! The bad-input corpus of `ferry deploy` (tests/fixtures/bad-deploy): every case must exit 3
//! with an error naming its file and object, and the cluster must see zero writes.

use super::deploy_support::Cluster;
use super::{code, root, stderr};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_release_is_refused_before_any_write() {
    let cluster = Cluster::start(20.0).await;
    let corpus = root().join("tests/fixtures/bad-deploy");
    let mut cases: Vec<_> = std::fs::read_dir(&corpus)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("ferry.toml").is_file())
        .collect();
    cases.sort();
    assert!(cases.len() >= 40, "the corpus has {} cases", cases.len());
    let before = cluster.sim.metrics().total_writes();
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let config = case.join("ferry.toml");
        let out = cluster
            .ferry(&[
                "deploy",
                "--config",
                config.to_str().unwrap(),
                "--env",
                "local",
                "--tag",
                "abc123",
            ])
            .await;
        let err = stderr(&out);
        if code(&out) != 3 {
            failures.push(format!("{name}: exit {} (want 3)\n{err}", code(&out)));
            continue;
        }
        let expect = std::fs::read_to_string(case.join("expect")).unwrap();
        for needle in expect.lines().filter(|l| !l.is_empty()) {
            if !err.contains(needle) {
                failures.push(format!("{name}: stderr lacks {needle:?}\n{err}"));
            }
        }
        let writes = cluster.sim.metrics().total_writes();
        if writes != before {
            failures.push(format!(
                "{name}: the cluster saw {} writes",
                writes - before
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}
