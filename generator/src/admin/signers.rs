//! `cahier admin signers`: the petition's public list of signers. An organizer takes an entry
//! off it (an offensive name, a signer who asks by mail) without touching the signature: it
//! still counts, and stays off the list for good (the signer's erase link removes everything).

use super::Ctx;
use anyhow::Context;
use serde_json::json;
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum SignersCommand {
    /// Take a signer off the public list (the signature still counts); pages show it within
    /// two minutes (their caches).
    Hide {
        #[arg(long)]
        petition: String,
        /// The signer's e-mail address (as they signed; hashed like the sign path).
        #[arg(long)]
        email: String,
    },
}

pub async fn run(ctx: &mut Ctx<'_>, command: SignersCommand) -> anyhow::Result<ExitCode> {
    match command {
        SignersCommand::Hide { petition, email } => {
            let canonical =
                (ctx.keys.canonical_email)(&email).with_context(|| format!("--email {email:?}"))?;
            let hash = (ctx.keys.email_hash)(&canonical);
            let hidden = ctx.store.unlist(&petition, &hash).await?;
            if ctx.json {
                ctx.print_json(&json!({"petition": petition, "hidden": hidden}))?;
            } else if hidden {
                writeln!(
                    ctx.out,
                    "Taken off the public list of {petition}; the signature still counts."
                )?;
            } else {
                writeln!(
                    ctx.out,
                    "That address is not on the public list of {petition}: nothing changed."
                )?;
            }
            Ok(if hidden {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}
