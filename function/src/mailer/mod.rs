//! Outgoing mail. One trait; each transport in its own file (outbox folder, SMTP, Amazon SES).

use async_trait::async_trait;

/// A rendered message in one language, plain text and HTML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, mail: &Mail) -> anyhow::Result<()>;
}

pub mod outbox;
pub mod redact;
#[cfg(feature = "ses")]
pub mod ses;
pub mod smtp;

use anyhow::Context;
use lettre::message::{Mailbox, MultiPart};
use std::sync::Arc;

/// Sender used when the mailer setting has no `from=`.
pub const DEFAULT_FROM: &str = "Cahier <noreply@localhost>";

/// Builds the MIME message (plain text + HTML alternative) for any transport.
pub fn to_message(from: &Mailbox, mail: &Mail) -> anyhow::Result<lettre::Message> {
    let to: Mailbox = mail.to.parse().with_context(|| {
        format!(
            "invalid recipient address {:?}",
            redact::pseudonym(&mail.to)
        )
    })?;
    lettre::Message::builder()
        .from(from.clone())
        .to(to)
        .subject(mail.subject.clone())
        .multipart(MultiPart::alternative_plain_html(
            mail.text.clone(),
            mail.html.clone(),
        ))
        .context("while building a mail")
        .map_err(|e| redact::redact(e, &mail.to))
}

/// Parses a `from=` value (`Name <addr>` or `addr`).
pub fn parse_from(value: Option<&str>) -> anyhow::Result<Mailbox> {
    let v = value.unwrap_or(DEFAULT_FROM);
    v.parse()
        .with_context(|| format!("invalid sender address {v:?}"))
}

/// Opens a mailer from its URL-like setting: `outbox:DIR[?from=..]`,
/// `smtp://[user:pass@]host:port[?tls=none|starttls|tls&from=..]` or `ses:[?endpoint=..&region=..&from=..]`.
pub async fn open(url: &str) -> anyhow::Result<Arc<dyn Mailer>> {
    let (scheme, rest) = url.split_once(':').with_context(|| {
        format!("invalid mailer setting {url:?}: expected outbox:DIR, smtp://HOST:PORT or ses:")
    })?;
    Ok(match scheme {
        "outbox" => Arc::new(outbox::OutboxMailer::from_url(rest)?),
        "smtp" => Arc::new(smtp::SmtpMailer::from_url(url)?),
        #[cfg(feature = "ses")]
        "ses" => Arc::new(ses::SesMailer::from_url(rest).await?),
        #[cfg(not(feature = "ses"))]
        "ses" => {
            anyhow::bail!("mailer {url:?}: Amazon SES support is not compiled into this build")
        }
        other => anyhow::bail!(
            "unknown mailer {other:?} in {url:?}: expected outbox:DIR, smtp://HOST:PORT or ses:"
        ),
    })
}
