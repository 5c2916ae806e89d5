//! The log's tree, inclusion and consistency proofs against an independent RFC 6962
//! implementation (`ct-merkle`), at sizes that cross tile boundaries. The log is written by the
//! real sequencer in several batches, into a real folder, and proved from its tiles.

use cahier_tlog::audit::{audit, Head};
use cahier_tlog::proof;
use cahier_tlog::{Commitment, Entry, Hash, LogDir, LogKey, Pending, Reason, Sequencer};
use ct_merkle::mem_backed_tree::MemoryBackedTree;
use ct_merkle::{ConsistencyProof, InclusionProof};
use sha2::Sha256;

const ORIGIN: &str = "petitions.example.org/ecole";

/// Entry `i`: mostly signatures, some invalidated, every 1000th an offline batch.
fn entry(i: u64) -> Entry {
    let mut c = [0u8; 32];
    c[..8].copy_from_slice(&i.to_be_bytes());
    match i % 1000 {
        999 => Entry::offline(Commitment(c), 25, 3600 * i as i64),
        7 if i > 7 => {
            // Cancels the signature counted just before.
            c[..8].copy_from_slice(&(i - 1).to_be_bytes());
            Entry::uncounted(Commitment(c), Reason::Invalidated, 3600 * i as i64)
        }
        _ => Entry::counted(Commitment(c), 3600 * i as i64),
    }
}

fn events(range: std::ops::Range<u64>) -> Vec<Pending> {
    range
        .map(|seq| Pending {
            seq,
            entry: entry(seq),
        })
        .collect()
}

/// A log of `size` entries written in three uneven batches; and the same entries in ct-merkle.
fn build(
    size: u64,
) -> (
    tempfile::TempDir,
    Sequencer,
    MemoryBackedTree<Sha256, Vec<u8>>,
) {
    let tmp = tempfile::tempdir().unwrap();
    let mut dir = LogDir::open(tmp.path()).unwrap();
    dir.set_durable(false);
    let mut seq = Sequencer::open(dir, LogKey::generate(), ORIGIN).unwrap();
    seq.max_batch = 40_000;
    let cuts = [0, size / 3, size / 3 + 1, size];
    for w in cuts.windows(2) {
        seq.integrate(&events(w[0]..w[1])).unwrap();
    }
    assert_eq!(seq.size(), size);
    let mut ct = MemoryBackedTree::<Sha256, Vec<u8>>::new();
    for i in 0..size {
        ct.push(entry(i).encode());
    }
    (tmp, seq, ct)
}

fn flat(p: &[Hash]) -> Vec<u8> {
    p.iter().flat_map(|h| h.0).collect()
}

fn indexes(size: u64) -> Vec<u64> {
    let mut v = vec![0, size / 2, size - 1];
    for b in [254, 255, 256, 257, 65_535, 65_536] {
        if b < size {
            v.push(b);
        }
    }
    v.sort();
    v.dedup();
    v
}

fn crosscheck(size: u64) {
    let (_tmp, seq, ct) = build(size);
    let root = seq.root();
    assert_eq!(
        ct.root().as_bytes().as_slice(),
        root.0.as_slice(),
        "root at {size}"
    );
    for i in indexes(size) {
        let ours = proof::inclusion(seq.dir(), size, i).unwrap();
        let theirs = ct.prove_inclusion(i as usize);
        assert_eq!(flat(&ours), theirs.as_bytes(), "inclusion of {i} in {size}");
        // Each side accepts the other's proof.
        ct.root()
            .verify_inclusion(
                &entry(i).encode(),
                i,
                &InclusionProof::from_bytes(flat(&ours)),
            )
            .unwrap();
        let their_hashes: Vec<Hash> = theirs
            .as_bytes()
            .chunks(32)
            .map(|c| Hash(c.try_into().unwrap()))
            .collect();
        proof::check_inclusion(&their_hashes, size, root, i, &entry(i).encode()).unwrap();
        // A wrong entry is refused.
        assert!(proof::check_inclusion(&ours, size, root, i, &entry(i + 1).encode()).is_err());
    }
    for old in indexes(size).into_iter().filter(|&o| o > 0 && o < size) {
        let ours = proof::consistency(seq.dir(), size, old).unwrap();
        let mut prefix = MemoryBackedTree::<Sha256, Vec<u8>>::new();
        for i in 0..old {
            prefix.push(entry(i).encode());
        }
        let theirs = ct.prove_consistency((size - old) as usize);
        assert_eq!(
            flat(&ours),
            theirs.as_bytes(),
            "consistency {old} -> {size}"
        );
        ct.root()
            .verify_consistency(
                &prefix.root(),
                &ConsistencyProof::try_from_bytes(flat(&ours)).unwrap(),
            )
            .unwrap();
        let old_root = Hash(prefix.root().as_bytes().as_slice().try_into().unwrap());
        proof::check_consistency(&ours, size, root, old, old_root).unwrap();
        assert!(proof::check_consistency(&ours, size, root, old, Hash([1; 32])).is_err());
    }
    // And a monitor reading the folder finds the same tree and no problem.
    let files = |p: &str| std::fs::read(seq.dir().root().join(p)).ok();
    let cache: std::collections::HashMap<String, Vec<u8>> = cahier_tlog::audit::files_of(size)
        .into_iter()
        .filter_map(|p| files(&p).map(|b| (p, b)))
        .collect();
    let a = audit(Head { size, root }, None, |p| {
        cache.get(p).map(|v| v.as_slice())
    });
    assert!(a.problems.is_empty(), "{:?}", a.problems);
    assert_eq!(a.tally.entries, size);
}

#[test]
fn size_1() {
    crosscheck(1);
}

#[test]
fn size_255() {
    crosscheck(255);
}

#[test]
fn size_256() {
    crosscheck(256);
}

#[test]
fn size_257() {
    crosscheck(257);
}

#[test]
fn size_65_537() {
    crosscheck(65_537);
}

/// Every counted entry's receipt (`receipt/<aa>/<commitment>`) is a C2SP tlog-proof against the
/// checkpoint of the batch that integrated it: it verifies with the log's key, and ct-merkle
/// accepts its inclusion proof against its own tree of that size.
fn receipts_check(size: u64) {
    use cahier_tlog::proof::TlogProof;
    let tmp = tempfile::tempdir().unwrap();
    let mut dir = LogDir::open(tmp.path()).unwrap();
    dir.set_durable(false);
    let key = LogKey::generate();
    let mut seq = Sequencer::open(dir, key.clone(), ORIGIN).unwrap();
    seq.max_batch = 40_000;
    let cuts = [0, size / 3, size / 3 + 1, size];
    for w in cuts.windows(2) {
        seq.integrate(&events(w[0]..w[1])).unwrap();
    }
    let mut proofs: Vec<(u64, u64, Vec<Hash>)> = Vec::new();
    for i in indexes(size) {
        let e = entry(i);
        let path = tmp
            .path()
            .join(cahier_tlog::layout::receipt_path(&e.commitment));
        if e.event != cahier_tlog::Event::Counted {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap_or_else(|_| panic!("no receipt for entry {i}"));
        let p = TlogProof::parse(&bytes).unwrap();
        assert_eq!(p.encode(), bytes, "parse and encode round-trip");
        let proven = p.verify(ORIGIN, &key.public()).unwrap();
        assert_eq!((proven.index, proven.entry), (i, e));
        // Another key, another log, another entry: refused.
        assert!(p.verify(ORIGIN, &LogKey::generate().public()).is_err());
        assert!(p.verify("other.example/ecole", &key.public()).is_err());
        let mut forged = p.clone();
        forged.extra = Some(entry(i + 1).encode());
        assert!(forged.verify(ORIGIN, &key.public()).is_err());
        proofs.push((proven.head.size, i, p.hashes));
    }
    assert!(!proofs.is_empty());
    proofs.sort_by_key(|(at, i, _)| (*at, *i));
    let mut ct = MemoryBackedTree::<Sha256, Vec<u8>>::new();
    for (at, i, hashes) in proofs {
        while ct.len() < at {
            ct.push(entry(ct.len()).encode());
        }
        ct.root()
            .verify_inclusion(
                &entry(i).encode(),
                i,
                &InclusionProof::from_bytes(flat(&hashes)),
            )
            .unwrap_or_else(|e| panic!("ct-merkle refuses the receipt of {i} at {at}: {e:?}"));
    }
}

#[test]
fn receipts_are_tlog_proofs_an_independent_implementation_accepts() {
    for size in [1, 255, 256, 257, 65_537] {
        receipts_check(size);
    }
}
