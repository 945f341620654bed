//! Mutation fuzzing of request bodies: mutated objects sent as create, update, merge patch and
//! server-side apply get an answer (an object or a metav1.Status) in well under 2 s, never a
//! panic or a hung connection, and a refused request writes nothing. The mutations are seeded,
//! so a failure is reproduced by its case number.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Cluster, fast};

const DEPLOYMENT: &str = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","labels":{"app":"web"}},"spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"web","image":"shop/web:1.0","ports":[{"containerPort":8080}],"resources":{"requests":{"cpu":"100m","memory":"64Mi"}}}]}}}}"#;

/// A small deterministic generator (splitmix64).
struct Seeded(u64);

impl Seeded {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % (n.max(1) as u64)).unwrap_or(0)
    }
}

fn mutate(text: &str, rng: &mut Seeded) -> Vec<u8> {
    const PIECES: [&str; 12] = [
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"",
        "null",
        "-1",
        "1e999",
        "\"\\u0000\"",
        "{\"a\":",
    ];
    let mut bytes = text.as_bytes().to_vec();
    for _ in 0..1 + rng.below(6) {
        if bytes.is_empty() {
            break;
        }
        let i = rng.below(bytes.len());
        match rng.below(4) {
            0 => bytes[i] = u8::try_from(rng.below(256)).unwrap_or(b'x'),
            1 => {
                bytes.remove(i);
            }
            2 => {
                let p = PIECES[rng.below(PIECES.len())].as_bytes();
                bytes.splice(i..i, p.iter().copied());
            }
            _ => bytes.truncate(i),
        }
    }
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_request_bodies_are_answered_and_refused_ones_write_nothing() {
    let cluster = Cluster::start(fast()).await;
    let base = cluster.sim.url();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let collection = format!("{base}/apis/apps/v1/namespaces/default/deployments");
    // The object updates and patches are sent to.
    let created = client
        .post(&collection)
        .header("content-type", "application/json")
        .body(DEPLOYMENT)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);
    let mut rng = Seeded(0x5eed);
    for case in 0..400 {
        let body = mutate(DEPLOYMENT, &mut rng);
        let (method, url, content_type) = match case % 4 {
            0 => (
                reqwest::Method::POST,
                collection.clone(),
                "application/json",
            ),
            1 => (
                reqwest::Method::PUT,
                format!("{collection}/web"),
                "application/json",
            ),
            2 => (
                reqwest::Method::PATCH,
                format!("{collection}/web"),
                "application/merge-patch+json",
            ),
            _ => (
                reqwest::Method::PATCH,
                format!("{collection}/web?fieldManager=fuzz&force=true"),
                "application/apply-patch+yaml",
            ),
        };
        let before = cluster.sim.metrics().total_writes();
        let started = Instant::now();
        let answer = client
            .request(method.clone(), &url)
            .header("content-type", content_type)
            .body(body.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("case {case}: no answer: {e}"));
        let status = answer.status().as_u16();
        let value: Value = answer
            .json()
            .await
            .unwrap_or_else(|e| panic!("case {case} ({method} {status}): not JSON: {e}"));
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "case {case}: {:?}",
            started.elapsed()
        );
        if status >= 400 {
            assert_eq!(value["kind"], "Status", "case {case}: {value}");
            assert_eq!(
                cluster.sim.metrics().total_writes(),
                before,
                "case {case}: a refused request ({status}) wrote: {}",
                String::from_utf8_lossy(&body)
            );
        }
    }
    // Still healthy.
    let health = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
}
