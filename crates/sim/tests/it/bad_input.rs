//! Bad input gets a metav1.Status with the right code and causes, never a panic or a hung
//! connection: every case is followed by a health check on the same server.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Cluster, fast, text};

async fn send(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let response = client
        .request(method, url)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("the server answers");
    let code = response.status().as_u16();
    let value: Value = response.json().await.expect("the answer is JSON");
    (code, value)
}

fn assert_status(case: &str, got: &(u16, Value), code: u16, reason: &str) {
    let (status, body) = got;
    assert_eq!(*status, code, "{case}: {body}");
    assert_eq!(body["kind"], "Status", "{case}: {body}");
    assert_eq!(body["apiVersion"], "v1", "{case}: {body}");
    assert_eq!(body["status"], "Failure", "{case}: {body}");
    assert_eq!(body["code"], code, "{case}: {body}");
    assert_eq!(body["reason"], reason, "{case}: {body}");
    assert!(
        !body["message"].as_str().unwrap_or("").is_empty(),
        "{case}: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_input_gets_a_status_never_a_hang() {
    let cluster = Cluster::start(fast()).await;
    let base = cluster.sim.url();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let post = |path: &str| format!("{base}{path}");
    let cm_path = "/api/v1/namespaces/default/configmaps";
    let deploy_path = "/apis/apps/v1/namespaces/default/deployments";
    use reqwest::Method;

    type Case<'a> = (&'a str, Method, String, &'a str, Vec<u8>, u16, &'a str);
    let cases: Vec<Case<'_>> = vec![
        ("malformed JSON", Method::POST, post(cm_path), "application/json", b"{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": {".to_vec(), 400, "BadRequest"),
        ("JSON that is not an object", Method::POST, post(cm_path), "application/json", b"[1, 2]".to_vec(), 400, "BadRequest"),
        ("malformed YAML", Method::POST, post(cm_path), "application/yaml", b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n".to_vec(), 400, "BadRequest"),
        ("empty body", Method::POST, post(cm_path), "application/json", Vec::new(), 400, "BadRequest"),
        ("unknown kind in the path", Method::POST, post("/apis/apps/v1/namespaces/default/widgets"), "application/json", br#"{"apiVersion":"apps/v1","kind":"Widget","metadata":{"name":"w"}}"#.to_vec(), 404, "NotFound"),
        ("unknown group version", Method::GET, post("/apis/apps/v9/namespaces/default/deployments"), "application/json", Vec::new(), 404, "NotFound"),
        ("kind that does not match the path", Method::POST, post(deploy_path), "application/json", br#"{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"x"}}"#.to_vec(), 400, "BadRequest"),
        ("wrong apiVersion in the body", Method::POST, post(deploy_path), "application/json", br#"{"apiVersion":"extensions/v1beta1","kind":"Deployment","metadata":{"name":"x"}}"#.to_vec(), 400, "BadRequest"),
        ("missing kind", Method::POST, post(cm_path), "application/json", br#"{"apiVersion":"v1","metadata":{"name":"x"}}"#.to_vec(), 400, "BadRequest"),
        ("wrong field type", Method::POST, post(deploy_path), "application/json", serde_json::to_vec(&json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"x"},"spec":{"replicas":"three","selector":{"matchLabels":{"a":"b"}},"template":{"metadata":{"labels":{"a":"b"}},"spec":{"containers":[{"name":"c","image":"i"}]}}}})).unwrap(), 400, "BadRequest"),
        ("unknown field under Strict", Method::POST, post(&format!("{cm_path}?fieldValidation=Strict")), "application/json", br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"dta":{"a":"b"}}"#.to_vec(), 400, "BadRequest"),
        ("name that violates DNS-1123", Method::POST, post(cm_path), "application/json", br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Bad_Name"}}"#.to_vec(), 422, "Invalid"),
        ("namespace in the path that does not exist", Method::POST, post("/api/v1/namespaces/nowhere/configmaps"), "application/json", br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}"#.to_vec(), 404, "NotFound"),
        ("unsupported patch type", Method::PATCH, post(&format!("{cm_path}/kube-root-ca.crt")), "text/plain", b"hello".to_vec(), 415, "UnsupportedMediaType"),
        ("apply without a field manager", Method::PATCH, post(&format!("{cm_path}/x")), "application/apply-patch+yaml", br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}"#.to_vec(), 400, "BadRequest"),
        ("label selector with an invalid key", Method::GET, post(&format!("{cm_path}?labelSelector=!!bad")), "application/json", Vec::new(), 400, "BadRequest"),
        ("label selector with an invalid value", Method::GET, post(&format!("{cm_path}?labelSelector=a%3Db%3Dc")), "application/json", Vec::new(), 400, "BadRequest"),
        ("field selector on an unsupported field", Method::GET, post("/api/v1/namespaces/default/pods?fieldSelector=bogus.field%3D1"), "application/json", Vec::new(), 400, "BadRequest"),
        ("field selector on a field of another type", Method::GET, post(&format!("{cm_path}?fieldSelector=status.phase%3DRunning&watch=1")), "application/json", Vec::new(), 400, "BadRequest"),
        ("oversized body", Method::POST, post(cm_path), "application/json", {
            let mut big = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"big"},"data":{"x":""#.to_vec();
            big.extend(std::iter::repeat_n(b'a', 4 * 1024 * 1024));
            big.extend_from_slice(br#""}}"#);
            big
        }, 413, "RequestEntityTooLarge"),
    ];
    for (case, method, url, content_type, body, code, reason) in cases {
        let got = send(&client, method, url, content_type, body).await;
        assert_status(case, &got, code, reason);
        let health = client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .expect("still serving");
        assert_eq!(health.status().as_u16(), 200, "{case}");
    }

    // an unknown resource under a namespace, or an unknown subresource, is an unknown path (not
    // a missing namespace or object)
    for path in [
        "/api/v1/namespaces/default/widgets",
        "/api/v1/namespaces/default/configmaps/kube-root-ca.crt/bogus",
    ] {
        let got = send(
            &client,
            Method::GET,
            post(path),
            "application/json",
            Vec::new(),
        )
        .await;
        assert_status(path, &got, 404, "NotFound");
        assert_eq!(
            got.1["message"], "the server could not find the requested resource",
            "{path}"
        );
    }

    // a DNS-1123 violation names the field and the rule
    let (_, invalid) = send(
        &client,
        Method::POST,
        post(cm_path),
        "application/json",
        br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Bad_Name"}}"#.to_vec(),
    )
    .await;
    assert_eq!(invalid["details"]["causes"][0]["field"], "metadata.name");
    assert_eq!(
        invalid["details"]["causes"][0]["reason"],
        "FieldValueInvalid"
    );
    assert!(
        invalid["message"].as_str().unwrap().contains("RFC 1123"),
        "{invalid}"
    );
    assert_eq!(invalid["details"]["kind"], "ConfigMap");

    // nothing bad was stored
    let list: Value = client
        .get(post(cm_path))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["kube-root-ca.crt"]);
}

/// kubectl relays the selector errors; the selectors kubectl itself sends still work.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kubectl_selectors_are_checked_as_a_cluster_checks_them() {
    let cluster = Cluster::start(fast()).await;
    let out = cluster.kubectl(&["get", "pods", "--field-selector", "bogus.field=1"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("field label not supported: bogus.field"),
        "{}",
        text(&out)
    );
    // kubectl prefixes "Unable to find ..." itself: the server's message is the bare cause
    assert_eq!(
        text(&out).matches("Unable to find").count(),
        1,
        "{}",
        text(&out)
    );
    let out = cluster.kubectl(&["get", "configmaps", "-l", "a=b=c"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("unable to parse requirement"),
        "{}",
        text(&out)
    );
    let ok = cluster.kubectl_ok(&[
        "get",
        "pods",
        "-A",
        "--field-selector",
        "status.phase!=Failed,spec.nodeName!=x",
        "-l",
        "app notin (x),!absent",
    ]);
    assert!(ok.is_empty(), "{ok}");
    let events = cluster.kubectl_ok(&[
        "get",
        "events",
        "-n",
        "default",
        "--field-selector",
        "involvedObject.kind=Pod,type=Warning",
    ]);
    assert!(events.is_empty(), "{events}");
}

/// kubectl's own answer to unknown kinds and versions, as against a real cluster: no
/// `--validate=false` advice, and nothing applied from the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kubectl_names_unknown_kinds_and_versions() {
    let cluster = Cluster::start(fast()).await;
    for (doc, expected) in [
        (
            "apiVersion: v1\nkind: Widget\nmetadata: {name: w}\n",
            r#"no matches for kind "Widget" in version "v1""#,
        ),
        (
            "apiVersion: apps/v2\nkind: Deployment\nmetadata: {name: w}\n",
            r#"no matches for kind "Deployment" in version "apps/v2""#,
        ),
    ] {
        let file = cluster.dir.path().join("unknown.yaml");
        std::fs::write(&file, doc).unwrap();
        for server_side in [false, true] {
            let mut args = vec!["apply", "-f", file.to_str().unwrap()];
            if server_side {
                args.push("--server-side");
            }
            let out = cluster.kubectl(&args);
            let text = text(&out);
            assert_eq!(out.status.code(), Some(1), "{args:?}: {text}");
            assert!(text.contains(expected), "{args:?}: {text}");
            assert!(!text.contains("validate=false"), "{args:?}: {text}");
        }
    }
}
