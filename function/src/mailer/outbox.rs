//! Development mailer: one `.eml` file per mail in a folder (written atomically: temp + rename).

use super::{parse_from, to_message, Mail, Mailer};
use anyhow::Context;
use async_trait::async_trait;
use lettre::message::Mailbox;
use rand::RngCore;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct OutboxMailer {
    dir: PathBuf,
    from: Mailbox,
}

impl OutboxMailer {
    pub fn new(dir: &Path, from: Mailbox) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("while creating the outbox {}", dir.display()))?;
        Ok(OutboxMailer {
            dir: dir.to_path_buf(),
            from,
        })
    }

    /// `DIR[?from=Name <addr>]` (the part after `outbox:`).
    pub fn from_url(rest: &str) -> anyhow::Result<Self> {
        let (dir, query) = rest.split_once('?').unwrap_or((rest, ""));
        anyhow::ensure!(!dir.is_empty(), "outbox:DIR needs a folder");
        let params: Vec<(String, String)> = serde_urlencoded::from_str(query)
            .with_context(|| format!("invalid parameters {query:?} of outbox:{rest}"))?;
        let mut from = None;
        for (k, v) in params {
            match k.as_str() {
                "from" => from = Some(v),
                other => anyhow::bail!("unknown parameter {other:?} of outbox:{rest}"),
            }
        }
        OutboxMailer::new(Path::new(dir), parse_from(from.as_deref())?)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[async_trait]
impl Mailer for OutboxMailer {
    async fn send(&self, mail: &Mail) -> anyhow::Result<()> {
        let bytes = to_message(&self.from, mail)?.formatted();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let mut rnd = [0u8; 4];
        rand::thread_rng().fill_bytes(&mut rnd);
        let name = format!("{nanos:020}-{}", hex::encode(rnd));
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let path = self.dir.join(format!("{name}.eml"));
        // One trip to the blocking pool for both steps.
        tokio::task::spawn_blocking(move || {
            std::fs::write(&tmp, &bytes)
                .with_context(|| format!("while writing {}", tmp.display()))?;
            std::fs::rename(&tmp, &path)
                .with_context(|| format!("while renaming {}", tmp.display()))
        })
        .await
        .context("the outbox task panicked")??;
        Ok(())
    }
}
