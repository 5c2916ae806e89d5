//! A real moto server (DynamoDB, SES, … from PyPI's `moto[server]`) on a free loopback port,
//! killed when the guard drops. The tests fail, never skip, when it cannot start.

use anyhow::{bail, Context};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The moto server binary: `$CAHIER_MOTO_SERVER`, else `<repo>/.venv/bin/moto_server`.
pub fn moto_server_path() -> PathBuf {
    std::env::var_os("CAHIER_MOTO_SERVER").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(".venv").join("bin").join("moto_server")
    })
}

/// A running moto server.
pub struct Moto {
    child: Child,
    addr: SocketAddr,
}

impl Moto {
    /// Starts moto on a free port and waits (at most 30 s) until it answers HTTP.
    pub fn start() -> anyhow::Result<Moto> {
        let bin = moto_server_path();
        if !bin.exists() {
            bail!(
                "moto_server not found at {}: create the venv first \
                 (python3 -m venv .venv && .venv/bin/pip install 'moto[server]')",
                bin.display()
            );
        }
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port();
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("while starting {}", bin.display()))?;
        let mut moto = Moto { child, addr };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = moto.child.try_wait() {
                bail!("moto_server exited at start ({status})");
            }
            if moto.get("/moto-api/").is_ok() {
                return Ok(moto);
            }
            if Instant::now() > deadline {
                bail!("moto_server did not answer on {addr} within 30 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `http://127.0.0.1:PORT`, for the SDK's `endpoint_url` and the `?endpoint=` settings.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A plain HTTP/1.0 GET on moto (its `/moto-api/` inspection routes); returns the body if
    /// the status is 200.
    pub fn get(&self, path: &str) -> anyhow::Result<String> {
        let mut stream = TcpStream::connect_timeout(&self.addr, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(stream, "GET {path} HTTP/1.0\r\nHost: {}\r\n\r\n", self.addr)?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        let (head, body) = response.split_once("\r\n\r\n").context("malformed HTTP response from moto")?;
        let status = head.lines().next().unwrap_or_default();
        if !status.contains(" 200") {
            bail!("GET {path} on moto: {status}");
        }
        Ok(body.to_string())
    }

    /// SDK configuration for this server: region us-east-1 and dummy static credentials, set on
    /// the config only (the test process's environment is left alone).
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(self.endpoint())
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "testing", "testing", None, None, "moto",
            ))
            .load()
            .await
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A table name no other test uses.
pub fn fresh_table(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
    format!("{prefix}-{}-{nanos}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}
