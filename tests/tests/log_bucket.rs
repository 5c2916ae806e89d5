//! The transparency log on AWS as the template deploys it: the scheduled sequencer (the
//! function's package with `Handler: sequencer`, under the Lambda runtime emulator, invoked
//! with EventBridge's scheduled event) integrates what the signing function recorded in
//! DynamoDB into the site bucket (moto's S3), and CloudFront (the edge harness, from the
//! template) serves it at `/<slug>/log/` with the objects' own cache headers. Then the
//! bucket's failure cases, on the sequencer's code directly: a crash between the checkpoint's
//! swap and its upload, a second sequencer, a bucket whose checkpoint the table does not know.

use cahier_function::log_bucket::{Bucket, CHECKPOINT_CACHE, IMMUTABLE, RECEIPT_CACHE};
use cahier_function::log_task::{LogTarget, LogTask};
use cahier_function::store::dynamo::DynamoStore;
use cahier_function::store::{NewSignature, Store};
use cahier_tests::edge::stack::{EdgeStack, PETITION};
use cahier_tests::edge::template::ApiAuth;
use cahier_tests::edge::theme_client::{self, Signer};
use cahier_tests::moto::{fresh_table, Moto};
use cahier_tests::outbox::token;
use cahier_tlog::{Commitment, ReceiptSecret};
use std::sync::Arc;

fn header(res: &reqwest::Response, name: &str) -> String {
    res.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduled_sequencer_publishes_each_receipt_through_cloudfront() {
    let stack = EdgeStack::start(ApiAuth::AwsIam).await.unwrap();
    let base = stack.edge.base.clone();
    let http = reqwest::Client::new();

    // Before any signature: the first run signs the empty log, served with seconds of cache.
    let first = stack.run_sequencer(1).await.unwrap();
    assert_eq!(first[0]["added"], 0, "{first:?}");
    let res = http
        .get(stack.edge.url(&format!("/{PETITION}/log/checkpoint")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "the log's path is not index-rewritten");
    assert_eq!(header(&res, "cache-control"), CHECKPOINT_CACHE);
    assert!(header(&res, "content-type").starts_with("text/plain"));
    let empty = res.text().await.unwrap();
    assert_eq!(empty.lines().nth(1), Some("0"), "{empty}");

    // Three signers through the edge; each confirmation hands back a receipt.
    let mut receipts = Vec::new();
    for (i, name) in ["Ada Lune", "Basile Roc", "Chloé Vent"].iter().enumerate() {
        // The third from a domain the organizers will find fraudulent.
        let domain = if i == 2 {
            "fraude.example"
        } else {
            "example.net"
        };
        let signer = Signer::new(name, &format!("signer{i}@{domain}"));
        let captcha = stack.api().captcha().await;
        let res = theme_client::sign(&http, &base, PETITION, &signer, &captcha)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 202, "{}", stack.lambda.log());
        let mail = stack.wait_mail(&signer.email).await.unwrap();
        let t = token(&mail, "confirm").expect("a confirm link");
        let res = theme_client::token(&http, &base, "/api/confirm", &t)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{}", stack.lambda.log());
        let body: serde_json::Value = res.json().await.unwrap();
        let receipt = body["receipt"].as_str().expect("a receipt").to_string();
        receipts.push(ReceiptSecret::from_base64url(&receipt).unwrap());
    }

    let runs = stack.run_sequencer(2).await.unwrap();
    assert_eq!(runs[0]["added"], 3, "{runs:?}");
    assert_eq!(runs[1]["added"], 0, "a second run adds nothing: {runs:?}");

    // Every receipt opens a counted entry of the bucket's log.
    let (head, audit) = cahier_tests::log_folder::audit_bucket(
        &stack.moto,
        &stack.bucket,
        &base,
        PETITION,
        &stack.log_key.public_base64(),
    )
    .await;
    assert!(audit.problems.is_empty(), "{:?}", audit.problems);
    assert_eq!(head.size, 3);
    assert_eq!(audit.tally.counted, 3);
    let bundle = http
        .get(
            stack
                .edge
                .url(&format!("/{PETITION}/log/tile/entries/000.p/3")),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(bundle.status(), 200);
    assert_eq!(header(&bundle, "cache-control"), IMMUTABLE);
    let bytes = bundle.bytes().await.unwrap();
    let entries = cahier_tlog::layout::decode_bundle(&bytes).unwrap();
    for secret in &receipts {
        let c = Commitment::new(PETITION, secret);
        assert!(
            entries
                .iter()
                .filter_map(|e| cahier_tlog::Entry::decode(e).ok())
                .any(|e| e.commitment == c),
            "a receipt without its entry"
        );
    }

    // Each receipt's proof, fetched through the edge with the commitment alone, verifies
    // offline against the log's key.
    let origin = cahier_tlog::checkpoint::origin(&base, PETITION);
    for secret in &receipts {
        let c = Commitment::new(PETITION, secret);
        let res = http
            .get(stack.edge.url(&format!(
                "/{PETITION}/log/{}",
                cahier_tlog::layout::receipt_path(&c)
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(header(&res, "cache-control"), RECEIPT_CACHE);
        let proof = cahier_tlog::proof::TlogProof::parse(&res.bytes().await.unwrap()).unwrap();
        let proven = proof.verify(&origin, &stack.log_key.public()).unwrap();
        assert_eq!(proven.entry.commitment, c);
        assert_eq!(proven.head.size, 3);
    }

    // The organizers invalidate the fraudulent one: the next run logs it as taken out, with
    // its reason, and a monitor through the edge (once the checkpoint's short cache has
    // passed) agrees with the count.
    let done = stack
        .admin(&[
            "invalidate",
            "--petition",
            PETITION,
            "--domain",
            "fraude.example",
            "--yes",
        ])
        .unwrap();
    assert_eq!(done["changed"], 1, "{done}");
    let tally = stack.log_agrees_with_count(PETITION).await;
    assert_eq!((tally.count, tally.counted), (2, 3));
    assert_eq!(tally.uncounted.get("invalidated"), Some(&1), "{tally:?}");
}

struct Aws {
    moto: Moto,
    store: Arc<DynamoStore>,
    bucket: String,
}

async fn aws() -> Aws {
    let moto = Moto::start().unwrap();
    let conf = moto.sdk_config().await;
    let table = fresh_table("cahier-logb");
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&conf), table);
    store.create_table().await.unwrap();
    let bucket = fresh_table("cahier-logb").to_lowercase();
    cahier_tests::moto::s3(&moto)
        .await
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    Aws {
        moto,
        store: Arc::new(store),
        bucket,
    }
}

impl Aws {
    async fn task(&self, key: &cahier_tlog::LogKey) -> LogTask {
        let s3 = cahier_tests::moto::s3(&self.moto).await;
        let bucket = Bucket::new(s3, &self.bucket, self.store.clone());
        LogTask::into_target(
            self.store.clone(),
            LogTarget::Bucket(bucket),
            key.clone(),
            "https://p.example",
        )
        .with_petitions(["ecole".to_string()])
    }

    async fn object(&self, key: &str) -> Option<Vec<u8>> {
        let out = cahier_tests::moto::s3(&self.moto)
            .await
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .ok()?;
        Some(out.body.collect().await.ok()?.to_vec())
    }

    async fn put(&self, key: &str, data: &[u8]) {
        cahier_tests::moto::s3(&self.moto)
            .await
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(data.to_vec().into())
            .send()
            .await
            .unwrap();
    }

    async fn confirm(&self, from: usize, to: usize) {
        for i in from..to {
            let h = format!("{i:064x}");
            self.store.sign(&signature(&h)).await.unwrap();
            self.store
                .confirm("ecole", &h, cahier_function::now())
                .await
                .unwrap();
        }
    }
}

fn signature(email_hash: &str) -> NewSignature {
    let now = cahier_function::now();
    NewSignature {
        petition: "ecole".into(),
        email_hash: email_hash.into(),
        email_domain: "example.org".into(),
        ip_hash: String::new(),
        prefix_hash: String::new(),
        network: String::new(),
        name_hash: String::new(),
        sealed: Vec::new(),
        lang: "fr".into(),
        public: false,
        newsletter: false,
        hold_reason: None,
        flags: Vec::new(),
        created_at: now,
        expires_at: now + 86_400,
        budgets: Vec::new(),
        deferred_mail: None,
        listing: None,
        region: None,
    }
}

const CHECKPOINT: &str = "ecole/log/checkpoint";

/// Killed after the table's head moved but before the bucket's checkpoint was uploaded: the
/// bucket serves the previous checkpoint (consistent, one step behind), and the next run
/// uploads the head's note before anything else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_swapped_but_not_uploaded_is_uploaded_by_the_next_run() {
    let aws = aws().await;
    let key = cahier_tlog::LogKey::generate();
    let mut task = aws.task(&key).await;
    aws.confirm(0, 3).await;
    assert_eq!(task.run_once().await.unwrap().added, 3);
    let old = aws.object(CHECKPOINT).await.unwrap();
    aws.confirm(3, 5).await;
    assert_eq!(task.run_once().await.unwrap().added, 2);
    let new = aws.object(CHECKPOINT).await.unwrap();
    assert_ne!(old, new);
    // The state of a crash between the swap in the table and the upload.
    aws.put(CHECKPOINT, &old).await;
    let mut restarted = aws.task(&key).await;
    assert_eq!(restarted.run_once().await.unwrap().added, 0);
    assert_eq!(aws.object(CHECKPOINT).await.unwrap(), new);
    assert_eq!(
        aws.store.log_checkpoint("ecole").await.unwrap().unwrap(),
        new
    );
}

/// Two sequencers at once (a retried schedule during a slow run): the one that read an older
/// checkpoint loses the conditional swap in the table and publishes nothing; the bucket keeps
/// the winner's log, which the loser then extends after reopening.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sequencer_loses_the_swap_and_never_forks_the_log() {
    let aws = aws().await;
    let key = cahier_tlog::LogKey::generate();
    let (mut a, mut b) = (aws.task(&key).await, aws.task(&key).await);
    assert_eq!(a.run_once().await.unwrap().added, 0);
    assert_eq!(
        b.run_once().await.unwrap().added,
        0,
        "both hold the empty log"
    );
    aws.confirm(0, 4).await;
    assert_eq!(a.run_once().await.unwrap().added, 4);
    let published = aws.object(CHECKPOINT).await.unwrap();
    aws.confirm(4, 6).await;
    let e = b.run_once().await.unwrap_err();
    assert!(
        format!("{e:#}").contains("refusing to sign a fork"),
        "{e:#}"
    );
    assert_eq!(aws.object(CHECKPOINT).await.unwrap(), published);
    // Reopened from the table's head, the loser goes on from the winner's log.
    assert_eq!(b.run_once().await.unwrap().added, 2);
    let text = String::from_utf8(aws.object(CHECKPOINT).await.unwrap()).unwrap();
    assert_eq!(text.lines().nth(1), Some("6"));
    let (_, audit) = cahier_tests::log_folder::audit_bucket(
        &aws.moto,
        &aws.bucket,
        "https://p.example",
        "ecole",
        &key.public_base64(),
    )
    .await;
    assert!(audit.problems.is_empty(), "{:?}", audit.problems);
    assert_eq!(audit.tally.count, 6);
}

/// A bucket already serving a checkpoint that the table's head does not know (another
/// table's log, a restored bucket) is not restarted from nothing: that would publish a
/// shorter log, a rollback to every monitor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_checkpoint_unknown_to_the_table_is_refused() {
    let aws = aws().await;
    let key = cahier_tlog::LogKey::generate();
    let note = key
        .sign(
            &cahier_tlog::checkpoint::origin("https://p.example", "ecole"),
            0,
            cahier_tlog::EMPTY_HASH,
        )
        .unwrap();
    aws.put(CHECKPOINT, &note).await;
    let e = aws.task(&key).await.run_once().await.unwrap_err();
    assert!(format!("{e:#}").contains("refusing"), "{e:#}");
    assert_eq!(aws.object(CHECKPOINT).await.unwrap(), note);
    assert!(aws.store.log_checkpoint("ecole").await.unwrap().is_none());
}

/// The table restored to an older point in time (point-in-time recovery): its head is behind
/// the checkpoint the bucket serves. Publishing it would be a rollback, and extending it a
/// fork over tiles cached for a year: the sequencer refuses, and the bucket keeps its log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_restored_behind_the_bucket_is_refused() {
    let aws = aws().await;
    let key = cahier_tlog::LogKey::generate();
    let mut task = aws.task(&key).await;
    aws.confirm(0, 3).await;
    assert_eq!(task.run_once().await.unwrap().added, 3);
    let old = aws.store.log_checkpoint("ecole").await.unwrap().unwrap();
    aws.confirm(3, 5).await;
    assert_eq!(task.run_once().await.unwrap().added, 2);
    let new = aws.object(CHECKPOINT).await.unwrap();
    aws.store
        .swap_log_checkpoint("ecole", Some(&new), &old)
        .await
        .unwrap();
    let e = aws.task(&key).await.run_once().await.unwrap_err();
    assert!(format!("{e:#}").contains("not ahead"), "{e:#}");
    assert_eq!(aws.object(CHECKPOINT).await.unwrap(), new);
}
