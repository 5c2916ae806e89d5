//! In-memory token buckets per client address and prefix: the second, still free, line of
//! defence (before the paid captcha call). IPv4: /32 and /24. IPv6: /64 (one host or home) and
//! /48 (one site). Memory is bounded: each shard holds at most a fixed number of buckets.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

const SHARDS: usize = 16;

/// A bucket's shape: `burst` tokens, refilled at `per_minute`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub burst: f64,
    pub per_minute: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimits {
    /// Per address (IPv4 /32, IPv6 /64).
    pub per_ip: Rate,
    /// Per prefix (IPv4 /24, IPv6 /48).
    pub per_prefix: Rate,
    /// Upper bound on buckets kept in memory (all shards).
    pub max_buckets: usize,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            per_ip: Rate {
                burst: 10.0,
                per_minute: 10.0,
            },
            per_prefix: Rate {
                burst: 60.0,
                per_minute: 60.0,
            },
            max_buckets: 200_000,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

pub struct RateLimiter {
    limits: RateLimits,
    shards: Vec<Mutex<HashMap<u128, Bucket>>>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("limits", &self.limits)
            .finish()
    }
}

/// Keys: the top bits tag the kind so v4/v6 and address/prefix never collide.
fn keys(ip: IpAddr) -> [u128; 2] {
    match ip {
        IpAddr::V4(v4) => {
            let a = u32::from(v4) as u128;
            [(1u128 << 120) | a, (2u128 << 120) | (a & 0xffff_ff00)]
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return keys(IpAddr::V4(v4));
            }
            let a = u128::from(v6);
            // A /64 and a /48 fit in the low 64 bits once shifted, leaving room for the tag.
            [(3u128 << 120) | (a >> 64), (4u128 << 120) | (a >> 80)]
        }
    }
}

impl RateLimiter {
    pub fn new(limits: RateLimits) -> Self {
        RateLimiter {
            limits,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    pub fn limits(&self) -> RateLimits {
        self.limits
    }

    /// Takes one token from the address's and the prefix's bucket, or returns the seconds to
    /// wait (for `Retry-After`). Nothing is taken when refused.
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        self.check_at(ip, Instant::now())
    }

    pub fn check_at(&self, ip: IpAddr, now: Instant) -> Result<(), u64> {
        let [ip_key, prefix_key] = keys(ip);
        let rates = [self.limits.per_ip, self.limits.per_prefix];
        let mut wait = 0.0f64;
        let mut states = [None, None];
        for (i, key) in [ip_key, prefix_key].into_iter().enumerate() {
            let rate = rates[i];
            let shard = self.shard(key).lock().unwrap_or_else(|e| e.into_inner());
            let mut b = shard.get(&key).copied().unwrap_or(Bucket {
                tokens: rate.burst,
                at: now,
            });
            let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
            b.tokens = (b.tokens + elapsed * rate.per_minute / 60.0).min(rate.burst);
            b.at = now;
            if b.tokens < 1.0 {
                let per_sec = (rate.per_minute / 60.0).max(1e-9);
                wait = wait.max((1.0 - b.tokens) / per_sec);
            }
            states[i] = Some(b);
        }
        if wait > 0.0 {
            return Err(wait.ceil().max(1.0) as u64);
        }
        for (i, key) in [ip_key, prefix_key].into_iter().enumerate() {
            let mut b = states[i].expect("set above");
            b.tokens -= 1.0;
            let mut shard = self.shard(key).lock().unwrap_or_else(|e| e.into_inner());
            if shard.len() >= self.limits.max_buckets / SHARDS && !shard.contains_key(&key) {
                self.evict(&mut shard, now, rates[i]);
            }
            shard.insert(key, b);
        }
        Ok(())
    }

    fn shard(&self, key: u128) -> &Mutex<HashMap<u128, Bucket>> {
        let h = (key as u64) ^ ((key >> 64) as u64);
        let h = h.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        &self.shards[(h >> 60) as usize % SHARDS]
    }

    /// Drops buckets that have refilled completely (they carry no information); if that is not
    /// enough, drops everything in the shard (bounded memory beats perfect memory).
    fn evict(&self, shard: &mut HashMap<u128, Bucket>, now: Instant, rate: Rate) {
        let full_after = rate.burst / (rate.per_minute / 60.0).max(1e-9);
        shard.retain(|_, b| now.saturating_duration_since(b.at).as_secs_f64() < full_after);
        if shard.len() >= self.limits.max_buckets / SHARDS {
            shard.clear();
        }
    }

    /// Buckets currently held (for tests and metrics).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map(|m| m.len()).unwrap_or(0))
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limiter() -> RateLimiter {
        RateLimiter::new(RateLimits {
            per_ip: Rate {
                burst: 3.0,
                per_minute: 60.0,
            },
            per_prefix: Rate {
                burst: 5.0,
                per_minute: 60.0,
            },
            max_buckets: 64,
        })
    }

    #[test]
    fn address_then_prefix_limits_and_refill() {
        let l = limiter();
        let t = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..3 {
            l.check_at(a, t).unwrap();
        }
        assert_eq!(l.check_at(a, t), Err(1));
        // Same /24, other address: the prefix still has 2 tokens.
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        l.check_at(b, t).unwrap();
        l.check_at(b, t).unwrap();
        assert!(l.check_at(b, t).is_err());
        assert!(l.check_at("192.0.3.1".parse().unwrap(), t).is_ok());
        // One second refills one token for the address and the prefix.
        assert!(l.check_at(a, t + Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn ipv6_uses_64_and_48() {
        let l = limiter();
        let t = Instant::now();
        for i in 0..3 {
            l.check_at(format!("2001:db8:1:1::{i}").parse().unwrap(), t)
                .unwrap();
        }
        assert!(
            l.check_at("2001:db8:1:1::99".parse().unwrap(), t).is_err(),
            "same /64"
        );
        l.check_at("2001:db8:1:2::1".parse().unwrap(), t).unwrap();
        l.check_at("2001:db8:1:3::1".parse().unwrap(), t).unwrap();
        assert!(
            l.check_at("2001:db8:1:4::1".parse().unwrap(), t).is_err(),
            "same /48"
        );
    }

    #[test]
    fn memory_is_bounded() {
        let l = limiter();
        let t = Instant::now();
        for i in 0..10_000u32 {
            let _ = l.check_at(IpAddr::V4((i << 8).into()), t);
        }
        assert!(l.len() <= 64 + 2 * SHARDS, "{} buckets", l.len());
    }
}
