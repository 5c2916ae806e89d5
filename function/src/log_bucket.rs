//! The transparency log in the site's S3 bucket: what the scheduled sequencer writes under AWS
//! (the function's `sequencer` handler), served by CloudFront at `/<slug>/log/`.
//!
//! Tiles and entry bundles are plain objects under `<slug>/log/`, immutable once written (one
//! correct content per path: a rewrite after a crash puts the same bytes). The checkpoint is
//! the one file that moves, and S3 alone cannot say "replace only if unchanged" in a way every
//! S3-compatible store honours, so the *head* is the DynamoDB item `log#<petition>` /
//! `checkpoint`, swapped with a conditional write (as Sunlight does); only the sequencer that
//! won the swap uploads the note. A crash between the two leaves the bucket one checkpoint
//! behind: the next [`BucketLog::open`] uploads the head's note again (Ed25519 signatures are
//! deterministic, so it is the same bytes the crashed run would have put).
//!
//! The sequencer is synchronous (it runs in `spawn_blocking`); each call here blocks that
//! thread on the runtime's handle.

use crate::store::dynamo::DynamoStore;
use anyhow::{bail, Context};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use cahier_tlog::layout::CHECKPOINT;
use cahier_tlog::LogFiles;
use std::sync::Arc;

/// Tiles and bundles never change: browsers and CloudFront keep them a year.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// The checkpoint: seconds, so a monitor sees a new one within the sequencer's interval.
pub const CHECKPOINT_CACHE: &str = "public, max-age=5";
/// A receipt's proof is rewritten only when a run crashed before its checkpoint: minutes.
pub const RECEIPT_CACHE: &str = "public, max-age=300";
/// Receipts uploaded at once (a pass after a surge holds thousands).
const RECEIPT_UPLOADS: usize = 32;

/// Settings parsed from `BUCKET[?endpoint=URL&region=REGION]` (`--log-bucket`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketUrl {
    pub bucket: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
}

impl BucketUrl {
    pub fn parse(text: &str) -> anyhow::Result<BucketUrl> {
        let (bucket, query) = text.split_once('?').unwrap_or((text, ""));
        // S3's rules for new buckets: 3 to 63 of a-z 0-9 . -, starting and ending alphanumeric.
        let valid = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
            && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
            && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !valid {
            bail!(
                "--log-bucket {text}: {bucket:?} is not an S3 bucket name (3 to 63 of a-z 0-9 . -)"
            );
        }
        let (endpoint, region) =
            crate::aws::endpoint_options(query, &format!("--log-bucket {text}"))?;
        let url = BucketUrl {
            bucket: bucket.to_string(),
            endpoint,
            region,
        };
        Ok(url)
    }
}

/// The site bucket, with the store that holds the logs' heads.
#[derive(Clone)]
pub struct Bucket {
    s3: Client,
    name: String,
    heads: Arc<DynamoStore>,
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bucket").field("name", &self.name).finish()
    }
}

impl Bucket {
    pub fn new(s3: Client, name: impl Into<String>, heads: Arc<DynamoStore>) -> Bucket {
        Bucket {
            s3,
            name: name.into(),
            heads,
        }
    }

    /// The bucket of `--log-bucket`; credentials from the environment or the Lambda role.
    pub async fn from_url(text: &str, heads: Arc<DynamoStore>) -> anyhow::Result<Bucket> {
        let url = BucketUrl::parse(text)?;
        let conf = crate::aws::sdk_config(url.endpoint.as_deref(), url.region.as_deref()).await;
        if conf.region().is_none() {
            bail!("--log-bucket {text}: no AWS region (set region= or AWS_REGION)");
        }
        let s3 = aws_sdk_s3::config::Builder::from(&conf)
            // An explicit endpoint (an S3-compatible store, a test's) has no per-bucket host names.
            .force_path_style(url.endpoint.is_some())
            .build();
        Ok(Bucket::new(Client::from_conf(s3), url.bucket, heads))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The object's bytes, or None when there is none.
    pub async fn get(&self, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        match self
            .s3
            .get_object()
            .bucket(&self.name)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(
                out.body
                    .collect()
                    .await
                    .with_context(|| format!("while reading s3://{}/{key}", self.name))?
                    .to_vec(),
            )),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("while reading s3://{}/{key}", self.name)),
        }
    }

    /// Puts the object with the headers CloudFront passes on.
    pub async fn put(
        &self,
        key: &str,
        data: &[u8],
        content_type: &str,
        cache: &str,
    ) -> anyhow::Result<()> {
        self.s3
            .put_object()
            .bucket(&self.name)
            .key(key)
            .body(ByteStream::from(data.to_vec()))
            .content_type(content_type)
            .cache_control(cache)
            .send()
            .await
            .with_context(|| format!("while writing s3://{}/{key}", self.name))?;
        Ok(())
    }
}

/// One petition's log in the bucket, as the sequencer's [`LogFiles`].
pub struct BucketLog {
    bucket: Bucket,
    petition: String,
    /// `<slug>/log/`
    prefix: String,
    rt: tokio::runtime::Handle,
    /// Receipts of the batch, uploaded together before its checkpoint.
    receipts: Vec<(String, Vec<u8>)>,
}

impl BucketLog {
    /// The log of `petition`, with the bucket brought up to the head's checkpoint (a crash
    /// after a swap left it one behind). A checkpoint in the bucket that the head does not
    /// know is refused: extending from nothing would publish a shorter log, a rollback every
    /// monitor would flag.
    pub async fn open(bucket: Bucket, petition: &str) -> anyhow::Result<BucketLog> {
        let log = BucketLog {
            prefix: format!("{petition}/log/"),
            petition: petition.to_string(),
            rt: tokio::runtime::Handle::current(),
            bucket,
            receipts: Vec::new(),
        };
        let key = log.key(CHECKPOINT);
        let head = log.bucket.heads.log_checkpoint(petition).await?;
        let served = log.bucket.get(&key).await?;
        match (head, served) {
            (None, None) => {}
            (None, Some(_)) => bail!(
                "s3://{}/{key} exists but the table holds no checkpoint for {petition}: refusing \
                 to start the log again over a published one (another table's log?)",
                log.bucket.name
            ),
            (Some(h), Some(s)) if h == s => {}
            (Some(h), served) => {
                // The bucket may only be behind the table (a crash between the swap and the
                // upload), never ahead or beside it: a table restored to an older point would
                // otherwise publish a rollback, then a fork over tiles already cached for a year.
                if let Some(s) = &served {
                    let (hs, ss) = (note_size(&h)?, note_size(s)?);
                    anyhow::ensure!(
                        hs > ss,
                        "the table's checkpoint of {petition} ({hs} entries) is not ahead of the \
                         one s3://{}/{key} serves ({ss}): refusing to publish it (was the table \
                         restored, or another table's log written here?)",
                        log.bucket.name
                    );
                }
                tracing::info!(
                    petition,
                    "transparency log: uploading the checkpoint a crash left behind"
                );
                log.put_checkpoint(&h).await?;
            }
        }
        Ok(log)
    }

    fn key(&self, rel: &str) -> String {
        format!("{}{rel}", self.prefix)
    }

    async fn put_checkpoint(&self, note: &[u8]) -> anyhow::Result<()> {
        self.bucket
            .put(
                &self.key(CHECKPOINT),
                note,
                "text/plain; charset=utf-8",
                CHECKPOINT_CACHE,
            )
            .await
    }
}

/// The tree size a checkpoint note states (its second line; the signature is checked by the
/// sequencer when it opens the log).
fn note_size(note: &[u8]) -> anyhow::Result<u64> {
    std::str::from_utf8(note)
        .ok()
        .and_then(|t| t.lines().nth(1))
        .and_then(|l| l.parse().ok())
        .context("a checkpoint note without its size")
}

impl LogFiles for BucketLog {
    fn read(&self, rel: &str) -> anyhow::Result<Option<Vec<u8>>> {
        if rel == CHECKPOINT {
            return self
                .rt
                .block_on(self.bucket.heads.log_checkpoint(&self.petition));
        }
        self.rt.block_on(self.bucket.get(&self.key(rel)))
    }

    fn write(&mut self, rel: &str, data: &[u8]) -> anyhow::Result<()> {
        self.rt.block_on(self.bucket.put(
            &self.key(rel),
            data,
            "application/octet-stream",
            IMMUTABLE,
        ))
    }

    fn write_receipt(&mut self, rel: &str, data: &[u8]) -> anyhow::Result<()> {
        self.receipts.push((self.key(rel), data.to_vec()));
        Ok(())
    }

    fn swap_checkpoint(&mut self, expected: Option<&[u8]>, new: &[u8]) -> anyhow::Result<()> {
        use futures::{StreamExt, TryStreamExt};
        let receipts = std::mem::take(&mut self.receipts);
        // Every tile and bundle PUT has returned, and the receipts' below: S3 has them
        // durably before the head moves. Receipts go up before the swap, as in a folder, so a
        // crash anywhere makes the next run (from the same size, over the same entries) put
        // them again. A receipt may then cite a checkpoint never published (a run that lost
        // the swap, or crashed): it is still a valid proof against a tree every published
        // checkpoint extends or is extended by, since the numbered events never change.
        self.rt.block_on(async {
            futures::stream::iter(receipts.iter().map(|(key, data)| {
                self.bucket
                    .put(key, data, "text/plain; charset=utf-8", RECEIPT_CACHE)
            }))
            .buffer_unordered(RECEIPT_UPLOADS)
            .try_collect::<Vec<()>>()
            .await?;
            self.bucket
                .heads
                .swap_log_checkpoint(&self.petition, expected, new)
                .await?;
            self.put_checkpoint(new).await
        })
    }

    fn location(&self) -> String {
        format!("s3://{}/{}", self.bucket.name, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::BucketUrl;

    #[test]
    fn bucket_urls_parse_and_bad_ones_say_why() {
        assert_eq!(
            BucketUrl::parse("site-bucket?endpoint=http://127.0.0.1:5000&region=eu-west-3")
                .unwrap(),
            BucketUrl {
                bucket: "site-bucket".into(),
                endpoint: Some("http://127.0.0.1:5000".into()),
                region: Some("eu-west-3".into()),
            }
        );
        for bad in ["Site", "a", "-site", "site_bucket", "site?zone=1"] {
            let e = BucketUrl::parse(bad).unwrap_err().to_string();
            assert!(e.contains("--log-bucket"), "{bad}: {e}");
        }
    }
}
