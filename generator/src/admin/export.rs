//! `export`: CSV (or JSON) of signatures, decrypted locally with the organizer's identity. The
//! public export lists only confirmed signers who opted in, by name, and never a held one.

use super::criteria::rfc3339;
use super::out::short;
use super::unseal::{Identities, Personal};
use super::{Ctx, ExportArgs};
use anyhow::Context;
use cahier_function::csv_safe::SafeCsv;
use cahier_function::store::admin::Criteria;
use cahier_function::store::{SignatureRecord, Status};
use serde_json::json;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

const FIXED: [&str; 11] = [
    "petition",
    "status",
    "created_at",
    "confirmed_at",
    "lang",
    "name",
    "email",
    "public",
    "newsletter",
    "flags",
    "hold_reason",
];

pub async fn run(ctx: &mut Ctx<'_>, args: ExportArgs) -> anyhow::Result<ExitCode> {
    let ids = Identities::from_file(&args.identity)?;
    let statuses = if args.public_only || args.statuses.is_empty() {
        vec![Status::Confirmed]
    } else {
        args.statuses.iter().map(|s| Status::from(*s)).collect()
    };
    let criteria = Criteria {
        petition: args.petition.clone(),
        statuses,
        ..Default::default()
    };
    let mut records = Vec::new();
    ctx.store
        .scan(&criteria, &mut |r| {
            if criteria.matches(&r) && (!args.public_only || (r.public && r.hold_reason.is_none()))
            {
                records.push(r);
            }
        })
        .await?;
    records.sort_by(|a, b| {
        (&a.petition, a.created_at, &a.email_hash).cmp(&(&b.petition, b.created_at, &b.email_hash))
    });

    let mut rows: Vec<(SignatureRecord, Personal)> = Vec::with_capacity(records.len());
    let mut skipped = 0;
    for r in records {
        if r.sealed.is_empty() {
            skipped += 1; // erased or purged: nothing to export
            continue;
        }
        let p = ids.open(&r.sealed).with_context(|| {
            format!(
                "signature #{} of {} with the identity in {}",
                short(&r.email_hash),
                r.petition,
                args.identity.display()
            )
        })?;
        rows.push((r, p));
    }

    let bytes = if ctx.json {
        to_json(&rows, args.public_only)?
    } else {
        to_csv(&rows, args.public_only)?
    };
    match &args.output {
        Some(path) => {
            write_private(path, &bytes)?;
            writeln!(
                ctx.out,
                "Exported {} signatures to {} ({skipped} without personal data skipped).",
                rows.len(),
                path.display()
            )?;
        }
        None => ctx.out.write_all(&bytes)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn field_names(rows: &[(SignatureRecord, Personal)]) -> Vec<String> {
    let names: BTreeSet<&String> = rows.iter().flat_map(|(_, p)| p.fields.keys()).collect();
    names.into_iter().cloned().collect()
}

fn column(name: &str) -> String {
    if FIXED.contains(&name) {
        format!("field_{name}")
    } else {
        name.to_string()
    }
}

fn to_csv(rows: &[(SignatureRecord, Personal)], public_only: bool) -> anyhow::Result<Vec<u8>> {
    let mut w = SafeCsv::new();
    if public_only {
        w.write_record(["petition", "name", "confirmed_at"])?;
        for (r, p) in rows {
            w.write_record([
                &r.petition,
                &p.name,
                &r.confirmed_at.map(rfc3339).unwrap_or_default(),
            ])?;
        }
    } else {
        let fields = field_names(rows);
        w.write_record(
            FIXED
                .iter()
                .map(|s| s.to_string())
                .chain(fields.iter().map(|f| column(f))),
        )?;
        for (r, p) in rows {
            let fixed = [
                r.petition.clone(),
                r.status.as_str().to_string(),
                rfc3339(r.created_at),
                r.confirmed_at.map(rfc3339).unwrap_or_default(),
                r.lang.clone(),
                p.name.clone(),
                p.email.clone(),
                r.public.to_string(),
                r.newsletter.to_string(),
                r.flags.join(" "),
                r.hold_reason.clone().unwrap_or_default(),
            ];
            let extra = fields
                .iter()
                .map(|f| p.fields.get(f).cloned().unwrap_or_default());
            w.write_record(fixed.into_iter().chain(extra))?;
        }
    }
    w.finish()
}

fn to_json(rows: &[(SignatureRecord, Personal)], public_only: bool) -> anyhow::Result<Vec<u8>> {
    let v: Vec<_> = rows
        .iter()
        .map(|(r, p)| {
            if public_only {
                json!({"petition": r.petition, "name": p.name, "confirmed_at": r.confirmed_at.map(rfc3339)})
            } else {
                json!({
                    "petition": r.petition, "status": r.status, "created_at": rfc3339(r.created_at),
                    "confirmed_at": r.confirmed_at.map(rfc3339), "lang": r.lang, "name": p.name,
                    "email": p.email, "public": r.public, "newsletter": r.newsletter, "flags": r.flags,
                    "hold_reason": r.hold_reason, "fields": p.fields,
                })
            }
        })
        .collect();
    let mut bytes = serde_json::to_vec_pretty(&v)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Personal data: the file is readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("while creating {}", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("while writing {}", path.display()))?;
    file.sync_all()
        .with_context(|| format!("while writing {}", path.display()))
}
