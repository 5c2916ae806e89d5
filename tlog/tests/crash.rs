//! The sequencer killed with SIGKILL mid-integration resumes with no gap and no duplicate.
//!
//! The test runs itself as a child process (the ignored test `child`) that integrates 1,000
//! events in batches of 300 and stops before its k-th rename; the parent kills it with -9 there,
//! for every k that is not a receipt's (and for the first and last receipt of each batch: the
//! hundreds between them are alike), then resumes in its own process from whatever the child
//! left. Every file of the final tree, receipts included, must be byte-identical to a log
//! written without a crash.

use cahier_tlog::audit::{audit, files_of, Head};
use cahier_tlog::{Commitment, Entry, LogDir, LogKey, Pending, Reason, Sequencer};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

const ORIGIN: &str = "127.0.0.1:8080/ecole";
const EVENTS: u64 = 1000;
const BATCH: u64 = 300;

fn key() -> LogKey {
    LogKey::from_base64("Y2FoaWVyLXRsb2ctdGVzdC1rZXktMzItYnl0ZXMhISE=").unwrap()
}

fn events() -> Vec<Pending> {
    (0..EVENTS)
        .map(|seq| {
            let mut c = [0u8; 32];
            c[..8].copy_from_slice(&seq.to_be_bytes());
            let entry = if seq % 10 == 9 {
                c[..8].copy_from_slice(&(seq - 1).to_be_bytes());
                Entry::uncounted(Commitment(c), Reason::Erased, 1_780_000_000)
            } else {
                Entry::counted(Commitment(c), 1_780_000_000 + seq as i64 * 60)
            };
            Pending { seq, entry }
        })
        .collect()
}

fn sequencer(dir: &Path) -> Sequencer {
    let mut d = LogDir::open(dir).unwrap();
    d.set_durable(false);
    let mut s = Sequencer::open(d, key(), ORIGIN).unwrap();
    s.max_batch = BATCH;
    s
}

/// Run by the parent only (CAHIER_TLOG_CHILD set): integrate, and hang before rename k.
#[test]
#[ignore]
fn child() {
    let Ok(dir) = std::env::var("CAHIER_TLOG_CHILD") else {
        return;
    };
    let stop_at: u64 = std::env::var("CAHIER_TLOG_STOP_AT")
        .unwrap()
        .parse()
        .unwrap();
    let mut s = sequencer(Path::new(&dir));
    let mut n = 0u64;
    s.dir_mut().set_hook(Box::new(move |_path| {
        n += 1;
        if n == stop_at {
            let mut out = std::io::stdout().lock();
            writeln!(out, "STOPPED").unwrap();
            out.flush().unwrap();
            loop {
                std::thread::sleep(std::time::Duration::from_secs(60));
            }
        }
    }));
    s.integrate(&events()).unwrap();
}

fn kill_at(dir: &Path, k: u64) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("CAHIER_TLOG_CHILD", dir)
        .env("CAHIER_TLOG_STOP_AT", k.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    let stopped = out.lines().any(|l| l.unwrap().contains("STOPPED"));
    assert!(stopped, "the child never reached rename {k}");
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9), "{status:?}");
}

/// The receipts under `dir`, by path.
fn receipts(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for shard in std::fs::read_dir(dir.join("receipt")).into_iter().flatten() {
        let shard = shard.unwrap().path();
        for f in std::fs::read_dir(&shard).unwrap() {
            let f = f.unwrap().path();
            let rel = f.strip_prefix(dir).unwrap().display().to_string();
            out.push((rel, std::fs::read(&f).unwrap()));
        }
    }
    out.sort();
    out
}

fn final_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut paths = files_of(EVENTS);
    paths.push("checkpoint".into());
    paths
        .into_iter()
        .map(|p| {
            let b = std::fs::read(dir.join(&p)).unwrap_or_else(|e| panic!("{p}: {e}"));
            (p, b)
        })
        .collect()
}

#[test]
fn killed_with_sigkill_anywhere_it_resumes_without_gap_or_duplicate() {
    let reference = tempfile::tempdir().unwrap();
    let mut r = sequencer(reference.path());
    let renames = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = renames.clone();
    r.dir_mut()
        .set_hook(Box::new(move |p| seen.lock().unwrap().push(p.to_string())));
    r.integrate(&events()).unwrap();
    let total_writes = r.dir().writes();
    let expected = final_files(reference.path());
    let expected_receipts = receipts(reference.path());
    assert_eq!(
        expected_receipts.len(),
        900,
        "one receipt per counted entry"
    );
    assert!(total_writes > 10, "{total_writes}");
    let renames = renames.lock().unwrap().clone();
    assert_eq!(renames.len() as u64, total_writes);
    let is_receipt = |i: usize| renames.get(i).is_some_and(|p| p.starts_with("receipt/"));
    let stops: Vec<u64> = (0..renames.len())
        .filter(|&i| !is_receipt(i) || !is_receipt(i + 1) || i == 0 || !is_receipt(i - 1))
        .map(|i| i as u64 + 1)
        .collect();
    assert!(stops.len() < 100, "{} stops", stops.len());

    let mut sizes_seen = std::collections::BTreeSet::new();
    for k in stops {
        let tmp = tempfile::tempdir().unwrap();
        kill_at(tmp.path(), k);
        // What the killed child left opens, at a checkpoint boundary.
        let mut s = sequencer(tmp.path());
        let at = s.size();
        assert_eq!(at % BATCH, 0, "size {at} after a kill at rename {k}");
        sizes_seen.insert(at);
        // The store hands over every event again; those in the log are skipped.
        let done = s.integrate(&events()).unwrap();
        assert_eq!((done.skipped, done.added), (at, EVENTS - at), "kill at {k}");
        assert_eq!(final_files(tmp.path()), expected, "kill at rename {k}");
        assert!(
            receipts(tmp.path()) == expected_receipts,
            "the receipts differ after a kill at rename {k}"
        );
        // Nothing half-written stays in the staging folder.
        assert_eq!(
            std::fs::read_dir(tmp.path().join(".tmp")).unwrap().count(),
            0
        );
    }
    // The kills landed in every batch, the last checkpoint's rename included.
    assert_eq!(
        sizes_seen.into_iter().collect::<Vec<_>>(),
        vec![0, 300, 600, 900]
    );

    let files: std::collections::HashMap<String, Vec<u8>> = expected.into_iter().collect();
    let a = audit(
        Head {
            size: EVENTS,
            root: r.root(),
        },
        None,
        |p| files.get(p).map(|v| v.as_slice()),
    );
    assert!(a.problems.is_empty(), "{:?}", a.problems);
    assert_eq!(a.tally.entries, EVENTS);
    assert_eq!(a.tally.count, 800);
    assert_eq!(a.tally.uncounted["erased"], 100);
}

#[test]
fn the_same_events_give_byte_identical_tiles_whatever_the_batches_and_fsync() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let mut sa = sequencer(a.path());
    sa.integrate(&events()).unwrap();
    let mut sb = sequencer(b.path());
    sb.dir_mut().set_durable(true);
    sb.max_batch = 7;
    for chunk in events().chunks(133) {
        sb.integrate(chunk).unwrap();
    }
    assert_eq!(final_files(a.path()), final_files(b.path()));
}

#[test]
fn a_gap_is_refused_and_a_foreign_checkpoint_is_not_signed_over() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = sequencer(tmp.path());
    let ev = events();
    let err = s.integrate(&[ev[0], ev[2]]).unwrap_err();
    assert!(err.to_string().contains("gap"), "{err}");
    assert_eq!(s.size(), 0);
    s.integrate(&ev[..5]).unwrap();
    // Another writer moved the checkpoint: this sequencer refuses to sign over it.
    std::fs::write(tmp.path().join("checkpoint"), b"someone else\n").unwrap();
    let err = s.integrate(&ev[5..10]).unwrap_err();
    assert!(format!("{err:#}").contains("fork"), "{err:#}");
    // And a log whose checkpoint does not open is not resumed.
    assert!(Sequencer::open(LogDir::open(tmp.path()).unwrap(), key(), ORIGIN).is_err());
}
