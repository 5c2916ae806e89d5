//! `cahier-function`: under AWS Lambda when `AWS_LAMBDA_RUNTIME_API` is set, otherwise a plain
//! HTTP server (`--listen 127.0.0.1:9000`) for self-hosting and tests.

use anyhow::Context;
use cahier_function::config::Config;
use cahier_function::edge::EdgeAuth;
use cahier_function::manifest::Manifest;
use cahier_function::secrets::{Secrets, SECRET_VARIABLES};
use cahier_function::state::{build_captcha, AppParts, AppState};
use cahier_function::{app, mailer, store};
use clap::Parser;

fn main() -> anyhow::Result<()> {
    cahier_function::runtime()
        .context("while starting the async runtime")?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // Under Lambda, one JSON object per event (CloudWatch Logs Insights reads the fields).
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        builder.json().init();
    } else {
        builder.init();
    }
    let config = Config::parse();
    let bytes = std::fs::read(&config.manifest).with_context(|| {
        format!(
            "while reading the petition manifest {}",
            config.manifest.display()
        )
    })?;
    let manifest = Manifest::from_json(&bytes).with_context(|| {
        format!(
            "while parsing the petition manifest {}",
            config.manifest.display()
        )
    })?;
    let lambda = std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
    let secrets = match &config.dev_secrets {
        Some(dir) if !lambda => {
            let paths = cahier_function::secrets::ensure_dev_secrets(dir)?;
            Secrets::load(Some(&paths.secrets_file), &|k| std::env::var(k).ok())?
        }
        _ => load_secrets(lambda).await?,
    };
    if lambda {
        anyhow::ensure!(
            manifest.site.captcha_provider != "dev",
            "the development captcha is refused under AWS Lambda"
        );
    }
    let self_url = format!("http://{}", config.listen);
    let (captcha, dev_tokens) = build_captcha(
        &manifest,
        &secrets,
        config.captcha_verify_url.as_deref(),
        &self_url,
    )?;
    let mut options = config.options()?;
    options.edge = EdgeAuth::from_mode(&config.edge_auth, secrets.origin_secret.as_deref())?;
    if lambda && matches!(options.edge, EdgeAuth::None) {
        tracing::warn!(
            "CAHIER_EDGE_AUTH is none under Lambda: behind CloudFront every signer would share \
             CloudFront's addresses (set iam or origin-header, as deploy/aws/template.yaml does)"
        );
    }
    let store = store::open(&config.store).await?;
    let log_task = match &config.log_dir {
        None => None,
        Some(_) if lambda => anyhow::bail!("--log-dir is for the standalone server, not Lambda"),
        Some(dir) => {
            anyhow::ensure!(
                store.records_log(),
                "--log-dir: the store {} records no transparency log",
                config.store
            );
            let seed = secrets.log_key.as_deref().context(
                "--log-dir needs the log signing key CAHIER_LOG_KEY (cahier log keygen)",
            )?;
            let key =
                cahier_tlog::LogKey::from_base64(seed).context("while reading CAHIER_LOG_KEY")?;
            if let Some(published) = &manifest.site.log_public_key {
                anyhow::ensure!(
                    *published == key.public_base64(),
                    "CAHIER_LOG_KEY is not the key of the manifest's site.log_public_key"
                );
            }
            let interval = std::time::Duration::try_from_secs_f64(config.log_interval.max(0.05))
                .map_err(|e| anyhow::anyhow!("--log-interval {}: {e}", config.log_interval))?;
            Some((
                cahier_function::log_task::LogTask::new(
                    store.clone(),
                    dir.clone(),
                    key,
                    &manifest.site.base_url,
                )
                .with_petitions(manifest.petitions.iter().map(|p| p.slug.clone())),
                interval,
            ))
        }
    };
    let mailer = mailer::open(&config.mailer).await?;
    let state = AppState::new(AppParts {
        manifest,
        store: store.clone(),
        mailer,
        captcha,
        secrets,
        options,
    })?;
    #[cfg(feature = "dev")]
    let state = match dev_tokens {
        Some(t) => state.with_dev_tokens(t),
        None => state,
    };
    #[cfg(not(feature = "dev"))]
    let _ = dev_tokens;
    let router = app(state);
    if lambda {
        return lambda_http::run(router)
            .await
            .map_err(|e| anyhow::anyhow!("Lambda runtime: {e}"));
    }
    if let Some((task, interval)) = log_task {
        tracing::info!(dir = %task.dir().display(), "transparency log: integrating every {interval:?}");
        task.spawn(interval, false);
    }
    // Hourly purge of expired unconfirmed signatures (DynamoDB's TTL does it by itself).
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            tick.tick().await;
            if let Err(e) = store.purge_expired(cahier_function::now()).await {
                tracing::warn!(error = %e, "purge of expired signatures failed");
            }
        }
    });
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("while listening on {}", config.listen))?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    cahier_function::http_server::serve(listener, router, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// The secrets: from Secrets Manager for each `NAME_ARN` that is set (the Lambda way: only
/// ARNs in the environment), else from the environment or `CAHIER_SECRETS_FILE`.
async fn load_secrets(lambda: bool) -> anyhow::Result<Secrets> {
    if lambda {
        for name in SECRET_VARIABLES {
            if std::env::var_os(name).is_some() {
                tracing::warn!(
                    "{name} is set in the Lambda environment: keep secrets in Secrets Manager \
                     and give {name}_ARN instead"
                );
            }
        }
    }
    #[cfg(feature = "secretsmanager")]
    return cahier_function::secrets_manager::load(&|k| std::env::var(k).ok())
        .await
        .context("while loading the secrets");
    #[cfg(not(feature = "secretsmanager"))]
    {
        if let Some(name) = SECRET_VARIABLES
            .iter()
            .find(|n| std::env::var_os(format!("{n}_ARN")).is_some())
        {
            anyhow::bail!("{name}_ARN is set but this build has no Secrets Manager support");
        }
        Secrets::from_env()
    }
}

/// Ctrl-C, or SIGTERM from systemd or `docker stop`: stop taking connections and let the
/// signatures in flight be written and mailed before exiting.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGTERM; only Ctrl-C stops gracefully");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
