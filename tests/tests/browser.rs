//! The product as its users meet it: headless Chromium against the example site served with its
//! API on one origin (dev captcha, outbox mails), in French (root) and English (`/en/`).
//! Screenshots of every step land in `target/browser-artifacts/<test>/`.
//!
//! Needs `chromium`, `chromium-driver` and `npm ci` in tests/browser (scripts/test.sh).

use anyhow::{ensure, Context};
use cahier_tests::browser::Browser;
use cahier_tests::site::{link, Site, LIBRARY, PETITION};
use fantoccini::key::Key;
use serde_json::json;

/// Browsers are heavy on a 2-core machine: at most two sessions at once in this binary.
static SESSIONS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

fn prefix(lang: &str) -> &'static str {
    if lang == "fr" {
        ""
    } else {
        "/en"
    }
}

/// Texts of the theme the tests look for, per language.
struct Texts {
    check_email: &'static str,
    thanks: &'static str,
    /// French counts zero in the singular ("0 signature"), English in the plural.
    no_signature: &'static str,
    one_signature: &'static str,
    /// The dev captcha widget, once solved.
    captcha_done: &'static str,
    /// The count line and the paper line after a batch of 140 on paper.
    with_paper: &'static str,
    paper: &'static str,
    /// The start of the last-signature line, and of its "seconds ago".
    last_signed: &'static str,
    seconds_ago: &'static str,
}

fn texts(lang: &str) -> Texts {
    if lang == "fr" {
        Texts {
            check_email: "Vérifiez votre boîte e-mail",
            thanks: "Merci",
            no_signature: "0 signature pour l'instant : soyez la première personne à signer.",
            one_signature: "1 signature",
            captcha_done: "Vérifié (captcha de développement)",
            with_paper: "141 signatures",
            paper: "Dont 140 sur papier.",
            last_signed: "Dernière signature il y a ",
            seconds_ago: "seconde",
        }
    } else {
        Texts {
            check_email: "Check your e-mail",
            thanks: "Thank you",
            no_signature: "0 signatures so far: be the first to sign.",
            one_signature: "1 signature",
            captcha_done: "Verified (development captcha)",
            with_paper: "141 signatures",
            paper: "Including 140 signed on paper.",
            last_signed: "Last signature ",
            seconds_ago: "second",
        }
    }
}

/// hCaptcha-like widget of the dev captcha: click it and wait until it says it is solved.
async fn solve_captcha(b: &Browser) -> anyhow::Result<()> {
    b.wait_visible(".h-captcha button.dev-captcha")
        .await?
        .click()
        .await?;
    captcha_solved(b).await
}

async fn captcha_solved(b: &Browser) -> anyhow::Result<()> {
    b.wait_js(
        "the captcha to be solved",
        "var a = document.querySelector(\"[name='h-captcha-response']\"); return !!(a && a.value);",
    )
    .await?;
    Ok(())
}

/// People take more than two seconds to fill a form; the function flags faster fills (held,
/// never counted). Waits until the page has been open that long.
async fn human_fill_time(b: &Browser) -> anyhow::Result<()> {
    b.wait_js(
        "two seconds since the page loaded",
        "return performance.now() > 2100;",
    )
    .await?;
    Ok(())
}

async fn fill(b: &Browser, css: &str, text: &str) -> anyhow::Result<()> {
    let el = b.find(css).await?;
    el.clear().await?;
    el.send_keys(text).await?;
    Ok(())
}

async fn tick(b: &Browser, css: &str) -> anyhow::Result<()> {
    let el = b.find(css).await?;
    if !el.is_selected().await? {
        el.click().await?;
    }
    Ok(())
}

/// The count line shows `needle` (e.g. "0 signatures") once the live count has loaded.
async fn see_count(b: &Browser, needle: &str) -> anyhow::Result<String> {
    b.wait_visible("[data-count-line]").await?;
    let text = b.wait_text("[data-count-line]", needle).await?;
    ensure!(
        text.trim() == needle,
        "count line {text:?}, expected {needle:?}"
    );
    Ok(text)
}

/// Opens the confirm link, checks that opening it did not confirm, clicks the button and lands
/// on the thanks page with the new count.
async fn confirm_from_mail(
    site: &Site,
    b: &mut Browser,
    lang: &str,
    slug: &str,
    email: &str,
    expected_count: u64,
) -> anyhow::Result<()> {
    let t = texts(lang);
    let mail = site.wait_mail(email).await?;
    let confirm = link(&mail, "confirm").context("a confirm link in the mail")?;
    let expected = site.url(&format!("{}/{slug}/confirm/#t=", prefix(lang)));
    ensure!(
        confirm.starts_with(&expected),
        "confirm link {confirm} should start with {expected}"
    );
    ensure!(
        link(&mail, "erase").is_some(),
        "an erase link in the mail:\n{}",
        mail.text
    );
    b.goto(&confirm).await?;
    b.wait_js(
        "the confirm button to be enabled",
        "var x = document.querySelector('[data-token-button]'); return x && !x.disabled;",
    )
    .await?;
    b.shot("confirm").await?;
    ensure!(
        site.count(slug).await? == expected_count - 1,
        "opening the confirm page must not confirm"
    );
    b.find("[data-token-button]").await?.click().await?;
    b.wait_path(&format!("{}/{slug}/thanks/", prefix(lang)))
        .await?;
    b.wait_text("h1", t.thanks).await?;
    ensure!(site.count(slug).await? == expected_count);
    Ok(())
}

async fn sign_and_confirm(lang: &str) -> anyhow::Result<()> {
    let _slot = SESSIONS.acquire().await?;
    let t = texts(lang);
    let site = Site::start().await?;
    let mut b = Browser::start(&format!("sign_and_confirm_{lang}")).await?;
    let page = format!("{}/{PETITION}/", prefix(lang));
    b.goto(&site.url(&page)).await?;
    see_count(&b, t.no_signature).await?;
    b.shot("petition").await?;

    let email = format!("camille.{lang}@example.org");
    fill(&b, "#f-name", "Camille Dupont").await?;
    fill(&b, "#f-email", &email).await?;
    fill(&b, "#f-postcode", "69001").await?;
    fill(&b, "#f-city", "Lyon").await?;
    fill(&b, "#f-comment", "Les librairies de quartier comptent.").await?;
    tick(&b, "#f-public").await?;
    tick(&b, "#f-consent").await?;
    solve_captcha(&b).await?;
    let widget = b
        .js(
            "return document.querySelector('button.dev-captcha').textContent;",
            vec![],
        )
        .await?;
    assert!(
        widget.as_str().unwrap_or("").ends_with(t.captcha_done),
        "the captcha widget speaks {lang}: {widget}"
    );
    human_fill_time(&b).await?;
    b.shot("filled").await?;
    b.find("form[data-sign-form] button[type=submit]")
        .await?
        .click()
        .await?;

    b.wait_path(&format!("{}/{PETITION}/check-email/", prefix(lang)))
        .await?;
    b.wait_text("h1", t.check_email).await?;
    b.shot("check-email").await?;

    confirm_from_mail(&site, &mut b, lang, PETITION, &email, 1).await?;
    see_count(&b, t.one_signature).await?;
    b.shot("thanks").await?;

    b.goto(&site.url(&page)).await?;
    see_count(&b, t.one_signature).await?;
    b.wait_visible("[data-last-line]").await?;
    let last = b.wait_text("[data-last-line]", t.last_signed).await?;
    ensure!(
        last.contains(t.seconds_ago) && last.trim_end().ends_with('.'),
        "last-signature line {last:?}"
    );
    b.shot("petition-after").await?;

    // A paper batch declared in the front matter: recorded at the rebuild, shown as such.
    let source = site.root.join("content").join(PETITION).join("index.md");
    let text = std::fs::read_to_string(&source)?;
    let declared = text.replacen(
        "[[fields]]",
        "[[offline]]\nid = \"marche\"\ndate = \"2026-11-28\"\nsignatures = 140\n\n[[fields]]",
        1,
    );
    ensure!(declared != text, "no [[fields]] to insert the batch before");
    std::fs::write(&source, declared)?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while site.count(PETITION).await? != 141 {
        ensure!(
            std::time::Instant::now() < deadline,
            "the batch was not recorded:\n{}",
            site.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    b.goto(&site.url(&page)).await?;
    see_count(&b, t.with_paper).await?;
    b.wait_visible("[data-offline-line]").await?;
    let paper = b.wait_text("[data-offline-line]", t.paper).await?;
    ensure!(paper.trim() == t.paper, "paper line {paper:?}");
    b.shot("petition-paper").await?;

    // The public list: Camille (confirmed, opted in), not a confirmed signer who did not opt
    // in, not a pending one who did.
    let other = reqwest::Client::builder()
        .local_address("127.0.0.3".parse::<std::net::IpAddr>()?)
        .build()?;
    let api = cahier_tests::flow::Api::new(&site.base).slug(PETITION);
    for (email, public) in [
        (format!("dominique.{lang}@example.org"), false),
        (format!("eli.{lang}@example.org"), true),
    ] {
        let captcha = api.captcha().await;
        let mut body = json!({
            "name": format!("Private {email}"), "email": email, "consent": true,
            "postcode": "69002", "h-captcha-response": captcha, "lang": lang, "fill_ms": 6000,
        });
        if public {
            body["public"] = json!("yes");
        }
        let res = other
            .post(site.url(&format!("/api/petitions/{PETITION}/sign")))
            .header("origin", &site.base)
            .json(&body)
            .send()
            .await?;
        ensure!(res.status() == 202, "{}", res.status());
        if !public {
            let mail = site.wait_mail(&email).await?;
            let token = cahier_tests::outbox::token(&mail.text, "confirm").context("a token")?;
            ensure!(api.confirm(&token).await.status() == 200);
        }
    }
    b.goto(&site.url(&format!("{}/{PETITION}/", prefix(lang))))
        .await?;
    b.find(&format!("a[href$='/{PETITION}/signers/']"))
        .await?
        .click()
        .await?;
    b.wait_visible("[data-signers-list]").await?;
    let listed = b.wait_text("[data-signers-list]", "Camille Dupont").await?;
    ensure!(
        !listed.contains("Private"),
        "only the confirmed signers who opted in: {listed:?}"
    );
    let items = b
        .js(
            "return document.querySelectorAll('[data-signers-list] li').length;",
            vec![],
        )
        .await?;
    ensure!(items == json!(1), "{items} entries: {listed:?}");
    // Each name is isolated in its own direction, so no name can reorder the list around it.
    let isolated = b
        .js(
            "return Array.from(document.querySelectorAll('[data-signers-list] li')).map(li => { const n = li.querySelector('bdi.signer-name'); return n ? n.textContent : null; });",
            vec![],
        )
        .await?;
    ensure!(
        isolated == json!(["Camille Dupont"]),
        "names in <bdi>: {isolated}"
    );
    b.shot("signers").await?;
    let bad = b.axe(&format!("{lang} signers")).await?;
    ensure!(bad.is_empty(), "axe on the list: {bad:?}");

    // The page an update's unsubscribe link opens: one press, and no more updates.
    let secrets: toml::Table = toml::from_str(&std::fs::read_to_string(
        site.root.join(".cahier/secrets.toml"),
    )?)?;
    let pepper = hex::decode(secrets["cahier_pepper"].as_str().context("a pepper")?)?;
    let canonical = cahier_function::email::canonicalize(&email)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?
        .canonical;
    let hash = cahier_function::crypto::Hasher::new(&pepper)?.email(&canonical);
    let token = cahier_function::unsubscribe::issue(
        &cahier_function::unsubscribe::token_key(&pepper),
        PETITION,
        &hash,
        cahier_function::now(),
    );
    b.goto(&site.url(&format!("{}/unsubscribe/#t={token}", prefix(lang))))
        .await?;
    b.wait_js(
        "the unsubscribe button to be ready",
        "return !document.querySelector('[data-token-button]').disabled;",
    )
    .await?;
    let bad = b.axe(&format!("{lang} unsubscribe")).await?;
    ensure!(bad.is_empty(), "axe on the unsubscribe page: {bad:?}");
    b.find("[data-token-button]").await?.click().await?;
    let done = if lang == "fr" {
        "vous ne recevrez plus de nouvelles"
    } else {
        "you will receive no more updates"
    };
    b.wait_text("[data-token-status]", done).await?;
    b.shot("unsubscribed").await?;
    let store = cahier_function::store::sqlite::SqliteStore::open(
        &site.root.join(".cahier/signatures.sqlite3"),
    )?;
    use cahier_function::store::Store;
    ensure!(
        store.suppression(&hash).await?.is_some(),
        "the page's press put the address on the suppression list"
    );
    b.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_and_confirm_fr() {
    sign_and_confirm("fr").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_and_confirm_en() {
    sign_and_confirm("en").await.unwrap();
}

/// Server-side errors (problem+json) appear next to their field, in the page's language, and
/// nothing typed is lost; fixing them then signs.
async fn form_errors(lang: &str) -> anyhow::Result<()> {
    let _slot = SESSIONS.acquire().await?;
    let t = texts(lang);
    let site = Site::start().await?;
    let mut b = Browser::start(&format!("form_errors_{lang}")).await?;
    let page = format!("{}/{PETITION}/", prefix(lang));
    b.goto(&site.url(&page)).await?;
    see_count(&b, t.no_signature).await?;

    // An address the browser accepts (type=email) but the function refuses: no dotted domain.
    fill(&b, "#f-name", "Dominique Martin").await?;
    fill(&b, "#f-email", "dominique@localhost").await?;
    fill(&b, "#f-postcode", "75011").await?;
    fill(&b, "#f-comment", "Un commentaire à garder.").await?;
    tick(&b, "#f-consent").await?;
    solve_captcha(&b).await?;
    human_fill_time(&b).await?;
    b.find("form[data-sign-form] button[type=submit]")
        .await?
        .click()
        .await?;
    b.wait_visible("#err-email").await?;
    let message = b.find("#err-email").await?.text().await?;
    let expected = if lang == "fr" { "adresse" } else { "address" };
    ensure!(
        message.to_lowercase().contains(expected),
        "the e-mail error should be in {lang}: {message:?}"
    );
    ensure!(
        b.find("#f-email")
            .await?
            .attr("aria-invalid")
            .await?
            .as_deref()
            == Some("true"),
        "the e-mail input is marked invalid"
    );
    ensure!(
        b.focused().await?.contains("#f-email"),
        "the focus moves to the first invalid field, not {}",
        b.focused().await?
    );
    // The error sits right below its field.
    let (_, input_y, _, input_h) = b.find("#f-email").await?.rectangle().await?;
    let (_, err_y, _, _) = b.find("#err-email").await?.rectangle().await?;
    ensure!(
        err_y >= input_y + input_h && err_y < input_y + input_h + 80.0,
        "the e-mail error is next to the field (input at {input_y}+{input_h}, error at {err_y})"
    );
    ensure!(b.value("#f-name").await? == "Dominique Martin");
    ensure!(b.value("#f-email").await? == "dominique@localhost");
    ensure!(b.value("#f-postcode").await? == "75011");
    ensure!(b.value("#f-comment").await? == "Un commentaire à garder.");
    ensure!(b.find("#f-consent").await?.is_selected().await?);
    b.js(
        "document.getElementById('f-email').scrollIntoView({block: 'center'});",
        vec![],
    )
    .await?;
    b.shot("email-error").await?;

    // Missing consent, as a browser without constraint validation would send it: the server's
    // error goes next to the checkbox.
    fill(&b, "#f-email", &format!("dominique.{lang}@example.org")).await?;
    b.find("#f-consent").await?.click().await?;
    b.js(
        "document.querySelector('form[data-sign-form]').noValidate = true;",
        vec![],
    )
    .await?;
    b.find("form[data-sign-form] button[type=submit]")
        .await?
        .click()
        .await?;
    b.wait_js(
        "the consent error",
        "var p = document.getElementById('err-consent'); return p && !p.hidden && p.textContent;",
    )
    .await?;
    ensure!(
        b.find("#err-email").await?.attr("hidden").await?.is_some(),
        "the fixed e-mail's error is gone"
    );
    ensure!(b.value("#f-email").await? == format!("dominique.{lang}@example.org"));
    ensure!(b.value("#f-comment").await? == "Un commentaire à garder.");
    b.js(
        "document.getElementById('f-consent').scrollIntoView({block: 'center'});",
        vec![],
    )
    .await?;
    b.shot("consent-error").await?;

    // Fixed: signs.
    tick(&b, "#f-consent").await?;
    if b.value("[name='h-captcha-response']").await?.is_empty() {
        solve_captcha(&b).await?;
    }
    b.find("form[data-sign-form] button[type=submit]")
        .await?
        .click()
        .await?;
    b.wait_path(&format!("{}/{PETITION}/check-email/", prefix(lang)))
        .await?;
    b.wait_text("h1", t.check_email).await?;
    b.shot("check-email").await?;
    ensure!(site
        .wait_mail(&format!("dominique.{lang}@example.org"))
        .await
        .is_ok());
    ensure!(
        site.mails().iter().all(|m| m.to != "dominique@localhost"),
        "no mail for the refused address"
    );
    b.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn form_errors_fr() {
    form_errors("fr").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn form_errors_en() {
    form_errors("en").await.unwrap();
}

/// Tab, Space and Enter only: from the top of the page to the thanks page.
async fn keyboard_only(lang: &str) -> anyhow::Result<()> {
    let _slot = SESSIONS.acquire().await?;
    let t = texts(lang);
    let site = Site::start().await?;
    let mut b = Browser::start(&format!("keyboard_only_{lang}")).await?;
    let page = format!("{}/{LIBRARY}/", prefix(lang));
    b.goto(&site.url(&page)).await?;
    see_count(&b, t.no_signature).await?;

    // The first Tab stop is the skip link, and following it lands in the main content.
    b.press(Key::Tab).await?;
    ensure!(
        b.focused().await?.contains("skip-link"),
        "first Tab stop should be the skip link, not {}",
        b.focused().await?
    );
    b.shot("skip-link").await?;
    b.press(Key::Enter).await?;
    b.wait_js(
        "the focus in <main>",
        "return document.activeElement && document.activeElement.id === 'main';",
    )
    .await?;

    let email = format!("sacha.{lang}@example.org");
    b.tab_to("#f-name").await?;
    b.type_keys("Sacha Keyboard").await?;
    b.tab_to("#f-email").await?;
    b.type_keys(&email).await?;
    b.tab_to("#f-postcode").await?;
    b.type_keys("69007").await?;
    b.tab_to("#f-usager").await?;
    b.press(Key::Space).await?;
    b.tab_to("#f-consent").await?;
    b.press(Key::Space).await?;
    b.shot("consent-focused").await?;
    b.tab_to("button.dev-captcha").await?;
    b.press(Key::Space).await?;
    captcha_solved(&b).await?;
    b.shot("captcha-focused").await?;
    human_fill_time(&b).await?;
    b.tab_to("form[data-sign-form] [type=submit]").await?;
    b.shot("submit-focused").await?;
    ensure!(b.find("#f-usager").await?.is_selected().await?);
    ensure!(b.find("#f-consent").await?.is_selected().await?);
    b.press(Key::Enter).await?;
    b.wait_path(&format!("{}/{LIBRARY}/check-email/", prefix(lang)))
        .await?;
    b.wait_text("h1", t.check_email).await?;
    b.shot("check-email").await?;

    let mail = site.wait_mail(&email).await?;
    let confirm = link(&mail, "confirm").context("a confirm link")?;
    b.goto(&confirm).await?;
    b.wait_js(
        "the confirm button to be enabled",
        "var x = document.querySelector('[data-token-button]'); return x && !x.disabled;",
    )
    .await?;
    b.tab_to("[data-token-button]").await?;
    b.shot("confirm-focused").await?;
    b.press(Key::Enter).await?;
    b.wait_path(&format!("{}/{LIBRARY}/thanks/", prefix(lang)))
        .await?;
    b.wait_text("h1", t.thanks).await?;
    see_count(&b, t.one_signature).await?;
    b.shot("thanks").await?;
    ensure!(site.count(LIBRARY).await? == 1);
    b.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyboard_only_fr() {
    keyboard_only("fr").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyboard_only_en() {
    keyboard_only("en").await.unwrap();
}

/// The embed widget, framed by a page of another origin, signs in place; its count follows.
async fn embed_signs(lang: &str) -> anyhow::Result<()> {
    let _slot = SESSIONS.acquire().await?;
    let t = texts(lang);
    let site = Site::start().await?;
    let mut b = Browser::start(&format!("embed_signs_{lang}")).await?;
    let embed = site.url(&format!("{}/{PETITION}/embed/", prefix(lang)));
    // Another origin than the site's: `localhost` instead of `127.0.0.1`.
    let host = site.host_page(&embed)?;
    b.goto(&host).await?;
    b.wait_visible("iframe").await?;
    b.client.enter_frame(0).await?;
    see_count(&b, t.no_signature).await?;
    b.client.enter_parent_frame().await?;
    b.shot("host-page").await?;

    b.client.enter_frame(0).await?;
    let email = format!("lou.{lang}@example.org");
    fill(&b, "#f-name", "Lou Embed").await?;
    fill(&b, "#f-email", &email).await?;
    fill(&b, "#f-postcode", "13001").await?;
    tick(&b, "#f-consent").await?;
    solve_captcha(&b).await?;
    human_fill_time(&b).await?;
    b.find("form[data-sign-form] button[type=submit]")
        .await?
        .click()
        .await?;
    b.wait_visible("[data-sign-done]").await?;
    b.wait_text("[data-sign-done] h2", t.check_email).await?;
    ensure!(
        !b.find("form[data-sign-form]").await?.is_displayed().await?,
        "the form gives way to the message"
    );
    let frame_url = b.js("return location.href;", vec![]).await?;
    ensure!(
        frame_url.as_str() == Some(embed.as_str()),
        "the frame stays on the widget, not {frame_url}"
    );
    b.client.enter_parent_frame().await?;
    b.shot("embed-check-email").await?;

    confirm_from_mail(&site, &mut b, lang, PETITION, &email, 1).await?;
    b.shot("thanks").await?;
    b.goto(&host).await?;
    b.wait_visible("iframe").await?;
    b.client.enter_frame(0).await?;
    see_count(&b, t.one_signature).await?;
    b.client.enter_parent_frame().await?;
    b.shot("host-page-after").await?;
    b.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embed_signs_fr() {
    embed_signs("fr").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embed_signs_en() {
    embed_signs("en").await.unwrap();
}

/// axe-core on every page type, in both languages: no serious or critical violation.
async fn accessibility(lang: &str) -> anyhow::Result<()> {
    let _slot = SESSIONS.acquire().await?;
    let site = Site::start().await?;
    let mut b = Browser::start(&format!("accessibility_{lang}")).await?;
    let p = prefix(lang);
    let pages = [
        ("index", format!("{p}/"), true),
        ("petition", format!("{p}/{PETITION}/"), true),
        ("check-email", format!("{p}/{PETITION}/check-email/"), false),
        (
            "confirm",
            format!("{p}/{PETITION}/confirm/#t=not-a-real-token"),
            false,
        ),
        ("thanks", format!("{p}/{PETITION}/thanks/"), true),
        (
            "erase",
            format!("{p}/{PETITION}/erase/#t=not-a-real-token"),
            false,
        ),
        ("embed", format!("{p}/{PETITION}/embed/"), true),
        ("privacy", format!("{p}/privacy/"), false),
        (
            "unsubscribe",
            format!("{p}/unsubscribe/#t=not-a-real-token"),
            false,
        ),
        ("404", format!("{p}/404.html"), false),
    ];
    let mut failures = Vec::new();
    for (name, path, has_count) in pages {
        b.goto(&site.url(&path)).await?;
        b.wait_js(
            "the page to load",
            "return document.readyState === 'complete';",
        )
        .await?;
        if has_count {
            b.wait_visible("[data-count-line]").await?;
        }
        b.shot(name).await?;
        let bad = b.axe(&format!("{lang} {name}")).await?;
        for v in bad {
            failures.push(format!(
                "{name} ({path}): {} {} — {}",
                v["impact"], v["id"], v["help"]
            ));
        }
    }
    // An unknown address gets the 404 page in the language of its path, with a 404 status.
    let missing = site.url(&format!("{p}/no-such-page/"));
    let status = reqwest::get(&missing).await?.status();
    ensure!(status == 404, "{missing}: status {status}");
    b.goto(&missing).await?;
    let page_lang = b
        .js("return document.documentElement.lang;", vec![])
        .await?;
    ensure!(
        page_lang.as_str() == Some(lang),
        "{missing} shows the 404 in {page_lang}, not {lang}"
    );
    b.shot("404-unknown-path").await?;

    // The petition page with server-side errors shown.
    b.goto(&site.url(&format!("{p}/{PETITION}/"))).await?;
    fill(&b, "#f-name", "A").await?;
    fill(&b, "#f-email", "a@localhost").await?;
    fill(&b, "#f-postcode", "69001").await?;
    tick(&b, "#f-consent").await?;
    solve_captcha(&b).await?;
    b.find("form[data-sign-form] button[type=submit]")
        .await?
        .click()
        .await?;
    b.wait_visible("#err-email").await?;
    b.shot("petition-errors").await?;
    for v in b.axe(&format!("{lang} petition with errors")).await? {
        failures.push(format!(
            "petition with errors: {} {} — {}",
            v["impact"], v["id"], v["help"]
        ));
    }
    // The checker itself works: an image without a text alternative is caught.
    b.js(
        "var i = document.createElement('img'); i.src = '/nothing.png'; document.querySelector('main').appendChild(i);",
        vec![],
    )
    .await?;
    let canary = b.axe(&format!("{lang} canary")).await?;
    ensure!(
        canary.iter().any(|v| v["id"] == "image-alt"),
        "axe should report the planted image without alt: {canary:?}"
    );
    b.close().await;
    ensure!(
        failures.is_empty(),
        "serious or critical accessibility violations ({lang}):\n{}",
        failures.join("\n")
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accessibility_fr() {
    accessibility("fr").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accessibility_en() {
    accessibility("en").await.unwrap();
}

/// The dark colour scheme meets the same bar (contrast above all) on the pages that matter most.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accessibility_dark() {
    let run = async {
        let _slot = SESSIONS.acquire().await?;
        let site = Site::start().await?;
        let mut b = Browser::start_with("accessibility_dark", true).await?;
        let mut failures = Vec::new();
        for (name, path) in [
            ("petition-fr", format!("/{PETITION}/")),
            ("thanks-en", format!("/en/{PETITION}/thanks/")),
            (
                "confirm-fr",
                format!("/{PETITION}/confirm/#t=not-a-real-token"),
            ),
            (
                "erase-en",
                format!("/en/{PETITION}/erase/#t=not-a-real-token"),
            ),
            ("embed-fr", format!("/{PETITION}/embed/")),
            ("index-en", "/en/".to_string()),
        ] {
            b.goto(&site.url(&path)).await?;
            b.wait_js(
                "the page to load",
                "return document.readyState === 'complete';",
            )
            .await?;
            let dark = b
                .js(
                    "return matchMedia('(prefers-color-scheme: dark)').matches;",
                    vec![],
                )
                .await?;
            ensure!(
                dark == json!(true),
                "the browser does not prefer dark on {path}"
            );
            b.shot(name).await?;
            for v in b.axe(&format!("dark {name}")).await? {
                failures.push(format!(
                    "{name}: {} {} — {}",
                    v["impact"], v["id"], v["help"]
                ));
            }
        }
        // Errors in dark mode.
        b.goto(&site.url(&format!("/en/{PETITION}/"))).await?;
        fill(&b, "#f-name", "A").await?;
        fill(&b, "#f-email", "a@localhost").await?;
        fill(&b, "#f-postcode", "69001").await?;
        tick(&b, "#f-consent").await?;
        solve_captcha(&b).await?;
        b.find("form[data-sign-form] button[type=submit]")
            .await?
            .click()
            .await?;
        b.wait_visible("#err-email").await?;
        b.shot("petition-errors-en").await?;
        for v in b.axe("dark petition with errors").await? {
            failures.push(format!(
                "errors: {} {} — {}",
                v["impact"], v["id"], v["help"]
            ));
        }
        b.close().await;
        ensure!(
            failures.is_empty(),
            "serious or critical violations in the dark scheme:\n{}",
            failures.join("\n")
        );
        anyhow::Ok(())
    };
    run.await.unwrap();
}

/// On a phone the count and the way to the form are in the first screen; one tap brings the
/// form (focus on the panel, its first field in view); axe finds nothing serious there. On a
/// wide screen the panel sits beside the text and the shortcut is not shown.
async fn phone_first(lang: &str) -> anyhow::Result<()> {
    let _slot = SESSIONS.acquire().await?;
    let t = texts(lang);
    let site = Site::start().await?;
    let mut b = Browser::start(&format!("phone_first_{lang}")).await?;
    b.set_window(390, 844).await?;
    let page = site.url(&format!("{}/{PETITION}/", prefix(lang)));
    b.goto(&page).await?;
    b.wait_visible("[data-count-mini]").await?;
    let mini = b.wait_text("[data-count-mini]", t.no_signature).await?;
    ensure!(mini.trim() == t.no_signature, "{mini:?}");
    b.shot("phone-top").await?;
    let first_screen = b
        .js(
            "var a = document.querySelector('.quick-sign a'); var r = a.getBoundingClientRect();
             return [r.top, r.bottom, r.width, window.innerHeight];",
            vec![],
        )
        .await?;
    let at: Vec<f64> = serde_json::from_value(first_screen)?;
    ensure!(
        at[0] >= 0.0 && at[1] <= at[3] && at[2] > 0.0,
        "the sign action is not in the first screen (top, bottom, width, height): {at:?}"
    );
    let bad = b.axe(&format!("{lang} phone petition")).await?;
    ensure!(bad.is_empty(), "axe on the phone page: {bad:?}");

    b.find(".quick-sign a").await?.click().await?;
    b.wait_js(
        "the form's first field in view, the panel focused",
        "var r = document.querySelector('#f-name').getBoundingClientRect();
         return r.top >= 0 && r.bottom <= window.innerHeight
           && document.activeElement === document.querySelector('#sign');",
    )
    .await?;
    b.shot("phone-form").await?;
    // Tab from the panel reaches the first field of the form, not the top of the page.
    b.client
        .active_element()
        .await?
        .send_keys(&Key::Tab.to_string())
        .await?;
    let focused = b
        .js(
            "var e = document.activeElement; return e && document.querySelector('#sign').contains(e);",
            vec![],
        )
        .await?;
    ensure!(focused == json!(true), "Tab left the sign panel");

    b.set_window(1280, 900).await?;
    b.goto(&page).await?;
    b.wait_visible("[data-count-line]").await?;
    ensure!(
        !b.find(".quick-sign").await?.is_displayed().await?,
        "the shortcut is for narrow screens"
    );
    b.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_first_fr() {
    phone_first("fr").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_first_en() {
    phone_first("en").await.unwrap();
}

/// Geography: after confirmed signatures, the petition page charts them by country and
/// département — a table of the figures with bars, in the page's language — leaves out the
/// group under the threshold (10) but says how many it holds, and stays clean for axe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn geography_chart_shows_the_confirmed_figures() {
    geography_chart().await.unwrap();
}

async fn geography_chart() -> anyhow::Result<()> {
    let _slot = SESSIONS.acquire().await?;
    let site = Site::start().await?;
    let api = cahier_tests::flow::Api::new(&site.base).slug(PETITION);
    // Ten in the Rhône, one in Paris; each from its own network (the per-address budgets), all
    // signed and confirmed before the page first asks (the figures are cached a minute).
    for i in 0..11u8 {
        let client = reqwest::Client::builder()
            .local_address(std::net::IpAddr::from([127, 0, 10 + i, 1]))
            .build()?;
        let email = format!("geo{i}@example.org");
        let body = json!({
            "name": format!("Signer {i}"), "email": email, "consent": true,
            "postcode": if i < 10 { "69003" } else { "75011" },
            "h-captcha-response": api.captcha().await, "lang": "fr", "fill_ms": 6000,
        });
        let res = client
            .post(site.url(&format!("/api/petitions/{PETITION}/sign")))
            .header("origin", &site.base)
            .json(&body)
            .send()
            .await?;
        ensure!(res.status() == 202, "{}", res.status());
        let mail = site.wait_mail(&email).await?;
        let token = cahier_tests::outbox::token(&mail.text, "confirm").context("a token")?;
        ensure!(api.confirm(&token).await.status() == 200);
    }
    ensure!(site.count(PETITION).await? == 11);
    let mut b = Browser::start("geography").await?;
    for (lang, title, france, hidden) in [
        (
            "fr",
            "D'où viennent les signatures",
            "France",
            "trop petits : 1.",
        ),
        (
            "en",
            "Where the signatures come from",
            "France",
            "too small: 1.",
        ),
    ] {
        b.goto(&site.url(&format!("{}/{PETITION}/", prefix(lang))))
            .await?;
        b.wait_visible("[data-geography]").await?;
        b.wait_text("[data-geography] h2", title).await?;
        let rows = |css: &str| {
            format!(
                "return Array.prototype.map.call(document.querySelectorAll('{css} tbody tr'), \
                 function (r) {{ return r.querySelector('th').textContent + '=' + r.querySelector('td').textContent; }});"
            )
        };
        let countries = b.js(&rows("[data-geo-countries]"), vec![]).await?;
        ensure!(
            countries == json!([format!("{france}=11")]),
            "{lang} countries: {countries}"
        );
        let departements = b.js(&rows("[data-geo-departements]"), vec![]).await?;
        ensure!(
            departements == json!(["Rhône (69)=10"]),
            "{lang}: Paris (1) is under the threshold: {departements}"
        );
        let note = b.wait_text("[data-geo-hidden]", hidden).await?;
        ensure!(note.ends_with(hidden), "{lang} hidden line {note:?}");
        let bars = b
            .js(
                "return Array.prototype.map.call(document.querySelectorAll('[data-geography] .bar'), \
                 function (e) { return e.getBoundingClientRect().width > 0; });",
                vec![],
            )
            .await?;
        ensure!(bars == json!([true, true]), "two drawn bars: {bars}");
        b.js(
            "document.querySelector('[data-geography]').scrollIntoView();",
            vec![],
        )
        .await?;
        b.shot(&format!("geography-{lang}")).await?;
        let bad = b.axe(&format!("{lang} geography")).await?;
        ensure!(bad.is_empty(), "axe on the chart ({lang}): {bad:?}");
    }
    b.close().await;
    Ok(())
}
