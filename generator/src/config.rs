//! `cahier.toml`: the site's configuration. Few keys are required (`base_url`, `title`);
//! everything else has a sensible default. Unknown keys are errors naming file, line and key.

use crate::diag::{self, Diagnostic, Diagnostics};
use anyhow::Context;
use serde::Deserialize;
use std::path::{Path, PathBuf};

pub const CONFIG_FILE: &str = "cahier.toml";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Public URL of the site, e.g. `https://petitions.example.org` (no trailing slash needed).
    pub base_url: String,
    /// Name of the site, shown in the header and in feeds.
    pub title: String,
    /// One sentence shown on the home page and in feeds: a string, or one per language
    /// (`description = { fr = "...", en = "..." }`; a missing language falls back to the first).
    #[serde(default)]
    pub description: Localized,
    /// Public URL of the signing API; default `<base_url>/api`.
    #[serde(default)]
    pub api_url: Option<String>,
    /// Languages of the site; the first is the default one (served at the root).
    #[serde(default = "default_languages")]
    pub languages: Vec<String>,
    /// Theme folder under `themes/`.
    #[serde(default = "default_theme")]
    pub theme: String,
    #[serde(default)]
    pub organization: Organization,
    #[serde(default)]
    pub captcha: Captcha,
    /// Days after which signers' personal data is purged.
    #[serde(default = "default_retention")]
    pub retention_days: u32,
    /// Signatures from these e-mail domains (and subdomains) are held for review.
    #[serde(default)]
    pub protected_domains: Vec<String>,
    /// Large mail providers that get higher per-domain budgets.
    #[serde(default)]
    pub allowed_domains: Vec<String>,
    /// The collective's age public key (`age1...`); personal data is encrypted to it.
    #[serde(default)]
    pub age_recipient: Option<String>,
    /// The transparency log's public key (base64, from `cahier log keygen`), published as
    /// `site.log_public_key` in the manifest. `cahier serve` sets its development key.
    #[serde(default)]
    pub log_public_key: Option<String>,
    /// Other origins allowed to post signatures (sites that embed the form).
    #[serde(default)]
    pub extra_origins: Vec<String>,
    /// The kill switch: `"paused"` makes the function refuse signatures (503 with Retry-After)
    /// while pages and counts stay up; carried in the petition manifest.
    #[serde(default)]
    pub signing: Signing,
    /// Durable anti-fraud budgets (`[budgets]`); missing keys take the function's defaults.
    #[serde(default)]
    pub budgets: Option<cahier_function::budgets::BudgetPolicy>,
    /// Where the site runs (`[deploy]`): what the pages must tell visitors about it.
    #[serde(default)]
    pub deploy: Deploy,
    /// The site's icon, a path from the site root (`favicon = "static/icon.png"`): SVG, PNG or
    /// ICO. The theme's `static/favicon.svg` when absent.
    #[serde(default)]
    pub favicon: Option<String>,
    /// `[milestones]`: tell the organizers at 25, 50, 100 % of a goal and when a petition is
    /// trending. Absent: never.
    #[serde(default)]
    pub milestones: Option<Milestones>,
}

/// `[milestones]` (see `cahier_function::milestones`). The webhook URL is not here: it is a
/// secret of the function (`CAHIER_MILESTONE_WEBHOOK`), since anyone who has it can post.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Milestones {
    /// Percentages of the goal announced.
    #[serde(default = "default_milestones_at")]
    pub at: Vec<u32>,
    /// A trending alert when a petition gets this many confirmed signatures within one hour.
    #[serde(default)]
    pub trending_per_hour: Option<u64>,
    /// Mail `organization.email` (default true).
    #[serde(default = "default_true")]
    pub mail: bool,
}

fn default_milestones_at() -> Vec<u32> {
    cahier_function::milestones::DEFAULT_AT.to_vec()
}

fn default_true() -> bool {
    true
}

impl Milestones {
    /// As the manifest carries it: the percentages sorted, each once.
    pub fn policy(&self, has_contact: bool) -> cahier_function::milestones::MilestonePolicy {
        let mut at = self.at.clone();
        at.sort_unstable();
        at.dedup();
        cahier_function::milestones::MilestonePolicy {
            at,
            trending_per_hour: self.trending_per_hour,
            mail: self.mail && has_contact,
        }
    }
}

/// `[deploy]`: the hosting the pages are built for. Only what changes the pages lives here.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deploy {
    /// `"static"` (any CDN or `cahier serve`, the default) or `"aws"` (deploy/aws/template.yaml).
    #[serde(default)]
    pub target: DeployTarget,
    /// Under `"aws"`: the stack's `ApiAuth` parameter, `"AWS_IAM"` (the template's default)
    /// or `"NONE"`.
    #[serde(default)]
    pub api_auth: ApiAuth,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeployTarget {
    #[default]
    Static,
    Aws,
}

/// How CloudFront reaches the function URL (the template's `ApiAuth`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum ApiAuth {
    /// Origin access control: every POST must carry `x-amz-content-sha256`.
    #[default]
    #[serde(rename = "AWS_IAM")]
    AwsIam,
    #[serde(rename = "NONE")]
    None,
}

/// A text in one language for all, or one per language.
#[derive(Debug, Clone, Deserialize)]
#[serde(
    untagged,
    expecting = "a string, or a table of strings by language code"
)]
pub enum Localized {
    One(String),
    PerLanguage(std::collections::BTreeMap<String, String>),
}

impl Default for Localized {
    fn default() -> Self {
        Localized::One(String::new())
    }
}

impl Localized {
    /// The text for `lang`, else for `default_lang`, else empty.
    pub fn get<'a>(&'a self, lang: &str, default_lang: &str) -> &'a str {
        match self {
            Localized::One(s) => s,
            Localized::PerLanguage(m) => m
                .get(lang)
                .or_else(|| m.get(default_lang))
                .map(String::as_str)
                .unwrap_or(""),
        }
    }
}

/// `signing = "open" | "paused"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Signing {
    #[default]
    Open,
    Paused,
}

/// Who runs the site: shown in the footer, the privacy notice and the e-mails.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Organization {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub url: String,
    /// Contact address for signers (questions, data requests).
    #[serde(default)]
    pub email: String,
    /// Postal address of the data controller.
    #[serde(default)]
    pub address: String,
    /// Person legally responsible for the publication / data controller.
    #[serde(default)]
    pub legal_contact: String,
    /// Data protection officer or privacy contact, if distinct.
    #[serde(default)]
    pub privacy_email: String,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Captcha {
    /// `hcaptcha`, or `dev` for local development (`cahier serve`).
    #[serde(default = "default_provider")]
    pub provider: String,
    #[serde(default)]
    pub sitekey: String,
}

impl Default for Captcha {
    fn default() -> Self {
        Captcha {
            provider: default_provider(),
            sitekey: String::new(),
        }
    }
}

fn default_languages() -> Vec<String> {
    vec!["fr".into()]
}
fn default_theme() -> String {
    "default".into()
}
fn default_retention() -> u32 {
    365
}
fn default_provider() -> String {
    "hcaptcha".into()
}

impl Config {
    pub fn default_language(&self) -> &str {
        &self.languages[0]
    }

    /// The API's public URL without a trailing slash.
    pub fn api_url(&self) -> String {
        match &self.api_url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => format!("{}/api", self.base_url),
        }
    }

    /// Whether the API refuses a POST without `x-amz-content-sha256` (CloudFront's origin
    /// access control in front of the function URL): a form posted without JavaScript cannot
    /// carry it, so the pages say they need JavaScript to sign.
    pub fn signed_posts(&self) -> bool {
        self.deploy.target == DeployTarget::Aws && self.deploy.api_auth == ApiAuth::AwsIam
    }

    /// Path part of `base_url` (empty for a site at the domain's root), for root-relative links.
    pub fn base_path(&self) -> String {
        url::Url::parse(&self.base_url)
            .map(|u| u.path().trim_end_matches('/').to_string())
            .unwrap_or_default()
    }

    pub fn site_origin(&self) -> String {
        origin_of(&self.base_url)
    }

    pub fn api_origin(&self) -> String {
        origin_of(&self.api_url())
    }

    /// URL prefix of a language: empty for the default language, `/en` otherwise.
    pub fn lang_prefix(&self, lang: &str) -> String {
        if lang == self.default_language() {
            String::new()
        } else {
            format!("/{lang}")
        }
    }

    pub fn theme_dir(&self, root: &Path) -> PathBuf {
        root.join("themes").join(&self.theme)
    }

    /// Origins allowed to post to the API: the site's own, then the configured extra ones.
    pub fn origins(&self) -> Vec<String> {
        let mut v = vec![self.site_origin()];
        for o in &self.extra_origins {
            let o = origin_of(o);
            if !v.contains(&o) {
                v.push(o);
            }
        }
        v
    }

    /// Semantic checks serde cannot express; each problem points at its key's line.
    fn validate(&mut self, file: &Path, text: &str) -> Vec<Diagnostic> {
        let mut errs = Vec::new();
        let mut err = |key: &str, msg: String| {
            errs.push(Diagnostic::new(file, diag::line_of_key(text, key), msg).with_key(key));
        };
        self.base_url = self.base_url.trim_end_matches('/').to_string();
        match url::Url::parse(&self.base_url) {
            Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {}
            _ => err(
                "base_url",
                format!("`base_url` must be an http(s) URL, got {:?}", self.base_url),
            ),
        }
        if let Some(api) = &self.api_url {
            match url::Url::parse(api) {
                Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {}
                _ => err(
                    "api_url",
                    format!("`api_url` must be an http(s) URL, got {api:?}"),
                ),
            }
        }
        if self.languages.is_empty() {
            err(
                "languages",
                "`languages` must list at least one language".into(),
            );
        }
        for l in &self.languages {
            if !is_lang_code(l) {
                err(
                    "languages",
                    format!("{l:?} is not a language code like \"fr\" or \"pt-br\""),
                );
            }
        }
        match self.captcha.provider.as_str() {
            "hcaptcha" if self.captcha.sitekey.is_empty() => err(
                "sitekey",
                "`captcha.sitekey` is required with provider \"hcaptcha\"".into(),
            ),
            "hcaptcha" | "dev" => {}
            other => err(
                "provider",
                format!("captcha provider {other:?} is unknown; use \"hcaptcha\" or \"dev\""),
            ),
        }
        for o in &self.extra_origins {
            if url::Url::parse(o).is_err() {
                err(
                    "extra_origins",
                    format!("{o:?} is not an origin like https://example.org"),
                );
            }
        }
        if let Some(r) = &self.age_recipient {
            if !r.starts_with("age1") {
                err(
                    "age_recipient",
                    "`age_recipient` must be an age public key (age1...)".into(),
                );
            }
        }
        if let Some(k) = &self.log_public_key {
            if cahier_tlog::checkpoint::parse_public_key(k).is_err() {
                err(
                    "log_public_key",
                    "`log_public_key` must be an Ed25519 public key in base64 (cahier log keygen)"
                        .into(),
                );
            }
        }
        if let Localized::PerLanguage(m) = &self.description {
            for l in m.keys().filter(|l| !self.languages.contains(l)) {
                err(
                    "description",
                    format!("`description` has a text for {l:?}, which is not in `languages`"),
                );
            }
        }
        if self.title.trim().is_empty() {
            err("title", "`title` must not be empty".into());
        }
        if let Some(b) = &self.budgets {
            if let Err(e) = b.validate() {
                err("budgets", format!("{e}"));
            }
        }
        if let Some(m) = &self.milestones {
            if m.at.iter().any(|p| *p == 0 || *p > 1000) {
                err(
                    "at",
                    format!(
                        "`milestones.at` holds percentages of the goal from 1 to 1000, got {:?}",
                        m.at
                    ),
                );
            }
            if m.trending_per_hour == Some(0) {
                err(
                    "trending_per_hour",
                    "`milestones.trending_per_hour` must be at least 1 (leave it out for no alert)"
                        .into(),
                );
            }
            if m.mail && !self.organization.email.contains('@') {
                err(
                    "milestones",
                    "`[milestones]` mails `organization.email`, which is not set: set it, or `mail = false` to use only the webhook (CAHIER_MILESTONE_WEBHOOK)".into(),
                );
            }
        }
        if let Some(f) = &self.favicon {
            if favicon_mime(f).is_none() {
                err(
                    "favicon",
                    format!("`favicon` must be an .svg, .png or .ico file, got {f:?}"),
                );
            } else if f.starts_with('/') || f.split(['/', '\\']).any(|s| s == "..") {
                err(
                    "favicon",
                    format!(
                        "`favicon` is a path inside the site, like \"static/icon.png\", got {f:?}"
                    ),
                );
            }
        }
        errs
    }
}

/// The media type of an icon, by its extension; `None` for a kind browsers do not all show.
pub fn favicon_mime(path: &str) -> Option<&'static str> {
    let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        _ => return None,
    })
}

pub fn is_lang_code(l: &str) -> bool {
    let mut parts = l.split('-');
    let first = parts.next().unwrap_or("");
    (2..=3).contains(&first.len())
        && first.chars().all(|c| c.is_ascii_lowercase())
        && parts
            .all(|p| !p.is_empty() && p.len() <= 8 && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// `scheme://host[:port]` of a URL, or the string itself when it does not parse.
pub fn origin_of(u: &str) -> String {
    url::Url::parse(u)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|_| u.trim_end_matches('/').to_string())
}

/// Parses configuration text; errors are located diagnostics.
pub fn parse(file: &Path, text: &str) -> Result<Config, Vec<Diagnostic>> {
    let mut cfg: Config =
        toml::from_str(text).map_err(|e| vec![diag::from_toml(file, text, 1, &e)])?;
    let errs = cfg.validate(file, text);
    if errs.is_empty() {
        Ok(cfg)
    } else {
        Err(errs)
    }
}

/// Loads and validates `<root>/cahier.toml`.
pub fn load(root: &Path) -> anyhow::Result<Config> {
    let path = root.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("while reading {}", path.display()))?;
    let cfg =
        parse(Path::new(CONFIG_FILE), &text).map_err(|d| anyhow::Error::new(Diagnostics(d)))?;
    if let Some(f) = &cfg.favicon {
        if !root.join(f).is_file() {
            let d = Diagnostic::new(
                CONFIG_FILE,
                diag::line_of_key(&text, "favicon"),
                format!("`favicon` {f:?} not found (the path is from the site root)"),
            )
            .with_key("favicon");
            return Err(Diagnostics(vec![d]).into());
        }
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_config_gets_defaults() {
        let c = parse(
            Path::new("cahier.toml"),
            "base_url = \"https://x.org/\"\ntitle = \"X\"\n[captcha]\nsitekey = \"k\"\n",
        )
        .unwrap();
        assert_eq!(c.languages, ["fr"]);
        assert_eq!(c.api_url(), "https://x.org/api");
        assert_eq!(c.origins(), ["https://x.org"]);
    }

    #[test]
    fn description_per_language() {
        let with = |description: &str| {
            parse(
                Path::new("cahier.toml"),
                &format!(
                    "base_url = \"https://x.org\"\ntitle = \"X\"\nlanguages = [\"fr\", \"en\"]\n\
                     description = {description}\n[captcha]\nsitekey = \"k\"\n"
                ),
            )
        };
        let c = with(r#"{ fr = "Bonjour", en = "Hello" }"#).unwrap();
        assert_eq!(c.description.get("en", "fr"), "Hello");
        assert_eq!(c.description.get("fr", "fr"), "Bonjour");
        let c = with(r#"{ fr = "Bonjour" }"#).unwrap();
        assert_eq!(c.description.get("en", "fr"), "Bonjour");
        let c = with(r#""Un""#).unwrap();
        assert_eq!(c.description.get("en", "fr"), "Un");
        let e = with(r#"{ de = "Hallo" }"#).unwrap_err();
        assert_eq!(e[0].key.as_deref(), Some("description"));
        assert_eq!(e[0].line, Some(4));
        assert!(e[0].message.contains("\"de\""), "{:?}", e[0]);
        let e = with("3").unwrap_err();
        assert!(
            e[0].message.contains("table of strings by language"),
            "{:?}",
            e[0]
        );
    }

    #[test]
    fn unknown_key_is_located() {
        let e = parse(
            Path::new("cahier.toml"),
            "base_url = \"https://x.org\"\ntitle = \"X\"\ncolour = 1\n",
        )
        .unwrap_err();
        assert_eq!(e[0].line, Some(3));
        assert_eq!(e[0].key.as_deref(), Some("colour"));
    }

    #[test]
    fn milestones_need_a_channel_and_sane_numbers() {
        let base = "base_url = \"https://x.org\"\ntitle = \"X\"\n[captcha]\nsitekey = \"k\"\n";
        let with = |extra: &str| parse(Path::new("cahier.toml"), &format!("{base}{extra}"));
        assert!(with("").unwrap().milestones.is_none(), "off by default");
        let c = with("[organization]\nemail = \"team@x.org\"\n[milestones]\n").unwrap();
        let policy = c.milestones.as_ref().unwrap().policy(true);
        assert_eq!(policy.at, [25, 50, 100]);
        assert!(policy.mail && policy.trending_per_hour.is_none());
        let c = with("[milestones]\nmail = false\nat = [100, 10, 100]\ntrending_per_hour = 500\n")
            .unwrap();
        let policy = c.milestones.as_ref().unwrap().policy(false);
        assert_eq!(policy.at, [10, 100], "sorted, once each");
        assert_eq!(policy.trending_per_hour, Some(500));
        let e = with("[milestones]\n").unwrap_err();
        assert!(e[0].message.contains("organization.email"), "{:?}", e[0]);
        let e = with("[milestones]\nmail = false\nat = [0, 50]\n").unwrap_err();
        assert!(e[0].message.contains("1 to 1000"), "{:?}", e[0]);
        let e = with("[milestones]\nmail = false\ntrending_per_hour = 0\n").unwrap_err();
        assert_eq!(e[0].key.as_deref(), Some("trending_per_hour"));
        let e = with("[milestones]\nmail = false\nwebhook = \"https://h.example\"\n").unwrap_err();
        assert_eq!(
            e[0].key.as_deref(),
            Some("webhook"),
            "a secret, not a setting"
        );
    }

    #[test]
    fn deploy_target_decides_signed_posts() {
        let base = "base_url = \"https://x.org\"\ntitle = \"X\"\n[captcha]\nsitekey = \"k\"\n";
        let with = |deploy: &str| parse(Path::new("cahier.toml"), &format!("{base}{deploy}"));
        assert!(!with("").unwrap().signed_posts());
        assert!(!with("[deploy]\ntarget = \"static\"\n")
            .unwrap()
            .signed_posts());
        assert!(with("[deploy]\ntarget = \"aws\"\n").unwrap().signed_posts());
        assert!(with("[deploy]\ntarget = \"aws\"\napi_auth = \"AWS_IAM\"\n")
            .unwrap()
            .signed_posts());
        assert!(!with("[deploy]\ntarget = \"aws\"\napi_auth = \"NONE\"\n")
            .unwrap()
            .signed_posts());
        assert!(with("[deploy]\ntarget = \"gcp\"\n").is_err());
        assert!(with("[deploy]\napi_auth = \"iam\"\n").is_err());
    }

    #[test]
    fn kill_switch_and_budgets() {
        let base = "base_url = \"https://x.org\"\ntitle = \"X\"\n[captcha]\nsitekey = \"k\"\n";
        let c = parse(Path::new("cahier.toml"), base).unwrap();
        assert_eq!(c.signing, Signing::Open);
        assert!(c.budgets.is_none());
        let text = format!(
            "signing = \"paused\"\n{base}[budgets]\nper_address = [{{ limit = 2, window_secs = 60 }}]\n"
        );
        let c = parse(Path::new("cahier.toml"), &text).unwrap();
        assert_eq!(c.signing, Signing::Paused);
        assert_eq!(c.budgets.unwrap().per_address[0].limit, 2);
        let bad = format!("{base}[budgets]\nper_network = [{{ limit = 0, window_secs = 60 }}]\n");
        let e = parse(Path::new("cahier.toml"), &bad).unwrap_err();
        assert!(e[0].message.contains("per_network"), "{:?}", e[0]);
        assert!(parse(
            Path::new("cahier.toml"),
            &format!("signing = \"off\"\n{base}")
        )
        .is_err());
    }
}
