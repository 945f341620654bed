//! Property tests of the estimator over random specs.

use ferry_cost::{Catalog, Decimal, InfraSpec, Line, estimate};
use proptest::prelude::*;

const INSTANCE_TYPES: &[&str] = &[
    "t3.medium",
    "t3.large",
    "m5.xlarge",
    "c5.2xlarge",
    "Standard_B2s",
    "Standard_D4s_v5",
    "no.such-type",
];
const REGIONS: &[&str] = &[
    "us-east-1",
    "us-west-2",
    "eu-west-1",
    "eastus",
    "westeurope",
    "mars-1",
];
const DISKS: &[&str] = &["gp2", "gp3", "premium_ssd", "standard_ssd", "floppy"];

fn gb() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("0".to_owned()),
        (0u64..200_000).prop_map(|n| n.to_string()),
        (0u64..100_000, 0u32..1000).prop_map(|(a, b)| format!("{a}.{b:03}")),
    ]
}

fn spec_text() -> impl Strategy<Value = String> {
    (
        prop_oneof![Just("aws"), Just("azure")],
        proptest::sample::select(REGIONS),
        proptest::sample::select(&["standard", "extended", "free", "premium", "gold"][..]),
        proptest::collection::vec(
            (
                proptest::sample::select(INSTANCE_TYPES),
                0u32..20,
                proptest::sample::select(DISKS),
                0u32..5000,
            ),
            0..4,
        ),
        proptest::collection::vec((proptest::sample::select(&["nlb", "alb", "azure_standard"][..]), gb(), 0u32..12), 0..3),
        (0u32..4, gb(), 0u32..6),
        (gb(), gb(), gb(), gb()),
        proptest::collection::vec((proptest::sample::select(&["db.t3.medium", "db.m5.large", "db.x9"][..]), any::<bool>(), 0u32..2000), 0..2),
        proptest::collection::vec((proptest::sample::select(&["cache.t3.medium", "cache.r5.large"][..]), 0u32..6), 0..2),
    )
        .prop_map(|(cloud, region, cp, groups, lbs, (nat, nat_gb, ips), (egress, logs, obj, reg), dbs, caches)| {
            let mut t = format!(
                "cloud = \"{cloud}\"\nregion = \"{region}\"\ncontrol_plane = \"{cp}\"\nnat_gateways = {nat}\nnat_processed_gb = {nat_gb}\npublic_ipv4 = {ips}\negress_gb = {egress}\nlogs_gb = {logs}\nobject_storage_gb = {obj}\nregistry_gb = {reg}\n"
            );
            for (i, (ty, count, disk, disk_gb)) in groups.iter().enumerate() {
                t += &format!("[[node_groups]]\nname = \"g{i}\"\ninstance_type = \"{ty}\"\ncount = {count}\ndisk_type = \"{disk}\"\ndisk_gb = {disk_gb}\n");
            }
            for (i, (kind, units, rules)) in lbs.iter().enumerate() {
                let usage = if *kind == "azure_standard" { format!("processed_gb = {units}\nrules = {rules}") } else { format!("capacity_units = {units}") };
                t += &format!("[[load_balancers]]\nname = \"lb{i}\"\nkind = \"{kind}\"\n{usage}\n");
            }
            for (i, (class, multi, storage)) in dbs.iter().enumerate() {
                t += &format!("[[databases]]\nname = \"db{i}\"\ninstance_class = \"{class}\"\nengine = \"postgres\"\nmulti_az = {multi}\nstorage_gb = {storage}\n");
            }
            for (i, (node, count)) in caches.iter().enumerate() {
                t += &format!("[[caches]]\nname = \"c{i}\"\nnode_type = \"{node}\"\ncount = {count}\n");
            }
            t
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn totals_are_non_negative_sums_of_their_lines(text in spec_text()) {
        let spec: InfraSpec = toml::from_str(&text).unwrap();
        let est = estimate(&spec, Catalog::embedded());
        let sum: Decimal = est.lines().filter_map(Line::monthly).sum();
        prop_assert_eq!(est.total(), sum);
        prop_assert!(est.total() >= Decimal::ZERO);
        for line in est.lines() {
            prop_assert!(line.quantity >= Decimal::ZERO, "{:?}", line);
            if let (Some(price), Some(monthly)) = (line.unit_price(), line.monthly()) {
                prop_assert!(monthly >= Decimal::ZERO);
                prop_assert_eq!(monthly, price * line.quantity);
            }
        }
        for r in &est.resources {
            prop_assert_eq!(r.monthly(), r.lines.iter().filter_map(Line::monthly).sum::<Decimal>());
        }
        // Unpriced lines and issues go together: an estimate is complete exactly when nothing
        // was reported unpriced.
        let unpriced_issue = est.issues.iter().any(|i| i.kind == ferry_cost::IssueKind::Unpriced);
        prop_assert_eq!(est.is_complete(), !unpriced_issue);
    }

    #[test]
    fn tiered_usage_costs_never_decrease_with_usage(a in 0u64..300_000, b in 0u64..300_000) {
        let (lo, hi) = (a.min(b), a.max(b));
        let cost = |gb: u64| {
            let spec: InfraSpec = toml::from_str(&format!(
                "cloud = \"aws\"\nregion = \"eu-west-1\"\ncontrol_plane = \"standard\"\negress_gb = {gb}\nobject_storage_gb = {gb}\nlogs_gb = {gb}\n"
            )).unwrap();
            estimate(&spec, Catalog::embedded()).total()
        };
        prop_assert!(cost(lo) <= cost(hi));
    }
}
