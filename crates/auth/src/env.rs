//! The process environment, injected. Token sources and configuration fallbacks read variables
//! from an [`Env`] the caller builds (the binary from its one snapshot of the process
//! environment; tests from a literal map), never from `std::env`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// A read-only set of environment variables.
#[derive(Clone, Default)]
pub struct Env(Arc<BTreeMap<String, String>>);

impl Env {
    /// An environment with exactly these variables.
    pub fn new(vars: BTreeMap<String, String>) -> Self {
        Env(Arc::new(vars))
    }

    /// An environment from pairs (for tests and examples).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Env::new(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    /// A variable's value, when set and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

impl From<BTreeMap<String, String>> for Env {
    fn from(vars: BTreeMap<String, String>) -> Self {
        Env::new(vars)
    }
}

impl fmt::Debug for Env {
    // Values are often secrets (request tokens, keys): show the names only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Env")
            .field("names", &self.0.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_count_as_unset_and_debug_hides_values() {
        let env = Env::from_pairs([("A", "1"), ("B", ""), ("SECRET", "hunter2")]);
        assert_eq!(env.get("A"), Some("1"));
        assert_eq!(env.get("B"), None);
        assert_eq!(env.get("C"), None);
        let shown = format!("{env:?}");
        assert!(
            shown.contains("SECRET") && !shown.contains("hunter2"),
            "{shown}"
        );
    }
}
