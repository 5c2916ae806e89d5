//! `cahier verify`: is the live site still the one that was built? Every file of the integrity
//! manifest is fetched (redirects not followed) and compared by size and SHA-256; changed pages
//! are searched for scripts the build did not put there and for a weakened
//! Content-Security-Policy. This is how a collective learns that its domain now sends visitors
//! to another petition, or that a page was altered on the CDN.

mod fetch;
pub mod headers;
pub mod html;
pub mod reference;
pub mod report;

pub use headers::HeaderRules;
pub use reference::Reference;
pub use report::{Finding, Problem, Report};

use anyhow::{bail, Context};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use url::Url;

#[derive(Debug, Clone)]
pub struct Options {
    /// The live site's base URL (with a trailing `/`, see [`site_url`]).
    pub site: Url,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Per request, connection to last byte.
    pub timeout: Duration,
    /// Compare the Content-Security-Policy response header with `_headers`.
    pub check_headers: bool,
}

/// Parses the site's address: http or https, and a trailing `/` so that files resolve below
/// its path.
pub fn site_url(s: &str) -> anyhow::Result<Url> {
    let mut u = Url::parse(s).with_context(|| format!("invalid site URL {s:?}"))?;
    if !matches!(u.scheme(), "http" | "https") {
        bail!("invalid site URL {s:?}: expected http:// or https://");
    }
    if u.query().is_some() || u.fragment().is_some() {
        bail!("invalid site URL {s:?}: no query or fragment, please");
    }
    if !u.path().ends_with('/') {
        let p = format!("{}/", u.path());
        u.set_path(&p);
    }
    Ok(u)
}

/// One pass over the manifest. `progress(done, total)` is called after each file.
pub async fn run(
    reference: Arc<Reference>,
    opts: &Options,
    mut progress: impl FnMut(usize, usize),
) -> anyhow::Result<Report> {
    let start = Instant::now();
    let client = fetch::client(opts.timeout)?;
    let permits = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (rel, _) in reference.served() {
        let url = opts
            .site
            .join(reference::url_path(rel))
            .with_context(|| format!("while resolving {rel} against {}", opts.site))?;
        let (client, reference, permits) = (client.clone(), reference.clone(), permits.clone());
        let (rel, check_headers) = (rel.clone(), opts.check_headers);
        tasks.spawn(async move {
            let _permit = permits
                .acquire_owned()
                .await
                .expect("semaphore never closed");
            let problems =
                fetch::check(&client, &reference, &rel, url.clone(), check_headers).await;
            (rel, url, problems)
        });
    }
    let total = tasks.len();
    let mut findings = Vec::new();
    let mut done = 0;
    while let Some(r) = tasks.join_next().await {
        let (path, url, problems) = r.context("a verification task failed")?;
        findings.extend(problems.into_iter().map(|problem| Finding {
            path: path.clone(),
            url: url.to_string(),
            problem,
        }));
        done += 1;
        progress(done, total);
    }
    findings.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Report {
        ok: findings.is_empty(),
        site: opts.site.to_string(),
        manifest: reference.manifest.display().to_string(),
        checked: total,
        skipped: reference.skipped(),
        findings,
        elapsed_ms: start.elapsed().as_millis(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_urls() {
        assert_eq!(
            site_url("https://a.example/petitions").unwrap().as_str(),
            "https://a.example/petitions/"
        );
        assert_eq!(
            site_url("http://127.0.0.1:8080").unwrap().as_str(),
            "http://127.0.0.1:8080/"
        );
        assert!(site_url("ftp://a.example/").is_err());
        assert!(site_url("a.example").is_err());
    }
}
