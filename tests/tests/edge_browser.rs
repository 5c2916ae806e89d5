//! Headless Chromium through the edge harness (CloudFront as the template configures it, origin
//! access control on), the example site built for AWS, the real function under the Lambda
//! runtime emulator, DynamoDB and SES on moto: the theme's own script signs, confirms and erases,
//! and the embed widget signs from a third party's page, in French and in English; the count is
//! read through the edge each time. Screenshots land in `target/browser-artifacts/<test>/`.
//!
//! hCaptcha's widget is a third party that cannot load offline (the browser resolves no name
//! but loopback's): the test puts a token solved on the instance playing hCaptcha where the
//! widget would put it, the `h-captcha-response` field; everything else is the real thing.

use anyhow::{ensure, Context};
use cahier_tests::browser::{Browser, HostPage, INSECURE_HOST};
use cahier_tests::edge::stack::{EdgeStack, PETITION};
use cahier_tests::edge::template::ApiAuth;
use cahier_tests::edge::OriginHit;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Browsers and stacks are heavy on 2 cores: one at a time in this binary.
static SESSIONS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

fn prefix(lang: &str) -> &'static str {
    if lang == "fr" {
        ""
    } else {
        "/en"
    }
}

async fn fill(b: &Browser, css: &str, text: &str) -> anyhow::Result<()> {
    let el = b.find(css).await?;
    el.clear().await?;
    el.send_keys(text).await?;
    Ok(())
}

/// The first `http…/<page>/#t=…` link of a mail (`confirm`, `erase`).
fn mail_link(mail: &str, page: &str) -> Option<String> {
    let marker = format!("/{page}/#t=");
    mail.split(|c: char| c.is_whitespace() || c == '<' || c == '>' || c == '"')
        .find(|w| w.starts_with("http") && w.contains(&marker))
        .map(str::to_string)
}

async fn edge_count(stack: &EdgeStack) -> anyhow::Result<u64> {
    let v: Value = reqwest::get(stack.edge.url(&format!("/api/petitions/{PETITION}/count")))
        .await?
        .json()
        .await?;
    v["count"].as_u64().context("a count")
}

/// The edge serves the count for up to its s-maxage: waits (bounded) until it says `n`.
async fn wait_edge_count(stack: &EdgeStack, n: u64) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = edge_count(stack).await?;
        if now == n {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "the count through the edge stayed at {now}, never {n}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The number the page's count line shows, once it is exactly `n`.
async fn see_count(b: &Browser, n: u64) -> anyhow::Result<()> {
    b.wait_visible("[data-count-line]").await?;
    let shown = b
        .wait_text("[data-count-line] strong", &n.to_string())
        .await?;
    ensure!(
        shown.trim() == n.to_string(),
        "the count line shows {shown:?}, not {n}"
    );
    Ok(())
}

/// The POSTs to `path` the edge sent on to the function so far.
fn posts_to(stack: &EdgeStack, path: &str) -> Vec<OriginHit> {
    stack
        .edge
        .origin_hits()
        .into_iter()
        .filter(|h| h.method == "POST" && h.path == path)
        .collect()
}

/// Exactly one POST to `path` went through origin access control (the body's hash was right)
/// and the function answered it with `status`.
fn one_signed_post(stack: &EdgeStack, path: &str, status: u16) -> anyhow::Result<()> {
    let posts = posts_to(stack, path);
    ensure!(
        posts.len() == 1 && posts[0].invoked && posts[0].status == status,
        "POST {path}: {posts:?}\nfunction log:\n{}",
        stack.lambda.log()
    );
    Ok(())
}

/// Fills the sign form of the page (or frame) in view as a person would, with a captcha token
/// solved on the instance playing hCaptcha where its widget would put it, and waits as long as a
/// person takes to read and fill.
async fn fill_sign_form(
    b: &Browser,
    stack: &EdgeStack,
    name: &str,
    email: &str,
) -> anyhow::Result<()> {
    fill(b, "#f-name", name).await?;
    fill(b, "#f-email", email).await?;
    fill(b, "#f-postcode", "69002").await?;
    fill(b, "#f-city", "Lyon").await?;
    let consent = b.find("#f-consent").await?;
    if !consent.is_selected().await? {
        consent.click().await?;
    }
    let token = stack.api().captcha().await;
    b.js(
        "var box = document.querySelector('.h-captcha');
         var t = document.createElement('textarea');
         t.name = 'h-captcha-response'; t.hidden = true; t.value = arguments[0];
         box.appendChild(t); return true;",
        vec![json!(token)],
    )
    .await?;
    b.wait_js(
        "two seconds since the page loaded",
        "return performance.now() > 2100;",
    )
    .await?;
    Ok(())
}

/// Opens the confirm link of the mail to `email`, confirms with a click and lands on the thanks
/// page; returns the mail (it also holds the erase link).
async fn confirm_from_mail(
    b: &mut Browser,
    stack: &EdgeStack,
    lang: &str,
    email: &str,
) -> anyhow::Result<String> {
    let mail = stack.wait_mail(email).await?;
    let link = mail_link(&mail, "confirm").context("a confirm link in the mail")?;
    ensure!(
        link.starts_with(
            &stack
                .edge
                .url(&format!("{}/{PETITION}/confirm/#t=", prefix(lang)))
        ),
        "{link}"
    );
    b.goto(&link).await?;
    b.wait_js(
        "the confirm button to be enabled",
        "var x = document.querySelector('[data-token-button]'); return x && !x.disabled;",
    )
    .await?;
    b.shot("confirm").await?;
    b.find("[data-token-button]").await?.click().await?;
    b.wait_path(&format!("{}/{PETITION}/thanks/", prefix(lang)))
        .await
        .with_context(|| format!("function log:\n{}", stack.lambda.log()))?;
    b.shot("thanks").await?;
    one_signed_post(stack, "/api/confirm", 200)?;
    Ok(mail)
}

/// Signs on the petition page, confirms from the mail, then erases from the mail's other link:
/// every POST passes origin access control, and the count through the edge goes 0 → 1 → 0.
async fn sign_confirm_and_erase(lang: &str) -> anyhow::Result<()> {
    let _slot = SESSIONS.acquire().await?;
    let stack = EdgeStack::start(ApiAuth::AwsIam).await?;
    let mut b = Browser::start(&format!("edge_sign_confirm_erase_{lang}")).await?;
    let page = stack.edge.url(&format!("{}/{PETITION}/", prefix(lang)));
    b.goto(&page).await?;
    see_count(&b, 0).await?;
    b.shot("petition").await?;

    let email = format!("dominique.{lang}@example.net");
    fill_sign_form(&b, &stack, "Dominique Lefort", &email).await?;
    b.shot("filled").await?;
    b.find("form[data-sign-form] button[type=submit]")
        .await?
        .click()
        .await?;
    b.wait_path(&format!("{}/{PETITION}/check-email/", prefix(lang)))
        .await
        .with_context(|| format!("function log:\n{}", stack.lambda.log()))?;
    b.shot("check-email").await?;
    // The POST went through origin access control with the body's hash.
    one_signed_post(&stack, &format!("/api/petitions/{PETITION}/sign"), 202)?;

    let mail = confirm_from_mail(&mut b, &stack, lang, &email).await?;
    wait_edge_count(&stack, 1).await?;
    b.goto(&page).await?;
    see_count(&b, 1).await?;
    b.shot("petition-after").await?;

    // "This was not me / delete my signature": the mail's erase link.
    let erase = mail_link(&mail, "erase").context("an erase link in the mail")?;
    ensure!(
        erase.starts_with(
            &stack
                .edge
                .url(&format!("{}/{PETITION}/erase/#t=", prefix(lang)))
        ),
        "{erase}"
    );
    b.goto(&erase).await?;
    b.wait_js(
        "the erase button to be enabled",
        "var x = document.querySelector('[data-token-button]'); return x && !x.disabled;",
    )
    .await?;
    b.shot("erase").await?;
    // Opening the link erased nothing: only the click posts the token.
    ensure!(posts_to(&stack, "/api/erase").is_empty());
    b.find("[data-token-button]").await?.click().await?;
    let done = b
        .wait_js(
            "the erase to be done",
            "var s = document.querySelector('[data-token-status]');
             return s && s.classList.contains('ok') && s.textContent;",
        )
        .await
        .with_context(|| format!("function log:\n{}", stack.lambda.log()))?;
    let want = if lang == "fr" {
        "C'est fait : vos données ont été supprimées."
    } else {
        "Done: your data has been deleted."
    };
    ensure!(done.as_str() == Some(want), "erase status {done}");
    b.shot("erased").await?;
    one_signed_post(&stack, "/api/erase", 200)?;
    wait_edge_count(&stack, 0).await?;
    b.goto(&page).await?;
    see_count(&b, 0).await?;
    b.shot("petition-erased").await?;
    b.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_confirm_and_erase_through_the_edge_fr() {
    sign_confirm_and_erase("fr").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_confirm_and_erase_through_the_edge_en() {
    sign_confirm_and_erase("en").await.unwrap();
}

/// The embed widget, framed by a plain-http blog (not a secure context, so neither is the frame:
/// no WebCrypto), signs in place through the edge: its POST carries the body's hash all the
/// same and passes origin access control. Confirmed from the mail, the count in the frame
/// follows.
async fn embed_signs(lang: &str) -> anyhow::Result<()> {
    let _slot = SESSIONS.acquire().await?;
    let stack = EdgeStack::start(ApiAuth::AwsIam).await?;
    let mut b = Browser::start(&format!("edge_embed_signs_{lang}")).await?;
    let embed = stack
        .edge
        .url(&format!("{}/{PETITION}/embed/", prefix(lang)));
    let host = HostPage::start(INSECURE_HOST, &embed).await?;
    b.goto(&host.url).await?;
    b.wait_visible("iframe").await?;
    b.client.enter_frame(0).await?;
    see_count(&b, 0).await?;
    let context = b
        .js(
            "return [location.href, window.isSecureContext, !!(window.crypto && crypto.subtle)];",
            vec![],
        )
        .await?;
    ensure!(
        context == json!([embed, false, false]),
        "the widget in a plain-http page: {context}"
    );
    b.client.enter_parent_frame().await?;
    b.shot("host-page").await?;

    b.client.enter_frame(0).await?;
    let email = format!("camille.{lang}@example.net");
    fill_sign_form(&b, &stack, "Camille Embed", &email).await?;
    b.client.enter_parent_frame().await?;
    b.shot("embed-filled").await?;
    b.client.enter_frame(0).await?;
    b.find("form[data-sign-form] button[type=submit]")
        .await?
        .click()
        .await?;
    b.wait_visible("[data-sign-done]").await.with_context(|| {
        format!(
            "POSTs: {:?}\nfunction log:\n{}",
            posts_to(&stack, &format!("/api/petitions/{PETITION}/sign")),
            stack.lambda.log()
        )
    })?;
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
    one_signed_post(&stack, &format!("/api/petitions/{PETITION}/sign"), 202)?;

    confirm_from_mail(&mut b, &stack, lang, &email).await?;
    wait_edge_count(&stack, 1).await?;
    b.goto(&host.url).await?;
    b.wait_visible("iframe").await?;
    b.client.enter_frame(0).await?;
    see_count(&b, 1).await?;
    b.client.enter_parent_frame().await?;
    b.shot("host-page-after").await?;
    b.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embed_signs_through_the_edge_fr() {
    embed_signs("fr").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embed_signs_through_the_edge_en() {
    embed_signs("en").await.unwrap();
}
