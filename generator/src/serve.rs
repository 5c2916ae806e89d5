//! `cahier serve`: build the site for the local origin, serve it with the signing API on that
//! one origin (the function's [`DevServer`]: SQLite and mails in `.cahier/`, the dev captcha),
//! and rebuild + live-reload whenever a source changes.
//!
//! Everything it writes stays under `<root>/.cahier/`: the site is built into
//! `.cahier/public`, so the user's `public/` (what `cahier build` produces for the CDN) is never
//! touched, and the overrides (local `base_url`/`api_url`, `dev` captcha, development log key)
//! never leak into it.
//!
//! The transparency log: a background task integrates the store's pending events every
//! `--log-interval` into `.cahier/log/<origin>/<slug>/log/` (one folder per origin, such as
//! `127.0.0.1-8080`), outside the built site, so that each rebuild's atomic swap of `.cahier/public` leaves it alone; the dev server serves it at
//! `/<slug>/log/`. Its key is the development `cahier_log_key` of `.cahier/secrets.toml`, and
//! its public key goes into the manifest as `site.log_public_key`.

use crate::offline_sync::{self, Declared, SyncReport};
use crate::site::{self, BuildOptions};
use anyhow::Context;
use cahier_function::dev::{DevServer, DevServerOptions};
use cahier_function::manifest::Manifest;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// The folder of `serve`'s state (secrets, database, outbox, built site), inside the site root.
pub const STATE_DIR: &str = ".cahier";

/// What the watcher looks at, relative to the site root.
pub const WATCHED_DIRS: &[&str] = &["content", "templates", "themes", "static", "i18n"];
pub const CONFIG_FILE: &str = "cahier.toml";

/// Quiet time after the last change before rebuilding (editors write in several steps).
const DEBOUNCE: Duration = Duration::from_millis(100);

#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Site root (holds `cahier.toml`).
    pub root: PathBuf,
    pub bind: IpAddr,
    /// 0 picks a free port.
    pub port: u16,
    pub drafts: bool,
    /// Between two integrations of the transparency log.
    pub log_interval: Duration,
}

/// Builds, serves and watches until Ctrl-C.
pub fn serve(opts: &ServeOptions) -> anyhow::Result<()> {
    let root = std::fs::canonicalize(&opts.root)
        .with_context(|| format!("while opening the site root {}", opts.root.display()))?;
    let state_dir = root.join(STATE_DIR);
    let listen = SocketAddr::new(opts.bind, resolve_port(opts.bind, opts.port)?);
    let url = local_url(listen);
    // The development log key, created with the other development secrets.
    let secrets = cahier_function::secrets::ensure_dev_secrets(&state_dir)?;
    let log_key = cahier_function::secrets::Secrets::load(Some(&secrets.secrets_file), &|_| None)?
        .log_key
        .context("the development secrets have no log key")?;
    let log_key = cahier_tlog::LogKey::from_base64(&log_key)
        .context("while reading cahier_log_key of the development secrets")?;
    let build_opts = BuildOptions {
        root: root.clone(),
        out: state_dir.join("public"),
        drafts: opts.drafts,
        base_url: Some(url.clone()),
        api_url: Some(format!("{url}/api")),
        captcha_provider: Some("dev".to_string()),
        log_public_key: Some(log_key.public_base64()),
    };

    let built = rebuild(&build_opts).context("while building the site")?;
    println!("Built {} in {} ms", root.display(), built.ms);
    let db = state_dir.join("signatures.sqlite3");
    record_offline(&db, &built.offline);
    let manifest = built.manifest;

    let runtime = cahier_function::runtime().context("while starting the async runtime")?;
    runtime.block_on(async move {
        let mut dev = DevServerOptions::new(build_opts.out.clone(), state_dir.clone(), manifest);
        dev.listen = listen;
        dev.log = Some(cahier_function::dev::DevLog {
            dir: state_dir.join("log"),
            key: log_key,
            interval: opts.log_interval,
        });
        let server = DevServer::start(dev).await?;
        let reloader = Reloader {
            state: server.state().clone(),
            reload: server.reload_sender(),
            db,
        };
        // The watcher lives as long as this binding, i.e. until the server stops.
        let _watcher = watch(&root, build_opts, reloader)?;
        println!("Serving {url}/ (site and API; mails in {STATE_DIR}/outbox/)");
        println!(
            "Watching content/, templates/, themes/, static/, i18n/ and cahier.toml; Ctrl-C stops."
        );
        server.wait().await?;
        println!("Stopped.");
        Ok(())
    })
}

/// What one build gives the server.
pub struct Rebuilt {
    pub manifest: Manifest,
    /// The paper batches of the front matters, to record in the store.
    pub offline: Vec<Declared>,
    pub ms: u128,
}

/// Builds the site and reads back the petition manifest it wrote.
pub fn rebuild(opts: &BuildOptions) -> anyhow::Result<Rebuilt> {
    let start = Instant::now();
    let report = site::build(opts)?;
    let path = opts.out.join("api/manifest.json");
    let bytes =
        std::fs::read(&path).with_context(|| format!("while reading {}", path.display()))?;
    let manifest =
        Manifest::from_json(&bytes).with_context(|| format!("while reading {}", path.display()))?;
    Ok(Rebuilt {
        manifest,
        offline: report.offline,
        ms: start.elapsed().as_millis(),
    })
}

/// Records the front matters' paper batches in the development store (a second handle on
/// the server's SQLite file: its writes wait for the server's), and says what changed.
fn record_offline(db: &Path, declared: &[Declared]) {
    if declared.is_empty() {
        return;
    }
    let report = (|| -> anyhow::Result<SyncReport> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            let store = cahier_function::store::sqlite::SqliteStore::open(db)?;
            cahier_function::store::Store::init(&store).await?;
            Ok(offline_sync::sync(&store, declared, cahier_function::now()).await)
        })
    })();
    match report {
        Ok(r) => {
            for added in &r.added {
                println!("paper batch {added} recorded (counted and logged)");
            }
            for refused in &r.refused {
                eprintln!("warning: {refused}");
            }
        }
        Err(e) => print_error("could not record the paper batches", &e),
    }
}

/// Port 0 becomes a free port now, because the site must be built with its final URL.
fn resolve_port(bind: IpAddr, port: u16) -> anyhow::Result<u16> {
    if port != 0 {
        return Ok(port);
    }
    let l = std::net::TcpListener::bind((bind, 0))
        .with_context(|| format!("while looking for a free port on {bind}"))?;
    Ok(l.local_addr()?.port())
}

/// The URL a browser on this machine uses: loopback when listening on every interface.
fn local_url(listen: SocketAddr) -> String {
    let host = match listen.ip() {
        IpAddr::V4(a) if a.is_unspecified() => IpAddr::from([127, 0, 0, 1]),
        IpAddr::V6(a) if a.is_unspecified() => IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(host, listen.port()))
}

/// What a successful rebuild updates in the running server.
struct Reloader {
    state: cahier_function::AppState,
    reload: tokio::sync::broadcast::Sender<()>,
    /// The development store, where the front matters' paper batches are recorded.
    db: PathBuf,
}

/// Watches the sources; each burst of relevant changes (quiet for [`DEBOUNCE`]) triggers one
/// rebuild on a background thread. A failed rebuild prints its error and leaves the last good
/// site served.
fn watch(root: &Path, opts: BuildOptions, reloader: Reloader) -> anyhow::Result<SharedWatcher> {
    use notify::{RecursiveMode, Watcher};
    let (tx, rx) = mpsc::channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let _ = tx.send(event);
    })
    .context("while starting the file watcher")?;
    for dir in WATCHED_DIRS {
        let path = root.join(dir);
        if path.is_dir() {
            watcher
                .watch(&path, RecursiveMode::Recursive)
                .with_context(|| format!("while watching {}", path.display()))?;
        }
    }
    // The root itself, not recursively: cahier.toml (also when an editor replaces it).
    watcher
        .watch(root, RecursiveMode::NonRecursive)
        .with_context(|| format!("while watching {}", root.display()))?;
    let root = root.to_path_buf();
    let watcher = Arc::new(Mutex::new(watcher));
    let shared = watcher.clone();
    std::thread::Builder::new()
        .name("cahier-watch".into())
        .spawn(move || rebuild_loop(&root, &opts, &reloader, rx, &shared))
        .context("while starting the watcher thread")?;
    Ok(watcher)
}

/// The watcher, shared with the rebuild thread so that a folder created while serving (a
/// first `i18n/` or `templates/`) is watched from then on.
type SharedWatcher = Arc<Mutex<notify::RecommendedWatcher>>;

/// Starts watching the watched folders among `changed` that were just created at the root.
fn watch_new_dirs(root: &Path, changed: &[String], watcher: &SharedWatcher) {
    use notify::{RecursiveMode, Watcher};
    for c in changed {
        if WATCHED_DIRS.contains(&c.as_str()) && root.join(c).is_dir() {
            let mut w = watcher.lock().unwrap_or_else(|e| e.into_inner());
            if let Err(e) = w.watch(&root.join(c), RecursiveMode::Recursive) {
                eprintln!("warning: cannot watch {c}/: {e}");
            }
        }
    }
}

/// The relevant paths of one watcher event. Reads are ignored: the build itself reads every
/// source, and counting those as changes would rebuild forever.
fn changed_paths(root: &Path, event: notify::Result<notify::Event>) -> Vec<String> {
    match event {
        Ok(e) if matches!(e.kind, notify::EventKind::Access(_)) => Vec::new(),
        Ok(e) => e.paths.iter().filter_map(|p| relevant(root, p)).collect(),
        Err(e) => {
            eprintln!("warning: file watcher: {e}");
            Vec::new()
        }
    }
}

fn rebuild_loop(
    root: &Path,
    opts: &BuildOptions,
    reloader: &Reloader,
    rx: mpsc::Receiver<notify::Result<notify::Event>>,
    watcher: &SharedWatcher,
) {
    while let Ok(first) = rx.recv() {
        let mut changed = changed_paths(root, first);
        if changed.is_empty() {
            continue;
        }
        watch_new_dirs(root, &changed, watcher);
        // Editors write in several steps: wait until the burst is over, then rebuild once.
        while let Ok(more) = rx.recv_timeout(DEBOUNCE) {
            changed.extend(changed_paths(root, more));
        }
        changed.sort();
        changed.dedup();
        let what = describe(&changed);
        match rebuild(opts) {
            Ok(built) => match reloader.state.set_manifest(built.manifest) {
                Ok(()) => {
                    let _ = reloader.reload.send(());
                    println!("rebuilt in {} ms ({what})", built.ms);
                    record_offline(&reloader.db, &built.offline);
                }
                Err(e) => print_error(
                    &format!("rebuilt, but the new manifest was refused ({what})"),
                    &e,
                ),
            },
            Err(e) => print_error(
                &format!("rebuild failed ({what}); still serving the last good site"),
                &e,
            ),
        }
    }
}

/// The path relative to the root if a change there matters to the site.
fn relevant(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = rel.file_name()?.to_str()?;
    // Editors' swap and backup files.
    if name.starts_with('.') || name.ends_with('~') || name.ends_with(".swp") {
        return None;
    }
    let watched = if rel.components().count() == 1 {
        // cahier.toml, or a watched folder created (or removed) while serving.
        first == CONFIG_FILE || WATCHED_DIRS.contains(&first)
    } else {
        WATCHED_DIRS.contains(&first)
    };
    watched.then(|| rel.to_string_lossy().replace('\\', "/"))
}

fn describe(changed: &[String]) -> String {
    match changed {
        [one] => one.clone(),
        [first, rest @ ..] => format!("{first} and {} more", rest.len()),
        [] => String::new(),
    }
}

fn print_error(head: &str, e: &anyhow::Error) {
    eprintln!("error: {head}: {e}");
    for cause in e.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sources_are_relevant() {
        let root = Path::new("/site");
        let r = |p: &str| relevant(root, Path::new(p));
        assert_eq!(
            r("/site/content/a/index.md").as_deref(),
            Some("content/a/index.md")
        );
        assert_eq!(r("/site/cahier.toml").as_deref(), Some("cahier.toml"));
        assert_eq!(
            r("/site/themes/default/templates/petition.html").as_deref(),
            Some("themes/default/templates/petition.html")
        );
        assert_eq!(r("/site/.cahier/public/index.html"), None);
        assert_eq!(r("/site/public/index.html"), None);
        assert_eq!(r("/site/content/a/.index.md.swp"), None);
        assert_eq!(r("/site/content/a/index.md~"), None);
        assert_eq!(r("/site/README.md"), None);
        assert_eq!(r("/elsewhere/content/a.md"), None);
        // The site's translations, and a watched folder created while serving.
        assert_eq!(r("/site/i18n/de.toml").as_deref(), Some("i18n/de.toml"));
        assert_eq!(r("/site/i18n").as_deref(), Some("i18n"));
    }

    #[test]
    fn local_url_uses_loopback_for_every_interface() {
        assert_eq!(
            local_url("0.0.0.0:8080".parse().unwrap()),
            "http://127.0.0.1:8080"
        );
        assert_eq!(local_url("[::]:80".parse().unwrap()), "http://[::1]:80");
        assert_eq!(
            local_url("127.0.0.1:9000".parse().unwrap()),
            "http://127.0.0.1:9000"
        );
    }
}
