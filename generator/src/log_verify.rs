//! `cahier log verify`: an outside monitor of the petitions' transparency logs.
//!
//! For each petition: fetch the signed checkpoint and every bundle and tile of its tree, check
//! the signature with the collective's public key (pinned with `--key`, or read from the
//! site's manifest), rebuild the whole tree from the entries (see [`cahier_tlog::audit`]),
//! check that it extends the last checkpoint this monitor accepted (kept in a state folder),
//! recount, and compare with the petition's count endpoint.

use anyhow::{bail, Context};
use cahier_tlog::audit::{self, Head};
use cahier_tlog::checkpoint::{self, parse_public_key};
use cahier_tlog::tally::Tally;
use ed25519_dalek::VerifyingKey;
use serde::Serialize;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use url::Url;

/// Where the manifest publishes the collective's log key (base64 of the Ed25519 public key).
pub const MANIFEST_KEY_FIELD: &str = "log_public_key";

#[derive(Debug, Clone)]
pub struct Options {
    /// The live site, ending in `/`.
    pub site: Url,
    /// Only this petition (all of the manifest's otherwise).
    pub petition: Option<String>,
    /// The public key, pinned (base64, or a verifier key `<name>+<id>+<base64>`).
    pub key: Option<String>,
    /// Where the count endpoint lives [default: `<site>/api`].
    pub api: Option<Url>,
    /// Last accepted checkpoints, one file per log.
    pub state_dir: PathBuf,
    pub timeout: Duration,
    pub concurrency: usize,
}

/// One petition's log, checked.
#[derive(Debug, Clone, Serialize)]
pub struct LogReport {
    pub petition: String,
    pub origin: String,
    /// Entries in the checkpoint (0 when it could not be read).
    pub size: u64,
    pub root: Option<String>,
    pub tally: Option<Tally>,
    /// What `/api/petitions/<slug>/count` says.
    pub count_endpoint: Option<u64>,
    /// Size of the checkpoint accepted before, if any.
    pub previous_size: Option<u64>,
    pub problems: Vec<String>,
    pub ok: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub site: String,
    pub logs: Vec<LogReport>,
    pub ok: bool,
}

impl Report {
    pub fn summary(&self) -> String {
        let bad = self.logs.iter().filter(|l| !l.ok).count();
        match bad {
            0 => format!("OK: {} log(s) verified", self.logs.len()),
            n => format!("FAILED: {n} of {} log(s) do not verify", self.logs.len()),
        }
    }
}

impl std::fmt::Display for LogReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{} ({})", self.petition, self.origin)?;
        if let Some(t) = &self.tally {
            writeln!(f, "  entries    {}", t.entries)?;
            writeln!(f, "  counted    {}", t.counted)?;
            let unc: u64 = t.uncounted.values().sum();
            let reasons: Vec<String> = t
                .uncounted
                .iter()
                .map(|(r, n)| format!("{r} {n}"))
                .collect();
            match reasons.is_empty() {
                true => writeln!(f, "  uncounted  0")?,
                false => writeln!(f, "  uncounted  {unc} ({})", reasons.join(", "))?,
            }
            writeln!(
                f,
                "  offline    {} signature(s) in {} batch(es)",
                t.offline_signatures, t.offline_batches
            )?;
            write!(f, "  count      {}", t.count)?;
            match self.count_endpoint {
                Some(c) => writeln!(f, " (count endpoint: {c})")?,
                None => writeln!(f)?,
            }
        }
        for p in &self.problems {
            writeln!(f, "  MISMATCH: {p}")?;
        }
        Ok(())
    }
}

fn client(timeout: Duration) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .user_agent(concat!("cahier-log-verify/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("while creating the HTTP client")
}

/// Largest body accepted: a hostile site cannot exhaust the monitor's memory. Tiles are at
/// most 8 KiB and bundles 12 KiB; the manifest and checkpoint are small.
const MAX_BODY: usize = 4 << 20;

/// The body of `url`; None on 404.
async fn get(client: &reqwest::Client, url: Url) -> anyhow::Result<Option<Vec<u8>>> {
    let mut resp = client
        .get(url.clone())
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    if resp.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !resp.status().is_success() {
        bail!("GET {url}: status {}", resp.status());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.with_context(|| format!("GET {url}"))? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_BODY {
            bail!("GET {url}: more than {MAX_BODY} bytes");
        }
    }
    Ok(Some(body))
}

/// What the monitor takes from the manifest.
struct Site {
    base_url: String,
    key: VerifyingKey,
    petitions: Vec<String>,
}

async fn site(client: &reqwest::Client, opts: &Options) -> anyhow::Result<Site> {
    let url = opts.site.join("api/manifest.json")?;
    let manifest: Option<serde_json::Value> = match get(client, url.clone()).await {
        Ok(Some(b)) => {
            Some(serde_json::from_slice(&b).with_context(|| format!("{url} is not JSON"))?)
        }
        Ok(None) | Err(_) if opts.key.is_some() && opts.petition.is_some() => None,
        Ok(None) => bail!("{url}: not found (give --key and --petition to check without it)"),
        Err(e) => return Err(e),
    };
    let field = |name: &str| {
        manifest
            .as_ref()
            .and_then(|m| m["site"][name].as_str())
            .map(str::to_string)
    };
    let key = match (&opts.key, field(MANIFEST_KEY_FIELD)) {
        (Some(k), _) => parse_public_key(k).context("--key")?,
        (None, Some(k)) => {
            parse_public_key(&k).with_context(|| format!("{url}: site.{MANIFEST_KEY_FIELD}"))?
        }
        (None, None) => bail!("{url} publishes no site.{MANIFEST_KEY_FIELD}: give --key"),
    };
    let base_url = field("base_url").unwrap_or_else(|| opts.site.to_string());
    let petitions = match &opts.petition {
        Some(p) => vec![p.clone()],
        None => manifest
            .as_ref()
            .and_then(|m| m["petitions"].as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|p| p["slug"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
    };
    Ok(Site {
        base_url,
        key,
        petitions,
    })
}

/// Verifies every log; errors only when nothing could be checked at all.
pub async fn run(opts: &Options) -> anyhow::Result<Report> {
    let client = client(opts.timeout)?;
    let site = site(&client, opts).await?;
    if site.petitions.is_empty() {
        bail!("the manifest lists no petition: nothing to verify");
    }
    let mut logs = Vec::new();
    for slug in &site.petitions {
        logs.push(verify_log(&client, opts, &site, slug).await);
    }
    let ok = logs.iter().all(|l| l.ok);
    Ok(Report {
        site: opts.site.to_string(),
        logs,
        ok,
    })
}

fn state_file(opts: &Options, origin: &str) -> PathBuf {
    let name: String = origin
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    opts.state_dir.join(format!("{name}.checkpoint"))
}

async fn verify_log(
    client: &reqwest::Client,
    opts: &Options,
    site: &Site,
    slug: &str,
) -> LogReport {
    let origin = checkpoint::origin(&site.base_url, slug);
    let mut r = LogReport {
        petition: slug.to_string(),
        origin: origin.clone(),
        size: 0,
        root: None,
        tally: None,
        count_endpoint: None,
        previous_size: None,
        problems: Vec::new(),
        ok: false,
    };
    if let Err(e) = check(client, opts, site, slug, &origin, &mut r).await {
        r.problems.push(format!("{e:#}"));
    }
    r.ok = r.problems.is_empty();
    r
}

async fn check(
    client: &reqwest::Client,
    opts: &Options,
    site: &Site,
    slug: &str,
    origin: &str,
    r: &mut LogReport,
) -> anyhow::Result<()> {
    let log = opts.site.join(&format!("{slug}/log/"))?;
    let cp_url = log.join("checkpoint")?;
    let cp_bytes = get(client, cp_url.clone())
        .await?
        .with_context(|| format!("{cp_url}: not found"))?;
    let cp = checkpoint::open(&cp_bytes, origin, &site.key)
        .with_context(|| format!("{cp_url}: the signature does not verify"))?;
    r.size = cp.size;
    r.root = Some(cp.root.to_string());

    let state = state_file(opts, origin);
    let seen = match std::fs::read(&state) {
        Ok(b) => {
            let v = checkpoint::open(&b, origin, &site.key).with_context(|| {
                format!("the stored checkpoint {} does not open", state.display())
            })?;
            r.previous_size = Some(v.size);
            Some(Head {
                size: v.size,
                root: v.root,
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("while reading {}", state.display())),
    };

    let files = fetch_all(client, &log, audit::files_of(cp.size), opts.concurrency).await?;
    let a = audit::audit(
        Head {
            size: cp.size,
            root: cp.root,
        },
        seen,
        |p| files.get(p).map(|b| b.as_slice()),
    );
    r.problems.extend(a.problems.iter().map(|p| p.to_string()));
    r.problems.extend(
        a.tally
            .anomalies
            .iter()
            .map(|x| format!("entry {}: {}", x.index, x.problem)),
    );

    let api = match &opts.api {
        Some(a) => a.clone(),
        None => opts.site.join("api/")?,
    };
    let count_url = api.join(&format!("petitions/{slug}/count"))?;
    match get(client, count_url.clone()).await {
        Ok(Some(b)) => {
            let v: serde_json::Value =
                serde_json::from_slice(&b).with_context(|| format!("{count_url} is not JSON"))?;
            let c = v["count"]
                .as_u64()
                .with_context(|| format!("{count_url} has no count"))?;
            r.count_endpoint = Some(c);
            if c != a.tally.count {
                r.problems.push(format!(
                    "{count_url} says {c}, the log counts {}",
                    a.tally.count
                ));
            }
        }
        Ok(None) => r.problems.push(format!("{count_url}: not found")),
        Err(e) => r.problems.push(format!("{e:#}")),
    }
    r.tally = Some(a.tally);

    if r.problems.is_empty() {
        std::fs::create_dir_all(&opts.state_dir)
            .with_context(|| format!("while creating {}", opts.state_dir.display()))?;
        let tmp = state.with_extension("tmp");
        std::fs::write(&tmp, &cp_bytes)
            .and_then(|()| std::fs::rename(&tmp, &state))
            .with_context(|| format!("while writing {}", state.display()))?;
    }
    Ok(())
}

/// Fetches `paths` under `base`, a few at a time; a missing file is simply absent.
async fn fetch_all(
    client: &reqwest::Client,
    base: &Url,
    paths: Vec<String>,
    concurrency: usize,
) -> anyhow::Result<HashMap<String, Vec<u8>>> {
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for p in paths {
        let url = base.join(&p)?;
        let client = client.clone();
        let permits = permits.clone();
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await.expect("never closed");
            (p, get(&client, url).await)
        });
    }
    let mut out = HashMap::new();
    while let Some(done) = tasks.join_next().await {
        let (p, body) = done.context("a fetch task failed")?;
        if let Some(b) = body? {
            out.insert(p, b);
        }
    }
    Ok(out)
}

/// The default state folder: `$XDG_STATE_HOME/cahier/log-verify` or `~/.local/state/…`.
pub fn default_state_dir() -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("cahier").join("log-verify")
}
