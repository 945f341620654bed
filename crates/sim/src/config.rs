//! The simulator's configuration: how fast virtual time runs, how images behave, which faults
//! to inject. Serde data, loadable from a `SIM.toml`; every field has a default, so an empty file
//! (or [`SimConfig::default`]) gives a cluster where every image pulls, runs and becomes ready.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::SimError;

/// The verbs the API server counts and that faults can target.
pub const VERBS: [&str; 9] = [
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "apply",
    "delete",
    "deletecollection",
];

/// How the simulated cluster behaves; loadable from a `SIM.toml` ([`SimConfig::load`]):
///
/// ```toml
/// speed = 60.0                      # a virtual minute per wall second
/// load_balancer_delay = "30s"       # virtual time until a LoadBalancer Service gets its hostname
///
/// [[images]]
/// image = "*:broken"                # glob on the image reference, repository, name or tag
/// behaviour = "crash"               # run | pull_forever | crash | never_ready
///
/// [[images]]
/// image = "slow-app"
/// behaviour = { slow_ready = { after = "45s" } }
///
/// [faults]
/// retry_after_seconds = 1
/// [faults.per_verb.apply]           # get list watch create update patch apply delete deletecollection, or "*"
/// error_500 = 0.05
/// throttle_429 = 0.05
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimConfig {
    /// Virtual-clock speed factor: 1.0 is real time, 60.0 runs a virtual minute per wall second.
    /// Controllers (rollouts, restarts, progress deadlines, load balancers) run on virtual time.
    pub speed: f64,
    /// Behaviour by image, first match wins. Images that match no rule pull, run and become
    /// ready.
    pub images: Vec<ImageRule>,
    /// Injected API failures.
    pub faults: FaultConfig,
    /// Virtual time until a `LoadBalancer` Service (and an Ingress) gets
    /// `status.loadBalancer.ingress` with a hostname.
    #[serde(with = "duration_text")]
    pub load_balancer_delay: Duration,
    /// Virtual time from a pod's creation to its containers running (scheduling, image pull,
    /// start).
    #[serde(with = "duration_text")]
    pub pod_start_delay: Duration,
    /// Virtual time a Job's container runs before it exits successfully.
    #[serde(with = "duration_text")]
    pub job_duration: Duration,
    /// Virtual time a crashing container runs before it exits with status 1.
    #[serde(with = "duration_text")]
    pub crash_after: Duration,
    /// Simulated worker nodes (DaemonSets run one pod on each; pods are spread over them).
    pub nodes: u32,
    /// Watch events kept per resource type for resuming a watch from a resourceVersion; older
    /// versions get `410 Gone`.
    pub watch_history: usize,
    /// Wall time between BOOKMARK events on watches that ask for them.
    #[serde(with = "duration_text")]
    pub bookmark_interval: Duration,
    /// Largest request body accepted (bytes); larger ones get `413`.
    pub max_body_bytes: usize,
    /// Request records kept for `/debug/requests` and [`SimHandle::request_log`](crate::SimHandle::request_log).
    pub request_log_limit: usize,
    /// DNS suffix of simulated load balancer hostnames, like an AWS NLB's.
    pub load_balancer_domain: String,
    /// Seed for names, IPs and fault decisions; random when unset.
    pub seed: Option<u64>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            speed: 1.0,
            images: Vec::new(),
            faults: FaultConfig::default(),
            load_balancer_delay: Duration::from_secs(30),
            pod_start_delay: Duration::from_secs(2),
            job_duration: Duration::from_secs(5),
            crash_after: Duration::from_secs(2),
            nodes: 3,
            watch_history: 1000,
            bookmark_interval: Duration::from_secs(10),
            max_body_bytes: 3 * 1024 * 1024,
            request_log_limit: 20_000,
            load_balancer_domain: "elb.us-east-1.amazonaws.com".to_owned(),
            seed: None,
        }
    }
}

/// One image rule: images matching `image` behave as `behaviour`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageRule {
    /// A glob (`*`, `?`, `[...]`) matched against the whole image reference
    /// (`ghcr.io/acme/web:1.2`), the repository (`ghcr.io/acme/web`), its last path component
    /// (`web`) and the tag (`1.2`); any match applies the rule.
    pub image: String,
    /// What containers running a matching image do.
    pub behaviour: ImageBehaviour,
}

impl ImageRule {
    /// A rule for images matching `image`.
    pub fn new(image: impl Into<String>, behaviour: ImageBehaviour) -> Self {
        ImageRule {
            image: image.into(),
            behaviour,
        }
    }
}

/// What a container does, by image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum ImageBehaviour {
    /// Pulls, starts and becomes ready (the default for images no rule matches).
    Run,
    /// The pull never succeeds: `ErrImagePull`, then `ImagePullBackOff`, for ever.
    PullForever,
    /// Starts, prints a few log lines, exits with status 1 after `crash_after`, and restarts with
    /// back-off: `CrashLoopBackOff` with a growing `restartCount`.
    Crash,
    /// Runs but its readiness probe never passes.
    NeverReady,
    /// Runs and becomes ready only `after` this much virtual time.
    SlowReady {
        /// Virtual time from start to ready.
        #[serde(with = "duration_text")]
        after: Duration,
    },
}

/// Fault injection: per-verb rates of failures. Never applied to `/metrics`, `/debug/*`,
/// `/healthz`, `/version`, discovery or OpenAPI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaultConfig {
    /// Rates by verb (`get`, `list`, `watch`, `create`, `update`, `patch`, `apply`, `delete`,
    /// `deletecollection`); the key `"*"` applies to verbs not named.
    pub per_verb: BTreeMap<String, FaultRates>,
    /// How long (wall time) a request chosen to time out hangs before it gets `504`.
    #[serde(with = "duration_text")]
    pub timeout_after: Duration,
    /// The `Retry-After` header sent with `429`.
    pub retry_after_seconds: u32,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            per_verb: BTreeMap::new(),
            timeout_after: Duration::from_secs(60),
            retry_after_seconds: 1,
        }
    }
}

/// Probabilities (0.0 to 1.0, summing to at most 1.0) of each fault for one verb.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaultRates {
    /// `500 Internal Server Error` with a metav1.Status body; the request changes nothing.
    pub error_500: f64,
    /// `429 Too Many Requests` with `Retry-After`; the request changes nothing.
    pub throttle_429: f64,
    /// The request hangs for `timeout_after`, then gets `504`; it changes nothing.
    pub timeout: f64,
    /// The connection (or HTTP/2 stream) is dropped without an answer; it changes nothing.
    pub drop: f64,
}

/// One injected fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    Error500,
    Throttle429,
    Timeout,
    Drop,
}

impl FaultRates {
    fn total(&self) -> f64 {
        self.error_500 + self.throttle_429 + self.timeout + self.drop
    }

    /// The fault for a uniform draw `x` in `[0, 1)`, if any.
    pub(crate) fn pick(&self, x: f64) -> Option<Fault> {
        let mut edge = self.error_500;
        if x < edge {
            return Some(Fault::Error500);
        }
        edge += self.throttle_429;
        if x < edge {
            return Some(Fault::Throttle429);
        }
        edge += self.timeout;
        if x < edge {
            return Some(Fault::Timeout);
        }
        edge += self.drop;
        if x < edge {
            return Some(Fault::Drop);
        }
        None
    }
}

impl FaultConfig {
    /// The rates that apply to `verb`.
    pub(crate) fn rates_for(&self, verb: &str) -> Option<&FaultRates> {
        self.per_verb.get(verb).or_else(|| self.per_verb.get("*"))
    }
}

impl SimConfig {
    /// Parses and checks a `SIM.toml` document. A value serde accepted but the checks refuse is
    /// reported at its line and column, as serde's own errors are.
    pub fn from_toml_str(text: &str) -> Result<SimConfig, SimError> {
        let config: SimConfig = toml::from_str(text).map_err(|err| SimError::ConfigInvalid {
            message: err.to_string(),
        })?;
        if let Some(problem) = config.problem() {
            let message = match locate(text, &problem.at) {
                Some((line, column)) => {
                    format!("line {line}, column {column}: {}", problem.message)
                }
                None => problem.message,
            };
            return Err(SimError::ConfigInvalid { message });
        }
        Ok(config)
    }

    /// Reads, parses and checks a `SIM.toml` file.
    pub fn load(path: &Path) -> Result<SimConfig, SimError> {
        let text = std::fs::read_to_string(path).map_err(|source| SimError::ConfigRead {
            path: path.to_owned(),
            source,
        })?;
        SimConfig::from_toml_str(&text).map_err(|err| match err {
            SimError::ConfigInvalid { message } => SimError::ConfigInvalid {
                message: format!("{}: {message}", path.display()),
            },
            other => other,
        })
    }

    /// Checks the values serde cannot: a positive speed, valid globs and rates, known verbs.
    pub fn validate(&self) -> Result<(), SimError> {
        match self.problem() {
            Some(problem) => Err(SimError::ConfigInvalid {
                message: problem.message,
            }),
            None => Ok(()),
        }
    }

    /// The first value the checks refuse, with its key path.
    fn problem(&self) -> Option<Problem> {
        let at = |path: &[&str], message: String| {
            Some(Problem {
                at: path.iter().map(|k| Seg::Key((*k).to_owned())).collect(),
                message,
            })
        };
        if !(self.speed.is_finite() && self.speed > 0.0) {
            return at(
                &["speed"],
                format!("speed must be a finite number above 0, not {}", self.speed),
            );
        }
        for (i, rule) in self.images.iter().enumerate() {
            if let Err(err) = glob::Pattern::new(&rule.image) {
                return Some(Problem {
                    at: vec![
                        Seg::Key("images".into()),
                        Seg::Index(i),
                        Seg::Key("image".into()),
                    ],
                    message: format!(
                        "images[{i}].image {:?} is not a valid glob: {err}",
                        rule.image
                    ),
                });
            }
        }
        for (verb, rates) in &self.faults.per_verb {
            let verb_at = ["faults", "per_verb", verb.as_str()];
            if verb != "*" && !VERBS.contains(&verb.as_str()) {
                return at(
                    &verb_at,
                    format!(
                        "faults.per_verb.{verb}: unknown verb (expected one of {} or \"*\")",
                        VERBS.join(", ")
                    ),
                );
            }
            for (name, rate) in [
                ("error_500", rates.error_500),
                ("throttle_429", rates.throttle_429),
                ("timeout", rates.timeout),
                ("drop", rates.drop),
            ] {
                if !(0.0..=1.0).contains(&rate) {
                    return at(
                        &["faults", "per_verb", verb.as_str(), name],
                        format!(
                            "faults.per_verb.{verb}.{name} must be between 0 and 1, not {rate}"
                        ),
                    );
                }
            }
            if rates.total() > 1.0 + 1e-9 {
                return at(
                    &verb_at,
                    format!(
                        "faults.per_verb.{verb}: the rates add up to {}, more than 1",
                        rates.total()
                    ),
                );
            }
        }
        if self.nodes == 0 {
            return at(&["nodes"], "nodes must be at least 1".to_owned());
        }
        if self.watch_history == 0 {
            return at(
                &["watch_history"],
                "watch_history must be at least 1".to_owned(),
            );
        }
        if self.max_body_bytes < 1024 {
            return at(
                &["max_body_bytes"],
                "max_body_bytes must be at least 1024".to_owned(),
            );
        }
        if self.bookmark_interval.is_zero() {
            return at(
                &["bookmark_interval"],
                "bookmark_interval must be more than zero".to_owned(),
            );
        }
        None
    }

    /// The behaviour of containers running `image`: the first matching rule's, else
    /// [`ImageBehaviour::Run`].
    pub fn behaviour_for(&self, image: &str) -> ImageBehaviour {
        let parts = ImageParts::parse(image);
        self.images
            .iter()
            .find(|rule| match glob::Pattern::new(&rule.image) {
                Ok(pattern) => parts.candidates().any(|c| pattern.matches(c)),
                Err(_) => false,
            })
            .map_or(ImageBehaviour::Run, |rule| rule.behaviour)
    }
}

/// An image reference split the way image rules match it.
struct ImageParts<'a> {
    full: &'a str,
    repository: &'a str,
    name: &'a str,
    tag: Option<&'a str>,
}

impl<'a> ImageParts<'a> {
    fn parse(image: &'a str) -> Self {
        let without_digest = image.split_once('@').map_or(image, |(left, _)| left);
        // A ':' after the last '/' starts the tag; one before it belongs to a registry port.
        let last_slash = without_digest.rfind('/').map_or(0, |i| i + 1);
        let (repository, tag) = match without_digest[last_slash..].find(':') {
            Some(colon) => (
                &without_digest[..last_slash + colon],
                Some(&without_digest[last_slash + colon + 1..]),
            ),
            None => (without_digest, None),
        };
        let name = repository.rsplit('/').next().unwrap_or(repository);
        ImageParts {
            full: image,
            repository,
            name,
            tag,
        }
    }

    fn candidates(&self) -> impl Iterator<Item = &'a str> {
        [
            Some(self.full),
            Some(self.repository),
            Some(self.name),
            self.tag,
        ]
        .into_iter()
        .flatten()
    }
}

/// Durations as human text (`"30s"`, `"2m 30s"`, `"250ms"`).
mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize as _, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*value).to_string())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(|err| {
            serde::de::Error::custom(format!(
                "{text:?} is not a duration like \"30s\" or \"2m\": {err}"
            ))
        })
    }
}

/// A value the checks refuse, and where it is.
struct Problem {
    at: Vec<Seg>,
    message: String,
}

/// One step of a key path in a TOML document.
enum Seg {
    Key(String),
    Index(usize),
}

/// The 1-based line and column of the value at `path` in `text`, or of its deepest present
/// ancestor; `None` when nothing of the path is in the text (a default value).
fn locate(text: &str, path: &[Seg]) -> Option<(usize, usize)> {
    let doc = toml::de::DeTable::parse(text).ok()?;
    let mut span = None;
    let mut value: Option<&toml::de::DeValue<'_>> = None;
    let mut table = Some(doc.get_ref());
    for seg in path {
        let next = match (seg, table, value) {
            (Seg::Key(k), Some(t), _) => t.get(k.as_str()),
            (Seg::Index(i), _, Some(toml::de::DeValue::Array(a))) => a.get(*i),
            _ => None,
        };
        let Some(next) = next else { break };
        span = Some(next.span());
        value = Some(next.get_ref());
        table = match next.get_ref() {
            toml::de::DeValue::Table(t) => Some(t),
            _ => None,
        };
    }
    let start = span?.start;
    let before = &text[..start];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Some((line, column))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_runs_every_image() {
        let config = SimConfig::default();
        assert_eq!(config.behaviour_for("nginx:1.27"), ImageBehaviour::Run);
        config.validate().unwrap();
    }

    #[test]
    fn rules_match_reference_repository_name_or_tag() {
        let config = SimConfig {
            images: vec![
                ImageRule::new("*:broken", ImageBehaviour::Crash),
                ImageRule::new("ghost", ImageBehaviour::PullForever),
                ImageRule::new("v9*", ImageBehaviour::NeverReady),
            ],
            ..SimConfig::default()
        };
        assert_eq!(
            config.behaviour_for("ghcr.io/acme/web:broken"),
            ImageBehaviour::Crash
        );
        assert_eq!(
            config.behaviour_for("registry:5000/team/ghost:1.0"),
            ImageBehaviour::PullForever
        );
        assert_eq!(config.behaviour_for("ghost"), ImageBehaviour::PullForever);
        assert_eq!(config.behaviour_for("web:v9.1"), ImageBehaviour::NeverReady);
        assert_eq!(
            config.behaviour_for("registry:5000/web"),
            ImageBehaviour::Run
        );
        assert_eq!(config.behaviour_for("web@sha256:abc"), ImageBehaviour::Run);
    }

    #[test]
    fn parses_toml_with_every_behaviour() {
        let config = SimConfig::from_toml_str(
            r#"
            speed = 120.0
            load_balancer_delay = "45s"
            [[images]]
            image = "a"
            behaviour = "pull_forever"
            [[images]]
            image = "b"
            behaviour = { slow_ready = { after = "1m" } }
            [faults.per_verb.apply]
            error_500 = 0.25
            [faults.per_verb."*"]
            drop = 0.1
            "#,
        )
        .unwrap();
        assert!((config.speed - 120.0).abs() < f64::EPSILON);
        assert_eq!(config.load_balancer_delay, Duration::from_secs(45));
        assert_eq!(
            config.behaviour_for("b:1"),
            ImageBehaviour::SlowReady {
                after: Duration::from_secs(60)
            }
        );
        assert_eq!(config.faults.rates_for("apply").unwrap().error_500, 0.25);
        assert_eq!(config.faults.rates_for("get").unwrap().drop, 0.1);
    }

    /// A value serde accepts but the checks refuse is located like a parse error.
    #[test]
    fn refused_values_name_their_line_and_column() {
        for (text, located) in [
            ("speed = 0.0", "line 1, column 9: speed must be"),
            (
                "nodes = 3\n\n[faults.per_verb.get]\nerror_500 = 1.5",
                "line 4, column 13: faults.per_verb.get.error_500 must be between 0 and 1",
            ),
            (
                "[faults.per_verb.fetch]\nerror_500 = 0.1",
                "line 1, column 1: faults.per_verb.fetch: unknown verb",
            ),
            (
                "[[images]]\nimage = \"a\"\nbehaviour = \"crash\"\n[[images]]\nimage = \"b[\"\nbehaviour = \"crash\"",
                "line 5, column 9: images[1].image \"b[\" is not a valid glob",
            ),
            ("nodes = 0", "line 1, column 9: nodes must be at least 1"),
        ] {
            let err = SimConfig::from_toml_str(text).unwrap_err().to_string();
            assert!(err.contains(located), "{text:?}: {err}");
        }
    }

    #[test]
    fn rejects_unknown_keys_bad_verbs_and_rates() {
        for (text, needle) in [
            ("sped = 2.0", "unknown field"),
            ("speed = 0.0", "speed must be"),
            ("[faults.per_verb.fetch]\nerror_500 = 0.1", "unknown verb"),
            ("[faults.per_verb.get]\nerror_500 = 1.5", "between 0 and 1"),
            (
                "[faults.per_verb.get]\nerror_500 = 0.6\ndrop = 0.6",
                "add up",
            ),
            (
                "[[images]]\nimage = \"a\"\nbehaviour = \"explode\"",
                "unknown variant",
            ),
            ("load_balancer_delay = \"soon\"", "not a duration"),
        ] {
            let err = SimConfig::from_toml_str(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }

    #[test]
    fn fault_rates_pick_by_cumulative_probability() {
        let rates = FaultRates {
            error_500: 0.1,
            throttle_429: 0.2,
            timeout: 0.0,
            drop: 0.3,
        };
        assert_eq!(rates.pick(0.05), Some(Fault::Error500));
        assert_eq!(rates.pick(0.15), Some(Fault::Throttle429));
        assert_eq!(rates.pick(0.45), Some(Fault::Drop));
        assert_eq!(rates.pick(0.7), None);
    }
}
