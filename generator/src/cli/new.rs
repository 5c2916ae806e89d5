//! `cahier new`.

use std::path::Path;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Folder name and URL of the petition: lowercase letters, digits and dashes.
    pub slug: String,
    /// Write only this language's file (default: one file per language of the site).
    #[arg(long, value_name = "LANG")]
    pub lang: Option<String>,
}

pub fn run(root: &Path, args: Args) -> anyhow::Result<ExitCode> {
    let cfg = cahier::config::load(root)?;
    let files = cahier::new::new_petition(root, &cfg, &args.slug, args.lang.as_deref())?;
    for f in &files {
        println!("created {}", f.display());
    }
    println!("Edit the text, then run `cahier check` and `cahier build` (it is a draft until you set draft = false).");
    Ok(ExitCode::SUCCESS)
}
