//! What every handler answers with: JSON and problem bodies, the bounded body read, the
//! Origin check, and the pages a signer is sent to.

use crate::decode::{BodyKind, MAX_BODY};
use crate::manifest::Petition;
use crate::problem::Problem;
use crate::state::{normalize_origin, Loaded};
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

pub(crate) fn json(status: StatusCode, body: String) -> Response {
    let mut res = (status, body).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

pub(crate) fn no_store(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Reads the body within the 8 KiB bound (413 above), after the content type check (415).
pub(crate) async fn bounded_body(
    headers: &HeaderMap,
    body: Body,
    accepted: &[BodyKind],
) -> Result<(BodyKind, Bytes), Problem> {
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

/// Reads a body of any type within the same bound: RFC 8058's one-click POST may come as a
/// form or as `multipart/form-data`, and only its text matters.
pub(crate) async fn bounded_body_of(headers: &HeaderMap, body: Body) -> Result<Bytes, Problem> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(Problem::too_large());
    }
    axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| Problem::too_large())
}

/// A request with an `Origin` must come from an allowed origin; without one (non-browser
/// clients, very old browsers) it passes: the captcha still stands in the way.
pub(crate) fn origin_allowed(headers: &HeaderMap, loaded: &Loaded) -> bool {
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
pub(crate) fn pick_lang(petition: &Petition, loaded: &Loaded, lang: Option<&str>) -> String {
    let default = &loaded.manifest.site.default_language;
    lang.map(str::to_string)
        .filter(|l| petition.languages.contains(l))
        .or_else(|| petition.languages.iter().find(|l| *l == default).cloned())
        .or_else(|| petition.languages.first().cloned())
        .unwrap_or_else(|| default.clone())
}

/// `<base_url>[/<lang>]/<slug>/<page>/`.
/// The petition's page in `lang`.
pub(crate) fn petition_url(loaded: &Loaded, lang: &str, slug: &str) -> String {
    let base = loaded.manifest.site.base_url.trim_end_matches('/');
    if lang == loaded.manifest.site.default_language {
        format!("{base}/{slug}/")
    } else {
        format!("{base}/{lang}/{slug}/")
    }
}

pub(crate) fn page_url(loaded: &Loaded, lang: &str, slug: &str, page: &str) -> String {
    let base = loaded.manifest.site.base_url.trim_end_matches('/');
    if lang == loaded.manifest.site.default_language {
        format!("{base}/{slug}/{page}/")
    } else {
        format!("{base}/{lang}/{slug}/{page}/")
    }
}

/// The one answer of `sign` after decoding, whatever happened: 202 with [`super::PENDING_BODY`]
/// for scripts, 303 to the "check your e-mail" page for a plain form post.
pub(crate) fn accepted(loaded: &Loaded, slug: &str, lang: &str, wants_json: bool) -> Response {
    if wants_json {
        return no_store(json(StatusCode::ACCEPTED, super::PENDING_BODY.to_string()));
    }
    let location = page_url(loaded, lang, slug, "check-email");
    let mut res = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    no_store(res)
}
