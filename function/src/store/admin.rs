//! The organizer's side of a store, used only by `cahier admin` (never an HTTP surface).
//!
//! An extension of [`Store`] that both implementations provide: scanning by [`Criteria`], bulk
//! status changes with their audit trail and count correction, recount from the records, and the
//! retention purge. Report logic over the scanned records lives in [`super::report`], so that it
//! is the same for every store.

use super::{AuditEvent, Count, SignatureRecord, Status, Store};
use async_trait::async_trait;

/// How the stores' sign write names a hold for an exhausted budget (`over budget <key>`), as
/// opposed to a hold for review (`protected domain`).
pub const OVER_BUDGET_PREFIX: &str = "over budget ";

/// Whether a record was held only because a budget was exhausted.
pub fn held_over_budget(r: &SignatureRecord) -> bool {
    r.hold_reason
        .as_deref()
        .is_some_and(|h| h.starts_with(OVER_BUDGET_PREFIX))
}

/// Which signatures an organizer means. All given conditions must hold (AND); list conditions
/// hold when any of their entries does (OR).
#[derive(Debug, Clone, Default)]
pub struct Criteria {
    pub petition: Option<String>,
    /// `created_at >= from` (Unix seconds).
    pub from: Option<i64>,
    /// `created_at < to` (Unix seconds).
    pub to: Option<i64>,
    /// Keyed hashes of the /24 (IPv4) or /48 (IPv6) prefix, as in `SignatureRecord::prefix_hash`;
    /// a wider CIDR given by the organizer expands to several.
    pub prefix_hashes: Vec<String>,
    /// Canonical e-mail domain, compared case-insensitively.
    pub email_domain: Option<String>,
    /// One signer (keyed hash of the canonical e-mail), for erase and single approvals.
    pub email_hash: Option<String>,
    /// Heuristic flags (`honeypot`, `name_burst`…); any of them.
    pub flags: Vec<String>,
    /// Statuses to consider; empty means every status.
    pub statuses: Vec<Status>,
    /// Only signatures held because a budget was exhausted ([`held_over_budget`]), not those
    /// held for review (protected domains): what `cahier admin release` takes by default.
    pub over_budget_only: bool,
    /// Matched against the name after local decryption with the organizer's identity; stores
    /// cannot evaluate it (see [`Criteria::matches_name`]).
    pub name_pattern: Option<regex::Regex>,
}

impl Criteria {
    /// No narrowing condition: neither time window, prefix, domain, signer, flag nor name.
    /// A petition and statuses alone do not narrow enough for a bulk change, so `invalidate`
    /// refuses an empty condition.
    pub fn is_empty(&self) -> bool {
        self.from.is_none()
            && self.to.is_none()
            && self.prefix_hashes.is_empty()
            && self.email_domain.is_none()
            && self.email_hash.is_none()
            && self.flags.is_empty()
            && self.name_pattern.is_none()
    }

    /// The store-independent part: every condition but the name pattern. Stores may filter
    /// with an index first but must visit only records for which this is true.
    pub fn matches(&self, r: &SignatureRecord) -> bool {
        self.petition.as_ref().is_none_or(|p| *p == r.petition)
            && self.from.is_none_or(|f| r.created_at >= f)
            && self.to.is_none_or(|t| r.created_at < t)
            && (self.prefix_hashes.is_empty() || self.prefix_hashes.contains(&r.prefix_hash))
            && self
                .email_domain
                .as_ref()
                .is_none_or(|d| d.eq_ignore_ascii_case(&r.email_domain))
            && self.email_hash.as_ref().is_none_or(|h| *h == r.email_hash)
            && (self.flags.is_empty() || r.flags.iter().any(|f| self.flags.contains(f)))
            && (self.statuses.is_empty() || self.statuses.contains(&r.status))
            && (!self.over_budget_only || held_over_budget(r))
    }

    /// Whether the decrypted `name` satisfies the name pattern (true when there is none).
    pub fn matches_name(&self, name: &str) -> bool {
        self.name_pattern
            .as_ref()
            .is_none_or(|re| re.is_match(name))
    }

    /// The name pattern needs the organizer's identity to decrypt each record.
    pub fn needs_decryption(&self) -> bool {
        self.name_pattern.is_some()
    }

    /// A pseudonymous one-line summary for audit records: hashes shortened, never an IP.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(p) = &self.petition {
            parts.push(format!("petition={p}"));
        }
        if let Some(f) = self.from {
            parts.push(format!("from={f}"));
        }
        if let Some(t) = self.to {
            parts.push(format!("to={t}"));
        }
        if !self.prefix_hashes.is_empty() {
            let short: Vec<&str> = self
                .prefix_hashes
                .iter()
                .take(3)
                .map(|h| &h[..h.len().min(12)])
                .collect();
            let more = self.prefix_hashes.len().saturating_sub(3);
            let tail = if more > 0 {
                format!(",+{more}")
            } else {
                String::new()
            };
            parts.push(format!("prefix={}{tail}", short.join(",")));
        }
        if let Some(d) = &self.email_domain {
            parts.push(format!("domain={d}"));
        }
        if let Some(h) = &self.email_hash {
            parts.push(format!("email={}", &h[..h.len().min(12)]));
        }
        if !self.flags.is_empty() {
            parts.push(format!("flag={}", self.flags.join(",")));
        }
        if !self.statuses.is_empty() {
            let s: Vec<&str> = self.statuses.iter().map(|s| s.as_str()).collect();
            parts.push(format!("status={}", s.join(",")));
        }
        if let Some(re) = &self.name_pattern {
            parts.push(format!("name~/{}/", re.as_str()));
        }
        if self.over_budget_only {
            parts.push("hold=over_budget".into());
        }
        parts.join(" ")
    }
}

/// A batch of paper signatures the organizer counted by hand (`cahier admin offline`): added
/// to the count and to the log as one "offline batch" entry with its size, never as people.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OfflineBatch {
    pub petition: String,
    /// The organizer's name for it (`marche-2026-11-28`), unique in the petition: declaring
    /// the same batch again counts it once.
    pub id: String,
    pub signatures: u32,
    /// When the paper was signed, as the organizer says (`YYYY-MM-DD`).
    pub date: String,
    pub note: String,
    pub added_at: i64,
    /// Set once the batch is withdrawn (counted no more; its log shows it, reason `withdrawn`).
    pub withdrawn_at: Option<i64>,
}

/// Most signatures in one batch: a typo of three zeros should not pass.
pub const MAX_OFFLINE_SIGNATURES: u32 = 1_000_000;

impl OfflineBatch {
    /// Why the batch cannot be recorded, naming the option (`--date "28/11/2026": ...`).
    pub fn check(&self) -> anyhow::Result<()> {
        match self.invalid_field() {
            Some((field, why)) => anyhow::bail!("--{field} {why}"),
            None => Ok(()),
        }
    }

    /// The first invalid field and why, for a caller that names fields its own way (the
    /// command line as `--date`, a front matter as `offline[0].date`).
    pub fn invalid_field(&self) -> Option<(&'static str, String)> {
        let slug_ok = !self.petition.is_empty()
            && !self.petition.starts_with(['-', '_'])
            && self
                .petition
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !slug_ok {
            return Some((
                "petition",
                format!(
                    "{:?}: a petition's slug (a-z 0-9 - _), as in its URL",
                    self.petition
                ),
            ));
        }
        let id_ok = (1..=64).contains(&self.id.len())
            && self
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
        if !id_ok {
            return Some((
                "id",
                format!(
                    "{:?}: 1 to 64 of a-z 0-9 - _ . (e.g. marche-2026-11-28)",
                    self.id
                ),
            ));
        }
        if !(1..=MAX_OFFLINE_SIGNATURES).contains(&self.signatures) {
            return Some((
                "signatures",
                format!("{}: from 1 to {MAX_OFFLINE_SIGNATURES}", self.signatures),
            ));
        }
        let date_ok = self.date.len() == 10
            && time::Date::parse(
                &self.date,
                time::macros::format_description!("[year]-[month]-[day]"),
            )
            .is_ok();
        if !date_ok {
            return Some(("date", format!("{:?}: a date as YYYY-MM-DD", self.date)));
        }
        if self.note.chars().count() > 200 || self.note.chars().any(char::is_control) {
            return Some(("note", "must be at most 200 characters on one line".into()));
        }
        None
    }

    /// Refuses a batch dated after today (UTC, a day's grace for time zones): paper is
    /// counted once collected, and a date to come is a typo or an inflated count made to
    /// look planned.
    pub fn check_date_not_after(&self, now: i64) -> anyhow::Result<()> {
        let format = time::macros::format_description!("[year]-[month]-[day]");
        let date = time::Date::parse(&self.date, format)
            .map_err(|_| anyhow::anyhow!("date {:?}: a date as YYYY-MM-DD", self.date))?;
        let today = time::OffsetDateTime::from_unix_timestamp(now)
            .map(|t| t.date())
            .map_err(|e| anyhow::anyhow!("the clock: {e}"))?;
        match today.next_day() {
            Some(latest) if date <= latest => Ok(()),
            _ => anyhow::bail!(
                "dated {}, after today ({today}): paper signatures are declared once collected",
                self.date
            ),
        }
    }

    /// The key the stores file its count and log events under, spread like a signer's
    /// e-mail hash (and never equal to one: it hashes a different domain).
    pub fn key_hash(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(b"cahier/offline-batch/v1\0");
        h.update(self.id.as_bytes());
        hex::encode(h.finalize())
    }
}

/// What [`AdminStore::add_offline`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfflineAdded {
    Added,
    /// The same batch (id and size) was already recorded: nothing changed.
    AlreadyRecorded,
}

/// What [`AdminStore::withdraw_offline`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfflineWithdrawn {
    Withdrawn,
    AlreadyWithdrawn,
    NotFound,
}

#[async_trait]
pub trait AdminStore: Store {
    /// Visits every record matching `criteria.matches` (not the name pattern), including
    /// erased and invalidated ones if the statuses allow, in no particular order. Expired
    /// pending signatures may be skipped.
    async fn scan(
        &self,
        criteria: &Criteria,
        visit: &mut (dyn FnMut(SignatureRecord) + Send),
    ) -> anyhow::Result<()>;

    /// For each of `email_hashes` (at most 500 per call) of `petition` whose status is in
    /// `from`, sets the status to `to`, corrects the confirmed count (only `Confirmed` counts)
    /// and records an audit event named `to.as_str()` with `audit_detail`, each signature in its
    /// own transaction with its count change. Returns how many changed.
    async fn set_status(
        &self,
        petition: &str,
        email_hashes: &[String],
        from: &[Status],
        to: Status,
        audit_detail: &str,
        now: i64,
    ) -> anyhow::Result<u64>;

    /// Releases held signatures of `petition` (at most 500 per call): a confirmed-held one
    /// becomes confirmed and counted, a held one becomes an ordinary pending signature (it
    /// counts once its owner confirms). The hold reason is cleared; each change commits with
    /// its count correction and a `released` audit event carrying `audit_detail`. Signatures
    /// in any other status are left alone. Returns how many changed.
    async fn release(
        &self,
        petition: &str,
        email_hashes: &[String],
        audit_detail: &str,
        now: i64,
    ) -> anyhow::Result<u64>;

    /// Records an offline batch (already [`OfflineBatch::check`]ed): in one transaction the
    /// batch, the count raised by its size, its log entry (an offline batch with its size and
    /// a commitment to a random secret) and an audit event. The same id again with the same
    /// size is [`OfflineAdded::AlreadyRecorded`]; with another size, or withdrawn, an error.
    async fn add_offline(&self, batch: &OfflineBatch, now: i64) -> anyhow::Result<OfflineAdded>;

    /// Withdraws a batch (counted by mistake, twice on paper): the count lowered by its size,
    /// an uncounted entry (reason `withdrawn`) for its commitment, an audit event.
    async fn withdraw_offline(
        &self,
        petition: &str,
        id: &str,
        now: i64,
    ) -> anyhow::Result<OfflineWithdrawn>;

    /// The offline batches of one petition or all, by petition then id.
    async fn offline_batches(&self, petition: Option<&str>) -> anyhow::Result<Vec<OfflineBatch>>;

    /// How many addresses the mail suppression list holds, by reason (`unsubscribed`,
    /// `bounced`, `complained`; absent reasons left out). A scan, like the other reports.
    async fn suppression_counts(&self) -> anyhow::Result<std::collections::BTreeMap<String, u64>>;

    /// Recomputes the count of `petition` from its records (confirmed signatures and offline
    /// batches not withdrawn) and stores it (repairing the counter, e.g. its shards on
    /// DynamoDB). Returns the new count.
    async fn recount(&self, petition: &str) -> anyhow::Result<Count>;

    /// Deletes the personal data (sealed blob, IP and name hashes) of every signature created
    /// before `older_than`, keeping the pseudonymous record and the counts; records `purged`
    /// audit events. Returns how many were purged (already purged ones are not counted).
    async fn purge(&self, older_than: i64, now: i64) -> anyhow::Result<u64>;

    /// Audit events since `since` (Unix seconds), of one petition or all, oldest first.
    async fn audit_log(
        &self,
        petition: Option<&str>,
        since: i64,
    ) -> anyhow::Result<Vec<AuditEvent>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn record(
        petition: &str,
        n: u32,
        created_at: i64,
        status: Status,
    ) -> SignatureRecord {
        SignatureRecord {
            petition: petition.into(),
            email_hash: format!("e{n:04}"),
            email_domain: "example.org".into(),
            ip_hash: format!("i{n:04}"),
            prefix_hash: "p-a".into(),
            network: "127.0.0.0/24".into(),
            name_hash: "n".into(),
            sealed: vec![1, 2, 3],
            lang: "fr".into(),
            public: false,
            newsletter: false,
            status,
            hold_reason: None,
            flags: vec![],
            created_at,
            confirmed_at: None,
            expires_at: None,
        }
    }

    #[test]
    fn empty_criteria_are_refusable() {
        assert!(Criteria::default().is_empty());
        let c = Criteria {
            petition: Some("p".into()),
            statuses: vec![Status::Pending],
            ..Default::default()
        };
        assert!(
            c.is_empty(),
            "petition and status alone are not a narrowing condition"
        );
        assert!(!Criteria {
            from: Some(1),
            ..Default::default()
        }
        .is_empty());
        assert!(!Criteria {
            prefix_hashes: vec!["x".into()],
            ..Default::default()
        }
        .is_empty());
        assert!(!Criteria {
            email_domain: Some("x".into()),
            ..Default::default()
        }
        .is_empty());
        assert!(!Criteria {
            flags: vec!["honeypot".into()],
            ..Default::default()
        }
        .is_empty());
        let re = regex::Regex::new("^Jean").unwrap();
        assert!(!Criteria {
            name_pattern: Some(re),
            ..Default::default()
        }
        .is_empty());
    }

    #[test]
    fn every_condition_narrows() {
        let mut r = record("noel", 1, 1_000, Status::Pending);
        r.flags = vec!["fast_fill".into()];
        let all = Criteria::default();
        assert!(all.matches(&r));
        let c = |f: fn(&mut Criteria)| {
            let mut c = Criteria::default();
            f(&mut c);
            c.matches(&r)
        };
        assert!(c(|c| c.petition = Some("noel".into())));
        assert!(!c(|c| c.petition = Some("other".into())));
        assert!(c(|c| c.from = Some(1_000)));
        assert!(!c(|c| c.from = Some(1_001)));
        assert!(c(|c| c.to = Some(1_001)));
        assert!(!c(|c| c.to = Some(1_000)), "the window's end is exclusive");
        assert!(c(|c| c.prefix_hashes = vec!["zz".into(), "p-a".into()]));
        assert!(!c(|c| c.prefix_hashes = vec!["zz".into()]));
        assert!(c(|c| c.email_domain = Some("EXAMPLE.org".into())));
        assert!(!c(|c| c.email_domain = Some("example.net".into())));
        assert!(c(|c| c.email_hash = Some("e0001".into())));
        assert!(!c(|c| c.email_hash = Some("e0002".into())));
        assert!(c(|c| c.flags = vec!["honeypot".into(), "fast_fill".into()]));
        assert!(!c(|c| c.flags = vec!["honeypot".into()]));
        assert!(c(|c| c.statuses = vec![Status::Held, Status::Pending]));
        assert!(!c(|c| c.statuses = vec![Status::Confirmed]));
        assert!(!c(|c| c.over_budget_only = true), "not held at all");
        // The name pattern is not the store's business.
        assert!(c(
            |c| c.name_pattern = Some(regex::Regex::new("nothing").unwrap())
        ));
    }

    #[test]
    fn over_budget_only_leaves_holds_for_review() {
        let c = Criteria {
            over_budget_only: true,
            ..Default::default()
        };
        let mut r = record("noel", 1, 1_000, Status::Held);
        r.hold_reason = Some("protected domain".into());
        assert!(!c.matches(&r), "held for review");
        r.hold_reason = Some(format!("{OVER_BUDGET_PREFIX}ip24:abc:noel"));
        assert!(c.matches(&r));
        assert_eq!(c.describe(), "hold=over_budget");
    }

    #[test]
    fn name_pattern_after_decryption() {
        let c = Criteria {
            name_pattern: Some(regex::Regex::new("(?i)^jean").unwrap()),
            ..Default::default()
        };
        assert!(c.needs_decryption());
        assert!(c.matches_name("JEAN Valjean") && !c.matches_name("Marie"));
        assert!(Criteria::default().matches_name("anything"));
    }

    #[test]
    fn description_is_pseudonymous() {
        let c = Criteria {
            petition: Some("noel".into()),
            from: Some(10),
            prefix_hashes: (0..5)
                .map(|i| format!("{i}abcdefabcdefabcdefabcdef"))
                .collect(),
            email_hash: Some("0123456789abcdef0123".into()),
            statuses: vec![Status::Pending, Status::Held],
            ..Default::default()
        };
        let d = c.describe();
        assert_eq!(
            d,
            "petition=noel from=10 prefix=0abcdefabcde,1abcdefabcde,2abcdefabcde,+2 email=0123456789ab status=pending,held"
        );
    }
}
