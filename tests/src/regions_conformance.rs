//! The counters by region (`Store::regions`, `crate::geography` of the function) on every
//! store: they follow the count exactly — a confirmation adds its region, erasure, an
//! organizer's invalidation or hold take it away, a release or a confirmation again bring it
//! back — and a recount recomputes them from the records. Run by the store suite
//! ([`crate::conformance::run_all`]) and the organizer suite
//! ([`crate::admin_conformance::run_all`]).

use crate::conformance::{now, signature};
use anyhow::ensure;
use cahier_function::store::admin::AdminStore;
use cahier_function::store::{Status, Store};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

fn petition(name: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "reg-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn hash(tag: &str, i: u32) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(format!("region {tag} {i}").as_bytes()))
}

fn map(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// Signs `h` on `p` from `region` (held for review when `held`).
async fn sign<S: Store + ?Sized>(
    store: &S,
    p: &str,
    h: &str,
    region: Option<&str>,
    held: bool,
) -> anyhow::Result<()> {
    let mut sig = signature(p, h, now());
    sig.region = region.map(str::to_string);
    if held {
        sig.hold_reason = Some("protected domain".into());
    }
    store.sign(&sig).await?;
    Ok(())
}

/// Nothing before confirmation; each counted signature in its region, none held or pending;
/// erasure takes a counted one away (and an uncounted one changes nothing).
pub async fn regions_follow_the_count(store: Arc<dyn Store>) -> anyhow::Result<()> {
    let p = petition("count");
    let t = now();
    let plan: [(Option<&str>, bool); 7] = [
        (Some("FR-75"), false),
        (Some("FR-75"), false),
        (Some("BE"), false),
        (None, false),
        (Some("FR-75"), true),
        (Some("FR-2A"), false),
        (Some("FR-971"), false),
    ];
    let h: Vec<String> = (0..plan.len() as u32).map(|i| hash("count", i)).collect();
    for (i, (region, held)) in plan.iter().enumerate() {
        sign(store.as_ref(), &p, &h[i], *region, *held).await?;
    }
    ensure!(
        store.regions(&p).await?.is_empty(),
        "nothing counted before confirmation"
    );
    // All but the last confirm (it stays pending).
    for hash in &h[..6] {
        store.confirm(&p, hash, t).await?;
    }
    let got = store.regions(&p).await?;
    ensure!(
        got == map(&[("FR-75", 2), ("BE", 1), ("FR-2A", 1)]),
        "counted ones only, by region (not the held one, not the pending one): {got:?}"
    );
    // Confirming twice counts once.
    store.confirm(&p, &h[0], t + 1).await?;
    store.erase(&p, &h[1], t + 2).await?;
    store.erase(&p, &h[2], t + 2).await?;
    store.erase(&p, &h[6], t + 2).await?; // pending: nothing counted, nothing to take away
    store.erase(&p, &h[2], t + 3).await?; // twice: once
    let got = store.regions(&p).await?;
    ensure!(
        got == map(&[("FR-75", 1), ("FR-2A", 1)]),
        "erasure takes its region away: {got:?}"
    );
    let count = store.count(&p).await?.count;
    ensure!(
        count == 3,
        "0, 3 (no region) and 5 count: {count} (regions {got:?})"
    );
    Ok(())
}

/// An organizer's invalidation or hold takes the region away with the count; setting it
/// confirmed again or releasing a held one brings it back; a recount recomputes the counters
/// from the records and changes nothing when they were right.
pub async fn regions_follow_organizer_changes(store: Arc<dyn AdminStore>) -> anyhow::Result<()> {
    let p = petition("admin");
    let t = now();
    let h: Vec<String> = (0..4).map(|i| hash("admin", i)).collect();
    for (i, region) in ["FR-69", "FR-69", "DE"].iter().enumerate() {
        sign(store.as_ref(), &p, &h[i], Some(region), false).await?;
        store.confirm(&p, &h[i], t).await?;
    }
    sign(store.as_ref(), &p, &h[3], Some("FR-13"), true).await?;
    store.confirm(&p, &h[3], t).await?; // confirmed_held: not counted
    let regions = |store: Arc<dyn AdminStore>, p: String| async move { store.regions(&p).await };
    ensure!(regions(store.clone(), p.clone()).await? == map(&[("FR-69", 2), ("DE", 1)]));

    let set = |from: Status, to: Status, which: usize| {
        let (store, p, h) = (store.clone(), p.clone(), h[which].clone());
        async move {
            store
                .set_status(&p, std::slice::from_ref(&h), &[from], to, "test", now())
                .await
        }
    };
    ensure!(set(Status::Confirmed, Status::Invalidated, 0).await? == 1);
    ensure!(set(Status::Confirmed, Status::Held, 2).await? == 1);
    let got = regions(store.clone(), p.clone()).await?;
    ensure!(
        got == map(&[("FR-69", 1)]),
        "invalidated and held: out: {got:?}"
    );
    ensure!(set(Status::Invalidated, Status::Confirmed, 0).await? == 1);
    ensure!(store.release(&p, &h[3..4], "reviewed", now()).await? == 1);
    let expected = map(&[("FR-69", 2), ("FR-13", 1)]);
    let got = regions(store.clone(), p.clone()).await?;
    ensure!(
        got == expected,
        "confirmed again and released: back: {got:?}"
    );
    store.recount(&p).await?;
    let got = regions(store.clone(), p.clone()).await?;
    ensure!(got == expected, "a recount keeps right counters: {got:?}");
    ensure!(store.count(&p).await?.count == 3);
    Ok(())
}
