//! `cahier admin`: the organizer's tools, run on the organizer's machine against the store
//! (SQLite or DynamoDB through [`AdminStore`]); never an HTTP surface.
//!
//! Human tables by default, `--json` for scripts. Bulk changes (`invalidate`, `approve`,
//! `reject`, `release`) only count what they would change unless `--yes` is given, refuse an empty
//! condition, work in batches of [`BATCH`] and leave an audit record whose id they print.

mod bulk;
pub mod criteria;
mod export;
mod mail;
mod maintenance;
mod offline;
mod out;
pub mod pepper;
mod reports;
mod signers;
pub mod unseal;

#[cfg(test)]
mod tests;

use cahier_function::store::admin::AdminStore;
use criteria::CriteriaArgs;
use ipnet::IpNet;
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Signatures per store call of a bulk change.
pub const BATCH: usize = 500;

#[derive(Debug, clap::Args)]
pub struct AdminArgs {
    /// Store: `sqlite:PATH` or `dynamodb:TABLE[?endpoint=…&region=…]`.
    #[arg(long, env = "CAHIER_STORE", global = true)]
    pub store: Option<String>,
    /// Print JSON for scripts instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: AdminCommand,
    /// The site's root (`cahier --root`), for what reads the content (`offline sync`).
    #[arg(skip)]
    pub root: std::path::PathBuf,
}

#[derive(Debug, clap::Subcommand)]
pub enum AdminCommand {
    /// Pending, confirmed, held, invalidated per petition, and signatures per hour.
    Stats {
        #[arg(long)]
        petition: Option<String>,
        /// Hours of the per-hour table.
        #[arg(long, default_value_t = 24)]
        hours: u32,
    },
    /// Networks (/24, /48) and e-mail domains with the most signatures per hour.
    Trending {
        #[arg(long)]
        petition: Option<String>,
        /// Look at the last N hours.
        #[arg(long, default_value_t = 24)]
        hours: u32,
        /// Rows per table.
        #[arg(long, default_value_t = 20)]
        top: usize,
        /// Names for networks in the report (records keep their /24 or /48 in clear; older
        /// ones only as a hash, which a label names). Repeatable.
        #[arg(long = "label", value_name = "CIDR")]
        labels: Vec<IpNet>,
    },
    /// Invalidate signatures matching the criteria (fraud); counts corrected.
    Invalidate(BulkArgs),
    /// Approve held signatures: confirmed ones are counted, unconfirmed ones become pending.
    Approve(BulkArgs),
    /// Reject held signatures (they become invalidated).
    Reject(BulkArgs),
    /// Release signatures held over a budget (a crowd behind one network, a busy domain):
    /// confirmed ones are counted now, unconfirmed ones become ordinary pending signatures.
    /// By petition, `--ip-prefix`, `--domain`, time window; holds for review (protected
    /// domains) only with `--include-protected`.
    Release(ReleaseArgs),
    /// Paper signatures: add a batch to a petition's count, withdraw one, list them.
    #[command(subcommand)]
    Offline(offline::OfflineCommand),
    /// The public list of signers: take an entry off it.
    #[command(subcommand)]
    Signers(signers::SignersCommand),
    /// Recompute counts from the records (confirmed signatures and offline batches) and repair
    /// the counters.
    Recount {
        #[arg(long)]
        petition: Option<String>,
    },
    /// Export signatures to CSV, decrypted locally with the organizer's age identity.
    Export(ExportArgs),
    /// Send an update to a petition's signers (or its newsletter subscribers) through the
    /// mailer, in each signer's language, with one-click unsubscribe; resumable after a crash
    /// without mailing anyone twice.
    Mail(mail::MailArgs),
    /// Erase one signer's personal data (all petitions, or one).
    Erase {
        #[arg(long)]
        email: String,
        #[arg(long)]
        petition: Option<String>,
    },
    /// Delete personal data older than the retention period (records and counts stay).
    Purge {
        /// Personal data of signatures created more than this many days ago.
        #[arg(long)]
        older_than_days: u32,
        /// Purge; without it, only count.
        #[arg(long)]
        yes: bool,
    },
    /// The audit trail.
    Audit {
        #[arg(long)]
        petition: Option<String>,
        /// Since (same forms as `--from`); default: the last 7 days.
        #[arg(long, allow_hyphen_values = true)]
        since: Option<String>,
    },
}

#[derive(Debug, Clone, Default, clap::Args)]
pub struct BulkArgs {
    #[command(flatten)]
    pub criteria: CriteriaArgs,
    /// Only count (the default without `--yes`).
    #[arg(long, conflicts_with = "yes")]
    pub dry_run: bool,
    /// Apply the change.
    #[arg(long)]
    pub yes: bool,
    /// With `--yes`: apply only if exactly this many signatures match (the dry run's count).
    #[arg(long, value_name = "N")]
    pub expect: Option<u64>,
    /// age identity file, needed by `--name-pattern`.
    #[arg(long, value_name = "PATH")]
    pub identity: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, clap::Args)]
pub struct ReleaseArgs {
    #[command(flatten)]
    pub bulk: BulkArgs,
    /// Also release signatures held for review (protected domains), not only over a budget.
    #[arg(long)]
    pub include_protected: bool,
}

#[derive(Debug, Clone, Default, clap::Args)]
pub struct ExportArgs {
    /// The organizer's age identity file (`age-keygen` output).
    #[arg(long, value_name = "PATH")]
    pub identity: PathBuf,
    #[arg(long)]
    pub petition: Option<String>,
    /// Only confirmed signers who opted in to the public list: name only.
    #[arg(long)]
    pub public_only: bool,
    /// Statuses to export (default: confirmed). Repeatable.
    #[arg(long = "status", value_enum)]
    pub statuses: Vec<criteria::StatusArg>,
    /// Write to this file (created with mode 0600) instead of standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

/// Canonicalises a typed e-mail address, or says why it is not one.
pub type CanonicalEmail = Box<dyn Fn(&str) -> anyhow::Result<String> + Send + Sync>;

/// The keyed functions of the sign path, so that the organizer's inputs (an e-mail, a CIDR)
/// hash exactly as the stored records. Built by the caller from the pepper.
pub struct AdminKeys {
    /// Canonical form of a typed e-mail (case, gmail dots, `+tags`), as the sign path.
    pub canonical_email: CanonicalEmail,
    /// Keyed hash of a canonical e-mail: `SignatureRecord::email_hash`.
    pub email_hash: Box<dyn Fn(&str) -> String + Send + Sync>,
    /// Keyed hash of an address's stored prefix (/24, /48): `SignatureRecord::prefix_hash`.
    pub prefix_hash: Box<dyn Fn(IpAddr) -> String + Send + Sync>,
    /// Signs the unsubscribe links of updates, as the function checks them
    /// ([`cahier_function::unsubscribe::token_key`]).
    pub unsubscribe: Option<cahier_function::token::TokenKey>,
}

/// Runs one admin command, printing to standard output.
pub async fn run(
    args: AdminArgs,
    store: Arc<dyn AdminStore>,
    keys: AdminKeys,
) -> anyhow::Result<ExitCode> {
    let mut stdout = std::io::stdout();
    let code = run_with(args, store.as_ref(), &keys, now(), &mut stdout).await?;
    stdout.flush()?;
    Ok(code)
}

/// [`run`] with the clock and the output given (tests, embedding).
pub async fn run_with(
    args: AdminArgs,
    store: &dyn AdminStore,
    keys: &AdminKeys,
    now: i64,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<ExitCode> {
    let mut ctx = Ctx {
        store,
        keys,
        now,
        json: args.json,
        out,
        root: args.root.clone(),
    };
    match args.command {
        AdminCommand::Stats { petition, hours } => reports::stats(&mut ctx, petition, hours).await,
        AdminCommand::Trending {
            petition,
            hours,
            top,
            labels,
        } => reports::trending(&mut ctx, petition, hours, top, &labels).await,
        AdminCommand::Invalidate(a) => bulk::run(&mut ctx, bulk::Action::Invalidate, a).await,
        AdminCommand::Approve(a) => bulk::run(&mut ctx, bulk::Action::Approve, a).await,
        AdminCommand::Reject(a) => bulk::run(&mut ctx, bulk::Action::Reject, a).await,
        AdminCommand::Release(a) => {
            let action = bulk::Action::Release {
                include_protected: a.include_protected,
            };
            bulk::run(&mut ctx, action, a.bulk).await
        }
        AdminCommand::Offline(c) => offline::run(&mut ctx, c).await,
        AdminCommand::Signers(c) => signers::run(&mut ctx, c).await,
        AdminCommand::Recount { petition } => maintenance::recount(&mut ctx, petition).await,
        AdminCommand::Export(a) => export::run(&mut ctx, a).await,
        AdminCommand::Mail(a) => mail::run(&mut ctx, a).await,
        AdminCommand::Erase { email, petition } => {
            maintenance::erase(&mut ctx, &email, petition).await
        }
        AdminCommand::Purge {
            older_than_days,
            yes,
        } => maintenance::purge(&mut ctx, older_than_days, yes).await,
        AdminCommand::Audit { petition, since } => {
            maintenance::audit(&mut ctx, petition, since).await
        }
    }
}

/// What every command needs.
pub(crate) struct Ctx<'a> {
    pub store: &'a dyn AdminStore,
    pub keys: &'a AdminKeys,
    pub now: i64,
    pub json: bool,
    pub out: &'a mut (dyn Write + Send),
    /// The site's root; empty: the current directory.
    pub root: std::path::PathBuf,
}

impl Ctx<'_> {
    /// Prints `value` as pretty JSON.
    pub fn print_json(&mut self, value: &serde_json::Value) -> anyhow::Result<()> {
        serde_json::to_writer_pretty(&mut *self.out, value)?;
        writeln!(self.out)?;
        Ok(())
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
