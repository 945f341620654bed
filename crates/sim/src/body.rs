//! Request bodies, decoded in one pass that also notes duplicate keys.
//!
//! The API server decodes bodies strictly (sigs.k8s.io/json and go-yaml): a key given twice in
//! one object is a `duplicate field "spec.paused"` (JSON) or `line 14: key "paused" already set
//! in map` (YAML), an error under `fieldValidation=Strict` and a warning under `Warn`.
//! `serde_json::Value`'s own deserializer keeps the last value without a word, and
//! serde_norway's `Value` rejects any duplicate outright, so neither fits: [`parse`] builds the
//! `Value` with a small visitor that checks each key against the map being built (one hash
//! lookup per key, no second parse). Only a YAML body that has duplicates is read again, once per
//! duplicate, to learn each one's line from the parser's error location.

use std::fmt;

use serde::Deserializer;
use serde::de::{DeserializeSeed, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::status::ApiError;

/// A decoded body and the duplicate keys it had.
#[derive(Debug, Default)]
pub(crate) struct Body {
    pub(crate) value: Value,
    pub(crate) duplicates: Duplicates,
}

/// Duplicate keys in a body, in document order, as the API server words them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) enum Duplicates {
    #[default]
    None,
    /// JSON: field paths (`spec.template.spec.containers[0].imagePullPolicy`).
    Json(Vec<String>),
    /// A JSON patch's operations: `[1].path`.
    JsonPatch(Vec<String>),
    /// YAML: `line N: key "K" already set in map`.
    Yaml(Vec<String>),
}

impl Duplicates {
    pub(crate) fn is_empty(&self) -> bool {
        match self {
            Duplicates::None => true,
            Duplicates::Json(v) | Duplicates::JsonPatch(v) | Duplicates::Yaml(v) => v.is_empty(),
        }
    }
}

/// Parses a request body: JSON, or YAML (which kubectl and kube-rs never send, but other clients
/// do).
pub(crate) fn parse(body: &[u8]) -> Result<Body, ApiError> {
    let trimmed = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map_or(&body[..0], |i| &body[i..]);
    if trimmed.is_empty() {
        return Err(ApiError::bad_request("the request body is empty"));
    }
    let mut ctx = Ctx::default();
    if trimmed[0] == b'{' || trimmed[0] == b'[' {
        let mut de = serde_json::Deserializer::from_slice(trimmed);
        let value = Tracked(&mut ctx)
            .deserialize(&mut de)
            .and_then(|v| de.end().map(|()| v))
            .map_err(|err| {
                ApiError::bad_request(format!("the request body is not valid JSON: {err}"))
            })?;
        let duplicates = if ctx.found.is_empty() {
            Duplicates::None
        } else {
            Duplicates::Json(ctx.found)
        };
        return Ok(Body { value, duplicates });
    }
    parse_yaml(trimmed)
}

/// Parses a body as YAML (JSON is YAML), naming duplicates by line.
pub(crate) fn parse_yaml(body: &[u8]) -> Result<Body, ApiError> {
    let mut ctx = Ctx::default();
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("the request body is neither JSON nor UTF-8 YAML"))?;
    let value = Tracked(&mut ctx)
        .deserialize(serde_norway::Deserializer::from_str(text))
        .map_err(|err| {
            ApiError::bad_request(format!("the request body is not valid YAML: {err}"))
        })?;
    if ctx.found.is_empty() {
        return Ok(Body {
            value,
            duplicates: Duplicates::None,
        });
    }
    Ok(Body {
        value,
        duplicates: Duplicates::Yaml(yaml_lines(text, &ctx.keys)),
    })
}

/// The line of each duplicate key. A reading that stops at the n-th duplicate gets an error that
/// the YAML parser locates at the start of the mapping holding it; the key's own line is found by
/// looking for its n-th occurrence among that mapping's keys (same column) from there.
fn yaml_lines(text: &str, keys: &[(String, usize)]) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    keys.iter()
        .enumerate()
        .map(|(n, (key, occurrence))| {
            let mut ctx = Ctx {
                stop_at: Some(n),
                ..Ctx::default()
            };
            let location = Tracked(&mut ctx)
                .deserialize(serde_norway::Deserializer::from_str(text))
                .err()
                .and_then(|err| err.location());
            let line = location.map_or(0, |l| {
                flow_key_line(text, l.index(), key, *occurrence)
                    .or_else(|| key_line(&lines, l.line(), l.column(), key, *occurrence))
                    .unwrap_or(l.line())
            });
            format!("line {line}: key {key:?} already set in map")
        })
        .collect()
}

/// In a flow mapping (`{...}`, JSON) starting at byte `index`: the 1-based line of the
/// `occurrence`-th quoted `key` of that mapping itself.
fn flow_key_line(text: &str, index: usize, key: &str, occurrence: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    if bytes.get(index) != Some(&b'{') {
        return None;
    }
    let (mut depth, mut seen, mut i) = (0usize, 0, index);
    while i < bytes.len() {
        match bytes[i] {
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return None;
                }
            }
            b'"' => {
                let start = i + 1;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                let token = text.get(start..i.min(bytes.len()))?;
                let after = text.get(i + 1..).unwrap_or("").trim_start();
                if depth == 1 && token == key && after.starts_with(':') {
                    seen += 1;
                    if seen == occurrence {
                        return Some(text[..start].matches('\n').count() + 1);
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The 1-based line of the `occurrence`-th `key:` at `column` (1-based), from line `start` on,
/// within the block that starts there.
fn key_line(
    lines: &[&str],
    start: usize,
    column: usize,
    key: &str,
    occurrence: usize,
) -> Option<usize> {
    let indent = column.checked_sub(1)?;
    let mut seen = 0;
    for (i, line) in lines.iter().enumerate().skip(start.checked_sub(1)?) {
        let content = line.trim_start();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let at = line.len() - content.len();
        if i + 1 > start && at < indent {
            break;
        }
        let Some(rest) = line.get(indent..) else {
            continue;
        };
        let is_key = [key.to_owned(), format!("{key:?}"), format!("'{key}'")]
            .iter()
            .any(|k| {
                rest.strip_prefix(k.as_str())
                    .is_some_and(|r| r.trim_start().starts_with(':'))
            });
        if is_key && (i + 1 == start || at == indent) {
            seen += 1;
            if seen == occurrence {
                return Some(i + 1);
            }
        }
    }
    None
}

fn itoa_buffer() -> [u8; 20] {
    [0; 20]
}

/// `n` in decimal, without `fmt` (paths are built for every array element).
fn format_index(buf: &mut [u8; 20], mut n: usize) -> &str {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + u8::try_from(n % 10).unwrap_or(0);
        n /= 10;
        if n == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[at..]).unwrap_or("")
}

#[derive(Default)]
struct Ctx {
    /// The path of the value being read.
    path: String,
    /// Paths of duplicate keys.
    found: Vec<String>,
    /// The duplicate keys themselves, and which occurrence of the key in its mapping each is.
    keys: Vec<(String, usize)>,
    /// Fail at this duplicate (to learn its YAML location).
    stop_at: Option<usize>,
}

struct Tracked<'a>(&'a mut Ctx);

impl<'de> DeserializeSeed<'de> for Tracked<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Tracked<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_i128<E: serde::de::Error>(self, v: i128) -> Result<Value, E> {
        if let Ok(v) = i64::try_from(v) {
            Ok(Value::Number(v.into()))
        } else if let Ok(v) = u64::try_from(v) {
            Ok(Value::Number(v.into()))
        } else {
            Err(E::custom("number out of range"))
        }
    }

    fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<Value, E> {
        u64::try_from(v)
            .map(|v| Value::Number(v.into()))
            .map_err(|_| E::custom("number out of range"))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let ctx = self.0;
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        let base = ctx.path.len();
        let mut digits = itoa_buffer();
        loop {
            ctx.path.push('[');
            ctx.path.push_str(format_index(&mut digits, items.len()));
            ctx.path.push(']');
            let item = seq.next_element_seed(Tracked(&mut *ctx))?;
            ctx.path.truncate(base);
            match item {
                Some(v) => items.push(v),
                None => break,
            }
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let ctx = self.0;
        let mut map = Map::new();
        let base = ctx.path.len();
        let mut repeated: Vec<(String, usize)> = Vec::new();
        while let Some(key) = access.next_key::<String>()? {
            if !ctx.path.is_empty() {
                ctx.path.push('.');
            }
            ctx.path.push_str(&key);
            if map.contains_key(&key) {
                if ctx.stop_at == Some(ctx.found.len()) {
                    return Err(A::Error::custom("duplicate key"));
                }
                ctx.found.push(ctx.path.clone());
                let occurrence = match repeated.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, n)) => {
                        *n += 1;
                        *n
                    }
                    None => {
                        repeated.push((key.clone(), 2));
                        2
                    }
                };
                ctx.keys.push((key.clone(), occurrence));
            }
            let value = access.next_value_seed(Tracked(&mut *ctx))?;
            ctx.path.truncate(base);
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_duplicates_are_named_by_path_in_document_order_and_the_last_value_wins() {
        let body = br#"{"metadata":{"name":"a","name":"b"},"spec":{"paused":true,"paused":false,
            "template":{"spec":{"containers":[{"name":"c","imagePullPolicy":"Always","imagePullPolicy":"Never"}]}}}}"#;
        let parsed = parse(body).unwrap();
        assert_eq!(
            parsed.duplicates,
            Duplicates::Json(vec![
                "metadata.name".to_owned(),
                "spec.paused".to_owned(),
                "spec.template.spec.containers[0].imagePullPolicy".to_owned(),
            ])
        );
        assert_eq!(parsed.value["metadata"]["name"], "b");
        let deep = parse(br#"[0,1,2,3,4,5,6,7,8,9,10,{"k":1,"k":2,"k":3}]"#).unwrap();
        assert_eq!(
            deep.duplicates,
            Duplicates::Json(vec!["[11].k".to_owned(), "[11].k".to_owned()])
        );
        assert_eq!(parsed.value["spec"]["paused"], false);
    }

    #[test]
    fn yaml_duplicates_are_named_by_line() {
        let body = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  name: b\ndata:\n  x: \"1\"\n  # x: no\n  y:\n    x: 0\n  x: \"3\"\n  \"x\": \"4\"\nlist:\n- name: c\n  image: i\n  image: j\n";
        let parsed = parse(body).unwrap();
        assert_eq!(
            parsed.duplicates,
            Duplicates::Yaml(vec![
                r#"line 5: key "name" already set in map"#.to_owned(),
                r#"line 11: key "x" already set in map"#.to_owned(),
                r#"line 12: key "x" already set in map"#.to_owned(),
                r#"line 16: key "image" already set in map"#.to_owned(),
            ])
        );
        assert_eq!(parsed.value["data"]["x"], "4");
        let json = parse_yaml(b"{\"a\": 1,\n \"a\": 2}").unwrap();
        assert_eq!(
            json.duplicates,
            Duplicates::Yaml(vec![r#"line 2: key "a" already set in map"#.to_owned()])
        );
    }

    #[test]
    fn bodies_without_duplicates_decode_as_serde_json_does() {
        let text = r#"{"a":[1,-2,3.5,null,true,"s",{"b":{}}],"c":18446744073709551615}"#;
        let parsed = parse(text.as_bytes()).unwrap();
        assert_eq!(parsed.duplicates, Duplicates::None);
        assert_eq!(parsed.value, serde_json::from_str::<Value>(text).unwrap());
        let yaml = parse(b"a:\n- 1\n- x\nb: {c: 2}\n").unwrap();
        assert_eq!(yaml.value, json!({"a": [1, "x"], "b": {"c": 2}}));
        assert!(parse(br#"{"a":1} x"#).is_err());
        assert!(parse(b"  ").is_err());
    }
}
