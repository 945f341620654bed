//! Render: turn the manifests an app ships into the list of objects to deploy.
//!
//! A manifests path is one of:
//! - a directory holding a `kustomization.yaml` (or `.yml`, or `Kustomization`): built with
//!   ferry's own kustomize implementation ([`kustomize`]);
//! - any other directory: every `*.yaml`, `*.yml` and `*.json` file under it, in path order,
//!   each possibly holding several documents (`---`), and `kind: List` objects flattened;
//! - a single such file.
//!
//! Every object keeps its [`Source`] so later errors name the file and document.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::manifest::{Manifest, Source};

pub mod kustomize;
mod smp;

pub use smp::strategic_merge;

/// The largest manifest file ferry reads (a mistake beyond this: a binary, a dump).
pub const MAX_MANIFEST_BYTES: u64 = 8 * 1024 * 1024;

/// Why manifests could not be rendered. Every variant names the file; those about an object
/// name the object too.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// A file or directory could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The manifests path does not exist.
    #[error("{path}: no such file or directory")]
    NotFound {
        /// The path.
        path: String,
    },
    /// A file is not valid YAML/JSON.
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// 1-based line (0 when unknown).
        line: usize,
        /// 1-based column (0 when unknown).
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A kustomization is wrong (unknown field, missing file, bad patch, ...).
    #[error("{path}: {message}")]
    Kustomization {
        /// The kustomization file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// An object is wrong.
    #[error("{source_}: {object}: {message}")]
    Object {
        /// Where the object came from.
        source_: Source,
        /// Which object (`Deployment web`).
        object: String,
        /// What is wrong.
        message: String,
    },
}

impl RenderError {
    /// The error as a problem of the release: where (`file:line:column`, the file, or the
    /// object's source), which object, and what.
    pub fn problem(&self) -> crate::validate::Problem {
        use crate::validate::Problem;
        let plain = |at: &str, message: String| Problem {
            at: at.to_owned(),
            object: String::new(),
            message,
        };
        match self {
            RenderError::Read { path, source } => plain(path, format!("cannot read it: {source}")),
            RenderError::NotFound { path } => plain(path, "no such file or directory".into()),
            RenderError::Parse {
                path,
                line,
                column,
                message,
            } => plain(&format!("{path}:{line}:{column}"), message.clone()),
            RenderError::Kustomization { path, message } => plain(path, message.clone()),
            RenderError::Object {
                source_,
                object,
                message,
            } => Problem {
                at: source_.to_string(),
                object: object.clone(),
                message: message.clone(),
            },
        }
    }

    pub(crate) fn kustomization(path: &Path, message: impl Into<String>) -> Self {
        RenderError::Kustomization {
            path: path.display().to_string(),
            message: message.into(),
        }
    }
}

/// The file names kustomize recognises, in the order it looks for them.
pub const KUSTOMIZATION_FILES: [&str; 3] =
    ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// The kustomization file in `dir`, if there is one.
pub fn kustomization_file(dir: &Path) -> Option<PathBuf> {
    KUSTOMIZATION_FILES
        .iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
}

/// Renders the manifests at `path` (see the module docs).
pub fn render(path: &Path) -> Result<Vec<Manifest>, RenderError> {
    if !path.exists() {
        return Err(RenderError::NotFound {
            path: path.display().to_string(),
        });
    }
    if path.is_dir() {
        if kustomization_file(path).is_some() {
            return kustomize::build(path);
        }
        let mut files = Vec::new();
        collect_manifest_files(path, &mut files)?;
        let mut out = Vec::new();
        for file in files {
            out.extend(read_manifest_file(&file)?);
        }
        Ok(out)
    } else {
        read_manifest_file(path)
    }
}

fn collect_manifest_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), RenderError> {
    collect_files_below(dir, out, &mut Vec::new())
}

/// Walks `dir`, refusing a directory that contains itself through a symlink (a loop would
/// never end).
fn collect_files_below(
    dir: &Path,
    out: &mut Vec<PathBuf>,
    above: &mut Vec<PathBuf>,
) -> Result<(), RenderError> {
    let real = std::fs::canonicalize(dir).map_err(|source| RenderError::Read {
        path: dir.display().to_string(),
        source,
    })?;
    if above.contains(&real) {
        return Err(RenderError::Parse {
            path: dir.display().to_string(),
            line: 0,
            column: 0,
            message: format!("a symlink loop: this directory is {} again", real.display()),
        });
    }
    above.push(real);
    let read_err = |source| RenderError::Read {
        path: dir.display().to_string(),
        source,
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(read_err)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(read_err)?;
    entries.sort();
    for entry in entries {
        let name = entry.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') {
            continue;
        }
        if entry.is_dir() {
            collect_files_below(&entry, out, above)?;
        } else if is_manifest_file(&entry) {
            out.push(entry);
        }
    }
    above.pop();
    Ok(())
}

fn is_manifest_file(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

/// The text of a manifest file, for locating a problem in it (None when it cannot be read).
pub fn source_text(path: &Path) -> Option<String> {
    read_text(path).ok()
}

/// Reads a file's text, bounded by [`MAX_MANIFEST_BYTES`]. Only regular files are read: a FIFO
/// would block for ever, a device could be endless.
pub(crate) fn read_text(path: &Path) -> Result<String, RenderError> {
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|source| RenderError::Read {
        path: shown.clone(),
        source,
    })?;
    if !meta.is_file() {
        return Err(RenderError::Parse {
            path: shown,
            line: 0,
            column: 0,
            message: "not a regular file (a FIFO, socket or device): ferry reads manifests only from regular files and directories".into(),
        });
    }
    if meta.len() > MAX_MANIFEST_BYTES {
        return Err(RenderError::Parse {
            path: shown,
            line: 0,
            column: 0,
            message: format!(
                "file is {} bytes; ferry reads manifest files of at most {MAX_MANIFEST_BYTES} bytes",
                meta.len()
            ),
        });
    }
    let bytes = std::fs::read(path).map_err(|source| RenderError::Read {
        path: shown.clone(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|e| RenderError::Parse {
        path: shown,
        line: 0,
        column: 0,
        message: format!(
            "not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ),
    })
}

/// Reads one manifest file: every document in it, `List`s flattened, empty documents skipped.
pub fn read_manifest_file(path: &Path) -> Result<Vec<Manifest>, RenderError> {
    let text = read_text(path)?;
    parse_documents(path, &text)
}

/// Parses the documents of a YAML (or JSON) text that came from `path`.
pub fn parse_documents(path: &Path, text: &str) -> Result<Vec<Manifest>, RenderError> {
    let values = parse_values(path, text)?;
    let mut out = Vec::new();
    for (i, value) in values.into_iter().enumerate() {
        let source = Source::document(path, i + 1);
        match value {
            Value::Null => {}
            Value::Object(_) => {
                let is_list = value.get("kind").and_then(Value::as_str) == Some("List")
                    || value
                        .get("kind")
                        .and_then(Value::as_str)
                        .is_some_and(|k| k.ends_with("List") && value.get("items").is_some());
                if is_list {
                    let items = value
                        .get("items")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    for item in items {
                        out.push(Manifest {
                            source: source.clone(),
                            object: item,
                        });
                    }
                } else {
                    out.push(Manifest {
                        source,
                        object: value,
                    });
                }
            }
            other => {
                return Err(RenderError::Object {
                    source_: source,
                    object: "document".to_owned(),
                    message: format!(
                        "expected a Kubernetes object (a mapping), found {}",
                        json_type(&other)
                    ),
                });
            }
        }
    }
    Ok(out)
}

/// Parses every document of a YAML or JSON text into JSON values (YAML is a superset of
/// JSON; `.json` files are parsed as JSON for exact error positions).
pub fn parse_values(path: &Path, text: &str) -> Result<Vec<Value>, RenderError> {
    let shown = path.display().to_string();
    if path.extension().and_then(|e| e.to_str()) == Some("json") {
        let mut out = Vec::new();
        let mut stream =
            serde_json::Deserializer::from_str(text).into_iter::<serde::de::IgnoredAny>();
        let mut start = 0;
        loop {
            let parsed = stream.next();
            let end = stream.byte_offset();
            let Some(parsed) = parsed else { break };
            let error = |e: serde_json::Error, lines_before: usize| RenderError::Parse {
                path: shown.clone(),
                line: e.line() + lines_before,
                column: e.column(),
                message: format!("invalid JSON: {e}"),
            };
            parsed.map_err(|e| error(e, 0))?;
            // Each document again, keeping its keys unique (serde_json's stream has no seeds).
            let doc = &text[start..end];
            let lines_before = text[..start].matches('\n').count();
            let mut de = serde_json::Deserializer::from_str(doc);
            let value = serde::de::DeserializeSeed::deserialize(Unique::root(), &mut de)
                .map_err(|e| error(e, lines_before))?;
            out.push(value);
            start = end;
        }
        return Ok(out);
    }
    if let Some((line, column)) = too_deep(text) {
        return Err(RenderError::Parse {
            path: shown,
            line,
            column,
            message: format!(
                "flow collections (`[`, `{{`) nested more than {MAX_FLOW_NESTING} levels deep: no Kubernetes object is"
            ),
        });
    }
    let mut out = Vec::new();
    for doc in serde_norway::Deserializer::from_str(text) {
        let value = serde::de::DeserializeSeed::deserialize(Unique::root(), doc).map_err(|e| {
            let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            RenderError::Parse {
                path: shown.clone(),
                line,
                column,
                message: format!("invalid YAML: {}", strip_location(&e.to_string())),
            }
        })?;
        out.push(value);
    }
    Ok(out)
}

/// How deep `[` and `{` may nest in a YAML text before it is parsed. The YAML parser's own
/// recursion limit is found only after it has read the whole nest, in time quadratic in its
/// depth (100,000 levels took minutes); this linear scan refuses such a text first.
pub const MAX_FLOW_NESTING: usize = 1000;

/// Where flow collections first nest deeper than [`MAX_FLOW_NESTING`] (line, column), skipping
/// quoted strings and comments. Brackets in block scalars count too, so the limit is far above
/// what a manifest needs.
fn too_deep(text: &str) -> Option<(usize, usize)> {
    let (mut depth, mut line, mut col) = (0usize, 1usize, 0usize);
    let mut chars = text.chars().peekable();
    let mut prev = '\n';
    while let Some(c) = chars.next() {
        col += 1;
        match c {
            '\n' => {
                line += 1;
                col = 0;
            }
            '#' if prev.is_whitespace() => {
                for n in chars.by_ref() {
                    if n == '\n' {
                        line += 1;
                        col = 0;
                        break;
                    }
                }
                prev = '\n';
                continue;
            }
            '"' | '\'' => {
                let quote = c;
                while let Some(n) = chars.next() {
                    col += 1;
                    match n {
                        '\\' if quote == '"' => {
                            chars.next();
                            col += 1;
                        }
                        '\n' => {
                            line += 1;
                            col = 0;
                        }
                        n if n == quote => break,
                        _ => {}
                    }
                }
            }
            '[' | '{' => {
                depth += 1;
                if depth > MAX_FLOW_NESTING {
                    return Some((line, col));
                }
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        prev = c;
    }
    None
}

/// A JSON value from a YAML or JSON document whose mappings have no duplicate keys: as
/// kube-apiserver refuses them under `fieldValidation=Strict` (kubectl's default), ferry
/// refuses them while parsing, at their line and column. A YAML or JSON parser keeps the last
/// of two equal keys, so the server would never see the first one.
struct Unique {
    path: String,
    depth: usize,
}

/// How deep mappings and lists may nest in a manifest (Kubernetes objects nest about 15 deep;
/// serde_json's own limit is 128).
pub const MAX_NESTING: usize = 128;

impl Unique {
    fn root() -> Self {
        Unique {
            path: String::new(),
            depth: 0,
        }
    }

    fn child(&self, key: &str) -> Self {
        Unique {
            path: if self.path.is_empty() {
                key.to_owned()
            } else {
                format!("{}.{key}", self.path)
            },
            depth: self.depth + 1,
        }
    }

    fn deeper<E: serde::de::Error>(&self) -> Result<(), E> {
        if self.depth >= MAX_NESTING {
            return Err(E::custom(format!(
                "nested more than {MAX_NESTING} levels deep: no Kubernetes object is"
            )));
        }
        Ok(())
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Unique {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Unique {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a YAML or JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        serde::de::DeserializeSeed::deserialize(self, d)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.deeper()?;
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(self.child(&format!("[{}]", out.len())))? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.deeper()?;
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key_seed(Unique::root())? {
            let key = match key {
                Value::String(s) => s,
                // YAML allows other keys; JSON objects (and Kubernetes) have strings.
                other => other.to_string(),
            };
            let value = map.next_value_seed(self.child(&key))?;
            if out.contains_key(&key) {
                let field = self.child(&key).path.replace(".[", "[");
                return Err(serde::de::Error::custom(format!(
                    "duplicate field \"{field}\" (a mapping has it twice; the server would keep only the last)"
                )));
            }
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

// serde_norway appends " at line L column C" to its messages; we print the location first.
fn strip_location(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

pub(crate) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_document_yaml_and_lists() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n---\n\
                    apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Secret, metadata: {name: b}}\n";
        let objs = parse_documents(Path::new("x.yaml"), text).unwrap();
        assert_eq!(objs.len(), 2);
        assert_eq!(objs[1].kind(), "Secret");
        assert_eq!(objs[1].source.doc, 3);
    }

    #[test]
    fn yaml_errors_are_located() {
        let err = parse_documents(Path::new("bad.yaml"), "a: b\nc: [d\n").unwrap_err();
        let RenderError::Parse { line, path, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(path, "bad.yaml");
        assert!(*line >= 2, "{err}");
        assert!(err.to_string().starts_with("bad.yaml:"), "{err}");
    }

    #[test]
    fn scalars_are_not_objects() {
        let err = parse_documents(Path::new("s.yaml"), "just a string\n").unwrap_err();
        assert!(
            err.to_string().contains("expected a Kubernetes object"),
            "{err}"
        );
    }
}
