//! The Cloudflare provider against a wiremock server that answers as Cloudflare's API v4 does
//! (its documented request and response shapes): zones, paginated record lists, create, patch,
//! delete, the batch endpoint (one transaction: deletes, patches, puts, posts), error envelopes,
//! 401/403, and 429 with Retry-After.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use ferry_dns::cloudflare::CloudflareProvider;
use ferry_dns::{
    Change, ChangeSet, DnsError, DnsName, DnsProvider as _, RecordSet, RecordType, RetryPolicy,
};
use secrecy::SecretString;
use serde_json::{Value, json};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::conformance::{Expect, run};

pub(crate) const TOKEN: &str = "cf-test-token-3f9a";
const ZONE_ID: &str = "023e105f4ecef8ad9ca31a8372d0c353";

#[derive(Clone, Debug)]
struct Rec {
    id: String,
    name: String,
    rtype: String,
    content: String,
    ttl: u32,
    proxied: bool,
    comment: Option<String>,
}

impl Rec {
    fn json(&self) -> Value {
        let proxiable = matches!(self.rtype.as_str(), "A" | "AAAA" | "CNAME");
        json!({
            "id": self.id, "zone_id": ZONE_ID, "zone_name": "example.com", "name": self.name,
            "type": self.rtype, "content": self.content, "proxiable": proxiable,
            "proxied": self.proxied, "ttl": self.ttl, "locked": false, "comment": self.comment,
            "tags": [], "meta": {"auto_added": false, "source": "primary"},
            "created_on": "2026-01-01T00:00:00Z", "modified_on": "2026-01-01T00:00:00Z"
        })
    }
}

#[derive(Default, Debug)]
struct State {
    records: Vec<Rec>,
    next_id: u64,
    /// Answer 429 to this many requests before serving.
    throttle: u32,
    /// Every request, as "METHOD path?query".
    log: Vec<String>,
    /// Batch bodies received.
    batches: Vec<Value>,
}

/// A fake Cloudflare API with state.
#[derive(Clone, Default)]
pub(crate) struct FakeCloudflare(Arc<Mutex<State>>);

fn envelope(result: Value) -> Value {
    json!({"success": true, "errors": [], "messages": [], "result": result})
}

fn error(status: u16, code: i64, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "success": false, "errors": [{"code": code, "message": message}], "messages": [], "result": null
    }))
}

impl State {
    fn new_id(&mut self) -> String {
        self.next_id += 1;
        format!("{:032x}", self.next_id)
    }

    /// Cloudflare's rules for a new or changed record.
    fn check(&self, rec: &Rec, ignore: Option<&str>) -> Result<(), Box<ResponseTemplate>> {
        let others = self
            .records
            .iter()
            .filter(|r| Some(r.id.as_str()) != ignore && r.name == rec.name);
        for r in others {
            if (r.rtype == "CNAME") != (rec.rtype == "CNAME")
                && matches!(rec.rtype.as_str(), "A" | "AAAA" | "CNAME")
                && matches!(r.rtype.as_str(), "A" | "AAAA" | "CNAME")
            {
                return Err(Box::new(error(
                    400,
                    81053,
                    "An A, AAAA, or CNAME record with that host already exists.",
                )));
            }
            if r.rtype == "CNAME" && rec.rtype == "CNAME" {
                return Err(Box::new(error(
                    400,
                    81053,
                    "An A, AAAA, or CNAME record with that host already exists.",
                )));
            }
            if r.rtype == rec.rtype && r.content == rec.content {
                return Err(Box::new(error(
                    400,
                    81058,
                    "A record with the same settings already exists.",
                )));
            }
        }
        if rec.rtype == "A" && rec.content.parse::<std::net::Ipv4Addr>().is_err() {
            return Err(Box::new(error(
                400,
                9005,
                "Content for A record must be a valid IPv4 address.",
            )));
        }
        if rec.ttl != 1 && !(60..=86_400).contains(&rec.ttl) {
            return Err(Box::new(error(
                400,
                9021,
                "Invalid TTL. Must be between 60 and 86400 seconds, or 1 for Automatic.",
            )));
        }
        Ok(())
    }

    fn record_from(&mut self, body: &Value, id: Option<String>, base: Option<&Rec>) -> Rec {
        let get = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
        Rec {
            id: id.unwrap_or_else(|| self.new_id()),
            name: get("name")
                .or_else(|| base.map(|b| b.name.clone()))
                .unwrap_or_default()
                .to_ascii_lowercase(),
            rtype: get("type")
                .or_else(|| base.map(|b| b.rtype.clone()))
                .unwrap_or_default(),
            content: get("content")
                .or_else(|| base.map(|b| b.content.clone()))
                .unwrap_or_default(),
            ttl: body
                .get("ttl")
                .and_then(Value::as_u64)
                .map(|t| t as u32)
                .or(base.map(|b| b.ttl))
                .unwrap_or(1),
            proxied: body
                .get("proxied")
                .and_then(Value::as_bool)
                .or(base.map(|b| b.proxied))
                .unwrap_or(false),
            comment: get("comment").or_else(|| base.and_then(|b| b.comment.clone())),
        }
    }

    fn post(&mut self, body: &Value) -> Result<Rec, Box<ResponseTemplate>> {
        let rec = self.record_from(body, None, None);
        self.check(&rec, None)?;
        self.records.push(rec.clone());
        Ok(rec)
    }

    fn patch(&mut self, id: &str, body: &Value) -> Result<Rec, Box<ResponseTemplate>> {
        let Some(pos) = self.records.iter().position(|r| r.id == id) else {
            return Err(Box::new(error(404, 81044, "Record does not exist.")));
        };
        let base = self.records[pos].clone();
        let rec = self.record_from(body, Some(id.to_owned()), Some(&base));
        self.check(&rec, Some(id))?;
        self.records[pos] = rec.clone();
        Ok(rec)
    }

    fn delete(&mut self, id: &str) -> Result<Value, Box<ResponseTemplate>> {
        let Some(pos) = self.records.iter().position(|r| r.id == id) else {
            return Err(Box::new(error(404, 81044, "Record does not exist.")));
        };
        self.records.remove(pos);
        Ok(json!({"id": id}))
    }
}

impl Respond for FakeCloudflare {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut st = self.0.lock().unwrap();
        let path = req.url.path().trim_start_matches("/client/v4").to_owned();
        st.log.push(format!(
            "{} {}{}",
            req.method,
            path,
            req.url.query().map(|q| format!("?{q}")).unwrap_or_default()
        ));
        let auth = req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        if auth != Some(&format!("Bearer {TOKEN}")) {
            return error(403, 9109, "Invalid access token");
        }
        if st.throttle > 0 {
            st.throttle -= 1;
            return ResponseTemplate::new(429)
                .insert_header("Retry-After", "1")
                .set_body_json(json!({"success": false, "errors": [{"code": 971, "message": "Please wait and consider throttling your request speed"}], "messages": [], "result": null}));
        }
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let query: BTreeMap<String, String> = req
            .url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        let method = req.method.as_str();
        match (method, segs.as_slice()) {
            ("GET", ["zones"]) => {
                let zones = if query.get("name").map(String::as_str) == Some("example.com") {
                    json!([{"id": ZONE_ID, "name": "example.com", "status": "active",
                            "name_servers": ["ns1.cf-test.invalid", "ns2.cf-test.invalid"]}])
                } else {
                    json!([])
                };
                ResponseTemplate::new(200).set_body_json(json!({
                    "success": true, "errors": [], "messages": [], "result": zones,
                    "result_info": {"page": 1, "per_page": 20, "count": zones.as_array().map_or(0, Vec::len), "total_count": zones.as_array().map_or(0, Vec::len), "total_pages": 1}
                }))
            }
            ("GET", ["zones", id]) if *id == ZONE_ID => {
                ResponseTemplate::new(200).set_body_json(envelope(json!({
                    "id": ZONE_ID, "name": "example.com", "name_servers": ["ns1.cf-test.invalid"]
                })))
            }
            ("GET", ["zones", _]) => error(
                404,
                7003,
                "Could not route to /zones/..., perhaps your object identifier is invalid?",
            ),
            (_, ["zones", id, ..]) if *id != ZONE_ID => error(403, 10000, "Authentication error"),
            ("GET", ["zones", _, "dns_records"]) => {
                let per_page: usize = query
                    .get("per_page")
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(100);
                let page: usize = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
                let total = st.records.len();
                let pages = total.div_ceil(per_page).max(1);
                let items: Vec<Value> = st
                    .records
                    .iter()
                    .skip((page - 1) * per_page)
                    .take(per_page)
                    .map(Rec::json)
                    .collect();
                ResponseTemplate::new(200).set_body_json(json!({
                    "success": true, "errors": [], "messages": [], "result": items,
                    "result_info": {"page": page, "per_page": per_page, "count": items.len(), "total_count": total, "total_pages": pages}
                }))
            }
            ("POST", ["zones", _, "dns_records"]) => match st.post(&body) {
                Ok(r) => ResponseTemplate::new(200).set_body_json(envelope(r.json())),
                Err(e) => *e,
            },
            ("PATCH", ["zones", _, "dns_records", id]) => match st.patch(id, &body) {
                Ok(r) => ResponseTemplate::new(200).set_body_json(envelope(r.json())),
                Err(e) => *e,
            },
            ("DELETE", ["zones", _, "dns_records", id]) => match st.delete(id) {
                Ok(v) => ResponseTemplate::new(200).set_body_json(envelope(v)),
                Err(e) => *e,
            },
            ("POST", ["zones", _, "dns_records", "batch"]) => {
                st.batches.push(body.clone());
                // One transaction: work on a copy, keep it only if everything succeeds.
                let saved = st.records.clone();
                let list = |k: &str| {
                    body.get(k)
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default()
                };
                let mut result = json!({"deletes": [], "patches": [], "puts": [], "posts": []});
                let mut run = || -> Result<(), Box<ResponseTemplate>> {
                    for d in list("deletes") {
                        let v = st.delete(d.get("id").and_then(Value::as_str).unwrap_or(""))?;
                        result["deletes"].as_array_mut().unwrap().push(v);
                    }
                    for p in list("patches") {
                        let r = st.patch(p.get("id").and_then(Value::as_str).unwrap_or(""), &p)?;
                        result["patches"].as_array_mut().unwrap().push(r.json());
                    }
                    for p in list("posts") {
                        let r = st.post(&p)?;
                        result["posts"].as_array_mut().unwrap().push(r.json());
                    }
                    Ok(())
                };
                match run() {
                    Ok(()) => ResponseTemplate::new(200).set_body_json(envelope(result)),
                    Err(e) => {
                        st.records = saved;
                        *e
                    }
                }
            }
            _ => error(400, 7000, "No route for that URI"),
        }
    }
}

pub(crate) async fn fake() -> (MockServer, FakeCloudflare) {
    let server = MockServer::start().await;
    let fake = FakeCloudflare::default();
    Mock::given(any())
        .respond_with(fake.clone())
        .mount(&server)
        .await;
    (server, fake)
}

fn provider(server: &MockServer, token: &str) -> CloudflareProvider {
    CloudflareProvider::new(
        DnsName::parse("example.com").unwrap(),
        SecretString::from(token.to_owned()),
    )
    .with_api_url(&format!("{}/client/v4", server.uri()))
    .unwrap()
    .with_retry(RetryPolicy::fast())
    .with_page_size(3)
}

#[tokio::test]
async fn cloudflare_with_batches_passes_the_conformance_suite() {
    let (server, fake) = fake().await;
    run(
        Arc::new(provider(&server, TOKEN)),
        "batch",
        Expect {
            checks_preconditions: true,
        },
    )
    .await;
    let st = fake.0.lock().unwrap();
    assert!(
        !st.batches.is_empty(),
        "changes went through the batch endpoint"
    );
    assert!(
        st.log
            .iter()
            .any(|l| l.contains("dns_records?page=2&per_page=3")),
        "listing followed the pages: {:?}",
        st.log
    );
    assert!(
        st.records
            .iter()
            .all(|r| r.comment.as_deref() == Some("managed by ferry"))
    );
}

#[tokio::test]
async fn cloudflare_without_batches_passes_the_conformance_suite() {
    let (server, fake) = fake().await;
    run(
        Arc::new(provider(&server, TOKEN).with_batch(false)),
        "single",
        Expect {
            checks_preconditions: true,
        },
    )
    .await;
    assert!(fake.0.lock().unwrap().batches.is_empty());
}

fn set(n: &str, t: RecordType, values: &[&str]) -> RecordSet {
    RecordSet::new(DnsName::parse(n).unwrap(), t, 300, values.iter().copied()).unwrap()
}

#[tokio::test]
async fn foreign_record_types_are_listed_not_refused() {
    // cloudflare-rs#219: a CAA record made the crate's listing fail.
    let (server, fake) = fake().await;
    {
        let mut st = fake.0.lock().unwrap();
        for (t, c) in [
            ("CAA", "0 issue \"letsencrypt.org\""),
            ("MX", "mail.example.com"),
            ("HTTPS", "1 . alpn=h3"),
        ] {
            let id = st.new_id();
            st.records.push(Rec {
                id,
                name: "example.com".into(),
                rtype: t.into(),
                content: c.into(),
                ttl: 1,
                proxied: false,
                comment: None,
            });
        }
    }
    let records = provider(&server, TOKEN).records().await.unwrap();
    let types: Vec<String> = records.iter().map(|r| r.record_type.to_string()).collect();
    assert_eq!(types, ["CAA", "HTTPS", "MX"]);
}

#[tokio::test]
async fn proxied_records_get_the_automatic_ttl_and_do_not_update_forever() {
    let (server, _fake) = fake().await;
    let p = provider(&server, TOKEN);
    let want = p
        .canonicalize(
            set("app.example.com", RecordType::A, &["192.0.2.1"]).with_proxied(Some(true)),
        )
        .unwrap();
    assert_eq!(want.ttl, 1, "proxied means TTL 1 (automatic)");
    p.apply(&ChangeSet::from(vec![Change::Create {
        record: want.clone(),
    }]))
    .await
    .unwrap();
    let listed = p.records().await.unwrap();
    assert!(listed[0].satisfies(&want));
    // The config's TTL is ignored while proxied: no endless update (external-dns#1463).
    let with_ttl = p
        .canonicalize(set("app.example.com", RecordType::A, &["192.0.2.1"]))
        .unwrap();
    assert!(listed[0].satisfies(&with_ttl));
    // TTLs Cloudflare would refuse are brought into its range.
    assert_eq!(
        p.canonicalize(RecordSet {
            ttl: 5,
            ..set("x.example.com", RecordType::A, &["192.0.2.1"])
        })
        .unwrap()
        .ttl,
        60
    );
}

#[tokio::test]
async fn rate_limits_are_retried_after_retry_after_then_give_a_clear_error() {
    let (server, fake) = fake().await;
    let p = provider(&server, TOKEN);
    fake.0.lock().unwrap().throttle = 2;
    let started = std::time::Instant::now();
    p.records().await.unwrap();
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(2),
        "waited as Retry-After asked"
    );
    fake.0.lock().unwrap().throttle = 100;
    let err = p.records().await.unwrap_err();
    let DnsError::RateLimited { attempts, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*attempts, 3, "bounded by the retry policy");
    assert!(
        err.to_string().contains("rate limited") && err.to_string().contains("1s"),
        "{err}"
    );
}

#[tokio::test]
async fn a_token_that_cannot_edit_the_zone_says_which_permission_is_missing() {
    let (server, fake) = fake().await;
    let err = provider(&server, "wrong-token")
        .records()
        .await
        .unwrap_err();
    assert!(err.is_auth(), "{err:?}");
    let text = format!("{err} {err:?}");
    assert!(text.contains("DNS:Edit"), "{text}");
    assert!(
        !text.contains("wrong-token"),
        "the token is never shown: {text}"
    );
    assert!(fake.0.lock().unwrap().records.is_empty());
    // A zone id the token may not touch.
    let err = provider(&server, TOKEN)
        .with_zone_id(Some("ffffffffffffffffffffffffffffffff".into()))
        .records()
        .await
        .unwrap_err();
    assert!(matches!(err, DnsError::ZoneNotFound { .. }), "{err:?}");
    // A zone that is not on the account.
    let err = CloudflareProvider::new(
        DnsName::parse("example.org").unwrap(),
        SecretString::from(TOKEN),
    )
    .with_api_url(&format!("{}/client/v4", server.uri()))
    .unwrap()
    .records()
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("example.org") && err.to_string().contains("Zone:Read"),
        "{err}"
    );
}

#[tokio::test]
async fn a_failing_batch_changes_nothing() {
    let (server, fake) = fake().await;
    let p = provider(&server, TOKEN);
    p.apply(&ChangeSet::from(vec![Change::Create {
        record: set("a.example.com", RecordType::A, &["192.0.2.1"]),
    }]))
    .await
    .unwrap();
    let before = p.records().await.unwrap();
    // The second create is refused by Cloudflare (a CNAME where an A is, created behind
    // ferry's back between its read and its write): the whole batch is rolled back.
    {
        let mut st = fake.0.lock().unwrap();
        let id = st.new_id();
        st.records.push(Rec {
            id,
            name: "b.example.com".into(),
            rtype: "A".into(),
            content: "192.0.2.9".into(),
            ttl: 300,
            proxied: false,
            comment: None,
        });
    }
    let err = p
        .apply(&ChangeSet::from(vec![
            Change::Create {
                record: set("c.example.com", RecordType::A, &["192.0.2.3"]),
            },
            Change::Update {
                old: before[0].clone(),
                new: set("a.example.com", RecordType::A, &["192.0.2.2"]),
            },
            Change::Create {
                record: set("b.example.com", RecordType::Cname, &["lb.example.net"]),
            },
        ]))
        .await
        .unwrap_err();
    assert!(matches!(err, DnsError::ZoneChanged { .. }), "{err:?}");
    let after = p.records().await.unwrap();
    assert!(
        after.iter().all(|r| r.name.as_str() != "c.example.com"),
        "nothing of the batch stayed"
    );
    assert_eq!(
        after
            .iter()
            .find(|r| r.name.as_str() == "a.example.com")
            .unwrap()
            .values,
        ["192.0.2.1"]
    );
}

#[tokio::test]
async fn server_errors_are_retried_a_bounded_number_of_times() {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(502).set_body_string("<html>bad gateway</html>"))
        .expect(3)
        .mount(&server)
        .await;
    let err = provider(&server, TOKEN).records().await.unwrap_err();
    assert!(
        matches!(
            err,
            DnsError::Api {
                status: Some(502),
                retryable: true,
                ..
            }
        ),
        "{err:?}"
    );
}
