//! ferry's kustomize: base plus overlays, built in-process with no kustomize or kubectl binary
//! (a deploy must not depend on a tool's version: krane#850).
//!
//! Supported kustomization fields: `resources` (files and directories with their own
//! kustomization; `bases` too), `namespace`, `namePrefix`/`nameSuffix`, `commonLabels`,
//! `labels` (with `includeSelectors`/`includeTemplates`), `commonAnnotations`, `images`,
//! `replicas`, `patches` (strategic merge and JSON 6902, with target selectors),
//! `patchesStrategicMerge`, `patchesJson6902`, `configMapGenerator`/`secretGenerator` (literals,
//! files, env files, behaviours create/merge/replace, options) with `generatorOptions`, hash
//! suffixes, and rewriting of references to renamed objects (ConfigMaps, Secrets,
//! ServiceAccounts, Services, PVCs, roles, scale targets).
//!
//! The transformers run in kustomize's order (patches, namespace, prefix, suffix, labels,
//! annotations, JSON 6902 patches, replicas, images); hash suffixes and reference rewriting
//! happen once, at the end of the top-level build, as in kustomize. Output equals
//! `kubectl kustomize` up to key and document order (the differential tests check it).
//!
//! Where ferry is stricter than kustomize, on purpose: a patch whose target matches nothing is
//! an error (kustomize ignores it silently, which hides renamed objects); remote resources,
//! Helm charts, components and other plugins are refused with a clear message rather than
//! half-supported.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::Digest as _;

use super::{RenderError, kustomization_file, parse_documents, parse_values, read_text};
use crate::manifest::{
    Manifest, ObjectKey, Source, group_of, is_cluster_scoped_kind, pod_spec_pointer, version_of,
};

/// Builds the kustomization in `dir` (a base or an overlay).
pub fn build(dir: &Path) -> Result<Vec<Manifest>, RenderError> {
    let mut visiting = Vec::new();
    let mut acc = build_dir(dir, &mut visiting)?;
    add_hash_suffixes(&mut acc);
    fix_references(&mut acc);
    Ok(acc
        .into_iter()
        .map(|r| Manifest {
            source: r.source,
            object: r.obj,
        })
        .collect())
}

/// Fields kustomize knows that ferry's implementation does not do: refused by name.
const UNSUPPORTED: [&str; 12] = [
    "components",
    "helmCharts",
    "helmChartInflationGenerator",
    "helmGlobals",
    "replacements",
    "vars",
    "crds",
    "openapi",
    "transformers",
    "generators",
    "validators",
    "configurations",
];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Kustomization {
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    metadata: Option<Value>,
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default)]
    bases: Vec<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    name_prefix: Option<String>,
    #[serde(default)]
    name_suffix: Option<String>,
    #[serde(default)]
    common_labels: BTreeMap<String, String>,
    #[serde(default)]
    labels: Vec<LabelSpec>,
    #[serde(default)]
    common_annotations: BTreeMap<String, String>,
    #[serde(default)]
    images: Vec<ImageSpec>,
    #[serde(default)]
    replicas: Vec<ReplicaSpec>,
    #[serde(default)]
    patches: Vec<PatchSpec>,
    #[serde(default)]
    patches_strategic_merge: Vec<String>,
    #[serde(default)]
    patches_json6902: Vec<PatchSpec>,
    #[serde(default)]
    config_map_generator: Vec<GeneratorSpec>,
    #[serde(default)]
    secret_generator: Vec<GeneratorSpec>,
    #[serde(default)]
    generator_options: Option<GeneratorOptions>,
    #[serde(default)]
    build_metadata: Vec<String>,
    #[serde(default)]
    sort_options: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct LabelSpec {
    #[serde(default)]
    pairs: BTreeMap<String, String>,
    #[serde(default)]
    include_selectors: bool,
    #[serde(default)]
    include_templates: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ImageSpec {
    name: String,
    #[serde(default)]
    new_name: Option<String>,
    #[serde(default)]
    new_tag: Option<String>,
    #[serde(default)]
    digest: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ReplicaSpec {
    name: String,
    count: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PatchSpec {
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    patch: Option<String>,
    #[serde(default)]
    target: Option<Selector>,
    #[serde(default)]
    options: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Selector {
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    label_selector: Option<String>,
    #[serde(default)]
    annotation_selector: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct GeneratorOptions {
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    disable_name_suffix_hash: Option<bool>,
    #[serde(default)]
    immutable: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct GeneratorSpec {
    name: String,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    behavior: Option<String>,
    #[serde(default)]
    literals: Vec<String>,
    #[serde(default)]
    files: Vec<String>,
    #[serde(default)]
    envs: Vec<String>,
    #[serde(default)]
    env: Option<String>,
    #[serde(default, rename = "type")]
    type_: Option<String>,
    #[serde(default)]
    options: Option<GeneratorOptions>,
}

/// An object being built, with the names it had on the way (for reference rewriting).
#[derive(Debug, Clone)]
struct Res {
    obj: Value,
    source: Source,
    /// Every name the object had, oldest first (the current one last).
    names: Vec<String>,
    /// Every namespace the object had, oldest first.
    namespaces: Vec<Option<String>>,
    needs_hash: bool,
}

impl Res {
    fn new(obj: Value, source: Source) -> Self {
        let name = str_at(&obj, "/metadata/name")
            .unwrap_or_default()
            .to_owned();
        let ns = str_at(&obj, "/metadata/namespace").map(str::to_owned);
        Res {
            obj,
            source,
            names: vec![name],
            namespaces: vec![ns],
            needs_hash: false,
        }
    }

    fn kind(&self) -> &str {
        str_at(&self.obj, "/kind").unwrap_or("")
    }

    fn api_version(&self) -> &str {
        str_at(&self.obj, "/apiVersion").unwrap_or("")
    }

    fn name(&self) -> &str {
        str_at(&self.obj, "/metadata/name").unwrap_or("")
    }

    fn namespace(&self) -> Option<&str> {
        str_at(&self.obj, "/metadata/namespace").filter(|s| !s.is_empty())
    }

    fn set_name(&mut self, name: String) {
        set_at(
            &mut self.obj,
            &["metadata", "name"],
            Value::String(name.clone()),
        );
        if self.names.last() != Some(&name) {
            self.names.push(name);
        }
    }

    fn set_namespace(&mut self, ns: &str) {
        set_at(
            &mut self.obj,
            &["metadata", "namespace"],
            Value::String(ns.to_owned()),
        );
        self.namespaces.push(Some(ns.to_owned()));
    }

    fn had_name(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }

    fn id(&self) -> String {
        match self.namespace() {
            Some(ns) => format!("{} {ns}/{}", self.kind(), self.name()),
            None => format!("{} {}", self.kind(), self.name()),
        }
    }

    fn key(&self) -> Option<ObjectKey> {
        ObjectKey::of(&self.obj)
    }
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn set_at(v: &mut Value, path: &[&str], value: Value) {
    let mut cur = v;
    for (i, seg) in path.iter().enumerate() {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        let Value::Object(map) = cur else { return };
        if i == path.len() - 1 {
            map.insert((*seg).to_owned(), value);
            return;
        }
        cur = map
            .entry((*seg).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

fn is_remote(resource: &str) -> bool {
    resource.contains("://")
        || resource.starts_with("github.com/")
        || resource.starts_with("git@")
        || resource.starts_with("gitlab.com/")
        || resource.starts_with("bitbucket.org/")
}

/// Lexically normalises a path (`a/b/../c` -> `a/c`) so load restrictions can be checked
/// without touching the file system.
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// A file a kustomization reads (patch, generator input, plain resource) must lie in or below
/// the kustomization's directory, as kustomize's default load restrictor requires.
fn restricted_file(
    dir: &Path,
    kfile: &Path,
    rel: &str,
    what: &str,
) -> Result<PathBuf, RenderError> {
    let joined = normalise(&dir.join(rel));
    let root = normalise(dir);
    if !joined.starts_with(&root) {
        return Err(RenderError::kustomization(
            kfile,
            format!(
                "{what} `{rel}` is outside the kustomization's directory; kustomize only loads files \
                 in or below it (move the file, or make its directory a base with its own kustomization)"
            ),
        ));
    }
    if !joined.is_file() {
        return Err(RenderError::kustomization(
            kfile,
            format!("{what} `{rel}` not found ({})", joined.display()),
        ));
    }
    Ok(joined)
}

fn load_kustomization(kfile: &Path) -> Result<Kustomization, RenderError> {
    let text = read_text(kfile)?;
    let values = parse_values(kfile, &text)?;
    let value = match values.into_iter().find(|v| !v.is_null()) {
        Some(v @ Value::Object(_)) => v,
        Some(other) => {
            return Err(RenderError::kustomization(
                kfile,
                format!(
                    "a kustomization must be a mapping, found {}",
                    super::json_type(&other)
                ),
            ));
        }
        None => Value::Object(Map::new()),
    };
    if let Value::Object(map) = &value {
        for key in map.keys() {
            if UNSUPPORTED.contains(&key.as_str()) {
                return Err(RenderError::kustomization(
                    kfile,
                    format!(
                        "kustomization field `{key}` is not supported by ferry's built-in kustomize \
                         (supported: resources, namespace, namePrefix, nameSuffix, commonLabels, labels, \
                         commonAnnotations, images, replicas, patches, patchesStrategicMerge, \
                         patchesJson6902, configMapGenerator, secretGenerator, generatorOptions)"
                    ),
                ));
            }
        }
    }
    let k: Kustomization = serde_json::from_value(value)
        .map_err(|e| RenderError::kustomization(kfile, format!("invalid kustomization: {e}")))?;
    if let Some(kind) = &k.kind
        && kind != "Kustomization"
    {
        return Err(RenderError::kustomization(
            kfile,
            format!("kind is `{kind}`; a kustomization file has kind Kustomization"),
        ));
    }
    let _ = (
        &k.api_version,
        &k.metadata,
        &k.build_metadata,
        &k.sort_options,
    );
    Ok(k)
}

fn build_dir(dir: &Path, visiting: &mut Vec<PathBuf>) -> Result<Vec<Res>, RenderError> {
    let Some(kfile) = kustomization_file(dir) else {
        return Err(RenderError::Kustomization {
            path: dir.display().to_string(),
            message: "directory has no kustomization.yaml".to_owned(),
        });
    };
    let canonical = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
    if visiting.contains(&canonical) {
        return Err(RenderError::kustomization(
            &kfile,
            "kustomizations include each other in a cycle",
        ));
    }
    visiting.push(canonical);
    let k = load_kustomization(&kfile)?;
    let mut acc: Vec<Res> = Vec::new();

    for entry in k.resources.iter().chain(&k.bases) {
        if is_remote(entry) {
            return Err(RenderError::kustomization(
                &kfile,
                format!(
                    "remote resource `{entry}`: ferry builds only local kustomizations (vendor the \
                     base into the repository)"
                ),
            ));
        }
        let path = normalise(&dir.join(entry));
        if path.is_dir() {
            if kustomization_file(&path).is_none() {
                return Err(RenderError::kustomization(
                    &kfile,
                    format!("resource `{entry}` is a directory without a kustomization.yaml"),
                ));
            }
            for r in build_dir(&path, visiting)? {
                add_resource(&mut acc, r, &kfile)?;
            }
        } else {
            let file = restricted_file(dir, &kfile, entry, "resource")?;
            let text = read_text(&file)?;
            for m in parse_documents(&file, &text)? {
                check_resource_shape(&m)?;
                add_resource(&mut acc, Res::new(m.object, m.source), &kfile)?;
            }
        }
    }

    let defaults = k.generator_options.clone().unwrap_or_default();
    for g in &k.config_map_generator {
        generate(&mut acc, dir, &kfile, g, &defaults, false)?;
    }
    for g in &k.secret_generator {
        generate(&mut acc, dir, &kfile, g, &defaults, true)?;
    }

    // Transformers, in kustomize's order.
    for p in &k.patches_strategic_merge {
        let (docs, origin) = patch_docs(dir, &kfile, p)?;
        for doc in docs {
            apply_smp_untargeted(&mut acc, &doc, &origin, &kfile)?;
        }
    }
    for p in &k.patches {
        apply_patch_spec(&mut acc, dir, &kfile, p, false)?;
    }
    if let Some(ns) = &k.namespace {
        apply_namespace(&mut acc, ns);
    }
    if let Some(prefix) = &k.name_prefix {
        for r in acc.iter_mut().filter(|r| renamable(r.kind())) {
            let name = format!("{prefix}{}", r.name());
            r.set_name(name);
        }
    }
    if let Some(suffix) = &k.name_suffix {
        for r in acc.iter_mut().filter(|r| renamable(r.kind())) {
            let name = format!("{}{suffix}", r.name());
            r.set_name(name);
        }
    }
    if !k.common_labels.is_empty() {
        for r in &mut acc {
            add_labels(&mut r.obj, &k.common_labels, true, true);
        }
    }
    for spec in &k.labels {
        for r in &mut acc {
            add_labels(
                &mut r.obj,
                &spec.pairs,
                spec.include_selectors,
                spec.include_templates || spec.include_selectors,
            );
        }
    }
    if !k.common_annotations.is_empty() {
        for r in &mut acc {
            add_annotations(&mut r.obj, &k.common_annotations);
        }
    }
    for p in &k.patches_json6902 {
        apply_patch_spec(&mut acc, dir, &kfile, p, true)?;
    }
    for rep in &k.replicas {
        let mut found = false;
        for r in acc.iter_mut().filter(|r| {
            matches!(
                r.kind(),
                "Deployment" | "ReplicaSet" | "StatefulSet" | "ReplicationController"
            ) && r.had_name(&rep.name)
        }) {
            set_at(&mut r.obj, &["spec", "replicas"], json!(rep.count));
            found = true;
        }
        if !found {
            return Err(RenderError::kustomization(
                &kfile,
                format!(
                    "replicas: no Deployment, StatefulSet, ReplicaSet or ReplicationController named `{}`",
                    rep.name
                ),
            ));
        }
    }
    for img in &k.images {
        for r in &mut acc {
            set_images(&mut r.obj, img);
        }
    }
    visiting.pop();
    Ok(acc)
}

fn check_resource_shape(m: &Manifest) -> Result<(), RenderError> {
    let missing = |what: &str| RenderError::Object {
        source_: m.source.clone(),
        object: m.describe_short(),
        message: format!("missing `{what}`"),
    };
    if m.api_version().is_empty() {
        return Err(missing("apiVersion"));
    }
    if m.kind().is_empty() {
        return Err(missing("kind"));
    }
    if m.name().is_empty() && m.object.pointer("/metadata/generateName").is_none() {
        return Err(missing("metadata.name"));
    }
    Ok(())
}

impl Manifest {
    /// `Kind name`, for messages where the source is printed separately.
    pub(crate) fn describe_short(&self) -> String {
        match (self.kind(), self.name()) {
            ("", "") => "object".to_owned(),
            (k, "") => format!("{k} (unnamed)"),
            ("", n) => format!("object {n}"),
            (k, n) => format!("{k} {n}"),
        }
    }
}

fn add_resource(acc: &mut Vec<Res>, r: Res, kfile: &Path) -> Result<(), RenderError> {
    if let Some(key) = r.key()
        && let Some(existing) = acc.iter().find(|e| e.key().as_ref() == Some(&key))
    {
        return Err(RenderError::Kustomization {
            path: kfile.display().to_string(),
            message: format!(
                "{} is defined twice: in {} and in {}",
                r.id(),
                existing.source,
                r.source
            ),
        });
    }
    acc.push(r);
    Ok(())
}

/// Namespaces and CRDs keep their names under namePrefix/nameSuffix (a CRD's name must be
/// `plural.group`).
fn renamable(kind: &str) -> bool {
    !matches!(kind, "Namespace" | "CustomResourceDefinition")
}

// ---------------------------------------------------------------------------------------------
// Generators

fn parse_literal(lit: &str) -> Option<(String, String)> {
    let (k, v) = lit.split_once('=')?;
    let v = v.trim();
    let unquoted = if v.len() >= 2
        && ((v.starts_with('"') && v.ends_with('"')) || (v.starts_with('\'') && v.ends_with('\'')))
    {
        &v[1..v.len() - 1]
    } else {
        v
    };
    Some((k.trim().to_owned(), unquoted.to_owned()))
}

fn valid_data_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 253
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && key != "."
        && key != ".."
}

enum DataValue {
    Text(String),
    Binary(Vec<u8>),
}

fn generate(
    acc: &mut Vec<Res>,
    dir: &Path,
    kfile: &Path,
    g: &GeneratorSpec,
    defaults: &GeneratorOptions,
    secret: bool,
) -> Result<(), RenderError> {
    let gen_kind = if secret {
        "secretGenerator"
    } else {
        "configMapGenerator"
    };
    let kind = if secret { "Secret" } else { "ConfigMap" };
    let err = |message: String| {
        RenderError::kustomization(kfile, format!("{gen_kind} {}: {message}", g.name))
    };
    let mut data: BTreeMap<String, DataValue> = BTreeMap::new();
    let mut put = |key: String, value: DataValue| -> Result<(), RenderError> {
        if !valid_data_key(&key) {
            return Err(err(format!(
                "key `{key}` is not a valid {kind} key (letters, digits, `-`, `_`, `.`)"
            )));
        }
        if data.insert(key.clone(), value).is_some() {
            return Err(err(format!("key `{key}` is given twice")));
        }
        Ok(())
    };
    for lit in &g.literals {
        // Never echo a secret literal's value: name the key only.
        let Some((k, v)) = parse_literal(lit) else {
            let key = lit.split('=').next().unwrap_or("");
            return Err(err(format!(
                "literal `{}` is not KEY=VALUE",
                if secret { key } else { lit.as_str() }
            )));
        };
        put(k, DataValue::Text(v))?;
    }
    let env_files = g.envs.iter().chain(g.env.iter());
    for env in env_files {
        let file = restricted_file(dir, kfile, env, "env file")?;
        let text = read_text(&file)?;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                return Err(RenderError::Parse {
                    path: file.display().to_string(),
                    line: i + 1,
                    column: 1,
                    message: format!(
                        "env file line is not KEY=VALUE (a bare `{}` would be read from ferry's own environment, which a deploy must not depend on)",
                        line.split_whitespace().next().unwrap_or("")
                    ),
                });
            };
            put(k.trim().to_owned(), DataValue::Text(v.to_owned()))?;
        }
    }
    for f in &g.files {
        let (key, rel) = match f.split_once('=') {
            Some((k, p)) => (k.to_owned(), p),
            None => (
                Path::new(f)
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or(f)
                    .to_owned(),
                f.as_str(),
            ),
        };
        let file = restricted_file(dir, kfile, rel, "file")?;
        let bytes = std::fs::read(&file).map_err(|source| RenderError::Read {
            path: file.display().to_string(),
            source,
        })?;
        let value = match String::from_utf8(bytes) {
            Ok(text) => DataValue::Text(text),
            Err(e) => DataValue::Binary(e.into_bytes()),
        };
        put(key, value)?;
    }

    let mut opts = defaults.clone();
    if let Some(o) = &g.options {
        opts.labels.extend(o.labels.clone());
        opts.annotations.extend(o.annotations.clone());
        if o.disable_name_suffix_hash.is_some() {
            opts.disable_name_suffix_hash = o.disable_name_suffix_hash;
        }
        if o.immutable.is_some() {
            opts.immutable = o.immutable;
        }
    }

    let b64 = base64::engine::general_purpose::STANDARD;
    let mut text_data = Map::new();
    let mut binary_data = Map::new();
    for (k, v) in data {
        match (v, secret) {
            (DataValue::Text(t), false) => {
                text_data.insert(k, Value::String(t));
            }
            (DataValue::Binary(b), false) => {
                binary_data.insert(k, Value::String(b64.encode(b)));
            }
            (DataValue::Text(t), true) => {
                text_data.insert(k, Value::String(wrapped_base64(t.as_bytes())));
            }
            (DataValue::Binary(b), true) => {
                text_data.insert(k, Value::String(wrapped_base64(&b)));
            }
        }
    }

    let behavior = g.behavior.as_deref().unwrap_or("create");
    let source = Source::generated(kfile, format!("{gen_kind} {}", g.name));
    match behavior {
        "create" => {
            let mut metadata = Map::new();
            metadata.insert("name".into(), Value::String(g.name.clone()));
            if let Some(ns) = &g.namespace {
                metadata.insert("namespace".into(), Value::String(ns.clone()));
            }
            if !opts.labels.is_empty() {
                metadata.insert("labels".into(), json!(opts.labels));
            }
            if !opts.annotations.is_empty() {
                metadata.insert("annotations".into(), json!(opts.annotations));
            }
            let mut obj = Map::new();
            obj.insert("apiVersion".into(), json!("v1"));
            obj.insert("kind".into(), json!(kind));
            obj.insert("metadata".into(), Value::Object(metadata));
            if !text_data.is_empty() || binary_data.is_empty() {
                obj.insert("data".into(), Value::Object(text_data));
            }
            if !binary_data.is_empty() {
                obj.insert("binaryData".into(), Value::Object(binary_data));
            }
            if secret {
                obj.insert(
                    "type".into(),
                    json!(g.type_.clone().unwrap_or_else(|| "Opaque".to_owned())),
                );
            }
            if opts.immutable == Some(true) {
                obj.insert("immutable".into(), json!(true));
            }
            let mut r = Res::new(Value::Object(obj), source);
            r.needs_hash = opts.disable_name_suffix_hash != Some(true);
            add_resource(acc, r, kfile)
        }
        "merge" | "replace" => {
            let Some(existing) = acc.iter_mut().find(|r| {
                r.kind() == kind
                    && r.had_name(&g.name)
                    && (g.namespace.is_none() || r.namespace() == g.namespace.as_deref())
            }) else {
                return Err(err(format!(
                    "behavior `{behavior}` needs an existing {kind} named `{}` from the resources",
                    g.name
                )));
            };
            let Value::Object(obj) = &mut existing.obj else {
                return Ok(());
            };
            if behavior == "replace" {
                obj.remove("data");
                obj.remove("binaryData");
            }
            if !text_data.is_empty() {
                let target = obj
                    .entry("data")
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(t) = target {
                    t.extend(text_data);
                }
            }
            if !binary_data.is_empty() {
                let target = obj
                    .entry("binaryData")
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(t) = target {
                    t.extend(binary_data);
                }
            }
            for (k, v) in &opts.labels {
                set_at(&mut existing.obj, &["metadata", "labels", k], json!(v));
            }
            for (k, v) in &opts.annotations {
                set_at(&mut existing.obj, &["metadata", "annotations", k], json!(v));
            }
            if opts.disable_name_suffix_hash == Some(true) {
                existing.needs_hash = false;
            }
            Ok(())
        }
        other => Err(err(format!(
            "behavior `{other}` is not one of create, merge, replace"
        ))),
    }
}

/// Base64 as kustomize writes Secret data: lines of 70 characters, each ending in a newline
/// when there is more than one (the API server's decoder skips the newlines).
fn wrapped_base64(bytes: &[u8]) -> String {
    const LINE: usize = 70;
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    let lines = encoded.len() / LINE + 1;
    if lines == 1 {
        return encoded;
    }
    let mut out = String::with_capacity(encoded.len() + lines);
    for chunk in encoded.as_bytes().chunks(LINE) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out
}

/// kustomize's content hash of a ConfigMap or Secret: sha256 over Go's JSON encoding of kind,
/// an empty name, data (and binaryData, type, immutable when set), then the first ten hex
/// digits with `0 1 3 a e` mapped to `g h k m t` (so the suffix never reads as a number or a
/// bad word).
pub fn content_hash(obj: &Value) -> String {
    let kind = str_at(obj, "/kind").unwrap_or("");
    let mut fields: BTreeMap<&str, Value> = BTreeMap::new();
    fields.insert("kind", json!(kind));
    fields.insert("name", json!(""));
    fields.insert(
        "data",
        obj.get("data").cloned().unwrap_or_else(|| json!({})),
    );
    if kind == "ConfigMap" {
        if let Some(bd) = obj
            .get("binaryData")
            .filter(|v| v.as_object().is_some_and(|m| !m.is_empty()))
        {
            fields.insert("binaryData", bd.clone());
        }
    } else {
        fields.insert(
            "type",
            obj.get("type").cloned().unwrap_or_else(|| json!("")),
        );
    }
    if obj.get("immutable") == Some(&Value::Bool(true)) {
        fields.insert("immutable", json!(true));
    }
    let mut encoded = String::new();
    go_json(&json!(fields), &mut encoded);
    let digest = hex::encode(sha2::Sha256::digest(encoded.as_bytes()));
    digest[..10]
        .chars()
        .map(|c| match c {
            '0' => 'g',
            '1' => 'h',
            '3' => 'k',
            'a' => 'm',
            'e' => 't',
            other => other,
        })
        .collect()
}

/// Go's `encoding/json` output: sorted keys, no spaces, and `<`, `>`, `&`, U+2028, U+2029
/// escaped.
fn go_json(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            out.push('{');
            let keys: BTreeSet<&String> = m.keys().collect();
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_string(k, out);
                out.push(':');
                go_json(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_json(e, out);
            }
            out.push(']');
        }
        Value::String(s) => go_string(s, out),
        other => out.push_str(&other.to_string()),
    }
}

fn go_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn add_hash_suffixes(acc: &mut [Res]) {
    for r in acc.iter_mut().filter(|r| r.needs_hash) {
        let hash = content_hash(&r.obj);
        let name = format!("{}-{hash}", r.name());
        r.set_name(name);
    }
}

// ---------------------------------------------------------------------------------------------
// Patches

/// The documents of a patch given as a file path or inline text, and a label for messages.
fn patch_docs(dir: &Path, kfile: &Path, spec: &str) -> Result<(Vec<Value>, String), RenderError> {
    let looks_inline =
        spec.contains('\n') || spec.trim_start().starts_with('{') || spec.contains(": ");
    if looks_inline {
        let docs = parse_values(kfile, spec)?;
        return Ok((docs, "inline patch".to_owned()));
    }
    let file = restricted_file(dir, kfile, spec, "patch")?;
    let text = read_text(&file)?;
    Ok((parse_values(&file, &text)?, file.display().to_string()))
}

fn apply_patch_spec(
    acc: &mut [Res],
    dir: &Path,
    kfile: &Path,
    p: &PatchSpec,
    json6902_only: bool,
) -> Result<(), RenderError> {
    let _ = &p.options;
    let (docs, origin) = match (&p.path, &p.patch) {
        (Some(path), None) => {
            let file = restricted_file(dir, kfile, path, "patch")?;
            let text = read_text(&file)?;
            (parse_values(&file, &text)?, file.display().to_string())
        }
        (None, Some(inline)) => (parse_values(kfile, inline)?, "inline patch".to_owned()),
        (Some(_), Some(_)) => {
            return Err(RenderError::kustomization(
                kfile,
                "a patch has both `path` and `patch`; give one",
            ));
        }
        (None, None) => {
            return Err(RenderError::kustomization(
                kfile,
                "a patch has neither `path` nor `patch`",
            ));
        }
    };
    let docs: Vec<Value> = docs.into_iter().filter(|d| !d.is_null()).collect();
    let is_json6902 = docs.len() == 1 && docs[0].is_array();
    if json6902_only && !is_json6902 {
        return Err(RenderError::kustomization(
            kfile,
            format!("{origin}: patchesJson6902 needs a list of JSON patch operations"),
        ));
    }
    match &p.target {
        None if is_json6902 => Err(RenderError::kustomization(
            kfile,
            format!("{origin}: a JSON 6902 patch needs a `target`"),
        )),
        None => {
            for doc in &docs {
                apply_smp_untargeted(acc, doc, &origin, kfile)?;
            }
            Ok(())
        }
        Some(target) => {
            let matcher = SelectorMatcher::new(target, kfile)?;
            let indices: Vec<usize> = acc
                .iter()
                .enumerate()
                .filter(|(_, r)| matcher.matches(r))
                .map(|(i, _)| i)
                .collect();
            if indices.is_empty() {
                return Err(RenderError::kustomization(
                    kfile,
                    format!(
                        "{origin}: patch target {} matches no resource",
                        matcher.describe()
                    ),
                ));
            }
            for i in indices {
                if is_json6902 {
                    apply_json6902(&mut acc[i], &docs[0], &origin, kfile)?;
                } else {
                    for doc in &docs {
                        let mut doc = doc.clone();
                        if let Some(Value::Object(meta)) = doc.get_mut("metadata") {
                            meta.remove("name");
                            meta.remove("namespace");
                        }
                        if let Value::Object(m) = &mut doc {
                            m.remove("kind");
                            m.remove("apiVersion");
                        }
                        let kind = acc[i].kind().to_owned();
                        super::strategic_merge(&mut acc[i].obj, &doc, &kind);
                    }
                }
            }
            Ok(())
        }
    }
}

fn apply_json6902(r: &mut Res, ops: &Value, origin: &str, kfile: &Path) -> Result<(), RenderError> {
    let patch: json_patch::Patch = serde_json::from_value(ops.clone()).map_err(|e| {
        RenderError::kustomization(kfile, format!("{origin}: invalid JSON 6902 patch: {e}"))
    })?;
    let id = r.id();
    json_patch::patch(&mut r.obj, &patch).map_err(|e| {
        RenderError::kustomization(kfile, format!("{origin}: cannot patch {id}: {e}"))
    })?;
    // A patch may rename the object.
    let name = r.name().to_owned();
    if r.names.last() != Some(&name) {
        r.names.push(name);
    }
    Ok(())
}

fn apply_smp_untargeted(
    acc: &mut [Res],
    doc: &Value,
    origin: &str,
    kfile: &Path,
) -> Result<(), RenderError> {
    if doc.is_null() {
        return Ok(());
    }
    let kind = str_at(doc, "/kind").unwrap_or("");
    let name = str_at(doc, "/metadata/name").unwrap_or("");
    if kind.is_empty() || name.is_empty() {
        return Err(RenderError::kustomization(
            kfile,
            format!(
                "{origin}: a strategic merge patch without a target needs `kind` and `metadata.name` \
                 to find the object it patches"
            ),
        ));
    }
    let group = group_of(str_at(doc, "/apiVersion").unwrap_or(""));
    let ns = str_at(doc, "/metadata/namespace");
    let candidates: Vec<usize> = acc
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            r.kind() == kind
                && group_of(r.api_version()) == group
                && r.had_name(name)
                && ns.is_none_or(|ns| {
                    r.namespace() == Some(ns)
                        || r.namespaces.iter().any(|n| n.as_deref() == Some(ns))
                })
        })
        .map(|(i, _)| i)
        .collect();
    let idx = match candidates.as_slice() {
        [] => {
            return Err(RenderError::kustomization(
                kfile,
                format!("{origin}: patch target {kind} {name} matches no resource"),
            ));
        }
        [one] => *one,
        many => {
            // Several namespaces hold the name: prefer the one without a namespace change.
            *many.first().unwrap_or(&0)
        }
    };
    let mut patch = doc.clone();
    if let Some(Value::Object(meta)) = patch.get_mut("metadata") {
        meta.remove("name");
        meta.remove("namespace");
    }
    super::strategic_merge(&mut acc[idx].obj, &patch, kind);
    Ok(())
}

struct SelectorMatcher {
    group: Option<String>,
    version: Option<String>,
    kind: Option<regex::Regex>,
    name: Option<regex::Regex>,
    namespace: Option<regex::Regex>,
    labels: Vec<Requirement>,
    annotations: Vec<Requirement>,
    shown: String,
}

enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
    NotExists(String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

impl SelectorMatcher {
    fn new(s: &Selector, kfile: &Path) -> Result<Self, RenderError> {
        let re = |field: &str, v: &Option<String>| -> Result<Option<regex::Regex>, RenderError> {
            v.as_ref()
                .map(|pattern| {
                    regex::Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
                        RenderError::kustomization(
                            kfile,
                            format!("patch target {field} `{pattern}` is not a valid pattern: {e}"),
                        )
                    })
                })
                .transpose()
        };
        let mut shown = Vec::new();
        for (k, v) in [
            ("group", &s.group),
            ("version", &s.version),
            ("kind", &s.kind),
            ("name", &s.name),
            ("namespace", &s.namespace),
            ("labelSelector", &s.label_selector),
            ("annotationSelector", &s.annotation_selector),
        ] {
            if let Some(v) = v {
                shown.push(format!("{k}={v}"));
            }
        }
        Ok(SelectorMatcher {
            group: s.group.clone(),
            version: s.version.clone(),
            kind: re("kind", &s.kind)?,
            name: re("name", &s.name)?,
            namespace: re("namespace", &s.namespace)?,
            labels: parse_selector(s.label_selector.as_deref().unwrap_or(""), kfile)?,
            annotations: parse_selector(s.annotation_selector.as_deref().unwrap_or(""), kfile)?,
            shown: format!("{{{}}}", shown.join(", ")),
        })
    }

    fn describe(&self) -> &str {
        &self.shown
    }

    fn matches(&self, r: &Res) -> bool {
        let av = r.api_version();
        if let Some(g) = &self.group
            && group_of(av) != g
        {
            return false;
        }
        if let Some(v) = &self.version
            && version_of(av) != v
        {
            return false;
        }
        if let Some(k) = &self.kind
            && !k.is_match(r.kind())
        {
            return false;
        }
        if let Some(n) = &self.name
            && !r.names.iter().any(|name| n.is_match(name))
        {
            return false;
        }
        if let Some(ns) = &self.namespace
            && !ns.is_match(r.namespace().unwrap_or("default"))
        {
            return false;
        }
        let labels = r.obj.pointer("/metadata/labels");
        let annotations = r.obj.pointer("/metadata/annotations");
        self.labels.iter().all(|req| req.matches(labels))
            && self.annotations.iter().all(|req| req.matches(annotations))
    }
}

impl Requirement {
    fn matches(&self, map: Option<&Value>) -> bool {
        let get = |k: &str| map.and_then(|m| m.get(k)).and_then(Value::as_str);
        match self {
            Requirement::Equals(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
            Requirement::In(k, vs) => get(k).is_some_and(|v| vs.iter().any(|x| x == v)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|v| vs.iter().all(|x| x != v)),
        }
    }
}

/// Parses a Kubernetes label selector (`a=b,c!=d,e,!f,g in (x,y),h notin (z)`).
fn parse_selector(text: &str, kfile: &Path) -> Result<Vec<Requirement>, RenderError> {
    let mut out = Vec::new();
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for c in text.chars() {
        match c {
            '(' => {
                depth += 1;
                cur.push(c);
            }
            ')' => {
                depth -= 1;
                cur.push(c);
            }
            ',' if depth == 0 => parts.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    parts.push(cur);
    for part in parts.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
        let bad =
            || RenderError::kustomization(kfile, format!("invalid selector requirement `{part}`"));
        let set = |rest: &str| -> Option<Vec<String>> {
            let inner = rest.trim().strip_prefix('(')?.strip_suffix(')')?;
            Some(inner.split(',').map(|s| s.trim().to_owned()).collect())
        };
        let req = if let Some((k, v)) = part.split_once("!=") {
            Requirement::NotEquals(k.trim().to_owned(), v.trim().to_owned())
        } else if let Some((k, v)) = part.split_once("==") {
            Requirement::Equals(k.trim().to_owned(), v.trim().to_owned())
        } else if let Some((k, v)) = part.split_once('=') {
            Requirement::Equals(k.trim().to_owned(), v.trim().to_owned())
        } else if let Some((k, rest)) = part.split_once(" notin ") {
            Requirement::NotIn(k.trim().to_owned(), set(rest).ok_or_else(bad)?)
        } else if let Some((k, rest)) = part.split_once(" in ") {
            Requirement::In(k.trim().to_owned(), set(rest).ok_or_else(bad)?)
        } else if let Some(k) = part.strip_prefix('!') {
            Requirement::NotExists(k.trim().to_owned())
        } else if part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
        {
            Requirement::Exists(part.to_owned())
        } else {
            return Err(bad());
        };
        out.push(req);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Namespace, labels, annotations, images

fn apply_namespace(acc: &mut [Res], ns: &str) {
    // Service accounts in the set, by every name they had (their bindings follow them).
    let sa_names: BTreeSet<String> = acc
        .iter()
        .filter(|r| r.kind() == "ServiceAccount")
        .flat_map(|r| r.names.clone())
        .collect();
    for r in acc.iter_mut() {
        let kind = r.kind().to_owned();
        if kind == "Namespace" {
            r.set_name(ns.to_owned());
            continue;
        }
        if matches!(kind.as_str(), "RoleBinding" | "ClusterRoleBinding")
            && let Some(Value::Array(subjects)) = r.obj.get_mut("subjects")
        {
            for s in subjects.iter_mut() {
                let is_sa = s.get("kind").and_then(Value::as_str) == Some("ServiceAccount");
                let name = s.get("name").and_then(Value::as_str).unwrap_or("");
                if is_sa && (name == "default" || sa_names.contains(name)) {
                    s["namespace"] = json!(ns);
                }
            }
        }
        if !is_cluster_scoped_kind(&kind) {
            r.set_namespace(ns);
        }
    }
}

/// Where kustomize puts labels on each kind: (path, create when missing).
fn selector_paths(kind: &str) -> &'static [(&'static str, bool)] {
    match kind {
        "Service" | "ReplicationController" => &[("spec/selector", true)],
        "Deployment" | "ReplicaSet" | "DaemonSet" | "StatefulSet" => &[
            ("spec/selector/matchLabels", true),
            (
                "spec/template/spec/affinity/podAffinity/preferredDuringSchedulingIgnoredDuringExecution/podAffinityTerm/labelSelector/matchLabels",
                false,
            ),
            (
                "spec/template/spec/affinity/podAffinity/requiredDuringSchedulingIgnoredDuringExecution/labelSelector/matchLabels",
                false,
            ),
            (
                "spec/template/spec/affinity/podAntiAffinity/preferredDuringSchedulingIgnoredDuringExecution/podAffinityTerm/labelSelector/matchLabels",
                false,
            ),
            (
                "spec/template/spec/affinity/podAntiAffinity/requiredDuringSchedulingIgnoredDuringExecution/labelSelector/matchLabels",
                false,
            ),
            (
                "spec/template/spec/topologySpreadConstraints/labelSelector/matchLabels",
                false,
            ),
        ],
        "Job" | "PodDisruptionBudget" => &[("spec/selector/matchLabels", false)],
        "CronJob" => &[("spec/jobTemplate/spec/selector/matchLabels", false)],
        "NetworkPolicy" => &[
            ("spec/podSelector/matchLabels", false),
            ("spec/ingress/from/podSelector/matchLabels", false),
            ("spec/egress/to/podSelector/matchLabels", false),
        ],
        _ => &[],
    }
}

fn template_label_paths(kind: &str) -> &'static [&'static str] {
    match kind {
        "Deployment" | "ReplicaSet" | "DaemonSet" | "Job" | "ReplicationController" => {
            &["spec/template/metadata/labels"]
        }
        "StatefulSet" => &[
            "spec/template/metadata/labels",
            "spec/volumeClaimTemplates/metadata/labels",
        ],
        "CronJob" => &[
            "spec/jobTemplate/metadata/labels",
            "spec/jobTemplate/spec/template/metadata/labels",
        ],
        _ => &[],
    }
}

fn template_annotation_paths(kind: &str) -> &'static [&'static str] {
    match kind {
        "Deployment"
        | "ReplicaSet"
        | "DaemonSet"
        | "StatefulSet"
        | "Job"
        | "ReplicationController" => &["spec/template/metadata/annotations"],
        "CronJob" => &[
            "spec/jobTemplate/metadata/annotations",
            "spec/jobTemplate/spec/template/metadata/annotations",
        ],
        _ => &[],
    }
}

/// Merges `pairs` into the map at `path` (segments separated by `/`; lists on the way are
/// walked element by element). With `create`, missing maps are created (not through lists).
fn merge_pairs_at(v: &mut Value, path: &[&str], pairs: &BTreeMap<String, String>, create: bool) {
    match v {
        Value::Array(items) => {
            for item in items {
                merge_pairs_at(item, path, pairs, create);
            }
        }
        Value::Object(map) => {
            let Some((first, rest)) = path.split_first() else {
                for (k, val) in pairs {
                    map.insert(k.clone(), Value::String(val.clone()));
                }
                return;
            };
            if !map.contains_key(*first) || map.get(*first).is_some_and(Value::is_null) {
                if !create {
                    return;
                }
                map.insert((*first).to_owned(), Value::Object(Map::new()));
            }
            if let Some(next) = map.get_mut(*first) {
                merge_pairs_at(next, rest, pairs, create);
            }
        }
        _ => {}
    }
}

fn add_labels(obj: &mut Value, pairs: &BTreeMap<String, String>, selectors: bool, templates: bool) {
    if pairs.is_empty() {
        return;
    }
    let kind = str_at(obj, "/kind").unwrap_or("").to_owned();
    merge_pairs_at(obj, &["metadata", "labels"], pairs, true);
    if templates {
        for path in template_label_paths(&kind) {
            let segs: Vec<&str> = path.split('/').collect();
            // volumeClaimTemplates is a list: labels go on existing claims only.
            merge_pairs_at(obj, &segs, pairs, true);
        }
    }
    if selectors {
        for (path, create) in selector_paths(&kind) {
            let segs: Vec<&str> = path.split('/').collect();
            merge_pairs_at(obj, &segs, pairs, *create);
        }
    }
}

fn add_annotations(obj: &mut Value, pairs: &BTreeMap<String, String>) {
    let kind = str_at(obj, "/kind").unwrap_or("").to_owned();
    merge_pairs_at(obj, &["metadata", "annotations"], pairs, true);
    for path in template_annotation_paths(&kind) {
        let segs: Vec<&str> = path.split('/').collect();
        merge_pairs_at(obj, &segs, pairs, true);
    }
}

/// Splits an image reference into name, tag and digest.
pub fn split_image(image: &str) -> (&str, Option<&str>, Option<&str>) {
    let (rest, digest) = match image.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (image, None),
    };
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    match rest[last_slash..].rfind(':') {
        Some(i) => (
            &rest[..last_slash + i],
            Some(&rest[last_slash + i + 1..]),
            digest,
        ),
        None => (rest, None, digest),
    }
}

fn set_images(obj: &mut Value, spec: &ImageSpec) {
    match obj {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if matches!(
                    k.as_str(),
                    "containers" | "initContainers" | "ephemeralContainers"
                ) && let Value::Array(items) = v
                {
                    for c in items.iter_mut() {
                        if let Some(Value::String(image)) = c.get_mut("image") {
                            let (name, tag, digest) = split_image(image);
                            if name != spec.name {
                                continue;
                            }
                            let new_name = spec.new_name.as_deref().unwrap_or(name);
                            *image = if let Some(d) = &spec.digest {
                                format!("{new_name}@{d}")
                            } else if let Some(t) = &spec.new_tag {
                                format!("{new_name}:{t}")
                            } else {
                                let mut s = new_name.to_owned();
                                if let Some(t) = tag {
                                    s.push(':');
                                    s.push_str(t);
                                }
                                if let Some(d) = digest {
                                    s.push('@');
                                    s.push_str(d);
                                }
                                s
                            };
                        }
                    }
                } else {
                    set_images(v, spec);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                set_images(item, spec);
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Reference rewriting

/// A field holding the name of an object of `kind`: where it is (JSON path segments with `*`
/// for "every list element") in objects of which kinds.
struct RefField {
    target_kind: &'static str,
    path: &'static [&'static str],
}

/// References in a pod spec itself.
const POD_REFS: &[RefField] = &[
    RefField {
        target_kind: "ConfigMap",
        path: &["volumes", "*", "configMap", "name"],
    },
    RefField {
        target_kind: "ConfigMap",
        path: &[
            "volumes",
            "*",
            "projected",
            "sources",
            "*",
            "configMap",
            "name",
        ],
    },
    RefField {
        target_kind: "Secret",
        path: &["volumes", "*", "secret", "secretName"],
    },
    RefField {
        target_kind: "Secret",
        path: &[
            "volumes",
            "*",
            "projected",
            "sources",
            "*",
            "secret",
            "name",
        ],
    },
    RefField {
        target_kind: "Secret",
        path: &["imagePullSecrets", "*", "name"],
    },
    RefField {
        target_kind: "ServiceAccount",
        path: &["serviceAccountName"],
    },
    RefField {
        target_kind: "PersistentVolumeClaim",
        path: &["volumes", "*", "persistentVolumeClaim", "claimName"],
    },
    RefField {
        target_kind: "PriorityClass",
        path: &["priorityClassName"],
    },
];

/// The container lists of a pod spec whose containers' references are rewritten (kustomize's
/// own: not `ephemeralContainers`).
const CONTAINER_LISTS: &[&str] = &["containers", "initContainers"];

/// References in each container of [`CONTAINER_LISTS`].
const CONTAINER_REFS: &[RefField] = &[
    RefField {
        target_kind: "ConfigMap",
        path: &["env", "*", "valueFrom", "configMapKeyRef", "name"],
    },
    RefField {
        target_kind: "ConfigMap",
        path: &["envFrom", "*", "configMapRef", "name"],
    },
    RefField {
        target_kind: "Secret",
        path: &["env", "*", "valueFrom", "secretKeyRef", "name"],
    },
    RefField {
        target_kind: "Secret",
        path: &["envFrom", "*", "secretRef", "name"],
    },
];

fn other_refs(kind: &str) -> &'static [RefField] {
    match kind {
        "Ingress" => &[
            RefField {
                target_kind: "Service",
                path: &[
                    "spec", "rules", "*", "http", "paths", "*", "backend", "service", "name",
                ],
            },
            RefField {
                target_kind: "Service",
                path: &["spec", "defaultBackend", "service", "name"],
            },
            RefField {
                target_kind: "Secret",
                path: &["spec", "tls", "*", "secretName"],
            },
            RefField {
                target_kind: "IngressClass",
                path: &["spec", "ingressClassName"],
            },
        ],
        "StatefulSet" => &[RefField {
            target_kind: "Service",
            path: &["spec", "serviceName"],
        }],
        "ServiceAccount" => &[RefField {
            target_kind: "Secret",
            path: &["imagePullSecrets", "*", "name"],
        }],
        "PersistentVolumeClaim" => &[RefField {
            target_kind: "StorageClass",
            path: &["spec", "storageClassName"],
        }],
        _ => &[],
    }
}

/// The current name of the object of `kind` that once was called `old`, preferring one in
/// `namespace`.
fn renamed(
    snapshot: &[(String, Vec<String>, Option<String>, String)],
    kind: &str,
    old: &str,
    namespace: Option<&str>,
) -> Option<String> {
    let candidates: Vec<&(String, Vec<String>, Option<String>, String)> = snapshot
        .iter()
        .filter(|(k, names, _, _)| k == kind && names.iter().any(|n| n == old))
        .collect();
    let pick = candidates
        .iter()
        .find(|(_, _, ns, _)| ns.as_deref() == namespace || is_cluster_scoped_kind(kind))
        .or_else(|| {
            if candidates.len() == 1 {
                candidates.first()
            } else {
                None
            }
        })?;
    Some(pick.3.clone())
}

fn rewrite_at(v: &mut Value, path: &[&str], rename: &dyn Fn(&str) -> Option<String>) {
    let Some((first, rest)) = path.split_first() else {
        if let Value::String(s) = v
            && let Some(new) = rename(s)
        {
            *s = new;
        }
        return;
    };
    if *first == "*" {
        if let Value::Array(items) = v {
            for item in items {
                rewrite_at(item, rest, rename);
            }
        }
    } else if let Some(next) = v.get_mut(*first) {
        rewrite_at(next, rest, rename);
    }
}

fn fix_references(acc: &mut [Res]) {
    let snapshot: Vec<(String, Vec<String>, Option<String>, String)> = acc
        .iter()
        .map(|r| {
            (
                r.kind().to_owned(),
                r.names.clone(),
                r.namespace().map(str::to_owned),
                r.name().to_owned(),
            )
        })
        .collect();
    for r in acc.iter_mut() {
        let kind = r.kind().to_owned();
        let ns = r.namespace().map(str::to_owned);
        let ns = ns.as_deref();
        if let Some(pointer) = pod_spec_pointer(&kind)
            && let Some(spec) = r.obj.pointer_mut(pointer)
        {
            let rename = |f: &RefField, v: &mut Value| {
                rewrite_at(v, f.path, &|old| renamed(&snapshot, f.target_kind, old, ns));
            };
            for f in POD_REFS {
                rename(f, spec);
            }
            for list in CONTAINER_LISTS {
                if let Some(Value::Array(containers)) = spec.get_mut(*list) {
                    for container in containers {
                        for f in CONTAINER_REFS {
                            rename(f, container);
                        }
                    }
                }
            }
        }
        for f in other_refs(&kind) {
            rewrite_at(&mut r.obj, f.path, &|old| {
                renamed(&snapshot, f.target_kind, old, ns)
            });
        }
        match kind.as_str() {
            "HorizontalPodAutoscaler" => {
                let target_kind = str_at(&r.obj, "/spec/scaleTargetRef/kind")
                    .unwrap_or("")
                    .to_owned();
                if let Some(name) = r.obj.pointer_mut("/spec/scaleTargetRef/name")
                    && let Some(old) = name.as_str()
                    && let Some(new) = renamed(&snapshot, &target_kind, old, ns)
                {
                    *name = json!(new);
                }
            }
            "RoleBinding" | "ClusterRoleBinding" => {
                let role_kind = str_at(&r.obj, "/roleRef/kind").unwrap_or("").to_owned();
                if let Some(name) = r.obj.pointer_mut("/roleRef/name")
                    && let Some(old) = name.as_str()
                    && let Some(new) = renamed(&snapshot, &role_kind, old, ns)
                {
                    *name = json!(new);
                }
                if let Some(Value::Array(subjects)) = r.obj.get_mut("subjects") {
                    for s in subjects {
                        if s.get("kind").and_then(Value::as_str) != Some("ServiceAccount") {
                            continue;
                        }
                        let old = s
                            .get("name")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_owned();
                        let sns = s
                            .get("namespace")
                            .and_then(Value::as_str)
                            .map(str::to_owned);
                        let hits: Vec<_> = snapshot
                            .iter()
                            .filter(|(k, names, _, _)| {
                                k == "ServiceAccount" && names.contains(&old)
                            })
                            .collect();
                        // The one in the subject's namespace, else the only one.
                        let hit = hits
                            .iter()
                            .find(|(_, _, cur_ns, _)| sns.is_some() && cur_ns == &sns)
                            .or(if hits.len() == 1 { hits.first() } else { None });
                        if let Some(hit) = hit {
                            s["name"] = json!(hit.3);
                            if let Some(n) = &hit.2 {
                                s["namespace"] = json!(n);
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_matches_kustomize() {
        // Reference values from `kubectl kustomize` (kustomize v5.5).
        let cm = json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"app-config"},
                        "data":{"A":"1","B":"<x>&"}});
        assert_eq!(content_hash(&cm), "5gch97b56c");
        let secret = json!({"apiVersion":"v1","kind":"Secret","metadata":{"name":"creds"},
                            "type":"Opaque","data":{"pw":"c2VjcmV0"}});
        assert_eq!(content_hash(&secret), "dtgd52765c");
    }

    #[test]
    fn image_references_split() {
        assert_eq!(split_image("nginx"), ("nginx", None, None));
        assert_eq!(split_image("nginx:1.2"), ("nginx", Some("1.2"), None));
        assert_eq!(
            split_image("localhost:5000/a/b:t@sha256:00"),
            ("localhost:5000/a/b", Some("t"), Some("sha256:00"))
        );
        assert_eq!(
            split_image("localhost:5000/a"),
            ("localhost:5000/a", None, None)
        );
    }

    #[test]
    fn selectors_parse() {
        let reqs = parse_selector(
            "app=web,tier!=db,env in (dev, prod),!legacy",
            Path::new("k"),
        )
        .unwrap();
        assert_eq!(reqs.len(), 4);
        let labels = json!({"app":"web","env":"dev"});
        assert!(reqs.iter().all(|r| r.matches(Some(&labels))));
        assert!(!reqs[0].matches(Some(&json!({"app":"api"}))));
    }
}
