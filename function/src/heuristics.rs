//! Heuristic scores, not blocks: signs of automation recorded on the signature (its `flags`)
//! and shown in `cahier admin` reports. A flag never changes the answer to the client and never
//! stops a signature on its own; an organizer decides with `cahier admin invalidate --flag`.
//!
//! Flags (stable strings, stored with the signature):
//! - `honeypot`: the visually hidden `website` field was filled;
//! - `fast_fill`: the form was filled in under [`FAST_FILL_MS`], or the theme's script ran but
//!   sent no `fill_ms`;
//! - `disposable_domain`: the e-mail domain (or a parent) is in the disposable-domain list;
//! - `name_burst`: the same normalised name was seen [`NameBurst`]'s threshold times within its
//!   window (in this instance's memory);
//! - `name_looks_like_email`: the name contains an `@` address or equals the mailbox;
//! - `name_has_link`: the name contains a URL or a `www.` host;
//! - `name_without_letters`: the name has no letter at all;
//! - `random_mailbox`: the mailbox looks generated (letters and digits interleaved, or no vowels).

use anyhow::Context;
use lru::LruCache;
use std::collections::{HashSet, VecDeque};
use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::Mutex;

pub const HONEYPOT: &str = "honeypot";
pub const FAST_FILL: &str = "fast_fill";
pub const DISPOSABLE_DOMAIN: &str = "disposable_domain";
pub const NAME_BURST: &str = "name_burst";
pub const NAME_LOOKS_LIKE_EMAIL: &str = "name_looks_like_email";
pub const NAME_HAS_LINK: &str = "name_has_link";
pub const NAME_WITHOUT_LETTERS: &str = "name_without_letters";
pub const RANDOM_MAILBOX: &str = "random_mailbox";

/// Below this many milliseconds between page load and submit, a human has not read the text.
pub const FAST_FILL_MS: u64 = 1_000;

/// The bundled list; organizers can point to their own copy ([`DisposableDomains::load`]).
const BUNDLED_DISPOSABLE: &str = include_str!("../data/disposable-domains.txt");

/// What the sign path knows about one submission, after decoding and canonicalisation.
#[derive(Debug, Clone, Copy)]
pub struct HeuristicInput<'a> {
    /// The name as typed.
    pub name: &'a str,
    /// The canonical e-mail address.
    pub email: &'a str,
    /// Its canonical domain.
    pub email_domain: &'a str,
    /// The honeypot field; must be empty.
    pub website: &'a str,
    /// Milliseconds from page load to submit, set by the theme's script.
    pub fill_ms: Option<u64>,
    /// The request came from the theme's script (`fetch` with `Accept: application/json`), so
    /// `fill_ms` should have been set.
    pub js: bool,
    /// Keyed hash of the normalised name (`NewSignature::name_hash`); empty to skip burst checks.
    pub name_hash: &'a str,
    /// Unix seconds.
    pub now: i64,
    pub disposable: &'a DisposableDomains,
    /// The instance's burst counter; `None` to skip it (e.g. in admin re-scoring).
    pub burst: Option<&'a NameBurst>,
}

/// The flags of one submission, in a stable order. Records the name in `burst` as a side effect.
pub fn assess(input: &HeuristicInput) -> Vec<String> {
    let mut flags = Vec::new();
    let mut flag = |f: &str| flags.push(f.to_string());
    if !input.website.trim().is_empty() {
        flag(HONEYPOT);
    }
    match input.fill_ms {
        Some(ms) if ms < FAST_FILL_MS => flag(FAST_FILL),
        None if input.js => flag(FAST_FILL),
        _ => {}
    }
    if input.disposable.contains(input.email_domain) {
        flag(DISPOSABLE_DOMAIN);
    }
    if let Some(burst) = input.burst {
        if !input.name_hash.is_empty()
            && burst.observe(input.name_hash, input.now) >= burst.threshold
        {
            flag(NAME_BURST);
        }
    }
    let local = input.email.rsplit_once('@').map_or(input.email, |(l, _)| l);
    if name_looks_like_email(input.name, local) {
        flag(NAME_LOOKS_LIKE_EMAIL);
    }
    if name_has_link(input.name) {
        flag(NAME_HAS_LINK);
    }
    if !input.name.chars().any(char::is_alphabetic) {
        flag(NAME_WITHOUT_LETTERS);
    }
    if looks_random(local) {
        flag(RANDOM_MAILBOX);
    }
    flags
}

fn name_looks_like_email(name: &str, local: &str) -> bool {
    let name = name.trim();
    if let Some((l, d)) = name.rsplit_once('@') {
        if !l.trim().is_empty() && d.contains('.') {
            return true;
        }
    }
    // "jdupont1987" typed as the name of "jdupont1987@…": a script reusing the mailbox.
    !local.is_empty()
        && !name.contains(' ')
        && name.eq_ignore_ascii_case(local)
        && local.chars().any(|c| c.is_ascii_digit())
}

fn name_has_link(name: &str) -> bool {
    let lower = name.to_lowercase();
    lower.contains("http://")
        || lower.contains("https://")
        || lower.contains("www.")
        || lower.contains("://")
}

/// A generated mailbox: at least 10 characters once separators are removed, and either letters
/// and digits interleaved at least 4 times (`x7k2m9q4`) or hardly any vowel (`qwrtzpkldfgh`).
fn looks_random(local: &str) -> bool {
    let chars: Vec<char> = local
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if chars.len() < 10 {
        return false;
    }
    let transitions = chars
        .windows(2)
        .filter(|w| w[0].is_ascii_digit() != w[1].is_ascii_digit())
        .count();
    let letters: Vec<char> = chars
        .iter()
        .copied()
        .filter(char::is_ascii_alphabetic)
        .collect();
    let vowels = letters.iter().filter(|c| "aeiouy".contains(**c)).count();
    transitions >= 4 || (letters.len() >= 10 && vowels * 10 < letters.len())
}

/// Disposable mail domains, matched on the domain or any parent domain.
#[derive(Debug, Clone, Default)]
pub struct DisposableDomains {
    set: HashSet<String>,
}

impl DisposableDomains {
    /// The list bundled with this build (`function/data/disposable-domains.txt`).
    pub fn builtin() -> Self {
        Self::parse(BUNDLED_DISPOSABLE, "bundled disposable-domains.txt")
            .expect("the bundled list is valid")
    }

    /// The organizer's file if given, else the bundled list.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        match path {
            Some(p) => Self::from_file(p),
            None => Ok(Self::builtin()),
        }
    }

    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "while reading the disposable-domain list {}",
                path.display()
            )
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// One domain per line; blank lines and `#` comments ignored. Errors name `origin:line`.
    pub fn parse(text: &str, origin: &str) -> anyhow::Result<Self> {
        let mut set = HashSet::new();
        for (n, line) in text.lines().enumerate() {
            let entry = line.split('#').next().unwrap_or("").trim();
            if entry.is_empty() {
                continue;
            }
            let domain = entry.to_ascii_lowercase();
            let ok = domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains("..")
                && domain
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
            anyhow::ensure!(ok, "{origin}:{}: not a domain name: {entry:?}", n + 1);
            set.insert(domain);
        }
        Ok(DisposableDomains { set })
    }

    /// `domain` or one of its parents is listed (`x.mailinator.com` matches `mailinator.com`).
    pub fn contains(&self, domain: &str) -> bool {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let mut rest = domain.as_str();
        loop {
            if self.set.contains(rest) {
                return true;
            }
            match rest.split_once('.') {
                Some((_, parent)) if parent.contains('.') => rest = parent,
                _ => return false,
            }
        }
    }

    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
}

/// Counts identical names (by keyed hash) in a sliding window, in bounded memory: at most
/// `capacity` names (least recently seen evicted) and `threshold` timestamps per name.
/// Per instance: under Lambda each instance sees only its share, which is enough for a score.
pub struct NameBurst {
    inner: Mutex<LruCache<String, VecDeque<i64>>>,
    window_secs: i64,
    threshold: usize,
}

impl std::fmt::Debug for NameBurst {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NameBurst")
            .field("window_secs", &self.window_secs)
            .field("threshold", &self.threshold)
            .finish_non_exhaustive()
    }
}

impl Default for NameBurst {
    /// Five identical names within ten minutes, 10,000 names remembered.
    fn default() -> Self {
        NameBurst::new(10_000, 600, 5)
    }
}

impl NameBurst {
    pub fn new(capacity: usize, window_secs: i64, threshold: usize) -> Self {
        NameBurst {
            inner: Mutex::new(LruCache::new(
                NonZeroUsize::new(capacity.max(1)).expect("max(1)"),
            )),
            window_secs: window_secs.max(1),
            threshold: threshold.max(1),
        }
    }

    pub fn threshold(&self) -> usize {
        self.threshold
    }

    /// Records one sighting of `key` at `now`; returns how many sightings fall in the window
    /// ending at `now`, this one included (capped at the threshold).
    pub fn observe(&self, key: &str, now: i64) -> usize {
        let mut cache = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let times = cache.get_or_insert_mut(key.to_string(), VecDeque::new);
        while times.front().is_some_and(|&t| t <= now - self.window_secs) {
            times.pop_front();
        }
        times.push_back(now);
        while times.len() > self.threshold {
            times.pop_front();
        }
        times.len()
    }

    /// Names currently remembered.
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(d: &'a DisposableDomains) -> HeuristicInput<'a> {
        HeuristicInput {
            name: "Jeanne Dupont",
            email: "jeanne.dupont@example.org",
            email_domain: "example.org",
            website: "",
            fill_ms: Some(45_000),
            js: true,
            name_hash: "",
            now: 1_000_000,
            disposable: d,
            burst: None,
        }
    }

    #[test]
    fn an_ordinary_signature_has_no_flag() {
        let d = DisposableDomains::builtin();
        assert!(assess(&input(&d)).is_empty());
        // Without JS there is no fill time, and that is fine.
        assert!(assess(&HeuristicInput {
            js: false,
            fill_ms: None,
            ..input(&d)
        })
        .is_empty());
    }

    #[test]
    fn honeypot() {
        let d = DisposableDomains::default();
        assert_eq!(
            assess(&HeuristicInput {
                website: "http://spam",
                ..input(&d)
            }),
            vec![HONEYPOT]
        );
        assert!(assess(&HeuristicInput {
            website: "  ",
            ..input(&d)
        })
        .is_empty());
    }

    #[test]
    fn fast_fill() {
        let d = DisposableDomains::default();
        assert_eq!(
            assess(&HeuristicInput {
                fill_ms: Some(300),
                ..input(&d)
            }),
            vec![FAST_FILL]
        );
        assert_eq!(
            assess(&HeuristicInput {
                fill_ms: Some(999),
                js: false,
                ..input(&d)
            }),
            vec![FAST_FILL]
        );
        assert!(assess(&HeuristicInput {
            fill_ms: Some(1_000),
            ..input(&d)
        })
        .is_empty());
        assert_eq!(
            assess(&HeuristicInput {
                fill_ms: None,
                js: true,
                ..input(&d)
            }),
            vec![FAST_FILL]
        );
    }

    #[test]
    fn disposable_domain_from_the_bundled_list_and_subdomains() {
        let d = DisposableDomains::builtin();
        assert!(d.len() >= 100, "{}", d.len());
        for dom in [
            "yopmail.com",
            "MAILINATOR.com",
            "x.mailinator.com",
            "jetable.fr.nf",
            "guerrillamail.com.",
        ] {
            assert!(d.contains(dom), "{dom}");
        }
        for dom in [
            "gmail.com",
            "example.org",
            "com",
            "fr.nf",
            "notmailinator.com",
        ] {
            assert!(!d.contains(dom), "{dom}");
        }
        let flags = assess(&HeuristicInput {
            email: "a@yopmail.com",
            email_domain: "yopmail.com",
            ..input(&d)
        });
        assert_eq!(flags, vec![DISPOSABLE_DOMAIN]);
    }

    #[test]
    fn disposable_list_from_a_file_replaces_the_bundled_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("list.txt");
        std::fs::write(&path, "# mine\nthrowaway.test  # comment\n\nExample.NET\n").unwrap();
        let d = DisposableDomains::load(Some(&path)).unwrap();
        assert_eq!(d.len(), 2);
        assert!(
            d.contains("throwaway.test") && d.contains("example.net") && !d.contains("yopmail.com")
        );

        std::fs::write(&path, "ok.test\nnot a domain\n").unwrap();
        let err = format!("{:#}", DisposableDomains::load(Some(&path)).unwrap_err());
        assert!(
            err.contains("list.txt:2") && err.contains("not a domain"),
            "{err}"
        );
        let err = format!(
            "{:#}",
            DisposableDomains::load(Some(&dir.path().join("missing"))).unwrap_err()
        );
        assert!(err.contains("missing"), "{err}");
    }

    #[test]
    fn name_burst_flags_the_threshold_th_identical_name_in_the_window() {
        let d = DisposableDomains::default();
        let burst = NameBurst::new(100, 600, 3);
        let at = |now, hash| {
            assess(&HeuristicInput {
                name_hash: hash,
                now,
                burst: Some(&burst),
                ..input(&d)
            })
        };
        assert!(at(1000, "h1").is_empty());
        assert!(at(1010, "h1").is_empty());
        assert!(at(1020, "h2").is_empty(), "another name has its own count");
        assert_eq!(at(1030, "h1"), vec![NAME_BURST]);
        assert_eq!(at(1040, "h1"), vec![NAME_BURST]);
        // After the window, the old sightings no longer count.
        assert!(at(5000, "h1").is_empty());
        // No hash, no burst check.
        assert!(at(5001, "").is_empty() && at(5002, "").is_empty() && at(5003, "").is_empty());
    }

    #[test]
    fn name_burst_memory_is_bounded() {
        let burst = NameBurst::new(50, 600, 4);
        for i in 0..10_000 {
            burst.observe(&format!("name-{i}"), 1000);
        }
        assert_eq!(burst.len(), 50);
        for _ in 0..100 {
            burst.observe("same", 1000);
        }
        assert_eq!(
            burst.observe("same", 1000),
            4,
            "per-name history capped at the threshold"
        );
        // The least recently seen name was evicted: it starts again at 1.
        assert_eq!(burst.observe("name-0", 1000), 1);
    }

    #[test]
    fn names_that_look_like_emails_links_or_no_name() {
        let d = DisposableDomains::default();
        let f = |name, email| {
            assess(&HeuristicInput {
                name,
                email,
                ..input(&d)
            })
        };
        assert_eq!(
            f("bob@example.org", "bob@example.org"),
            vec![NAME_LOOKS_LIKE_EMAIL]
        );
        assert_eq!(
            f("jd1987", "jd1987@example.org"),
            vec![NAME_LOOKS_LIKE_EMAIL]
        );
        assert!(
            f("Jean", "jean@example.org").is_empty(),
            "a first name equal to the mailbox is common"
        );
        assert_eq!(
            f("Buy now https://x.test", "a@example.org"),
            vec![NAME_HAS_LINK]
        );
        assert_eq!(
            f("visit www.spam.test", "a@example.org"),
            vec![NAME_HAS_LINK]
        );
        assert_eq!(f("12345 !!", "a@example.org"), vec![NAME_WITHOUT_LETTERS]);
        assert!(f("Zoë Åberg-Nguyễn", "zoe@example.org").is_empty());
        assert!(f("李小龙", "li@example.org").is_empty());
    }

    #[test]
    fn random_mailboxes() {
        let d = DisposableDomains::default();
        let f = |email| assess(&HeuristicInput { email, ..input(&d) });
        assert_eq!(f("x7k2m9q4w8z1@example.org"), vec![RANDOM_MAILBOX]);
        assert_eq!(f("qwrtzpkldfgh@example.org"), vec![RANDOM_MAILBOX]);
        for ok in [
            "jean.dupont1987@example.org",
            "marie-claire.martin@example.org",
            "a1b2@example.org",
        ] {
            assert!(f(ok).is_empty(), "{ok}");
        }
    }

    #[test]
    fn flags_accumulate_in_a_stable_order() {
        let d = DisposableDomains::builtin();
        let flags = assess(&HeuristicInput {
            name: "x@y.test",
            email: "k3j4h5g6f7d8@yopmail.com",
            email_domain: "yopmail.com",
            website: "filled",
            fill_ms: Some(10),
            ..input(&d)
        });
        assert_eq!(
            flags,
            vec![
                HONEYPOT,
                FAST_FILL,
                DISPOSABLE_DOMAIN,
                NAME_LOOKS_LIKE_EMAIL,
                RANDOM_MAILBOX
            ]
        );
    }
}
