//! Fetching one file of the live site and comparing it with the build. Redirects are never
//! followed: a redirected page is exactly what an attacker who takes over a domain does.

use super::html;
use super::reference::{is_html, Reference};
use super::report::Problem;
use anyhow::Context;
use reqwest::header::{CONTENT_SECURITY_POLICY, LOCATION};
use std::time::Duration;
use url::Url;

/// A body may exceed the built size by this much before the download is cut off.
const SLACK_BYTES: u64 = 1 << 20;

pub fn client(timeout: Duration) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("cahier-verify/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("while creating the HTTP client")
}

/// Collapses runs of white space, so that a reformatted policy is not reported.
fn norm(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Every problem of the file `rel`, served at `url`.
pub async fn check(
    client: &reqwest::Client,
    reference: &Reference,
    rel: &str,
    url: Url,
    check_headers: bool,
) -> Vec<Problem> {
    let expected = &reference.files[rel];
    let mut resp = match client.get(url.clone()).send().await {
        Ok(r) => r,
        Err(e) => return vec![unreachable(&e)],
    };
    let status = resp.status();
    if status.is_redirection() {
        let location = resp
            .headers()
            .get(LOCATION)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_else(|| "(no Location header)".to_string());
        // Show where it really goes, relative locations included.
        let location = url
            .join(&location)
            .map(|u| u.to_string())
            .unwrap_or(location);
        return vec![Problem::Redirected {
            status: status.as_u16(),
            location,
        }];
    }
    if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::GONE {
        return vec![Problem::Missing {
            status: status.as_u16(),
        }];
    }
    if !status.is_success() {
        return vec![Problem::Status {
            status: status.as_u16(),
        }];
    }
    let mut problems = Vec::new();
    if check_headers && is_html(rel) {
        if let Some(expected) = reference
            .headers
            .as_ref()
            .and_then(|h| h.csp_for(url.path()))
        {
            let found: Vec<String> = resp
                .headers()
                .get_all(CONTENT_SECURITY_POLICY)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect();
            let found = (!found.is_empty()).then(|| found.join(", "));
            if found.as_deref().map(norm) != Some(norm(&expected)) {
                problems.push(Problem::CspHeaderChanged { expected, found });
            }
        }
    }
    let limit = expected.bytes + SLACK_BYTES;
    let mut body = Vec::with_capacity(expected.bytes.min(limit) as usize);
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => {
                body.extend_from_slice(&c);
                if body.len() as u64 > limit {
                    problems.push(Problem::Changed {
                        expected_sha256: expected.sha256.clone(),
                        expected_bytes: expected.bytes,
                        sha256: None,
                        bytes: body.len() as u64,
                    });
                    return problems;
                }
            }
            Ok(None) => break,
            Err(e) => return vec![unreachable(&e)],
        }
    }
    let sha256 = crate::integrity::sha256_hex(&body);
    if sha256 == expected.sha256 && body.len() as u64 == expected.bytes {
        return problems;
    }
    problems.push(Problem::Changed {
        expected_sha256: expected.sha256.clone(),
        expected_bytes: expected.bytes,
        sha256: Some(sha256),
        bytes: body.len() as u64,
    });
    if let Some(built) = reference.pages.get(rel) {
        let live = html::facts(&String::from_utf8_lossy(&body));
        for s in live.scripts.difference(&built.scripts) {
            problems.push(Problem::UnexpectedScript { script: s.clone() });
        }
        let n = |v: &[String]| v.iter().map(|s| norm(s)).collect::<Vec<_>>();
        if n(&live.csp_metas) != n(&built.csp_metas) {
            problems.push(Problem::CspMetaChanged {
                expected: built.csp_metas.clone(),
                found: live.csp_metas,
            });
        }
    }
    problems
}

fn unreachable(e: &reqwest::Error) -> Problem {
    let mut error = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        error.push_str(": ");
        error.push_str(&s.to_string());
        src = s.source();
    }
    if e.is_timeout() {
        error = format!("timed out ({error})");
    }
    Problem::Unreachable { error }
}
