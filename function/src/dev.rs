//! The development server behind `cahier serve`: the built site and the API on one origin
//! (default http://127.0.0.1:8080), SQLite in `.cahier/`, the dev captcha, mails in
//! `.cahier/outbox/` with their links printed, and live reload after each rebuild.
//!
//! ```no_run
//! # async fn demo(manifest: cahier_function::manifest::Manifest) -> anyhow::Result<()> {
//! use cahier_function::dev::{DevServer, DevServerOptions};
//! let server = DevServer::start(DevServerOptions::new("public".into(), ".cahier".into(), manifest)).await?;
//! println!("serving on {}", server.url());
//! // … after each rebuild:
//! // server.reload(Some(new_manifest))?;
//! server.wait().await
//! # }
//! ```

use crate::captcha::dev::DevTokens;
use crate::mailer::{Mail, Mailer};
use crate::manifest::Manifest;
use crate::secrets::{ensure_dev_secrets, Secrets};
use crate::state::{build_captcha, AppParts, AppState, Options};
use anyhow::Context;
use async_trait::async_trait;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue, Request, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::broadcast;
use tower::ServiceExt;
use tower_http::services::ServeDir;

/// Where the live-reload script and event stream live (never under `/api`).
pub const LIVERELOAD_JS: &str = "/__cahier/livereload.js";
pub const LIVERELOAD_EVENTS: &str = "/__cahier/events";

#[derive(Debug, Clone)]
pub struct DevServerOptions {
    /// Default 127.0.0.1:8080; port 0 picks a free one.
    pub listen: SocketAddr,
    /// The built site (`public/`), served as static files with `404.html` as the fallback.
    pub public_dir: PathBuf,
    /// `.cahier/`: secrets, `signatures.sqlite3`, `outbox/`.
    pub state_dir: PathBuf,
    /// The petition manifest of the current build. Its captcha provider is forced to `dev`.
    pub manifest: Manifest,
    /// Print each mail's links to stdout.
    pub print_mails: bool,
    /// The transparency log: integrated by a background task into `dir/<slug>/log/` and
    /// served at `/<slug>/log/`. `None`: no log.
    pub log: Option<DevLog>,
}

/// Where and how `cahier serve` keeps the transparency log (outside the built site, so that a
/// rebuild's swap of the site's folder leaves it alone).
#[derive(Clone)]
pub struct DevLog {
    /// `.cahier/log/`: each petition's log in `<dir>/<slug>/log/`.
    pub dir: PathBuf,
    pub key: cahier_tlog::LogKey,
    /// Between two integrations.
    pub interval: std::time::Duration,
}

impl std::fmt::Debug for DevLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevLog")
            .field("dir", &self.dir)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

impl DevServerOptions {
    pub fn new(public_dir: PathBuf, state_dir: PathBuf, manifest: Manifest) -> Self {
        DevServerOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_dir,
            state_dir,
            manifest,
            print_mails: true,
            log: None,
        }
    }
}

/// A running development server.
pub struct DevServer {
    addr: SocketAddr,
    state: AppState,
    reload_tx: broadcast::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    /// The transparency log's sequencer task, if any.
    log_task: Option<tokio::task::JoinHandle<()>>,
}

/// The outbox mailer, plus the links printed to the terminal.
struct PrintingMailer {
    inner: crate::mailer::outbox::OutboxMailer,
    print: bool,
}

#[async_trait]
impl Mailer for PrintingMailer {
    async fn send(&self, mail: &Mail) -> anyhow::Result<()> {
        self.inner.send(mail).await?;
        if self.print {
            println!("✉  mail to {} — {}", mail.to, mail.subject);
            for line in mail.text.lines().filter(|l| l.contains("#t=")) {
                println!("   {line}");
            }
            println!("   (saved in {})", self.inner.dir().display());
        }
        Ok(())
    }
}

fn dev_manifest(mut manifest: Manifest) -> Manifest {
    manifest.site.captcha_provider = "dev".to_string();
    manifest
}

impl DevServer {
    /// Binds, opens the store and starts serving in the background.
    pub async fn start(opts: DevServerOptions) -> anyhow::Result<DevServer> {
        let listener = tokio::net::TcpListener::bind(opts.listen)
            .await
            .with_context(|| format!("while listening on {}", opts.listen))?;
        let addr = listener.local_addr()?;
        let self_url = format!("http://{addr}");
        let paths = ensure_dev_secrets(&opts.state_dir)?;
        let secrets = Secrets::load(Some(&paths.secrets_file), &|_| None)?;
        let manifest = dev_manifest(opts.manifest);
        let (captcha, tokens) = build_captcha(&manifest, &secrets, None, &self_url)?;
        let tokens: Arc<DevTokens> = tokens.context("the dev captcha was not set up")?;
        let db = opts.state_dir.join("signatures.sqlite3");
        let store: Arc<dyn crate::store::Store> =
            Arc::new(crate::store::sqlite::SqliteStore::open(&db)?);
        // Signed under the site's origin, as the standalone server does, in one folder per
        // origin: a checkpoint names its origin, so a log begun under another port could not be
        // extended (the store keeps every event: a new folder is rebuilt from the first).
        let log_dir = opts
            .log
            .as_ref()
            .map(|l| l.dir.join(origin_folder(&manifest.site.base_url)));
        let log_task = opts.log.as_ref().zip(log_dir.clone()).map(|(log, dir)| {
            crate::log_task::LogTask::new(
                store.clone(),
                dir,
                log.key.clone(),
                &manifest.site.base_url,
            )
            .spawn(log.interval, true)
        });
        let outbox = crate::mailer::outbox::OutboxMailer::new(
            &opts.state_dir.join("outbox"),
            crate::mailer::parse_from(None)?,
        )?;
        let options = Options {
            extra_origins: vec![
                self_url.clone(),
                format!("http://localhost:{}", addr.port()),
            ],
            ..Options::default()
        };
        let state = AppState::new(AppParts {
            manifest,
            store,
            mailer: Arc::new(PrintingMailer {
                inner: outbox,
                print: opts.print_mails,
            }),
            captcha,
            secrets,
            options,
        })?
        .with_dev_tokens(tokens);
        let (reload_tx, _) = broadcast::channel(16);
        let router = router(
            state.clone(),
            opts.public_dir.clone(),
            log_dir,
            reload_tx.clone(),
        );
        let task = tokio::spawn(async move {
            crate::http_server::serve(listener, router, std::future::pending()).await
        });
        Ok(DevServer {
            addr,
            state,
            reload_tx,
            task,
            log_task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// After a rebuild: swaps in the new manifest (if given) and tells open pages to reload.
    pub fn reload(&self, manifest: Option<Manifest>) -> anyhow::Result<()> {
        if let Some(m) = manifest {
            self.state.set_manifest(dev_manifest(m))?;
        }
        let _ = self.reload_tx.send(());
        Ok(())
    }

    /// A sender that triggers a browser reload (without a manifest change).
    pub fn reload_sender(&self) -> broadcast::Sender<()> {
        self.reload_tx.clone()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until Ctrl-C (or a server error).
    pub async fn wait(self) -> anyhow::Result<()> {
        let mut task = self.task;
        tokio::select! {
            r = &mut task => { r.context("dev server task failed")??; }
            _ = tokio::signal::ctrl_c() => { task.abort(); }
        }
        if let Some(t) = self.log_task {
            t.abort();
        }
        Ok(())
    }

    /// Stops serving.
    pub fn stop(self) {
        self.task.abort();
        if let Some(t) = self.log_task {
            t.abort();
        }
    }
}

/// Starts the dev server and serves until Ctrl-C.
pub async fn serve(opts: DevServerOptions) -> anyhow::Result<()> {
    let server = DevServer::start(opts).await?;
    println!("Cahier dev server on {}", server.url());
    server.wait().await
}

/// The folder of the logs signed under `base_url`: `127.0.0.1-8080` for
/// `http://127.0.0.1:8080/`.
fn origin_folder(base_url: &str) -> String {
    let origin = base_url
        .split_once("://")
        .map_or(base_url, |(_, rest)| rest)
        .trim_end_matches('/');
    origin
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

/// Whether `path` is a file of a petition's transparency log: `/<slug>/log/<file>…`, every
/// segment made of `[a-z0-9.-]` only and none hidden or empty (the sequencer's `.tmp/` is not
/// served; no backslash, so no Windows path can climb out of the log folder).
fn is_log_path(path: &str) -> bool {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    parts.len() >= 3
        && parts[1] == "log"
        && parts.iter().all(|p| {
            !p.is_empty()
                && !p.starts_with('.')
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        })
}

/// A log file from the log folder: the checkpoint as text, the tiles as bytes, never cached
/// (a development log may start afresh at the same paths).
async fn log_file(log_dir: &std::path::Path, path: &str) -> Response {
    let rel = path.trim_start_matches('/');
    match tokio::fs::read(log_dir.join(rel)).await {
        Ok(bytes) => {
            let kind = if rel.ends_with("/checkpoint") {
                "text/plain; charset=utf-8"
            } else {
                "application/octet-stream"
            };
            (
                [
                    (header::CONTENT_TYPE, kind),
                    (header::CACHE_CONTROL, "no-cache"),
                ],
                bytes,
            )
                .into_response()
        }
        Err(_) => (
            StatusCode::NOT_FOUND,
            [(header::CACHE_CONTROL, "no-cache")],
            "not in the log",
        )
            .into_response(),
    }
}

/// Static site + API + live reload on one origin; with `log_dir`, each petition's
/// transparency log at `/<slug>/log/` from `log_dir/<slug>/log/`.
pub fn router(
    state: AppState,
    public_dir: PathBuf,
    log_dir: Option<PathBuf>,
    reload: broadcast::Sender<()>,
) -> Router {
    let api = crate::app(state);
    let files = ServeDir::new(&public_dir).append_index_html_on_directories(true);
    Router::new()
        .route(LIVERELOAD_JS, get(livereload_js))
        .route(LIVERELOAD_EVENTS, get(events))
        .with_state(reload)
        .fallback(move |req: Request<Body>| {
            let files = files.clone();
            let api = api.clone();
            let public_dir = public_dir.clone();
            let log_dir = log_dir.clone();
            async move {
                // The manifest is a static file of the site (monitors such as `cahier log
                // verify` read it there), not an API route.
                let manifest = req.uri().path() == "/api/manifest.json";
                if req.uri().path().starts_with("/api/") && !manifest {
                    return match api.oneshot(req).await {
                        Ok(res) => res,
                        Err(e) => match e {},
                    };
                }
                if let Some(dir) = log_dir.as_deref() {
                    if is_log_path(req.uri().path()) {
                        return log_file(dir, req.uri().path()).await;
                    }
                }
                let path = req.uri().path().to_string();
                match files.oneshot(req).await {
                    Ok(res) if res.status() == StatusCode::NOT_FOUND => {
                        inject_livereload(not_found(&public_dir, &path).await).await
                    }
                    Ok(res) => inject_livereload(res.map(Body::new)).await,
                    Err(e) => match e {},
                }
            }
        })
}

/// The 404 page in the language of the path: `/<lang>/404.html` when `/<lang>/...` was asked
/// for and the site has that page, else the default language's `/404.html`.
async fn not_found(public_dir: &std::path::Path, path: &str) -> Response {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    let localized = (!first.is_empty()
        && first.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    .then(|| public_dir.join(first).join("404.html"))
    .filter(|p| p.is_file());
    let file = localized.unwrap_or_else(|| public_dir.join("404.html"));
    let body = tokio::fs::read(&file).await.unwrap_or_default();
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

/// Closed on `pagehide`: Chrome keeps pages with an open stream in its back/forward cache, and
/// after six of them every connection to the origin is taken and the next page never loads.
const LIVERELOAD_SCRIPT: &str = r#"(function () {
  var es = null;
  function open() {
    if (es) return;
    es = new EventSource("/__cahier/events");
    es.addEventListener("reload", function () { location.reload(); });
  }
  window.addEventListener("pagehide", function () { if (es) { es.close(); es = null; } });
  window.addEventListener("pageshow", open);
  open();
})();
"#;

async fn livereload_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        LIVERELOAD_SCRIPT,
    )
        .into_response()
}

async fn events(
    State(reload): State<broadcast::Sender<()>>,
) -> Sse<impl tokio_stream::Stream<Item = Result<Event, Infallible>>> {
    use tokio_stream::StreamExt;
    let stream = tokio_stream::wrappers::BroadcastStream::new(reload.subscribe())
        .map(|_| Ok(Event::default().event("reload").data("reload")));
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// Adds the live-reload script to HTML pages (dev only) and disables caching.
async fn inject_livereload(res: Response) -> Response {
    let is_html = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let (mut parts, body) = res.into_parts();
    parts
        .headers
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if !is_html {
        return Response::from_parts(parts, body);
    }
    let Ok(bytes) = axum::body::to_bytes(body, 16 * 1024 * 1024).await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "page too large").into_response();
    };
    let mut html = String::from_utf8_lossy(&bytes).into_owned();
    let tag = format!("<script src=\"{LIVERELOAD_JS}\"></script>");
    match html.rfind("</body>") {
        Some(i) => html.insert_str(i, &tag),
        None => html.push_str(&tag),
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(html))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_paths_stay_inside_the_log_folder() {
        assert!(is_log_path("/noel/log/checkpoint"));
        assert!(is_log_path("/noel/log/tile/0/x001/067.p/5"));
        assert!(is_log_path("/noel/log/tile/entries/000"));
        for bad in [
            "/noel/log/.tmp/checkpoint",
            "/noel/log/../../secrets.toml",
            "/a/log/b\\..\\..\\secrets.toml",
            "/noel/log//checkpoint",
            "/noel/log/Checkpoint",
            "/noel/log",
            "/noel/logs/checkpoint",
        ] {
            assert!(!is_log_path(bad), "{bad}");
        }
    }

    #[test]
    fn one_log_folder_per_origin() {
        assert_eq!(origin_folder("http://127.0.0.1:8080/"), "127.0.0.1-8080");
        assert_eq!(origin_folder("http://127.0.0.1:9000"), "127.0.0.1-9000");
        assert_eq!(
            origin_folder("https://Petitions.Example/sub/"),
            "petitions.example-sub"
        );
    }
}
