//! The handlers: sign, confirm, erase, count, health.
//!
//! `sign` runs DESIGN.md's pipeline, cheap before paid, one stage per file of `sign/`:
//! [`decode`](decode::decode) (pure CPU), [`screen`](screen::screen) (in-memory buckets),
//! [`captcha`](captcha::captcha_then_block_lists) (the captcha, then the block lists),
//! [`record`](record::record) (the one conditional write) and [`notify`](notify::notify) (the
//! mail), then the one answer. Each stage hands the next a small struct.

mod captcha;
mod decode;
mod notify;
mod record;
pub(crate) mod respond;
mod screen;

use crate::client_ip::{self, UNKNOWN_CLIENT};
use crate::decode::{decode_token, BodyKind};
use crate::deferred::RELEASED_PER_CONFIRMATION;
use crate::problem::{FieldError, Problem};
use crate::state::{AppState, Loaded};
use crate::store::{ConfirmOutcome, Confirmation, Status};
use crate::token::{TokenClaims, TokenError, TokenKind};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use respond::{bounded_body, json, no_store, origin_allowed};

/// The one success body of `sign`, whatever happened (new, duplicate, held, dropped).
pub const PENDING_BODY: &str = r#"{"status":"pending"}"#;
pub const COUNT_CACHE_CONTROL: &str =
    "public, max-age=10, s-maxage=10, stale-while-revalidate=60, stale-if-error=300";

/// What every stage of one request shares.
struct Ctx<'a> {
    state: &'a AppState,
    loaded: &'a Loaded,
    slug: &'a str,
    now: i64,
}

pub async fn health() -> Response {
    no_store(json(StatusCode::OK, r#"{"status":"ok"}"#.to_string()))
}

/// `POST /api/petitions/{slug}/sign`.
///
/// Runs as its own task: a half-closed connection is served to the end anyway
/// ([`crate::http_server`]), but a reset one drops this handler, and that must not drop the
/// work once the signature is written, so the confirmation mail still goes out (under Lambda
/// the response still waits for it).
pub async fn sign(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    req: Request<Body>,
) -> Response {
    let task = tokio::spawn(async move {
        match sign_inner(&state, &slug, req).await {
            Ok(res) | Err(res) => res,
        }
    });
    task.await.unwrap_or_else(|e| {
        tracing::error!(error = %e, "the sign task failed");
        Problem::unavailable().into_response()
    })
}

async fn sign_inner(
    state: &AppState,
    slug: &str,
    req: Request<Body>,
) -> Result<Response, Response> {
    // 0. The kill switch, before any other work.
    if state.signing_paused() {
        return Err(Problem::paused().into_response());
    }
    let now = crate::now();
    // Behind CloudFront, the viewer; [`UNKNOWN_CLIENT`] (one shared bucket) when unknown.
    let ip = client_ip::of_request(&req, state.options());
    let (parts, body) = req.into_parts();
    let headers = parts.headers;
    let loaded = state.loaded();
    let ctx = Ctx {
        state,
        loaded: &loaded,
        slug,
        now,
    };
    // 1. Pure CPU, no I/O.
    let d = decode::decode(&loaded, slug, &headers, body, now).await?;
    let accepted = || respond::accepted(&loaded, slug, &d.lang, d.wants_json);
    // 2. In-memory token buckets.
    screen::screen(state, Some(ip)).map_err(IntoResponse::into_response)?;
    // 3. Captcha, then the block lists. hCaptcha gets the address only when it is known.
    let remote_ip = (ip != UNKNOWN_CLIENT).then_some(ip);
    if captcha::captcha_then_block_lists(state, &d, remote_ip).await? == captcha::Screened::Blocked
    {
        return Ok(accepted());
    }
    // 4. One conditional write; an unknown caller takes the shared unknown budgets.
    let r = record::record(&ctx, &d, Some(ip)).await?;
    // 5. Mail, only when warranted and within the per-domain mail budget.
    notify::notify(&ctx, d.petition, &d.lang, &d.email.address, &r).await;
    // 6. The identical answer.
    Ok(accepted())
}

/// Verifies a confirm/erase request up to the token claims.
async fn token_request(
    state: &AppState,
    req: Request<Body>,
    kind: TokenKind,
) -> Result<TokenClaims, Response> {
    let (parts, body) = req.into_parts();
    let (_, bytes) = bounded_body(&parts.headers, body, &[BodyKind::Json])
        .await
        .map_err(IntoResponse::into_response)?;
    let token = decode_token(&bytes).map_err(|e| Problem::invalid_fields(e).into_response())?;
    let loaded = state.loaded();
    if !origin_allowed(&parts.headers, &loaded) {
        return Err(
            Problem::forbidden("Requests from this page are not accepted.").into_response(),
        );
    }
    // Constant-time MAC check before any store access.
    state
        .token_key()
        .verify(&token, kind, crate::now())
        .map_err(|e| match e {
            TokenError::Invalid => {
                Problem::invalid_fields(vec![FieldError::new("token", "This link is not valid.")])
                    .into_response()
            }
            TokenError::Expired => Problem::gone("This link has expired.").into_response(),
        })
}

/// `POST /api/confirm`.
pub async fn confirm(State(state): State<AppState>, req: Request<Body>) -> Response {
    let claims = match token_request(&state, req, TokenKind::Confirm).await {
        Ok(c) => c,
        Err(res) => return res,
    };
    let now = crate::now();
    let outcome = state
        .0
        .store
        .confirm_and_release(
            &claims.petition,
            &claims.email_hash,
            now,
            RELEASED_PER_CONFIRMATION,
        )
        .await;
    state.0.counts.forget(&claims.petition);
    match outcome {
        Ok(Confirmation {
            outcome: ConfirmOutcome::Confirmed { status },
            receipt,
            released,
        }) => {
            if status == Status::Confirmed {
                crate::milestones::after_confirm(&state, &claims.petition, now).await;
            }
            if !released.is_empty() {
                let loaded = state.loaded();
                let ctx = Ctx {
                    state: &state,
                    loaded: &loaded,
                    slug: &claims.petition,
                    now,
                };
                notify::send_released(&ctx, released).await;
            }
            // The receipt secret goes to the signer only, once: the store keeps its commitment.
            let body = match receipt {
                Some(secret) => serde_json::json!({
                    "status": "confirmed",
                    "receipt": secret.to_base64url(),
                })
                .to_string(),
                None => r#"{"status":"confirmed"}"#.to_string(),
            };
            no_store(json(StatusCode::OK, body))
        }
        Ok(Confirmation {
            outcome: ConfirmOutcome::AlreadyConfirmed { .. },
            ..
        }) => no_store(json(
            StatusCode::OK,
            r#"{"status":"confirmed"}"#.to_string(),
        )),
        Ok(Confirmation {
            outcome: ConfirmOutcome::NotFound,
            ..
        }) => Problem::gone("This signature has expired or was deleted; please sign again.")
            .into_response(),
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "store.confirm failed");
            Problem::unavailable().into_response()
        }
    }
}

/// `GET /api/confirm`: never confirms (mail scanners follow links).
pub async fn confirm_get() -> Response {
    Problem::method_not_allowed("POST").into_response()
}

/// `POST /api/erase`: idempotent; 200 also when there was nothing (left) to erase.
pub async fn erase(State(state): State<AppState>, req: Request<Body>) -> Response {
    let claims = match token_request(&state, req, TokenKind::Erase).await {
        Ok(c) => c,
        Err(res) => return res,
    };
    let outcome = state
        .0
        .store
        .erase(&claims.petition, &claims.email_hash, crate::now())
        .await;
    state.0.counts.forget(&claims.petition);
    state.0.signer_pages.forget(&claims.petition);
    match outcome {
        Ok(_) => no_store(json(StatusCode::OK, r#"{"status":"erased"}"#.to_string())),
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "store.erase failed");
            Problem::unavailable().into_response()
        }
    }
}

/// The goal shown: the manifest's, doubled while reached (raised automatically).
pub fn effective_goal(goal: u64, count: u64) -> u64 {
    let mut g = goal.max(1);
    while count >= g && g < u64::MAX / 2 {
        g *= 2;
    }
    g
}

/// `GET /api/petitions/{slug}/count`, from the counter, cacheable by the CDN.
///
/// Only the canonical spelling of the path is answered: the CDN keys its cache on the path as
/// sent, so `%6Eoel-...` or any other spelling that decodes to a slug would be a fresh cache key
/// (and a store read) for each request of a cache-busting flood; they get 404 like any unknown
/// path. Reads go through the instance's [`crate::count_cache`].
pub async fn count(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    uri: axum::http::Uri,
) -> Response {
    let loaded = state.loaded();
    let Some(petition) = loaded
        .manifest
        .petition(&slug)
        .filter(|p| uri.path() == format!("/api/petitions/{}/count", p.slug))
    else {
        return Problem::not_found("No such petition.").into_response();
    };
    match state
        .0
        .counts
        .get(state.0.store.as_ref(), &petition.slug)
        .await
    {
        Ok(c) => {
            use crate::open_data::rfc3339;
            let body = serde_json::json!({
                "petition": petition.slug,
                "count": c.count,
                "offline": c.offline,
                "goal": effective_goal(petition.goal, c.count),
                "updated_at": rfc3339(c.updated_at).unwrap_or_else(|| "1970-01-01T00:00:00Z".into()),
                "last_confirmed_at": rfc3339(c.last_confirmed_at),
            });
            let mut res = json(StatusCode::OK, body.to_string());
            res.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static(COUNT_CACHE_CONTROL),
            );
            res
        }
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "store.count failed");
            Problem::unavailable().into_response()
        }
    }
}
