//! `cahier serve`.

use std::net::IpAddr;
use std::path::Path;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Address to listen on; keep the loopback default unless you know why.
    #[arg(long, default_value = "127.0.0.1", value_name = "ADDR")]
    pub bind: IpAddr,
    /// Include petitions marked `draft = true`.
    #[arg(long)]
    pub drafts: bool,
    /// Seconds between two integrations of the transparency log (the pending events of each
    /// petition into `.cahier/log/<slug>/log/`, served at `/<slug>/log/`).
    #[arg(long, default_value_t = 5.0, value_name = "SECONDS")]
    pub log_interval: f64,
}

pub fn run(root: &Path, args: Args) -> anyhow::Result<ExitCode> {
    cahier::serve::serve(&cahier::serve::ServeOptions {
        root: root.to_path_buf(),
        bind: args.bind,
        port: args.port,
        drafts: args.drafts,
        log_interval: std::time::Duration::try_from_secs_f64(args.log_interval.max(0.05))
            .map_err(|e| anyhow::anyhow!("--log-interval {}: {e}", args.log_interval))?,
    })?;
    Ok(ExitCode::SUCCESS)
}
