//! The SMTP mailer (lettre) against a real SMTP server on loopback (aiosmtpd from the venv),
//! directly and through the real binary.

use cahier_function::mailer::{self, Mail};
use cahier_tests::flow::Api;
use cahier_tests::outbox::token;
use cahier_tests::server::Fixture;
use cahier_tests::smtp::SmtpSink;
use serde_json::json;
use std::time::{Duration, Instant};

fn wait_for_mails(sink: &SmtpSink, n: usize) -> Vec<cahier_tests::outbox::ReadMail> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mails = sink.mails();
        if mails.len() >= n || Instant::now() > deadline {
            return mails;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn smtp_mailer_delivers_text_and_html() {
    let sink = SmtpSink::start();
    let m = mailer::open(&format!(
        "smtp://127.0.0.1:{}?tls=none&from=Collectif%20Test%20%3Cpetitions%40example.org%3E",
        sink.port
    ))
    .await
    .unwrap();
    m.send(&Mail {
        to: "dest@example.org".into(),
        subject: "Confirmez votre signature : Noël".into(),
        text: "Bonjour, lien : https://s.example/p/confirm/#t=abc".into(),
        html: "<p>Bonjour</p>".into(),
        ..Mail::default()
    })
    .await
    .unwrap();
    let mails = wait_for_mails(&sink, 1);
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, "dest@example.org");
    assert_eq!(mails[0].subject, "Confirmez votre signature : Noël");
    assert!(mails[0].text.contains("#t=abc"));
    assert!(mails[0].html.contains("<p>Bonjour</p>"));
    // A closed port is an error, not a silent success.
    let dead = mailer::open(&format!(
        "smtp://127.0.0.1:{}?tls=none",
        cahier_tests::free_port()
    ))
    .await
    .unwrap();
    assert!(dead.send(&mails_to("x@example.org")).await.is_err());
    assert!(mailer::open("smtp://127.0.0.1:25?tls=bogus").await.is_err());
}

fn mails_to(to: &str) -> Mail {
    Mail {
        to: to.into(),
        subject: "s".into(),
        text: "t".into(),
        html: "<p>h</p>".into(),
        ..Mail::default()
    }
}

#[tokio::test]
async fn the_binary_mails_over_smtp() {
    let sink = SmtpSink::start();
    let dir = tempfile::tempdir().unwrap();
    let f = Fixture::start(
        dir.path(),
        Some(format!("smtp://127.0.0.1:{}?tls=none", sink.port)),
        &[],
    );
    let api = Api::new(&f.server.base);
    let captcha = api.captcha().await;
    let res = api
        .sign_json(
            &json!({"name": "Smtp", "email": "smtp@example.org", "consent": "yes",
                           "h-captcha-response": captcha, "lang": "en"}),
        )
        .await;
    assert_eq!(res.status(), 202, "{}", f.server.log());
    let mails = wait_for_mails(&sink, 1);
    assert_eq!(mails.len(), 1, "{}", f.server.log());
    assert!(mails[0].subject.starts_with("Confirm your signature"));
    // The signing path's mails, as the sink received them over SMTP: from the collective,
    // replies to its contact address, a Message-ID on the sender's domain, auto-generated.
    assert!(
        mails[0].from.starts_with("Collectif Test <"),
        "{:?}",
        mails[0]
    );
    assert_eq!(
        mails[0].reply_to.as_deref(),
        Some("contact@petitions.example")
    );
    assert_eq!(mails[0].auto_submitted.as_deref(), Some("auto-generated"));
    let id = mails[0].message_id.as_deref().unwrap_or_default();
    let domain = mails[0]
        .from
        .rsplit('@')
        .next()
        .unwrap()
        .trim_end_matches('>');
    assert!(id.ends_with(&format!("@{domain}")), "{id:?} on {domain}");
    let t = token(&mails[0].text, "confirm").unwrap();
    let res = api.confirm(&t).await;
    assert_eq!(res.status(), 200);
}
