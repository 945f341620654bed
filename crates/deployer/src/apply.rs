//! Apply: the requests that write (or dry-run) one object, with server-side apply under field
//! manager `ferry`, `fieldValidation` as configured (Strict by default, as kubectl sends it),
//! and the server's `Warning` headers kept for the user.
//!
//! kube's typed `Api::patch` drops response headers, so these requests are built with
//! `kube::core::Request` and sent with [`kube::Client::send`]; errors are turned into
//! `kube::Error::Api` exactly as kube does, so callers match on them the same way.

use http_body_util::BodyExt as _;
use kube::api::{DynamicObject, Patch, PatchParams, PostParams, ValidationDirective};
use kube::core::Status;
use kube::discovery::ApiResource;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::plan::{FIELD_MANAGER, Target};

/// What the server does with unknown and duplicate fields (`[env.NAME.deploy]
/// field_validation`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldValidation {
    /// Refuse the object (400) naming every unknown or duplicate field: a problem of the
    /// release, found by the dry-run before the first write. kubectl's default.
    #[default]
    Strict,
    /// Accept it, drop the unknown fields, and say so in a `Warning` header (shown to the
    /// user): for CRDs whose schemas are incomplete.
    Warn,
    /// Accept it silently.
    Ignore,
}

impl FieldValidation {
    fn directive(self) -> ValidationDirective {
        match self {
            FieldValidation::Strict => ValidationDirective::Strict,
            FieldValidation::Warn => ValidationDirective::Warn,
            FieldValidation::Ignore => ValidationDirective::Ignore,
        }
    }

    /// The query parameter's value.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldValidation::Strict => "Strict",
            FieldValidation::Warn => "Warn",
            FieldValidation::Ignore => "Ignore",
        }
    }
}

/// How one object is applied.
#[derive(Debug, Clone, Copy)]
pub struct ApplyOptions {
    /// A server-side dry-run: the server validates and answers, nothing is stored.
    pub dry_run: bool,
    /// Take fields other managers own.
    pub force: bool,
    /// Unknown and duplicate fields.
    pub validation: FieldValidation,
}

/// The server's answer to an apply: the object as it is (or would be), and its warnings.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The object.
    pub object: Value,
    /// The texts of the server's `Warning` headers (deprecations, Pod Security, unknown fields
    /// under `Warn`), in the order sent.
    pub warnings: Vec<String>,
}

fn url_path(resource: &ApiResource, namespace: Option<&str>) -> String {
    <DynamicObject as kube::Resource>::url_path(resource, namespace)
}

/// Server-side applies `object` (the target's manifest unless another form is given).
pub async fn server_side_apply(
    client: &kube::Client,
    target: &Target,
    object: &Value,
    opts: ApplyOptions,
) -> Result<Applied, kube::Error> {
    let mut params = PatchParams::apply(FIELD_MANAGER).validation(opts.validation.directive());
    params.force = opts.force;
    params.dry_run = opts.dry_run;
    let ns = target.manifest.namespace().filter(|_| target.namespaced);
    let request = kube::core::Request::new(url_path(&target.resource, ns))
        .patch(target.manifest.name(), &params, &Patch::Apply(object))
        .map_err(kube::Error::BuildRequest)?;
    send(client, request).await
}

/// A dry-run create of `object` in `namespace` (its kind's resource), validated as configured.
pub async fn dry_run_create(
    client: &kube::Client,
    resource: &ApiResource,
    namespace: Option<&str>,
    object: &Value,
    validation: FieldValidation,
) -> Result<Applied, kube::Error> {
    let params = PostParams {
        dry_run: true,
        field_manager: Some(FIELD_MANAGER.to_owned()),
    };
    let body = serde_json::to_vec(object).map_err(kube::Error::SerdeError)?;
    let mut request = kube::core::Request::new(url_path(resource, namespace))
        .create(&params, body)
        .map_err(kube::Error::BuildRequest)?;
    // PostParams has no fieldValidation: add it to the query as kubectl does.
    let uri = format!("{}&fieldValidation={}", request.uri(), validation.as_str());
    *request.uri_mut() = http::Uri::try_from(uri).map_err(|e| {
        kube::Error::BuildRequest(kube::core::request::Error::BuildRequest(e.into()))
    })?;
    send(client, request).await
}

async fn send(
    client: &kube::Client,
    request: http::Request<Vec<u8>>,
) -> Result<Applied, kube::Error> {
    let response = client.send(request.map(kube::client::Body::from)).await?;
    let status = response.status();
    let warnings = response
        .headers()
        .get_all(http::header::WARNING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(warning_text)
        .collect();
    let bytes = response.into_body().collect().await?.to_bytes();
    if status.is_client_error() || status.is_server_error() {
        let text = String::from_utf8_lossy(&bytes);
        let status = serde_json::from_slice::<Status>(&bytes).unwrap_or_else(|_| {
            Status::failure(text.trim(), "Failed to parse error data").with_code(status.as_u16())
        });
        return Err(kube::Error::Api(status.boxed()));
    }
    let object = serde_json::from_slice(&bytes).map_err(kube::Error::SerdeError)?;
    Ok(Applied { object, warnings })
}

/// The text of one `Warning` header (RFC 7234: `299 - "text"`), unquoted; the whole value when
/// it is not in that form.
pub fn warning_text(header: &str) -> String {
    let rest = header.trim();
    // warn-code SP warn-agent SP warn-text [SP warn-date]
    let mut parts = rest.splitn(3, ' ');
    let (Some(code), Some(_agent), Some(text)) = (parts.next(), parts.next(), parts.next()) else {
        return rest.to_owned();
    };
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) || !text.starts_with('"') {
        return rest.to_owned();
    }
    let mut out = String::new();
    let mut chars = text[1..].chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            '"' => return out,
            c => out.push(c),
        }
    }
    rest.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warning_headers_are_unquoted() {
        assert_eq!(
            warning_text(r#"299 - "unknown field \"spec.template.spec.readinessProbe\"""#),
            r#"unknown field "spec.template.spec.readinessProbe""#
        );
        assert_eq!(
            warning_text(
                r#"299 - "policy/v1beta1 PodDisruptionBudget is deprecated" "Tue, 15 Nov 1994 08:12:31 GMT""#
            ),
            "policy/v1beta1 PodDisruptionBudget is deprecated"
        );
        assert_eq!(warning_text("not a warning header"), "not a warning header");
        assert_eq!(
            warning_text(r#"299 - "unterminated"#),
            r#"299 - "unterminated"#
        );
    }
}
