//! The attack replays of `attacks.rs` through the production path: the edge harness playing
//! CloudFront as `deploy/aws/template.yaml` configures it (origin access control on), the real
//! `cahier-function` under the Lambda runtime emulator, DynamoDB, SES and Secrets Manager on
//! moto. Every request reaches the function from the edge's own address (`sourceIp`); each
//! client binds its own 127.x.y.z source, which the edge passes on as
//! `CloudFront-Viewer-Address`. The budgets, the stored networks and `cahier admin` must key on
//! those viewers, never on the edge.
//!
//! Scaled down from `attacks.rs`: moto serves one request at a time in Python, so a sign costs
//! about 130 ms here against about 2 ms on the plain server. The figures printed say how many.

use cahier_function::budgets::BudgetPolicy;
use cahier_function::store::admin::{AdminStore, Criteria};
use cahier_function::store::{SignatureRecord, Status};
use cahier_tests::attack::{client_from, clients_in_prefix, run_paced, spread_address};
use cahier_tests::edge::stack::{EdgeStack, PETITION};
use cahier_tests::edge::template::ApiAuth;
use cahier_tests::edge::theme_client::{self, Signer};
use cahier_tests::edge::EDGE_SOURCE_IP;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Three stacks (moto, the emulator, the function, the hCaptcha stand-in) are heavy on 2
/// cores: one replay at a time in this binary.
static STACKS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// The network the function must never see: the edge's own.
fn edge_network() -> String {
    cahier_function::network::network_of(EDGE_SOURCE_IP.parse().unwrap())
}

/// Signs `signer` through the edge as the theme does, from `client`'s address.
async fn sign(stack: &EdgeStack, client: &reqwest::Client, signer: &Signer) -> anyhow::Result<u16> {
    sign_with(stack, client, signer, &stack.api().captcha().await).await
}

/// [`sign`] with a given captcha answer.
async fn sign_with(
    stack: &EdgeStack,
    client: &reqwest::Client,
    signer: &Signer,
    captcha: &str,
) -> anyhow::Result<u16> {
    let res = theme_client::sign(client, &stack.edge.base, PETITION, signer, captcha)
        .send()
        .await?;
    Ok(res.status().as_u16())
}

/// Confirms with `token` through the edge, as the confirm page does.
async fn confirm(stack: &EdgeStack, client: &reqwest::Client, token: &str) -> anyhow::Result<u16> {
    let res = theme_client::token(client, &stack.edge.base, "/api/confirm", token)
        .send()
        .await?;
    Ok(res.status().as_u16())
}

/// Every record of the petition, read from the function's table.
async fn records(stack: &EdgeStack) -> Vec<SignatureRecord> {
    let store = stack.store().await;
    let mut all = Vec::new();
    store
        .scan(
            &Criteria {
                petition: Some(PETITION.to_string()),
                ..Criteria::default()
            },
            &mut |r| all.push(r),
        )
        .await
        .expect("scanning the table");
    all
}

fn by_status(records: &[SignatureRecord]) -> BTreeMap<&'static str, usize> {
    let mut m = BTreeMap::new();
    for r in records {
        *m.entry(r.status.as_str()).or_default() += 1;
    }
    m
}

/// The confirmed count the function answers (through the edge, which may cache it for a few
/// seconds): waits at most 30 s for `n`.
async fn wait_count(stack: &EdgeStack, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v: Value = reqwest::get(stack.edge.url(&format!("/api/petitions/{PETITION}/count")))
            .await
            .expect("GET count")
            .json()
            .await
            .expect("count JSON");
        if v["count"].as_u64() == Some(n) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the count stayed at {}, expected {n}",
            v["count"]
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The budgets the function enforces: the built manifest's, else the function's defaults.
fn budgets(stack: &EdgeStack) -> BudgetPolicy {
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(&stack.manifest_path).unwrap()).unwrap();
    match manifest["site"].get("budgets") {
        Some(b) if !b.is_null() => serde_json::from_value(b.clone()).expect("manifest budgets"),
        _ => BudgetPolicy::default(),
    }
}

/// Tuesday through the edge: one /24 of servers signs made-up addresses while ordinary people
/// from their own networks sign and confirm. The budget holds the /24 back, the others pass,
/// and the organizer's `trending` and `invalidate --ip-prefix` find the /24 — which they can
/// only do if the function keyed on the viewers, not on the edge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tuesday_one_slash_24_through_the_edge() {
    const SERVERS: usize = 120;
    const LEGIT: usize = 20;
    let _slot = STACKS.acquire().await.unwrap();
    let stack = Arc::new(EdgeStack::start(ApiAuth::AwsIam).await.unwrap());
    let attackers = Arc::new(clients_in_prefix([127, 66, 6], SERVERS).unwrap());
    let statuses = Arc::new(Mutex::new(BTreeMap::<u16, usize>::new()));
    let started = Instant::now();
    let report = {
        let (stack, attackers, statuses) = (stack.clone(), attackers.clone(), statuses.clone());
        run_paced(SERVERS, 4, None, Duration::from_secs(120), move |i| {
            let (stack, statuses) = (stack.clone(), statuses.clone());
            let (_, client) = attackers[i].clone();
            async move {
                let signer = Signer::new("Jean Martin", &format!("x{i:08}@gmail.com"));
                let status = sign(&stack, &client, &signer).await?;
                anyhow::ensure!(matches!(status, 202 | 429), "unexpected status {status}");
                *statuses.lock().unwrap().entry(status).or_default() += 1;
                Ok(())
            }
        })
        .await
    };
    assert_eq!(report.ok, SERVERS, "{}", report.summary());

    let mut legit_networks = Vec::new();
    for i in 0..LEGIT {
        let ip = spread_address(10_000 + i);
        let client = client_from(ip).unwrap();
        let email = format!("citoyen{i}@example.org");
        let signer = Signer::new(&format!("Citoyen {i}"), &email);
        assert_eq!(sign(&stack, &client, &signer).await.unwrap(), 202);
        assert_eq!(
            confirm(&stack, &client, &stack.confirm_token(&email))
                .await
                .unwrap(),
            200
        );
        legit_networks.push(cahier_function::network::network_of(ip));
    }

    let all = records(&stack).await;
    let attacker: Vec<&SignatureRecord> = all
        .iter()
        .filter(|r| r.network == "127.66.6.0/24")
        .collect();
    let attacker_mails = stack
        .mails()
        .unwrap()
        .iter()
        .filter(|(to, _)| to.ends_with("@gmail.com"))
        .count();
    let network_budget = budgets(&stack).per_network[0].limit as usize;
    println!(
        "tuesday through the edge: {SERVERS} signs from one /24 in {:.1}s ({}): {:?}; stored {} from the /24, \
         by status {:?}; {attacker_mails} mails to the attacker's mailboxes (network budget {network_budget}); \
         {LEGIT} others from their own networks signed and confirmed",
        started.elapsed().as_secs_f64(),
        report.summary(),
        statuses.lock().unwrap(),
        attacker.len(),
        by_status(&all),
    );
    // The function saw the viewers: the /24's records carry it, the others their own networks,
    // and none the edge's.
    assert!(
        all.iter().all(|r| r.network != edge_network()),
        "a record keyed on the edge's network"
    );
    assert!(!attacker.is_empty());
    for n in &legit_networks {
        assert_eq!(
            all.iter().filter(|r| &r.network == n).count(),
            1,
            "the legitimate signer of {n}"
        );
    }
    assert!(
        attacker_mails > 0 && attacker_mails <= network_budget,
        "{attacker_mails} mails to the attacker"
    );
    assert!(attacker.iter().all(|r| r.status != Status::Confirmed));
    wait_count(&stack, LEGIT as u64).await;

    // The organizer names the /24, previews, and removes it in one command.
    let trending = stack
        .admin(&[
            "trending",
            "--petition",
            PETITION,
            "--label",
            "127.66.6.0/24",
        ])
        .unwrap();
    assert_eq!(
        trending["prefixes"][0]["label"], "127.66.6.0/24",
        "the top prefix is the attacker's: {trending}"
    );
    let dry = stack
        .admin(&[
            "invalidate",
            "--petition",
            PETITION,
            "--ip-prefix",
            "127.66.6.0/24",
        ])
        .unwrap();
    let matched = dry["matched"].as_u64().unwrap();
    assert_eq!(matched as usize, attacker.len(), "{dry}");
    let done = stack
        .admin(&[
            "invalidate",
            "--petition",
            PETITION,
            "--ip-prefix",
            "127.66.6.0/24",
            "--yes",
            "--expect",
            &matched.to_string(),
        ])
        .unwrap();
    println!("tuesday through the edge: trending named 127.66.6.0/24; invalidate matched {matched}: {done}");
    let after = records(&stack).await;
    for r in &after {
        if r.network == "127.66.6.0/24" {
            assert_eq!(r.status, Status::Invalidated, "an attacker record left");
        } else {
            assert_eq!(
                r.status,
                Status::Confirmed,
                "a legitimate signature was touched"
            );
        }
    }
    wait_count(&stack, LEGIT as u64).await;
    let log = stack.log_agrees_with_count(PETITION).await;
    println!(
        "tuesday through the edge: the table's log has {} entries, {} counted, uncounted {:?}, count {}",
        log.entries, log.counted, log.uncounted, log.count
    );
}

/// One junk request of kind `k` through the edge from `client`, kind 5 replaying the captcha
/// answer `spent`; returns the status.
async fn junk(
    stack: &EdgeStack,
    client: &reqwest::Client,
    k: usize,
    spent: &str,
) -> anyhow::Result<u16> {
    let j = cahier_tests::attack::junk(k, PETITION, spent, &json!({ "postcode": "69001" }));
    let res = theme_client::post(
        client,
        &stack.edge.url(&j.path),
        &stack.edge.base,
        j.content_type,
        String::from_utf8(j.body)?,
    )
    .send()
    .await?;
    Ok(res.status().as_u16())
}

/// Thursday through the edge: a flood of junk and unsolvable captchas from as many viewers as
/// requests, ordinary people signing inside it. The people are all counted; the junk wrote
/// nothing and mailed nobody.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thursday_flood_through_the_edge() {
    const JUNK: usize = 600;
    const LEGIT: usize = 30;
    const KINDS: usize = cahier_tests::attack::JUNK_KINDS;
    let _slot = STACKS.acquire().await.unwrap();
    let stack = Arc::new(EdgeStack::start(ApiAuth::AwsIam).await.unwrap());
    let by_kind: Arc<Vec<Mutex<Vec<u16>>>> =
        Arc::new((0..KINDS).map(|_| Mutex::new(Vec::new())).collect());
    let legit_latency = Arc::new(Mutex::new(Vec::<Duration>::new()));
    // The first signer's captcha answer, which the flood then replays.
    let spent: Arc<str> = stack.api().captcha().await.into();
    let first = client_from(spread_address(49_999)).unwrap();
    let email = "premiere@example.net";
    let signer = Signer::new("Une Personne", email);
    assert_eq!(
        sign_with(&stack, &first, &signer, &spent).await.unwrap(),
        202
    );
    assert_eq!(
        confirm(&stack, &first, &stack.confirm_token(email))
            .await
            .unwrap(),
        200
    );
    let every = JUNK / LEGIT + 1;
    let total = JUNK + LEGIT;
    let report = {
        let (stack, by_kind, lat) = (stack.clone(), by_kind.clone(), legit_latency.clone());
        run_paced(total, 8, Some(100.0), Duration::from_secs(120), move |i| {
            let (stack, by_kind, lat, spent) =
                (stack.clone(), by_kind.clone(), lat.clone(), spent.clone());
            async move {
                let client = client_from(spread_address(50_000 + i))?;
                if i % every == every - 1 {
                    let n = i / every;
                    let email = format!("legit{n}@commune{n}.example");
                    let t = Instant::now();
                    let status =
                        sign(&stack, &client, &Signer::new("Une Personne", &email)).await?;
                    lat.lock().unwrap().push(t.elapsed());
                    anyhow::ensure!(status == 202, "legitimate signer {n} got {status}");
                    let c = confirm(&stack, &client, &stack.confirm_token(&email)).await?;
                    anyhow::ensure!(c == 200, "legitimate signer {n} confirm got {c}");
                } else {
                    let k = i % KINDS;
                    let status = junk(&stack, &client, k, &spent).await?;
                    by_kind[k].lock().unwrap().push(status);
                }
                Ok(())
            }
        })
        .await
    };
    let legit = legit_latency.lock().unwrap().len();
    let mut lat = legit_latency.lock().unwrap().clone();
    lat.sort();
    let statuses: Vec<String> = by_kind
        .iter()
        .enumerate()
        .map(|(k, v)| {
            let v = v.lock().unwrap();
            let mut s = v.clone();
            s.sort();
            s.dedup();
            format!("kind {k}: {} x {s:?}", v.len())
        })
        .collect();
    let all = records(&stack).await;
    let mails = stack.mails().unwrap().len();
    println!(
        "thursday through the edge: {total} requests from {total} viewers ({} junk, {legit} legitimate, after one who signed first) {}; \
         junk answers {statuses:?}; stored {} (by status {:?}); mails {mails}; legitimate sign p50 {:.0} ms, max {:.0} ms",
        total - legit,
        report.summary(),
        all.len(),
        by_status(&all),
        lat[lat.len() / 2].as_secs_f64() * 1e3,
        lat.last().unwrap().as_secs_f64() * 1e3,
    );
    assert_eq!(
        report.failed + report.timed_out + report.not_started,
        0,
        "{}",
        report.summary()
    );
    for k in 0..KINDS {
        // What the viewer gets: the function's status, unless a custom error response of the
        // distribution replaces it.
        let status = cahier_tests::attack::junk(k, PETITION, "", &Value::Null).expected;
        let expected = stack
            .edge
            .dist
            .error_response(status)
            .and_then(|e| e.response_code)
            .unwrap_or(status);
        assert!(
            by_kind[k].lock().unwrap().iter().all(|s| *s == expected),
            "junk kind {k} (expected {expected}): {statuses:?}"
        );
    }
    // The first signer and the ones inside the flood, nothing else.
    assert_eq!(all.len(), LEGIT + 1, "junk wrote nothing");
    assert!(all.iter().all(|r| r.status == Status::Confirmed));
    assert!(all.iter().all(|r| r.network != edge_network()));
    assert_eq!(mails, LEGIT + 1, "junk mailed nobody");
    wait_count(&stack, LEGIT as u64 + 1).await;
    let log = stack.log_agrees_with_count(PETITION).await;
    assert_eq!(log.counted, LEGIT as u64 + 1, "the junk left no log entry");
    println!(
        "thursday through the edge: the table's log has {} entries, count {}",
        log.entries, log.count
    );
}

/// Saturday through the edge: deputies' and senators' real addresses, each from its own viewer.
/// All are held for review, none counted, the mail per domain bounded; a scanner's GET on a
/// confirm link changes nothing; owners who confirm stay held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saturday_protected_addresses_through_the_edge() {
    const DEPUTIES: usize = 60;
    const SENATORS: usize = 40;
    let _slot = STACKS.acquire().await.unwrap();
    let stack = Arc::new(EdgeStack::start(ApiAuth::AwsIam).await.unwrap());
    let email_of = |i: usize| {
        if i < DEPUTIES {
            format!("depute{i}@assemblee-nationale.fr")
        } else {
            format!("senateur{i}@senat.fr")
        }
    };
    // The mail budget is per domain and clock hour: a run across an hour boundary has two.
    let first_hour = cahier_function::now() / 3600;
    let report = {
        let stack = stack.clone();
        run_paced(
            DEPUTIES + SENATORS,
            4,
            None,
            Duration::from_secs(120),
            move |i| {
                let stack = stack.clone();
                let email = email_of(i);
                async move {
                    let client = client_from(spread_address(20_000 + i))?;
                    let status =
                        sign(&stack, &client, &Signer::new(&format!("Élu {i}"), &email)).await?;
                    anyhow::ensure!(status == 202, "{email}: {status}");
                    Ok(())
                }
            },
        )
        .await
    };
    assert_eq!(report.ok, DEPUTIES + SENATORS, "{}", report.summary());

    let http = reqwest::Client::new();
    let link = stack.confirm_token(&email_of(0));
    let res = http
        .get(stack.edge.url(&format!("/api/confirm?t={link}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 405, "a GET confirms nothing");
    for i in [0, 1, DEPUTIES] {
        assert_eq!(
            confirm(&stack, &http, &stack.confirm_token(&email_of(i)))
                .await
                .unwrap(),
            200
        );
    }
    let all = records(&stack).await;
    let statuses = by_status(&all);
    let mails = stack.mails().unwrap().len();
    let mail_budget = budgets(&stack).mail_per_domain.limit as usize;
    println!(
        "saturday through the edge: {} protected signatures ({DEPUTIES} + {SENATORS}) {}; by status {statuses:?}; \
         mails {mails} (budget {mail_budget} per domain and hour)",
        DEPUTIES + SENATORS,
        report.summary()
    );
    assert_eq!(statuses.get("confirmed_held"), Some(&3), "{statuses:?}");
    assert_eq!(
        statuses.get("held").copied().unwrap_or(0) + 3,
        DEPUTIES + SENATORS,
        "{statuses:?}"
    );
    assert!(all
        .iter()
        .filter(|r| r.status == Status::Held)
        .all(|r| r.hold_reason.as_deref() == Some("protected domain")));
    let networks: std::collections::BTreeSet<&str> =
        all.iter().map(|r| r.network.as_str()).collect();
    assert_eq!(
        networks.len(),
        DEPUTIES + SENATORS,
        "one network per viewer"
    );
    let windows = (cahier_function::now() / 3600 - first_hour + 1) as usize;
    assert!(
        mails > 0 && mails <= 2 * mail_budget * windows,
        "{mails} mails for 2 domains over {windows} hour window(s)"
    );
    wait_count(&stack, 0).await;
    let log = stack.log_agrees_with_count(PETITION).await;
    assert_eq!(log.entries, 0, "held signatures never enter the log");
    println!("saturday through the edge: the table's log is empty, count 0");
}
