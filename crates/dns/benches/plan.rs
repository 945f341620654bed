//! How long planning takes for zones of realistic and unrealistic size: every name of the zone
//! owned by ferry and moving to a new address (the worst case: every set changes), beside as
//! many records of other owners. external-dns plans the same way (a diff of the zone's records
//! against the desired ones), so this is the cost both tools pay on every run; the planner is
//! pure, so the figure is the planner's alone.
#![expect(
    missing_docs,
    reason = "criterion_group! generates an undocumented function"
)]

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use ferry_dns::{
    Capabilities, DnsName, OwnerId, Ownership, PlanRequest, Policy, RecordSet, RecordType, plan,
};

fn zone_of(n: usize) -> (Vec<RecordSet>, Vec<RecordSet>) {
    let value =
        "heritage=external-dns,external-dns/owner=shop,external-dns/resource=ferry/shop/prod";
    let mut current = Vec::new();
    let mut desired = Vec::new();
    for i in 0..n {
        let name = DnsName::parse(&format!("app{i}.example.com")).unwrap();
        current.push(RecordSet::new(name.clone(), RecordType::A, 300, ["192.0.2.1"]).unwrap());
        current.push(
            RecordSet::new(
                DnsName::parse(&format!("a-app{i}.example.com")).unwrap(),
                RecordType::Txt,
                300,
                [value],
            )
            .unwrap(),
        );
        current.push(
            RecordSet::new(
                DnsName::parse(&format!("other{i}.example.com")).unwrap(),
                RecordType::A,
                300,
                ["198.51.100.1"],
            )
            .unwrap(),
        );
        desired.push(RecordSet::new(name, RecordType::A, 300, ["192.0.2.2"]).unwrap());
    }
    (current, desired)
}

fn bench(c: &mut Criterion) {
    let zone = DnsName::parse("example.com").unwrap();
    let own = Ownership::new(OwnerId::new("shop").unwrap(), "ferry/shop/prod").unwrap();
    let mut group = c.benchmark_group("plan");
    for n in [10usize, 1_000, 10_000] {
        let (current, desired) = zone_of(n);
        group.bench_with_input(BenchmarkId::new("names_moving", n), &n, |b, _| {
            b.iter(|| {
                let p = plan(&PlanRequest {
                    zone: &zone,
                    current: &current,
                    desired: &desired,
                    ownership: &own,
                    policy: Policy::Sync,
                    adopt: false,
                    capabilities: Capabilities::default(),
                })
                .unwrap();
                assert_eq!(p.changes.len(), n);
            });
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default();
    targets = bench
}
criterion_main!(benches);
