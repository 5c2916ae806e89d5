//! The standalone HTTP server (`cahier-function --listen`, `cahier serve`).
//!
//! `axum::serve` with one difference that matters for signing: hyper by default drops a request
//! the moment it reads the end of the connection, so a client that sends its signature and hangs
//! up (a closed tab, a proxy giving up) could lose it before the handler even reads the body.
//! Here HTTP/1 half-closed connections are served to the end, and the sign handler, which runs
//! as its own task, writes and mails whatever happens to the socket.
//!
//! No client can hold the server's resources for long ([`ServerLimits`]): the headers must
//! arrive within [`HEADER_READ_TIMEOUT`], the body within [`BODY_READ_TIMEOUT`] (it is read here,
//! whole and bounded, before the router sees the request; a trickled body gets a 408 and the
//! connection is closed), and at most [`ServerLimits::max_connections`] connections are open at
//! once (`CAHIER_MAX_CONNECTIONS`): the next ones wait in the kernel's backlog until one ends.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, HeaderValue, Request};
use axum::response::{IntoResponse, Response};
use axum::Router;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::problem::Problem;

/// A client gets this long to send its request headers (slow-loris connections are closed).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// And this long, once the headers are in, to send the body.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections open at once by default: far more than one instance serves (each signature is a
/// few milliseconds), far fewer than the usual limit of 1,024 open files per process.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;

/// Bodies buffered by the server; the API's own limit (8 KiB) is checked by its handlers.
pub const MAX_BUFFERED_BODY: usize = 64 * 1024;

/// What one client may hold of the standalone server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub max_body: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_read_timeout: HEADER_READ_TIMEOUT,
            body_read_timeout: BODY_READ_TIMEOUT,
            max_body: MAX_BUFFERED_BODY,
        }
    }
}

impl ServerLimits {
    /// The defaults, with `CAHIER_MAX_CONNECTIONS` (a positive integer) if set.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(&|k| std::env::var(k).ok())
    }

    pub fn from_lookup(env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let mut limits = ServerLimits::default();
        if let Some(v) = env("CAHIER_MAX_CONNECTIONS").filter(|v| !v.trim().is_empty()) {
            limits.max_connections = v
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    anyhow::anyhow!("CAHIER_MAX_CONNECTIONS must be a positive integer, not {v:?}")
                })?;
        }
        Ok(limits)
    }
}

/// How long a graceful shutdown waits for requests in flight.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` until `shutdown` completes, then lets requests in flight end
/// (up to [`SHUTDOWN_GRACE`]). Handlers see the peer as `ConnectInfo<SocketAddr>`. Limits:
/// [`ServerLimits::from_env`].
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let limits = ServerLimits::from_env()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{e:#}")))?;
    serve_with(listener, router, shutdown, limits).await
}

/// [`serve`] with the limits given.
pub async fn serve_with(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()>,
    limits: ServerLimits,
) -> std::io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.half_close(true)
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    tokio::pin!(shutdown);
    loop {
        // A free slot first: at the cap, new connections wait in the backlog, not in memory.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = tower::service_fn(move |req: Request<Incoming>| {
            let router = router.clone();
            async move {
                let (mut parts, body) = req.into_parts();
                parts.extensions.insert(ConnectInfo(peer));
                let body = match read_body(body, &parts.headers, &limits).await {
                    Ok(body) => body,
                    Err(answer) => return Ok::<_, Infallible>(answer),
                };
                router.oneshot(Request::from_parts(parts, body)).await
            }
        });
        let conn = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after {SHUTDOWN_GRACE:?}; stopping anyway");
    }
    Ok(())
}

/// The whole body within the deadline and the size limit, or the answer to give instead (the
/// connection is then closed: what is left of the body is not worth reading).
async fn read_body(
    body: Incoming,
    headers: &HeaderMap,
    limits: &ServerLimits,
) -> Result<Body, Response> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_body as u64) {
        return Err(closing(Problem::too_large()));
    }
    // A GET's empty body: nothing to wait for.
    if hyper::body::Body::is_end_stream(&body) {
        return Ok(Body::empty());
    }
    let read = Limited::new(body, limits.max_body).collect();
    match tokio::time::timeout(limits.body_read_timeout, read).await {
        Ok(Ok(collected)) => Ok(Body::from(collected.to_bytes())),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(closing(Problem::too_large()))
        }
        Ok(Err(_)) => Err(closing(Problem::bad_request(
            "The request body was cut off.",
        ))),
        Err(_) => Err(closing(Problem::request_timeout())),
    }
}

fn closing(problem: Problem) -> Response {
    let mut res = problem.into_response();
    res.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    res
}

/// Errors of one connection (reset before accept) are not the listener's; running out of file
/// descriptors is, and retrying at once would spin.
async fn accept_error(e: std::io::Error) {
    use std::io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted
    ) {
        return;
    }
    tracing::error!(error = %e, "accept failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    async fn start(
        router: Router,
    ) -> (
        SocketAddr,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<std::io::Result<()>>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, router, async {
            let _ = stopped.await;
        }));
        (addr, stop, task)
    }

    #[tokio::test]
    async fn a_half_closed_request_runs_its_handler_to_the_end() {
        let seen = Arc::new(Mutex::new(None::<String>));
        let record = seen.clone();
        let router = Router::new().route(
            "/sign",
            axum::routing::post(move |body: String| async move {
                // Long enough for hyper to read the end of the connection first.
                tokio::time::sleep(Duration::from_millis(200)).await;
                *record.lock().unwrap() = Some(body);
                "ok"
            }),
        );
        let (addr, _stop, _task) = start(router).await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"POST /sign HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
            .await
            .unwrap();
        client.shutdown().await.unwrap();
        drop(client);
        for _ in 0..100 {
            if seen.lock().unwrap().is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(seen.lock().unwrap().as_deref(), Some("hello"));
    }

    #[tokio::test]
    async fn shutdown_lets_requests_in_flight_finish_and_names_the_peer() {
        let router = Router::new().route(
            "/slow",
            axum::routing::get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                peer.to_string()
            }),
        );
        let (addr, stop, task) = start(router).await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        let me = client.local_addr().unwrap();
        client
            .write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        stop.send(()).unwrap();
        let mut response = String::new();
        client.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.ends_with(&me.to_string()), "{response}");
        task.await.unwrap().unwrap();
        assert!(TcpStream::connect(addr).await.is_err(), "still listening");
    }

    async fn start_with(router: Router, limits: ServerLimits) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve_with(listener, router, std::future::pending(), limits));
        addr
    }

    fn echo() -> Router {
        Router::new().route(
            "/sign",
            axum::routing::post(|body: String| async move { body }),
        )
    }

    #[tokio::test]
    async fn a_trickled_body_gets_a_408_and_the_connection_closes() {
        let limits = ServerLimits {
            body_read_timeout: Duration::from_millis(400),
            ..ServerLimits::default()
        };
        let addr = start_with(echo(), limits).await;
        let client = TcpStream::connect(addr).await.unwrap();
        let (mut read, mut write) = client.into_split();
        write
            .write_all(b"POST /sign HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
            .await
            .unwrap();
        let started = std::time::Instant::now();
        // One byte every 100 ms: the body would take 10 s; the answer is read meanwhile.
        tokio::spawn(async move {
            for _ in 0..100 {
                if write.write_all(b"x").await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        let mut response = Vec::new();
        let mut buf = [0u8; 1024];
        let closed = tokio::time::timeout(Duration::from_secs(3), async {
            loop {
                match read.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => response.extend_from_slice(&buf[..n]),
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "the server closes the connection");
        let response = String::from_utf8_lossy(&response);
        assert!(response.starts_with("HTTP/1.1 408"), "{response}");
        assert!(response.contains("application/problem+json"), "{response}");
        assert!(started.elapsed() < Duration::from_secs(3));

        // A whole body in time is served as before.
        let mut client = TcpStream::connect(addr).await.unwrap();
        client
            .write_all(
                b"POST /sign HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
            )
            .await
            .unwrap();
        let mut response = String::new();
        client.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.ends_with("hello"), "{response}");
    }

    #[tokio::test]
    async fn a_body_over_the_buffer_is_refused_unread() {
        let limits = ServerLimits {
            max_body: 16,
            ..ServerLimits::default()
        };
        let addr = start_with(echo(), limits).await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"POST /sign HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
            .await
            .unwrap();
        let mut response = Vec::new();
        tokio::time::timeout(Duration::from_secs(3), client.read_to_end(&mut response))
            .await
            .expect("answered at once")
            .unwrap_or_default();
        let response = String::from_utf8_lossy(&response);
        assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    }

    #[tokio::test]
    async fn connections_over_the_cap_wait_until_one_ends() {
        let limits = ServerLimits {
            max_connections: 2,
            ..ServerLimits::default()
        };
        let router = Router::new().route("/", axum::routing::get(|| async { "ok" }));
        let addr = start_with(router, limits).await;
        // Two clients hold their connections open without sending a request.
        let first = TcpStream::connect(addr).await.unwrap();
        let _second = TcpStream::connect(addr).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut third = TcpStream::connect(addr).await.unwrap(); // the kernel's backlog
        third
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut response = String::new();
        let early = tokio::time::timeout(
            Duration::from_millis(500),
            third.read_to_string(&mut response),
        )
        .await;
        assert!(early.is_err(), "served over the cap: {response}");
        drop(first);
        tokio::time::timeout(Duration::from_secs(3), third.read_to_string(&mut response))
            .await
            .expect("served once a slot is free")
            .unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    }

    #[test]
    fn the_cap_is_configurable_and_checked() {
        let env =
            |v: &'static str| move |k: &str| (k == "CAHIER_MAX_CONNECTIONS").then(|| v.into());
        assert_eq!(
            ServerLimits::from_lookup(&|_| None).unwrap(),
            ServerLimits::default()
        );
        assert_eq!(
            ServerLimits::from_lookup(&env("64"))
                .unwrap()
                .max_connections,
            64
        );
        for bad in ["0", "-1", "many"] {
            let err = ServerLimits::from_lookup(&env(bad))
                .unwrap_err()
                .to_string();
            assert!(err.contains("CAHIER_MAX_CONNECTIONS"), "{err}");
        }
    }
}
