//! Key building for the DynamoDB single-table design, kept pure (no SDK types) so that the
//! hot-key simulation (`function/tests/dynamo_hotkeys.rs`) runs exactly the keys the store
//! writes. See `docs/dynamodb.md` for the schema and the write-per-key arithmetic.
//!
//! Every item has a partition key `pk` and a sort key `sk`. No item is written by all the
//! signatures of a petition: counters and budgets are split into shards, and each signature
//! picks its shard from its own e-mail hash (uniform, since that hash is an HMAC).

use crate::store::Budget;
use sha2::{Digest, Sha256};

/// Shards of a petition's confirmed count. A viral petition confirming 10,000 signatures/s puts
/// 10,000 / 64 ≈ 156 writes/s on each (312 WCU/s as transactional writes), far under the
/// 1,000 WCU/s a partition accepts. Reading the count is one BatchGetItem of these 64 items.
pub const COUNT_SHARDS: u32 = 64;

/// Most shards a budget counter is split into.
pub const MAX_BUDGET_SHARDS: u32 = 64;

/// Fewest budget units a shard holds: small budgets (per IP, per prefix) stay in one exact
/// counter; only budgets large enough to see heavy traffic are spread.
pub const MIN_UNITS_PER_SHARD: u32 = 100;

/// Sort key of a signature item.
pub const SIG_SK: &str = "sig";
/// Sort key of a count shard.
pub const COUNT_SK: &str = "count";
/// Sort key of a budget counter.
pub const BUDGET_SK: &str = "budget";

/// Budget counters outlive their window by this much before TTL removes them.
pub const BUDGET_TTL_GRACE_SECS: i64 = 86_400;

/// Partition key of one signature: `sig#<petition>#<email_hash>`. Its audit events live in the
/// same item collection (same `pk`, sort key `audit#...`).
pub fn signature_pk(petition: &str, email_hash: &str) -> String {
    format!("sig#{petition}#{email_hash}")
}

/// Partition key of a network's queue of mails on one petition (`queue` is the network's
/// `prefix_hash`); its items sort by [`queue_sk`], oldest first.
pub fn queue_pk(petition: &str, queue: &str) -> String {
    format!("queue#{petition}#{queue}")
}

/// Sort key of one queued mail.
pub fn queue_sk(created_at: i64, email_hash: &str) -> String {
    format!("{created_at:012}#{email_hash}")
}

/// Sort key of one audit event: time first so that a Query returns the trail in order; the
/// `nonce` keeps two events of the same second and kind apart.
pub fn audit_sk(at: i64, event: &str, nonce: u64) -> String {
    format!("audit#{at:012}#{event}#{nonce:016x}")
}

/// A well-spread number derived from the signature's e-mail hash (hex HMAC), or from any string.
pub fn spread_of(email_hash: &str) -> u64 {
    let digest = Sha256::digest(email_hash.as_bytes());
    u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// The count shard a signature's confirm (and erase) writes to.
pub fn count_shard(email_hash: &str) -> u32 {
    (spread_of(email_hash) % COUNT_SHARDS as u64) as u32
}

/// Partition key of count shard `shard` of `petition`.
pub fn count_pk(petition: &str, shard: u32) -> String {
    format!("count#{petition}#{shard:02}")
}

/// All count shard keys of a petition, for the summing read.
pub fn count_pks(petition: &str) -> Vec<String> {
    (0..COUNT_SHARDS).map(|s| count_pk(petition, s)).collect()
}

/// Start (Unix seconds) of the fixed window of `window_secs` containing `now`.
pub fn window_start(now: i64, window_secs: u32) -> i64 {
    let w = i64::from(window_secs.max(1));
    now.div_euclid(w) * w
}

/// How many shards a budget of `limit` units is split into.
pub fn budget_shards(limit: u32) -> u32 {
    (limit / MIN_UNITS_PER_SHARD).clamp(1, MAX_BUDGET_SHARDS)
}

/// Units shard `shard` may hold: the limit divided exactly (the first `limit % shards` shards
/// take one more), so the shards add up to the limit.
pub fn budget_shard_limit(limit: u32, shard: u32) -> u32 {
    let shards = budget_shards(limit);
    limit / shards + u32::from(shard < limit % shards)
}

/// One budget counter a write takes a unit from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetSlot {
    /// `budget#<key>#<window start>#<shard>`: a new item per window, so windows reset by
    /// themselves and old ones are removed by TTL.
    pub pk: String,
    /// Units this shard may hold in this window.
    pub limit: u32,
    /// TTL of the counter item (Unix seconds).
    pub ttl: i64,
}

/// The counter `budget` takes its unit from at `now`, the shard chosen by `spread`
/// ([`spread_of`] the e-mail hash in the sign path, random in `take_budget`).
pub fn budget_slot(budget: &Budget, now: i64, spread: u64) -> BudgetSlot {
    let start = window_start(now, budget.window_secs);
    let shard = (spread % u64::from(budget_shards(budget.limit))) as u32;
    BudgetSlot {
        pk: format!("budget#{}#{start}#{shard:02}", budget.key),
        limit: budget_shard_limit(budget.limit, shard),
        ttl: start + i64::from(budget.window_secs.max(1)) + BUDGET_TTL_GRACE_SECS,
    }
}

/// Partition keys written by the sign path's one transaction for a new signature: the
/// signature (and its audit events, same partition) and one shard of each budget.
pub fn sign_write_keys(
    petition: &str,
    email_hash: &str,
    budgets: &[Budget],
    now: i64,
) -> Vec<String> {
    let spread = spread_of(email_hash);
    let mut keys = vec![signature_pk(petition, email_hash)];
    keys.extend(budgets.iter().map(|b| budget_slot(b, now, spread).pk));
    keys
}

/// Partition key of one shard of a petition's queue of log events not yet numbered
/// (`logq#<petition>#<shard>`, the signature's count shard): a count change writes its event
/// there in its own transaction, spread as the count is, and the sequencer alone numbers the
/// events into [`log_pk`] (see `dynamo_log.rs`).
pub fn log_queue_pk(petition: &str, shard: u32) -> String {
    format!("logq#{petition}#{shard:02}")
}

/// Sort key of a queued log event: the hour of its entry, then the signature and its event
/// number, so that a signature's events (always in one shard) sort in the order they happened.
pub fn log_queue_sk(hour: i64, email_hash: &str, n: u64) -> String {
    format!("{hour:012}#{email_hash}#{n:06}")
}

/// Partition key of a petition's numbered log events and of its head (`log#<petition>`),
/// written by the sequencer only.
pub fn log_pk(petition: &str) -> String {
    format!("log#{petition}")
}

/// Sort key of the log's head: how many events are numbered.
pub const LOG_HEAD_SK: &str = "head";

/// Sort key of the log's signed checkpoint, when the log is served from the site bucket: the
/// item, swapped only over the note it held, is what keeps two sequencers from signing a fork.
pub const LOG_CHECKPOINT_SK: &str = "checkpoint";

/// Partition key of an address on the mail suppression list (sort key [`SUPPRESSION_SK`]): one
/// item per address, written once, read once per update mailed.
pub fn suppression_pk(email_hash: &str) -> String {
    format!("suppress#{email_hash}")
}

/// Sort key of a suppression item.
pub const SUPPRESSION_SK: &str = "suppress";

/// Partition key of a petition's once-only marks (sort key: the mark's name, such as
/// `milestone-50`): a few items per petition, each written once.
pub fn mark_pk(petition: &str) -> String {
    format!("mark#{petition}")
}

/// Partition key of a petition's offline batches (sort key: the batch's id).
pub fn offline_pk(petition: &str) -> String {
    format!("offline#{petition}")
}

/// Sort key of numbered event `seq`.
pub fn log_entry_sk(seq: u64) -> String {
    format!("e#{seq:020}")
}

/// Partition key of shard `shard` of a petition's counters by region (sort key
/// [`REGION_SK`]; one number attribute per region code). A signature's region moves in the
/// shard of its count ([`count_shard`]), so these items take exactly the count shards' writes.
pub fn region_pk(petition: &str, shard: u32) -> String {
    format!("region#{petition}#{shard:02}")
}

/// Sort key of a region shard.
pub const REGION_SK: &str = "region";

/// Partition keys written by a confirm (or by an erase of a counted signature): the signature,
/// its count shard, the matching shard of the log queue and, for a signature with a region, of
/// the counters by region.
pub fn confirm_write_keys(petition: &str, email_hash: &str) -> Vec<String> {
    let shard = count_shard(email_hash);
    vec![
        signature_pk(petition, email_hash),
        count_pk(petition, shard),
        log_queue_pk(petition, shard),
        region_pk(petition, shard),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_limits_add_up_to_the_limit() {
        for limit in [
            0,
            1,
            2,
            30,
            99,
            100,
            101,
            200,
            6_399,
            6_400,
            50_000,
            500_000,
            u32::MAX,
        ] {
            let shards = budget_shards(limit);
            let total: u64 = (0..shards)
                .map(|s| u64::from(budget_shard_limit(limit, s)))
                .sum();
            assert_eq!(total, u64::from(limit), "limit {limit}");
        }
        assert_eq!(budget_shards(30), 1);
        assert_eq!(budget_shards(500_000), MAX_BUDGET_SHARDS);
    }

    #[test]
    fn windows_are_fixed_and_keyed() {
        let b = Budget {
            key: "ip:ab:p".into(),
            limit: 5,
            window_secs: 3_600,
            over: Default::default(),
        };
        let a = budget_slot(&b, 7_199, 0);
        let c = budget_slot(&b, 7_200, 0);
        assert_eq!(a.pk, "budget#ip:ab:p#3600#00");
        assert_eq!(c.pk, "budget#ip:ab:p#7200#00");
        assert_eq!(a.limit, 5);
        assert_eq!(a.ttl, 7_200 + BUDGET_TTL_GRACE_SECS);
        assert_eq!(window_start(-1, 10), -10);
    }

    #[test]
    fn count_shards_are_spread() {
        let mut seen = vec![0u32; COUNT_SHARDS as usize];
        for i in 0..64_000 {
            seen[count_shard(&format!("{i:064x}")) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| (800..1_200).contains(&n)), "{seen:?}");
    }

    #[test]
    fn a_signatures_log_events_sort_in_order_and_entries_by_number() {
        assert!(log_queue_sk(5, "ab", 1) < log_queue_sk(5, "ab", 2));
        assert!(log_queue_sk(5, "zz", 9) < log_queue_sk(6, "aa", 0));
        assert!(log_entry_sk(9) < log_entry_sk(10));
        assert!(log_entry_sk(u64::MAX) > log_entry_sk(1 << 40));
    }

    #[test]
    fn audit_keys_sort_by_time() {
        assert!(audit_sk(99, "z", 0) < audit_sk(100, "a", 0));
    }
}
