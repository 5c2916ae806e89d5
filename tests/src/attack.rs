//! Harness for the attack replays: HTTP clients bound to many distinct loopback source
//! addresses, and a bounded runner that measures latencies.
//!
//! Linux routes the whole of 127.0.0.0/8 to the loopback interface, so a socket can bind any
//! 127.x.y.z as its source without setup, and a server listening on 127.0.0.1 accepts from all
//! of them and sees each as a distinct peer. Traffic stays on loopback: the destination is always
//! the server under test on 127.0.0.1.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Per-request timeout of every harness client: a stuck server fails the test, not hangs it.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A client whose connections come from `source` (a loopback address).
pub fn client_from(source: IpAddr) -> anyhow::Result<reqwest::Client> {
    anyhow::ensure!(
        source.is_loopback(),
        "attack clients bind loopback sources only, not {source}"
    );
    reqwest::Client::builder()
        .local_address(source)
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        // Few idle connections per client: thousands of clients must not exhaust descriptors.
        .pool_max_idle_per_host(1)
        .pool_idle_timeout(Duration::from_secs(5))
        // Plain HTTP to loopback: no proxy from the environment, and an empty trust store, so
        // that building each client does not load and parse the system's certificates (with
        // thousands of clients in a debug build, that was a minute of the attack tests).
        .no_proxy()
        .tls_certs_only(std::iter::empty())
        .build()
        .map_err(|e| anyhow::anyhow!("building a client bound to {source}: {e}"))
}

/// `n` clients (at most 254) from `127.a.b.1`, `127.a.b.2`, …: one attacker's /24, as the 218
/// servers of the Tuesday attack. `prefix` is `[127, a, b]`.
pub fn clients_in_prefix(
    prefix: [u8; 3],
    n: usize,
) -> anyhow::Result<Vec<(IpAddr, reqwest::Client)>> {
    anyhow::ensure!(
        prefix[0] == 127,
        "the prefix must be in 127.0.0.0/8, got {prefix:?}"
    );
    anyhow::ensure!(n <= 254, "a /24 has 254 host addresses, asked for {n}");
    (1..=n as u8)
        .map(|host| {
            let ip = IpAddr::V4(Ipv4Addr::new(prefix[0], prefix[1], prefix[2], host));
            Ok((ip, client_from(ip)?))
        })
        .collect()
}

/// The `i`-th spread address: a distinct /24 for each of the first 65,024 indexes, in
/// 127.1.0.0–127.254.255.255 (127.0.0.0/16, where the server listens, is never used).
pub fn spread_address(i: usize) -> IpAddr {
    let net = i % (254 * 256);
    let host = 1 + (i / (254 * 256)) % 254;
    IpAddr::V4(Ipv4Addr::new(
        127,
        1 + (net / 256) as u8,
        (net % 256) as u8,
        host as u8,
    ))
}

/// `n` clients from `n` distinct addresses spread over as many /24s as possible: the ~4,000
/// sources of the Thursday flood, or distinct legitimate signers.
pub fn clients_spread(n: usize) -> anyhow::Result<Vec<(IpAddr, reqwest::Client)>> {
    anyhow::ensure!(
        n <= 254 * 256 * 254,
        "at most {} spread addresses",
        254 * 256 * 254
    );
    (0..n)
        .map(|i| {
            let ip = spread_address(i);
            Ok((ip, client_from(ip)?))
        })
        .collect()
}

/// What a bounded run did.
#[derive(Debug, Default, Clone)]
pub struct RunReport {
    /// Latency of every job that finished (Ok or Err), unordered.
    pub latencies: Vec<Duration>,
    pub ok: usize,
    pub failed: usize,
    /// Still running when the deadline came; cancelled.
    pub timed_out: usize,
    /// Never started because the deadline came first.
    pub not_started: usize,
    /// The first few errors, for the test's message.
    pub errors: Vec<String>,
    pub elapsed: Duration,
}

impl RunReport {
    /// The `q`-quantile (0.0–1.0) of the latencies, nearest rank.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        if self.latencies.is_empty() {
            return None;
        }
        let mut v = self.latencies.clone();
        v.sort_unstable();
        let rank = ((q.clamp(0.0, 1.0) * v.len() as f64).ceil() as usize).clamp(1, v.len());
        Some(v[rank - 1])
    }

    pub fn p50(&self) -> Option<Duration> {
        self.quantile(0.50)
    }

    pub fn p99(&self) -> Option<Duration> {
        self.quantile(0.99)
    }

    /// Finished jobs per second over the whole run.
    pub fn rate(&self) -> f64 {
        (self.ok + self.failed) as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// One line for the test's output.
    pub fn summary(&self) -> String {
        let ms = |d: Option<Duration>| {
            d.map_or("-".to_string(), |d| {
                format!("{:.1} ms", d.as_secs_f64() * 1e3)
            })
        };
        format!(
            "ok {} failed {} timed out {} not started {} in {:.2} s ({:.0}/s), p50 {}, p99 {}",
            self.ok,
            self.failed,
            self.timed_out,
            self.not_started,
            self.elapsed.as_secs_f64(),
            self.rate(),
            ms(self.p50()),
            ms(self.p99())
        )
    }
}

/// Runs `f(0)`, …, `f(total - 1)` with at most `concurrency` at once, each on its own task, and
/// stops at `deadline` (jobs still running are cancelled, the rest never start).
pub async fn run_bounded<F, Fut>(
    total: usize,
    concurrency: usize,
    deadline: Duration,
    f: F,
) -> RunReport
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    run_paced(total, concurrency, None, deadline, f).await
}

/// [`run_bounded`] that also starts at most `per_second` jobs per second (a sustained rate).
pub async fn run_paced<F, Fut>(
    total: usize,
    concurrency: usize,
    per_second: Option<f64>,
    deadline: Duration,
    mut f: F,
) -> RunReport
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let start = Instant::now();
    let end = tokio::time::Instant::from_std(start + deadline);
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = JoinSet::new();
    let mut report = RunReport::default();
    let mut started = 0;

    for i in 0..total {
        if let Some(rate) = per_second.filter(|r| *r > 0.0) {
            let at =
                tokio::time::Instant::from_std(start + Duration::from_secs_f64(i as f64 / rate));
            if at >= end {
                break;
            }
            tokio::time::sleep_until(at).await;
        }
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            _ = tokio::time::sleep_until(end) => break,
        };
        if tokio::time::Instant::now() >= end {
            break;
        }
        let job = f(i);
        tasks.spawn(async move {
            let t = Instant::now();
            let result = tokio::time::timeout_at(end, job).await;
            drop(permit);
            (t.elapsed(), result)
        });
        started += 1;
        // Collect finished jobs as we go so that the set stays small.
        while let Some(done) = tasks.try_join_next() {
            record(&mut report, done);
        }
    }
    report.not_started = total - started;
    while let Some(done) = tasks.join_next().await {
        record(&mut report, done);
    }
    report.elapsed = start.elapsed();
    report
}

type Done = Result<
    (
        Duration,
        Result<anyhow::Result<()>, tokio::time::error::Elapsed>,
    ),
    tokio::task::JoinError,
>;

fn record(report: &mut RunReport, done: Done) {
    let error = |report: &mut RunReport, e: String| {
        report.failed += 1;
        if report.errors.len() < 5 {
            report.errors.push(e);
        }
    };
    match done {
        Ok((lat, Ok(Ok(())))) => {
            report.ok += 1;
            report.latencies.push(lat);
        }
        Ok((lat, Ok(Err(e)))) => {
            report.latencies.push(lat);
            error(report, format!("{e:#}"));
        }
        Ok((_, Err(_elapsed))) => report.timed_out += 1,
        Err(join) => error(report, format!("job panicked: {join}")),
    }
}

/// How many kinds of junk [`junk`] makes.
pub const JUNK_KINDS: usize = 6;

/// One request of the Thursday flood's junk, kind `k` (0..[`JUNK_KINDS`]), and the status the
/// function must answer it with: malformed JSON (400), a wrong content type (415), an oversized
/// body (413), an invalid address (400), an unknown petition (404), a spent captcha answer
/// `replay` (403). `fields` are merged into the last one's body: what the petition requires
/// besides (the example petition asks for a postcode), so that only the captcha is wrong.
pub struct Junk {
    pub path: String,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub expected: u16,
}

pub fn junk(k: usize, slug: &str, replay: &str, fields: &serde_json::Value) -> Junk {
    use serde_json::json;
    let sign = format!("/api/petitions/{slug}/sign");
    let bot = |email: &str| {
        json!({
            "name": "Bot", "email": email, "consent": true,
            "h-captcha-response": "x", "lang": "fr",
        })
        .to_string()
        .into_bytes()
    };
    let (path, content_type, body, expected) = match k % JUNK_KINDS {
        0 => (sign, "application/json", br#"{"name": "x", "#.to_vec(), 400),
        1 => (sign, "text/plain", b"name=x".to_vec(), 415),
        2 => (
            sign,
            "application/json",
            json!({ "name": "A".repeat(20_000) })
                .to_string()
                .into_bytes(),
            413,
        ),
        3 => (sign, "application/json", bot("not-an-address"), 400),
        4 => (
            "/api/petitions/no-such-petition/sign".to_string(),
            "application/json",
            bot("bot@example.org"),
            404,
        ),
        _ => {
            let mut body = json!({
                "name": "Replay", "email": "replay@example.org", "consent": true,
                "h-captcha-response": replay, "lang": "fr", "fill_ms": 5000,
            });
            if let (Some(b), Some(extra)) = (body.as_object_mut(), fields.as_object()) {
                b.extend(extra.clone());
            }
            (sign, "application/json", body.to_string().into_bytes(), 403)
        }
    };
    Junk {
        path,
        content_type,
        body,
        expected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn spread_addresses_are_distinct_loopback_and_one_per_slash_24() {
        let ips: Vec<IpAddr> = (0..70_000).map(spread_address).collect();
        let distinct: HashSet<&IpAddr> = ips.iter().collect();
        assert_eq!(distinct.len(), ips.len());
        assert!(ips
            .iter()
            .all(|ip| ip.is_loopback() && !ip.to_string().starts_with("127.0.")));
        let nets: HashSet<String> = ips[..4_000]
            .iter()
            .map(|ip| ip.to_string().rsplit_once('.').unwrap().0.to_string())
            .collect();
        assert_eq!(nets.len(), 4_000);
    }

    #[test]
    fn refuses_non_loopback_sources_and_oversized_prefixes() {
        assert!(client_from("192.0.2.1".parse().unwrap()).is_err());
        assert!(clients_in_prefix([10, 0, 0], 1).is_err());
        assert!(clients_in_prefix([127, 9, 9], 255).is_err());
    }

    #[test]
    fn quantiles_by_nearest_rank() {
        let r = RunReport {
            latencies: (1..=100).rev().map(Duration::from_millis).collect(),
            ..Default::default()
        };
        assert_eq!(r.p50(), Some(Duration::from_millis(50)));
        assert_eq!(r.p99(), Some(Duration::from_millis(99)));
        assert_eq!(r.quantile(1.0), Some(Duration::from_millis(100)));
        assert_eq!(r.quantile(0.0), Some(Duration::from_millis(1)));
        assert_eq!(RunReport::default().p99(), None);
    }

    #[tokio::test]
    async fn runner_bounds_concurrency_and_counts_outcomes() {
        let live = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let peak = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let report = run_bounded(200, 8, Duration::from_secs(30), |i| {
            let (live, peak) = (live.clone(), peak.clone());
            async move {
                use std::sync::atomic::Ordering::SeqCst;
                let now = live.fetch_add(1, SeqCst) + 1;
                peak.fetch_max(now, SeqCst);
                tokio::time::sleep(Duration::from_millis(1)).await;
                live.fetch_sub(1, SeqCst);
                anyhow::ensure!(i % 10 != 0, "job {i} fails");
                Ok(())
            }
        })
        .await;
        assert_eq!(
            (
                report.ok,
                report.failed,
                report.timed_out,
                report.not_started
            ),
            (180, 20, 0, 0)
        );
        assert_eq!(report.latencies.len(), 200);
        assert!(peak.load(std::sync::atomic::Ordering::SeqCst) <= 8);
        assert_eq!(report.errors.len(), 5);
    }

    #[tokio::test]
    async fn runner_stops_at_the_deadline() {
        let t = Instant::now();
        let report = run_bounded(1_000, 4, Duration::from_millis(300), |_| async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(())
        })
        .await;
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        assert_eq!(report.timed_out, 4);
        assert_eq!(report.not_started, 996);
        assert_eq!(report.ok, 0);
    }

    #[tokio::test]
    async fn paced_runner_holds_the_rate() {
        let t = Instant::now();
        let report = run_paced(20, 20, Some(100.0), Duration::from_secs(30), |_| async {
            Ok(())
        })
        .await;
        // 20 jobs at 100/s: the last starts at 190 ms.
        assert!(
            t.elapsed() >= Duration::from_millis(190),
            "{:?}",
            t.elapsed()
        );
        assert_eq!(report.ok, 20);
    }
}
