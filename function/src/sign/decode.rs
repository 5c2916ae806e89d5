//! Stage 1 of `sign`: pure CPU, no I/O. Content type and bounded body, strict decode, petition
//! open (from the bundled manifest), Origin, and the e-mail's canonical identity.

use super::respond::{bounded_body, origin_allowed, pick_lang};
use crate::decode::{decode_sign, BodyKind, SignForm};
use crate::email::{canonicalize, CanonicalEmail};
use crate::manifest::Petition;
use crate::problem::{FieldError, Problem};
use crate::state::Loaded;
use axum::body::Body;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};

/// A request that passed every free check.
pub(super) struct Decoded<'l> {
    pub petition: &'l Petition,
    pub form: SignForm,
    pub email: CanonicalEmail,
    /// A script asked (JSON body or `Accept: application/json`): answer 202, not 303.
    pub wants_json: bool,
    /// The language to write to the signer in.
    pub lang: String,
}

pub(super) async fn decode<'l>(
    loaded: &'l Loaded,
    slug: &str,
    headers: &HeaderMap,
    body: Body,
    now: i64,
) -> Result<Decoded<'l>, Response> {
    let (kind, bytes) = bounded_body(headers, body, &[BodyKind::Json, BodyKind::Form])
        .await
        .map_err(IntoResponse::into_response)?;
    let petition = loaded
        .manifest
        .petition(slug)
        .ok_or_else(|| Problem::not_found(format!("No petition {slug:?}.")).into_response())?;
    let form = decode_sign(kind, &bytes, petition)
        .map_err(|errors| Problem::invalid_fields(errors).into_response())?;
    if !petition.is_open(now) {
        return Err(Problem::gone("This petition is not open for signatures.").into_response());
    }
    if !origin_allowed(headers, loaded) {
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
    let lang = pick_lang(petition, loaded, form.lang.as_deref());
    Ok(Decoded {
        petition,
        form,
        email,
        wants_json,
        lang,
    })
}
