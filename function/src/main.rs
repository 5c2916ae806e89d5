//! `cahier-function`: under AWS Lambda when `AWS_LAMBDA_RUNTIME_API` is set, otherwise a plain
//! HTTP server (`--listen 127.0.0.1:9000`) for self-hosting and tests.
//!
//! Under Lambda the one binary has two handlers, chosen by the function's `Handler` setting
//! (`_HANDLER`): `bootstrap` (the default) serves the HTTP API; [`SEQUENCER_HANDLER`] is the
//! scheduled sequencer of the transparency log, which writes into the site bucket;
//! [`MAIL_EVENTS_HANDLER`] takes SES's bounces and complaints from SNS into the suppression
//! list.

use anyhow::Context;
use cahier_function::config::Config;
use cahier_function::edge::EdgeAuth;
use cahier_function::manifest::Manifest;
use cahier_function::secrets::{Secrets, SECRET_VARIABLES};
use cahier_function::state::{build_captcha, AppParts, AppState};
use cahier_function::{app, mailer, store};
use clap::Parser;

/// The `Handler` of the scheduled sequencer function.
const SEQUENCER_HANDLER: &str = "sequencer";

/// The `Handler` of the function SNS invokes with SES's bounce and complaint notifications.
const MAIL_EVENTS_HANDLER: &str = "mail-events";

/// Seconds the sequencer handler keeps free before its invocation's deadline.
#[cfg(all(feature = "s3", feature = "secretsmanager"))]
const SEQUENCER_MARGIN: std::time::Duration = std::time::Duration::from_secs(5);

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
    if lambda && std::env::var("_HANDLER").as_deref() == Ok(SEQUENCER_HANDLER) {
        return run_sequencer(&config, &manifest).await;
    }
    if lambda && std::env::var("_HANDLER").as_deref() == Ok(MAIL_EVENTS_HANDLER) {
        return run_mail_events(&config).await;
    }
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
            let key = log_key(secrets.log_key.as_deref(), &manifest, "--log-dir")?;
            let interval = log_interval(&config)?;
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
        tracing::info!(dir = %task.target(), "transparency log: integrating every {interval:?}");
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

/// The log's signing key, which must be the one the site publishes.
fn log_key(
    seed: Option<&str>,
    manifest: &Manifest,
    what: &str,
) -> anyhow::Result<cahier_tlog::LogKey> {
    let seed = seed.with_context(|| {
        format!("{what} needs the log signing key CAHIER_LOG_KEY (cahier log keygen)")
    })?;
    let key = cahier_tlog::LogKey::from_base64(seed).context("while reading CAHIER_LOG_KEY")?;
    if let Some(published) = &manifest.site.log_public_key {
        anyhow::ensure!(
            *published == key.public_base64(),
            "CAHIER_LOG_KEY is not the key of the manifest's site.log_public_key"
        );
    }
    Ok(key)
}

fn log_interval(config: &Config) -> anyhow::Result<std::time::Duration> {
    std::time::Duration::try_from_secs_f64(config.log_interval.max(0.05))
        .map_err(|e| anyhow::anyhow!("--log-interval {}: {e}", config.log_interval))
}

/// The scheduled sequencer (`Handler: sequencer`, an EventBridge rule every minute): each
/// invocation integrates every petition's pending events into the site bucket
/// (`--log-bucket`), a pass every `--log-interval` for `--log-run-for` seconds, and answers
/// what it did. Of the secrets it reads only the log key (`CAHIER_LOG_KEY_ARN`): its role
/// may read no other, so it never holds the pepper or the token key. The template gives it a
/// reserved concurrency of 1; a second one at once would lose its checkpoint swap in the
/// table, not fork the log.
#[cfg(all(feature = "s3", feature = "secretsmanager"))]
async fn run_sequencer(config: &Config, manifest: &Manifest) -> anyhow::Result<()> {
    use cahier_function::log_task::{LogTarget, LogTask};
    use lambda_http::lambda_runtime::{service_fn, LambdaEvent};
    use std::sync::Arc;
    let rest = config.store.strip_prefix("dynamodb:").with_context(|| {
        format!(
            "the sequencer keeps its checkpoints in the DynamoDB store; --store is {}",
            config.store
        )
    })?;
    let dynamo = Arc::new(store::dynamo::DynamoStore::from_url(rest).await?);
    let bucket = config
        .log_bucket
        .as_deref()
        .context("the sequencer needs the site bucket (--log-bucket / CAHIER_LOG_BUCKET)")?;
    let bucket = cahier_function::log_bucket::Bucket::from_url(bucket, dynamo.clone()).await?;
    let env = |k: &str| std::env::var(k).ok();
    let mut resolved = cahier_function::secrets_manager::resolve_arns(&env).await?;
    // Only from Secrets Manager: a seed in the function's configuration would be readable by
    // whoever may read the configuration.
    anyhow::ensure!(
        env("CAHIER_LOG_KEY").is_none(),
        "CAHIER_LOG_KEY is set in the Lambda environment: keep the seed in Secrets Manager and \
         give CAHIER_LOG_KEY_ARN"
    );
    let seed = resolved.remove("CAHIER_LOG_KEY");
    let key = log_key(seed.as_deref(), manifest, "the sequencer")?;
    let interval = log_interval(config)?;
    let run_for = std::time::Duration::try_from_secs_f64(config.log_run_for.max(0.0))
        .map_err(|e| anyhow::anyhow!("--log-run-for {}: {e}", config.log_run_for))?;
    let store: Arc<dyn store::Store> = dynamo;
    let task = LogTask::into_target(
        store,
        LogTarget::Bucket(bucket),
        key,
        &manifest.site.base_url,
    )
    .with_petitions(manifest.petitions.iter().map(|p| p.slug.clone()));
    let task = Arc::new(tokio::sync::Mutex::new(task));
    tracing::info!("transparency log: sequencer ready");
    lambda_http::lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let task = task.clone();
        async move {
            let started = std::time::Instant::now();
            // The invocation's deadline, when the runtime gives one in the future (an emulator
            // may not): batches stop 5 s before it; passes also stop at --log-run-for.
            let left = event
                .context
                .deadline()
                .duration_since(std::time::SystemTime::now())
                .ok()
                .map(|d| d.saturating_sub(SEQUENCER_MARGIN));
            let until = started + left.map_or(run_for, |l| run_for.min(l));
            let mut task = task.lock().await;
            task.set_deadline(left.map(|l| started + l));
            let (mut passes, mut added, mut failed) = (0u64, 0u64, None);
            loop {
                // One petition's failure does not stop the others' passes; the invocation
                // still reports it (the function's Errors metric), once its time is up.
                match task.run_once().await {
                    Ok(pass) => added += pass.added,
                    Err(e) => {
                        tracing::error!(error = %format!("{e:#}"), "transparency log: integration failed");
                        failed = Some(format!("{e:#}"));
                    }
                }
                passes += 1;
                if std::time::Instant::now() + interval >= until {
                    break;
                }
                tokio::time::sleep(interval).await;
            }
            tracing::info!(passes, added, "transparency log: integrated");
            if let Some(e) = failed {
                return Err(lambda_http::Error::from(e));
            }
            Ok::<_, lambda_http::Error>(serde_json::json!({ "passes": passes, "added": added }))
        }
    }))
    .await
    .map_err(|e| anyhow::anyhow!("Lambda runtime: {e}"))
}

#[cfg(not(all(feature = "s3", feature = "secretsmanager")))]
async fn run_sequencer(_: &Config, _: &Manifest) -> anyhow::Result<()> {
    anyhow::bail!("this build has no S3 support: the sequencer handler needs the `s3` and `secretsmanager` features")
}

/// SES's bounces and complaints (`Handler: mail-events`, subscribed to the topic of the
/// configuration set's event destination): each SNS event's addresses go on the suppression
/// list under their keyed hash. Of the secrets it reads only the pepper (`CAHIER_PEPPER_ARN`).
/// An error fails the invocation, so that SNS retries it; suppressing twice is harmless.
#[cfg(all(feature = "dynamodb", feature = "secretsmanager"))]
async fn run_mail_events(config: &Config) -> anyhow::Result<()> {
    use lambda_http::lambda_runtime::{service_fn, LambdaEvent};
    use std::sync::Arc;
    let topic = config
        .mail_events_topic
        .clone()
        .context("the mail-events handler needs its topic (CAHIER_MAIL_EVENTS_TOPIC)")?;
    let env = |k: &str| std::env::var(k).ok();
    anyhow::ensure!(
        env("CAHIER_PEPPER").is_none(),
        "CAHIER_PEPPER is set in the Lambda environment: keep it in Secrets Manager and give \
         CAHIER_PEPPER_ARN"
    );
    let pepper = cahier_function::secrets_manager::resolve_arns(&env)
        .await?
        .remove("CAHIER_PEPPER")
        .context("the mail-events handler needs the pepper (CAHIER_PEPPER_ARN)")?;
    let pepper =
        cahier_function::secrets::decode_key(&pepper).context("while decoding CAHIER_PEPPER")?;
    let hasher = Arc::new(cahier_function::crypto::Hasher::new(&pepper)?);
    // Opened without `init` (no DescribeTable): its role may only put suppression items.
    let rest = config.store.strip_prefix("dynamodb:").with_context(|| {
        format!(
            "the mail-events handler writes the DynamoDB store; --store is {}",
            config.store
        )
    })?;
    let store: Arc<dyn store::Store> = Arc::new(store::dynamo::DynamoStore::from_url(rest).await?);
    tracing::info!("mail events: ready");
    lambda_http::lambda_runtime::run(service_fn(
        move |event: LambdaEvent<aws_lambda_events::event::sns::SnsEvent>| {
            let (hasher, store, topic) = (hasher.clone(), store.clone(), topic.clone());
            async move {
                let applied = cahier_function::mail_events::apply(
                    &event.payload,
                    &topic,
                    &hasher,
                    store.as_ref(),
                    cahier_function::now(),
                )
                .await
                .map_err(|e| {
                    tracing::error!(error = %format!("{e:#}"), "mail events: refused");
                    lambda_http::Error::from(format!("{e:#}"))
                })?;
                tracing::info!(
                    target: "cahier::mail",
                    notifications = applied.notifications,
                    suppressed = applied.suppressed,
                    already = applied.already,
                    ignored = applied.ignored,
                    "mail events: applied"
                );
                Ok::<_, lambda_http::Error>(serde_json::to_value(&applied)?)
            }
        },
    ))
    .await
    .map_err(|e| anyhow::anyhow!("Lambda runtime: {e}"))
}

#[cfg(not(all(feature = "dynamodb", feature = "secretsmanager")))]
async fn run_mail_events(_: &Config) -> anyhow::Result<()> {
    anyhow::bail!("this build has no DynamoDB or Secrets Manager support: the mail-events handler needs the `dynamodb` and `secretsmanager` features")
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
