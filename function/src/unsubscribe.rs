//! Unsubscribing from the updates to signers (`cahier admin mail`).
//!
//! Every update carries a token naming the signer (e-mail hash) and the petition, issued on the
//! organizer's machine with a key derived from the pepper, which both sides hold — the function
//! needs no list of sent mails to check it. It is used twice:
//! - RFC 8058 one-click: the `List-Unsubscribe` header holds `<api>/unsubscribe?t=TOKEN` and
//!   `List-Unsubscribe-Post: List-Unsubscribe=One-Click`; the mail provider POSTs
//!   `List-Unsubscribe=One-Click` to it from its servers (no Origin, no cookie).
//! - The visible link in the mail opens the theme's `unsubscribe/` page (`#t=TOKEN` in the
//!   fragment, never sent to a server), whose button POSTs `{"token": …}` as JSON, like the
//!   erase page.
//!
//! A GET never unsubscribes (link scanners and prefetchers open every URL of a mail): it is
//! sent on to that page. The address goes on the site-wide suppression list
//! ([`crate::store::suppression`]); the signature itself is untouched and still counts.

use crate::decode::decode_token;
use crate::problem::{FieldError, Problem};
use crate::sign::respond::{bounded_body_of, json, no_store, origin_allowed};
use crate::state::AppState;
use crate::store::{Suppression, SuppressionReason};
use crate::token::{TokenClaims, TokenError, TokenKey, TokenKind};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What the unsubscribe key is derived from the pepper with; its own label, so the key is
/// neither the pepper nor the confirm/erase token key.
const KEY_LABEL: &[u8] = b"cahier unsubscribe token key v1";

/// An update's unsubscribe link works for about thirteen months.
pub const TOKEN_TTL_SECS: i64 = 400 * 86_400;

/// The body RFC 8058 says the one-click POST carries.
const ONE_CLICK: &str = "List-Unsubscribe=One-Click";

/// The key of unsubscribe tokens: HMAC-SHA-256(pepper, label).
pub fn token_key(pepper: &[u8]) -> TokenKey {
    let mut mac = Hmac::<Sha256>::new_from_slice(pepper).expect("HMAC accepts any key length");
    mac.update(KEY_LABEL);
    TokenKey::new(&mac.finalize().into_bytes()).expect("32 bytes")
}

/// The token of one update's recipient.
pub fn issue(key: &TokenKey, petition: &str, email_hash: &str, now: i64) -> String {
    key.issue(&TokenClaims {
        kind: TokenKind::Unsubscribe,
        petition: petition.to_string(),
        email_hash: email_hash.to_string(),
        expires_at: now + TOKEN_TTL_SECS,
    })
}

/// `<api_url>/unsubscribe?t=TOKEN`: the `List-Unsubscribe` target (tokens are base64url).
pub fn one_click_url(api_url: &str, token: &str) -> String {
    format!("{}/unsubscribe?t={token}", api_url.trim_end_matches('/'))
}

/// `<base_url>[/<lang>]/unsubscribe/#t=TOKEN`: the page of the visible link.
pub fn page_url(base_url: &str, lang_prefix: &str, token: &str) -> String {
    format!(
        "{}{lang_prefix}/unsubscribe/#t={token}",
        base_url.trim_end_matches('/')
    )
}

/// Whether a body is RFC 8058's: `List-Unsubscribe=One-Click` as a form, or a
/// `multipart/form-data` field `List-Unsubscribe` holding `One-Click`.
fn is_one_click(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body);
    text.contains(ONE_CLICK)
        || (text.contains("name=\"List-Unsubscribe\"") && text.contains("One-Click"))
}

/// The `t` query parameter, if any.
fn query_token(req: &Request<Body>) -> Option<String> {
    url::form_urlencoded::parse(req.uri().query()?.as_bytes())
        .find(|(k, _)| k == "t")
        .map(|(_, v)| v.into_owned())
}

/// `GET /api/unsubscribe?t=…`: the page that asks, in the site's default language.
pub async fn unsubscribe_get(State(state): State<AppState>, req: Request<Body>) -> Response {
    let loaded = state.loaded();
    let token = query_token(&req).unwrap_or_default();
    let token: String = token
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(crate::decode::MAX_TOKEN)
        .collect();
    let location = page_url(&loaded.manifest.site.base_url, "", &token);
    let mut res = StatusCode::SEE_OTHER.into_response();
    match HeaderValue::from_str(&location) {
        Ok(v) => {
            res.headers_mut().insert(header::LOCATION, v);
            no_store(res)
        }
        Err(_) => Problem::not_found("No such page.").into_response(),
    }
}

/// `POST /api/unsubscribe`: the one-click POST (`?t=` and a form body) or the page's JSON.
pub async fn unsubscribe(State(state): State<AppState>, req: Request<Body>) -> Response {
    debug_assert_eq!(req.method(), Method::POST);
    let from_query = query_token(&req);
    let (parts, body) = req.into_parts();
    let token = match from_query {
        Some(token) => {
            // One-click: sent by the mail provider's servers, so no Origin to check; the
            // token is the authority. The body must say what RFC 8058 says it says.
            let bytes = match bounded_body_of(&parts.headers, body).await {
                Ok(b) => b,
                Err(p) => return p.into_response(),
            };
            if !is_one_click(&bytes) {
                return Problem::invalid_fields(vec![FieldError::new(
                    "List-Unsubscribe",
                    "Expected the one-click body List-Unsubscribe=One-Click (RFC 8058).",
                )])
                .into_response();
            }
            token
        }
        None => {
            let bytes = match crate::sign::respond::bounded_body(
                &parts.headers,
                body,
                &[crate::decode::BodyKind::Json],
            )
            .await
            {
                Ok((_, b)) => b,
                Err(p) => return p.into_response(),
            };
            if !origin_allowed(&parts.headers, &state.loaded()) {
                return Problem::forbidden("Requests from this page are not accepted.")
                    .into_response();
            }
            match decode_token(&bytes) {
                Ok(t) => t,
                Err(e) => return Problem::invalid_fields(e).into_response(),
            }
        }
    };
    let now = crate::now();
    let claims = match state
        .unsubscribe_key()
        .verify(&token, TokenKind::Unsubscribe, now)
    {
        Ok(c) => c,
        Err(TokenError::Invalid) => {
            return Problem::invalid_fields(vec![FieldError::new(
                "token",
                "This link is not valid.",
            )])
            .into_response()
        }
        Err(TokenError::Expired) => return Problem::gone("This link has expired.").into_response(),
    };
    let entry = Suppression {
        email_hash: claims.email_hash,
        reason: SuppressionReason::Unsubscribed,
        petition: claims.petition,
        at: now,
    };
    match state.0.store.suppress(&entry).await {
        // The same answer whether or not the address was already off the list.
        Ok(_) => no_store(json(
            StatusCode::OK,
            r#"{"status":"unsubscribed"}"#.to_string(),
        )),
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "store.suppress failed");
            Problem::unavailable().into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_bound_to_their_key_and_kind() {
        let key = token_key(&[1u8; 32]);
        let t = issue(&key, "ecole", &hex::encode([9u8; 32]), 1_000);
        let c = key.verify(&t, TokenKind::Unsubscribe, 2_000).unwrap();
        assert_eq!(
            (c.petition.as_str(), c.kind),
            ("ecole", TokenKind::Unsubscribe)
        );
        // Never a confirm or erase token, under any key.
        assert!(key.verify(&t, TokenKind::Erase, 2_000).is_err());
        assert!(key.verify(&t, TokenKind::Confirm, 2_000).is_err());
        // Another pepper, another key.
        assert!(token_key(&[2u8; 32])
            .verify(&t, TokenKind::Unsubscribe, 2_000)
            .is_err());
        // The pepper itself is not the key.
        let raw = TokenKey::new(&[1u8; 32]).unwrap();
        assert!(raw.verify(&t, TokenKind::Unsubscribe, 2_000).is_err());
        assert_eq!(
            key.verify(&t, TokenKind::Unsubscribe, 1_000 + TOKEN_TTL_SECS),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn urls() {
        assert_eq!(
            one_click_url("https://s.example/api/", "abc"),
            "https://s.example/api/unsubscribe?t=abc"
        );
        assert_eq!(
            page_url("https://s.example", "/en", "abc"),
            "https://s.example/en/unsubscribe/#t=abc"
        );
    }
}
