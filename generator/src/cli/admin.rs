//! `cahier admin`: opens the store named by `--store` / `CAHIER_STORE` (the same strings as
//! everywhere) as an [`AdminStore`], reads the pepper from the environment or the secrets file,
//! and hands over to [`cahier::admin`].

use anyhow::Context;
use cahier::admin::{AdminArgs, AdminKeys};
use cahier_function::crypto::Hasher;
use cahier_function::store::admin::AdminStore;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

pub type Args = AdminArgs;

pub fn run(root: &Path, args: Args) -> anyhow::Result<ExitCode> {
    let url = args.store.clone().unwrap_or_else(|| {
        format!(
            "sqlite:{}",
            root.join(".cahier/signatures.sqlite3").display()
        )
    });
    let pepper = pepper()?;
    let hasher = Hasher::new(&pepper)?;
    let keys = keys(hasher);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("while starting the async runtime")?;
    runtime.block_on(async move {
        let store = open(&url).await?;
        cahier::admin::run(args, store, keys).await
    })
}

/// `sqlite:PATH` or `dynamodb:TABLE[?endpoint=..&region=..]`, as `cahier_function::store::open`.
async fn open(url: &str) -> anyhow::Result<Arc<dyn AdminStore>> {
    let (scheme, rest) = url.split_once(':').with_context(|| {
        format!("invalid store setting {url:?}: expected sqlite:PATH or dynamodb:TABLE")
    })?;
    let store: Arc<dyn AdminStore> = match scheme {
        "sqlite" => {
            anyhow::ensure!(
                !rest.is_empty(),
                "invalid store setting {url:?}: sqlite:PATH needs a path"
            );
            let path = Path::new(rest);
            anyhow::ensure!(
                path.exists(),
                "no signature database at {} (store {url:?})",
                path.display()
            );
            Arc::new(cahier_function::store::sqlite::SqliteStore::open(path)?)
        }
        "dynamodb" => Arc::new(cahier_function::store::dynamo::DynamoStore::from_url(rest).await?),
        other => anyhow::bail!(
            "unknown store {other:?} in {url:?}: expected sqlite:PATH or dynamodb:TABLE"
        ),
    };
    Ok(store)
}

/// The pepper: `CAHIER_PEPPER`, else `cahier_pepper` of the `CAHIER_SECRETS_FILE` TOML. The
/// admin needs no other secret (the age identity is given per command).
fn pepper() -> anyhow::Result<Vec<u8>> {
    let value = match std::env::var("CAHIER_PEPPER")
        .ok()
        .filter(|v| !v.is_empty())
    {
        Some(v) => v,
        None => {
            let file = std::env::var_os("CAHIER_SECRETS_FILE").context(
                "CAHIER_PEPPER is not set (environment, or cahier_pepper in CAHIER_SECRETS_FILE): \
                 prefixes and e-mails are stored as keyed hashes",
            )?;
            let path = Path::new(&file);
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("while reading the secrets file {}", path.display()))?;
            let table: toml::Table = toml::from_str(&text)
                .with_context(|| format!("while parsing the secrets file {}", path.display()))?;
            table
                .get("cahier_pepper")
                .and_then(|v| v.as_str())
                .with_context(|| format!("no cahier_pepper in {}", path.display()))?
                .to_string()
        }
    };
    cahier_function::secrets::decode_key(&value).context("while decoding CAHIER_PEPPER")
}

/// The sign path's keyed functions, so the organizer's inputs hash as the stored records.
fn keys(hasher: Hasher) -> AdminKeys {
    let h1 = hasher.clone();
    AdminKeys {
        canonical_email: Box::new(|e| {
            cahier_function::email::canonicalize(e)
                .map(|c| c.canonical)
                .map_err(|reason| anyhow::anyhow!("{e:?}: {reason}"))
        }),
        email_hash: Box::new(move |canonical| h1.email(canonical)),
        prefix_hash: Box::new(move |ip| hasher.prefix(ip)),
    }
}
