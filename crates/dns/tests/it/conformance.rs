//! The provider conformance suite: one set of checks every `DnsProvider` must pass, run against
//! the in-memory provider, RFC 2136 on knot, Route53 on moto, and Cloudflare and Azure DNS on
//! wiremock servers that answer as the real APIs do.

use ferry_dns::{
    Change, ChangeSet, DnsError, DnsName, OwnerId, Ownership, PlanRequest, Policy, RecordSet,
    RecordType, SharedDnsProvider, Target, plan,
};

/// What a provider under test can be expected to do.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Expect {
    /// The provider refuses an update or delete whose `old` is not what the zone holds, and a
    /// create of a set that exists (moto's Route53 accepts duplicate creates: false there).
    pub(crate) checks_preconditions: bool,
}

fn name(zone: &DnsName, label: &str) -> DnsName {
    DnsName::parse(&format!("{label}.{zone}")).unwrap()
}

fn set(n: &DnsName, t: RecordType, ttl: u32, values: &[&str]) -> RecordSet {
    RecordSet::new(n.clone(), t, ttl, values.iter().copied()).unwrap()
}

async fn find(p: &SharedDnsProvider, n: &DnsName, t: RecordType) -> Option<RecordSet> {
    p.records()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.name == *n && r.record_type == t)
}

async fn apply(p: &SharedDnsProvider, changes: Vec<Change>) -> Result<(), DnsError> {
    p.apply(&ChangeSet::from(changes)).await
}

/// Runs every check against `p`, using names under a fresh `base` label in its zone.
pub(crate) async fn run(p: SharedDnsProvider, base: &str, expect: Expect) {
    let zone = p.zone().clone();
    create_update_delete(&p, &zone, base).await;
    txt_values_round_trip(&p, &zone, base).await;
    type_change_in_one_change_set(&p, &zone, base).await;
    if expect.checks_preconditions {
        stale_changes_are_refused_and_change_nothing(&p, &zone, base).await;
    }
    planner_converges(&p, &zone, base).await;
}

async fn create_update_delete(p: &SharedDnsProvider, zone: &DnsName, base: &str) {
    let n = name(zone, &format!("crud.{base}"));
    let a = set(&n, RecordType::A, 300, &["192.0.2.1", "192.0.2.2"]);
    apply(p, vec![Change::Create { record: a.clone() }])
        .await
        .unwrap();
    let listed = find(p, &n, RecordType::A)
        .await
        .expect("created A is listed");
    assert_eq!(listed.values, a.values, "{}", p.name());
    assert_eq!(listed.ttl, 300, "{}", p.name());

    let a2 = set(&n, RecordType::A, 600, &["192.0.2.3"]);
    apply(
        p,
        vec![Change::Update {
            old: listed.clone(),
            new: a2.clone(),
        }],
    )
    .await
    .unwrap();
    let listed = find(p, &n, RecordType::A)
        .await
        .expect("updated A is listed");
    assert_eq!(listed.values, a2.values, "{}", p.name());
    assert_eq!(listed.ttl, 600, "{}", p.name());

    let aaaa = set(&n, RecordType::Aaaa, 300, &["2001:db8::1"]);
    apply(p, vec![Change::Create { record: aaaa }])
        .await
        .unwrap();
    let listed_aaaa = find(p, &n, RecordType::Aaaa).await.expect("AAAA is listed");
    assert_eq!(listed_aaaa.values, ["2001:db8::1"], "{}", p.name());

    apply(
        p,
        vec![
            Change::Delete { record: listed },
            Change::Delete {
                record: listed_aaaa,
            },
        ],
    )
    .await
    .unwrap();
    assert!(
        find(p, &n, RecordType::A).await.is_none(),
        "{}: A deleted",
        p.name()
    );
    assert!(
        find(p, &n, RecordType::Aaaa).await.is_none(),
        "{}: AAAA deleted",
        p.name()
    );
}

async fn txt_values_round_trip(p: &SharedDnsProvider, zone: &DnsName, base: &str) {
    let n = name(zone, &format!("txt.{base}"));
    let ownership =
        "heritage=external-dns,external-dns/owner=shop,external-dns/resource=ferry/shop/prod";
    let other = "v=spf1 include:_spf.example.net ~all";
    let txt = set(&n, RecordType::Txt, 300, &[ownership, other]);
    apply(
        p,
        vec![Change::Create {
            record: txt.clone(),
        }],
    )
    .await
    .unwrap();
    let listed = find(p, &n, RecordType::Txt).await.expect("TXT is listed");
    assert_eq!(
        listed.values,
        txt.values,
        "{}: TXT text comes back exactly",
        p.name()
    );
    let one = set(&n, RecordType::Txt, 300, &[other]);
    apply(
        p,
        vec![Change::Update {
            old: listed,
            new: one.clone(),
        }],
    )
    .await
    .unwrap();
    let listed = find(p, &n, RecordType::Txt).await.expect("TXT is listed");
    assert_eq!(listed.values, one.values, "{}", p.name());
    apply(p, vec![Change::Delete { record: listed }])
        .await
        .unwrap();
}

async fn type_change_in_one_change_set(p: &SharedDnsProvider, zone: &DnsName, base: &str) {
    let n = name(zone, &format!("swap.{base}"));
    let a = set(&n, RecordType::A, 300, &["192.0.2.10"]);
    apply(p, vec![Change::Create { record: a.clone() }])
        .await
        .unwrap();
    let a = find(p, &n, RecordType::A).await.unwrap();
    let cname = set(&n, RecordType::Cname, 300, &["lb.example.net"]);
    apply(
        p,
        vec![
            Change::Delete { record: a.clone() },
            Change::Create {
                record: cname.clone(),
            },
        ],
    )
    .await
    .unwrap();
    assert!(find(p, &n, RecordType::A).await.is_none(), "{}", p.name());
    let listed = find(p, &n, RecordType::Cname)
        .await
        .expect("CNAME is listed");
    assert_eq!(listed.values, ["lb.example.net"], "{}", p.name());
    // And back (to another address: moto refuses to re-create an identical set).
    let a = set(&n, RecordType::A, 300, &["192.0.2.11"]);
    apply(
        p,
        vec![
            Change::Delete { record: listed },
            Change::Create { record: a },
        ],
    )
    .await
    .unwrap();
    assert!(
        find(p, &n, RecordType::Cname).await.is_none(),
        "{}",
        p.name()
    );
    assert!(find(p, &n, RecordType::A).await.is_some(), "{}", p.name());
}

async fn stale_changes_are_refused_and_change_nothing(
    p: &SharedDnsProvider,
    zone: &DnsName,
    base: &str,
) {
    let n = name(zone, &format!("stale.{base}"));
    let other = name(zone, &format!("stale2.{base}"));
    let a = set(&n, RecordType::A, 300, &["192.0.2.20"]);
    apply(p, vec![Change::Create { record: a.clone() }])
        .await
        .unwrap();
    let before = p.records().await.unwrap();

    // Someone changed the record since it was read: the update's `old` no longer matches.
    let believed = set(&n, RecordType::A, 300, &["192.0.2.99"]);
    let err = apply(
        p,
        vec![
            Change::Create {
                record: set(&other, RecordType::A, 300, &["192.0.2.21"]),
            },
            Change::Update {
                old: believed,
                new: set(&n, RecordType::A, 300, &["192.0.2.22"]),
            },
        ],
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            DnsError::ZoneChanged { .. } | DnsError::PartiallyApplied { .. }
        ),
        "{}: {err:?}",
        p.name()
    );
    let after = p.records().await.unwrap();
    if p.capabilities().atomic {
        assert_eq!(
            before,
            after,
            "{}: an atomic provider changed nothing",
            p.name()
        );
    } else {
        // Ordered: the create went first and stands; the record that failed is untouched.
        assert_eq!(
            find(p, &n, RecordType::A).await.unwrap().values,
            a.values,
            "{}",
            p.name()
        );
    }

    // A create of a set that exists is refused too.
    let err = apply(p, vec![Change::Create { record: a.clone() }])
        .await
        .unwrap_err();
    assert!(
        matches!(err, DnsError::ZoneChanged { .. }),
        "{}: {err:?}",
        p.name()
    );
}

async fn planner_converges(p: &SharedDnsProvider, zone: &DnsName, base: &str) {
    // Through the planner, as ferry uses a provider: plan, apply, plan again -> nothing.
    let own = Ownership::new(
        OwnerId::new("conformance").unwrap(),
        "ferry/conformance/test",
    )
    .unwrap();
    let names = [
        name(zone, &format!("app.{base}")),
        name(zone, &format!("www.{base}")),
    ];
    // Each round with its own TTL, so no set is re-created identical to an earlier one (moto).
    for (target, ttl) in [
        ("192.0.2.30,2001:db8::30", 300),
        ("lb-1.example.net", 300),
        ("192.0.2.31", 600),
    ] {
        let t: Target = target.parse().unwrap();
        let desired: Vec<RecordSet> = names
            .iter()
            .flat_map(|n| t.record_sets(n, ttl, None).unwrap())
            .map(|r| p.canonicalize(r).unwrap())
            .collect();
        let current = p.records().await.unwrap();
        let req = PlanRequest {
            zone,
            current: &current,
            desired: &desired,
            ownership: &own,
            policy: Policy::Sync,
            adopt: false,
            capabilities: p.capabilities(),
        };
        let first = plan(&req).unwrap();
        assert!(
            first.conflicts.is_empty(),
            "{}: {:?}",
            p.name(),
            first.conflicts
        );
        assert!(
            !first.changes.is_empty(),
            "{}: {target} changes something",
            p.name()
        );
        p.apply(&first.changes).await.unwrap();
        let current = p.records().await.unwrap();
        let second = plan(&PlanRequest {
            current: &current,
            ..req
        })
        .unwrap();
        assert!(
            second.changes.is_empty(),
            "{}: a second plan for {target} is empty, got {:#?}",
            p.name(),
            second.changes
        );
    }
}
