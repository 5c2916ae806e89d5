//! Shared harness for the end-to-end tests: spawning the real binaries and the real helper
//! servers (moto, SMTP sink), each stopped when its guard drops.

pub mod admin_conformance;
pub mod attack;
pub mod browser;
pub mod conformance;
pub mod fixture;
pub mod flow;
pub mod lambda;
pub mod moto;
pub mod outbox;
pub mod serve;
pub mod server;
pub mod site;
pub mod smtp;

/// A free TCP port on 127.0.0.1 (bound then released; the caller binds it right after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

/// The workspace root (parent of this crate).
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}
