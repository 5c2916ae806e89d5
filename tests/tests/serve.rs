//! `cahier serve` on a copy of the example site: one origin for the site and the API, the whole
//! signing flow with the dev captcha and the outbox, rebuild and live reload on edits, a broken
//! edit that keeps the last good site, and nothing written outside `.cahier/`.

use cahier_tests::flow::Api;
use cahier_tests::outbox::{read_dir, token};
use cahier_tests::serve::{copy_example_site, CahierServe};
use std::time::{Duration, Instant};

const SLUG: &str = "noel-sans-geant";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// `cahier serve` on a fresh copy of the example site (the temp folder lives as long as the guard
/// is needed).
fn start_example() -> (tempfile::TempDir, CahierServe) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("site");
    std::fs::create_dir(&root).unwrap();
    copy_example_site(&root);
    let s = CahierServe::start(&root);
    (dir, s)
}

async fn count(s: &CahierServe) -> u64 {
    Api::new(&s.base).slug(SLUG).count().await
}

async fn page(http: &reqwest::Client, s: &CahierServe, path: &str) -> String {
    let res = http.get(s.url(path)).send().await.unwrap();
    assert_eq!(res.status(), 200, "GET {path}");
    res.text().await.unwrap()
}

#[tokio::test]
async fn site_and_api_on_one_origin_sign_by_the_form_and_confirm() {
    let (_dir, s) = start_example();
    let root = s.root.clone();
    let http = client();

    // The page posts to the same origin and loads the local dev captcha, not hCaptcha's.
    let html = page(&http, &s, &format!("/{SLUG}/")).await;
    assert!(html.contains(&format!("action=\"{}/api/petitions/{SLUG}/sign\"", s.base)));
    assert!(html.contains("/api/__dev/captcha.js"));
    assert!(!html.contains("js.hcaptcha.com"));
    assert!(page(&http, &s, "/en/").await.contains(SLUG));
    assert_eq!(count(&s).await, 0);

    // What the dev widget does, then the form post a browser without JavaScript sends.
    let api = Api::new(&s.base).slug(SLUG);
    let captcha = api.captcha().await;
    let res = http
        .post(s.url(&format!("/api/petitions/{SLUG}/sign")))
        .header("origin", &s.base)
        .form(&[
            ("name", "Claude Serve"),
            ("email", "claude.serve@example.org"),
            ("postcode", "69001"),
            ("consent", "yes"),
            ("lang", "fr"),
            ("website", ""),
            ("fill_ms", "8000"),
            ("h-captcha-response", &captcha),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "{}", s.log());
    let next = res.headers()["location"].to_str().unwrap().to_string();
    assert!(next.ends_with(&format!("/{SLUG}/check-email/")), "{next}");
    page(&http, &s, &format!("/{SLUG}/check-email/")).await;

    // The mail is in the outbox and its confirm link is printed in the terminal.
    let mails = read_dir(&s.outbox());
    assert_eq!(mails.len(), 1);
    let confirm = token(&mails[0].text, "confirm").expect("confirm link in the mail");
    let log = s.wait_log("#t=", Duration::from_secs(5));
    assert!(
        log.contains(&format!("{}/{SLUG}/confirm/#t={confirm}", s.base)),
        "{log}"
    );
    page(&http, &s, &format!("/{SLUG}/confirm/")).await;
    assert_eq!(api.confirm(&confirm).await.status(), 200);
    assert_eq!(count(&s).await, 1);

    // Nothing outside .cahier/, and no secret of .cahier/ in anything served.
    assert!(
        !root.join("public").exists(),
        "serve must not touch public/"
    );
    let secrets = std::fs::read_to_string(root.join(".cahier/secrets.toml")).unwrap();
    let values: Vec<&str> = secrets
        .lines()
        .filter_map(|l| l.split_once('=').map(|(_, v)| v.trim().trim_matches('"')))
        .filter(|v| v.len() >= 16)
        .collect();
    assert!(!values.is_empty(), "secrets file has values: {secrets}");
    for entry in walk(&root.join(".cahier/public")) {
        let bytes = std::fs::read(&entry).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for v in &values {
            assert!(
                !text.contains(v),
                "a secret leaked into {}",
                entry.display()
            );
        }
    }
}

#[tokio::test]
async fn the_favicon_every_page_links_is_served() {
    let (_dir, s) = start_example();
    let http = client();
    for path in ["/", &format!("/en/{SLUG}/")] {
        let html = page(&http, &s, path).await;
        let link = html
            .split("<link rel=\"icon\" href=\"")
            .nth(1)
            .unwrap_or_else(|| panic!("{path} links no icon"));
        let href = &link[..link.find('"').unwrap()];
        let res = http.get(s.url(href)).send().await.unwrap();
        assert_eq!(res.status(), 200, "GET {href} (linked from {path})");
        let mime = res.headers()["content-type"].to_str().unwrap().to_string();
        assert!(mime.starts_with("image/svg+xml"), "{href}: {mime}");
        assert!(res.text().await.unwrap().starts_with("<svg"));
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test]
async fn edits_rebuild_and_reload_and_a_broken_edit_keeps_the_last_good_site() {
    let (_dir, s) = start_example();
    let root = s.root.clone();
    let http = client();

    // The live-reload stream, as the injected script opens it.
    let mut events = http.get(s.url("/__cahier/events")).send().await.unwrap();
    assert_eq!(events.status(), 200);
    let html = page(&http, &s, &format!("/{SLUG}/")).await;
    assert!(
        html.contains("/__cahier/livereload.js"),
        "reload script injected"
    );

    let source = root.join("content").join(SLUG).join("index.md");
    let original = std::fs::read_to_string(&source).unwrap();
    let edited = original.replacen(
        "Ce que nous demandons",
        "Ce que nous demandons, modifié en direct",
        1,
    );
    assert_ne!(edited, original);
    std::fs::write(&source, &edited).unwrap();

    // A reload event arrives, and the page has changed.
    let reload = tokio::time::timeout(Duration::from_secs(20), async {
        let mut seen = String::new();
        while let Some(chunk) = events.chunk().await.unwrap() {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains("reload") {
                return seen;
            }
        }
        seen
    })
    .await
    .expect("no live-reload event within 20 s");
    assert!(reload.contains("reload"), "{reload}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let html = page(&http, &s, &format!("/{SLUG}/")).await;
        if html.contains("modifié en direct") {
            break;
        }
        assert!(Instant::now() < deadline, "page not rebuilt:\n{}", s.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.wait_log("rebuilt in", Duration::from_secs(5));

    // A broken front matter: the error names file and line, the last good page stays.
    let broken = edited.replacen("goal = 50000", "goal = \"beaucoup\"", 1);
    assert_ne!(broken, edited);
    std::fs::write(&source, &broken).unwrap();
    let log = s.wait_log("rebuild failed", Duration::from_secs(20));
    assert!(
        log.contains(&format!("content/{SLUG}/index.md:6")) && log.contains("goal"),
        "{log}"
    );
    let html = page(&http, &s, &format!("/{SLUG}/")).await;
    assert!(html.contains("modifié en direct"), "last good site served");
    assert_eq!(count(&s).await, 0, "the API still answers");
}

/// Paper batches declared in the front matter are recorded once by `serve` (counted and in the
/// count JSON's paper part), a batch added by an edit is recorded at the rebuild, and a batch
/// whose size is changed afterwards is reported and left as recorded.
#[tokio::test]
async fn paper_batches_of_the_front_matter_are_recorded_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("site");
    std::fs::create_dir(&root).unwrap();
    copy_example_site(&root);
    let source = root.join("content").join(SLUG).join("index.md");
    let original = std::fs::read_to_string(&source).unwrap();
    let batch = |id: &str, n: u32| {
        format!("[[offline]]\nid = \"{id}\"\ndate = \"2026-11-28\"\nsignatures = {n}\nnote = \"stand du marché\"\n\n")
    };
    let with = |batches: &str| original.replacen("[[fields]]", &format!("{batches}[[fields]]"), 1);
    std::fs::write(&source, with(&batch("marche", 140))).unwrap();
    let s = CahierServe::start(&root);
    s.wait_log(
        "paper batch noel-sans-geant/marche recorded",
        Duration::from_secs(5),
    );
    let json = |s: &CahierServe| {
        let url = s.url(&format!("/api/petitions/{SLUG}/count"));
        async move {
            reqwest::get(url)
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let v = json(&s).await;
    assert_eq!(
        (v["count"].as_u64(), v["offline"].as_u64()),
        (Some(140), Some(140))
    );
    assert!(v["last_confirmed_at"].is_null(), "no signer yet: {v}");

    // An edit adds a batch: recorded at the rebuild; the first is not counted twice.
    let two = format!("{}{}", batch("marche", 140), batch("porte-a-porte", 12));
    std::fs::write(&source, with(&two)).unwrap();
    s.wait_log(
        "paper batch noel-sans-geant/porte-a-porte recorded",
        Duration::from_secs(20),
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    while json(&s).await["count"] != 152 {
        assert!(Instant::now() < deadline, "{}", s.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Another size under a recorded id: reported, the count keeps what was recorded.
    let changed = format!("{}{}", batch("marche", 1400), batch("porte-a-porte", 12));
    std::fs::write(&source, with(&changed)).unwrap();
    let log = s.wait_log("offline batch marche", Duration::from_secs(20));
    assert!(log.contains("already recorded with 140"), "{log}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(json(&s).await["count"], 152);
    drop(s);
    drop(dir);
}
