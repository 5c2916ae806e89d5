//! The organizer-side conformance suite: the same scenarios against every [`AdminStore`]
//! (DynamoDB on moto; SQLite once it implements the trait). Signatures are written through the
//! store's own sign path (`Store::sign`/`confirm`), then the admin operations are checked against
//! what was written, and every scenario ends with counts equal to the confirmed records.

use crate::conformance::{check_counts, now, signature};
use anyhow::{ensure, Context};
use cahier_function::store::admin::{AdminStore, Criteria};
use cahier_function::store::{
    Budget, ConfirmOutcome, EraseOutcome, NewSignature, SignOutcome, SignatureRecord, Status,
};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// Every scenario, in order; the error names the one that failed.
pub async fn run_all(store: Arc<dyn AdminStore>) -> anyhow::Result<()> {
    scan_by_criteria(store.clone())
        .await
        .context("admin scenario scan_by_criteria")?;
    invalidate_corrects_counts(store.clone())
        .await
        .context("admin scenario invalidate_corrects_counts")?;
    approve_and_reject_held(store.clone())
        .await
        .context("admin scenario approve_and_reject_held")?;
    release_over_budget_holds(store.clone())
        .await
        .context("admin scenario release_over_budget_holds")?;
    recount_from_records(store.clone())
        .await
        .context("admin scenario recount_from_records")?;
    purge_keeps_counts(store.clone())
        .await
        .context("admin scenario purge_keeps_counts")?;
    audit_log_in_order(store.clone())
        .await
        .context("admin scenario audit_log_in_order")?;
    log_follows_the_count(store.clone())
        .await
        .context("admin scenario log_follows_the_count")?;
    offline_batches_count_and_log(store.clone())
        .await
        .context("admin scenario offline_batches_count_and_log")?;
    invalidated_signers_leave_the_public_list(store.clone())
        .await
        .context("admin scenario invalidated_signers_leave_the_public_list")?;
    crate::regions_conformance::regions_follow_organizer_changes(store.clone())
        .await
        .context("admin scenario regions_follow_organizer_changes")?;
    suppression_counts_by_reason(store.clone())
        .await
        .context("admin scenario suppression_counts_by_reason")?;
    Ok(())
}

/// `cahier admin stats` reports the suppression list by reason: each address once, under the
/// first reason it was suppressed for.
pub async fn suppression_counts_by_reason(store: Arc<dyn AdminStore>) -> anyhow::Result<()> {
    use cahier_function::store::{Suppression, SuppressionReason};
    let before = store.suppression_counts().await?;
    let tag = format!("{:08x}", rand::random::<u32>());
    let entries = [
        ("a", SuppressionReason::Bounced),
        ("b", SuppressionReason::Bounced),
        ("c", SuppressionReason::Complained),
        // Already on the list: the first reason stays, nothing is counted twice.
        ("a", SuppressionReason::Complained),
    ];
    for (who, reason) in entries {
        store
            .suppress(&Suppression {
                email_hash: format!("{tag}{who}"),
                reason,
                petition: String::new(),
                at: now(),
            })
            .await?;
    }
    let after = store.suppression_counts().await?;
    let delta = |reason: &str| {
        after.get(reason).copied().unwrap_or(0) - before.get(reason).copied().unwrap_or(0)
    };
    ensure!(
        (delta("bounced"), delta("complained"), delta("unsubscribed")) == (2, 1, 0),
        "suppression counts went from {before:?} to {after:?}"
    );
    Ok(())
}

/// After an attack, the invalidated names leave the public list with the count, and come
/// back if the organizer sets them confirmed again.
pub async fn invalidated_signers_leave_the_public_list(
    store: Arc<dyn AdminStore>,
) -> anyhow::Result<()> {
    let p = petition("listed");
    let t = now();
    let h = hash("listed", 0);
    let mut s = sig(&p, &h, t, 30, "prefix-l", "example.org");
    s.listing = Some(b"sealed bot name".to_vec());
    store.sign(&s).await?;
    store.confirm(&p, &h, t).await?;
    let len = |store: Arc<dyn AdminStore>, p: String| async move {
        // DynamoDB's index is eventually consistent.
        let mut n = 0;
        for _ in 0..50 {
            n = store.listed(&p, 0, 10).await?.len();
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            if n == store.count(&p).await?.count as usize {
                break;
            }
        }
        anyhow::Ok(n)
    };
    ensure!(
        len(store.clone(), p.clone()).await? == 1,
        "listed once counted"
    );
    let changed = store
        .set_status(
            &p,
            std::slice::from_ref(&h),
            &[Status::Confirmed],
            Status::Invalidated,
            "bots",
            t + 5,
        )
        .await?;
    ensure!(changed == 1);
    ensure!(
        len(store.clone(), p.clone()).await? == 0,
        "invalidated: off the list"
    );
    store
        .set_status(
            &p,
            std::slice::from_ref(&h),
            &[Status::Invalidated],
            Status::Confirmed,
            "mistake",
            t + 9,
        )
        .await?;
    ensure!(
        len(store.clone(), p.clone()).await? == 1,
        "confirmed again: back"
    );
    Ok(())
}

/// A petition slug unique to this process and call.
fn petition(name: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "adm-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A fake e-mail hash (64 hex digits), distinct per `(tag, i)`.
fn hash(tag: &str, i: u32) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(format!("admin {tag} {i}").as_bytes()))
}

/// Everything the store holds for `petition` matching `criteria`, as a sorted set of hashes.
async fn scanned(store: &dyn AdminStore, criteria: &Criteria) -> anyhow::Result<BTreeSet<String>> {
    let mut found = Vec::new();
    store
        .scan(criteria, &mut |r: SignatureRecord| found.push(r))
        .await?;
    let hashes: BTreeSet<String> = found.iter().map(|r| r.email_hash.clone()).collect();
    ensure!(
        hashes.len() == found.len(),
        "a record was visited twice: {} visits, {} records",
        found.len(),
        hashes.len()
    );
    ensure!(
        found.iter().all(|r| criteria.matches(r)),
        "visited a record that does not match {criteria:?}"
    );
    Ok(hashes)
}

fn set(hashes: &[&String]) -> BTreeSet<String> {
    hashes.iter().map(|h| (*h).clone()).collect()
}

/// A signature of `p` created `ago` seconds before `t`, from prefix `prefix`, domain `domain`.
fn sig(p: &str, h: &str, t: i64, ago: i64, prefix: &str, domain: &str) -> NewSignature {
    let mut s = signature(p, h, t - ago);
    s.prefix_hash = prefix.into();
    s.email_domain = domain.into();
    s.ip_hash = format!("ip-{h}");
    s.expires_at = t + 3_600;
    s.flags = Vec::new();
    s
}

pub async fn scan_by_criteria(store: Arc<dyn AdminStore>) -> anyhow::Result<()> {
    let (p, other) = (petition("scan"), petition("scan-other"));
    let t = now();
    let a: Vec<String> = (0..4).map(|i| hash("scan-a", i)).collect();
    let b: Vec<String> = (0..3).map(|i| hash("scan-b", i)).collect();
    // Prefix A, example.org, an hour ago.
    for h in &a {
        store
            .sign(&sig(&p, h, t, 3_600, "prefix-a", "example.org"))
            .await?;
    }
    // Prefix B, Example.NET (mixed case), a minute ago; one flagged.
    for (i, h) in b.iter().enumerate() {
        let mut s = sig(&p, h, t, 60, "prefix-b", "example.net");
        if i == 0 {
            s.flags = vec!["honeypot".into()];
        }
        store.sign(&s).await?;
    }
    // Same prefix on another petition; and one expired pending signature that must not appear.
    let o = hash("scan-o", 0);
    store
        .sign(&sig(&other, &o, t, 60, "prefix-a", "example.org"))
        .await?;
    let expired = hash("scan-x", 0);
    let mut x = sig(&p, &expired, t, 7_200, "prefix-a", "example.org");
    x.expires_at = t - 10;
    store.sign(&x).await?;
    store.confirm(&p, &a[0], t).await?;

    let all_p = Criteria {
        petition: Some(p.clone()),
        ..Default::default()
    };
    let everything: BTreeSet<String> = a.iter().chain(&b).cloned().collect();
    ensure!(
        scanned(&*store, &all_p).await? == everything,
        "petition filter (and expired pending skipped)"
    );
    let by_prefix = Criteria {
        prefix_hashes: vec!["prefix-a".into()],
        ..Default::default()
    };
    let got = scanned(&*store, &by_prefix).await?;
    ensure!(
        got.is_superset(&a.iter().cloned().collect()) && got.contains(&o) && !got.contains(&b[0]),
        "prefix filter across petitions"
    );
    let c = Criteria {
        petition: Some(p.clone()),
        email_domain: Some("EXAMPLE.net".into()),
        ..Default::default()
    };
    ensure!(
        scanned(&*store, &c).await? == b.iter().cloned().collect(),
        "domain filter is case-insensitive"
    );
    let c = Criteria {
        petition: Some(p.clone()),
        from: Some(t - 600),
        to: Some(t + 1),
        ..Default::default()
    };
    ensure!(
        scanned(&*store, &c).await? == b.iter().cloned().collect(),
        "time window"
    );
    let c = Criteria {
        petition: Some(p.clone()),
        flags: vec!["honeypot".into()],
        ..Default::default()
    };
    ensure!(scanned(&*store, &c).await? == set(&[&b[0]]), "flag filter");
    let c = Criteria {
        petition: Some(p.clone()),
        statuses: vec![Status::Confirmed],
        ..Default::default()
    };
    ensure!(
        scanned(&*store, &c).await? == set(&[&a[0]]),
        "status filter"
    );
    let c = Criteria {
        petition: Some(p.clone()),
        email_hash: Some(a[1].clone()),
        ..Default::default()
    };
    ensure!(scanned(&*store, &c).await? == set(&[&a[1]]), "one signer");
    let c = Criteria {
        petition: Some(p.clone()),
        email_hash: Some(expired.clone()),
        ..Default::default()
    };
    ensure!(
        scanned(&*store, &c).await?.is_empty(),
        "an expired pending signature is gone, even asked by hash"
    );
    // The scanned record carries what the sign path stored.
    let mut one = Vec::new();
    store
        .scan(
            &Criteria {
                petition: Some(p.clone()),
                email_hash: Some(b[0].clone()),
                ..Default::default()
            },
            &mut |r| one.push(r),
        )
        .await?;
    let r = one.first().context("b[0] scanned")?;
    ensure!(
        r.prefix_hash == "prefix-b"
            && r.email_domain == "example.net"
            && r.flags == ["honeypot"]
            && r.sealed == b"age-encrypted personal data"
            && r.status == Status::Pending
            && r.created_at == t - 60,
        "record as stored: {r:?}"
    );
    check_counts(&*store, &p, &everything.into_iter().collect::<Vec<_>>()).await
}

pub async fn invalidate_corrects_counts(store: Arc<dyn AdminStore>) -> anyhow::Result<()> {
    let p = petition("invalidate");
    let t = now();
    let hashes: Vec<String> = (0..10).map(|i| hash("inv", i)).collect();
    for h in &hashes {
        store
            .sign(&sig(&p, h, t, 30, "prefix-x", "example.org"))
            .await?;
    }
    for h in &hashes[..6] {
        store.confirm(&p, h, t).await?;
    }
    ensure!(store.count(&p).await?.count == 6, "six confirmed");
    // Invalidate 4 confirmed and 2 pending (plus one unknown hash, which changes nothing).
    let mut batch: Vec<String> = hashes[2..8].to_vec();
    batch.push(hash("inv-unknown", 0));
    let from = [
        Status::Pending,
        Status::Confirmed,
        Status::Held,
        Status::ConfirmedHeld,
    ];
    let n = store
        .set_status(&p, &batch, &from, Status::Invalidated, "test batch", t)
        .await?;
    ensure!(n == 6, "set_status changed {n}, expected 6");
    ensure!(
        store.count(&p).await?.count == 2,
        "count after invalidation is {}, expected 2",
        store.count(&p).await?.count
    );
    for h in &hashes[2..8] {
        let r = store.get(&p, h).await?.context("invalidated record kept")?;
        ensure!(r.status == Status::Invalidated, "{h}: {:?}", r.status);
    }
    // Again: nothing left in `from`.
    let n = store
        .set_status(&p, &batch, &from, Status::Invalidated, "test batch", t)
        .await?;
    ensure!(n == 0, "second invalidation changed {n}");
    // Only statuses in `from` change.
    let n = store
        .set_status(
            &p,
            &hashes[..2],
            &[Status::Pending],
            Status::Invalidated,
            "only pending",
            t,
        )
        .await?;
    ensure!(n == 0, "confirmed ones are not pending, changed {n}");
    // An invalidated signature can no longer be confirmed.
    ensure!(
        store.confirm(&p, &hashes[6], t).await? == cahier_function::store::ConfirmOutcome::NotFound,
        "confirming an invalidated signature"
    );
    let events = store.audit_log(Some(&p), t).await?;
    let invalidated = events
        .iter()
        .filter(|e| e.event == "invalidated" && e.detail == "test batch")
        .count();
    ensure!(invalidated == 6, "{invalidated} invalidated audit events");
    check_counts(&*store, &p, &hashes).await
}

pub async fn approve_and_reject_held(store: Arc<dyn AdminStore>) -> anyhow::Result<()> {
    let p = petition("held");
    let t = now();
    let hashes: Vec<String> = (0..4).map(|i| hash("held", i)).collect();
    for h in &hashes {
        let mut s = sig(&p, h, t, 30, "prefix-h", "assemblee-nationale.fr");
        s.hold_reason = Some("protected domain".into());
        store.sign(&s).await?;
    }
    // The owners of 0 and 1 confirm: confirmed but held, not counted.
    store.confirm(&p, &hashes[0], t).await?;
    store.confirm(&p, &hashes[1], t).await?;
    ensure!(
        store.count(&p).await?.count == 0,
        "held ones are not counted"
    );
    let held = [Status::Held, Status::ConfirmedHeld];
    // Approve 0 (confirmed-held → confirmed, counted) and 2 (held → pending, must confirm).
    let n = store
        .set_status(
            &p,
            &[hashes[0].clone()],
            &held,
            Status::Confirmed,
            "approved",
            t,
        )
        .await?;
    ensure!(n == 1, "approve confirmed-held changed {n}");
    let n = store
        .set_status(
            &p,
            &[hashes[2].clone()],
            &held,
            Status::Pending,
            "approved",
            t,
        )
        .await?;
    ensure!(n == 1, "approve held changed {n}");
    ensure!(store.count(&p).await?.count == 1, "the approved one counts");
    let r = store.get(&p, &hashes[2]).await?.context("approved held")?;
    ensure!(r.status == Status::Pending, "{:?}", r.status);
    // It confirms like any pending signature now.
    store.confirm(&p, &hashes[2], t).await?;
    ensure!(
        store.count(&p).await?.count == 2,
        "confirmed after approval"
    );
    // Reject 1 and 3.
    let n = store
        .set_status(
            &p,
            &[hashes[1].clone(), hashes[3].clone()],
            &held,
            Status::Invalidated,
            "rejected",
            t,
        )
        .await?;
    ensure!(n == 2, "reject changed {n}");
    ensure!(
        store.count(&p).await?.count == 2,
        "rejections count nothing"
    );
    check_counts(&*store, &p, &hashes).await
}

/// A crowd behind one network, over its budget: held, some confirmed. Released, the confirmed
/// ones count (count corrected, `released` events), the others become ordinary pending ones;
/// a hold for review is not an over-budget hold.
pub async fn release_over_budget_holds(store: Arc<dyn AdminStore>) -> anyhow::Result<()> {
    let p = petition("release");
    let t = now();
    let hashes: Vec<String> = (0..5).map(|i| hash("release", i)).collect();
    // A budget that holds when exceeded (the small-domain kind).
    let budget = Budget::new(format!("ip24:crowd:{p}"), 1, 86_400);
    for (i, h) in hashes.iter().enumerate().take(4) {
        let mut s = sig(&p, h, t, 30, "prefix-crowd", "mobile.test");
        s.budgets = vec![budget.clone()];
        let outcome = store.sign(&s).await?;
        let want = if i == 0 {
            Status::Pending
        } else {
            Status::Held
        };
        ensure!(
            matches!(outcome, SignOutcome::Created { status, .. } if status == want),
            "signature {i}: {outcome:?}"
        );
    }
    let mut review = sig(&p, &hashes[4], t, 30, "prefix-crowd", "senat.fr");
    review.hold_reason = Some("protected domain".into());
    store.sign(&review).await?;
    for h in [&hashes[1], &hashes[2], &hashes[4]] {
        store.confirm(&p, h, t - 20).await?;
    }
    ensure!(store.count(&p).await?.count == 0, "nothing counted yet");

    let criteria = Criteria {
        petition: Some(p.clone()),
        statuses: vec![Status::Held, Status::ConfirmedHeld],
        over_budget_only: true,
        ..Default::default()
    };
    let found = scanned(&*store, &criteria).await?;
    ensure!(
        found == set(&[&hashes[1], &hashes[2], &hashes[3]]),
        "over-budget holds: {found:?}"
    );
    let mut batch: Vec<String> = found.into_iter().collect();
    batch.push(hashes[0].clone()); // pending: left alone
    let n = store.release(&p, &batch, "adm-test release", t).await?;
    ensure!(n == 3, "released {n}");
    ensure!(
        store.count(&p).await?.count == 2,
        "the two confirmed ones count"
    );
    let r = store.get(&p, &hashes[1]).await?.context("released")?;
    ensure!(
        r.status == Status::Confirmed && r.hold_reason.is_none() && r.expires_at.is_none(),
        "released confirmed-held: {r:?}"
    );
    let r = store.get(&p, &hashes[3]).await?.context("released held")?;
    ensure!(
        r.status == Status::Pending && r.hold_reason.is_none() && r.expires_at.is_some(),
        "released held: {r:?}"
    );
    store.confirm(&p, &hashes[3], t).await?;
    ensure!(store.count(&p).await?.count == 3, "confirmed after release");
    let r = store.get(&p, &hashes[4]).await?.context("review hold")?;
    ensure!(r.status == Status::ConfirmedHeld, "review hold kept: {r:?}");
    ensure!(
        store.release(&p, &batch, "again", t).await? == 0,
        "a second release changes nothing"
    );
    let events = store.audit_log(Some(&p), t - 100).await?;
    let released: BTreeSet<String> = events
        .iter()
        .filter(|e| e.event == "released" && e.detail == "adm-test release")
        .map(|e| e.email_hash.clone())
        .collect();
    ensure!(
        released == set(&[&hashes[1], &hashes[2], &hashes[3]]),
        "released events: {events:?}"
    );
    check_counts(&*store, &p, &hashes).await
}

pub async fn recount_from_records(store: Arc<dyn AdminStore>) -> anyhow::Result<()> {
    let p = petition("recount");
    let t = now();
    let hashes: Vec<String> = (0..12).map(|i| hash("recount", i)).collect();
    for h in &hashes {
        store
            .sign(&sig(&p, h, t, 30, "prefix-r", "example.org"))
            .await?;
    }
    for h in &hashes[..7] {
        store.confirm(&p, h, t).await?;
    }
    store.erase(&p, &hashes[0], t).await?;
    let c = store.recount(&p).await?;
    ensure!(c.count == 6, "recount says {}, expected 6", c.count);
    ensure!(store.count(&p).await?.count == 6, "count after recount");
    // Idempotent.
    ensure!(store.recount(&p).await?.count == 6, "second recount");
    ensure!(
        store.recount(&petition("recount-empty")).await?.count == 0,
        "an empty petition recounts to 0"
    );
    check_counts(&*store, &p, &hashes).await
}

pub async fn purge_keeps_counts(store: Arc<dyn AdminStore>) -> anyhow::Result<()> {
    let p = petition("purge");
    let t = now();
    let old: Vec<String> = (0..3).map(|i| hash("purge-old", i)).collect();
    let new: Vec<String> = (0..2).map(|i| hash("purge-new", i)).collect();
    for h in &old {
        store
            .sign(&sig(&p, h, t, 1_000, "prefix-p", "example.org"))
            .await?;
        store.confirm(&p, h, t).await?;
    }
    for h in &new {
        store
            .sign(&sig(&p, h, t, 10, "prefix-p", "example.org"))
            .await?;
        store.confirm(&p, h, t).await?;
    }
    let before = store.count(&p).await?.count;
    // Other scenarios' signatures may be older too; only ours are checked by hash.
    let n = store.purge(t - 500, t).await?;
    ensure!(n >= 3, "purged {n}, expected at least our 3");
    for h in &old {
        let r = store.get(&p, h).await?.context("purged record kept")?;
        ensure!(
            r.sealed.is_empty()
                && r.ip_hash.is_empty()
                && r.prefix_hash.is_empty()
                && r.network.is_empty(),
            "personal data left after purge: {r:?}"
        );
        ensure!(r.status == Status::Confirmed, "status kept: {:?}", r.status);
    }
    for h in &new {
        let r = store.get(&p, h).await?.context("recent record")?;
        ensure!(!r.sealed.is_empty(), "a recent signature was purged");
    }
    ensure!(
        store.count(&p).await?.count == before,
        "purge changed the count"
    );
    let again = store.purge(t - 500, t).await?;
    ensure!(again == 0, "a second purge found {again} to purge");
    let purged_events = store
        .audit_log(Some(&p), t)
        .await?
        .iter()
        .filter(|e| e.event == "purged")
        .count();
    ensure!(purged_events == 3, "{purged_events} purged audit events");
    let all: Vec<String> = old.iter().chain(&new).cloned().collect();
    check_counts(&*store, &p, &all).await
}

pub async fn audit_log_in_order(store: Arc<dyn AdminStore>) -> anyhow::Result<()> {
    let (p, other) = (petition("audit"), petition("audit-other"));
    let t = now();
    let h = hash("audit", 0);
    store
        .sign(&sig(&p, &h, t, 20, "prefix-a", "example.org"))
        .await?;
    store.confirm(&p, &h, t - 10).await?;
    store
        .set_status(
            &p,
            std::slice::from_ref(&h),
            &[Status::Confirmed],
            Status::Invalidated,
            "fraud",
            t,
        )
        .await?;
    store
        .sign(&sig(
            &other,
            &hash("audit-o", 0),
            t,
            5,
            "prefix-a",
            "example.org",
        ))
        .await?;
    let events = store.audit_log(Some(&p), t - 100).await?;
    let kinds: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    ensure!(
        kinds == ["created", "confirmed", "invalidated"],
        "events of {p}: {kinds:?}"
    );
    ensure!(
        events.iter().all(|e| e.petition == p && e.email_hash == h),
        "events name their petition and signer: {events:?}"
    );
    ensure!(
        events.windows(2).all(|w| w[0].at <= w[1].at),
        "oldest first: {events:?}"
    );
    ensure!(events[2].detail == "fraud", "detail kept: {:?}", events[2]);
    let recent = store.audit_log(Some(&p), t - 5).await?;
    ensure!(
        recent.len() == 1 && recent[0].event == "invalidated",
        "since filter: {recent:?}"
    );
    let all = store.audit_log(None, t - 100).await?;
    ensure!(
        all.iter().any(|e| e.petition == other) && all.iter().any(|e| e.petition == p),
        "without a petition, every petition's events"
    );
    check_counts(&*store, &p, &[h]).await
}

/// Every count change leaves its log event, numbered densely and in an order the tally
/// accepts (an uncount after what it cancels): confirmations (each with its receipt, whose
/// commitment is in the log), an erasure, an invalidation and an approval back, a release
/// after review, concurrent confirmations. The log's count is the store's.
pub async fn log_follows_the_count(store: Arc<dyn AdminStore>) -> anyhow::Result<()> {
    use cahier_tlog::tally::Counter;
    use cahier_tlog::{Commitment, Event};
    ensure!(store.records_log(), "the store records the log");
    let p = petition("log");
    let t = now();
    let hashes: Vec<String> = (0..8).map(|i| hash("log", i)).collect();
    for h in &hashes {
        store
            .sign(&sig(&p, h, t, 30, "prefix-l", "example.org"))
            .await?;
    }
    let mut receipts = Vec::new();
    for h in &hashes[..6] {
        let (outcome, secret) = store.confirm_with_receipt(&p, h, t).await?;
        ensure!(
            outcome
                == ConfirmOutcome::Confirmed {
                    status: Status::Confirmed
                },
            "{outcome:?}"
        );
        receipts.push(Commitment::new(
            &p,
            &secret.context("a receipt with the count")?,
        ));
    }
    let (again, none) = store.confirm_with_receipt(&p, &hashes[0], t).await?;
    ensure!(
        matches!(again, ConfirmOutcome::AlreadyConfirmed { .. }) && none.is_none(),
        "a second confirmation draws no receipt: {again:?}"
    );
    ensure!(store.erase(&p, &hashes[1], t).await? == EraseOutcome::Erased { was_counted: true });
    let from = [Status::Confirmed];
    ensure!(
        store
            .set_status(&p, &hashes[2..3], &from, Status::Invalidated, "log", t)
            .await?
            == 1
    );
    // Approved back after review: it counts again, under a new commitment.
    let approve = [Status::Invalidated];
    ensure!(
        store
            .set_status(&p, &hashes[2..3], &approve, Status::Confirmed, "ok", t)
            .await?
            == 1
    );
    // A held one, confirmed by its owner (no event: it does not count), then released.
    let mut held = sig(&p, &hashes[6], t, 30, "prefix-l", "example.org");
    held.email_hash = hash("log-held", 0);
    held.hold_reason = Some("protected domain".into());
    store.sign(&held).await?;
    store.confirm(&p, &held.email_hash, t).await?;
    let (before, _) = store.log_events(&p, 0, 1_000).await?;
    ensure!(
        before.len() == 9,
        "{} events before the release, expected 9",
        before.len()
    );
    let released = store
        .release(&p, &[held.email_hash.clone()], "review", t)
        .await?;
    ensure!(released == 1, "the held one was released: {released}");
    // Concurrent confirmations, as a crowd makes them.
    let crowd: Vec<String> = (0..24).map(|i| hash("log-crowd", i)).collect();
    for h in &crowd {
        store
            .sign(&sig(&p, h, t, 30, &format!("prefix-{h}"), "example.org"))
            .await?;
    }
    let mut tasks = tokio::task::JoinSet::new();
    for h in crowd.clone() {
        let (store, p) = (store.clone(), p.clone());
        tasks.spawn(async move { store.confirm(&p, &h, t).await });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }

    // Two sequencers numbering the crowd's events at once (one is the plan; two must not
    // number an event twice or leave a gap).
    let (a, b) = tokio::join!(
        store.log_events(&p, 0, 1_000),
        store.log_events(&p, 0, 1_000)
    );
    let (events, total) = a?;
    ensure!(b?.0 == events, "two sequencers at once read different logs");
    ensure!(
        total == events.len() as u64,
        "{total} events in all, {} read",
        events.len()
    );
    for (i, e) in events.iter().enumerate() {
        ensure!(e.seq == i as u64, "event {i} is numbered {}", e.seq);
    }
    let mut counter = Counter::default();
    for e in &events {
        counter.add(&e.entry);
    }
    let tally = counter.finish();
    ensure!(
        tally.anomalies.is_empty(),
        "the tally found {:?}",
        tally.anomalies
    );
    let count = store.count(&p).await?.count;
    ensure!(
        tally.count == count,
        "the log counts {}, the store {count}",
        tally.count
    );
    ensure!(count == 6 - 1 + 1 + 24, "count {count}");
    ensure!(
        tally.uncounted.get("erased") == Some(&1) && tally.uncounted.get("invalidated") == Some(&1),
        "uncounted by reason: {:?}",
        tally.uncounted
    );
    for c in &receipts {
        ensure!(
            events
                .iter()
                .any(|e| e.entry.event == Event::Counted && e.entry.commitment == *c),
            "a receipt's commitment is not in the log"
        );
    }
    // Numbered once: read again, from the middle, the same events.
    let (part, total_again) = store.log_events(&p, 3, 4).await?;
    ensure!(
        total_again == total,
        "the log grew from {total} to {total_again} on a read"
    );
    ensure!(
        part.len() == 4 && part[..] == events[3..7],
        "events 3..7 read again differ"
    );
    let mut all = hashes;
    all.push(held.email_hash.clone());
    all.extend(crowd);
    check_counts(&*store, &p, &all).await
}

/// Paper signatures: a batch adds its size to the count and one offline entry to the log,
/// declaring it again changes nothing, another size under its id is refused, a withdrawal
/// takes it back with a `withdrawn` entry, and a recount keeps the batches that stand.
pub async fn offline_batches_count_and_log(store: Arc<dyn AdminStore>) -> anyhow::Result<()> {
    use cahier_function::store::admin::{OfflineAdded, OfflineBatch, OfflineWithdrawn};
    use cahier_tlog::tally::Counter;
    let p = petition("offline");
    let t = now();
    let h = hash("offline", 0);
    store
        .sign(&sig(&p, &h, t, 30, "prefix-o", "example.org"))
        .await?;
    store.confirm(&p, &h, t).await?;
    let batch = |id: &str, n: u32| OfflineBatch {
        petition: p.clone(),
        id: id.into(),
        signatures: n,
        date: "2026-11-28".into(),
        note: "marché du samedi".into(),
        added_at: t,
        withdrawn_at: None,
    };
    ensure!(store.add_offline(&batch("marche", 120), t).await? == OfflineAdded::Added);
    ensure!(store.add_offline(&batch("porte-a-porte", 35), t).await? == OfflineAdded::Added);
    ensure!(
        store.add_offline(&batch("marche", 120), t).await? == OfflineAdded::AlreadyRecorded,
        "the same batch twice counts once"
    );
    let other = store.add_offline(&batch("marche", 1200), t).await;
    ensure!(
        other.as_ref().is_err_and(|e| e.to_string().contains("120")),
        "another size under a recorded id: {other:?}"
    );
    let c = store.count(&p).await?;
    ensure!(
        c.count == 1 + 120 + 35 && c.offline == 155 && c.last_confirmed_at == t,
        "the paper part and the last confirmation: {c:?}"
    );
    ensure!(
        store.withdraw_offline(&p, "porte-a-porte", t + 60).await? == OfflineWithdrawn::Withdrawn
    );
    ensure!(
        store.withdraw_offline(&p, "porte-a-porte", t + 61).await?
            == OfflineWithdrawn::AlreadyWithdrawn
    );
    ensure!(store.withdraw_offline(&p, "nowhere", t).await? == OfflineWithdrawn::NotFound);
    ensure!(
        store
            .add_offline(&batch("porte-a-porte", 35), t)
            .await
            .is_err(),
        "a withdrawn id is not reused"
    );
    let c = store.count(&p).await?;
    ensure!(c.count == 121 && c.offline == 120, "{c:?}");
    let recounted = store.recount(&p).await?;
    ensure!(
        recounted.count == 121 && recounted.offline == 120 && recounted.last_confirmed_at == t,
        "the recount keeps the batch and the last confirmation: {recounted:?}"
    );
    let c = store.count(&p).await?;
    ensure!(
        c.count == 121 && c.offline == 120 && c.last_confirmed_at == t,
        "{c:?}"
    );
    let listed = store.offline_batches(Some(&p)).await?;
    ensure!(
        listed
            .iter()
            .map(|b| (b.id.as_str(), b.withdrawn_at.is_some()))
            .collect::<Vec<_>>()
            == [("marche", false), ("porte-a-porte", true)],
        "{listed:?}"
    );
    let (events, _) = store.log_events(&p, 0, 100).await?;
    let mut counter = Counter::default();
    for e in &events {
        counter.add(&e.entry);
    }
    let tally = counter.finish();
    ensure!(tally.anomalies.is_empty(), "{:?}", tally.anomalies);
    ensure!(
        tally.count == 121
            && tally.offline_batches == 2
            && tally.offline_signatures == 155
            && tally.offline_withdrawn == 35
            && tally.uncounted.get("withdrawn") == Some(&1),
        "{tally:?}"
    );
    Ok(())
}
