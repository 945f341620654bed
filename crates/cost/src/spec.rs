//! The serde types of `[env.NAME.infra]` and `[env.NAME.budget]` in `ferry.toml`.
//!
//! They describe what an environment runs, in the terms a bill uses: a managed control plane,
//! node groups, load balancers, NAT gateways, disks, traffic and logs, and the managed extras
//! (databases, caches, object storage, an image registry). Names are cloud-neutral where the
//! thing is the same on AWS and Azure (`node_groups`, `object_storage_gb`, `registry_gb`), so
//! moving an environment between clouds changes values, not the shape of the file.
//!
//! Deserialising checks types and signs (a count is a non-negative integer, a GB figure a
//! non-negative number); whether a value is *known* (an instance type, a region) is the
//! estimator's job, so that it can report every unknown at once with its key path.

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::money;

/// Which cloud an environment runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Cloud {
    /// Amazon Web Services (EKS).
    Aws,
    /// Microsoft Azure (AKS).
    Azure,
}

impl Cloud {
    /// The name used in `ferry.toml` and in the catalog.
    pub fn as_str(self) -> &'static str {
        match self {
            Cloud::Aws => "aws",
            Cloud::Azure => "azure",
        }
    }
}

impl fmt::Display for Cloud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[env.NAME.infra]`: what the environment runs, for the cost estimate.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfraSpec {
    /// `aws` or `azure`.
    pub cloud: Cloud,
    /// The region, as the cloud names it (`us-east-1`, `westeurope`).
    pub region: String,
    /// The managed control plane's tier: `standard` or `extended` on EKS; `free`, `standard` or
    /// `premium` on AKS.
    pub control_plane: String,
    /// The node groups (EKS managed node groups, AKS node pools).
    #[serde(default)]
    pub node_groups: Vec<NodeGroup>,
    /// Load balancers in front of the cluster.
    #[serde(default)]
    pub load_balancers: Vec<LoadBalancer>,
    /// How many NAT gateways the network has.
    #[serde(default)]
    pub nat_gateways: u32,
    /// GB per month processed by the NAT gateways (usage-priced).
    #[serde(default, deserialize_with = "money::de_quantity")]
    pub nat_processed_gb: Decimal,
    /// Public IPv4 addresses held: one per availability zone of an internet-facing NLB or ALB,
    /// one per NAT gateway, one per node with a public IP, the AKS load balancer's frontend.
    #[serde(default)]
    pub public_ipv4: u32,
    /// Block storage beyond the nodes' own disks (persistent volumes).
    #[serde(default)]
    pub volumes: Vec<Volume>,
    /// GB per month sent to the internet.
    #[serde(default, deserialize_with = "money::de_quantity")]
    pub egress_gb: Decimal,
    /// GB per month of logs ingested (CloudWatch Logs, Azure Monitor Log Analytics).
    #[serde(default, deserialize_with = "money::de_quantity")]
    pub logs_gb: Decimal,
    /// Managed relational databases (RDS on AWS).
    #[serde(default)]
    pub databases: Vec<Database>,
    /// Managed in-memory caches (ElastiCache on AWS).
    #[serde(default)]
    pub caches: Vec<Cache>,
    /// GB stored in object storage (S3 Standard, Azure Blob Hot LRS).
    #[serde(default, deserialize_with = "money::de_quantity")]
    pub object_storage_gb: Decimal,
    /// GB stored in the cloud's image registry (ECR, ACR).
    #[serde(default, deserialize_with = "money::de_quantity")]
    pub registry_gb: Decimal,
    /// The ACR tier (`basic`, `standard`, `premium`); Azure only, default `basic`.
    #[serde(default)]
    pub registry_sku: Option<String>,
}

/// A node group: `count` nodes of one instance type, each with its own disk.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeGroup {
    /// The group's name, for the report.
    pub name: String,
    /// The instance type (`t3.medium`) or VM size (`Standard_B2s`).
    pub instance_type: String,
    /// How many nodes run (on-demand, all month).
    pub count: u32,
    /// The disk type: EBS `gp2`/`gp3`/`st1`/`sc1`, or Azure `premium_ssd`/`standard_ssd`.
    /// Default: `gp3` on AWS, `premium_ssd` on Azure.
    #[serde(default)]
    pub disk_type: Option<String>,
    /// Each node's disk size in GB (0: no disk priced).
    #[serde(default)]
    pub disk_gb: u32,
}

/// What kind of load balancer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadBalancerKind {
    /// AWS Network Load Balancer.
    Nlb,
    /// AWS Application Load Balancer.
    Alb,
    /// Azure Standard Load Balancer.
    AzureStandard,
}

impl LoadBalancerKind {
    /// The name used in `ferry.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            LoadBalancerKind::Nlb => "nlb",
            LoadBalancerKind::Alb => "alb",
            LoadBalancerKind::AzureStandard => "azure_standard",
        }
    }
}

/// A load balancer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadBalancer {
    /// Its name, for the report.
    pub name: String,
    /// `nlb`, `alb` or `azure_standard`.
    pub kind: LoadBalancerKind,
    /// NLB/ALB: the expected average capacity units per hour (NLCU or LCU).
    #[serde(default, deserialize_with = "money::de_quantity")]
    pub capacity_units: Decimal,
    /// Azure Standard LB: load-balancing and outbound rules (the first 5 are in the base price).
    #[serde(default = "one")]
    pub rules: u32,
    /// Azure Standard LB: GB per month of data processed.
    #[serde(default, deserialize_with = "money::de_quantity")]
    pub processed_gb: Decimal,
}

fn one() -> u32 {
    1
}

/// A block-storage volume (or `count` identical ones).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Volume {
    /// Its name, for the report.
    pub name: String,
    /// The disk type, as for [`NodeGroup::disk_type`] (here required).
    #[serde(rename = "type")]
    pub disk_type: String,
    /// Size of each volume in GB.
    pub size_gb: u32,
    /// How many such volumes (default 1).
    #[serde(default = "one")]
    pub count: u32,
}

/// A managed relational database instance.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Database {
    /// Its name, for the report.
    pub name: String,
    /// The instance class (`db.t3.medium`).
    pub instance_class: String,
    /// `postgres` or `mysql`.
    pub engine: String,
    /// A standby in a second zone (billed as a second instance).
    #[serde(default)]
    pub multi_az: bool,
    /// Allocated storage in GB.
    pub storage_gb: u32,
    /// `gp2` or `gp3` (default `gp3`).
    #[serde(default)]
    pub storage_type: Option<String>,
}

/// A managed cache cluster: `count` nodes of one type.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cache {
    /// Its name, for the report.
    pub name: String,
    /// The node type (`cache.t3.medium`).
    pub node_type: String,
    /// How many nodes.
    pub count: u32,
}

/// `[env.NAME.budget]`: the most the environment may cost, and may grow by.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// The monthly budget in USD: a number (`300`, `299.99`) or a string (`"300"`, `"$300"`).
    #[serde(default, deserialize_with = "money::de_opt_usd")]
    pub monthly_usd: Option<Decimal>,
    /// The largest allowed increase over a previous estimate: USD (`25`, `"$25"`) or a
    /// percentage (`"10%"`).
    #[serde(default)]
    pub max_increase: Option<MaxIncrease>,
}

/// The largest allowed increase over a previous estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxIncrease {
    /// An absolute amount in USD per month.
    Usd(Decimal),
    /// A percentage of the previous monthly total.
    Percent(Decimal),
}

impl MaxIncrease {
    /// Parses `25`, `25.50`, `$25` (USD) or `10%` (percent). Negative amounts are refused.
    ///
    /// # Errors
    /// [`crate::CostError::BadAmount`] when the text is neither.
    pub fn parse(text: &str) -> Result<Self, crate::CostError> {
        let trimmed = text.trim();
        if let Some(pct) = trimmed.strip_suffix('%') {
            // The error names the text as given (`10%%`), not what is left without its `%`.
            let expected = "a percentage such as `10%`";
            let value =
                money::parse_amount(pct, expected).map_err(|_| crate::CostError::BadAmount {
                    text: trimmed.to_owned(),
                    expected,
                })?;
            return Ok(MaxIncrease::Percent(value));
        }
        money::parse_usd(trimmed).map(MaxIncrease::Usd)
    }
}

impl fmt::Display for MaxIncrease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MaxIncrease::Usd(v) => write!(f, "${}", money::display_usd(*v)),
            MaxIncrease::Percent(p) => write!(f, "{}%", p.normalize()),
        }
    }
}

impl<'de> Deserialize<'de> for MaxIncrease {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = MaxIncrease;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an amount in USD (`25`, `\"$25\"`) or a percentage (`\"10%\"`)")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                MaxIncrease::parse(v).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
                money::decimal_from_i64(v).map(MaxIncrease::Usd)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(MaxIncrease::Usd(Decimal::from(v)))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
                money::decimal_from_f64(v).map(MaxIncrease::Usd)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr as _;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn max_increase_parses_usd_and_percent() {
        assert_eq!(MaxIncrease::parse("25").unwrap(), MaxIncrease::Usd(d("25")));
        assert_eq!(
            MaxIncrease::parse("$25.5").unwrap(),
            MaxIncrease::Usd(d("25.5"))
        );
        assert_eq!(
            MaxIncrease::parse("10%").unwrap(),
            MaxIncrease::Percent(d("10"))
        );
        assert!(MaxIncrease::parse("-5").is_err());
        assert!(MaxIncrease::parse("ten").is_err());
        assert!(MaxIncrease::parse("%").is_err());
    }

    #[test]
    fn infra_spec_reads_from_toml_with_defaults() {
        let spec: InfraSpec = toml::from_str(
            r#"
            cloud = "aws"
            region = "us-east-1"
            control_plane = "standard"
            egress_gb = 250
            logs_gb = 10.5
            [[node_groups]]
            name = "general"
            instance_type = "t3.medium"
            count = 2
            "#,
        )
        .unwrap();
        assert_eq!(spec.cloud, Cloud::Aws);
        assert_eq!(spec.egress_gb, d("250"));
        assert_eq!(spec.logs_gb, d("10.5"));
        assert_eq!(spec.node_groups[0].disk_gb, 0);
        assert!(spec.load_balancers.is_empty());
    }

    #[test]
    fn negative_quantities_and_counts_are_refused() {
        let err = toml::from_str::<InfraSpec>(
            "cloud = \"aws\"\nregion = \"us-east-1\"\ncontrol_plane = \"standard\"\negress_gb = -1\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("non-negative"), "{err}");
        let err = toml::from_str::<NodeGroup>(
            "name = \"a\"\ninstance_type = \"t3.medium\"\ncount = -2\n",
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("count") || err.to_string().contains("u32"),
            "{err}"
        );
    }

    #[test]
    fn a_bad_percentage_is_named_as_given() {
        for bad in ["10%%", "-10%", "1e2%", "%"] {
            let err = MaxIncrease::parse(bad).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("`{bad}` is not a percentage")),
                "{err}"
            );
        }
    }

    #[test]
    fn budget_accepts_numbers_and_strings() {
        let b: Budget = toml::from_str("monthly_usd = 300\nmax_increase = \"10%\"\n").unwrap();
        assert_eq!(b.monthly_usd, Some(d("300")));
        assert_eq!(b.max_increase, Some(MaxIncrease::Percent(d("10"))));
        let b: Budget = toml::from_str("monthly_usd = \"$299.99\"\nmax_increase = 20\n").unwrap();
        assert_eq!(b.monthly_usd, Some(d("299.99")));
        assert_eq!(b.max_increase, Some(MaxIncrease::Usd(d("20"))));
        assert!(toml::from_str::<Budget>("monthly_usd = \"lots\"\n").is_err());
        assert!(toml::from_str::<Budget>("monthly_usd = -3\n").is_err());
        assert!(toml::from_str::<Budget>("monthly_usd = true\n").is_err());
        assert!(toml::from_str::<Budget>("monthly_usd = \"10%\"\n").is_err());
    }
}
