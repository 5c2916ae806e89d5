//! The requests `themes/default/static/cahier.js` makes, byte for byte: the sign form as
//! `application/x-www-form-urlencoded` (its fields in page order), the confirm and erase pages'
//! JSON token, each POST with `x-amz-content-sha256` = hex SHA-256 of the exact body.
//! The browser tests run the script itself; this is for the HTTP-level tests and replays.

use super::content_sha256;

/// One signer of the example petition.
#[derive(Debug, Clone)]
pub struct Signer {
    pub name: String,
    pub email: String,
    pub postcode: String,
    pub lang: String,
}

impl Signer {
    pub fn new(name: &str, email: &str) -> Signer {
        Signer {
            name: name.into(),
            email: email.into(),
            postcode: "69001".into(),
            lang: "fr".into(),
        }
    }

    /// The body the form's script builds (`URLSearchParams` of the form's elements in order;
    /// unchecked boxes left out; the captcha's textarea last).
    pub fn form_body(&self, captcha: &str) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("name", &self.name)
            .append_pair("email", &self.email)
            .append_pair("postcode", &self.postcode)
            .append_pair("city", "")
            .append_pair("comment", "")
            .append_pair("consent", "yes")
            .append_pair("website", "")
            .append_pair("lang", &self.lang)
            .append_pair("fill_ms", "7421")
            .append_pair("h-captcha-response", captcha)
            .finish()
    }
}

/// A POST as the theme's `post()` sends it: `Accept: application/json`, the content type, the
/// page's `Origin` (the browser adds it), and the body's SHA-256.
pub fn post(
    http: &reqwest::Client,
    url: &str,
    origin: &str,
    content_type: &str,
    body: String,
) -> reqwest::RequestBuilder {
    http.post(url)
        .header("accept", "application/json")
        .header("content-type", content_type)
        .header("origin", origin)
        .header("x-amz-content-sha256", content_sha256(body.as_bytes()))
        .body(body)
}

/// The sign form's POST to `<base>/api/petitions/<slug>/sign`.
pub fn sign(
    http: &reqwest::Client,
    base: &str,
    slug: &str,
    signer: &Signer,
    captcha: &str,
) -> reqwest::RequestBuilder {
    post(
        http,
        &format!("{base}/api/petitions/{slug}/sign"),
        base,
        "application/x-www-form-urlencoded;charset=UTF-8",
        signer.form_body(captcha),
    )
}

/// The confirm (or erase) page's POST of its token to `<base><path>`.
pub fn token(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    token: &str,
) -> reqwest::RequestBuilder {
    post(
        http,
        &format!("{base}{path}"),
        base,
        "application/json",
        serde_json::json!({ "token": token }).to_string(),
    )
}
