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
