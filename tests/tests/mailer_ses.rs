//! `SesMailer` against a real moto server: the sender identity is verified through the SES v2
//! API first (as in production), then the mail is read back from moto's inspection API.

use cahier_function::mailer::ses::SesMailer;
use cahier_function::mailer::{Mail, Mailer};
use cahier_tests::moto::Moto;

fn mail(to: &str) -> Mail {
    Mail {
        to: to.into(),
        subject: "Confirmez votre signature — Noël sans Amazon".into(),
        text: "Cliquez : https://example.org/noel/confirm/#t=abc".into(),
        html: "<p>Cliquez : <a href=\"https://example.org/noel/confirm/#t=abc\">confirmer</a></p>"
            .into(),
        from_name: Some("Collectif Noël".into()),
        reply_to: Some("contact@example.org".into()),
        auto_submitted: true,
        list_unsubscribe: None,
    }
}

#[tokio::test]
async fn sends_through_ses_from_a_verified_identity() -> anyhow::Result<()> {
    let moto = Moto::start()?;
    let client = aws_sdk_sesv2::Client::new(&moto.sdk_config().await);
    client
        .create_email_identity()
        .email_identity("noreply@example.org")
        .send()
        .await?;
    let mailer = SesMailer::new(client, "Cahier <noreply@example.org>")?;
    mailer.send(&mail("signer@example.net")).await?;

    // Sent raw, as the other transports write it: read back with an independent parser.
    let sent = cahier_tests::moto::ses_mails(&moto)?;
    assert_eq!(sent.len(), 1, "one message in moto: {sent:?}");
    let msg = &sent[0];
    assert_eq!(msg.from, "Collectif Noël <noreply@example.org>", "{msg:?}");
    assert_eq!(msg.to, "signer@example.net", "{msg:?}");
    assert_eq!(msg.subject, "Confirmez votre signature — Noël sans Amazon");
    assert_eq!(msg.reply_to.as_deref(), Some("contact@example.org"));
    assert_eq!(msg.auto_submitted.as_deref(), Some("auto-generated"));
    let id = msg.message_id.as_deref().unwrap_or_default();
    assert!(id.ends_with("@example.org") && id.len() > 20, "{id:?}");
    assert!(msg.text.contains("#t=abc"), "{msg:?}");
    assert!(msg
        .html
        .contains("href=\"https://example.org/noel/confirm/#t=abc\""));
    assert!(msg.list_unsubscribe.is_none());

    // An update (cahier admin mail through SES) keeps its one-click headers in the raw send.
    let update = Mail {
        auto_submitted: false,
        list_unsubscribe: Some("https://example.org/api/unsubscribe?t=xyz".into()),
        ..mail("reader@example.net")
    };
    mailer.send(&update).await?;
    let sent = cahier_tests::moto::ses_mails(&moto)?;
    let msg = sent
        .iter()
        .find(|m| m.to == "reader@example.net")
        .expect("the update");
    assert_eq!(
        msg.list_unsubscribe.as_deref(),
        Some("<https://example.org/api/unsubscribe?t=xyz>")
    );
    assert_eq!(
        msg.list_unsubscribe_post.as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    assert!(msg.auto_submitted.is_none());
    Ok(())
}

#[tokio::test]
async fn an_unverified_sender_is_an_error() -> anyhow::Result<()> {
    let moto = Moto::start()?;
    let client = aws_sdk_sesv2::Client::new(&moto.sdk_config().await);
    let mailer = SesMailer::new(client, "someone@unverified.example")?;
    let err = mailer
        .send(&mail("signer@example.net"))
        .await
        .expect_err("SES must refuse an unverified sender");
    // moto words it "did not have authority to send from", SES "is not verified".
    let text = format!("{err:#}");
    assert!(
        text.contains("not verified") || text.contains("authority to send from"),
        "{text}"
    );
    Ok(())
}
