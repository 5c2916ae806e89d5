//! The router: every route of DESIGN.md's API table, CORS for the configured origins, and the
//! development captcha routes when enabled. Used by the binary (Lambda or plain server), by
//! `cahier serve`, and by tests through `tower::ServiceExt::oneshot`.

use crate::problem::Problem;
use crate::sign;
use crate::state::{normalize_origin, AppState};
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;
use std::time::Duration;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Builds the API router (all paths under `/api`).
pub fn app(state: AppState) -> Router {
    let origins_state = state.clone();
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin: &HeaderValue, _| {
            let Ok(origin) = origin.to_str() else {
                return false;
            };
            let origin = normalize_origin(origin);
            origins_state.loaded().origins.contains(&origin)
        }))
        .allow_methods([Method::GET, Method::POST])
        // The theme signs every POST's body for CloudFront's origin access control.
        .allow_headers([
            header::CONTENT_TYPE,
            header::ACCEPT,
            HeaderName::from_static("x-amz-content-sha256"),
        ])
        .max_age(Duration::from_secs(600));
    let edge = Arc::new(state.options().edge.clone());

    // The count and health are public data, the same for every page that reads them: `*` and no
    // `Vary: Origin`, so one CDN cache entry per URL serves every origin (the API cache policy
    // does not key on Origin).
    let public_cors = CorsLayer::new()
        .allow_origin(AllowOrigin::any())
        .allow_methods([Method::GET])
        .vary(Vec::<HeaderName>::new())
        .max_age(Duration::from_secs(600));
    // Each group's 405 fallback is set before its CORS layer, so the layer also wraps it and
    // answers preflight requests (a fallback set afterwards would replace the layered one).
    let public = Router::new()
        .route("/api/health", get(sign::health))
        .route("/api/petitions/{slug}/count", get(sign::count))
        .route("/api/petitions.json", get(crate::open_data::petitions_json))
        .route(
            "/api/petitions/{slug}/signers/{page}",
            get(crate::signers::page),
        )
        .route("/api/petitions.csv", get(crate::open_data::petitions_csv))
        .route(
            "/api/petitions/{slug}/regions.json",
            get(crate::geography::regions_json),
        )
        .method_not_allowed_fallback(method_not_allowed)
        .layer(public_cors);
    // Same-origin only (the smoke test calls it with curl): no CORS.
    let public = public.route("/api/whoami", get(crate::whoami::whoami));

    #[allow(unused_mut)]
    let mut router = Router::new()
        .route("/api/petitions/{slug}/sign", post(sign::sign))
        .route("/api/confirm", post(sign::confirm).get(sign::confirm_get))
        .route("/api/erase", post(sign::erase))
        .route(
            "/api/unsubscribe",
            post(crate::unsubscribe::unsubscribe).get(crate::unsubscribe::unsubscribe_get),
        )
        .method_not_allowed_fallback(method_not_allowed)
        .layer(cors)
        .merge(public)
        .with_state(state.clone());

    #[cfg(feature = "dev")]
    if let Some(tokens) = state.dev_tokens() {
        use crate::captcha::dev;
        router = router.merge(
            Router::new()
                .route("/api/__dev/captcha.js", get(dev::widget_js))
                .route("/api/__dev/captcha", post(dev::issue))
                .route("/api/__dev/siteverify", post(dev::siteverify))
                .with_state(tokens),
        );
    }

    let router = router
        .fallback(|| async { Problem::not_found("No such resource.").into_response() })
        .method_not_allowed_fallback(method_not_allowed);
    // Outermost: without the origin secret (when one is configured) nothing else runs. Only
    // then: a layer that lets everything through still costs each request its future.
    if matches!(*edge, crate::edge::EdgeAuth::OriginHeader(_)) {
        router.layer(axum::middleware::from_fn(move |req, next| {
            crate::edge::require_origin_secret(edge.clone(), req, next)
        }))
    } else {
        router
    }
}

async fn method_not_allowed() -> axum::response::Response {
    Problem::method_not_allowed_here().into_response()
}
