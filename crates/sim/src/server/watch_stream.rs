//! Watches: newline-delimited JSON `{"type": ..., "object": ...}` events over a chunked
//! response, from the store's change history. Selectors turn objects that stop matching into
//! DELETED and objects that start matching into ADDED, as the API server does. BOOKMARKs are
//! sent when asked for; a resourceVersion older than the kept history gets an ERROR event with a
//! `410 Expired` Status, after which clients relist.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body::Frame;
use http_body_util::{BodyExt as _, StreamBody};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::api::{Output, Query, Target};
use super::table::{self, IncludeObject};
use super::{Body, Shared};
use crate::resources::{GroupResource, ResourceType};
use crate::selector::{FieldSelector, LabelSelector};
use crate::state::State;
use crate::status::ApiError;
use crate::store::{ChangeKind, meta_str};

struct Watch {
    shared: Arc<Shared>,
    rt: Arc<ResourceType>,
    gr: GroupResource,
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    out: Output,
    include: IncludeObject,
    bookmarks: bool,
    since: u64,
    pending: VecDeque<Bytes>,
    deadline: Instant,
    changes: tokio::sync::watch::Receiver<u64>,
    shutdown: tokio::sync::watch::Receiver<bool>,
    finished: bool,
    sent_definitions: bool,
}

impl Watch {
    fn matches(&self, object: &Value) -> bool {
        if let Some(ns) = &self.namespace
            && meta_str(object, "namespace") != ns
        {
            return false;
        }
        self.labels.matches(object) && self.fields.matches(object)
    }

    fn encode(&mut self, kind: &str, object: &Value, now: jiff::Timestamp) -> Bytes {
        let object = match self.out {
            Output::Table => {
                let with_definitions = !self.sent_definitions;
                self.sent_definitions = true;
                table::table(
                    &self.rt,
                    &[object],
                    now,
                    self.include,
                    json!({"resourceVersion": meta_str(object, "resourceVersion")}),
                    with_definitions,
                )
            }
            Output::Metadata => table::partial_metadata(object),
            _ => object.clone(),
        };
        let mut line =
            serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
        line.push(b'\n');
        Bytes::from(line)
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let object = json!({"kind": self.rt.kind, "apiVersion": self.rt.api_version(), "metadata": metadata});
        let mut line =
            serde_json::to_vec(&json!({"type": "BOOKMARK", "object": object})).unwrap_or_default();
        line.push(b'\n');
        Bytes::from(line)
    }

    fn expired(&self, oldest: u64) -> Bytes {
        let status = ApiError::gone(format!(
            "too old resource version: {} ({})",
            self.since,
            oldest + 1
        ))
        .to_status();
        let mut line =
            serde_json::to_vec(&json!({"type": "ERROR", "object": status})).unwrap_or_default();
        line.push(b'\n');
        Bytes::from(line)
    }

    /// Queues the changes since `self.since`. Returns the store's resourceVersion at that
    /// moment (everything up to it has been seen).
    fn poll(&mut self) -> u64 {
        let shared = Arc::clone(&self.shared);
        let state = shared.lock();
        let now = state.now;
        let current = state.store.rv();
        match state.store.changes_since(&self.gr, self.since) {
            Ok(changes) => {
                for change in changes {
                    let object = State::served(&self.rt, &change.object);
                    let now_matches = self.matches(&object);
                    let before = change.previous.as_ref().map(|p| State::served(&self.rt, p));
                    let before_matches = before.as_ref().is_some_and(|p| self.matches(p));
                    let kind = match change.kind {
                        ChangeKind::Added if now_matches => Some(ChangeKind::Added),
                        ChangeKind::Modified if now_matches && before_matches => {
                            Some(ChangeKind::Modified)
                        }
                        ChangeKind::Modified if now_matches => Some(ChangeKind::Added),
                        ChangeKind::Modified if before_matches => Some(ChangeKind::Deleted),
                        ChangeKind::Deleted if before_matches || now_matches => {
                            Some(ChangeKind::Deleted)
                        }
                        _ => None,
                    };
                    if let Some(kind) = kind {
                        let line = self.encode(kind.as_str(), &object, now);
                        self.pending.push_back(line);
                    }
                }
                self.since = current;
            }
            Err(too_old) => {
                let line = self.expired(too_old.oldest);
                self.pending.push_back(line);
                self.finished = true;
            }
        }
        current
    }

    async fn next_frame(&mut self) -> Option<Bytes> {
        loop {
            if let Some(frame) = self.pending.pop_front() {
                return Some(frame);
            }
            if self.finished {
                return None;
            }
            let _ = self.changes.borrow_and_update();
            self.poll();
            if !self.pending.is_empty() || self.finished {
                continue;
            }
            let interval = self.shared.config().bookmark_interval;
            enum Woke {
                Changed,
                Closed,
                Bookmark,
                Done,
            }
            let woke = tokio::select! {
                changed = self.changes.changed() => if changed.is_err() { Woke::Closed } else { Woke::Changed },
                () = tokio::time::sleep(interval), if self.bookmarks => Woke::Bookmark,
                () = tokio::time::sleep_until(self.deadline) => Woke::Done,
                () = super::stopped(&mut self.shutdown) => Woke::Done,
            };
            match woke {
                Woke::Changed => {}
                Woke::Closed | Woke::Done => self.finished = true,
                Woke::Bookmark => {
                    let rv = self.poll();
                    if self.pending.is_empty() && !self.finished {
                        let line = self.bookmark(rv, false);
                        self.pending.push_back(line);
                    }
                }
            }
        }
    }
}

pub(super) fn respond(
    shared: &Arc<Shared>,
    target: &Target,
    query: &Query,
    labels: LabelSelector,
    fields: FieldSelector,
    out: Output,
) -> Result<Response<Body>, ApiError> {
    let rt = Arc::clone(&target.rt);
    let namespace = target.namespace.clone().filter(|_| rt.namespaced);
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map_or(Duration::from_secs(1800), Duration::from_secs);
    let requested = query.get("resourceVersion").unwrap_or("");
    let send_initial = query.flag("sendInitialEvents");
    let mut watch = Watch {
        shared: Arc::clone(shared),
        gr: rt.key(),
        rt,
        namespace,
        labels,
        fields,
        out,
        include: IncludeObject::parse(query.get("includeObject")),
        bookmarks: query.flag("allowWatchBookmarks"),
        since: 0,
        pending: VecDeque::new(),
        deadline: Instant::now() + timeout,
        changes: shared.changes.subscribe(),
        shutdown: shared.shutdown.subscribe(),
        finished: false,
        sent_definitions: false,
    };
    let start_from_now = requested.is_empty() || requested == "0" || send_initial;
    if start_from_now {
        let state = shared.lock();
        let now = state.now;
        let objects: Vec<_> = state
            .store
            .list(&watch.gr, watch.namespace.as_deref())
            .map(|o| State::served(&watch.rt, o))
            .filter(|o| watch.matches(o))
            .collect();
        let rv = state.store.rv();
        drop(state);
        for object in objects {
            let line = watch.encode("ADDED", &object, now);
            watch.pending.push_back(line);
        }
        watch.since = rv;
        if send_initial {
            let line = watch.bookmark(rv, true);
            watch.pending.push_back(line);
        }
    } else {
        watch.since = requested.parse().map_err(|_| {
            ApiError::bad_request(format!("invalid resource version {requested:?}"))
        })?;
    }
    let stream = futures::stream::unfold(watch, |mut watch| async move {
        let frame = watch.next_frame().await?;
        Some((Ok::<_, Infallible>(Frame::data(frame)), watch))
    });
    let body: Body = StreamBody::new(stream).boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    Ok(response)
}
