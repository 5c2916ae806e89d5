//! Findings of a verification run, for people (Display) and for programs (JSON).

use super::html::Script;
use serde::Serialize;
use std::fmt;

/// What is wrong with one file of the live site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Problem {
    /// 404 or 410.
    Missing {
        status: u16,
    },
    /// Any 3xx: the site (or a page) sends visitors elsewhere.
    Redirected {
        status: u16,
        location: String,
    },
    /// Another error status.
    Status {
        status: u16,
    },
    /// No answer: DNS, connection, TLS or timeout.
    Unreachable {
        error: String,
    },
    /// Served, but not the bytes that were built. `sha256` is absent when the body was cut
    /// off for being far larger than expected.
    Changed {
        expected_sha256: String,
        expected_bytes: u64,
        sha256: Option<String>,
        bytes: u64,
    },
    UnexpectedScript {
        script: Script,
    },
    /// The page's `<meta http-equiv="Content-Security-Policy">` differs (empty `found`: removed).
    CspMetaChanged {
        expected: Vec<String>,
        found: Vec<String>,
    },
    /// The `Content-Security-Policy` response header differs from `_headers`.
    CspHeaderChanged {
        expected: String,
        found: Option<String>,
    },
}

impl Problem {
    pub fn label(&self) -> &'static str {
        match self {
            Problem::Missing { .. } => "missing",
            Problem::Redirected { .. } => "redirected",
            Problem::Status { .. } => "error",
            Problem::Unreachable { .. } => "unreachable",
            Problem::Changed { .. } => "changed",
            Problem::UnexpectedScript { .. } => "script",
            Problem::CspMetaChanged { .. } => "csp-meta",
            Problem::CspHeaderChanged { .. } => "csp-header",
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Missing { status } => write!(f, "missing (HTTP {status})"),
            Problem::Redirected { status, location } => {
                write!(f, "redirected to {location} (HTTP {status})")
            }
            Problem::Status { status } => write!(f, "HTTP {status}"),
            Problem::Unreachable { error } => write!(f, "unreachable: {error}"),
            Problem::Changed {
                expected_sha256,
                expected_bytes,
                sha256,
                bytes,
            } => {
                match sha256 {
                    Some(h) => write!(f, "changed: {bytes} bytes, sha256 {}", &h[..16])?,
                    None => write!(f, "changed: over {bytes} bytes")?,
                }
                write!(
                    f,
                    " (built: {expected_bytes} bytes, sha256 {})",
                    &expected_sha256[..16.min(expected_sha256.len())]
                )
            }
            Problem::UnexpectedScript { script } => write!(f, "unexpected script: {script}"),
            Problem::CspMetaChanged { expected, found } if found.is_empty() => {
                write!(f, "CSP meta removed (built: {:?})", expected.join(" | "))
            }
            Problem::CspMetaChanged { expected, found } => write!(
                f,
                "CSP meta changed: {:?} (built: {:?})",
                found.join(" | "),
                expected.join(" | ")
            ),
            Problem::CspHeaderChanged {
                expected,
                found: None,
            } => write!(f, "CSP header missing (built: {expected:?})"),
            Problem::CspHeaderChanged {
                expected,
                found: Some(v),
            } => write!(f, "CSP header changed: {v:?} (built: {expected:?})"),
        }
    }
}

/// One problem of one file.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Path in the integrity manifest.
    pub path: String,
    pub url: String,
    #[serde(flatten)]
    pub problem: Problem,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<12} {}: {}",
            self.problem.label(),
            self.url,
            self.problem
        )
    }
}

/// The outcome of one pass over the manifest.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub ok: bool,
    pub site: String,
    pub manifest: String,
    /// Files fetched.
    pub checked: usize,
    /// Files of the manifest a CDN does not serve (`_headers`).
    pub skipped: Vec<String>,
    pub findings: Vec<Finding>,
    pub elapsed_ms: u128,
}

impl Report {
    /// `ok: 46 files of https://... match public/integrity.json in 0.42s` or the failure tally.
    pub fn summary(&self) -> String {
        let secs = self.elapsed_ms as f64 / 1000.0;
        if self.ok {
            return format!(
                "ok: {} files of {} match {} ({:.2}s)",
                self.checked, self.site, self.manifest, secs
            );
        }
        let mut files: Vec<&str> = self.findings.iter().map(|f| f.path.as_str()).collect();
        files.dedup();
        let mut kinds: Vec<(&str, usize)> = Vec::new();
        for f in &self.findings {
            match kinds.iter_mut().find(|(k, _)| *k == f.problem.label()) {
                Some((_, n)) => *n += 1,
                None => kinds.push((f.problem.label(), 1)),
            }
        }
        let tally: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
        format!(
            "FAILED: {} problems in {} of {} files of {} ({}) ({:.2}s)",
            self.findings.len(),
            files.len(),
            self.checked,
            self.site,
            tally.join(", "),
            secs
        )
    }
}
