//! The mail suppression list: addresses, by their keyed e-mail hash, that updates to signers
//! (`cahier admin mail`) never go to again — a signer's one-click unsubscribe (RFC 8058), and
//! the hard bounces and complaints a mail provider reports. Kept apart from the signatures, so
//! that erasing or purging a signature never puts an address back on the list of recipients,
//! and site-wide, since "stop mailing me" is said to the collective, not to one petition.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SuppressionReason {
    /// The signer's own request (the link or the one-click POST of an update).
    Unsubscribed,
    /// The mailbox does not exist (a permanent bounce).
    Bounced,
    /// The recipient marked a mail as spam.
    Complained,
}

impl SuppressionReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SuppressionReason::Unsubscribed => "unsubscribed",
            SuppressionReason::Bounced => "bounced",
            SuppressionReason::Complained => "complained",
        }
    }

    pub fn parse(s: &str) -> Option<SuppressionReason> {
        match s {
            "unsubscribed" => Some(SuppressionReason::Unsubscribed),
            "bounced" => Some(SuppressionReason::Bounced),
            "complained" => Some(SuppressionReason::Complained),
            _ => None,
        }
    }
}

/// One suppressed address. The first reason recorded stays; a later one changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suppression {
    /// The keyed hash of the canonical address (`SignatureRecord::email_hash`).
    pub email_hash: String,
    pub reason: SuppressionReason,
    /// The petition whose mail led to it, for the organizer's statistics.
    pub petition: String,
    pub at: i64,
}
