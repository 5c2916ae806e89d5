//! The development captcha: a local widget and a local siteverify endpoint with hCaptcha's
//! semantics (tokens are single use and expire after 120 s). Compiled only with the `dev`
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
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// hCaptcha tokens expire after 120 s.
pub const TOKEN_TTL: Duration = Duration::from_secs(120);
/// Outstanding tokens kept at most (memory bound).
pub const MAX_OUTSTANDING: usize = 200_000;
/// hCaptcha's documented test sitekey, a valid UUID for the crate's checks.
pub const DEV_SITEKEY: &str = "10000000-ffff-ffff-ffff-000000000001";

#[derive(Debug, Clone)]
struct Issued {
    at: Instant,
    sitekey: String,
    hostname: String,
}

/// Issued, not yet redeemed tokens.
#[derive(Debug)]
pub struct DevTokens {
    secret: String,
    issued: Mutex<HashMap<String, Issued>>,
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

impl DevTokens {
    /// `secret`: what siteverify callers must present (the function's `HCAPTCHA_SECRET`).
    pub fn new(secret: &str) -> Arc<Self> {
        Arc::new(DevTokens {
            secret: secret.to_string(),
            issued: Mutex::new(HashMap::new()),
        })
    }

    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// A fresh single-use token for `sitekey` solved on `hostname`.
    pub fn issue(&self, sitekey: &str, hostname: &str) -> Option<String> {
        self.issue_at(sitekey, hostname, Instant::now())
    }

    pub fn issue_at(&self, sitekey: &str, hostname: &str, now: Instant) -> Option<String> {
        let mut bytes = [0u8; 24];
        rand::thread_rng().fill_bytes(&mut bytes);
        let token = format!("dev-{}", hex::encode(bytes));
        let mut issued = self.issued.lock().unwrap_or_else(|e| e.into_inner());
        if issued.len() >= MAX_OUTSTANDING {
            issued.retain(|_, t| now.saturating_duration_since(t.at) < TOKEN_TTL);
            if issued.len() >= MAX_OUTSTANDING {
                return None;
            }
        }
        issued.insert(
            token.clone(),
            Issued {
                at: now,
                sitekey: sitekey.to_string(),
                hostname: hostname.to_string(),
            },
        );
        Some(token)
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
        let issued = self
            .issued
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(response);
        let issued = issued.ok_or(DevError::InvalidOrAlreadySeen)?;
        if now.saturating_duration_since(issued.at) >= TOKEN_TTL {
            return Err(DevError::InvalidOrAlreadySeen);
        }
        if let Some(key) = sitekey.filter(|k| !k.is_empty()) {
            if key != issued.sitekey {
                return Err(DevError::SitekeyMismatch);
            }
        }
        Ok(issued.hostname)
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
/// from `/api/__dev/captcha` and fills the form's `h-captcha-response` textarea.
pub const WIDGET_JS: &str = r#"(function () {
  "use strict";
  var me = document.currentScript;
  var api = me && me.src ? me.src.replace(/\/__dev\/captcha\.js.*$/, "") : "/api";
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
    button.textContent = "\u2610 I am human (development captcha)";
    button.addEventListener("click", function () {
      if (button.getAttribute("aria-checked") === "true") return;
      fetch(api + "/__dev/captcha", {
        method: "POST",
        headers: { "Content-Type": "application/json", "Accept": "application/json" },
        body: JSON.stringify({ sitekey: div.getAttribute("data-sitekey") || "" })
      }).then(function (r) { return r.json(); }).then(function (j) {
        area.value = j.token;
        button.setAttribute("aria-checked", "true");
        button.textContent = "\u2611 Verified (development captcha)";
        setTimeout(function () {
          area.value = "";
          button.setAttribute("aria-checked", "false");
          button.textContent = "\u2610 Expired: click again (development captcha)";
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
            None => return crate::problem::Problem::unavailable().into_response(),
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
}
