//! A real SMTP server on loopback: Python's aiosmtpd from the test virtualenv, storing what it
//! receives in a maildir. The venv is `$CAHIER_VENV` or `<repo>/.venv` (created by
//! `scripts/test.sh`); a missing venv fails the test with instructions.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct SmtpSink {
    child: Child,
    pub port: u16,
    pub maildir: tempfile::TempDir,
}

/// The venv's Python, or a clear failure.
pub fn venv_python() -> PathBuf {
    let venv = std::env::var_os("CAHIER_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::repo_root().join(".venv"));
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "no Python virtualenv at {} (set CAHIER_VENV or run: python3 -m venv .venv && .venv/bin/pip install aiosmtpd)",
        venv.display()
    );
    python
}

impl SmtpSink {
    pub fn start() -> SmtpSink {
        let python = venv_python();
        let maildir = tempfile::tempdir().expect("maildir");
        let port = crate::free_port();
        let child = Command::new(&python)
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir.path().join("mail"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning aiosmtpd");
        let mut sink = SmtpSink {
            child,
            port,
            maildir,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            if let Ok(Some(status)) = sink.child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = sink.child.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                panic!(
                    "aiosmtpd exited with {status} (is aiosmtpd installed in the venv?):\n{err}"
                );
            }
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not listen within 15 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        sink
    }

    /// Mails received so far.
    pub fn mails(&self) -> Vec<crate::outbox::ReadMail> {
        crate::outbox::read_dir(&self.maildir.path().join("mail"))
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
