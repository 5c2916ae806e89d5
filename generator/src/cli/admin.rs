//! `cahier admin`: opens the store named by `--store` / `CAHIER_STORE` (the same strings as
//! everywhere) as an [`AdminStore`], reads the pepper (environment, secrets file, or the
//! development secrets of `cahier serve`: [`cahier::admin::pepper`]) and hands over to
//! [`cahier::admin`].

use anyhow::Context;
use cahier::admin::{AdminArgs, AdminKeys};
use cahier_function::crypto::Hasher;
use cahier_function::store::admin::AdminStore;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

pub type Args = AdminArgs;

pub fn run(root: &Path, mut args: Args) -> anyhow::Result<ExitCode> {
    args.root = root.to_path_buf();
    let url = args.store.clone().unwrap_or_else(|| {
        format!(
            "sqlite:{}",
            root.join(".cahier/signatures.sqlite3").display()
        )
    });
    let pepper = cahier::admin::pepper::find(&url, &|k| std::env::var(k).ok())?;
    let hasher = Hasher::new(&pepper)?;
    let mut keys = keys(hasher);
    keys.unsubscribe = Some(cahier_function::unsubscribe::token_key(&pepper));
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
        unsubscribe: None,
    }
}
