//! The gate: is an estimate within its budget, and within the allowed increase over a previous
//! estimate?

use rust_decimal::Decimal;

use crate::spec::MaxIncrease;

/// The limits an environment's estimate is held to (from `[env.NAME.budget]`, overridden by
/// command-line flags).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// The monthly budget in USD.
    pub monthly_usd: Option<Decimal>,
    /// The largest allowed increase over the previous estimate.
    pub max_increase: Option<MaxIncrease>,
}

/// What is known about the previous estimate of the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Previous {
    /// No previous estimate was given.
    NotGiven,
    /// A previous estimate was given but does not contain this environment (it is new).
    Missing,
    /// The previous monthly total.
    Total(Decimal),
}

/// The budget check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetCheck {
    /// No budget set.
    NoBudget,
    /// At or under budget.
    Within {
        /// The budget.
        budget: Decimal,
        /// Budget minus total (≥ 0).
        headroom: Decimal,
    },
    /// Over budget.
    Over {
        /// The budget.
        budget: Decimal,
        /// Total minus budget (> 0).
        excess: Decimal,
    },
}

/// The comparison with a previous estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Comparison {
    /// The previous total.
    pub previous: Decimal,
    /// Current minus previous (negative when cheaper).
    pub delta: Decimal,
    /// The delta as a percentage of the previous total (none when the previous total was 0, or
    /// so small that the percentage is beyond `Decimal`'s range: infinitely many percent).
    pub delta_pct: Option<Decimal>,
    /// The allowed increase, if one is set.
    pub max_increase: Option<MaxIncrease>,
    /// Whether the delta exceeds the allowed increase.
    pub over: bool,
}

/// The gate's verdict on one environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// The budget check.
    pub budget: BudgetCheck,
    /// The comparison, when a previous estimate of this environment was given.
    pub comparison: Option<Comparison>,
    /// A previous estimate was given but lacked this environment.
    pub new_environment: bool,
}

impl Verdict {
    /// Whether the total is over budget.
    pub fn over_budget(&self) -> bool {
        matches!(self.budget, BudgetCheck::Over { .. })
    }

    /// Whether the increase is over the allowed increase.
    pub fn over_increase(&self) -> bool {
        self.comparison.is_some_and(|c| c.over)
    }
}

/// Checks `total` against `limits` and the previous estimate.
///
/// A total equal to the budget is within it. A percentage limit against a previous total of 0
/// is exceeded by any increase (the increase is infinitely many percent). A new environment
/// (missing from the previous estimate) is not increase-checked; the report says so.
pub fn check(total: Decimal, limits: Limits, previous: Previous) -> Verdict {
    let budget = match limits.monthly_usd {
        None => BudgetCheck::NoBudget,
        Some(b) if total > b => BudgetCheck::Over {
            budget: b,
            excess: total - b,
        },
        Some(b) => BudgetCheck::Within {
            budget: b,
            headroom: b - total,
        },
    };
    let comparison = match previous {
        Previous::Total(prev) => {
            let delta = total - prev;
            // Checked: a tiny previous total (a hand-edited report) must not overflow.
            let delta_pct = delta
                .checked_mul(Decimal::ONE_HUNDRED)
                .and_then(|d| d.checked_div(prev));
            let over = match limits.max_increase {
                None => false,
                Some(MaxIncrease::Usd(max)) => delta > max,
                Some(MaxIncrease::Percent(max)) => match delta_pct {
                    Some(pct) => pct > max,
                    None => delta > Decimal::ZERO,
                },
            };
            Some(Comparison {
                previous: prev,
                delta,
                delta_pct,
                max_increase: limits.max_increase,
                over,
            })
        }
        Previous::NotGiven | Previous::Missing => None,
    };
    Verdict {
        budget,
        comparison,
        new_environment: previous == Previous::Missing,
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
    fn budget_boundaries() {
        let lim = |b: &str| Limits {
            monthly_usd: Some(d(b)),
            max_increase: None,
        };
        assert!(check(d("150.01"), lim("150"), Previous::NotGiven).over_budget());
        assert!(!check(d("150"), lim("150"), Previous::NotGiven).over_budget());
        assert_eq!(
            check(d("100"), lim("150"), Previous::NotGiven).budget,
            BudgetCheck::Within {
                budget: d("150"),
                headroom: d("50")
            }
        );
        assert_eq!(
            check(d("1"), Limits::default(), Previous::NotGiven).budget,
            BudgetCheck::NoBudget
        );
    }

    #[test]
    fn increase_in_usd_and_percent() {
        let usd = Limits {
            monthly_usd: None,
            max_increase: Some(MaxIncrease::Usd(d("10"))),
        };
        assert!(!check(d("110"), usd, Previous::Total(d("100"))).over_increase());
        assert!(check(d("110.01"), usd, Previous::Total(d("100"))).over_increase());
        let pct = Limits {
            monthly_usd: None,
            max_increase: Some(MaxIncrease::Percent(d("5"))),
        };
        let v = check(d("105"), pct, Previous::Total(d("100")));
        assert_eq!(v.comparison.unwrap().delta_pct, Some(d("5")));
        assert!(!v.over_increase());
        assert!(check(d("105.5"), pct, Previous::Total(d("100"))).over_increase());
        // A decrease is never over.
        assert!(!check(d("50"), pct, Previous::Total(d("100"))).over_increase());
        // From zero, any increase is over a percentage limit.
        assert!(check(d("0.01"), pct, Previous::Total(Decimal::ZERO)).over_increase());
        assert!(!check(Decimal::ZERO, pct, Previous::Total(Decimal::ZERO)).over_increase());
        // From a total so small the percentage is beyond Decimal's range: no overflow panic,
        // an increase is over and a decrease is not.
        let tiny = Previous::Total(d("0.0000000000000000000000000001"));
        let v = check(d("176.161"), pct, tiny);
        assert!(v.over_increase());
        assert_eq!(v.comparison.unwrap().delta_pct, None);
        assert!(!check(Decimal::ZERO, pct, tiny).over_increase());
    }

    #[test]
    fn new_environment_is_not_increase_checked() {
        let lim = Limits {
            monthly_usd: None,
            max_increase: Some(MaxIncrease::Usd(Decimal::ZERO)),
        };
        let v = check(d("100"), lim, Previous::Missing);
        assert!(v.new_environment && !v.over_increase() && v.comparison.is_none());
    }
}
