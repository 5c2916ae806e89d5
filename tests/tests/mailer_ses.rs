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
    let mailer = SesMailer::new(client, "Cahier <noreply@example.org>");
    mailer.send(&mail("signer@example.net")).await?;

    let data: serde_json::Value = serde_json::from_str(&moto.get("/moto-api/data.json")?)?;
    let sent = data["ses"]["Message"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(sent.len(), 1, "one message in moto: {}", data["ses"]);
    let msg = &sent[0];
    assert_eq!(msg["source"], "Cahier <noreply@example.org>", "{msg}");
    assert_eq!(
        msg["destinations"]["ToAddresses"][0], "signer@example.net",
        "{msg}"
    );
    assert_eq!(
        msg["subject"], "Confirmez votre signature — Noël sans Amazon",
        "{msg}"
    );
    assert!(
        msg["body"].as_str().unwrap_or_default().contains("#t=abc"),
        "{msg}"
    );
    Ok(())
}

#[tokio::test]
async fn an_unverified_sender_is_an_error() -> anyhow::Result<()> {
    let moto = Moto::start()?;
    let client = aws_sdk_sesv2::Client::new(&moto.sdk_config().await);
    let mailer = SesMailer::new(client, "someone@unverified.example");
    let err = mailer
        .send(&mail("signer@example.net"))
        .await
        .expect_err("SES must refuse an unverified sender");
    assert!(format!("{err:#}").contains("not verified"), "{err:#}");
    Ok(())
}
