//! Who the function believes the caller is, behind CloudFront and without it, through the real
//! router with the requests built the way `lambda_http` builds them from a function-URL event
//! (payload 2.0): `requestContext.http.sourceIp` is CloudFront's own address, the viewer is in
//! `CloudFront-Viewer-Address`, and `requestContext.authorizer.iam` is present only when Lambda
//! verified an origin-access-control signature. Also: the count's canonical spelling, its
//! in-process cache and its CORS, and the origin secret of `ApiAuth=NONE`.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::response::Response;
use cahier_function::edge::EdgeAuth;
use cahier_function::ratelimit::{Rate, RateLimits};
use cahier_function::Options;
use cahier_tests::fixture::{TestApp, SITE, SLUG};
use cahier_tests::outbox::read_dir;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::time::Duration;
use tower::ServiceExt;

/// One of CloudFront's origin-facing addresses: the same for every viewer behind that edge.
const EDGE: &str = "130.176.98.12";

/// A sign request as `lambda_http` hands it to the router from a function-URL event.
fn lambda_sign(body: &Value, viewer: Option<&str>, iam_signed: bool) -> Request<Body> {
    let mut headers = json!({
        "content-type": "application/json",
        "accept": "application/json",
        "origin": SITE,
    });
    if let Some(v) = viewer {
        headers["cloudfront-viewer-address"] = json!(v);
    }
    let mut context = json!({
        "accountId": "anonymous",
        "apiId": "abcdefghijklmnop",
        "domainName": "abcdefghijklmnop.lambda-url.us-east-1.on.aws",
        "domainPrefix": "abcdefghijklmnop",
        "requestId": "id",
        "routeKey": "$default",
        "stage": "$default",
        "time": "01/Dec/2026:12:00:00 +0000",
        "timeEpoch": 1_795_000_000_000i64,
        "http": {
            "method": "POST",
            "path": format!("/api/petitions/{SLUG}/sign"),
            "protocol": "HTTP/1.1",
            "sourceIp": EDGE,
            "userAgent": "Amazon CloudFront"
        }
    });
    if iam_signed {
        context["authorizer"] = json!({ "iam": {
            "accessKey": "ASIAEXAMPLE",
            "accountId": "123456789012",
            "callerId": "AROAEXAMPLE:cloudfront",
            "userArn": "arn:aws:sts::123456789012:assumed-role/cloudfront/edge",
            "userId": "AROAEXAMPLE:cloudfront"
        }});
    }
    let event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": format!("/api/petitions/{SLUG}/sign"),
        "rawQueryString": "",
        "headers": headers,
        "requestContext": context,
        "body": body.to_string(),
        "isBase64Encoded": false
    });
    let req = lambda_http::request::from_str(&event.to_string()).expect("a function-URL event");
    let (parts, body) = req.into_parts();
    Request::from_parts(parts, Body::from(body.to_vec()))
}

async fn call(app: &TestApp, req: Request<Body>) -> Response {
    cahier_function::app(app.state.clone())
        .oneshot(req)
        .await
        .unwrap()
}

async fn body_json(res: Response) -> Value {
    serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap()
}

fn signer(app: &TestApp, email: &str) -> Value {
    json!({
        "name": "Jeanne Test", "email": email, "consent": "yes",
        "h-captcha-response": app.captcha(), "lang": "fr",
        "website": "", "fill_ms": "5000",
    })
}

/// Two sign attempts per minute per address and per network: tight, so that a wrong key shows.
fn tight(edge: EdgeAuth) -> Options {
    let rate = Rate {
        burst: 2.0,
        per_minute: 2.0,
    };
    Options {
        rate_limits: RateLimits {
            per_ip: rate,
            per_prefix: rate,
            ..RateLimits::default()
        },
        edge,
        ..Options::default()
    }
}

/// The design's default durable budgets (1 a minute per address, 20 an hour per network...).
fn with_default_budgets(app: &TestApp) {
    let mut manifest = app.state.manifest();
    manifest.site.budgets = None;
    app.state.set_manifest(manifest).unwrap();
}

#[tokio::test]
async fn behind_cloudfront_limits_and_budgets_key_on_the_viewer() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::new(dir.path(), tight(EdgeAuth::Iam));
    with_default_budgets(&app);
    // 40 people from 40 networks, all through one CloudFront edge address.
    for i in 0..40u32 {
        let viewer = format!("198.{}.{}.7:{}", 18 + i / 200, i % 200, 40_000 + i);
        let res = call(
            &app,
            lambda_sign(
                &signer(&app, &format!("person{i}@commune{i}.fr")),
                Some(&viewer),
                true,
            ),
        )
        .await;
        assert_eq!(res.status(), StatusCode::ACCEPTED, "signer {i} ({viewer})");
    }
    // Each got a confirmation mail (one domain each, so no domain budget interferes): no
    // durable budget keyed on the edge's address held them.
    assert_eq!(read_dir(&app.outbox).len(), 40);

    // One viewer past its own limit is limited, whatever edge it comes through.
    let mut statuses = Vec::new();
    for i in 0..4 {
        let res = call(
            &app,
            lambda_sign(
                &signer(&app, &format!("again{i}@example.org")),
                Some("203.0.113.50:1000"),
                true,
            ),
        )
        .await;
        statuses.push(res.status());
    }
    assert_eq!(statuses[..2], [StatusCode::ACCEPTED, StatusCode::ACCEPTED]);
    assert_eq!(statuses[3], StatusCode::TOO_MANY_REQUESTS);

    // IPv6 viewers in CloudFront's unbracketed `address:port` form are keyed on their /64.
    let mut v6 = Vec::new();
    for i in 0..4 {
        let res = call(
            &app,
            lambda_sign(
                &signer(&app, &format!("six{i}@example.org")),
                Some(&format!("2001:db8:5:7::{:x}:443", i + 1)),
                true,
            ),
        )
        .await;
        v6.push(res.status());
    }
    assert_eq!(
        v6[3],
        StatusCode::TOO_MANY_REQUESTS,
        "{v6:?}: one /64 is one client"
    );
}

#[tokio::test]
async fn a_forged_viewer_address_is_not_believed() {
    let dir = tempfile::tempdir().unwrap();
    // The function URL expects origin-access-control signatures, but this event has none:
    // someone reached the function directly and wrote the header themselves. Every forged
    // address then lands in the one shared "unknown" bucket, which fills after two.
    let app = TestApp::new(dir.path(), tight(EdgeAuth::Iam));
    let mut statuses = Vec::new();
    for i in 0..4u32 {
        let res = call(
            &app,
            lambda_sign(
                &signer(&app, &format!("forger{i}@example.org")),
                Some(&format!("192.0.{i}.1:5000")),
                false,
            ),
        )
        .await;
        statuses.push(res.status());
    }
    assert_eq!(statuses[3], StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");

    // Standalone with no CDN configured, the header is ignored: the socket peer counts.
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::new(dir.path(), tight(EdgeAuth::None));
    let mut statuses = Vec::new();
    for i in 0..4u32 {
        let mut req = Request::post(format!("/api/petitions/{SLUG}/sign"))
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ORIGIN, SITE)
            .header("cloudfront-viewer-address", format!("192.0.{i}.1:5000"))
            .body(Body::from(
                signer(&app, &format!("direct{i}@example.org")).to_string(),
            ))
            .unwrap();
        req.extensions_mut().insert(axum::extract::ConnectInfo(
            "198.51.100.9:4000".parse::<std::net::SocketAddr>().unwrap(),
        ));
        statuses.push(call(&app, req).await.status());
    }
    assert_eq!(statuses[3], StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
}

#[tokio::test]
async fn without_the_origin_secret_every_request_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "x".repeat(64);
    let edge = EdgeAuth::from_mode("origin-header", Some(&secret)).unwrap();
    let app = TestApp::new(dir.path(), tight(edge));
    let count = || {
        Request::get(format!("/api/petitions/{SLUG}/count"))
            .body(Body::empty())
            .unwrap()
    };
    let res = call(&app, count()).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        res.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    let mut wrong = lambda_sign(&signer(&app, "a@example.org"), Some("192.0.2.1:1"), false);
    wrong
        .headers_mut()
        .insert("x-cahier-origin-verify", "y".repeat(64).parse().unwrap());
    assert_eq!(call(&app, wrong).await.status(), StatusCode::FORBIDDEN);
    assert!(read_dir(&app.outbox).is_empty());

    let mut good = lambda_sign(&signer(&app, "b@example.org"), Some("192.0.2.1:1"), false);
    good.headers_mut()
        .insert("x-cahier-origin-verify", secret.parse().unwrap());
    assert_eq!(call(&app, good).await.status(), StatusCode::ACCEPTED);
    let mut req = count();
    req.headers_mut()
        .insert("x-cahier-origin-verify", secret.parse().unwrap());
    assert_eq!(call(&app, req).await.status(), StatusCode::OK);
}

fn get(path: &str) -> Request<Body> {
    Request::get(path)
        .header(header::ORIGIN, "https://someone-else.example")
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn the_count_answers_only_its_canonical_spelling_for_every_origin() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::new(dir.path(), Options::default());
    let res = call(&app, get(&format!("/api/petitions/{SLUG}/count"))).await;
    assert_eq!(res.status(), StatusCode::OK);
    // Public data, one cache entry for all origins: `*` and no `Vary: Origin`.
    assert_eq!(res.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    assert!(
        res.headers().get_all(header::VARY).iter().all(|v| !v
            .to_str()
            .unwrap()
            .to_ascii_lowercase()
            .contains("origin")),
        "{:?}",
        res.headers()
    );
    // Spellings that decode to the slug are other CDN cache keys: 404, not a store read.
    let encoded: String = SLUG.bytes().map(|b| format!("%{b:02X}")).collect();
    let first = format!("%{:02x}{}", SLUG.as_bytes()[0], &SLUG[1..]);
    for path in [
        format!("/api/petitions/{encoded}/count"),
        format!("/api/petitions/{first}/count"),
        format!("/api/petitions/{}/count", SLUG.to_uppercase()),
        format!("/api/petitions/{SLUG}/count/"),
        format!("/api/petitions/{SLUG}%2F/count"),
    ] {
        let res = call(&app, get(&path)).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
        let v = body_json(res).await;
        assert_eq!(v["status"], 404, "{path}: {v}");
    }
}

#[tokio::test]
async fn an_instance_keeps_the_count_for_its_cache_period() {
    let dir = tempfile::tempdir().unwrap();
    // Two instances on one store: `cached` keeps counts 60 s, `fresh` reads every time.
    let cached = TestApp::new(
        dir.path(),
        Options {
            count_cache: Duration::from_secs(60),
            ..Options::default()
        },
    );
    let count = |app: &TestApp| {
        let req = get(&format!("/api/petitions/{SLUG}/count"));
        let app = cahier_function::app(app.state.clone());
        async move {
            let res = app.oneshot(req).await.unwrap();
            body_json(res).await["count"].as_u64().unwrap()
        }
    };
    assert_eq!(count(&cached).await, 0);
    // Another instance confirms a signature in the same table.
    let other = cahier_tests::fixture::TestApp::new(dir.path(), Options::default());
    let res = call(
        &other,
        lambda_sign(&signer(&other, "c@example.org"), None, false),
    )
    .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let mail = read_dir(&other.outbox).pop().expect("a confirmation mail");
    let token = cahier_tests::outbox::token(&mail.text, "confirm").unwrap();
    let res = call(
        &other,
        Request::post("/api/confirm")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(json!({ "token": token }).to_string()))
            .unwrap(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(count(&other).await, 1);
    // The first instance still answers from memory, many times, without a store read.
    let many = futures_join(200, || count(&cached)).await;
    assert!(many.iter().all(|&c| c == 0), "{many:?}");
}

async fn futures_join<F, Fut>(n: usize, f: F) -> Vec<u64>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = u64> + Send + 'static,
{
    let handles: Vec<_> = (0..n).map(|_| tokio::spawn(f())).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}
