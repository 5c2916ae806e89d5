//! Secrets come from the environment or a TOML secrets file, never from the site's config and
//! never into `public/`. `cahier serve` creates a development secrets file on first run.

use anyhow::Context;
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::path::{Component, Path, PathBuf};

/// The function's secrets. `Debug` never prints them.
#[derive(Clone, Default)]
pub struct Secrets {
    pub token_key: Vec<u8>,
    pub pepper: Vec<u8>,
    /// hCaptcha account secret (also sent to the dev siteverify, which checks it).
    pub hcaptcha_secret: Option<String>,
    /// age recipient if not in the manifest.
    pub age_recipient: Option<String>,
    /// The origin secret CloudFront adds as a header (`CAHIER_EDGE_AUTH=origin-header`).
    pub origin_secret: Option<String>,
    /// The transparency log's Ed25519 signing seed (base64, `CAHIER_LOG_KEY`; `cahier log
    /// keygen` prints one). Only the sequencer task needs it.
    pub log_key: Option<String>,
    /// Where milestone notifications are posted (`CAHIER_MILESTONE_WEBHOOK`, [`crate::milestones`]):
    /// a secret, since an incoming-webhook URL is itself the key that lets one post.
    pub milestone_webhook: Option<String>,
}

/// The secrets a deployment may keep in AWS Secrets Manager: each variable `NAME` may instead
/// be given as `NAME_ARN`, resolved at cold start ([`crate::secrets_manager`]).
pub const SECRET_VARIABLES: [&str; 6] = [
    "CAHIER_TOKEN_KEY",
    "CAHIER_PEPPER",
    "HCAPTCHA_SECRET",
    "CAHIER_ORIGIN_SECRET",
    "CAHIER_LOG_KEY",
    "CAHIER_MILESTONE_WEBHOOK",
];

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(..)")
    }
}

/// The secrets file: the environment's names, lower-cased.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretsFile {
    cahier_token_key: Option<String>,
    cahier_pepper: Option<String>,
    hcaptcha_secret: Option<String>,
    cahier_age_recipient: Option<String>,
    cahier_origin_secret: Option<String>,
    cahier_log_key: Option<String>,
    cahier_milestone_webhook: Option<String>,
}

/// Hex or base64 (standard or URL-safe) to bytes.
pub fn decode_key(value: &str) -> anyhow::Result<Vec<u8>> {
    let v = value.trim();
    if v.len() % 2 == 0 && v.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(hex::decode(v)?);
    }
    base64::engine::general_purpose::STANDARD
        .decode(v)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(v))
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(v))
        .context("a key must be hex or base64")
}

impl Secrets {
    /// `CAHIER_SECRETS_FILE` first (if set), then the environment variables override it.
    pub fn from_env() -> anyhow::Result<Secrets> {
        let file = std::env::var_os("CAHIER_SECRETS_FILE").map(PathBuf::from);
        Secrets::load(file.as_deref(), &|k| std::env::var(k).ok())
    }

    /// Reads `file` (if any) and then `env` (a lookup, so tests need no process environment).
    pub fn load(
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Secrets> {
        let mut f = SecretsFile::default();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("while reading the secrets file {}", path.display()))?;
            f = toml::from_str(&text)
                .with_context(|| format!("while parsing the secrets file {}", path.display()))?;
        }
        let pick = |name: &str, from_file: Option<String>| {
            env(name).filter(|v| !v.is_empty()).or(from_file)
        };
        let token_key = pick("CAHIER_TOKEN_KEY", f.cahier_token_key)
            .context("CAHIER_TOKEN_KEY is not set (environment or secrets file)")?;
        let pepper = pick("CAHIER_PEPPER", f.cahier_pepper)
            .context("CAHIER_PEPPER is not set (environment or secrets file)")?;
        let secrets = Secrets {
            token_key: decode_key(&token_key).context("while decoding CAHIER_TOKEN_KEY")?,
            pepper: decode_key(&pepper).context("while decoding CAHIER_PEPPER")?,
            hcaptcha_secret: pick("HCAPTCHA_SECRET", f.hcaptcha_secret),
            age_recipient: pick("CAHIER_AGE_RECIPIENT", f.cahier_age_recipient),
            origin_secret: pick("CAHIER_ORIGIN_SECRET", f.cahier_origin_secret),
            log_key: pick("CAHIER_LOG_KEY", f.cahier_log_key),
            milestone_webhook: pick("CAHIER_MILESTONE_WEBHOOK", f.cahier_milestone_webhook),
        };
        if let Some(url) = &secrets.milestone_webhook {
            crate::milestones::check_webhook_url(url)
                .context("while reading CAHIER_MILESTONE_WEBHOOK")?;
        }
        anyhow::ensure!(
            secrets.token_key.len() >= 32,
            "CAHIER_TOKEN_KEY must be at least 32 bytes"
        );
        anyhow::ensure!(
            secrets.pepper.len() >= 32,
            "CAHIER_PEPPER must be at least 32 bytes"
        );
        Ok(secrets)
    }

    /// Random secrets and a fresh age identity (returned as its secret string), for development.
    pub fn generate() -> (Secrets, String) {
        use age::secrecy::ExposeSecret;
        use rand::RngCore;
        let mut rng = rand::thread_rng();
        let mut token_key = vec![0u8; 32];
        let mut pepper = vec![0u8; 32];
        let mut captcha = [0u8; 20];
        rng.fill_bytes(&mut token_key);
        rng.fill_bytes(&mut pepper);
        rng.fill_bytes(&mut captcha);
        let identity = age::x25519::Identity::generate();
        let secrets = Secrets {
            token_key,
            pepper,
            hcaptcha_secret: Some(format!("0x{}", hex::encode(captcha))),
            age_recipient: Some(identity.to_public().to_string()),
            origin_secret: None,
            log_key: Some(cahier_tlog::LogKey::generate().seed_base64()),
            milestone_webhook: None,
        };
        (secrets, identity.to_string().expose_secret().to_string())
    }
}

/// Paths written by [`ensure_dev_secrets`].
#[derive(Debug, Clone)]
pub struct DevSecretsPaths {
    /// `<dir>/secrets.toml` (token key, pepper, dev captcha secret, age recipient).
    pub secrets_file: PathBuf,
    /// `<dir>/age-identity.txt`: the development organizer key that opens the sealed data.
    pub age_identity: PathBuf,
}

/// Creates `<dir>/secrets.toml` and `<dir>/age-identity.txt` (mode 0600) if missing, and
/// returns their paths. Refuses any directory inside a `public` folder.
pub fn ensure_dev_secrets(dir: &Path) -> anyhow::Result<DevSecretsPaths> {
    anyhow::ensure!(
        !dir.components()
            .any(|c| matches!(c, Component::Normal(n) if n == "public")),
        "refusing to write secrets under a public/ folder: {}",
        dir.display()
    );
    std::fs::create_dir_all(dir).with_context(|| format!("while creating {}", dir.display()))?;
    let paths = DevSecretsPaths {
        secrets_file: dir.join("secrets.toml"),
        age_identity: dir.join("age-identity.txt"),
    };
    if paths.secrets_file.exists() {
        add_dev_log_key(&paths.secrets_file)?;
        return Ok(paths);
    }
    let (secrets, identity) = Secrets::generate();
    let file = SecretsFile {
        cahier_token_key: Some(hex::encode(&secrets.token_key)),
        cahier_pepper: Some(hex::encode(&secrets.pepper)),
        hcaptcha_secret: secrets.hcaptcha_secret.clone(),
        cahier_age_recipient: secrets.age_recipient.clone(),
        cahier_origin_secret: None,
        cahier_log_key: secrets.log_key.clone(),
        cahier_milestone_webhook: None,
    };
    let text = format!(
        "# Development secrets created by `cahier serve`. Never commit, never publish.\n{}",
        toml::to_string(&file)?
    );
    write_private(&paths.age_identity, &format!("{identity}\n"))?;
    write_private(&paths.secrets_file, &text)?;
    Ok(paths)
}

/// A development secrets file from before the transparency log gets a log key, once.
fn add_dev_log_key(path: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("while reading the secrets file {}", path.display()))?;
    let f: SecretsFile = toml::from_str(&text)
        .with_context(|| format!("while parsing the secrets file {}", path.display()))?;
    if f.cahier_log_key.is_some() {
        return Ok(());
    }
    let mut text = text;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&format!(
        "cahier_log_key = \"{}\"\n",
        cahier_tlog::LogKey::generate().seed_base64()
    ));
    write_private(path, &text)
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options
        .open(path)
        .with_context(|| format!("while creating {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("while writing {}", path.display()))?;
    f.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_secrets_are_created_once_and_load() {
        let dir = tempfile::tempdir().unwrap();
        let paths = ensure_dev_secrets(&dir.path().join(".cahier")).unwrap();
        let first = std::fs::read(&paths.secrets_file).unwrap();
        ensure_dev_secrets(&dir.path().join(".cahier")).unwrap();
        assert_eq!(first, std::fs::read(&paths.secrets_file).unwrap());
        let s = Secrets::load(Some(&paths.secrets_file), &|_| None).unwrap();
        assert_eq!(s.token_key.len(), 32);
        assert!(s.age_recipient.unwrap().starts_with("age1"));
        let id = std::fs::read_to_string(&paths.age_identity).unwrap();
        assert!(id.starts_with("AGE-SECRET-KEY-1"));
        assert!(ensure_dev_secrets(&dir.path().join("public/x")).is_err());
    }

    #[test]
    fn environment_overrides_and_missing_keys_are_named() {
        let key = "11".repeat(32);
        let env = |k: &str| match k {
            "CAHIER_TOKEN_KEY" | "CAHIER_PEPPER" => Some(key.clone()),
            _ => None,
        };
        let s = Secrets::load(None, &env).unwrap();
        assert_eq!(s.pepper, vec![0x11; 32]);
        let err = Secrets::load(None, &|_| None).unwrap_err().to_string();
        assert!(err.contains("CAHIER_TOKEN_KEY"), "{err}");
        let short = |_: &str| Some("00".to_string());
        assert!(Secrets::load(None, &short).is_err());
    }
}
