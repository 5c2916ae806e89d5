//! The example site under test: `cahier serve` (the real binary) on a fresh copy of
//! `cahier.toml`, `content/` and `themes/`, on a free loopback port: the site and its API on one
//! origin, the dev captcha, SQLite and the outbox under `<copy>/.cahier/`. Killed on drop.

use crate::outbox::ReadMail;
use crate::serve::CahierServe;
use anyhow::{bail, Context};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The example petition in both languages, with declared fields, public list and newsletter.
pub const PETITION: &str = "noel-sans-geant";
/// The other example petition (a required postcode and a declared checkbox).
pub const LIBRARY: &str = "mediatheque-des-tanneurs";

pub struct Site {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The copy of the example site (`cahier.toml`, `content/`, `themes/`, `.cahier/`).
    pub root: PathBuf,
    pub outbox: PathBuf,
    serve: CahierServe,
    _dir: tempfile::TempDir,
}

impl Site {
    /// Copies the example site and starts `cahier serve` on it (waits until it answers).
    pub async fn start() -> anyhow::Result<Site> {
        Site::start_with(&[]).await
    }

    /// [`Site::start`] with more arguments to `cahier serve` (`--log-interval 0.2`).
    pub async fn start_with(extra: &[&str]) -> anyhow::Result<Site> {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let dir = tempfile::tempdir()?;
        let root = dir.path().join("site");
        std::fs::create_dir_all(&root)?;
        crate::serve::copy_example_site(&root);
        // Blocking (bounded) wait for the first build; off the async workers.
        let serve = tokio::task::spawn_blocking({
            let root = root.clone();
            move || {
                let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
                CahierServe::start_with(&root, &extra)
            }
        })
        .await
        .context("cahier serve did not start")?;
        Ok(Site {
            base: serve.base.clone(),
            outbox: serve.outbox(),
            root,
            serve,
            _dir: dir,
        })
    }

    /// What `cahier serve` printed so far.
    pub fn log(&self) -> String {
        self.serve.log()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A page of another origin (`localhost` instead of `127.0.0.1`) framing `embed_url` the
    /// way the thanks page tells other sites to; returns its URL.
    pub fn host_page(&self, embed_url: &str) -> anyhow::Result<String> {
        let html = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>A friendly blog</title></head>\
             <body><main><h1>A friendly blog</h1><p>We support this petition:</p>\
             <iframe src=\"{embed_url}\" title=\"Petition\" width=\"100%\" height=\"720\"></iframe></main></body></html>"
        );
        // Served from the built site's folder (not watched: no rebuild).
        std::fs::write(self.root.join(".cahier/public/embed-host.html"), html)
            .context("while writing the host page")?;
        Ok(self
            .url("/embed-host.html")
            .replace("http://127.0.0.1:", "http://localhost:"))
    }

    /// Every mail sent so far, oldest first.
    pub fn mails(&self) -> Vec<ReadMail> {
        crate::outbox::read_dir(&self.outbox)
    }

    /// Waits (bounded) for the first mail to `to` and returns it.
    pub async fn wait_mail(&self, to: &str) -> anyhow::Result<ReadMail> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(m) = self.mails().into_iter().find(|m| m.to == to) {
                return Ok(m);
            }
            if Instant::now() > deadline {
                bail!(
                    "no mail to {to} in {} within 10 s (mails: {:?})",
                    self.outbox.display(),
                    self.mails().iter().map(|m| &m.to).collect::<Vec<_>>()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The confirmed count the API reports for `slug`.
    pub async fn count(&self, slug: &str) -> anyhow::Result<u64> {
        let v: serde_json::Value = reqwest::get(self.url(&format!("/api/petitions/{slug}/count")))
            .await?
            .json()
            .await?;
        v["count"].as_u64().context("a count")
    }
}

/// The first `http…/<page>/#t=…` link of a mail's text.
pub fn link(mail: &ReadMail, page: &str) -> Option<String> {
    let marker = format!("/{page}/#t=");
    mail.text
        .split(|c: char| c.is_whitespace() || c == '<' || c == '>' || c == '"')
        .find(|w| w.starts_with("http") && w.contains(&marker))
        .map(str::to_string)
}
