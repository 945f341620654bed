//! Duplicate keys in request bodies, as the API server's strict decoding treats them:
//! `fieldValidation=Strict` refuses the request (400) and changes nothing, `Warn` (the default)
//! keeps the last value and says so in `Warning` headers, `Ignore` keeps the last value quietly.

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use crate::support::{Cluster, fast, text};

const CM: &str = "/api/v1/namespaces/default/configmaps";

struct Answer {
    code: u16,
    warnings: Vec<String>,
    body: Value,
}

async fn send(
    cluster: &Cluster,
    method: Method,
    path: &str,
    content_type: &str,
    body: &str,
) -> Answer {
    let response = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
        .request(method, format!("{}{path}", cluster.sim.url()))
        .header("content-type", content_type)
        .body(body.to_owned())
        .send()
        .await
        .expect("the server answers");
    let code = response.status().as_u16();
    let warnings = response
        .headers()
        .get_all("warning")
        .iter()
        .map(|v| {
            let v = v.to_str().unwrap();
            let quoted = v.strip_prefix("299 - ").expect("a 299 warning");
            serde_json::from_str::<String>(quoted).unwrap()
        })
        .collect();
    let body = response.json().await.expect("the answer is JSON");
    Answer {
        code,
        warnings,
        body,
    }
}

fn assert_refused(answer: &Answer, message: &str) {
    assert_eq!(answer.code, 400, "{}", answer.body);
    assert_eq!(answer.body["kind"], "Status", "{}", answer.body);
    assert_eq!(answer.body["reason"], "BadRequest", "{}", answer.body);
    assert_eq!(answer.body["message"], message);
}

async fn data(cluster: &Cluster, name: &str) -> Value {
    let got = send(
        cluster,
        Method::GET,
        &format!("{CM}/{name}"),
        "application/json",
        "",
    )
    .await;
    assert_eq!(got.code, 200, "{}", got.body);
    got.body["data"].clone()
}

const DUP_JSON: &str = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"NAME","labels":{"l":"1","l":"2"}},"data":{"a":"1","a":"2"},"dta":{}}"#;
const DUP_YAML: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: NAME\ndata:\n  a: \"1\"\n  b: \"1\"\n  a: \"2\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_and_update_bodies_with_duplicate_keys_follow_field_validation() {
    let cluster = Cluster::start(fast()).await;
    let json = |name: &str| DUP_JSON.replace("NAME", name);
    let yaml = |name: &str| DUP_YAML.replace("NAME", name);
    let cm_in = |v: &str| format!("{CM}?fieldValidation={v}");

    // Strict: refused, with every duplicate and unknown field named; nothing is created.
    let strict = send(
        &cluster,
        Method::POST,
        &cm_in("Strict"),
        "application/json",
        &json("s"),
    )
    .await;
    assert_refused(
        &strict,
        r#"ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: duplicate field "metadata.labels.l", duplicate field "data.a", unknown field "dta""#,
    );
    let gone = send(
        &cluster,
        Method::GET,
        &format!("{CM}/s"),
        "application/json",
        "",
    )
    .await;
    assert_eq!(gone.code, 404, "{}", gone.body);
    let strict = send(
        &cluster,
        Method::POST,
        &cm_in("Strict"),
        "application/yaml",
        &yaml("s"),
    )
    .await;
    assert_refused(
        &strict,
        "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: yaml: unmarshal errors:\n  line 8: key \"a\" already set in map",
    );

    // Warn, and the default: created with the last value, each problem in a Warning header.
    for (name, path) in [("w", cm_in("Warn")), ("d", CM.to_owned())] {
        let warn = send(
            &cluster,
            Method::POST,
            &path,
            "application/json",
            &json(name),
        )
        .await;
        assert_eq!(warn.code, 201, "{}", warn.body);
        assert_eq!(
            warn.warnings,
            [
                r#"duplicate field "metadata.labels.l""#,
                r#"duplicate field "data.a""#,
                r#"unknown field "dta""#
            ]
        );
        assert_eq!(warn.body["data"]["a"], "2");
        assert_eq!(warn.body["metadata"]["labels"]["l"], "2");
    }
    let warn = send(
        &cluster,
        Method::POST,
        &cm_in("Warn"),
        "application/yaml",
        &yaml("wy"),
    )
    .await;
    assert_eq!(warn.code, 201, "{}", warn.body);
    assert_eq!(warn.warnings, [r#"line 8: key "a" already set in map"#]);
    assert_eq!(data(&cluster, "wy").await["a"], "2");

    // Ignore: created with the last value, nothing said.
    let ignore = send(
        &cluster,
        Method::POST,
        &cm_in("Ignore"),
        "application/json",
        &json("i"),
    )
    .await;
    assert_eq!(ignore.code, 201, "{}", ignore.body);
    assert!(ignore.warnings.is_empty(), "{:?}", ignore.warnings);
    assert_eq!(ignore.body["data"]["a"], "2");

    // Update (PUT): the same rules; a refused update leaves the object as it was.
    let put = |v: &str| format!("{CM}/i?fieldValidation={v}");
    let body = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"i"},"data":{"a":"3","a":"4"}}"#;
    let strict = send(
        &cluster,
        Method::PUT,
        &put("Strict"),
        "application/json",
        body,
    )
    .await;
    assert_refused(
        &strict,
        r#"ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: duplicate field "data.a""#,
    );
    assert_eq!(data(&cluster, "i").await["a"], "2");
    let warn = send(
        &cluster,
        Method::PUT,
        &put("Warn"),
        "application/json",
        body,
    )
    .await;
    assert_eq!(warn.code, 200, "{}", warn.body);
    assert_eq!(warn.warnings, [r#"duplicate field "data.a""#]);
    assert_eq!(data(&cluster, "i").await["a"], "4");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_and_apply_bodies_with_duplicate_keys_follow_field_validation() {
    let cluster = Cluster::start(fast()).await;
    let created = send(
        &cluster,
        Method::POST,
        CM,
        "application/json",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"p"},"data":{"a":"0"}}"#,
    )
    .await;
    assert_eq!(created.code, 201, "{}", created.body);
    let at = |v: &str| format!("{CM}/p?fieldValidation={v}");
    let merge = r#"{"data":{"a":"1","a":"2"}}"#;

    for content_type in [
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
    ] {
        let before = data(&cluster, "p").await;
        let strict = send(&cluster, Method::PATCH, &at("Strict"), content_type, merge).await;
        assert_refused(
            &strict,
            r#"ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: duplicate field "data.a""#,
        );
        assert_eq!(data(&cluster, "p").await, before, "{content_type}");
        let merge = merge.replace('2', content_type.len().to_string().as_str());
        let ignore = send(&cluster, Method::PATCH, &at("Ignore"), content_type, &merge).await;
        assert_eq!(ignore.code, 200, "{}", ignore.body);
        assert!(ignore.warnings.is_empty(), "{:?}", ignore.warnings);
        assert_eq!(ignore.body["data"]["a"], content_type.len().to_string());
    }
    let warn = send(
        &cluster,
        Method::PATCH,
        &at("Warn"),
        "application/merge-patch+json",
        r#"{"data":{"a":"3","a":"4"}}"#,
    )
    .await;
    assert_eq!(warn.code, 200, "{}", warn.body);
    assert_eq!(warn.warnings, [r#"duplicate field "data.a""#]);
    assert_eq!(warn.body["data"]["a"], "4");

    // A JSON patch: duplicates in its operations are named by operation.
    let ops = r#"[{"op":"replace","path":"/data/a","path":"/data/a","value":"5"}]"#;
    let strict = send(
        &cluster,
        Method::PATCH,
        &at("Strict"),
        "application/json-patch+json",
        ops,
    )
    .await;
    assert_refused(
        &strict,
        r#"ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: json patch duplicate field "[0].path""#,
    );
    let warn = send(
        &cluster,
        Method::PATCH,
        &at("Warn"),
        "application/json-patch+json",
        ops,
    )
    .await;
    assert_eq!(warn.code, 200, "{}", warn.body);
    assert_eq!(warn.warnings, [r#"json patch duplicate field "[0].path""#]);
    assert_eq!(warn.body["data"]["a"], "5");

    // Server-side apply reads its body as YAML, JSON included: duplicates are named by line.
    let apply = |v: &str, name: &str| format!("{CM}/{name}?fieldManager=t&fieldValidation={v}");
    let yaml =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: NAME\ndata:\n  a: \"1\"\n  a: \"2\"\n";
    let json = "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\n\"metadata\":{\"name\":\"NAME\"},\n\"data\":{\"a\":\"1\",\n\"a\":\"2\"}}";
    for (body, line) in [(yaml, 7), (json, 4)] {
        let strict = send(
            &cluster,
            Method::PATCH,
            &apply("Strict", "ap"),
            "application/apply-patch+yaml",
            &body.replace("NAME", "ap"),
        )
        .await;
        assert_refused(
            &strict,
            &format!(
                "error strict decoding YAML: error converting YAML to JSON: yaml: unmarshal errors:\n  line {line}: key \"a\" already set in map"
            ),
        );
        let gone = send(
            &cluster,
            Method::GET,
            &format!("{CM}/ap"),
            "application/json",
            "",
        )
        .await;
        assert_eq!(gone.code, 404, "{}", gone.body);
        let name = format!("ap{line}");
        let warn = send(
            &cluster,
            Method::PATCH,
            &apply("Warn", &name),
            "application/apply-patch+yaml",
            &body.replace("NAME", &name),
        )
        .await;
        assert_eq!(warn.code, 201, "{}", warn.body);
        assert_eq!(
            warn.warnings,
            [format!("line {line}: key \"a\" already set in map")]
        );
        assert_eq!(warn.body["data"]["a"], "2");
    }
}

/// kubectl as the client. `kubectl apply -f` and `create -f` decode the file and send the object
/// they built, so a duplicate never reaches any server (the last value wins, as against a real
/// cluster); `kubectl create --raw` sends the file as it is, and kubectl shows the server's
/// error or warnings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_sees_duplicate_keys_refused_or_warned() {
    let cluster = Cluster::start(fast()).await;
    let dir = cluster.dir.path();
    let file = dir.join("dup.json");
    std::fs::write(
        &file,
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"raw"},"data":{"a":"1","a":"2"}}"#,
    )
    .unwrap();
    let file = file.to_str().unwrap();

    let out = cluster.kubectl(&[
        "create",
        "--raw",
        &format!("{CM}?fieldValidation=Strict"),
        "-f",
        file,
    ]);
    assert!(!out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains(r#"strict decoding error: duplicate field "data.a""#),
        "{said}"
    );
    let out = cluster.kubectl(&["get", "configmap", "raw"]);
    assert!(
        !out.status.success(),
        "the refused create made nothing: {}",
        text(&out)
    );

    let out = cluster.kubectl(&[
        "create",
        "--raw",
        &format!("{CM}?fieldValidation=Warn"),
        "-f",
        file,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains(r#"Warning: duplicate field "data.a""#),
        "{said}"
    );
    assert_eq!(
        cluster.kubectl_ok(&["get", "configmap", "raw", "-o", "jsonpath={.data.a}"]),
        "2"
    );

    let yaml = dir.join("dup.yaml");
    std::fs::write(
        &yaml,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\ndata:\n  a: \"1\"\n  a: \"2\"\n",
    )
    .unwrap();
    cluster.kubectl_ok(&["apply", "-f", yaml.to_str().unwrap()]);
    assert_eq!(
        cluster.kubectl_ok(&["get", "configmap", "applied", "-o", "jsonpath={.data.a}"]),
        "2"
    );
}
