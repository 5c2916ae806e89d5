//! Outgoing mail. One trait; each transport in its own file (outbox folder, SMTP, Amazon SES).

use async_trait::async_trait;

/// A rendered message in one language, plain text and HTML.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// The display name of the sender (the collective), over the mailer's address.
    pub from_name: Option<String>,
    /// Where replies go (the collective's contact address); none: to the sender.
    pub reply_to: Option<String>,
    /// `Auto-Submitted: auto-generated` (RFC 3834): sent by a program in answer to an event
    /// (a signature), so that vacation responders and mailing lists do not answer it.
    pub auto_submitted: bool,
    /// An update's one-click unsubscribe URL (RFC 8058): `List-Unsubscribe` with
    /// `List-Unsubscribe-Post: List-Unsubscribe=One-Click`.
    pub list_unsubscribe: Option<String>,
}

#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, mail: &Mail) -> anyhow::Result<()>;
}

pub mod dkim;
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

/// Builds the MIME message (plain text + HTML alternative) for any transport, with the headers
/// receiving servers look for: a `Message-ID` on the sender's domain (some large providers
/// refuse mail without one, and lettre adds none by itself), `Date`, `Auto-Submitted` for
/// transactional mail, and `Reply-To` when the collective has a contact address.
pub fn to_message(from: &Mailbox, mail: &Mail) -> anyhow::Result<lettre::Message> {
    let to: Mailbox = mail.to.parse().with_context(|| {
        format!(
            "invalid recipient address {:?}",
            redact::pseudonym(&mail.to)
        )
    })?;
    let sender = match &mail.from_name {
        Some(name) if !name.trim().is_empty() => {
            Mailbox::new(Some(name.trim().to_string()), from.email.clone())
        }
        _ => from.clone(),
    };
    let mut builder = lettre::Message::builder()
        .from(sender)
        .to(to)
        .subject(mail.subject.clone())
        .date_now()
        .message_id(Some(message_id(from.email.domain())));
    if let Some(reply_to) = mail.reply_to.as_deref().and_then(|r| r.parse().ok()) {
        builder = builder.reply_to(reply_to);
    }
    if mail.auto_submitted {
        builder = builder.header(AutoSubmitted);
    }
    if let Some(url) = &mail.list_unsubscribe {
        anyhow::ensure!(
            url.starts_with("https://") || url.starts_with("http://"),
            "the unsubscribe URL must be http(s)"
        );
        anyhow::ensure!(
            !url.contains(['<', '>', ',', '\r', '\n', ' ']),
            "the unsubscribe URL has a character a header cannot carry"
        );
        builder = builder
            .header(ListUnsubscribe(format!("<{url}>")))
            .header(ListUnsubscribePost(
                "List-Unsubscribe=One-Click".to_string(),
            ));
    }
    builder
        .multipart(MultiPart::alternative_plain_html(
            mail.text.clone(),
            mail.html.clone(),
        ))
        .context("while building a mail")
        .map_err(|e| redact::redact(e, &mail.to))
}

/// `<time.random@domain>`: unique without a counter shared between instances.
fn message_id(domain: &str) -> String {
    let random: [u8; 12] = rand::random();
    format!("<{}.{}@{domain}>", crate::now(), hex::encode(random))
}

/// RFC 3834's `Auto-Submitted: auto-generated`.
#[derive(Debug, Clone, Copy)]
struct AutoSubmitted;

impl lettre::message::header::Header for AutoSubmitted {
    fn name() -> lettre::message::header::HeaderName {
        lettre::message::header::HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted)
    }

    fn display(&self) -> lettre::message::header::HeaderValue {
        lettre::message::header::HeaderValue::new(Self::name(), "auto-generated".to_string())
    }
}

/// A header lettre has no type for (lettre names a header by its type), holding an ASCII
/// value the caller checked.
macro_rules! raw_header {
    ($ty:ident, $name:literal) => {
        #[derive(Debug, Clone)]
        struct $ty(String);

        impl lettre::message::header::Header for $ty {
            fn name() -> lettre::message::header::HeaderName {
                lettre::message::header::HeaderName::new_from_ascii_str($name)
            }

            fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
                Ok($ty(s.to_string()))
            }

            fn display(&self) -> lettre::message::header::HeaderValue {
                lettre::message::header::HeaderValue::new(Self::name(), self.0.clone())
            }
        }
    };
}

raw_header!(ListUnsubscribe, "List-Unsubscribe");
raw_header!(ListUnsubscribePost, "List-Unsubscribe-Post");

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
