//! The example site under test: a fresh copy of `cahier.toml`, `content/` and `themes/` in a
//! temporary folder, served with its API on one free loopback port by the development server
//! (dev captcha, SQLite and the outbox under `<copy>/.cahier/`), stopped when the guard drops.

use crate::outbox::ReadMail;
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The example petition in both languages, with declared fields, public list and newsletter.
pub const PETITION: &str = "noel-sans-geant";
/// The other example petition (a required postcode and a declared checkbox).
pub const LIBRARY: &str = "mediatheque-des-tanneurs";

pub struct Site {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The copy of the example site (`cahier.toml`, `content/`, `themes/`, `public/`, `.cahier/`).
    pub root: PathBuf,
    pub outbox: PathBuf,
    server: Option<cahier_function::dev::DevServer>,
    _dir: tempfile::TempDir,
}

/// Copies a folder recursively.
pub fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("while creating {}", to.display()))?;
    for entry in
        std::fs::read_dir(from).with_context(|| format!("while reading {}", from.display()))?
    {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target).with_context(|| {
                format!(
                    "while copying {} to {}",
                    entry.path().display(),
                    target.display()
                )
            })?;
        }
    }
    Ok(())
}

/// A copy of the repository's example site in `dir`.
pub fn copy_example(dir: &Path) -> anyhow::Result<()> {
    let repo = crate::repo_root();
    std::fs::copy(repo.join("cahier.toml"), dir.join("cahier.toml"))
        .context("while copying cahier.toml")?;
    copy_dir(&repo.join("content"), &dir.join("content"))?;
    copy_dir(&repo.join("themes"), &dir.join("themes"))?;
    Ok(())
}

impl Site {
    /// Builds the example site for a free local origin and serves it.
    pub async fn start() -> anyhow::Result<Site> {
        let dir = tempfile::tempdir()?;
        let root = dir.path().join("site");
        std::fs::create_dir_all(&root)?;
        copy_example(&root)?;
        let port = crate::free_port();
        let base = format!("http://127.0.0.1:{port}");
        let public = root.join("public");
        cahier::build(&cahier::BuildOptions {
            root: root.clone(),
            out: public.clone(),
            drafts: false,
            base_url: Some(base.clone()),
            api_url: None,
            captcha_provider: Some("dev".to_string()),
        })
        .context("while building the example site")?;
        let manifest_path = public.join("api/manifest.json");
        let manifest: cahier_function::manifest::Manifest = serde_json::from_slice(
            &std::fs::read(&manifest_path)
                .with_context(|| format!("while reading {}", manifest_path.display()))?,
        )
        .context("while decoding the petition manifest")?;
        let state_dir = root.join(".cahier");
        let mut opts =
            cahier_function::dev::DevServerOptions::new(public, state_dir.clone(), manifest);
        opts.listen = ([127, 0, 0, 1], port).into();
        opts.print_mails = false;
        let server = cahier_function::dev::DevServer::start(opts).await?;
        Ok(Site {
            base,
            outbox: state_dir.join("outbox"),
            root,
            server: Some(server),
            _dir: dir,
        })
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
        std::fs::write(self.root.join("public/embed-host.html"), html)
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

impl Drop for Site {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            s.stop();
        }
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
