//! The crate's one error type.

/// What can go wrong in ferry-cost. Problems *in an infra spec* (an unknown instance type, a
/// region with no prices) are not errors: the estimator reports them as [`crate::Issue`]s next to
/// the lines it could price, so a caller sees all of them at once.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CostError {
    /// A money amount or percentage that does not parse.
    #[error("`{text}` is not {expected}")]
    BadAmount {
        /// The text given.
        text: String,
        /// What was expected, for the message.
        expected: &'static str,
    },
    /// The embedded price catalog is malformed (a bug in ferry, caught by its tests).
    #[error("the embedded price catalog is invalid: {0}")]
    Catalog(String),
    /// A previous estimate (`--compare-to`) is not valid JSON of the expected shape.
    #[error("{}", located(*.line, *.column, .message))]
    Report {
        /// 1-based line of the problem (0 when unknown).
        line: usize,
        /// 1-based column of the problem (0 when unknown).
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A previous estimate written by a ferry with a schema this one does not read.
    #[error("schema_version {found} is not supported (this ferry reads version {supported})")]
    UnsupportedSchema {
        /// The version in the file.
        found: u64,
        /// The version this crate reads and writes.
        supported: u64,
    },
}

/// `line 3, column 7: message`, or the message alone when the place is unknown (0).
fn located(line: usize, column: usize, message: &str) -> String {
    if line == 0 {
        message.to_owned()
    } else {
        format!("line {line}, column {column}: {message}")
    }
}
