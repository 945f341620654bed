//! The RFC 2136 provider against knot (started by scripts/servers/knot.sh), checked with dig.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ferry_dns::config::ServerAddress;
use ferry_dns::rfc2136::{Rfc2136Provider, TsigAlgorithm, TsigKey};
use ferry_dns::verify::{Answer, Expectation, VerifyOptions, verify};
use ferry_dns::{
    Change, ChangeSet, DnsError, DnsName, DnsProvider as _, NameServer, RecordSet, RecordType,
    RetryPolicy,
};
use ferry_testkit::server;
use secrecy::SecretString;

use crate::conformance::{Expect, run};

pub(crate) fn knot_addr() -> SocketAddr {
    server("FERRY_TEST_KNOT").parse().unwrap()
}

pub(crate) fn key(var_prefix: &str, algorithm: TsigAlgorithm) -> TsigKey {
    TsigKey::new(
        &server(&format!("{var_prefix}_KEY")),
        algorithm,
        SecretString::from(server(&format!("{var_prefix}_SECRET"))),
    )
    .unwrap()
}

pub(crate) fn provider(zone: &str, key: Option<TsigKey>) -> Rfc2136Provider {
    Rfc2136Provider::new(
        DnsName::parse(zone).unwrap(),
        knot_addr(),
        key,
        crate::wall_clock(),
    )
    .with_retry(RetryPolicy::fast())
    .with_timeout(Duration::from_secs(5))
}

pub(crate) fn zone() -> String {
    server("FERRY_TEST_KNOT_ZONE")
}

/// Creates an A record at a fresh name under `zone` with `p`: the name, and how it went.
async fn create_a(
    p: &Rfc2136Provider,
    zone: &str,
    label: &str,
    ip: &str,
) -> (DnsName, Result<(), DnsError>) {
    let n = DnsName::parse(&format!("{}.{zone}", crate::unique(label))).unwrap();
    let rs = RecordSet::new(n.clone(), RecordType::A, 60, [ip]).unwrap();
    let result = p
        .apply(&ChangeSet::from(vec![Change::Create { record: rs }]))
        .await;
    (n, result)
}

/// What dig says, one answer per line (`dig +short`).
pub(crate) fn dig(name: &str, rtype: &str) -> Vec<String> {
    let addr = knot_addr();
    let out = std::process::Command::new("dig")
        .args([
            "+short",
            "+time=2",
            "+tries=3",
            "-p",
            &addr.port().to_string(),
        ])
        .arg(format!("@{}", addr.ip()))
        .args([name, rtype])
        .output()
        .expect("dig is installed (scripts/servers.sh install)");
    assert!(
        out.status.success(),
        "dig failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

#[tokio::test]
async fn rfc2136_on_knot_passes_the_conformance_suite() {
    let p = provider(
        &zone(),
        Some(key("FERRY_TEST_KNOT_TSIG", TsigAlgorithm::HmacSha256)),
    );
    run(
        Arc::new(p),
        &crate::unique("c"),
        Expect {
            checks_preconditions: true,
        },
    )
    .await;
}

#[tokio::test]
async fn every_supported_tsig_algorithm_signs_updates_dig_sees() {
    let keys = [
        key("FERRY_TEST_KNOT_TSIG", TsigAlgorithm::HmacSha256),
        key("FERRY_TEST_KNOT_TSIG384", TsigAlgorithm::HmacSha384),
        key("FERRY_TEST_KNOT_TSIG512", TsigAlgorithm::HmacSha512),
    ];
    for (i, k) in keys.into_iter().enumerate() {
        let algorithm = k.algorithm();
        let p = provider(&zone(), Some(k));
        let ip = format!("192.0.2.{}", 100 + i);
        let (n, applied) = create_a(&p, &zone(), "alg", &ip).await;
        applied.unwrap();
        assert_eq!(dig(n.as_str(), "A"), [ip], "{algorithm}");
    }
}

fn wrong_secret_key() -> TsigKey {
    // The right key name with another secret of the right length.
    TsigKey::new(
        &server("FERRY_TEST_KNOT_TSIG_KEY"),
        TsigAlgorithm::HmacSha256,
        SecretString::from("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
    )
    .unwrap()
}

#[tokio::test]
async fn a_wrong_tsig_secret_is_badsig_and_changes_nothing() {
    let p = provider(&zone(), Some(wrong_secret_key()));
    let (n, applied) = create_a(&p, &zone(), "badsig", "192.0.2.1").await;
    let err = applied.unwrap_err();
    let DnsError::TsigRejected { code, help, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(code, "BADSIG");
    assert!(help.contains("check the secret"), "{help}");
    let text = format!("{err} {err:?}");
    assert!(
        !text.contains("AAAAAAAA"),
        "the secret is never shown: {text}"
    );
    assert!(err.is_auth());
    assert!(dig(n.as_str(), "A").is_empty(), "nothing was applied");
    // Listing is refused the same way.
    let err = p.records().await.unwrap_err();
    assert!(matches!(err, DnsError::TsigRejected { .. }), "{err:?}");
}

#[tokio::test]
async fn an_unknown_tsig_key_is_badkey() {
    let k = TsigKey::new(
        "no-such-key",
        TsigAlgorithm::HmacSha256,
        SecretString::from(server("FERRY_TEST_KNOT_TSIG_SECRET")),
    )
    .unwrap();
    let err = provider(&zone(), Some(k)).records().await.unwrap_err();
    let DnsError::TsigRejected { code, key, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(code, "BADKEY");
    assert_eq!(key, "no-such-key");
}

#[tokio::test]
async fn unsigned_requests_are_refused_with_advice() {
    let p = provider(&zone(), None);
    let (n, applied) = create_a(&p, &zone(), "unsigned", "192.0.2.1").await;
    let err = applied.unwrap_err();
    assert!(err.is_auth(), "{err:?}");
    assert!(err.to_string().contains("TSIG key"), "{err}");
    assert!(dig(n.as_str(), "A").is_empty());
}

#[tokio::test]
async fn a_zone_the_key_may_not_edit_is_refused_and_unchanged() {
    let ro = server("FERRY_TEST_KNOT_READONLY_ZONE");
    let p = provider(
        &ro,
        Some(key("FERRY_TEST_KNOT_TSIG", TsigAlgorithm::HmacSha256)),
    );
    // Reading (a transfer) is allowed...
    let before = p.records().await.unwrap();
    assert!(
        before
            .iter()
            .any(|r| r.record_type == RecordType::Other("SOA".into()))
    );
    // ...editing is not.
    let (n, applied) = create_a(&p, &ro, "ro", "192.0.2.1").await;
    let err = applied.unwrap_err();
    assert!(err.is_auth(), "{err:?}");
    assert_eq!(p.records().await.unwrap(), before);
    assert!(dig(n.as_str(), "A").is_empty());
}

#[tokio::test]
async fn an_unreachable_server_fails_after_bounded_retries() {
    // Nothing listens on port 1.
    let p = Rfc2136Provider::new(
        DnsName::parse(&zone()).unwrap(),
        "127.0.0.1:1".parse::<SocketAddr>().unwrap(),
        Some(key("FERRY_TEST_KNOT_TSIG", TsigAlgorithm::HmacSha256)),
        crate::wall_clock(),
    )
    .with_retry(RetryPolicy::fast());
    let err = p.records().await.unwrap_err();
    assert!(matches!(err, DnsError::Transport { .. }), "{err:?}");
    assert!(err.to_string().contains("rfc2136"), "{err}");
}

#[tokio::test]
async fn a_server_given_by_name_is_resolved_and_verified_at_the_address_that_answered() {
    let port = knot_addr().port();
    let p = Rfc2136Provider::new(
        DnsName::parse(&zone()).unwrap(),
        ServerAddress::parse(&format!("localhost:{port}"), 53).unwrap(),
        Some(key("FERRY_TEST_KNOT_TSIG", TsigAlgorithm::HmacSha256)),
        crate::wall_clock(),
    )
    .with_retry(RetryPolicy::fast())
    .with_timeout(Duration::from_secs(5));
    // Before any update: verification is pointed at an address of the name that accepts
    // connections (knot listens on 127.0.0.1 only, whatever else localhost resolves to).
    assert_eq!(
        p.name_servers().await.unwrap(),
        [NameServer::Address(knot_addr())]
    );
    let (n, result) = create_a(&p, &zone(), "by-name", "192.0.2.61").await;
    result.unwrap();
    assert_eq!(dig(n.as_str(), "A"), ["192.0.2.61"]);

    // A name that does not resolve: a transport failure that says which name, after the
    // bounded retries, and nothing else happens.
    let p = Rfc2136Provider::new(
        DnsName::parse(&zone()).unwrap(),
        ServerAddress::parse("ns1.no-such-host.invalid", 53).unwrap(),
        Some(key("FERRY_TEST_KNOT_TSIG", TsigAlgorithm::HmacSha256)),
        crate::wall_clock(),
    )
    .with_retry(RetryPolicy::fast())
    .with_timeout(Duration::from_secs(2));
    let err = p.records().await.unwrap_err();
    assert!(matches!(err, DnsError::Transport { .. }), "{err:?}");
    let shown = format!("{err}");
    assert!(shown.contains("ns1.no-such-host.invalid"), "{shown}");
    assert!(p.name_servers().await.is_err());
}

#[tokio::test]
async fn verify_waits_for_the_authoritative_answer_and_reports_unreachable_resolvers() {
    let k = key("FERRY_TEST_KNOT_TSIG", TsigAlgorithm::HmacSha256);
    let p = provider(&zone(), Some(k));
    let base = crate::unique("verify");
    let a = DnsName::parse(&format!("a.{base}.{}", zone())).unwrap();
    let c = DnsName::parse(&format!("c.{base}.{}", zone())).unwrap();
    let want = vec![
        RecordSet::new(a.clone(), RecordType::A, 60, ["192.0.2.7"]).unwrap(),
        RecordSet::new(a.clone(), RecordType::Aaaa, 60, ["2001:db8::7"]).unwrap(),
        RecordSet::new(c.clone(), RecordType::Cname, 60, ["lb.example.net"]).unwrap(),
    ];
    let expectations = Expectation::from_records(&want, &DnsName::parse(&zone()).unwrap());
    // Room for several rounds (the test needs two) even on a loaded machine: a round of
    // questions to knot on loopback takes milliseconds.
    let options = VerifyOptions {
        timeout: Duration::from_secs(2),
        interval: Duration::from_millis(200),
        query_timeout: Duration::from_secs(1),
        // knot answers (it is authoritative), port 9 on loopback does not.
        public_resolvers: vec![knot_addr(), "127.0.0.1:9".parse().unwrap()],
    };
    let servers = p.name_servers().await.unwrap();
    // Before the records exist: not converged, and it says what the server answered.
    // An interval longer than the timeout: one round at the start, the last at the deadline
    // (not an interval before it, which would give up at once).
    let late = verify(
        &servers,
        &expectations,
        &VerifyOptions {
            timeout: Duration::from_millis(800),
            interval: Duration::from_secs(30),
            ..options.clone()
        },
    )
    .await
    .unwrap();
    assert_eq!(late.queries, 2 * expectations.len() as u32, "{late:?}");
    assert!(late.elapsed_ms >= 800, "{late:?}");

    let before = verify(&servers, &expectations, &options).await.unwrap();
    assert!(!before.converged);
    assert!(
        before
            .authoritative
            .iter()
            .all(|c| c.answer == Answer::NxDomain),
        "{:?}",
        before.authoritative
    );
    assert!(
        before.queries >= 2 * expectations.len() as u32,
        "it asked more than once"
    );

    let changes = want
        .iter()
        .cloned()
        .map(|record| Change::Create { record })
        .collect::<Vec<_>>();
    p.apply(&ChangeSet::from(changes)).await.unwrap();
    let after = verify(&servers, &expectations, &options).await.unwrap();
    assert!(after.converged, "{:#?}", after.authoritative);
    let by_server = |s: &str| {
        after
            .public
            .iter()
            .filter(|c| c.server == s)
            .collect::<Vec<_>>()
    };
    assert!(
        by_server(&knot_addr().to_string())
            .iter()
            .all(|c| c.matches)
    );
    let silent = by_server("127.0.0.1:9");
    assert_eq!(silent.len(), 2);
    assert!(
        silent
            .iter()
            .all(|c| !c.matches && matches!(c.answer, Answer::Unreachable { .. })),
        "{silent:?}"
    );
    // dig agrees with what verify saw.
    assert_eq!(dig(a.as_str(), "A"), ["192.0.2.7"]);
    assert_eq!(dig(a.as_str(), "AAAA"), ["2001:db8::7"]);
    assert_eq!(dig(c.as_str(), "CNAME"), ["lb.example.net."]);
}
