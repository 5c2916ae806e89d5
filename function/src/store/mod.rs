//! Where signatures live. One trait, one conformance suite (`tests/`), several implementations,
//! each in its own file: SQLite (embedded default) and DynamoDB (production).
//!
//! The store never sees a plaintext e-mail or IP: the sign path hands it keyed hashes, the
//! network prefix (/24, /48) and an age-encrypted blob of the personal data, so a leaked table
//! reveals neither an address nor a mailbox.

pub mod admin;
pub mod report;

use async_trait::async_trait;
pub use cahier_tlog::{Pending as LogPending, ReceiptSecret};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Lifecycle of one signature. Only `Confirmed` is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for the signer to confirm by e-mail.
    Pending,
    /// Confirmed by its address owner and counted.
    Confirmed,
    /// Over a budget, protected domain or flagged: stored, never counted until approved.
    Held,
    /// A held signature its owner confirmed; counted only once an organizer approves it.
    ConfirmedHeld,
    /// Removed by an organizer (fraud); kept as a pseudonymous record, not counted.
    Invalidated,
    /// Personal data erased at the signer's request; not counted.
    Erased,
}

impl Status {
    /// What a confirmation moves this status to, or the answer when it moves nothing.
    pub fn on_confirm(self) -> Result<Status, ConfirmOutcome> {
        match self {
            Status::Pending => Ok(Status::Confirmed),
            Status::Held => Ok(Status::ConfirmedHeld),
            Status::Confirmed | Status::ConfirmedHeld => {
                Err(ConfirmOutcome::AlreadyConfirmed { status: self })
            }
            Status::Invalidated | Status::Erased => Err(ConfirmOutcome::NotFound),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Confirmed => "confirmed",
            Status::Held => "held",
            Status::ConfirmedHeld => "confirmed_held",
            Status::Invalidated => "invalidated",
            Status::Erased => "erased",
        }
    }
}

/// A windowed budget checked inside the sign path's one conditional write: at most `limit`
/// signatures for `key` in the fixed window of `window_secs` containing `now`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    /// Already keyed/pseudonymous, e.g. `ip24:<hmac>:<petition>` or `domain:example.org:<petition>`.
    pub key: String,
    pub limit: u32,
    pub window_secs: u32,
    /// What exceeding it does to the signature.
    #[serde(default)]
    pub over: OverBudget,
}

impl Budget {
    /// A budget that holds the signature when exceeded (the default).
    pub fn new(key: impl Into<String>, limit: u32, window_secs: u32) -> Budget {
        Budget {
            key: key.into(),
            limit,
            window_secs,
            over: OverBudget::Hold,
        }
    }

    pub fn with(mut self, over: OverBudget) -> Budget {
        self.over = over;
        self
    }
}

/// What an exhausted budget does in `Store::sign`. Rules every store follows:
/// - an exhausted `Hold` or `Defer` budget (the first one in the list's order) stops the
///   write from taking any budget at all, so traffic already over its own budget drains no
///   one else's;
/// - an exhausted `Alarm` budget is skipped: the others are still taken, and it is reported
///   only when nothing stopped the write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverBudget {
    /// Stored as `Held`: counted only once an organizer releases it (what one owner of a
    /// domain can confirm).
    #[default]
    Hold,
    /// Stored `Pending` (confirmation will count it) but its mail waits in the network's
    /// queue until confirmations from that network release it (what a mailbox-less
    /// attacker can make the function mail).
    Defer,
    /// Changes nothing for the signature: a surge alarm (petition-wide, large providers),
    /// which an attacker must not be able to drain for everyone.
    Alarm,
}

/// Which budget, if any, an exhausted one is, by the rules of [`OverBudget`]: the first
/// exhausted `Hold`/`Defer` budget (nothing is taken then), else the first exhausted `Alarm`
/// one. `exhausted(i)` tells whether budget `i` has no room left.
pub fn first_over(budgets: &[Budget], exhausted: impl Fn(usize) -> bool) -> Option<usize> {
    let over: Vec<usize> = (0..budgets.len()).filter(|&i| exhausted(i)).collect();
    over.iter()
        .copied()
        .find(|&i| budgets[i].over != OverBudget::Alarm)
        .or_else(|| over.first().copied())
}

/// The status a new signature is stored in, given its own hold reason and the budget that
/// [`first_over`] found.
pub fn status_for(hold_reason: Option<&str>, over: Option<&Budget>) -> (Status, Option<String>) {
    if let Some(reason) = hold_reason {
        return (Status::Held, Some(reason.to_string()));
    }
    match over {
        Some(b) if b.over == OverBudget::Hold => {
            (Status::Held, Some(format!("over budget {}", b.key)))
        }
        _ => (Status::Pending, None),
    }
}

/// Everything the sign path knows about a new signature, already pseudonymised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewSignature {
    pub petition: String,
    /// Hex HMAC-SHA-256(pepper, canonical e-mail): the dedup key.
    pub email_hash: String,
    /// Canonical e-mail domain (not personal on its own; used for budgets and trending).
    pub email_domain: String,
    /// Hex keyed hash of the client address, and of its prefix (/24 IPv4, /48 IPv6).
    pub ip_hash: String,
    pub prefix_hash: String,
    /// The same prefix in clear (`203.0.113.0/24`, `2001:db8:1::/48`), as analytics tools
    /// anonymise addresses: the organizer can name an attacking network. Empty without an
    /// address. Erased and purged with the personal data. See [`crate::network::network_of`].
    #[serde(default)]
    pub network: String,
    /// Hex keyed hash of the normalised name, to spot identical names in a burst.
    pub name_hash: String,
    /// Name, e-mail and declared fields, encrypted to the collective's age public key.
    pub sealed: Vec<u8>,
    pub lang: String,
    pub public: bool,
    pub newsletter: bool,
    /// Held from the start (protected domain, heuristics), with the reason.
    pub hold_reason: Option<String>,
    /// Heuristic flags (honeypot, fast fill, disposable domain…): recorded, not blocking.
    pub flags: Vec<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds after which an unconfirmed signature is gone.
    pub expires_at: i64,
    /// Budgets to take in the same write; see [`OverBudget`] for what an exhausted one does.
    pub budgets: Vec<Budget>,
    /// The confirmation mail, sealed for the function only ([`crate::deferred`]), queued in
    /// the same write when a `Defer` budget is exhausted; `None`: nothing to queue.
    #[serde(default)]
    pub deferred_mail: Option<Vec<u8>>,
    /// What the public list of signers shows of this signer, sealed for the function only
    /// ([`crate::signers`]); `None` unless they opted in on a petition that has the list.
    /// Listed only while the signature counts; erased with the personal data.
    #[serde(default)]
    pub listing: Option<Vec<u8>>,
    /// Where the signer is, no finer than a country or a French département (`FR-75`, `BE`,
    /// see [`crate::geography::region_of`]), in clear: the store counts it in that region
    /// exactly while the signature counts. `None` when the petition does not publish its
    /// geography or the form says nowhere usable. Cleared on erasure.
    #[serde(default)]
    pub region: Option<String>,
}

/// One entry of a petition's public list, still sealed ([`crate::signers`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub sealed: Vec<u8>,
    /// Unix seconds it was counted (the list's order, newest first).
    pub at: i64,
}

/// A confirmation mail waiting for its network to earn room (see [`OverBudget::Defer`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMail {
    pub petition: String,
    pub email_hash: String,
    /// `NewSignature::deferred_mail`, as written.
    pub sealed: Vec<u8>,
}

/// What the one conditional write did. The client sees the same 202 whatever it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignOutcome {
    /// A new signature, with the status it was stored in (`Pending` or `Held`) and the
    /// exhausted budget [`first_over`] found: `Pending` with a `Defer` budget means its mail
    /// was queued.
    Created {
        status: Status,
        over_budget: Option<String>,
    },
    /// This e-mail already signed this petition; nothing new was written.
    Duplicate { status: Status },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmOutcome {
    /// Pending → Confirmed (counted now) or Held → ConfirmedHeld (not counted).
    Confirmed { status: Status },
    /// Already confirmed: idempotent, nothing changed.
    AlreadyConfirmed { status: Status },
    /// Gone: expired, erased, invalidated or never existed.
    NotFound,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EraseOutcome {
    Erased { was_counted: bool },
    NotFound,
}

/// A signature as the organizer tools see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignatureRecord {
    pub petition: String,
    pub email_hash: String,
    pub email_domain: String,
    pub ip_hash: String,
    pub prefix_hash: String,
    /// The stored prefix in clear (see [`NewSignature::network`]); empty once erased or purged,
    /// and for records written before it was kept.
    #[serde(default)]
    pub network: String,
    pub name_hash: String,
    /// Empty once erased or purged.
    pub sealed: Vec<u8>,
    pub lang: String,
    pub public: bool,
    pub newsletter: bool,
    pub status: Status,
    pub hold_reason: Option<String>,
    pub flags: Vec<String>,
    pub created_at: i64,
    pub confirmed_at: Option<i64>,
    pub expires_at: Option<i64>,
}

/// The confirmed count of one petition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    pub count: u64,
    /// Unix seconds of the last change, 0 if none.
    pub updated_at: i64,
    /// The part of `count` from paper batches (`cahier admin offline`, front matter).
    #[serde(default)]
    pub offline: u64,
    /// Unix seconds of the last signer's signature counted (a confirmation, or a release after
    /// review), 0 if none: "last signed 3 minutes ago".
    #[serde(default)]
    pub last_confirmed_at: i64,
}

/// What moves a count: a signer's signature (counted or uncounted; counting it is a
/// confirmation, the time the page shows as "last signed") or a paper batch (kept apart so
/// the page can say how much of the count is on paper).
#[derive(Debug, Clone, Copy)]
pub(crate) enum CountDelta {
    Signer(i64),
    Offline(i64),
}

/// One state change, kept for the organizer's audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub petition: String,
    pub email_hash: String,
    /// created, mailed, confirmed, held, invalidated, approved, rejected, erased, purged
    pub event: String,
    pub at: i64,
    /// Free-form, pseudonymous detail (budget key, criteria of a bulk invalidation…).
    pub detail: String,
}

/// What [`Store::confirm_and_release`] did.
#[derive(Debug)]
pub struct Confirmation {
    pub outcome: ConfirmOutcome,
    /// The receipt secret, when the signature started to count on a store that logs.
    pub receipt: Option<ReceiptSecret>,
    /// The mails queued behind the signature's network that this confirmation releases, each
    /// handed out once.
    pub released: Vec<QueuedMail>,
}

#[async_trait]
pub trait Store: Send + Sync {
    /// Creates the tables / indexes if needed. Idempotent.
    async fn init(&self) -> anyhow::Result<()>;

    /// The sign path's one conditional write: dedup on `(petition, email_hash)` and the budgets,
    /// atomically. Records a `created` (or `held`) audit event.
    async fn sign(&self, sig: &NewSignature) -> anyhow::Result<SignOutcome>;

    /// Takes one unit of a budget outside the sign write (per-domain mail budget, daily
    /// "already signed" reminder). Returns false if exhausted.
    async fn take_budget(&self, budget: &Budget, now: i64) -> anyhow::Result<bool>;

    /// Confirms a signature; state change and count change in one transaction. Idempotent.
    /// A first confirmation also gives back, in the window it was taken in, one unit of every
    /// `Defer` budget the signature took: a network's budget bounds its unconfirmed mails, so
    /// people behind one address earn its room back by confirming.
    async fn confirm(
        &self,
        petition: &str,
        email_hash: &str,
        now: i64,
    ) -> anyhow::Result<ConfirmOutcome>;

    /// [`Store::confirm`], also giving back the receipt secret drawn when the signature started
    /// to count (`Some` only for `Confirmed { status: Confirmed }` on a store that records the
    /// transparency log, see `docs/transparency-log.md`). The store keeps only its commitment;
    /// the secret is for the signer's receipt. The default (test doubles) records no log event
    /// and gives no secret.
    async fn confirm_with_receipt(
        &self,
        petition: &str,
        email_hash: &str,
        now: i64,
    ) -> anyhow::Result<(ConfirmOutcome, Option<ReceiptSecret>)> {
        Ok((self.confirm(petition, email_hash, now).await?, None))
    }

    /// [`Store::confirm_with_receipt`], then, when the signature starts to count, the mails
    /// queued behind its network ([`Store::release_queued`] on its `prefix_hash`, up to
    /// `release`): a confirmation proves a mailbox behind that network. What comes after the
    /// confirmation never fails it (a failure is logged and releases nothing). The default
    /// makes the three calls; SQLite does it all in the confirmation's one transaction.
    async fn confirm_and_release(
        &self,
        petition: &str,
        email_hash: &str,
        now: i64,
        release: usize,
    ) -> anyhow::Result<Confirmation> {
        let (outcome, receipt) = self.confirm_with_receipt(petition, email_hash, now).await?;
        let mut done = Confirmation {
            outcome,
            receipt,
            released: Vec::new(),
        };
        if outcome
            != (ConfirmOutcome::Confirmed {
                status: Status::Confirmed,
            })
        {
            return Ok(done);
        }
        let queue = match self.get(petition, email_hash).await {
            Ok(Some(rec)) if !rec.prefix_hash.is_empty() => rec.prefix_hash,
            Ok(_) => return Ok(done),
            Err(e) => {
                tracing::warn!(error = format!("{e:#}"), "store.get after a confirm failed");
                return Ok(done);
            }
        };
        match self.release_queued(petition, &queue, release, now).await {
            Ok(released) => done.released = released,
            Err(e) => tracing::error!(error = format!("{e:#}"), "store.release_queued failed"),
        }
        Ok(done)
    }

    /// Whether this store records transparency-log events with its count changes (SQLite and
    /// DynamoDB do; test doubles do not).
    fn records_log(&self) -> bool {
        false
    }

    /// The petitions that have log events, when the store can list them cheaply (SQLite);
    /// the others (DynamoDB, where that would be a scan) list none, and the sequencer goes
    /// through the manifest's petitions.
    async fn log_petitions(&self) -> anyhow::Result<Vec<String>> {
        Ok(Vec::new())
    }

    /// Up to `limit` log events of `petition` with `seq >= from`, in `seq` order, and the number
    /// of events the petition has in all (the default has none).
    async fn log_events(
        &self,
        petition: &str,
        from: u64,
        limit: usize,
    ) -> anyhow::Result<(Vec<LogPending>, u64)> {
        let _ = (petition, from, limit);
        Ok((Vec::new(), 0))
    }

    /// Deletes the personal data (sealed blob, hashes of IP/name) and corrects the count.
    async fn erase(
        &self,
        petition: &str,
        email_hash: &str,
        now: i64,
    ) -> anyhow::Result<EraseOutcome>;

    /// The confirmed count, from a counter, not a scan.
    async fn count(&self, petition: &str) -> anyhow::Result<Count>;

    /// Up to `limit` entries of the public list of `petition`, newest first, after skipping
    /// `offset`: the signatures that count and whose signer opted in.
    async fn listed(&self, petition: &str, offset: u32, limit: u32) -> anyhow::Result<Vec<Listed>>;

    /// Takes `email_hash` off the public list of `petition` for good (the organizer's
    /// `cahier admin signers hide`); true if it was on it.
    async fn unlist(&self, petition: &str, email_hash: &str) -> anyhow::Result<bool>;

    /// The counted signatures of `petition` by region (`FR-75`, `BE`…; those with a count of 0
    /// left out), from counters kept in the count's transactions, not a scan. The default, for
    /// stores that keep no regions (test doubles), has none.
    async fn regions(&self, petition: &str) -> anyhow::Result<BTreeMap<String, u64>> {
        let _ = petition;
        Ok(BTreeMap::new())
    }

    /// Adds an address to the mail suppression list ([`suppression`]); true if it was not on
    /// it yet (the first reason stays).
    async fn suppress(&self, entry: &Suppression) -> anyhow::Result<bool>;

    /// The address's entry on the suppression list, if any.
    async fn suppression(&self, email_hash: &str) -> anyhow::Result<Option<Suppression>>;

    /// Records `key` of `petition` with `value` unless it is already recorded: `None` when
    /// this call recorded it, else the value recorded first. A conditional write, so that
    /// what must happen once (a milestone's notification, [`crate::milestones`]) happens once
    /// whatever the number of instances racing for it.
    async fn mark_once(
        &self,
        petition: &str,
        key: &str,
        value: i64,
        at: i64,
    ) -> anyhow::Result<Option<i64>>;

    /// Takes up to `n` queued mails of `queue` (a network's `prefix_hash`) on `petition`,
    /// oldest first, whose signature is still pending and unexpired; each is handed out once.
    /// The default, for stores that never queue (test doubles), hands out nothing.
    async fn release_queued(
        &self,
        petition: &str,
        queue: &str,
        n: usize,
        now: i64,
    ) -> anyhow::Result<Vec<QueuedMail>> {
        let _ = (petition, queue, n, now);
        Ok(Vec::new())
    }

    /// Appends an audit event (the store also records its own on every state change).
    async fn audit(&self, event: &AuditEvent) -> anyhow::Result<()>;

    /// One signature, if it exists and has not expired.
    async fn get(
        &self,
        petition: &str,
        email_hash: &str,
    ) -> anyhow::Result<Option<SignatureRecord>>;

    /// Deletes expired pending/held signatures; returns how many. The default does nothing, for
    /// stores whose database expires items itself (DynamoDB TTL).
    async fn purge_expired(&self, now: i64) -> anyhow::Result<u64> {
        let _ = now;
        Ok(0)
    }
}

#[cfg(feature = "dynamodb")]
pub mod dynamo;
/// `AdminStore` for `DynamoStore` (the organizer's scans, bulk changes, recount, purge).
#[cfg(feature = "dynamodb")]
mod dynamo_admin;
pub mod dynamo_keys;
/// The public list of signers on DynamoDB (a sparse index).
#[cfg(feature = "dynamodb")]
mod dynamo_listed;
/// The transparency log's events on DynamoDB (queued by each count change, numbered by the
/// sequencer).
#[cfg(feature = "dynamodb")]
mod dynamo_log;
#[cfg(feature = "dynamodb")]
mod dynamo_offline;
/// The counters by region on DynamoDB (sharded like the count).
#[cfg(feature = "dynamodb")]
mod dynamo_regions;
/// The mail suppression list on DynamoDB.
#[cfg(feature = "dynamodb")]
mod dynamo_suppression;
pub mod sqlite;
pub mod suppression;
pub use suppression::{Suppression, SuppressionReason};

/// Opens a store from its URL-like setting: `sqlite:PATH` or `dynamodb:TABLE[?endpoint=..&region=..]`.
pub async fn open(url: &str) -> anyhow::Result<std::sync::Arc<dyn Store>> {
    use anyhow::Context;
    let (scheme, rest) = url.split_once(':').with_context(|| {
        format!("invalid store setting {url:?}: expected sqlite:PATH or dynamodb:TABLE")
    })?;
    let store: std::sync::Arc<dyn Store> = match scheme {
        "sqlite" => {
            anyhow::ensure!(
                !rest.is_empty(),
                "invalid store setting {url:?}: sqlite:PATH needs a path"
            );
            std::sync::Arc::new(sqlite::SqliteStore::open(std::path::Path::new(rest))?)
        }
        #[cfg(feature = "dynamodb")]
        "dynamodb" => std::sync::Arc::new(dynamo::DynamoStore::from_url(rest).await?),
        #[cfg(not(feature = "dynamodb"))]
        "dynamodb" => {
            anyhow::bail!("store {url:?}: DynamoDB support is not compiled into this build")
        }
        other => anyhow::bail!(
            "unknown store {other:?} in {url:?}: expected sqlite:PATH or dynamodb:TABLE"
        ),
    };
    store
        .init()
        .await
        .with_context(|| format!("while initialising the store {url}"))?;
    Ok(store)
}
