//! RFC 9457 problem details: every error the API returns is `application/problem+json`, with a
//! per-field `errors` list on 400 so the form can show each message next to its input.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// One invalid form field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub detail: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            detail: detail.into(),
        }
    }
}

/// An error answer. Built with the constructors below so that statuses match DESIGN.md.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: &'static str,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    #[serde(skip)]
    pub retry_after: Option<u64>,
    #[serde(skip)]
    pub allow: Option<&'static str>,
}

impl Problem {
    fn new(status: StatusCode, title: &'static str, detail: impl Into<String>) -> Self {
        Problem {
            kind: "about:blank",
            title,
            status: status.as_u16(),
            detail: Some(detail.into()),
            errors: Vec::new(),
            retry_after: None,
            allow: None,
        }
    }

    /// 400 with the list of invalid fields.
    pub fn invalid_fields(errors: Vec<FieldError>) -> Self {
        let mut p = Problem::new(
            StatusCode::BAD_REQUEST,
            "Invalid fields",
            "Some fields are missing or invalid.",
        );
        p.errors = errors;
        p
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::BAD_REQUEST, "Bad request", detail)
    }

    /// 403: the captcha was not solved (or was replayed), or the request came from a foreign page.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::FORBIDDEN, "Forbidden", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::NOT_FOUND, "Not found", detail)
    }

    pub fn method_not_allowed(allow: &'static str) -> Self {
        let mut p = Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed",
            format!("This resource only accepts {allow}."),
        );
        p.allow = Some(allow);
        p
    }

    /// 405 without an `Allow` list (the router's fallback).
    pub fn method_not_allowed_here() -> Self {
        Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed",
            "This resource does not accept this method.",
        )
    }

    /// 410: the petition is closed, or the link's token has expired.
    pub fn gone(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::GONE, "Gone", detail)
    }

    pub fn too_large() -> Self {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Payload too large",
            format!(
                "The body must not exceed {} bytes.",
                crate::decode::MAX_BODY
            ),
        )
    }

    /// 408: the request's body did not arrive within the server's deadline (a trickled body).
    pub fn request_timeout() -> Self {
        Problem::new(
            StatusCode::REQUEST_TIMEOUT,
            "Request timeout",
            "The request took too long to arrive; please try again.",
        )
    }

    pub fn unsupported_media_type(accepted: &str) -> Self {
        Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported media type",
            format!("Send {accepted}."),
        )
    }

    pub fn too_many_requests(retry_after: u64) -> Self {
        let mut p = Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests",
            "Too many attempts from your network; please try again later.",
        );
        p.retry_after = Some(retry_after.max(1));
        p
    }

    /// The kill switch (`signing = "paused"`): a clear 503 the client may retry later.
    pub fn paused() -> Self {
        let mut p = Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Signing paused",
            "Signing is paused for a while; please try again later.",
        );
        p.retry_after = Some(PAUSED_RETRY_AFTER_SECS);
        p
    }

    /// 500/503 without any internal detail (the detail goes to the log only).
    pub fn unavailable() -> Self {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service unavailable",
            "Please try again in a moment.",
        )
    }

    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

/// `Retry-After` of the kill switch's 503.
pub const PAUSED_RETRY_AFTER_SECS: u64 = 600;

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut res = (self.status_code(), body).into_response();
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(secs) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(allow) = self.allow {
            h.insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        res
    }
}
