//! The store conformance suite against `DynamoStore` on a real moto server, each scenario on a
//! fresh table created by the store's own `init()`. Fails (never skips) if moto cannot start.

use aws_sdk_dynamodb::types::{BillingMode, TimeToLiveStatus};
use cahier_function::store::dynamo::DynamoStore;
use cahier_function::store::{Status, Store};
use cahier_tests::conformance;
use cahier_tests::moto::{fresh_table, Moto};
use std::sync::Arc;

async fn store_on(moto: &Moto) -> anyhow::Result<(Arc<DynamoStore>, aws_sdk_dynamodb::Client)> {
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    let store = Arc::new(DynamoStore::new(client.clone(), fresh_table("cahier")));
    store.init().await?;
    Ok((store, client))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_suite_on_dynamodb() -> anyhow::Result<()> {
    let moto = Moto::start()?;
    // Each scenario on its own table, so a failure names one scenario and one table.
    type Scenario = fn(
        Arc<dyn Store>,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = anyhow::Result<()>> + Send>,
    >;
    let scenarios: [(&str, Scenario); 8] = [
        ("sign_and_dedup", |s| {
            Box::pin(conformance::sign_and_dedup(s))
        }),
        ("concurrent_signers", |s| {
            Box::pin(conformance::concurrent_signers(s))
        }),
        ("concurrent_confirms", |s| {
            Box::pin(conformance::concurrent_confirms(s))
        }),
        ("expiry", |s| Box::pin(conformance::expiry(s))),
        ("erase", |s| Box::pin(conformance::erase(s))),
        ("held_not_counted", |s| {
            Box::pin(conformance::held_not_counted(s))
        }),
        ("budgets_hold", |s| Box::pin(conformance::budgets_hold(s))),
        ("take_budget_windows", |s| {
            Box::pin(conformance::take_budget_windows(s))
        }),
    ];
    for (name, scenario) in scenarios {
        let (store, _) = store_on(&moto).await?;
        let table = store.table().to_string();
        scenario(store)
            .await
            .map_err(|e| e.context(format!("scenario {name} on table {table}")))?;
    }
    // And all of them on one table, as a long-lived deployment would.
    let (store, _) = store_on(&moto).await?;
    conformance::run_all(store).await
}

#[tokio::test]
async fn init_creates_an_on_demand_table_with_ttl_and_is_idempotent() -> anyhow::Result<()> {
    let moto = Moto::start()?;
    let (store, client) = store_on(&moto).await?;
    store.init().await?; // again: no error
    let desc = client
        .describe_table()
        .table_name(store.table())
        .send()
        .await?;
    let table = desc.table().expect("table described");
    assert_eq!(
        table.billing_mode_summary().and_then(|b| b.billing_mode()),
        Some(&BillingMode::PayPerRequest)
    );
    let ttl = client
        .describe_time_to_live()
        .table_name(store.table())
        .send()
        .await?;
    let ttl = ttl.time_to_live_description().expect("TTL described");
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
    assert_eq!(ttl.attribute_name(), Some("ttl"));
    Ok(())
}

#[tokio::test]
async fn confirmed_counts_are_spread_over_shard_items() -> anyhow::Result<()> {
    let moto = Moto::start()?;
    let (store, client) = store_on(&moto).await?;
    let now = conformance::now();
    for i in 0..50 {
        let h = format!("{i:064x}");
        store
            .sign(&conformance::signature("viral", &h, now))
            .await?;
        store.confirm("viral", &h, now).await?;
    }
    assert_eq!(store.count("viral").await?.count, 50);
    let scan = client.scan().table_name(store.table()).send().await?;
    let shards: Vec<String> = scan
        .items()
        .iter()
        .filter_map(|item| item.get("pk")?.as_s().ok().cloned())
        .filter(|pk| pk.starts_with("count#viral#"))
        .collect();
    assert!(
        shards.len() >= 20,
        "50 confirms landed on only {} counter items: {shards:?}",
        shards.len()
    );
    // No item is written by every signature.
    let statuses = scan
        .items()
        .iter()
        .filter(|i| i.get("sk").and_then(|v| v.as_s().ok()).map(String::as_str) == Some("sig"))
        .count();
    assert_eq!(statuses, 50);
    assert_eq!(
        store
            .get("viral", &format!("{:064x}", 7))
            .await?
            .map(|r| r.status),
        Some(Status::Confirmed)
    );
    Ok(())
}

#[tokio::test]
async fn expired_items_left_by_lazy_ttl_are_replaced_on_sign() -> anyhow::Result<()> {
    // moto, like DynamoDB within its deletion delay, keeps the expired item in the table.
    let moto = Moto::start()?;
    let (store, client) = store_on(&moto).await?;
    let now = conformance::now();
    let mut old = conformance::signature("p", &"e".repeat(64), now - 100);
    old.expires_at = now - 10;
    store.sign(&old).await?;
    let scan = client.scan().table_name(store.table()).send().await?;
    assert!(scan.items().iter().any(|i| i
        .get("sk")
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        == Some("sig")));
    assert!(store.get("p", &"e".repeat(64)).await?.is_none());
    let again = store
        .sign(&conformance::signature("p", &"e".repeat(64), now))
        .await?;
    assert!(
        matches!(
            again,
            cahier_function::store::SignOutcome::Created {
                status: Status::Pending,
                ..
            }
        ),
        "{again:?}"
    );
    Ok(())
}
