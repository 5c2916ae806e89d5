//! The development server library behind `cahier serve`: static site + API on one origin, dev
//! captcha through the hcaptcha crate, outbox mails, live reload, manifest reload.

use cahier_function::dev::{DevServer, DevServerOptions};
use cahier_tests::fixture::{manifest, SLUG};
use cahier_tests::flow::Api;
use cahier_tests::outbox::{read_dir, token};
use std::time::Duration;

#[tokio::test]
async fn serves_site_and_api_on_one_origin_with_live_reload() {
    let dir = tempfile::tempdir().unwrap();
    let public = dir.path().join("public");
    std::fs::create_dir_all(public.join(SLUG)).unwrap();
    std::fs::write(
        public.join("index.html"),
        "<html><body><h1>Accueil</h1></body></html>",
    )
    .unwrap();
    std::fs::write(
        public.join("404.html"),
        "<html><body>Introuvable</body></html>",
    )
    .unwrap();
    std::fs::write(
        public.join(SLUG).join("index.html"),
        "<html><body>Pétition</body></html>",
    )
    .unwrap();
    std::fs::write(public.join("style.css"), "body{}").unwrap();
    let state_dir = dir.path().join(".cahier");
    // The recipient is replaced by the dev secrets' one below; any valid key works here.
    let (s, _) = cahier_tests::fixture::secrets();
    let m = manifest("http://127.0.0.1:8080", s.age_recipient.as_deref().unwrap());
    let mut opts = DevServerOptions::new(public.clone(), state_dir.clone(), m.clone());
    opts.listen = "127.0.0.1:0".parse().unwrap();
    opts.print_mails = false;
    let server = DevServer::start(opts).await.unwrap();
    let base = server.url();
    let http = reqwest::Client::new();

    assert!(state_dir.join("secrets.toml").exists());
    assert!(!public.join("secrets.toml").exists());

    let res = http.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("Accueil") && html.contains("/__cahier/livereload.js"),
        "{html}"
    );
    let res = http.get(format!("{base}/{SLUG}/")).send().await.unwrap();
    assert!(res.text().await.unwrap().contains("Pétition"));
    let res = http.get(format!("{base}/nope/")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert!(res.text().await.unwrap().contains("Introuvable"));
    let css = http
        .get(format!("{base}/style.css"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(css, "body{}");

    // Sign through the dev captcha (verified by the hcaptcha crate against the local siteverify).
    let api = Api::new(&base);
    let captcha = api.captcha().await;
    let res = http
        .post(format!("{base}/api/petitions/{SLUG}/sign"))
        .header("origin", &base)
        .header("accept", "application/json")
        .form(&[
            ("name", "Dev"),
            ("email", "dev@example.org"),
            ("consent", "yes"),
            ("h-captcha-response", &captcha),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let mails = read_dir(&state_dir.join("outbox"));
    assert_eq!(mails.len(), 1);
    let t = token(&mails[0].text, "confirm").unwrap();
    assert_eq!(api.confirm(&t).await.status(), 200);
    assert_eq!(api.count().await, 1);

    // Live reload: an open event stream receives "reload" when the caller fires it.
    let mut events = http
        .get(format!("{base}/__cahier/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(events.headers()["content-type"], "text/event-stream");
    let mut renamed = m.clone();
    renamed.petitions[0].slug = "renomme".into();
    server.reload(Some(renamed)).unwrap();
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !seen.contains("event: reload") {
        let chunk = tokio::time::timeout_at(deadline, events.chunk())
            .await
            .expect("reload event in time");
        seen.push_str(&String::from_utf8_lossy(&chunk.unwrap().unwrap()));
    }
    // The new manifest is live.
    let res = http
        .get(format!("{base}/api/petitions/renomme/count"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = http
        .get(format!("{base}/api/petitions/{SLUG}/count"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    server.stop();
}

/// The development captcha is for `cahier serve` and the tests only: a default build of the
/// standalone server (`cargo build --release -p cahier-function`) and the Lambda package leave
/// it out, so a deployed function cannot be started with it (it then refuses the manifest).
#[test]
fn a_default_build_of_the_function_has_no_development_captcha() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .current_dir(cahier_tests::repo_root())
        .output()
        .expect("cargo metadata");
    assert!(out.status.success());
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let package = |name: &str| {
        meta["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("package {name}"))
            .clone()
    };
    let function = package("cahier-function");
    let default: Vec<&str> = function["features"]["default"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f.as_str())
        .collect();
    assert!(
        !default.contains(&"dev"),
        "cahier-function's default features: {default:?}"
    );
    // `cahier serve` keeps it.
    let cahier = package("cahier");
    let dep = cahier["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "cahier-function")
        .expect("cahier depends on cahier-function");
    assert!(
        dep["features"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "dev"),
        "{dep}"
    );
}
