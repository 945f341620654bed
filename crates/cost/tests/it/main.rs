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

/// The largest quantity a spec accepts (`ferry_cost::money::MAX_QUANTITY`).
const MAX_GB: &str = "1000000000000";

fn gb() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("0".to_owned()),
        Just(MAX_GB.to_owned()),
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
                prop_oneof![0u32..20, Just(u32::MAX)],
                proptest::sample::select(DISKS),
                prop_oneof![0u32..5000, Just(u32::MAX)],
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

/// Every quantity at the largest value the spec accepts and every count at `u32::MAX`, in every
/// region of both clouds: the estimate is a number (rust_decimal panics on overflow), and the
/// total is still the sum of its lines.
#[test]
fn the_largest_spec_accepted_estimates_without_overflow() {
    assert_eq!(ferry_cost::money::MAX_QUANTITY.to_string(), MAX_GB);
    let max = u32::MAX;
    for (cloud, regions, instance, disk, lb) in [
        ("aws", &REGIONS[..3], "t3.medium", "gp3", "nlb"),
        ("aws", &REGIONS[..3], "m5.xlarge", "gp2", "alb"),
        (
            "azure",
            &REGIONS[3..5],
            "Standard_B2s",
            "premium_ssd",
            "azure_standard",
        ),
    ] {
        for region in regions {
            let text = format!(
                "cloud = \"{cloud}\"\nregion = \"{region}\"\ncontrol_plane = \"standard\"\n\
                 nat_gateways = {max}\nnat_processed_gb = {MAX_GB}\npublic_ipv4 = {max}\n\
                 egress_gb = {MAX_GB}\nlogs_gb = {MAX_GB}\nobject_storage_gb = {MAX_GB}\n\
                 registry_gb = {MAX_GB}\n\
                 [[node_groups]]\nname = \"g\"\ninstance_type = \"{instance}\"\ncount = {max}\n\
                 disk_type = \"{disk}\"\ndisk_gb = {max}\n\
                 [[load_balancers]]\nname = \"lb\"\nkind = \"{lb}\"\ncapacity_units = {MAX_GB}\n\
                 processed_gb = {MAX_GB}\nrules = {max}\n\
                 [[volumes]]\nname = \"v\"\ntype = \"{disk}\"\nsize_gb = {max}\ncount = {max}\n\
                 [[databases]]\nname = \"db\"\ninstance_class = \"db.t3.medium\"\n\
                 engine = \"postgres\"\nmulti_az = true\nstorage_gb = {max}\n\
                 [[caches]]\nname = \"c\"\nnode_type = \"cache.t3.medium\"\ncount = {max}\n"
            );
            let spec: InfraSpec = toml::from_str(&text).unwrap();
            let est = estimate(&spec, Catalog::embedded());
            let sum: Decimal = est.lines().filter_map(Line::monthly).sum();
            assert_eq!(est.total(), sum, "{cloud} {region}");
            assert!(est.total() > Decimal::ZERO, "{cloud} {region}");
        }
    }
    // One more is refused when the file is read, with the limit in the message.
    let err = toml::from_str::<InfraSpec>(
        "cloud = \"aws\"\nregion = \"us-east-1\"\ncontrol_plane = \"standard\"\n\
         egress_gb = 1000000000000.5\n",
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("at most 1,000,000,000,000"),
        "{err}"
    );
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
