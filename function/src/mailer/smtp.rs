//! SMTP through lettre: `smtp://[user:pass@]host:port[?tls=none|starttls|tls&from=..]`, and
//! DKIM-signed when `dkim_selector=` is given ([`super::dkim`]): the key from the file named by
//! `dkim_key=PATH`, else from the `CAHIER_DKIM_KEY` environment variable (never in the URL,
//! which is logged and shown); the domain is `dkim_domain=`, else the sender's.

use super::dkim::Dkim;
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
    dkim: Option<Dkim>,
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
        let (mut dkim_selector, mut dkim_domain, mut dkim_key) = (None, None, None);
        for (k, v) in url.query_pairs() {
            match &*k {
                "tls" => tls = v.into_owned(),
                "from" => from = Some(v.into_owned()),
                "dkim_selector" => dkim_selector = Some(v.into_owned()),
                "dkim_domain" => dkim_domain = Some(v.into_owned()),
                "dkim_key" => dkim_key = Some(v.into_owned()),
                other => anyhow::bail!("unknown SMTP parameter {other:?}"),
            }
        }
        let from = parse_from(from.as_deref())?;
        let dkim = match dkim_selector {
            None => {
                anyhow::ensure!(
                    dkim_domain.is_none() && dkim_key.is_none(),
                    "dkim_domain and dkim_key need dkim_selector (the DNS name of the key)"
                );
                None
            }
            Some(selector) => {
                let key = match &dkim_key {
                    Some(path) => std::fs::read_to_string(path)
                        .with_context(|| format!("while reading the DKIM key {path}"))?,
                    None => std::env::var("CAHIER_DKIM_KEY").context(
                        "dkim_selector is set but there is no key: dkim_key=PATH or CAHIER_DKIM_KEY",
                    )?,
                };
                let domain = dkim_domain.unwrap_or_else(|| from.email.domain().to_string());
                Some(Dkim::new(&selector, &domain, &key)?)
            }
        };
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
            from,
            dkim,
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
        let mut message = to_message(&self.from, mail)?;
        if let Some(dkim) = &self.dkim {
            dkim.sign(&mut message);
        }
        self.transport
            .send(message)
            .await
            .with_context(|| "while sending a mail over SMTP")
            .map_err(|e| super::redact::redact(e, &mail.to))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    /// An SMTP server on loopback that refuses every recipient, echoing the address as real
    /// servers do.
    async fn refusing_server() -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut lines = BufReader::new(read).lines();
                    write.write_all(b"220 refuser ESMTP\r\n").await.unwrap();
                    while let Ok(Some(line)) = lines.next_line().await {
                        let upper = line.to_ascii_uppercase();
                        let answer = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                            "250 refuser\r\n".to_string()
                        } else if upper.starts_with("RCPT TO:") {
                            let addr = line["RCPT TO:".len()..].trim().to_string();
                            format!("550 5.1.1 {addr}: Recipient address rejected\r\n")
                        } else if upper.starts_with("QUIT") {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            return;
                        } else {
                            "250 ok\r\n".to_string()
                        };
                        if write.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        port
    }

    #[tokio::test]
    async fn a_refusal_does_not_put_the_recipient_in_the_error() {
        let port = refusing_server().await;
        let mailer = SmtpMailer::from_url(&format!("smtp://127.0.0.1:{port}?tls=none")).unwrap();
        let mail = Mail {
            to: "Jeanne.Martin@example.org".into(),
            subject: "Confirm".into(),
            text: "text".into(),
            html: "<p>html</p>".into(),
            ..Mail::default()
        };
        let err = format!("{:#}", mailer.send(&mail).await.unwrap_err());
        assert!(err.contains("Recipient address rejected"), "{err}");
        assert!(err.contains("***@example.org"), "{err}");
        assert!(!err.to_lowercase().contains("jeanne"), "{err}");

        let bad = Mail {
            to: "not an address jeanne".into(),
            ..mail
        };
        let err = format!("{:#}", mailer.send(&bad).await.unwrap_err());
        assert!(!err.contains("jeanne"), "{err}");
    }
}
