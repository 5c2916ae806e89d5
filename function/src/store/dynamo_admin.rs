//! The organizer's side of [`DynamoStore`] ([`AdminStore`]), for `cahier admin` only.
//!
//! None of this runs in the sign path: the organizer tools read the table with a parallel
//! `Scan` (they are rare, offline, and a Scan reads each item once, which costs less than
//! keeping a secondary index written on every signature), then change signatures one
//! transaction each, as the sign path does: state + count shard + audit event together.
//! See `docs/dynamodb.md` ("Organizer tools").

use super::admin::{AdminStore, Criteria, OfflineAdded, OfflineBatch, OfflineWithdrawn};
use super::dynamo::{
    backoff, get_n, get_s, is_expired, key, n, record_from, s, Change, DynamoStore, Item,
    Transitioned, TxError, TTL_ATTR,
};
use super::dynamo_keys::{count_pk, count_pks, count_shard, signature_pk, COUNT_SHARDS, COUNT_SK};
use super::{AuditEvent, Count, SignatureRecord, Status};
use anyhow::{bail, ensure, Context};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Put, TransactWriteItem, Update};
use std::collections::HashMap;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Segments of a parallel Scan (each a task reading its share of the table).
const SCAN_SEGMENTS: i32 = 4;
/// Pages a segment may read before the scan gives up (1 MB each: far beyond any real table).
const MAX_SCAN_PAGES: u32 = 1_000_000;
/// Signatures changed at the same time by `set_status` and `purge`.
const CHANGE_CONCURRENCY: usize = 16;
/// Most signatures one `set_status` call accepts (the trait's contract).
const MAX_BATCH: usize = 500;
/// Attempts of an optimistic step (a status change, a recount) before giving up.
const MAX_ATTEMPTS: u32 = 8;

/// A Scan request: filter expression and its placeholders.
struct ScanFilter {
    expression: String,
    names: Vec<(&'static str, &'static str)>,
    values: Vec<(&'static str, AttributeValue)>,
}

impl ScanFilter {
    /// Signature items (`sk = "sig"`), of one petition if given.
    fn signatures(petition: Option<&str>) -> ScanFilter {
        let mut f = ScanFilter {
            expression: "#sk = :sig".into(),
            names: vec![("#sk", "sk")],
            values: vec![(":sig", s(super::dynamo_keys::SIG_SK))],
        };
        if let Some(p) = petition {
            f.expression.push_str(" AND begins_with(#pk, :pk)");
            f.names.push(("#pk", "pk"));
            f.values.push((":pk", s(signature_pk(p, ""))));
        }
        f
    }
}

impl DynamoStore {
    /// A second handle on the same table and client, for tasks that must own their store.
    fn handle(&self) -> DynamoStore {
        DynamoStore::new(self.client.clone(), self.table.clone())
    }

    /// Starts a parallel, strongly consistent Scan; pages arrive on the returned channel (at most
    /// a few buffered, so memory stays bounded whatever the table's size). The scan stops when
    /// the receiver and the task set are dropped.
    fn scan_pages(
        &self,
        filter: ScanFilter,
    ) -> (JoinSet<()>, mpsc::Receiver<anyhow::Result<Vec<Item>>>) {
        let (tx, rx) = mpsc::channel(SCAN_SEGMENTS as usize * 2);
        let mut tasks = JoinSet::new();
        let filter = std::sync::Arc::new(filter);
        for segment in 0..SCAN_SEGMENTS {
            let (client, table, filter, tx) = (
                self.client.clone(),
                self.table.clone(),
                filter.clone(),
                tx.clone(),
            );
            tasks.spawn(async move {
                let mut start: Option<Item> = None;
                for _ in 0..MAX_SCAN_PAGES {
                    let mut request = client
                        .scan()
                        .table_name(&table)
                        .segment(segment)
                        .total_segments(SCAN_SEGMENTS)
                        .consistent_read(true)
                        .filter_expression(&filter.expression)
                        .set_exclusive_start_key(start.take());
                    for (k, v) in &filter.names {
                        request = request.expression_attribute_names(*k, *v);
                    }
                    for (k, v) in &filter.values {
                        request = request.expression_attribute_values(*k, v.clone());
                    }
                    match request.send().await {
                        Ok(out) => {
                            start = out.last_evaluated_key;
                            if tx.send(Ok(out.items.unwrap_or_default())).await.is_err() {
                                return; // the reader stopped
                            }
                            if start.is_none() {
                                return;
                            }
                        }
                        Err(e) => {
                            let err = anyhow::Error::new(e)
                                .context(format!("while scanning {table} (segment {segment})"));
                            let _ = tx.send(Err(err)).await;
                            return;
                        }
                    }
                }
                let _ = tx
                    .send(Err(anyhow::anyhow!(
                        "scan of {table} read {MAX_SCAN_PAGES} pages without ending"
                    )))
                    .await;
            });
        }
        (tasks, rx)
    }

    /// One signature from `from` to `to`, with its count shard and audit event; 1 if it
    /// changed, 0 if it was absent, expired or not in `from`.
    async fn set_one(
        &self,
        petition: &str,
        email_hash: &str,
        from: &[Status],
        to: Status,
        detail: &str,
        now: i64,
    ) -> anyhow::Result<u64> {
        for _ in 0..MAX_ATTEMPTS {
            let Some(item) = self.get_item(petition, email_hash).await? else {
                return Ok(0);
            };
            if is_expired(get_n(&item, TTL_ATTR)?, now) {
                return Ok(0);
            }
            let status = record_from(&item)?.status;
            if !from.contains(&status) || status == to {
                return Ok(0);
            }
            let delta = i64::from(to == Status::Confirmed) - i64::from(status == Status::Confirmed);
            // Approved back to pending or still held: it keeps expiring unless confirmed.
            // Any other state is kept as a record, so its TTL goes.
            let expression = if matches!(to, Status::Pending | Status::Held) {
                "SET #status = :to"
            } else {
                "SET #status = :to REMOVE #ttl"
            };
            let changed = self
                .transition(Change {
                    petition,
                    email_hash,
                    item: &item,
                    from: status,
                    to,
                    update_expression: expression,
                    values: Vec::new(),
                    delta,
                    audit: (to.as_str(), detail),
                    now,
                })
                .await
                .with_context(|| format!("while setting a signature of {petition} to {to:?}"))?;
            if let Transitioned::Done { .. } = changed {
                return Ok(1);
            }
            // Changed under us (a confirm, an erase): look again.
        }
        bail!("a signature of {petition} kept changing during a status change")
    }

    /// One held signature released: confirmed-held → confirmed (counted), held → pending, the
    /// hold reason removed; 1 if it changed.
    async fn release_one(
        &self,
        petition: &str,
        email_hash: &str,
        detail: &str,
        now: i64,
    ) -> anyhow::Result<u64> {
        for _ in 0..MAX_ATTEMPTS {
            let Some(item) = self.get_item(petition, email_hash).await? else {
                return Ok(0);
            };
            if is_expired(get_n(&item, TTL_ATTR)?, now) {
                return Ok(0);
            }
            let status = record_from(&item)?.status;
            let (to, expression, delta) = match status {
                Status::ConfirmedHeld => (
                    Status::Confirmed,
                    "SET #status = :to REMOVE hold_reason, #ttl",
                    1,
                ),
                // It keeps expiring unless its owner confirms.
                Status::Held => (Status::Pending, "SET #status = :to REMOVE hold_reason", 0),
                _ => return Ok(0),
            };
            let changed = self
                .transition(Change {
                    petition,
                    email_hash,
                    item: &item,
                    from: status,
                    to,
                    update_expression: expression,
                    values: Vec::new(),
                    delta,
                    audit: ("released", detail),
                    now,
                })
                .await
                .with_context(|| format!("while releasing a signature of {petition}"))?;
            if let Transitioned::Done { .. } = changed {
                return Ok(1);
            }
        }
        bail!("a signature of {petition} kept changing during its release")
    }

    /// Removes the personal data of one signature and records `purged`; 1 if there was some.
    async fn purge_one(&self, petition: &str, email_hash: &str, now: i64) -> anyhow::Result<u64> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(
                signature_pk(petition, email_hash),
                super::dynamo_keys::SIG_SK,
            )))
            .update_expression(
                "REMOVE sealed, ip_hash, prefix_hash, network, name_hash, listing, list_pk, list_at",
            )
            .condition_expression(
                "attribute_exists(sealed) OR attribute_exists(ip_hash) \
                 OR attribute_exists(prefix_hash) OR attribute_exists(network) \
                 OR attribute_exists(name_hash)",
            )
            .build()?;
        for attempt in 0..MAX_ATTEMPTS {
            let items = vec![
                TransactWriteItem::builder().update(update.clone()).build(),
                self.audit_put(petition, email_hash, "purged", now, "retention")?,
            ];
            match self.transact(items).await {
                Ok(()) => return Ok(1),
                Err(TxError::Condition(_)) => return Ok(0),
                Err(TxError::Retry) => backoff(attempt).await,
                Err(TxError::Other(e)) => {
                    return Err(e.context(format!("while purging a signature of {petition}")))
                }
            }
        }
        bail!("DynamoDB kept conflicting or throttling while purging a signature of {petition}")
    }

    /// The `n` of each count shard of `petition` (None for a shard never written).
    async fn shard_values(&self, petition: &str) -> anyhow::Result<Vec<Option<i64>>> {
        let mut values: HashMap<String, i64> = HashMap::new();
        let mut pending: Vec<Item> = count_pks(petition)
            .into_iter()
            .map(|pk| key(pk, COUNT_SK))
            .collect();
        for attempt in 0..MAX_ATTEMPTS {
            let out = self
                .client
                .batch_get_item()
                .request_items(
                    &self.table,
                    KeysAndAttributes::builder()
                        .set_keys(Some(pending))
                        .consistent_read(true)
                        .build()?,
                )
                .send()
                .await
                .with_context(|| format!("while reading the count shards of {petition}"))?;
            for item in out
                .responses()
                .and_then(|r| r.get(&self.table))
                .into_iter()
                .flatten()
            {
                if let (Some(pk), Some(v)) = (get_s(item, "pk"), get_n(item, "n")?) {
                    values.insert(pk.to_string(), v);
                }
            }
            pending = out
                .unprocessed_keys
                .and_then(|mut u| u.remove(&self.table))
                .map(|k| k.keys)
                .unwrap_or_default();
            if pending.is_empty() {
                return Ok((0..COUNT_SHARDS)
                    .map(|i| values.get(&count_pk(petition, i)).copied())
                    .collect());
            }
            backoff(attempt).await;
        }
        bail!("while reading the count shards of {petition}: left unprocessed")
    }
}

/// An audit item as an event; items written before they carried `petition`/`email_hash`
/// attributes get them from their partition key `sig#<petition>#<email_hash>`.
fn audit_from(item: &Item) -> anyhow::Result<AuditEvent> {
    let pk = get_s(item, "pk").unwrap_or_default();
    let (pk_petition, pk_hash) = pk
        .strip_prefix("sig#")
        .and_then(|rest| rest.rsplit_once('#'))
        .unwrap_or_default();
    Ok(AuditEvent {
        petition: get_s(item, "petition").unwrap_or(pk_petition).to_string(),
        email_hash: get_s(item, "email_hash").unwrap_or(pk_hash).to_string(),
        event: get_s(item, "event").unwrap_or_default().to_string(),
        at: get_n(item, "at")?.unwrap_or(0),
        detail: get_s(item, "detail").unwrap_or_default().to_string(),
    })
}

#[async_trait]
impl AdminStore for DynamoStore {
    async fn scan(
        &self,
        criteria: &Criteria,
        visit: &mut (dyn FnMut(SignatureRecord) + Send),
    ) -> anyhow::Result<()> {
        let now = crate::now();
        // One signer of one petition: a read of its item, no scan.
        if let (Some(p), Some(h)) = (&criteria.petition, &criteria.email_hash) {
            if let Some(item) = self.get_item(p, h).await? {
                let record = record_from(&item)?;
                if !is_expired(record.expires_at, now) && criteria.matches(&record) {
                    visit(record);
                }
            }
            return Ok(());
        }
        let (_tasks, mut pages) =
            self.scan_pages(ScanFilter::signatures(criteria.petition.as_deref()));
        while let Some(page) = pages.recv().await {
            for item in page? {
                let record = record_from(&item)?;
                if !is_expired(record.expires_at, now) && criteria.matches(&record) {
                    visit(record);
                }
            }
        }
        Ok(())
    }

    async fn set_status(
        &self,
        petition: &str,
        email_hashes: &[String],
        from: &[Status],
        to: Status,
        audit_detail: &str,
        now: i64,
    ) -> anyhow::Result<u64> {
        ensure!(
            email_hashes.len() <= MAX_BATCH,
            "set_status takes at most {MAX_BATCH} signatures per call, got {}",
            email_hashes.len()
        );
        let mut tasks = JoinSet::new();
        let mut changed = 0;
        for hash in email_hashes {
            if tasks.len() >= CHANGE_CONCURRENCY {
                if let Some(done) = tasks.join_next().await {
                    changed += done.context("a status change task failed")??;
                }
            }
            let (store, petition, hash, from, detail) = (
                self.handle(),
                petition.to_string(),
                hash.clone(),
                from.to_vec(),
                audit_detail.to_string(),
            );
            tasks.spawn(async move {
                store
                    .set_one(&petition, &hash, &from, to, &detail, now)
                    .await
            });
        }
        while let Some(done) = tasks.join_next().await {
            changed += done.context("a status change task failed")??;
        }
        Ok(changed)
    }

    async fn release(
        &self,
        petition: &str,
        email_hashes: &[String],
        audit_detail: &str,
        now: i64,
    ) -> anyhow::Result<u64> {
        ensure!(
            email_hashes.len() <= MAX_BATCH,
            "release takes at most {MAX_BATCH} signatures per call, got {}",
            email_hashes.len()
        );
        let mut tasks = JoinSet::new();
        let mut changed = 0;
        for hash in email_hashes {
            if tasks.len() >= CHANGE_CONCURRENCY {
                if let Some(done) = tasks.join_next().await {
                    changed += done.context("a release task failed")??;
                }
            }
            let (store, petition, hash, detail) = (
                self.handle(),
                petition.to_string(),
                hash.clone(),
                audit_detail.to_string(),
            );
            tasks.spawn(async move { store.release_one(&petition, &hash, &detail, now).await });
        }
        while let Some(done) = tasks.join_next().await {
            changed += done.context("a release task failed")??;
        }
        Ok(changed)
    }

    async fn add_offline(&self, batch: &OfflineBatch, now: i64) -> anyhow::Result<OfflineAdded> {
        self.add_offline_batch(batch, now).await
    }

    async fn withdraw_offline(
        &self,
        petition: &str,
        id: &str,
        now: i64,
    ) -> anyhow::Result<OfflineWithdrawn> {
        self.withdraw_offline_batch(petition, id, now).await
    }

    async fn offline_batches(&self, petition: Option<&str>) -> anyhow::Result<Vec<OfflineBatch>> {
        self.offline_batch_list(petition).await
    }

    async fn suppression_counts(&self) -> anyhow::Result<std::collections::BTreeMap<String, u64>> {
        let filter = ScanFilter {
            expression: "#sk = :suppress".into(),
            names: vec![("#sk", "sk")],
            values: vec![(":suppress", s(super::dynamo_keys::SUPPRESSION_SK))],
        };
        let mut counts = std::collections::BTreeMap::new();
        let (_tasks, mut pages) = self.scan_pages(filter);
        while let Some(page) = pages.recv().await {
            for item in page? {
                let reason = get_s(&item, "reason").unwrap_or("unsubscribed");
                *counts.entry(reason.to_string()).or_default() += 1;
            }
        }
        Ok(counts)
    }

    async fn recount(&self, petition: &str) -> anyhow::Result<Count> {
        for attempt in 0..MAX_ATTEMPTS {
            // Optimistic: remember the shards, count the records, then write every shard in one
            // transaction on condition that none changed meanwhile (a confirm during the scan
            // makes the write fail, and the recount starts again).
            let before = self.shard_values(petition).await?;
            let regions_before = self.regions_before_recount(petition).await?;
            let mut regions: HashMap<u32, std::collections::BTreeMap<String, i64>> = HashMap::new();
            let shards = COUNT_SHARDS as usize;
            let (mut per_shard, mut offline, mut last) =
                (vec![0i64; shards], vec![0i64; shards], vec![0i64; shards]);
            let (_tasks, mut pages) = self.scan_pages(ScanFilter::signatures(Some(petition)));
            while let Some(page) = pages.recv().await {
                for item in page? {
                    if get_s(&item, "status") == Some(Status::Confirmed.as_str())
                        && get_s(&item, "petition") == Some(petition)
                    {
                        let hash = get_s(&item, "email_hash").unwrap_or_default();
                        let shard = count_shard(hash) as usize;
                        per_shard[shard] += 1;
                        last[shard] = last[shard].max(get_n(&item, "confirmed_at")?.unwrap_or(0));
                        if let Some(region) = get_s(&item, "region") {
                            *regions
                                .entry(shard as u32)
                                .or_default()
                                .entry(region.to_string())
                                .or_default() += 1;
                        }
                    }
                }
            }
            for b in self.offline_batch_list(Some(petition)).await? {
                if b.withdrawn_at.is_none() {
                    let shard = count_shard(&b.key_hash()) as usize;
                    per_shard[shard] += i64::from(b.signatures);
                    offline[shard] += i64::from(b.signatures);
                }
            }
            let now = crate::now();
            let mut items = Vec::with_capacity(COUNT_SHARDS as usize);
            for (shard, (&count, old)) in per_shard.iter().zip(&before).enumerate() {
                let mut item = key(count_pk(petition, shard as u32), COUNT_SK);
                item.insert("n".into(), n(count));
                item.insert("updated_at".into(), n(now));
                item.insert("offline".into(), n(offline[shard]));
                item.insert("last_confirmed_at".into(), n(last[shard]));
                item.insert("petition".into(), s(petition));
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .expression_attribute_names("#n", "n");
                let put = match old {
                    Some(v) => put
                        .condition_expression("#n = :old")
                        .expression_attribute_values(":old", n(v)),
                    None => put.condition_expression("attribute_not_exists(#n)"),
                };
                items.push(TransactWriteItem::builder().put(put.build()?).build());
            }
            match self.transact(items).await {
                // The counters by region after the count (a transaction holds at most 100
                // items: 64 count shards and 64 region shards do not fit in one); a
                // confirmation between the two makes the second fail, and all starts again.
                Ok(())
                    if !self
                        .write_region_recount(petition, &regions_before, &regions)
                        .await? =>
                {
                    backoff(attempt).await
                }
                Ok(()) => {
                    return Ok(Count {
                        count: per_shard.iter().sum::<i64>() as u64,
                        updated_at: now,
                        offline: offline.iter().sum::<i64>() as u64,
                        last_confirmed_at: last.iter().copied().max().unwrap_or(0),
                    })
                }
                Err(TxError::Condition(_)) | Err(TxError::Retry) => backoff(attempt).await,
                Err(TxError::Other(e)) => {
                    return Err(e.context(format!("while writing the recount of {petition}")))
                }
            }
        }
        bail!("recount of {petition}: its count kept changing during {MAX_ATTEMPTS} attempts; retry when confirmations are quieter")
    }

    async fn purge(&self, older_than: i64, now: i64) -> anyhow::Result<u64> {
        let mut filter = ScanFilter::signatures(None);
        filter.expression.push_str(" AND #created < :older");
        filter.names.push(("#created", "created_at"));
        filter.values.push((":older", n(older_than)));
        let (_scan, mut pages) = self.scan_pages(filter);
        let mut tasks = JoinSet::new();
        let mut purged = 0;
        while let Some(page) = pages.recv().await {
            for item in page? {
                // Expired ones too: TTL deletion is lazy and their data is still there.
                let has_data = ["sealed", "ip_hash", "prefix_hash", "network", "name_hash"]
                    .iter()
                    .any(|a| item.contains_key(*a));
                if !has_data {
                    continue;
                }
                let (Some(petition), Some(hash)) =
                    (get_s(&item, "petition"), get_s(&item, "email_hash"))
                else {
                    continue;
                };
                if tasks.len() >= CHANGE_CONCURRENCY {
                    if let Some(done) = tasks.join_next().await {
                        purged += done.context("a purge task failed")??;
                    }
                }
                let (store, petition, hash) =
                    (self.handle(), petition.to_string(), hash.to_string());
                tasks.spawn(async move { store.purge_one(&petition, &hash, now).await });
            }
        }
        while let Some(done) = tasks.join_next().await {
            purged += done.context("a purge task failed")??;
        }
        Ok(purged)
    }

    async fn audit_log(
        &self,
        petition: Option<&str>,
        since: i64,
    ) -> anyhow::Result<Vec<AuditEvent>> {
        let mut filter = ScanFilter {
            expression: "begins_with(#sk, :audit) AND #at >= :since".into(),
            names: vec![("#sk", "sk"), ("#at", "at")],
            values: vec![(":audit", s("audit#")), (":since", n(since))],
        };
        if let Some(p) = petition {
            filter.expression.push_str(" AND begins_with(#pk, :pk)");
            filter.names.push(("#pk", "pk"));
            filter.values.push((":pk", s(signature_pk(p, ""))));
        }
        let (_tasks, mut pages) = self.scan_pages(filter);
        let mut events = Vec::new();
        while let Some(page) = pages.recv().await {
            for item in page? {
                let event = audit_from(&item)?;
                if petition.is_none_or(|p| p == event.petition) {
                    let sk = get_s(&item, "sk").unwrap_or_default().to_string();
                    events.push((event, sk));
                }
            }
        }
        // The sort key starts with the zero-padded time: oldest first, stable within a second.
        events.sort_by(|(a, ask), (b, bsk)| a.at.cmp(&b.at).then_with(|| ask.cmp(bsk)));
        Ok(events.into_iter().map(|(e, _)| e).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_items_without_petition_attributes_use_their_key() {
        let item: Item = HashMap::from([
            ("pk".to_string(), s("sig#noel-2020#ab12")),
            ("sk".to_string(), s("audit#000000000100#created#00")),
            ("event".to_string(), s("created")),
            ("at".to_string(), n(100)),
        ]);
        let e = audit_from(&item).unwrap();
        assert_eq!(
            (e.petition.as_str(), e.email_hash.as_str(), e.at),
            ("noel-2020", "ab12", 100)
        );
    }

    #[test]
    fn the_petition_filter_is_a_key_prefix_that_cannot_match_a_longer_slug() {
        let f = ScanFilter::signatures(Some("noel"));
        let prefix = f.values.iter().find(|(k, _)| *k == ":pk").unwrap();
        assert_eq!(prefix.1.as_s().unwrap(), "sig#noel#");
        assert!(!signature_pk("noel-2", "ab").starts_with("sig#noel#"));
    }
}
