//! API errors as `metav1.Status`, with the reasons, codes and messages the real API server uses
//! (clients branch on `reason` and `code`, and kubectl prints `message`).

use serde_json::{Value, json};

/// One field error, as a `metav1.StatusCause` and as part of a 422 message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FieldError {
    pub(crate) field: String,
    pub(crate) kind: FieldErrorKind,
    pub(crate) detail: String,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FieldErrorKind {
    Invalid(Value),
    Required,
    NotSupported(Value, Vec<String>),
    Duplicate(Value),
    Forbidden,
    TooLong,
}

impl FieldError {
    pub(crate) fn invalid(
        field: impl Into<String>,
        value: Value,
        detail: impl Into<String>,
    ) -> Self {
        FieldError {
            field: field.into(),
            kind: FieldErrorKind::Invalid(value),
            detail: detail.into(),
        }
    }

    pub(crate) fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            kind: FieldErrorKind::Required,
            detail: detail.into(),
        }
    }

    pub(crate) fn not_supported(field: impl Into<String>, value: Value, allowed: &[&str]) -> Self {
        FieldError {
            field: field.into(),
            kind: FieldErrorKind::NotSupported(
                value,
                allowed.iter().map(|s| (*s).to_owned()).collect(),
            ),
            detail: String::new(),
        }
    }

    pub(crate) fn duplicate(field: impl Into<String>, value: Value) -> Self {
        FieldError {
            field: field.into(),
            kind: FieldErrorKind::Duplicate(value),
            detail: String::new(),
        }
    }

    pub(crate) fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            kind: FieldErrorKind::Forbidden,
            detail: detail.into(),
        }
    }

    pub(crate) fn too_long(field: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            kind: FieldErrorKind::TooLong,
            detail: detail.into(),
        }
    }

    fn reason(&self) -> &'static str {
        match self.kind {
            FieldErrorKind::Invalid(_) => "FieldValueInvalid",
            FieldErrorKind::Required => "FieldValueRequired",
            FieldErrorKind::NotSupported(..) => "FieldValueNotSupported",
            FieldErrorKind::Duplicate(_) => "FieldValueDuplicate",
            FieldErrorKind::Forbidden => "FieldValueForbidden",
            FieldErrorKind::TooLong => "FieldValueTooLong",
        }
    }

    /// The message without the field, as in a StatusCause.
    fn body(&self) -> String {
        let with_detail = |head: String| {
            if self.detail.is_empty() {
                head
            } else {
                format!("{head}: {}", self.detail)
            }
        };
        match &self.kind {
            FieldErrorKind::Invalid(value) => {
                with_detail(format!("Invalid value: {}", render_value(value)))
            }
            FieldErrorKind::Required => with_detail("Required value".to_owned()),
            FieldErrorKind::NotSupported(value, allowed) => {
                let allowed: Vec<String> = allowed.iter().map(|a| format!("{a:?}")).collect();
                format!(
                    "Unsupported value: {}: supported values: {}",
                    render_value(value),
                    allowed.join(", ")
                )
            }
            FieldErrorKind::Duplicate(value) => format!("Duplicate value: {}", render_value(value)),
            FieldErrorKind::Forbidden => with_detail("Forbidden".to_owned()),
            FieldErrorKind::TooLong => with_detail("Too long".to_owned()),
        }
    }

    /// `field: message`, as in the Status message.
    pub(crate) fn to_line(&self) -> String {
        format!("{}: {}", self.field, self.body())
    }
}

fn render_value(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        Value::Null => "null".to_owned(),
        other => other.to_string(),
    }
}

/// An API error: the HTTP status and the `metav1.Status` body.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub(crate) code: u16,
    pub(crate) reason: &'static str,
    pub(crate) message: String,
    pub(crate) details: Option<Value>,
    pub(crate) retry_after: Option<u32>,
}

/// What an error names: `deployments.apps "web"` and the details block.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Named<'a> {
    pub(crate) group: &'a str,
    /// The plural resource name (`deployments`).
    pub(crate) resource: &'a str,
    pub(crate) kind: &'a str,
    pub(crate) name: &'a str,
}

impl Named<'_> {
    fn qualified_resource(&self) -> String {
        if self.group.is_empty() {
            self.resource.to_owned()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }

    fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.to_owned()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    fn details(&self, kind: &str) -> Value {
        let mut details = json!({"name": self.name, "kind": kind});
        if !self.group.is_empty() {
            details["group"] = json!(self.group);
        }
        details
    }
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(400, "BadRequest", message)
    }

    pub(crate) fn not_found(named: Named<'_>) -> Self {
        let mut err = ApiError::new(
            404,
            "NotFound",
            format!("{} {:?} not found", named.qualified_resource(), named.name),
        );
        err.details = Some(named.details(named.resource));
        err
    }

    /// 404 for a path the server does not serve.
    pub(crate) fn no_route() -> Self {
        let mut err = ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        );
        err.details = Some(json!({}));
        err
    }

    pub(crate) fn already_exists(named: Named<'_>) -> Self {
        let mut err = ApiError::new(
            409,
            "AlreadyExists",
            format!(
                "{} {:?} already exists",
                named.qualified_resource(),
                named.name
            ),
        );
        err.details = Some(named.details(named.resource));
        err
    }

    pub(crate) fn conflict(named: Named<'_>, why: &str) -> Self {
        let mut err = ApiError::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} {:?}: {why}",
                named.qualified_resource(),
                named.name
            ),
        );
        err.details = Some(named.details(named.resource));
        err
    }

    pub(crate) fn stale(named: Named<'_>) -> Self {
        ApiError::conflict(
            named,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 409 from server-side apply: fields owned by other managers.
    pub(crate) fn apply_conflict(message: String, causes: Vec<(String, String)>) -> Self {
        let mut err = ApiError::new(409, "Conflict", message);
        err.details = Some(json!({
            "causes": causes
                .into_iter()
                .map(|(message, field)| json!({"reason": "FieldManagerConflict", "message": message, "field": field}))
                .collect::<Vec<_>>()
        }));
        err
    }

    pub(crate) fn invalid(named: Named<'_>, errors: &[FieldError]) -> Self {
        let lines: Vec<String> = errors.iter().map(FieldError::to_line).collect();
        let summary = if lines.len() == 1 {
            lines[0].clone()
        } else {
            format!("[{}]", lines.join(", "))
        };
        let mut err = ApiError::new(
            422,
            "Invalid",
            format!(
                "{} {:?} is invalid: {summary}",
                named.qualified_kind(),
                named.name
            ),
        );
        let mut details = named.details(named.kind);
        details["causes"] = Value::Array(
            errors
                .iter()
                .map(|e| json!({"reason": e.reason(), "message": e.body(), "field": e.field}))
                .collect(),
        );
        err.details = Some(details);
        err
    }

    pub(crate) fn forbidden(named: Named<'_>, why: &str) -> Self {
        let mut err = ApiError::new(
            403,
            "Forbidden",
            format!(
                "{} {:?} is forbidden: {why}",
                named.qualified_resource(),
                named.name
            ),
        );
        err.details = Some(named.details(named.resource));
        err
    }

    pub(crate) fn method_not_allowed(message: impl Into<String>) -> Self {
        ApiError::new(405, "MethodNotAllowed", message)
    }

    pub(crate) fn not_acceptable(message: impl Into<String>) -> Self {
        ApiError::new(406, "NotAcceptable", message)
    }

    pub(crate) fn gone(message: impl Into<String>) -> Self {
        ApiError::new(410, "Expired", message)
    }

    pub(crate) fn too_large(limit: usize) -> Self {
        ApiError::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {limit}"),
        )
    }

    pub(crate) fn unsupported_media_type(message: impl Into<String>) -> Self {
        ApiError::new(415, "UnsupportedMediaType", message)
    }

    pub(crate) fn too_many_requests(retry_after: u32) -> Self {
        let mut err = ApiError::new(
            429,
            "TooManyRequests",
            "the server has received too many requests and has asked us to try again later (injected by ferry-sim)",
        );
        err.details = Some(json!({"retryAfterSeconds": retry_after}));
        err.retry_after = Some(retry_after);
        err
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        ApiError::new(500, "InternalError", message)
    }

    pub(crate) fn timeout() -> Self {
        ApiError::new(
            504,
            "Timeout",
            "Timeout: request did not complete within the allotted timeout (injected by ferry-sim)",
        )
    }

    /// The `metav1.Status` body.
    pub(crate) fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}

/// A `metav1.Status` for success (DELETE of an object that is gone at once).
pub(crate) fn success_status(named: Named<'_>, uid: &str) -> Value {
    let mut details = named.details(named.resource);
    details["uid"] = json!(uid);
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEB: Named<'static> = Named {
        group: "apps",
        resource: "deployments",
        kind: "Deployment",
        name: "web",
    };

    #[test]
    fn not_found_reads_like_the_api_server() {
        let status = ApiError::not_found(WEB).to_status();
        assert_eq!(status["message"], "deployments.apps \"web\" not found");
        assert_eq!(status["reason"], "NotFound");
        assert_eq!(status["code"], 404);
        assert_eq!(status["details"]["group"], "apps");
    }

    #[test]
    fn invalid_lists_causes() {
        let err = ApiError::invalid(
            WEB,
            &[
                FieldError::invalid(
                    "spec.replicas",
                    json!(-1),
                    "must be greater than or equal to 0",
                ),
                FieldError::required("spec.selector", ""),
            ],
        );
        let status = err.to_status();
        assert_eq!(err.code, 422);
        assert_eq!(
            status["message"],
            "Deployment.apps \"web\" is invalid: [spec.replicas: Invalid value: -1: must be greater than or equal to 0, spec.selector: Required value]"
        );
        assert_eq!(
            status["details"]["causes"][1]["reason"],
            "FieldValueRequired"
        );
        assert_eq!(status["details"]["causes"][0]["field"], "spec.replicas");
    }
}
