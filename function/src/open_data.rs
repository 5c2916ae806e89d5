//! Open data: every petition's count, goal and dates, as JSON (`GET /api/petitions.json`) and
//! as CSV (`GET /api/petitions.csv`), for journalists, researchers and the collective's own
//! dashboards.
//!
//! Only what the petition pages already publish: slugs, titles, counts, goals, dates. Never a
//! name, an address or anything about one signer.
//!
//! One listing reads every petition's count, so it is built at most once per [`LISTING_TTL`]
//! per instance (concurrent requests wait for the one being built), and the CDN caches it for
//! as long: a flood of requests costs the store one read per petition per minute, whatever
//! its rate. Counts are read through the instance's [`crate::count_cache`], like the count
//! endpoint.

use crate::manifest::{Manifest, Petition};
use crate::problem::Problem;
use crate::sign::effective_goal;
use crate::state::{AppState, Loaded};
use crate::store::Count;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long one instance serves the same listing; also its CDN lifetime.
pub const LISTING_TTL: Duration = Duration::from_secs(60);
pub const LISTING_CACHE_CONTROL: &str =
    "public, max-age=60, s-maxage=60, stale-while-revalidate=300, stale-if-error=3600";
/// Count reads in flight while a listing is built.
const READS_IN_FLIGHT: usize = 8;

/// One petition in the open data.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PetitionRow {
    pub slug: String,
    /// In the site's default language when the petition has it, else in its first language.
    pub title: String,
    pub url: String,
    pub languages: Vec<String>,
    pub count: u64,
    /// The part of `count` from paper batches.
    pub offline: u64,
    /// The goal shown on the page (doubled each time it is reached).
    pub goal: u64,
    /// `open`, `upcoming` or `closed`.
    pub status: &'static str,
    pub opens_at: Option<String>,
    pub closes_at: Option<String>,
    pub last_confirmed_at: Option<String>,
    pub updated_at: Option<String>,
}

/// The whole listing, as served.
#[derive(Debug, Serialize)]
pub struct Listing {
    pub generated_at: String,
    pub petitions: Vec<PetitionRow>,
}

/// When a listing was built, from which manifest, and the listing.
type Built = (Instant, Arc<Loaded>, Arc<Listing>);

/// The listing last built by this instance, for the manifest it was built from.
#[derive(Default)]
pub struct ListingCache {
    slot: tokio::sync::Mutex<Option<Built>>,
}

impl ListingCache {
    async fn get(&self, state: &AppState) -> anyhow::Result<Arc<Listing>> {
        let loaded = state.loaded();
        let mut slot = self.slot.lock().await;
        if let Some((at, from, listing)) = slot.as_ref() {
            if at.elapsed() < LISTING_TTL && Arc::ptr_eq(from, &loaded) {
                return Ok(listing.clone());
            }
        }
        let listing = Arc::new(build_listing(state, &loaded.manifest).await?);
        *slot = Some((Instant::now(), loaded, listing.clone()));
        Ok(listing)
    }
}

async fn build_listing(state: &AppState, manifest: &Manifest) -> anyhow::Result<Listing> {
    let now = crate::now();
    let slugs: Vec<String> = manifest.petitions.iter().map(|p| p.slug.clone()).collect();
    let counts: Vec<Count> = futures::stream::iter(slugs)
        .map(|slug| {
            let state = state.clone();
            async move { state.0.counts.get(state.0.store.as_ref(), &slug).await }
        })
        .buffered(READS_IN_FLIGHT)
        .try_collect()
        .await?;
    let petitions = manifest
        .petitions
        .iter()
        .zip(counts)
        .map(|(p, c)| row(manifest, p, c, now))
        .collect();
    Ok(Listing {
        generated_at: rfc3339(now).unwrap_or_default(),
        petitions,
    })
}

fn row(manifest: &Manifest, p: &Petition, c: Count, now: i64) -> PetitionRow {
    let site = &manifest.site;
    let lang = if p.languages.contains(&site.default_language) {
        site.default_language.clone()
    } else {
        p.languages.first().cloned().unwrap_or_default()
    };
    let prefix = if lang == site.default_language {
        String::new()
    } else {
        format!("/{lang}")
    };
    let status = match (p.opens_at, p.closes_at) {
        (Some(t), _) if now < t => "upcoming",
        (_, Some(t)) if now >= t => "closed",
        _ => "open",
    };
    PetitionRow {
        slug: p.slug.clone(),
        title: p.titles.get(&lang).cloned().unwrap_or_default(),
        url: format!("{}{prefix}/{}/", site.base_url, p.slug),
        languages: p.languages.clone(),
        count: c.count,
        offline: c.offline,
        goal: effective_goal(p.goal, c.count),
        status,
        opens_at: p.opens_at.and_then(rfc3339),
        closes_at: p.closes_at.and_then(rfc3339),
        last_confirmed_at: rfc3339(c.last_confirmed_at),
        updated_at: rfc3339(c.updated_at),
    }
}

/// RFC 3339 in UTC; `None` for 0 (never) or a time out of range.
pub fn rfc3339(unix: i64) -> Option<String> {
    if unix <= 0 {
        return None;
    }
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()?
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// `GET /api/petitions.json`.
pub async fn petitions_json(State(state): State<AppState>) -> Response {
    match state.0.open_data.get(&state).await {
        Ok(listing) => match serde_json::to_vec(listing.as_ref()) {
            Ok(body) => cached(body, "application/json"),
            Err(e) => failed(e.into()),
        },
        Err(e) => failed(e),
    }
}

/// `GET /api/petitions.csv`: one row per petition, the columns of the JSON (languages joined
/// by spaces), every cell [`crate::csv_safe::neutralise`]d.
pub async fn petitions_csv(State(state): State<AppState>) -> Response {
    match state.0.open_data.get(&state).await {
        Ok(listing) => match to_csv(&listing) {
            Ok(body) => cached(body, "text/csv; charset=utf-8; header=present"),
            Err(e) => failed(e),
        },
        Err(e) => failed(e),
    }
}

pub fn to_csv(listing: &Listing) -> anyhow::Result<Vec<u8>> {
    let mut out = crate::csv_safe::SafeCsv::new();
    out.write_record([
        "slug",
        "title",
        "url",
        "languages",
        "count",
        "offline",
        "goal",
        "status",
        "opens_at",
        "closes_at",
        "last_confirmed_at",
        "updated_at",
    ])?;
    let text = |t: &Option<String>| t.clone().unwrap_or_default();
    for p in &listing.petitions {
        out.write_record([
            p.slug.clone(),
            p.title.clone(),
            p.url.clone(),
            p.languages.join(" "),
            p.count.to_string(),
            p.offline.to_string(),
            p.goal.to_string(),
            p.status.to_string(),
            text(&p.opens_at),
            text(&p.closes_at),
            text(&p.last_confirmed_at),
            text(&p.updated_at),
        ])?;
    }
    out.finish()
}

fn cached(body: Vec<u8>, content_type: &'static str) -> Response {
    let mut res = (StatusCode::OK, body).into_response();
    let headers = res.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(LISTING_CACHE_CONTROL),
    );
    res
}

fn failed(e: anyhow::Error) -> Response {
    tracing::error!(error = format!("{e:#}"), "open data listing failed");
    Problem::unavailable().into_response()
}
