//! The store conformance suite against `SqliteStore` (a real SQLite file in a temporary
//! directory), the same scenarios as `store_dynamodb.rs` runs on moto.

use cahier_function::store::{sqlite::SqliteStore, Store};
use cahier_tests::conformance;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_suite_on_sqlite() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("sigs.sqlite3"))?);
    store.init().await?;
    conformance::run_all(store).await
}

#[tokio::test]
async fn store_open_parses_the_setting_and_initialises() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite:{}", dir.path().join("a.sqlite3").display());
    let store = cahier_function::store::open(&url).await?;
    assert_eq!(store.count("nothing-yet").await?.count, 0);
    let err = cahier_function::store::open("mysql:x")
        .await
        .err()
        .expect("unknown scheme refused")
        .to_string();
    assert!(err.contains("unknown store \"mysql\""), "{err}");
    Ok(())
}
