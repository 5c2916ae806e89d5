//! Reports over scanned records, the same for every store: `cahier admin stats` and `trending`.
//! Both are built incrementally ([`Stats::add`], [`Trending::add`]) so that a scan never has to
//! hold every record in memory.

use super::{SignatureRecord, Status};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

const HOUR: i64 = 3600;

/// Start of the hour containing `t` (Unix seconds).
pub fn hour_of(t: i64) -> i64 {
    t.div_euclid(HOUR) * HOUR
}

/// Counts of one petition by status, with flagged ones and signatures per hour.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PetitionStats {
    pub petition: String,
    pub pending: u64,
    pub confirmed: u64,
    /// Held for any reason, confirmed or not.
    pub held: u64,
    /// Of `held`, those their owner confirmed (waiting for an organizer's approval).
    pub confirmed_held: u64,
    pub invalidated: u64,
    pub erased: u64,
    pub total: u64,
    /// Records with at least one heuristic flag.
    pub flagged: u64,
    /// New signatures per hour (start of the hour, Unix seconds → count), by `created_at`.
    pub per_hour: BTreeMap<i64, u64>,
}

impl PetitionStats {
    /// The busiest hour: (start, count).
    pub fn peak_hour(&self) -> Option<(i64, u64)> {
        self.per_hour
            .iter()
            .max_by_key(|(h, n)| (**n, -**h))
            .map(|(h, n)| (*h, *n))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// By petition slug.
    pub petitions: BTreeMap<String, PetitionStats>,
}

impl Stats {
    pub fn add(&mut self, r: &SignatureRecord) {
        let p = self
            .petitions
            .entry(r.petition.clone())
            .or_insert_with(|| PetitionStats {
                petition: r.petition.clone(),
                ..Default::default()
            });
        match r.status {
            Status::Pending => p.pending += 1,
            Status::Confirmed => p.confirmed += 1,
            Status::Held => p.held += 1,
            Status::ConfirmedHeld => {
                p.held += 1;
                p.confirmed_held += 1
            }
            Status::Invalidated => p.invalidated += 1,
            Status::Erased => p.erased += 1,
        }
        p.total += 1;
        if !r.flags.is_empty() {
            p.flagged += 1;
        }
        *p.per_hour.entry(hour_of(r.created_at)).or_default() += 1;
    }
}

/// Per-petition counts by status and signatures per hour.
pub fn stats<'a>(records: impl IntoIterator<Item = &'a SignatureRecord>) -> Stats {
    let mut s = Stats::default();
    records.into_iter().for_each(|r| s.add(r));
    s
}

/// One IP prefix (keyed hash) or e-mail domain in the trending report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrendRow {
    /// The prefix hash or the domain.
    pub key: String,
    /// For a prefix: the network in clear (`203.0.113.0/24`), when its records keep it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Signatures since the report's start.
    pub total: u64,
    /// The hour with the most signatures from this key, and that count.
    pub peak_hour: i64,
    pub peak_count: u64,
    /// Of `total`, how many their owner confirmed (counted or held-confirmed): a prefix with
    /// thousands of signatures and no confirmation owns no mailbox.
    pub confirmed: u64,
    /// Of `total`, how many carry a heuristic flag.
    pub flagged: u64,
}

#[derive(Debug, Default)]
struct Tally {
    /// The first clear network seen among the records (all share the prefix hash).
    network: Option<String>,
    per_hour: HashMap<i64, u64>,
    total: u64,
    confirmed: u64,
    flagged: u64,
}

impl Tally {
    fn add(&mut self, r: &SignatureRecord) {
        if self.network.is_none() && !r.network.is_empty() {
            self.network = Some(r.network.clone());
        }
        *self.per_hour.entry(hour_of(r.created_at)).or_default() += 1;
        self.total += 1;
        if matches!(r.status, Status::Confirmed | Status::ConfirmedHeld) || r.confirmed_at.is_some()
        {
            self.confirmed += 1;
        }
        if !r.flags.is_empty() {
            self.flagged += 1;
        }
    }

    fn row(&self, key: &str) -> TrendRow {
        let (peak_hour, peak_count) = self
            .per_hour
            .iter()
            .max_by_key(|(h, n)| (**n, -**h))
            .map(|(h, n)| (*h, *n))
            .unwrap_or((0, 0));
        TrendRow {
            key: key.to_string(),
            network: self.network.clone(),
            total: self.total,
            peak_hour,
            peak_count,
            confirmed: self.confirmed,
            flagged: self.flagged,
        }
    }
}

/// IP prefixes and e-mail domains with the most signatures per hour since a given time, as the
/// hourly reports of the reference petition site.
#[derive(Debug, Default)]
pub struct Trending {
    since: i64,
    prefixes: HashMap<String, Tally>,
    domains: HashMap<String, Tally>,
}

/// The finished report, rows sorted by peak hourly count, then total, then key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrendingReport {
    pub since: i64,
    pub prefixes: Vec<TrendRow>,
    pub domains: Vec<TrendRow>,
}

impl Trending {
    pub fn new(since: i64) -> Self {
        Trending {
            since,
            ..Default::default()
        }
    }

    /// Counts `r` if it was created at or after `since`. Erased and purged records have no
    /// prefix hash any more and count only for their domain.
    pub fn add(&mut self, r: &SignatureRecord) {
        if r.created_at < self.since {
            return;
        }
        if !r.prefix_hash.is_empty() {
            self.prefixes
                .entry(r.prefix_hash.clone())
                .or_default()
                .add(r);
        }
        if !r.email_domain.is_empty() {
            self.domains
                .entry(r.email_domain.to_ascii_lowercase())
                .or_default()
                .add(r);
        }
    }

    /// The `top` rows of each kind.
    pub fn report(&self, top: usize) -> TrendingReport {
        let rows = |m: &HashMap<String, Tally>| {
            let mut v: Vec<TrendRow> = m.iter().map(|(k, t)| t.row(k)).collect();
            v.sort_by(|a, b| {
                b.peak_count
                    .cmp(&a.peak_count)
                    .then(b.total.cmp(&a.total))
                    .then_with(|| a.key.cmp(&b.key))
            });
            v.truncate(top);
            v
        };
        TrendingReport {
            since: self.since,
            prefixes: rows(&self.prefixes),
            domains: rows(&self.domains),
        }
    }
}

/// The trending report over `records` created since `since`, `top` rows of each kind.
pub fn trending<'a>(
    records: impl IntoIterator<Item = &'a SignatureRecord>,
    since: i64,
    top: usize,
) -> TrendingReport {
    let mut t = Trending::new(since);
    records.into_iter().for_each(|r| t.add(r));
    t.report(top)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(
        petition: &str,
        n: u32,
        at: i64,
        status: Status,
        prefix: &str,
        domain: &str,
    ) -> SignatureRecord {
        SignatureRecord {
            petition: petition.into(),
            email_hash: format!("e{n}"),
            email_domain: domain.into(),
            ip_hash: format!("i{n}"),
            prefix_hash: prefix.into(),
            network: String::new(),
            name_hash: String::new(),
            sealed: vec![],
            lang: "fr".into(),
            public: false,
            newsletter: false,
            status,
            hold_reason: None,
            flags: vec![],
            created_at: at,
            confirmed_at: None,
            expires_at: None,
        }
    }

    const T0: i64 = 1_605_600_000; // 2020-11-17T08:00:00Z, a whole hour

    #[test]
    fn stats_count_statuses_per_petition_and_per_hour() {
        let mut records = Vec::new();
        let statuses = [
            Status::Pending,
            Status::Confirmed,
            Status::Confirmed,
            Status::Held,
            Status::ConfirmedHeld,
            Status::Invalidated,
            Status::Erased,
        ];
        for (i, s) in statuses.iter().enumerate() {
            records.push(rec("noel", i as u32, T0 + 60 * i as i64, *s, "p", "d.org"));
        }
        records.push(rec(
            "noel",
            100,
            T0 + HOUR + 5,
            Status::Pending,
            "p",
            "d.org",
        ));
        let mut flagged = rec("autre", 200, T0 - 1, Status::Confirmed, "p", "d.org");
        flagged.flags = vec!["honeypot".into()];
        records.push(flagged);

        let s = stats(&records);
        assert_eq!(s.petitions.len(), 2);
        let noel = &s.petitions["noel"];
        assert_eq!(
            (
                noel.pending,
                noel.confirmed,
                noel.held,
                noel.confirmed_held,
                noel.invalidated,
                noel.erased,
                noel.total
            ),
            (2, 2, 2, 1, 1, 1, 8)
        );
        assert_eq!(noel.flagged, 0);
        assert_eq!(noel.per_hour, BTreeMap::from([(T0, 7), (T0 + HOUR, 1)]));
        assert_eq!(noel.peak_hour(), Some((T0, 7)));
        let autre = &s.petitions["autre"];
        assert_eq!((autre.confirmed, autre.flagged, autre.total), (1, 1, 1));
        assert_eq!(autre.per_hour, BTreeMap::from([(T0 - HOUR, 1)]));
    }

    #[test]
    fn trending_ranks_by_peak_hourly_count() {
        let mut records = Vec::new();
        // An attacker's prefix: 300 signatures in one hour, none confirmed.
        for i in 0..300 {
            let mut r = rec(
                "noel",
                i,
                T0 + i as i64,
                Status::Pending,
                "attacker",
                "mail.test",
            );
            r.network = "203.0.113.0/24".into();
            records.push(r);
        }
        // A large NAT: 400 signatures spread over 8 hours (50/hour), most confirmed.
        for i in 0..400u32 {
            let s = if i % 4 == 0 {
                Status::Pending
            } else {
                Status::Confirmed
            };
            records.push(rec(
                "noel",
                1000 + i,
                T0 + (i as i64 % 8) * HOUR,
                s,
                "campus",
                "gmail.com",
            ));
        }
        // Old records before the window are ignored.
        for i in 0..1000 {
            records.push(rec(
                "noel",
                5000 + i,
                T0 - 2 * HOUR,
                Status::Pending,
                "old",
                "old.test",
            ));
        }
        let mut flagged = rec("noel", 9000, T0, Status::Erased, "", "Mail.TEST");
        flagged.flags = vec!["fast_fill".into()];
        records.push(flagged);

        let t = trending(&records, T0, 10);
        assert_eq!(t.since, T0);
        let keys: Vec<&str> = t.prefixes.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(
            keys,
            vec!["attacker", "campus"],
            "the erased record has no prefix; old ones are out"
        );
        assert_eq!(
            t.prefixes[0],
            TrendRow {
                key: "attacker".into(),
                network: Some("203.0.113.0/24".into()),
                total: 300,
                peak_hour: T0,
                peak_count: 300,
                confirmed: 0,
                flagged: 0
            }
        );
        assert_eq!(
            (
                t.prefixes[1].total,
                t.prefixes[1].peak_count,
                t.prefixes[1].confirmed
            ),
            (400, 50, 300)
        );
        assert_eq!(t.prefixes[1].network, None, "records without a network");
        assert_eq!(t.domains[0].key, "mail.test");
        assert_eq!(
            (t.domains[0].total, t.domains[0].flagged),
            (301, 1),
            "domains are folded to lower case"
        );
        assert_eq!(t.domains[1].key, "gmail.com");

        let top1 = trending(&records, T0, 1);
        assert_eq!(top1.prefixes.len(), 1);
        assert_eq!(top1.domains.len(), 1);
    }

    #[test]
    fn hours_are_floored_also_before_1970() {
        assert_eq!(hour_of(T0 + 3599), T0);
        assert_eq!(hour_of(-1), -3600);
    }
}
