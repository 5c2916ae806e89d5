//! SMTP through lettre: `smtp://[user:pass@]host:port[?tls=none|starttls|tls&from=..]`.

use super::{parse_from, to_message, Mail, Mailer};
use anyhow::Context;
use async_trait::async_trait;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use std::time::Duration;

pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("from", &self.from)
            .finish()
    }
}

impl SmtpMailer {
    pub fn from_url(setting: &str) -> anyhow::Result<Self> {
        let url = url::Url::parse(setting).with_context(|| {
            "invalid SMTP setting (expected smtp://[user:pass@]host:port[?tls=..])"
        })?;
        anyhow::ensure!(
            url.scheme() == "smtp",
            "the SMTP setting must start with smtp://"
        );
        let host = url
            .host_str()
            .context("the SMTP setting needs a host")?
            .to_string();
        let mut tls = "starttls".to_string();
        let mut from = None;
        for (k, v) in url.query_pairs() {
            match &*k {
                "tls" => tls = v.into_owned(),
                "from" => from = Some(v.into_owned()),
                other => anyhow::bail!("unknown SMTP parameter {other:?}"),
            }
        }
        let port = url.port().unwrap_or(if tls == "tls" { 465 } else { 587 });
        let params = || TlsParameters::new(host.clone()).context("while setting up TLS for SMTP");
        let tls = match tls.as_str() {
            "none" => Tls::None,
            "starttls" => Tls::Required(params()?),
            "tls" => Tls::Wrapper(params()?),
            other => anyhow::bail!("unknown SMTP tls mode {other:?} (none, starttls or tls)"),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&host)
            .port(port)
            .tls(tls)
            .timeout(Some(Duration::from_secs(10)));
        if !url.username().is_empty() {
            let user = percent_decode(url.username());
            let pass = percent_decode(url.password().unwrap_or(""));
            builder = builder.credentials(Credentials::new(user, pass));
        }
        Ok(SmtpMailer {
            transport: builder.build(),
            from: parse_from(from.as_deref())?,
        })
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: &Mail) -> anyhow::Result<()> {
        let message = to_message(&self.from, mail)?;
        self.transport
            .send(message)
            .await
            .with_context(|| "while sending a mail over SMTP")?;
        Ok(())
    }
}
