//! Self-test of the attack-replay harness: clients bound to many loopback sources really reach a
//! server on 127.0.0.1 from those sources, as distinct peers.

use axum::extract::{ConnectInfo, State};
use axum::routing::get;
use axum::Router;
use cahier_tests::attack::{clients_in_prefix, clients_spread, run_bounded};
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Seen = Arc<Mutex<Vec<IpAddr>>>;

/// A server on a free port of 127.0.0.1 that records each request's peer address; stopped
/// when dropped.
struct PeerServer {
    url: String,
    seen: Seen,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for PeerServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn peer(State(seen): State<Seen>, ConnectInfo(addr): ConnectInfo<SocketAddr>) -> String {
    seen.lock().unwrap().push(addr.ip());
    addr.ip().to_string()
}

async fn start() -> PeerServer {
    let seen: Seen = Arc::default();
    let app = Router::new()
        .route("/peer", get(peer))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/peer", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    PeerServer { url, seen, task }
}

fn slash24(ip: &IpAddr) -> String {
    ip.to_string().rsplit_once('.').unwrap().0.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_eighteen_sources_in_one_slash_24() {
    let server = start().await;
    let clients = Arc::new(clients_in_prefix([127, 66, 77], 218).unwrap());
    let url = server.url.clone();
    let report = run_bounded(clients.len(), 32, Duration::from_secs(60), |i| {
        let (clients, url) = (clients.clone(), url.clone());
        async move {
            let (ip, client) = &clients[i];
            let body = client
                .get(&url)
                .send()
                .await?
                .error_for_status()?
                .text()
                .await?;
            anyhow::ensure!(
                body == ip.to_string(),
                "server saw {body}, client bound {ip}"
            );
            Ok(())
        }
    })
    .await;
    println!("218 sources in 127.66.77.0/24: {}", report.summary());
    assert_eq!(report.ok, 218, "{:?}", report.errors);

    let seen: HashSet<IpAddr> = server.seen.lock().unwrap().iter().copied().collect();
    let expected: HashSet<IpAddr> = clients.iter().map(|(ip, _)| *ip).collect();
    assert_eq!(seen, expected);
    assert!(seen.iter().all(|ip| slash24(ip) == "127.66.77"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_thousand_spread_sources() {
    let server = start().await;
    let clients = Arc::new(clients_spread(4_000).unwrap());
    let url = server.url.clone();
    let report = run_bounded(clients.len(), 64, Duration::from_secs(120), |i| {
        let (clients, url) = (clients.clone(), url.clone());
        async move {
            let (_, client) = &clients[i];
            client.get(&url).send().await?.error_for_status()?;
            Ok(())
        }
    })
    .await;
    println!("4,000 spread sources: {}", report.summary());
    assert_eq!(report.ok, 4_000, "{:?}", report.errors);

    let seen = server.seen.lock().unwrap().clone();
    let distinct: HashSet<IpAddr> = seen.iter().copied().collect();
    let nets: HashSet<String> = distinct.iter().map(slash24).collect();
    println!(
        "distinct sources {}, distinct /24s {}",
        distinct.len(),
        nets.len()
    );
    assert_eq!(distinct.len(), 4_000);
    assert_eq!(nets.len(), 4_000, "one /24 per spread source");
    assert!(distinct.iter().all(|ip| ip.is_loopback()));
}
