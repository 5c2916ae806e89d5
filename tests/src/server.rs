//! The real `cahier-function` binary on a free loopback port, killed when the guard drops.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Path of the `cahier-function` binary, built once per test process (same profile).
pub fn binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| cargo_bin("cahier-function")).clone()
}

/// Path of the `cahier` CLI binary, built once per test process (same profile).
pub fn cahier_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| cargo_bin("cahier")).clone()
}

/// Builds the workspace's binaries exactly as `cargo test --workspace` (what scripts/test.sh
/// runs) builds them, and returns `target/<profile>/<bin>`. The tests crate cannot depend on
/// binaries, so it asks cargo, with the same command as the test run (a no-op when it is up to
/// date): `cargo build -p PACKAGE` would unify the dependencies' features differently, rebuild
/// most of the tree (minutes on 2 cores, on the first test of every run) and leave two builds
/// of the binary taking turns. The features include `dev` (the development captcha), which
/// `cahier` and the tests turn on.
fn cargo_bin(bin: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> → target/<profile>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_path_buf();
    let release = profile_dir.ends_with("release");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut cmd = Command::new(cargo);
    cmd.args(["test", "--workspace", "--no-run", "--quiet"])
        .current_dir(crate::repo_root());
    // The variables cargo sets for the running test would change the build's fingerprint.
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().to_string();
        if (k.starts_with("CARGO_") && k != "CARGO_HOME" && k != "CARGO_TARGET_DIR")
            || k.starts_with("RUSTC")
        {
            cmd.env_remove(k);
        }
    }
    if release {
        cmd.arg("--release");
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("running cargo test --no-run for {bin}: {e}"));
    assert!(status.success(), "building {bin} failed");
    let path = profile_dir.join(bin);
    assert!(path.exists(), "{} missing after the build", path.display());
    path
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
    /// The binary's command line for `config`, not started (a test that expects it to refuse
    /// to start runs it to the end itself).
    pub fn command(config: &ServerConfig) -> Command {
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
            .envs(config.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        cmd
    }

    /// Starts the binary and waits (at most 20 s) until `/api/health` answers.
    pub fn start(config: ServerConfig) -> FunctionServer {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(config.dir.join("server.log"))
            .expect("server log");
        let child = Self::command(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("spawning cahier-function");
        let base = format!("http://127.0.0.1:{}", config.port);
        let mut server = FunctionServer {
            child: Some(child),
            config,
            base,
        };
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
        panic!(
            "cahier-function did not listen on {addr} within 20 s; log:\n{}",
            self.log()
        );
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

    /// SIGTERM, as systemd or `docker stop` send it; the exit status, if it exits within 15 s.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
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

/// A running binary with the fixture manifest (site and API on the same origin), fresh secrets,
/// SQLite in `dir/signatures.sqlite3`, outbox in `dir/outbox` (unless `mailer` is given).
pub struct Fixture {
    pub server: FunctionServer,
    pub secrets: cahier_function::secrets::Secrets,
    pub identity: String,
    pub db: PathBuf,
    pub outbox: PathBuf,
}

impl Fixture {
    pub fn start(dir: &Path, mailer: Option<String>, args: &[&str]) -> Fixture {
        let (secrets, identity) = crate::fixture::secrets();
        let port = crate::free_port();
        let base = format!("http://127.0.0.1:{port}");
        let manifest = crate::fixture::manifest(&base, secrets.age_recipient.as_deref().unwrap());
        let manifest_path = dir.join("manifest.json");
        std::fs::write(
            &manifest_path,
            serde_json::to_vec_pretty(&manifest).unwrap(),
        )
        .unwrap();
        let db = dir.join("signatures.sqlite3");
        let outbox = dir.join("outbox");
        let server = FunctionServer::start(ServerConfig {
            dir: dir.to_path_buf(),
            port,
            manifest: manifest_path,
            store: format!("sqlite:{}", db.display()),
            mailer: mailer.unwrap_or_else(|| format!("outbox:{}", outbox.display())),
            env: crate::fixture::secrets_env(&secrets),
            args: args.iter().map(|s| s.to_string()).collect(),
        });
        Fixture {
            server,
            secrets,
            identity,
            db,
            outbox,
        }
    }

    /// The confirm or erase token the server would mail for `canonical_email` (the test knows
    /// the secrets, so it can skip reading mails under load).
    pub fn token_for(
        &self,
        kind: cahier_function::token::TokenKind,
        canonical_email: &str,
        expires_at: i64,
    ) -> String {
        let hasher = cahier_function::crypto::Hasher::new(&self.secrets.pepper).unwrap();
        let key = cahier_function::token::TokenKey::new(&self.secrets.token_key).unwrap();
        key.issue(&cahier_function::token::TokenClaims {
            kind,
            petition: crate::fixture::SLUG.to_string(),
            email_hash: hasher.email(canonical_email),
            expires_at,
        })
    }
}
