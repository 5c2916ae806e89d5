//! `cahier serve` on a copy of the example site, on a free loopback port, killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Copies the example site (configuration, content, theme) into `dest`.
pub fn copy_example_site(dest: &Path) {
    let root = crate::repo_root();
    std::fs::copy(root.join("cahier.toml"), dest.join("cahier.toml")).expect("copy cahier.toml");
    for dir in ["content", "themes"] {
        copy_dir(&root.join(dir), &dest.join(dir));
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create folder");
    for entry in std::fs::read_dir(from).expect("read folder") {
        let entry = entry.expect("folder entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

pub struct CahierServe {
    child: Child,
    log: PathBuf,
    pub root: PathBuf,
    pub base: String,
}

impl CahierServe {
    /// Starts `cahier --root <root> serve --port <free>` and waits (at most 60 s: the first
    /// build renders the Open Graph cards) until it answers.
    pub fn start(root: &Path) -> CahierServe {
        CahierServe::start_with(root, &[])
    }

    /// [`CahierServe::start`] with more arguments to `serve` (`--log-interval 0.2`).
    pub fn start_with(root: &Path, extra: &[&str]) -> CahierServe {
        let port = crate::free_port();
        let log = root.with_extension("serve.log");
        let out = std::fs::File::create(&log).expect("serve log");
        let child = Command::new(crate::server::cahier_binary())
            .arg("--root")
            .arg(root)
            .args(["serve", "--port", &port.to_string()])
            .args(extra)
            .env("RUST_LOG", "warn")
            .env_remove("CAHIER_SECRETS_FILE")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log handle"))
            .stderr(out)
            .spawn()
            .expect("spawning cahier serve");
        let mut serve = CahierServe {
            child,
            log,
            root: root.to_path_buf(),
            base: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = serve.child.try_wait() {
                panic!("cahier serve exited with {status}:\n{}", serve.log());
            }
            if serve.log().contains("Serving http://")
                && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            {
                return serve;
            }
            assert!(
                Instant::now() < deadline,
                "cahier serve not ready within 60 s:\n{}",
                serve.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Everything it printed so far (stdout and stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (bounded) until the log contains `needle`; returns the log.
    pub fn wait_log(&self, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "{needle:?} not printed within {within:?}:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The outbox folder of the running site.
    pub fn outbox(&self) -> PathBuf {
        self.root.join(".cahier/outbox")
    }
}

impl Drop for CahierServe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
