//! Monthly cost estimates for a Kubernetes environment, from an offline price catalog, with a
//! budget gate.
//!
//! # Design
//!
//! A cost estimate is only useful in CI if it is reproducible, explainable and honest about what
//! it does not know. ferry-cost is built around those three words.
//!
//! *Reproducible*: prices come from a catalog compiled into the binary
//! (`catalog/prices.toml`), not from a pricing API. The same ferry gives the same figure on a
//! laptop and in CI, with no network and no API key. The price of that is staleness, so every
//! row carries the date it was checked and the URL it was checked against, and the catalog's
//! date (the newest row) is printed with every estimate.
//!
//! *Explainable*: an [`Estimate`] is a list of [`Resource`]s, each with [`Line`]s of the form
//! *unit price × quantity = monthly cost*, in the units the provider bills (hours, GB-months,
//! NLCU-hours, disk-months). The total is, by construction, the sum of the lines. Money is
//! [`rust_decimal::Decimal`] and a month is 730 hours, as AWS, Azure and infracost count it;
//! nothing is rounded until it is displayed. Usage-priced items (egress, logs, capacity units,
//! object storage) are listed even at zero usage, so the reader sees their rates. Real free
//! tiers are modelled as zero-priced first tiers: AWS's first 100 GB/month of internet egress and
//! 5 GB/month of CloudWatch Logs, Azure's first 100 GB/month of bandwidth and 5 GB/month of Log
//! Analytics ingestion, and the storage included in each ACR tier. (The account-wide free tiers
//! are applied per environment: two environments in one account each get them. That
//! over-counts the free allowance, by at most $9 + $2.50 a month per extra environment on AWS.)
//!
//! *Honest*: a value the catalog has no price for — an instance type, a region, a disk type — is
//! never $0. The estimator returns it as an unpriced line plus an [`Issue`] with the value's key
//! path and a "did you mean" from the catalog, and [`Estimate::is_complete`] turns false. The
//! caller decides: the `ferry` CLI refuses to gate on an incomplete estimate unless told to.
//!
//! The pieces, in the order they run:
//! - [`spec`]: the serde types of `[env.NAME.infra]` ([`InfraSpec`]) and `[env.NAME.budget]`
//!   ([`Budget`]). Types and signs are checked while deserialising.
//! - [`catalog`]: the embedded [`Catalog`], parsed once, every row checked.
//! - [`estimate()`]: spec + catalog → [`Estimate`].
//! - [`gate`]: estimate + [`Limits`] + previous total → [`Verdict`] (over budget? over the
//!   allowed increase?).
//! - [`report`]: the versioned JSON [`Report`] the CLI writes, and reads back for
//!   `--compare-to`, with per-line changes.
//!
//! The crate does no I/O and has no command-line parsing: the CLI reads files and flags.
//!
//! # Example
//!
//! ```
//! use ferry_cost::{estimate, Catalog, InfraSpec};
//!
//! let spec: InfraSpec = toml::from_str(r#"
//!     cloud = "aws"
//!     region = "us-east-1"
//!     control_plane = "standard"
//!     [[node_groups]]
//!     name = "general"
//!     instance_type = "t3.medium"
//!     count = 2
//! "#).unwrap();
//! let est = estimate(&spec, Catalog::embedded());
//! assert!(est.is_complete());
//! assert_eq!(est.total().to_string(), "133.7360"); // $73.00 control plane + $60.736 nodes
//! ```
//!
//! Hand-written pieces, and why: money parsing (`"$300"`, `"10%"`) and display grouping are a few
//! lines each and no crate does exactly "non-negative decimal, optional `$`, strict"; suggestions
//! use `strsim`.

pub mod catalog;
mod error;
pub mod estimate;
pub mod gate;
pub mod money;
pub mod report;
pub mod spec;

pub use catalog::{Catalog, PriceRow, Unit};
pub use error::CostError;
pub use estimate::{
    Estimate, Issue, IssueKind, Line, LinePrice, PathSeg, Resource, estimate, path_string,
};
pub use gate::{BudgetCheck, Comparison, Limits, Previous, Verdict, check};
pub use report::{EnvReport, Report, SCHEMA_VERSION};
pub use rust_decimal::Decimal;
pub use spec::{Budget, Cloud, InfraSpec, MaxIncrease};
