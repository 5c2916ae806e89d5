//! Headless Chromium through the edge harness (CloudFront as the template configures it, origin
//! access control on), the example site built for AWS, the real function under the Lambda
//! runtime emulator, DynamoDB and SES on moto: the theme's own script signs and confirms, in
//! French and in English. Screenshots land in `target/browser-artifacts/<test>/`.
//!
//! hCaptcha's widget is a third party that cannot load offline (the browser resolves no name
//! but loopback's): the test puts a token solved on the instance playing hCaptcha where the
//! widget would put it, the `h-captcha-response` field; everything else is the real thing.

use anyhow::{ensure, Context};
use cahier_tests::browser::Browser;
use cahier_tests::edge::stack::{EdgeStack, PETITION};
use cahier_tests::edge::template::ApiAuth;
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

/// The first `http…/confirm/#t=…` link of a mail.
fn confirm_link(mail: &str) -> Option<String> {
    mail.split(|c: char| c.is_whitespace() || c == '<' || c == '>' || c == '"')
        .find(|w| w.starts_with("http") && w.contains("/confirm/#t="))
        .map(str::to_string)
}

async fn edge_count(stack: &EdgeStack) -> anyhow::Result<u64> {
    let v: Value = reqwest::get(stack.edge.url(&format!("/api/petitions/{PETITION}/count")))
        .await?
        .json()
        .await?;
    v["count"].as_u64().context("a count")
}

async fn sign_and_confirm(lang: &str) -> anyhow::Result<()> {
    let _slot = SESSIONS.acquire().await?;
    let stack = EdgeStack::start(ApiAuth::AwsIam).await?;
    let mut b = Browser::start(&format!("edge_sign_and_confirm_{lang}")).await?;
    let page = stack.edge.url(&format!("{}/{PETITION}/", prefix(lang)));
    b.goto(&page).await?;
    b.wait_visible("[data-count-line]").await?;
    b.shot("petition").await?;

    let email = format!("dominique.{lang}@example.net");
    fill(&b, "#f-name", "Dominique Lefort").await?;
    fill(&b, "#f-email", &email).await?;
    fill(&b, "#f-postcode", "69002").await?;
    fill(&b, "#f-city", "Lyon").await?;
    let consent = b.find("#f-consent").await?;
    if !consent.is_selected().await? {
        consent.click().await?;
    }
    // Where hCaptcha's widget puts its answer.
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
    b.shot("filled").await?;
    b.find("form[data-sign-form] button[type=submit]")
        .await?
        .click()
        .await?;
    b.wait_path(&format!("{}/{PETITION}/check-email/", prefix(lang)))
        .await
        .with_context(|| format!("function log:\n{}", stack.lambda.log()))?;
    b.shot("check-email").await?;

    // Every POST went through origin access control with the body's hash.
    let posts: Vec<_> = stack
        .edge
        .origin_hits()
        .into_iter()
        .filter(|h| h.method == "POST")
        .collect();
    ensure!(
        posts.len() == 1 && posts[0].invoked && posts[0].status == 202,
        "{posts:?}"
    );

    let mail = stack.wait_mail(&email).await?;
    let link = confirm_link(&mail).context("a confirm link in the mail")?;
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
    // The edge serves the count for up to its s-maxage: wait for it to move.
    let deadline = Instant::now() + Duration::from_secs(30);
    while edge_count(&stack).await? != 1 {
        ensure!(Instant::now() < deadline, "the count never reached 1");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    b.goto(&page).await?;
    b.wait_text("[data-count-line]", "1").await?;
    b.shot("petition-after").await?;
    b.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_and_confirm_through_the_edge_fr() {
    sign_and_confirm("fr").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_and_confirm_through_the_edge_en() {
    sign_and_confirm("en").await.unwrap();
}
