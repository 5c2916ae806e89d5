//! The durable windowed budgets the sign path takes in its one conditional write.
//!
//! Over budget is not an error for the client, and not a silent drop of a real person either:
//! confirmation proves a mailbox and decides what counts; budgets bound what a mailbox-less
//! attacker can make the function mail and what one owner of a domain can confirm. Each budget
//! says what exceeding it does ([`OverBudget`]):
//! - **network budgets** (one address, its /24 or /48, its /16 or /32 — one owner of many
//!   networks) `Defer`: the signature is stored pending, its mail queued; each confirmation
//!   from the network gives its unit back and releases queued mails ([`crate::deferred`]), so
//!   the people behind one carrier-grade NAT are all mailed and counted, while a farm of fake
//!   mailboxes gets at most the budget's mails;
//! - **per registrable domain** (eTLD+1, [`crate::email::registrable_domain`]) `Hold`: one
//!   owner of a domain (a wildcard MX makes endless mailboxes, one per subdomain too) confirms
//!   at most that many; the rest wait for the organizer;
//! - **petition-wide and large providers** `Alarm`: logged (`cahier::fraud`, `surge`), never
//!   holding, so an attacker cannot drain them for every honest signer; the suspicious share
//!   is the traffic already over its own network or domain budget, which those shed.
//!
//! Limits follow the spirit of the most trusted petition site: about one signature a minute
//! and five per five minutes from one address, more for a shared network and for the large
//! mail providers everyone uses. Campus or workplace NATs can be allow-listed with a
//! multiplier.
//!
//! # Budget keys
//!
//! Keys never contain a raw IP: addresses and prefixes appear only as `hash(label)`, where the
//! caller's keyed hash (HMAC with the pepper, [`crate::crypto::Hasher::budget`], 128 bits: a
//! collision would only make two networks share a counter, and short keys keep a signature's
//! row, which lists the units to give back, within one SQLite page) is applied to the canonical CIDR label of the
//! network (`203.0.113.7/32`, `203.0.113.0/24`, `203.0.0.0/16`, `2001:db8:1:2::/64`,
//! `2001:db8:1::/48`, `2001:db8::/32`; IPv4-mapped IPv6 addresses are treated as IPv4). The
//! window length is part of the key so that two rates of one scope never share a counter; the
//! petition slug comes last.
//!
//! | scope | key | exceeded |
//! |---|---|---|
//! | registrable e-mail domain, per petition | `dom:<window>:<domain>:<petition>` | hold (alarm for large providers) |
//! | one address (/32, /64), per petition | `addr:<window>:<hash>:<petition>` | defer |
//! | network (/24, /48), per petition | `net:<window>:<hash>:<petition>` | defer |
//! | wide network (/16, /32), per petition | `wide:<window>:<hash>:<petition>` | defer |
//! | petition overall (surge) | `pet:<window>:<petition>` | alarm |
//! | mails per registrable domain (all petitions) | `mail:<window>:<domain>` | no mail (alarm for large providers) |
//! | mails of the whole site (all petitions, all domains) | `mailall:<window>` | alarm (no mail if `mail_site_hard`) |
//!
//! The e-mail domain is stored in clear (lower-case A-label), as in
//! `NewSignature::email_domain`: it is what `cahier admin trending` reports.

use crate::email::registrable_domain;
use crate::store::{Budget, OverBudget};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// At most `limit` events in each fixed window of `window_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    pub limit: u32,
    pub window_secs: u32,
}

impl Rate {
    pub const fn new(limit: u32, window_secs: u32) -> Rate {
        Rate { limit, window_secs }
    }
}

/// The `[budgets]` table of the site configuration. Every field is optional; missing ones take
/// the defaults below.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BudgetPolicy {
    /// Per single address (IPv4 /32, IPv6 /64), per petition.
    pub per_address: Vec<Rate>,
    /// Per network (IPv4 /24, IPv6 /48), per petition.
    pub per_network: Vec<Rate>,
    /// Per wide network (IPv4 /16, IPv6 /32): one owner of many networks, such as the 218
    /// servers of the seed attack; large, since a carrier's /16 holds many people.
    pub per_wide_network: Vec<Rate>,
    /// Per e-mail domain, per petition.
    pub per_domain: Vec<Rate>,
    /// Per e-mail domain of a large provider (`large_providers`), per petition.
    pub per_large_provider: Vec<Rate>,
    /// Mail providers shared by millions of people; matched on the exact domain.
    pub large_providers: Vec<String>,
    /// Per petition overall: surge detection.
    pub per_petition: Vec<Rate>,
    /// Networks (CIDR) whose address and network limits are multiplied: campus or workplace NATs.
    pub allowed_networks: Vec<IpNet>,
    pub allowed_multiplier: u32,
    /// Confirmation mails per recipient domain, all petitions together, checked before sending.
    pub mail_per_domain: Rate,
    /// The same for `large_providers`.
    pub mail_per_large_provider: Rate,
    /// Every mail of the site, all petitions and domains together. Above it each mail is
    /// logged as `mail_ceiling` (the template's alarm): a flood is spending the mail
    /// provider's quota (SES then refuses to send until the next day). Set it under the
    /// account's quota.
    pub mail_site: Rate,
    /// Whether mails above `mail_site` are refused (kept pending: signing again after the
    /// window sends the confirmation). Off by default: whoever drains a hard ceiling silences
    /// every honest signer of the site until it refills.
    pub mail_site_hard: bool,
}

impl Default for BudgetPolicy {
    fn default() -> Self {
        BudgetPolicy {
            per_address: vec![Rate::new(1, 60), Rate::new(5, 300)],
            per_network: vec![Rate::new(20, 3600)],
            per_wide_network: vec![Rate::new(1_000, 3600)],
            per_domain: vec![Rate::new(50, 3600)],
            per_large_provider: vec![Rate::new(5_000, 3600)],
            large_providers: [
                "gmail.com",
                "googlemail.com",
                "outlook.com",
                "outlook.fr",
                "hotmail.com",
                "hotmail.fr",
                "live.fr",
                "msn.com",
                "orange.fr",
                "wanadoo.fr",
                "free.fr",
                "sfr.fr",
                "neuf.fr",
                "bbox.fr",
                "laposte.net",
                "yahoo.fr",
                "yahoo.com",
                "icloud.com",
                "me.com",
                "proton.me",
                "protonmail.com",
                "gmx.fr",
                "gmx.de",
                "gmx.net",
                "web.de",
                "aol.com",
            ]
            .map(String::from)
            .to_vec(),
            per_petition: vec![Rate::new(20_000, 3600)],
            allowed_networks: Vec::new(),
            allowed_multiplier: 10,
            mail_per_domain: Rate::new(30, 3600),
            mail_per_large_provider: Rate::new(10_000, 3600),
            // SES's first production quota is 50,000 mails a day.
            mail_site: Rate::new(40_000, 86_400),
            mail_site_hard: false,
        }
    }
}

/// The canonical network of `ip` at `v4` / `v6` prefix length, as a CIDR label
/// (`203.0.113.0/24`). IPv4-mapped IPv6 addresses count as IPv4.
pub fn network_label(ip: IpAddr, v4: u8, v6: u8) -> String {
    let ip = ip.to_canonical();
    let len = if ip.is_ipv4() { v4 } else { v6 };
    IpNet::new(ip, len)
        .expect("prefix lengths are in range")
        .trunc()
        .to_string()
}

/// The label of the single address a budget counts: /32 for IPv4, /64 for IPv6 (one host's
/// SLAAC range).
pub fn address_label(ip: IpAddr) -> String {
    network_label(ip, 32, 64)
}

/// The label of the shared network: /24 for IPv4, /48 for IPv6 (one site or customer).
pub fn prefix_label(ip: IpAddr) -> String {
    network_label(ip, 24, 48)
}

/// The label of the wide network: /16 for IPv4, /32 for IPv6 (one owner's allocation).
pub fn wide_label(ip: IpAddr) -> String {
    network_label(ip, 16, 32)
}

impl BudgetPolicy {
    /// Refuses limits that would make every signature held or windows that make no sense.
    pub fn validate(&self) -> anyhow::Result<()> {
        let groups: [(&str, &[Rate]); 6] = [
            ("per_address", &self.per_address),
            ("per_network", &self.per_network),
            ("per_wide_network", &self.per_wide_network),
            ("per_domain", &self.per_domain),
            ("per_large_provider", &self.per_large_provider),
            ("per_petition", &self.per_petition),
        ];
        let singles = [
            ("mail_per_domain", self.mail_per_domain),
            ("mail_per_large_provider", self.mail_per_large_provider),
        ];
        let all = groups
            .iter()
            .flat_map(|(name, rates)| rates.iter().map(move |r| (*name, *r)))
            .chain(singles);
        for (name, rate) in all {
            anyhow::ensure!(rate.limit > 0, "budgets.{name}: limit must be at least 1");
            anyhow::ensure!(
                (1..=7 * 86_400).contains(&rate.window_secs),
                "budgets.{name}: window_secs must be between 1 and 604800, got {}",
                rate.window_secs
            );
        }
        anyhow::ensure!(
            self.allowed_multiplier >= 1,
            "budgets.allowed_multiplier must be at least 1"
        );
        Ok(())
    }

    /// Whether `domain` (canonical, lower-case) is one of the large providers, matched on the
    /// exact name or its registrable domain.
    pub fn is_large_provider(&self, domain: &str) -> bool {
        let registrable = registrable_domain(domain);
        self.large_providers
            .iter()
            .any(|p| p.eq_ignore_ascii_case(domain) || p.eq_ignore_ascii_case(&registrable))
    }

    /// Whether `ip` is in an allow-listed network.
    pub fn is_allowed_network(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.allowed_networks.iter().any(|n| n.contains(&ip))
    }

    /// The budgets one signature takes, in the order the store checks them (see
    /// [`OverBudget`]): per registrable e-mail domain, per address, network and wide network,
    /// per petition. `ip_hash_of` is the keyed hash applied to the CIDR labels (see the module
    /// doc); no raw address reaches a key. Without a client address (should not happen behind
    /// a proxy we trust) only the domain and petition budgets apply.
    pub fn budgets_for(
        &self,
        petition: &str,
        ip: Option<IpAddr>,
        ip_hash_of: impl Fn(&str) -> String,
        email_domain: &str,
    ) -> Vec<Budget> {
        let domain = registrable_domain(email_domain);
        let large = self.is_large_provider(email_domain);
        let multiplier = match ip {
            Some(ip) if self.is_allowed_network(ip) => self.allowed_multiplier,
            _ => 1,
        };
        let (domain_rates, domain_over) = if large {
            (&self.per_large_provider, OverBudget::Alarm)
        } else {
            (&self.per_domain, OverBudget::Hold)
        };

        let mut out = Vec::new();
        let mut push =
            |scope: &str, middle: Option<&str>, rates: &[Rate], mult: u32, over: OverBudget| {
                for r in rates {
                    let key = match middle {
                        Some(m) => format!("{scope}:{}:{m}:{petition}", r.window_secs),
                        None => format!("{scope}:{}:{petition}", r.window_secs),
                    };
                    out.push(Budget {
                        key,
                        limit: r.limit.saturating_mul(mult),
                        window_secs: r.window_secs,
                        over,
                    });
                }
            };
        push("dom", Some(&domain), domain_rates, 1, domain_over);
        if let Some(ip) = ip {
            let defer = OverBudget::Defer;
            push(
                "addr",
                Some(&ip_hash_of(&address_label(ip))),
                &self.per_address,
                multiplier,
                defer,
            );
            push(
                "net",
                Some(&ip_hash_of(&prefix_label(ip))),
                &self.per_network,
                multiplier,
                defer,
            );
            push(
                "wide",
                Some(&ip_hash_of(&wide_label(ip))),
                &self.per_wide_network,
                multiplier,
                defer,
            );
        }
        push("pet", None, &self.per_petition, 1, OverBudget::Alarm);
        out
    }

    /// The site-wide mail ceiling's budget (`mail_site`).
    pub fn site_mail_budget(&self) -> Budget {
        let rate = self.mail_site;
        Budget::new(
            format!("mailall:{}", rate.window_secs),
            rate.limit,
            rate.window_secs,
        )
    }

    /// The per-domain mail budget, taken (`Store::take_budget`) before sending a confirmation;
    /// counted on the registrable domain, so that subdomains of one domain share it.
    pub fn mail_budget(&self, email_domain: &str) -> Budget {
        let domain = registrable_domain(email_domain);
        let rate = if self.is_large_provider(email_domain) {
            self.mail_per_large_provider
        } else {
            self.mail_per_domain
        };
        Budget::new(
            format!("mail:{}:{domain}", rate.window_secs),
            rate.limit,
            rate.window_secs,
        )
    }
}

/// The start of the window of `key` (the `<window>` of the key format above) that contains
/// `at`: what a unit taken at `at` was counted in, so a signature need not keep it to give the
/// unit back. `None` for a key not in that format.
pub fn window_start_of(key: &str, at: i64) -> Option<i64> {
    let window: i64 = key.split(':').nth(1)?.parse().ok().filter(|w| *w > 0)?;
    Some(at.div_euclid(window) * window)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// A stand-in keyed hash for tests: deterministic, hex, and never the input.
    fn h(label: &str) -> String {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(
            [b"test-pepper:".as_slice(), label.as_bytes()].concat(),
        ))
    }

    fn key_of<'a>(budgets: &'a [Budget], prefix: &str) -> Vec<&'a Budget> {
        budgets
            .iter()
            .filter(|b| b.key.starts_with(prefix))
            .collect()
    }

    #[test]
    fn defaults_are_valid_and_in_the_reference_spirit() {
        let p = BudgetPolicy::default();
        p.validate().unwrap();
        assert_eq!(p.per_address, vec![Rate::new(1, 60), Rate::new(5, 300)]);
        let b = p.budgets_for(
            "noel",
            Some("203.0.113.7".parse().unwrap()),
            h,
            "example.org",
        );
        assert_eq!(b.len(), 6, "{b:?}");
        assert!(b.contains(&Budget::new("pet:3600:noel", 20_000, 3600).with(OverBudget::Alarm)));
        assert_eq!(b[0], Budget::new("dom:3600:example.org:noel", 50, 3600));
        let defer: Vec<&str> = b
            .iter()
            .filter(|b| b.over == OverBudget::Defer)
            .map(|b| b.key.split(':').next().unwrap())
            .collect();
        assert_eq!(defer, ["addr", "addr", "net", "wide"]);
    }

    #[test]
    fn a_keys_window_is_read_back_from_the_key() {
        let p = BudgetPolicy::default();
        let at = 1_764_658_871;
        for b in p.budgets_for(
            "noel",
            Some("203.0.113.7".parse().unwrap()),
            h,
            "example.org",
        ) {
            let start = at - at % i64::from(b.window_secs);
            assert_eq!(window_start_of(&b.key, at), Some(start), "{}", b.key);
        }
        assert_eq!(window_start_of("nonsense", at), None);
        assert_eq!(window_start_of("net:0:x:p", at), None);
    }

    #[test]
    fn labels_are_canonical_networks() {
        let v4: IpAddr = "203.0.113.77".parse().unwrap();
        assert_eq!(address_label(v4), "203.0.113.77/32");
        assert_eq!(prefix_label(v4), "203.0.113.0/24");
        let v6: IpAddr = "2001:db8:1:2:3:4:5:6".parse().unwrap();
        assert_eq!(address_label(v6), "2001:db8:1:2::/64");
        assert_eq!(prefix_label(v6), "2001:db8:1::/48");
        let mapped: IpAddr = "::ffff:203.0.113.77".parse().unwrap();
        assert_eq!(prefix_label(mapped), "203.0.113.0/24");
    }

    #[test]
    fn ipv4_groups_by_slash_24() {
        let p = BudgetPolicy::default();
        let a = p.budgets_for("p", Some("198.51.100.1".parse().unwrap()), h, "x.org");
        let b = p.budgets_for("p", Some("198.51.100.254".parse().unwrap()), h, "x.org");
        let c = p.budgets_for("p", Some("198.51.101.1".parse().unwrap()), h, "x.org");
        assert_eq!(
            key_of(&a, "net:"),
            key_of(&b, "net:"),
            "same /24 shares the network budget"
        );
        assert_ne!(key_of(&a, "net:"), key_of(&c, "net:"), "next /24 does not");
        assert_ne!(
            key_of(&a, "addr:"),
            key_of(&b, "addr:"),
            "each address has its own budget"
        );
    }

    #[test]
    fn ipv6_groups_by_slash_64_and_slash_48() {
        let p = BudgetPolicy::default();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let a = p.budgets_for("p", Some(ip("2001:db8:1:2::1")), h, "x.org");
        let same64 = p.budgets_for(
            "p",
            Some(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")),
            h,
            "x.org",
        );
        let same48 = p.budgets_for("p", Some(ip("2001:db8:1:ffff::1")), h, "x.org");
        let other48 = p.budgets_for("p", Some(ip("2001:db8:2:2::1")), h, "x.org");
        assert_eq!(
            key_of(&a, "addr:"),
            key_of(&same64, "addr:"),
            "one /64 is one address"
        );
        assert_ne!(key_of(&a, "addr:"), key_of(&same48, "addr:"));
        assert_eq!(
            key_of(&a, "net:"),
            key_of(&same48, "net:"),
            "one /48 is one network"
        );
        assert_ne!(key_of(&a, "net:"), key_of(&other48, "net:"));
    }

    #[test]
    fn subdomains_share_their_registrable_domain_budgets() {
        let p = BudgetPolicy::default();
        let ip = Some("192.0.2.1".parse().unwrap());
        let keys: std::collections::HashSet<String> = (0..120)
            .map(|i| {
                let b = p.budgets_for("p", ip, h, &format!("mx{i}.attacker.example.com"));
                key_of(&b, "dom:")[0].key.clone()
            })
            .collect();
        assert_eq!(keys.len(), 1, "{keys:?}");
        assert!(keys.contains("dom:3600:example.com:p"));
        assert_eq!(
            p.mail_budget("mx7.attacker.example.com").key,
            "mail:3600:example.com"
        );
        assert_eq!(
            p.mail_budget("x.example.co.uk").key,
            "mail:3600:example.co.uk"
        );
    }

    #[test]
    fn wide_networks_are_slash_16_and_slash_32() {
        let p = BudgetPolicy::default();
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        let wide = |s: &str| key_of(&p.budgets_for("p", ip(s), h, "x.org"), "wide:")[0].clone();
        assert_eq!(wide("198.51.1.1"), wide("198.51.200.9"));
        assert_ne!(wide("198.51.1.1"), wide("198.52.1.1"));
        assert_eq!(wide("2001:db8:1::1"), wide("2001:db8:ffff::1"));
        assert_ne!(wide("2001:db8:1::1"), wide("2001:db9:1::1"));
        assert_eq!(wide("198.51.1.1").limit, 1_000);
        assert_eq!(wide_label(ip("2001:db8:1::1").unwrap()), "2001:db8::/32");
        let site: BudgetPolicy =
            toml::from_str("per_wide_network = [{ limit = 5000, window_secs = 3600 }]").unwrap();
        assert_eq!(
            key_of(&site.budgets_for("p", ip("10.0.0.1"), h, "x.org"), "wide:")[0].limit,
            5000
        );
        let bad = BudgetPolicy {
            per_wide_network: vec![Rate::new(0, 60)],
            ..Default::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("per_wide_network"));
        // No address: only the domain and the petition budgets.
        let none = p.budgets_for("p", None, h, "x.org");
        let scopes: Vec<&str> = none
            .iter()
            .map(|b| b.key.split(':').next().unwrap())
            .collect();
        assert_eq!(scopes, ["dom", "pet"]);
    }

    #[test]
    fn budgets_are_per_petition() {
        let p = BudgetPolicy::default();
        let ip = "192.0.2.1".parse().unwrap();
        let a = p.budgets_for("one", Some(ip), h, "x.org");
        let b = p.budgets_for("two", Some(ip), h, "x.org");
        for (x, y) in a.iter().zip(&b) {
            assert_ne!(x.key, y.key);
            assert!(x.key.ends_with(":one") && y.key.ends_with(":two"));
        }
    }

    #[test]
    fn large_providers_get_a_higher_domain_and_mail_budget() {
        let p = BudgetPolicy::default();
        let ip = "192.0.2.1".parse().unwrap();
        let small = p.budgets_for("p", Some(ip), h, "example.org");
        let large = p.budgets_for("p", Some(ip), h, "Gmail.com");
        assert_eq!(key_of(&small, "dom:")[0].limit, 50);
        assert_eq!(key_of(&large, "dom:")[0].limit, 5_000);
        assert_eq!(key_of(&large, "dom:")[0].key, "dom:3600:gmail.com:p");
        assert_eq!(
            p.mail_budget("example.org"),
            Budget::new("mail:3600:example.org", 30, 3600)
        );
        // A large provider's domain budget is an alarm, a small domain's holds.
        assert_eq!(key_of(&large, "dom:")[0].over, OverBudget::Alarm);
        assert_eq!(key_of(&small, "dom:")[0].over, OverBudget::Hold);
        assert_eq!(p.mail_budget("ORANGE.fr").limit, 10_000);
        assert_eq!(p.mail_budget("ORANGE.fr").key, "mail:3600:orange.fr");
    }

    #[test]
    fn allow_listed_networks_get_the_multiplier() {
        let p: BudgetPolicy = toml::from_str(
            r#"
            allowed_networks = ["10.20.0.0/16", "2001:db8:cafe::/48"]
            allowed_multiplier = 50
            "#,
        )
        .unwrap();
        let inside = p.budgets_for("p", Some("10.20.3.4".parse().unwrap()), h, "x.org");
        let outside = p.budgets_for("p", Some("10.21.3.4".parse().unwrap()), h, "x.org");
        let v6 = p.budgets_for("p", Some("2001:db8:cafe:1::9".parse().unwrap()), h, "x.org");
        let limits = |b: &[Budget], s| key_of(b, s).iter().map(|b| b.limit).collect::<Vec<_>>();
        assert_eq!(limits(&inside, "addr:"), vec![50, 250]);
        assert_eq!(limits(&inside, "net:"), vec![1000]);
        assert_eq!(limits(&inside, "wide:"), vec![50_000]);
        assert_eq!(limits(&outside, "addr:"), vec![1, 5]);
        assert_eq!(limits(&v6, "net:"), vec![1000]);
        // Domain and petition budgets are not raised by a network allow-list.
        assert_eq!(limits(&inside, "dom:"), vec![50]);
        assert_eq!(limits(&inside, "pet:"), vec![20_000]);
    }

    #[test]
    fn policy_reads_from_a_budgets_table_and_rejects_unknown_keys() {
        #[derive(Deserialize)]
        struct Site {
            budgets: BudgetPolicy,
        }
        let site: Site = toml::from_str(
            r#"
            [budgets]
            per_address = [{ limit = 2, window_secs = 60 }]
            large_providers = ["example.net"]
            mail_per_domain = { limit = 3, window_secs = 600 }
            "#,
        )
        .unwrap();
        let p = site.budgets;
        assert_eq!(p.per_address, vec![Rate::new(2, 60)]);
        assert!(p.is_large_provider("example.net") && !p.is_large_provider("gmail.com"));
        assert_eq!(
            p.per_network,
            BudgetPolicy::default().per_network,
            "missing keys take defaults"
        );
        assert_eq!(p.mail_budget("a.org").limit, 3);

        let err = toml::from_str::<Site>("[budgets]\nper_adress = []\n")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("per_adress"), "{err}");
        let err = toml::from_str::<Site>("[budgets]\nallowed_networks = [\"10.0.0.0/33\"]\n")
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("allowed_networks") || err.to_string().contains("invalid"),
            "{err}"
        );
    }

    #[test]
    fn validation_names_the_bad_field() {
        let p = BudgetPolicy {
            per_network: vec![Rate::new(0, 60)],
            ..Default::default()
        };
        assert!(p
            .validate()
            .unwrap_err()
            .to_string()
            .contains("per_network"));
        let p = BudgetPolicy {
            mail_per_domain: Rate::new(1, 0),
            ..Default::default()
        };
        assert!(p
            .validate()
            .unwrap_err()
            .to_string()
            .contains("mail_per_domain"));
        let p = BudgetPolicy {
            allowed_multiplier: 0,
            ..Default::default()
        };
        assert!(p.validate().is_err());
    }

    fn any_ip() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<u32>().prop_map(|n| IpAddr::V4(Ipv4Addr::from(n))),
            any::<u128>().prop_map(|n| IpAddr::V6(Ipv6Addr::from(n))),
        ]
    }

    proptest! {
        #[test]
        fn keys_never_contain_the_raw_address(ip in any_ip(), petition in "[a-z0-9-]{1,20}") {
            let p = BudgetPolicy::default();
            let budgets = p.budgets_for(&petition, Some(ip), h, "example.org");
            let canonical = ip.to_canonical();
            let mut forms = vec![ip.to_string(), canonical.to_string(), address_label(ip), prefix_label(ip)];
            if let IpAddr::V4(v4) = canonical {
                let o = v4.octets();
                forms.push(format!("{}.{}.{}.", o[0], o[1], o[2]));
            }
            for b in &budgets {
                for f in &forms {
                    // Short forms such as "::" or "1.2.3." could appear inside a hex hash by
                    // chance only if they were hex; keys are `scope:window:hex:slug`.
                    prop_assert!(!b.key.contains(f.as_str()), "{} contains {}", b.key, f);
                }
            }
        }

        #[test]
        fn same_slash_24_same_network_key(a in any::<[u8; 3]>(), x in any::<u8>(), y in any::<u8>()) {
            let p = BudgetPolicy::default();
            let ip1 = IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], x));
            let ip2 = IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], y));
            let k1 = p.budgets_for("p", Some(ip1), h, "d.org");
            let k2 = p.budgets_for("p", Some(ip2), h, "d.org");
            prop_assert_eq!(key_of(&k1, "net:"), key_of(&k2, "net:"));
            prop_assert_eq!(x == y, key_of(&k1, "addr:") == key_of(&k2, "addr:"));
        }
    }
}
