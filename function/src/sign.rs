//! The handlers: sign (in DESIGN.md's order, cheap before paid), confirm, erase, count, health.

use crate::client_ip::{self, UNKNOWN_CLIENT};
use crate::crypto::PersonalData;
use crate::decode::{decode_sign, decode_token, BodyKind, MAX_BODY};
use crate::email::{canonicalize, domain_matches};
use crate::heuristics::{assess, HeuristicInput};
use crate::mail_text::{render, MailContext, MailKind};
use crate::manifest::Petition;
use crate::problem::{FieldError, Problem};
use crate::state::{normalize_origin, AppState, Loaded};
use crate::store::{AuditEvent, Budget, ConfirmOutcome, NewSignature, SignOutcome, Status};
use crate::token::{TokenClaims, TokenError, TokenKind, CONFIRM_TTL_SECS};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};

/// The one success body of `sign`, whatever happened (new, duplicate, held, dropped).
pub const PENDING_BODY: &str = r#"{"status":"pending"}"#;
pub const COUNT_CACHE_CONTROL: &str =
    "public, max-age=10, s-maxage=10, stale-while-revalidate=60, stale-if-error=300";

fn json(status: StatusCode, body: String) -> Response {
    let mut res = (status, body).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

fn no_store(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Reads the body within the 8 KiB bound (413 above), after the content type check (415).
async fn bounded_body(
    headers: &HeaderMap,
    body: Body,
    accepted: &[BodyKind],
) -> Result<(BodyKind, bytes_alias::Bytes), Problem> {
    let kind = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(BodyKind::from_content_type)
        .filter(|k| accepted.contains(k))
        .ok_or_else(|| {
            Problem::unsupported_media_type(if accepted.len() == 2 {
                "application/json or application/x-www-form-urlencoded"
            } else {
                "application/json"
            })
        })?;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(Problem::too_large());
    }
    let bytes = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| Problem::too_large())?;
    Ok((kind, bytes))
}

mod bytes_alias {
    pub use axum::body::Bytes;
}

/// A request with an `Origin` must come from an allowed origin; without one (non-browser
/// clients, very old browsers) it passes: the captcha still stands in the way.
fn origin_allowed(headers: &HeaderMap, loaded: &Loaded) -> bool {
    match headers.get(header::ORIGIN).map(|v| v.to_str()) {
        None => true,
        Some(Ok(origin)) => {
            let origin = normalize_origin(origin);
            loaded.origins.contains(&origin)
        }
        Some(Err(_)) => false,
    }
}

/// The language to write to this signer in, and to use in links.
fn pick_lang(petition: &Petition, loaded: &Loaded, lang: Option<&str>) -> String {
    let default = &loaded.manifest.site.default_language;
    lang.map(str::to_string)
        .filter(|l| petition.languages.contains(l))
        .or_else(|| petition.languages.iter().find(|l| *l == default).cloned())
        .or_else(|| petition.languages.first().cloned())
        .unwrap_or_else(|| default.clone())
}

/// `<base_url>[/<lang>]/<slug>/<page>/`.
fn page_url(loaded: &Loaded, lang: &str, slug: &str, page: &str) -> String {
    let base = loaded.manifest.site.base_url.trim_end_matches('/');
    if lang == loaded.manifest.site.default_language {
        format!("{base}/{slug}/{page}/")
    } else {
        format!("{base}/{lang}/{slug}/{page}/")
    }
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
    let ip = client_ip::of_request(&req, state.options());
    let (parts, body) = req.into_parts();
    let headers = parts.headers;
    // 1. Pure CPU, no I/O.
    let (kind, bytes) = bounded_body(&headers, body, &[BodyKind::Json, BodyKind::Form])
        .await
        .map_err(IntoResponse::into_response)?;
    let loaded = state.loaded();
    let petition = loaded
        .manifest
        .petition(slug)
        .ok_or_else(|| Problem::not_found(format!("No petition {slug:?}.")).into_response())?;
    let form = decode_sign(kind, &bytes, petition)
        .map_err(|errors| Problem::invalid_fields(errors).into_response())?;
    if !petition.is_open(now) {
        return Err(Problem::gone("This petition is not open for signatures.").into_response());
    }
    if !origin_allowed(&headers, &loaded) {
        return Err(
            Problem::forbidden("Requests from this page are not accepted.").into_response(),
        );
    }
    let email = canonicalize(&form.email).map_err(|detail| {
        Problem::invalid_fields(vec![FieldError::new("email", detail)]).into_response()
    })?;
    let wants_json = kind == BodyKind::Json
        || headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("application/json"));
    let lang = pick_lang(petition, &loaded, form.lang.as_deref());
    let accepted = || {
        if wants_json {
            no_store(json(StatusCode::ACCEPTED, PENDING_BODY.to_string()))
        } else {
            let location = page_url(&loaded, &lang, slug, "check-email");
            let mut res = StatusCode::SEE_OTHER.into_response();
            if let Ok(v) = HeaderValue::from_str(&location) {
                res.headers_mut().insert(header::LOCATION, v);
            }
            no_store(res)
        }
    };
    let opts = state.options();
    if opts
        .blocked_domains
        .iter()
        .any(|d| domain_matches(&email.domain, d))
    {
        return Ok(accepted());
    }
    // 2. In-memory token buckets.
    if let Err(retry) = state.0.limiter.check(ip) {
        return Err(Problem::too_many_requests(retry).into_response());
    }
    // 3. Captcha (paid, fail closed, single use).
    let remote_ip = (ip != UNKNOWN_CLIENT).then_some(ip);
    if !state.0.captcha.verify(&form.captcha, remote_ip).await {
        return Err(
            Problem::forbidden("The captcha was not solved; please try again.").into_response(),
        );
    }
    // 4. One conditional write.
    let hasher = state.hasher();
    let email_hash = hasher.email(&email.canonical);
    let protected = loaded
        .manifest
        .site
        .protected_domains
        .iter()
        .any(|d| domain_matches(&email.domain, d));
    let (ip_hash, prefix_hash) = (hasher.ip(ip), hasher.prefix(ip));
    let name_hash = hasher.name(&form.name);
    let flags = assess(&HeuristicInput {
        name: &form.name,
        email: &email.canonical,
        email_domain: &email.domain,
        website: &form.website,
        fill_ms: form.fill_ms,
        js: wants_json,
        name_hash: &name_hash,
        now,
        disposable: &state.0.disposable,
        burst: Some(&state.0.name_burst),
    });
    let policy = &loaded.budgets;
    // An unknown caller takes the shared unknown address's budgets: fail closed.
    let budgets = policy.budgets_for(
        slug,
        ip,
        |label| hasher.hash("budget", label),
        &email.domain,
    );
    let personal = PersonalData {
        name: form.name.clone(),
        email: email.address.clone(),
        fields: form.fields.clone(),
        lang: lang.clone(),
        text_sha256: petition.text_sha256.get(&lang).cloned(),
        consent_sha256: petition.consent_sha256.get(&lang).cloned(),
    };
    let sealed = loaded.sealer.seal(&personal).map_err(|e| {
        tracing::error!(error = %e, "sealing failed");
        Problem::unavailable().into_response()
    })?;
    let sig = NewSignature {
        petition: slug.to_string(),
        email_hash: email_hash.clone(),
        email_domain: email.domain.clone(),
        ip_hash,
        prefix_hash,
        network: if ip == UNKNOWN_CLIENT {
            String::new()
        } else {
            crate::network::network_of(ip)
        },
        name_hash,
        sealed,
        lang: lang.clone(),
        public: form.public,
        newsletter: form.newsletter,
        hold_reason: protected.then(|| "protected domain".to_string()),
        flags,
        created_at: now,
        expires_at: now + opts.pending_ttl_secs,
        budgets,
    };
    let outcome = state.0.store.sign(&sig).await.map_err(|e| {
        tracing::error!(error = format!("{e:#}"), "store.sign failed");
        Problem::unavailable().into_response()
    })?;
    log_decision(&sig, &outcome);
    // 5. Mail, only when warranted and within the per-domain mail budget.
    let kind = match outcome {
        SignOutcome::Created {
            status: Status::Pending,
            ..
        } => Some(MailKind::Confirm),
        SignOutcome::Created {
            status: Status::Held,
            over_budget: None,
        } if protected => Some(MailKind::Protected),
        SignOutcome::Created { .. } => None,
        SignOutcome::Duplicate { status } => {
            let kind = match status {
                Status::Pending | Status::Held if protected => Some(MailKind::Protected),
                Status::Pending | Status::Held => Some(MailKind::AlreadySignedPending),
                Status::Confirmed | Status::ConfirmedHeld => Some(MailKind::AlreadyConfirmed),
                Status::Invalidated | Status::Erased => None,
            };
            let daily = Budget {
                key: format!("remind:{email_hash}:{slug}"),
                limit: 1,
                window_secs: 86_400,
            };
            match kind {
                Some(k)
                    if state
                        .0
                        .store
                        .take_budget(&daily, now)
                        .await
                        .unwrap_or(false) =>
                {
                    Some(k)
                }
                _ => None,
            }
        }
    };
    if let Some(kind) = kind {
        let mail_budget = policy.mail_budget(&email.domain);
        let within = state
            .0
            .store
            .take_budget(&mail_budget, now)
            .await
            .unwrap_or(false);
        if !within {
            tracing::info!(
                target: "cahier::fraud",
                decision = "mail_over_budget",
                petition = slug,
                budget = %mail_budget.key,
                email = short(&email_hash),
                "no mail: the per-domain mail budget is exhausted"
            );
        }
        if within {
            send_mail(
                state,
                &loaded,
                petition,
                &lang,
                &email.address,
                &email_hash,
                kind,
                now,
            )
            .await;
        }
    }
    // 6. The identical answer.
    Ok(accepted())
}

/// The first 12 hex characters of a keyed hash: enough to correlate log lines, never an
/// address or a name.
fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

/// One structured, pseudonymous event per hold or budget decision (JSON under Lambda).
fn log_decision(sig: &NewSignature, outcome: &SignOutcome) {
    let flags = sig.flags.join(",");
    match outcome {
        SignOutcome::Created {
            status: Status::Held,
            over_budget,
        } => tracing::info!(
            target: "cahier::fraud",
            decision = if over_budget.is_some() { "over_budget" } else { "held" },
            petition = %sig.petition,
            budget = over_budget.as_deref().unwrap_or(""),
            hold_reason = sig.hold_reason.as_deref().unwrap_or(""),
            email = short(&sig.email_hash),
            prefix = short(&sig.prefix_hash),
            domain = %sig.email_domain,
            flags = %flags,
            "signature held"
        ),
        SignOutcome::Created { .. } if !sig.flags.is_empty() => tracing::info!(
            target: "cahier::fraud",
            decision = "flagged",
            petition = %sig.petition,
            email = short(&sig.email_hash),
            prefix = short(&sig.prefix_hash),
            domain = %sig.email_domain,
            flags = %flags,
            "signature flagged"
        ),
        _ => {}
    }
}

#[allow(clippy::too_many_arguments)]
async fn send_mail(
    state: &AppState,
    loaded: &Loaded,
    petition: &Petition,
    lang: &str,
    to: &str,
    email_hash: &str,
    kind: MailKind,
    now: i64,
) {
    let keys = state.token_key();
    let confirm = keys.issue(&TokenClaims {
        kind: TokenKind::Confirm,
        petition: petition.slug.clone(),
        email_hash: email_hash.to_string(),
        expires_at: now + CONFIRM_TTL_SECS,
    });
    let retention = (loaded.manifest.site.retention_days.max(30) as i64) * 86_400;
    let erase = keys.issue(&TokenClaims {
        kind: TokenKind::Erase,
        petition: petition.slug.clone(),
        email_hash: email_hash.to_string(),
        expires_at: now + retention,
    });
    let confirm_url = format!(
        "{}#t={confirm}",
        page_url(loaded, lang, &petition.slug, "confirm")
    );
    let erase_url = format!(
        "{}#t={erase}",
        page_url(loaded, lang, &petition.slug, "erase")
    );
    let title = petition
        .titles
        .get(lang)
        .or_else(|| petition.titles.values().next())
        .map(String::as_str)
        .unwrap_or(&petition.slug);
    let mail = render(
        kind,
        &MailContext {
            to,
            lang,
            organization: &loaded.manifest.site.organization,
            title,
            confirm_url: Some(&confirm_url),
            erase_url: &erase_url,
        },
    );
    match state.0.mailer.send(&mail).await {
        Ok(()) => {
            let event = AuditEvent {
                petition: petition.slug.clone(),
                email_hash: email_hash.to_string(),
                event: "mailed".to_string(),
                at: now,
                detail: format!("{kind:?}"),
            };
            if let Err(e) = state.0.store.audit(&event).await {
                tracing::warn!(error = %e, "audit of a sent mail failed");
            }
        }
        Err(e) => tracing::error!(error = format!("{e:#}"), "sending a mail failed"),
    }
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
    let outcome = state
        .0
        .store
        .confirm(&claims.petition, &claims.email_hash, crate::now())
        .await;
    state.0.counts.forget(&claims.petition);
    match outcome {
        Ok(ConfirmOutcome::Confirmed { .. } | ConfirmOutcome::AlreadyConfirmed { .. }) => no_store(
            json(StatusCode::OK, r#"{"status":"confirmed"}"#.to_string()),
        ),
        Ok(ConfirmOutcome::NotFound) => {
            Problem::gone("This signature has expired or was deleted; please sign again.")
                .into_response()
        }
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
/// path.
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
            let updated = time::OffsetDateTime::from_unix_timestamp(c.updated_at)
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            let body = serde_json::json!({
                "petition": petition.slug,
                "count": c.count,
                "goal": effective_goal(petition.goal, c.count),
                "updated_at": updated,
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
