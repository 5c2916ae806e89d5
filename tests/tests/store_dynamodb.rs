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
    let indexes: Vec<&str> = table
        .global_secondary_indexes()
        .iter()
        .filter_map(|i| i.index_name())
        .collect();
    assert_eq!(indexes, ["listed"], "the public list's index");
    Ok(())
}

/// A table created before the public list (no index) gets its index at `init`.
#[tokio::test]
async fn init_adds_the_list_index_to_an_older_table() -> anyhow::Result<()> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    let moto = Moto::start()?;
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    let table = "older-table";
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    let key = |n: &str, k: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(k)
            .build()
            .unwrap()
    };
    client
        .create_table()
        .table_name(table)
        .attribute_definitions(attr("pk"))
        .attribute_definitions(attr("sk"))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await?;
    let store = DynamoStore::new(client.clone(), table.to_string());
    store.init().await?;
    let desc = client.describe_table().table_name(table).send().await?;
    let indexes: Vec<String> = desc
        .table()
        .map(|t| t.global_secondary_indexes())
        .unwrap_or_default()
        .iter()
        .filter_map(|i| i.index_name().map(str::to_string))
        .collect();
    assert_eq!(indexes, ["listed"]);
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

/// The test launcher's cheaper backup (tests/src/moto.rs) keeps moto's rollback: a transaction
/// whose last item fails its condition leaves the table as it was — the new item not written,
/// the updated one unchanged, the untouched one intact — and a Query sees one partition only.
#[tokio::test]
async fn a_cancelled_transaction_changes_nothing() -> anyhow::Result<()> {
    use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem, Update};
    let moto = Moto::start()?;
    let (store, client) = store_on(&moto).await?;
    let table = store.table().to_string();
    let s = |v: &str| AttributeValue::S(v.to_string());
    let key = |pk: &str| {
        std::collections::HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s("x"))])
    };
    for pk in ["kept", "updated"] {
        client
            .put_item()
            .table_name(&table)
            .set_item(Some(key(pk)))
            .item("v", s("before"))
            .send()
            .await?;
    }
    let put = Put::builder()
        .table_name(&table)
        .set_item(Some(key("new")))
        .item("v", s("during"))
        .build()?;
    let update = Update::builder()
        .table_name(&table)
        .set_key(Some(key("updated")))
        .update_expression("SET v = :v")
        .expression_attribute_values(":v", s("during"))
        .build()?;
    let check = ConditionCheck::builder()
        .table_name(&table)
        .set_key(Some(key("kept")))
        .condition_expression("attribute_not_exists(pk)")
        .build()?;
    let res = client
        .transact_write_items()
        .transact_items(TransactWriteItem::builder().put(put).build())
        .transact_items(TransactWriteItem::builder().update(update).build())
        .transact_items(TransactWriteItem::builder().condition_check(check).build())
        .send()
        .await;
    assert!(res.is_err(), "the condition fails");
    let get = |pk: &'static str| {
        let (client, table) = (client.clone(), table.clone());
        async move {
            client
                .get_item()
                .table_name(table)
                .set_key(Some(key(pk)))
                .consistent_read(true)
                .send()
                .await
                .map(|o| o.item().and_then(|i| i.get("v")).cloned())
        }
    };
    assert_eq!(get("new").await?, None);
    assert_eq!(get("updated").await?, Some(s("before")));
    assert_eq!(get("kept").await?, Some(s("before")));
    let q = client
        .query()
        .table_name(&table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", s("updated"))
        .send()
        .await?;
    assert_eq!(q.count(), 1);
    Ok(())
}
