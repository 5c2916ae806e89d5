//! The organizer-side conformance suite (`cahier_tests::admin_conformance`) on SQLite.

use cahier_function::store::admin::AdminStore;
use cahier_function::store::sqlite::SqliteStore;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_conformance_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn AdminStore> =
        Arc::new(SqliteStore::open(&dir.path().join("signatures.sqlite3")).unwrap());
    cahier_tests::admin_conformance::run_all(store)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
}
