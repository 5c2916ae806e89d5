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
        let mut all: Vec<(i64, String, Vec<u8>)> = Vec::new();
        for shard in 0..LIST_SHARDS {
            let mut start: Option<Item> = None;
            let mut got = 0usize;
            loop {
                let out = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name(LIST_INDEX)
                    .key_condition_expression("list_pk = :pk")
                    .expression_attribute_values(":pk", s(list_pk(petition, shard)))
                    .scan_index_forward(false)
                    .limit((want - got).clamp(1, 1000) as i32)
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .with_context(|| format!("while reading the public list of {petition}"))?;
                for item in out.items() {
                    let (Some(at), Some(AttributeValue::B(b))) =
                        (get_n(item, "list_at")?, item.get("listing"))
                    else {
                        continue;
                    };
                    let pk = item.get("pk").and_then(|v| v.as_s().ok()).cloned();
                    all.push((at, pk.unwrap_or_default(), b.as_ref().to_vec()));
                    got += 1;
                }
                match out.last_evaluated_key {
                    Some(k) if got < want => start = Some(k),
                    _ => break,
                }
            }
        }
        // Newest first, ties in a stable order (the item's key).
        all.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        Ok(all
            .into_iter()
            .skip(offset as usize)
            .take(limit as usize)
            .map(|(at, _, sealed)| Listed { sealed, at })
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
