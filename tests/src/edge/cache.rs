//! The edge cache: responses kept per cache key for the TTL CloudFront would give them
//! (`s-maxage`, else `max-age`, clamped to the policy's MinTTL/MaxTTL; the policy's DefaultTTL
//! without either; errors for the custom error response's `ErrorCachingMinTTL`).

use super::template::CachePolicy;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A response as the edge keeps and replays it.
#[derive(Debug, Clone)]
pub struct Stored {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[derive(Default)]
pub struct EdgeCache {
    entries: Mutex<HashMap<String, (Instant, Stored)>>,
}

/// Statuses CloudFront caches as successes.
const CACHEABLE: [u16; 7] = [200, 203, 206, 300, 301, 308, 410];
/// Error statuses CloudFront caches (for the error caching TTL).
const CACHEABLE_ERRORS: [u16; 11] = [400, 403, 404, 405, 414, 416, 500, 501, 502, 503, 504];

impl EdgeCache {
    /// A fresh entry for `key`.
    pub fn get(&self, key: &str) -> Option<Stored> {
        let mut entries = self.entries.lock().expect("cache lock");
        match entries.get(key) {
            Some((until, stored)) if Instant::now() < *until => Some(stored.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    pub fn put(&self, key: String, ttl: Duration, stored: Stored) {
        if ttl.is_zero() {
            return;
        }
        self.entries
            .lock()
            .expect("cache lock")
            .insert(key, (Instant::now() + ttl, stored));
    }
}

/// How long CloudFront keeps `status` with `cache_control` under `policy`; `error_min_ttl` is
/// the custom error response's caching TTL for that status, if one is declared.
pub fn ttl(
    policy: &CachePolicy,
    status: u16,
    cache_control: Option<&str>,
    error_min_ttl: Option<u64>,
) -> Duration {
    let directives: Vec<(String, Option<u64>)> = cache_control
        .unwrap_or_default()
        .split(',')
        .map(|d| {
            let mut kv = d.trim().splitn(2, '=');
            let k = kv.next().unwrap_or_default().to_ascii_lowercase();
            let v = kv.next().and_then(|v| v.trim_matches('"').parse().ok());
            (k, v)
        })
        .collect();
    let find = |name: &str| directives.iter().find(|(k, _)| k == name).map(|(_, v)| *v);
    let forbids = ["no-store", "no-cache", "private"]
        .iter()
        .any(|d| find(d).is_some());
    let origin_ttl = find("s-maxage").flatten().or(find("max-age").flatten());
    let secs = if CACHEABLE.contains(&status) {
        if forbids && policy.min_ttl == 0 {
            0
        } else {
            origin_ttl
                .unwrap_or(policy.default_ttl)
                .clamp(policy.min_ttl, policy.max_ttl.max(policy.min_ttl))
        }
    } else if CACHEABLE_ERRORS.contains(&status) {
        if forbids {
            0
        } else {
            origin_ttl.unwrap_or(error_min_ttl.unwrap_or(10))
        }
    } else {
        0
    };
    Duration::from_secs(secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edge::template::Select;

    fn api_policy() -> CachePolicy {
        CachePolicy {
            min_ttl: 0,
            default_ttl: 0,
            max_ttl: 300,
            headers: Select::None,
            cookies: Select::None,
            query: Select::None,
        }
    }

    #[test]
    fn ttls_as_cloudfront_gives_them() {
        let p = api_policy();
        let count = "public, max-age=10, s-maxage=10, stale-while-revalidate=60";
        assert_eq!(ttl(&p, 200, Some(count), None), Duration::from_secs(10));
        assert_eq!(
            ttl(&p, 200, Some("max-age=5"), None),
            Duration::from_secs(5)
        );
        assert_eq!(ttl(&p, 200, Some("s-maxage=9999"), None).as_secs(), 300);
        assert!(ttl(&p, 200, None, None).is_zero());
        assert!(ttl(&p, 200, Some("no-store"), None).is_zero());
        assert!(ttl(&p, 202, Some(count), None).is_zero());
        assert_eq!(ttl(&p, 404, None, Some(60)).as_secs(), 60);
        assert!(ttl(&p, 404, Some("no-store"), Some(60)).is_zero());
    }
}
