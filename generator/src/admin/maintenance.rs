//! `recount`, `erase`, `purge` and `audit`.

use super::criteria::{format_time, parse_time, rfc3339};
use super::out::{short, table};
use super::Ctx;
use anyhow::Context;
use cahier_function::store::admin::Criteria;
use cahier_function::store::{EraseOutcome, Status};
use serde_json::json;
use std::collections::BTreeSet;
use std::process::ExitCode;

/// Recomputes the count of one petition, or of every petition with records.
pub async fn recount(ctx: &mut Ctx<'_>, petition: Option<String>) -> anyhow::Result<ExitCode> {
    let petitions: Vec<String> = match petition {
        Some(p) => vec![p],
        None => {
            let mut set = BTreeSet::new();
            ctx.store
                .scan(&Criteria::default(), &mut |r| {
                    set.insert(r.petition);
                })
                .await?;
            set.into_iter().collect()
        }
    };
    let mut rows = Vec::new();
    for p in petitions {
        let before = ctx
            .store
            .count(&p)
            .await
            .with_context(|| format!("count of {p}"))?
            .count;
        let after = ctx
            .store
            .recount(&p)
            .await
            .with_context(|| format!("recount of {p}"))?
            .count;
        rows.push((p, before, after));
    }
    if ctx.json {
        let v: Vec<_> = rows
            .iter()
            .map(|(p, b, a)| json!({"petition": p, "before": b, "after": a, "repaired": b != a}))
            .collect();
        ctx.print_json(&json!({ "petitions": v }))?;
    } else {
        let cells = rows.iter().map(|(p, b, a)| {
            vec![
                p.clone(),
                b.to_string(),
                a.to_string(),
                if b == a { "ok" } else { "repaired" }.to_string(),
            ]
        });
        writeln!(
            ctx.out,
            "{}",
            table(
                &["petition", "counter before", "count from records", ""],
                &["counter before", "count from records"],
                cells
            )
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Erases one signer's personal data, found by the keyed hash of the canonical address.
pub async fn erase(
    ctx: &mut Ctx<'_>,
    email: &str,
    petition: Option<String>,
) -> anyhow::Result<ExitCode> {
    let canonical =
        (ctx.keys.canonical_email)(email).with_context(|| format!("--email {email:?}"))?;
    let hash = (ctx.keys.email_hash)(&canonical);
    let criteria = Criteria {
        petition,
        email_hash: Some(hash.clone()),
        ..Default::default()
    };
    let mut found = Vec::new();
    ctx.store
        .scan(&criteria, &mut |r| found.push((r.petition, r.status)))
        .await?;
    let mut rows = Vec::new();
    for (p, status) in found {
        let outcome = if status == Status::Erased {
            "already erased".to_string()
        } else {
            match ctx
                .store
                .erase(&p, &hash, ctx.now)
                .await
                .with_context(|| format!("erasing from {p}"))?
            {
                EraseOutcome::Erased { was_counted: true } => "erased, count corrected".to_string(),
                EraseOutcome::Erased { was_counted: false } => "erased".to_string(),
                EraseOutcome::NotFound => "not found".to_string(),
            }
        };
        rows.push((p, outcome));
    }
    if ctx.json {
        let v: Vec<_> = rows
            .iter()
            .map(|(p, o)| json!({"petition": p, "outcome": o}))
            .collect();
        ctx.print_json(&json!({ "signatures": v }))?;
    } else if rows.is_empty() {
        writeln!(ctx.out, "No signature with this address.")?;
    } else {
        writeln!(
            ctx.out,
            "{}",
            table(
                &["petition", "outcome"],
                &[],
                rows.into_iter().map(|(p, o)| vec![p, o])
            )
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Purges personal data older than the retention period; without `yes`, only counts.
pub async fn purge(ctx: &mut Ctx<'_>, older_than_days: u32, yes: bool) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(older_than_days >= 1, "--older-than-days must be at least 1");
    let cutoff = ctx.now - i64::from(older_than_days) * 86_400;
    let purged = if yes {
        ctx.store.purge(cutoff, ctx.now).await?
    } else {
        let mut n = 0u64;
        let criteria = Criteria {
            to: Some(cutoff),
            ..Default::default()
        };
        ctx.store
            .scan(&criteria, &mut |r| n += u64::from(!r.sealed.is_empty()))
            .await?;
        n
    };
    if ctx.json {
        ctx.print_json(&json!({"dry_run": !yes, "older_than": rfc3339(cutoff), "purged": purged}))?;
    } else if yes {
        writeln!(
            ctx.out,
            "Purged the personal data of {purged} signatures created before {}.",
            format_time(cutoff)
        )?;
    } else {
        writeln!(
            ctx.out,
            "Dry run: {purged} signatures created before {} still hold personal data. Re-run with --yes to purge.",
            format_time(cutoff)
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn audit(
    ctx: &mut Ctx<'_>,
    petition: Option<String>,
    since: Option<String>,
) -> anyhow::Result<ExitCode> {
    let since = match since {
        Some(s) => parse_time(&s, ctx.now).context("--since")?,
        None => ctx.now - 7 * 86_400,
    };
    let events = ctx.store.audit_log(petition.as_deref(), since).await?;
    if ctx.json {
        ctx.print_json(&serde_json::to_value(&events)?)?;
    } else {
        let rows = events.iter().map(|e| {
            vec![
                format_time(e.at),
                e.petition.clone(),
                e.event.clone(),
                short(&e.email_hash),
                e.detail.clone(),
            ]
        });
        writeln!(
            ctx.out,
            "{}",
            table(&["at", "petition", "event", "signer", "detail"], &[], rows)
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
