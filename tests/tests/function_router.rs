//! Router tests: every route and every error status of DESIGN.md's API table, through
//! `tower::ServiceExt::oneshot` on the real router (SQLite store, outbox mailer, dev captcha).

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::response::Response;
use cahier_function::ratelimit::{Rate, RateLimits};
use cahier_function::Options;
use cahier_tests::fixture::{TestApp, CLOSED, PROTECTED, SITE, SLUG};
use cahier_tests::outbox::{read_dir, token};
use http_body_util::BodyExt;
use serde_json::Value;
use std::net::SocketAddr;
use tower::ServiceExt;

async fn call(app: &TestApp, req: Request<Body>) -> Response {
    let mut req = req;
    req.extensions_mut().insert(axum::extract::ConnectInfo(
        "198.51.100.7:4000".parse::<SocketAddr>().unwrap(),
    ));
    cahier_function::app(app.state.clone())
        .oneshot(req)
        .await
        .unwrap()
}

async fn body(res: Response) -> Vec<u8> {
    res.into_body().collect().await.unwrap().to_bytes().to_vec()
}

fn sign_json(slug: &str, json: &Value) -> Request<Body> {
    Request::post(format!("/api/petitions/{slug}/sign"))
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/json")
        .header(header::ORIGIN, SITE)
        .body(Body::from(json.to_string()))
        .unwrap()
}

fn signer(app: &TestApp, email: &str) -> Value {
    serde_json::json!({
        "name": "Jeanne Test", "email": email, "consent": "yes",
        "h-captcha-response": app.captcha(), "lang": "fr", "postcode": "75001",
        "website": "", "fill_ms": "5000",
    })
}

fn token_post(path: &str, token: &str) -> Request<Body> {
    Request::post(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            serde_json::json!({ "token": token }).to_string(),
        ))
        .unwrap()
}

/// Asserts a problem+json answer with `status`, and returns its JSON.
async fn problem(res: Response, status: StatusCode) -> Value {
    assert_eq!(res.status(), status);
    assert_eq!(
        res.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    let v: Value = serde_json::from_slice(&body(res).await).unwrap();
    assert_eq!(v["status"], status.as_u16());
    assert!(v["title"].is_string() && v["type"].is_string());
    v
}

async fn count(app: &TestApp) -> u64 {
    let res = call(
        app,
        Request::get(format!("/api/petitions/{SLUG}/count"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let v: Value = serde_json::from_slice(&body(res).await).unwrap();
    v["count"].as_u64().unwrap()
}

#[tokio::test]
async fn health() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::new(dir.path(), Options::default());
    let res = call(
        &app,
        Request::get("/api/health").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(body(res).await, br#"{"status":"ok"}"#);
}

#[tokio::test]
async fn sign_mail_confirm_count_erase() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::new(dir.path(), Options::default());
    let res = call(&app, sign_json(SLUG, &signer(&app, "jeanne@example.org"))).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    assert_eq!(body(res).await, br#"{"status":"pending"}"#);
    assert_eq!(count(&app).await, 0, "not counted before confirmation");

    let mails = read_dir(&app.outbox);
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, "jeanne@example.org");
    assert!(
        mails[0].subject.contains("Pour le climat"),
        "{}",
        mails[0].subject
    );
    assert!(mails[0]
        .text
        .contains(&format!("{SITE}/{SLUG}/confirm/#t=")));
    assert!(mails[0].html.contains("/erase/#t="));
    // The outbox holds the message as SMTP and SES send it: complete headers.
    assert_eq!(mails[0].auto_submitted.as_deref(), Some("auto-generated"));
    assert_eq!(
        mails[0].reply_to.as_deref(),
        Some("contact@petitions.example")
    );
    assert!(
        mails[0].from.starts_with("Collectif Test <"),
        "{:?}",
        mails[0]
    );
    assert!(mails[0]
        .message_id
        .as_deref()
        .is_some_and(|id| id.contains('@')));
    let confirm = token(&mails[0].text, "confirm").unwrap();
    let erase = token(&mails[0].text, "erase").unwrap();

    // A GET never confirms.
    let res = call(
        &app,
        Request::get("/api/confirm").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(res.headers()[header::ALLOW], "POST");
    problem(res, StatusCode::METHOD_NOT_ALLOWED).await;
    assert_eq!(count(&app).await, 0);

    // The first confirmation gives the signer a receipt (the secret of its log entry's
    // commitment, once); the second, idempotent, gives none.
    let res = call(&app, token_post("/api/confirm", &confirm)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let first: serde_json::Value = serde_json::from_slice(&body(res).await).unwrap();
    assert_eq!(first["status"], "confirmed");
    let receipt = first["receipt"].as_str().expect("a receipt");
    assert!(
        cahier_tlog::ReceiptSecret::from_base64url(receipt).is_some(),
        "{first}"
    );
    let res = call(&app, token_post("/api/confirm", &confirm)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(body(res).await, br#"{"status":"confirmed"}"#);
    let res = call(
        &app,
        Request::get(format!("/api/petitions/{SLUG}/count"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()[header::CACHE_CONTROL],
        "public, max-age=10, s-maxage=10, stale-while-revalidate=60, stale-if-error=300"
    );
    let v: Value = serde_json::from_slice(&body(res).await).unwrap();
    assert_eq!(v["petition"], SLUG);
    assert_eq!(v["count"], 1);
    assert_eq!(v["goal"], 1000);
    let updated = v["updated_at"].as_str().unwrap();
    assert!(updated.ends_with('Z') && updated.len() == 20, "{updated}");

    // An erase token never confirms.
    problem(
        call(&app, token_post("/api/confirm", &erase)).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    let res = call(&app, token_post("/api/erase", &erase)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(count(&app).await, 0);
    // Confirming an erased signature: gone.
    problem(
        call(&app, token_post("/api/confirm", &confirm)).await,
        StatusCode::GONE,
    )
    .await;
}

/// The confirm page's "this was not me" link keeps the fragment, so it posts the confirm token
/// to `/api/erase`: that token proves the mailbox as well, and erases.
#[tokio::test]
async fn the_not_me_link_of_the_confirm_page_erases_with_the_confirm_token() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::new(dir.path(), Options::default());
    let res = call(&app, sign_json(SLUG, &signer(&app, "notme@example.org"))).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let mails = read_dir(&app.outbox);
    let confirm = token(&mails[0].text, "confirm").unwrap();
    call(&app, token_post("/api/confirm", &confirm)).await;
    assert_eq!(count(&app).await, 1);
    let res = call(&app, token_post("/api/erase", &confirm)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(body(res).await, br#"{"status":"erased"}"#);
    assert_eq!(count(&app).await, 0, "the count is corrected");
    problem(
        call(&app, token_post("/api/confirm", &confirm)).await,
        StatusCode::GONE,
    )
    .await;
}

#[tokio::test]
async fn the_202_is_byte_identical_for_new_duplicate_and_held() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        blocked_domains: vec!["spam.example".into()],
        ..Options::default()
    };
    let app = TestApp::new(dir.path(), options);
    let mut manifest = app.state.manifest();
    let budgets = manifest.site.budgets.as_mut().unwrap();
    budgets.per_domain = vec![cahier_function::budgets::Rate::new(1, 3600)];
    app.state.set_manifest(manifest).unwrap();
    let mut answers = Vec::new();
    for email in [
        "paul@example.org",
        "Paul+again@Example.org",
        &format!("depute@{PROTECTED}"),
        "blocked@spam.example",
        "one@tight.example",
        "two@tight.example",
    ] {
        let res = call(&app, sign_json(SLUG, &signer(&app, email))).await;
        assert_eq!(res.status(), StatusCode::ACCEPTED, "{email}");
        let headers: Vec<_> = res
            .headers()
            .iter()
            .filter(|(k, _)| *k != header::DATE)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        answers.push((headers, body(res).await));
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    let mails = read_dir(&app.outbox);
    // New → confirm mail; duplicate → "already signed" (once a day); protected → distinct mail;
    // blocked → nothing; first of tight.example → mail; second over budget → held, no mail.
    assert_eq!(mails.len(), 4, "{mails:#?}");
    assert_eq!(mails[3].to, "one@tight.example");
    let held = app.state.hasher().email("two@tight.example");
    let rec = app.state.store().get(SLUG, &held).await.unwrap().unwrap();
    assert_eq!(rec.status, cahier_function::store::Status::Held);
    assert!(rec.hold_reason.unwrap().contains("over budget"));
    assert!(
        mails[1].subject.starts_with("Vous avez déjà signé"),
        "{}",
        mails[1].subject
    );
    assert!(
        mails[2]
            .subject
            .starts_with("Quelqu'un a utilisé votre adresse"),
        "{}",
        mails[2].subject
    );
    // The duplicate reminder is sent at most once a day.
    call(&app, sign_json(SLUG, &signer(&app, "PAUL@example.org"))).await;
    assert_eq!(read_dir(&app.outbox).len(), 4);
    // The protected one is held: confirming it does not count.
    let t = token(&mails[2].text, "confirm").unwrap();
    assert_eq!(
        call(&app, token_post("/api/confirm", &t)).await.status(),
        StatusCode::OK
    );
    assert_eq!(count(&app).await, 0);
}

#[tokio::test]
async fn form_post_redirects_to_check_email_in_its_language() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::new(dir.path(), Options::default());
    for (lang, path) in [
        ("fr", format!("/{SLUG}/check-email/")),
        ("en", format!("/en/{SLUG}/check-email/")),
    ] {
        let form = format!(
            "name=Jo&email=jo-{lang}%40example.org&consent=yes&h-captcha-response={}&lang={lang}&website=&fill_ms=4000",
            app.captcha()
        );
        let req = Request::post(format!("/api/petitions/{SLUG}/sign"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ORIGIN, SITE)
            .body(Body::from(form))
            .unwrap();
        let res = call(&app, req).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(res.headers()[header::LOCATION], format!("{SITE}{path}"));
    }
    let mails = read_dir(&app.outbox);
    assert!(mails
        .iter()
        .any(|m| m.subject.starts_with("Confirm your signature")));
    assert!(mails
        .iter()
        .any(|m| m.text.contains(&format!("{SITE}/en/{SLUG}/confirm/#t="))));
}

#[tokio::test]
async fn every_error_status_is_problem_json() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::new(dir.path(), Options::default());

    // 400 with one entry per field.
    let bad = serde_json::json!({"name": "", "email": "not-an-address", "bogus": "x", "h-captcha-response": "t"});
    let v = problem(
        call(&app, sign_json(SLUG, &bad)).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    let fields: Vec<&str> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    for f in ["bogus", "name", "consent"] {
        assert!(fields.contains(&f), "{f} not in {fields:?}");
    }
    assert!(v["errors"][0]["detail"].is_string());
    let v = problem(
        call(&app, sign_json(SLUG, &signer(&app, "not-an-address"))).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(v["errors"][0]["field"], "email");

    // 403: captcha replayed, captcha made up, foreign Origin.
    let mut s = signer(&app, "a@example.org");
    let used = s["h-captcha-response"].clone();
    assert_eq!(
        call(&app, sign_json(SLUG, &s)).await.status(),
        StatusCode::ACCEPTED
    );
    s["email"] = "b@example.org".into();
    s["h-captcha-response"] = used;
    problem(call(&app, sign_json(SLUG, &s)).await, StatusCode::FORBIDDEN).await;
    s["h-captcha-response"] = "dev-made-up".into();
    problem(call(&app, sign_json(SLUG, &s)).await, StatusCode::FORBIDDEN).await;
    let mut req = sign_json(SLUG, &signer(&app, "c@example.org"));
    req.headers_mut()
        .insert(header::ORIGIN, "https://evil.example".parse().unwrap());
    problem(call(&app, req).await, StatusCode::FORBIDDEN).await;

    // 404: unknown petition (sign and count), unknown route.
    problem(
        call(&app, sign_json("nope", &signer(&app, "d@example.org"))).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let req = Request::get("/api/petitions/nope/count")
        .body(Body::empty())
        .unwrap();
    problem(call(&app, req).await, StatusCode::NOT_FOUND).await;
    problem(
        call(
            &app,
            Request::get("/api/nothing").body(Body::empty()).unwrap(),
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;

    // 405 on other methods.
    let req = Request::get(format!("/api/petitions/{SLUG}/sign"))
        .body(Body::empty())
        .unwrap();
    problem(call(&app, req).await, StatusCode::METHOD_NOT_ALLOWED).await;

    // 410: closed petition; expired token.
    problem(
        call(&app, sign_json(CLOSED, &signer(&app, "e@example.org"))).await,
        StatusCode::GONE,
    )
    .await;
    let expired = app
        .state
        .token_key()
        .issue(&cahier_function::token::TokenClaims {
            kind: cahier_function::token::TokenKind::Confirm,
            petition: SLUG.into(),
            email_hash: "00".repeat(32),
            expires_at: 1,
        });
    problem(
        call(&app, token_post("/api/confirm", &expired)).await,
        StatusCode::GONE,
    )
    .await;
    // 400: forged token.
    let v = problem(
        call(&app, token_post("/api/confirm", "AAAA")).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(v["errors"][0]["field"], "token");

    // 413 over 8 KiB (declared or streamed).
    let mut big = signer(&app, "f@example.org");
    big["comment"] = "x".repeat(9000).into();
    problem(
        call(&app, sign_json(SLUG, &big)).await,
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;

    // 415 other content types (sign and confirm).
    let req = Request::post(format!("/api/petitions/{SLUG}/sign"))
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from("hello"))
        .unwrap();
    problem(call(&app, req).await, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    let req = Request::post("/api/confirm")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("token=x"))
        .unwrap();
    problem(call(&app, req).await, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
}

#[tokio::test]
async fn too_many_requests_has_retry_after_and_precedes_the_captcha() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        rate_limits: RateLimits {
            per_ip: Rate {
                burst: 2.0,
                per_minute: 2.0,
            },
            per_prefix: Rate {
                burst: 100.0,
                per_minute: 100.0,
            },
            max_buckets: 1000,
        },
        ..Options::default()
    };
    let app = TestApp::new(dir.path(), options);
    for i in 0..2 {
        let res = call(
            &app,
            sign_json(SLUG, &signer(&app, &format!("r{i}@example.org"))),
        )
        .await;
        assert_eq!(res.status(), StatusCode::ACCEPTED);
    }
    let s = signer(&app, "r9@example.org");
    let captcha = s["h-captcha-response"].as_str().unwrap().to_string();
    let res = call(&app, sign_json(SLUG, &s)).await;
    let retry: u64 = res.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
    problem(res, StatusCode::TOO_MANY_REQUESTS).await;
    // The captcha was not spent: still redeemable.
    let secret = app.tokens.secret().to_string();
    assert!(app.tokens.redeem(&secret, &captcha, None).is_ok());
}

#[tokio::test]
async fn cors_preflight_for_configured_origins_only() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::new(dir.path(), Options::default());
    let preflight = |origin: &str| {
        Request::builder()
            .method("OPTIONS")
            .uri(format!("/api/petitions/{SLUG}/sign"))
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "content-type")
            .body(Body::empty())
            .unwrap()
    };
    let res = call(&app, preflight("https://embed.example")).await;
    assert!(res.status().is_success());
    assert_eq!(
        res.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://embed.example"
    );
    let res = call(&app, preflight("https://evil.example")).await;
    assert!(res
        .headers()
        .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        .is_none());
}

#[tokio::test]
async fn dev_captcha_routes() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::new(dir.path(), Options::default());
    let res = call(
        &app,
        Request::get("/api/__dev/captcha.js")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    assert!(String::from_utf8(body(res).await)
        .unwrap()
        .contains("h-captcha-response"));
    let req = Request::post("/api/__dev/captcha")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ORIGIN, SITE)
        .body(Body::from(
            r#"{"sitekey":"10000000-ffff-ffff-ffff-000000000001"}"#,
        ))
        .unwrap();
    let v: Value = serde_json::from_slice(&body(call(&app, req).await).await).unwrap();
    let tok = v["token"].as_str().unwrap().to_string();
    let verify = |secret: &str, tok: &str| {
        Request::post("/api/__dev/siteverify")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!("secret={secret}&response={tok}")))
            .unwrap()
    };
    let secret = app.tokens.secret().to_string();
    let v: Value =
        serde_json::from_slice(&body(call(&app, verify("wrong", &tok)).await).await).unwrap();
    assert_eq!(v["success"], false);
    let v: Value =
        serde_json::from_slice(&body(call(&app, verify(&secret, &tok)).await).await).unwrap();
    assert_eq!(v["success"], true);
    assert_eq!(v["hostname"], "petitions.example");
    let v: Value =
        serde_json::from_slice(&body(call(&app, verify(&secret, &tok)).await).await).unwrap();
    assert_eq!(v["success"], false, "single use");
    assert_eq!(v["error-codes"][0], "invalid-or-already-seen-response");
}

#[tokio::test]
async fn personal_data_is_sealed_to_the_organizer() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::new(dir.path(), Options::default());
    call(
        &app,
        sign_json(SLUG, &signer(&app, "Secret.Person@example.org")),
    )
    .await;
    let hash = app.state.hasher().email("secret.person@example.org");
    let rec = app
        .state
        .store()
        .get(SLUG, &hash)
        .await
        .unwrap()
        .expect("stored under the canonical hash");
    let data = cahier_function::crypto::unseal(&app.identity, &rec.sealed).unwrap();
    // The one canonical spelling of the mailbox (where mail goes), dots and tags kept.
    assert_eq!(data.email, "secret.person@example.org");
    assert_eq!(
        data.fields.get("postcode").map(String::as_str),
        Some("75001")
    );
    let db = std::fs::read(&app.db).unwrap();
    let wal = std::fs::read(app.db.with_extension("sqlite3-wal")).unwrap_or_default();
    for bytes in [&db, &wal] {
        assert!(!bytes
            .windows(13)
            .any(|w| w.eq_ignore_ascii_case(b"secret.person")));
        assert!(!bytes.windows(11).any(|w| w == b"Jeanne Test"));
    }
    assert!(!rec.ip_hash.contains("198.51"));
}

#[tokio::test]
async fn repeated_json_keys_are_a_field_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::new(dir.path(), Options::default());
    // serde_json keeps the last of two "email" members: one address checked, another stored.
    let body = format!(
        r#"{{"name":"Jeanne Test","email":"jeanne@example.org","consent":"yes","h-captcha-response":"{}","lang":"fr","postcode":"75001","email":"victim@example.org"}}"#,
        app.captcha()
    );
    let req = Request::post(format!("/api/petitions/{SLUG}/sign"))
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ORIGIN, SITE)
        .body(Body::from(body))
        .unwrap();
    let v = problem(call(&app, req).await, StatusCode::BAD_REQUEST).await;
    assert_eq!(v["errors"][0]["field"], "email", "{v}");
    assert_eq!(v["errors"].as_array().unwrap().len(), 1, "{v}");
    assert!(read_dir(&app.outbox).is_empty());
}

/// Open data: every petition of the manifest with its count (the paper part apart), goal,
/// dates and last confirmation, as JSON and as CSV, cacheable by the CDN for a minute.
#[tokio::test]
async fn open_data_lists_every_petition_as_json_and_csv() {
    use cahier_function::store::admin::{AdminStore, OfflineBatch};
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::new(dir.path(), Options::default());
    let res = call(&app, sign_json(SLUG, &signer(&app, "jeanne@example.org"))).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let mails = read_dir(&app.outbox);
    let confirm = token(&mails[0].text, "confirm").unwrap();
    let before = cahier_function::now();
    assert_eq!(
        call(&app, token_post("/api/confirm", &confirm))
            .await
            .status(),
        StatusCode::OK
    );
    {
        let store = cahier_function::store::sqlite::SqliteStore::open(&app.db).unwrap();
        let batch = OfflineBatch {
            petition: SLUG.into(),
            id: "marche".into(),
            signatures: 25,
            date: "2026-11-28".into(),
            note: "never published".into(),
            added_at: before,
            withdrawn_at: None,
        };
        store.add_offline(&batch, before).await.unwrap();
    }

    let res = call(
        &app,
        Request::get(format!("/api/petitions/{SLUG}/count"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let v: Value = serde_json::from_slice(&body(res).await).unwrap();
    assert_eq!(
        (v["count"].as_u64(), v["offline"].as_u64()),
        (Some(26), Some(25))
    );
    let last = v["last_confirmed_at"]
        .as_str()
        .expect("a last confirmation");
    let at = time::OffsetDateTime::parse(last, &time::format_description::well_known::Rfc3339)
        .unwrap()
        .unix_timestamp();
    assert!((before..=cahier_function::now()).contains(&at), "{last}");

    let res = call(
        &app,
        Request::get("/api/petitions.json")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()[header::CACHE_CONTROL],
        "public, max-age=60, s-maxage=60, stale-while-revalidate=300, stale-if-error=3600"
    );
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    let raw = body(res).await;
    assert!(
        !String::from_utf8_lossy(&raw).contains("never published"),
        "an organizer's note stays in the store"
    );
    let v: Value = serde_json::from_slice(&raw).unwrap();
    let rows = v["petitions"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{v}");
    let open = rows.iter().find(|r| r["slug"] == SLUG).unwrap();
    assert_eq!(open["count"], 26);
    assert_eq!(open["offline"], 25);
    assert_eq!(open["goal"], 1000);
    assert_eq!(open["status"], "open");
    assert_eq!(open["last_confirmed_at"], last);
    assert_eq!(open["url"], format!("{SITE}/{SLUG}/"));
    let closed = rows.iter().find(|r| r["slug"] == CLOSED).unwrap();
    assert_eq!(closed["status"], "closed");
    assert_eq!(closed["count"], 0);
    assert!(closed["last_confirmed_at"].is_null());
    assert_eq!(closed["closes_at"], "2001-09-09T01:46:40Z");

    let res = call(
        &app,
        Request::get("/api/petitions.csv")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let csv = String::from_utf8(body(res).await).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[0].starts_with("slug,title,url,languages,count,offline,goal,status"));
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("{SLUG},")) && l.contains(",26,25,1000,open,")),
        "{csv}"
    );
}

/// The public list: a confirmed signer who opted in, with the name they typed; not one who
/// did not opt in, not one still pending; only the canonical page numbers, from 1 to the last
/// published; cacheable like the count.
#[tokio::test]
async fn the_public_list_shows_confirmed_signers_who_opted_in() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::new(dir.path(), Options::default());
    let sign = |email: &str, name: &str, public: bool| {
        let mut body = signer(&app, email);
        body["name"] = name.into();
        if public {
            body["public"] = "yes".into();
        }
        sign_json(SLUG, &body)
    };
    let requests = [
        sign("ana@example.org", "Ana <b>Lopes</b>", true),
        sign("bo@example.org", "Bo Private", false),
        sign("cy@example.org", "Cy Pending", true),
    ];
    for req in requests {
        assert_eq!(call(&app, req).await.status(), StatusCode::ACCEPTED);
    }
    let mails = read_dir(&app.outbox);
    for to in ["ana@example.org", "bo@example.org"] {
        let mail = mails.iter().find(|m| m.to == to).expect("a mail");
        let confirm = token(&mail.text, "confirm").unwrap();
        assert_eq!(
            call(&app, token_post("/api/confirm", &confirm))
                .await
                .status(),
            StatusCode::OK
        );
    }
    let get = |path: String| Request::get(path).body(Body::empty()).unwrap();
    let res = call(&app, get(format!("/api/petitions/{SLUG}/signers/1"))).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()[header::CACHE_CONTROL],
        "public, max-age=60, s-maxage=60, stale-if-error=0"
    );
    let raw = String::from_utf8(body(res).await).unwrap();
    assert!(
        !raw.contains("Bo Private") && !raw.contains("Cy Pending"),
        "{raw}"
    );
    assert!(!raw.contains("@example.org"), "no address: {raw}");
    let v: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(v["signers"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(
        v["signers"][0]["name"], "Ana <b>Lopes</b>",
        "as typed, escaped by the page"
    );
    assert!(v["signers"][0]["city"].is_null());
    let date = v["signers"][0]["date"].as_str().unwrap();
    assert_eq!(date.len(), 10, "a day, no finer: {date}");
    assert!(v["next"].is_null());
    for bad in ["0", "01", "21", "x", "1.json"] {
        let res = call(&app, get(format!("/api/petitions/{SLUG}/signers/{bad}"))).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "page {bad:?}");
    }
    // Page 2 exists (empty) until the last published page.
    let res = call(&app, get(format!("/api/petitions/{SLUG}/signers/2"))).await;
    assert_eq!(res.status(), StatusCode::OK);
    // The erase link takes the name off (the instance's cache aside: a new instance).
    let ana = mails.iter().find(|m| m.to == "ana@example.org").unwrap();
    let erase = token(&ana.text, "erase").unwrap();
    assert_eq!(
        call(&app, token_post("/api/erase", &erase)).await.status(),
        StatusCode::OK
    );
    let store = cahier_function::store::sqlite::SqliteStore::open(&app.db).unwrap();
    assert!(cahier_function::store::Store::listed(&store, SLUG, 0, 10)
        .await
        .unwrap()
        .is_empty());
}

/// Geography: confirmed signatures by country and département, groups under the threshold left
/// out and summed in `hidden`; pending ones not counted, a country not given as a code counts
/// nowhere; no name, address or postcode in the answer; 404 for a petition without geography
/// and for another spelling of the slug; cacheable like the public list.
#[tokio::test]
async fn the_geography_shows_groups_over_the_threshold_only() {
    use cahier_function::manifest::{Field, FieldKind};
    let dir = tempfile::tempdir().unwrap();
    // Twelve signers from the test's one address: lift the per-address screens, not under test.
    let options = Options {
        rate_limits: RateLimits {
            per_ip: Rate {
                burst: 100.0,
                per_minute: 100.0,
            },
            per_prefix: Rate {
                burst: 100.0,
                per_minute: 100.0,
            },
            max_buckets: 1000,
        },
        ..Options::default()
    };
    let app = TestApp::new(dir.path(), options);
    let mut manifest = app.state.manifest();
    let p = manifest
        .petitions
        .iter_mut()
        .find(|p| p.slug == SLUG)
        .unwrap();
    p.fields.push(Field {
        name: "country".into(),
        kind: FieldKind::Country,
        required: false,
        max_len: 64,
    });
    p.geography_threshold = Some(5);
    let budgets = manifest.site.budgets.as_mut().unwrap();
    for rates in [&mut budgets.per_address, &mut budgets.per_network] {
        *rates = vec![cahier_function::budgets::Rate::new(100, 3600)];
    }
    app.state.set_manifest(manifest).unwrap();

    // (postcode, country): 5 in Paris (no country: a French postcode), 4 in Belgium, 1 in La
    // Réunion, 1 "France" (not a code: nowhere), 1 pending in Paris.
    let mut people: Vec<(&str, &str)> = vec![("75011", ""); 5];
    people.extend([("1000", "be"); 4]);
    people.extend([("97400", "FR"), ("75002", "France"), ("75003", "")]);
    for (i, (postcode, country)) in people.iter().enumerate() {
        let mut body = signer(&app, &format!("geo{i}@example.org"));
        body["postcode"] = (*postcode).into();
        if !country.is_empty() {
            body["country"] = (*country).into();
        }
        assert_eq!(
            call(&app, sign_json(SLUG, &body)).await.status(),
            StatusCode::ACCEPTED
        );
    }
    let mails = read_dir(&app.outbox);
    for i in 0..people.len() - 1 {
        let mail = mails
            .iter()
            .find(|m| m.to == format!("geo{i}@example.org"))
            .expect("a mail");
        let confirm = token(&mail.text, "confirm").unwrap();
        assert_eq!(
            call(&app, token_post("/api/confirm", &confirm))
                .await
                .status(),
            StatusCode::OK
        );
    }
    assert_eq!(count(&app).await, 11);
    let get = |path: String| Request::get(path).body(Body::empty()).unwrap();
    let res = call(&app, get(format!("/api/petitions/{SLUG}/regions.json"))).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()[header::CACHE_CONTROL],
        "public, max-age=60, s-maxage=60, stale-while-revalidate=120, stale-if-error=600"
    );
    let raw = String::from_utf8(body(res).await).unwrap();
    for private in ["Jeanne", "@example.org", "75011", "97400", "1000"] {
        assert!(!raw.contains(private), "{private} in {raw}");
    }
    let v: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "petition": SLUG,
            "threshold": 5,
            "countries": { "FR": 6 },
            "departements": { "75": 5 },
            "hidden": 4 + 1,
        }),
        "Belgium (4) and La Réunion (1) under 5"
    );
    for path in [
        format!("/api/petitions/{CLOSED}/regions.json"),
        "/api/petitions/Climat/regions.json".to_string(),
        "/api/petitions/clim%61t/regions.json".to_string(),
        "/api/petitions/nowhere/regions.json".to_string(),
    ] {
        let res = call(&app, get(path.clone())).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
    }
}

/// The unsubscribe page's JSON POST (from the site's origin only), the RFC 8058 one-click POST
/// (any origin: the mail provider's servers), and a GET that changes nothing.
#[tokio::test]
async fn unsubscribe_by_the_page_or_one_click_never_by_a_get() {
    use cahier_function::store::Store;
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::new(dir.path(), Options::default());
    let store = cahier_function::store::sqlite::SqliteStore::open(&app.db).unwrap();
    let now = cahier_function::now();
    let issue =
        |h: &str| cahier_function::unsubscribe::issue(app.state.unsubscribe_key(), SLUG, h, now);
    let (page_hash, click_hash) = (hex::encode([1u8; 32]), hex::encode([2u8; 32]));

    let res = call(
        &app,
        Request::get(format!("/api/unsubscribe?t={}", issue(&page_hash)))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let location = res.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(
        location,
        format!("{SITE}/unsubscribe/#t={}", issue(&page_hash))
    );
    assert!(
        store.suppression(&page_hash).await.unwrap().is_none(),
        "a GET changes nothing"
    );

    // The page's button: JSON, from the site; another site's page is refused.
    let mut foreign = token_post("/api/unsubscribe", &issue(&page_hash));
    foreign
        .headers_mut()
        .insert(header::ORIGIN, "https://evil.example".parse().unwrap());
    problem(call(&app, foreign).await, StatusCode::FORBIDDEN).await;
    let mut ours = token_post("/api/unsubscribe", &issue(&page_hash));
    ours.headers_mut()
        .insert(header::ORIGIN, SITE.parse().unwrap());
    assert_eq!(call(&app, ours).await.status(), StatusCode::OK);
    let s = store
        .suppression(&page_hash)
        .await
        .unwrap()
        .expect("suppressed");
    assert_eq!(
        (s.petition.as_str(), s.reason.as_str()),
        (SLUG, "unsubscribed")
    );

    // One-click, as a provider posts it (multipart here), with no Origin.
    let one_click = |t: String, body: &'static str| {
        Request::post(format!("/api/unsubscribe?t={t}"))
            .header(header::CONTENT_TYPE, "multipart/form-data; boundary=b")
            .body(Body::from(body))
            .unwrap()
    };
    let multipart = "--b\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--b--\r\n";
    let v = problem(
        call(
            &app,
            one_click(issue(&click_hash), "List-Unsubscribe=Later"),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(v.to_string().contains("List-Unsubscribe"), "{v}");
    assert!(store.suppression(&click_hash).await.unwrap().is_none());
    let res = call(&app, one_click(issue(&click_hash), multipart)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[header::CACHE_CONTROL], "no-store");
    assert!(store.suppression(&click_hash).await.unwrap().is_some());
    // Again: the same answer.
    let res = call(
        &app,
        one_click(issue(&click_hash), "List-Unsubscribe=One-Click"),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);

    // Neither a confirm or erase token, nor a forged one.
    let other = hex::encode([3u8; 32]);
    let erase = app
        .state
        .token_key()
        .issue(&cahier_function::token::TokenClaims {
            kind: cahier_function::token::TokenKind::Erase,
            petition: SLUG.into(),
            email_hash: other.clone(),
            expires_at: now + 3600,
        });
    problem(
        call(&app, one_click(erase, "List-Unsubscribe=One-Click")).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    let forged = cahier_function::unsubscribe::issue(
        &cahier_function::unsubscribe::token_key(&[9u8; 32]),
        SLUG,
        &other,
        now,
    );
    problem(
        call(&app, one_click(forged, "List-Unsubscribe=One-Click")).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(store.suppression(&other).await.unwrap().is_none());
}

/// Signs for `email` and confirms with the link its mail holds.
async fn sign_and_confirm(app: &TestApp, email: &str) {
    let body = signer(app, email);
    assert_eq!(
        call(app, sign_json(SLUG, &body)).await.status(),
        StatusCode::ACCEPTED
    );
    let mail = read_dir(&app.outbox)
        .into_iter()
        .find(|m| m.to == email)
        .expect("a confirmation mail");
    let confirm = token(&mail.text, "confirm").unwrap();
    assert_eq!(
        call(app, token_post("/api/confirm", &confirm))
            .await
            .status(),
        StatusCode::OK
    );
}

/// Milestones: with `[milestones]` and a webhook, 25/50/100 % of the goal and the hour's
/// trending alert each reach the webhook and the contact address once — also when a second
/// instance (a fresh memory, the same store) confirms afterwards. No signer's data in them.
#[tokio::test]
async fn milestones_are_announced_once_by_mail_and_webhook() {
    use cahier_function::milestones::MilestonePolicy;
    use std::sync::{Arc, Mutex};
    let received: Arc<Mutex<Vec<Value>>> = Arc::default();
    let hook = axum::Router::new().route(
        "/hook",
        axum::routing::post({
            let received = received.clone();
            move |axum::Json(v): axum::Json<Value>| async move {
                received.lock().unwrap().push(v);
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let webhook = format!("http://{}/hook", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, hook).await });

    let dir = tempfile::tempdir().unwrap();
    let lifted = Rate {
        burst: 100.0,
        per_minute: 100.0,
    };
    let instance = |webhook: String| {
        let options = Options {
            rate_limits: RateLimits {
                per_ip: lifted,
                per_prefix: lifted,
                max_buckets: 1000,
            },
            ..Options::default()
        };
        let app =
            TestApp::with_secrets(dir.path(), options, |s| s.milestone_webhook = Some(webhook));
        let mut manifest = app.state.manifest();
        manifest.site.milestones = Some(MilestonePolicy {
            at: vec![25, 50, 100],
            trending_per_hour: Some(3),
            mail: true,
        });
        let budgets = manifest.site.budgets.as_mut().unwrap();
        for rates in [&mut budgets.per_address, &mut budgets.per_network] {
            *rates = vec![cahier_function::budgets::Rate::new(100, 3600)];
        }
        let p = manifest
            .petitions
            .iter_mut()
            .find(|p| p.slug == SLUG)
            .unwrap();
        p.goal = 4;
        app.state.set_manifest(manifest).unwrap();
        app
    };
    let first = instance(webhook.clone());
    let hour = || cahier_function::now().div_euclid(3600);
    let started_in = hour();
    for i in 0..4 {
        sign_and_confirm(&first, &format!("m{i}@example.org")).await;
    }
    let events = received.lock().unwrap().clone();
    let kinds: Vec<String> = events
        .iter()
        .map(|e| match e["event"].as_str().unwrap() {
            "milestone" => format!("milestone {}", e["percent"]),
            other => other.to_string(),
        })
        .collect();
    let mut expected = vec!["milestone 25", "milestone 50", "milestone 100"];
    if hour() == started_in {
        // Counted from the hour's first confirmation (1): three more make the alert.
        expected.push("trending");
    }
    assert_eq!(kinds, expected, "{events:?}");
    assert_eq!(events[1]["count"], 2);
    assert_eq!(events[1]["goal"], 4);
    assert_eq!(events[2]["url"], format!("{SITE}/{SLUG}/"));
    if let Some(trending) = events.get(3) {
        assert_eq!(trending["signatures"], 3);
    }
    assert!(
        events[0]["text"].as_str().unwrap().contains("25 %"),
        "a line chat webhooks show: {events:?}"
    );
    let raw = serde_json::to_string(&events).unwrap();
    assert!(
        !raw.contains("@example.org") && !raw.contains("Jeanne"),
        "{raw}"
    );
    let alerts = |outbox: &std::path::Path| -> Vec<String> {
        read_dir(outbox)
            .into_iter()
            .filter(|m| m.to == "contact@petitions.example")
            .map(|m| m.subject)
            .collect()
    };
    let mails = alerts(&first.outbox);
    assert_eq!(mails.len(), expected.len(), "{mails:?}");
    assert!(mails.iter().any(|s| s.contains("100 %")), "{mails:?}");

    // A second instance, knowing nothing, on the same store: the marks hold.
    let second = instance(webhook);
    sign_and_confirm(&second, "m4@example.org").await;
    assert_eq!(count(&second).await, 5);
    if hour() == started_in {
        assert_eq!(received.lock().unwrap().len(), expected.len());
        assert_eq!(alerts(&second.outbox).len(), expected.len());
    }
    server.abort();
}
