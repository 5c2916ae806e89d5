//! Shared harness for the end-to-end tests: spawning the real binaries and the real helper
//! servers (moto, SMTP sink), each stopped when its guard drops.

pub mod admin_conformance;
pub mod attack;
pub mod browser;
pub mod conformance;
pub mod dkim;
pub mod edge;
pub mod fixture;
pub mod flow;
pub mod lambda;
pub mod log_folder;
pub mod moto;
pub mod outbox;
pub mod regions_conformance;
pub mod serve;
pub mod server;
pub mod site;
pub mod smtp;

/// A free TCP port on 127.0.0.1 (bound then released; the caller binds it right after).
///
/// Ports come from below the kernel's ephemeral range (32768 and up on Linux), so that the
/// window between this check and the caller's bind cannot be taken by a client socket or by a
/// program asking the kernel for port 0 (Chromium does, for DevTools). A counter shared by the
/// process never hands the same port out twice, and the start depends on the process id, so two
/// test binaries in a row do not reuse each other's ports either.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7919) % SPAN,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..SPAN {
        let port = (LOW + NEXT.fetch_add(1, Ordering::SeqCst) % SPAN) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port between {LOW} and {}", LOW + SPAN)
}

/// The workspace root (parent of this crate).
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}
