//! The public count, kept in memory for a few seconds per instance.
//!
//! The CDN caches the count per URL, so a flood of cache-busting spellings is what reaches the
//! function; those get 404 from the count handler, and whatever still arrives reads this cache:
//! at most one store read per petition per period and instance, whatever the request rate, so
//! the table's read capacity stays for sign and confirm. Concurrent misses wait for the one
//! read in flight instead of each reading the store.

use crate::store::{Count, Store};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Slot = Arc<tokio::sync::Mutex<Option<(Instant, Count)>>>;

#[derive(Debug, Default)]
pub struct CountCache {
    ttl: Duration,
    /// One slot per petition of the manifest (the handler only asks for those).
    slots: Mutex<HashMap<String, Slot>>,
}

impl CountCache {
    /// `ttl` zero: every call reads the store.
    pub fn new(ttl: Duration) -> CountCache {
        CountCache {
            ttl,
            slots: Mutex::default(),
        }
    }

    /// The count of `petition`, from memory if read less than the period ago.
    pub async fn get(&self, store: &dyn Store, petition: &str) -> anyhow::Result<Count> {
        if self.ttl.is_zero() {
            return store.count(petition).await;
        }
        let slot = self
            .slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(petition.to_string())
            .or_default()
            .clone();
        let mut cached = slot.lock().await;
        if let Some((at, count)) = cached.as_ref() {
            if at.elapsed() < self.ttl {
                return Ok(count.clone());
            }
        }
        let count = store.count(petition).await?;
        *cached = Some((Instant::now(), count.clone()));
        Ok(count)
    }

    /// Forgets `petition`'s count, after this instance changed it (confirm, erase).
    pub fn forget(&self, petition: &str) {
        if let Some(slot) = self
            .slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(petition)
        {
            if let Ok(mut cached) = slot.try_lock() {
                *cached = None;
            }
        }
    }
}
