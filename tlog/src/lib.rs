//! Cahier's verifiable count: per petition, an append-only Merkle log in the C2SP tlog-tiles
//! layout (RFC 6962 hashing), whose entries say what happened to the count and nothing about
//! who, under a checkpoint signed with the collective's Ed25519 key (C2SP signed note).
//!
//! The Merkle algorithms, tile coordinates and checkpoint text come from `tlog_tiles`, the
//! signed notes from `signed_note` (both from Cloudflare's azul); what is Cahier's own is here:
//! the entries ([`entry`], [`commitment`]), the count ([`tally`]), the folder layout
//! ([`layout`], [`dir`]), the [`sequencer`] and the monitor's [`audit`].

pub mod audit;
pub mod checkpoint;
pub mod commitment;
pub mod dir;
pub mod entry;
pub mod hashes;
pub mod layout;
pub mod proof;
pub mod sequencer;
pub mod tally;

pub use checkpoint::LogKey;
pub use commitment::{Commitment, ReceiptSecret};
pub use dir::{LogDir, LogFiles};
pub use entry::{Entry, Event, Reason};
pub use sequencer::{Pending, Sequencer};
pub use tlog_tiles::{Hash, EMPTY_HASH};
