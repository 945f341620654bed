//! Generates ferry's table of required fields (and the references needed to reach them) for
//! the built-in kinds, from k8s-openapi's JSON schemas (feature `schemars`).
use serde_json::{Map, Value, json};

fn slim(schema: &Value) -> Value {
    // Keep only what finds required fields: $ref, required, properties, items,
    // additionalProperties (recursively, for inline sub-schemas).
    let mut out = Map::new();
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        out.insert("$ref".into(), json!(r.trim_start_matches("#/$defs/")));
    }
    if let Some(req) = schema.get("required") {
        out.insert("required".into(), req.clone());
    }
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        let mut p = Map::new();
        for (k, v) in props {
            let s = slim(v);
            if s.as_object().is_some_and(|o| !o.is_empty()) {
                p.insert(k.clone(), s);
            }
        }
        if !p.is_empty() {
            out.insert("properties".into(), Value::Object(p));
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(v) = schema.get(key).filter(|v| v.is_object()) {
            let s = slim(v);
            if s.as_object().is_some_and(|o| !o.is_empty()) {
                out.insert(key.into(), s);
            }
        }
    }
    Value::Object(out)
}

include!("../../../crates/deployer/src/schema_kinds.rs");

macro_rules! kinds {
    ($( $av:literal, $k:literal => $t:ty; )*) => {{
        let mut roots = Map::new();
        let mut defs = Map::new();
        $(
            let root = schemars::SchemaGenerator::default().into_root_schema_for::<$t>();
            let v: Value = root.into();
            for (name, d) in v.get("$defs").and_then(Value::as_object).cloned().unwrap_or_default() {
                defs.insert(name, slim(&d));
            }
            let mut top = v.clone();
            if let Some(o) = top.as_object_mut() { o.remove("$defs"); }
            roots.insert(format!("{}/{}", $av, $k), slim(&top));
        )*
        json!({"roots": roots, "defs": defs})
    }};
}

fn main() {
    let out = for_each_kind!(kinds);
    // Definitions with nothing to check are dropped, and references to them with them.
    println!("{}", serde_json::to_string(&out).unwrap());
}
