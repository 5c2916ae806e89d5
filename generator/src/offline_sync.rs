//! Paper batches declared in front matter (`offline:` in a petition's `index.md`), recorded
//! in the store: by `cahier serve` after each build, and by `cahier admin offline sync` on any
//! store (the production table included). Each batch is recorded once, by its id, exactly as
//! `cahier admin offline add` records it (count and transparency log); declaring it again
//! changes nothing. A batch that the store has with another size, or withdrawn, is reported
//! and left as the store has it: the front matter never silently rewrites a count.

use crate::content::Content;
use cahier_function::store::admin::{AdminStore, OfflineAdded, OfflineBatch};
use std::path::PathBuf;

/// One declared batch and the file that declares it (for messages).
#[derive(Debug, Clone)]
pub struct Declared {
    pub batch: OfflineBatch,
    pub file: PathBuf,
}

/// Every batch the content declares, in petition order.
pub fn declared(content: &Content, default_language: &str) -> Vec<Declared> {
    content
        .petitions
        .iter()
        .flat_map(|p| {
            let file = p
                .texts
                .get(default_language)
                .map(|t| t.file.clone())
                .unwrap_or_else(|| p.dir.join("index.md"));
            p.meta.offline.iter().map(move |d| Declared {
                batch: d.batch(&p.slug),
                file: file.clone(),
            })
        })
        .collect()
}

/// What a sync did.
#[derive(Debug, Default)]
pub struct SyncReport {
    /// `petition/id` of the batches recorded now.
    pub added: Vec<String>,
    /// Batches the store already had, as declared.
    pub unchanged: usize,
    /// Batches left as the store has them, with why (`file: batch id: reason`).
    pub refused: Vec<String>,
}

/// What a sync would do, read from the store before anything is written.
#[derive(Debug, Default)]
pub struct Plan {
    /// Batches the store does not have.
    pub new: Vec<Declared>,
    /// Batches the store has as declared.
    pub unchanged: usize,
    /// Batches that would be refused, with why (`file: batch id: reason`).
    pub refused: Vec<String>,
}

/// Sorts the declared batches by what the store has.
pub async fn plan(store: &dyn AdminStore, declared: &[Declared], now: i64) -> anyhow::Result<Plan> {
    let recorded = store.offline_batches(None).await?;
    let mut plan = Plan::default();
    for d in declared {
        let b = &d.batch;
        let refuse = |why: String| format!("{}: offline batch {}: {why}", d.file.display(), b.id);
        if let Err(e) = b.check_date_not_after(now) {
            plan.refused.push(refuse(format!("{e:#}")));
            continue;
        }
        match recorded
            .iter()
            .find(|r| r.petition == b.petition && r.id == b.id)
        {
            None => plan.new.push(d.clone()),
            Some(r) if r.withdrawn_at.is_some() => {
                plan.refused.push(refuse("withdrawn from the store".into()))
            }
            Some(r) if r.signatures != b.signatures => plan.refused.push(refuse(format!(
                "already recorded with {} signatures",
                r.signatures
            ))),
            Some(_) => plan.unchanged += 1,
        }
    }
    Ok(plan)
}

/// Records the batches the store does not have yet; refuses any dated after today.
pub async fn sync(store: &dyn AdminStore, declared: &[Declared], now: i64) -> SyncReport {
    let mut report = SyncReport::default();
    for d in declared {
        if let Err(e) = d.batch.check_date_not_after(now) {
            report.refused.push(format!(
                "{}: offline batch {}: {e:#}",
                d.file.display(),
                d.batch.id
            ));
            continue;
        }
        let mut batch = d.batch.clone();
        batch.added_at = now;
        match store.add_offline(&batch, now).await {
            Ok(OfflineAdded::Added) => report
                .added
                .push(format!("{}/{}", batch.petition, batch.id)),
            Ok(OfflineAdded::AlreadyRecorded) => report.unchanged += 1,
            Err(e) => report.refused.push(format!(
                "{}: offline batch {}: {e:#}",
                d.file.display(),
                batch.id
            )),
        }
    }
    report
}
