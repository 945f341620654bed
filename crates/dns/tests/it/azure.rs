//! The Azure DNS provider against a wiremock server that answers as Azure Resource Manager does
//! (api-version 2018-05-01): record set lists with `nextLink`, PUT with `If-None-Match`/`If-Match`
//! ETags, DELETE, error bodies `{"error": {"code", "message"}}`, 401/403, 412 and 429.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use ferry_dns::azure::{AzureDnsProvider, StaticToken};
use ferry_dns::{
    Change, ChangeSet, DnsError, DnsName, DnsProvider as _, RecordSet, RecordType, RetryPolicy,
};
use secrecy::SecretString;
use serde_json::{Value, json};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::conformance::{Expect, run};

const TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.arm-test";
const SUB: &str = "00000000-1111-2222-3333-444444444444";

#[derive(Default, Debug)]
struct State {
    /// (type, relative name) -> (etag, properties)
    sets: BTreeMap<(String, String), (u64, Value)>,
    etag: u64,
    throttle: u32,
    log: Vec<String>,
    /// The server's address, for nextLink.
    base: String,
}

#[derive(Clone, Default)]
struct FakeArm(Arc<Mutex<State>>);

fn err(status: u16, code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .set_body_json(json!({"error": {"code": code, "message": message}}))
}

fn set_json(rg: &str, t: &str, name: &str, etag: u64, props: &Value) -> Value {
    let mut props = props.clone();
    let fqdn = if name == "@" {
        "example.com.".to_owned()
    } else {
        format!("{name}.example.com.")
    };
    props["fqdn"] = json!(fqdn);
    json!({
        "id": format!("/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.Network/dnszones/example.com/{t}/{name}"),
        "name": name,
        "type": format!("Microsoft.Network/dnszones/{t}"),
        "etag": format!("etag-{etag}"),
        "properties": props,
    })
}

impl Respond for FakeArm {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut st = self.0.lock().unwrap();
        let path = req.url.path().to_owned();
        st.log.push(format!("{} {}", req.method, req.url));
        if req
            .url
            .query_pairs()
            .find(|(k, _)| k == "api-version")
            .map(|(_, v)| v.into_owned())
            .as_deref()
            != Some("2018-05-01")
        {
            return err(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            );
        }
        let auth = req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        if auth != Some(&format!("Bearer {TOKEN}")) {
            return err(
                401,
                "InvalidAuthenticationToken",
                "The access token is invalid.",
            );
        }
        if st.throttle > 0 {
            st.throttle -= 1;
            return err(429, "TooManyRequests", "Too many requests, retry later.")
                .insert_header("Retry-After", "1");
        }
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        // subscriptions/SUB/resourceGroups/RG/providers/Microsoft.Network/dnsZones/ZONE[/...]
        let (Some(rg), Some(zone)) = (segs.get(3), segs.get(7)) else {
            return err(404, "NotFound", "no route");
        };
        if *rg == "readonly-rg" && req.method.as_str() != "GET" {
            return err(
                403,
                "AuthorizationFailed",
                "The client 'ferry' with object id 'x' does not have authorization to perform action 'Microsoft.Network/dnszones/A/write' over scope '/subscriptions/.../resourceGroups/readonly-rg'.",
            );
        }
        if *zone != "example.com" {
            return err(
                404,
                "ParentResourceNotFound",
                &format!(
                    "Can not perform requested operation on nested resource. Parent resource '{zone}' not found."
                ),
            );
        }
        match (req.method.as_str(), &segs[8..]) {
            ("GET", []) => ResponseTemplate::new(200).set_body_json(json!({
                "id": format!("/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.Network/dnszones/example.com"),
                "name": "example.com", "type": "Microsoft.Network/dnszones",
                "properties": {"nameServers": ["ns1-01.azure-dns.com.", "ns2-01.azure-dns.net."], "numberOfRecordSets": st.sets.len()}
            })),
            ("GET", ["recordsets"]) => {
                // Two per page, with a nextLink carrying $skipToken, as ARM pages.
                let skip: usize = req.url.query_pairs().find(|(k, _)| k == "$skipToken").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
                let all: Vec<Value> = st.sets.iter().map(|((t, n), (e, p))| set_json(rg, t, n, *e, p)).collect();
                let page: Vec<Value> = all.iter().skip(skip).take(2).cloned().collect();
                let mut body = json!({"value": page});
                if skip + 2 < all.len() {
                    let mut next = url::Url::parse(&format!("{}{path}", st.base)).unwrap();
                    next.query_pairs_mut().append_pair("api-version", "2018-05-01").append_pair("$skipToken", &(skip + 2).to_string());
                    body["nextLink"] = json!(next.to_string());
                }
                ResponseTemplate::new(200).set_body_json(body)
            }
            (method @ ("PUT" | "DELETE"), [t, name]) => {
                let key = (t.to_string(), name.to_string());
                let current = st.sets.get(&key).map(|(e, _)| format!("etag-{e}"));
                let if_match = req.headers.get("if-match").and_then(|v| v.to_str().ok()).map(str::to_owned);
                let if_none = req.headers.get("if-none-match").and_then(|v| v.to_str().ok()).map(str::to_owned);
                if if_none.as_deref() == Some("*") && current.is_some() {
                    return err(412, "PreconditionFailed", "The Record set already exists.");
                }
                if let Some(m) = &if_match
                    && current.as_deref() != Some(m.as_str())
                {
                    return err(412, "PreconditionFailed", "The Record set has been modified (etag mismatch).");
                }
                if method == "DELETE" {
                    st.sets.remove(&key);
                    return ResponseTemplate::new(200);
                }
                // CNAME exclusivity, as Azure DNS enforces it.
                let others: Vec<&String> = st.sets.keys().filter(|(ot, on)| on == name && ot != t).map(|(ot, _)| ot).collect();
                if (*t == "CNAME" && !others.is_empty()) || others.iter().any(|o| o.as_str() == "CNAME") {
                    return err(409, "Conflict", "The record set conflicts with an existing CNAME record set.");
                }
                let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
                let Some(props) = body.get("properties").cloned() else {
                    return err(400, "BadRequest", "properties are required");
                };
                st.etag += 1;
                let e = st.etag;
                let created = current.is_none();
                st.sets.insert(key, (e, props.clone()));
                ResponseTemplate::new(if created { 201 } else { 200 }).set_body_json(set_json(rg, t, name, e, &props))
            }
            _ => err(400, "BadRequest", "no such operation"),
        }
    }
}

async fn fake() -> (MockServer, FakeArm) {
    let server = MockServer::start().await;
    let fake = FakeArm::default();
    // The zone's SOA and NS, as every Azure zone has.
    {
        let mut st = fake.0.lock().unwrap();
        st.sets.insert(
            ("NS".into(), "@".into()),
            (
                1,
                json!({"TTL": 172800, "NSRecords": [{"nsdname": "ns1-01.azure-dns.com."}]}),
            ),
        );
        st.sets.insert(("SOA".into(), "@".into()), (2, json!({"TTL": 3600, "SOARecord": {"host": "ns1-01.azure-dns.com.", "email": "azuredns-hostmaster.microsoft.com"}})));
        st.etag = 2;
        st.base = server.uri();
    }
    Mock::given(any())
        .respond_with(fake.clone())
        .mount(&server)
        .await;
    (server, fake)
}

fn provider(server: &MockServer, rg: &str, token: &str) -> AzureDnsProvider {
    AzureDnsProvider::new(
        DnsName::parse("example.com").unwrap(),
        SUB,
        rg,
        Arc::new(StaticToken(SecretString::from(token.to_owned()))),
    )
    .with_api_url(&server.uri())
    .unwrap()
    .with_retry(RetryPolicy::fast())
}

#[tokio::test]
async fn azure_dns_passes_the_conformance_suite() {
    let (server, fake) = fake().await;
    run(
        Arc::new(provider(&server, "dns-rg", TOKEN)),
        "conf",
        Expect {
            checks_preconditions: true,
        },
    )
    .await;
    let st = fake.0.lock().unwrap();
    assert!(
        st.log
            .iter()
            .any(|l| l.contains("%24skipToken=") || l.contains("$skipToken=")),
        "listing followed nextLink"
    );
    assert!(st.log.iter().any(|l| l.starts_with("PUT")), "{:?}", st.log);
}

#[tokio::test]
async fn name_servers_come_from_the_zone() {
    let (server, _fake) = fake().await;
    let ns = provider(&server, "dns-rg", TOKEN)
        .name_servers()
        .await
        .unwrap();
    assert_eq!(ns.len(), 2);
    assert_eq!(ns[0].to_string(), "ns1-01.azure-dns.com");
}

#[tokio::test]
async fn permissions_zones_and_tokens_are_explained() {
    let (server, fake) = fake().await;
    let err = provider(&server, "dns-rg", "expired")
        .records()
        .await
        .unwrap_err();
    assert!(
        err.is_auth() && err.to_string().contains("InvalidAuthenticationToken"),
        "{err}"
    );
    assert!(
        !format!("{err:?}").contains("expired"),
        "the token is never shown"
    );

    let p = provider(&server, "readonly-rg", TOKEN);
    let set = RecordSet::new(
        DnsName::parse("a.example.com").unwrap(),
        RecordType::A,
        300,
        ["192.0.2.1"],
    )
    .unwrap();
    let err = p
        .apply(&ChangeSet::from(vec![Change::Create { record: set }]))
        .await
        .unwrap_err();
    assert!(err.is_auth(), "{err:?}");
    assert!(err.to_string().contains("DNS Zone Contributor"), "{err}");
    assert_eq!(fake.0.lock().unwrap().sets.len(), 2, "nothing was written");

    let other = AzureDnsProvider::new(
        DnsName::parse("example.org").unwrap(),
        SUB,
        "dns-rg",
        Arc::new(StaticToken(SecretString::from(TOKEN))),
    )
    .with_api_url(&server.uri())
    .unwrap();
    let err = other.records().await.unwrap_err();
    assert!(matches!(err, DnsError::ZoneNotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("dns-rg"), "{err}");
}

#[tokio::test]
async fn throttling_is_retried_and_bounded() {
    let (server, fake) = fake().await;
    let p = provider(&server, "dns-rg", TOKEN);
    fake.0.lock().unwrap().throttle = 1;
    p.records().await.unwrap();
    fake.0.lock().unwrap().throttle = 50;
    let err = p.records().await.unwrap_err();
    assert!(
        matches!(err, DnsError::RateLimited { attempts: 3, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_failure_part_way_is_reported_with_what_was_applied_and_names_keep_resolving() {
    let (server, fake) = fake().await;
    let p = provider(&server, "dns-rg", TOKEN);
    let name = DnsName::parse("app.example.com").unwrap();
    let old = RecordSet::new(name.clone(), RecordType::A, 300, ["192.0.2.1"]).unwrap();
    p.apply(&ChangeSet::from(vec![Change::Create {
        record: old.clone(),
    }]))
    .await
    .unwrap();
    // Ownership first, then the update; the update is throttled past the retry budget.
    let txt = RecordSet::new(
        DnsName::parse("a-app.example.com").unwrap(),
        RecordType::Txt,
        300,
        ["heritage=external-dns,external-dns/owner=shop"],
    )
    .unwrap();
    let new = RecordSet::new(name.clone(), RecordType::A, 300, ["192.0.2.2"]).unwrap();
    let changes = ChangeSet::from(vec![
        Change::Create { record: txt },
        Change::Update {
            old: old.clone(),
            new,
        },
    ]);
    // Let the listing and the first PUT through, then throttle everything.
    struct ThrottleAfter(FakeArm, Arc<Mutex<u32>>);
    impl Respond for ThrottleAfter {
        fn respond(&self, req: &Request) -> ResponseTemplate {
            let mut n = self.1.lock().unwrap();
            if req.method.as_str() == "PUT" {
                *n += 1;
                if *n > 1 {
                    return err(429, "TooManyRequests", "slow down")
                        .insert_header("Retry-After", "1");
                }
            }
            drop(n);
            self.0.respond(req)
        }
    }
    server.reset().await;
    Mock::given(any())
        .respond_with(ThrottleAfter(fake.clone(), Arc::default()))
        .mount(&server)
        .await;
    let err = p.apply(&changes).await.unwrap_err();
    let DnsError::PartiallyApplied { applied, total, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!((*applied, *total), (1, 2));
    assert!(err.to_string().contains("run the command again"), "{err}");
    // The name still answers its old address.
    server.reset().await;
    Mock::given(any())
        .respond_with(fake.clone())
        .mount(&server)
        .await;
    let a = p
        .records()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.name == name && r.record_type == RecordType::A)
        .unwrap();
    assert_eq!(a.values, ["192.0.2.1"]);
}
