//! Amazon SES (API v2) transport, for the Lambda deployment: no SMTP credentials to keep, the
//! function's role is allowed `ses:SendEmail` from one verified identity.
//!
//! Configured by `ses:[?endpoint=..&region=..&from=..&configuration_set=..]`; `from` must be an
//! address (or domain) verified in SES. `configuration_set` names the SES configuration set
//! whose event destination reports bounces and complaints ([`crate::mail_events`]).

use crate::mailer::{Mail, Mailer};
use anyhow::{bail, Context};
use async_trait::async_trait;
use aws_sdk_sesv2::primitives::Blob;
use aws_sdk_sesv2::types::{Destination, EmailContent, RawMessage};
use aws_sdk_sesv2::Client;

pub struct SesMailer {
    client: Client,
    from: String,
    mailbox: lettre::message::Mailbox,
    configuration_set: Option<String>,
}

impl std::fmt::Debug for SesMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SesMailer")
            .field("from", &self.from)
            .field("configuration_set", &self.configuration_set)
            .finish()
    }
}

/// Settings parsed from the part of `ses:[?endpoint=..&region=..&from=..]` after `ses:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SesUrl {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub from: String,
    pub configuration_set: Option<String>,
}

impl SesUrl {
    pub fn parse(rest: &str) -> anyhow::Result<Self> {
        let query = rest.strip_prefix('?').unwrap_or(rest);
        let (mut endpoint, mut region, mut from, mut configuration_set) = (None, None, None, None);
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            match &*k {
                "endpoint" => endpoint = Some(v.into_owned()),
                "region" => region = Some(v.into_owned()),
                "from" => from = Some(v.into_owned()),
                "configuration_set" => configuration_set = Some(v.into_owned()),
                other => bail!(
                    "unknown option {other:?} in ses:{rest}: expected endpoint=, region=, \
                     from= or configuration_set="
                ),
            }
        }
        let from = from.filter(|f| f.contains('@')).with_context(|| {
            format!("ses:{rest}: from=ADDRESS is required (an identity verified in SES)")
        })?;
        Ok(SesUrl {
            endpoint,
            region,
            from,
            configuration_set: configuration_set.filter(|c| !c.is_empty()),
        })
    }
}

impl SesMailer {
    /// A mailer with an already configured client (tests use static credentials).
    /// `from`: an identity verified in SES, `Name <address>` or `address`.
    pub fn new(client: Client, from: impl Into<String>) -> anyhow::Result<Self> {
        let from = from.into();
        let mailbox = super::parse_from(Some(&from))?;
        Ok(SesMailer {
            client,
            from,
            mailbox,
            configuration_set: None,
        })
    }

    /// Sends through `name`, the configuration set whose events reach the mail-events handler.
    pub fn with_configuration_set(mut self, name: Option<String>) -> Self {
        self.configuration_set = name;
        self
    }

    /// Opens the mailer from the part of `ses:[?endpoint=..&region=..&from=..]` after the colon.
    /// Credentials come from the environment (or the Lambda execution role).
    pub async fn from_url(rest: &str) -> anyhow::Result<Self> {
        let url = SesUrl::parse(rest)?;
        let conf = crate::aws::sdk_config(url.endpoint.as_deref(), url.region.as_deref()).await;
        if conf.region().is_none() {
            bail!("ses:{rest}: no AWS region (set region= or AWS_REGION)");
        }
        Ok(Self::new(Client::new(&conf), url.from)?.with_configuration_set(url.configuration_set))
    }

    pub fn from(&self) -> &str {
        &self.from
    }
}

#[async_trait]
impl Mailer for SesMailer {
    async fn send(&self, mail: &Mail) -> anyhow::Result<()> {
        // The whole message as the other transports write it (raw), so that it carries the
        // same headers (Message-ID, Auto-Submitted, Reply-To); SES adds its DKIM signature.
        let bytes = super::to_message(&self.mailbox, mail)?.formatted();
        let raw = RawMessage::builder()
            .data(Blob::new(bytes))
            .build()
            .context("while building an SES raw message")?;
        self.client
            .send_email()
            .from_email_address(&self.from)
            .set_configuration_set_name(self.configuration_set.clone())
            .destination(Destination::builder().to_addresses(&mail.to).build())
            .content(EmailContent::builder().raw(raw).build())
            .send()
            .await
            .map_err(|e| anyhow::Error::new(e.into_service_error()))
            .context("while sending a mail through Amazon SES")
            .map_err(|e| super::redact::redact(e, &mail.to))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_settings() {
        let url =
            SesUrl::parse("?region=eu-west-1&from=Cahier%20%3Cnoreply%40example.org%3E").unwrap();
        assert_eq!(url.region.as_deref(), Some("eu-west-1"));
        assert_eq!(url.from, "Cahier <noreply@example.org>");
        assert_eq!(url.endpoint, None);
        assert_eq!(url.configuration_set, None);
        let url = SesUrl::parse("?from=a%40b.org&configuration_set=cahier-mail").unwrap();
        assert_eq!(url.configuration_set.as_deref(), Some("cahier-mail"));
        let err = SesUrl::parse("").unwrap_err().to_string();
        assert!(err.contains("from=ADDRESS is required"), "{err}");
        let err = SesUrl::parse("?to=x").unwrap_err().to_string();
        assert!(err.contains("unknown option \"to\""), "{err}");
    }
}
