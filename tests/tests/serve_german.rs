//! A site in German (`languages = ["de"]`, the default theme's `i18n/de.toml`): its pages and
//! the mails the function sends are in German, from the theme's templates and strings; a site
//! that rewords a mail string in its own `i18n/de.toml` gets its wording in the mail.

use cahier_tests::flow::Api;
use cahier_tests::outbox::read_dir;
use cahier_tests::serve::CahierServe;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const SLUG: &str = "klimaschutz-jetzt";
const TITLE: &str = "Klimaschutz jetzt: Radwege für unsere Stadt";

fn german_strings() -> BTreeMap<String, String> {
    let path = cahier_tests::repo_root().join("themes/default/i18n/de.toml");
    toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn german_site(root: &std::path::Path) {
    let repo = cahier_tests::repo_root();
    std::fs::write(
        root.join("cahier.toml"),
        "base_url = \"https://petitionen.example.de\"\ntitle = \"Bürgerinitiative Radwege\"\n\
         languages = [\"de\"]\n\n[organization]\nname = \"Bürgerinitiative Radwege\"\n\n\
         [captcha]\nprovider = \"hcaptcha\"\nsitekey = \"10000000-ffff-ffff-ffff-000000000001\"\n",
    )
    .unwrap();
    let dir = root.join("content").join(SLUG);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("index.md"),
        format!(
            "+++\ntitle = \"{TITLE}\"\nsummary = \"Sichere Radwege auf allen Hauptstraßen bis 2028.\"\n\
             addressee = \"Stadtrat\"\ngoal = 500\n+++\n\nWir fordern sichere, getrennte Radwege.\n"
        ),
    )
    .unwrap();
    // The theme, as a site uses it: themes/default.
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(repo.join("themes"))
        .arg(root)
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn a_german_site_has_german_pages_and_mails() {
    let de = german_strings();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("site");
    std::fs::create_dir(&root).unwrap();
    german_site(&root);
    let s = CahierServe::start(&root);

    let html = reqwest::get(s.url(&format!("/{SLUG}/")))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("<html lang=\"de\""), "{html}");
    for key in ["sign_button", "sign_title", "privacy_link"] {
        if let Some(text) = de.get(key) {
            assert!(
                html.contains(&cahier_function::mail_templates::escape_html(text)),
                "the page lacks {key} = {text:?}"
            );
        }
    }
    assert!(
        !html.contains(">Sign the petition<"),
        "English on a German page"
    );

    let api = Api::new(&s.base).slug(SLUG);
    let captcha = api.captcha().await;
    let res = api
        .sign_json(&json!({
            "name": "Jonas Beispiel", "email": "jonas@example.de", "consent": true,
            "h-captcha-response": captcha, "lang": "de", "fill_ms": 6000,
        }))
        .await;
    assert_eq!(res.status(), 202, "{}", s.log());
    let deadline = Instant::now() + Duration::from_secs(10);
    let mail = loop {
        if let Some(m) = read_dir(&s.outbox()).into_iter().next() {
            break m;
        }
        assert!(Instant::now() < deadline, "no mail:\n{}", s.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let subject = de["mail_confirm_subject"].replace("{title}", TITLE);
    assert_eq!(mail.subject, subject);
    assert!(mail.text.contains(&de["mail_erase_intro"]), "{}", mail.text);
    assert!(
        mail.text
            .contains(&de["mail_expiry"].replace("{days}", "7")),
        "{}",
        mail.text
    );
    assert!(mail.html.contains("<html lang=\"de\">"), "{}", mail.html);
    assert!(
        mail.html
            .contains(&cahier_function::mail_templates::escape_html(
                &de["mail_confirm_label"]
            )),
        "{}",
        mail.html
    );

    // The site rewords one mail string (site i18n/ overrides the theme's keys, as for pages).
    std::fs::create_dir_all(root.join("i18n")).unwrap();
    std::fs::write(
        root.join("i18n/de.toml"),
        "mail_confirm_subject = \"Bitte bestätigen: {title}\"\n",
    )
    .unwrap();
    s.wait_log("rebuilt in", Duration::from_secs(20));
    // From another address: one address gets one mail a minute (the address budget).
    let captcha = api.captcha().await;
    let other = reqwest::Client::builder()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let res = other
        .post(s.url(&format!("/api/petitions/{SLUG}/sign")))
        .header("origin", &s.base)
        .json(&json!({
            "name": "Mia Beispiel", "email": "mia@example.de", "consent": true,
            "h-captcha-response": captcha, "lang": "de", "fill_ms": 6000,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mails = read_dir(&s.outbox());
        if let Some(m) = mails.iter().find(|m| m.to == "mia@example.de") {
            assert_eq!(m.subject, format!("Bitte bestätigen: {TITLE}"));
            break;
        }
        assert!(Instant::now() < deadline, "no mail:\n{}", s.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
