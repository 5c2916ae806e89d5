//! `cahier admin offline`: paper signatures, counted by hand and declared in batches. A batch
//! adds its size to the count and one entry to the petition's transparency log (an offline
//! batch of N, nothing about the people on the paper); withdrawing it takes both back, and the
//! log shows the withdrawal with its reason.

use super::criteria::format_time;
use super::out::table;
use super::Ctx;
use cahier_function::store::admin::{OfflineAdded, OfflineBatch, OfflineWithdrawn};
use serde_json::json;
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum OfflineCommand {
    /// Add a batch of paper signatures to a petition's count (running it again with the
    /// same id changes nothing).
    Add {
        #[arg(long)]
        petition: String,
        /// Your name for the batch, unique in the petition (e.g. marche-2026-11-28).
        #[arg(long)]
        id: String,
        /// How many signatures the paper holds (counted by hand).
        #[arg(long)]
        signatures: u32,
        /// When they were collected (YYYY-MM-DD).
        #[arg(long)]
        date: String,
        /// A line for the organizers (where, by whom); stays in the store, never published.
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Take a batch back out of the count (counted twice, a wrong total): the log shows it
    /// as withdrawn.
    Withdraw {
        #[arg(long)]
        petition: String,
        #[arg(long)]
        id: String,
    },
    /// The batches of one petition, or of all.
    List {
        #[arg(long)]
        petition: Option<String>,
    },
    /// Record the batches the petitions' front matter declares (`offline:` in index.md)
    /// that the store does not have yet; `cahier serve` does it after every build. A batch
    /// the store has with another size, or withdrawn, is reported and left as it is; one
    /// dated after today is refused.
    Sync {
        /// Show what would be recorded and refused, and record nothing.
        #[arg(long)]
        dry_run: bool,
        /// Record nothing when the new batches add more signatures than this in all: a
        /// front matter is one edit away from anyone with access to the repository, so a
        /// large addition is looked at (--dry-run) and allowed by name.
        #[arg(long, default_value_t = 10_000, value_name = "N")]
        max_signatures: u64,
    },
}

pub async fn run(ctx: &mut Ctx<'_>, command: OfflineCommand) -> anyhow::Result<ExitCode> {
    match command {
        OfflineCommand::Add {
            petition,
            id,
            signatures,
            date,
            note,
        } => {
            let batch = OfflineBatch {
                petition,
                id,
                signatures,
                date,
                note,
                added_at: ctx.now,
                withdrawn_at: None,
            };
            batch.check()?;
            batch.check_date_not_after(ctx.now)?;
            let outcome = ctx.store.add_offline(&batch, ctx.now).await?;
            let added = outcome == OfflineAdded::Added;
            if ctx.json {
                ctx.print_json(&json!({
                    "petition": batch.petition, "id": batch.id,
                    "signatures": batch.signatures, "added": added,
                }))?;
            } else if added {
                writeln!(
                    ctx.out,
                    "Added batch {} to {}: {} signatures, counted now and logged as an offline batch.",
                    batch.id, batch.petition, batch.signatures
                )?;
            } else {
                writeln!(
                    ctx.out,
                    "Batch {} of {} was already recorded with {} signatures: nothing changed.",
                    batch.id, batch.petition, batch.signatures
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
        OfflineCommand::Withdraw { petition, id } => {
            let outcome = ctx.store.withdraw_offline(&petition, &id, ctx.now).await?;
            let word = match outcome {
                OfflineWithdrawn::Withdrawn => "withdrawn",
                OfflineWithdrawn::AlreadyWithdrawn => "already withdrawn",
                OfflineWithdrawn::NotFound => "not found",
            };
            if ctx.json {
                ctx.print_json(&json!({"petition": petition, "id": id, "outcome": word}))?;
            } else {
                writeln!(ctx.out, "Batch {id} of {petition}: {word}.")?;
            }
            Ok(if outcome == OfflineWithdrawn::NotFound {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        OfflineCommand::Sync {
            dry_run,
            max_signatures,
        } => sync(ctx, dry_run, max_signatures).await,
        OfflineCommand::List { petition } => {
            let batches = ctx.store.offline_batches(petition.as_deref()).await?;
            if ctx.json {
                ctx.print_json(&json!({ "batches": batches }))?;
            } else if batches.is_empty() {
                writeln!(ctx.out, "No offline batch.")?;
            } else {
                let rows = batches.iter().map(|b| {
                    vec![
                        b.petition.clone(),
                        b.id.clone(),
                        b.signatures.to_string(),
                        b.date.clone(),
                        b.withdrawn_at
                            .map(|t| format!("withdrawn {}", format_time(t)))
                            .unwrap_or_else(|| "counted".into()),
                        b.note.clone(),
                    ]
                });
                writeln!(
                    ctx.out,
                    "{}",
                    table(
                        &["petition", "batch", "signatures", "date", "status", "note"],
                        &["signatures"],
                        rows
                    )
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn sync(ctx: &mut Ctx<'_>, dry_run: bool, max_signatures: u64) -> anyhow::Result<ExitCode> {
    let root = if ctx.root.as_os_str().is_empty() {
        std::path::PathBuf::from(".")
    } else {
        ctx.root.clone()
    };
    let cfg = crate::config::load(&root)?;
    let content = crate::content::load(&root, &cfg, false).map_err(crate::diag::Diagnostics)?;
    let declared = crate::offline_sync::declared(&content, cfg.default_language());
    let plan = crate::offline_sync::plan(ctx.store, &declared, ctx.now).await?;
    let adding: u64 = plan.new.iter().map(|d| u64::from(d.batch.signatures)).sum();
    if dry_run {
        return print_plan(ctx, &declared, &plan, adding);
    }
    if adding > max_signatures {
        anyhow::bail!(
            "the front matter declares {} new batch(es) with {adding} signatures in all, more \
             than --max-signatures {max_signatures}: nothing recorded. Look at them with \
             --dry-run, then rerun with --max-signatures {adding}",
            plan.new.len()
        );
    }
    let report = crate::offline_sync::sync(ctx.store, &declared, ctx.now).await;
    if ctx.json {
        ctx.print_json(&json!({
            "declared": declared.len(), "added": report.added,
            "unchanged": report.unchanged, "refused": report.refused,
        }))?;
    } else {
        for added in &report.added {
            writeln!(
                ctx.out,
                "Recorded batch {added}: counted now and logged as an offline batch."
            )?;
        }
        for refused in &report.refused {
            writeln!(ctx.out, "Left as the store has it: {refused}")?;
        }
        writeln!(
            ctx.out,
            "{} batch(es) declared: {} recorded now, {} already recorded, {} left as the store has them.",
            declared.len(),
            report.added.len(),
            report.unchanged,
            report.refused.len()
        )?;
    }
    Ok(if report.refused.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_plan(
    ctx: &mut Ctx<'_>,
    declared: &[crate::offline_sync::Declared],
    plan: &crate::offline_sync::Plan,
    adding: u64,
) -> anyhow::Result<ExitCode> {
    let names: Vec<String> = plan
        .new
        .iter()
        .map(|d| format!("{}/{}", d.batch.petition, d.batch.id))
        .collect();
    if ctx.json {
        ctx.print_json(&json!({
            "dry_run": true, "declared": declared.len(), "would_add": names,
            "signatures": adding, "unchanged": plan.unchanged, "refused": plan.refused,
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    for (d, name) in plan.new.iter().zip(&names) {
        writeln!(
            ctx.out,
            "Would record {name}: {} signatures collected {} ({}).",
            d.batch.signatures,
            d.batch.date,
            d.file.display()
        )?;
    }
    for refused in &plan.refused {
        writeln!(ctx.out, "Would leave as the store has it: {refused}")?;
    }
    writeln!(
        ctx.out,
        "Dry run: {} batch(es) declared; {} would be recorded ({adding} signatures), {} are \
         recorded already, {} would be refused. Nothing recorded.",
        declared.len(),
        plan.new.len(),
        plan.unchanged,
        plan.refused.len()
    )?;
    Ok(ExitCode::SUCCESS)
}
