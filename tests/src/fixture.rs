//! Petition manifests and secrets for the function's tests.

use cahier_function::manifest::{Field, FieldKind, Manifest, Petition, SiteInfo, MANIFEST_VERSION};
use cahier_function::secrets::Secrets;
use std::collections::BTreeMap;

/// The open test petition.
pub const SLUG: &str = "climat";
/// A petition that closed in 2001.
pub const CLOSED: &str = "ancienne";
/// A protected domain of the fixture.
pub const PROTECTED: &str = "assemblee-nationale.fr";

fn petition(slug: &str, closes_at: Option<i64>) -> Petition {
    Petition {
        slug: slug.to_string(),
        languages: vec!["fr".into(), "en".into()],
        titles: BTreeMap::from([
            ("fr".to_string(), "Pour le climat".to_string()),
            ("en".to_string(), "For the climate".to_string()),
        ]),
        opens_at: None,
        closes_at,
        goal: 1000,
        fields: vec![
            Field {
                name: "postcode".into(),
                kind: FieldKind::Postcode,
                required: false,
                max_len: 10,
            },
            Field {
                name: "comment".into(),
                kind: FieldKind::Textarea,
                required: false,
                max_len: 500,
            },
        ],
        public_signers: true,
        public_city: false,
        newsletter: true,
        text_sha256: BTreeMap::from([("fr".to_string(), "00".repeat(32))]),
        consent_sha256: BTreeMap::from([("fr".to_string(), "11".repeat(32))]),
        geography_threshold: None,
    }
}

/// The functional tests sign many people from one loopback address: per-address and
/// per-network budgets high enough not to hold them. The anti-fraud tests use the defaults
/// (`site.budgets = None`) or their own.
pub fn functional_budgets() -> cahier_function::budgets::BudgetPolicy {
    use cahier_function::budgets::{BudgetPolicy, Rate};
    BudgetPolicy {
        per_address: vec![Rate::new(10_000, 60)],
        per_network: vec![Rate::new(10_000, 60)],
        ..BudgetPolicy::default()
    }
}

/// A manifest whose site (and allowed origin) is `base_url`, with the dev captcha.
pub fn manifest(base_url: &str, age_recipient: &str) -> Manifest {
    Manifest {
        version: MANIFEST_VERSION,
        site: SiteInfo {
            base_url: base_url.trim_end_matches('/').to_string(),
            api_url: format!("{}/api", base_url.trim_end_matches('/')),
            origins: vec![
                base_url.trim_end_matches('/').to_string(),
                "https://embed.example".to_string(),
            ],
            default_language: "fr".into(),
            languages: vec!["fr".into(), "en".into()],
            organization: "Collectif Test".into(),
            contact_email: Some("contact@petitions.example".into()),
            captcha_provider: "dev".into(),
            captcha_sitekey: cahier_function::captcha::dev::DEV_SITEKEY.into(),
            protected_domains: vec![PROTECTED.into(), "senat.fr".into()],
            allowed_domains: vec!["gmail.com".into()],
            retention_days: 365,
            age_recipient: Some(age_recipient.to_string()),
            signing: None,
            budgets: Some(functional_budgets()),
            log_public_key: None,
            milestones: None,
        },
        petitions: vec![petition(SLUG, None), petition(CLOSED, Some(1_000_000_000))],
        mails: None,
    }
}

/// Fresh secrets and the age identity string that opens sealed data.
pub fn secrets() -> (Secrets, String) {
    Secrets::generate()
}

/// Environment variables carrying `secrets` for the binary.
pub fn secrets_env(s: &Secrets) -> Vec<(String, String)> {
    let mut env = vec![
        ("CAHIER_TOKEN_KEY".to_string(), hex(&s.token_key)),
        ("CAHIER_PEPPER".to_string(), hex(&s.pepper)),
    ];
    if let Some(c) = &s.hcaptcha_secret {
        env.push(("HCAPTCHA_SECRET".to_string(), c.clone()));
    }
    env
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An in-process application for router tests: SQLite and outbox under `dir`, the dev captcha
/// verified in-process, site at `https://petitions.example`.
pub struct TestApp {
    pub state: cahier_function::AppState,
    pub tokens: std::sync::Arc<cahier_function::captcha::dev::DevTokens>,
    pub identity: String,
    pub outbox: std::path::PathBuf,
    pub db: std::path::PathBuf,
}

pub const SITE: &str = "https://petitions.example";

impl TestApp {
    pub fn new(dir: &std::path::Path, options: cahier_function::Options) -> TestApp {
        TestApp::with_secrets(dir, options, |_| {})
    }

    /// As [`TestApp::new`], with the generated secrets changed by `edit` first.
    pub fn with_secrets(
        dir: &std::path::Path,
        options: cahier_function::Options,
        edit: impl FnOnce(&mut cahier_function::secrets::Secrets),
    ) -> TestApp {
        use cahier_function::captcha::dev::{DevCaptcha, DevTokens};
        use std::sync::Arc;
        let (mut secrets, identity) = secrets();
        edit(&mut secrets);
        let recipient = secrets.age_recipient.clone().expect("generated recipient");
        let tokens = DevTokens::new(secrets.hcaptcha_secret.as_deref().unwrap_or("s"));
        let db = dir.join("signatures.sqlite3");
        let outbox = dir.join("outbox");
        let store =
            Arc::new(cahier_function::store::sqlite::SqliteStore::open(&db).expect("sqlite"));
        let mailer = Arc::new(
            cahier_function::mailer::outbox::OutboxMailer::new(
                &outbox,
                cahier_function::mailer::parse_from(None).unwrap(),
            )
            .expect("outbox"),
        );
        let state = cahier_function::AppState::new(cahier_function::AppParts {
            manifest: manifest(SITE, &recipient),
            store,
            mailer,
            captcha: Arc::new(DevCaptcha {
                tokens: tokens.clone(),
            }),
            secrets,
            options,
        })
        .expect("state")
        .with_dev_tokens(tokens.clone());
        TestApp {
            state,
            tokens,
            identity,
            outbox,
            db,
        }
    }

    /// A fresh single-use captcha token.
    pub fn captcha(&self) -> String {
        self.tokens
            .issue(
                cahier_function::captcha::dev::DEV_SITEKEY,
                "petitions.example",
            )
            .expect("token")
    }
}
