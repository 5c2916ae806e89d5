//! `cahier admin` (the real binary) on a DynamoDB table served by moto: the same commands the
//! SQLite replays use — stats, a dry-run invalidation, the invalidation itself — with the store
//! given as `dynamodb:TABLE?endpoint=…`, counts corrected in the table.

use cahier_function::store::dynamo::DynamoStore;
use cahier_function::store::Store;
use cahier_tests::conformance;
use cahier_tests::moto::{fresh_table, Moto};
use std::process::Command;

fn admin(moto: &Moto, url: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(cahier_tests::server::cahier_binary())
        .args(["admin", "--store", url, "--json"])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("CAHIER_PEPPER", "00".repeat(32))
        .env_remove("CAHIER_SECRETS_FILE")
        .env_remove("CAHIER_STORE")
        .output()
        .expect("running cahier admin");
    let _ = moto;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_cli_stats_and_invalidate_on_dynamodb() -> anyhow::Result<()> {
    let moto = Moto::start()?;
    let table = fresh_table("cahier-cli");
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    let store = DynamoStore::new(client, table.clone());
    store.init().await?;
    let t = conformance::now();
    for i in 0..3 {
        let h = format!("{i:064x}");
        store.sign(&conformance::signature("cli", &h, t)).await?;
        if i < 2 {
            store.confirm("cli", &h, t).await?;
        }
    }
    assert_eq!(store.count("cli").await?.count, 2);
    let url = format!(
        "dynamodb:{table}?endpoint={}&region=us-east-1",
        moto.endpoint()
    );

    let (ok, stats) = admin(&moto, &url, &["stats"]);
    assert!(ok, "{stats}");
    println!("{stats}");
    let v: serde_json::Value = serde_json::from_str(stats.trim()).expect("stats JSON");
    let cli = &v["petitions"][0];
    assert_eq!(cli["petition"], "cli", "{stats}");
    assert_eq!(cli["confirmed"], 2, "{stats}");
    assert_eq!(cli["pending"], 1, "{stats}");

    let (ok, dry) = admin(
        &moto,
        &url,
        &[
            "invalidate",
            "--petition",
            "cli",
            "--from",
            "2000-01-01T00:00:00Z",
        ],
    );
    assert!(ok, "{dry}");
    println!("{dry}");
    let dry_json: serde_json::Value = serde_json::from_str(dry.trim()).expect("dry-run JSON");
    assert_eq!(dry_json["dry_run"], true, "{dry}");
    assert_eq!(dry_json["matched"], 3, "{dry}");
    assert_eq!(
        store.count("cli").await?.count,
        2,
        "a dry run changes nothing"
    );

    let (ok, done) = admin(
        &moto,
        &url,
        &[
            "invalidate",
            "--petition",
            "cli",
            "--from",
            "2000-01-01T00:00:00Z",
            "--yes",
            "--expect",
            "3",
        ],
    );
    assert!(ok, "{done}");
    assert_eq!(store.count("cli").await?.count, 0, "counts corrected");

    // An empty condition is refused.
    let (ok, refused) = admin(&moto, &url, &["invalidate", "--yes"]);
    assert!(!ok, "{refused}");
    Ok(())
}
