//! A petition's transparency-log folder read as an outside monitor reads it: the checkpoint
//! opened with the published key under the site's origin, then every bundle and tile audited
//! against it (and against a head seen before).

use cahier_tlog::audit::{audit, files_of, Audit, Head};
use cahier_tlog::checkpoint;
use std::collections::HashMap;
use std::path::Path;

/// `<dir>/<slug>/log`, as the sequencer writes it.
pub fn folder(dir: &Path, slug: &str) -> std::path::PathBuf {
    dir.join(slug).join("log")
}

/// The size the folder's checkpoint states, if it has one (not verified: for waiting).
pub fn size(dir: &Path, slug: &str) -> Option<u64> {
    let text = std::fs::read_to_string(folder(dir, slug).join("checkpoint")).ok()?;
    text.lines().nth(1)?.parse().ok()
}

/// Audits the log of `slug` under `dir` for the site `base_url`, signed by `public` (base64).
/// Panics if the checkpoint does not verify: the callers are tests.
pub fn audit_log(
    dir: &Path,
    base_url: &str,
    slug: &str,
    public: &str,
    seen: Option<Head>,
) -> (Head, Audit) {
    let folder = folder(dir, slug);
    let cp = std::fs::read(folder.join("checkpoint"))
        .unwrap_or_else(|e| panic!("no checkpoint in {}: {e}", folder.display()));
    let key = checkpoint::parse_public_key(public).expect("a public key");
    let v = checkpoint::open(&cp, &checkpoint::origin(base_url, slug), &key)
        .expect("the checkpoint verifies under the published key and the site's origin");
    let head = Head {
        size: v.size,
        root: v.root,
    };
    let files: HashMap<String, Vec<u8>> = files_of(v.size)
        .into_iter()
        .filter_map(|rel| std::fs::read(folder.join(&rel)).ok().map(|b| (rel, b)))
        .collect();
    let a = audit(head, seen, |rel| files.get(rel).map(Vec::as_slice));
    (head, a)
}

/// The same audit of the log of `slug` in a bucket of moto's S3 (`<slug>/log/...` objects),
/// read directly, as the sequencer wrote it.
pub async fn audit_bucket(
    moto: &crate::moto::Moto,
    bucket: &str,
    base_url: &str,
    slug: &str,
    public: &str,
) -> (Head, Audit) {
    let s3 = crate::moto::s3(moto).await;
    let get = |rel: String| {
        let s3 = s3.clone();
        async move {
            let out = s3
                .get_object()
                .bucket(bucket)
                .key(format!("{slug}/log/{rel}"))
                .send()
                .await
                .ok()?;
            Some((rel, out.body.collect().await.ok()?.to_vec()))
        }
    };
    let (_, cp) = get("checkpoint".into())
        .await
        .unwrap_or_else(|| panic!("no checkpoint for {slug} in s3://{bucket}"));
    let key = checkpoint::parse_public_key(public).expect("a public key");
    let v = checkpoint::open(&cp, &checkpoint::origin(base_url, slug), &key)
        .expect("the bucket's checkpoint verifies under the published key and the site's origin");
    let head = Head {
        size: v.size,
        root: v.root,
    };
    let mut files = HashMap::new();
    for rel in files_of(v.size) {
        if let Some((rel, bytes)) = get(rel).await {
            files.insert(rel, bytes);
        }
    }
    let a = audit(head, None, |rel| files.get(rel).map(Vec::as_slice));
    (head, a)
}
