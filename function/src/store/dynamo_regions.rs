//! The counters by region on DynamoDB ([`crate::geography`]), without a hot key.
//!
//! A signature with a region carries it as `region` (S). Its counter lives in the region shard
//! of its count shard (`region#<petition>#<00..63>`, [`region_pk`]), one number attribute per
//! region code (`FR-75`, `BE`) plus a version `v`; the count's own transaction adds ±1 to both
//! ([`follow_count`]), so the shards take exactly the count shards' writes (≈156/s each at
//! 10,000 confirmations/s) and the regions add up to the count. Reading is one `BatchGetItem`
//! of the 64 shards, summed; a recount rewrites them on condition that no shard moved
//! meanwhile (its `v`).

use super::dynamo::{backoff, get_n, key, n, s, DynamoStore, Item, TxError};
use super::dynamo_keys::{count_shard, region_pk, COUNT_SHARDS, REGION_SK};
use anyhow::{bail, Context};
use aws_sdk_dynamodb::types::{KeysAndAttributes, Put, TransactWriteItem, Update};
use std::collections::{BTreeMap, HashMap};

/// Attributes of a region shard that are not region codes (codes are upper case).
const NOT_REGIONS: [&str; 4] = ["pk", "sk", "v", "petition"];

/// Attempts of a batch read with unprocessed keys, and of an optimistic recount.
const MAX_ATTEMPTS: u32 = 8;

/// The change to its region shard that goes in the transaction moving the count of a
/// signature (`item`, read just before) by `delta`; none when the count does not move or the
/// signature has no region.
pub(super) fn follow_count(
    table: &str,
    item: &Item,
    petition: &str,
    email_hash: &str,
    delta: i64,
) -> anyhow::Result<Option<TransactWriteItem>> {
    let Some(region) = item.get("region").and_then(|v| v.as_s().ok()) else {
        return Ok(None);
    };
    if delta == 0 {
        return Ok(None);
    }
    let update = Update::builder()
        .table_name(table)
        .set_key(Some(key(
            region_pk(petition, count_shard(email_hash)),
            REGION_SK,
        )))
        .update_expression("ADD #region :delta, #v :one SET #petition = :petition")
        .expression_attribute_names("#region", region.as_str())
        .expression_attribute_names("#v", "v")
        .expression_attribute_names("#petition", "petition")
        .expression_attribute_values(":delta", n(delta))
        .expression_attribute_values(":one", n(1))
        .expression_attribute_values(":petition", s(petition))
        .build()?;
    Ok(Some(TransactWriteItem::builder().update(update).build()))
}

/// The region codes and counts of one shard item.
fn counters(item: &Item) -> anyhow::Result<Vec<(String, i64)>> {
    let mut out = Vec::new();
    for name in item.keys().filter(|k| !NOT_REGIONS.contains(&k.as_str())) {
        if let Some(v) = get_n(item, name)? {
            out.push((name.clone(), v));
        }
    }
    Ok(out)
}

impl DynamoStore {
    /// Every region shard item of `petition` that exists, by shard.
    async fn region_shards(
        &self,
        petition: &str,
        consistent: bool,
    ) -> anyhow::Result<HashMap<u32, Item>> {
        let by_pk: HashMap<String, u32> = (0..COUNT_SHARDS)
            .map(|i| (region_pk(petition, i), i))
            .collect();
        let mut pending: Vec<Item> = by_pk.keys().map(|pk| key(pk.clone(), REGION_SK)).collect();
        let mut shards = HashMap::new();
        for attempt in 0..MAX_ATTEMPTS {
            let out = self
                .client
                .batch_get_item()
                .request_items(
                    &self.table,
                    KeysAndAttributes::builder()
                        .set_keys(Some(pending))
                        .consistent_read(consistent)
                        .build()?,
                )
                .send()
                .await
                .with_context(|| format!("while reading the region shards of {petition}"))?;
            for item in out
                .responses()
                .and_then(|r| r.get(&self.table))
                .into_iter()
                .flatten()
            {
                if let Some(&shard) = item
                    .get("pk")
                    .and_then(|v| v.as_s().ok())
                    .and_then(|pk| by_pk.get(pk))
                {
                    shards.insert(shard, item.clone());
                }
            }
            pending = out
                .unprocessed_keys
                .and_then(|mut u| u.remove(&self.table))
                .map(|k| k.keys)
                .unwrap_or_default();
            if pending.is_empty() {
                return Ok(shards);
            }
            backoff(attempt).await;
        }
        bail!("while reading the region shards of {petition}: left unprocessed")
    }

    /// The sum of the shards, regions above zero only. Eventually consistent, as the public
    /// count: the endpoint caches it a minute anyway.
    pub(super) async fn region_counts(
        &self,
        petition: &str,
    ) -> anyhow::Result<BTreeMap<String, u64>> {
        let mut sums: BTreeMap<String, i64> = BTreeMap::new();
        for item in self.region_shards(petition, false).await?.values() {
            for (region, v) in counters(item)? {
                *sums.entry(region).or_default() += v;
            }
        }
        Ok(sums
            .into_iter()
            .filter(|(_, v)| *v > 0)
            .map(|(k, v)| (k, v as u64))
            .collect())
    }

    /// The region shards as read before a recount's scan, for [`Self::write_region_recount`].
    pub(super) async fn regions_before_recount(
        &self,
        petition: &str,
    ) -> anyhow::Result<HashMap<u32, Item>> {
        self.region_shards(petition, true).await
    }

    /// Writes the counters a recount found (`counted`: the confirmed signatures' regions, by
    /// count shard) over the shards, in one transaction, on condition that none moved since
    /// `before` was read. False when one did (a confirmation during the scan): scan again.
    pub(super) async fn write_region_recount(
        &self,
        petition: &str,
        before: &HashMap<u32, Item>,
        counted: &HashMap<u32, BTreeMap<String, i64>>,
    ) -> anyhow::Result<bool> {
        let mut items = Vec::new();
        for shard in 0..COUNT_SHARDS {
            let (old, new) = (before.get(&shard), counted.get(&shard));
            if old.is_none() && new.is_none_or(|m| m.is_empty()) {
                // Nothing there and nothing to put: a confirmation that creates it meanwhile was
                // not seen by the scan (or this shard would have something), so it is right.
                continue;
            }
            let old_v = old.map(|i| get_n(i, "v")).transpose()?.flatten();
            let mut item = key(region_pk(petition, shard), REGION_SK);
            item.insert("petition".into(), s(petition));
            item.insert("v".into(), n(old_v.unwrap_or(0) + 1));
            for (region, count) in new.into_iter().flatten() {
                item.insert(region.clone(), n(count));
            }
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .expression_attribute_names("#v", "v");
            let put = match old_v {
                Some(v) => put
                    .condition_expression("#v = :old")
                    .expression_attribute_values(":old", n(v)),
                None => put.condition_expression("attribute_not_exists(#v)"),
            };
            items.push(TransactWriteItem::builder().put(put.build()?).build());
        }
        if items.is_empty() {
            return Ok(true);
        }
        for attempt in 0..MAX_ATTEMPTS {
            match self.transact(items.clone()).await {
                Ok(()) => return Ok(true),
                Err(TxError::Condition(_)) => return Ok(false),
                Err(TxError::Retry) => backoff(attempt).await,
                Err(TxError::Other(e)) => {
                    return Err(e.context(format!("while writing the regions of {petition}")))
                }
            }
        }
        bail!("DynamoDB kept conflicting while writing the regions of {petition}")
    }
}
