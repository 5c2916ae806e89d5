//! The production store: one DynamoDB table, single-table design with no hot key.
//!
//! Keys come from [`super::dynamo_keys`] (pure, simulated in `tests/dynamo_hotkeys.rs`); the
//! schema and the arithmetic behind "10,000 signatures/s, no key over 1,000 writes/s" are in
//! `docs/dynamodb.md`. In short:
//! - a signature is its own item (`sig#<petition>#<email_hash>`), created with
//!   `attribute_not_exists` so that a second sign of the same e-mail is a duplicate, not a write;
//! - the confirmed count is the sum of [`COUNT_SHARDS`](super::dynamo_keys::COUNT_SHARDS) counter items, changed in the same
//!   transaction as the signature's state;
//! - budgets are counters per key and window, split into shards when large, taken in the sign
//!   transaction with a `used < limit` condition;
//! - pending and held signatures carry a TTL, and every read ignores an expired item because
//!   DynamoDB deletes them lazily (within days).
//!
//! A failed condition is an outcome (duplicate, over budget, lost race), never an error.
//! Throttling is retried: by the SDK's standard retry mode for whole requests, and here, with
//! exponential backoff and full jitter, for transactions cancelled by a conflict or throttling.

use super::dynamo_keys::{
    self as keys, audit_sk, budget_slot, count_pk, count_pks, count_shard, queue_pk, queue_sk,
    signature_pk, spread_of, BudgetSlot, BUDGET_SK, COUNT_SK, SIG_SK,
};
use super::dynamo_log::LogWrite;
use crate::store::{
    first_over, status_for, AuditEvent, Budget, ConfirmOutcome, Count, CountDelta, EraseOutcome,
    Listed, LogPending, NewSignature, OverBudget, QueuedMail, ReceiptSecret, SignOutcome,
    SignatureRecord, Status, Store,
};
use anyhow::{bail, Context};
use async_trait::async_trait;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, KeysAndAttributes, Projection, ProjectionType, Put, ScalarAttributeType, TableStatus,
    TimeToLiveSpecification, TimeToLiveStatus, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Name of the TTL attribute (Unix seconds) on every expiring item.
pub const TTL_ATTR: &str = "ttl";
/// Attempts for a transaction cancelled by a conflict or throttling before giving up.
const MAX_TX_ATTEMPTS: u32 = 8;
/// Exhausted budget shards remembered per instance, so that an exhausted budget under attack
/// costs no more writes until its window ends.
const MAX_EXHAUSTED_CACHED: usize = 10_000;

pub(super) type Item = HashMap<String, AttributeValue>;

pub struct DynamoStore {
    pub(super) client: Client,
    pub(super) table: String,
    /// Budget counter `pk` → end of its window, for shards known to be full.
    exhausted: Mutex<HashMap<String, i64>>,
}

impl std::fmt::Debug for DynamoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoStore")
            .field("table", &self.table)
            .finish()
    }
}

/// Settings parsed from `dynamodb:TABLE[?endpoint=..&region=..]` (the part after `dynamodb:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamoUrl {
    pub table: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
}

impl DynamoUrl {
    pub fn parse(rest: &str) -> anyhow::Result<Self> {
        let (table, query) = rest.split_once('?').unwrap_or((rest, ""));
        let valid = (3..=255).contains(&table.len())
            && table
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !valid {
            bail!("invalid DynamoDB table name {table:?} in dynamodb:{rest}: 3 to 255 of A-Z a-z 0-9 _ - .");
        }
        let (endpoint, region) = crate::aws::endpoint_options(query, &format!("dynamodb:{rest}"))?;
        let url = DynamoUrl {
            table: table.to_string(),
            endpoint,
            region,
        };
        Ok(url)
    }
}

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(super) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(super) fn key(pk: String, sk: &str) -> Item {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

fn status_from(s: &str) -> anyhow::Result<Status> {
    Ok(match s {
        "pending" => Status::Pending,
        "confirmed" => Status::Confirmed,
        "held" => Status::Held,
        "confirmed_held" => Status::ConfirmedHeld,
        "invalidated" => Status::Invalidated,
        "erased" => Status::Erased,
        other => bail!("unknown signature status {other:?} in the table"),
    })
}

pub(super) fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

pub(super) fn get_n(item: &Item, name: &str) -> anyhow::Result<Option<i64>> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .map(|v| {
            v.parse::<i64>()
                .with_context(|| format!("attribute {name} is not an integer: {v:?}"))
        })
        .transpose()
}

fn get_bool(item: &Item, name: &str) -> bool {
    item.get(name)
        .and_then(|v| v.as_bool().ok())
        .copied()
        .unwrap_or(false)
}

/// Pending and held signatures expire; confirmed, invalidated and erased ones carry no TTL.
pub(super) fn is_expired(ttl: Option<i64>, now: i64) -> bool {
    ttl.is_some_and(|t| t <= now)
}

pub(super) fn record_from(item: &Item) -> anyhow::Result<SignatureRecord> {
    let text = |name: &str| get_s(item, name).unwrap_or_default().to_string();
    Ok(SignatureRecord {
        petition: text("petition"),
        email_hash: text("email_hash"),
        email_domain: text("email_domain"),
        ip_hash: text("ip_hash"),
        prefix_hash: text("prefix_hash"),
        network: text("network"),
        name_hash: text("name_hash"),
        sealed: item
            .get("sealed")
            .and_then(|v| v.as_b().ok())
            .map(|b| b.as_ref().to_vec())
            .unwrap_or_default(),
        lang: text("lang"),
        public: get_bool(item, "public"),
        newsletter: get_bool(item, "newsletter"),
        status: status_from(get_s(item, "status").context("signature item without status")?)?,
        hold_reason: get_s(item, "hold_reason").map(str::to_string),
        flags: item
            .get("flags")
            .and_then(|v| v.as_l().ok())
            .map(|l| l.iter().filter_map(|v| v.as_s().ok().cloned()).collect())
            .unwrap_or_default(),
        created_at: get_n(item, "created_at")?.unwrap_or(0),
        confirmed_at: get_n(item, "confirmed_at")?,
        expires_at: get_n(item, TTL_ATTR)?,
    })
}

/// Why a transaction was cancelled, item by item (DynamoDB's `CancellationReasons`).
pub(super) enum TxError {
    /// The condition of item `index` failed.
    Condition(usize),
    /// A conflict with a concurrent transaction, or throttling: retry after a pause.
    Retry,
    Other(anyhow::Error),
}

fn classify(err: SdkError<TransactWriteItemsError>) -> TxError {
    if let Some(TransactWriteItemsError::TransactionCanceledException(e)) = err.as_service_error() {
        let codes: Vec<&str> = e
            .cancellation_reasons()
            .iter()
            .map(|r| r.code().unwrap_or("None"))
            .collect();
        if let Some(i) = codes.iter().position(|c| *c == "ConditionalCheckFailed") {
            return TxError::Condition(i);
        }
        if codes.iter().any(|c| {
            matches!(
                *c,
                "TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded"
            )
        }) {
            return TxError::Retry;
        }
        return TxError::Other(anyhow::anyhow!("transaction cancelled: {codes:?}"));
    }
    if matches!(
        err.as_service_error(),
        Some(
            TransactWriteItemsError::TransactionInProgressException(_)
                | TransactWriteItemsError::ProvisionedThroughputExceededException(_)
                | TransactWriteItemsError::RequestLimitExceeded(_)
                | TransactWriteItemsError::ThrottlingException(_)
        )
    ) {
        return TxError::Retry;
    }
    let code = err.code().unwrap_or("no code").to_string();
    TxError::Other(anyhow::Error::new(err).context(format!("TransactWriteItems failed ({code})")))
}

/// Exponential backoff with full jitter: a random pause in [0, min(1 s, 10 ms · 2^attempt)).
pub(super) async fn backoff(attempt: u32) {
    use rand::Rng;
    let cap_ms = (10u64 << attempt.min(7)).min(1_000);
    let ms = rand::thread_rng().gen_range(0..cap_ms);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

fn nonce() -> u64 {
    rand::random()
}

impl DynamoStore {
    /// A store on `table` with an already configured client (tests use static credentials).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
            exhausted: Mutex::new(HashMap::new()),
        }
    }

    /// Opens the store from the part of `dynamodb:TABLE[?endpoint=..&region=..]` after the colon.
    /// Credentials come from the environment (or the Lambda execution role).
    pub async fn from_url(rest: &str) -> anyhow::Result<Self> {
        let url = DynamoUrl::parse(rest)?;
        let conf = crate::aws::sdk_config(url.endpoint.as_deref(), url.region.as_deref()).await;
        if conf.region().is_none() {
            bail!("dynamodb:{rest}: no AWS region (set region= or AWS_REGION)");
        }
        Ok(Self::new(Client::new(&conf), url.table))
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table (on-demand billing, `pk`/`sk` string keys) if it does not exist, waits
    /// until it is active and enables TTL on [`TTL_ATTR`]. Idempotent. In production the
    /// CloudFormation template creates it (with PITR and a throughput cap); this is for
    /// development, tests and `cahier admin init-store`.
    pub async fn create_table(&self) -> anyhow::Result<()> {
        let exists = self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await;
        if let Err(e) = exists {
            if !e
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception())
            {
                return Err(
                    anyhow::Error::new(e).context(format!("while describing table {}", self.table))
                );
            }
            let attr = |name: &str| {
                AttributeDefinition::builder()
                    .attribute_name(name)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
            };
            let key = |name: &str, kind: KeyType| {
                KeySchemaElement::builder()
                    .attribute_name(name)
                    .key_type(kind)
                    .build()
            };
            let created = self
                .client
                .create_table()
                .table_name(&self.table)
                .attribute_definitions(attr("pk")?)
                .attribute_definitions(attr("sk")?)
                .attribute_definitions(attr("list_pk")?)
                .attribute_definitions(
                    AttributeDefinition::builder()
                        .attribute_name("list_at")
                        .attribute_type(ScalarAttributeType::N)
                        .build()?,
                )
                .key_schema(key("pk", KeyType::Hash)?)
                .key_schema(key("sk", KeyType::Range)?)
                .global_secondary_indexes(
                    GlobalSecondaryIndex::builder()
                        .index_name(super::dynamo_listed::LIST_INDEX)
                        .key_schema(key("list_pk", KeyType::Hash)?)
                        .key_schema(key("list_at", KeyType::Range)?)
                        .projection(
                            Projection::builder()
                                .projection_type(ProjectionType::Include)
                                .non_key_attributes("listing")
                                .build(),
                        )
                        .build()?,
                )
                .billing_mode(BillingMode::PayPerRequest)
                .send()
                .await;
            if let Err(e) = created {
                // Another instance created it at the same time: fine.
                if !e
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_in_use_exception())
                {
                    return Err(anyhow::Error::new(e)
                        .context(format!("while creating table {}", self.table)));
                }
            }
        }
        for attempt in 0..60 {
            let desc = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await
                .with_context(|| format!("while waiting for table {}", self.table))?;
            if desc.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
                break;
            }
            if attempt == 59 {
                bail!("table {} did not become active", self.table);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        self.ensure_list_index().await?;
        let ttl = self
            .client
            .describe_time_to_live()
            .table_name(&self.table)
            .send()
            .await
            .with_context(|| format!("while reading the TTL setting of {}", self.table))?;
        let status = ttl
            .time_to_live_description()
            .and_then(|d| d.time_to_live_status());
        if !matches!(
            status,
            Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
        ) {
            self.client
                .update_time_to_live()
                .table_name(&self.table)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder()
                        .enabled(true)
                        .attribute_name(TTL_ATTR)
                        .build()?,
                )
                .send()
                .await
                .with_context(|| format!("while enabling TTL on {}", self.table))?;
        }
        Ok(())
    }

    /// The raw signature item, read strongly consistent (decisions are taken on it).
    pub(super) async fn get_item(
        &self,
        petition: &str,
        email_hash: &str,
    ) -> anyhow::Result<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(signature_pk(petition, email_hash), SIG_SK)))
            .consistent_read(true)
            .send()
            .await
            .context("while reading a signature from DynamoDB")?;
        Ok(out.item)
    }

    pub(super) async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<(), TxError> {
        self.client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
            .map(|_| ())
            .map_err(classify)
    }

    pub(super) fn audit_put(
        &self,
        petition: &str,
        email_hash: &str,
        event: &str,
        at: i64,
        detail: &str,
    ) -> anyhow::Result<TransactWriteItem> {
        let mut item = key(
            signature_pk(petition, email_hash),
            &audit_sk(at, event, nonce()),
        );
        item.insert("petition".into(), s(petition));
        item.insert("email_hash".into(), s(email_hash));
        item.insert("event".into(), s(event));
        item.insert("at".into(), n(at));
        item.insert("detail".into(), s(detail));
        Ok(TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .build()?,
            )
            .build())
    }

    fn signature_put(
        &self,
        sig: &NewSignature,
        status: Status,
        hold_reason: Option<&str>,
        refunds: &[String],
        queued: bool,
    ) -> anyhow::Result<TransactWriteItem> {
        let mut item = key(signature_pk(&sig.petition, &sig.email_hash), SIG_SK);
        for (name, value) in [
            ("petition", &sig.petition),
            ("email_hash", &sig.email_hash),
            ("email_domain", &sig.email_domain),
            ("ip_hash", &sig.ip_hash),
            ("prefix_hash", &sig.prefix_hash),
            ("network", &sig.network),
            ("name_hash", &sig.name_hash),
            ("lang", &sig.lang),
        ] {
            item.insert(name.into(), s(value.as_str()));
        }
        item.insert(
            "sealed".into(),
            AttributeValue::B(sig.sealed.clone().into()),
        );
        item.insert("public".into(), AttributeValue::Bool(sig.public));
        if let Some(listing) = &sig.listing {
            item.insert("listing".into(), AttributeValue::B(listing.clone().into()));
        }
        if let Some(region) = &sig.region {
            item.insert("region".into(), s(region.as_str()));
        }
        item.insert("newsletter".into(), AttributeValue::Bool(sig.newsletter));
        item.insert("status".into(), s(status.as_str()));
        if let Some(reason) = hold_reason {
            item.insert("hold_reason".into(), s(reason));
        }
        item.insert(
            "flags".into(),
            AttributeValue::L(sig.flags.iter().map(|f| s(f.as_str())).collect()),
        );
        item.insert("created_at".into(), n(sig.created_at));
        item.insert(TTL_ATTR.into(), n(sig.expires_at));
        if !refunds.is_empty() {
            // The `Defer` budget shards to give a unit back to on the first confirmation.
            item.insert(
                "refunds".into(),
                AttributeValue::L(refunds.iter().map(|pk| s(pk.as_str())).collect()),
            );
        }
        if queued {
            item.insert(
                "queue_pk".into(),
                s(queue_pk(&sig.petition, &sig.prefix_hash)),
            );
            item.insert(
                "queue_sk".into(),
                s(queue_sk(sig.created_at, &sig.email_hash)),
            );
        }
        // New, or replacing an expired pending/held one that TTL has not deleted yet.
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR #ttl <= :now")
            .expression_attribute_names("#ttl", TTL_ATTR)
            .expression_attribute_values(":now", n(sig.created_at))
            .build()?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn queue_put(&self, sig: &NewSignature, sealed: &[u8]) -> anyhow::Result<TransactWriteItem> {
        let mut item = key(
            queue_pk(&sig.petition, &sig.prefix_hash),
            &queue_sk(sig.created_at, &sig.email_hash),
        );
        item.insert("email_hash".into(), s(sig.email_hash.as_str()));
        item.insert("sealed".into(), AttributeValue::B(sealed.to_vec().into()));
        item.insert(TTL_ATTR.into(), n(sig.expires_at));
        Ok(TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .build()?,
            )
            .build())
    }

    /// Gives one unit back to each budget shard in `pks` (best effort, never below zero).
    async fn give_back(&self, pks: &[String]) {
        for pk in pks {
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(pk.clone(), BUDGET_SK)))
                .update_expression("ADD #used :minus")
                .condition_expression("#used > :zero")
                .expression_attribute_names("#used", "used")
                .expression_attribute_values(":minus", n(-1))
                .expression_attribute_values(":zero", n(0))
                .send()
                .await;
            if let Err(e) = result {
                if !e
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception())
                {
                    tracing::warn!(error = %e, "giving a budget unit back failed");
                }
            }
            // A full shard has room again.
            self.exhausted
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(pk);
        }
    }

    fn budget_update(&self, slot: &BudgetSlot) -> anyhow::Result<TransactWriteItem> {
        Ok(TransactWriteItem::builder()
            .update(self.budget_update_raw(slot)?)
            .build())
    }

    fn budget_update_raw(&self, slot: &BudgetSlot) -> anyhow::Result<Update> {
        Ok(Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(slot.pk.clone(), BUDGET_SK)))
            .update_expression("ADD #used :one SET #ttl = :ttl")
            .condition_expression("attribute_not_exists(#used) OR #used < :limit")
            .expression_attribute_names("#used", "used")
            .expression_attribute_names("#ttl", TTL_ATTR)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":ttl", n(slot.ttl))
            .expression_attribute_values(":limit", n(slot.limit))
            .build()?)
    }

    /// The change of one count shard (`email_hash` picks it): `n` always; `offline` for a
    /// paper batch; `last_confirmed_at` when a signer's signature is counted.
    pub(super) fn count_update(
        &self,
        petition: &str,
        email_hash: &str,
        delta: CountDelta,
        now: i64,
    ) -> anyhow::Result<TransactWriteItem> {
        let (expression, by) = match delta {
            CountDelta::Signer(d) if d > 0 => (
                "ADD #n :delta SET #at = :now, #petition = :petition, #last = :now",
                d,
            ),
            CountDelta::Signer(d) => ("ADD #n :delta SET #at = :now, #petition = :petition", d),
            CountDelta::Offline(d) => (
                "ADD #n :delta, #offline :delta SET #at = :now, #petition = :petition",
                d,
            ),
        };
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(
                count_pk(petition, count_shard(email_hash)),
                COUNT_SK,
            )))
            .update_expression(expression)
            .expression_attribute_names("#n", "n")
            .expression_attribute_names("#at", "updated_at")
            .expression_attribute_names("#petition", "petition")
            .expression_attribute_values(":delta", n(by))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":petition", s(petition));
        if expression.contains("#last") {
            update = update.expression_attribute_names("#last", "last_confirmed_at");
        }
        if expression.contains("#offline") {
            update = update.expression_attribute_names("#offline", "offline");
        }
        let update = update.build()?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// A zero shard, or one this instance saw full in this window.
    fn is_exhausted(&self, slot: &BudgetSlot, now: i64) -> bool {
        if slot.limit == 0 {
            return true;
        }
        let cache = self.exhausted.lock().unwrap_or_else(|e| e.into_inner());
        cache.get(&slot.pk).is_some_and(|&end| now < end)
    }

    fn mark_exhausted(&self, slot: &BudgetSlot, now: i64) {
        let mut cache = self.exhausted.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= MAX_EXHAUSTED_CACHED {
            cache.retain(|_, &mut end| now < end);
            if cache.len() >= MAX_EXHAUSTED_CACHED {
                cache.clear();
            }
        }
        cache.insert(slot.pk.clone(), slot.ttl - keys::BUDGET_TTL_GRACE_SECS);
    }

    /// The state of an existing, unexpired signature (for a duplicate sign).
    async fn existing_status(&self, sig: &NewSignature) -> anyhow::Result<Option<Status>> {
        let Some(item) = self.get_item(&sig.petition, &sig.email_hash).await? else {
            return Ok(None);
        };
        if is_expired(get_n(&item, TTL_ATTR)?, sig.created_at) {
            return Ok(None);
        }
        Ok(Some(status_from(
            get_s(&item, "status").context("signature item without status")?,
        )?))
    }

    /// Applies one [`Change`] of a signature's state in one transaction: the signature
    /// (conditioned on still being in `from`), its count shard when the count moves, the audit
    /// event and, when the count moves, the log event (`dynamo_log.rs`). `Lost` if the
    /// signature was no longer in `from` (a concurrent change won).
    pub(super) async fn transition(&self, c: Change<'_>) -> anyhow::Result<Transitioned> {
        let log = LogWrite::for_change(c.item, c.petition, c.email_hash, c.delta, c.to, c.now)?;
        let mut values = c.values;
        let update_expression = match &log {
            Some(log) => log.add_to(c.update_expression, &mut values),
            None => c.update_expression.to_string(),
        };
        // The public list follows the count (`dynamo_listed.rs`).
        let (set, remove) = super::dynamo_listed::follow_count(
            c.item,
            c.petition,
            c.email_hash,
            c.delta,
            c.now,
            &mut values,
        );
        let update_expression = if set.is_empty() && remove.is_empty() {
            update_expression
        } else {
            super::dynamo_log::merge_expression(&update_expression, &set, &remove)
        };
        for attempt in 0..MAX_TX_ATTEMPTS {
            let mut update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(signature_pk(c.petition, c.email_hash), SIG_SK)))
                .update_expression(&update_expression)
                .condition_expression("#status = :from")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":from", s(c.from.as_str()))
                .expression_attribute_values(":to", s(c.to.as_str()));
            if update_expression.contains("#ttl") {
                update = update.expression_attribute_names("#ttl", TTL_ATTR);
            }
            if update_expression.contains("#public") {
                update = update.expression_attribute_names("#public", "public");
            }
            // A reserved word of DynamoDB's expressions.
            if update_expression.contains("#region") {
                update = update.expression_attribute_names("#region", "region");
            }
            for (name, value) in &values {
                update = update.expression_attribute_values(*name, value.clone());
            }
            let mut items = vec![TransactWriteItem::builder().update(update.build()?).build()];
            if c.delta != 0 {
                items.push(self.count_update(
                    c.petition,
                    c.email_hash,
                    CountDelta::Signer(c.delta),
                    c.now,
                )?);
            }
            // Its region follows the count (`dynamo_regions.rs`).
            items.extend(super::dynamo_regions::follow_count(
                &self.table,
                c.item,
                c.petition,
                c.email_hash,
                c.delta,
            )?);
            let (event, detail) = c.audit;
            items.push(self.audit_put(c.petition, c.email_hash, event, c.now, detail)?);
            if let Some(log) = &log {
                items.push(log.queue_put(&self.table)?);
            }
            match self.transact(items).await {
                Ok(()) => {
                    return Ok(Transitioned::Done {
                        receipt: log.and_then(|l| l.secret),
                    })
                }
                Err(TxError::Condition(_)) => return Ok(Transitioned::Lost),
                Err(TxError::Retry) => backoff(attempt).await,
                Err(TxError::Other(e)) => return Err(e),
            }
        }
        bail!("DynamoDB kept conflicting or throttling after {MAX_TX_ATTEMPTS} attempts")
    }
}

/// One change of a signature's state, decided on `item` (read just before).
pub(super) struct Change<'a> {
    pub petition: &'a str,
    pub email_hash: &'a str,
    pub item: &'a Item,
    pub from: Status,
    pub to: Status,
    /// `SET`/`REMOVE` clauses on the signature (`:to` is bound to `to`).
    pub update_expression: &'a str,
    pub values: Vec<(&'a str, AttributeValue)>,
    /// How the count moves: +1, -1 or 0.
    pub delta: i64,
    /// The audit event and its detail.
    pub audit: (&'a str, &'a str),
    pub now: i64,
}

/// What [`DynamoStore::transition`] did.
pub(super) enum Transitioned {
    /// Applied; a change that made the signature count carries its receipt secret.
    Done { receipt: Option<ReceiptSecret> },
    /// The signature had left `from`: nothing was written.
    Lost,
}

#[async_trait]
impl Store for DynamoStore {
    async fn init(&self) -> anyhow::Result<()> {
        self.create_table().await
    }

    async fn sign(&self, sig: &NewSignature) -> anyhow::Result<SignOutcome> {
        let now = sig.created_at;
        let spread = spread_of(&sig.email_hash);
        let slots: Vec<BudgetSlot> = sig
            .budgets
            .iter()
            .map(|b| budget_slot(b, now, spread))
            .collect();
        // Shards known to be full in this window: no need to spend a write to learn it again.
        let mut exhausted: Vec<bool> = slots.iter().map(|s| self.is_exhausted(s, now)).collect();
        let mut attempt = 0;
        loop {
            // The rules of `OverBudget`: the first exhausted hold/defer budget stops every
            // budget; an exhausted alarm budget is skipped.
            let over = first_over(&sig.budgets, |i| exhausted[i]).map(|i| &sig.budgets[i]);
            let stopped = over.is_some_and(|b| b.over != OverBudget::Alarm);
            let taken: Vec<usize> = if stopped {
                Vec::new()
            } else {
                (0..slots.len()).filter(|&i| !exhausted[i]).collect()
            };
            let (status, hold_reason) = status_for(sig.hold_reason.as_deref(), over);
            let queued = status == Status::Pending
                && over.is_some_and(|b| b.over == OverBudget::Defer)
                && sig.deferred_mail.is_some();
            let refunds: Vec<String> = taken
                .iter()
                .filter(|&&i| sig.budgets[i].over == OverBudget::Defer)
                .map(|&i| slots[i].pk.clone())
                .collect();
            let mut items =
                vec![self.signature_put(sig, status, hold_reason.as_deref(), &refunds, queued)?];
            for &i in &taken {
                items.push(self.budget_update(&slots[i])?);
            }
            items.push(self.audit_put(
                &sig.petition,
                &sig.email_hash,
                "created",
                now,
                &sig.flags.join(","),
            )?);
            if status == Status::Held {
                items.push(self.audit_put(
                    &sig.petition,
                    &sig.email_hash,
                    "held",
                    now,
                    hold_reason.as_deref().unwrap_or(""),
                )?);
            }
            if let (true, Some(mail)) = (queued, &sig.deferred_mail) {
                items.push(self.queue_put(sig, mail)?);
            }
            match self.transact(items).await {
                Ok(()) => {
                    return Ok(SignOutcome::Created {
                        status,
                        over_budget: over.map(|b| b.key.clone()),
                    })
                }
                Err(TxError::Condition(0)) => {
                    if let Some(status) = self.existing_status(sig).await? {
                        return Ok(SignOutcome::Duplicate { status });
                    }
                    // It expired (or was purged) between the write and the read: write again.
                }
                Err(TxError::Condition(i)) if (1..=taken.len()).contains(&i) => {
                    let slot = taken[i - 1];
                    self.mark_exhausted(&slots[slot], now);
                    exhausted[slot] = true;
                    continue;
                }
                Err(TxError::Condition(i)) => {
                    bail!("unexpected condition failure on item {i} of a sign")
                }
                Err(TxError::Retry) => backoff(attempt).await,
                Err(TxError::Other(e)) => return Err(e.context("while storing a signature")),
            }
            attempt += 1;
            if attempt >= MAX_TX_ATTEMPTS {
                bail!("while storing a signature: DynamoDB kept conflicting or throttling after {attempt} attempts");
            }
        }
    }

    async fn release_queued(
        &self,
        petition: &str,
        queue: &str,
        n: usize,
        now: i64,
    ) -> anyhow::Result<Vec<QueuedMail>> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(queue_pk(petition, queue)))
            .consistent_read(true)
            .limit((n * 4 + 8) as i32)
            .send()
            .await
            .context("while reading a mail queue")?;
        let mut released = Vec::new();
        for item in out.items() {
            if released.len() >= n {
                break;
            }
            let (Some(pk), Some(sk), Some(email_hash)) = (
                get_s(item, "pk"),
                get_s(item, "sk"),
                get_s(item, "email_hash"),
            ) else {
                continue;
            };
            // Whoever deletes the entry sends the mail: each is handed out once.
            let deleted = self
                .client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key(pk.to_string(), sk)))
                .condition_expression("attribute_exists(pk)")
                .send()
                .await;
            match deleted {
                Ok(_) => {}
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
                {
                    continue
                }
                Err(e) => return Err(anyhow::Error::new(e).context("while taking a queued mail")),
            }
            if is_expired(get_n(item, TTL_ATTR)?, now) {
                continue;
            }
            let live = match self.get_item(petition, email_hash).await? {
                Some(sig) => {
                    get_s(&sig, "status") == Some(Status::Pending.as_str())
                        && !is_expired(get_n(&sig, TTL_ATTR)?, now)
                }
                None => false,
            };
            if live {
                released.push(QueuedMail {
                    petition: petition.to_string(),
                    email_hash: email_hash.to_string(),
                    sealed: item
                        .get("sealed")
                        .and_then(|v| v.as_b().ok())
                        .map(|b| b.as_ref().to_vec())
                        .unwrap_or_default(),
                });
            }
        }
        Ok(released)
    }

    async fn take_budget(&self, budget: &Budget, now: i64) -> anyhow::Result<bool> {
        let slot = budget_slot(budget, now, rand::random());
        if self.is_exhausted(&slot, now) {
            return Ok(false);
        }
        let u = self.budget_update_raw(&slot)?;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(u.key))
            .update_expression(u.update_expression)
            .set_condition_expression(u.condition_expression)
            .set_expression_attribute_names(u.expression_attribute_names)
            .set_expression_attribute_values(u.expression_attribute_values)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                self.mark_exhausted(&slot, now);
                Ok(false)
            }
            Err(e) => {
                Err(anyhow::Error::new(e).context(format!("while taking budget {}", budget.key)))
            }
        }
    }

    async fn confirm(
        &self,
        petition: &str,
        email_hash: &str,
        now: i64,
    ) -> anyhow::Result<ConfirmOutcome> {
        Ok(self
            .confirm_with_receipt(petition, email_hash, now)
            .await?
            .0)
    }

    async fn confirm_with_receipt(
        &self,
        petition: &str,
        email_hash: &str,
        now: i64,
    ) -> anyhow::Result<(ConfirmOutcome, Option<ReceiptSecret>)> {
        for _ in 0..MAX_TX_ATTEMPTS {
            let Some(item) = self.get_item(petition, email_hash).await? else {
                return Ok((ConfirmOutcome::NotFound, None));
            };
            if is_expired(get_n(&item, TTL_ATTR)?, now) {
                return Ok((ConfirmOutcome::NotFound, None));
            }
            let status =
                status_from(get_s(&item, "status").context("signature item without status")?)?;
            let next = match status.on_confirm() {
                Ok(next) => next,
                Err(answer) => return Ok((answer, None)),
            };
            let delta = i64::from(next == Status::Confirmed);
            let done = self
                .transition(Change {
                    petition,
                    email_hash,
                    item: &item,
                    from: status,
                    to: next,
                    update_expression:
                        "SET #status = :to, confirmed_at = :now REMOVE #ttl, refunds",
                    values: vec![(":now", n(now))],
                    delta,
                    audit: ("confirmed", status.as_str()),
                    now,
                })
                .await
                .context("while confirming a signature")?;
            if let Transitioned::Done { receipt } = done {
                let refunds: Vec<String> = item
                    .get("refunds")
                    .and_then(|v| v.as_l().ok())
                    .map(|l| l.iter().filter_map(|v| v.as_s().ok().cloned()).collect())
                    .unwrap_or_default();
                self.give_back(&refunds).await;
                return Ok((ConfirmOutcome::Confirmed { status: next }, receipt));
            }
            // Another confirm (or an erase) won the race: look again.
        }
        bail!("while confirming a signature: it kept changing under us")
    }

    fn records_log(&self) -> bool {
        true
    }

    async fn log_events(
        &self,
        petition: &str,
        from: u64,
        limit: usize,
    ) -> anyhow::Result<(Vec<LogPending>, u64)> {
        self.numbered_events(petition, from, limit).await
    }

    async fn erase(
        &self,
        petition: &str,
        email_hash: &str,
        now: i64,
    ) -> anyhow::Result<EraseOutcome> {
        for _ in 0..MAX_TX_ATTEMPTS {
            let Some(item) = self.get_item(petition, email_hash).await? else {
                return Ok(EraseOutcome::NotFound);
            };
            let status =
                status_from(get_s(&item, "status").context("signature item without status")?)?;
            if status == Status::Erased {
                return Ok(EraseOutcome::NotFound);
            }
            let was_counted = status == Status::Confirmed;
            // The item stays, with only its pseudonymous key, so the address cannot be reused
            // by whoever abused it; everything personal goes.
            let done = self
                .transition(Change {
                    petition,
                    email_hash,
                    item: &item,
                    from: status,
                    to: Status::Erased,
                    update_expression: "SET #status = :to, #public = :no, newsletter = :no \
                     REMOVE sealed, ip_hash, prefix_hash, network, name_hash, email_domain, flags, hold_reason, #ttl, refunds, queue_pk, queue_sk, listing, #region",
                    values: vec![(":no", AttributeValue::Bool(false))],
                    delta: if was_counted { -1 } else { 0 },
                    audit: ("erased", status.as_str()),
                    now,
                })
                .await
                .context("while erasing a signature")?;
            if let Transitioned::Done { .. } = done {
                // Its queued mail holds its address: gone too.
                if let (Some(pk), Some(sk)) = (get_s(&item, "queue_pk"), get_s(&item, "queue_sk")) {
                    self.client
                        .delete_item()
                        .table_name(&self.table)
                        .set_key(Some(key(pk.to_string(), sk)))
                        .send()
                        .await
                        .context("while erasing a queued mail")?;
                }
                return Ok(EraseOutcome::Erased { was_counted });
            }
        }
        bail!("while erasing a signature: it kept changing under us")
    }

    async fn listed(&self, petition: &str, offset: u32, limit: u32) -> anyhow::Result<Vec<Listed>> {
        self.listed_page(petition, offset, limit).await
    }

    async fn unlist(&self, petition: &str, email_hash: &str) -> anyhow::Result<bool> {
        self.unlist_signature(petition, email_hash).await
    }

    async fn regions(
        &self,
        petition: &str,
    ) -> anyhow::Result<std::collections::BTreeMap<String, u64>> {
        self.region_counts(petition).await
    }

    async fn suppress(&self, entry: &super::Suppression) -> anyhow::Result<bool> {
        self.put_suppression(entry).await
    }

    async fn suppression(&self, email_hash: &str) -> anyhow::Result<Option<super::Suppression>> {
        self.get_suppression(email_hash).await
    }

    async fn mark_once(
        &self,
        petition: &str,
        key: &str,
        value: i64,
        at: i64,
    ) -> anyhow::Result<Option<i64>> {
        self.put_mark(petition, key, value, at).await
    }

    async fn count(&self, petition: &str) -> anyhow::Result<Count> {
        let mut pending: Vec<Item> = count_pks(petition)
            .into_iter()
            .map(|pk| key(pk, COUNT_SK))
            .collect();
        let (mut count, mut updated_at, mut offline, mut last_confirmed_at) = (0i64, 0, 0, 0);
        for attempt in 0..MAX_TX_ATTEMPTS {
            // Eventually consistent: half the read units, and the public count may lag a
            // confirmation by a second anyway (it is cached for seconds at the edge and in
            // each instance).
            let request = KeysAndAttributes::builder()
                .set_keys(Some(pending))
                .consistent_read(false)
                .build()?;
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .with_context(|| format!("while reading the count shards of {petition}"))?;
            for item in out
                .responses()
                .and_then(|r| r.get(&self.table))
                .into_iter()
                .flatten()
            {
                count += get_n(item, "n")?.unwrap_or(0);
                updated_at = updated_at.max(get_n(item, "updated_at")?.unwrap_or(0));
                offline += get_n(item, "offline")?.unwrap_or(0);
                last_confirmed_at =
                    last_confirmed_at.max(get_n(item, "last_confirmed_at")?.unwrap_or(0));
            }
            pending = out
                .unprocessed_keys
                .and_then(|mut u| u.remove(&self.table))
                .map(|k| k.keys)
                .unwrap_or_default();
            if pending.is_empty() {
                return Ok(Count {
                    count: count.max(0) as u64,
                    updated_at,
                    offline: offline.max(0) as u64,
                    last_confirmed_at,
                });
            }
            backoff(attempt).await;
        }
        bail!("while reading the count of {petition}: shards left unprocessed after {MAX_TX_ATTEMPTS} attempts")
    }

    async fn audit(&self, event: &AuditEvent) -> anyhow::Result<()> {
        let mut item = key(
            signature_pk(&event.petition, &event.email_hash),
            &audit_sk(event.at, &event.event, nonce()),
        );
        item.insert("petition".into(), s(event.petition.as_str()));
        item.insert("email_hash".into(), s(event.email_hash.as_str()));
        item.insert("event".into(), s(event.event.as_str()));
        item.insert("at".into(), n(event.at));
        item.insert("detail".into(), s(event.detail.as_str()));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .context("while writing an audit event")?;
        Ok(())
    }

    async fn get(
        &self,
        petition: &str,
        email_hash: &str,
    ) -> anyhow::Result<Option<SignatureRecord>> {
        let Some(item) = self.get_item(petition, email_hash).await? else {
            return Ok(None);
        };
        let record = record_from(&item)?;
        if is_expired(record.expires_at, unix_now()) {
            return Ok(None);
        }
        Ok(Some(record))
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_settings() {
        assert_eq!(
            DynamoUrl::parse("cahier-prod?endpoint=http://127.0.0.1:5000&region=eu-west-3")
                .unwrap(),
            DynamoUrl {
                table: "cahier-prod".into(),
                endpoint: Some("http://127.0.0.1:5000".into()),
                region: Some("eu-west-3".into()),
            }
        );
        assert_eq!(DynamoUrl::parse("sigs").unwrap().endpoint, None);
        let err = DynamoUrl::parse("a b").unwrap_err().to_string();
        assert!(err.contains("invalid DynamoDB table name"), "{err}");
        let err = DynamoUrl::parse("sigs?port=1").unwrap_err().to_string();
        assert!(err.contains("unknown option \"port\""), "{err}");
    }
}
