//! `cahier build`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output folder [default: <root>/public].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Include petitions marked `draft = true`.
    #[arg(long)]
    pub drafts: bool,
    /// Override base_url of cahier.toml (e.g. a preview deployment's URL).
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
}

pub fn run(root: &Path, args: Args) -> anyhow::Result<ExitCode> {
    let out = args.out.unwrap_or_else(|| root.join("public"));
    println!("Building {} into {} ...", root.display(), out.display());
    let report = cahier::build(&cahier::BuildOptions {
        root: root.to_path_buf(),
        out: out.clone(),
        drafts: args.drafts,
        base_url: args.base_url,
        api_url: None,
        captcha_provider: None,
        log_public_key: None,
    })?;
    for w in &report.warnings {
        println!("warning: {w}");
    }
    let images = if report.images_rendered + report.images_cached > 0 {
        format!(
            "; images: {} resized, {} cached",
            report.images_rendered, report.images_cached
        )
    } else {
        String::new()
    };
    println!(
        "Built {} petitions: {} pages, {} files (Open Graph cards: {} rendered, {} cached{images}) in {:.2?}",
        report.petitions, report.pages, report.files, report.og_rendered, report.og_cached, report.elapsed
    );
    Ok(ExitCode::SUCCESS)
}
