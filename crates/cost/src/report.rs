//! The JSON report: a stable, versioned schema that `ferry cost --format json` writes and
//! `--compare-to` reads back.
//!
//! Schema version 1 (`schema_version: 1`). Money is a string holding an exact decimal in USD
//! (`"60.736"`); each money value also has a `_rounded` twin rounded to cents for display.
//! Fields are never removed or renamed within a version; a reader refuses unknown fields so
//! that a hand-edited or foreign file is caught rather than half-read.
//!
//! ```text
//! {
//!   "schema_version": 1, "generator": "ferry 0.1.0", "currency": "USD",
//!   "hours_per_month": "730", "catalog_as_of": "2026-11-23",
//!   "environments": [ {
//!     "name", "cloud", "region", "complete", "unpriced_lines",
//!     "total_monthly", "total_monthly_rounded",
//!     "resources": [ { "name", "kind", "key_path", "monthly", "monthly_rounded",
//!        "lines": [ { "component", "sku", "unit", "quantity", "detail", "priced",
//!                     "unit_price", "monthly", "monthly_rounded", "note", "source",
//!                     "unpriced_reason" } ] } ],
//!     "budget": null | { "monthly_usd", "status": "within"|"over", "headroom" },
//!     "comparison": null | { "previous_total", "delta", "delta_pct", "max_increase",
//!        "status": "within"|"over"|"not_limited"|"new_environment",
//!        "changes": [ { "resource", "component", "previous", "current", "delta" } ] },
//!     "status": "ok" | "over_budget" | "over_increase" | "over_budget_and_increase"
//!   } ]
//! }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr as _;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::CostError;
use crate::estimate::{Estimate, LinePrice, path_string};
use crate::gate::{BudgetCheck, Verdict};
use crate::money::{HOURS_PER_MONTH, round_cents};

/// The largest monthly amount a line of a report read back may hold (10^24 USD): far beyond
/// anything a spec can cost, and far inside `Decimal`'s range.
const MAX_REPORT_AMOUNT: Decimal =
    Decimal::from_parts(2_701_131_776, 466_537_709, 54_210, false, 0);

/// The schema version this crate writes and reads.
pub const SCHEMA_VERSION: u64 = 1;

/// An exact USD amount, serialised as a decimal string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Money(pub Decimal);

impl Serialize for Money {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.normalize().to_string())
    }
}

/// A USD amount rounded to cents, serialised with exactly two decimals (`"73.00"`), for the
/// `_rounded` fields a person or a pull-request comment reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cents(pub Decimal);

impl Cents {
    /// Rounds an exact amount to cents.
    pub fn of(amount: Decimal) -> Self {
        Cents(round_cents(amount))
    }
}

impl Serialize for Cents {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{:.2}", self.0))
    }
}

impl<'de> Deserialize<'de> for Cents {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Money::deserialize(d).map(|m| Cents(m.0))
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let ok = !text.is_empty()
            && text
                .chars()
                .enumerate()
                .all(|(i, c)| c.is_ascii_digit() || c == '.' || (i == 0 && c == '-'));
        ok.then(|| Decimal::from_str(&text).ok())
            .flatten()
            .map(Money)
            .ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "`{text}` is not a decimal amount (expected a string such as \"60.736\")"
                ))
            })
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.normalize())
    }
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// Always [`SCHEMA_VERSION`] when written by this crate.
    pub schema_version: u64,
    /// What wrote it (`ferry 0.1.0`).
    pub generator: String,
    /// Always `USD`.
    pub currency: String,
    /// Always `730`.
    pub hours_per_month: Money,
    /// The catalog's date.
    pub catalog_as_of: String,
    /// One entry per environment estimated.
    pub environments: Vec<EnvReport>,
}

/// One environment's estimate and verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvReport {
    /// The environment's name.
    pub name: String,
    /// `aws` or `azure`.
    pub cloud: String,
    /// The region.
    pub region: String,
    /// Whether every line is priced.
    pub complete: bool,
    /// How many lines have no price.
    pub unpriced_lines: usize,
    /// Sum of every priced line.
    pub total_monthly: Money,
    /// The same, rounded to cents.
    pub total_monthly_rounded: Cents,
    /// The resources and their lines.
    pub resources: Vec<ResourceReport>,
    /// The budget check, when a budget is set.
    pub budget: Option<BudgetReport>,
    /// The comparison, when a previous estimate was given.
    pub comparison: Option<ComparisonReport>,
    /// `ok`, `over_budget`, `over_increase` or `over_budget_and_increase`.
    pub status: String,
}

/// A resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceReport {
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: String,
    /// Where it is declared in `[env.NAME.infra]`.
    pub key_path: String,
    /// Sum of its priced lines.
    pub monthly: Money,
    /// The same, rounded to cents.
    pub monthly_rounded: Cents,
    /// Its lines.
    pub lines: Vec<LineReport>,
}

/// A cost line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineReport {
    /// What is paid for.
    pub component: String,
    /// The catalog key.
    pub sku: String,
    /// What the unit price is per.
    pub unit: String,
    /// Units per month, exact.
    pub quantity: Money,
    /// How the quantity came about.
    pub detail: String,
    /// Whether the catalog priced it.
    pub priced: bool,
    /// USD per unit.
    pub unit_price: Option<Money>,
    /// `unit_price × quantity`.
    pub monthly: Option<Money>,
    /// The same, rounded to cents.
    pub monthly_rounded: Option<Cents>,
    /// The catalog row's note.
    pub note: Option<String>,
    /// The catalog row's source URL.
    pub source: Option<String>,
    /// Why it is unpriced.
    pub unpriced_reason: Option<String>,
}

/// The budget check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetReport {
    /// The budget.
    pub monthly_usd: Money,
    /// `within` or `over`.
    pub status: String,
    /// Budget minus total (negative when over).
    pub headroom: Money,
}

/// The comparison with a previous estimate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComparisonReport {
    /// The previous total (none for a new environment).
    pub previous_total: Option<Money>,
    /// Current minus previous.
    pub delta: Option<Money>,
    /// The delta in percent of the previous total.
    pub delta_pct: Option<Money>,
    /// The allowed increase (`$25` or `10%`).
    pub max_increase: Option<String>,
    /// `within`, `over`, `not_limited` or `new_environment`.
    pub status: String,
    /// Lines whose monthly cost changed, appeared or disappeared.
    pub changes: Vec<LineChange>,
}

/// One line's change against the previous estimate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineChange {
    /// The resource.
    pub resource: String,
    /// The component.
    pub component: String,
    /// Its previous monthly cost (none: new line, or unpriced).
    pub previous: Option<Money>,
    /// Its current monthly cost (none: removed line, or unpriced).
    pub current: Option<Money>,
    /// Current minus previous, counting a missing side as 0.
    pub delta: Money,
}

impl Report {
    /// A report of these environments.
    pub fn new(
        generator: impl Into<String>,
        catalog_as_of: impl Into<String>,
        environments: Vec<EnvReport>,
    ) -> Self {
        Report {
            schema_version: SCHEMA_VERSION,
            generator: generator.into(),
            currency: "USD".to_owned(),
            hours_per_month: Money(HOURS_PER_MONTH),
            catalog_as_of: catalog_as_of.into(),
            environments,
        }
    }

    /// Reads a report written by ferry, checking its schema version, its shape and that each
    /// environment's total is the sum of its lines.
    ///
    /// # Errors
    /// [`CostError::Report`] with the line and column of the problem, or
    /// [`CostError::UnsupportedSchema`].
    pub fn from_json(text: &str) -> Result<Self, CostError> {
        let located = |e: serde_json::Error| CostError::Report {
            line: e.line(),
            column: e.column(),
            message: e
                .to_string()
                .split(" at line ")
                .next()
                .unwrap_or_default()
                .to_owned(),
        };
        let value: serde_json::Value = serde_json::from_str(text).map_err(located)?;
        let version = value
            .get("schema_version")
            .ok_or_else(|| CostError::Report {
                line: 1,
                column: 1,
                message: "not a ferry cost report: no `schema_version` field".to_owned(),
            })?;
        match version.as_u64() {
            Some(SCHEMA_VERSION) => {}
            Some(found) => {
                return Err(CostError::UnsupportedSchema {
                    found,
                    supported: SCHEMA_VERSION,
                });
            }
            None => {
                return Err(CostError::Report {
                    line: 1,
                    column: 1,
                    message: format!("`schema_version` is {version}, expected an integer"),
                });
            }
        }
        let report: Report = serde_json::from_str(text).map_err(located)?;
        let unlocated = |message: String| CostError::Report {
            line: 0,
            column: 0,
            message,
        };
        for env in &report.environments {
            // ferry writes no negative amount and none beyond what a spec can cost; refusing
            // them keeps every sum and difference computed from this report inside `Decimal`'s
            // range (rust_decimal panics on overflow).
            let mut sum = Decimal::ZERO;
            for line in env.resources.iter().flat_map(|r| r.lines.iter()) {
                let Some(Money(amount)) = line.monthly else {
                    continue;
                };
                if amount.is_sign_negative() && !amount.is_zero() || amount > MAX_REPORT_AMOUNT {
                    return Err(unlocated(format!(
                        "environment `{}`, line `{}`: monthly {} is out of range (0 to {})",
                        env.name,
                        line.component,
                        amount.normalize(),
                        crate::money::display_quantity(MAX_REPORT_AMOUNT)
                    )));
                }
                sum = sum.checked_add(amount).ok_or_else(|| {
                    unlocated(format!(
                        "environment `{}`: the sum of its lines is out of range",
                        env.name
                    ))
                })?;
            }
            if sum != env.total_monthly.0 {
                return Err(unlocated(format!(
                    "environment `{}`: total_monthly {} is not the sum of its lines ({})",
                    env.name,
                    env.total_monthly,
                    sum.normalize()
                )));
            }
        }
        Ok(report)
    }

    /// The environment named `name`.
    pub fn environment(&self, name: &str) -> Option<&EnvReport> {
        self.environments.iter().find(|e| e.name == name)
    }
}

impl EnvReport {
    /// The report of one environment's estimate and verdict; `previous` is that environment's
    /// entry in the previous report, for the per-line changes.
    pub fn new(
        name: &str,
        estimate: &Estimate,
        verdict: &Verdict,
        previous: Option<&EnvReport>,
    ) -> Self {
        let total = estimate.total();
        let resources: Vec<ResourceReport> = estimate
            .resources
            .iter()
            .map(|r| ResourceReport {
                name: r.name.clone(),
                kind: r.kind.to_owned(),
                key_path: path_string(&r.key_path),
                monthly: Money(r.monthly()),
                monthly_rounded: Cents::of(r.monthly()),
                lines: r
                    .lines
                    .iter()
                    .map(|l| {
                        let (unit_price, monthly, note, source, reason) = match &l.price {
                            LinePrice::Priced {
                                unit_price,
                                monthly,
                                source,
                                note,
                            } => (
                                Some(*unit_price),
                                Some(*monthly),
                                note.clone(),
                                Some(source.clone()),
                                None,
                            ),
                            LinePrice::Unpriced { reason } => {
                                (None, None, None, None, Some(reason.clone()))
                            }
                        };
                        LineReport {
                            component: l.component.clone(),
                            sku: l.sku.clone(),
                            unit: l.unit.as_str().to_owned(),
                            quantity: Money(l.quantity),
                            detail: l.detail.clone(),
                            priced: monthly.is_some(),
                            unit_price: unit_price.map(Money),
                            monthly: monthly.map(Money),
                            monthly_rounded: monthly.map(Cents::of),
                            note,
                            source,
                            unpriced_reason: reason,
                        }
                    })
                    .collect(),
            })
            .collect();
        let budget = match verdict.budget {
            BudgetCheck::NoBudget => None,
            BudgetCheck::Within { budget, headroom } => Some(BudgetReport {
                monthly_usd: Money(budget),
                status: "within".to_owned(),
                headroom: Money(headroom),
            }),
            BudgetCheck::Over { budget, excess } => Some(BudgetReport {
                monthly_usd: Money(budget),
                status: "over".to_owned(),
                headroom: Money(-excess),
            }),
        };
        let comparison = if verdict.new_environment {
            Some(ComparisonReport {
                previous_total: None,
                delta: None,
                delta_pct: None,
                max_increase: None,
                status: "new_environment".to_owned(),
                changes: Vec::new(),
            })
        } else {
            verdict.comparison.map(|c| ComparisonReport {
                previous_total: Some(Money(c.previous)),
                delta: Some(Money(c.delta)),
                delta_pct: c.delta_pct.map(|p| Money(p.round_dp(2))),
                max_increase: c.max_increase.map(|m| m.to_string()),
                status: match (c.max_increase, c.over) {
                    (None, _) => "not_limited",
                    (Some(_), true) => "over",
                    (Some(_), false) => "within",
                }
                .to_owned(),
                changes: previous.map(|p| changes(p, &resources)).unwrap_or_default(),
            })
        };
        let status = match (verdict.over_budget(), verdict.over_increase()) {
            (false, false) => "ok",
            (true, false) => "over_budget",
            (false, true) => "over_increase",
            (true, true) => "over_budget_and_increase",
        };
        EnvReport {
            name: name.to_owned(),
            cloud: estimate.cloud.as_str().to_owned(),
            region: estimate.region.clone(),
            complete: estimate.is_complete(),
            unpriced_lines: estimate.unpriced_count(),
            total_monthly: Money(total),
            total_monthly_rounded: Cents::of(total),
            resources,
            budget,
            comparison,
            status: status.to_owned(),
        }
    }
}

/// Lines whose cost differs between `previous` and `current`, matched by resource and component.
fn changes(previous: &EnvReport, current: &[ResourceReport]) -> Vec<LineChange> {
    let index = |resources: &[ResourceReport]| -> BTreeMap<(String, String), Option<Decimal>> {
        let mut map = BTreeMap::new();
        for r in resources {
            for l in &r.lines {
                let entry = map
                    .entry((r.name.clone(), l.component.clone()))
                    .or_insert(Some(Decimal::ZERO));
                *entry = match (*entry, l.monthly) {
                    (Some(a), Some(b)) => Some(a + b.0),
                    _ => None,
                };
            }
        }
        map
    };
    let before = index(&previous.resources);
    let after = index(current);
    let mut keys: Vec<&(String, String)> = before.keys().chain(after.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut out = Vec::new();
    for key in keys {
        let (prev, cur) = (before.get(key), after.get(key));
        let p = prev.copied().flatten();
        let c = cur.copied().flatten();
        if prev.is_some() && cur.is_some() && p == c {
            continue;
        }
        let delta = c.unwrap_or_default() - p.unwrap_or_default();
        out.push(LineChange {
            resource: key.0.clone(),
            component: key.1.clone(),
            previous: p.map(Money),
            current: c.map(Money),
            delta: Money(delta),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::estimate::estimate;
    use crate::gate::{Limits, Previous, check};

    fn env(text: &str, previous: Option<&EnvReport>) -> EnvReport {
        let spec = toml::from_str(text).unwrap();
        let est = estimate(&spec, Catalog::embedded());
        let prev = previous.map_or(Previous::NotGiven, |p| Previous::Total(p.total_monthly.0));
        let verdict = check(est.total(), Limits::default(), prev);
        EnvReport::new("dev", &est, &verdict, previous)
    }

    const SPEC: &str = "cloud = \"aws\"\nregion = \"us-east-1\"\ncontrol_plane = \"standard\"\n[[node_groups]]\nname = \"g\"\ninstance_type = \"t3.medium\"\ncount = 2\n";

    #[test]
    fn round_trips_through_json() {
        let report = Report::new("ferry test", "2026-11-23", vec![env(SPEC, None)]);
        let json = serde_json::to_string_pretty(&report).unwrap();
        assert!(json.contains("\"total_monthly\": \"133.736\""), "{json}");
        assert_eq!(Report::from_json(&json).unwrap(), report);
    }

    #[test]
    fn bad_reports_are_located_errors() {
        let report = Report::new("ferry test", "2026-11-23", vec![env(SPEC, None)]);
        let json = serde_json::to_string_pretty(&report).unwrap();
        let err = Report::from_json("{\n  \"schema_version\": 1,\n  oops\n}").unwrap_err();
        assert!(matches!(err, CostError::Report { line: 3, .. }), "{err:?}");
        let err =
            Report::from_json(&json.replace("\"schema_version\": 1", "\"schema_version\": 9"))
                .unwrap_err();
        assert!(matches!(err, CostError::UnsupportedSchema { found: 9, .. }));
        let err = Report::from_json(&json.replace("\"133.736\"", "\"lots\"")).unwrap_err();
        assert!(err.to_string().contains("not a decimal"), "{err}");
        let err = Report::from_json(
            &json.replace("\"total_monthly\": \"133.736\"", "\"total_monthly\": \"1\""),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("not the sum of its lines"),
            "{err}"
        );
        assert!(Report::from_json("[]").is_err());
        assert!(Report::from_json("").is_err());
    }

    /// A hand-edited report whose amounts would overflow a sum or a difference is refused, not
    /// a panic; an error with no known place does not print `line 0, column 0`.
    #[test]
    fn out_of_range_amounts_are_refused() {
        let report = Report::new("ferry test", "2026-11-23", vec![env(SPEC, None)]);
        let edit = |monthly: &str, total: &str| {
            let mut value = serde_json::to_value(&report).unwrap();
            let env = &mut value["environments"][0];
            for r in env["resources"].as_array_mut().unwrap() {
                for l in r["lines"].as_array_mut().unwrap() {
                    l["monthly"] = monthly.into();
                }
            }
            env["total_monthly"] = total.into();
            Report::from_json(&value.to_string())
        };
        let max = "79228162514264337593543950335";
        for (monthly, total) in [(max, max), ("-5", "-5"), ("1000000000000000000000001", "0")] {
            let err = edit(monthly, total).unwrap_err().to_string();
            assert!(err.contains("is out of range"), "{monthly}: {err}");
            assert!(!err.contains("line 0"), "{err}");
        }
        // At the limit, a report is still read.
        let lines = report.environments[0]
            .resources
            .iter()
            .map(|r| r.lines.len())
            .sum::<usize>();
        let limit = Decimal::from_str("1000000000000000000000000").unwrap();
        let total = limit * Decimal::from(lines);
        assert!(edit(&limit.to_string(), &total.to_string()).is_ok());
    }

    #[test]
    fn changes_list_what_moved() {
        let before = env(SPEC, None);
        let after = env(&SPEC.replace("count = 2", "count = 3"), Some(&before));
        let cmp = after.comparison.unwrap();
        assert_eq!(cmp.status, "not_limited");
        assert_eq!(cmp.changes.len(), 1);
        assert_eq!(cmp.changes[0].component, "t3.medium on-demand");
        assert_eq!(cmp.changes[0].delta.0.to_string(), "30.3680");
    }
}
