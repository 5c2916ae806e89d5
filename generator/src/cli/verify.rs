//! `cahier verify`: compare the live site with the build, once or every INTERVAL.

use cahier::verify::{self, Reference, Report};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Shown by `cahier verify --help` (set on the subcommand in `cli/mod.rs`).
pub const LONG_ABOUT: &str = "\
Fetch every file of the integrity manifest from the live site and compare it with the build: \
size and SHA-256, redirects (never followed), scripts the build did not put in a page, and the \
Content-Security-Policy (the page's <meta> and, as declared in _headers, the response header). \
Pages are fetched at their folder URL (/<slug>/), other files at their path; _headers is read \
locally, never fetched. Run it after the CDN's cache was invalidated for the deployment.

Exit status: 0 when everything matches, 1 otherwise. With --watch, check every INTERVAL and \
exit 1 at the first mismatch (for a cron job, a CI schedule or a terminal left open).";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address of the live site, e.g. https://petitions.example.org/
    #[arg(value_name = "URL")]
    pub url: String,
    /// Integrity manifest of the deployed build; its pages and _headers are read beside it
    /// [default: <root>/public/integrity.json].
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// Check again every INTERVAL (e.g. 30s, 5m, 1h) until the first mismatch.
    #[arg(long, value_name = "INTERVAL", value_parser = humantime::parse_duration)]
    pub watch: Option<Duration>,
    /// Print the report as JSON (one line per check with --watch).
    #[arg(long)]
    pub json: bool,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 8, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// Time allowed for each request.
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Do not compare the Content-Security-Policy response header with _headers (for hosts
    /// that set headers some other way).
    #[arg(long)]
    pub no_header_check: bool,
}

pub fn run(root: &Path, args: Args) -> anyhow::Result<ExitCode> {
    let manifest = args
        .manifest
        .clone()
        .unwrap_or_else(|| root.join("public").join(cahier::integrity::INTEGRITY_FILE));
    let reference = Arc::new(Reference::load(&manifest)?);
    let opts = verify::Options {
        site: verify::site_url(&args.url)?,
        concurrency: args.concurrency as usize,
        timeout: args.timeout,
        check_headers: !args.no_header_check,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    if !args.json {
        println!(
            "Verifying {} against {} ({} files){}",
            opts.site,
            manifest.display(),
            reference.served().count(),
            match args.watch {
                Some(i) => format!(", every {}", humantime::format_duration(i)),
                None => String::new(),
            }
        );
    }
    loop {
        let report = rt.block_on(verify::run(reference.clone(), &opts, progress(args.json)))?;
        print(&report, args.json, args.watch.is_some())?;
        match args.watch {
            _ if !report.ok => return Ok(ExitCode::FAILURE),
            None => return Ok(ExitCode::SUCCESS),
            Some(interval) => std::thread::sleep(interval),
        }
    }
}

/// A counter on stderr when it is a terminal; nothing in logs.
fn progress(json: bool) -> impl FnMut(usize, usize) {
    let tty = !json && std::io::stderr().is_terminal();
    move |done, total| {
        if tty {
            eprint!("\r{done}/{total} files checked");
            if done == total {
                eprint!("\r\x1b[K");
            }
        }
    }
}

fn print(report: &Report, json: bool, watch: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        if watch {
            serde_json::to_writer(&mut out, report)?;
        } else {
            serde_json::to_writer_pretty(&mut out, report)?;
        }
        writeln!(out)?;
    } else {
        for f in &report.findings {
            writeln!(out, "{f}")?;
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
