//! Strategic merge patch (`application/strategic-merge-patch+json`), for the cases kubectl
//! sends: `set image`, `rollout restart/pause/resume`, `scale`, `annotate`, `label`, `edit`,
//! client-side `apply`. Lists with a patch merge key merge item by item; `$patch: delete` and
//! `$patch: replace`, `$setElementOrder/…`, `$deleteFromPrimitiveList/…` and `$retainKeys` are
//! honoured; `null` deletes a field.

use serde_json::{Map, Value};

use crate::schema::Shape;

struct Patcher<'a> {
    shape: Shape<'a>,
    path: Vec<String>,
}

/// Applies a strategic merge patch to `original`.
pub(crate) fn strategic_merge(
    original: &Value,
    patch: &Value,
    shape: Shape<'_>,
) -> Result<Value, String> {
    let Value::Object(patch) = patch else {
        return Err("a strategic merge patch must be a JSON object".to_owned());
    };
    let original = original.as_object().cloned().unwrap_or_default();
    let mut patcher = Patcher {
        shape,
        path: Vec::new(),
    };
    Ok(patcher
        .merge_map(original, patch)?
        .map_or(Value::Null, Value::Object))
}

impl Patcher<'_> {
    fn path(&self) -> Vec<&str> {
        self.path.iter().map(String::as_str).collect()
    }

    /// `None` when the patch deletes the map.
    fn merge_map(
        &mut self,
        mut original: Map<String, Value>,
        patch: &Map<String, Value>,
    ) -> Result<Option<Map<String, Value>>, String> {
        match patch.get("$patch").and_then(Value::as_str) {
            Some("delete") => return Ok(None),
            Some("replace") => {
                let mut replaced = Map::new();
                for (k, v) in patch {
                    if !k.starts_with('$') {
                        replaced.insert(k.clone(), strip_directives(v));
                    }
                }
                return Ok(Some(replaced));
            }
            Some("merge") | None => {}
            Some(other) => return Err(format!("unknown patch type {other:?} in $patch")),
        }
        for (key, value) in patch {
            if key.starts_with('$') {
                continue;
            }
            if value.is_null() {
                original.remove(key);
                continue;
            }
            self.path.push(key.clone());
            let merged = match (original.remove(key), value) {
                (Some(Value::Object(o)), Value::Object(p)) => {
                    self.merge_map(o, p)?.map(Value::Object)
                }
                (Some(Value::Array(o)), Value::Array(p)) => Some(self.merge_list(o, p)?),
                (_, Value::Object(p)) => self.merge_map(Map::new(), p)?.map(Value::Object),
                (_, Value::Array(p)) => Some(self.merge_list(Vec::new(), p)?),
                (_, v) => Some(v.clone()),
            };
            self.path.pop();
            if let Some(merged) = merged {
                original.insert(key.clone(), merged);
            }
        }
        for (key, value) in patch {
            if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
                let gone = value.as_array().cloned().unwrap_or_default();
                if let Some(Value::Array(items)) = original.get_mut(field) {
                    items.retain(|item| !gone.contains(item));
                }
            }
        }
        for (key, value) in patch {
            if let Some(field) = key.strip_prefix("$setElementOrder/") {
                let order = value.as_array().cloned().unwrap_or_default();
                self.path.push(field.to_owned());
                let merge_key = self.shape.smp_merge(&self.path()).flatten();
                self.path.pop();
                if let Some(Value::Array(items)) = original.get_mut(field) {
                    let rank = |item: &Value| -> usize {
                        order
                            .iter()
                            .position(|o| match merge_key {
                                Some(k) => o.get(k).is_some() && o.get(k) == item.get(k),
                                None => o == item,
                            })
                            .unwrap_or(usize::MAX)
                    };
                    items.sort_by_key(|item| rank(item));
                }
            }
        }
        if let Some(Value::Array(keep)) = patch.get("$retainKeys") {
            let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
            original.retain(|k, _| keep.contains(&k.as_str()));
        }
        Ok(Some(original))
    }

    fn merge_list(&mut self, original: Vec<Value>, patch: &[Value]) -> Result<Value, String> {
        let strategy = self.shape.smp_merge(&self.path());
        if patch.iter().any(|item| {
            item.get("$patch").and_then(Value::as_str) == Some("replace")
                && item.as_object().is_some_and(|m| m.len() == 1)
        }) {
            return Ok(Value::Array(
                patch
                    .iter()
                    .filter(|item| item.get("$patch").is_none())
                    .map(strip_directives)
                    .collect(),
            ));
        }
        match strategy {
            Some(Some(key)) => {
                let mut result = original;
                for item in patch {
                    let Value::Object(item_map) = item else {
                        return Err(format!(
                            "{}: an item of a list merged by {key:?} must be an object",
                            self.path.join(".")
                        ));
                    };
                    let Some(key_value) = item_map.get(key) else {
                        return Err(format!(
                            "{}: map: {item} does not contain declared merge key: {key}",
                            self.path.join(".")
                        ));
                    };
                    let existing = result.iter().position(|o| o.get(key) == Some(key_value));
                    if item_map.get("$patch").and_then(Value::as_str) == Some("delete") {
                        if let Some(i) = existing {
                            result.remove(i);
                        }
                        continue;
                    }
                    match existing {
                        Some(i) => {
                            let current = result[i].as_object().cloned().unwrap_or_default();
                            match self.merge_map(current, item_map)? {
                                Some(merged) => result[i] = Value::Object(merged),
                                None => {
                                    result.remove(i);
                                }
                            }
                        }
                        None => {
                            if let Some(merged) = self.merge_map(Map::new(), item_map)? {
                                result.push(Value::Object(merged));
                            }
                        }
                    }
                }
                Ok(Value::Array(result))
            }
            Some(None) => {
                let mut result = original;
                for item in patch {
                    if !result.contains(item) {
                        result.push(item.clone());
                    }
                }
                Ok(Value::Array(result))
            }
            None => Ok(Value::Array(patch.iter().map(strip_directives).collect())),
        }
    }
}

fn strip_directives(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn shape() -> Shape<'static> {
        Shape {
            kind: "Deployment",
            crd_schema: None,
        }
    }

    fn deployment() -> Value {
        json!({"metadata": {"name": "web", "finalizers": ["a"]}, "spec": {"replicas": 1, "template": {"spec": {"containers": [
            {"name": "web", "image": "nginx:1", "args": ["-x"]},
            {"name": "log", "image": "busybox"}
        ]}}}})
    }

    #[test]
    fn set_image_merges_containers_by_name() {
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "log"}, {"name": "web"}],
            "containers": [{"name": "web", "image": "nginx:2"}]
        }}}});
        let out = strategic_merge(&deployment(), &patch, shape()).unwrap();
        let containers = &out["spec"]["template"]["spec"]["containers"];
        assert_eq!(containers[0]["name"], "log");
        assert_eq!(containers[1]["image"], "nginx:2");
        assert_eq!(containers[1]["args"], json!(["-x"]));
    }

    #[test]
    fn directives_delete_replace_and_null() {
        let patch = json!({
            "metadata": {"finalizers": ["b"], "$deleteFromPrimitiveList/finalizers": ["a"]},
            "spec": {"replicas": null, "template": {"spec": {"containers": [{"name": "log", "$patch": "delete"}]}}}
        });
        let out = strategic_merge(&deployment(), &patch, shape()).unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["b"]));
        assert!(out["spec"].get("replicas").is_none());
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        let replace =
            json!({"spec": {"template": {"$patch": "replace", "spec": {"containers": []}}}});
        let out = strategic_merge(&deployment(), &replace, shape()).unwrap();
        assert_eq!(out["spec"]["template"], json!({"spec": {"containers": []}}));
    }

    #[test]
    fn lists_without_a_merge_key_are_replaced() {
        let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "args": ["-y"]}]}}}});
        let out = strategic_merge(&deployment(), &patch, shape()).unwrap();
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0]["args"],
            json!(["-y"])
        );
        let bad = json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}});
        assert!(
            strategic_merge(&deployment(), &bad, shape())
                .unwrap_err()
                .contains("merge key")
        );
    }
}
