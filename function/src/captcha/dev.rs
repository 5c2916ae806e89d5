//! The development captcha: a local widget and a local siteverify endpoint with hCaptcha's
//! semantics (tokens are single use and expire after 120 s, and are checked against the sitekey
//! they were issued for). Compiled only with the `dev`
//! feature and mounted only when the manifest says `captcha_provider = "dev"`.
//!
//! The function verifies dev tokens with the same [`super::hcaptcha::HCaptcha`] client pointed at
//! `/api/__dev/siteverify`, so the real crate is exercised; [`DevCaptcha`] verifies in-process
//! for router tests that have no socket.

use super::Captcha;
use async_trait::async_trait;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::collections::{HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// hCaptcha tokens expire after 120 s.
pub const TOKEN_TTL: Duration = Duration::from_secs(120);
/// Redeemed tokens remembered at most (memory bound, about 30 bytes each); past it, redemptions
/// fail closed until older ones expire.
pub const MAX_REDEEMED: usize = 500_000;
/// hCaptcha's documented test sitekey, a valid UUID for the crate's checks.
pub const DEV_SITEKEY: &str = "10000000-ffff-ffff-ffff-000000000001";

const NONCE: usize = 16;
const TAG: usize = 16;

/// Issues and redeems development tokens.
///
/// A token carries what it was issued for (time, a random nonce, sitekey, hostname) and a MAC
/// under a key drawn at start, so issuing stores nothing: a benchmark or a script can take
/// thousands of tokens without growing the server. Single use is enforced by remembering the
/// nonces of redeemed tokens until those tokens would have expired anyway.
#[derive(Debug)]
pub struct DevTokens {
    secret: String,
    key: [u8; 32],
    epoch: Instant,
    redeemed: Mutex<Redeemed>,
}

/// Nonces of redeemed, not yet expired tokens; the queue is in redemption order, for pruning.
/// A nonce is kept as its first 8 bytes: a collision among the few hundred thousand tokens of
/// two minutes is about one in a billion and would only refuse a token (fail closed).
#[derive(Debug, Default)]
struct Redeemed {
    nonces: HashSet<u64>,
    expiries: VecDeque<(u64, u64)>,
}

/// Why a redemption failed, as hCaptcha's `error-codes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevError {
    InvalidSecret,
    MissingResponse,
    InvalidOrAlreadySeen,
    SitekeyMismatch,
}

impl DevError {
    pub fn code(self) -> &'static str {
        match self {
            DevError::InvalidSecret => "invalid-input-secret",
            DevError::MissingResponse => "missing-input-response",
            DevError::InvalidOrAlreadySeen => "invalid-or-already-seen-response",
            DevError::SitekeyMismatch => "sitekey-secret-mismatch",
        }
    }
}

/// The parts of a token whose MAC checked out.
struct Claims {
    issued_ms: u64,
    nonce: [u8; NONCE],
    sitekey: String,
    hostname: String,
}

impl DevTokens {
    /// `secret`: what siteverify callers must present (the function's `HCAPTCHA_SECRET`).
    pub fn new(secret: &str) -> Arc<Self> {
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        Arc::new(DevTokens {
            secret: secret.to_string(),
            key,
            epoch: Instant::now(),
            redeemed: Mutex::new(Redeemed::default()),
        })
    }

    pub fn secret(&self) -> &str {
        &self.secret
    }

    fn ms(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch).as_millis() as u64
    }

    fn tag(&self, payload: &[u8]) -> [u8; TAG] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(payload);
        let mut tag = [0u8; TAG];
        tag.copy_from_slice(&mac.finalize().into_bytes()[..TAG]);
        tag
    }

    /// A fresh single-use token for `sitekey` solved on `hostname`.
    pub fn issue(&self, sitekey: &str, hostname: &str) -> Option<String> {
        self.issue_at(sitekey, hostname, Instant::now())
    }

    /// `None` when the sitekey is too long to carry (over 255 bytes).
    pub fn issue_at(&self, sitekey: &str, hostname: &str, now: Instant) -> Option<String> {
        let sitekey_len = u8::try_from(sitekey.len()).ok()?;
        let mut nonce = [0u8; NONCE];
        rand::thread_rng().fill_bytes(&mut nonce);
        let mut payload = Vec::with_capacity(8 + NONCE + 1 + sitekey.len() + hostname.len());
        payload.extend_from_slice(&self.ms(now).to_be_bytes());
        payload.extend_from_slice(&nonce);
        payload.push(sitekey_len);
        payload.extend_from_slice(sitekey.as_bytes());
        payload.extend_from_slice(hostname.as_bytes());
        let tag = self.tag(&payload);
        Some(format!(
            "dev-{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(tag)
        ))
    }

    /// The claims of a token this instance issued, or `None` (forged, altered, malformed).
    fn open(&self, token: &str) -> Option<Claims> {
        use subtle::ConstantTimeEq;
        let (payload, tag) = token.strip_prefix("dev-")?.split_once('.')?;
        let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        if tag.len() != TAG || !bool::from(self.tag(&payload).ct_eq(&tag)) {
            return None;
        }
        let issued_ms = u64::from_be_bytes(payload.get(..8)?.try_into().ok()?);
        let nonce: [u8; NONCE] = payload.get(8..8 + NONCE)?.try_into().ok()?;
        let rest = payload.get(8 + NONCE..)?;
        let (&len, rest) = rest.split_first()?;
        let sitekey = std::str::from_utf8(rest.get(..len as usize)?).ok()?;
        let hostname = std::str::from_utf8(rest.get(len as usize..)?).ok()?;
        Some(Claims {
            issued_ms,
            nonce,
            sitekey: sitekey.to_string(),
            hostname: hostname.to_string(),
        })
    }

    /// Redeems a token once: returns the hostname it was solved on.
    pub fn redeem(
        &self,
        secret: &str,
        response: &str,
        sitekey: Option<&str>,
    ) -> Result<String, DevError> {
        self.redeem_at(secret, response, sitekey, Instant::now())
    }

    pub fn redeem_at(
        &self,
        secret: &str,
        response: &str,
        sitekey: Option<&str>,
        now: Instant,
    ) -> Result<String, DevError> {
        use subtle::ConstantTimeEq;
        if !bool::from(secret.as_bytes().ct_eq(self.secret.as_bytes())) {
            return Err(DevError::InvalidSecret);
        }
        if response.trim().is_empty() {
            return Err(DevError::MissingResponse);
        }
        let claims = self.open(response).ok_or(DevError::InvalidOrAlreadySeen)?;
        let now_ms = self.ms(now);
        let expires_ms = claims.issued_ms + TOKEN_TTL.as_millis() as u64;
        if now_ms >= expires_ms || claims.issued_ms > now_ms {
            return Err(DevError::InvalidOrAlreadySeen);
        }
        if let Some(key) = sitekey.filter(|k| !k.is_empty()) {
            if key != claims.sitekey {
                return Err(DevError::SitekeyMismatch);
            }
        }
        let mut redeemed = self.redeemed.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(&(expiry, nonce)) = redeemed.expiries.front() {
            if expiry > now_ms {
                break;
            }
            redeemed.expiries.pop_front();
            redeemed.nonces.remove(&nonce);
        }
        let nonce = u64::from_be_bytes(claims.nonce[..8].try_into().expect("8 of 16 bytes"));
        if redeemed.nonces.len() >= MAX_REDEEMED || !redeemed.nonces.insert(nonce) {
            return Err(DevError::InvalidOrAlreadySeen);
        }
        redeemed.expiries.push_back((expires_ms, nonce));
        Ok(claims.hostname)
    }
}

/// In-process verification against [`DevTokens`] (router tests; no HTTP round trip).
pub struct DevCaptcha {
    pub tokens: Arc<DevTokens>,
}

#[async_trait]
impl Captcha for DevCaptcha {
    async fn verify(&self, response: &str, _remote_ip: Option<IpAddr>) -> bool {
        let secret = self.tokens.secret().to_string();
        self.tokens.redeem(&secret, response, None).is_ok()
    }
}

/// The widget: turns each `.h-captcha` div into a checkbox-like button that fetches a token
/// from `/api/__dev/captcha` and fills the form's `h-captcha-response` textarea. It speaks the
/// page's language (French or English).
pub const WIDGET_JS: &str = r#"(function () {
  "use strict";
  var me = document.currentScript;
  var api = me && me.src ? me.src.replace(/\/__dev\/captcha\.js.*$/, "") : "/api";
  var fr = /^fr\b/i.test(document.documentElement.lang || "");
  var say = fr ? {
    ask: "\u2610 Je ne suis pas un robot (captcha de d\u00e9veloppement)",
    done: "\u2611 V\u00e9rifi\u00e9 (captcha de d\u00e9veloppement)",
    expired: "\u2610 Expir\u00e9 : cliquez \u00e0 nouveau (captcha de d\u00e9veloppement)"
  } : {
    ask: "\u2610 I am human (development captcha)",
    done: "\u2611 Verified (development captcha)",
    expired: "\u2610 Expired: click again (development captcha)"
  };
  function mount(div) {
    if (div.getAttribute("data-dev-mounted")) return;
    div.setAttribute("data-dev-mounted", "1");
    var form = div.closest("form");
    var area = form && form.querySelector("textarea[name='h-captcha-response']");
    if (!area) {
      area = document.createElement("textarea");
      area.name = "h-captcha-response";
      area.hidden = true;
      div.appendChild(area);
    }
    var button = document.createElement("button");
    button.type = "button";
    button.className = "dev-captcha";
    button.setAttribute("role", "checkbox");
    button.setAttribute("aria-checked", "false");
    button.textContent = say.ask;
    button.addEventListener("click", function () {
      if (button.getAttribute("aria-checked") === "true") return;
      fetch(api + "/__dev/captcha", {
        method: "POST",
        headers: { "Content-Type": "application/json", "Accept": "application/json" },
        body: JSON.stringify({ sitekey: div.getAttribute("data-sitekey") || "" })
      }).then(function (r) { return r.json(); }).then(function (j) {
        area.value = j.token;
        button.setAttribute("aria-checked", "true");
        button.textContent = say.done;
        setTimeout(function () {
          area.value = "";
          button.setAttribute("aria-checked", "false");
          button.textContent = say.expired;
        }, 115000);
      });
    });
    div.appendChild(button);
  }
  function all() { document.querySelectorAll(".h-captcha").forEach(mount); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", all); else all();
})();
"#;

pub async fn widget_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        WIDGET_JS,
    )
        .into_response()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueBody {
    #[serde(default)]
    pub sitekey: String,
}

#[derive(Debug, Deserialize)]
pub struct IssueQuery {
    /// Issue several tokens at once (benchmarks), at most 10,000.
    pub n: Option<usize>,
}

#[derive(Debug, Serialize)]
struct Issued1 {
    token: String,
}

#[derive(Debug, Serialize)]
struct IssuedN {
    tokens: Vec<String>,
}

/// `POST /api/__dev/captcha`: solves the "challenge" for the page's hostname.
pub async fn issue(
    State(tokens): State<Arc<DevTokens>>,
    Query(query): Query<IssueQuery>,
    headers: HeaderMap,
    body: Option<Json<IssueBody>>,
) -> Response {
    let sitekey = body.map(|Json(b)| b.sitekey).unwrap_or_default();
    let hostname = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::HOST))
        .and_then(|v| v.to_str().ok())
        .and_then(super::host_of)
        .unwrap_or_default();
    let n = query.n.unwrap_or(1).clamp(1, 10_000);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        match tokens.issue(&sitekey, &hostname) {
            Some(t) => out.push(t),
            None => {
                return crate::problem::Problem::invalid_fields(vec![
                    crate::problem::FieldError::new("sitekey", "At most 255 bytes."),
                ])
                .into_response()
            }
        }
    }
    let mut res = if query.n.is_some() {
        Json(IssuedN { tokens: out }).into_response()
    } else {
        Json(Issued1 {
            token: out.pop().unwrap_or_default(),
        })
        .into_response()
    };
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    res
}

#[derive(Debug, Deserialize)]
pub struct SiteverifyForm {
    #[serde(default)]
    pub secret: String,
    #[serde(default)]
    pub response: String,
    pub remoteip: Option<String>,
    pub sitekey: Option<String>,
}

#[derive(Debug, Serialize)]
struct SiteverifyAnswer {
    success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    challenge_ts: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hostname: Option<String>,
    #[serde(rename = "error-codes", skip_serializing_if = "Vec::is_empty")]
    error_codes: Vec<&'static str>,
}

/// `POST /api/__dev/siteverify`: hCaptcha's siteverify, form in, JSON out.
pub async fn siteverify(
    State(tokens): State<Arc<DevTokens>>,
    Form(form): Form<SiteverifyForm>,
) -> Response {
    let _ = &form.remoteip;
    let answer = match tokens.redeem(&form.secret, &form.response, form.sitekey.as_deref()) {
        Ok(hostname) => SiteverifyAnswer {
            success: true,
            challenge_ts: time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .ok(),
            hostname: Some(hostname),
            error_codes: vec![],
        },
        Err(e) => SiteverifyAnswer {
            success: false,
            challenge_ts: None,
            hostname: None,
            error_codes: vec![e.code()],
        },
    };
    (StatusCode::OK, Json(answer)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_single_use_and_expire() {
        let t = DevTokens::new("s3cret");
        let now = Instant::now();
        let a = t.issue_at(DEV_SITEKEY, "localhost", now).unwrap();
        assert_eq!(
            t.redeem_at("wrong", &a, None, now),
            Err(DevError::InvalidSecret)
        );
        assert_eq!(
            t.redeem_at("s3cret", &a, Some(DEV_SITEKEY), now).unwrap(),
            "localhost"
        );
        assert_eq!(
            t.redeem_at("s3cret", &a, None, now),
            Err(DevError::InvalidOrAlreadySeen)
        );
        let b = t.issue_at(DEV_SITEKEY, "localhost", now).unwrap();
        assert_eq!(
            t.redeem_at("s3cret", &b, None, now + TOKEN_TTL),
            Err(DevError::InvalidOrAlreadySeen)
        );
        let c = t.issue_at(DEV_SITEKEY, "localhost", now).unwrap();
        assert_eq!(
            t.redeem_at("s3cret", &c, Some("other"), now),
            Err(DevError::SitekeyMismatch)
        );
        assert_eq!(
            t.redeem_at("s3cret", "", None, now),
            Err(DevError::MissingResponse)
        );
    }

    #[test]
    fn forged_altered_or_foreign_tokens_are_refused_and_issuing_stores_nothing() {
        let t = DevTokens::new("s3cret");
        let now = Instant::now();
        let a = t.issue_at(DEV_SITEKEY, "localhost", now).unwrap();
        // Any one character changed, anywhere after the prefix.
        for i in 4..a.len() {
            let mut bytes = a.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(bytes).unwrap();
            if altered != a {
                assert_eq!(
                    t.redeem_at("s3cret", &altered, None, now),
                    Err(DevError::InvalidOrAlreadySeen),
                    "{altered}"
                );
            }
        }
        // Issued by another instance (another key).
        let other = DevTokens::new("s3cret");
        let b = other.issue_at(DEV_SITEKEY, "localhost", now).unwrap();
        assert_eq!(
            t.redeem_at("s3cret", &b, None, now),
            Err(DevError::InvalidOrAlreadySeen)
        );
        for _ in 0..10_000 {
            t.issue_at(DEV_SITEKEY, "localhost", now).unwrap();
        }
        let state = t.redeemed.lock().unwrap();
        assert!(state.nonces.is_empty() && state.expiries.is_empty());
        drop(state);
        assert_eq!(t.redeem_at("s3cret", &a, None, now).unwrap(), "localhost");
    }

    #[test]
    fn redeemed_nonces_are_forgotten_once_their_tokens_expire() {
        let t = DevTokens::new("s3cret");
        let start = Instant::now();
        for i in 0..100u64 {
            let at = start + Duration::from_secs(i);
            let token = t.issue_at(DEV_SITEKEY, "h", at).unwrap();
            t.redeem_at("s3cret", &token, None, at).unwrap();
        }
        // 100 s later than the last issue, only the tokens of the last 120 s are remembered.
        let later = start + Duration::from_secs(200);
        let token = t.issue_at(DEV_SITEKEY, "h", later).unwrap();
        t.redeem_at("s3cret", &token, None, later).unwrap();
        let remembered = t.redeemed.lock().unwrap().nonces.len();
        assert_eq!(remembered, 1 + (81..100).count());
    }
}
