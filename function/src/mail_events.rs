//! What SES says back: the bounce and complaint notifications that its configuration set
//! publishes to an SNS topic, delivered by SNS to the function's `mail-events` handler
//! (deploy/aws/template.yaml). A permanent bounce or a complaint puts the address on the
//! suppression list ([`crate::store::suppression`]), which the sign path honours: a flood of
//! signatures for mailboxes that do not exist costs one bounce per mailbox, not one per
//! attempt, so the account's bounce rate stays below the level at which SES pauses sending —
//! the end state of the 2020 takedown reached by another road.
//!
//! A bounce is keyed by the address the mail was delivered to (tags and dots kept), a
//! complaint by the person (the canonical address): otherwise signing `jean+x@corp` — which
//! a strict server bounces — would silence `jean@corp` for good. The sign path checks both keys.
//!
//! Two formats reach the topic, both documented by SES: a configuration set's event
//! publishing (`eventType`) and an identity's feedback notifications (`notificationType`).
//! Only what can be trusted to mean "never again" is kept: a `Permanent` bounce's recipients
//! whose action is `failed` (or absent), and a complaint's recipients. Transient bounces,
//! deliveries and anything unknown change nothing. A record from another topic than the
//! configured one is refused whole: the handler acts only on the site's own feedback.

use crate::crypto::Hasher;
use crate::store::{Store, Suppression, SuppressionReason};
use aws_lambda_events::event::sns::SnsEvent;
use serde::Deserialize;

/// One address to suppress, read from a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feedback {
    pub address: String,
    pub reason: SuppressionReason,
}

/// What one invocation did, answered to the runtime and logged.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Applied {
    /// Notifications read (one per SNS record).
    pub notifications: u64,
    /// Addresses newly put on the suppression list.
    pub suppressed: u64,
    /// Addresses already on it.
    pub already: u64,
    /// Recipients that were not kept (transient bounces, deliveries, unreadable addresses).
    pub ignored: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Notification {
    event_type: Option<String>,
    notification_type: Option<String>,
    bounce: Option<Bounce>,
    complaint: Option<Complaint>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bounce {
    bounce_type: String,
    #[serde(default)]
    bounced_recipients: Vec<Recipient>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Complaint {
    #[serde(default)]
    complained_recipients: Vec<Recipient>,
    complaint_feedback_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Recipient {
    email_address: String,
    action: Option<String>,
}

/// The addresses one SES notification (the SNS `Message`) asks to suppress, and how many of its
/// recipients it does not. The kind comes from the object present (`bounce`, `complaint`); a
/// notification whose declared type names the other kind is inconsistent and refused.
pub fn read_notification(message: &str) -> anyhow::Result<(Vec<Feedback>, u64)> {
    let n: Notification = serde_json::from_str(message)
        .map_err(|e| anyhow::anyhow!("an SES notification that is not what SES sends: {e}"))?;
    let declared = n.event_type.as_deref().or(n.notification_type.as_deref());
    let feedback = |address: String, reason| Feedback { address, reason };
    match (n.bounce, n.complaint) {
        (Some(b), None) => {
            anyhow::ensure!(
                !matches!(declared, Some("Complaint")),
                "a notification declared a complaint that carries a bounce"
            );
            let total = b.bounced_recipients.len() as u64;
            if b.bounce_type != "Permanent" {
                return Ok((Vec::new(), total));
            }
            let kept: Vec<Feedback> = b
                .bounced_recipients
                .into_iter()
                .filter(|r| r.action.as_deref().is_none_or(|a| a == "failed"))
                .map(|r| feedback(r.email_address, SuppressionReason::Bounced))
                .collect();
            let ignored = total - kept.len() as u64;
            Ok((kept, ignored))
        }
        (None, Some(c)) => {
            anyhow::ensure!(
                !matches!(declared, Some("Bounce")),
                "a notification declared a bounce that carries a complaint"
            );
            // A mailbox provider's "this is not spam" report is no complaint.
            if c.complaint_feedback_type.as_deref() == Some("not-spam") {
                return Ok((Vec::new(), c.complained_recipients.len() as u64));
            }
            Ok((
                c.complained_recipients
                    .into_iter()
                    .map(|r| feedback(r.email_address, SuppressionReason::Complained))
                    .collect(),
                0,
            ))
        }
        (Some(_), Some(_)) => anyhow::bail!("a notification with both a bounce and a complaint"),
        // Deliveries, opens, rejects...: nothing to suppress.
        (None, None) => Ok((Vec::new(), 0)),
    }
}

/// The suppression list's key for `reason`: a bounce under the delivered address, anything
/// else under the person's canonical one (see the module doc).
pub fn suppression_key(
    hasher: &Hasher,
    address: &crate::email::CanonicalEmail,
    reason: SuppressionReason,
) -> String {
    match reason {
        SuppressionReason::Bounced => hasher.email(&address.address),
        _ => hasher.email(&address.canonical),
    }
}

/// The mail-events handler: reads every record of an SNS event (refusing the whole event if a
/// record is not from `topic`), then puts each kept address on the suppression list under its
/// keyed hash. An address that no longer canonicalizes is counted as ignored, not an error:
/// SES repeats what was sent, which the sign path had already accepted.
pub async fn apply(
    event: &SnsEvent,
    topic: &str,
    hasher: &Hasher,
    store: &dyn Store,
    now: i64,
) -> anyhow::Result<Applied> {
    let mut read = Vec::new();
    let mut applied = Applied::default();
    for record in &event.records {
        anyhow::ensure!(
            record.sns.topic_arn == topic,
            "an SNS record from {}, not from the site's mail-events topic",
            record.sns.topic_arn
        );
        let (kept, ignored) = read_notification(&record.sns.message)?;
        applied.notifications += 1;
        applied.ignored += ignored;
        read.extend(kept);
    }
    for f in read {
        let Ok(address) = crate::email::canonicalize(&f.address) else {
            applied.ignored += 1;
            continue;
        };
        let entry = Suppression {
            email_hash: suppression_key(hasher, &address, f.reason),
            reason: f.reason,
            // SES does not say which petition's mail it was; the list is site-wide anyway.
            petition: String::new(),
            at: now,
        };
        if store.suppress(&entry).await? {
            applied.suppressed += 1;
        } else {
            applied.already += 1;
        }
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bounce of SES's event publishing documentation (trimmed to what is read).
    const EVENT_BOUNCE: &str = r#"{"eventType":"Bounce","bounce":{"bounceType":"Permanent",
        "bounceSubType":"General","bouncedRecipients":[{"emailAddress":"recipient@example.com",
        "action":"failed","status":"5.1.1","diagnosticCode":"smtp; 550 5.1.1 user unknown"}],
        "timestamp":"2017-08-05T00:41:02.669Z","feedbackId":"01000157c44f053b-61b59c11"},
        "mail":{"timestamp":"2017-08-05T00:40:02.012Z","source":"Sender <sender@example.com>",
        "messageId":"EXAMPLE7c191be45","destination":["recipient@example.com"],
        "tags":{"ses:configuration-set":["ConfigSet"]}}}"#;

    #[test]
    fn a_permanent_bounce_suppresses_its_failed_recipients_only() {
        let (kept, ignored) = read_notification(EVENT_BOUNCE).unwrap();
        assert_eq!(
            kept,
            vec![Feedback {
                address: "recipient@example.com".into(),
                reason: SuppressionReason::Bounced,
            }]
        );
        assert_eq!(ignored, 0);
        // The identity notification format, with a recipient still being retried.
        let identity = r#"{"notificationType":"Bounce","bounce":{"bounceType":"Permanent",
            "bouncedRecipients":[{"emailAddress":"a@example.com","action":"failed"},
            {"emailAddress":"b@example.com","action":"delayed"}]},"mail":{}}"#;
        let (kept, ignored) = read_notification(identity).unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].address, "a@example.com");
        assert_eq!(ignored, 1);
    }

    #[test]
    fn transient_bounces_and_deliveries_suppress_nobody() {
        let transient = EVENT_BOUNCE.replace("\"Permanent\"", "\"Transient\"");
        assert_eq!(read_notification(&transient).unwrap(), (Vec::new(), 1));
        let delivery = r#"{"eventType":"Delivery","delivery":{"recipients":["a@example.com"]}}"#;
        assert_eq!(read_notification(delivery).unwrap(), (Vec::new(), 0));
    }

    #[test]
    fn complaints_suppress_and_inconsistent_notices_are_refused() {
        let complaint = r#"{"notificationType":"Complaint","complaint":{
            "complainedRecipients":[{"emailAddress":"c@example.com"}],"complaintFeedbackType":"abuse"}}"#;
        let (kept, _) = read_notification(complaint).unwrap();
        assert_eq!(kept[0].reason, SuppressionReason::Complained);
        let not_spam = complaint.replace("\"abuse\"", "\"not-spam\"");
        assert_eq!(read_notification(&not_spam).unwrap(), (Vec::new(), 1));
        let lying = complaint.replace("\"Complaint\"", "\"Bounce\"");
        assert!(read_notification(&lying).is_err());
        assert!(read_notification("not json").is_err());
    }
}
