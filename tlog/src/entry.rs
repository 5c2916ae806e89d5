//! One log entry: what happened to the count, and nothing about who.
//!
//! Wire format (version 1), fixed-size, big-endian, so that two sequencers given the same
//! events write the same bytes:
//!
//! ```text
//! byte 0      version = 1
//! byte 1      kind: 1 counted, 2 uncounted, 3 offline batch
//! byte 2      reason of an uncounted entry (1 invalidated, 2 erased, 3 withdrawn, other codes
//!             kept as they are); 0 for the other kinds
//! bytes 3..7  the hour: Unix seconds / 3600, u32
//! bytes 7..39 the commitment (see [`crate::commitment`])
//! bytes 39..43 offline batch only: the number of paper signatures, u32, at least 1
//! ```
//!
//! An uncounted entry carries the commitment of the entry it cancels, so that anyone can check
//! it cancels something that was counted (see [`crate::tally`]).

use crate::commitment::Commitment;
use std::fmt;

pub const VERSION: u8 = 1;
const HEADER: usize = 7;
const COUNTED_LEN: usize = HEADER + 32;
const OFFLINE_LEN: usize = COUNTED_LEN + 4;

/// Why a counted signature (or an offline batch) stopped counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// The organizers invalidated it (fraud, bulk invalidation by criteria).
    Invalidated,
    /// The signer erased their signature.
    Erased,
    /// An offline batch taken back by the organizers.
    Withdrawn,
    /// A code this version does not know; counted out all the same.
    Other(u8),
}

impl Reason {
    pub fn code(self) -> u8 {
        match self {
            Reason::Invalidated => 1,
            Reason::Erased => 2,
            Reason::Withdrawn => 3,
            Reason::Other(c) => c,
        }
    }

    pub fn from_code(c: u8) -> Option<Reason> {
        match c {
            0 => None,
            1 => Some(Reason::Invalidated),
            2 => Some(Reason::Erased),
            3 => Some(Reason::Withdrawn),
            c => Some(Reason::Other(c)),
        }
    }

    /// The name shown by `cahier log verify` and in JSON.
    pub fn name(self) -> String {
        match self {
            Reason::Invalidated => "invalidated".into(),
            Reason::Erased => "erased".into(),
            Reason::Withdrawn => "withdrawn".into(),
            Reason::Other(c) => format!("reason-{c}"),
        }
    }
}

/// What an entry does to the count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// A confirmed (or approved) signature: +1.
    Counted,
    /// A signature or batch counted earlier no longer counts.
    Uncounted(Reason),
    /// Paper signatures entered by the organizers: +size.
    Offline { size: u32 },
}

/// One entry of a petition's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Entry {
    pub event: Event,
    /// Unix seconds / 3600: coarse on purpose.
    pub hour: u32,
    pub commitment: Commitment,
}

/// Why bytes are not an entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("entry of {0} bytes, expected 39 or 43")]
    Length(usize),
    #[error("entry version {0}, this version reads 1")]
    Version(u8),
    #[error("unknown entry kind {0}")]
    Kind(u8),
    #[error("uncounted entry without a reason")]
    NoReason,
    #[error("reason code {0} on an entry that is not uncounted")]
    StrayReason(u8),
    #[error("offline batch of 0 signatures")]
    EmptyBatch,
}

impl Entry {
    /// The hour of a Unix time in seconds (0 before 1970).
    pub fn hour_of(unix_seconds: i64) -> u32 {
        u32::try_from(unix_seconds.max(0) / 3600).unwrap_or(u32::MAX)
    }

    pub fn counted(commitment: Commitment, unix_seconds: i64) -> Entry {
        Entry {
            event: Event::Counted,
            hour: Self::hour_of(unix_seconds),
            commitment,
        }
    }

    pub fn uncounted(commitment: Commitment, reason: Reason, unix_seconds: i64) -> Entry {
        Entry {
            event: Event::Uncounted(reason),
            hour: Self::hour_of(unix_seconds),
            commitment,
        }
    }

    pub fn offline(commitment: Commitment, size: u32, unix_seconds: i64) -> Entry {
        Entry {
            event: Event::Offline { size },
            hour: Self::hour_of(unix_seconds),
            commitment,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let (kind, reason) = match self.event {
            Event::Counted => (1, 0),
            Event::Uncounted(r) => (2, r.code()),
            Event::Offline { .. } => (3, 0),
        };
        let mut b = Vec::with_capacity(OFFLINE_LEN);
        b.extend_from_slice(&[VERSION, kind, reason]);
        b.extend_from_slice(&self.hour.to_be_bytes());
        b.extend_from_slice(&self.commitment.0);
        if let Event::Offline { size } = self.event {
            b.extend_from_slice(&size.to_be_bytes());
        }
        b
    }

    pub fn decode(b: &[u8]) -> Result<Entry, EntryError> {
        if b.len() != COUNTED_LEN && b.len() != OFFLINE_LEN {
            return Err(EntryError::Length(b.len()));
        }
        if b[0] != VERSION {
            return Err(EntryError::Version(b[0]));
        }
        let (kind, reason) = (b[1], b[2]);
        let expected_len = if kind == 3 { OFFLINE_LEN } else { COUNTED_LEN };
        if !(1..=3).contains(&kind) {
            return Err(EntryError::Kind(kind));
        }
        if b.len() != expected_len {
            return Err(EntryError::Length(b.len()));
        }
        if kind != 2 && reason != 0 {
            return Err(EntryError::StrayReason(reason));
        }
        let event = match kind {
            1 => Event::Counted,
            2 => Event::Uncounted(Reason::from_code(reason).ok_or(EntryError::NoReason)?),
            _ => {
                let size = u32::from_be_bytes(b[39..43].try_into().expect("4 bytes"));
                if size == 0 {
                    return Err(EntryError::EmptyBatch);
                }
                Event::Offline { size }
            }
        };
        Ok(Entry {
            event,
            hour: u32::from_be_bytes(b[3..7].try_into().expect("4 bytes")),
            commitment: Commitment(b[7..39].try_into().expect("32 bytes")),
        })
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.event {
            Event::Counted => write!(f, "counted")?,
            Event::Uncounted(r) => write!(f, "uncounted ({})", r.name())?,
            Event::Offline { size } => write!(f, "offline batch of {size}")?,
        }
        write!(f, " at hour {} ({})", self.hour, self.commitment)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(b: u8) -> Commitment {
        Commitment([b; 32])
    }

    #[test]
    fn every_kind_round_trips() {
        for e in [
            Entry::counted(c(1), 7200),
            Entry::uncounted(c(2), Reason::Invalidated, 3 * 3600 + 59),
            Entry::uncounted(c(3), Reason::Erased, 0),
            Entry::uncounted(c(4), Reason::Other(42), 0),
            Entry::offline(c(5), 120, 1_700_000_000),
        ] {
            assert_eq!(Entry::decode(&e.encode()), Ok(e));
        }
    }

    #[test]
    fn the_hour_is_coarse() {
        assert_eq!(Entry::hour_of(3600 * 5 + 3599), 5);
        assert_eq!(Entry::hour_of(-1), 0);
    }

    #[test]
    fn malformed_entries_are_refused() {
        let good = Entry::counted(c(1), 0).encode();
        assert_eq!(Entry::decode(&good[..38]), Err(EntryError::Length(38)));
        let mut b = good.clone();
        b[0] = 2;
        assert_eq!(Entry::decode(&b), Err(EntryError::Version(2)));
        let mut b = good.clone();
        b[1] = 9;
        assert_eq!(Entry::decode(&b), Err(EntryError::Kind(9)));
        let mut b = good.clone();
        b[1] = 2;
        assert_eq!(Entry::decode(&b), Err(EntryError::NoReason));
        let mut b = good.clone();
        b[2] = 1;
        assert_eq!(Entry::decode(&b), Err(EntryError::StrayReason(1)));
        let mut b = Entry::offline(c(1), 1, 0).encode();
        b[39..43].copy_from_slice(&[0; 4]);
        assert_eq!(Entry::decode(&b), Err(EntryError::EmptyBatch));
        // A counted entry with an offline length.
        let mut b = Entry::offline(c(1), 1, 0).encode();
        b[1] = 1;
        assert_eq!(Entry::decode(&b), Err(EntryError::Length(43)));
    }
}
