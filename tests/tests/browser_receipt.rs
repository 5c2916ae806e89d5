//! The receipt and the "check my signature" page in headless Chromium, against `cahier serve`
//! with its transparency log: a signer confirms, gets a receipt on the thanks page, and the
//! check page (static files only, Web Crypto) finds the signature counted in a log it verified.
//! Then the log is tampered with in the served folder, one way at a time, and the page must
//! say so: a changed entry, a changed hash tile, a checkpoint with a bad signature, a removed
//! entry, a count endpoint that disagrees with the log, and a checkpoint this browser saw
//! before that the log no longer extends (a fork).
//!
//! Needs `chromium`, `chromium-driver` and `npm ci` in tests/browser (scripts/test.sh).

use anyhow::{ensure, Context};
use cahier_tests::browser::Browser;
use cahier_tests::flow::Api;
use cahier_tests::site::{link, Site, PETITION};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Opens the check page afresh (the same URL with its fragment would not reload it).
async fn open_check(b: &Browser, url: &str) -> anyhow::Result<()> {
    b.goto("about:blank").await?;
    b.goto(url).await
}

/// The checks the page ran, as `(name, passed)`, once it gave its verdict; and the verdict.
async fn verdict(b: &Browser) -> anyhow::Result<(String, Vec<(String, bool)>)> {
    let v = b
        .wait_js(
            "the check page's verdict",
            "var v = document.querySelector('[data-check-verdict]');
             var state = v && v.getAttribute('data-verdict');
             if (!state || v.textContent === v.closest('[data-check-page]').getAttribute('data-text-working')) return null;
             return [state, Array.prototype.map.call(document.querySelectorAll('[data-check-results] li'),
               function (li) { return [li.getAttribute('data-check'), li.getAttribute('data-ok') === 'yes', li.textContent]; })];",
        )
        .await?;
    let state = v[0].as_str().unwrap_or_default().to_string();
    let checks = v[1]
        .as_array()
        .context("the checks")?
        .iter()
        .map(|c| {
            (
                c[0].as_str().unwrap_or_default().to_string(),
                c[1] == Value::Bool(true),
            )
        })
        .collect();
    Ok((state, checks))
}

fn failed(checks: &[(String, bool)]) -> Vec<&str> {
    checks
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(n, _)| n.as_str())
        .collect()
}

/// The served folder of the petition's log (`cahier serve` keeps one folder per origin).
fn log_folder(site: &Site) -> PathBuf {
    let origin = site.base.trim_start_matches("http://").replace(':', "-");
    site.root
        .join(format!(".cahier/log/{origin}/{PETITION}/log"))
}

/// The size the folder's checkpoint states (for waiting; the page verifies it).
fn log_size(folder: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(folder.join("checkpoint")).ok()?;
    text.lines().nth(1)?.parse().ok()
}

/// Flips one byte of `rel` in the log folder; returns the original to put back.
fn tamper(folder: &Path, rel: &str, at: usize) -> Vec<u8> {
    let path = folder.join(rel);
    let original = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut changed = original.clone();
    let at = at.min(changed.len() - 1);
    changed[at] ^= 0x01;
    std::fs::write(&path, &changed).unwrap();
    original
}

async fn receipt_and_check() -> anyhow::Result<()> {
    let site = Site::start_with(&["--log-interval", "0.2"]).await?;
    let mut b = Browser::start("receipt_and_check").await?;
    b.goto(&site.url(&format!("/{PETITION}/"))).await?;
    let email = "receipt@example.org";
    for (css, value) in [
        ("#f-name", "Camille Reçu"),
        ("#f-email", email),
        ("#f-postcode", "69001"),
        ("#f-city", "Lyon"),
    ] {
        b.find(css).await?.send_keys(value).await?;
    }
    b.find("#f-consent").await?.click().await?;
    b.wait_visible(".h-captcha button.dev-captcha")
        .await?
        .click()
        .await?;
    b.wait_js(
        "the captcha to be solved",
        "var a = document.querySelector(\"[name='h-captcha-response']\"); return !!(a && a.value);",
    )
    .await?;
    b.wait_js("a human fill time", "return performance.now() > 2100;")
        .await?;
    b.find("form[data-sign-form] button[type=submit]")
        .await?
        .click()
        .await?;
    b.wait_path(&format!("/{PETITION}/check-email/")).await?;
    let mail = site.wait_mail(email).await?;
    let confirm = link(&mail, "confirm").context("a confirm link")?;
    b.goto(&confirm).await?;
    b.wait_js(
        "the confirm button",
        "var x = document.querySelector('[data-token-button]'); return x && !x.disabled;",
    )
    .await?;
    b.find("[data-token-button]").await?.click().await?;
    b.wait_path(&format!("/{PETITION}/thanks/")).await?;

    // The receipt: shown as a link to keep, out of the address bar.
    b.wait_visible("[data-receipt]").await?;
    b.shot("thanks-receipt").await?;
    let check = b
        .js(
            "return document.querySelector('[data-receipt-url]').value;",
            vec![],
        )
        .await?
        .as_str()
        .unwrap_or_default()
        .to_string();
    let expected = site.url(&format!("/{PETITION}/check/#r="));
    ensure!(check.starts_with(&expected), "receipt link {check}");
    ensure!(
        check.len() == expected.len() + 43,
        "a 32-byte secret: {check}"
    );
    let url = b.current_url().await?;
    ensure!(
        !url.contains("#r="),
        "the receipt left the address bar: {url}"
    );

    // The page verifies the log and finds the signature counted (the log integrates every
    // 0.2 s: a check that ran before it says "not yet", and the next one finds it).
    let mut tries = 0;
    let checks = loop {
        open_check(&b, &check).await?;
        let (state, checks) = verdict(&b).await?;
        ensure!(failed(&checks).is_empty() || state == "wait", "{checks:?}");
        if state == "ok" {
            break checks;
        }
        tries += 1;
        ensure!(
            tries < 20,
            "the signature never showed in the log: {state} {checks:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    };
    b.shot("check-counted").await?;
    let names: Vec<&str> = checks.iter().map(|(n, _)| n.as_str()).collect();
    for expected in [
        "signature",
        "tree",
        "tiles",
        "consistency",
        "entries",
        "count",
        "proof",
        "receipt",
    ] {
        ensure!(
            names.contains(&expected),
            "no {expected} check in {names:?}"
        );
    }
    ensure!(failed(&checks).is_empty(), "{checks:?}");

    // Tampered with, one way at a time: the page says what broke; put back, all is well.
    let folder = log_folder(&site);
    for (rel, at, broken) in [
        // A byte of the commitment of the first entry (after its 2-byte length).
        ("tile/entries/000.p/1", 12, "tree"),
        ("tile/0/000.p/1", 5, "tiles"),
    ] {
        let original = tamper(&folder, rel, at);
        open_check(&b, &check).await?;
        let (state, checks) = verdict(&b).await?;
        b.shot(&format!("tampered-{broken}")).await?;
        ensure!(
            state == "fail",
            "{rel} changed: verdict {state}, {checks:?}"
        );
        ensure!(
            failed(&checks).contains(&broken),
            "{rel} changed: {checks:?}"
        );
        std::fs::write(folder.join(rel), original)?;
    }
    // The receipt's proof file (found with the commitment alone) changed: its index no longer
    // points at the entry (`index 0` becomes `index 1`, beyond its checkpoint).
    let secret = check.split("#r=").nth(1).context("the receipt's secret")?;
    let secret = cahier_tlog::ReceiptSecret::from_base64url(secret).context("a secret")?;
    let receipt =
        cahier_tlog::layout::receipt_path(&cahier_tlog::Commitment::new(PETITION, &secret));
    let proof = std::fs::read(folder.join(&receipt))?;
    let at = proof
        .windows(8)
        .position(|w| w == b"\nindex 0")
        .context("the proof's index line")?
        + 7;
    let original = tamper(&folder, &receipt, at);
    open_check(&b, &check).await?;
    let (state, checks) = verdict(&b).await?;
    b.shot("tampered-proof").await?;
    ensure!(
        state == "fail" && failed(&checks) == ["proof"],
        "proof changed: {state} {checks:?}"
    );
    std::fs::write(folder.join(&receipt), original)?;
    open_check(&b, &check).await?;
    ensure!(verdict(&b).await?.0 == "ok", "proof put back");
    // The proof can be downloaded from the page.
    let href = b
        .js(
            "var a = document.querySelector('[data-check-proof]'); return a && !a.hidden ? a.href : '';",
            vec![],
        )
        .await?;
    ensure!(
        href.as_str().is_some_and(|h| h.starts_with("blob:")),
        "a download link for the proof: {href}"
    );

    // A checkpoint whose signature no longer verifies: the last line holds the signature.
    let cp = std::fs::read(folder.join("checkpoint"))?;
    let original = tamper(&folder, "checkpoint", cp.len() - 10);
    open_check(&b, &check).await?;
    let (state, checks) = verdict(&b).await?;
    ensure!(state == "fail", "bad signature: {state} {checks:?}");
    ensure!(failed(&checks) == ["log"], "bad signature: {checks:?}");
    std::fs::write(folder.join("checkpoint"), original)?;
    open_check(&b, &check).await?;
    ensure!(verdict(&b).await?.0 == "ok", "put back");

    // A second signer, by the API: the log grows to 2, and the page sees it grew.
    let api = Api::new(&site.base).slug(PETITION);
    let captcha = api.captcha().await;
    let res = api
        .sign_json(&serde_json::json!({
            "name": "Dominique Second", "email": "second@example.org", "consent": true,
            "postcode": "69002", "h-captcha-response": captcha, "lang": "fr", "fill_ms": 6000,
        }))
        .await;
    ensure!(res.status() == 202, "second sign: {}", res.status());
    let mail = site.wait_mail("second@example.org").await?;
    let token = link(&mail, "confirm")
        .and_then(|l| l.split("#t=").nth(1).map(str::to_string))
        .context("a confirm token")?;
    ensure!(api.confirm(&token).await.status() == 200);
    let grown = std::time::Instant::now();
    while log_size(&folder) != Some(2) {
        ensure!(grown.elapsed().as_secs() < 20, "the log never grew to 2");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    open_check(&b, &check).await?;
    let (state, checks) = verdict(&b).await?;
    ensure!(
        state == "ok" && failed(&checks).is_empty(),
        "grown: {state} {checks:?}"
    );

    // An entry removed from its bundle (the second one): the bundle no longer holds what the
    // checkpoint says.
    let bundle = folder.join("tile/entries/000.p/2");
    let original = std::fs::read(&bundle)?;
    let first_len = 2 + usize::from(u16::from_be_bytes([original[0], original[1]]));
    std::fs::write(&bundle, &original[..first_len])?;
    open_check(&b, &check).await?;
    let (state, checks) = verdict(&b).await?;
    b.shot("removed-entry").await?;
    ensure!(
        state == "fail" && !failed(&checks).is_empty(),
        "removed: {state} {checks:?}"
    );
    std::fs::write(&bundle, original)?;

    // The count endpoint disagreeing with the log (its counter changed behind the log's back).
    let db = rusqlite::Connection::open(site.root.join(".cahier/signatures.sqlite3"))?;
    db.execute(
        "UPDATE counters SET count = count + 5 WHERE petition = ?1",
        [PETITION],
    )?;
    let changed = std::time::Instant::now();
    loop {
        open_check(&b, &check).await?;
        let (state, checks) = verdict(&b).await?;
        if state == "fail" {
            ensure!(failed(&checks) == ["count"], "count: {checks:?}");
            break;
        }
        // The function caches its count for a few seconds.
        ensure!(
            changed.elapsed().as_secs() < 20,
            "the page never saw the count differ"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    b.shot("count-disagrees").await?;
    db.execute(
        "UPDATE counters SET count = count - 5 WHERE petition = ?1",
        [PETITION],
    )?;
    let restored = std::time::Instant::now();
    loop {
        open_check(&b, &check).await?;
        if verdict(&b).await?.0 == "ok" {
            break;
        }
        ensure!(
            restored.elapsed().as_secs() < 20,
            "the count never agreed again"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }

    // A fork: this browser remembers a head the log does not extend (the view it was shown
    // before was another tree of the same size).
    b.js(
        "var k = Object.keys(localStorage).filter(function (k) { return k.indexOf('cahier-log:') === 0; })[0];
         var seen = JSON.parse(localStorage.getItem(k));
         seen.root = btoa(String.fromCharCode.apply(null, new Array(32).fill(7)));
         localStorage.setItem(k, JSON.stringify(seen));
         return k;",
        vec![],
    )
    .await?;
    open_check(&b, &check).await?;
    let (state, checks) = verdict(&b).await?;
    b.shot("forked").await?;
    ensure!(state == "fail", "fork: {state} {checks:?}");
    ensure!(failed(&checks) == ["consistency"], "fork: {checks:?}");
    b.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_checks_out_and_a_tampered_log_does_not() {
    receipt_and_check().await.unwrap();
}
