//! Command-line interface. To add a subcommand: one variant in [`Command`], one module here.

mod admin;
mod build;
mod check;
mod log;
mod new;
mod serve;
mod verify;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Cahier turns petitions written in Markdown into a static site any CDN can serve.
#[derive(Debug, Parser)]
#[command(
    name = "cahier",
    version,
    about,
    long_about = "\
Cahier turns petitions written in Markdown into a static website that any CDN can serve; \
one small function handles signing behind a captcha.

A site is a folder with cahier.toml (configuration), content/<slug>/index.md (one folder per \
petition, translations in index.<lang>.md) and themes/<theme>/ (templates, styles, strings)."
)]
pub struct Cli {
    /// Site root: the folder holding cahier.toml.
    #[arg(long, global = true, default_value = ".", value_name = "DIR")]
    pub root: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build the static site into public/ (or --out), replacing it atomically.
    Build(build::Args),
    /// Scaffold a new petition in content/<slug>/.
    New(new::Args),
    /// Validate configuration and content without writing anything; non-zero exit on errors.
    Check(check::Args),
    /// Build for http://127.0.0.1:8080 and serve the site and the signing API there (SQLite,
    /// dev captcha and mails in .cahier/), rebuilding and reloading the browser on every change.
    Serve(serve::Args),
    /// Check that the live site serves exactly what was built; non-zero exit on any mismatch.
    #[command(long_about = verify::LONG_ABOUT)]
    Verify(verify::Args),
    /// Organizer tools on the signature store (SQLite or DynamoDB): stats, trending,
    /// invalidate, approve/reject, recount, export, erase, purge, audit. Never an HTTP surface.
    Admin(Box<admin::Args>),
    /// The petitions' transparency logs: `cahier log verify <URL>` checks a live site's logs
    /// and counts; `cahier log keygen` makes the log key.
    Log(log::Args),
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Build(a) => build::run(&cli.root, a),
        Command::New(a) => new::run(&cli.root, a),
        Command::Check(a) => check::run(&cli.root, a),
        Command::Serve(a) => serve::run(&cli.root, a),
        Command::Verify(a) => verify::run(&cli.root, a),
        Command::Admin(a) => admin::run(&cli.root, *a),
        Command::Log(a) => log::run(&cli.root, a),
    }
}
