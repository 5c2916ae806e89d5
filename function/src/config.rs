//! Settings of the standalone binary: flags, each with its environment variable.

use crate::client_ip::TrustedProxies;
use crate::ratelimit::{Rate, RateLimits};
use crate::state::Options;
use anyhow::Context;
use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "cahier-function",
    version,
    about = "Cahier's signing API (AWS Lambda or a plain HTTP server)"
)]
pub struct Config {
    /// Address to listen on when not running under AWS Lambda.
    #[arg(long, env = "CAHIER_LISTEN", default_value = "127.0.0.1:9000")]
    pub listen: SocketAddr,
    /// The petition manifest (`public/api/manifest.json`).
    #[arg(long, env = "CAHIER_MANIFEST", default_value = "manifest.json")]
    pub manifest: PathBuf,
    /// `sqlite:PATH` or `dynamodb:TABLE[?endpoint=..&region=..]`.
    #[arg(
        long,
        env = "CAHIER_STORE",
        default_value = "sqlite:.cahier/signatures.sqlite3"
    )]
    pub store: String,
    /// `outbox:DIR`, `smtp://[user:pass@]host:port[?tls=..]` or `ses:[?..]`.
    #[arg(long, env = "CAHIER_MAILER", default_value = "outbox:.cahier/outbox")]
    pub mailer: String,
    /// Proxies (addresses or CIDR, comma-separated) whose X-Forwarded-For is believed.
    #[arg(long, env = "CAHIER_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: String,
    /// hCaptcha siteverify URL (default: hCaptcha's; the dev provider uses the function's own).
    #[arg(long, env = "HCAPTCHA_VERIFY_URL")]
    pub captcha_verify_url: Option<String>,
    /// Sign attempts per minute per address (IPv4 /32, IPv6 /64); burst the same.
    #[arg(long, env = "CAHIER_RATE_PER_IP", default_value_t = 10.0)]
    pub rate_per_ip: f64,
    /// Sign attempts per minute per prefix (IPv4 /24, IPv6 /48); burst the same.
    #[arg(long, env = "CAHIER_RATE_PER_PREFIX", default_value_t = 60.0)]
    pub rate_per_prefix: f64,
    /// Use (creating it on first start) a development secrets folder instead of the
    /// environment: `<dir>/secrets.toml` and `<dir>/age-identity.txt`. Never for production.
    #[arg(long, env = "CAHIER_DEV_SECRETS")]
    pub dev_secrets: Option<PathBuf>,
    /// E-mail domains whose signatures are silently dropped (comma-separated).
    #[arg(long, env = "CAHIER_BLOCKED_DOMAINS", default_value = "")]
    pub blocked_domains: String,
    /// The kill switch: `paused` makes sign answer 503 with Retry-After (counts stay up).
    #[arg(long, env = "CAHIER_SIGNING", default_value = "open", value_parser = ["open", "paused"])]
    pub signing: String,
    /// Networks (CIDR, comma-separated) whose address and network budgets are multiplied:
    /// campus or workplace NATs.
    #[arg(long, env = "CAHIER_ALLOWED_NETWORKS", default_value = "")]
    pub allowed_networks: String,
    /// How the function knows a request came through the CDN, and so whether to believe its
    /// `CloudFront-Viewer-Address`: `none` (the socket peer, trusted proxies, or the Lambda
    /// event's source), `iam` (a function URL with AuthType AWS_IAM behind CloudFront's origin
    /// access control) or `origin-header` (the secret CAHIER_ORIGIN_SECRET in the
    /// x-cahier-origin-verify header; requests without it are refused).
    #[arg(long, env = "CAHIER_EDGE_AUTH", default_value = "none",
          value_parser = ["none", "iam", "origin-header"])]
    pub edge_auth: String,
    /// Seconds an instance keeps each petition's count in memory (at most one store read per
    /// petition per period, whatever the request rate). Default: 5 under AWS Lambda, 0 (read
    /// every time) for the standalone server, whose SQLite read costs microseconds.
    #[arg(long, env = "CAHIER_COUNT_CACHE_SECS")]
    pub count_cache_secs: Option<u64>,
    /// The organizer's disposable-domain list (one domain a line); default: the bundled one.
    #[arg(long, env = "CAHIER_DISPOSABLE_DOMAINS")]
    pub disposable_domains: Option<PathBuf>,
    /// Publish the transparency log (standalone server): a background task integrates each petition's pending events into `<DIR>/<slug>/log/`
    /// (checkpoint and tiles), signed with the secret `CAHIER_LOG_KEY` (the seed `cahier log
    /// keygen` prints; environment or secrets file). Serve `<DIR>` at the site's root so that
    /// the log is at `/<slug>/log/`, and keep it out of a folder `cahier build` replaces.
    #[arg(long, env = "CAHIER_LOG_DIR", value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
    /// Seconds between two integrations of the transparency log.
    #[arg(
        long,
        env = "CAHIER_LOG_INTERVAL",
        default_value_t = 5.0,
        value_name = "SECONDS"
    )]
    pub log_interval: f64,
    /// The site's S3 bucket, for the scheduled sequencer under AWS Lambda (the function's
    /// `sequencer` handler, `deploy/aws/template.yaml`): each petition's log goes to
    /// `<slug>/log/` in it, its checkpoint swapped in the DynamoDB store first.
    /// `BUCKET[?endpoint=URL&region=REGION]` (an endpoint implies path-style addressing).
    #[arg(long, env = "CAHIER_LOG_BUCKET", value_name = "BUCKET")]
    pub log_bucket: Option<String>,
    /// How long one invocation of the `sequencer` handler keeps integrating, a pass every
    /// `--log-interval` (it always stops 5 s before the invocation's deadline). 0: one pass.
    #[arg(
        long,
        env = "CAHIER_LOG_RUN_FOR",
        default_value_t = 50.0,
        value_name = "SECONDS"
    )]
    pub log_run_for: f64,
    /// The SNS topic whose SES bounce and complaint notifications the `mail-events` handler
    /// acts on (under AWS Lambda; `deploy/aws/template.yaml`). Records from any other topic are
    /// refused.
    #[arg(long, env = "CAHIER_MAIL_EVENTS_TOPIC", value_name = "ARN")]
    pub mail_events_topic: Option<String>,
}

impl Config {
    pub fn options(&self) -> anyhow::Result<Options> {
        Ok(Options {
            rate_limits: RateLimits {
                per_ip: Rate {
                    burst: self.rate_per_ip,
                    per_minute: self.rate_per_ip,
                },
                per_prefix: Rate {
                    burst: self.rate_per_prefix,
                    per_minute: self.rate_per_prefix,
                },
                ..RateLimits::default()
            },
            trusted_proxies: TrustedProxies::parse(&self.trusted_proxies)?,
            blocked_domains: self
                .blocked_domains
                .split(',')
                .map(|d| d.trim().to_ascii_lowercase())
                .filter(|d| !d.is_empty())
                .collect(),
            allowed_networks: self
                .allowed_networks
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(|n| {
                    n.parse().with_context(|| {
                        format!("CAHIER_ALLOWED_NETWORKS: {n:?} is not a CIDR network")
                    })
                })
                .collect::<anyhow::Result<_>>()?,
            signing_paused: self.signing == "paused",
            count_cache: std::time::Duration::from_secs(self.count_cache_secs.unwrap_or(
                if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
                    5
                } else {
                    0
                },
            )),
            disposable_domains: self.disposable_domains.clone(),
            ..Options::default()
        })
    }
}
