//! The production path as one request travels it: the edge harness playing CloudFront as
//! `deploy/aws/template.yaml` configures it (tests/src/edge.rs), the example site built for
//! AWS, the real `cahier-function` under the Lambda runtime emulator, DynamoDB and SES on moto.

use anyhow::Context;
use cahier_tests::attack::{client_from, run_paced, spread_address};
use cahier_tests::edge::stack::{EdgeStack, PETITION};
use cahier_tests::edge::template::{ApiAuth, Distribution};
use cahier_tests::edge::theme_client::{self, Signer};
use cahier_tests::outbox::token;
use serde_json::Value;
use std::time::{Duration, Instant};

const FORM: &str = "application/x-www-form-urlencoded;charset=UTF-8";

/// What the viewer gets when the function URL (origin) answers `status`: the template's custom
/// error response for it, if any.
fn as_viewer_sees(dist: &Distribution, status: u16) -> u16 {
    dist.error_response(status)
        .and_then(|e| e.response_code)
        .unwrap_or(status)
}

/// Signs `signer` through the edge exactly as the theme does; returns the status.
async fn sign(stack: &EdgeStack, http: &reqwest::Client, signer: &Signer) -> u16 {
    let captcha = stack.api().captcha().await;
    theme_client::sign(http, &stack.edge.base, PETITION, signer, &captcha)
        .send()
        .await
        .expect("POST sign through the edge")
        .status()
        .as_u16()
}

/// The count the edge serves (it may be up to one cache period old).
async fn count(stack: &EdgeStack) -> u64 {
    let v: Value = reqwest::get(stack.edge.url(&format!("/api/petitions/{PETITION}/count")))
        .await
        .expect("GET count")
        .json()
        .await
        .expect("count JSON");
    v["count"].as_u64().expect("a count")
}

/// Waits (at most 30 s: the edge caches the count for its s-maxage) for the count to be `n`.
async fn wait_count(stack: &EdgeStack, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let c = count(stack).await;
        if c == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the count stayed at {c}, expected {n}; function log:\n{}",
            stack.lambda.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_refuses_unsigned_posts_and_the_themes_posts_pass() {
    let stack = EdgeStack::start(ApiAuth::AwsIam).await.unwrap();
    let http = reqwest::Client::new();
    let base = &stack.edge.base;
    let sign_url = stack.edge.url(&format!("/api/petitions/{PETITION}/sign"));
    let refused = as_viewer_sees(&stack.edge.dist, 403);
    let mallory = Signer::new("Mallory Essai", "mallory@example.org");

    // No hash, then the hash of another body: the function URL refuses, the function never runs.
    let captcha = stack.api().captcha().await;
    let body = mallory.form_body(&captcha);
    let res = http
        .post(&sign_url)
        .header("content-type", FORM)
        .header("accept", "application/json")
        .header("origin", base)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), refused);
    let res = http
        .post(&sign_url)
        .header("content-type", FORM)
        .header("accept", "application/json")
        .header("origin", base)
        .header(
            "x-amz-content-sha256",
            cahier_tests::edge::content_sha256(b"name=someone+else"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), refused);
    assert!(
        stack.edge.invocations().is_empty(),
        "{:?}",
        stack.edge.invocations()
    );

    // The theme's POSTs: sign, then the confirm page's POST, then the count moves.
    let camille = Signer::new("Camille Bord", "camille.bord@example.net");
    assert_eq!(
        sign(&stack, &http, &camille).await,
        202,
        "{}",
        stack.lambda.log()
    );
    let mail = stack.wait_mail(&camille.email).await.unwrap();
    assert!(
        mail.contains(&format!("{base}/{PETITION}/confirm/#t=")),
        "{mail}"
    );
    let confirm = token(&mail, "confirm").expect("a confirm link");
    let res = theme_client::token(&http, base, "/api/confirm", &confirm)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", stack.lambda.log());
    wait_count(&stack, 1).await;
    assert!(stack
        .mails()
        .unwrap()
        .iter()
        .all(|(to, _)| to != &mallory.email));
    let invoked = stack.edge.invocations();
    assert!(invoked.iter().all(|h| h.status < 500), "{invoked:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_viewer_address_straight_to_the_function_is_not_believed() {
    let stack = EdgeStack::start(ApiAuth::AwsIam).await.unwrap();
    let http = reqwest::Client::new();
    let base = &stack.edge.base;
    // Three signers who claim three networks, straight to the function URL (no OAC, so no
    // `authorizer.iam` in the event): one shared "unknown" address, held past the first.
    // The address budget counts fixed one-minute windows: a run that crosses a minute boundary
    // has one mail per window it spans.
    let first_minute = cahier_function::now() / 60;
    for i in 1..=3u8 {
        let signer = Signer::new("Sam Direct", &format!("sam{i}@direct{i}.example"));
        let captcha = stack.api().captcha().await;
        let res = theme_client::post(
            &http,
            &format!("{}/api/petitions/{PETITION}/sign", stack.lambda.url),
            base,
            FORM,
            signer.form_body(&captcha),
        )
        .header("cloudfront-viewer-address", format!("203.0.{i}.7:40000"))
        .send()
        .await
        .unwrap();
        let status = res.status().as_u16();
        assert!(
            status == 202 || status == 429,
            "{status}: {}",
            stack.lambda.log()
        );
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let direct = stack.mails().unwrap().len();
    let windows = (cahier_function::now() / 60 - first_minute + 1) as usize;
    assert!(
        direct <= windows.min(2),
        "{direct} mails over {windows} minute window(s): forged viewer addresses were believed\n{}",
        stack.lambda.log()
    );

    // The same through the edge from three real networks: three people, three mails. A forged
    // header sent to the edge is replaced by the real socket's address.
    for i in 1..=3usize {
        let source = spread_address(i);
        let client = client_from(source).unwrap();
        let signer = Signer::new("Sam Edge", &format!("sam{i}@edge{i}.example"));
        let captcha = stack.api().captcha().await;
        let res = theme_client::sign(&client, base, PETITION, &signer, &captcha)
            .header("cloudfront-viewer-address", "203.0.113.9:1")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 202, "{}", stack.lambda.log());
        stack.wait_mail(&signer.email).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_api_auth_none_only_the_secret_origin_header_is_believed() {
    let stack = EdgeStack::start(ApiAuth::None).await.unwrap();
    let http = reqwest::Client::new();
    let base = &stack.edge.base;
    // The public function URL, without the header CloudFront adds: refused as problem+json.
    let signer = Signer::new("Noa Public", "noa@public.example");
    let captcha = stack.api().captcha().await;
    let res = theme_client::post(
        &http,
        &format!("{}/api/petitions/{PETITION}/sign", stack.lambda.url),
        base,
        FORM,
        signer.form_body(&captcha),
    )
    .header("cloudfront-viewer-address", "203.0.113.50:4000")
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 403, "{}", stack.lambda.log());
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    // Through the edge, which adds it: signed and mailed.
    assert_eq!(
        sign(&stack, &http, &signer).await,
        202,
        "{}",
        stack.lambda.log()
    );
    stack.wait_mail(&signer.email).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_percent_encoded_slug_gets_404_and_the_count_is_cached_per_its_cache_control() {
    let stack = EdgeStack::start(ApiAuth::AwsIam).await.unwrap();
    let canonical = format!("/api/petitions/{PETITION}/count");
    let res = reqwest::get(stack.edge.url(&canonical)).await.unwrap();
    assert_eq!(res.status(), 200);
    let cache_control = res.headers()["cache-control"].to_str().unwrap().to_string();
    assert!(cache_control.contains("s-maxage=10"), "{cache_control}");
    let encoded = canonical.replacen("noel", "%6eoel", 1);
    let res = reqwest::get(stack.edge.url(&encoded)).await.unwrap();
    assert_eq!(res.status(), 404, "{encoded}: {}", stack.lambda.log());

    // A flood in many spellings: query strings (not in the cache key), header variants, and
    // percent-encodings (distinct keys, as on CloudFront).
    let spellings: Vec<String> = [
        canonical.clone(),
        canonical.replacen("noel", "%6eoel", 1),
        canonical.replacen("noel", "%6Eoel", 1),
        canonical.replacen("sans", "s%61ns", 1),
        canonical.replacen("count", "c%6funt", 1),
    ]
    .into_iter()
    .flat_map(|p| (0..20).map(move |i| format!("{p}?bust={i}")))
    .collect();
    let started = Instant::now();
    let before = stack.edge.origin_hits().len();
    let clients: Vec<reqwest::Client> = (0..8)
        .map(|i| client_from(spread_address(100 + i)).unwrap())
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, path) in spellings.iter().enumerate() {
        let client = clients[i % clients.len()].clone();
        let url = stack.edge.url(path);
        let accept = if i % 2 == 0 {
            "application/json"
        } else {
            "*/*"
        };
        tasks.spawn(async move {
            client
                .get(url)
                .header("accept", accept)
                .header("origin", "https://elsewhere.example")
                .send()
                .await
                .map(|r| r.status().as_u16())
        });
    }
    while let Some(r) = tasks.join_next().await {
        let status = r.unwrap().unwrap();
        assert!(status == 200 || status == 404, "{status}");
    }
    let elapsed = started.elapsed();
    let hits: Vec<_> = stack.edge.origin_hits()[before..].to_vec();
    let mut per_key = std::collections::BTreeMap::<String, usize>::new();
    for h in &hits {
        *per_key.entry(h.cache_key.clone()).or_default() += 1;
    }
    // At most one origin request per key per cache period (10 s) while the flood lasted.
    let periods = 1 + (elapsed.as_secs() / 10) as usize;
    assert!(per_key.len() <= 5, "{per_key:#?}");
    assert!(
        per_key.values().all(|n| *n <= periods),
        "{} requests in {elapsed:?} reached the function: {per_key:#?}",
        spellings.len()
    );
    println!(
        "count flood: {} requests in {} spellings over {elapsed:.2?}: {} origin requests ({} keys)",
        spellings.len(),
        spellings.len(),
        hits.len(),
        per_key.len()
    );
}

/// The false-positive control through the edge: 300 people, each from their own network (the
/// edge passes each one's address on), sign, get their mail, confirm from it, and are counted.
/// Before the function read the viewer's address, 290 of them got 429 and the count moved by 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_people_from_three_hundred_networks_sign_and_are_counted() {
    const PEOPLE: usize = 300;
    let stack = std::sync::Arc::new(EdgeStack::start(ApiAuth::AwsIam).await.unwrap());
    let statuses = std::sync::Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::<
        u16,
        usize,
    >::new()));
    let started = Instant::now();
    let signing = {
        let (stack, statuses) = (stack.clone(), statuses.clone());
        run_paced(PEOPLE, 4, None, Duration::from_secs(240), move |i| {
            let (stack, statuses) = (stack.clone(), statuses.clone());
            async move {
                let client = client_from(spread_address(1000 + i))?;
                let signer =
                    Signer::new("Une Personne", &format!("personne{i}@commune{i}.example"));
                let status = sign(&stack, &client, &signer).await;
                *statuses.lock().unwrap().entry(status).or_default() += 1;
                Ok(())
            }
        })
        .await
    };
    let statuses = statuses.lock().unwrap().clone();
    println!(
        "{PEOPLE} signers through the edge: {}; {statuses:?}",
        signing.summary()
    );
    assert_eq!(statuses.get(&202), Some(&PEOPLE), "{statuses:?}");

    // Every one of them got the mail and confirms from the page.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mails = loop {
        let mails = stack.mails().unwrap();
        if mails.len() >= PEOPLE || Instant::now() > deadline {
            break mails;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(mails.len(), PEOPLE, "mails sent");
    let mails = std::sync::Arc::new(mails);
    let confirming = {
        let (stack, mails) = (stack.clone(), mails.clone());
        let http = reqwest::Client::new();
        run_paced(PEOPLE, 4, None, Duration::from_secs(240), move |i| {
            let (stack, mails, http) = (stack.clone(), mails.clone(), http.clone());
            async move {
                let (to, body) = &mails[i];
                let t = token(body, "confirm").with_context(|| format!("no link for {to}"))?;
                let res = theme_client::token(&http, &stack.edge.base, "/api/confirm", &t)
                    .send()
                    .await?;
                anyhow::ensure!(res.status() == 200, "{to}: {}", res.status());
                Ok(())
            }
        })
        .await
    };
    assert_eq!(
        confirming.ok,
        PEOPLE,
        "{}: {}",
        confirming.summary(),
        stack.lambda.log()
    );
    wait_count(&stack, PEOPLE as u64).await;
    println!(
        "{PEOPLE} signed, mailed, confirmed ({}) and counted in {:.2?}",
        confirming.summary(),
        started.elapsed()
    );
}

#[tokio::test]
async fn the_harness_rewrites_uris_as_the_template_function_does() {
    let dist = Distribution::load(
        &cahier_tests::repo_root().join("deploy/aws/template.yaml"),
        ApiAuth::AwsIam,
    )
    .unwrap();
    let code = dist
        .behavior_for("/")
        .viewer_request
        .clone()
        .expect("a viewer-request function on the default behavior");
    let uris = [
        "/",
        "/noel-sans-geant/",
        "/noel-sans-geant",
        "/en/noel-sans-geant/embed",
        "/static/cahier.0123abcd.js",
        "/api/manifest.json",
        "/noel-sans-geant/log/checkpoint",
    ];
    // The template's own code, run by node on the same URIs.
    let script = format!(
        "{code}\nconst uris = {};\nconsole.log(JSON.stringify(uris.map(u => handler({{request: {{uri: u}}}}).uri)));",
        serde_json::to_string(&uris).unwrap()
    );
    let out = std::process::Command::new("node")
        .args(["-e", &script])
        .output()
        .expect("node runs (it is installed for the browser tests)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let from_node: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    let from_harness: Vec<String> = uris
        .iter()
        .map(|u| cahier_tests::edge::index_rewrite(u))
        .collect();
    assert_eq!(from_node, from_harness);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_and_errors_carry_the_templates_response_headers() {
    let stack = EdgeStack::start(ApiAuth::AwsIam).await.unwrap();
    let site = stack
        .edge
        .dist
        .behavior_for("/")
        .response_headers
        .clone()
        .unwrap();
    let embed_path = format!("/{PETITION}/embed/");
    let embed = stack
        .edge
        .dist
        .behavior_for(&embed_path)
        .response_headers
        .clone()
        .unwrap();
    for (path, policy, status) in [
        (format!("/{PETITION}/"), &site, 200),
        (embed_path.clone(), &embed, 200),
        ("/no-such-page/".to_string(), &site, 404),
    ] {
        let res = reqwest::get(stack.edge.url(&path)).await.unwrap();
        assert_eq!(res.status(), status, "{path}");
        for h in &policy.headers {
            assert_eq!(
                res.headers().get(&h.name).map(|v| v.to_str().unwrap()),
                Some(h.value.as_str()),
                "{path}: {}",
                h.name
            );
        }
        let text = res.text().await.unwrap();
        assert!(text.contains("<html"), "{path}");
    }

    // The embed signs inside any site's frame: no header policy on top of the one the generator
    // wrote for it (headers::csp, in the page's <meta> and in `_headers`) may take away the
    // captcha's origins or the API.
    let res = reqwest::get(stack.edge.url(&embed_path)).await.unwrap();
    let headers_file = std::fs::read_to_string(stack.site_dir.join("_headers")).unwrap();
    let generated = headers_file
        .split("\n/")
        .find(|rule| rule.starts_with(":slug/embed/"))
        .and_then(|rule| {
            rule.lines()
                .find_map(|l| l.trim().strip_prefix("Content-Security-Policy: "))
        })
        .expect("an embed rule in _headers")
        .to_string();
    assert!(generated.contains("frame-ancestors *"), "{generated}");
    for header in res.headers().get_all("content-security-policy") {
        assert_eq!(
            header.to_str().unwrap(),
            generated,
            "the embed's CSP header"
        );
    }
    assert!(res.headers().get("x-frame-options").is_none());
    // Tera's HTML escaping of the attribute, undone.
    let page = res
        .text()
        .await
        .unwrap()
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&#x2F;", "/")
        .replace("&quot;", "\"")
        .replace("&amp;", "&");
    let meta = generated.replace("; frame-ancestors *", "");
    assert!(
        page.contains(&format!("content=\"{meta}\"")),
        "the embed's <meta> policy is the generated one: {meta}"
    );
    assert!(meta.contains("https://*.hcaptcha.com"), "{meta}");
}
