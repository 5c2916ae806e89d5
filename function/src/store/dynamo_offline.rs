//! Offline batches on DynamoDB (`cahier admin offline`): one item per batch under
//! `offline#<petition>`, each change in one transaction with its count shard, its log event and
//! its audit event, as a signature's. The batch's key hash ([`OfflineBatch::key_hash`]) picks
//! the shard and orders its events in the log queue, as a signer's e-mail hash does.

use super::admin::{OfflineAdded, OfflineBatch, OfflineWithdrawn};
use super::dynamo::{backoff, get_n, get_s, key, n, s, DynamoStore, Item, TxError};
use super::dynamo_keys::offline_pk;
use super::dynamo_log::LogWrite;
use super::CountDelta;
use anyhow::{bail, Context};
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use cahier_tlog::{Commitment, Entry, Reason, ReceiptSecret};

const ATTEMPTS: u32 = 8;

fn batch_from(item: &Item) -> anyhow::Result<OfflineBatch> {
    Ok(OfflineBatch {
        petition: get_s(item, "petition")
            .context("a batch without petition")?
            .to_string(),
        id: get_s(item, "sk").context("a batch without id")?.to_string(),
        signatures: get_n(item, "signatures")?
            .and_then(|v| u32::try_from(v).ok())
            .context("a batch without its size")?,
        date: get_s(item, "date").unwrap_or_default().to_string(),
        note: get_s(item, "note").unwrap_or_default().to_string(),
        added_at: get_n(item, "added_at")?.unwrap_or(0),
        withdrawn_at: get_n(item, "withdrawn_at")?,
    })
}

impl DynamoStore {
    async fn batch_item(&self, petition: &str, id: &str) -> anyhow::Result<Option<Item>> {
        Ok(self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(offline_pk(petition), id)))
            .consistent_read(true)
            .send()
            .await
            .with_context(|| format!("while reading batch {id} of {petition}"))?
            .item)
    }

    pub(super) async fn add_offline_batch(
        &self,
        b: &OfflineBatch,
        now: i64,
    ) -> anyhow::Result<OfflineAdded> {
        b.check()?;
        let key_hash = b.key_hash();
        let hour = i64::from(Entry::hour_of(now));
        let commitment = Commitment::new(&b.petition, &ReceiptSecret::random());
        let log = LogWrite::for_batch(
            &b.petition,
            &key_hash,
            Entry::offline(commitment, b.signatures, hour * 3600),
            1,
            hour,
        );
        let mut item = key(offline_pk(&b.petition), &b.id);
        for (k, v) in [
            ("petition", s(&b.petition)),
            ("signatures", n(b.signatures)),
            ("date", s(&b.date)),
            ("note", s(&b.note)),
            ("added_at", n(now)),
            ("log_n", n(1)),
            ("log_hour", n(hour)),
            (
                "commitment",
                AttributeValue::B(commitment.0.to_vec().into()),
            ),
        ] {
            item.insert(k.into(), v);
        }
        let detail = format!("batch {}: {} signatures of {}", b.id, b.signatures, b.date);
        for attempt in 0..ATTEMPTS {
            let items = vec![
                TransactWriteItem::builder()
                    .put(
                        Put::builder()
                            .table_name(&self.table)
                            .set_item(Some(item.clone()))
                            .condition_expression("attribute_not_exists(pk)")
                            .build()?,
                    )
                    .build(),
                self.count_update(
                    &b.petition,
                    &key_hash,
                    CountDelta::Offline(i64::from(b.signatures)),
                    now,
                )?,
                self.audit_put(&b.petition, &key_hash, "offline_added", now, &detail)?,
                log.queue_put(&self.table)?,
            ];
            match self.transact(items).await {
                Ok(()) => return Ok(OfflineAdded::Added),
                Err(TxError::Condition(_)) => {
                    let found = self
                        .batch_item(&b.petition, &b.id)
                        .await?
                        .map(|i| batch_from(&i))
                        .transpose()?;
                    return match found {
                        Some(f) if f.withdrawn_at.is_some() => bail!(
                            "batch {} of {} was withdrawn: record the corrected batch under a new id",
                            b.id,
                            b.petition
                        ),
                        Some(f) if f.signatures == b.signatures => Ok(OfflineAdded::AlreadyRecorded),
                        Some(f) => bail!(
                            "batch {} of {} is already recorded with {} signatures (withdraw it \
                             first to record another size)",
                            b.id,
                            b.petition,
                            f.signatures
                        ),
                        None => bail!("recording batch {} of {} conflicted; retry", b.id, b.petition),
                    };
                }
                Err(TxError::Retry) => backoff(attempt).await,
                Err(TxError::Other(e)) => return Err(e),
            }
        }
        bail!("DynamoDB kept conflicting or throttling after {ATTEMPTS} attempts")
    }

    pub(super) async fn withdraw_offline_batch(
        &self,
        petition: &str,
        id: &str,
        now: i64,
    ) -> anyhow::Result<OfflineWithdrawn> {
        for attempt in 0..ATTEMPTS {
            let Some(item) = self.batch_item(petition, id).await? else {
                return Ok(OfflineWithdrawn::NotFound);
            };
            let batch = batch_from(&item)?;
            if batch.withdrawn_at.is_some() {
                return Ok(OfflineWithdrawn::AlreadyWithdrawn);
            }
            let commitment: [u8; 32] = item
                .get("commitment")
                .and_then(|v| v.as_b().ok())
                .and_then(|b| b.as_ref().try_into().ok())
                .context("a batch without its commitment")?;
            let key_hash = batch.key_hash();
            let hour = i64::from(Entry::hour_of(now)).max(get_n(&item, "log_hour")?.unwrap_or(0));
            let log_n = get_n(&item, "log_n")?.unwrap_or(1) as u64 + 1;
            let log = LogWrite::for_batch(
                petition,
                &key_hash,
                Entry::uncounted(Commitment(commitment), Reason::Withdrawn, hour * 3600),
                log_n,
                hour,
            );
            let update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(offline_pk(petition), id)))
                .update_expression("SET withdrawn_at = :now, log_n = :n, log_hour = :h")
                .condition_expression("attribute_exists(pk) AND attribute_not_exists(withdrawn_at)")
                .expression_attribute_values(":now", n(now))
                .expression_attribute_values(":n", n(log_n))
                .expression_attribute_values(":h", n(hour))
                .build()?;
            let detail = format!("batch {id}: {} signatures", batch.signatures);
            let items = vec![
                TransactWriteItem::builder().update(update).build(),
                self.count_update(
                    petition,
                    &key_hash,
                    CountDelta::Offline(-i64::from(batch.signatures)),
                    now,
                )?,
                self.audit_put(petition, &key_hash, "offline_withdrawn", now, &detail)?,
                log.queue_put(&self.table)?,
            ];
            match self.transact(items).await {
                Ok(()) => return Ok(OfflineWithdrawn::Withdrawn),
                // Withdrawn meanwhile: read again, which says so.
                Err(TxError::Condition(_)) | Err(TxError::Retry) => backoff(attempt).await,
                Err(TxError::Other(e)) => return Err(e),
            }
        }
        bail!("withdrawing batch {id} of {petition} kept conflicting after {ATTEMPTS} attempts")
    }

    /// Batches of one petition (a query), or of every petition (a scan: rare, organizer-only).
    pub(super) async fn offline_batch_list(
        &self,
        petition: Option<&str>,
    ) -> anyhow::Result<Vec<OfflineBatch>> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let (items, last) = match petition {
                Some(p) => {
                    let r = self
                        .client
                        .query()
                        .table_name(&self.table)
                        .key_condition_expression("pk = :pk")
                        .expression_attribute_values(":pk", s(offline_pk(p)))
                        .consistent_read(true)
                        .set_exclusive_start_key(start.take())
                        .send()
                        .await
                        .context("while reading the offline batches")?;
                    (r.items, r.last_evaluated_key)
                }
                None => {
                    let r = self
                        .client
                        .scan()
                        .table_name(&self.table)
                        .filter_expression("begins_with(pk, :p)")
                        .expression_attribute_values(":p", s("offline#"))
                        .set_exclusive_start_key(start.take())
                        .send()
                        .await
                        .context("while scanning the offline batches")?;
                    (r.items, r.last_evaluated_key)
                }
            };
            for item in items.unwrap_or_default() {
                out.push(batch_from(&item)?);
            }
            match last {
                Some(k) => start = Some(k),
                None => break,
            }
        }
        out.sort_by(|a, b| (&a.petition, &a.id).cmp(&(&b.petition, &b.id)));
        Ok(out)
    }
}
