//! `invalidate`, `approve`, `reject`, `release`: bulk status changes by criteria. Without `--yes` they only
//! count; an empty condition is refused; changes go in batches with an audit record.

use super::out::table;
use super::unseal::Identities;
use super::{BulkArgs, Ctx, BATCH};
use cahier_function::store::admin::Criteria;
use cahier_function::store::{AuditEvent, Status};
use serde_json::json;
use std::collections::BTreeMap;
use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Invalidate,
    Approve,
    Reject,
    /// Held signatures count once confirmed; only over-budget holds unless `include_protected`.
    Release {
        include_protected: bool,
    },
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::Invalidate => "invalidate",
            Action::Approve => "approve",
            Action::Reject => "reject",
            Action::Release { .. } => "release",
        }
    }

    fn past(self) -> &'static str {
        match self {
            Action::Invalidate => "invalidated",
            Action::Approve => "approved",
            Action::Reject => "rejected",
            Action::Release { .. } => "released",
        }
    }

    /// Statuses the action applies to.
    fn applies_to(self) -> &'static [Status] {
        match self {
            Action::Invalidate => &[
                Status::Pending,
                Status::Confirmed,
                Status::Held,
                Status::ConfirmedHeld,
            ],
            Action::Approve | Action::Reject | Action::Release { .. } => {
                &[Status::Held, Status::ConfirmedHeld]
            }
        }
    }

    /// The new status of a signature in `from`.
    fn target(self, from: Status) -> Status {
        match (self, from) {
            (Action::Approve | Action::Release { .. }, Status::ConfirmedHeld) => Status::Confirmed,
            (Action::Approve | Action::Release { .. }, _) => Status::Pending,
            _ => Status::Invalidated,
        }
    }
}

/// A signature a bulk change will touch.
struct Hit {
    petition: String,
    email_hash: String,
    status: Status,
}

pub async fn run(ctx: &mut Ctx<'_>, action: Action, args: BulkArgs) -> anyhow::Result<ExitCode> {
    let mut criteria = args.criteria.to_criteria(ctx.keys, ctx.now)?;
    // Releasing a petition's held signatures after an attack is a normal request; any other
    // change needs a narrower condition.
    let releases_petition = matches!(action, Action::Release { .. }) && criteria.petition.is_some();
    anyhow::ensure!(
        !criteria.is_empty() || releases_petition,
        "refusing to {} without a condition: give --from/--to, --ip-prefix, --domain, --email, --flag or --name-pattern",
        action.name()
    );
    criteria.over_budget_only = matches!(
        action,
        Action::Release {
            include_protected: false
        }
    );
    criteria.statuses = if criteria.statuses.is_empty() {
        action.applies_to().to_vec()
    } else {
        let asked = std::mem::take(&mut criteria.statuses);
        let kept: Vec<Status> = asked
            .iter()
            .copied()
            .filter(|s| action.applies_to().contains(s))
            .collect();
        anyhow::ensure!(
            !kept.is_empty(),
            "{} applies only to {:?}, not {asked:?}",
            action.name(),
            action.applies_to()
        );
        kept
    };
    let identities = match (&args.identity, criteria.needs_decryption()) {
        (Some(path), true) => Some(Identities::from_file(path)?),
        (None, true) => {
            anyhow::bail!("--name-pattern needs --identity PATH to decrypt names locally")
        }
        _ => None,
    };

    let (hits, undecryptable) = collect(ctx, &criteria, identities.as_ref()).await?;
    let mut breakdown: BTreeMap<(String, &'static str), u64> = BTreeMap::new();
    for h in &hits {
        *breakdown
            .entry((h.petition.clone(), h.status.as_str()))
            .or_default() += 1;
    }
    let matched = hits.len() as u64;
    let summary_rows = || {
        breakdown
            .iter()
            .map(|((p, s), n)| vec![p.clone(), s.to_string(), n.to_string()])
            .collect::<Vec<_>>()
    };
    let breakdown_json = || {
        breakdown
            .iter()
            .map(|((p, s), n)| json!({"petition": p, "status": s, "count": n}))
            .collect::<Vec<_>>()
    };

    if !args.yes {
        if ctx.json {
            ctx.print_json(&json!({
                "dry_run": true, "action": action.name(), "matched": matched,
                "undecryptable": undecryptable, "by_petition": breakdown_json(),
            }))?;
        } else {
            writeln!(
                ctx.out,
                "{}",
                table(&["petition", "status", "count"], &["count"], summary_rows())
            )?;
            if undecryptable > 0 {
                writeln!(ctx.out, "{undecryptable} signatures without readable personal data were not matched by name.")?;
            }
            writeln!(
                ctx.out,
                "Dry run: {matched} signatures would be {}. Nothing changed. Re-run with --yes --expect {matched} to apply.",
                action.past()
            )?;
        }
        return Ok(ExitCode::SUCCESS);
    }

    if let Some(expected) = args.expect {
        if expected != matched {
            let msg =
                format!("expected {expected} signatures, {matched} match now: nothing changed");
            if ctx.json {
                ctx.print_json(&json!({"error": msg, "matched": matched, "expected": expected}))?;
            } else {
                writeln!(ctx.out, "{msg}")?;
            }
            return Ok(ExitCode::from(1));
        }
    }

    let audit_id = new_audit_id(ctx.now);
    let detail = format!("{audit_id} {} {}", action.name(), criteria.describe());
    // petition → from-status → hashes
    let mut plan: BTreeMap<&str, BTreeMap<&str, (Status, Vec<String>)>> = BTreeMap::new();
    for h in &hits {
        let by_status = plan.entry(&h.petition).or_default();
        by_status
            .entry(h.status.as_str())
            .or_insert_with(|| (h.status, Vec::new()))
            .1
            .push(h.email_hash.clone());
    }
    let mut changed_total = 0;
    let mut per_petition = Vec::new();
    for (petition, by_status) in &plan {
        let mut changed = 0;
        let mut matched_here = 0;
        for (from, hashes) in by_status.values() {
            matched_here += hashes.len() as u64;
            for chunk in hashes.chunks(BATCH) {
                changed += match action {
                    Action::Release { .. } => {
                        ctx.store.release(petition, chunk, &detail, ctx.now).await?
                    }
                    _ => {
                        ctx.store
                            .set_status(
                                petition,
                                chunk,
                                &[*from],
                                action.target(*from),
                                &detail,
                                ctx.now,
                            )
                            .await?
                    }
                };
            }
        }
        ctx.store
            .audit(&AuditEvent {
                petition: petition.to_string(),
                email_hash: String::new(),
                event: format!("bulk_{}", action.name()),
                at: ctx.now,
                detail: format!("{detail} matched={matched_here} changed={changed}"),
            })
            .await?;
        let count = ctx.store.count(petition).await?.count;
        changed_total += changed;
        per_petition.push((petition.to_string(), matched_here, changed, count));
    }

    if ctx.json {
        let rows: Vec<_> = per_petition
            .iter()
            .map(|(p, m, c, n)| json!({"petition": p, "matched": m, "changed": c, "count": n}))
            .collect();
        ctx.print_json(&json!({
            "dry_run": false, "action": action.name(), "audit_id": audit_id,
            "matched": matched, "changed": changed_total, "by_petition": rows,
        }))?;
    } else {
        let rows = per_petition
            .iter()
            .map(|(p, m, c, n)| vec![p.clone(), m.to_string(), c.to_string(), n.to_string()]);
        let headers = ["petition", "matched", "changed", "count now"];
        writeln!(ctx.out, "{}", table(&headers, &headers[1..], rows))?;
        writeln!(
            ctx.out,
            "{changed_total} of {matched} signatures changed; audit id {audit_id}"
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Scans, then filters by name after local decryption if needed. Returns the hits and how many
/// candidates had no readable personal data.
async fn collect(
    ctx: &Ctx<'_>,
    criteria: &Criteria,
    ids: Option<&Identities>,
) -> anyhow::Result<(Vec<Hit>, u64)> {
    let mut hits = Vec::new();
    let mut undecryptable = 0;
    ctx.store
        .scan(criteria, &mut |r| {
            if !criteria.matches(&r) {
                return; // defensive: a store must only visit matches
            }
            if let Some(ids) = ids {
                match ids.open(&r.sealed) {
                    Ok(p) if criteria.matches_name(&p.name) => {}
                    Ok(_) => return,
                    Err(_) => {
                        undecryptable += 1;
                        return;
                    }
                }
            }
            hits.push(Hit {
                petition: r.petition,
                email_hash: r.email_hash,
                status: r.status,
            });
        })
        .await?;
    Ok((hits, undecryptable))
}

/// `adm-20201117T180000Z-1a2b3c4d`: the time of the change and a random-enough suffix.
fn new_audit_id(now: i64) -> String {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let stamp = time::OffsetDateTime::from_unix_timestamp(now)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| now.to_string());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "adm-{stamp}-{:08x}",
        nanos ^ std::process::id().rotate_left(16)
    )
}
