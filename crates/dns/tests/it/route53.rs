//! The Route53 provider against moto (scripts/servers/moto.sh). moto's known quirks (see
//! ../shared/notes/local-test-targets.md): it accepts a duplicate CREATE with another value and
//! does not check that a DELETE names the current values, so the precondition checks of the
//! conformance suite are not asked of it (Route53 itself enforces them); and it refuses to
//! CREATE a record set identical to one created earlier in the zone's history when any record
//! set sorts after it, so the suite never re-creates an identical set.

use std::sync::Arc;

use aws_sdk_route53::config::{BehaviorVersion, Credentials, Region};
use ferry_dns::route53::Route53Provider;
use ferry_dns::{
    DnsError, DnsName, DnsProvider as _, OwnerId, Ownership, PlanRequest, Policy, RecordType,
    Target, plan,
};
use ferry_testkit::server;

use crate::conformance::{Expect, run};

fn config(key: &str) -> aws_sdk_route53::Config {
    aws_sdk_route53::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(server("FERRY_TEST_MOTO"))
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            key,
            "test-secret",
            None,
            None,
            "ferry-tests",
        ))
        .build()
}

/// A fresh hosted zone on moto.
async fn zone(label: &str) -> DnsName {
    let name = DnsName::parse(&format!("{}.ferry-test.example", crate::unique(label))).unwrap();
    aws_sdk_route53::Client::from_conf(config("test"))
        .create_hosted_zone()
        .name(name.fqdn())
        .caller_reference(crate::unique("ref"))
        .send()
        .await
        .expect("moto creates the hosted zone");
    name
}

#[tokio::test]
async fn route53_on_moto_passes_the_conformance_suite() {
    let z = zone("conf").await;
    let p = Route53Provider::new(z, config("test"));
    run(
        Arc::new(p),
        "c",
        Expect {
            checks_preconditions: false,
        },
    )
    .await;
}

#[tokio::test]
async fn load_balancer_hostnames_become_alias_records_even_at_the_apex() {
    let z = zone("alias").await;
    let p = Route53Provider::new(z.clone(), config("test"));
    let own = Ownership::new(OwnerId::new("shop").unwrap(), "ferry/shop/eks").unwrap();
    let nlb: Target = "a1b2-0123456789abcdef.elb.eu-west-1.amazonaws.com"
        .parse()
        .unwrap();
    let names = [z.clone(), DnsName::parse(&format!("app.{z}")).unwrap()];
    let desired: Vec<_> = names
        .iter()
        .flat_map(|n| nlb.record_sets(n, 300, None).unwrap())
        .map(|r| p.canonicalize(r).unwrap())
        .collect();
    assert!(
        desired
            .iter()
            .all(|r| r.record_type == RecordType::A && r.alias.is_some())
    );
    assert_eq!(
        desired[0].alias.as_ref().unwrap().hosted_zone_id,
        "Z2IFOLAFXWLO4F"
    );
    let current = p.records().await.unwrap();
    let req = PlanRequest {
        zone: &z,
        current: &current,
        desired: &desired,
        ownership: &own,
        policy: Policy::UpsertOnly,
        adopt: false,
        capabilities: p.capabilities(),
    };
    let first = plan(&req).unwrap();
    p.apply(&first.changes).await.unwrap();
    let current = p.records().await.unwrap();
    let apex = current
        .iter()
        .find(|r| r.name == z && r.record_type == RecordType::A)
        .unwrap();
    assert_eq!(
        apex.alias.as_ref().unwrap().dns_name.as_str(),
        "a1b2-0123456789abcdef.elb.eu-west-1.amazonaws.com"
    );
    let second = plan(&PlanRequest {
        current: &current,
        ..req.clone()
    })
    .unwrap();
    assert!(second.changes.is_empty(), "{:#?}", second.changes);
    // With prefer_cname the same target is a CNAME (not at the apex).
    let cname = Route53Provider::new(z.clone(), config("test")).with_prefer_cname(true);
    let r = cname
        .canonicalize(nlb.record_sets(&names[1], 300, None).unwrap().remove(0))
        .unwrap();
    assert_eq!(r.record_type, RecordType::Cname);
}

#[tokio::test]
async fn a_zone_that_does_not_exist_is_named_in_the_error() {
    let p = Route53Provider::new(
        DnsName::parse("absent-zone.ferry-test.example").unwrap(),
        config("test"),
    );
    let err = p.records().await.unwrap_err();
    assert!(matches!(err, DnsError::ZoneNotFound { .. }), "{err:?}");
    assert!(
        err.to_string().contains("absent-zone.ferry-test.example"),
        "{err}"
    );
    let p = Route53Provider::new(DnsName::parse("x.example").unwrap(), config("test"))
        .with_hosted_zone_id(Some("/hostedzone/ZNOSUCHZONE".into()));
    let err = p.records().await.unwrap_err();
    assert!(matches!(err, DnsError::ZoneNotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn an_unreachable_endpoint_is_a_transport_error() {
    let cfg = aws_sdk_route53::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url("http://127.0.0.1:1")
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("k", "s", None, None, "t"))
        .build();
    let err = Route53Provider::new(DnsName::parse("example.com").unwrap(), cfg)
        .records()
        .await
        .unwrap_err();
    assert!(matches!(err, DnsError::Transport { .. }), "{err:?}");
}

/// Route53's error document (restXml), as the API returns it.
fn route53_error(status: u16, code: &str, message: &str) -> wiremock::ResponseTemplate {
    wiremock::ResponseTemplate::new(status)
        .insert_header("content-type", "text/xml")
        .set_body_string(format!(
            "<?xml version=\"1.0\"?>\n<ErrorResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\">\
             <Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>\
             <RequestId>0b5b6a53-ferry-test</RequestId></ErrorResponse>"
        ))
}

/// A client of `server` retrying up to three attempts without waiting long.
fn stub_config(server: &wiremock::MockServer) -> aws_sdk_route53::Config {
    use aws_sdk_route53::config::retry::RetryConfig;
    aws_sdk_route53::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(server.uri())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("k", "s", None, None, "t"))
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(std::time::Duration::from_millis(10)),
        )
        .build()
}

/// moto enforces no IAM policy and never throttles, so Route53's answers for a role that may
/// not touch the zone, and for throttling, come from a stub speaking Route53's error format.
#[tokio::test]
async fn a_role_that_may_not_edit_the_zone_is_unauthorized_and_throttling_is_bounded() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer};

    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/2013-04-01/hostedzonesbyname"))
        .respond_with(route53_error(
            403,
            "AccessDenied",
            "User: arn:aws:sts::123456789012:assumed-role/ci/gh is not authorized to perform: route53:ListHostedZonesByName",
        ))
        .mount(&server)
        .await;
    let err = Route53Provider::new(DnsName::parse("example.com").unwrap(), stub_config(&server))
        .records()
        .await
        .unwrap_err();
    assert!(err.is_auth(), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("example.com"), "the zone is named: {text}");
    assert!(
        text.contains("route53:ChangeResourceRecordSets"),
        "the permissions to grant are named: {text}"
    );

    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/2013-04-01/hostedzone/ZTHROTTLED/rrset"))
        .respond_with(route53_error(400, "Throttling", "Rate exceeded"))
        .mount(&server)
        .await;
    let err = Route53Provider::new(DnsName::parse("example.com").unwrap(), stub_config(&server))
        .with_hosted_zone_id(Some("ZTHROTTLED".into()))
        .records()
        .await
        .unwrap_err();
    assert!(matches!(err, DnsError::RateLimited { .. }), "{err:?}");
    assert!(
        err.to_string().contains("gave up after 3 attempts"),
        "{err}"
    );
    assert!(!err.is_auth() && !err.is_invalid_input(), "{err:?}");
    let requests = server.received_requests().await.unwrap().len();
    assert_eq!(requests, 3, "the SDK's retries are bounded by max_attempts");
}
