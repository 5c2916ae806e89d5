//! Anti-fraud in the sign path, through the real router (SQLite store, outbox mailer, dev
//! captcha): durable budgets (address, network, domain, allow-lists), protected domains,
//! heuristic flags, the kill switch and the pseudonymous decision events.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::response::Response;
use cahier_function::budgets::{BudgetPolicy, Rate};
use cahier_function::store::{SignatureRecord, Status};
use cahier_function::Options;
use cahier_tests::fixture::{TestApp, PROTECTED, SITE, SLUG};
use cahier_tests::outbox::{read_dir, token};
use http_body_util::BodyExt;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tower::ServiceExt;

async fn call_from(app: &TestApp, peer: &str, req: Request<Body>) -> Response {
    let mut req = req;
    req.extensions_mut().insert(axum::extract::ConnectInfo(
        format!("{peer}:4000").parse::<SocketAddr>().unwrap(),
    ));
    cahier_function::app(app.state.clone())
        .oneshot(req)
        .await
        .unwrap()
}

async fn body(res: Response) -> Vec<u8> {
    res.into_body().collect().await.unwrap().to_bytes().to_vec()
}

fn sign_req(json: &Value) -> Request<Body> {
    Request::post(format!("/api/petitions/{SLUG}/sign"))
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/json")
        .header(header::ORIGIN, SITE)
        .body(Body::from(json.to_string()))
        .unwrap()
}

fn signer(app: &TestApp, name: &str, email: &str, lang: &str) -> Value {
    serde_json::json!({
        "name": name, "email": email, "consent": "yes",
        "h-captcha-response": app.captcha(), "lang": lang,
        "website": "", "fill_ms": "8000",
    })
}

/// Signs and asserts the one 202 answer every outcome gets.
async fn sign(app: &TestApp, peer: &str, json: &Value) {
    let res = call_from(app, peer, sign_req(json)).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED, "{json}");
    assert_eq!(body(res).await, br#"{"status":"pending"}"#);
}

async fn record(app: &TestApp, email: &str) -> SignatureRecord {
    let hash = app.state.hasher().email(email);
    app.state
        .store()
        .get(SLUG, &hash)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no record for {email}"))
}

async fn count(app: &TestApp) -> u64 {
    let res = call_from(
        app,
        "192.0.2.1",
        Request::get(format!("/api/petitions/{SLUG}/count"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let v: Value = serde_json::from_slice(&body(res).await).unwrap();
    v["count"].as_u64().unwrap()
}

fn signature_rows(app: &TestApp) -> i64 {
    rusqlite::Connection::open(&app.db)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM signatures", [], |r| r.get(0))
        .unwrap()
}

/// An app whose manifest carries `budgets` (`None`: the function's defaults).
fn app_with(dir: &std::path::Path, options: Options, budgets: Option<BudgetPolicy>) -> TestApp {
    let app = TestApp::new(dir, options);
    let mut m = app.state.manifest();
    m.site.budgets = budgets;
    app.state.set_manifest(m).unwrap();
    app
}

/// Confirms with the token of the last mail sent to `to`; returns the status code.
async fn confirm_mail_of(app: &TestApp, to: &str) -> StatusCode {
    let mails = read_dir(&app.outbox);
    let mail = mails
        .iter()
        .rev()
        .find(|m| m.to == to)
        .unwrap_or_else(|| panic!("no mail to {to}"));
    let t = token(&mail.text, "confirm").unwrap();
    call_from(
        app,
        "192.0.2.200",
        Request::post("/api/confirm")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(serde_json::json!({ "token": t }).to_string()))
            .unwrap(),
    )
    .await
    .status()
}

#[tokio::test]
async fn over_the_address_budget_a_signature_waits_for_a_confirmation_from_its_network() {
    let dir = tempfile::tempdir().unwrap();
    let app = app_with(dir.path(), Options::default(), None);
    sign(
        &app,
        "203.0.113.5",
        &signer(&app, "Ana Lopez", "ana@example.org", "fr"),
    )
    .await;
    sign(
        &app,
        "203.0.113.5",
        &signer(&app, "Bo Lind", "bo@example.org", "fr"),
    )
    .await;
    // Another address of the same /24 still has its own one-a-minute budget.
    sign(
        &app,
        "203.0.113.6",
        &signer(&app, "Cy Moreau", "cy@example.org", "fr"),
    )
    .await;

    assert_eq!(
        record(&app, "ana@example.org").await.status,
        Status::Pending
    );
    // Over the address budget: not held, not dropped: pending, its mail queued.
    let queued = record(&app, "bo@example.org").await;
    assert_eq!(queued.status, Status::Pending);
    assert_eq!(queued.hold_reason, None);
    assert_eq!(record(&app, "cy@example.org").await.status, Status::Pending);
    let to = |app: &TestApp| -> Vec<String> {
        read_dir(&app.outbox).iter().map(|m| m.to.clone()).collect()
    };
    assert_eq!(to(&app), ["ana@example.org", "cy@example.org"]);
    assert_eq!(count(&app).await, 0);

    // Ana confirms: a mailbox behind that network is proven, Bo's mail goes out.
    assert_eq!(
        confirm_mail_of(&app, "ana@example.org").await,
        StatusCode::OK
    );
    assert_eq!(
        to(&app),
        ["ana@example.org", "cy@example.org", "bo@example.org"]
    );
    assert_eq!(
        confirm_mail_of(&app, "bo@example.org").await,
        StatusCode::OK
    );
    assert_eq!(count(&app).await, 2);
}

#[tokio::test]
async fn the_network_budget_bounds_unconfirmed_mails_in_one_slash_24() {
    let dir = tempfile::tempdir().unwrap();
    let budgets = BudgetPolicy {
        per_network: vec![Rate::new(3, 3600)],
        ..BudgetPolicy::default()
    };
    let app = app_with(dir.path(), Options::default(), Some(budgets));
    for i in 1..=8 {
        let email = format!("user{i}@example.org");
        let peer = format!("198.51.100.{i}");
        sign(
            &app,
            &peer,
            &signer(&app, &format!("Person {i}"), &email, "fr"),
        )
        .await;
    }
    // A neighbour /24 is not affected.
    sign(
        &app,
        "198.51.101.1",
        &signer(&app, "Zoé", "zoe@example.org", "fr"),
    )
    .await;
    for i in 1..=8 {
        let r = record(&app, &format!("user{i}@example.org")).await;
        assert_eq!(r.status, Status::Pending, "user{i}: nobody is held");
    }
    let mailed = |app: &TestApp| read_dir(&app.outbox).len();
    assert_eq!(mailed(&app), 4, "three of the /24 and Zoé");
    // Fake mailboxes never confirm: nothing more goes out. A real one confirms: its unit comes
    // back and queued mails are released.
    assert_eq!(
        confirm_mail_of(&app, "user1@example.org").await,
        StatusCode::OK
    );
    assert_eq!(
        mailed(&app),
        4 + cahier_function::deferred::RELEASED_PER_CONFIRMATION
    );
    assert_eq!(count(&app).await, 1);
}

#[tokio::test]
async fn allow_listed_networks_and_mail_providers_get_higher_budgets() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        allowed_networks: vec!["10.8.0.0/16".parse().unwrap()],
        ..Options::default()
    };
    let budgets = BudgetPolicy {
        per_domain: vec![Rate::new(1, 3600)],
        per_large_provider: vec![Rate::new(100, 3600)],
        // Only the manifest's allowed_domains are large providers here.
        large_providers: vec![],
        ..BudgetPolicy::default()
    };
    let app = app_with(dir.path(), options, Some(budgets));
    // A campus NAT: three people from one address within a minute, all pending.
    for who in ["amel", "bruno", "chloe"] {
        let email = format!("{who}@gmail.com");
        sign(&app, "10.8.3.4", &signer(&app, who, &email, "fr")).await;
        assert_eq!(
            record(&app, &email).await.status,
            Status::Pending,
            "{email}"
        );
    }
    // Outside the allow-listed network the one-a-minute address budget holds.
    sign(
        &app,
        "10.9.3.4",
        &signer(&app, "Dan", "dan@gmail.com", "fr"),
    )
    .await;
    sign(
        &app,
        "10.9.3.4",
        &signer(&app, "Eve", "eve@gmail.com", "fr"),
    )
    .await;
    // Pending, its mail queued until a confirmation from 10.9.3.0/24.
    assert_eq!(record(&app, "eve@gmail.com").await.status, Status::Pending);
    assert!(!read_dir(&app.outbox)
        .iter()
        .any(|m| m.to == "eve@gmail.com"));
    // gmail.com is in the manifest's allowed_domains: above the per-domain limit of 1.
    assert_eq!(record(&app, "dan@gmail.com").await.status, Status::Pending);
    // Another domain gets the plain per-domain budget of one an hour.
    sign(
        &app,
        "10.20.0.1",
        &signer(&app, "Fay", "fay@small.example", "fr"),
    )
    .await;
    sign(
        &app,
        "10.21.0.1",
        &signer(&app, "Gus", "gus@small.example", "fr"),
    )
    .await;
    assert_eq!(
        record(&app, "fay@small.example").await.status,
        Status::Pending
    );
    let gus = record(&app, "gus@small.example").await;
    assert_eq!(gus.status, Status::Held);
    assert!(gus.hold_reason.unwrap().contains("dom:3600:small.example:"));
}

#[tokio::test]
async fn the_mail_budget_per_domain_caps_confirmation_mails() {
    let dir = tempfile::tempdir().unwrap();
    let budgets = BudgetPolicy {
        mail_per_domain: Rate::new(2, 3600),
        ..BudgetPolicy::default()
    };
    let app = app_with(dir.path(), Options::default(), Some(budgets));
    for i in 0..5 {
        let email = format!("p{i}@mail.example");
        sign(
            &app,
            &format!("192.0.{i}.9"),
            &signer(&app, "P", &email, "fr"),
        )
        .await;
        // Stored pending (confirmable by a reminder later), but no third mail.
        assert_eq!(record(&app, &email).await.status, Status::Pending);
    }
    assert_eq!(read_dir(&app.outbox).len(), 2);
}

#[tokio::test]
async fn protected_domains_are_held_mailed_distinctly_and_not_counted_on_confirm() {
    let dir = tempfile::tempdir().unwrap();
    let app = app_with(dir.path(), Options::default(), None);
    let fr = format!("jean.depute@{PROTECTED}");
    let en = "alice@senat.fr";
    sign(&app, "192.0.2.10", &signer(&app, "Jean Député", &fr, "fr")).await;
    sign(&app, "192.0.2.11", &signer(&app, "Alice", en, "en")).await;
    let rec = record(&app, &fr).await;
    assert_eq!(rec.status, Status::Held);
    assert_eq!(rec.hold_reason.as_deref(), Some("protected domain"));

    let mails = read_dir(&app.outbox);
    assert_eq!(mails.len(), 2);
    let (m_fr, m_en) = (&mails[0], &mails[1]);
    assert!(
        m_fr.text
            .contains("Quelqu'un a utilisé votre adresse e-mail pour signer"),
        "{}",
        m_fr.text
    );
    assert!(m_fr
        .subject
        .starts_with("Quelqu'un a utilisé votre adresse"));
    assert!(
        m_en.text
            .contains("Someone used your e-mail address to sign"),
        "{}",
        m_en.text
    );
    assert!(m_en.subject.starts_with("Someone used your address"));
    // No plain confirmation wording in either.
    assert!(!m_fr.text.contains("Merci d'avoir signé"));

    // Confirming marks it confirmed-pending-review, not counted.
    let t = token(&m_fr.text, "confirm").unwrap();
    let res = call_from(
        &app,
        "192.0.2.10",
        Request::post("/api/confirm")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(serde_json::json!({ "token": t }).to_string()))
            .unwrap(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(body(res).await, br#"{"status":"confirmed"}"#);
    assert_eq!(record(&app, &fr).await.status, Status::ConfirmedHeld);
    assert_eq!(count(&app).await, 0);
}

#[tokio::test]
async fn heuristic_flags_are_recorded_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let app = app_with(dir.path(), Options::default(), None);
    let mut honeypot = signer(&app, "Hugo Honey", "hugo@example.org", "fr");
    honeypot["website"] = "http://spam.example".into();
    sign(&app, "192.0.2.20", &honeypot).await;
    let mut fast = signer(&app, "Fanny Vite", "fanny@example.org", "fr");
    fast["fill_ms"] = "400".into();
    sign(&app, "192.0.2.21", &fast).await;
    sign(
        &app,
        "192.0.2.22",
        &signer(&app, "Dina Jetable", "dina@mailinator.com", "fr"),
    )
    .await;
    let plain = "paul@example.org";
    sign(&app, "192.0.2.23", &signer(&app, "Paul Calme", plain, "fr")).await;
    // Identical names in a burst, each from its own network.
    for i in 0..6 {
        let email = format!("clone{i}@example.net");
        sign(
            &app,
            &format!("100.64.{i}.1"),
            &signer(&app, "Jean  DUPONT", &email, "fr"),
        )
        .await;
    }

    let flags = |r: SignatureRecord| r.flags;
    assert_eq!(flags(record(&app, "hugo@example.org").await), ["honeypot"]);
    assert_eq!(
        flags(record(&app, "fanny@example.org").await),
        ["fast_fill"]
    );
    assert_eq!(
        flags(record(&app, "dina@mailinator.com").await),
        ["disposable_domain"]
    );
    assert!(flags(record(&app, plain).await).is_empty());
    assert!(flags(record(&app, "clone0@example.net").await).is_empty());
    let last = record(&app, "clone5@example.net").await;
    assert!(
        last.flags.contains(&"name_burst".to_string()),
        "{:?}",
        last.flags
    );
    // Not blocking: every one of them is pending and was mailed.
    for e in [
        "hugo@example.org",
        "fanny@example.org",
        "dina@mailinator.com",
    ] {
        assert_eq!(record(&app, e).await.status, Status::Pending, "{e}");
    }
    assert_eq!(last.status, Status::Pending);
    assert_eq!(read_dir(&app.outbox).len(), 10);
}

async fn assert_paused(app: &TestApp) {
    let rows = signature_rows(app);
    // Even a body that would be refused (wrong type) gets the 503: nothing else is looked at.
    for req in [
        sign_req(&signer(app, "Ana", "ana@example.org", "fr")),
        Request::post(format!("/api/petitions/{SLUG}/sign"))
            .header(header::CONTENT_TYPE, "text/plain")
            .body(Body::from("junk"))
            .unwrap(),
    ] {
        let res = call_from(app, "192.0.2.30", req).await;
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            res.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let retry: u64 = res.headers()[header::RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(retry > 0);
        let v: Value = serde_json::from_slice(&body(res).await).unwrap();
        assert_eq!(v["status"], 503);
        assert_eq!(v["title"], "Signing paused");
    }
    assert_eq!(signature_rows(app), rows, "no store write");
    assert!(read_dir(&app.outbox).is_empty());
    // Counts and health stay up.
    assert_eq!(count(app).await, 0);
    let res = call_from(
        app,
        "192.0.2.30",
        Request::get("/api/health").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn kill_switch_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::new(
        dir.path(),
        Options {
            signing_paused: true,
            ..Options::default()
        },
    );
    assert_paused(&app).await;
}

#[tokio::test]
async fn kill_switch_from_the_manifest_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::new(dir.path(), Options::default());
    let open = app.state.manifest();
    let mut paused = open.clone();
    paused.site.signing = Some("paused".into());
    app.state.set_manifest(paused).unwrap();
    assert_paused(&app).await;
    app.state.set_manifest(open).unwrap();
    sign(
        &app,
        "192.0.2.31",
        &signer(&app, "Ana", "ana@example.org", "fr"),
    )
    .await;
    assert_eq!(read_dir(&app.outbox).len(), 1);
}

#[test]
fn manifests_without_the_new_keys_still_parse() {
    let m = cahier_tests::fixture::manifest(SITE, "age1xyz");
    let mut v = serde_json::to_value(&m).unwrap();
    let site = v["site"].as_object_mut().unwrap();
    site.remove("budgets");
    site.remove("signing");
    let old = cahier_function::manifest::Manifest::from_json(v.to_string().as_bytes()).unwrap();
    assert_eq!(old.site.signing, None);
    assert_eq!(old.site.budgets, None);
    // And the fields round-trip when present.
    let mut m2 = m.clone();
    m2.site.signing = Some("paused".into());
    let back =
        cahier_function::manifest::Manifest::from_json(&serde_json::to_vec(&m2).unwrap()).unwrap();
    assert_eq!(back, m2);
}

/// Collects formatted tracing output in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The process-wide JSON log of this test binary. A thread-local subscriber loses events when
/// tests on other threads register the same callsites concurrently, so the log is global and
/// each test keeps the events of its own signers.
fn global_log() -> Captured {
    static LOG: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    LOG.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_writer(move || writer.clone())
            .with_max_level(tracing::Level::INFO)
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        tracing::callsite::rebuild_interest_cache();
        captured
    })
    .clone()
}

#[tokio::test]
async fn hold_decisions_are_logged_as_pseudonymous_events() {
    let captured = global_log();
    let dir = tempfile::tempdir().unwrap();
    let app = app_with(dir.path(), Options::default(), None);
    sign(
        &app,
        "203.0.113.77",
        &signer(&app, "Ana Lopez", "ana@example.org", "fr"),
    )
    .await;
    sign(
        &app,
        "203.0.113.77",
        &signer(&app, "Bo Lind", "bo@example.org", "fr"),
    )
    .await;
    let depute = format!("x@{PROTECTED}");
    sign(&app, "203.0.114.1", &signer(&app, "Député", &depute, "fr")).await;
    let ours: Vec<String> = ["ana@example.org", "bo@example.org", depute.as_str()]
        .iter()
        .map(|e| app.state.hasher().email(e)[..12].to_string())
        .collect();

    let all = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let text: String = all
        .lines()
        .filter(|l| ours.iter().any(|h| l.contains(h.as_str())) || l.contains("203.0.11"))
        .map(|l| format!("{l}\n"))
        .collect();
    let events: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["target"] == "cahier::fraud")
        .collect();
    let decisions: Vec<&str> = events
        .iter()
        .map(|e| e["fields"]["decision"].as_str().unwrap())
        .collect();
    assert_eq!(decisions, ["mail_queued", "held"], "{text}");
    assert!(events[0]["fields"]["budget"]
        .as_str()
        .unwrap()
        .starts_with("addr:60:"));
    assert_eq!(events[1]["fields"]["hold_reason"], "protected domain");
    // Pseudonymous: no address, no name, no mailbox anywhere in the log.
    for needle in ["203.0.113", "Ana Lopez", "Bo Lind", "ana@", "bo@", "x@"] {
        assert!(!text.contains(needle), "{needle} in the log: {text}");
    }
}

#[tokio::test]
async fn the_block_list_answers_only_after_the_captcha() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        blocked_domains: vec!["blocked.example".into()],
        ..Options::default()
    };
    let app = app_with(dir.path(), options, None);
    // A forged captcha gets the same 403 for a blocked domain as for any other: the block list
    // is no oracle.
    for email in ["x@blocked.example", "x@BLOCKED.example", "x@fine.example"] {
        let mut json = signer(&app, "Probe", email, "fr");
        json["h-captcha-response"] = "forged".into();
        let res = call_from(&app, "192.0.2.50", sign_req(&json)).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{email}");
    }
    // With a solved captcha the blocked one is dropped silently: the one 202, nothing stored.
    sign(
        &app,
        "192.0.2.51",
        &signer(&app, "Bloc", "y@ｂｌｏｃｋｅｄ.example", "fr"),
    )
    .await;
    assert_eq!(signature_rows(&app), 0);
    assert!(read_dir(&app.outbox).is_empty());
}

#[tokio::test]
async fn protected_domains_are_caught_in_any_spelling() {
    let dir = tempfile::tempdir().unwrap();
    let app = app_with(dir.path(), Options::default(), None);
    let spellings = [
        "depute1@aſſemblee-nationale.fr",
        "senateur1@ＳＥＮＡＴ.fr",
        "senateur2@senat.ｆｒ",
        "Depute2@Assemblee-Nationale.FR",
    ];
    for (i, email) in spellings.iter().enumerate() {
        sign(
            &app,
            &format!("192.0.{i}.10"),
            &signer(&app, "Élu", email, "fr"),
        )
        .await;
    }
    for canonical in [
        "depute1@assemblee-nationale.fr",
        "senateur1@senat.fr",
        "senateur2@senat.fr",
        "depute2@assemblee-nationale.fr",
    ] {
        let rec = record(&app, canonical).await;
        assert_eq!(rec.status, Status::Held, "{canonical}");
        assert_eq!(rec.hold_reason.as_deref(), Some("protected domain"));
    }
    let mails = read_dir(&app.outbox);
    assert_eq!(mails.len(), 4);
    for m in &mails {
        assert!(
            m.subject.starts_with("Quelqu'un a utilisé votre adresse"),
            "{}",
            m.subject
        );
        assert!(
            m.to.is_ascii(),
            "mail goes to the canonical address: {}",
            m.to
        );
    }
    assert_eq!(count(&app).await, 0);
}

#[tokio::test]
async fn one_gmail_mailbox_in_several_spellings_signs_once() {
    let dir = tempfile::tempdir().unwrap();
    let app = app_with(dir.path(), Options::default(), None);
    let spellings = [
        "Jane.Doe@ｇｍａｉｌ.com",
        "JANE.DOE@Gmail.COM",
        "janedoe+petition@ＧＭＡＩＬ.ＣＯＭ",
        "j.a.n.e.d.o.e@googlemail.com",
    ];
    for (i, email) in spellings.iter().enumerate() {
        sign(
            &app,
            &format!("192.0.{}.20", 10 + i),
            &signer(&app, "Jane Doe", email, "fr"),
        )
        .await;
    }
    assert_eq!(signature_rows(&app), 1);
    let mails = read_dir(&app.outbox);
    let first_confirmations: Vec<&str> = mails
        .iter()
        .filter(|m| m.text.contains("Merci d'avoir signé"))
        .map(|m| m.to.as_str())
        .collect();
    assert_eq!(first_confirmations, ["jane.doe@gmail.com"], "{mails:#?}");
    // At most one daily "already signed" reminder besides.
    assert!(mails.len() <= 2, "{} mails", mails.len());
}

#[tokio::test]
async fn subdomains_of_one_domain_share_one_domain_budget() {
    let dir = tempfile::tempdir().unwrap();
    let app = app_with(dir.path(), Options::default(), None);
    let policy = BudgetPolicy::default();
    for i in 0..120 {
        let email = format!("p{i}@mx{i}.wildcard.example");
        let peer = format!("10.{}.{}.1", 1 + i / 200, i % 200);
        sign(&app, &peer, &signer(&app, "P", &email, "fr")).await;
    }
    let mails = read_dir(&app.outbox).len();
    let held: i64 = rusqlite::Connection::open(&app.db)
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM signatures WHERE status = 'held' AND email_domain LIKE '%.wildcard.example'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    println!("120 subdomains of wildcard.example: {mails} mails, {held} held");
    assert_eq!(mails, policy.mail_per_domain.limit as usize);
    assert_eq!(held, 120 - i64::from(policy.per_domain[0].limit));
}

#[tokio::test]
async fn a_crowd_behind_six_cgnat_addresses_is_counted() {
    const PEOPLE: usize = 60;
    let dir = tempfile::tempdir().unwrap();
    let app = app_with(dir.path(), Options::default(), None);
    let email_of = |i: usize| match i % 3 {
        0 => format!("mobile{i}@gmail.com"),
        1 => format!("mobile{i}@orange.fr"),
        _ => format!("mobile{i}@asso{}.example", i % 7),
    };
    for i in 0..PEOPLE {
        let peer = format!("100.64.7.{}", 1 + i % 6);
        sign(
            &app,
            &peer,
            &signer(&app, &format!("Personne {i}"), &email_of(i), "fr"),
        )
        .await;
    }
    let first_round = read_dir(&app.outbox).len();
    // Each person confirms when their mail arrives; confirmations release the queued mails.
    let mut confirmed = std::collections::HashSet::new();
    let mut rounds = 0;
    loop {
        let mails = read_dir(&app.outbox);
        let new: Vec<String> = mails
            .iter()
            .map(|m| m.to.clone())
            .filter(|to| !confirmed.contains(to))
            .collect();
        if new.is_empty() {
            break;
        }
        rounds += 1;
        for to in new {
            assert_eq!(confirm_mail_of(&app, &to).await, StatusCode::OK);
            confirmed.insert(to);
        }
    }
    let counted = count(&app).await;
    println!(
        "cgnat crowd: {PEOPLE} people behind 6 addresses of one /24; {first_round} mailed at once, \
         {counted} counted after {rounds} rounds of confirmations"
    );
    assert!(
        counted as f64 >= 0.99 * PEOPLE as f64,
        "{counted} of {PEOPLE} counted"
    );
}

#[tokio::test]
async fn drained_petition_and_large_provider_budgets_raise_an_alarm_but_shed_no_honest_signer() {
    let dir = tempfile::tempdir().unwrap();
    let budgets = BudgetPolicy {
        per_petition: vec![Rate::new(3, 3600)],
        per_large_provider: vec![Rate::new(3, 3600)],
        mail_per_large_provider: Rate::new(3, 3600),
        ..BudgetPolicy::default()
    };
    let app = app_with(dir.path(), Options::default(), Some(budgets));
    for i in 0..8 {
        let email = format!("honest{i}@gmail.com");
        sign(
            &app,
            &format!("198.18.{i}.1"),
            &signer(&app, "H", &email, "fr"),
        )
        .await;
        assert_eq!(
            record(&app, &email).await.status,
            Status::Pending,
            "{email}"
        );
    }
    assert_eq!(
        read_dir(&app.outbox).len(),
        8,
        "every honest signer is mailed"
    );
}
