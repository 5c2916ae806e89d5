//! The signer's side of the API, shared by every end-to-end test: solve the (dev) captcha, sign,
//! read the confirm link from the mail, confirm by POST, read the count.

use cahier_function::captcha::dev::DEV_SITEKEY;
use serde_json::{json, Value};

/// A client of one function (standalone, `cahier serve` or under the Lambda emulator).
#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    /// Where `/api/...` lives, e.g. `http://127.0.0.1:PORT`.
    pub base: String,
    /// The page's origin sent with signatures (must be one of the site's origins).
    pub origin: String,
    /// Where the dev captcha is solved (usually `base`).
    pub captcha_base: String,
    pub slug: String,
}

impl Api {
    /// A client for `base`, signing the fixture petition from that same origin.
    pub fn new(base: &str) -> Api {
        Api {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("HTTP client"),
            base: base.trim_end_matches('/').to_string(),
            origin: base.trim_end_matches('/').to_string(),
            captcha_base: base.trim_end_matches('/').to_string(),
            slug: crate::fixture::SLUG.to_string(),
        }
    }

    pub fn slug(mut self, slug: &str) -> Api {
        self.slug = slug.to_string();
        self
    }

    pub fn origin(mut self, origin: &str) -> Api {
        self.origin = origin.to_string();
        self
    }

    /// Solve captchas on another instance (one playing hCaptcha for the function under test).
    pub fn captcha_at(mut self, base: &str) -> Api {
        self.captcha_base = base.trim_end_matches('/').to_string();
        self
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A fresh dev captcha token, solved for the page's origin (what the dev widget does).
    pub async fn captcha(&self) -> String {
        let v: Value = self
            .http
            .post(format!("{}/api/__dev/captcha", self.captcha_base))
            .header("origin", &self.origin)
            .json(&json!({ "sitekey": DEV_SITEKEY }))
            .send()
            .await
            .expect("POST /api/__dev/captcha")
            .json()
            .await
            .expect("captcha JSON");
        v["token"].as_str().expect("captcha token").to_string()
    }

    /// POSTs `body` as JSON to the petition's sign endpoint, from the page's origin.
    pub async fn sign_json(&self, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url(&format!("/api/petitions/{}/sign", self.slug)))
            .header("origin", &self.origin)
            .json(body)
            .send()
            .await
            .expect("POST sign")
    }

    /// A complete, valid signature by `email` with the given captcha token.
    pub async fn sign_with(&self, email: &str, captcha: &str) -> reqwest::Response {
        self.sign_json(&json!({
            "name": "Camille Essai", "email": email, "consent": true,
            "h-captcha-response": captcha, "lang": "fr", "fill_ms": 6000,
        }))
        .await
    }

    /// A complete, valid signature by `email` with a fresh captcha.
    pub async fn sign(&self, email: &str) -> reqwest::Response {
        let captcha = self.captcha().await;
        self.sign_with(email, &captcha).await
    }

    /// POSTs `{"token": token}` to `path` (`/api/confirm` or `/api/erase`).
    pub async fn post_token(&self, path: &str, token: &str) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .json(&json!({ "token": token }))
            .send()
            .await
            .expect("POST token")
    }

    pub async fn confirm(&self, token: &str) -> reqwest::Response {
        self.post_token("/api/confirm", token).await
    }

    /// The public count of the petition (asserts a 200).
    pub async fn count(&self) -> u64 {
        let res = self
            .http
            .get(self.url(&format!("/api/petitions/{}/count", self.slug)))
            .send()
            .await
            .expect("GET count");
        assert_eq!(res.status(), 200, "count of {}", self.slug);
        let v: Value = res.json().await.expect("count JSON");
        v["count"].as_u64().expect("count number")
    }
}
