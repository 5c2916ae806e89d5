//! The public list of signers on DynamoDB: a sparse global secondary index, `listed`.
//!
//! A signature whose signer opted in carries its sealed entry (`listing`) from the start; when
//! it is counted, the same update that moves the count sets `list_pk` (the petition and one of
//! [`LIST_SHARDS`] shards, by e-mail hash, so that a burst of confirmations does not write one
//! index partition) and `list_at` (when it was counted); when it stops counting they are
//! removed. Only items with both appear in the index: the list is exactly the signatures that
//! count and opted in. Erasure, purge and `unlist` remove the entry itself.

use super::dynamo::{get_n, key, n, s, DynamoStore, Item};
use super::dynamo_keys::{signature_pk, spread_of, SIG_SK};
use super::Listed;
use anyhow::Context;
use aws_sdk_dynamodb::types::AttributeValue;

/// The index's name.
pub const LIST_INDEX: &str = "listed";
/// Partitions of one petition's list in the index.
pub const LIST_SHARDS: u64 = 8;

fn list_pk(petition: &str, shard: u64) -> String {
    format!("listed#{petition}#{shard}")
}

/// The `SET` or `REMOVE` clauses (and values) that keep the index in step with a change of
/// the count by `delta`, for a signature `item` read just before; none for one not listed.
pub(super) fn follow_count(
    item: &Item,
    petition: &str,
    email_hash: &str,
    delta: i64,
    now: i64,
    values: &mut Vec<(&str, AttributeValue)>,
) -> (Vec<&'static str>, Vec<&'static str>) {
    if delta > 0 && item.contains_key("listing") {
        let shard = spread_of(email_hash) % LIST_SHARDS;
        values.push((":list_pk", s(list_pk(petition, shard))));
        values.push((":list_at", n(now)));
        (vec!["list_pk = :list_pk", "list_at = :list_at"], vec![])
    } else if delta < 0 && item.contains_key("list_pk") {
        (vec![], vec!["list_pk", "list_at"])
    } else {
        (vec![], vec![])
    }
}

impl DynamoStore {
    /// Adds the `listed` index to a table created before it (the template and `create_table`
    /// create it with the table); the index builds in the background, and the public list
    /// answers once it is active.
    pub(super) async fn ensure_list_index(&self) -> anyhow::Result<()> {
        use aws_sdk_dynamodb::types::{
            AttributeDefinition, CreateGlobalSecondaryIndexAction, GlobalSecondaryIndexUpdate,
            KeySchemaElement, KeyType, Projection, ProjectionType, ScalarAttributeType,
        };
        let desc = self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .with_context(|| format!("while describing table {}", self.table))?;
        let has = desc
            .table()
            .map(|t| t.global_secondary_indexes())
            .unwrap_or_default()
            .iter()
            .any(|i| i.index_name() == Some(LIST_INDEX));
        if has {
            return Ok(());
        }
        let attr = |name: &str, kind: ScalarAttributeType| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(kind)
                .build()
        };
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
        };
        let create = CreateGlobalSecondaryIndexAction::builder()
            .index_name(LIST_INDEX)
            .key_schema(key("list_pk", KeyType::Hash)?)
            .key_schema(key("list_at", KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::Include)
                    .non_key_attributes("listing")
                    .build(),
            )
            .build()?;
        self.client
            .update_table()
            .table_name(&self.table)
            .attribute_definitions(attr("list_pk", ScalarAttributeType::S)?)
            .attribute_definitions(attr("list_at", ScalarAttributeType::N)?)
            .global_secondary_index_updates(
                GlobalSecondaryIndexUpdate::builder().create(create).build(),
            )
            .send()
            .await
            .with_context(|| format!("while adding the index {LIST_INDEX} to {}", self.table))?;
        Ok(())
    }

    pub(super) async fn listed_page(
        &self,
        petition: &str,
        offset: u32,
        limit: u32,
    ) -> anyhow::Result<Vec<Listed>> {
        let want = (offset + limit) as usize;
        let fetch = |shard: u64, start: Option<Item>, limit: usize| async move {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(LIST_INDEX)
                .key_condition_expression("list_pk = :pk")
                .expression_attribute_values(":pk", s(list_pk(petition, shard)))
                .scan_index_forward(false)
                .limit(limit as i32)
                .set_exclusive_start_key(start)
                .send()
                .await
                .with_context(|| format!("while reading the public list of {petition}"))?;
            let mut rows = Vec::with_capacity(out.items().len());
            for item in out.items() {
                let (Some(at), Some(AttributeValue::B(b))) =
                    (get_n(item, "list_at")?, item.get("listing"))
                else {
                    continue;
                };
                let pk = item.get("pk").and_then(|v| v.as_s().ok()).cloned();
                rows.push(Row {
                    at,
                    pk: pk.unwrap_or_default(),
                    sealed: b.as_ref().to_vec(),
                });
            }
            Ok(Chunk {
                rows,
                next: out.last_evaluated_key,
            })
        };
        let merged = merge_newest(LIST_SHARDS, want, fetch).await?;
        Ok(merged
            .into_iter()
            .skip(offset as usize)
            .take(limit as usize)
            .map(|r| Listed {
                sealed: r.sealed,
                at: r.at,
            })
            .collect())
    }

    pub(super) async fn unlist_signature(
        &self,
        petition: &str,
        email_hash: &str,
    ) -> anyhow::Result<bool> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(signature_pk(petition, email_hash), SIG_SK)))
            .update_expression("REMOVE listing, list_pk, list_at")
            .condition_expression("attribute_exists(listing)")
            .send()
            .await;
        match res {
            Ok(_) => {
                let event = super::AuditEvent {
                    petition: petition.to_string(),
                    email_hash: email_hash.to_string(),
                    event: "unlisted".into(),
                    at: crate::now(),
                    detail: String::new(),
                };
                super::Store::audit(self, &event).await?;
                Ok(true)
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(anyhow::Error::new(e).context("while taking a signer off the list")),
        }
    }
}

/// One entry of a shard, as the index gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    at: i64,
    pk: String,
    sealed: Vec<u8>,
}

/// One query's answer: rows newest first, and where to go on from, if anywhere.
struct Chunk<K> {
    rows: Vec<Row>,
    next: Option<K>,
}

/// A shard being read: what was fetched and not yet taken, and where its next query starts.
struct Cursor<K> {
    rows: std::collections::VecDeque<Row>,
    next: Option<K>,
    done: bool,
    /// The next query's size: a share of the page first (most pages are the first), then
    /// doubled each time, never more than is still wanted.
    ask: usize,
}

/// The `want` newest rows over all shards, newest first (ties by key), read as a merge: each
/// shard is asked for a little at a time and only while its newest unread row could be
/// next, so a page deep in the list costs about its depth in reads, not the depth times the
/// number of shards (what asking every shard for `want` rows would cost).
async fn merge_newest<K, F, Fut>(shards: u64, want: usize, fetch: F) -> anyhow::Result<Vec<Row>>
where
    F: Fn(u64, Option<K>, usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Chunk<K>>>,
{
    let first = (want / shards as usize + 2).clamp(1, 1000);
    let mut cursors: Vec<Cursor<K>> = (0..shards)
        .map(|_| Cursor {
            rows: Default::default(),
            next: None,
            done: false,
            ask: first,
        })
        .collect();
    let mut out = Vec::with_capacity(want);
    while out.len() < want {
        // Refill every shard that has nothing in hand: its next row may be the newest.
        for (shard, c) in cursors.iter_mut().enumerate() {
            while c.rows.is_empty() && !c.done {
                // A shard gives at most what is still wanted.
                let ask = c.ask.min(want - out.len());
                let chunk = fetch(shard as u64, c.next.take(), ask).await?;
                c.rows.extend(chunk.rows);
                c.done = chunk.next.is_none();
                c.next = chunk.next;
                c.ask = (c.ask * 2).min(1000);
            }
        }
        let newest = cursors
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.rows.front().map(|r| (i, r)))
            .min_by(|(_, a), (_, b)| b.at.cmp(&a.at).then_with(|| a.pk.cmp(&b.pk)))
            .map(|(i, _)| i);
        let Some(i) = newest else { break };
        out.extend(cursors[i].rows.pop_front());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// Shards held in memory, newest first, answering pages of a query like the index.
    fn shards(n: usize, count: i64) -> Vec<Vec<Row>> {
        let mut s = vec![Vec::new(); n];
        for i in 0..count {
            // Ties every third row, to check the order across shards.
            let at = 1_000_000 - (i / 3) * 7;
            let pk = format!("sig#{i:05}");
            s[(i as usize * 5) % n].push(Row {
                at,
                pk,
                sealed: vec![],
            });
        }
        for shard in &mut s {
            shard.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| a.pk.cmp(&b.pk)));
        }
        s
    }

    fn merged(s: &[Vec<Row>], want: usize, read: &Cell<usize>) -> Vec<Row> {
        let fetch = |shard: u64, start: Option<usize>, limit: usize| {
            let rows: Vec<Row> = s[shard as usize]
                .iter()
                .skip(start.unwrap_or(0))
                .take(limit)
                .cloned()
                .collect();
            read.set(read.get() + rows.len());
            let end = start.unwrap_or(0) + rows.len();
            let next = (end < s[shard as usize].len()).then_some(end);
            async move { Ok(Chunk { rows, next }) }
        };
        futures::executor::block_on(merge_newest(s.len() as u64, want, fetch)).unwrap()
    }

    #[test]
    fn the_merge_is_the_sorted_union_and_reads_about_what_it_returns() {
        let s = shards(8, 1200);
        let mut all: Vec<Row> = s.iter().flatten().cloned().collect();
        all.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| a.pk.cmp(&b.pk)));
        for want in [1, 51, 501, 1001, 1200, 5000] {
            let read = Cell::new(0);
            let got = merged(&s, want, &read);
            assert_eq!(got, all[..want.min(all.len())], "want {want}");
            // Asking each of the 8 shards for `want` rows would read up to 8 × want.
            let bound = want.min(1200) * 2 + 8 * 8;
            assert!(
                read.get() <= bound,
                "want {want}: read {} rows (bound {bound})",
                read.get()
            );
        }
    }

    #[test]
    fn empty_and_lopsided_shards_merge() {
        let mut s = vec![Vec::new(); 8];
        s[3] = shards(1, 300).remove(0);
        let read = Cell::new(0);
        let got = merged(&s, 120, &read);
        assert_eq!(got, s[3][..120]);
        assert!(read.get() <= 240, "read {}", read.get());
        assert!(merged(&vec![Vec::new(); 8], 10, &Cell::new(0)).is_empty());
    }
}
