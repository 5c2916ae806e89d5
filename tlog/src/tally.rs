//! The count, recomputed from the entries alone.
//!
//! counted − uncounted + offline, with two rules that make silent tricks visible: an uncounted
//! entry must cancel a commitment that currently counts, and a commitment cannot count twice
//! at once. Entries breaking a rule are reported (by index) and change nothing.

use crate::commitment::Commitment;
use crate::entry::{Entry, Event, Reason};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub entries: u64,
    /// Counted entries (signatures confirmed or approved).
    pub counted: u64,
    /// Uncounted entries, by reason name.
    pub uncounted: BTreeMap<String, u64>,
    /// Offline batches and the signatures they hold.
    pub offline_batches: u64,
    pub offline_signatures: u64,
    /// Signatures uncounted from offline batches (inside `uncounted`'s entries).
    pub offline_withdrawn: u64,
    /// The count: what the petition's counter must show.
    pub count: u64,
    /// Indexes of entries breaking a rule (an uncount of nothing, a double count).
    pub anomalies: Vec<Anomaly>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Anomaly {
    pub index: u64,
    pub problem: String,
}

/// Accumulates entries in log order.
#[derive(Debug, Default)]
pub struct Counter {
    tally: Tally,
    /// What each live commitment weighs (1 for a signature, the size of an offline batch).
    live: HashMap<Commitment, u64>,
}

impl Counter {
    pub fn add(&mut self, e: &Entry) {
        let index = self.tally.entries;
        self.tally.entries += 1;
        let t = &mut self.tally;
        let mut anomaly = |p: String| {
            t.anomalies.push(Anomaly { index, problem: p });
        };
        match e.event {
            Event::Counted | Event::Offline { .. } => {
                let weight = match e.event {
                    Event::Offline { size } => u64::from(size),
                    _ => 1,
                };
                if self.live.contains_key(&e.commitment) {
                    anomaly(format!("{} counted while it already counts", e.commitment));
                    return;
                }
                self.live.insert(e.commitment, weight);
                match e.event {
                    Event::Offline { size } => {
                        t.offline_batches += 1;
                        t.offline_signatures += u64::from(size);
                    }
                    _ => t.counted += 1,
                }
                t.count += weight;
            }
            Event::Uncounted(reason) => {
                let Some(weight) = self.live.remove(&e.commitment) else {
                    anomaly(format!(
                        "{} uncounted ({}) but it does not count",
                        e.commitment,
                        reason.name()
                    ));
                    return;
                };
                *t.uncounted.entry(reason.name()).or_default() += 1;
                if reason == Reason::Withdrawn || weight > 1 {
                    t.offline_withdrawn += weight;
                }
                t.count -= weight;
            }
        }
    }

    /// An entry that could not be read is an anomaly too.
    pub fn unreadable(&mut self, problem: String) {
        let index = self.tally.entries;
        self.tally.entries += 1;
        self.tally.anomalies.push(Anomaly { index, problem });
    }

    pub fn finish(self) -> Tally {
        self.tally
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(b: u8) -> Commitment {
        Commitment([b; 32])
    }

    #[test]
    fn counted_minus_uncounted_plus_offline() {
        let mut k = Counter::default();
        for e in [
            Entry::counted(c(1), 0),
            Entry::counted(c(2), 0),
            Entry::counted(c(3), 0),
            Entry::uncounted(c(2), Reason::Invalidated, 0),
            Entry::offline(c(9), 40, 0),
            Entry::uncounted(c(3), Reason::Erased, 0),
            // Released after review: counts again.
            Entry::counted(c(2), 0),
        ] {
            k.add(&e);
        }
        let t = k.finish();
        assert_eq!(t.count, 2 + 40);
        assert_eq!(t.counted, 4);
        assert_eq!(t.uncounted["invalidated"], 1);
        assert_eq!(t.uncounted["erased"], 1);
        assert_eq!((t.offline_batches, t.offline_signatures), (1, 40));
        assert!(t.anomalies.is_empty());
    }

    #[test]
    fn uncounting_nothing_and_counting_twice_are_anomalies() {
        let mut k = Counter::default();
        k.add(&Entry::counted(c(1), 0));
        k.add(&Entry::counted(c(1), 0));
        k.add(&Entry::uncounted(c(7), Reason::Invalidated, 0));
        k.add(&Entry::offline(c(8), 10, 0));
        k.add(&Entry::uncounted(c(8), Reason::Withdrawn, 0));
        let t = k.finish();
        assert_eq!(t.count, 1);
        assert_eq!(t.offline_withdrawn, 10);
        let idx: Vec<u64> = t.anomalies.iter().map(|a| a.index).collect();
        assert_eq!(idx, vec![1, 2]);
    }
}
