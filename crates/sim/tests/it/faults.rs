//! Fault injection: per-verb 500s, 429s with Retry-After, timeouts and dropped connections;
//! health, metrics and discovery are never faulted; faults change nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use ferry_sim::{FaultConfig, FaultRates, SimConfig};

use crate::support::{Cluster, fast};

fn faults(verb: &str, rates: FaultRates) -> SimConfig {
    SimConfig {
        faults: FaultConfig {
            per_verb: BTreeMap::from([(verb.to_owned(), rates)]),
            timeout_after: Duration::from_millis(300),
            retry_after_seconds: 7,
        },
        seed: Some(1),
        ..fast()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn faults_hit_the_verbs_they_name() {
    let cluster = Cluster::start(fast()).await;
    let base = cluster.sim.url();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let list = format!("{base}/api/v1/namespaces/default/configmaps");
    let create = |name: &str| {
        http.post(&list)
            .header("content-type", "application/json")
            .body(format!(
                r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}"}}}}"#
            ))
            .send()
    };

    let fault =
        |verb: &str, rates: FaultRates| cluster.sim.set_config(faults(verb, rates)).unwrap();
    let status_of = |url: String| {
        let request = http.get(url);
        async move { request.send().await.unwrap().status().as_u16() }
    };

    fault(
        "create",
        FaultRates {
            error_500: 1.0,
            ..FaultRates::default()
        },
    );
    let response = create("a").await.unwrap();
    assert_eq!(response.status().as_u16(), 500);
    let status: serde_json::Value = response.json().await.unwrap();
    assert_eq!(status["reason"], "InternalError");
    // other verbs and the observability endpoints are untouched
    for url in [
        list.clone(),
        format!("{base}/healthz"),
        format!("{base}/metrics"),
        format!("{base}/apis"),
    ] {
        assert_eq!(status_of(url.clone()).await, 200, "{url}");
    }

    fault(
        "*",
        FaultRates {
            throttle_429: 1.0,
            ..FaultRates::default()
        },
    );
    let response = create("b").await.unwrap();
    assert_eq!(response.status().as_u16(), 429);
    assert_eq!(response.headers()["retry-after"], "7");

    fault(
        "create",
        FaultRates {
            timeout: 1.0,
            ..FaultRates::default()
        },
    );
    let response = create("c").await.unwrap();
    assert_eq!(response.status().as_u16(), 504);

    fault(
        "create",
        FaultRates {
            drop: 1.0,
            ..FaultRates::default()
        },
    );
    let err = create("d").await.unwrap_err();
    assert!(
        err.is_request() || err.is_connect() || err.is_body(),
        "{err:?}"
    );

    // none of the faulted requests changed anything; with faults off, writes go through
    cluster.sim.set_config(fast()).unwrap();
    let names: serde_json::Value = http.get(&list).send().await.unwrap().json().await.unwrap();
    assert_eq!(names["items"].as_array().unwrap().len(), 1, "{names}");
    assert_eq!(create("e").await.unwrap().status().as_u16(), 201);

    // the request log records the faults
    let log = cluster.sim.request_log();
    let faults: Vec<Option<&str>> = log
        .iter()
        .filter(|r| r.verb == "create")
        .map(|r| r.fault.as_deref())
        .collect();
    assert_eq!(
        faults,
        [
            Some("error_500"),
            Some("throttle_429"),
            Some("timeout"),
            Some("drop"),
            None
        ]
    );
    let codes: Vec<u16> = log
        .iter()
        .filter(|r| r.verb == "create")
        .map(|r| r.code)
        .collect();
    assert_eq!(codes, [500, 429, 504, 0, 201]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn partial_rates_fault_some_requests() {
    let cluster = Cluster::start(faults(
        "list",
        FaultRates {
            error_500: 0.5,
            ..FaultRates::default()
        },
    ))
    .await;
    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/namespaces/default/configmaps", cluster.sim.url());
    let mut failed = 0;
    for _ in 0..100 {
        if http.get(&url).send().await.unwrap().status().as_u16() == 500 {
            failed += 1;
        }
    }
    assert!(
        (20..=80).contains(&failed),
        "{failed} of 100 failed at a rate of 0.5"
    );
}
