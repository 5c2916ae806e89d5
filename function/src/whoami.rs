//! `GET /api/whoami`: the address the function believes the caller has, for the smoke test of a
//! real deployment (`scripts/smoke-aws.sh`): behind CloudFront it must be the viewer's own
//! address, never one of CloudFront's, or every per-address control keys on the edge.
//!
//! It tells a caller only their own address (or that it is unknown), and is never cached.

use crate::client_ip::{self, UNKNOWN_CLIENT};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};

pub async fn whoami(State(state): State<AppState>, req: Request<Body>) -> Response {
    let ip = client_ip::of_request(&req, state.options());
    let body = if ip == UNKNOWN_CLIENT {
        serde_json::json!({ "address": null, "known": false })
    } else {
        serde_json::json!({ "address": ip.to_string(), "known": true })
    };
    let mut res = (StatusCode::OK, body.to_string()).into_response();
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}
