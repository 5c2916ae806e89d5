//! The organizer-side conformance suite (`AdminStore`) against `DynamoStore` on a real moto
//! server, plus what only DynamoDB has: count shards repaired by a recount, a recount racing
//! with confirmations. Fails (never skips) if moto cannot start.

use aws_sdk_dynamodb::types::AttributeValue;
use cahier_function::store::admin::AdminStore;
use cahier_function::store::dynamo::DynamoStore;
use cahier_function::store::dynamo_keys::{count_pk, count_shard, COUNT_SK};
use cahier_function::store::{Status, Store};
use cahier_tests::moto::{fresh_table, Moto};
use cahier_tests::{admin_conformance, conformance};
use std::sync::Arc;

async fn store_on(moto: &Moto) -> anyhow::Result<(Arc<DynamoStore>, aws_sdk_dynamodb::Client)> {
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    let store = Arc::new(DynamoStore::new(
        client.clone(),
        fresh_table("cahier-admin"),
    ));
    store.init().await?;
    Ok((store, client))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admin_conformance_suite_on_dynamodb() -> anyhow::Result<()> {
    let moto = Moto::start()?;
    // All scenarios on one table, as a long-lived deployment would hold them.
    let (store, _) = store_on(&moto).await?;
    admin_conformance::run_all(store).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn recount_repairs_corrupted_shards() -> anyhow::Result<()> {
    let moto = Moto::start()?;
    let (store, client) = store_on(&moto).await?;
    let t = conformance::now();
    let hashes: Vec<String> = (0..20).map(|i| format!("{i:064x}")).collect();
    for h in &hashes {
        store.sign(&conformance::signature("repair", h, t)).await?;
        store.confirm("repair", h, t).await?;
    }
    // Corrupt one shard (as a bug or a manual edit would) and add a stray one.
    let shard = count_shard(&hashes[0]);
    for (pk, value) in [
        (count_pk("repair", shard), "1000"),
        (count_pk("repair", (shard + 1) % 64), "-3"),
    ] {
        client
            .put_item()
            .table_name(store.table())
            .item("pk", AttributeValue::S(pk))
            .item("sk", AttributeValue::S(COUNT_SK.into()))
            .item("n", AttributeValue::N(value.into()))
            .send()
            .await?;
    }
    assert_ne!(store.count("repair").await?.count, 20);
    let c = store.recount("repair").await?;
    assert_eq!(c.count, 20);
    assert_eq!(store.count("repair").await?.count, 20);
    conformance::check_counts(&*store, "repair", &hashes).await
}

/// The counters by region live in the count's shards (no hot key) and a recount repairs them
/// from the records, as it does the count.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn recount_repairs_the_region_shards() -> anyhow::Result<()> {
    use cahier_function::store::dynamo_keys::{region_pk, REGION_SK};
    let moto = Moto::start()?;
    let (store, client) = store_on(&moto).await?;
    let t = conformance::now();
    let hashes: Vec<String> = (0..20).map(|i| format!("{:064x}", 500 + i)).collect();
    for h in &hashes {
        let mut sig = conformance::signature("regions", h, t);
        sig.region = Some("FR-75".into());
        store.sign(&sig).await?;
        store.confirm("regions", h, t).await?;
    }
    let shards: std::collections::BTreeSet<u32> = hashes.iter().map(|h| count_shard(h)).collect();
    assert!(
        shards.len() > 5,
        "spread over the count's shards: {shards:?}"
    );
    let expected = std::collections::BTreeMap::from([("FR-75".to_string(), 20u64)]);
    assert_eq!(store.regions("regions").await?, expected);
    // A wrong number in a used shard, a stray region in an unused one.
    let unused = (0..64).find(|s| !shards.contains(s)).unwrap();
    for (shard, region, value) in [
        (count_shard(&hashes[0]), "FR-75", "1000"),
        (unused, "BE", "7"),
    ] {
        client
            .put_item()
            .table_name(store.table())
            .item("pk", AttributeValue::S(region_pk("regions", shard)))
            .item("sk", AttributeValue::S(REGION_SK.into()))
            .item(region, AttributeValue::N(value.into()))
            .send()
            .await?;
    }
    assert_ne!(store.regions("regions").await?, expected);
    store.recount("regions").await?;
    assert_eq!(store.regions("regions").await?, expected);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn recount_racing_with_confirms_stays_exact() -> anyhow::Result<()> {
    let moto = Moto::start()?;
    let (store, _) = store_on(&moto).await?;
    let t = conformance::now();
    let hashes: Vec<String> = (0..40).map(|i| format!("{:064x}", 1000 + i)).collect();
    for h in &hashes {
        store.sign(&conformance::signature("race", h, t)).await?;
    }
    // Recounts run back to back for as long as the confirmations do, so that confirmations land
    // between a recount's scan and its write; a recount that overwrote the shards regardless
    // would lose them. A recount that cannot settle gives up (its documented answer), so the
    // confirmations come in bursts of ten, 50 ms apart, with quiet seconds between in which
    // recounts complete while the count is in motion.
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let recounts = {
        let (s, done) = (store.clone(), done.clone());
        tokio::spawn(async move {
            let (mut completed, mut gave_up) = (0u32, 0u32);
            while !done.load(std::sync::atomic::Ordering::SeqCst) && completed < 500 {
                match s.recount("race").await {
                    Ok(_) => completed += 1,
                    Err(e) if e.to_string().contains("kept changing") => gave_up += 1,
                    Err(e) => return Err(e),
                }
            }
            anyhow::Ok((completed, gave_up))
        })
    };
    let mut confirms = tokio::task::JoinSet::new();
    for (i, h) in hashes.clone().into_iter().enumerate() {
        let s = store.clone();
        confirms.spawn(async move {
            let at = 50 * i as u64 + 1_500 * (i as u64 / 10);
            tokio::time::sleep(std::time::Duration::from_millis(at)).await;
            s.confirm("race", &h, t).await
        });
    }
    while let Some(r) = confirms.join_next().await {
        r??;
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let (rounds, gave_up) = recounts.await??;
    assert!(
        rounds >= 1,
        "no recount completed during the confirmations ({gave_up} gave up)"
    );
    println!("{rounds} recounts completed and {gave_up} gave up, racing with 40 confirmations");
    assert_eq!(store.count("race").await?.count, 40);
    assert_eq!(store.recount("race").await?.count, 40);
    conformance::check_counts(&*store, "race", &hashes).await
}

#[tokio::test]
async fn set_status_refuses_batches_over_500() -> anyhow::Result<()> {
    let moto = Moto::start()?;
    let (store, _) = store_on(&moto).await?;
    let hashes: Vec<String> = (0..501).map(|i| format!("{i:064x}")).collect();
    let err = store
        .set_status(
            "p",
            &hashes,
            &[Status::Pending],
            Status::Invalidated,
            "x",
            conformance::now(),
        )
        .await
        .expect_err("501 refused");
    assert!(err.to_string().contains("at most 500"), "{err}");
    Ok(())
}
