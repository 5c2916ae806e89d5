//! The mail suppression list on DynamoDB: one item per address, `suppress#<email_hash>`, put
//! only if absent (the first reason stays) with its audit event in the same transaction; and a
//! petition's once-only marks (`mark#<petition>`), put only if absent too.

use super::dynamo::{backoff, get_n, get_s, key, n, s, DynamoStore, TxError};
use super::dynamo_keys::{mark_pk, suppression_pk, SUPPRESSION_SK};
use super::{Suppression, SuppressionReason};
use anyhow::Context;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};

const ATTEMPTS: u32 = 8;

impl DynamoStore {
    pub(super) async fn put_suppression(&self, e: &Suppression) -> anyhow::Result<bool> {
        let mut item = key(suppression_pk(&e.email_hash), SUPPRESSION_SK);
        item.insert("reason".into(), s(e.reason.as_str()));
        item.insert("petition".into(), s(e.petition.as_str()));
        item.insert("at".into(), n(e.at));
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()?;
        for attempt in 0..ATTEMPTS {
            let audit = self.audit_put(&e.petition, &e.email_hash, e.reason.as_str(), e.at, "")?;
            let items = vec![TransactWriteItem::builder().put(put.clone()).build(), audit];
            match self.transact(items).await {
                Ok(()) => return Ok(true),
                Err(TxError::Condition(_)) => return Ok(false),
                Err(TxError::Retry) => backoff(attempt).await,
                Err(TxError::Other(err)) => {
                    return Err(err.context("while adding to the suppression list"))
                }
            }
        }
        anyhow::bail!("the suppression list stayed busy after {ATTEMPTS} attempts")
    }

    pub(super) async fn get_suppression(
        &self,
        email_hash: &str,
    ) -> anyhow::Result<Option<Suppression>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(suppression_pk(email_hash), SUPPRESSION_SK)))
            .consistent_read(true)
            .send()
            .await
            .context("while reading the suppression list")?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        Ok(Some(Suppression {
            email_hash: email_hash.to_string(),
            reason: get_s(&item, "reason")
                .and_then(SuppressionReason::parse)
                .unwrap_or(SuppressionReason::Unsubscribed),
            petition: get_s(&item, "petition").unwrap_or_default().to_string(),
            at: get_n(&item, "at")?.unwrap_or(0),
        }))
    }
}

impl DynamoStore {
    /// [`super::Store::mark_once`]: a put conditioned on the item's absence; when it is there,
    /// a consistent read of the value it holds.
    pub(super) async fn put_mark(
        &self,
        petition: &str,
        mark: &str,
        value: i64,
        at: i64,
    ) -> anyhow::Result<Option<i64>> {
        use aws_sdk_dynamodb::operation::put_item::PutItemError;
        let mut item = key(mark_pk(petition), mark);
        item.insert("value".into(), n(value));
        item.insert("at".into(), n(at));
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match put {
            Ok(_) => return Ok(None),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(PutItemError::ConditionalCheckFailedException(_))
                ) => {}
            Err(e) => {
                return Err(anyhow::Error::new(e)
                    .context(format!("while recording the mark {mark} of {petition}")))
            }
        }
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(mark_pk(petition), mark)))
            .consistent_read(true)
            .send()
            .await
            .with_context(|| format!("while reading the mark {mark} of {petition}"))?;
        let first = out.item.as_ref().map(|i| get_n(i, "value")).transpose()?;
        Ok(Some(first.flatten().unwrap_or(value)))
    }
}
