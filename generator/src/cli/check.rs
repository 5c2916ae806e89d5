//! `cahier check`.

use std::path::Path;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(root: &Path, _args: Args) -> anyhow::Result<ExitCode> {
    let report = cahier::check(root)?;
    for w in &report.warnings {
        println!("warning: {w}");
    }
    for e in &report.errors {
        eprintln!("error: {e}");
    }
    if report.is_ok() {
        println!("OK: {} petitions, no errors", report.petitions);
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "{} error(s) in {} petitions",
            report.errors.len(),
            report.petitions
        );
        Ok(ExitCode::FAILURE)
    }
}
