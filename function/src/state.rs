//! Everything a request needs, built once at start: the manifest (reloadable by `cahier serve`),
//! the store, mailer and captcha, the keys, the rate limiter and the budget policy.

use crate::budgets::BudgetPolicy;
use crate::captcha::Captcha;
use crate::client_ip::TrustedProxies;
use crate::crypto::{Hasher, Sealer};
use crate::heuristics::{DisposableDomains, NameBurst};
use crate::mailer::Mailer;
use crate::manifest::Manifest;
use crate::ratelimit::{RateLimiter, RateLimits};
use crate::secrets::Secrets;
use crate::store::Store;
use crate::token::TokenKey;
use anyhow::Context;
use std::sync::{Arc, RwLock};

/// Operational settings (not secrets, not the manifest).
#[derive(Debug, Clone)]
pub struct Options {
    pub rate_limits: RateLimits,
    pub trusted_proxies: TrustedProxies,
    /// Durable budgets when the manifest carries none (`[budgets]` of `cahier.toml` wins).
    pub budgets: BudgetPolicy,
    /// Networks (CIDR) that get the allow-list multiplier, besides the manifest's.
    pub allowed_networks: Vec<ipnet::IpNet>,
    /// Kill switch from the environment (`CAHIER_SIGNING=paused`): sign answers 503.
    pub signing_paused: bool,
    /// The organizer's disposable-domain list; `None`: the bundled one.
    pub disposable_domains: Option<std::path::PathBuf>,
    /// Origins accepted besides the manifest's (e.g. the dev server's own origin).
    pub extra_origins: Vec<String>,
    /// E-mail domains whose signatures are silently dropped (in-memory block list).
    pub blocked_domains: Vec<String>,
    /// Lifetime of an unconfirmed signature.
    pub pending_ttl_secs: i64,
    /// When to believe the CDN's viewer address ([`crate::edge`]).
    pub edge: crate::edge::EdgeAuth,
    /// How long an instance keeps a petition's count in memory ([`crate::count_cache`]).
    pub count_cache: std::time::Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            rate_limits: RateLimits::default(),
            trusted_proxies: TrustedProxies::default(),
            budgets: BudgetPolicy::default(),
            allowed_networks: Vec::new(),
            signing_paused: false,
            disposable_domains: None,
            extra_origins: Vec::new(),
            blocked_domains: Vec::new(),
            pending_ttl_secs: crate::token::CONFIRM_TTL_SECS,
            edge: crate::edge::EdgeAuth::None,
            count_cache: std::time::Duration::ZERO,
        }
    }
}

/// What [`AppState::new`] is built from.
pub struct AppParts {
    pub manifest: Manifest,
    pub store: Arc<dyn Store>,
    pub mailer: Arc<dyn Mailer>,
    pub captcha: Arc<dyn Captcha>,
    pub secrets: Secrets,
    pub options: Options,
}

/// The manifest and what derives from it, swapped as a whole on reload.
#[derive(Debug)]
pub struct Loaded {
    pub manifest: Manifest,
    pub sealer: Sealer,
    /// Normalised allowed origins (`scheme://host[:port]`, lower-case).
    pub origins: Vec<String>,
    /// The effective budgets: the manifest's or the options', with the manifest's
    /// `allowed_domains` as large providers and the options' allowed networks added.
    pub budgets: BudgetPolicy,
    /// `signing = "paused"` in the manifest.
    pub paused: bool,
    /// The manifest's mails, compiled.
    pub mails: crate::mail_templates::MailTemplates,
}

pub(crate) struct Inner {
    pub loaded: RwLock<Arc<Loaded>>,
    pub store: Arc<dyn Store>,
    pub mailer: Arc<dyn Mailer>,
    pub captcha: Arc<dyn Captcha>,
    pub secrets: Secrets,
    pub options: Options,
    pub tokens: TokenKey,
    /// Checks the unsubscribe links of updates ([`crate::unsubscribe`]).
    pub unsubscribe: TokenKey,
    pub hasher: Hasher,
    /// Seals the mails queued behind a network budget ([`crate::deferred`]).
    pub letters: crate::deferred::LetterSeal,
    pub limiter: RateLimiter,
    pub disposable: DisposableDomains,
    pub name_burst: NameBurst,
    pub counts: crate::count_cache::CountCache,
    pub open_data: crate::open_data::ListingCache,
    pub signer_seal: crate::signers::ListingSeal,
    pub signer_pages: crate::signers::PageCache,
    pub regions: crate::geography::RegionCache,
    pub milestones: crate::milestones::MilestoneMemo,
    #[cfg(feature = "dev")]
    pub dev_tokens: std::sync::OnceLock<Arc<crate::captcha::dev::DevTokens>>,
}

/// Cheap to clone; shared by every request.
#[derive(Clone)]
pub struct AppState(pub(crate) Arc<Inner>);

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("options", &self.0.options)
            .finish()
    }
}

/// `https://Example.org/` → `https://example.org`.
pub fn normalize_origin(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

fn load(manifest: Manifest, secrets: &Secrets, options: &Options) -> anyhow::Result<Loaded> {
    let recipient = manifest
        .site
        .age_recipient
        .clone()
        .or_else(|| secrets.age_recipient.clone())
        .context(
            "no age recipient: set site.age_recipient in the manifest or CAHIER_AGE_RECIPIENT",
        )?;
    let sealer = Sealer::new(&recipient)?;
    let mut origins: Vec<String> = manifest
        .site
        .origins
        .iter()
        .chain(options.extra_origins.iter())
        .map(|o| normalize_origin(o))
        .collect();
    if let Some(base) = origin_of(&manifest.site.base_url) {
        origins.push(base);
    }
    origins.sort();
    origins.dedup();
    #[cfg(not(feature = "dev"))]
    anyhow::ensure!(
        manifest.site.captcha_provider != "dev",
        "the manifest asks for the development captcha, which this build (without the `dev` feature) refuses"
    );
    let mut budgets = manifest
        .site
        .budgets
        .clone()
        .unwrap_or_else(|| options.budgets.clone());
    for d in &manifest.site.allowed_domains {
        let d = d.to_ascii_lowercase();
        if !budgets.large_providers.contains(&d) {
            budgets.large_providers.push(d);
        }
    }
    budgets
        .allowed_networks
        .extend(options.allowed_networks.iter().copied());
    budgets
        .validate()
        .context("while reading the budgets of the manifest")?;
    let paused = manifest.site.signing.as_deref() == Some("paused");
    let bundle = match &manifest.mails {
        Some(b) => std::borrow::Cow::Borrowed(b),
        None => std::borrow::Cow::Owned(crate::mail_templates::MailBundle::default_theme()),
    };
    let mails =
        crate::mail_templates::MailTemplates::compile(&bundle, &manifest.site.default_language)
            .context("while reading the mails of the manifest")?;
    Ok(Loaded {
        manifest,
        sealer,
        origins,
        budgets,
        paused,
        mails,
    })
}

/// The origin (`scheme://host[:port]`) of a URL.
pub fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    (!authority.is_empty()).then(|| normalize_origin(&format!("{scheme}://{authority}")))
}

impl AppState {
    pub fn new(parts: AppParts) -> anyhow::Result<AppState> {
        let loaded = load(parts.manifest, &parts.secrets, &parts.options)?;
        let tokens = TokenKey::new(&parts.secrets.token_key)?;
        let hasher = Hasher::new(&parts.secrets.pepper)?;
        let disposable = DisposableDomains::load(parts.options.disposable_domains.as_deref())?;
        Ok(AppState(Arc::new(Inner {
            loaded: RwLock::new(Arc::new(loaded)),
            store: parts.store,
            mailer: parts.mailer,
            captcha: parts.captcha,
            letters: crate::deferred::LetterSeal::new(&parts.secrets.token_key),
            tokens,
            unsubscribe: crate::unsubscribe::token_key(&parts.secrets.pepper),
            hasher,
            limiter: RateLimiter::new(parts.options.rate_limits),
            disposable,
            name_burst: NameBurst::default(),
            counts: crate::count_cache::CountCache::new(parts.options.count_cache),
            open_data: Default::default(),
            signer_seal: crate::signers::ListingSeal::new(&parts.secrets.token_key),
            signer_pages: Default::default(),
            regions: Default::default(),
            milestones: Default::default(),
            secrets: parts.secrets,
            options: parts.options,
            #[cfg(feature = "dev")]
            dev_tokens: std::sync::OnceLock::new(),
        })))
    }

    /// Mounts the development captcha routes, verifying against `tokens` (dev builds only).
    #[cfg(feature = "dev")]
    pub fn with_dev_tokens(self, tokens: Arc<crate::captcha::dev::DevTokens>) -> AppState {
        let _ = self.0.dev_tokens.set(tokens);
        self
    }

    #[cfg(feature = "dev")]
    pub fn dev_tokens(&self) -> Option<Arc<crate::captcha::dev::DevTokens>> {
        self.0.dev_tokens.get().cloned()
    }

    /// The current manifest and what derives from it.
    pub fn loaded(&self) -> Arc<Loaded> {
        self.0
            .loaded
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn manifest(&self) -> Manifest {
        self.loaded().manifest.clone()
    }

    /// Swaps in a new manifest (after a rebuild in `cahier serve`).
    pub fn set_manifest(&self, manifest: Manifest) -> anyhow::Result<()> {
        let loaded = load(manifest, &self.0.secrets, &self.0.options)?;
        *self.0.loaded.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(loaded);
        Ok(())
    }

    /// The kill switch: the environment's or the manifest's `signing = "paused"`.
    pub fn signing_paused(&self) -> bool {
        self.0.options.signing_paused || self.loaded().paused
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.0.store
    }

    pub fn options(&self) -> &Options {
        &self.0.options
    }

    pub fn token_key(&self) -> &TokenKey {
        &self.0.tokens
    }

    pub fn hasher(&self) -> &Hasher {
        &self.0.hasher
    }

    pub fn unsubscribe_key(&self) -> &TokenKey {
        &self.0.unsubscribe
    }
}

/// Builds the captcha verifier the manifest asks for.
///
/// `hcaptcha`: the crate's client at `verify_url` (hCaptcha's own endpoint when `None`), with the
/// secret from [`Secrets`]. `dev` (dev builds only): the same client pointed at
/// `<self_url>/api/__dev/siteverify`, plus the token issuer to pass to
/// [`AppState::with_dev_tokens`].
pub fn build_captcha(
    manifest: &Manifest,
    secrets: &Secrets,
    verify_url: Option<&str>,
    self_url: &str,
) -> anyhow::Result<(Arc<dyn Captcha>, Option<DevTokensHandle>)> {
    crate::captcha::public_site::refuse_open_captcha(manifest, secrets, verify_url)?;
    let mut hostnames: Vec<String> = manifest
        .site
        .origins
        .iter()
        .chain(std::iter::once(&manifest.site.base_url))
        .filter_map(|o| crate::captcha::host_of(o))
        .collect();
    hostnames.sort();
    hostnames.dedup();
    #[cfg(not(feature = "dev"))]
    let _ = self_url;
    match manifest.site.captcha_provider.as_str() {
        "hcaptcha" => {
            let secret = secrets
                .hcaptcha_secret
                .as_deref()
                .context("HCAPTCHA_SECRET is not set (environment or secrets file)")?;
            let c = crate::captcha::hcaptcha::HCaptcha::new(
                verify_url,
                secret,
                &manifest.site.captcha_sitekey,
                hostnames,
            )?;
            Ok((Arc::new(c), None))
        }
        #[cfg(feature = "dev")]
        "dev" => {
            use crate::captcha::dev::{DevTokens, DEV_SITEKEY};
            let secret = secrets
                .hcaptcha_secret
                .clone()
                .unwrap_or_else(|| "0x0000000000000000000000000000000000000000".to_string());
            let tokens = DevTokens::new(&secret);
            if let Some(h) = crate::captcha::host_of(self_url) {
                hostnames.push(h);
            }
            hostnames.extend(["localhost".to_string(), "127.0.0.1".to_string()]);
            let sitekey = &manifest.site.captcha_sitekey;
            // The crate only accepts UUID sitekeys; other dev sitekeys skip the sitekey check.
            let sitekey = if sitekey.len() == 36 && sitekey.matches('-').count() == 4 { sitekey.as_str() } else { "" };
            let _ = DEV_SITEKEY;
            let url = format!("{}/api/__dev/siteverify", self_url.trim_end_matches('/'));
            let c = crate::captcha::hcaptcha::HCaptcha::new(
                verify_url.or(Some(url.as_str())),
                &secret,
                sitekey,
                hostnames,
            )?;
            Ok((Arc::new(c), Some(tokens)))
        }
        #[cfg(not(feature = "dev"))]
        "dev" => anyhow::bail!(
            "the manifest asks for the development captcha, which this build (without the `dev` feature) refuses"
        ),
        other => anyhow::bail!("unknown captcha provider {other:?} in the manifest (hcaptcha or dev)"),
    }
}

#[cfg(feature = "dev")]
pub type DevTokensHandle = Arc<crate::captcha::dev::DevTokens>;
/// No development captcha in this build.
#[cfg(not(feature = "dev"))]
pub type DevTokensHandle = std::convert::Infallible;
