//! Scopes and the per-scope bearer-token cache.
//!
//! A token realm hands out tokens for a set of scopes (`repository:NAME:pull,push`). ferry
//! caches each token with the scopes it was granted for, per registry, and reuses a token for
//! any request whose scopes it covers (a `pull,push` token serves a pull). A cross-repository
//! mount asks for push on the target *and* pull on the source in one token, which is why the
//! cache is keyed by scope sets rather than by one repository (oci-client's cache is the
//! latter, and its mounts fail with 401 on token registries).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use http::HeaderValue;
use tokio::time::Instant;

/// Access to one repository.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope {
    /// The repository path.
    pub repository: String,
    /// Whether push is needed (pull always is).
    pub push: bool,
}

impl Scope {
    /// Pull access to `repository`.
    pub fn pull(repository: &str) -> Self {
        Scope {
            repository: repository.to_owned(),
            push: false,
        }
    }

    /// Pull and push access to `repository`.
    pub fn push(repository: &str) -> Self {
        Scope {
            repository: repository.to_owned(),
            push: true,
        }
    }

    /// The scope string a token realm understands.
    pub fn to_scope_string(&self) -> String {
        let actions = if self.push { "pull,push" } else { "pull" };
        format!("repository:{}:{actions}", self.repository)
    }
}

/// Merges scopes: one entry per repository, push if any asked for it.
pub fn normalise(scopes: &[Scope]) -> Vec<Scope> {
    let mut by_repo: BTreeMap<&str, bool> = BTreeMap::new();
    for s in scopes {
        *by_repo.entry(&s.repository).or_default() |= s.push;
    }
    by_repo
        .into_iter()
        .map(|(repository, push)| Scope {
            repository: repository.to_owned(),
            push,
        })
        .collect()
}

/// Parses a challenge's `scope` parameter (`repository:a:pull repository:b:pull,push`).
pub fn parse_scope_param(param: &str) -> Vec<Scope> {
    param
        .split(' ')
        .filter_map(|item| {
            let rest = item.strip_prefix("repository:")?;
            let (name, actions) = rest.rsplit_once(':')?;
            Some(Scope {
                repository: name.to_owned(),
                push: actions.split(',').any(|a| a == "push" || a == "*"),
            })
        })
        .collect()
}

struct Entry {
    scopes: Vec<Scope>,
    header: HeaderValue,
    expires: Instant,
}

/// Bearer tokens per registry and scope set.
#[derive(Default)]
pub(crate) struct TokenCache {
    entries: Mutex<HashMap<String, Vec<Entry>>>,
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries = self.entries.lock().expect("token cache lock");
        f.debug_map()
            .entries(entries.iter().map(|(k, v)| (k, v.len())))
            .finish()
    }
}

/// Tokens are dropped this long before the realm says they expire, so a request never leaves
/// with a token that dies on the way.
const EXPIRY_MARGIN: Duration = Duration::from_secs(10);

fn covers(granted: &[Scope], wanted: &[Scope]) -> bool {
    wanted.iter().all(|w| {
        granted
            .iter()
            .any(|g| g.repository == w.repository && (g.push || !w.push))
    })
}

impl TokenCache {
    /// A live token covering `scopes`, as an `Authorization` header value.
    pub(crate) fn get(&self, registry: &str, scopes: &[Scope]) -> Option<HeaderValue> {
        let mut entries = self.entries.lock().expect("token cache lock");
        let list = entries.get_mut(registry)?;
        let now = Instant::now();
        list.retain(|e| e.expires > now);
        list.iter()
            .find(|e| covers(&e.scopes, scopes))
            .map(|e| e.header.clone())
    }

    /// Stores a token granted for `scopes`, valid for `lifetime`.
    pub(crate) fn insert(
        &self,
        registry: &str,
        scopes: Vec<Scope>,
        header: HeaderValue,
        lifetime: Duration,
    ) {
        let expires = Instant::now() + lifetime.saturating_sub(EXPIRY_MARGIN);
        let mut entries = self.entries.lock().expect("token cache lock");
        let list = entries.entry(registry.to_owned()).or_default();
        // A token for the same scopes replaces the old one.
        list.retain(|e| e.scopes != scopes);
        list.push(Entry {
            scopes,
            header,
            expires,
        });
    }

    /// Forgets a token the registry refused.
    pub(crate) fn remove(&self, registry: &str, header: &HeaderValue) {
        if let Some(list) = self
            .entries
            .lock()
            .expect("token cache lock")
            .get_mut(registry)
        {
            list.retain(|e| e.header != *header);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(s: &str) -> HeaderValue {
        HeaderValue::from_str(s).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_token_serves_every_scope_it_covers_until_it_expires() {
        let cache = TokenCache::default();
        cache.insert(
            "r",
            normalise(&[Scope::push("a"), Scope::pull("b")]),
            header("Bearer t1"),
            Duration::from_secs(60),
        );
        assert_eq!(
            cache.get("r", &[Scope::pull("a")]),
            Some(header("Bearer t1"))
        );
        assert_eq!(
            cache.get("r", &[Scope::push("a"), Scope::pull("b")]),
            Some(header("Bearer t1"))
        );
        assert_eq!(cache.get("r", &[Scope::push("b")]), None);
        assert_eq!(cache.get("r", &[Scope::pull("c")]), None);
        assert_eq!(cache.get("other", &[Scope::pull("a")]), None);
        tokio::time::advance(Duration::from_secs(49)).await;
        assert!(cache.get("r", &[Scope::pull("a")]).is_some());
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(cache.get("r", &[Scope::pull("a")]), None);
    }

    #[test]
    fn refused_tokens_are_forgotten() {
        let cache = TokenCache::default();
        cache.insert(
            "r",
            vec![Scope::pull("a")],
            header("Bearer x"),
            Duration::from_secs(60),
        );
        cache.remove("r", &header("Bearer x"));
        assert_eq!(cache.get("r", &[Scope::pull("a")]), None);
    }

    #[test]
    fn scope_strings_and_challenge_params() {
        assert_eq!(
            Scope::push("a/b").to_scope_string(),
            "repository:a/b:pull,push"
        );
        assert_eq!(
            parse_scope_param("repository:a/b:pull repository:127.0.0.1:5000/x:push,pull"),
            vec![Scope::pull("a/b"), Scope::push("127.0.0.1:5000/x")]
        );
        assert_eq!(
            normalise(&[Scope::pull("a"), Scope::push("a"), Scope::pull("b")]),
            vec![Scope::push("a"), Scope::pull("b")]
        );
    }
}
