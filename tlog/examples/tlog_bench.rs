//! Integration throughput of the sequencer, and byte-identical tiles from the same events.
//!
//!     cargo run --release -p cahier-tlog --example tlog_bench -- [EVENTS] [--durable]
//!
//! Integrates EVENTS synthetic events (signatures, 1 in 10 invalidated, 1 in 1000 an offline
//! batch) into a fresh folder in batches of 65,536 (one signed checkpoint each), twice; checks
//! that both folders hold byte-identical trees and receipts; then audits the tree as `cahier log verify`
//! does (rebuild from the entries). Prints Markdown.

use cahier_tlog::audit::{audit, files_of, Head};
use cahier_tlog::{Commitment, Entry, LogDir, LogKey, Pending, Reason, Sequencer};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

fn events(n: u64) -> Vec<Pending> {
    (0..n)
        .map(|seq| {
            let mut c = [0u8; 32];
            c[..8].copy_from_slice(&seq.to_be_bytes());
            let t = 1_780_000_000 + seq as i64;
            let entry = match seq % 1000 {
                999 => Entry::offline(Commitment(c), 30, t),
                s if s % 10 == 9 => {
                    c[..8].copy_from_slice(&(seq - 1).to_be_bytes());
                    Entry::uncounted(Commitment(c), Reason::Invalidated, t)
                }
                _ => Entry::counted(Commitment(c), t),
            };
            Pending { seq, entry }
        })
        .collect()
}

fn integrate(dir: &Path, key: &LogKey, ev: &[Pending], durable: bool) -> (f64, Sequencer) {
    let mut d = LogDir::open(dir).unwrap();
    d.set_durable(durable);
    let mut s = Sequencer::open(d, key.clone(), "petitions.example.org/bench").unwrap();
    let t = Instant::now();
    s.integrate(ev).unwrap();
    (t.elapsed().as_secs_f64(), s)
}

fn digest(dir: &Path, size: u64) -> (String, u64, u64) {
    let mut h = Sha256::new();
    let (mut files, mut bytes) = (0, 0);
    for p in files_of(size).into_iter().chain(["checkpoint".to_string()]) {
        let b = std::fs::read(dir.join(&p)).unwrap();
        h.update(p.as_bytes());
        h.update(&b);
        files += 1;
        bytes += b.len() as u64;
    }
    (hex::encode(h.finalize()), files, bytes)
}

/// Every receipt (`receipt/<aa>/<commitment>`): a digest over paths and bytes, and how many.
fn receipts(dir: &Path) -> (String, u64, u64) {
    let mut paths = Vec::new();
    for shard in std::fs::read_dir(dir.join("receipt")).unwrap() {
        for f in std::fs::read_dir(shard.unwrap().path()).unwrap() {
            paths.push(f.unwrap().path());
        }
    }
    paths.sort();
    let mut h = Sha256::new();
    let mut bytes = 0;
    for p in &paths {
        let b = std::fs::read(p).unwrap();
        h.update(p.strip_prefix(dir).unwrap().to_string_lossy().as_bytes());
        h.update(&b);
        bytes += b.len() as u64;
    }
    (hex::encode(h.finalize()), paths.len() as u64, bytes)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: u64 = args
        .iter()
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let durable = args.iter().any(|a| a == "--durable");
    let key = LogKey::from_base64("Y2FoaWVyLXRsb2ctdGVzdC1rZXktMzItYnl0ZXMhISE=").unwrap();
    let ev = events(n);
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let (ta, sa) = integrate(&a, &key, &ev, durable);
    let (tb, _) = integrate(&b, &key, &ev, durable);
    let (da, files, bytes) = digest(&a, n);
    let (db, _, _) = digest(&b, n);
    assert_eq!(da, db, "the same events gave different trees");
    let (ra, receipt_files, receipt_bytes) = receipts(&a);
    assert_eq!(
        ra,
        receipts(&b).0,
        "the same events gave different receipts"
    );

    let all: HashMap<String, Vec<u8>> = files_of(n)
        .into_iter()
        .map(|p| {
            let b = std::fs::read(a.join(&p)).unwrap();
            (p, b)
        })
        .collect();
    let t = Instant::now();
    let report = audit(
        Head {
            size: n,
            root: sa.root(),
        },
        None,
        |p| all.get(p).map(|v| v.as_slice()),
    );
    let ta_audit = t.elapsed().as_secs_f64();
    assert!(report.problems.is_empty(), "{:?}", report.problems);

    println!("| events | fsync | run | seconds | events/s |");
    println!("|---:|:---:|---:|---:|---:|");
    for (run, secs) in [(1, ta), (2, tb)] {
        println!(
            "| {n} | {} | {run} | {secs:.2} | {:.0} |",
            if durable { "yes" } else { "no" },
            n as f64 / secs
        );
    }
    println!();
    println!(
        "Tree: {files} files, {bytes} bytes; SHA-256 over every file of both runs: {da} (identical)."
    );
    println!(
        "Receipts (one tlog-proof per counted entry): {receipt_files} files, {receipt_bytes} bytes, identical in both runs."
    );
    println!(
        "Audit (rebuild from entries, compare every tile, recount): {ta_audit:.2} s, count {}.",
        report.tally.count
    );
}
