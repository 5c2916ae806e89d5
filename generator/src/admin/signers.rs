//! `cahier admin signers`: the petition's public list of signers. An organizer takes an entry
//! off it (an offensive name, a signer who asks by mail) without touching the signature: it
//! still counts, and stays off the list for good (the signer's erase link removes everything).
//! The entry is found by the address it signed with, or — for a name seen on the list, whose
//! address the organizer does not know — by that name, read from the signatures with the
//! organizer's age identity on this machine.

use super::unseal::Identities;
use super::Ctx;
use anyhow::Context;
use cahier_function::store::admin::Criteria;
use cahier_function::store::Status;
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum SignersCommand {
    /// Take a signer off the public list (the signature still counts); pages show it within
    /// two minutes (their caches).
    #[command(group(clap::ArgGroup::new("who").required(true).args(["email", "name"])))]
    Hide {
        #[arg(long)]
        petition: String,
        /// The signer's e-mail address (as they signed; hashed like the sign path).
        #[arg(long)]
        email: Option<String>,
        /// The name as the list shows it (case and spacing aside): every entry of that name
        /// is taken off — a name posted many times is hidden in one go. Needs --identity.
        #[arg(long, requires = "identity")]
        name: Option<String>,
        /// The organizer's age identity file, to read the names of the signatures.
        #[arg(long, value_name = "PATH")]
        identity: Option<PathBuf>,
    },
}

pub async fn run(ctx: &mut Ctx<'_>, command: SignersCommand) -> anyhow::Result<ExitCode> {
    match command {
        SignersCommand::Hide {
            petition,
            name: Some(name),
            identity: Some(identity),
            ..
        } => hide_by_name(ctx, &petition, &name, &identity).await,
        SignersCommand::Hide {
            petition,
            email: Some(email),
            ..
        } => {
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
        SignersCommand::Hide { .. } => anyhow::bail!("--email, or --name with --identity"),
    }
}

/// A name as a reader tells two apart: case and runs of spaces aside.
fn folded(name: &str) -> String {
    name.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

async fn hide_by_name(
    ctx: &mut Ctx<'_>,
    petition: &str,
    name: &str,
    identity: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    let wanted = folded(name);
    anyhow::ensure!(!wanted.is_empty(), "--name is empty");
    let ids = Identities::from_file(identity)?;
    // Only counted signatures are on the list.
    let criteria = Criteria {
        petition: Some(petition.to_string()),
        statuses: vec![Status::Confirmed],
        ..Default::default()
    };
    let mut records = Vec::new();
    ctx.store
        .scan(&criteria, &mut |r| {
            if criteria.matches(&r) && !r.sealed.is_empty() {
                records.push(r);
            }
        })
        .await?;
    let mut matched = 0u64;
    let mut hidden = 0u64;
    for r in &records {
        let personal = ids.open(&r.sealed).with_context(|| {
            format!(
                "a signature of {petition} with the identity in {}",
                identity.display()
            )
        })?;
        if folded(&personal.name) != wanted {
            continue;
        }
        matched += 1;
        if ctx.store.unlist(petition, &r.email_hash).await? {
            hidden += 1;
        }
    }
    if ctx.json {
        ctx.print_json(&json!({
            "petition": petition, "signatures_named": matched, "hidden": hidden,
        }))?;
    } else if hidden > 0 {
        writeln!(
            ctx.out,
            "Took {hidden} entr{} named {name:?} off the public list of {petition}; the \
             signatures still count.",
            if hidden == 1 { "y" } else { "ies" }
        )?;
    } else {
        writeln!(
            ctx.out,
            "No entry named {name:?} on the public list of {petition} ({matched} counted \
             signature(s) of that name, none listed): nothing changed."
        )?;
    }
    Ok(if hidden > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
