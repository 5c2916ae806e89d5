//! The production path on one machine: the example site built for AWS (`[deploy] target =
//! "aws"`), the edge playing CloudFront in front of it and of the real `cahier-function` under
//! the Lambda runtime emulator, DynamoDB and SES on moto, and a standalone instance playing
//! hCaptcha (its development siteverify has hCaptcha's semantics). The built site is uploaded
//! to a bucket in moto's S3, which the edge reads as CloudFront reads the site origin, and the
//! transparency log's sequencer is the same binary under the emulator with the template's
//! `Handler: sequencer`, writing into that bucket ([`EdgeStack::run_sequencer`]). Everything
//! stops on drop.

use super::template::ApiAuth;
use super::{Edge, EdgeOptions, SiteBucket, EDGE_SOURCE_IP};
use crate::lambda::LambdaFunction;
use crate::moto::{fresh_table, Moto};
use crate::server::Fixture;
use anyhow::{bail, Context};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// The sender of the confirmation mails (verified in moto's SES).
pub const MAIL_FROM: &str = "petitions@example.org";
/// The SES configuration set the mails go through (the template's `MailConfigurationSet`).
pub const MAIL_CONFIGURATION_SET: &str = "cahier-mail";
/// The example petition signed through the edge.
pub const PETITION: &str = crate::site::PETITION;

pub struct EdgeStack {
    pub edge: Edge,
    pub lambda: LambdaFunction,
    /// The instance playing hCaptcha (solve captchas there: [`crate::flow::Api::captcha_at`]).
    pub captcha: Fixture,
    pub moto: Moto,
    /// The built site (`public/`), the bucket's content.
    pub site_dir: PathBuf,
    /// The secret origin header's value (`ApiAuth=NONE`).
    pub origin_secret: String,
    pub api_auth: ApiAuth,
    /// The function's manifest, and the arguments and environment it was started with (to
    /// start the same function as a plain server beside it, e.g. for a benchmark).
    pub manifest_path: PathBuf,
    pub function_args: Vec<String>,
    pub function_env: Vec<(String, String)>,
    /// The function's secrets (to hash addresses and mint tokens as the function does).
    pub secrets: cahier_function::secrets::Secrets,
    /// The DynamoDB table the function writes.
    pub table: String,
    /// The site bucket in moto's S3 (the site, and the logs the sequencer writes).
    pub bucket: String,
    /// The transparency log's key (its public half is the site's `log_public_key`).
    pub log_key: cahier_tlog::LogKey,
    _dirs: Vec<tempfile::TempDir>,
}

impl EdgeStack {
    /// Builds the example site for the edge's address and starts every part.
    pub async fn start(api_auth: ApiAuth) -> anyhow::Result<EdgeStack> {
        EdgeStack::start_with(api_auth, None).await
    }

    /// [`EdgeStack::start`] with the site's `budgets` replaced (a JSON `BudgetPolicy`).
    pub async fn start_with(
        api_auth: ApiAuth,
        budgets: Option<Value>,
    ) -> anyhow::Result<EdgeStack> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let base = format!("http://{}", listener.local_addr()?);
        let site_tmp = tempfile::tempdir()?;
        let log_key = cahier_tlog::LogKey::generate();
        let site_dir = tokio::task::spawn_blocking({
            let root = site_tmp.path().to_path_buf();
            let base = base.clone();
            let public_key = log_key.public_base64();
            move || build_site(&root, &base, api_auth, &public_key)
        })
        .await??;

        let moto = Moto::start()?;
        let conf = moto.sdk_config().await;
        let bucket = fresh_table("cahier-site").to_lowercase();
        upload_site(&conf, &moto.endpoint(), &bucket, &site_dir).await?;
        aws_sdk_sesv2::Client::new(&conf)
            .create_email_identity()
            .email_identity(MAIL_FROM)
            .send()
            .await
            .context("verifying the sender in moto's SES")?;
        // Every mail goes through the configuration set, as the template's mailer sends it.
        aws_sdk_sesv2::Client::new(&conf)
            .create_configuration_set()
            .configuration_set_name(MAIL_CONFIGURATION_SET)
            .send()
            .await
            .context("creating the configuration set in moto's SES")?;

        let captcha_dir = tempfile::tempdir()?;
        let captcha = tokio::task::spawn_blocking({
            let dir = captcha_dir.path().to_path_buf();
            move || Fixture::start(&dir, None, &[])
        })
        .await?;

        let function_dir = tempfile::tempdir()?;
        let (secrets, _identity) = crate::fixture::secrets();
        // The built manifest, with the key of the instance playing hCaptcha.
        let mut manifest: Value =
            serde_json::from_slice(&std::fs::read(site_dir.join("api/manifest.json"))?)?;
        manifest["site"]["captcha_sitekey"] =
            Value::String(cahier_function::captcha::dev::DEV_SITEKEY.into());
        if let Some(b) = budgets {
            manifest["site"]["budgets"] = b;
        }
        let manifest_path = function_dir.path().join("manifest.json");
        std::fs::write(&manifest_path, serde_json::to_vec_pretty(&manifest)?)?;
        let origin_secret = crate::edge::content_sha256(base.as_bytes());
        let endpoint = moto.endpoint();
        let mut env: Vec<(String, String)> = crate::fixture::secrets_env(&secrets)
            .into_iter()
            .filter(|(k, _)| k != "HCAPTCHA_SECRET")
            .collect();
        env.extend(
            [
                (
                    "HCAPTCHA_SECRET",
                    captcha.secrets.hcaptcha_secret.clone().unwrap_or_default(),
                ),
                (
                    "HCAPTCHA_VERIFY_URL",
                    captcha.server.url("/api/__dev/siteverify"),
                ),
                (
                    "CAHIER_AGE_RECIPIENT",
                    secrets.age_recipient.clone().unwrap_or_default(),
                ),
                (
                    "CAHIER_EDGE_AUTH",
                    match api_auth {
                        ApiAuth::AwsIam => "iam".into(),
                        ApiAuth::None => "origin-header".into(),
                    },
                ),
                ("CAHIER_ORIGIN_SECRET", origin_secret.clone()),
                ("AWS_ENDPOINT_URL", endpoint.clone()),
                ("AWS_REGION", "us-east-1".into()),
                ("AWS_ACCESS_KEY_ID", "testing".into()),
                ("AWS_SECRET_ACCESS_KEY", "testing".into()),
                ("AWS_EC2_METADATA_DISABLED", "true".into()),
                ("AWS_CONFIG_FILE", "/dev/null".into()),
                ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".into()),
            ]
            .map(|(k, v)| (k.to_string(), v)),
        );
        let table = fresh_table("cahier-edge");
        let args = vec![
            "--manifest".to_string(),
            manifest_path.display().to_string(),
            "--store".to_string(),
            format!("dynamodb:{table}?endpoint={endpoint}&region=us-east-1"),
            "--mailer".to_string(),
            format!(
                "ses:?endpoint={endpoint}&region=us-east-1&from={}&configuration_set={MAIL_CONFIGURATION_SET}",
                MAIL_FROM.replace('@', "%40")
            ),
        ];
        // The secrets in moto's Secrets Manager, only their ARNs in the function's environment,
        // as the template deploys them.
        let env = crate::moto::into_secrets_manager(&moto, env).await;
        let lambda = LambdaFunction::start(function_dir.path(), &args, &env);
        let edge = Edge::start(
            listener,
            EdgeOptions {
                template: crate::repo_root().join("deploy/aws/template.yaml"),
                api_auth,
                site_dir: site_dir.clone(),
                bucket: Some(SiteBucket {
                    endpoint: moto.endpoint(),
                    name: bucket.clone(),
                }),
                invoke_url: lambda.invoke_url(),
                origin_secret: Some(origin_secret.clone()),
                source_ip: EDGE_SOURCE_IP.parse()?,
            },
        )?;
        Ok(EdgeStack {
            edge,
            lambda,
            captcha,
            moto,
            site_dir,
            origin_secret,
            api_auth,
            manifest_path,
            function_args: args,
            function_env: env,
            secrets,
            table,
            bucket,
            log_key,
            _dirs: vec![site_tmp, captcha_dir, function_dir],
        })
    }

    /// A signer's client of the API through the edge, from the site's own pages.
    pub fn api(&self) -> crate::flow::Api {
        crate::flow::Api::new(&self.edge.base)
            .slug(PETITION)
            .captcha_at(&self.captcha.server.base)
    }

    /// The function's store, read directly (what `cahier admin` reads).
    pub async fn store(&self) -> cahier_function::store::dynamo::DynamoStore {
        let client = aws_sdk_dynamodb::Client::new(&self.moto.sdk_config().await);
        cahier_function::store::dynamo::DynamoStore::new(client, self.table.clone())
    }

    /// Starts the sequencer as the template deploys it (the function's package with
    /// `Handler: sequencer`, the log key from Secrets Manager, the site bucket) under its own
    /// emulator, invokes it `invocations` times with EventBridge's scheduled event, one pass
    /// each, and returns what each invocation answered. Stopped on return.
    pub async fn run_sequencer(&self, invocations: usize) -> anyhow::Result<Vec<Value>> {
        let endpoint = self.moto.endpoint();
        let events = vec![scheduled_event(); invocations];
        let answers = self
            .run_deployed("Sequencer", &events, |name| {
                Ok(vec![match name {
                    "CAHIER_STORE" => (name.into(), self.store_url()),
                    "CAHIER_MANIFEST" => (name.into(), self.manifest_path.display().to_string()),
                    "CAHIER_LOG_BUCKET" => (
                        name.into(),
                        format!("{}?endpoint={endpoint}&region=us-east-1", self.bucket),
                    ),
                    // The secret's value goes to Secrets Manager, its ARN to the environment.
                    "CAHIER_LOG_KEY_ARN" => ("CAHIER_LOG_KEY".into(), self.log_key.seed_base64()),
                    // One quick pass per invocation instead of 50 s of passes every 5 s.
                    "CAHIER_LOG_INTERVAL" => (name.into(), "0.1".into()),
                    "CAHIER_LOG_RUN_FOR" => (name.into(), "0".into()),
                    "RUST_LOG" => (name.into(), "info".into()),
                    other => bail!("the template's sequencer sets {other}, unknown to this stack"),
                }])
            })
            .await?;
        answers
            .into_iter()
            .map(|a| a.map_err(anyhow::Error::msg))
            .collect()
    }

    /// Starts the mail-events function as the template deploys it (`Handler: mail-events`,
    /// the pepper from Secrets Manager, the topic `topic_arn`) under its own emulator and
    /// invokes it once per SNS event; each answer, or the error it failed with.
    pub async fn run_mail_events(
        &self,
        topic_arn: &str,
        events: &[Value],
    ) -> anyhow::Result<Vec<Result<Value, String>>> {
        self.run_deployed("MailEvents", events, |name| {
            Ok(vec![match name {
                "CAHIER_STORE" => (name.into(), self.store_url()),
                "CAHIER_MANIFEST" => (name.into(), self.manifest_path.display().to_string()),
                "CAHIER_PEPPER_ARN" => ("CAHIER_PEPPER".into(), hex::encode(&self.secrets.pepper)),
                "CAHIER_MAIL_EVENTS_TOPIC" => (name.into(), topic_arn.to_string()),
                "RUST_LOG" => (name.into(), "info".into()),
                other => bail!("the template's MailEvents sets {other}, unknown to this stack"),
            }])
        })
        .await
    }

    /// The function's store setting on this stack's table.
    fn store_url(&self) -> String {
        format!(
            "dynamodb:{}?endpoint={}&region=us-east-1",
            self.table,
            self.moto.endpoint()
        )
    }

    /// Starts the function the template's `resource` deploys: its `Handler`, and each variable
    /// of its environment given this stack's value by `value` (which fails on a variable it
    /// does not know, so that the template and the function cannot drift apart unseen; a
    /// secret's value goes to Secrets Manager and only its ARN to the environment). Invokes it
    /// once per event and returns each answer, or the error it failed with. Stopped on return.
    async fn run_deployed(
        &self,
        resource: &str,
        events: &[Value],
        value: impl Fn(&str) -> anyhow::Result<Vec<(String, String)>>,
    ) -> anyhow::Result<Vec<Result<Value, String>>> {
        let dir = tempfile::tempdir()?;
        let (handler, variables) = function_in_template(resource)?;
        let mut env = vec![("_HANDLER".to_string(), handler)];
        for name in variables {
            env.extend(value(&name)?);
        }
        env.extend(
            [
                ("AWS_EC2_METADATA_DISABLED", "true"),
                ("AWS_CONFIG_FILE", "/dev/null"),
                ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let env = crate::moto::into_secrets_manager(&self.moto, env).await;
        let args: Vec<String> = Vec::new();
        let function = LambdaFunction::start(dir.path(), &args, &env);
        let http = reqwest::Client::new();
        let mut answers = Vec::new();
        for event in events {
            let response = http
                .post(function.invoke_url())
                .json(event)
                .timeout(Duration::from_secs(60))
                .send()
                .await
                .with_context(|| format!("invoking the template's {resource}"))?;
            let status = response.status();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            if !status.is_success() || body.get("errorMessage").is_some() {
                answers.push(Err(format!(
                    "{resource} answered {status} {body}; its log:\n{}",
                    function.log()
                )));
            } else {
                answers.push(Ok(body));
            }
        }
        Ok(answers)
    }

    /// Runs the sequencer (as deployed, into the bucket), then audits the log through the edge
    /// as a monitor does (`cahier log verify`, the site's published key pinned) and checks its
    /// count against the count the function answers through the edge. Returns the tally.
    pub async fn log_agrees_with_count(&self, slug: &str) -> cahier_tlog::tally::Tally {
        self.run_sequencer(1)
            .await
            .expect("the sequencer integrates the table's events into the bucket");
        let state = tempfile::tempdir().expect("a state folder");
        // The edge may hold the previous checkpoint for its max-age (5 s): a monitor retries
        // for a little more than that before calling a difference an alarm.
        let deadline = Instant::now() + Duration::from_secs(15);
        let report = loop {
            let out = Command::new(crate::server::cahier_binary())
                .args([
                    "log",
                    "verify",
                    &self.edge.base,
                    "--petition",
                    slug,
                    "--json",
                ])
                .args(["--key", &self.log_key.public_base64()])
                .arg("--state")
                .arg(state.path())
                .output()
                .expect("running cahier log verify");
            let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
                panic!(
                    "cahier log verify: not JSON ({e}):\n{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                )
            });
            if out.status.success() {
                break report;
            }
            assert!(
                Instant::now() < deadline,
                "cahier log verify through the edge failed for 15 s: {report:#}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        let (_, audit) = crate::log_folder::audit_bucket(
            &self.moto,
            &self.bucket,
            &self.edge.base,
            slug,
            &self.log_key.public_base64(),
        )
        .await;
        assert!(audit.problems.is_empty(), "{:?}", audit.problems);
        let tally = audit.tally;
        assert!(tally.anomalies.is_empty(), "{:?}", tally.anomalies);
        let count: Value = reqwest::get(self.edge.url(&format!("/api/petitions/{slug}/count")))
            .await
            .expect("GET count")
            .json()
            .await
            .expect("count JSON");
        assert_eq!(
            Some(tally.count),
            count["count"].as_u64(),
            "the log's count against the count endpoint's {count}; verify said {report:#}"
        );
        assert_eq!(
            report["logs"][0]["tally"]["count"].as_u64(),
            Some(tally.count),
            "cahier log verify through the edge: {report:#}"
        );
        tally
    }

    /// The keyed hashes the function computes.
    pub fn hasher(&self) -> cahier_function::crypto::Hasher {
        cahier_function::crypto::Hasher::new(&self.secrets.pepper).expect("the pepper")
    }

    /// The confirm token the function mails to `canonical` (the test knows the secrets).
    pub fn confirm_token(&self, canonical: &str) -> String {
        use cahier_function::token::{TokenClaims, TokenKey, TokenKind};
        TokenKey::new(&self.secrets.token_key)
            .expect("the token key")
            .issue(&TokenClaims {
                kind: TokenKind::Confirm,
                petition: PETITION.to_string(),
                email_hash: self.hasher().email(canonical),
                expires_at: cahier_function::now() + 3600,
            })
    }

    /// Runs `cahier admin --json ARGS` on the function's table, as the organizer would.
    pub fn admin(&self, args: &[&str]) -> anyhow::Result<Value> {
        let out = Command::new(crate::server::cahier_binary())
            .args(["admin", "--store"])
            .arg(format!(
                "dynamodb:{}?endpoint={}&region=us-east-1",
                self.table,
                self.moto.endpoint()
            ))
            .arg("--json")
            .args(args)
            .env("CAHIER_PEPPER", hex::encode(&self.secrets.pepper))
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env_remove("CAHIER_SECRETS_FILE")
            .env_remove("CAHIER_STORE")
            .output()
            .context("running cahier admin")?;
        if !out.status.success() {
            bail!(
                "cahier admin {args:?} failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        serde_json::from_slice(&out.stdout)
            .with_context(|| format!("cahier admin {args:?}: not JSON"))
    }

    /// Every mail moto's SES holds: (recipient, body: its text then its HTML).
    pub fn mails(&self) -> anyhow::Result<Vec<(String, String)>> {
        Ok(crate::moto::ses_mails(&self.moto)?
            .into_iter()
            .map(|m| (m.to, format!("{}\n{}", m.text, m.html)))
            .collect())
    }

    /// Waits (at most 10 s) for the mail to `to` and returns its body.
    pub async fn wait_mail(&self, to: &str) -> anyhow::Result<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some((_, body)) = self.mails()?.into_iter().find(|(t, _)| t == to) {
                return Ok(body);
            }
            if Instant::now() > deadline {
                bail!(
                    "no mail to {to} in moto's SES within 10 s; function log:\n{}",
                    self.lambda.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The `Handler` of the template's function `resource` and the names of its environment
/// variables.
fn function_in_template(resource: &str) -> anyhow::Result<(String, Vec<String>)> {
    let text = std::fs::read_to_string(crate::repo_root().join("deploy/aws/template.yaml"))?;
    let doc: serde_yaml::Value = serde_yaml::from_str(&text)?;
    let props = &doc["Resources"][resource]["Properties"];
    let handler = props["Handler"]
        .as_str()
        .with_context(|| format!("the template's {resource} has no Handler"))?
        .to_string();
    let variables = props["Environment"]["Variables"]
        .as_mapping()
        .with_context(|| format!("the template's {resource} has no environment"))?
        .keys()
        .filter_map(|k| k.as_str().map(str::to_string))
        .collect();
    Ok((handler, variables))
}

/// EventBridge's event for a scheduled rule, as the template's `SequencerSchedule` sends it.
fn scheduled_event() -> Value {
    serde_json::json!({
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2026-12-02T12:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/cahier-SequencerSchedule"],
        "detail": {}
    })
}

/// Uploads the built site as `aws s3 sync` does: every file, its content type guessed from
/// the extension, no `Cache-Control` (CloudFront's policy then decides).
async fn upload_site(
    conf: &aws_config::SdkConfig,
    endpoint: &str,
    bucket: &str,
    site: &std::path::Path,
) -> anyhow::Result<()> {
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(conf)
            .endpoint_url(endpoint)
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket()
        .bucket(bucket)
        .send()
        .await
        .context("creating the site bucket in moto's S3")?;
    let mut stack = vec![site.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let key = path
                .strip_prefix(site)?
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            s3.put_object()
                .bucket(bucket)
                .key(&key)
                .content_type(super::content_type(&key))
                .body(std::fs::read(&path)?.into())
                .send()
                .await
                .with_context(|| format!("uploading {key}"))?;
        }
    }
    Ok(())
}

/// Copies the example site into `root`, declares the AWS deployment and the log's public key,
/// and builds it for `base`.
fn build_site(
    root: &std::path::Path,
    base: &str,
    api_auth: ApiAuth,
    log_public_key: &str,
) -> anyhow::Result<PathBuf> {
    crate::serve::copy_example_site(root);
    let config = root.join("cahier.toml");
    let text = std::fs::read_to_string(&config)?;
    std::fs::write(
        &config,
        format!(
            "log_public_key = \"{log_public_key}\"\n{text}\n[deploy]\ntarget = \"aws\"\napi_auth = \"{}\"\n",
            api_auth.parameter()
        ),
    )?;
    let public = root.join("public");
    let out = Command::new(crate::server::cahier_binary())
        .arg("--root")
        .arg(root)
        .args(["build", "--base-url", base, "--out"])
        .arg(&public)
        .env_remove("CAHIER_SECRETS_FILE")
        .output()
        .context("running cahier build")?;
    if !out.status.success() {
        bail!(
            "cahier build failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(public)
}
