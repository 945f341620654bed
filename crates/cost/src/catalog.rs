//! The offline price catalog: `catalog/prices.toml`, embedded in the binary and parsed once.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr as _;
use std::sync::OnceLock;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::CostError;
use crate::spec::Cloud;

const EMBEDDED: &str = include_str!("../catalog/prices.toml");

/// What a price is per.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
pub enum Unit {
    /// One hour of one thing running.
    #[serde(rename = "hour")]
    Hour,
    /// One day of one thing (ACR tiers).
    #[serde(rename = "day")]
    Day,
    /// One GB stored for a month.
    #[serde(rename = "GB-month")]
    GbMonth,
    /// One GB stored for a day (ACR storage).
    #[serde(rename = "GB-day")]
    GbDay,
    /// One GB transferred, processed or ingested.
    #[serde(rename = "GB")]
    Gb,
    /// One ALB load-balancer capacity unit for an hour.
    #[serde(rename = "LCU-hour")]
    LcuHour,
    /// One NLB capacity unit for an hour.
    #[serde(rename = "NLCU-hour")]
    NlcuHour,
    /// One Azure load-balancer rule for an hour.
    #[serde(rename = "rule-hour")]
    RuleHour,
    /// One fixed-size managed disk for a month.
    #[serde(rename = "disk-month")]
    DiskMonth,
}

impl Unit {
    /// The unit's name, as in the catalog and the JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Hour => "hour",
            Unit::Day => "day",
            Unit::GbMonth => "GB-month",
            Unit::GbDay => "GB-day",
            Unit::Gb => "GB",
            Unit::LcuHour => "LCU-hour",
            Unit::NlcuHour => "NLCU-hour",
            Unit::RuleHour => "rule-hour",
            Unit::DiskMonth => "disk-month",
        }
    }

    /// Plural for display ("hours", "GB-months").
    pub fn plural(self) -> &'static str {
        match self {
            Unit::Hour => "hours",
            Unit::Day => "days",
            Unit::GbMonth => "GB-months",
            Unit::GbDay => "GB-days",
            Unit::Gb => "GB",
            Unit::LcuHour => "LCU-hours",
            Unit::NlcuHour => "NLCU-hours",
            Unit::RuleHour => "rule-hours",
            Unit::DiskMonth => "disk-months",
        }
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One priced row: a SKU (or one usage tier of it) in one region.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceRow {
    /// The cloud.
    pub cloud: Cloud,
    /// The region.
    pub region: String,
    /// The service (`ec2`, `eks`, `managed-disk`, ...).
    pub service: String,
    /// The SKU or usage key within the service (`t3.medium`, `internet-egress`).
    pub sku: String,
    /// What the price is per.
    pub unit: Unit,
    /// USD per unit.
    pub price: Decimal,
    /// Where this usage tier starts (per month, in the row's base unit); 0 for untiered rows.
    pub from: Decimal,
    /// For fixed-size disk tiers: the disk's capacity in GB.
    pub size_gb: Option<u32>,
    /// The source's URL.
    pub source: String,
    /// When the row was last checked against its source (`YYYY-MM-DD`).
    pub as_of: String,
    /// What the row covers, and any doubt about it.
    pub note: Option<String>,
}

impl PriceRow {
    /// `cloud/region/service/sku`, the row's key (tiers share it).
    pub fn key(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.cloud, self.region, self.service, self.sku
        )
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalog {
    sources: BTreeMap<String, String>,
    rows: Vec<RawRow>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRow {
    cloud: Cloud,
    region: String,
    service: String,
    sku: String,
    unit: Unit,
    price: String,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    size_gb: Option<u32>,
    source: String,
    as_of: String,
    #[serde(default)]
    note: Option<String>,
}

/// The price catalog.
#[derive(Debug, Clone)]
pub struct Catalog {
    rows: Vec<PriceRow>,
    index: BTreeMap<(Cloud, String, String, String), Vec<usize>>,
}

impl Catalog {
    /// The catalog compiled into this build, parsed on first use.
    ///
    /// # Panics
    /// If the embedded file is malformed — a build defect that the crate's tests catch.
    pub fn embedded() -> &'static Catalog {
        static CATALOG: OnceLock<Catalog> = OnceLock::new();
        CATALOG.get_or_init(|| Catalog::parse(EMBEDDED).unwrap_or_else(|e| panic!("{e}")))
    }

    /// Parses a catalog in the format of `catalog/prices.toml`, checking every row: a known
    /// source with an https URL, a `YYYY-MM-DD` date, a non-negative decimal price, tiers that
    /// start at 0 and do not repeat, and fixed-size tiers only on `disk-month` rows.
    ///
    /// # Errors
    /// [`CostError::Catalog`] naming the first bad row.
    pub fn parse(text: &str) -> Result<Self, CostError> {
        let raw: RawCatalog =
            toml::from_str(text).map_err(|e| CostError::Catalog(e.to_string()))?;
        let mut rows = Vec::with_capacity(raw.rows.len());
        for (i, r) in raw.rows.into_iter().enumerate() {
            let at = |what: String| {
                CostError::Catalog(format!(
                    "row {i} ({}/{}/{}): {what}",
                    r.region, r.service, r.sku
                ))
            };
            let source = raw
                .sources
                .get(&r.source)
                .ok_or_else(|| at(format!("unknown source `{}`", r.source)))?;
            if !source.starts_with("https://") {
                return Err(at(format!("source `{}` is not an https URL", r.source)));
            }
            if !is_date(&r.as_of) {
                return Err(at(format!("as_of `{}` is not a YYYY-MM-DD date", r.as_of)));
            }
            let price = Decimal::from_str(&r.price)
                .map_err(|_| at(format!("price `{}` is not a decimal", r.price)))?;
            if price.is_sign_negative() {
                return Err(at("negative price".to_owned()));
            }
            let from = match &r.from {
                Some(f) => {
                    Decimal::from_str(f).map_err(|_| at(format!("from `{f}` is not a decimal")))?
                }
                None => Decimal::ZERO,
            };
            if r.size_gb.is_some() != (r.unit == Unit::DiskMonth) {
                return Err(at("size_gb is given exactly on disk-month rows".to_owned()));
            }
            rows.push(PriceRow {
                cloud: r.cloud,
                region: r.region,
                service: r.service,
                sku: r.sku,
                unit: r.unit,
                price,
                from,
                size_gb: r.size_gb,
                source: source.clone(),
                as_of: r.as_of,
                note: r.note,
            });
        }
        let mut index: BTreeMap<_, Vec<usize>> = BTreeMap::new();
        for (i, row) in rows.iter().enumerate() {
            index
                .entry((
                    row.cloud,
                    row.region.clone(),
                    row.service.clone(),
                    row.sku.clone(),
                ))
                .or_default()
                .push(i);
        }
        for ((cloud, region, service, sku), ids) in &mut index {
            ids.sort_by(|a, b| rows[*a].from.cmp(&rows[*b].from));
            let key = format!("{cloud}/{region}/{service}/{sku}");
            if rows[ids[0]].from != Decimal::ZERO {
                return Err(CostError::Catalog(format!(
                    "{key}: the first tier must start at 0"
                )));
            }
            for pair in ids.windows(2) {
                let (a, b) = (&rows[pair[0]], &rows[pair[1]]);
                if a.from == b.from {
                    return Err(CostError::Catalog(format!(
                        "{key}: two rows for the same tier"
                    )));
                }
                if a.unit != b.unit {
                    return Err(CostError::Catalog(format!(
                        "{key}: tiers with different units"
                    )));
                }
            }
        }
        Ok(Catalog { rows, index })
    }

    /// Every row.
    pub fn rows(&self) -> &[PriceRow] {
        &self.rows
    }

    /// The newest `as_of` date of any row: the catalog's date.
    pub fn as_of(&self) -> &str {
        self.rows
            .iter()
            .map(|r| r.as_of.as_str())
            .max()
            .unwrap_or("unknown")
    }

    /// The tiers of one SKU, lowest first (one element for untiered prices); empty when the
    /// catalog has no price for it.
    pub fn tiers(&self, cloud: Cloud, region: &str, service: &str, sku: &str) -> Vec<&PriceRow> {
        self.index
            .get(&(cloud, region.to_owned(), service.to_owned(), sku.to_owned()))
            .map(|ids| ids.iter().map(|i| &self.rows[*i]).collect())
            .unwrap_or_default()
    }

    /// The single price of an untiered SKU.
    pub fn price(&self, cloud: Cloud, region: &str, service: &str, sku: &str) -> Option<&PriceRow> {
        let tiers = self.tiers(cloud, region, service, sku);
        match tiers.as_slice() {
            [one] => Some(*one),
            _ => None,
        }
    }

    /// The regions the catalog prices for a cloud.
    pub fn regions(&self, cloud: Cloud) -> BTreeSet<&str> {
        self.rows
            .iter()
            .filter(|r| r.cloud == cloud)
            .map(|r| r.region.as_str())
            .collect()
    }

    /// The SKUs of a service in a region, in name order.
    pub fn skus(&self, cloud: Cloud, region: &str, service: &str) -> BTreeSet<&str> {
        self.rows
            .iter()
            .filter(|r| r.cloud == cloud && r.region == region && r.service == service)
            .map(|r| r.sku.as_str())
            .collect()
    }

    /// The smallest fixed-size disk tier of `family` (`premium_ssd`) holding `gb`.
    pub fn disk_tier(
        &self,
        cloud: Cloud,
        region: &str,
        family: &str,
        gb: u32,
    ) -> Option<&PriceRow> {
        let prefix = format!("{family}/");
        self.rows
            .iter()
            .filter(|r| {
                r.cloud == cloud
                    && r.region == region
                    && r.service == "managed-disk"
                    && r.sku.starts_with(&prefix)
            })
            .filter(|r| r.size_gb.is_some_and(|s| s >= gb))
            .min_by_key(|r| r.size_gb)
    }

    /// The disk families (`premium_ssd`, `standard_ssd`) of fixed-size disks in a region.
    pub fn disk_families(&self, cloud: Cloud, region: &str) -> BTreeSet<&str> {
        self.rows
            .iter()
            .filter(|r| r.cloud == cloud && r.region == region && r.service == "managed-disk")
            .filter_map(|r| r.sku.split_once('/').map(|(f, _)| f))
            .collect()
    }
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
        && matches!(s[5..7].parse::<u8>(), Ok(1..=12))
        && matches!(s[8..10].parse::<u8>(), Ok(1..=31))
}

/// The candidate closest to `given` (case-insensitive, by edit distance), if it is close enough
/// to be a plausible typo.
pub fn closest<'a>(given: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let given_l = given.to_ascii_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let c_l = c.to_ascii_lowercase();
        if c_l == given_l {
            return Some(c);
        }
        let dist = strsim::damerau_levenshtein(&given_l, &c_l);
        if best.is_none_or(|(d, _)| dist < d) {
            best = Some((dist, c));
        }
    }
    let limit = (given.chars().count() / 3).max(2);
    best.filter(|(d, _)| *d <= limit).map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_catalog_parses_and_every_row_has_a_source_and_a_date() {
        let cat = Catalog::parse(EMBEDDED).unwrap();
        assert!(cat.rows().len() > 250, "{}", cat.rows().len());
        for row in cat.rows() {
            assert!(row.source.starts_with("https://"), "{}", row.key());
            assert!(is_date(&row.as_of), "{}", row.key());
            assert!(!row.price.is_sign_negative(), "{}", row.key());
        }
        assert_eq!(cat.as_of(), "2026-11-23");
    }

    #[test]
    fn every_required_item_is_priced_in_every_region() {
        let cat = Catalog::embedded();
        for region in ["us-east-1", "us-west-2", "eu-west-1"] {
            for (service, sku) in [
                ("eks", "standard"),
                ("eks", "extended"),
                ("ec2", "t3.medium"),
                ("ec2", "t3.large"),
                ("ec2", "m5.large"),
                ("ec2", "m5.xlarge"),
                ("ec2", "c5.xlarge"),
                ("ebs", "gp2"),
                ("ebs", "gp3"),
                ("elb", "nlb"),
                ("elb", "nlcu"),
                ("elb", "alb"),
                ("elb", "lcu"),
                ("vpc", "nat-gateway"),
                ("vpc", "nat-gateway-data"),
                ("vpc", "public-ipv4"),
                ("data-transfer", "internet-egress"),
                ("cloudwatch", "logs-ingestion"),
                ("rds", "postgres/db.t3.medium/multi-az"),
                ("rds-storage", "gp2/multi-az"),
                ("elasticache", "cache.t3.medium"),
                ("s3", "standard"),
                ("ecr", "storage"),
            ] {
                assert!(
                    !cat.tiers(Cloud::Aws, region, service, sku).is_empty(),
                    "aws {region} {service} {sku}"
                );
            }
        }
        for region in ["eastus", "westeurope"] {
            for (service, sku) in [
                ("aks", "free"),
                ("aks", "standard"),
                ("vm", "Standard_B2s"),
                ("vm", "Standard_D2s_v5"),
                ("managed-disk", "premium_ssd/P10"),
                ("load-balancer", "standard"),
                ("nat-gateway", "gateway"),
                ("public-ip", "standard-ipv4"),
                ("bandwidth", "internet-egress"),
                ("monitor", "logs-ingestion"),
                ("blob", "hot-lrs"),
                ("acr", "basic"),
            ] {
                assert!(
                    !cat.tiers(Cloud::Azure, region, service, sku).is_empty(),
                    "azure {region} {service} {sku}"
                );
            }
        }
    }

    #[test]
    fn anchor_prices_match() {
        let cat = Catalog::embedded();
        let p = |service, sku| {
            cat.price(Cloud::Aws, "us-east-1", service, sku)
                .unwrap()
                .price
                .to_string()
        };
        assert_eq!(p("eks", "standard"), "0.10");
        assert_eq!(p("ec2", "t3.medium"), "0.0416");
        assert_eq!(p("ec2", "t3.large"), "0.0832");
        assert_eq!(p("ebs", "gp2"), "0.10");
        assert_eq!(p("elb", "nlb"), "0.0225");
        assert_eq!(p("elasticache", "cache.t3.medium"), "0.068");
        let egress = cat.tiers(Cloud::Aws, "us-east-1", "data-transfer", "internet-egress");
        assert_eq!(egress[0].price, Decimal::ZERO);
        assert_eq!(egress[1].from, Decimal::from(100));
        assert_eq!(egress[1].price.to_string(), "0.09");
    }

    #[test]
    fn bad_rows_are_refused() {
        let sources = "[sources]\na = \"https://example.com/\"\nb = \"http://example.com/\"\n";
        let row = |extra: &str| {
            format!(
                "rows = [{{ cloud = \"aws\", region = \"r\", service = \"s\", sku = \"k\", unit = \"hour\", {extra} }}]\n{sources}"
            )
        };
        assert!(
            Catalog::parse(&row(
                "price = \"1\", source = \"a\", as_of = \"2026-01-02\""
            ))
            .is_ok()
        );
        for bad in [
            "price = \"1\", source = \"zz\", as_of = \"2026-01-02\"",
            "price = \"1\", source = \"b\", as_of = \"2026-01-02\"",
            "price = \"1\", source = \"a\", as_of = \"yesterday\"",
            "price = \"1\", source = \"a\", as_of = \"2026-13-02\"",
            "price = \"one\", source = \"a\", as_of = \"2026-01-02\"",
            "price = \"-1\", source = \"a\", as_of = \"2026-01-02\"",
            "price = \"1\", source = \"a\"",
            "price = \"1\", as_of = \"2026-01-02\"",
            "price = \"1\", source = \"a\", as_of = \"2026-01-02\", from = \"5\"",
            "price = \"1\", source = \"a\", as_of = \"2026-01-02\", size_gb = 5",
        ] {
            assert!(Catalog::parse(&row(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn closest_finds_typos_only() {
        let c = ["t3.medium", "t3.large", "m5.large"];
        assert_eq!(closest("t3.mediun", c), Some("t3.medium"));
        assert_eq!(closest("T3.LARGE", c), Some("t3.large"));
        assert_eq!(closest("x9.enormous", c), None);
    }

    #[test]
    fn disk_tiers_round_up_to_the_next_size() {
        let cat = Catalog::embedded();
        let t = cat
            .disk_tier(Cloud::Azure, "eastus", "premium_ssd", 100)
            .unwrap();
        assert_eq!(t.sku, "premium_ssd/P10");
        let t = cat
            .disk_tier(Cloud::Azure, "eastus", "standard_ssd", 64)
            .unwrap();
        assert_eq!(t.sku, "standard_ssd/E6");
        assert!(
            cat.disk_tier(Cloud::Azure, "eastus", "premium_ssd", 5000)
                .is_none()
        );
    }
}
