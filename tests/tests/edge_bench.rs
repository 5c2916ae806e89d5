//! Benchmark (ignored by default; `bench/edge.sh` runs it): the same signatures through the
//! edge harness + Lambda runtime emulator and straight to the plain standalone server, one run,
//! same function binary, same manifest, DynamoDB and SES on one moto, same instance playing
//! hCaptcha. Prints the rates and their ratio.

use cahier_tests::attack::{client_from, spread_address};
use cahier_tests::edge::stack::{EdgeStack, PETITION};
use cahier_tests::edge::template::ApiAuth;
use cahier_tests::edge::theme_client::{self, Signer};
use cahier_tests::server::{FunctionServer, ServerConfig};
use std::collections::BTreeMap;
use std::time::Instant;

struct Run {
    statuses: BTreeMap<u16, usize>,
    secs: f64,
}

/// `n` signers from `n` networks, one after another, posting to `base` as the theme does.
async fn sign_many(stack: &EdgeStack, base: &str, origin: &str, first: usize, n: usize) -> Run {
    let mut statuses = BTreeMap::new();
    let mut busy = 0.0;
    for i in first..first + n {
        let client = client_from(spread_address(i)).unwrap();
        let signer = Signer::new("Banc Essai", &format!("banc{i}@reseau{i}.example"));
        let captcha = stack.api().captcha().await;
        let t = Instant::now();
        let status = theme_client::post(
            &client,
            &format!("{base}/api/petitions/{PETITION}/sign"),
            origin,
            "application/x-www-form-urlencoded;charset=UTF-8",
            signer.form_body(&captcha),
        )
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
        busy += t.elapsed().as_secs_f64();
        *statuses.entry(status).or_default() += 1;
    }
    Run {
        statuses,
        secs: busy,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: bench/edge.sh"]
async fn sign_through_the_edge_against_the_plain_server() {
    let n: usize = std::env::var("SIGNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    // Budgets out of the way: this measures the path, not the anti-fraud policy.
    let budgets = serde_json::json!({
        "per_address": [{"limit": 1000000, "window_secs": 60}],
        "per_network": [{"limit": 1000000, "window_secs": 60}],
        "per_petition": [{"limit": 100000000, "window_secs": 3600}],
    });
    let stack = EdgeStack::start_with(ApiAuth::AwsIam, Some(budgets))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = cahier_tests::free_port();
    let arg = |name: &str| {
        let i = stack.function_args.iter().position(|a| a == name).unwrap();
        stack.function_args[i + 1].clone()
    };
    let plain = FunctionServer::start(ServerConfig {
        dir: dir.path().to_path_buf(),
        port,
        manifest: stack.manifest_path.clone(),
        store: arg("--store").replace("cahier-edge", "cahier-plain"),
        mailer: arg("--mailer"),
        // Reached directly, as a self-hosted server: it sees each client's own address.
        env: stack
            .function_env
            .iter()
            .filter(|(k, _)| k != "CAHIER_EDGE_AUTH")
            .cloned()
            .chain([("CAHIER_EDGE_AUTH".to_string(), "none".to_string())])
            .collect(),
        args: Vec::new(),
    });
    println!("| round | path | signatures | statuses | busy s | signatures/s |");
    println!("|---|---|---|---|---|---|");
    let (mut edge_total, mut plain_total) = (0.0, 0.0);
    for round in 0..rounds {
        let first = 10_000 + round * 2 * n;
        let e = sign_many(&stack, &stack.edge.base, &stack.edge.base, first, n).await;
        let p = sign_many(&stack, &plain.base, &stack.edge.base, first + n, n).await;
        for (name, r) in [("edge + emulator", &e), ("plain server", &p)] {
            println!(
                "| {} | {name} | {n} | {:?} | {:.2} | {:.1} |",
                round + 1,
                r.statuses,
                r.secs,
                n as f64 / r.secs
            );
        }
        // Both paths must take every signature: a 429 would measure the limiter, not the path.
        assert_eq!(e.statuses.get(&202), Some(&n), "edge: {:?}", e.statuses);
        assert_eq!(p.statuses.get(&202), Some(&n), "plain: {:?}", p.statuses);
        edge_total += e.secs;
        plain_total += p.secs;
    }
    println!(
        "sign through edge + emulator vs plain server: {:.1} vs {:.1} signatures/s, edge/plain {:.2}",
        (rounds * n) as f64 / edge_total,
        (rounds * n) as f64 / plain_total,
        plain_total / edge_total
    );
}
