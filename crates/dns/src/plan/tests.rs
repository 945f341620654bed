use super::*;
use crate::memory::InMemoryProvider;
use crate::provider::DnsProvider;
use crate::target::Target;

fn name(s: &str) -> DnsName {
    DnsName::parse(s).unwrap()
}

fn zone() -> DnsName {
    name("example.com")
}

fn rs(n: &str, t: RecordType, values: &[&str]) -> RecordSet {
    RecordSet::new(name(n), t, 300, values.iter().copied()).unwrap()
}

fn ownership(owner: &str) -> Ownership {
    Ownership::new(OwnerId::new(owner).unwrap(), format!("ferry/shop/{owner}")).unwrap()
}

fn owner_txt(n: &str, owner: &str) -> RecordSet {
    rs(
        n,
        RecordType::Txt,
        &[&format!(
            "heritage=external-dns,external-dns/owner={owner},external-dns/resource=ferry/shop/{owner}"
        )],
    )
}

fn desired(names: &[&str], target: &str) -> Vec<RecordSet> {
    let t: Target = target.parse().unwrap();
    names
        .iter()
        .flat_map(|n| t.record_sets(&name(n), 300, None).unwrap())
        .collect()
}

fn run(
    current: &[RecordSet],
    desired: &[RecordSet],
    own: &Ownership,
    policy: Policy,
    adopt: bool,
) -> Plan {
    plan(&PlanRequest {
        zone: &zone(),
        current,
        desired,
        ownership: own,
        policy,
        adopt,
        capabilities: Capabilities::default(),
    })
    .unwrap()
}

fn summary(plan: &Plan) -> Vec<String> {
    plan.changes
        .iter()
        .map(|c| format!("{} {}", c.verb(), c.key()))
        .collect()
}

async fn apply(zone_state: &[RecordSet], plan: &Plan) -> Vec<RecordSet> {
    let p = InMemoryProvider::new(zone());
    for r in zone_state {
        p.insert(r.clone());
    }
    p.apply(&plan.changes).await.unwrap();
    p.snapshot()
}

#[tokio::test]
async fn first_apply_creates_records_and_ownership_then_nothing() {
    let own = ownership("shop");
    let want = desired(&["app.example.com", "www.example.com"], "192.0.2.10");
    let p = run(&[], &want, &own, Policy::UpsertOnly, false);
    assert_eq!(
        summary(&p),
        [
            "create a-app.example.com TXT",
            "create a-www.example.com TXT",
            "create app.example.com A",
            "create www.example.com A",
        ]
    );
    let after = apply(&[], &p).await;
    let again = run(&after, &want, &own, Policy::UpsertOnly, false);
    assert!(again.is_empty(), "{:?}", summary(&again));
    assert_eq!(again.in_sync.len(), 2);
}

#[tokio::test]
async fn switching_target_updates_in_place_and_across_types() {
    let own = ownership("shop");
    let first = desired(&["app.example.com"], "192.0.2.10");
    let zone_state = apply(&[], &run(&[], &first, &own, Policy::UpsertOnly, false)).await;

    // Another IP: one update, ownership unchanged.
    let second = desired(&["app.example.com"], "192.0.2.20");
    let p = run(&zone_state, &second, &own, Policy::UpsertOnly, false);
    assert_eq!(summary(&p), ["update app.example.com A"]);

    // A hostname: the A goes, immediately before the CNAME comes; its claim goes last.
    let third = desired(&["app.example.com"], "lb-1.elb.us-east-1.amazonaws.com");
    let p = run(&zone_state, &third, &own, Policy::UpsertOnly, false);
    assert_eq!(
        summary(&p),
        [
            "create cname-app.example.com TXT",
            "delete app.example.com A",
            "create app.example.com CNAME",
            "delete a-app.example.com TXT",
        ]
    );
    let after = apply(&zone_state, &p).await;
    assert!(run(&after, &third, &own, Policy::UpsertOnly, false).is_empty());
}

#[test]
fn foreign_records_at_managed_names_are_conflicts_unless_adopted() {
    let own = ownership("shop");
    let current = vec![
        rs("app.example.com", RecordType::A, &["198.51.100.1"]), // nobody's
        rs(
            "api.example.com",
            RecordType::Cname,
            &["elsewhere.example.net"],
        ),
        owner_txt("cname-api.example.com", "other-team"),
        rs("mail.example.com", RecordType::A, &["198.51.100.9"]), // not managed
    ];
    let want = desired(&["app.example.com", "api.example.com"], "192.0.2.10");
    let p = run(&current, &want, &own, Policy::Sync, false);
    assert!(p.changes.is_empty(), "{:?}", summary(&p));
    assert_eq!(p.conflicts.len(), 2);
    let api = p
        .conflicts
        .iter()
        .find(|c| c.existing.name.as_str() == "api.example.com")
        .unwrap();
    assert_eq!(api.owner.as_deref(), Some("other-team"));
    assert!(api.reason.contains("--adopt"), "{}", api.reason);
    let app = p
        .conflicts
        .iter()
        .find(|c| c.existing.name.as_str() == "app.example.com")
        .unwrap();
    assert_eq!(app.owner, None);
    assert!(app.reason.contains("no ownership record"), "{}", app.reason);

    let p = run(&current, &want, &own, Policy::Sync, true);
    assert!(p.conflicts.is_empty());
    assert_eq!(p.adopted.len(), 2);
    assert_eq!(
        summary(&p),
        [
            "create a-api.example.com TXT",
            "create a-app.example.com TXT",
            "delete api.example.com CNAME",
            "create api.example.com A",
            "update app.example.com A",
            "delete cname-api.example.com TXT",
        ]
    );
}

#[test]
fn a_name_claimed_by_another_owner_stays_theirs_even_without_a_record() {
    let own = ownership("shop");
    let current = vec![owner_txt("a-app.example.com", "other-team")];
    let want = desired(&["app.example.com"], "192.0.2.10");
    let p = run(&current, &want, &own, Policy::UpsertOnly, false);
    assert_eq!(p.conflicts.len(), 1);
    assert!(p.changes.is_empty());
    let p = run(&current, &want, &own, Policy::UpsertOnly, true);
    assert_eq!(
        summary(&p),
        ["update a-app.example.com TXT", "create app.example.com A"]
    );
}

#[test]
fn a_cname_never_displaces_foreign_txt_values() {
    let own = ownership("shop");
    let current = vec![rs(
        "app.example.com",
        RecordType::Txt,
        &["google-site-verification=abc"],
    )];
    let want = desired(&["app.example.com"], "lb.example.net");
    for adopt in [false, true] {
        let p = run(&current, &want, &own, Policy::Sync, adopt);
        assert!(p.changes.is_empty());
        assert!(
            p.conflicts[0].reason.contains("google-site-verification"),
            "{}",
            p.conflicts[0].reason
        );
    }
    // ...but an old-format ownership TXT of ferry's own at that name makes way.
    let current = vec![
        rs("app.example.com", RecordType::A, &["192.0.2.1"]),
        owner_txt("app.example.com", "shop"),
    ];
    let p = run(&current, &want, &own, Policy::UpsertOnly, false);
    assert_eq!(
        summary(&p),
        [
            "create cname-app.example.com TXT",
            "delete app.example.com A",
            "delete app.example.com TXT",
            "create app.example.com CNAME",
        ]
    );
}

#[tokio::test]
async fn the_apex_uses_the_old_format_beside_other_txt_values() {
    let own = ownership("shop");
    let spf = rs("example.com", RecordType::Txt, &["v=spf1 -all"]);
    let want = desired(&["example.com"], "192.0.2.10,2001:db8::10");
    let p = run(
        std::slice::from_ref(&spf),
        &want,
        &own,
        Policy::UpsertOnly,
        false,
    );
    assert_eq!(
        summary(&p),
        [
            "update example.com TXT",
            "create example.com A",
            "create example.com AAAA"
        ]
    );
    let after = apply(&[spf], &p).await;
    let txt = after
        .iter()
        .find(|r| r.record_type == RecordType::Txt)
        .unwrap();
    assert_eq!(
        txt.values.len(),
        2,
        "SPF kept beside the ownership value: {txt:?}"
    );
    assert!(run(&after, &want, &own, Policy::UpsertOnly, false).is_empty());
    // Back to IPv4 only: ferry's AAAA at the managed name goes, the TXT stays for the A.
    let v4 = desired(&["example.com"], "192.0.2.10");
    let p = run(&after, &v4, &own, Policy::UpsertOnly, false);
    assert_eq!(summary(&p), ["delete example.com AAAA"]);
}

#[test]
fn the_apex_cannot_be_a_cname_unless_the_provider_flattens() {
    let own = ownership("shop");
    let want = desired(&["example.com"], "lb.example.net");
    let z = zone();
    let req = |caps| PlanRequest {
        zone: &z,
        current: &[],
        desired: &want,
        ownership: &own,
        policy: Policy::UpsertOnly,
        adopt: false,
        capabilities: caps,
    };
    let err = plan(&req(Capabilities::default())).unwrap_err();
    assert!(err.to_string().contains("zone apex"), "{err}");
    let caps = Capabilities {
        cname_at_apex: true,
        ..Capabilities::default()
    };
    assert!(plan(&req(caps)).is_ok());
}

#[test]
fn policies_limit_what_happens_to_names_no_longer_configured() {
    let own = ownership("shop");
    let current = vec![
        rs("old.example.com", RecordType::A, &["192.0.2.1"]),
        owner_txt("a-old.example.com", "shop"),
        rs("app.example.com", RecordType::A, &["192.0.2.1"]),
        owner_txt("a-app.example.com", "shop"),
        rs("theirs.example.com", RecordType::A, &["192.0.2.1"]),
        owner_txt("a-theirs.example.com", "other"),
    ];
    let want = desired(&["app.example.com"], "192.0.2.2");
    let sync = run(&current, &want, &own, Policy::Sync, false);
    assert_eq!(
        summary(&sync),
        [
            "update app.example.com A",
            "delete old.example.com A",
            "delete a-old.example.com TXT"
        ]
    );
    let upsert = run(&current, &want, &own, Policy::UpsertOnly, false);
    assert_eq!(summary(&upsert), ["update app.example.com A"]);
    assert_eq!(upsert.skipped.len(), 1);
    assert!(upsert.skipped[0].reason.contains("policy sync removes it"));
    let create = run(&current, &want, &own, Policy::CreateOnly, false);
    assert!(create.changes.is_empty());
    assert_eq!(create.skipped.len(), 2);
}

/// The owner id defaults to the app's name, so two environments of one app in one zone share
/// it: `sync` in one must never remove the names the other wrote (its resource label differs).
#[test]
fn sync_removes_only_what_this_environment_wrote() {
    let own = Ownership::new(OwnerId::new("shop").unwrap(), "ferry/shop/staging").unwrap();
    let claim = |n: &str, env: &str| {
        rs(
            n,
            RecordType::Txt,
            &[&format!(
                "heritage=external-dns,external-dns/owner=shop,external-dns/resource=ferry/shop/{env}"
            )],
        )
    };
    let current = vec![
        rs("old-staging.example.com", RecordType::A, &["192.0.2.1"]),
        claim("a-old-staging.example.com", "staging"),
        rs("app.example.com", RecordType::A, &["192.0.2.9"]),
        claim("a-app.example.com", "prod"),
        rs("example.com", RecordType::A, &["192.0.2.9"]),
        claim("example.com", "prod"),
    ];
    let want = desired(&["staging.example.com"], "192.0.2.2");
    let sync = run(&current, &want, &own, Policy::Sync, false);
    assert_eq!(
        summary(&sync),
        [
            "create a-staging.example.com TXT",
            "create staging.example.com A",
            "delete old-staging.example.com A",
            "delete a-old-staging.example.com TXT"
        ]
    );
    // Nor is another environment's name reported as one this one keeps.
    let upsert = run(&current, &want, &own, Policy::UpsertOnly, false);
    assert_eq!(upsert.skipped.len(), 1, "{:?}", upsert.skipped);
    assert_eq!(
        upsert.skipped[0].change.key().name,
        name("old-staging.example.com")
    );
}

#[test]
fn switch_takes_over_a_previous_owner_and_rewrites_the_claim() {
    let mut own = ownership("shop-eks");
    let current = vec![
        rs("app.example.com", RecordType::A, &["192.0.2.1"]),
        owner_txt("a-app.example.com", "shop-aks"),
    ];
    let want = desired(&["app.example.com"], "lb-1.elb.us-east-1.amazonaws.com");
    let conflicts = run(&current, &want, &own, Policy::UpsertOnly, false).conflicts;
    assert_eq!(conflicts.len(), 1);
    // Another environment of the same app holds it: the hint names the switch that moves it.
    assert!(
        conflicts[0]
            .reason
            .contains("`ferry dns switch --env shop-aks --to shop-eks` moves it here"),
        "{}",
        conflicts[0].reason
    );
    // Another app's record: no switch to suggest.
    let mut elsewhere = current.clone();
    elsewhere[1] = rs(
        "a-app.example.com",
        RecordType::Txt,
        &[
            "heritage=external-dns,external-dns/owner=shop-aks,external-dns/resource=ferry/blog/prod",
        ],
    );
    let conflicts = run(&elsewhere, &want, &own, Policy::UpsertOnly, false).conflicts;
    assert_eq!(conflicts.len(), 1);
    assert!(
        !conflicts[0].reason.contains("switch")
            && conflicts[0]
                .reason
                .contains("give this environment that owner id"),
        "{}",
        conflicts[0].reason
    );
    own.previous_owners.push(OwnerId::new("shop-aks").unwrap());
    let p = run(&current, &want, &own, Policy::UpsertOnly, false);
    assert!(p.conflicts.is_empty());
    assert_eq!(
        summary(&p),
        [
            "create cname-app.example.com TXT",
            "delete app.example.com A",
            "create app.example.com CNAME",
            "delete a-app.example.com TXT",
        ]
    );
}

#[test]
fn ttl_and_proxied_do_not_cause_endless_updates() {
    let own = ownership("shop");
    let current = vec![
        rs("app.example.com", RecordType::A, &["192.0.2.1"]).with_proxied(Some(true)),
        owner_txt("a-app.example.com", "shop"),
    ];
    // The config says nothing about proxying: the current flag stays and no update is planned.
    let want = desired(&["app.example.com"], "192.0.2.1");
    assert!(run(&current, &want, &own, Policy::UpsertOnly, false).is_empty());
    // A proxied record's TTL is automatic: another configured TTL changes nothing...
    let mut longer = want.clone();
    longer[0].ttl = 3600;
    assert!(run(&current, &longer, &own, Policy::UpsertOnly, false).is_empty());
    // ...and once proxying is turned off it counts again.
    let unproxied: Vec<RecordSet> = longer
        .iter()
        .cloned()
        .map(|r| r.with_proxied(Some(false)))
        .collect();
    assert_eq!(
        run(&current, &unproxied, &own, Policy::UpsertOnly, false)
            .changes
            .len(),
        1
    );
    // A new address is a real change, and the update keeps the proxy flag (and its auto TTL).
    let moved = desired(&["app.example.com"], "192.0.2.2");
    let p = run(&current, &moved, &own, Policy::UpsertOnly, false);
    let Change::Update { new, .. } = &p.changes.changes()[0] else {
        panic!()
    };
    assert_eq!(new.proxied, Some(true));
    assert_eq!(new.ttl, 1);
}

#[test]
fn bad_desired_sets_are_refused() {
    let own = ownership("shop");
    let outside = desired(&["app.example.org"], "192.0.2.1");
    let err = plan(&PlanRequest {
        zone: &zone(),
        current: &[],
        desired: &outside,
        ownership: &own,
        policy: Policy::UpsertOnly,
        adopt: false,
        capabilities: Capabilities::default(),
    })
    .unwrap_err();
    assert!(err.to_string().contains("not in zone"), "{err}");
    let mut twice = desired(&["app.example.com"], "192.0.2.1");
    twice.extend(desired(&["app.example.com"], "lb.example.net"));
    let err = plan(&PlanRequest {
        zone: &zone(),
        current: &[],
        desired: &twice,
        ownership: &own,
        policy: Policy::UpsertOnly,
        adopt: false,
        capabilities: Capabilities::default(),
    })
    .unwrap_err();
    assert!(err.to_string().contains("stands alone"), "{err}");
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    const NAMES: [&str; 5] = [
        "example.com",
        "app.example.com",
        "api.example.com",
        "a-app.example.com",
        "www.example.com",
    ];
    const OWNERS: [&str; 3] = ["shop", "other", "shop-old"];

    fn any_target() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("192.0.2.1".to_owned()),
            Just("192.0.2.2,2001:db8::2".to_owned()),
            Just("2001:db8::3".to_owned()),
            Just("lb-1.elb.us-east-1.amazonaws.com".to_owned()),
            Just("lb.example.net".to_owned()),
        ]
    }

    /// A zone built by earlier runs of ferry (as several owners) and by hand.
    fn any_zone() -> impl Strategy<Value = Vec<RecordSet>> {
        let step = (0..NAMES.len(), any_target(), 0..OWNERS.len(), any::<bool>());
        proptest::collection::vec(step, 0..6).prop_map(|steps| {
            let p = InMemoryProvider::new(zone());
            for (i, target, owner, by_hand) in steps {
                let n = name(NAMES[i]);
                let t: Target = target.parse().unwrap();
                let Ok(sets) = t.record_sets(&n, 300, None) else {
                    continue;
                };
                if by_hand {
                    for s in sets {
                        let taken = p.snapshot().iter().any(|r| {
                            r.name == s.name
                                && (r.record_type == s.record_type
                                    || r.record_type == RecordType::Cname
                                    || s.record_type == RecordType::Cname)
                        });
                        if !taken {
                            p.insert(s);
                        }
                    }
                } else {
                    let own = ownership(OWNERS[owner]);
                    let current = p.snapshot();
                    if let Ok(plan) = plan(&PlanRequest {
                        zone: &zone(),
                        current: &current,
                        desired: &sets,
                        ownership: &own,
                        policy: Policy::Sync,
                        adopt: false,
                        capabilities: Capabilities::default(),
                    }) {
                        let rt = tokio::runtime::Builder::new_current_thread()
                            .build()
                            .unwrap();
                        rt.block_on(p.apply(&plan.changes)).unwrap();
                    }
                }
            }
            p.snapshot()
        })
    }

    fn any_policy() -> impl Strategy<Value = Policy> {
        prop_oneof![
            Just(Policy::Sync),
            Just(Policy::UpsertOnly),
            Just(Policy::CreateOnly)
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Plan, apply, plan again: nothing left to do, and what ferry does not own is untouched.
        #[test]
        fn applying_a_plan_converges_and_spares_foreign_records(
            start in any_zone(),
            names in proptest::collection::btree_set(0..NAMES.len(), 1..4),
            target in any_target(),
            policy in any_policy(),
            adopt in any::<bool>(),
        ) {
            let own = ownership("shop");
            let t: Target = target.parse().unwrap();
            let want: Vec<RecordSet> = names
                .iter()
                .flat_map(|i| t.record_sets(&name(NAMES[*i]), 300, None).unwrap())
                .collect();
            let req = PlanRequest {
                zone: &zone(),
                current: &start,
                desired: &want,
                ownership: &own,
                policy,
                adopt,
                capabilities: Capabilities::default(),
            };
            let Ok(first) = plan(&req) else {
                // Only the apex CNAME is refused, and only for a hostname target.
                prop_assert!(names.contains(&0) && matches!(t, Target::Hostname(_)));
                return Ok(());
            };
            let p = InMemoryProvider::new(zone());
            for r in &start {
                p.insert(r.clone());
            }
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            rt.block_on(p.apply(&first.changes)).map_err(|e| TestCaseError::fail(format!("apply failed: {e}\n{:#?}", first.changes)))?;
            let after = p.snapshot();

            // Converged: a second plan changes nothing. (When the first plan reported a
            // conflict with a record ferry itself removes in the same run, say a CNAME of its
            // own at the name an ownership record needs, the next run may finish the work; it
            // must converge by the third.)
            let mut after = after;
            let mut rounds = if first.conflicts.is_empty() { 1 } else { 3 };
            loop {
                let next = plan(&PlanRequest { current: &after, ..req.clone() }).unwrap();
                if next.changes.is_empty() {
                    break;
                }
                rounds -= 1;
                prop_assert!(rounds > 0, "did not converge: {:#?}", next.changes);
                rt.block_on(p.apply(&next.changes)).map_err(|e| TestCaseError::fail(format!("apply failed: {e}")))?;
                after = p.snapshot();
            }

            // Ownership: without adopt, record sets ferry did not own are exactly as they were,
            // and TXT values that are not ferry's are all still there.
            if !adopt {
                let claims = crate::ownership::Claims::read(&own.naming, &zone(), start.iter());
                for before in &start {
                    if before.record_type == RecordType::Txt {
                        let now = after.iter().find(|r| r.key() == before.key());
                        for v in &before.values {
                            let ours = crate::ownership::Labels::parse(v)
                                .is_some_and(|l| l.owner() == Some("shop"));
                            if !ours {
                                prop_assert!(now.is_some_and(|n| n.values.contains(v)), "foreign TXT value {v:?} at {} was removed", before.name);
                            }
                        }
                        continue;
                    }
                    let held = claims.claims(&own.naming, &zone(), &before.name, &before.record_type, before.alias.is_some());
                    let owned = !held.is_empty() && held.iter().all(|c| c.owner.as_deref() == Some("shop"));
                    if !owned {
                        prop_assert!(after.contains(before), "foreign {} was changed", before.key());
                    }
                }
            }
        }
    }
}
