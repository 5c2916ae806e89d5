//! Real-browser harness: headless Chromium driven over WebDriver (chromedriver on a free
//! loopback port, killed with its browser when the guard drops), screenshots of every step under
//! `target/browser-artifacts/<test>/`, and axe-core injected into pages for accessibility checks.
//!
//! Needs Debian's `chromium` and `chromium-driver` (or `CHROMEDRIVER` / `CHROMIUM` pointing at
//! them) and `npm ci` in `tests/browser/` for axe-core; `scripts/test.sh` installs all three.

use anyhow::{bail, Context};
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::elements::Element;
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Every wait in the browser tests gives up after this long.
pub const WAIT: Duration = Duration::from_secs(10);
/// Fixed viewport, so screenshots compare across runs.
pub const WINDOW: (u32, u32) = (1280, 900);

/// `chromedriver` started on a free port, in its own process group so that the browsers it
/// launches die with it.
pub struct ChromeDriver {
    child: Option<Child>,
    pub port: u16,
    log: PathBuf,
}

fn program(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_string())
}

impl ChromeDriver {
    /// Starts chromedriver and waits (bounded) until it accepts connections. A port taken between
    /// the check and chromedriver's bind (another program can always win that race) costs a
    /// retry on another port, not the test.
    pub fn start(log_dir: &Path) -> anyhow::Result<ChromeDriver> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match Self::start_on(log_dir, crate::free_port()) {
                Err(e) if attempt < 3 && format!("{e}").contains("Address already in use") => {
                    continue
                }
                other => return other,
            }
        }
    }

    fn start_on(log_dir: &Path, port: u16) -> anyhow::Result<ChromeDriver> {
        let log = log_dir.join("chromedriver.log");
        let exe = program("CHROMEDRIVER", "/usr/bin/chromedriver");
        let child = Command::new(&exe)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .arg(format!("--log-path={}", log.display()))
            .arg("--log-level=WARNING")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .with_context(|| format!("while starting {exe} (apt-get install chromium-driver)"))?;
        let mut driver = ChromeDriver {
            child: Some(child),
            port,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(driver);
            }
            if let Some(Ok(Some(status))) = driver.child.as_mut().map(|c| c.try_wait()) {
                bail!("chromedriver exited with {status}: {}", driver.log_tail());
            }
            if Instant::now() > deadline {
                bail!("chromedriver did not listen on port {port} within 20 s");
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // The whole group: chromedriver and the Chromium processes it started.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A name the browser resolves to loopback that is not a secure context over plain http (unlike
/// `localhost` and `127.0.0.1`): a third party's site as many still are, e.g. a blog framing the
/// embed widget ([`HostPage`]). A frame inside it is not a secure context either (no WebCrypto).
pub const INSECURE_HOST: &str = "blog.test";

/// The capabilities of a headless, fixed-size Chromium with a throw-away profile.
fn capabilities(profile: &Path, dark: bool) -> serde_json::Map<String, Value> {
    let mut args = vec![
        "--headless=new".to_string(),
        format!("--window-size={},{}", WINDOW.0, WINDOW.1),
        "--disable-gpu".to_string(),
        "--disable-dev-shm-usage".to_string(),
        "--disable-extensions".to_string(),
        "--no-first-run".to_string(),
        "--no-default-browser-check".to_string(),
        "--disable-background-networking".to_string(),
        "--disable-component-update".to_string(),
        "--disable-sync".to_string(),
        "--force-device-scale-factor=1".to_string(),
        "--hide-scrollbars".to_string(),
        // The theme scrolls smoothly otherwise, and WebDriver clicks where an element will be
        // only once the animation ends.
        "--force-prefers-reduced-motion".to_string(),
        "--lang=en-US".to_string(),
        // Loopback only: no name but localhost (and [`INSECURE_HOST`], on loopback too) resolves
        // (third-party scripts such as hCaptcha's fail to load instead of leaving the machine).
        format!(
            "--host-resolver-rules=MAP {INSECURE_HOST} 127.0.0.1, MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"
        ),
        format!("--user-data-dir={}", profile.display()),
    ];
    if dark {
        // `prefers-color-scheme: dark`, as set by the operating system.
        args.push("--force-dark-mode".to_string());
        args.push("--blink-settings=preferredColorScheme=0".to_string());
    }
    // Chromium refuses to start sandboxed as root (containers, CI).
    if is_root() {
        args.push("--no-sandbox".to_string());
    }
    let mut options = json!({ "args": args });
    if let Ok(bin) = std::env::var("CHROMIUM") {
        options["binary"] = json!(bin);
    } else if Path::new("/usr/bin/chromium").exists() {
        options["binary"] = json!("/usr/bin/chromium");
    }
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert("goog:chromeOptions".into(), options);
    caps.insert("pageLoadStrategy".into(), json!("normal"));
    caps.insert("unhandledPromptBehavior".into(), json!("dismiss"));
    caps.insert(
        "timeouts".into(),
        json!({ "pageLoad": 20_000, "script": 20_000, "implicit": 0 }),
    );
    caps
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// Where the screenshots of one test go: `target/browser-artifacts/<test>/`.
pub fn artifacts_dir(test: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::repo_root().join("target"));
    target.join("browser-artifacts").join(test)
}

/// One headless Chromium session. Call [`Browser::close`] at the end of a test; if a test panics
/// before, dropping the guard kills chromedriver and its browsers.
pub struct Browser {
    pub client: Client,
    pub artifacts: PathBuf,
    step: u32,
    _profile: tempfile::TempDir,
    driver: ChromeDriver,
}

impl Browser {
    /// Starts chromedriver and a session; screenshots go to `artifacts_dir(test)` (emptied).
    pub async fn start(test: &str) -> anyhow::Result<Browser> {
        Browser::start_with(test, false).await
    }

    /// Like [`Browser::start`], with the dark colour scheme preferred when `dark`.
    pub async fn start_with(test: &str, dark: bool) -> anyhow::Result<Browser> {
        let artifacts = artifacts_dir(test);
        let _ = std::fs::remove_dir_all(&artifacts);
        std::fs::create_dir_all(&artifacts)
            .with_context(|| format!("while creating {}", artifacts.display()))?;
        let profile = tempfile::tempdir()?;
        let driver = ChromeDriver::start(&artifacts)?;
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities(profile.path(), dark))
            .connect(&driver.url())
            .await
            .with_context(|| format!("while opening a Chromium session: {}", driver.log_tail()))?;
        client
            .set_window_size(WINDOW.0, WINDOW.1)
            .await
            .context("while sizing the window")?;
        Ok(Browser {
            client,
            artifacts,
            step: 0,
            _profile: profile,
            driver,
        })
    }

    /// Ends the session (Chromium quits), then chromedriver is killed.
    pub async fn close(self) {
        let Browser { client, driver, .. } = self;
        let _ = tokio::time::timeout(Duration::from_secs(5), client.close()).await;
        drop(driver);
    }

    /// Resizes the window (a phone's viewport: 390 × 844).
    pub async fn set_window(&self, width: u32, height: u32) -> anyhow::Result<()> {
        self.client
            .set_window_size(width, height)
            .await
            .context("while sizing the window")
    }

    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.client
            .goto(url)
            .await
            .with_context(|| format!("while opening {url}"))
    }

    pub async fn current_url(&self) -> anyhow::Result<String> {
        Ok(self.client.current_url().await?.to_string())
    }

    /// Saves a full-window PNG as `<nn>-<name>.png` and returns its path.
    pub async fn shot(&mut self, name: &str) -> anyhow::Result<PathBuf> {
        self.step += 1;
        let path = self.artifacts.join(format!("{:02}-{name}.png", self.step));
        let png = self
            .client
            .screenshot()
            .await
            .context("while taking a screenshot")?;
        std::fs::write(&path, png).with_context(|| format!("while writing {}", path.display()))?;
        Ok(path)
    }

    /// Runs `script` (a function body; `arguments` as in WebDriver) and returns its value.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> anyhow::Result<Value> {
        self.client
            .execute(script, args)
            .await
            .with_context(|| format!("while running script: {}", short(script)))
    }

    /// Polls `script` until it returns a truthy value; fails with `what` after [`WAIT`].
    pub async fn wait_js(&self, what: &str, script: &str) -> anyhow::Result<Value> {
        let deadline = Instant::now() + WAIT;
        let mut last;
        loop {
            match self.client.execute(script, vec![]).await {
                Ok(v) if truthy(&v) => return Ok(v),
                Ok(v) => last = v,
                // A navigation in progress can make a script fail; try again.
                Err(e) => last = json!(e.to_string()),
            }
            if Instant::now() > deadline {
                let url = self.current_url().await.unwrap_or_default();
                bail!("timed out after {WAIT:?} waiting for {what} on {url} (last: {last})");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until an element matching `css` exists and is displayed.
    pub async fn wait_visible(&self, css: &str) -> anyhow::Result<Element> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(el) = self.client.find(Locator::Css(css)).await {
                if el.is_displayed().await.unwrap_or(false) {
                    return Ok(el);
                }
            }
            if Instant::now() > deadline {
                let url = self.current_url().await.unwrap_or_default();
                bail!("timed out after {WAIT:?} waiting for a visible `{css}` on {url}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the visible text of `css` contains `needle`; returns the text.
    pub async fn wait_text(&self, css: &str, needle: &str) -> anyhow::Result<String> {
        let deadline = Instant::now() + WAIT;
        let mut last = String::new();
        loop {
            if let Ok(el) = self.client.find(Locator::Css(css)).await {
                if let Ok(text) = el.text().await {
                    if text.contains(needle) {
                        return Ok(text);
                    }
                    last = text;
                }
            }
            if Instant::now() > deadline {
                let url = self.current_url().await.unwrap_or_default();
                bail!("timed out after {WAIT:?} waiting for `{css}` to contain {needle:?} on {url} (last text: {last:?})");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the location's path (and fragment) equals `path`.
    pub async fn wait_path(&self, path: &str) -> anyhow::Result<()> {
        let want = path.to_string();
        self.wait_js(
            &format!("the page {want}"),
            &format!(
                "return document.readyState === 'complete' && location.pathname === {} && location.pathname;",
                json!(want)
            ),
        )
        .await
        .map(|_| ())
    }

    pub async fn find(&self, css: &str) -> anyhow::Result<Element> {
        self.client
            .find(Locator::Css(css))
            .await
            .with_context(|| format!("no `{css}` on the page"))
    }

    /// The value of a form control.
    pub async fn value(&self, css: &str) -> anyhow::Result<String> {
        Ok(self
            .find(css)
            .await?
            .prop("value")
            .await?
            .unwrap_or_default())
    }

    /// Presses and releases one key in the focused element (real key events, no element lookup).
    pub async fn press(&self, key: Key) -> anyhow::Result<()> {
        let k: char = key.into();
        let seq = KeyActions::new("keyboard".to_string())
            .then(KeyAction::Down { value: k })
            .then(KeyAction::Up { value: k });
        self.client
            .perform_actions(seq)
            .await
            .context("while pressing a key")?;
        Ok(())
    }

    /// Types `text` as key presses into whatever has the focus.
    pub async fn type_keys(&self, text: &str) -> anyhow::Result<()> {
        let mut seq = KeyActions::new("keyboard".to_string());
        for c in text.chars() {
            seq = seq
                .then(KeyAction::Down { value: c })
                .then(KeyAction::Up { value: c });
        }
        self.client
            .perform_actions(seq)
            .await
            .context("while typing")?;
        Ok(())
    }

    /// A short description of the focused element: `tag#id[name]` or its text.
    pub async fn focused(&self) -> anyhow::Result<String> {
        let v = self
            .js(
                "var e = document.activeElement; if (!e) return '';
                 return e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.name ? '[' + e.name + ']' : '')
                   + (e.className ? '.' + String(e.className).split(' ').join('.') : '');",
                vec![],
            )
            .await?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    /// Presses Tab until the focused element matches the CSS selector `target` (at most 60
    /// times); fails with the focus path otherwise.
    pub async fn tab_to(&self, target: &str) -> anyhow::Result<()> {
        let mut path = Vec::new();
        for _ in 0..60 {
            self.press(Key::Tab).await?;
            let hit = self
                .js(
                    "var e = document.activeElement; return !!(e && e.matches(arguments[0]));",
                    vec![json!(target)],
                )
                .await?;
            if hit == json!(true) {
                return Ok(());
            }
            path.push(self.focused().await?);
        }
        bail!("Tab never reached `{target}`; the focus went through {path:?}")
    }

    /// Injects axe-core and runs it; returns the serious and critical violations (all of them
    /// are printed to stderr with their nodes).
    pub async fn axe(&self, label: &str) -> anyhow::Result<Vec<Value>> {
        let source = axe_source()?;
        self.client
            .execute(&format!("{source}\n;return true;"), vec![])
            .await
            .context("while injecting axe-core")?;
        let result = self
            .client
            .execute_async(
                "var done = arguments[arguments.length - 1];
                 axe.run(document, { resultTypes: ['violations'] })
                   .then(function (r) { done({ ok: true, violations: r.violations }); })
                   .catch(function (e) { done({ ok: false, error: String(e) }); });",
                vec![],
            )
            .await
            .context("while running axe")?;
        if result["ok"] != json!(true) {
            bail!("axe failed on {label}: {}", result["error"]);
        }
        let all = result["violations"].as_array().cloned().unwrap_or_default();
        let mut bad = Vec::new();
        for v in all {
            let impact = v["impact"].as_str().unwrap_or("");
            let nodes: Vec<String> = v["nodes"]
                .as_array()
                .map(|n| {
                    n.iter()
                        .take(5)
                        .map(|n| {
                            format!(
                                "{} — {}",
                                n["target"],
                                n["failureSummary"]
                                    .as_str()
                                    .unwrap_or("")
                                    .replace('\n', " ")
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            eprintln!(
                "axe [{label}] {impact}: {} — {}\n    {}",
                v["id"].as_str().unwrap_or(""),
                v["help"].as_str().unwrap_or(""),
                nodes.join("\n    ")
            );
            if impact == "serious" || impact == "critical" {
                bad.push(v);
            }
        }
        Ok(bad)
    }
}

/// A third party's page framing a URL with the embed code the thanks page hands out, served on
/// its own loopback port (another origin than the framed one) under the name `host`
/// (`localhost`, [`INSECURE_HOST`]...); stops when dropped.
pub struct HostPage {
    /// `http://<host>:<port>/`.
    pub url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl HostPage {
    pub async fn start(host: &str, framed: &str) -> anyhow::Result<HostPage> {
        let html = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>A friendly blog</title></head>\
             <body><main><h1>A friendly blog</h1><p>We support this petition:</p>\
             <iframe src=\"{framed}\" title=\"Petition\" width=\"100%\" height=\"720\" loading=\"lazy\"></iframe></main></body></html>"
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let app = axum::Router::new().fallback(move || {
            let html = html.clone();
            async move { axum::response::Html(html) }
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(HostPage {
            url: format!("http://{host}:{port}/"),
            stop: Some(stop),
        })
    }
}

impl Drop for HostPage {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        _ => true,
    }
}

fn short(s: &str) -> String {
    let s: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    s.chars().take(100).collect()
}

/// `tests/browser/node_modules/axe-core/axe.min.js`, read once.
pub fn axe_source() -> anyhow::Result<&'static str> {
    static AXE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    if let Some(s) = AXE.get() {
        return Ok(s);
    }
    let path = crate::repo_root().join("tests/browser/node_modules/axe-core/axe.min.js");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "while reading {} (run `npm ci` in tests/browser)",
            path.display()
        )
    })?;
    Ok(AXE.get_or_init(|| text))
}
