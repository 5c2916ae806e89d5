//! The petition manifest: what the generator promises the function about every petition.
//!
//! Written by `cahier build` to `public/api/manifest.json` and bundled into the Lambda package.
//! Times are Unix seconds so that "is this petition open?" is an integer comparison.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Bumped on any incompatible change; the function refuses a manifest of another version.
pub const MANIFEST_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub version: u32,
    pub site: SiteInfo,
    pub petitions: Vec<Petition>,
    /// The theme's mail templates and strings (`crate::mail_templates`); absent (older
    /// builds): the default theme's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mails: Option<crate::mail_templates::MailBundle>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SiteInfo {
    /// Public URL of the static site, without a trailing slash.
    pub base_url: String,
    /// Public URL of the API (often `<base_url>/api`), without a trailing slash.
    pub api_url: String,
    /// Origins allowed to post to the API (the site's own origin and any embedding origin).
    pub origins: Vec<String>,
    pub default_language: String,
    pub languages: Vec<String>,
    /// Name of the collective, used in e-mails.
    pub organization: String,
    /// The collective's contact address: the `Reply-To` of the mails to signers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_email: Option<String>,
    /// `hcaptcha` or `dev` (the development provider, refused under Lambda).
    pub captcha_provider: String,
    pub captcha_sitekey: String,
    /// Signatures from these e-mail domains (and their subdomains) are held for review.
    pub protected_domains: Vec<String>,
    /// Large mail providers / domains that get higher per-domain budgets.
    pub allowed_domains: Vec<String>,
    /// Days after which personal data is purged.
    pub retention_days: u32,
    /// The collective's age public key (`age1…`); personal data is encrypted to it.
    /// `None`: taken from the environment (`CAHIER_AGE_RECIPIENT`).
    pub age_recipient: Option<String>,
    /// `"paused"`: the kill switch, sign answers 503 while counts and pages stay up.
    /// Absent (older manifests) or `"open"`: signing works.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing: Option<String>,
    /// The site's `[budgets]`; absent: the function's defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budgets: Option<crate::budgets::BudgetPolicy>,
    /// The transparency log's Ed25519 public key (32 bytes, base64) that signs every
    /// petition's checkpoint (`docs/transparency-log.md`); absent: the site publishes no log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_public_key: Option<String>,
    /// The site's `[milestones]`: organizers told at 25/50/100 % and when trending; absent:
    /// never ([`crate::milestones`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub milestones: Option<crate::milestones::MilestonePolicy>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Petition {
    pub slug: String,
    pub languages: Vec<String>,
    /// Title per language, used in e-mails.
    pub titles: BTreeMap<String, String>,
    /// Unix seconds; `None` means open since publication / never closes.
    pub opens_at: Option<i64>,
    pub closes_at: Option<i64>,
    pub goal: u64,
    /// Form fields beyond `name` and `email`, which are always there.
    pub fields: Vec<Field>,
    /// Whether signers may opt in to have their name shown publicly.
    pub public_signers: bool,
    /// Whether the public list shows the town a signer gave (their `city` field) too.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub public_city: bool,
    /// Whether the form offers a newsletter opt-in.
    pub newsletter: bool,
    /// SHA-256 (hex) of the petition text signers saw, per language.
    pub text_sha256: BTreeMap<String, String>,
    /// SHA-256 (hex) of the consent wording, per language.
    pub consent_sha256: BTreeMap<String, String>,
    /// The petition publishes where its signatures come from ([`crate::geography`]), in groups
    /// of at least this many; `None`: it does not (turned off, no postcode or country field, or
    /// a manifest built before), and no region is derived at signing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geography_threshold: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Field {
    pub name: String,
    pub kind: FieldKind,
    pub required: bool,
    /// Maximum length in characters, enforced by the decoder.
    pub max_len: u32,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FieldKind {
    Text,
    Textarea,
    Postcode,
    Country,
    Checkbox,
}

impl Manifest {
    pub fn from_json(bytes: &[u8]) -> anyhow::Result<Self> {
        let manifest: Manifest = serde_json::from_slice(bytes)?;
        anyhow::ensure!(
            manifest.version == MANIFEST_VERSION,
            "petition manifest version {} is not supported (expected {MANIFEST_VERSION}); rebuild the site",
            manifest.version
        );
        Ok(manifest)
    }

    pub fn petition(&self, slug: &str) -> Option<&Petition> {
        self.petitions.iter().find(|p| p.slug == slug)
    }
}

impl Petition {
    /// Open at `now` (Unix seconds): after `opens_at` (inclusive) and before `closes_at` (exclusive).
    pub fn is_open(&self, now: i64) -> bool {
        self.opens_at.is_none_or(|t| now >= t) && self.closes_at.is_none_or(|t| now < t)
    }
}
