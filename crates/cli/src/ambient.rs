//! The one place the binary reads its ambient surroundings: environment variables and the wall
//! clock. Libraries never do (clippy `disallowed-methods`); they are handed what they need.

use std::collections::BTreeMap;

/// A snapshot of the process environment, taken once at start-up and passed down.
#[derive(Clone, Default)]
pub struct Environment {
    vars: BTreeMap<String, String>,
}

impl std::fmt::Debug for Environment {
    // Environment values often hold secrets (tokens, keys): show the names only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Environment")
            .field("names", &self.vars.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Environment {
    /// The process environment (variables that are not valid UTF-8 are skipped).
    pub fn from_process() -> Self {
        Environment {
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
        }
    }

    /// An environment with exactly these variables (for tests).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Environment {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// A variable's value, when set and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Whether a variable is set to a true-ish value (`1`, `true`, `yes`).
    pub fn flag(&self, name: &str) -> bool {
        matches!(
            self.get(name).map(str::to_ascii_lowercase).as_deref(),
            Some("1" | "true" | "yes")
        )
    }

    /// All variables, for libraries that take an environment map.
    pub fn vars(&self) -> &BTreeMap<String, String> {
        &self.vars
    }
}

/// The wall clock, for the binary only.
pub fn now() -> std::time::SystemTime {
    #[expect(
        clippy::disallowed_methods,
        reason = "the ambient shim is the one place the wall clock is read"
    )]
    std::time::SystemTime::now()
}
