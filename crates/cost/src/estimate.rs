//! The estimator: an [`InfraSpec`] and a [`Catalog`] in, an [`Estimate`] out.

use std::fmt;

use rust_decimal::Decimal;

use crate::catalog::{Catalog, PriceRow, Unit, closest};
use crate::money::{HOURS_PER_MONTH, days_per_month};
use crate::spec::{Cloud, InfraSpec, LoadBalancerKind};

/// One step of a key path inside `[env.NAME.infra]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathSeg {
    /// A table key.
    Key(String),
    /// An array index.
    Index(usize),
}

impl From<&str> for PathSeg {
    fn from(key: &str) -> Self {
        PathSeg::Key(key.to_owned())
    }
}

impl From<usize> for PathSeg {
    fn from(index: usize) -> Self {
        PathSeg::Index(index)
    }
}

/// Formats a path as TOML addresses it: `node_groups[0].instance_type`.
pub fn path_string(path: &[PathSeg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            PathSeg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            PathSeg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// One cost component of a resource: a unit price times a quantity.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// What is being paid for ("t3.medium on-demand", "internet egress, 100 GB–10 TB").
    pub component: String,
    /// The catalog key priced (`aws/us-east-1/ec2/t3.medium`).
    pub sku: String,
    /// What the unit price is per.
    pub unit: Unit,
    /// How many units a month.
    pub quantity: Decimal,
    /// How the quantity came about ("2 nodes × 730 h").
    pub detail: String,
    /// The price, or why there is none.
    pub price: LinePrice,
}

/// A line's price.
#[derive(Debug, Clone, PartialEq)]
pub enum LinePrice {
    /// Priced from a catalog row.
    Priced {
        /// USD per unit.
        unit_price: Decimal,
        /// `unit_price × quantity`, exact.
        monthly: Decimal,
        /// The row's source URL.
        source: String,
        /// The row's note, if any.
        note: Option<String>,
    },
    /// Not in the catalog: never counted as $0.
    Unpriced {
        /// Why.
        reason: String,
    },
}

impl Line {
    /// The monthly cost, when priced.
    pub fn monthly(&self) -> Option<Decimal> {
        match &self.price {
            LinePrice::Priced { monthly, .. } => Some(*monthly),
            LinePrice::Unpriced { .. } => None,
        }
    }

    /// The unit price, when priced.
    pub fn unit_price(&self) -> Option<Decimal> {
        match &self.price {
            LinePrice::Priced { unit_price, .. } => Some(*unit_price),
            LinePrice::Unpriced { .. } => None,
        }
    }
}

/// A resource of the environment and its cost lines.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// Its name ("node group general", "control plane").
    pub name: String,
    /// What kind of thing it is (`control_plane`, `node_group`, `load_balancer`, ...).
    pub kind: &'static str,
    /// Where it is declared, relative to `[env.NAME.infra]`.
    pub key_path: Vec<PathSeg>,
    /// Its cost components.
    pub lines: Vec<Line>,
}

impl Resource {
    /// The priced part of its monthly cost.
    pub fn monthly(&self) -> Decimal {
        self.lines.iter().filter_map(Line::monthly).sum()
    }
}

/// Whether an issue leaves something unpriced, or is a spec that cannot be right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueKind {
    /// The catalog has no price for a value (unknown instance type, region, tier).
    Unpriced,
    /// The value does not make sense for the cloud (an NLB on Azure).
    Invalid,
}

/// A problem with a value in the spec, located by its key path.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    /// What kind of problem.
    pub kind: IssueKind,
    /// Where, relative to `[env.NAME.infra]`.
    pub key_path: Vec<PathSeg>,
    /// What is wrong.
    pub message: String,
    /// How to fix it ("did you mean `t3.medium`?").
    pub help: Option<String>,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", path_string(&self.key_path), self.message)
    }
}

/// The monthly cost estimate of one environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    /// The cloud.
    pub cloud: Cloud,
    /// The region.
    pub region: String,
    /// The resources, in the order of the spec.
    pub resources: Vec<Resource>,
    /// Everything that could not be priced or is invalid.
    pub issues: Vec<Issue>,
}

impl Estimate {
    /// The sum of every priced line, exact.
    pub fn total(&self) -> Decimal {
        self.lines().filter_map(Line::monthly).sum()
    }

    /// Every line of every resource.
    pub fn lines(&self) -> impl Iterator<Item = &Line> {
        self.resources.iter().flat_map(|r| r.lines.iter())
    }

    /// How many lines have no price.
    pub fn unpriced_count(&self) -> usize {
        self.lines().filter(|l| l.monthly().is_none()).count()
    }

    /// Whether every line is priced (the total is the whole cost).
    pub fn is_complete(&self) -> bool {
        self.unpriced_count() == 0
    }
}

/// Estimates the monthly cost of `spec` with prices from `catalog`.
pub fn estimate(spec: &InfraSpec, catalog: &Catalog) -> Estimate {
    let mut est = Estimator {
        spec,
        catalog,
        region_known: catalog.regions(spec.cloud).contains(spec.region.as_str()),
        issues: Vec::new(),
        resources: Vec::new(),
    };
    if !est.region_known {
        let regions = catalog.regions(spec.cloud);
        let mut help = format!(
            "ferry's catalog prices {} in: {}",
            spec.cloud,
            regions.iter().copied().collect::<Vec<_>>().join(", ")
        );
        if let Some(near) = closest(&spec.region, regions.iter().copied()) {
            help = format!("did you mean `{near}`? {help}");
        }
        est.issues.push(Issue {
            kind: IssueKind::Unpriced,
            key_path: vec!["region".into()],
            message: format!("no prices for {} region `{}`", spec.cloud, spec.region),
            help: Some(help),
        });
    }
    est.run();
    Estimate {
        cloud: spec.cloud,
        region: spec.region.clone(),
        resources: est.resources,
        issues: est.issues,
    }
}

struct Estimator<'a> {
    spec: &'a InfraSpec,
    catalog: &'a Catalog,
    region_known: bool,
    issues: Vec<Issue>,
    resources: Vec<Resource>,
}

/// What a line prices, before looking it up.
struct Want<'p> {
    component: String,
    service: &'p str,
    sku: String,
    unit: Unit,
    quantity: Decimal,
    detail: String,
    /// Where the priced value is declared, for an issue when it is unknown.
    at: Vec<PathSeg>,
    /// What the value is called in messages ("instance type").
    what: &'p str,
    /// The value as written (for "did you mean").
    given: String,
}

impl<'p> Want<'p> {
    /// `count` `noun`s billed by the hour all month ("2 nodes × 730 h"), priced by the SKU
    /// `sku` of `service` as given (in the file, or chosen by ferry), declared at `at`.
    fn all_month(
        component: String,
        service: &'p str,
        sku: String,
        (count, noun): (u32, &str),
        at: Vec<PathSeg>,
        what: &'p str,
    ) -> Self {
        Want {
            component,
            service,
            sku: sku.clone(),
            unit: Unit::Hour,
            quantity: Decimal::from(count) * HOURS_PER_MONTH,
            detail: format!("{} × 730 h", plural(count, noun)),
            at,
            what,
            given: sku,
        }
    }
}

fn p(parts: &[PathSeg]) -> Vec<PathSeg> {
    parts.to_vec()
}

fn k(key: &str) -> PathSeg {
    PathSeg::Key(key.to_owned())
}

impl Estimator<'_> {
    fn cloud(&self) -> Cloud {
        self.spec.cloud
    }

    fn region(&self) -> &str {
        &self.spec.region
    }

    fn key(&self, service: &str, sku: &str) -> String {
        format!("{}/{}/{service}/{sku}", self.cloud(), self.region())
    }

    fn issue(&mut self, kind: IssueKind, at: Vec<PathSeg>, message: String, help: Option<String>) {
        self.issues.push(Issue {
            kind,
            key_path: at,
            message,
            help,
        });
    }

    fn unpriced_line(&self, w: &Want<'_>, reason: String) -> Line {
        Line {
            component: w.component.clone(),
            sku: self.key(w.service, &w.sku),
            unit: w.unit,
            quantity: w.quantity,
            detail: w.detail.clone(),
            price: LinePrice::Unpriced { reason },
        }
    }

    /// Prices an untiered SKU; an unknown one becomes an unpriced line and an issue.
    fn flat(&mut self, w: Want<'_>) -> Line {
        if !self.region_known {
            return self.unpriced_line(
                &w,
                format!("region `{}` is not in the catalog", self.region()),
            );
        }
        match self
            .catalog
            .price(self.cloud(), self.region(), w.service, &w.sku)
        {
            Some(row) => priced(&w, row, w.quantity, w.component.clone()),
            None => {
                let known = self.catalog.skus(self.cloud(), self.region(), w.service);
                let reason = format!(
                    "no price for {} `{}` in {} {}",
                    w.what,
                    w.given,
                    self.cloud(),
                    self.region()
                );
                let help = suggestion(&w.given, &known, w.what);
                self.issue(
                    IssueKind::Unpriced,
                    w.at.clone(),
                    reason.clone(),
                    Some(help),
                );
                self.unpriced_line(&w, reason)
            }
        }
    }

    /// Prices a tiered usage SKU: one line per tier the quantity reaches, or one line at the
    /// first paid tier's price when the quantity is zero (usage-priced items are always shown).
    fn tiered(&mut self, w: Want<'_>, multiplier: Decimal) -> Vec<Line> {
        if !self.region_known {
            return vec![self.unpriced_line(
                &w,
                format!("region `{}` is not in the catalog", self.region()),
            )];
        }
        let tiers = self
            .catalog
            .tiers(self.cloud(), self.region(), w.service, &w.sku);
        if tiers.is_empty() {
            let reason = format!(
                "no price for {} `{}` in {} {}",
                w.what,
                w.given,
                self.cloud(),
                self.region()
            );
            let known = self.catalog.skus(self.cloud(), self.region(), w.service);
            let help = suggestion(&w.given, &known, w.what);
            self.issue(
                IssueKind::Unpriced,
                w.at.clone(),
                reason.clone(),
                Some(help),
            );
            return vec![self.unpriced_line(&w, reason)];
        }
        let base = w.quantity;
        if base.is_zero() {
            let row = tiers
                .iter()
                .find(|t| !t.price.is_zero())
                .copied()
                .unwrap_or(tiers[0]);
            return vec![priced(&w, row, Decimal::ZERO, w.component.clone())];
        }
        let mut lines = Vec::new();
        for (i, row) in tiers.iter().enumerate() {
            if base <= row.from {
                break;
            }
            let end = tiers.get(i + 1).map(|n| n.from);
            let upper = end.map_or(base, |e| e.min(base));
            let in_tier = upper - row.from;
            let label = tier_label(w.unit, row.from, end, row.price.is_zero(), tiers.len());
            let component = match label {
                Some(l) => format!("{}, {l}", w.component),
                None => w.component.clone(),
            };
            lines.push(priced(&w, row, in_tier * multiplier, component));
        }
        lines
    }

    fn push(&mut self, name: String, kind: &'static str, key_path: Vec<PathSeg>, lines: Vec<Line>) {
        self.resources.push(Resource {
            name,
            kind,
            key_path,
            lines,
        });
    }

    fn run(&mut self) {
        self.control_plane();
        self.node_groups();
        self.load_balancers();
        self.nat();
        self.public_ipv4();
        self.volumes();
        self.databases();
        self.caches();
        self.egress();
        self.logs();
        self.object_storage();
        self.registry();
    }

    fn control_plane(&mut self) {
        let (service, label) = match self.cloud() {
            Cloud::Aws => ("eks", "EKS"),
            Cloud::Azure => ("aks", "AKS"),
        };
        let tier = self.spec.control_plane.clone();
        let line = self.flat(Want::all_month(
            format!("{label} control plane ({tier} tier)"),
            service,
            tier,
            (1, "cluster"),
            vec![k("control_plane")],
            "control plane tier",
        ));
        self.push(
            "control plane".to_owned(),
            "control_plane",
            vec![k("control_plane")],
            vec![line],
        );
    }

    fn node_groups(&mut self) {
        let (service, what) = match self.cloud() {
            Cloud::Aws => ("ec2", "instance type"),
            Cloud::Azure => ("vm", "VM size"),
        };
        for (i, g) in self.spec.node_groups.clone().into_iter().enumerate() {
            let at = p(&[k("node_groups"), PathSeg::Index(i)]);
            let mut lines = vec![self.flat(Want::all_month(
                format!("{} on-demand", g.instance_type),
                service,
                g.instance_type.clone(),
                (g.count, "node"),
                [at.clone(), vec![k("instance_type")]].concat(),
                what,
            ))];
            if g.disk_gb > 0 {
                let disk_type = g.disk_type.clone().unwrap_or_else(|| match self.cloud() {
                    Cloud::Aws => "gp3".to_owned(),
                    Cloud::Azure => "premium_ssd".to_owned(),
                });
                let type_at = if g.disk_type.is_some() {
                    k("disk_type")
                } else {
                    k("disk_gb")
                };
                lines.push(self.disk(
                    &disk_type,
                    g.disk_gb,
                    g.count,
                    "node disk",
                    [at.clone(), vec![type_at]].concat(),
                    [at.clone(), vec![k("disk_gb")]].concat(),
                ));
            }
            self.push(format!("node group {}", g.name), "node_group", at, lines);
        }
    }

    /// A disk line: EBS per GB-month on AWS, the smallest fixed-size tier on Azure.
    fn disk(
        &mut self,
        disk_type: &str,
        gb: u32,
        count: u32,
        label: &str,
        type_at: Vec<PathSeg>,
        size_at: Vec<PathSeg>,
    ) -> Line {
        match self.cloud() {
            Cloud::Aws => self.flat(Want {
                component: format!("{label} {disk_type}"),
                service: "ebs",
                sku: disk_type.to_owned(),
                unit: Unit::GbMonth,
                quantity: Decimal::from(gb) * Decimal::from(count),
                detail: format!("{} × {gb} GB", plural(count, "disk")),
                at: type_at,
                what: "EBS volume type",
                given: disk_type.to_owned(),
            }),
            Cloud::Azure => {
                let want = Want {
                    component: format!("{label} {disk_type}"),
                    service: "managed-disk",
                    sku: format!("{disk_type}/?"),
                    unit: Unit::DiskMonth,
                    quantity: Decimal::from(count),
                    detail: format!("{} of {gb} GB", plural(count, "disk")),
                    at: type_at.clone(),
                    what: "managed disk type",
                    given: disk_type.to_owned(),
                };
                if !self.region_known {
                    return self.unpriced_line(
                        &want,
                        format!("region `{}` is not in the catalog", self.region()),
                    );
                }
                match self
                    .catalog
                    .disk_tier(self.cloud(), self.region(), disk_type, gb)
                {
                    Some(row) => {
                        let tier = row.sku.split_once('/').map_or(row.sku.as_str(), |(_, t)| t);
                        let component = format!(
                            "{label} {disk_type} {tier} ({} GB)",
                            row.size_gb.unwrap_or(gb)
                        );
                        let mut line = priced(&want, row, want.quantity, component);
                        line.sku = row.key();
                        line
                    }
                    None => {
                        let families = self.catalog.disk_families(self.cloud(), self.region());
                        let (at, reason, help) = if families.contains(disk_type) {
                            (
                                size_at,
                                format!(
                                    "no {disk_type} disk tier holds {gb} GB in {} {}",
                                    self.cloud(),
                                    self.region()
                                ),
                                "ferry's catalog has fixed-size tiers up to 4096 GB".to_owned(),
                            )
                        } else {
                            (
                                type_at,
                                format!(
                                    "no price for managed disk type `{disk_type}` in {} {}",
                                    self.cloud(),
                                    self.region()
                                ),
                                suggestion(disk_type, &families, "managed disk type"),
                            )
                        };
                        self.issue(IssueKind::Unpriced, at, reason.clone(), Some(help));
                        self.unpriced_line(&want, reason)
                    }
                }
            }
        }
    }

    fn load_balancers(&mut self) {
        for (i, lb) in self.spec.load_balancers.clone().into_iter().enumerate() {
            let at = p(&[k("load_balancers"), PathSeg::Index(i)]);
            let fits = matches!(
                (self.cloud(), lb.kind),
                (Cloud::Aws, LoadBalancerKind::Nlb | LoadBalancerKind::Alb)
                    | (Cloud::Azure, LoadBalancerKind::AzureStandard)
            );
            if !fits {
                let allowed = match self.cloud() {
                    Cloud::Aws => "`nlb` or `alb`",
                    Cloud::Azure => "`azure_standard`",
                };
                self.issue(
                    IssueKind::Invalid,
                    [at.clone(), vec![k("kind")]].concat(),
                    format!(
                        "a `{}` load balancer does not exist on {}",
                        lb.kind.as_str(),
                        self.cloud()
                    ),
                    Some(format!("on {} use {allowed}", self.cloud())),
                );
                continue;
            }
            let lines = match lb.kind {
                LoadBalancerKind::Nlb | LoadBalancerKind::Alb => {
                    if !lb.processed_gb.is_zero() {
                        self.issue(
                            IssueKind::Invalid,
                            [at.clone(), vec![k("processed_gb")]].concat(),
                            "processed_gb applies to Azure load balancers; NLB and ALB are billed by capacity units".to_owned(),
                            Some("give the expected average capacity units per hour as `capacity_units`".to_owned()),
                        );
                    }
                    let (sku, cu, cu_unit, label) = match lb.kind {
                        LoadBalancerKind::Nlb => ("nlb", "nlcu", Unit::NlcuHour, "NLB"),
                        _ => ("alb", "lcu", Unit::LcuHour, "ALB"),
                    };
                    let hours = self.flat(Want {
                        component: format!("{label} hours"),
                        service: "elb",
                        sku: sku.to_owned(),
                        unit: Unit::Hour,
                        quantity: HOURS_PER_MONTH,
                        detail: "1 × 730 h".to_owned(),
                        at: [at.clone(), vec![k("kind")]].concat(),
                        what: "load balancer kind",
                        given: sku.to_owned(),
                    });
                    let units = self.flat(Want {
                        component: format!("{label} capacity units ({})", cu.to_uppercase()),
                        service: "elb",
                        sku: cu.to_owned(),
                        unit: cu_unit,
                        quantity: lb.capacity_units * HOURS_PER_MONTH,
                        detail: format!("{} average × 730 h", lb.capacity_units.normalize()),
                        at: [at.clone(), vec![k("capacity_units")]].concat(),
                        what: "capacity unit",
                        given: cu.to_owned(),
                    });
                    vec![hours, units]
                }
                LoadBalancerKind::AzureStandard => {
                    if !lb.capacity_units.is_zero() {
                        self.issue(
                            IssueKind::Invalid,
                            [at.clone(), vec![k("capacity_units")]].concat(),
                            "capacity_units applies to AWS NLB/ALB; an Azure Standard Load Balancer is billed by rules and data processed".to_owned(),
                            Some("give `rules` and `processed_gb` instead".to_owned()),
                        );
                    }
                    let mut lines = Vec::new();
                    if lb.rules > 0 {
                        lines.push(self.flat(Want {
                            component: "Standard LB hours (first 5 rules)".to_owned(),
                            service: "load-balancer",
                            sku: "standard".to_owned(),
                            unit: Unit::Hour,
                            quantity: HOURS_PER_MONTH,
                            detail: "1 × 730 h".to_owned(),
                            at: [at.clone(), vec![k("kind")]].concat(),
                            what: "load balancer kind",
                            given: "azure_standard".to_owned(),
                        }));
                    }
                    let extra = lb.rules.saturating_sub(5);
                    lines.push(self.flat(Want {
                        unit: Unit::RuleHour,
                        ..Want::all_month(
                            "Standard LB rules beyond 5".to_owned(),
                            "load-balancer",
                            "standard-extra-rule".to_owned(),
                            (extra, "rule"),
                            [at.clone(), vec![k("rules")]].concat(),
                            "load balancer rule",
                        )
                    }));
                    lines.push(self.flat(Want {
                        component: "Standard LB data processed".to_owned(),
                        service: "load-balancer",
                        sku: "standard-data".to_owned(),
                        unit: Unit::Gb,
                        quantity: lb.processed_gb,
                        detail: format!("{} GB", lb.processed_gb.normalize()),
                        at: [at.clone(), vec![k("processed_gb")]].concat(),
                        what: "load balancer data",
                        given: "standard-data".to_owned(),
                    }));
                    lines
                }
            };
            self.push(
                format!("load balancer {}", lb.name),
                "load_balancer",
                at,
                lines,
            );
        }
    }

    fn nat(&mut self) {
        let n = self.spec.nat_gateways;
        if n == 0 && self.spec.nat_processed_gb.is_zero() {
            return;
        }
        let (service, hour_sku, data_sku) = match self.cloud() {
            Cloud::Aws => ("vpc", "nat-gateway", "nat-gateway-data"),
            Cloud::Azure => ("nat-gateway", "gateway", "data"),
        };
        let hours = self.flat(Want::all_month(
            "NAT gateway hours".to_owned(),
            service,
            hour_sku.to_owned(),
            (n, "gateway"),
            vec![k("nat_gateways")],
            "NAT gateway",
        ));
        let data = self.flat(Want {
            component: "NAT gateway data processed".to_owned(),
            service,
            sku: data_sku.to_owned(),
            unit: Unit::Gb,
            quantity: self.spec.nat_processed_gb,
            detail: format!("{} GB", self.spec.nat_processed_gb.normalize()),
            at: vec![k("nat_processed_gb")],
            what: "NAT gateway data",
            given: data_sku.to_owned(),
        });
        self.push(
            "NAT gateways".to_owned(),
            "nat_gateway",
            vec![k("nat_gateways")],
            vec![hours, data],
        );
    }

    fn public_ipv4(&mut self) {
        let n = self.spec.public_ipv4;
        if n == 0 {
            return;
        }
        let (service, sku) = match self.cloud() {
            Cloud::Aws => ("vpc", "public-ipv4"),
            Cloud::Azure => ("public-ip", "standard-ipv4"),
        };
        let line = self.flat(Want::all_month(
            "public IPv4 addresses".to_owned(),
            service,
            sku.to_owned(),
            (n, "address"),
            vec![k("public_ipv4")],
            "public IP",
        ));
        self.push(
            "public IPv4".to_owned(),
            "public_ipv4",
            vec![k("public_ipv4")],
            vec![line],
        );
    }

    fn volumes(&mut self) {
        for (i, v) in self.spec.volumes.clone().into_iter().enumerate() {
            let at = p(&[k("volumes"), PathSeg::Index(i)]);
            let line = self.disk(
                &v.disk_type,
                v.size_gb,
                v.count,
                "volume",
                [at.clone(), vec![k("type")]].concat(),
                [at.clone(), vec![k("size_gb")]].concat(),
            );
            self.push(format!("volume {}", v.name), "volume", at, vec![line]);
        }
    }

    fn databases(&mut self) {
        for (i, db) in self.spec.databases.clone().into_iter().enumerate() {
            let at = p(&[k("databases"), PathSeg::Index(i)]);
            if self.cloud() == Cloud::Azure {
                let reason =
                    "ferry's catalog has no prices for Azure managed databases yet".to_owned();
                self.issue(
                    IssueKind::Unpriced,
                    at.clone(),
                    reason.clone(),
                    Some("remove the database from the spec, or estimate it separately".to_owned()),
                );
                let w = Want {
                    component: format!("{} {}", db.instance_class, db.engine),
                    service: "database",
                    sku: db.instance_class.clone(),
                    unit: Unit::Hour,
                    quantity: HOURS_PER_MONTH,
                    detail: "1 × 730 h".to_owned(),
                    at: at.clone(),
                    what: "database",
                    given: db.instance_class.clone(),
                };
                let line = self.unpriced_line(&w, reason);
                self.push(format!("database {}", db.name), "database", at, vec![line]);
                continue;
            }
            let az = if db.multi_az { "multi-az" } else { "single-az" };
            let az_label = if db.multi_az { "Multi-AZ" } else { "Single-AZ" };
            let engines = ["mysql", "postgres"];
            let mut lines = Vec::new();
            if !engines.contains(&db.engine.as_str()) {
                let help = suggestion(&db.engine, &engines.into_iter().collect(), "engine");
                let reason = format!("no prices for database engine `{}`", db.engine);
                self.issue(
                    IssueKind::Unpriced,
                    [at.clone(), vec![k("engine")]].concat(),
                    reason.clone(),
                    Some(help),
                );
                let w = Want {
                    component: format!("{} {} {az_label}", db.instance_class, db.engine),
                    service: "rds",
                    sku: format!("{}/{}/{az}", db.engine, db.instance_class),
                    unit: Unit::Hour,
                    quantity: HOURS_PER_MONTH,
                    detail: "1 × 730 h".to_owned(),
                    at: at.clone(),
                    what: "engine",
                    given: db.engine.clone(),
                };
                lines.push(self.unpriced_line(&w, reason));
            } else {
                let known: std::collections::BTreeSet<String> = self
                    .catalog
                    .skus(self.cloud(), self.region(), "rds")
                    .into_iter()
                    .filter_map(|s| s.split('/').nth(1).map(str::to_owned))
                    .collect();
                let instance_known = known.contains(&db.instance_class);
                let w = Want {
                    component: format!("{} {} {az_label}", db.instance_class, db.engine),
                    service: "rds",
                    sku: format!("{}/{}/{az}", db.engine, db.instance_class),
                    unit: Unit::Hour,
                    quantity: HOURS_PER_MONTH,
                    detail: "1 instance × 730 h".to_owned(),
                    at: [at.clone(), vec![k("instance_class")]].concat(),
                    what: "database instance class",
                    given: db.instance_class.clone(),
                };
                if instance_known || !self.region_known {
                    lines.push(self.flat(w));
                } else {
                    let reason = format!(
                        "no price for database instance class `{}` in {} {}",
                        db.instance_class,
                        self.cloud(),
                        self.region()
                    );
                    let help = suggestion(
                        &db.instance_class,
                        &known.iter().map(String::as_str).collect(),
                        "database instance class",
                    );
                    self.issue(
                        IssueKind::Unpriced,
                        w.at.clone(),
                        reason.clone(),
                        Some(help),
                    );
                    lines.push(self.unpriced_line(&w, reason));
                }
            }
            let storage_type = db.storage_type.clone().unwrap_or_else(|| "gp3".to_owned());
            let storage_at = if db.storage_type.is_some() {
                "storage_type"
            } else {
                "storage_gb"
            };
            lines.push(self.flat(Want {
                component: format!("storage {storage_type} {az_label}"),
                service: "rds-storage",
                sku: format!("{storage_type}/{az}"),
                unit: Unit::GbMonth,
                quantity: Decimal::from(db.storage_gb),
                detail: format!("{} GB", db.storage_gb),
                at: [at.clone(), vec![k(storage_at)]].concat(),
                what: "database storage type",
                given: storage_type.clone(),
            }));
            self.push(format!("database {}", db.name), "database", at, lines);
        }
    }

    fn caches(&mut self) {
        for (i, c) in self.spec.caches.clone().into_iter().enumerate() {
            let at = p(&[k("caches"), PathSeg::Index(i)]);
            let service = match self.cloud() {
                Cloud::Aws => "elasticache",
                Cloud::Azure => "azure-cache",
            };
            let line = self.flat(Want::all_month(
                format!("{} on-demand", c.node_type),
                service,
                c.node_type.clone(),
                (c.count, "node"),
                [at.clone(), vec![k("node_type")]].concat(),
                "cache node type",
            ));
            self.push(format!("cache {}", c.name), "cache", at, vec![line]);
        }
    }

    fn egress(&mut self) {
        let service = match self.cloud() {
            Cloud::Aws => "data-transfer",
            Cloud::Azure => "bandwidth",
        };
        let gb = self.spec.egress_gb;
        let lines = self.tiered(
            Want {
                component: "internet egress".to_owned(),
                service,
                sku: "internet-egress".to_owned(),
                unit: Unit::Gb,
                quantity: gb,
                detail: format!("{} GB", gb.normalize()),
                at: vec![k("egress_gb")],
                what: "egress",
                given: "internet-egress".to_owned(),
            },
            Decimal::ONE,
        );
        self.push(
            "internet egress".to_owned(),
            "egress",
            vec![k("egress_gb")],
            lines,
        );
    }

    fn logs(&mut self) {
        let (service, label) = match self.cloud() {
            Cloud::Aws => ("cloudwatch", "CloudWatch Logs ingestion"),
            Cloud::Azure => ("monitor", "Log Analytics ingestion"),
        };
        let gb = self.spec.logs_gb;
        let lines = self.tiered(
            Want {
                component: label.to_owned(),
                service,
                sku: "logs-ingestion".to_owned(),
                unit: Unit::Gb,
                quantity: gb,
                detail: format!("{} GB", gb.normalize()),
                at: vec![k("logs_gb")],
                what: "logs",
                given: "logs-ingestion".to_owned(),
            },
            Decimal::ONE,
        );
        self.push("logs".to_owned(), "logs", vec![k("logs_gb")], lines);
    }

    fn object_storage(&mut self) {
        let (service, sku, label) = match self.cloud() {
            Cloud::Aws => ("s3", "standard", "S3 Standard storage"),
            Cloud::Azure => ("blob", "hot-lrs", "Blob Hot LRS storage"),
        };
        let gb = self.spec.object_storage_gb;
        let lines = self.tiered(
            Want {
                component: label.to_owned(),
                service,
                sku: sku.to_owned(),
                unit: Unit::GbMonth,
                quantity: gb,
                detail: format!("{} GB", gb.normalize()),
                at: vec![k("object_storage_gb")],
                what: "object storage",
                given: sku.to_owned(),
            },
            Decimal::ONE,
        );
        self.push(
            "object storage".to_owned(),
            "object_storage",
            vec![k("object_storage_gb")],
            lines,
        );
    }

    fn registry(&mut self) {
        let gb = self.spec.registry_gb;
        match self.cloud() {
            Cloud::Aws => {
                if self.spec.registry_sku.is_some() {
                    self.issue(
                        IssueKind::Invalid,
                        vec![k("registry_sku")],
                        "registry_sku applies to Azure Container Registry; ECR has no tiers"
                            .to_owned(),
                        Some("remove registry_sku".to_owned()),
                    );
                }
                let line = self.flat(Want {
                    component: "ECR storage".to_owned(),
                    service: "ecr",
                    sku: "storage".to_owned(),
                    unit: Unit::GbMonth,
                    quantity: gb,
                    detail: format!("{} GB", gb.normalize()),
                    at: vec![k("registry_gb")],
                    what: "registry storage",
                    given: "storage".to_owned(),
                });
                self.push(
                    "image registry".to_owned(),
                    "registry",
                    vec![k("registry_gb")],
                    vec![line],
                );
            }
            Cloud::Azure => {
                if self.spec.registry_sku.is_none() && gb.is_zero() {
                    return;
                }
                let sku = self
                    .spec
                    .registry_sku
                    .clone()
                    .unwrap_or_else(|| "basic".to_owned());
                let at = if self.spec.registry_sku.is_some() {
                    "registry_sku"
                } else {
                    "registry_gb"
                };
                let days = days_per_month();
                let mut lines = vec![self.flat(Want {
                    component: format!("ACR {sku} tier"),
                    service: "acr",
                    sku: sku.clone(),
                    unit: Unit::Day,
                    quantity: days,
                    detail: "1 registry × 30.42 days".to_owned(),
                    at: vec![k(at)],
                    what: "ACR tier",
                    given: sku.clone(),
                })];
                if lines[0].monthly().is_some() {
                    lines.extend(self.tiered(
                        Want {
                            component: "ACR storage".to_owned(),
                            service: "acr",
                            sku: format!("storage/{sku}"),
                            unit: Unit::GbDay,
                            quantity: gb,
                            detail: format!("{} GB × 30.42 days", gb.normalize()),
                            at: vec![k("registry_gb")],
                            what: "ACR storage",
                            given: format!("storage/{sku}"),
                        },
                        days,
                    ));
                }
                self.push("image registry".to_owned(), "registry", vec![k(at)], lines);
            }
        }
    }
}

fn priced(w: &Want<'_>, row: &PriceRow, quantity: Decimal, component: String) -> Line {
    Line {
        component,
        sku: row.key(),
        unit: row.unit,
        quantity,
        detail: w.detail.clone(),
        price: LinePrice::Priced {
            unit_price: row.price,
            monthly: row.price * quantity,
            source: row.source.clone(),
            note: row.note.clone(),
        },
    }
}

fn tier_label(
    unit: Unit,
    from: Decimal,
    end: Option<Decimal>,
    free: bool,
    n_tiers: usize,
) -> Option<String> {
    if n_tiers == 1 {
        return None;
    }
    let base = match unit {
        Unit::GbMonth | Unit::GbDay => "GB",
        other => other.as_str(),
    };
    let f = from.normalize();
    Some(match (free, end) {
        (true, Some(e)) if from.is_zero() => format!("first {} {base} free", e.normalize()),
        (true, Some(e)) => format!("{f}–{} {base} free", e.normalize()),
        (true, None) => format!("over {f} {base} free"),
        (false, Some(e)) if from.is_zero() => format!("first {} {base}", e.normalize()),
        (false, Some(e)) => format!("{f}–{} {base}", e.normalize()),
        (false, None) => format!("over {f} {base}"),
    })
}

fn plural(n: u32, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else if word.ends_with("ss") {
        format!("{n} {word}es")
    } else {
        format!("{n} {word}s")
    }
}

fn suggestion(given: &str, known: &std::collections::BTreeSet<&str>, what: &str) -> String {
    let list: Vec<&str> = known.iter().copied().collect();
    let shown = if list.len() > 8 {
        format!("{}, … ({} in all)", list[..8].join(", "), list.len())
    } else {
        list.join(", ")
    };
    let known_part = if list.is_empty() {
        format!("ferry's catalog has no {what} prices here")
    } else {
        format!("ferry's catalog prices: {shown}")
    };
    match closest(given, list.iter().copied()) {
        Some(near) => format!("did you mean `{near}`? {known_part}"),
        None => known_part,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr as _;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn spec(text: &str) -> InfraSpec {
        toml::from_str(text).unwrap()
    }

    const DEV: &str = r#"
        cloud = "aws"
        region = "us-east-1"
        control_plane = "standard"
        egress_gb = 250
        logs_gb = 10
        [[node_groups]]
        name = "general"
        instance_type = "t3.medium"
        count = 2
        disk_type = "gp2"
        disk_gb = 50
        [[load_balancers]]
        name = "ingress"
        kind = "nlb"
    "#;

    #[test]
    fn dev_environment_lines() {
        let est = estimate(&spec(DEV), Catalog::embedded());
        assert!(est.issues.is_empty(), "{:?}", est.issues);
        let line = |c: &str| {
            est.lines()
                .find(|l| l.component.starts_with(c))
                .unwrap_or_else(|| {
                    panic!(
                        "no line {c}: {:#?}",
                        est.lines().map(|l| &l.component).collect::<Vec<_>>()
                    )
                })
                .clone()
        };
        assert_eq!(line("EKS control plane").monthly(), Some(d("73.00")));
        let nodes = line("t3.medium");
        assert_eq!(nodes.quantity, d("1460"));
        assert_eq!(nodes.monthly(), Some(d("60.736")));
        assert_eq!(line("node disk gp2").monthly(), Some(d("10.00")));
        assert_eq!(line("NLB hours").monthly(), Some(d("16.425")));
        // Usage-priced lines show even at zero usage.
        let nlcu = line("NLB capacity units");
        assert_eq!(
            (nlcu.quantity, nlcu.unit_price()),
            (Decimal::ZERO, Some(d("0.006")))
        );
        let free = line("internet egress, first 100 GB free");
        assert_eq!(
            (free.quantity, free.monthly()),
            (d("100"), Some(Decimal::ZERO))
        );
        let paid = line("internet egress, 100–10240 GB");
        assert_eq!(
            (paid.quantity, paid.monthly()),
            (d("150"), Some(d("13.50")))
        );
        assert_eq!(
            line("CloudWatch Logs ingestion, over 5 GB").monthly(),
            Some(d("2.50"))
        );
        let s3 = line("S3 Standard");
        assert_eq!(
            (s3.quantity, s3.unit_price()),
            (Decimal::ZERO, Some(d("0.023")))
        );
        assert_eq!(est.total(), est.lines().filter_map(Line::monthly).sum());
        assert!(est.is_complete());
    }

    #[test]
    fn unknown_values_are_unpriced_never_zero() {
        let text = DEV
            .replace("t3.medium", "t3.mediun")
            .replace("\"standard\"", "\"gold\"");
        let est = estimate(&spec(&text), Catalog::embedded());
        assert_eq!(est.unpriced_count(), 2);
        let paths: Vec<String> = est
            .issues
            .iter()
            .map(|i| path_string(&i.key_path))
            .collect();
        assert_eq!(paths, ["control_plane", "node_groups[0].instance_type"]);
        let help = est.issues[1].help.as_deref().unwrap();
        assert!(help.starts_with("did you mean `t3.medium`?"), "{help}");
        assert!(!est.is_complete());
    }

    #[test]
    fn unknown_region_is_one_issue_and_every_line_unpriced() {
        let est = estimate(
            &spec(&DEV.replace("us-east-1", "us-east-7")),
            Catalog::embedded(),
        );
        assert_eq!(est.issues.len(), 1, "{:?}", est.issues);
        assert_eq!(path_string(&est.issues[0].key_path), "region");
        assert!(
            est.issues[0]
                .help
                .as_deref()
                .unwrap()
                .contains("did you mean `us-east-1`?")
        );
        assert_eq!(est.total(), Decimal::ZERO);
        assert_eq!(est.unpriced_count(), est.lines().count());
    }

    #[test]
    fn azure_disks_use_fixed_tiers_and_wrong_kinds_are_invalid() {
        let est = estimate(
            &spec(
                r#"
                cloud = "azure"
                region = "eastus"
                control_plane = "free"
                registry_gb = 25
                [[node_groups]]
                name = "pool"
                instance_type = "Standard_B2s"
                count = 2
                disk_gb = 100
                [[load_balancers]]
                name = "a"
                kind = "nlb"
                "#,
            ),
            Catalog::embedded(),
        );
        let disk = est.lines().find(|l| l.component.contains("P10")).unwrap();
        assert_eq!((disk.quantity, disk.monthly()), (d("2"), Some(d("39.42"))));
        assert_eq!(est.issues.len(), 1);
        assert_eq!(est.issues[0].kind, IssueKind::Invalid);
        assert_eq!(
            path_string(&est.issues[0].key_path),
            "load_balancers[0].kind"
        );
        // ACR Basic includes 10 GB; the other 15 GB are billed per GB-day.
        let extra = est
            .lines()
            .find(|l| l.component.starts_with("ACR storage, over 10 GB"))
            .unwrap();
        assert_eq!(extra.quantity, d("15") * days_per_month());
    }
}
