//! `cahier log verify` against a site served by a local HTTP server: a real log written by
//! the sequencer, a manifest with the public key and a count endpoint, then the attacks a
//! monitor must catch, each with a non-zero exit from the real binary.

use cahier_tlog::{Commitment, Entry, LogDir, LogKey, Pending, Reason, Sequencer};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tower_http::services::ServeDir;

const BASE_URL: &str = "https://petitions.example.org";
const SLUG: &str = "ecole";
const EVENTS: u64 = 600;

/// A static server on a free loopback port, stopped on drop.
struct Server {
    url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(dir: &Path) -> Server {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = axum::Router::new().fallback_service(ServeDir::new(dir));
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await
                    .unwrap();
            });
        });
        Server {
            url,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Signatures, every 10th invalidated, every 100th (from 50) an offline batch of 20.
fn events(skip: Option<u64>) -> Vec<Pending> {
    let mut v = Vec::new();
    for i in 0..EVENTS {
        if Some(i) == skip {
            continue;
        }
        let mut c = [0u8; 32];
        c[..8].copy_from_slice(&i.to_be_bytes());
        let t = 1_780_000_000 + i as i64 * 30;
        let entry = if i % 100 == 50 {
            Entry::offline(Commitment(c), 20, t)
        } else if i % 10 == 9 {
            c[..8].copy_from_slice(&(i - 1).to_be_bytes());
            Entry::uncounted(Commitment(c), Reason::Invalidated, t)
        } else {
            Entry::counted(Commitment(c), t)
        };
        v.push(Pending {
            seq: v.len() as u64,
            entry,
        });
    }
    v
}

/// counted (540 − 6 batches) − 60 invalidated + 6 × 20 offline.
const COUNT: u64 = 534 - 60 + 120;

struct Site {
    _server: Server,
    url: String,
    root: PathBuf,
    state: PathBuf,
    key: LogKey,
    _tmp: tempfile::TempDir,
}

impl Site {
    fn new() -> Site {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("public");
        let key = LogKey::generate();
        write_log(&root, &key, &events(None));
        let manifest = serde_json::json!({
            "version": 1,
            "site": { "base_url": BASE_URL, "log_public_key": key.public_base64() },
            "petitions": [{ "slug": SLUG }],
        });
        std::fs::create_dir_all(root.join("api/petitions").join(SLUG)).unwrap();
        std::fs::write(root.join("api/manifest.json"), manifest.to_string()).unwrap();
        set_count(&root, COUNT);
        let server = Server::start(&root);
        Site {
            url: server.url.clone(),
            _server: server,
            state: tmp.path().join("state"),
            root,
            key,
            _tmp: tmp,
        }
    }

    fn log(&self) -> PathBuf {
        self.root.join(SLUG).join("log")
    }

    fn verify(&self, extra: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_cahier"))
            .args(["log", "verify", &self.url, "--state"])
            .arg(&self.state)
            .args(extra)
            .output()
            .unwrap()
    }
}

fn write_log(root: &Path, key: &LogKey, events: &[Pending]) {
    let log = root.join(SLUG).join("log");
    let _ = std::fs::remove_dir_all(&log);
    let mut dir = LogDir::open(&log).unwrap();
    dir.set_durable(false);
    let origin = cahier_tlog::checkpoint::origin(BASE_URL, SLUG);
    let mut s = Sequencer::open(dir, key.clone(), &origin).unwrap();
    s.max_batch = 250;
    s.integrate(events).unwrap();
}

fn set_count(root: &Path, n: u64) {
    let body = serde_json::json!({ "petition": SLUG, "count": n, "goal": 1000 });
    std::fs::write(
        root.join("api/petitions").join(SLUG).join("count"),
        body.to_string(),
    )
    .unwrap();
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn fails_with(o: &Output, needle: &str) {
    let t = text(o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains(needle), "expected {needle:?} in:\n{t}");
}

#[test]
fn a_sound_log_verifies_and_its_summary_adds_up() {
    let site = Site::new();
    let o = site.verify(&[]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    for line in [
        "entries    600",
        "counted    534",
        "uncounted  60 (invalidated 60)",
        "offline    120 signature(s) in 6 batch(es)",
        &format!("count      {COUNT} (count endpoint: {COUNT})"),
        "OK: 1 log(s) verified",
    ] {
        assert!(t.contains(line), "{line:?} not in:\n{t}");
    }
    // JSON, with the key pinned on the command line.
    let o = site.verify(&[
        "--json",
        "--petition",
        SLUG,
        "--key",
        &site.key.public_base64(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["logs"][0]["tally"]["count"], COUNT);
    assert_eq!(v["logs"][0]["previous_size"], EVENTS);
}

#[test]
fn a_changed_tile_is_caught() {
    let site = Site::new();
    let p = site.log().join("tile/0/001");
    let mut b = std::fs::read(&p).unwrap();
    b[40] ^= 1;
    std::fs::write(&p, b).unwrap();
    fails_with(&site.verify(&[]), "tile/0/001: not the tile of the entries");
}

#[test]
fn a_removed_entry_is_caught() {
    let site = Site::new();
    // The last bundle served without its last entry (tiles and checkpoint unchanged).
    let p = site.log().join("tile/entries/002.p/88");
    let b = std::fs::read(&p).unwrap();
    std::fs::write(&p, &b[..b.len() - 41]).unwrap();
    fails_with(
        &site.verify(&[]),
        "tile/entries/002.p/88: 87 entries, expected 88",
    );
}

#[test]
fn a_checkpoint_with_a_bad_signature_is_caught() {
    let site = Site::new();
    // Signed by another key; then a signature line that is not the text's.
    let other = LogKey::generate();
    let origin = cahier_tlog::checkpoint::origin(BASE_URL, SLUG);
    let cp = std::fs::read_to_string(site.log().join("checkpoint")).unwrap();
    let root = cp.lines().nth(2).unwrap();
    let forged = other
        .sign(
            &origin,
            EVENTS,
            cahier_tlog::Hash::parse_hash(root).unwrap(),
        )
        .unwrap();
    std::fs::write(site.log().join("checkpoint"), &forged).unwrap();
    fails_with(&site.verify(&[]), "the signature does not verify");

    let tampered = cp.replacen("\n600\n", "\n599\n", 1);
    std::fs::write(site.log().join("checkpoint"), tampered).unwrap();
    fails_with(&site.verify(&[]), "the signature does not verify");
}

#[test]
fn a_forked_checkpoint_is_caught() {
    let site = Site::new();
    let o = site.verify(&[]);
    assert!(o.status.success(), "{}", text(&o));
    // The operator rewrites history with the real key: entry 120 dropped, one added at the end
    // so that the size stays the same. Every file is consistent; only memory tells.
    let mut ev = events(Some(120));
    let last = ev.last().unwrap().entry;
    let mut c = last.commitment;
    c.0[31] = 0xff;
    ev.push(Pending {
        seq: ev.len() as u64,
        entry: Entry::counted(c, 1_790_000_000),
    });
    write_log(&site.root, &site.key, &ev);
    let o = site.verify(&[]);
    fails_with(&o, "fork: at size 600");
    // A smaller log is a rollback.
    write_log(&site.root, &site.key, &events(None)[..500]);
    fails_with(&site.verify(&[]), "rollback");
}

#[test]
fn a_count_endpoint_that_disagrees_is_caught() {
    let site = Site::new();
    set_count(&site.root, COUNT + 7);
    fails_with(
        &site.verify(&[]),
        &format!("says {}, the log counts {COUNT}", COUNT + 7),
    );
}

#[test]
fn watch_exits_non_zero_at_the_first_mismatch() {
    use std::io::{BufRead, BufReader};
    let site = Site::new();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cahier"))
        .args(["log", "verify", &site.url, "--watch", "200ms", "--state"])
        .arg(&site.state)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first_ok = lines
        .by_ref()
        .map(|l| l.unwrap())
        .find(|l| l.contains("] OK: 1 log(s)"));
    assert!(first_ok.is_some());
    // Rounds keep passing until the count endpoint disagrees.
    set_count(&site.root, COUNT - 1);
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "{rest:?}");
    assert!(
        rest.iter().any(|l| l.contains("FAILED: 1 of 1 log(s)")),
        "{rest:?}"
    );
}

#[test]
fn an_oversized_file_is_cut_off() {
    let site = Site::new();
    std::fs::write(site.log().join("tile/0/000"), vec![0u8; 5 << 20]).unwrap();
    fails_with(&site.verify(&[]), "more than 4194304 bytes");
}
