//! In-memory token buckets per client address and prefix: the second, still free, line of
//! defence (before the paid captcha call). IPv4: /32 and /24. IPv6: /64 (one host or home) and
//! /48 (one site). Memory is bounded: each shard holds at most a fixed number of buckets.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

/// 8 bytes: a crowd of new addresses costs two of these per request until swept.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f32,
    /// Milliseconds since the limiter started, wrapping (49 days, far beyond any refill).
    at_ms: u32,
}

impl Bucket {
    fn idle_secs(&self, now_ms: u32) -> f64 {
        f64::from(now_ms.wrapping_sub(self.at_ms)) / 1000.0
    }
}

pub struct RateLimiter {
    limits: RateLimits,
    epoch: Instant,
    shards: Vec<Mutex<Shard>>,
}

struct Shard {
    buckets: HashMap<u128, Bucket>,
    /// Last time full buckets were dropped: a crowd of new addresses keeps the map at about one
    /// refill period of traffic instead of growing to the cap.
    swept: Instant,
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
            epoch: Instant::now(),
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        buckets: HashMap::new(),
                        swept: Instant::now(),
                    })
                })
                .collect(),
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
        let now_ms = self.ms(now);
        let mut wait = 0.0f64;
        let mut states = [None, None];
        for (i, key) in [ip_key, prefix_key].into_iter().enumerate() {
            let rate = rates[i];
            let shard = self.shard(key).lock().unwrap_or_else(|e| e.into_inner());
            let b = shard.buckets.get(&key).copied().unwrap_or(Bucket {
                tokens: rate.burst as f32,
                at_ms: now_ms,
            });
            let tokens = (f64::from(b.tokens) + b.idle_secs(now_ms) * rate.per_minute / 60.0)
                .min(rate.burst);
            let b = Bucket {
                tokens: tokens as f32,
                at_ms: now_ms,
            };
            if tokens < 1.0 {
                let per_sec = (rate.per_minute / 60.0).max(1e-9);
                wait = wait.max((1.0 - tokens) / per_sec);
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
            let full = shard.buckets.len() >= self.limits.max_buckets / SHARDS
                && !shard.buckets.contains_key(&key);
            if full || now.saturating_duration_since(shard.swept) >= self.refill_period() {
                self.evict(&mut shard, now);
            }
            shard.buckets.insert(key, b);
        }
        Ok(())
    }

    fn shard(&self, key: u128) -> &Mutex<Shard> {
        let h = (key as u64) ^ ((key >> 64) as u64);
        let h = h.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        &self.shards[(h >> 60) as usize % SHARDS]
    }

    fn ms(&self, at: Instant) -> u32 {
        at.saturating_duration_since(self.epoch).as_millis() as u32
    }

    /// The rate of a key's bucket (its tag says address or prefix).
    fn rate_of(&self, key: u128) -> Rate {
        match key >> 120 {
            1 | 3 => self.limits.per_ip,
            _ => self.limits.per_prefix,
        }
    }

    /// Time for an empty bucket of either kind to be full again.
    fn refill_period(&self) -> Duration {
        let full_after = |r: Rate| r.burst / (r.per_minute / 60.0).max(1e-9);
        let secs = full_after(self.limits.per_ip).max(full_after(self.limits.per_prefix));
        Duration::from_secs_f64(secs.clamp(1.0, 86_400.0))
    }

    /// Drops buckets that have refilled completely (they carry no information); if that is not
    /// enough, drops everything in the shard (bounded memory beats perfect memory).
    fn evict(&self, shard: &mut Shard, now: Instant) {
        let now_ms = self.ms(now);
        shard.buckets.retain(|&key, b| {
            let rate = self.rate_of(key);
            let full_after = rate.burst / (rate.per_minute / 60.0).max(1e-9);
            b.idle_secs(now_ms) < full_after
        });
        if shard.buckets.len() >= self.limits.max_buckets / SHARDS {
            shard.buckets.clear();
        }
        shard.swept = now;
    }

    /// Buckets currently held (for tests and metrics).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map(|m| m.buckets.len()).unwrap_or(0))
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn full_buckets_are_swept_without_waiting_for_the_cap() {
        let l = RateLimiter::new(RateLimits::default());
        let t = Instant::now();
        // One address per /24: an address bucket and a prefix bucket each.
        for i in 0..5_000u32 {
            l.check_at(IpAddr::V4((i << 8).into()), t).unwrap();
        }
        assert_eq!(l.len(), 10_000);
        // Two minutes later, a new crowd: the first crowd's refilled buckets go.
        let later = t + Duration::from_secs(120);
        for i in 5_000..10_000u32 {
            l.check_at(IpAddr::V4((i << 8).into()), later).unwrap();
        }
        assert_eq!(l.len(), 10_000);
        // And an address seen within the period keeps its bucket (and its limit).
        let ip = IpAddr::V4((9_999u32 << 8).into());
        for _ in 0..9 {
            l.check_at(ip, later).unwrap();
        }
        assert!(l.check_at(ip, later + Duration::from_secs(1)).is_err());
    }
}
