//! The public list of signers: `GET /api/petitions/{slug}/signers/{page}`, JSON that the
//! petition's `signers/` page shows.
//!
//! Listed: the signers who ticked "show my name" on a petition that offers it
//! (`public_signers` in its front matter), once their signature counts — never before
//! confirmation, never while held, never from a protected domain — with only what they chose
//! to show: the name as typed, and the town when the petition says so (`public_city`). The
//! entry is sealed with a key of the function ([`ListingSeal`]) from the moment of signing, so
//! that a copy of the database does not show who signed before they confirmed; the store
//! lists it exactly while the signature counts. The signer's erase link removes it with the
//! rest of their data; `cahier admin signers hide` takes one off; a petition whose front
//! matter no longer offers the list answers 404.
//!
//! Pages are cached by the CDN and by each instance for [`PAGE_TTL`] (new signers show within
//! a minute or two); only the newest [`MAX_PAGES`] × [`PER_PAGE`] are published, so that no
//! page costs the store more than a bounded read, whatever a visitor asks for.

use crate::crypto::FunctionSeal;
use crate::decode::SignForm;
use crate::manifest::Petition;
use crate::problem::Problem;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Entries per page.
pub const PER_PAGE: u32 = 50;
/// Pages published (the newest 1,000 signers).
pub const MAX_PAGES: u32 = 20;
pub const PAGE_TTL: Duration = Duration::from_secs(60);
/// No stale copies: a signer who erased their signature, or an entry the organizer hid, must
/// leave the list within the minute even while the origin fails (a stale-if-error copy would
/// keep showing the name for as long as an attacker keeps the origin failing).
pub const PAGE_CACHE_CONTROL: &str = "public, max-age=60, s-maxage=60, stale-if-error=0";
/// Pages one instance keeps; past it the cache starts again empty.
const CACHED_PAGES: usize = 4096;

/// What the list shows of one signer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicEntry {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
}

impl PublicEntry {
    /// The entry of a signer, if they are to be listed once counted.
    pub fn of(petition: &Petition, form: &SignForm, protected: bool) -> Option<PublicEntry> {
        if !petition.public_signers || !form.public || protected {
            return None;
        }
        let city = if petition.public_city {
            form.fields.get("city").cloned().filter(|c| !c.is_empty())
        } else {
            None
        };
        Some(PublicEntry {
            name: form.name.clone(),
            city,
        })
    }
}

/// Seals entries with the function's own key (derived from the token key).
#[derive(Debug)]
pub struct ListingSeal(FunctionSeal);

impl ListingSeal {
    pub fn new(secret: &[u8]) -> ListingSeal {
        ListingSeal(FunctionSeal::new(secret, b"cahier public list entry v1"))
    }

    pub fn seal(&self, entry: &PublicEntry) -> anyhow::Result<Vec<u8>> {
        self.0.seal(&serde_json::to_vec(entry)?)
    }

    pub fn open(&self, sealed: &[u8]) -> anyhow::Result<PublicEntry> {
        Ok(serde_json::from_slice(&self.0.open(sealed)?)?)
    }
}

/// A built page: when, and its body.
type Built = (Instant, Arc<Vec<u8>>);

/// The pages this instance built lately, by petition and number.
#[derive(Default)]
pub struct PageCache {
    pages: Mutex<HashMap<(String, u32), Built>>,
}

impl PageCache {
    fn get(&self, slug: &str, page: u32) -> Option<Arc<Vec<u8>>> {
        let pages = self.pages.lock().unwrap_or_else(|e| e.into_inner());
        pages
            .get(&(slug.to_string(), page))
            .filter(|(at, _)| at.elapsed() < PAGE_TTL)
            .map(|(_, body)| body.clone())
    }

    /// Drops the petition's pages (an erased signature leaves this instance's list at once).
    pub fn forget(&self, slug: &str) {
        let mut pages = self.pages.lock().unwrap_or_else(|e| e.into_inner());
        pages.retain(|(s, _), _| s != slug);
    }

    fn put(&self, slug: &str, page: u32, body: Arc<Vec<u8>>) {
        let mut pages = self.pages.lock().unwrap_or_else(|e| e.into_inner());
        if pages.len() >= CACHED_PAGES {
            pages.clear();
        }
        pages.insert((slug.to_string(), page), (Instant::now(), body));
    }
}

#[derive(Serialize)]
struct PageBody<'a> {
    petition: &'a str,
    page: u32,
    per_page: u32,
    signers: Vec<Shown>,
    /// The next page's number, when there is one.
    next: Option<u32>,
}

#[derive(Serialize)]
struct Shown {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    city: Option<String>,
    /// The day it was counted (no finer: the list is not a timeline of who confirmed when).
    date: String,
}

/// `GET /api/petitions/{slug}/signers/{page}`, pages from 1.
pub async fn page(
    State(state): State<AppState>,
    Path((slug, page)): Path<(String, String)>,
    uri: axum::http::Uri,
) -> Response {
    let loaded = state.loaded();
    // Only the canonical spelling (as for the count): any other is a fresh CDN cache key.
    let page_no = page
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=MAX_PAGES).contains(n) && page == n.to_string());
    let petition = loaded.manifest.petition(&slug).filter(|p| p.public_signers);
    let (Some(petition), Some(page_no)) = (petition, page_no) else {
        return Problem::not_found("No such list.").into_response();
    };
    if uri.path() != format!("/api/petitions/{}/signers/{page_no}", petition.slug) {
        return Problem::not_found("No such list.").into_response();
    }
    if let Some(body) = state.0.signer_pages.get(&petition.slug, page_no) {
        return cached(body.as_ref().clone());
    }
    let offset = (page_no - 1) * PER_PAGE;
    // One more than a page: whether there is a next one.
    let listed = match state
        .0
        .store
        .listed(&petition.slug, offset, PER_PAGE + 1)
        .await
    {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "store.listed failed");
            return Problem::unavailable().into_response();
        }
    };
    let more = listed.len() > PER_PAGE as usize;
    let signers = listed
        .iter()
        .take(PER_PAGE as usize)
        .filter_map(|l| match state.0.signer_seal.open(&l.sealed) {
            Ok(e) => Some(Shown {
                name: e.name,
                // Sealed at signing; shown only while the petition still says so today.
                city: e.city.filter(|_| petition.public_city),
                date: crate::open_data::rfc3339(l.at)
                    .map(|t| t[..10].to_string())
                    .unwrap_or_default(),
            }),
            Err(e) => {
                tracing::warn!(error = format!("{e:#}"), "a list entry does not open");
                None
            }
        })
        .collect();
    let body = PageBody {
        petition: &petition.slug,
        page: page_no,
        per_page: PER_PAGE,
        signers,
        next: (more && page_no < MAX_PAGES).then_some(page_no + 1),
    };
    match serde_json::to_vec(&body) {
        Ok(bytes) => {
            let bytes = Arc::new(bytes);
            state
                .0
                .signer_pages
                .put(&petition.slug, page_no, bytes.clone());
            cached(bytes.as_ref().clone())
        }
        Err(e) => {
            tracing::error!(error = %e, "serialising a list page failed");
            Problem::unavailable().into_response()
        }
    }
}

fn cached(body: Vec<u8>) -> Response {
    let mut res = (StatusCode::OK, body).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(PAGE_CACHE_CONTROL),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_open_with_their_key_only() {
        let seal = ListingSeal::new(&[7; 32]);
        let entry = PublicEntry {
            name: "Ana Lopes".into(),
            city: Some("Lyon".into()),
        };
        let sealed = seal.seal(&entry).unwrap();
        assert!(!String::from_utf8_lossy(&sealed).contains("Ana"));
        assert_eq!(seal.open(&sealed).unwrap(), entry);
        assert!(ListingSeal::new(&[8; 32]).open(&sealed).is_err());
        // Not a queued mail's key either.
        assert!(crate::deferred::LetterSeal::new(&[7; 32])
            .open(&sealed)
            .is_err());
    }
}
