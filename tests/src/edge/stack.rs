//! The production path on one machine: the example site built for AWS (`[deploy] target =
//! "aws"`), the edge playing CloudFront in front of it and of the real `cahier-function` under
//! the Lambda runtime emulator, DynamoDB and SES on moto, and a standalone instance playing
//! hCaptcha (its development siteverify has hCaptcha's semantics). Everything stops on drop.

use super::template::ApiAuth;
use super::{Edge, EdgeOptions, EDGE_SOURCE_IP};
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
        let site_dir = tokio::task::spawn_blocking({
            let root = site_tmp.path().to_path_buf();
            let base = base.clone();
            move || build_site(&root, &base, api_auth)
        })
        .await??;

        let moto = Moto::start()?;
        let conf = moto.sdk_config().await;
        aws_sdk_sesv2::Client::new(&conf)
            .create_email_identity()
            .email_identity(MAIL_FROM)
            .send()
            .await
            .context("verifying the sender in moto's SES")?;

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
                "ses:?endpoint={endpoint}&region=us-east-1&from={}",
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

    /// Integrates the log events the function recorded in its table for `slug` into a fresh
    /// folder with a fresh key (the sequencer of `log_task.rs`, run here: the S3 and
    /// scheduled-function path is not part of this stack), audits that folder as a monitor
    /// would and checks its count against the count the function answers through the edge.
    /// Returns the tally.
    pub async fn log_agrees_with_count(&self, slug: &str) -> cahier_tlog::tally::Tally {
        use cahier_function::log_task::LogTask;
        let dir = tempfile::tempdir().expect("a log folder");
        let key = cahier_tlog::LogKey::generate();
        let base = self.edge.url("");
        let store: std::sync::Arc<dyn cahier_function::store::Store> =
            std::sync::Arc::new(self.store().await);
        let mut task = LogTask::new(store, dir.path().to_path_buf(), key.clone(), &base)
            .with_petitions([slug.to_string()]);
        task.set_durable(false);
        task.run_once()
            .await
            .expect("the sequencer integrates the table's events");
        let (_, audit) =
            crate::log_folder::audit_log(dir.path(), &base, slug, &key.public_base64(), None);
        assert!(audit.problems.is_empty(), "{:?}", audit.problems);
        let t = audit.tally;
        assert!(t.anomalies.is_empty(), "{:?}", t.anomalies);
        let count: serde_json::Value =
            reqwest::get(self.edge.url(&format!("/api/petitions/{slug}/count")))
                .await
                .expect("GET count")
                .json()
                .await
                .expect("count JSON");
        assert_eq!(
            Some(t.count),
            count["count"].as_u64(),
            "the log's count against the count endpoint's {count}"
        );
        t
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

    /// Every mail moto's SES holds: (recipient, body).
    pub fn mails(&self) -> anyhow::Result<Vec<(String, String)>> {
        let data: Value = serde_json::from_str(&self.moto.get("/moto-api/data.json")?)?;
        Ok(data["ses"]["Message"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| {
                (
                    m["destinations"]["ToAddresses"][0]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    m["body"].as_str().unwrap_or_default().to_string(),
                )
            })
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

/// Copies the example site into `root`, declares the AWS deployment and builds it for `base`.
fn build_site(root: &std::path::Path, base: &str, api_auth: ApiAuth) -> anyhow::Result<PathBuf> {
    crate::serve::copy_example_site(root);
    let config = root.join("cahier.toml");
    let text = std::fs::read_to_string(&config)?;
    std::fs::write(
        &config,
        format!(
            "{text}\n[deploy]\ntarget = \"aws\"\napi_auth = \"{}\"\n",
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
