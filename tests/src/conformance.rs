//! The store conformance suite: the same scenarios against every [`Store`] implementation
//! (SQLite and DynamoDB on moto). Each scenario uses its own petition slugs, so one store can
//! run them all, and ends by checking that the counter equals the confirmed records.
//!
//! Times are real (`now`), since `get` judges expiry by the clock.

use anyhow::{ensure, Context};
use cahier_function::store::{
    AuditEvent, Budget, ConfirmOutcome, EraseOutcome, NewSignature, OverBudget, SignOutcome,
    Status, Store,
};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// Every scenario, in order; the error names the one that failed.
pub async fn run_all(store: Arc<dyn Store>) -> anyhow::Result<()> {
    sign_and_dedup(store.clone())
        .await
        .context("scenario sign_and_dedup")?;
    concurrent_signers(store.clone())
        .await
        .context("scenario concurrent_signers")?;
    concurrent_confirms(store.clone())
        .await
        .context("scenario concurrent_confirms")?;
    expiry(store.clone()).await.context("scenario expiry")?;
    erase(store.clone()).await.context("scenario erase")?;
    held_not_counted(store.clone())
        .await
        .context("scenario held_not_counted")?;
    budgets_hold(store.clone())
        .await
        .context("scenario budgets_hold")?;
    take_budget_windows(store.clone())
        .await
        .context("scenario take_budget_windows")?;
    an_exhausted_budget_takes_no_other(store.clone())
        .await
        .context("scenario an_exhausted_budget_takes_no_other")?;
    alarm_budgets_never_stop_the_others(store.clone())
        .await
        .context("scenario alarm_budgets_never_stop_the_others")?;
    network_budgets_queue_mails_and_confirmations_earn_them_back(store.clone())
        .await
        .context("scenario network_budgets_queue_mails_and_confirmations_earn_them_back")?;
    public_list_follows_the_count(store.clone())
        .await
        .context("scenario public_list_follows_the_count")?;
    public_list_pages_partition_it(store.clone())
        .await
        .context("scenario public_list_pages_partition_it")?;
    suppression_list_keeps_the_first_reason(store.clone())
        .await
        .context("scenario suppression_list_keeps_the_first_reason")?;
    crate::regions_conformance::regions_follow_the_count(store.clone())
        .await
        .context("scenario regions_follow_the_count")?;
    marks_are_set_once_under_a_race(store.clone())
        .await
        .context("scenario marks_are_set_once_under_a_race")?;
    Ok(())
}

/// Of many concurrent `mark_once` calls for one key, exactly one records it and every other
/// one reads back that call's value; a key of another petition is apart.
pub async fn marks_are_set_once_under_a_race(store: Arc<dyn Store>) -> anyhow::Result<()> {
    let p = petition("marked");
    let t = now();
    let racers: Vec<_> = (0..16i64)
        .map(|i| {
            let (store, p) = (store.clone(), p.clone());
            tokio::spawn(async move { store.mark_once(&p, "milestone-50", 100 + i, t).await })
        })
        .collect();
    let mut results = Vec::new();
    for r in racers {
        results.push(r.await??);
    }
    let winners: Vec<i64> = (0..16i64)
        .filter(|i| results[*i as usize].is_none())
        .map(|i| 100 + i)
        .collect();
    anyhow::ensure!(winners.len() == 1, "one call records it: {results:?}");
    anyhow::ensure!(
        results.iter().flatten().all(|v| *v == winners[0]),
        "the others read the first value back: {results:?}"
    );
    anyhow::ensure!(
        store.mark_once(&p, "milestone-50", 7, t + 1).await? == Some(winners[0]),
        "later too"
    );
    anyhow::ensure!(store.mark_once(&p, "milestone-100", 7, t).await?.is_none());
    let other = petition("marked-other");
    anyhow::ensure!(store
        .mark_once(&other, "milestone-50", 9, t)
        .await?
        .is_none());
    Ok(())
}

/// An address goes on the suppression list once, with its first reason; the signature is
/// untouched (still counted), and erasing it does not take the address off the list.
pub async fn suppression_list_keeps_the_first_reason(store: Arc<dyn Store>) -> anyhow::Result<()> {
    use cahier_function::store::{Suppression, SuppressionReason};
    let p = petition("suppressed");
    let t = now();
    let h = hash(950);
    anyhow::ensure!(store.suppression(&h).await?.is_none(), "empty at first");
    store.sign(&signature(&p, &h, t)).await?;
    store.confirm(&p, &h, t).await?;
    let entry = |reason| Suppression {
        email_hash: h.clone(),
        reason,
        petition: p.clone(),
        at: t,
    };
    anyhow::ensure!(
        store
            .suppress(&entry(SuppressionReason::Unsubscribed))
            .await?
    );
    anyhow::ensure!(
        !store
            .suppress(&entry(SuppressionReason::Complained))
            .await?,
        "a second entry changes nothing"
    );
    let got = store.suppression(&h).await?.context("suppressed")?;
    anyhow::ensure!(got == entry(SuppressionReason::Unsubscribed), "{got:?}");
    anyhow::ensure!(store.count(&p).await?.count == 1, "still counted");
    store.erase(&p, &h, t + 1).await?;
    anyhow::ensure!(
        store.suppression(&h).await?.is_some(),
        "erasing the signature keeps the address suppressed"
    );
    anyhow::ensure!(store.suppression(&hash(951)).await?.is_none());
    Ok(())
}

/// The public list holds exactly the signatures that count and carry an entry: none before
/// confirmation, none held, none without an entry; newest first, paged; an erasure takes the
/// entry away, `unlist` too (once).
/// Pages of the list, read one after the other, are the whole list newest first, each entry
/// once — with many entries counted in the same second (ties) and spread over the index's
/// shards on DynamoDB.
pub async fn public_list_pages_partition_it(store: Arc<dyn Store>) -> anyhow::Result<()> {
    let p = petition("listed-pages");
    let t = now();
    let total = 130u32;
    for i in 0..total {
        let mut sig = signature(&p, &hash(2000 + i), t);
        sig.listing = Some(format!("entry {i}").into_bytes());
        store.sign(&sig).await?;
        // Three at a time in the same second.
        store
            .confirm(&p, &hash(2000 + i), t + (i / 3) as i64)
            .await?;
    }
    let mut whole = Vec::new();
    for _ in 0..50 {
        whole = store.listed(&p, 0, 1000).await?;
        if whole.len() >= total as usize {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    ensure!(whole.len() == total as usize, "{} listed", whole.len());
    ensure!(whole.windows(2).all(|w| w[0].at >= w[1].at), "newest first");
    let mut paged = Vec::new();
    for offset in (0..total + 50).step_by(50) {
        paged.extend(store.listed(&p, offset, 50).await?);
    }
    let sealed = |l: &[cahier_function::store::Listed]| -> Vec<Vec<u8>> {
        l.iter().map(|e| e.sealed.clone()).collect()
    };
    ensure!(
        sealed(&paged) == sealed(&whole),
        "pages of 50 give the whole list in its order"
    );
    ensure!(store.listed(&p, 129, 50).await?.len() == 1);
    Ok(())
}

pub async fn public_list_follows_the_count(store: Arc<dyn Store>) -> anyhow::Result<()> {
    let p = petition("listed");
    let t = now();
    let h: Vec<String> = (900..905).map(hash).collect();
    let entry = |i: usize| Some(format!("sealed entry {i}").into_bytes());
    let names = |l: &[cahier_function::store::Listed]| -> Vec<String> {
        l.iter()
            .map(|e| String::from_utf8_lossy(&e.sealed).into_owned())
            .collect()
    };
    for (i, hash) in h.iter().enumerate() {
        let mut sig = signature(&p, hash, t);
        sig.listing = if i == 2 { None } else { entry(i) };
        if i == 3 {
            sig.hold_reason = Some("protected domain".into());
        }
        store.sign(&sig).await?;
    }
    ensure!(
        store.listed(&p, 0, 10).await?.is_empty(),
        "nobody listed before confirmation"
    );
    for (i, hash) in h.iter().enumerate() {
        store.confirm(&p, hash, t + i as i64 * 10).await?;
    }
    // Eventually consistent on DynamoDB (a secondary index): give it a moment.
    let mut listed = Vec::new();
    for _ in 0..50 {
        listed = names(&store.listed(&p, 0, 10).await?);
        if listed.len() >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    ensure!(
        listed == ["sealed entry 4", "sealed entry 1", "sealed entry 0"],
        "the counted ones with an entry, newest first (not the held one, not the one          without an entry): {listed:?}"
    );
    ensure!(names(&store.listed(&p, 1, 1).await?) == ["sealed entry 1"]);
    ensure!(store.listed(&p, 3, 10).await?.is_empty());
    let at = store.listed(&p, 0, 1).await?[0].at;
    ensure!(at == t + 40, "listed at the time it was counted: {at}");

    store.erase(&p, &h[1], t + 100).await?;
    ensure!(store.unlist(&p, &h[4]).await?, "on the list");
    ensure!(!store.unlist(&p, &h[4]).await?, "once");
    let mut listed = Vec::new();
    for _ in 0..50 {
        listed = names(&store.listed(&p, 0, 10).await?);
        if listed.len() <= 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    ensure!(listed == ["sealed entry 0"], "{listed:?}");
    ensure!(
        store
            .get(&p, &h[4])
            .await?
            .is_some_and(|r| r.status == Status::Confirmed),
        "taken off the list, still counted"
    );
    // Counted: 0, 2 (no entry) and 4 (unlisted); 1 erased, 3 held.
    ensure!(store.count(&p).await?.count == 3);
    Ok(())
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A petition slug unique to this process and call.
fn petition(name: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A fake e-mail hash (64 hex digits, like the real HMAC).
fn hash(i: u32) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(format!("signer {i}").as_bytes()))
}

/// A new signature, pending for an hour.
pub fn signature(petition: &str, email_hash: &str, now: i64) -> NewSignature {
    NewSignature {
        petition: petition.to_string(),
        email_hash: email_hash.to_string(),
        email_domain: "example.org".into(),
        ip_hash: "ip-hash".into(),
        prefix_hash: "prefix-hash".into(),
        network: "203.0.113.0/24".into(),
        name_hash: "name-hash".into(),
        sealed: b"age-encrypted personal data".to_vec(),
        lang: "fr".into(),
        public: true,
        newsletter: false,
        hold_reason: None,
        flags: vec!["fast_fill".into()],
        created_at: now,
        expires_at: now + 3_600,
        budgets: Vec::new(),
        deferred_mail: None,
        listing: None,
        region: None,
    }
}

/// The counter equals the number of confirmed records among `hashes`.
pub async fn check_counts(
    store: &dyn Store,
    petition: &str,
    hashes: &[String],
) -> anyhow::Result<()> {
    let mut confirmed = 0;
    for h in hashes {
        if let Some(rec) = store.get(petition, h).await? {
            confirmed += u64::from(rec.status == Status::Confirmed);
        }
    }
    let count = store.count(petition).await?;
    ensure!(
        count.count == confirmed,
        "count of {petition} is {} but {confirmed} records are confirmed",
        count.count
    );
    Ok(())
}

pub async fn sign_and_dedup(store: Arc<dyn Store>) -> anyhow::Result<()> {
    let p = petition("dedup");
    let t = now();
    let h = hash(1);
    let sig = signature(&p, &h, t);
    ensure!(store.count(&p).await?.count == 0, "a new petition counts 0");
    let first = store.sign(&sig).await?;
    ensure!(
        first
            == SignOutcome::Created {
                status: Status::Pending,
                over_budget: None
            },
        "first sign: {first:?}"
    );
    let again = store.sign(&sig).await?;
    ensure!(
        again
            == SignOutcome::Duplicate {
                status: Status::Pending
            },
        "second sign: {again:?}"
    );
    let rec = store
        .get(&p, &h)
        .await?
        .context("the signature is stored")?;
    ensure!(
        rec.status == Status::Pending && rec.confirmed_at.is_none(),
        "stored as {rec:?}"
    );
    ensure!(
        rec.sealed == sig.sealed
            && rec.email_domain == sig.email_domain
            && rec.ip_hash == sig.ip_hash
            && rec.prefix_hash == sig.prefix_hash
            && rec.network == sig.network
            && rec.name_hash == sig.name_hash
            && rec.lang == sig.lang
            && rec.public
            && !rec.newsletter
            && rec.flags == sig.flags
            && rec.created_at == t
            && rec.expires_at == Some(sig.expires_at),
        "fields not kept: {rec:?}"
    );
    ensure!(
        store.count(&p).await?.count == 0,
        "a pending signature is not counted"
    );
    let confirmed = store.confirm(&p, &h, t + 5).await?;
    ensure!(
        confirmed
            == ConfirmOutcome::Confirmed {
                status: Status::Confirmed
            },
        "confirm: {confirmed:?}"
    );
    let twice = store.confirm(&p, &h, t + 6).await?;
    ensure!(
        twice
            == ConfirmOutcome::AlreadyConfirmed {
                status: Status::Confirmed
            },
        "confirm again: {twice:?}"
    );
    let after = store.sign(&signature(&p, &h, t + 7)).await?;
    ensure!(
        after
            == SignOutcome::Duplicate {
                status: Status::Confirmed
            },
        "sign after confirm: {after:?}"
    );
    let count = store.count(&p).await?;
    ensure!(
        count.count == 1 && count.updated_at >= t + 5,
        "count after one confirm: {count:?}"
    );
    let rec = store.get(&p, &h).await?.context("still there")?;
    ensure!(rec.confirmed_at == Some(t + 5), "confirmed_at: {rec:?}");
    ensure!(
        store.get(&p, &hash(2)).await?.is_none(),
        "an unknown signature is not found"
    );
    ensure!(
        store.confirm(&p, &hash(2), t).await? == ConfirmOutcome::NotFound,
        "unknown confirm"
    );
    store
        .audit(&AuditEvent {
            petition: p.clone(),
            email_hash: h.clone(),
            event: "mailed".into(),
            at: t,
            detail: "confirm".into(),
        })
        .await?;
    // The same e-mail on another petition is another signature.
    let other = petition("dedup-other");
    let created = store.sign(&signature(&other, &h, t)).await?;
    ensure!(
        matches!(created, SignOutcome::Created { .. }),
        "other petition: {created:?}"
    );
    check_counts(&*store, &p, std::slice::from_ref(&h)).await?;
    check_counts(&*store, &other, &[h]).await
}

pub async fn concurrent_signers(store: Arc<dyn Store>) -> anyhow::Result<()> {
    let p = petition("race-sign");
    let t = now();
    let h = hash(10);
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (store, sig) = (store.clone(), signature(&p, &h, t));
            tokio::spawn(async move { store.sign(&sig).await })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        match task.await?? {
            SignOutcome::Created {
                status: Status::Pending,
                over_budget: None,
            } => created += 1,
            SignOutcome::Duplicate {
                status: Status::Pending,
            } => {}
            other => anyhow::bail!("unexpected outcome {other:?}"),
        }
    }
    ensure!(
        created == 1,
        "{created} of 16 racing signers created a signature"
    );
    // Distinct signers at the same time all get in.
    let hashes: Vec<String> = (100..124).map(hash).collect();
    let tasks: Vec<_> = hashes
        .iter()
        .map(|h| {
            let (store, sig) = (store.clone(), signature(&p, h, t));
            tokio::spawn(async move { store.sign(&sig).await })
        })
        .collect();
    for task in tasks {
        let outcome = task.await??;
        ensure!(
            outcome
                == SignOutcome::Created {
                    status: Status::Pending,
                    over_budget: None
                },
            "{outcome:?}"
        );
    }
    let mut all = hashes;
    all.push(h);
    check_counts(&*store, &p, &all).await
}

pub async fn concurrent_confirms(store: Arc<dyn Store>) -> anyhow::Result<()> {
    let p = petition("race-confirm");
    let t = now();
    let h = hash(20);
    store.sign(&signature(&p, &h, t)).await?;
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let (store, p, h) = (store.clone(), p.clone(), h.clone());
            tokio::spawn(async move { store.confirm(&p, &h, t + i).await })
        })
        .collect();
    let mut confirmed = 0;
    for task in tasks {
        match task.await?? {
            ConfirmOutcome::Confirmed {
                status: Status::Confirmed,
            } => confirmed += 1,
            ConfirmOutcome::AlreadyConfirmed {
                status: Status::Confirmed,
            } => {}
            other => anyhow::bail!("unexpected outcome {other:?}"),
        }
    }
    ensure!(
        confirmed == 1,
        "{confirmed} of 16 racing confirms changed the state"
    );
    ensure!(store.count(&p).await?.count == 1, "counted once");
    // Many signatures confirmed at once: every one counted (sharded counters add up).
    let hashes: Vec<String> = (200..240).map(hash).collect();
    for h in &hashes {
        store.sign(&signature(&p, h, t)).await?;
    }
    let tasks: Vec<_> = hashes
        .iter()
        .map(|h| {
            let (store, p, h) = (store.clone(), p.clone(), h.clone());
            tokio::spawn(async move { store.confirm(&p, &h, t + 1).await })
        })
        .collect();
    for task in tasks {
        let outcome = task.await??;
        ensure!(
            outcome
                == ConfirmOutcome::Confirmed {
                    status: Status::Confirmed
                },
            "{outcome:?}"
        );
    }
    ensure!(store.count(&p).await?.count == 41, "41 confirmed");
    let mut all = hashes;
    all.push(h);
    check_counts(&*store, &p, &all).await
}

pub async fn expiry(store: Arc<dyn Store>) -> anyhow::Result<()> {
    let p = petition("expiry");
    let t = now();
    let h = hash(30);
    let mut old = signature(&p, &h, t - 7_200);
    old.expires_at = t - 3_600;
    let created = store.sign(&old).await?;
    ensure!(
        matches!(
            created,
            SignOutcome::Created {
                status: Status::Pending,
                ..
            }
        ),
        "{created:?}"
    );
    ensure!(
        store.get(&p, &h).await?.is_none(),
        "an expired pending signature is not found"
    );
    ensure!(
        store.confirm(&p, &h, t).await? == ConfirmOutcome::NotFound,
        "an expired one cannot be confirmed"
    );
    ensure!(store.count(&p).await?.count == 0, "nothing counted");
    // Signing again after expiry starts afresh (the old one is replaced, not a duplicate).
    let again = store.sign(&signature(&p, &h, t)).await?;
    ensure!(
        again
            == SignOutcome::Created {
                status: Status::Pending,
                over_budget: None
            },
        "re-sign: {again:?}"
    );
    ensure!(
        store.confirm(&p, &h, t + 1).await?
            == ConfirmOutcome::Confirmed {
                status: Status::Confirmed
            },
        "confirm"
    );
    let rec = store.get(&p, &h).await?.context("confirmed one found")?;
    ensure!(
        rec.expires_at.is_none(),
        "a confirmed signature no longer expires: {rec:?}"
    );
    // A held one expires too.
    let h2 = hash(31);
    let mut held = signature(&p, &h2, t - 7_200);
    held.expires_at = t - 1;
    held.hold_reason = Some("protected domain".into());
    store.sign(&held).await?;
    ensure!(
        store.get(&p, &h2).await?.is_none(),
        "an expired held signature is not found"
    );
    ensure!(
        store.confirm(&p, &h2, t).await? == ConfirmOutcome::NotFound,
        "nor confirmable"
    );
    check_counts(&*store, &p, &[h, h2]).await
}

pub async fn erase(store: Arc<dyn Store>) -> anyhow::Result<()> {
    let p = petition("erase");
    let t = now();
    let hashes: Vec<String> = (40..43).map(hash).collect();
    for h in &hashes {
        store.sign(&signature(&p, h, t)).await?;
    }
    store.confirm(&p, &hashes[0], t).await?;
    store.confirm(&p, &hashes[1], t).await?;
    ensure!(store.count(&p).await?.count == 2, "two confirmed");
    let erased = store.erase(&p, &hashes[0], t + 10).await?;
    ensure!(
        erased == EraseOutcome::Erased { was_counted: true },
        "erase a confirmed one: {erased:?}"
    );
    let count = store.count(&p).await?;
    ensure!(count.count == 1, "count corrected: {count:?}");
    let rec = store
        .get(&p, &hashes[0])
        .await?
        .context("an erased signature keeps its pseudonymous key")?;
    ensure!(rec.status == Status::Erased, "status {:?}", rec.status);
    ensure!(
        rec.sealed.is_empty()
            && rec.ip_hash.is_empty()
            && rec.prefix_hash.is_empty()
            && rec.network.is_empty()
            && rec.name_hash.is_empty(),
        "personal data left after erase: {rec:?}"
    );
    ensure!(
        !rec.public && !rec.newsletter,
        "opt-ins left after erase: {rec:?}"
    );
    ensure!(
        store.erase(&p, &hashes[0], t + 11).await? == EraseOutcome::NotFound,
        "erase twice"
    );
    ensure!(
        store.confirm(&p, &hashes[0], t + 12).await? == ConfirmOutcome::NotFound,
        "confirm an erased one"
    );
    let again = store.sign(&signature(&p, &hashes[0], t + 13)).await?;
    ensure!(
        again
            == SignOutcome::Duplicate {
                status: Status::Erased
            },
        "sign after erase: {again:?}"
    );
    let pending = store.erase(&p, &hashes[2], t + 14).await?;
    ensure!(
        pending == EraseOutcome::Erased { was_counted: false },
        "erase a pending one: {pending:?}"
    );
    ensure!(
        store.count(&p).await?.count == 1,
        "erasing a pending one changes no count"
    );
    ensure!(
        store.erase(&p, &hash(49), t).await? == EraseOutcome::NotFound,
        "erase an unknown one"
    );
    check_counts(&*store, &p, &hashes).await
}

pub async fn held_not_counted(store: Arc<dyn Store>) -> anyhow::Result<()> {
    let p = petition("held");
    let t = now();
    let h = hash(50);
    let mut sig = signature(&p, &h, t);
    sig.hold_reason = Some("protected domain".into());
    let created = store.sign(&sig).await?;
    ensure!(
        created
            == SignOutcome::Created {
                status: Status::Held,
                over_budget: None
            },
        "{created:?}"
    );
    let dup = store.sign(&sig).await?;
    ensure!(
        dup == SignOutcome::Duplicate {
            status: Status::Held
        },
        "{dup:?}"
    );
    let confirmed = store.confirm(&p, &h, t + 1).await?;
    ensure!(
        confirmed
            == ConfirmOutcome::Confirmed {
                status: Status::ConfirmedHeld
            },
        "{confirmed:?}"
    );
    let again = store.confirm(&p, &h, t + 2).await?;
    ensure!(
        again
            == ConfirmOutcome::AlreadyConfirmed {
                status: Status::ConfirmedHeld
            },
        "{again:?}"
    );
    ensure!(
        store.count(&p).await?.count == 0,
        "a held signature is never counted"
    );
    let rec = store.get(&p, &h).await?.context("held one stored")?;
    ensure!(
        rec.status == Status::ConfirmedHeld
            && rec.hold_reason.as_deref() == Some("protected domain"),
        "{rec:?}"
    );
    let erased = store.erase(&p, &h, t + 3).await?;
    ensure!(
        erased == EraseOutcome::Erased { was_counted: false },
        "{erased:?}"
    );
    check_counts(&*store, &p, &[h]).await
}

pub async fn budgets_hold(store: Arc<dyn Store>) -> anyhow::Result<()> {
    let p = petition("budget");
    let t = now();
    let prefix = Budget {
        key: format!("prefix:abc:{p}"),
        limit: 2,
        window_secs: 3_600,
        over: Default::default(),
    };
    let domain = Budget {
        key: format!("domain:example.org:{p}"),
        limit: 1_000,
        window_secs: 3_600,
        over: Default::default(),
    };
    let hashes: Vec<String> = (60..64).map(hash).collect();
    let mut outcomes = Vec::new();
    for h in &hashes[..3] {
        let mut sig = signature(&p, h, t);
        sig.budgets = vec![domain.clone(), prefix.clone()];
        outcomes.push(store.sign(&sig).await?);
    }
    let pending = SignOutcome::Created {
        status: Status::Pending,
        over_budget: None,
    };
    ensure!(
        outcomes[0] == pending && outcomes[1] == pending,
        "within budget: {outcomes:?}"
    );
    ensure!(
        outcomes[2]
            == SignOutcome::Created {
                status: Status::Held,
                over_budget: Some(prefix.key.clone())
            },
        "over budget: {outcomes:?}"
    );
    let rec = store
        .get(&p, &hashes[2])
        .await?
        .context("the held one is stored")?;
    ensure!(rec.status == Status::Held, "{rec:?}");
    ensure!(
        rec.hold_reason
            .as_deref()
            .is_some_and(|r| r.contains(&prefix.key)),
        "reason names the budget: {rec:?}"
    );
    // The duplicate of an over-budget signature is a duplicate, not another held one.
    let mut dup = signature(&p, &hashes[2], t);
    dup.budgets = vec![domain.clone(), prefix.clone()];
    ensure!(
        store.sign(&dup).await?
            == SignOutcome::Duplicate {
                status: Status::Held
            },
        "dup of held"
    );
    for h in &hashes[..3] {
        store.confirm(&p, h, t + 1).await?;
    }
    ensure!(
        store.count(&p).await?.count == 2,
        "held over budget is not counted"
    );
    // The next window has room again.
    let mut next = signature(&p, &hashes[3], t + 3_600);
    next.budgets = vec![domain, prefix];
    ensure!(store.sign(&next).await? == pending, "next window");
    check_counts(&*store, &p, &hashes).await
}

pub async fn take_budget_windows(store: Arc<dyn Store>) -> anyhow::Result<()> {
    let p = petition("take");
    let t = now() / 60 * 60;
    let mail = Budget {
        key: format!("mail:example.org:{p}"),
        limit: 3,
        window_secs: 60,
        over: Default::default(),
    };
    for i in 0..3 {
        ensure!(store.take_budget(&mail, t + i).await?, "unit {i} of 3");
    }
    ensure!(
        !store.take_budget(&mail, t + 30).await?,
        "a fourth unit in the same window"
    );
    ensure!(
        !store.take_budget(&mail, t + 59).await?,
        "still exhausted at the window's end"
    );
    ensure!(store.take_budget(&mail, t + 60).await?, "a new window");
    let other = Budget {
        key: format!("mail:example.net:{p}"),
        limit: 1,
        window_secs: 60,
        over: Default::default(),
    };
    ensure!(
        store.take_budget(&other, t).await?,
        "another key is independent"
    );
    ensure!(!store.take_budget(&other, t).await?, "limit 1");
    let none = Budget {
        key: format!("remind:x:{p}"),
        limit: 0,
        window_secs: 86_400,
        over: Default::default(),
    };
    ensure!(
        !store.take_budget(&none, t).await?,
        "a zero budget gives nothing"
    );
    check_counts(&*store, &p, &[]).await
}

/// Once one budget of a signature is exhausted, the write takes no other: traffic already over
/// its own budget must not drain anyone else's (a network's over-budget signatures used to eat
/// the budget of every domain they named, on SQLite only).
pub async fn an_exhausted_budget_takes_no_other(store: Arc<dyn Store>) -> anyhow::Result<()> {
    let p = petition("stop");
    let t = now();
    let tight = Budget::new(format!("addr:60:tight:{p}"), 1, 3_600);
    let shared = Budget::new(format!("dom:3600:shared.example:{p}"), 3, 3_600);
    let sign = |i: u32, budgets: Vec<Budget>| {
        let mut sig = signature(&p, &hash(700 + i), t);
        sig.budgets = budgets;
        sig
    };
    let first = store
        .sign(&sign(0, vec![tight.clone(), shared.clone()]))
        .await?;
    ensure!(
        first
            == SignOutcome::Created {
                status: Status::Pending,
                over_budget: None
            },
        "{first:?}"
    );
    for i in 1..4 {
        let over = store
            .sign(&sign(i, vec![tight.clone(), shared.clone()]))
            .await?;
        ensure!(
            over == SignOutcome::Created {
                status: Status::Held,
                over_budget: Some(tight.key.clone())
            },
            "sign {i}: {over:?}"
        );
    }
    // `shared` gave one unit to the first signature only: two are left.
    for i in 4..6 {
        let ok = store.sign(&sign(i, vec![shared.clone()])).await?;
        ensure!(
            ok == SignOutcome::Created {
                status: Status::Pending,
                over_budget: None
            },
            "shared unit {i}: {ok:?} (an exhausted budget took units of another)"
        );
    }
    let full = store.sign(&sign(6, vec![shared.clone()])).await?;
    ensure!(
        full == SignOutcome::Created {
            status: Status::Held,
            over_budget: Some(shared.key.clone())
        },
        "{full:?}"
    );
    check_counts(&*store, &p, &[]).await
}

/// An exhausted alarm budget (petition-wide, large provider) changes nothing for the signature
/// and stops no other budget, so draining it does not free an attacker from the others.
pub async fn alarm_budgets_never_stop_the_others(store: Arc<dyn Store>) -> anyhow::Result<()> {
    let p = petition("alarm");
    let t = now();
    let surge = Budget::new(format!("pet:3600:{p}"), 1, 3_600).with(OverBudget::Alarm);
    let net = Budget::new(format!("net:3600:n:{p}"), 2, 3_600).with(OverBudget::Defer);
    let mut outcomes = Vec::new();
    for i in 0..3 {
        let mut sig = signature(&p, &hash(800 + i), t);
        sig.budgets = vec![surge.clone(), net.clone()];
        sig.deferred_mail = Some(b"sealed letter".to_vec());
        outcomes.push(store.sign(&sig).await?);
    }
    ensure!(
        outcomes
            == [
                SignOutcome::Created {
                    status: Status::Pending,
                    over_budget: None
                },
                SignOutcome::Created {
                    status: Status::Pending,
                    over_budget: Some(surge.key.clone())
                },
                SignOutcome::Created {
                    status: Status::Pending,
                    over_budget: Some(net.key.clone())
                },
            ],
        "{outcomes:?}"
    );
    check_counts(&*store, &p, &[]).await
}

/// Over a network (`Defer`) budget a signature is stored pending with its mail queued; each
/// queued mail is handed out once, oldest first, and only while its signature is pending; a
/// first confirmation gives its network unit back.
pub async fn network_budgets_queue_mails_and_confirmations_earn_them_back(
    store: Arc<dyn Store>,
) -> anyhow::Result<()> {
    let p = petition("queue");
    let t = now();
    let net = Budget::new(format!("net:3600:cgnat:{p}"), 1, 3_600).with(OverBudget::Defer);
    let hashes: Vec<String> = (900..905).map(hash).collect();
    let sig = |i: usize, at: i64| {
        let mut sig = signature(&p, &hashes[i], at);
        sig.prefix_hash = "cgnat-prefix".into();
        sig.budgets = vec![net.clone()];
        sig.deferred_mail = Some(format!("letter {i}").into_bytes());
        sig
    };
    let first = store.sign(&sig(0, t)).await?;
    ensure!(
        first
            == SignOutcome::Created {
                status: Status::Pending,
                over_budget: None
            },
        "{first:?}"
    );
    for i in 1..4 {
        let queued = store.sign(&sig(i, t + i as i64)).await?;
        ensure!(
            queued
                == SignOutcome::Created {
                    status: Status::Pending,
                    over_budget: Some(net.key.clone())
                },
            "signer {i}: {queued:?}"
        );
    }
    ensure!(
        store
            .release_queued(&p, "another-prefix", 5, t)
            .await?
            .is_empty(),
        "another network's queue is empty"
    );
    // Signer 2 erased: its queued mail (its address) goes with it.
    store.erase(&p, &hashes[2], t + 5).await?;
    let released = store.release_queued(&p, "cgnat-prefix", 1, t + 6).await?;
    ensure!(
        released.len() == 1
            && released[0].email_hash == hashes[1]
            && released[0].sealed == b"letter 1",
        "oldest first: {released:?}"
    );
    let rest = store.release_queued(&p, "cgnat-prefix", 5, t + 7).await?;
    ensure!(
        rest.len() == 1 && rest[0].email_hash == hashes[3],
        "the erased one is not handed out: {rest:?}"
    );
    ensure!(
        store
            .release_queued(&p, "cgnat-prefix", 5, t + 8)
            .await?
            .is_empty(),
        "each is handed out once"
    );
    // Queued signatures confirm and count like any other.
    store.confirm(&p, &hashes[1], t + 9).await?;
    // The first signer took the unit; its confirmation gives it back: the next one passes.
    store.confirm(&p, &hashes[0], t + 10).await?;
    let after = store.sign(&sig(4, t + 11)).await?;
    ensure!(
        after
            == SignOutcome::Created {
                status: Status::Pending,
                over_budget: None
            },
        "a confirmation earns the network's unit back: {after:?}"
    );
    ensure!(store.count(&p).await?.count == 2, "two confirmed");
    check_counts(&*store, &p, &hashes).await
}
