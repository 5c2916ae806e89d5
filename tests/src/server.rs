//! The real `cahier-function` binary on a free loopback port, killed when the guard drops.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Path of the `cahier-function` binary, built once per test process (same profile).
pub fn binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        // target/<profile>/deps/<test> → target/<profile>
        let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>").to_path_buf();
        let release = profile_dir.ends_with("release");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet", "-p", "cahier-function", "--bin", "cahier-function"])
            .current_dir(crate::repo_root());
        if release {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("running cargo build for cahier-function");
        assert!(status.success(), "building cahier-function failed");
        let bin = profile_dir.join("cahier-function");
        assert!(bin.exists(), "{} missing after the build", bin.display());
        bin
    })
    .clone()
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Working folder (manifest, database, outbox, log).
    pub dir: PathBuf,
    pub port: u16,
    pub manifest: PathBuf,
    pub store: String,
    pub mailer: String,
    pub env: Vec<(String, String)>,
    pub args: Vec<String>,
}

pub struct FunctionServer {
    child: Option<Child>,
    pub config: ServerConfig,
    pub base: String,
}

impl FunctionServer {
    /// Starts the binary and waits (at most 20 s) until `/api/health` answers.
    pub fn start(config: ServerConfig) -> FunctionServer {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(config.dir.join("server.log"))
            .expect("server log");
        let mut cmd = Command::new(binary());
        cmd.arg("--listen")
            .arg(format!("127.0.0.1:{}", config.port))
            .arg("--manifest")
            .arg(&config.manifest)
            .arg("--store")
            .arg(&config.store)
            .arg("--mailer")
            .arg(&config.mailer)
            .args(&config.args)
            .current_dir(&config.dir)
            .env_remove("AWS_LAMBDA_RUNTIME_API")
            .env_remove("CAHIER_SECRETS_FILE")
            .env("RUST_LOG", "warn")
            .envs(config.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log);
        let child = cmd.spawn().expect("spawning cahier-function");
        let base = format!("http://127.0.0.1:{}", config.port);
        let mut server = FunctionServer { child: Some(child), config, base };
        server.wait_ready();
        server
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let addr = format!("127.0.0.1:{}", self.config.port);
        while Instant::now() < deadline {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("cahier-function exited with {status}; log:\n{}", self.log());
            }
            if std::net::TcpStream::connect(&addr).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("cahier-function did not listen on {addr} within 20 s; log:\n{}", self.log());
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.config.dir.join("server.log")).unwrap_or_default()
    }

    /// SIGKILL, no chance to flush anything.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts again with the same configuration (after `kill9`).
    pub fn restart(&mut self) {
        self.kill9();
        let again = FunctionServer::start(self.config.clone());
        *self = again;
    }
}

impl Drop for FunctionServer {
    fn drop(&mut self) {
        self.kill9();
    }
}
