//! Attack replays over HTTP against the real `cahier-function` binary (SQLite, outbox, dev
//! captcha, the function's default budgets), each printing its figures. Clients bind distinct
//! 127.x.y.z sources, so the server sees each as its own peer. Bounded in count and time.

use cahier_function::crypto::Hasher;
use cahier_function::token::{TokenClaims, TokenKey, TokenKind};
use cahier_tests::attack::{client_from, clients_in_prefix, run_paced, spread_address};
use cahier_tests::fixture::{secrets, secrets_env, SLUG};
use cahier_tests::log_folder;
use cahier_tests::server::{cahier_binary, FunctionServer, ServerConfig};
use serde_json::{json, Value};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The real binary with the fixture manifest but the function's default budgets, and its
/// transparency log written into `dir/public` (so every replay can end by auditing it).
struct Site {
    server: FunctionServer,
    secrets: cahier_function::secrets::Secrets,
    db: PathBuf,
    outbox: PathBuf,
    log_dir: PathBuf,
    log_public: String,
}

impl Site {
    fn start(dir: &Path) -> Site {
        Site::start_with(dir, cahier_tests::free_port(), Vec::new())
    }

    fn start_with(dir: &Path, port: u16, args: Vec<String>) -> Site {
        let (secrets, _identity) = secrets();
        let base = format!("http://127.0.0.1:{port}");
        let mut manifest =
            cahier_tests::fixture::manifest(&base, secrets.age_recipient.as_deref().unwrap());
        manifest.site.budgets = None;
        let log_key = secrets
            .log_key
            .clone()
            .expect("generated secrets have a log key");
        let log_public = cahier_tlog::LogKey::from_base64(&log_key)
            .unwrap()
            .public_base64();
        manifest.site.log_public_key = Some(log_public.clone());
        let manifest_path = dir.join("manifest.json");
        std::fs::write(&manifest_path, serde_json::to_vec(&manifest).unwrap()).unwrap();
        let db = dir.join("signatures.sqlite3");
        let outbox = dir.join("outbox");
        let log_dir = dir.join("public");
        let mut env = secrets_env(&secrets);
        env.push(("CAHIER_LOG_KEY".to_string(), log_key));
        let mut all_args = vec![
            "--log-dir".to_string(),
            log_dir.display().to_string(),
            "--log-interval".to_string(),
            "0.2".to_string(),
        ];
        all_args.extend(args);
        let server = FunctionServer::start(ServerConfig {
            dir: dir.to_path_buf(),
            port,
            manifest: manifest_path,
            store: format!("sqlite:{}", db.display()),
            mailer: format!("outbox:{}", outbox.display()),
            env,
            args: all_args,
        });
        Site {
            server,
            secrets,
            db,
            outbox,
            log_dir,
            log_public,
        }
    }

    /// Waits (at most 20 s) until the log holds every event the store recorded, audits it as
    /// an outside monitor would and checks that it counts what the count endpoint shows.
    /// Prints and returns the log's figures.
    async fn log_agrees_with_count(&self, replay: &str) -> cahier_tlog::tally::Tally {
        let events = self.sql(
            "SELECT COUNT(*) FROM log_events WHERE petition = ?1",
            &[&SLUG],
        ) as u64;
        let deadline = Instant::now() + Duration::from_secs(20);
        // Every petition of the manifest has its log from the start, empty until a count.
        while log_folder::size(&self.log_dir, SLUG) != Some(events) {
            assert!(
                Instant::now() < deadline,
                "{replay}: the log has {:?} of the store's {events} events:\n{}",
                log_folder::size(&self.log_dir, SLUG),
                self.server.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let count = cahier_tests::flow::Api::new(&self.server.base)
            .slug(SLUG)
            .count()
            .await;
        let (_, audit) = log_folder::audit_log(
            &self.log_dir,
            &self.server.base,
            SLUG,
            &self.log_public,
            None,
        );
        assert!(audit.problems.is_empty(), "{replay}: {:?}", audit.problems);
        let t = audit.tally;
        assert!(t.anomalies.is_empty(), "{replay}: {:?}", t.anomalies);
        println!(
            "{replay}: the log has {} entries, {} counted, uncounted {:?}: count {} = the count endpoint's {count}",
            t.entries, t.counted, t.uncounted, t.count
        );
        assert_eq!(t.count, count, "{replay}: the log's count");
        t
    }

    fn hasher(&self) -> Hasher {
        Hasher::new(&self.secrets.pepper).unwrap()
    }

    /// The confirm token the server mails to `canonical` (the test knows the secrets).
    fn confirm_token(&self, canonical: &str) -> String {
        TokenKey::new(&self.secrets.token_key)
            .unwrap()
            .issue(&TokenClaims {
                kind: TokenKind::Confirm,
                petition: SLUG.to_string(),
                email_hash: self.hasher().email(canonical),
                expires_at: cahier_function::now() + 3600,
            })
    }

    fn sql(&self, query: &str, params: &[&dyn rusqlite::ToSql]) -> i64 {
        rusqlite::Connection::open(&self.db)
            .unwrap()
            .query_row(query, params, |r| r.get(0))
            .unwrap()
    }

    fn mails(&self) -> usize {
        std::fs::read_dir(&self.outbox)
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// Runs `cahier admin <args>` (the real binary) on this site's store.
    fn admin(&self, args: &[&str]) -> String {
        let out = Command::new(cahier_binary())
            .arg("admin")
            .arg("--store")
            .arg(format!("sqlite:{}", self.db.display()))
            .args(args)
            .env("CAHIER_PEPPER", hex::encode(&self.secrets.pepper))
            .output()
            .expect("running cahier admin");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "cahier admin {args:?} failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }
}

/// A dev-captcha token solved from `client` (the attacker runs a captcha farm).
async fn captcha(client: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let v: Value = client
        .post(format!("{base}/api/__dev/captcha"))
        .json(&json!({"sitekey": cahier_function::captcha::dev::DEV_SITEKEY}))
        .send()
        .await?
        .json()
        .await?;
    Ok(v["token"].as_str().unwrap_or_default().to_string())
}

async fn sign(
    client: &reqwest::Client,
    base: &str,
    name: &str,
    email: &str,
    token: &str,
) -> anyhow::Result<u16> {
    let res = client
        .post(format!("{base}/api/petitions/{SLUG}/sign"))
        .header("origin", base)
        .json(&json!({
            "name": name, "email": email, "consent": true,
            "h-captcha-response": token, "lang": "fr", "fill_ms": 7000,
        }))
        .send()
        .await?;
    Ok(res.status().as_u16())
}

async fn confirm(client: &reqwest::Client, base: &str, token: &str) -> anyhow::Result<u16> {
    let res = client
        .post(format!("{base}/api/confirm"))
        .json(&json!({ "token": token }))
        .send()
        .await?;
    Ok(res.status().as_u16())
}

/// Tuesday: 218 servers of one owner in one /24, many signatures each with random mailboxes and
/// the same name, at a sustained rate, among legitimate signers elsewhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tuesday_one_slash_24_of_218_servers() {
    const SERVERS: usize = 218;
    const TRIES_EACH: usize = 3;
    const LEGIT: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    let site = Site::start(dir.path());
    let base = site.server.base.clone();
    let attackers = Arc::new(clients_in_prefix([127, 66, 6], SERVERS).unwrap());

    let accepted = Arc::new(AtomicUsize::new(0));
    let limited = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let report = {
        let (attackers, base, accepted, limited) = (
            attackers.clone(),
            base.clone(),
            accepted.clone(),
            limited.clone(),
        );
        run_paced(
            SERVERS * TRIES_EACH,
            32,
            Some(300.0),
            Duration::from_secs(60),
            move |i| {
                let (_, client) = attackers[i % SERVERS].clone();
                let (base, accepted, limited) = (base.clone(), accepted.clone(), limited.clone());
                async move {
                    let token = captcha(&client, &base).await?;
                    let mailbox: String = format!("x{:016x}", rand_u64(i as u64));
                    let email = format!("{mailbox}@gmail.com");
                    match sign(&client, &base, "Jean Martin", &email, &token).await? {
                        202 => accepted.fetch_add(1, Ordering::Relaxed),
                        429 => limited.fetch_add(1, Ordering::Relaxed),
                        other => anyhow::bail!("unexpected status {other}"),
                    };
                    Ok(())
                }
            },
        )
        .await
    };

    // Legitimate signers, each from their own network, who confirm.
    let mut legit = Vec::new();
    for i in 0..LEGIT {
        let ip = spread_address(10_000 + i);
        let client = client_from(ip).unwrap();
        let email = format!("citoyen{i}@example.org");
        let token = captcha(&client, &base).await.unwrap();
        assert_eq!(
            sign(&client, &base, &format!("Citoyen {i}"), &email, &token)
                .await
                .unwrap(),
            202
        );
        assert_eq!(
            confirm(&client, &base, &site.confirm_token(&email))
                .await
                .unwrap(),
            200
        );
        legit.push(site.hasher().email(&email));
    }

    let prefix_hash = site
        .hasher()
        .prefix("127.66.6.1".parse::<IpAddr>().unwrap());
    let attacker_rows = |status: &str| {
        site.sql(
            "SELECT COUNT(*) FROM signatures WHERE prefix_hash = ?1 AND status = ?2",
            &[&prefix_hash, &status],
        )
    };
    let (pending, held) = (attacker_rows("pending"), attacker_rows("held"));
    let counted = attacker_rows("confirmed");
    let network_budget = cahier_function::budgets::BudgetPolicy::default().per_network[0].limit;
    // The attacker's mailboxes are all at gmail.com; the legitimate signers' at example.org.
    let attacker_mails = cahier_tests::outbox::read_dir(&site.outbox)
        .iter()
        .filter(|m| m.to.ends_with("@gmail.com"))
        .count();
    println!(
        "tuesday: {} attempts from {SERVERS} sources in one /24 over {:.1}s: {} answered 202, {} got 429; \
         stored {pending} pending (mails queued behind the network budget) + {held} held, {counted} counted; \
         {attacker_mails} mails to the attacker's mailboxes (network budget {network_budget}), {} in all; attack run {}",
        report.ok + report.failed,
        started.elapsed().as_secs_f64(),
        accepted.load(Ordering::Relaxed),
        limited.load(Ordering::Relaxed),
        site.mails(),
        report.summary()
    );
    assert_eq!(report.failed, 0, "{}", report.summary());
    assert!(pending > 0, "{pending} pending");
    assert!(
        attacker_mails > 0 && attacker_mails <= network_budget as usize,
        "{attacker_mails} mails to the attacker"
    );
    assert_eq!(counted, 0);
    let count: Value = reqwest::get(format!("{base}/api/petitions/{SLUG}/count"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        count["count"], LEGIT as u64,
        "only the legitimate ones count"
    );

    // The organizer sees the prefix, previews, and removes it in one command.
    let trending = site.admin(&[
        "--json",
        "trending",
        "--petition",
        SLUG,
        "--label",
        "127.66.6.0/24",
    ]);
    let t: Value = serde_json::from_str(&trending).unwrap();
    assert_eq!(
        t["prefixes"][0]["label"], "127.66.6.0/24",
        "the top prefix is named: {trending}"
    );
    let dry = site.admin(&[
        "--json",
        "invalidate",
        "--petition",
        SLUG,
        "--ip-prefix",
        "127.66.6.0/24",
    ]);
    let d: Value = serde_json::from_str(&dry).unwrap();
    let matched = d["matched"].as_u64().unwrap();
    assert_eq!(matched as i64, pending + held, "{dry}");
    let done = site.admin(&[
        "--json",
        "invalidate",
        "--petition",
        SLUG,
        "--ip-prefix",
        "127.66.6.0/24",
        "--yes",
        "--expect",
        &matched.to_string(),
    ]);
    println!("tuesday: trending named 127.66.6.0/24; invalidate dry run {matched}, then: {done}");
    assert_eq!(attacker_rows("pending") + attacker_rows("held"), 0);
    assert_eq!(attacker_rows("invalidated"), matched as i64);
    for h in &legit {
        let status: String = rusqlite::Connection::open(&site.db)
            .unwrap()
            .query_row(
                "SELECT status FROM signatures WHERE email_hash = ?1",
                [h],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(status, "confirmed", "a legitimate signature was touched");
    }
    let count: Value = reqwest::get(format!("{base}/api/petitions/{SLUG}/count"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(count["count"], LEGIT as u64);
    site.log_agrees_with_count("tuesday").await;
}

/// A deterministic scrambler for mailbox names (splitmix64).
fn rand_u64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A siteverify relay that counts every verification the function asks for, then forwards it to
/// the function's own development siteverify (the real check).
struct CountingRelay {
    url: String,
    calls: Arc<AtomicUsize>,
    _task: tokio::task::JoinHandle<()>,
}

impl Drop for CountingRelay {
    fn drop(&mut self) {
        self._task.abort();
    }
}

async fn counting_relay(target: String) -> CountingRelay {
    use axum::routing::post;
    let calls = Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/siteverify", listener.local_addr().unwrap());
    let http = reqwest::Client::new();
    let counter = calls.clone();
    let app = axum::Router::new().route(
        "/siteverify",
        post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let (http, target, counter) = (http.clone(), target.clone(), counter.clone());
                async move {
                    counter.fetch_add(1, Ordering::Relaxed);
                    let mut req = http.post(&target).body(body.to_vec());
                    if let Some(ct) = headers.get("content-type") {
                        req = req.header("content-type", ct.as_bytes());
                    }
                    match req.send().await {
                        Ok(res) => (
                            axum::http::StatusCode::from_u16(res.status().as_u16()).unwrap(),
                            [("content-type", "application/json")],
                            res.bytes().await.unwrap_or_default().to_vec(),
                        ),
                        Err(_) => (
                            axum::http::StatusCode::BAD_GATEWAY,
                            [("content-type", "application/json")],
                            Vec::new(),
                        ),
                    }
                }
            },
        ),
    );
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    CountingRelay {
        url,
        calls,
        _task: task,
    }
}

/// One raw HTTP/1.1 POST from `source` to the server on 127.0.0.1:`port` (a fresh connection,
/// as each flooding host opens its own); returns the status code. Raw so that 4,000 sources cost
/// a socket each, not an HTTP client with its TLS setup.
async fn raw_post(
    source: IpAddr,
    port: u16,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> anyhow::Result<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(std::net::SocketAddr::new(source, 0))?;
    let mut stream = tokio::time::timeout(
        Duration::from_secs(5),
        socket.connect(([127, 0, 0, 1], port).into()),
    )
    .await??;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: http://127.0.0.1:{port}\r\n\
         Content-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    // The server may answer (413) before reading a large body; a reset then is fine.
    let _ = stream.write_all(body).await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut buf)).await;
    let line = String::from_utf8_lossy(&buf[..buf.len().min(16)]).to_string();
    line.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no HTTP status in {line:?}"))
}

/// One junk request of kind `k` from `source`; returns the status.
async fn junk(source: IpAddr, port: u16, k: usize, replay: Option<String>) -> anyhow::Result<u16> {
    let replay = replay.unwrap_or_else(|| "P1_replayed".into());
    let j = cahier_tests::attack::junk(k, SLUG, &replay, &Value::Null);
    raw_post(source, port, &j.path, j.content_type, &j.body).await
}

/// Thursday: a flood from 4,000 distinct sources of junk and replayed captcha tokens, with 200
/// legitimate signers interleaved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thursday_flood_from_4000_sources() {
    const JUNK: usize = 4_000;
    const LEGIT: usize = 200;
    const KINDS: usize = cahier_tests::attack::JUNK_KINDS;
    let dir = tempfile::tempdir().unwrap();
    let port = cahier_tests::free_port();
    let relay = counting_relay(format!("http://127.0.0.1:{port}/api/__dev/siteverify")).await;
    let site = Site::start_with(
        dir.path(),
        port,
        vec!["--captcha-verify-url".into(), relay.url.clone()],
    );
    let site = Arc::new(site);
    let base = site.server.base.clone();

    let used_tokens = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let legit_latency = Arc::new(std::sync::Mutex::new(Vec::<Duration>::new()));
    let by_kind: Arc<Vec<std::sync::Mutex<Vec<u16>>>> = Arc::new(
        (0..KINDS)
            .map(|_| std::sync::Mutex::new(Vec::new()))
            .collect(),
    );
    let legit_ok = Arc::new(AtomicUsize::new(0));
    // The legitimate signers' browsers, ready before the flood starts.
    let legit_clients: Arc<Vec<reqwest::Client>> = Arc::new(
        (0..LEGIT)
            .map(|n| client_from(spread_address(50_000 + n)).unwrap())
            .collect(),
    );
    let every = JUNK / LEGIT + 1; // one legitimate signer every 21 requests
    let total = JUNK + LEGIT;
    let report = {
        let legit_clients = legit_clients.clone();
        let (site, base, used, lat, by_kind, legit_ok) = (
            site.clone(),
            base.clone(),
            used_tokens.clone(),
            legit_latency.clone(),
            by_kind.clone(),
            legit_ok.clone(),
        );
        run_paced(
            total,
            48,
            Some(1_500.0),
            Duration::from_secs(90),
            move |i| {
                let legit_clients = legit_clients.clone();
                let (site, base, used, lat, by_kind, legit_ok) = (
                    site.clone(),
                    base.clone(),
                    used.clone(),
                    lat.clone(),
                    by_kind.clone(),
                    legit_ok.clone(),
                );
                async move {
                    if i % every == every - 1 && i / every < LEGIT {
                        let n = i / every;
                        let client = legit_clients[n].clone();
                        let t = Instant::now();
                        let token = captcha(&client, &base).await?;
                        let email = format!("legit{n}@gmail.com");
                        let status =
                            sign(&client, &base, &format!("Personne {n}"), &email, &token).await?;
                        lat.lock().unwrap().push(t.elapsed());
                        anyhow::ensure!(status == 202, "legitimate signer {n} got {status}");
                        used.lock().unwrap().push(token);
                        let c = confirm(&client, &base, &site.confirm_token(&email)).await?;
                        anyhow::ensure!(c == 200, "legitimate signer {n} confirm got {c}");
                        legit_ok.fetch_add(1, Ordering::Relaxed);
                    } else {
                        let k = i % KINDS;
                        let replay = used.lock().unwrap().last().cloned();
                        let status = junk(spread_address(i), port, k, replay).await?;
                        by_kind[k].lock().unwrap().push(status);
                    }
                    Ok(())
                }
            },
        )
        .await
    };

    let mut lat = legit_latency.lock().unwrap().clone();
    lat.sort();
    let p = |q: f64| lat[((lat.len() as f64 - 1.0) * q).round() as usize];
    let statuses: Vec<String> = by_kind
        .iter()
        .enumerate()
        .map(|(k, v)| {
            let v = v.lock().unwrap();
            let mut s: Vec<u16> = v.clone();
            s.sort();
            s.dedup();
            format!("kind {k}: {} x {:?}", v.len(), s)
        })
        .collect();
    let replays = by_kind[KINDS - 1].lock().unwrap().len();
    let verifications = relay.calls.load(Ordering::Relaxed);
    let rows = site.sql("SELECT COUNT(*) FROM signatures", &[]);
    let mails = site.mails();
    println!(
        "thursday: {} requests ({JUNK} junk from {JUNK} sources, {LEGIT} legitimate) {}; \
         junk answers {statuses:?}; captcha verifications {verifications} ({LEGIT} legitimate + {replays} replays); \
         store rows {rows}; mails {mails}; legitimate sign p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        total,
        report.summary(),
        p(0.5).as_secs_f64() * 1e3,
        p(0.99).as_secs_f64() * 1e3,
        lat.last().unwrap().as_secs_f64() * 1e3,
    );
    assert_eq!(
        report.failed + report.timed_out + report.not_started,
        0,
        "{}",
        report.summary()
    );
    assert_eq!(legit_ok.load(Ordering::Relaxed), LEGIT);
    // Malformed requests never reach the captcha: only legitimate tokens and replays are verified.
    assert_eq!(verifications, LEGIT + replays);
    for k in 0..KINDS {
        let expected = cahier_tests::attack::junk(k, SLUG, "", &Value::Null).expected;
        assert!(
            by_kind[k].lock().unwrap().iter().all(|s| *s == expected),
            "junk kind {k}: {statuses:?}"
        );
    }
    // Junk wrote nothing and mailed nobody.
    assert_eq!(rows, LEGIT as i64);
    assert_eq!(
        site.sql(
            "SELECT COUNT(*) FROM signatures WHERE status = 'confirmed'",
            &[]
        ),
        LEGIT as i64
    );
    assert_eq!(mails, LEGIT);
    let count: Value = reqwest::get(format!("{base}/api/petitions/{SLUG}/count"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(count["count"], LEGIT as u64);
    site.log_agrees_with_count("thursday").await;
}

/// Signs from `source` over a raw connection with a fresh captcha token; returns the status.
async fn raw_sign(
    tokens: &reqwest::Client,
    base: &str,
    port: u16,
    source: IpAddr,
    name: &str,
    email: &str,
) -> anyhow::Result<u16> {
    let token = captcha(tokens, base).await?;
    let body = json!({
        "name": name, "email": email, "consent": true,
        "h-captcha-response": token, "lang": "fr", "fill_ms": 9000,
    });
    raw_post(
        source,
        port,
        &format!("/api/petitions/{SLUG}/sign"),
        "application/json",
        body.to_string().as_bytes(),
    )
    .await
}

/// Saturday: every deputy and senator "signs" with their real address, from many addresses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saturday_925_protected_addresses() {
    const DEPUTIES: usize = 577;
    const SENATORS: usize = 348;
    let dir = tempfile::tempdir().unwrap();
    let port = cahier_tests::free_port();
    let site = Arc::new(Site::start_with(dir.path(), port, Vec::new()));
    let base = site.server.base.clone();
    let tokens = reqwest::Client::new();
    let email_of = |i: usize| {
        if i < DEPUTIES {
            format!("depute{i}@assemblee-nationale.fr")
        } else {
            format!("senateur{i}@senat.fr")
        }
    };
    let report = {
        let (tokens, base) = (tokens.clone(), base.clone());
        run_paced(
            DEPUTIES + SENATORS,
            32,
            Some(500.0),
            Duration::from_secs(60),
            move |i| {
                let (tokens, base, email) = (tokens.clone(), base.clone(), email_of(i));
                async move {
                    let status = raw_sign(
                        &tokens,
                        &base,
                        port,
                        spread_address(20_000 + i),
                        &format!("Élu {i}"),
                        &email,
                    )
                    .await?;
                    anyhow::ensure!(status == 202, "{email}: {status}");
                    Ok(())
                }
            },
        )
        .await
    };
    assert_eq!(report.ok, DEPUTIES + SENATORS, "{}", report.summary());

    // A mail scanner follows a confirm link with GET: nothing happens.
    let link_token = site.confirm_token(&email_of(0));
    let res = tokens
        .get(format!("{base}/api/confirm?t={link_token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 405);
    // A handful of real owners confirm: they stay held for review.
    for i in [0, 1, DEPUTIES] {
        assert_eq!(
            confirm(&tokens, &base, &site.confirm_token(&email_of(i)))
                .await
                .unwrap(),
            200
        );
    }
    let held = site.sql(
        "SELECT COUNT(*) FROM signatures WHERE status = 'held' AND hold_reason = 'protected domain'",
        &[],
    );
    let confirmed_held = site.sql(
        "SELECT COUNT(*) FROM signatures WHERE status = 'confirmed_held'",
        &[],
    );
    let counted = site.sql(
        "SELECT COUNT(*) FROM signatures WHERE status = 'confirmed'",
        &[],
    );
    let mails = site.mails();
    let mail_budget = cahier_function::budgets::BudgetPolicy::default()
        .mail_per_domain
        .limit as usize;
    println!(
        "saturday: {} protected signatures ({DEPUTIES} + {SENATORS}) {}; held {held}, confirmed pending review \
         {confirmed_held}, counted {counted}; mails {mails} (budget {mail_budget} per domain and hour)",
        DEPUTIES + SENATORS,
        report.summary()
    );
    assert_eq!(held + confirmed_held, (DEPUTIES + SENATORS) as i64);
    assert_eq!(confirmed_held, 3);
    assert_eq!(counted, 0);
    assert!(mails <= 2 * mail_budget, "{mails} mails");
    assert!(mails > 0);
    let count: Value = reqwest::get(format!("{base}/api/petitions/{SLUG}/count"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(count["count"], 0);
    site.log_agrees_with_count("saturday").await;
}

/// False-positive control: 300 people, each from their own network, sign once: all counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_ordinary_signers_are_all_counted() {
    const PEOPLE: usize = 300;
    let dir = tempfile::tempdir().unwrap();
    let port = cahier_tests::free_port();
    let site = Arc::new(Site::start_with(dir.path(), port, Vec::new()));
    let base = site.server.base.clone();
    let tokens = reqwest::Client::new();
    // Most people use a large provider; the others are spread over 30 smaller domains
    // (associations, workplaces), each well under the per-domain budget.
    let large = ["gmail.com", "orange.fr", "free.fr", "laposte.net"];
    let email_of = move |i: usize| match i % 5 {
        4 => format!("personne{i}@asso{}.example", i % 30),
        k => format!("personne{i}@{}", large[k]),
    };
    let report = {
        let (tokens, base) = (tokens.clone(), base.clone());
        run_paced(PEOPLE, 16, Some(200.0), Duration::from_secs(60), move |i| {
            let (tokens, base, email) = (tokens.clone(), base.clone(), email_of(i));
            async move {
                let status = raw_sign(
                    &tokens,
                    &base,
                    port,
                    spread_address(30_000 + i),
                    &format!("Personne {i}"),
                    &email,
                )
                .await?;
                anyhow::ensure!(status == 202, "{email}: {status}");
                Ok(())
            }
        })
        .await
    };
    assert_eq!(report.ok, PEOPLE, "{}", report.summary());
    for i in 0..PEOPLE {
        let c = confirm(&tokens, &base, &site.confirm_token(&email_of(i)))
            .await
            .unwrap();
        assert_eq!(c, 200, "{}", email_of(i));
    }
    let held = site.sql(
        "SELECT COUNT(*) FROM signatures WHERE status != 'confirmed'",
        &[],
    );
    let count: Value = reqwest::get(format!("{base}/api/petitions/{SLUG}/count"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    println!(
        "control: {PEOPLE} signers from {PEOPLE} networks {}; counted {}, held or pending {held}",
        report.summary(),
        count["count"]
    );
    assert_eq!(count["count"], PEOPLE as u64);
    site.log_agrees_with_count("three hundred").await;
    assert_eq!(held, 0);
}

/// Cleanup: 10,000 fraudulent signatures from one prefix in one evening (1,000 of them even
/// confirmed through catch-all mailboxes) among 1,000 legitimate ones, some from the same prefix
/// at other hours. The real `cahier admin`: the dry run says 10,000, the invalidation removes
/// exactly those, and a recount agrees with the counter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_10000_from_one_prefix_in_one_evening() {
    use cahier_function::store::sqlite::SqliteStore;
    use cahier_function::store::{NewSignature, Store};
    const FRAUD: usize = 10_000;
    const LEGIT: usize = 1_000;
    let dir = tempfile::tempdir().unwrap();
    let (secrets, _) = secrets();
    let db = dir.path().join("signatures.sqlite3");
    let store = SqliteStore::open(&db).unwrap();
    let hasher = Hasher::new(&secrets.pepper).unwrap();
    let now = cahier_function::now();
    let evening = now - 30 * 3600; // yesterday, a five-hour evening
    let sig = |email: String, ip: IpAddr, at: i64| NewSignature {
        petition: SLUG.into(),
        email_hash: hasher.email(&email),
        email_domain: email.split('@').nth(1).unwrap().into(),
        ip_hash: hasher.ip(ip),
        prefix_hash: hasher.prefix(ip),
        network: cahier_function::network::network_of(ip),
        name_hash: hasher.name("Jean Martin"),
        sealed: b"sealed".to_vec(),
        lang: "fr".into(),
        public: false,
        newsletter: false,
        hold_reason: None,
        flags: Vec::new(),
        created_at: at,
        expires_at: now + 86_400,
        budgets: Vec::new(),
        deferred_mail: None,
        listing: None,
        region: None,
    };
    let started = Instant::now();
    for i in 0..FRAUD {
        let ip: IpAddr = format!("127.99.9.{}", 1 + i % 250).parse().unwrap();
        let email = format!("f{i}@catchall.example");
        store
            .sign(&sig(
                email.clone(),
                ip,
                evening + (i as i64 * 5 * 3600) / FRAUD as i64,
            ))
            .await
            .unwrap();
        if i % 10 == 0 {
            store
                .confirm(SLUG, &hasher.email(&email), now)
                .await
                .unwrap();
        }
    }
    for i in 0..LEGIT {
        let email = format!("l{i}@example.org");
        // A tenth from the same prefix but in the morning; the others from elsewhere, in the
        // same evening.
        let (ip, at): (IpAddr, i64) = if i % 10 == 0 {
            (
                "127.99.9.200".parse().unwrap(),
                evening - 10 * 3600 + i as i64,
            )
        } else {
            (spread_address(40_000 + i), evening + i as i64 * 10)
        };
        store.sign(&sig(email.clone(), ip, at)).await.unwrap();
        store
            .confirm(SLUG, &hasher.email(&email), now)
            .await
            .unwrap();
    }
    let seeded = started.elapsed();
    assert_eq!(
        store.count(SLUG).await.unwrap().count,
        (LEGIT + FRAUD / 10) as u64
    );

    let site_admin = |args: &[&str]| -> Value {
        let out = Command::new(cahier_binary())
            .arg("admin")
            .arg("--store")
            .arg(format!("sqlite:{}", db.display()))
            .arg("--json")
            .args(args)
            .env("CAHIER_PEPPER", hex::encode(&secrets.pepper))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cahier admin {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let from = evening.to_string();
    let to = (evening + 5 * 3600).to_string();
    let criteria = [
        "--petition",
        SLUG,
        "--ip-prefix",
        "127.99.9.0/24",
        "--from",
        &from,
        "--to",
        &to,
    ];
    let t = Instant::now();
    let dry = site_admin(&[&["invalidate"], &criteria[..]].concat());
    let dry_secs = t.elapsed().as_secs_f64();
    assert_eq!(dry["matched"], FRAUD as u64, "{dry}");
    let t = Instant::now();
    let done = site_admin(
        &[
            &["invalidate"],
            &criteria[..],
            &["--yes", "--expect", "10000"],
        ]
        .concat(),
    );
    let apply_secs = t.elapsed().as_secs_f64();
    let recount = site_admin(&["recount", "--petition", SLUG]);
    println!(
        "cleanup: seeded {FRAUD} fraudulent + {LEGIT} legitimate in {:.1}s; dry run matched {} in {dry_secs:.2}s; \
         invalidate {apply_secs:.2}s: {}; recount {}",
        seeded.as_secs_f64(),
        dry["matched"],
        done["by_petition"],
        recount["petitions"]
    );
    assert_eq!(done["by_petition"][0]["changed"], FRAUD as u64, "{done}");
    assert_eq!(store.count(SLUG).await.unwrap().count, LEGIT as u64);
    assert_eq!(recount["petitions"][0]["after"], LEGIT as u64, "{recount}");
    assert_eq!(recount["petitions"][0]["repaired"], false, "{recount}");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let by = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(
        by("SELECT COUNT(*) FROM signatures WHERE status = 'invalidated'"),
        FRAUD as i64
    );
    assert_eq!(
        by("SELECT COUNT(*) FROM signatures WHERE status = 'confirmed' AND email_domain = 'example.org'"),
        LEGIT as i64,
        "no legitimate signature touched"
    );

    // The log the sequencer makes of that evening: every confirmation counted, and the
    // invalidated ones that had counted shown as uncounted with their reason.
    let logs = tempfile::tempdir().unwrap();
    let key = cahier_tlog::LogKey::generate();
    let site_url = "https://petitions.example";
    let mut task = cahier_function::log_task::LogTask::new(
        Arc::new(SqliteStore::open(&db).unwrap()),
        logs.path().to_path_buf(),
        key.clone(),
        site_url,
    );
    task.set_durable(false);
    let t = Instant::now();
    let pass = task.run_once().await.unwrap();
    let (_, audit) = log_folder::audit_log(logs.path(), site_url, SLUG, &key.public_base64(), None);
    println!(
        "cleanup: the log integrated {} events in {:.2}s: {} counted, uncounted {:?}, count {}",
        pass.added,
        t.elapsed().as_secs_f64(),
        audit.tally.counted,
        audit.tally.uncounted,
        audit.tally.count
    );
    assert!(audit.problems.is_empty(), "{:?}", audit.problems);
    assert!(
        audit.tally.anomalies.is_empty(),
        "{:?}",
        audit.tally.anomalies
    );
    assert_eq!(audit.tally.counted, (LEGIT + FRAUD / 10) as u64);
    assert_eq!(
        audit.tally.uncounted.get("invalidated"),
        Some(&((FRAUD / 10) as u64))
    );
    assert_eq!(audit.tally.count, LEGIT as u64);
}

/// Confirms, as their owners would, every mail in the outbox not confirmed yet, until no new
/// mail arrives (confirmations release the mails queued behind a network's budget). Returns the
/// rounds it took.
async fn confirm_as_mails_arrive(
    site: &Site,
    client: &reqwest::Client,
    confirmed: &mut std::collections::HashSet<String>,
) -> usize {
    let mut rounds = 0;
    loop {
        let fresh: Vec<(String, String)> = cahier_tests::outbox::read_dir(&site.outbox)
            .into_iter()
            .filter(|m| !confirmed.contains(&m.to))
            .filter_map(|m| cahier_tests::outbox::token(&m.text, "confirm").map(|t| (m.to, t)))
            .collect();
        if fresh.is_empty() {
            return rounds;
        }
        rounds += 1;
        for (to, token) in fresh {
            let status = confirm(client, &site.server.base, &token).await.unwrap();
            assert_eq!(status, 200, "{to}");
            confirmed.insert(to);
        }
    }
}

/// A realistic crowd: most people on large providers, the others on small domains; a third of
/// them behind shared addresses (a carrier's CGNAT, a campus NAT) within one minute. Counted
/// by confirmation alone, without any organizer action.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_realistic_crowd_with_shared_addresses_is_counted() {
    const ALONE: usize = 200;
    const CGNAT: usize = 60; // 6 addresses of one /24, 10 people each
    const CAMPUS: usize = 40; // 4 addresses of another /24, 10 people each
    const PEOPLE: usize = ALONE + CGNAT + CAMPUS;
    let dir = tempfile::tempdir().unwrap();
    let port = cahier_tests::free_port();
    let site = Arc::new(Site::start_with(dir.path(), port, Vec::new()));
    let base = site.server.base.clone();
    let tokens = reqwest::Client::new();
    let large = [
        "gmail.com",
        "orange.fr",
        "free.fr",
        "laposte.net",
        "outlook.fr",
    ];
    let email_of = move |i: usize| match i % 4 {
        3 => format!("personne{i}@asso{}.example", i % 40),
        k => format!("personne{i}@{}", large[(i / 4 + k) % large.len()]),
    };
    let source_of = |i: usize| -> IpAddr {
        if i < ALONE {
            spread_address(60_000 + i)
        } else if i < ALONE + CGNAT {
            format!("127.70.7.{}", 1 + (i - ALONE) % 6).parse().unwrap()
        } else {
            format!("127.71.3.{}", 1 + (i - ALONE - CGNAT) % 4)
                .parse()
                .unwrap()
        }
    };
    let report = {
        let (tokens, base) = (tokens.clone(), base.clone());
        run_paced(PEOPLE, 16, Some(200.0), Duration::from_secs(60), move |i| {
            let (tokens, base, email) = (tokens.clone(), base.clone(), email_of(i));
            async move {
                let status = raw_sign(
                    &tokens,
                    &base,
                    port,
                    source_of(i),
                    &format!("Personne {i}"),
                    &email,
                )
                .await?;
                anyhow::ensure!(status == 202, "{email}: {status}");
                Ok(())
            }
        })
        .await
    };
    assert_eq!(report.ok, PEOPLE, "{}", report.summary());
    let mailed_at_once = site.mails();
    let mut confirmed = std::collections::HashSet::new();
    let rounds = confirm_as_mails_arrive(&site, &tokens, &mut confirmed).await;
    let count: Value = reqwest::get(format!("{base}/api/petitions/{SLUG}/count"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let counted = count["count"].as_u64().unwrap();
    let shared_counted = site.sql(
        "SELECT COUNT(*) FROM signatures WHERE status = 'confirmed' AND prefix_hash IN (?1, ?2)",
        &[
            &site
                .hasher()
                .prefix("127.70.7.1".parse::<IpAddr>().unwrap()),
            &site
                .hasher()
                .prefix("127.71.3.1".parse::<IpAddr>().unwrap()),
        ],
    );
    let pct = 100.0 * counted as f64 / PEOPLE as f64;
    println!(
        "crowd: {PEOPLE} people ({ALONE} alone, {CGNAT} behind 6 CGNAT addresses, {CAMPUS} behind 4 campus \
         addresses) {}; {mailed_at_once} mailed at once, the rest released by {rounds} rounds of confirmations; \
         counted {counted} ({pct:.1} %), {shared_counted} of the {} behind shared addresses; {} mails",
        report.summary(),
        CGNAT + CAMPUS,
        site.mails()
    );
    assert!(pct >= 99.0, "{counted} of {PEOPLE} counted");
    let log = site.log_agrees_with_count("realistic crowd").await;
    assert_eq!(
        log.counted, counted,
        "every confirmation is a counted entry"
    );
}

/// Aliases: one mailbox signed under many spellings counts once and gets one first
/// confirmation; protected addresses spelled any way are held and count nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aliases_of_one_mailbox_and_of_protected_domains() {
    let dir = tempfile::tempdir().unwrap();
    let port = cahier_tests::free_port();
    let site = Site::start_with(dir.path(), port, Vec::new());
    let base = site.server.base.clone();
    let tokens = reqwest::Client::new();
    let one = [
        "Jane.Doe@gmail.com",
        "JANE.DOE@GMAIL.COM",
        "janedoe@ｇｍａｉｌ.com",
        "jane.doe+noel@gmail.com",
        "j.a.n.e.d.o.e@googlemail.com",
        "ＪＡＮＥＤＯＥ@Gmail.com",
    ];
    for (i, email) in one.iter().enumerate() {
        let status = raw_sign(
            &tokens,
            &base,
            port,
            spread_address(70_000 + i),
            "Jane Doe",
            email,
        )
        .await
        .unwrap();
        assert_eq!(status, 202, "{email}");
    }
    let protected = [
        "depute1@aſſemblee-nationale.fr",
        "depute2@ASSEMBLEE-NATIONALE.FR",
        "depute3@ａｓｓｅｍｂｌｅｅ-nationale.fr",
        "senateur1@ＳＥＮＡＴ.fr",
        "senateur2@senat.ｆｒ",
        "senateur3@senat\u{3002}fr",
    ];
    for (i, email) in protected.iter().enumerate() {
        let status = raw_sign(
            &tokens,
            &base,
            port,
            spread_address(71_000 + i),
            "Élu",
            email,
        )
        .await
        .unwrap();
        assert_eq!(status, 202, "{email}");
    }
    let jane = site.hasher().email("janedoe@gmail.com");
    let rows_jane = site.sql(
        "SELECT COUNT(*) FROM signatures WHERE email_hash = ?1",
        &[&jane],
    );
    let mails = cahier_tests::outbox::read_dir(&site.outbox);
    let to_jane: Vec<&str> = mails
        .iter()
        .filter(|m| m.to.contains("jane"))
        .map(|m| m.subject.as_str())
        .collect();
    let held = site.sql(
        "SELECT COUNT(*) FROM signatures WHERE status = 'held' AND hold_reason = 'protected domain'",
        &[],
    );
    // Every owner of a protected address confirms: still not counted.
    let mut confirmed = std::collections::HashSet::new();
    confirm_as_mails_arrive(&site, &tokens, &mut confirmed).await;
    let counted_protected = site.sql(
        "SELECT COUNT(*) FROM signatures WHERE status = 'confirmed' AND email_domain IN ('senat.fr', 'assemblee-nationale.fr')",
        &[],
    );
    let count: Value = reqwest::get(format!("{base}/api/petitions/{SLUG}/count"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    println!(
        "aliases: {} spellings of one gmail mailbox: {rows_jane} signature, mails {to_jane:?}; \
         {} protected addresses in other spellings: {held} held, {counted_protected} counted; count {}",
        one.len(),
        protected.len(),
        count["count"]
    );
    assert_eq!(rows_jane, 1);
    assert_eq!(
        to_jane.iter().filter(|s| !s.contains("déjà")).count(),
        1,
        "one first confirmation: {to_jane:?}"
    );
    assert!(to_jane.len() <= 2, "{to_jane:?}");
    assert_eq!(held, protected.len() as i64);
    assert_eq!(counted_protected, 0);
    assert_eq!(count["count"], 1, "only Jane counts");
    site.log_agrees_with_count("aliases").await;
}
