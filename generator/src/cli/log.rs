//! `cahier log`: the petitions' transparency logs (verify a live site's, make the log key).

use cahier::log_verify::{self, Options, Report};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Shown by `cahier log verify --help`.
const VERIFY_ABOUT: &str = "\
Fetch each petition's transparency log from the live site (checkpoint, entry bundles and tiles), \
check the checkpoint's signature with the collective's public key (--key, or site.log_public_key \
of <URL>/api/manifest.json), rebuild the tree from the entries, check that it extends the last \
checkpoint this command accepted (kept in --state), recount (counted − uncounted + offline) and \
compare with <URL>/api/petitions/<slug>/count. Prints entries, counted, uncounted by reason and \
offline signatures.

Exit status: 0 when every log verifies, 1 otherwise. With --watch, check every INTERVAL and exit 1 \
at the first mismatch. Pin the key with --key: a site that changes its key is then caught.";

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Debug, clap::Subcommand)]
pub enum Cmd {
    /// Verify the logs of a live site and their counts; non-zero exit on any mismatch.
    #[command(long_about = VERIFY_ABOUT)]
    Verify(VerifyArgs),
    /// Make a log key: prints the secret seed (for the function's secrets, never public/) and
    /// the public key (for cahier.toml / the manifest).
    Keygen,
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Address of the live site, e.g. https://petitions.example.org/
    #[arg(value_name = "URL")]
    pub url: String,
    /// Only this petition.
    #[arg(long, value_name = "SLUG")]
    pub petition: Option<String>,
    /// The collective's public key (base64, or a verifier key name+id+base64).
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,
    /// Base of the count endpoint [default: <URL>/api/].
    #[arg(long, value_name = "URL")]
    pub api: Option<String>,
    /// Folder of the last accepted checkpoints [default: $XDG_STATE_HOME/cahier/log-verify].
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// Check again every INTERVAL (e.g. 30s, 5m) until the first mismatch.
    #[arg(long, value_name = "INTERVAL", value_parser = humantime::parse_duration)]
    pub watch: Option<Duration>,
    /// Print the report as JSON (one line per check with --watch).
    #[arg(long)]
    pub json: bool,
    /// Time allowed for each request.
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 8, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
}

pub fn run(_root: &Path, args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Cmd::Verify(a) => verify(a),
        Cmd::Keygen => {
            let k = cahier_tlog::LogKey::generate();
            println!(
                "secret (with the function's secrets; never in public/ or an environment variable): {}",
                k.seed_base64()
            );
            println!("public (log_public_key): {}", k.public_base64());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let site = cahier::verify::site_url(&args.url)?;
    let api = match &args.api {
        Some(a) => Some(cahier::verify::site_url(a)?),
        None => None,
    };
    let opts = Options {
        site,
        petition: args.petition.clone(),
        key: args.key.clone(),
        api,
        state_dir: args
            .state
            .clone()
            .unwrap_or_else(log_verify::default_state_dir),
        timeout: args.timeout,
        concurrency: args.concurrency as usize,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    loop {
        let report = rt.block_on(log_verify::run(&opts))?;
        print(&report, args.json, args.watch.is_some())?;
        match args.watch {
            _ if !report.ok => return Ok(ExitCode::FAILURE),
            None => return Ok(ExitCode::SUCCESS),
            Some(interval) => std::thread::sleep(interval),
        }
    }
}

fn print(report: &Report, json: bool, watch: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        match watch {
            true => serde_json::to_writer(&mut out, report)?,
            false => serde_json::to_writer_pretty(&mut out, report)?,
        }
        writeln!(out)?;
    } else {
        for l in &report.logs {
            write!(out, "{l}")?;
        }
        let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
        match watch {
            true => writeln!(out, "[{now}] {}", report.summary())?,
            false => writeln!(out, "{}", report.summary())?,
        }
    }
    out.flush()?;
    Ok(())
}
