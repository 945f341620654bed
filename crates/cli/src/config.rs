//! `ferry.toml`: the one config file, with an `[app]` table and named environments.
//!
//! Each library crate owns the serde types of its own section (`ferry_cost::InfraSpec` for
//! `[env.X.infra]`, and so on); this module assembles them, reads the file with limits, and turns
//! every problem — a syntax error, an unknown key, a wrong type, or a semantic error a library
//! found later — into a [`ConfigError`] that names `file:line:column` and says what was expected.
//!
//! Semantic errors found after deserialising (an unknown instance type, say) are located by
//! their key path with [`LoadedConfig::error_at`], which looks the path up in a span-preserving
//! parse of the same text.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{Diagnostic, NamedSource, SourceSpan};
use serde::Deserialize;

/// The largest config file ferry reads. Real files are a few KiB; anything near this is a
/// mistake (a wrong path, a generated blob) and is refused before parsing.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// The whole `ferry.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FerryConfig {
    /// The `[app]` table.
    pub app: AppConfig,
    /// The environments, `[env.NAME]`, in name order.
    #[serde(default)]
    pub env: BTreeMap<String, EnvConfig>,
}

/// The `[app]` table: what is shipped, independent of where.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    /// The application's name; it names locks, release records and labels.
    pub name: String,
    /// `[app.images]`: the images the app builds, name -> repository
    /// (`api = "shop/api"`). `ferry deploy --tag SHA` sets each to that tag (and its digest).
    #[serde(default)]
    pub images: BTreeMap<String, String>,
}

/// One environment, `[env.NAME]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvConfig {
    /// `[env.NAME.infra]`: what the environment runs, for `ferry cost` (ferry-cost owns it).
    #[serde(default)]
    pub infra: Option<ferry_cost::InfraSpec>,
    /// `[env.NAME.budget]`: its monthly budget and allowed increase.
    #[serde(default)]
    pub budget: Option<ferry_cost::Budget>,
    /// `[env.NAME.cluster]`: where it deploys (ferry-deployer owns it).
    #[serde(default)]
    pub cluster: Option<ferry_deployer::cluster::ClusterConfig>,
    /// `[env.NAME.deploy]`: how it deploys (manifests, namespace, timeouts, lock, history).
    #[serde(default)]
    pub deploy: Option<ferry_deployer::config::DeployConfig>,
    /// `[env.NAME.dns]`: the names pointed at its load balancer (ferry-dns owns it).
    #[serde(default)]
    pub dns: Option<ferry_dns::config::DnsConfig>,
    /// `[env.NAME.auth]`: where the OIDC token comes from, the cloud identities it becomes,
    /// and who may deploy (ferry-auth owns it).
    #[serde(default)]
    pub auth: Option<ferry_auth::config::AuthConfig>,
    /// `[env.NAME.registry]`: where its images live (provider, host, prefix, immutable);
    /// ferry-registry owns it.
    #[serde(default)]
    pub registry: Option<ferry_registry::RegistryConfig>,
}

/// One step of a key path in the config document: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySeg {
    /// A table key.
    Key(String),
    /// An array index.
    Index(usize),
}

impl From<&str> for KeySeg {
    fn from(key: &str) -> Self {
        KeySeg::Key(key.to_owned())
    }
}

impl From<String> for KeySeg {
    fn from(key: String) -> Self {
        KeySeg::Key(key)
    }
}

impl From<usize> for KeySeg {
    fn from(index: usize) -> Self {
        KeySeg::Index(index)
    }
}

impl From<&ferry_dns::config::PathSeg> for KeySeg {
    fn from(seg: &ferry_dns::config::PathSeg) -> Self {
        match seg {
            ferry_dns::config::PathSeg::Key(k) => KeySeg::Key(k.clone()),
            ferry_dns::config::PathSeg::Index(i) => KeySeg::Index(*i),
        }
    }
}

/// Formats a key path as TOML would address it: `env.dev.infra.node_groups[0].instance_type`.
pub fn key_path_string(path: &[KeySeg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            KeySeg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                let bare = !k.is_empty()
                    && k.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if bare {
                    out.push_str(k);
                } else {
                    out.push_str(&format!("{k:?}"));
                }
            }
            KeySeg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// A config file that was read and deserialised, with its text kept for locating later errors.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// Where it was read from, as given.
    pub path: PathBuf,
    /// Its text.
    pub source: Arc<String>,
    /// Its content.
    pub config: FerryConfig,
}

/// Something wrong with the config file. Every variant names the file; those about content
/// name the line and column too and show the offending text.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}")]
    #[diagnostic(
        code(ferry::config::read),
        help("pass the config file with --config FILE (default: ./ferry.toml)")
    )]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_CONFIG_BYTES`].
    #[error("config file {path} is {size} bytes; ferry reads config files of at most {max} bytes")]
    #[diagnostic(
        code(ferry::config::too_large),
        help("is this the right file? ferry.toml files are a few KiB")
    )]
    TooLarge {
        /// The file.
        path: String,
        /// Its size in bytes.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The file is not UTF-8 text.
    #[error("config file {path} is not UTF-8 text (invalid byte at offset {offset})")]
    #[diagnostic(
        code(ferry::config::not_text),
        help("ferry.toml must be a TOML text file in UTF-8")
    )]
    NotText {
        /// The file.
        path: String,
        /// Byte offset of the first invalid byte.
        offset: usize,
    },
    /// The content is wrong at a known place.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Invalid(Box<Located>),
    /// Several problems, each located (every unknown key, say).
    #[error("{path}: {count} problems")]
    #[diagnostic(code(ferry::config::problems))]
    Several {
        /// The file.
        path: String,
        /// How many.
        count: usize,
        /// Each problem.
        #[related]
        problems: Vec<ConfigError>,
    },
    /// An environment was asked for that the file does not define.
    #[error("{path}: no environment named `{name}` (defined: {known})")]
    #[diagnostic(code(ferry::config::unknown_env), help("{hint}"))]
    UnknownEnv {
        /// The file.
        path: String,
        /// The environment asked for.
        name: String,
        /// The environments the file defines, comma-separated.
        known: String,
        /// What to do: the closest defined name, or to add the table.
        hint: String,
    },
}

/// A problem at a known place in the config file.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{path}:{line}:{column}: {message}")]
#[diagnostic(code(ferry::config::invalid))]
pub struct Located {
    /// The file.
    pub path: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    /// What is wrong, and what was expected.
    pub message: String,
    /// The file's text (or, around a very wide line, a cut of it), for the snippet.
    #[source_code]
    pub src: NamedSource<Snippet>,
    /// Where.
    #[label("here")]
    pub span: SourceSpan,
    /// How to fix it, when we know.
    #[help]
    pub help: Option<String>,
}

/// The directory of a config file at `path`: relative paths in it are relative to it.
fn config_dir(path: &Path) -> PathBuf {
    path.parent()
        .map(Path::to_owned)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."))
}

impl LoadedConfig {
    /// Reads and deserialises a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        let read_err = |source| ConfigError::Read {
            path: shown.clone(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(read_err)?;
        if meta.len() > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooLarge {
                path: shown,
                size: meta.len(),
                max: MAX_CONFIG_BYTES,
            });
        }
        let bytes = read_at_most(path, MAX_CONFIG_BYTES).map_err(read_err)?;
        // A file that grew between metadata() and read(), or a device or pipe (`/dev/zero`,
        // whose metadata says 0 bytes), is still bounded: at most one byte past the limit is read.
        if bytes.len() as u64 > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooLarge {
                path: shown,
                size: bytes.len() as u64,
                max: MAX_CONFIG_BYTES,
            });
        }
        let text = String::from_utf8(bytes).map_err(|e| ConfigError::NotText {
            path: shown.clone(),
            offset: e.utf8_error().valid_up_to(),
        })?;
        Self::from_text(path, text)
    }

    /// Deserialises config text that came from `path` (used for messages only).
    pub fn from_text(path: &Path, text: String) -> Result<Self, ConfigError> {
        let source = Arc::new(text);
        let mut config = match toml::from_str::<FerryConfig>(&source) {
            Ok(config) => config,
            Err(err) => return Err(deserialize_problems(path, &source, &err)),
        };
        let loaded_from = config_dir(path);
        for env in config.env.values_mut() {
            if let Some(auth) = &mut env.auth {
                auth.relative_to(&loaded_from);
            }
        }
        Ok(LoadedConfig {
            path: path.to_owned(),
            source,
            config,
        })
    }

    /// The directory of the config file: relative paths in it are relative to it.
    pub fn dir(&self) -> PathBuf {
        config_dir(&self.path)
    }

    /// The environment `name`, or an error listing the ones that exist.
    pub fn env(&self, name: &str) -> Result<&EnvConfig, ConfigError> {
        self.config
            .env
            .get(name)
            .ok_or_else(|| ConfigError::UnknownEnv {
                path: self.path.display().to_string(),
                name: name.to_owned(),
                known: self.env_names_joined(),
                hint: match did_you_mean(name, self.config.env.keys().map(String::as_str)) {
                    Some(close) => format!("did you mean `{close}`? (--env {close})"),
                    None => format!(
                        "add an [env.{name}] table, or pick one of the defined environments"
                    ),
                },
            })
    }

    /// The defined environment names, comma-separated (or "none").
    pub fn env_names_joined(&self) -> String {
        if self.config.env.is_empty() {
            "none".to_owned()
        } else {
            self.config
                .env
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        }
    }

    /// An error located at the value of `key_path` (or, if that value is absent, at its deepest
    /// present ancestor), for problems found after deserialising.
    pub fn error_at(
        &self,
        key_path: &[KeySeg],
        message: impl fmt::Display,
        help: Option<String>,
    ) -> ConfigError {
        let span = locate(&self.source, key_path).unwrap_or(0..0);
        invalid(&self.path, &self.source, span, message.to_string(), help)
    }
}

/// The candidate closest to `asked`, when it is close enough to be a typo (edit distance at
/// most a third of the name, or one letter), for "did you mean".
pub fn did_you_mean<'a>(
    asked: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (asked.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (strsim::levenshtein(asked, c), c))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, c)| c)
}

/// The first `max + 1` bytes of a file at most: enough to tell that it is over `max` without
/// reading an endless device or pipe into memory.
pub fn read_at_most(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(max.saturating_add(1))
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The byte range of the value at `key_path` in `text`, or of its deepest present ancestor.
pub fn locate(text: &str, key_path: &[KeySeg]) -> Option<std::ops::Range<usize>> {
    let doc = toml::de::DeTable::parse(text).ok()?;
    let mut span = doc.span();
    let mut current: Option<&toml::de::DeValue<'_>> = None;
    let mut table = Some(doc.get_ref());
    for seg in key_path {
        let next = match (seg, table, current) {
            (KeySeg::Key(k), Some(t), _) => t.get(k.as_str()),
            (KeySeg::Index(i), _, Some(toml::de::DeValue::Array(a))) => a.get(*i),
            _ => None,
        };
        let Some(next) = next else { break };
        span = next.span();
        current = Some(next.get_ref());
        table = match next.get_ref() {
            toml::de::DeValue::Table(t) => Some(t),
            _ => None,
        };
    }
    Some(span)
}

fn invalid(
    path: &Path,
    source: &Arc<String>,
    span: std::ops::Range<usize>,
    message: String,
    help: Option<String>,
) -> ConfigError {
    let (line, column) = line_column(source, span.start);
    let shown = path.display().to_string();
    let (snippet, span) = snippet(source, span, line, column);
    ConfigError::Invalid(Box::new(Located {
        path: shown.clone(),
        line,
        column,
        message: message.trim().to_owned(),
        src: NamedSource::new(shown, snippet),
        span,
        help,
    }))
}

/// The widest source line shown in an error's snippet, in characters.
const SNIPPET_WIDTH: usize = 120;

/// The text miette shows under a config error: the whole file, or a cut of one wide line.
///
/// A cut reports the file's own column in the snippet's `[file:line:column]` header (miette
/// would count from the cut).
#[derive(Debug)]
pub struct Snippet {
    text: Arc<String>,
    /// For a cut: the span's offset in the cut and its 0-based column in the file.
    cut: Option<(usize, usize)>,
}

impl miette::SourceCode for Snippet {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'a> + 'a>, miette::MietteError> {
        let inner = self.text.read_span(span, before, after)?;
        let column = match self.cut {
            Some((at, column)) if before == 0 && after == 0 && span.offset() == at => column,
            _ => inner.column(),
        };
        Ok(Box::new(miette::MietteSpanContents::new(
            inner.data(),
            *inner.span(),
            inner.line(),
            column,
            inner.line_count(),
        )))
    }
}

/// The source miette shows under an error, and the span in it. When a line around the problem
/// is wider than [`SNIPPET_WIDTH`] (a generated or hostile file: one line of 10,000 brackets),
/// miette would print it whole and the error would fill many screens; the snippet is then the
/// problem's line alone, cut to a window around the column (`…` where cut), after `line - 1`
/// empty lines so that its line number is still right.
fn snippet(
    source: &Arc<String>,
    span: std::ops::Range<usize>,
    line: usize,
    column: usize,
) -> (Snippet, SourceSpan) {
    let len = span.end.saturating_sub(span.start);
    let lines: Vec<&str> = source
        .lines()
        .skip(line.saturating_sub(2))
        .take(3)
        .collect();
    if lines.iter().all(|l| l.chars().count() <= SNIPPET_WIDTH) {
        let whole = Snippet {
            text: Arc::clone(source),
            cut: None,
        };
        return (whole, (span.start, len).into());
    }
    let text = source.lines().nth(line - 1).unwrap_or("");
    let chars: Vec<char> = text.chars().collect();
    let col = (column - 1).min(chars.len());
    let from = col.saturating_sub(SNIPPET_WIDTH / 2);
    let to = (from + SNIPPET_WIDTH).min(chars.len());
    let mut out = "\n".repeat(line - 1);
    if from > 0 {
        out.push('…');
    }
    let start = out.len() + chars[from..col].iter().map(|c| c.len_utf8()).sum::<usize>();
    out.extend(&chars[from..to]);
    let end = out.len();
    if to < chars.len() {
        out.push('…');
    }
    let cut = Snippet {
        text: Arc::new(out),
        cut: Some((start, column - 1)),
    };
    (cut, (start, len.min(end - start)).into())
}

/// 1-based line and character column of a byte offset.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..floor_char_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// The most unknown keys one run lists.
const MAX_UNKNOWN_KEYS: usize = 50;

/// The problem deserialising stopped at, and when it is an unknown key (a typo, the most
/// common mistake), every other unknown key too: the parser stops at the first error, so each
/// unknown key found is blanked out (spaces, newlines kept: every offset stays the same) and
/// the text read again, for as long as the next error is another unknown key.
fn deserialize_problems(path: &Path, source: &Arc<String>, err: &toml::de::Error) -> ConfigError {
    let located = |e: &toml::de::Error| {
        invalid(
            path,
            source,
            e.span().unwrap_or(0..0),
            e.message().to_owned(),
            hint_for(e.message()),
        )
    };
    let mut problems = vec![located(err)];
    let mut text = source.to_string();
    let mut at = err.span().filter(|_| is_unknown_key(err.message()));
    while let Some(span) = at.take() {
        if problems.len() >= MAX_UNKNOWN_KEYS || !blank_entry(&mut text, &span) {
            break;
        }
        if let Err(next) = toml::from_str::<FerryConfig>(&text)
            && is_unknown_key(next.message())
            && let Some(next_span) = next.span()
            && next_span != span
        {
            problems.push(located(&next));
            at = Some(next_span);
        }
    }
    if problems.len() == 1 {
        return problems.remove(0);
    }
    // In the file's order (the parser meets tables in its own order).
    problems.sort_by_key(|p| match p {
        ConfigError::Invalid(l) => (l.line, l.column),
        _ => (usize::MAX, 0),
    });
    ConfigError::Several {
        path: path.display().to_string(),
        count: problems.len(),
        problems,
    }
}

fn is_unknown_key(message: &str) -> bool {
    message.starts_with("unknown field")
}

/// Blanks out the `key = value` whose key starts at `key_span` (spaces; newlines are kept).
/// False when no such entry is found.
fn blank_entry(text: &mut String, key_span: &std::ops::Range<usize>) -> bool {
    fn find(table: &toml::de::DeTable<'_>, start: usize) -> Option<std::ops::Range<usize>> {
        table.iter().find_map(|(k, v)| {
            if k.span().start == start && v.span().end > start {
                return Some(start..v.span().end);
            }
            find_in(v.get_ref(), start)
        })
    }
    fn find_in(value: &toml::de::DeValue<'_>, start: usize) -> Option<std::ops::Range<usize>> {
        match value {
            toml::de::DeValue::Table(t) => find(t, start),
            toml::de::DeValue::Array(a) => a.iter().find_map(|v| find_in(v.get_ref(), start)),
            _ => None,
        }
    }
    let start = key_span.start.min(text.len());
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let is_header = |line: &str| line.trim_start().starts_with('[');
    let key_end = key_span.end.min(text.len());
    let dotted_head = text[key_end..].trim_start().starts_with('.');
    let range = if dotted_head && text[line_start..start].trim().is_empty() {
        // The first segment of a dotted key (`extra.colour = 1`, `extra` unknown): the line.
        let end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        Some(start..end)
    } else if is_header(&text[line_start..]) {
        // An unknown table (`[env.dev.bogus]`, `[[...]]`): its header and its keys, up to the
        // next header.
        let mut end = text.len();
        let mut at = text[line_start..]
            .find('\n')
            .map_or(text.len(), |i| line_start + i + 1);
        while at < text.len() {
            if is_header(&text[at..]) {
                end = at;
                break;
            }
            at = text[at..].find('\n').map_or(text.len(), |i| at + i + 1);
        }
        Some(line_start..end)
    } else {
        match toml::de::DeTable::parse(text) {
            Ok(doc) => find(doc.get_ref(), start).map(|r| {
                // A dotted key (`infra.bogus = 1`): from its first segment.
                let before = &text[line_start..r.start];
                let from = if before.trim().is_empty()
                    || before.contains(['=', '{', ',', '[', '"', '\''])
                {
                    r.start
                } else {
                    line_start + (before.len() - before.trim_start().len())
                };
                // In an inline table, the comma after the entry goes with it.
                let rest = &text[r.end..];
                let end = match rest.trim_start_matches([' ', '\t']).strip_prefix(',') {
                    Some(after) => text.len() - after.len(),
                    None => r.end,
                };
                from..end
            }),
            Err(_) => None,
        }
    };
    let Some(range) =
        range.filter(|r| text.is_char_boundary(r.start) && text.is_char_boundary(r.end))
    else {
        return false;
    };
    // Line breaks stay (lines and columns keep their numbers), every other byte a space.
    let blank: String = text[range.clone()]
        .chars()
        .map(|c| match c {
            '\n' | '\r' => c.to_string(),
            _ => " ".repeat(c.len_utf8()),
        })
        .collect();
    text.replace_range(range, &blank);
    true
}

fn hint_for(message: &str) -> Option<String> {
    if message.contains("unknown field") {
        Some("remove the key, or check its spelling against the expected keys above".to_owned())
    } else if message.contains("missing field") {
        Some("add the missing key".to_owned())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<LoadedConfig, ConfigError> {
        LoadedConfig::from_text(Path::new("ferry.toml"), text.to_owned())
    }

    #[test]
    fn minimal_file_loads() {
        let cfg = load("[app]\nname = \"shop\"\n\n[env.dev]\n").unwrap();
        assert_eq!(cfg.config.app.name, "shop");
        assert!(cfg.env("dev").is_ok());
    }

    /// A problem on a very wide line (10,000 brackets) still renders on one screen, with the
    /// file's own line and column in the snippet's header.
    #[test]
    fn a_wide_line_is_cut_in_the_snippet() {
        let text = format!(
            "[app]\nname = \"shop\"\n# {}\nbogus = 1 # {}\n",
            "é".repeat(5000),
            "]".repeat(10_000)
        );
        let err = load(&text).unwrap_err();
        let mut out = String::new();
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
            .render_report(&mut out, &err)
            .unwrap();
        assert!(
            out.contains("ferry.toml:4:1: unknown field `bogus`"),
            "{out}"
        );
        assert!(out.contains("[ferry.toml:4:1]"), "{out}");
        assert!(out.contains(" 4 │ bogus = 1 # ]]]"), "{out}");
        assert!(out.lines().count() < 20, "{out}");
        let widest = out
            .lines()
            .filter(|l| l.contains('│'))
            .map(|l| l.chars().count())
            .max();
        assert!(widest < Some(SNIPPET_WIDTH + 10), "{widest:?}\n{out}");
        // Deep in the line, the window moves with the column.
        let text = format!("[app]\nname = \"shop\"\nx = [{}1, 2]]\n", "[".repeat(300));
        let ConfigError::Invalid(located) = load(&text).unwrap_err() else {
            panic!("expected Invalid")
        };
        let mut out = String::new();
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
            .render_report(&mut out, located.as_ref())
            .unwrap();
        let header = format!("[ferry.toml:{}:{}]", located.line, located.column);
        assert!(located.column > SNIPPET_WIDTH / 2, "{out}");
        assert!(out.contains(&header), "{header}\n{out}");
        assert!(out.contains(" 3 │ …[[["), "{out}");
    }

    #[test]
    fn unknown_key_is_located() {
        let err = load("[app]\nname = \"shop\"\ncolour = 1\n").unwrap_err();
        let ConfigError::Invalid(located) = err else {
            panic!("expected Invalid, got {err:?}")
        };
        let Located {
            line,
            column,
            message,
            ..
        } = *located;
        assert_eq!((line, column), (3, 1));
        assert!(message.contains("unknown field `colour`"), "{message}");
        assert!(message.contains("expected"), "{message}");
    }

    #[test]
    fn every_unknown_key_is_listed_in_one_run() {
        let text = "[app]\nname = \"shop\"\ncolour = \"bl\u{e9}u\"\n\
                    [env.dev.infra]\ncloud = \"aws\"\nregion = \"us-east-1\"\ncontrol_plane = \"standard\"\n\
                    egress_gbb = 250\nnotes = \"\"\"\nmulti\nline\n\"\"\"\n\
                    [[env.dev.infra.node_groups]]\nname = \"a\"\ninstance_type = \"t3.medium\"\ncount = 1\n\
                    size = { big = true }\n";
        let err = load(text).unwrap_err();
        let ConfigError::Several {
            count, problems, ..
        } = err
        else {
            panic!("expected Several, got {err:?}")
        };
        let found: Vec<(usize, usize, String)> = problems
            .iter()
            .map(|p| match p {
                ConfigError::Invalid(l) => (l.line, l.column, l.message.clone()),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(count, 4, "{found:?}");
        let at: Vec<(usize, usize)> = found.iter().map(|(l, c, _)| (*l, *c)).collect();
        // Lines and columns are the file's own, after earlier keys were blanked out.
        assert_eq!(at, [(3, 1), (8, 1), (9, 1), (17, 1)], "{found:?}");
        for (key, (_, _, message)) in ["colour", "egress_gbb", "notes", "size"].iter().zip(&found) {
            assert!(
                message.contains(&format!("unknown field `{key}`")),
                "{message}"
            );
        }
        // Unknown tables, dotted keys and keys of inline tables are blanked whole, and the
        // reading goes on.
        let text = "[app]\nname = \"shop\"\nextra.colour = 1\n[env.dev.infra]\ncloud = \"aws\"\n\
                    region = \"us-east-1\"\ncontrol_plane = \"standard\"\n\
                    load_balancers = [{ name = \"lb\", kind = \"nlb\", colour = 1, lcu = 1 }]\n\
                    [env.dev.bogus]\na = 1\nb = 2\n[env.dev.budget]\nmonthly_usd = 300\nmonthyl = 1\n";
        let err = load(text).unwrap_err();
        let ConfigError::Several { problems, .. } = err else {
            panic!("expected Several, got {err:?}")
        };
        let at: Vec<(usize, String)> = problems
            .iter()
            .map(|p| match p {
                ConfigError::Invalid(l) => (l.line, l.message.clone()),
                other => panic!("{other:?}"),
            })
            .collect();
        let lines: Vec<usize> = at.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [3, 8, 8, 9, 14], "{at:?}");
        // Another kind of problem after an unknown key ends the list: it is reported on its
        // own once the unknown key is fixed.
        let err =
            load("[app]\nname = \"shop\"\ncolour = 1\n[env.dev.infra]\ncloud = 7\n").unwrap_err();
        assert!(matches!(err, ConfigError::Invalid(_)), "{err:?}");
    }

    #[test]
    fn missing_env_lists_defined_ones() {
        let cfg = load("[app]\nname = \"shop\"\n[env.dev]\n[env.prod]\n").unwrap();
        let err = cfg.env("stage").unwrap_err().to_string();
        assert!(
            err.contains("`stage`") && err.contains("dev, prod"),
            "{err}"
        );
    }

    #[test]
    fn locate_finds_nested_values_and_falls_back_to_ancestors() {
        let text = "[app]\nname = \"shop\"\n[env.dev]\nlist = [1, 22]\n";
        let at = |path: &[KeySeg]| {
            let r = locate(text, path).unwrap();
            &text[r]
        };
        assert_eq!(at(&["app".into(), "name".into()]), "\"shop\"");
        assert_eq!(
            at(&["env".into(), "dev".into(), "list".into(), 1.into()]),
            "22"
        );
        // An absent key points at its parent table.
        let parent = locate(text, &["app".into(), "nope".into()]).unwrap();
        assert_eq!(line_column(text, parent.start).0, 1);
    }

    #[test]
    fn key_paths_read_like_toml() {
        let path = [
            KeySeg::from("env"),
            KeySeg::from("dev"),
            KeySeg::from("node_groups"),
            KeySeg::from(0),
            KeySeg::from("a b"),
        ];
        assert_eq!(key_path_string(&path), "env.dev.node_groups[0].\"a b\"");
    }

    #[test]
    fn line_column_counts_characters() {
        assert_eq!(line_column("a\nbé c", 5), (2, 3));
    }
}
