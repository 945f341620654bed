//! Resource requests: `/api/v1/...` and `/apis/{group}/{version}/...`.

use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use serde_json::{Value, json};

use super::table::{self, IncludeObject};
use super::{
    Body, Dropped, RequestInfo, Shared, error_response, fault_response, full, header_text,
    json_response, pick_fault, watch_stream,
};
use crate::resources::{Builtin, ResourceType};
use crate::selector::{FieldSelector, LabelSelector};
use crate::state::{DeleteOpts, PatchType, Propagation, State, WriteOpts};
use crate::status::{ApiError, success_status};
use crate::store::{Obj, meta_str};
use crate::validate::FieldValidation;

/// A parsed resource path.
#[derive(Debug)]
pub(crate) struct Target {
    pub(crate) rt: Arc<ResourceType>,
    pub(crate) namespace: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) subresource: Option<String>,
    pub(crate) legacy_watch: bool,
}

fn parse_target(state: &State, segments: &[&str]) -> Result<Target, ApiError> {
    let (group, version, mut rest) = match segments {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Err(ApiError::no_route()),
    };
    let mut legacy_watch = false;
    if rest.first() == Some(&"watch") {
        legacy_watch = true;
        rest = &rest[1..];
    }
    let lookup = |plural: &str| state.registry.lookup(group, version, plural);
    let (namespace, rest) = match rest {
        ["namespaces", ns, resource, tail @ ..]
            if lookup(resource).is_some_and(|rt| rt.namespaced) =>
        {
            (Some((*ns).to_owned()), {
                let mut v = vec![*resource];
                v.extend_from_slice(tail);
                v
            })
        }
        other => (None, other.to_vec()),
    };
    let (resource, name, subresource) = match rest.as_slice() {
        [resource] => (*resource, None, None),
        [resource, name] => (*resource, Some((*name).to_owned()), None),
        [resource, name, sub] => (*resource, Some((*name).to_owned()), Some((*sub).to_owned())),
        _ => return Err(ApiError::no_route()),
    };
    let rt = lookup(resource).ok_or_else(ApiError::no_route)?;
    if !rt.namespaced && namespace.is_some() {
        return Err(ApiError::no_route());
    }
    if rt.namespaced && namespace.is_none() && name.is_some() {
        return Err(ApiError::no_route());
    }
    if let Some(sub) = &subresource {
        let known = match sub.as_str() {
            "status" => rt.status,
            "scale" => rt.scale.is_some(),
            "log" => rt.is(Builtin::Pod),
            _ => false,
        };
        if !known {
            if matches!(sub.as_str(), "exec" | "attach" | "portforward" | "proxy") {
                // served by a real cluster, but ferry-sim runs no containers: say so
                let mut err = ApiError::no_route();
                err.message = format!(
                    "ferry-sim runs no containers: {}/{sub} is not simulated",
                    rt.plural
                );
                return Err(err);
            }
            // as the API server: an unknown subresource is an unknown path, whatever the object
            return Err(ApiError::no_route());
        }
    }
    Ok(Target {
        rt,
        namespace,
        name,
        subresource,
        legacy_watch,
    })
}

/// Query parameters.
pub(crate) struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    fn parse(query: Option<&str>) -> Self {
        Query {
            pairs: query
                .map(|q| {
                    url::form_urlencoded::parse(q.as_bytes())
                        .into_owned()
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("1" | "true" | "True"))
    }

    fn dry_run(&self) -> Result<bool, ApiError> {
        let values: Vec<&str> = self
            .pairs
            .iter()
            .filter(|(k, _)| k == "dryRun")
            .map(|(_, v)| v.as_str())
            .collect();
        for v in &values {
            if *v != "All" {
                return Err(ApiError::bad_request(format!(
                    "Invalid dry run value {v:?}: valid values are \"All\""
                )));
            }
        }
        Ok(!values.is_empty())
    }
}

/// The response format a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Output {
    Json,
    Yaml,
    Table,
    Metadata,
}

fn output(accept: &str) -> Result<Output, ApiError> {
    if accept.trim().is_empty() {
        return Ok(Output::Json);
    }
    for part in accept.split(',') {
        let mut params = part.split(';').map(str::trim);
        let media = params.next().unwrap_or("");
        let params: Vec<&str> = params.collect();
        let as_ = params.iter().find_map(|p| p.strip_prefix("as="));
        let group = params.iter().find_map(|p| p.strip_prefix("g="));
        match (media, as_, group) {
            ("application/json" | "*/*", Some("Table"), Some("meta.k8s.io")) => {
                return Ok(Output::Table);
            }
            (
                "application/json" | "*/*",
                Some("PartialObjectMetadata" | "PartialObjectMetadataList"),
                Some("meta.k8s.io"),
            ) => {
                return Ok(Output::Metadata);
            }
            (_, Some(_), _) => continue,
            ("application/json" | "*/*" | "application/*", None, _) => return Ok(Output::Json),
            ("application/yaml", None, _) => return Ok(Output::Yaml),
            _ => continue,
        }
    }
    Err(ApiError::not_acceptable(
        "only the following media types are accepted: application/json, application/yaml, application/json;as=Table;g=meta.k8s.io;v=v1",
    ))
}

fn object_response(
    status: StatusCode,
    value: &Value,
    out: Output,
    warnings: &[String],
) -> Response<Body> {
    let mut response = match out {
        Output::Yaml => {
            let text = serde_norway::to_string(value).unwrap_or_default();
            let mut r = Response::new(full(text));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/yaml"),
            );
            r
        }
        _ => json_response(StatusCode::OK, value),
    };
    *response.status_mut() = status;
    for warning in warnings {
        let text = format!(
            "299 - {}",
            serde_json::to_string(warning).unwrap_or_default()
        );
        if let Ok(v) = HeaderValue::from_str(&text) {
            response.headers_mut().append(header::WARNING, v);
        }
    }
    response
}

async fn read_body(request: Request<Incoming>, limit: usize) -> Result<Bytes, ApiError> {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut body = request.into_body();
    let mut collected = Vec::new();
    let mut too_large = declared.is_some_and(|n| n > limit as u64);
    // An oversized body is still read (up to a bound) before the 413, so the client gets the
    // answer instead of a broken pipe.
    let mut drained: usize = 0;
    const DRAIN_LIMIT: usize = 64 * 1024 * 1024;
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|err| ApiError::bad_request(format!("cannot read the request body: {err}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if too_large {
            drained += data.len();
            if drained > DRAIN_LIMIT {
                break;
            }
            continue;
        }
        if collected.len() + data.len() > limit {
            too_large = true;
            drained = collected.len() + data.len();
            collected = Vec::new();
            continue;
        }
        collected.extend_from_slice(&data);
    }
    if too_large {
        return Err(ApiError::too_large(limit));
    }
    Ok(Bytes::from(collected))
}

/// A list of objects as its `XxxList` (built-in list items carry no apiVersion/kind, as the
/// real server's typed lists don't).
fn list_value(rt: &ResourceType, items: &[Obj], metadata: Value) -> Value {
    let items: Vec<Value> = items
        .iter()
        .map(|o| {
            let o = State::served(rt, o);
            if rt.builtin.is_some() {
                let mut o = (*o).clone();
                if let Some(map) = o.as_object_mut() {
                    map.remove("apiVersion");
                    map.remove("kind");
                }
                o
            } else {
                (*o).clone()
            }
        })
        .collect();
    json!({
        "kind": format!("{}List", rt.kind),
        "apiVersion": rt.api_version(),
        "metadata": metadata,
        "items": items,
    })
}

fn selectors(rt: &ResourceType, query: &Query) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels = LabelSelector::parse(query.get("labelSelector").unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
    let fields = FieldSelector::parse(query.get("fieldSelector").unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("invalid field selector: {e}")))?;
    // the API server's words; kubectl adds "Unable to find ... that match ..." itself
    fields.check(rt).map_err(ApiError::bad_request)?;
    Ok((labels, fields))
}

fn field_manager(query: &Query, user_agent: &str) -> Result<String, ApiError> {
    match query.get("fieldManager") {
        Some(m) if m.len() > 128 => Err(ApiError::bad_request(
            "fieldManager must not be longer than 128 characters",
        )),
        Some(m) if !m.is_empty() => Ok(m.to_owned()),
        _ => Ok(user_agent
            .split('/')
            .next()
            .unwrap_or("")
            .chars()
            .take(128)
            .collect()),
    }
}

fn continue_token(rv: u64, namespace: &str, name: &str) -> String {
    base64::engine::general_purpose::STANDARD
        .encode(json!({"v": "ferry-sim/1", "rv": rv, "ns": namespace, "name": name}).to_string())
}

fn parse_continue(token: &str) -> Result<(String, String), ApiError> {
    let bad = || {
        ApiError::bad_request("continue key is not valid: the token was not issued by this server")
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token)
        .map_err(|_| bad())?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    Ok((
        value["ns"].as_str().ok_or_else(bad)?.to_owned(),
        value["name"].as_str().ok_or_else(bad)?.to_owned(),
    ))
}

pub(crate) async fn handle(
    shared: &Arc<Shared>,
    request: Request<Incoming>,
    segments: &[&str],
    info: &mut RequestInfo,
) -> Result<Response<Body>, Dropped> {
    let target = {
        let state = shared.lock();
        parse_target(&state, segments)
    };
    let target = match target {
        Ok(t) => t,
        Err(err) => return Ok(error_response(&err)),
    };
    let query = Query::parse(request.uri().query());
    let method = request.method().clone();
    let content_type = header_text(&request, header::CONTENT_TYPE);
    let accept = header_text(&request, header::ACCEPT);
    let user_agent = header_text(&request, header::USER_AGENT);
    let rt = Arc::clone(&target.rt);
    info.group = rt.group.clone();
    info.resource = rt.plural.clone();
    info.subresource = target.subresource.clone().unwrap_or_default();
    info.namespace = target.namespace.clone().unwrap_or_default();
    info.name = target.name.clone().unwrap_or_default();
    let watching = target.legacy_watch || query.flag("watch");
    info.verb = match (&method, target.name.is_some()) {
        (&Method::GET, true) if watching => "watch",
        (&Method::GET, true) => "get",
        (&Method::GET, false) if watching => "watch",
        (&Method::GET, false) => "list",
        (&Method::POST, false) => "create",
        (&Method::PUT, true) => "update",
        (&Method::PATCH, true)
            if PatchType::from_content_type(&content_type) == Some(PatchType::Apply) =>
        {
            "apply"
        }
        (&Method::PATCH, true) => "patch",
        (&Method::DELETE, true) => "delete",
        (&Method::DELETE, false) => "deletecollection",
        _ => {
            return Ok(error_response(&ApiError::method_not_allowed(format!(
                "the server does not allow this method on the requested resource ({method})"
            ))));
        }
    }
    .to_owned();
    if let Some(fault) = pick_fault(shared, &info.verb) {
        return fault_response(shared, fault, info).await;
    }
    let out = match output(&accept) {
        Ok(o) => o,
        Err(err) => return Ok(error_response(&err)),
    };
    let limit = shared.config().max_body_bytes;
    let body = if matches!(
        method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    ) {
        match read_body(request, limit).await {
            Ok(b) => b,
            Err(err) => return Ok(error_response(&err)),
        }
    } else {
        Bytes::new()
    };
    let result = dispatch(
        shared,
        &target,
        &query,
        &method,
        &content_type,
        &user_agent,
        out,
        &body,
        info,
    )
    .await;
    Ok(result.unwrap_or_else(|err| error_response(&err)))
}

#[expect(
    clippy::too_many_arguments,
    reason = "one request's parts, parsed once"
)]
async fn dispatch(
    shared: &Arc<Shared>,
    target: &Target,
    query: &Query,
    method: &Method,
    content_type: &str,
    user_agent: &str,
    out: Output,
    body: &Bytes,
    info: &mut RequestInfo,
) -> Result<Response<Body>, ApiError> {
    let rt = &target.rt;
    let namespace = target.namespace.clone().unwrap_or_default();
    let subresource = target.subresource.clone().unwrap_or_default();
    match info.verb.as_str() {
        "get" => {
            let name = target.name.as_deref().unwrap_or("");
            let state = shared.lock();
            let object = state.get(rt, &namespace, name)?;
            if subresource == "log" {
                let config = shared.config();
                let text = crate::controllers::pods::logs(
                    &object,
                    query.get("container"),
                    query.flag("previous"),
                    query.flag("timestamps"),
                    &config,
                    state.now,
                )?;
                let text = match query.get("tailLines").and_then(|t| t.parse::<usize>().ok()) {
                    Some(n) => {
                        let lines: Vec<&str> = text.lines().collect();
                        let start = lines.len().saturating_sub(n);
                        lines[start..].iter().map(|l| format!("{l}\n")).collect()
                    }
                    None => text,
                };
                let mut response = Response::new(full(text));
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
                return Ok(response);
            }
            if subresource == "scale" {
                return Ok(object_response(
                    StatusCode::OK,
                    &State::scale_of(rt, &object)?,
                    out,
                    &[],
                ));
            }
            match out {
                Output::Table => {
                    let include = IncludeObject::parse(query.get("includeObject"));
                    let t = table::table(
                        rt,
                        &[&object],
                        state.now,
                        include,
                        json!({"resourceVersion": meta_str(&object, "resourceVersion")}),
                        true,
                    );
                    Ok(json_response(StatusCode::OK, &t))
                }
                Output::Metadata => Ok(json_response(
                    StatusCode::OK,
                    &table::partial_metadata(&object),
                )),
                _ => Ok(object_response(StatusCode::OK, &object, out, &[])),
            }
        }
        "list" => {
            let (labels, fields) = selectors(rt, query)?;
            let limit = query
                .get("limit")
                .and_then(|l| l.parse::<usize>().ok())
                .filter(|l| *l > 0);
            let after = query
                .get("continue")
                .filter(|c| !c.is_empty())
                .map(parse_continue)
                .transpose()?;
            let state = shared.lock();
            let rv = state.store.rv();
            let key = rt.key();
            let ns_filter = if rt.namespaced && !namespace.is_empty() {
                Some(namespace.as_str())
            } else {
                None
            };
            let iter: Box<dyn Iterator<Item = &Obj>> = match &after {
                Some(key_after) => state.store.list_after(&key, key_after),
                None => state.store.list(&key, ns_filter),
            };
            let mut items: Vec<Obj> = Vec::new();
            let mut remaining = 0usize;
            let mut next: Option<(String, String)> = None;
            for object in iter {
                if let Some(ns) = ns_filter
                    && meta_str(object, "namespace") != ns
                {
                    continue;
                }
                if !labels.matches(object) || !fields.matches(object) {
                    continue;
                }
                if limit.is_some_and(|l| items.len() >= l) {
                    remaining += 1;
                    continue;
                }
                next = Some((
                    meta_str(object, "namespace").to_owned(),
                    meta_str(object, "name").to_owned(),
                ));
                items.push(Arc::clone(object));
            }
            let mut metadata = json!({"resourceVersion": rv.to_string()});
            if remaining > 0
                && let Some((ns, name)) = next
            {
                metadata["continue"] = json!(continue_token(rv, &ns, &name));
                metadata["remainingItemCount"] = json!(remaining);
            }
            match out {
                Output::Table => {
                    let include = IncludeObject::parse(query.get("includeObject"));
                    let served: Vec<Obj> = items.iter().map(|o| State::served(rt, o)).collect();
                    let refs: Vec<&Value> = served.iter().map(|o| &**o).collect();
                    Ok(json_response(
                        StatusCode::OK,
                        &table::table(rt, &refs, state.now, include, metadata, true),
                    ))
                }
                Output::Metadata => Ok(json_response(
                    StatusCode::OK,
                    &json!({
                        "kind": "PartialObjectMetadataList",
                        "apiVersion": "meta.k8s.io/v1",
                        "metadata": metadata,
                        "items": items.iter().map(|o| table::partial_metadata(o)).collect::<Vec<_>>(),
                    }),
                )),
                _ => Ok(object_response(
                    StatusCode::OK,
                    &list_value(rt, &items, metadata),
                    out,
                    &[],
                )),
            }
        }
        "watch" => {
            let (labels, mut fields) = selectors(rt, query)?;
            if let Some(name) = &target.name {
                fields = FieldSelector::parse(&format!("metadata.name={name}")).unwrap_or_default();
            }
            watch_stream::respond(shared, target, query, labels, fields, out)
        }
        "create" | "update" | "patch" | "apply" => {
            let dry_run = query.dry_run()?;
            let validation = FieldValidation::parse(query.get("fieldValidation"))?;
            let manager = field_manager(query, user_agent)?;
            info.field_manager = manager.clone();
            info.dry_run = dry_run;
            let mut opts = WriteOpts {
                dry_run,
                manager,
                validation,
                subresource: subresource.clone(),
                duplicates: crate::body::Duplicates::None,
            };
            if subresource == "log" {
                return Err(ApiError::method_not_allowed(
                    "the log subresource is read-only",
                ));
            }
            let written = {
                let mut state = shared.lock();
                let result = match info.verb.as_str() {
                    "create" | "update" => {
                        if !content_type.is_empty()
                            && !content_type.starts_with("application/json")
                            && !content_type.starts_with("application/yaml")
                            && !content_type.starts_with("*/*")
                        {
                            let hint = if content_type.contains("protobuf") {
                                " (ferry-sim does not decode protobuf bodies, which kubectl's `create <kind>` shortcuts, `run` and `expose` send: use `kubectl create -f` or `kubectl apply`)"
                            } else {
                                ""
                            };
                            return Err(ApiError::unsupported_media_type(format!(
                                "the body of the request was in an unknown format ({content_type}) - accepted media types include: application/json, application/yaml{hint}"
                            )));
                        }
                        let parsed = crate::body::parse(body)?;
                        opts.duplicates = parsed.duplicates;
                        let object = parsed.value;
                        if info.verb == "create" {
                            state.create(rt, &namespace, object, &opts)
                        } else {
                            state.update(
                                rt,
                                &namespace,
                                target.name.as_deref().unwrap_or(""),
                                object,
                                &opts,
                            )
                        }
                    }
                    _ => {
                        let Some(patch_type) = PatchType::from_content_type(content_type) else {
                            return Err(ApiError::unsupported_media_type(format!(
                                "the body of the request was in an unknown format ({content_type}) - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json"
                            )));
                        };
                        if patch_type == PatchType::Apply
                            && query.get("fieldManager").is_none_or(str::is_empty)
                        {
                            return Err(ApiError::bad_request(
                                "PATCH request with apply content type requires fieldManager",
                            ));
                        }
                        if patch_type != PatchType::Apply && query.get("force").is_some() {
                            return Err(ApiError::bad_request(
                                "force is not allowed for non-apply patches",
                            ));
                        }
                        state.patch(
                            rt,
                            &namespace,
                            target.name.as_deref().unwrap_or(""),
                            patch_type,
                            body,
                            &opts,
                            query.flag("force"),
                        )
                    }
                };
                if result.as_ref().is_ok_and(|w| w.wrote) {
                    shared.changed(state.store.rv());
                }
                result?
            };
            info.wrote = written.wrote;
            let status = if written.created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok(object_response(
                status,
                &written.object,
                out,
                &written.warnings,
            ))
        }
        "delete" => {
            let opts = delete_opts(rt, query, body)?;
            info.dry_run = opts.dry_run;
            let mut state = shared.lock();
            let deleted =
                state.delete(rt, &namespace, target.name.as_deref().unwrap_or(""), &opts)?;
            if deleted.wrote {
                shared.changed(state.store.rv());
            }
            info.wrote = deleted.wrote;
            if deleted.gone && !rt.is(Builtin::Pod) {
                let uid = meta_str(&deleted.object, "uid").to_owned();
                return Ok(json_response(
                    StatusCode::OK,
                    &success_status(rt.named(meta_str(&deleted.object, "name")), &uid),
                ));
            }
            let status = if deleted.gone || rt.is(Builtin::Pod) {
                StatusCode::OK
            } else {
                StatusCode::ACCEPTED
            };
            Ok(object_response(status, &deleted.object, out, &[]))
        }
        "deletecollection" => {
            let opts = delete_opts(rt, query, body)?;
            info.dry_run = opts.dry_run;
            let (labels, fields) = selectors(rt, query)?;
            let mut state = shared.lock();
            let ns_filter = if rt.namespaced && !namespace.is_empty() {
                Some(namespace.as_str())
            } else {
                None
            };
            let targets: Vec<Obj> = state
                .store
                .list(&rt.key(), ns_filter)
                .filter(|o| labels.matches(o) && fields.matches(o))
                .cloned()
                .collect();
            let mut items = Vec::new();
            for object in targets {
                let deleted = state.delete(
                    rt,
                    meta_str(&object, "namespace"),
                    meta_str(&object, "name"),
                    &opts,
                )?;
                info.wrote |= deleted.wrote;
                items.push(deleted.object);
            }
            if info.wrote {
                shared.changed(state.store.rv());
            }
            let rv = state.store.rv().to_string();
            Ok(object_response(
                StatusCode::OK,
                &list_value(rt, &items, json!({"resourceVersion": rv})),
                out,
                &[],
            ))
        }
        _ => {
            let _ = method;
            Err(ApiError::method_not_allowed("unsupported verb"))
        }
    }
}

fn delete_opts(rt: &ResourceType, query: &Query, body: &Bytes) -> Result<DeleteOpts, ApiError> {
    let options = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        crate::state::parse_body(body)?
    };
    let policy = query
        .get("propagationPolicy")
        .map(str::to_owned)
        .or_else(|| options["propagationPolicy"].as_str().map(str::to_owned));
    let orphan = query
        .get("orphanDependents")
        .map(|v| v == "true")
        .or_else(|| options["orphanDependents"].as_bool());
    let propagation = match policy.as_deref() {
        Some("Background") => Some(Propagation::Background),
        Some("Foreground") => Some(Propagation::Foreground),
        Some("Orphan") => Some(Propagation::Orphan),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "propagationPolicy {other:?} is not supported: use Background, Foreground or Orphan"
            )));
        }
        None => match orphan {
            Some(true) => Some(Propagation::Orphan),
            Some(false) => Some(Propagation::Background),
            // Jobs orphan their pods unless told otherwise, as in batch/v1.
            None if rt.is(Builtin::Job) => Some(Propagation::Orphan),
            None => None,
        },
    };
    let dry_run = query.dry_run()?
        || options["dryRun"]
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v == "All"));
    let grace_period = query
        .get("gracePeriodSeconds")
        .and_then(|g| g.parse::<i64>().ok())
        .or_else(|| options["gracePeriodSeconds"].as_i64());
    Ok(DeleteOpts {
        dry_run,
        propagation,
        grace_period,
        uid: options["preconditions"]["uid"].as_str().map(str::to_owned),
        resource_version: options["preconditions"]["resourceVersion"]
            .as_str()
            .map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SimConfig;

    fn state() -> State {
        State::new(Arc::new(SimConfig::default()), jiff::Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn paths_resolve_to_targets() {
        let s = state();
        let t = parse_target(
            &s,
            &[
                "apis",
                "apps",
                "v1",
                "namespaces",
                "prod",
                "deployments",
                "web",
                "scale",
            ],
        )
        .unwrap();
        assert_eq!(t.rt.kind, "Deployment");
        assert_eq!(t.namespace.as_deref(), Some("prod"));
        assert_eq!(t.subresource.as_deref(), Some("scale"));
        let ns = parse_target(&s, &["api", "v1", "namespaces", "prod", "status"]).unwrap();
        assert_eq!(ns.rt.kind, "Namespace");
        assert_eq!(ns.name.as_deref(), Some("prod"));
        assert!(parse_target(&s, &["apis", "apps", "v1", "widgets"]).is_err());
        assert!(parse_target(&s, &["api", "v1", "pods", "x"]).is_err());
        let all = parse_target(&s, &["api", "v1", "pods"]).unwrap();
        assert!(all.namespace.is_none());
    }

    #[test]
    fn accept_headers() {
        assert_eq!(
            output("application/json;as=Table;v=v1;g=meta.k8s.io,application/json").unwrap(),
            Output::Table
        );
        assert_eq!(
            output("application/vnd.kubernetes.protobuf, application/json").unwrap(),
            Output::Json
        );
        assert_eq!(output("").unwrap(), Output::Json);
        assert!(output("application/vnd.kubernetes.protobuf").is_err());
    }
}
