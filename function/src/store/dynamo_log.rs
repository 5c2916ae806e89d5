//! The transparency log on DynamoDB (see `docs/transparency-log.md`).
//!
//! SQLite numbers each event in the transaction of its count change, since it has one writer.
//! DynamoDB cannot without one item that every confirmation writes: a hot key at the rates the
//! count shards are there for. So a count change writes its event, in its own transaction, to
//! the log *queue* of its count shard ([`log_queue_pk`]); the sequencer, alone, numbers the
//! queued events: each step moves up to [`STEP`] of them from the queue to `log#<petition>`
//! (`e#<seq>`) and advances the head, in one transaction conditioned on the head it read, so
//! an event is numbered once, with no gap, whoever crashes where. Then [`Store::log_events`]
//! reads the numbered ones as SQLite's table.
//!
//! A signature's events stay in order: they live in one shard (its count shard) and sort by
//! the hour of their entry, then the signature, then its event number (`log_n` on the item).
//! The hour of an event never goes back from the signature's previous one (`log_hour`), so two
//! clocks a second apart cannot put an uncount before what it cancels.

use super::dynamo::{get_n, key, n, s, DynamoStore, Item};
use super::dynamo_keys::{
    count_shard, log_entry_sk, log_pk, log_queue_pk, log_queue_sk, COUNT_SHARDS, LOG_CHECKPOINT_SK,
    LOG_HEAD_SK,
};
use super::{LogPending, ReceiptSecret, Status};
use anyhow::Context;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use cahier_tlog::{Commitment, Entry, Reason};

/// Events numbered per transaction: two items each (the numbered event, the queued one gone)
/// and the head, within DynamoDB's 100 items per transaction.
const STEP: usize = 49;

/// Queued events read per shard and pass.
const QUEUE_PAGE: i32 = 500;

/// A queued event: its sort key, its partition key, the entry's bytes.
type Queued = (String, String, Vec<u8>);

/// What a count change adds to the log, decided on the signature item read before it (the
/// change's `#status = :from` condition keeps that item current).
pub(super) struct LogWrite {
    entry: Entry,
    queue_pk: String,
    queue_sk: String,
    /// The signature's next event number and hour.
    n: u64,
    hour: i64,
    /// The secret of a counted entry's commitment: the signer's receipt, never stored.
    pub secret: Option<ReceiptSecret>,
}

impl LogWrite {
    /// The event of a change by `delta` of the count (to `to`), or none: no count change, or an
    /// uncount of a signature that never entered the log (no commitment: counted before the
    /// log existed is impossible here, the DynamoDB store logs from its first count).
    pub(super) fn for_change(
        item: &Item,
        petition: &str,
        email_hash: &str,
        delta: i64,
        to: Status,
        now: i64,
    ) -> anyhow::Result<Option<LogWrite>> {
        let last_hour = get_n(item, "log_hour")?.unwrap_or(0);
        let hour = i64::from(Entry::hour_of(now)).max(last_hour);
        let at = hour * 3600;
        let (entry, secret) = if delta > 0 {
            let secret = ReceiptSecret::random();
            (
                Entry::counted(Commitment::new(petition, &secret), at),
                Some(secret),
            )
        } else if delta < 0 {
            let Some(c) = stored_commitment(item)? else {
                return Ok(None);
            };
            let reason = if to == Status::Erased {
                Reason::Erased
            } else {
                Reason::Invalidated
            };
            (Entry::uncounted(c, reason, at), None)
        } else {
            return Ok(None);
        };
        let n = get_n(item, "log_n")?.unwrap_or(0) as u64 + 1;
        Ok(Some(LogWrite {
            queue_pk: log_queue_pk(petition, count_shard(email_hash)),
            queue_sk: log_queue_sk(hour, email_hash, n),
            entry,
            n,
            hour,
            secret,
        }))
    }

    /// The event of an offline batch (`key_hash` in place of a signer's hash, so that it is
    /// spread and ordered like a signature's): its `n`th, in `hour`.
    pub(super) fn for_batch(
        petition: &str,
        key_hash: &str,
        entry: Entry,
        n: u64,
        hour: i64,
    ) -> LogWrite {
        LogWrite {
            queue_pk: log_queue_pk(petition, count_shard(key_hash)),
            queue_sk: log_queue_sk(hour, key_hash, n),
            entry,
            n,
            hour,
            secret: None,
        }
    }

    /// `update_expression` with the signature's side of the event: its commitment (set by a
    /// count, removed by an uncount, which a later count replaces) and event number and hour.
    pub(super) fn add_to(
        &self,
        update_expression: &str,
        values: &mut Vec<(&str, AttributeValue)>,
    ) -> String {
        let mut set = vec!["log_n = :log_n", "log_hour = :log_hour"];
        let mut remove = Vec::new();
        values.push((":log_n", n(self.n)));
        values.push((":log_hour", n(self.hour)));
        if self.entry.event == cahier_tlog::Event::Counted {
            set.push("commitment = :commitment");
            values.push((
                ":commitment",
                AttributeValue::B(self.entry.commitment.0.to_vec().into()),
            ));
        } else {
            remove.push("commitment");
        }
        merge_expression(update_expression, &set, &remove)
    }

    /// The queued event, written in the change's transaction.
    pub(super) fn queue_put(&self, table: &str) -> anyhow::Result<TransactWriteItem> {
        let mut item = key(self.queue_pk.clone(), &self.queue_sk);
        item.insert(
            "entry".into(),
            AttributeValue::B(self.entry.encode().into()),
        );
        Ok(TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(table)
                    .set_item(Some(item))
                    .condition_expression("attribute_not_exists(pk)")
                    .build()?,
            )
            .build())
    }
}

fn stored_commitment(item: &Item) -> anyhow::Result<Option<Commitment>> {
    let Some(v) = item.get("commitment") else {
        return Ok(None);
    };
    let bytes = v
        .as_b()
        .map_err(|_| anyhow::anyhow!("a signature's commitment is not binary"))?;
    let c: [u8; 32] = bytes
        .as_ref()
        .try_into()
        .map_err(|_| anyhow::anyhow!("a stored commitment is not 32 bytes"))?;
    Ok(Some(Commitment(c)))
}

/// `SET a, b REMOVE c` with more `SET` and `REMOVE` clauses (DynamoDB allows each once).
pub(super) fn merge_expression(base: &str, set: &[&str], remove: &[&str]) -> String {
    let (mut sets, mut removes) = (Vec::new(), Vec::new());
    let mut current = None;
    for word in base.split_whitespace() {
        match word {
            "SET" => current = Some(&mut sets),
            "REMOVE" => current = Some(&mut removes),
            w => current
                .as_mut()
                .expect("an update expression starts with SET or REMOVE")
                .push(w.to_string()),
        }
    }
    let join = |words: Vec<String>, more: &[&str]| {
        let mut clauses: Vec<String> = words
            .join(" ")
            .split(',')
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty())
            .collect();
        clauses.extend(more.iter().map(|c| c.to_string()));
        clauses.join(", ")
    };
    let (sets, removes) = (join(sets, set), join(removes, remove));
    match (sets.is_empty(), removes.is_empty()) {
        (false, false) => format!("SET {sets} REMOVE {removes}"),
        (false, true) => format!("SET {sets}"),
        (true, false) => format!("REMOVE {removes}"),
        (true, true) => String::new(),
    }
}

impl DynamoStore {
    /// The signed checkpoint of `petition`'s log as the sequencer last swapped it (the log in
    /// the site bucket, `function/src/log_bucket.rs`), read strongly consistent.
    pub async fn log_checkpoint(&self, petition: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(log_pk(petition), LOG_CHECKPOINT_SK)))
            .consistent_read(true)
            .send()
            .await
            .with_context(|| format!("while reading the log checkpoint of {petition}"))?;
        out.item
            .as_ref()
            .and_then(|i| i.get("note"))
            .map(|v| {
                v.as_b()
                    .map(|b| b.as_ref().to_vec())
                    .map_err(|_| anyhow::anyhow!("the log checkpoint of {petition} is not binary"))
            })
            .transpose()
    }

    /// Replaces the checkpoint of `petition`'s log by `new`, only if it still is `expected`
    /// (None: there is none yet). A refusal means another sequencer signed in between: the
    /// caller must not publish `new`, which would fork the log.
    pub async fn swap_log_checkpoint(
        &self,
        petition: &str,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> anyhow::Result<()> {
        let mut item = key(log_pk(petition), LOG_CHECKPOINT_SK);
        item.insert("note".into(), AttributeValue::B(new.to_vec().into()));
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        let put = match expected {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(old) => put
                .condition_expression("note = :old")
                .expression_attribute_values(":old", AttributeValue::B(old.to_vec().into())),
        };
        match put.send().await {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                anyhow::bail!(
                    "the checkpoint of {petition} changed under the sequencer: refusing to sign \
                     a fork (is a second sequencer running?)"
                )
            }
            Err(e) => {
                Err(e).with_context(|| format!("while swapping the log checkpoint of {petition}"))
            }
        }
    }

    /// Events numbered so far (the head), read strongly consistent.
    async fn log_head(&self, petition: &str) -> anyhow::Result<u64> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(log_pk(petition), LOG_HEAD_SK)))
            .consistent_read(true)
            .send()
            .await
            .with_context(|| format!("while reading the log head of {petition}"))?;
        Ok(out
            .item
            .as_ref()
            .map(|i| get_n(i, "numbered"))
            .transpose()?
            .flatten()
            .unwrap_or(0) as u64)
    }

    /// The queued events of `petition`, in the order they are numbered: each shard's first
    /// page (a shard keeps a signature's events in order), merged by sort key; and whether a
    /// shard has more than its page.
    async fn queued(&self, petition: &str) -> anyhow::Result<(Vec<Queued>, bool)> {
        let reads = (0..COUNT_SHARDS).map(|shard| {
            let pk = log_queue_pk(petition, shard);
            async move {
                let out = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("pk = :pk")
                    .expression_attribute_values(":pk", s(pk.clone()))
                    .consistent_read(true)
                    .limit(QUEUE_PAGE)
                    .send()
                    .await
                    .with_context(|| format!("while reading the log queue {pk}"))?;
                let more = out.last_evaluated_key.is_some();
                let items = out
                    .items
                    .unwrap_or_default()
                    .into_iter()
                    .map(|item| {
                        let sk = item
                            .get("sk")
                            .and_then(|v| v.as_s().ok())
                            .context("a queued log event without sort key")?
                            .clone();
                        let entry = item
                            .get("entry")
                            .and_then(|v| v.as_b().ok())
                            .context("a queued log event without entry")?
                            .as_ref()
                            .to_vec();
                        Ok((sk, pk.clone(), entry))
                    })
                    .collect::<anyhow::Result<Vec<Queued>>>()?;
                anyhow::Ok((items, more))
            }
        });
        let (mut all, mut more) = (Vec::new(), false);
        for (items, shard_more) in futures::future::try_join_all(reads).await? {
            all.extend(items);
            more |= shard_more;
        }
        all.sort();
        Ok((all, more))
    }

    /// Numbers the queued events of `petition`; returns the log's size after. Safe to run
    /// twice at once (the loser's transaction fails on the head and it reads again), though one
    /// sequencer is the plan.
    pub(super) async fn number_queued(&self, petition: &str) -> anyhow::Result<u64> {
        let mut conflicts = 0;
        loop {
            let mut size = self.log_head(petition).await?;
            let (queued, more) = self.queued(petition).await?;
            if queued.is_empty() {
                return Ok(size);
            }
            let mut lost = false;
            for step in queued.chunks(STEP) {
                let mut items = vec![self.head_update(petition, size, size + step.len() as u64)?];
                for (i, (sk, pk, entry)) in step.iter().enumerate() {
                    let mut numbered = key(log_pk(petition), &log_entry_sk(size + i as u64));
                    numbered.insert("entry".into(), AttributeValue::B(entry.clone().into()));
                    items.push(
                        TransactWriteItem::builder()
                            .put(
                                Put::builder()
                                    .table_name(&self.table)
                                    .set_item(Some(numbered))
                                    .condition_expression("attribute_not_exists(pk)")
                                    .build()?,
                            )
                            .build(),
                    );
                    items.push(
                        TransactWriteItem::builder()
                            .delete(
                                Delete::builder()
                                    .table_name(&self.table)
                                    .set_key(Some(key(pk.clone(), sk)))
                                    .condition_expression("attribute_exists(pk)")
                                    .build()?,
                            )
                            .build(),
                    );
                }
                match self.transact(items).await {
                    Ok(()) => size += step.len() as u64,
                    Err(super::dynamo::TxError::Other(e)) => {
                        return Err(e.context(format!("while numbering log events of {petition}")))
                    }
                    // Another sequencer moved the head or took these events: read again.
                    Err(_) => {
                        conflicts += 1;
                        anyhow::ensure!(
                            conflicts < 16,
                            "the log head of {petition} kept moving under the sequencer"
                        );
                        lost = true;
                        break;
                    }
                }
            }
            // Everything queued when we looked is numbered, unless a shard had more than its
            // page (or we lost a race): round again.
            if !lost && !more {
                return Ok(size);
            }
        }
    }

    fn head_update(&self, petition: &str, from: u64, to: u64) -> anyhow::Result<TransactWriteItem> {
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(log_pk(petition), LOG_HEAD_SK)))
            .update_expression("SET numbered = :to")
            .expression_attribute_values(":to", n(to));
        update = if from == 0 {
            update.condition_expression("attribute_not_exists(numbered) OR numbered = :from")
        } else {
            update.condition_expression("numbered = :from")
        };
        update = update.expression_attribute_values(":from", n(from));
        Ok(TransactWriteItem::builder().update(update.build()?).build())
    }

    /// Up to `limit` numbered events from `from` on, and the log's size; numbers the queue
    /// first, so the sequencer sees every event committed before it asked.
    pub(super) async fn numbered_events(
        &self,
        petition: &str,
        from: u64,
        limit: usize,
    ) -> anyhow::Result<(Vec<LogPending>, u64)> {
        let size = self.number_queued(petition).await?;
        let mut events = Vec::new();
        let mut start: Option<Item> = None;
        while events.len() < limit && from + (events.len() as u64) < size {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :last")
                .expression_attribute_values(":pk", s(log_pk(petition)))
                .expression_attribute_values(":from", s(log_entry_sk(from)))
                .expression_attribute_values(":last", s(log_entry_sk(size.saturating_sub(1))))
                .consistent_read(true)
                .limit((limit - events.len()).min(1000) as i32)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .with_context(|| format!("while reading the log events of {petition}"))?;
            for item in out.items.unwrap_or_default() {
                let seq = from + events.len() as u64;
                let bytes = item
                    .get("entry")
                    .and_then(|v| v.as_b().ok())
                    .context("a log event without entry")?;
                let entry = Entry::decode(bytes.as_ref())
                    .with_context(|| format!("log event {seq} of {petition}"))?;
                anyhow::ensure!(
                    item.get("sk").and_then(|v| v.as_s().ok()) == Some(&log_entry_sk(seq)),
                    "the log events of {petition} have a gap before {seq}"
                );
                events.push(LogPending { seq, entry });
            }
            match out.last_evaluated_key {
                Some(k) => start = Some(k),
                None => break,
            }
        }
        Ok((events, size))
    }
}

#[cfg(test)]
mod tests {
    use super::merge_expression;

    #[test]
    fn clauses_join_the_expressions_own() {
        assert_eq!(
            merge_expression(
                "SET #status = :to, confirmed_at = :now REMOVE #ttl, refunds",
                &["log_n = :log_n"],
                &["commitment"]
            ),
            "SET #status = :to, confirmed_at = :now, log_n = :log_n REMOVE #ttl, refunds, commitment"
        );
        assert_eq!(
            merge_expression("SET #status = :to", &["a = :a"], &[]),
            "SET #status = :to, a = :a"
        );
        assert_eq!(
            merge_expression("SET #status = :to", &["a = :a"], &["c"]),
            "SET #status = :to, a = :a REMOVE c"
        );
    }
}
