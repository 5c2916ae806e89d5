//! E-mail syntax and the one canonical identity of a mailbox.
//!
//! Mail systems treat many spellings as one mailbox: `ＳＥＮＡＴ.fr`, `senat.ｆｒ` and `senat.fr`
//! are one domain by UTS #46 (IDNA), `aſſemblee-nationale.fr` is `assemblee-nationale.fr`, and
//! case never matters in practice. Every spelling is brought to one form before anything is
//! decided on it: the domain to its A-label (UTS #46, the `idna` crate), the local part to NFKC
//! and lower case (refused when it is still not ASCII after that, as few providers deliver to
//! such addresses and their equivalences are not settled), then the provider rules (`+tags`,
//! gmail dots). The dedup key, the protected-domain and block-list matching, the budgets and
//! the mail's recipient all use that form.

use icu_normalizer::ComposingNormalizerBorrowed;
use std::str::FromStr;

/// Longest address we accept (RFC 5321 path limit).
pub const MAX_EMAIL: usize = 254;

const INVALID: &str = "This e-mail address is not valid.";
const NOT_ASCII: &str = "Please write the part before @ in plain letters, digits and . _ - + \
     (this address has characters that mail systems do not handle alike).";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalEmail {
    /// Where mail goes: the local part in NFKC lower case, `@`, the domain's A-label (tags and
    /// dots kept, as the signer typed them).
    pub address: String,
    /// The dedup key before hashing: `address` with the provider rules applied.
    pub canonical: String,
    /// The A-label domain of the canonical form (`xn--…` for internationalised names).
    pub domain: String,
}

/// The local part in NFKC, lower case, NFKC again (so that compatibility forms such as
/// full-width letters, ligatures or `ſ` meet their plain spelling); `None` if not ASCII then.
fn fold_local(local: &str) -> Option<String> {
    let nfkc = ComposingNormalizerBorrowed::new_nfkc();
    let folded = nfkc
        .normalize(&nfkc.normalize(local).to_lowercase())
        .into_owned();
    folded.is_ascii().then_some(folded)
}

/// The A-label form of a domain by UTS #46 (`ＳＥＮＡＴ.fr` → `senat.fr`, `bücher.de` →
/// `xn--bcher-kva.de`), with the STD3 and DNS length rules; `None` when it is not a valid name.
pub fn domain_to_ascii(domain: &str) -> Option<String> {
    let ascii = idna::domain_to_ascii_strict(domain.trim()).ok()?;
    (!ascii.is_empty()).then_some(ascii)
}

/// The registrable domain (eTLD+1 by the Public Suffix List, bundled in the `psl` crate) of an
/// A-label domain: `a.b.example.co.uk` → `example.co.uk`. One owner controls every name under
/// it (a wildcard MX makes as many mailboxes as wanted), so budgets are counted on it. A name
/// that is itself a public suffix, or unknown to the list, stands for itself.
pub fn registrable_domain(domain: &str) -> String {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    psl::domain_str(&domain)
        .map(str::to_string)
        .unwrap_or(domain)
}

/// Checks the syntax and returns the canonical form, or a short reason for the form.
pub fn canonicalize(input: &str) -> Result<CanonicalEmail, &'static str> {
    let typed = input.trim();
    if typed.is_empty() {
        return Err("Please enter your e-mail address.");
    }
    if typed.len() > MAX_EMAIL {
        return Err("This e-mail address is too long.");
    }
    if typed
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '(' || c == ')')
    {
        return Err(INVALID);
    }
    let (local, domain) = typed.rsplit_once('@').ok_or(INVALID)?;
    // Quoted local parts and IP literals are refused before any mapping could hide them.
    if local.starts_with('"') || domain.starts_with('[') || local.is_empty() {
        return Err(INVALID);
    }
    let domain = domain_to_ascii(domain).ok_or(INVALID)?;
    let local = fold_local(local).ok_or(NOT_ASCII)?;
    let address = format!("{local}@{domain}");
    if address.len() > MAX_EMAIL {
        return Err("This e-mail address is too long.");
    }
    // The crate implements RFC 5322 addr-spec; we additionally refuse the quoted, commented and
    // IP-literal forms real providers never hand out, and require a dotted domain.
    let parsed = email_address::EmailAddress::from_str(&address).map_err(|_| INVALID)?;
    let (local, domain) = (parsed.local_part(), parsed.domain());
    if local.starts_with('"')
        || !domain.contains('.')
        || domain.ends_with('.')
        || domain
            .split('.')
            .any(|l| l.is_empty() || l.starts_with('-') || l.ends_with('-'))
    {
        return Err(INVALID);
    }
    let mut domain = domain.to_string();
    let mut local = local.to_string();
    // Sub-addressing (`user+tag`) is supported by nearly every large provider: one person.
    if let Some(i) = local.find('+') {
        local.truncate(i);
    }
    if domain == "googlemail.com" {
        domain = "gmail.com".to_string();
    }
    if domain == "gmail.com" {
        local.retain(|c| c != '.');
    }
    if local.is_empty() {
        return Err(INVALID);
    }
    let canonical = format!("{local}@{domain}");
    // The canonical form must itself be a valid address (`a.+x@…` would give `a.@…`).
    if !email_address::EmailAddress::is_valid(&canonical) {
        return Err(INVALID);
    }
    Ok(CanonicalEmail {
        address,
        canonical,
        domain,
    })
}

/// True if the A-label `domain` is `listed` or one of its subdomains (`senat.fr` covers
/// `x.senat.fr`). The listed name is brought to its A-label first, so a configuration may
/// write it in any spelling.
pub fn domain_matches(domain: &str, listed: &str) -> bool {
    let listed = listed.trim().trim_start_matches('.');
    let listed = domain_to_ascii(listed).unwrap_or_else(|| listed.to_ascii_lowercase());
    !listed.is_empty()
        && (domain == listed
            || (domain.len() > listed.len()
                && domain.ends_with(&listed)
                && domain.as_bytes()[domain.len() - listed.len() - 1] == b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn spellings_of_one_gmail_address_are_one() {
        let a = canonicalize("Jane.Doe+petition@GoogleMail.com").unwrap();
        let b = canonicalize("janedoe@gmail.com").unwrap();
        let c = canonicalize("  J.A.N.E.D.O.E@GMAIL.COM ").unwrap();
        assert_eq!(a.canonical, "janedoe@gmail.com");
        assert_eq!(a.canonical, b.canonical);
        assert_eq!(b.canonical, c.canonical);
        assert_eq!(a.address, "jane.doe+petition@googlemail.com");
    }

    #[test]
    fn dots_matter_elsewhere_but_tags_and_case_do_not() {
        let a = canonicalize("Jean.Dupont+x@Example.ORG").unwrap();
        assert_eq!(a.canonical, "jean.dupont@example.org");
        assert_ne!(
            a.canonical,
            canonicalize("jeandupont@example.org").unwrap().canonical
        );
    }

    #[test]
    fn invalid_addresses_are_refused() {
        for bad in [
            "",
            "plain",
            "@example.org",
            "a@",
            "a@localhost",
            "a b@example.org",
            "a@-x.org",
            "\"q\"@example.org",
            "a@[127.0.0.1]",
            "a@example.org.",
            "+@example.org",
        ] {
            assert!(canonicalize(bad).is_err(), "{bad:?} accepted");
        }
        assert!(canonicalize(&format!("{}@example.org", "a".repeat(250))).is_err());
    }

    #[test]
    fn idna_spellings_of_one_domain_are_one() {
        for spelling in [
            "jean@ＳＥＮＡＴ.fr",
            "jean@senat.ｆｒ",
            "jean@SENAT.FR",
            "jean@senat\u{3002}fr",
            "ＪＥＡＮ@senat.fr",
        ] {
            let c = canonicalize(spelling).unwrap_or_else(|e| panic!("{spelling}: {e}"));
            assert_eq!(c.canonical, "jean@senat.fr", "{spelling}");
            assert_eq!(c.address, "jean@senat.fr", "{spelling}");
            assert!(domain_matches(&c.domain, "senat.fr"));
        }
        let long_s = canonicalize("x@aſſemblee-nationale.fr").unwrap();
        assert_eq!(long_s.domain, "assemblee-nationale.fr");
        assert!(domain_matches(&long_s.domain, "assemblee-nationale.fr"));
        let idn = canonicalize("Anna@Bücher.de").unwrap();
        assert_eq!(idn.domain, "xn--bcher-kva.de");
        assert!(domain_matches(&idn.domain, "bücher.de"));
        // Full-width letters and case in a gmail address: one mailbox.
        let a = canonicalize("Jane.Doe@ｇｍａｉｌ.com").unwrap();
        let b = canonicalize("JANEDOE@Gmail.COM").unwrap();
        assert_eq!(a.canonical, b.canonical);
        assert_eq!(a.address, "jane.doe@gmail.com");
    }

    #[test]
    fn non_ascii_local_parts_are_refused_with_a_reason() {
        let e = canonicalize("josé@example.org").unwrap_err();
        assert_eq!(e, NOT_ASCII);
        assert!(canonicalize("страж@example.org").is_err());
        // Compatibility forms that fold to ASCII are accepted.
        assert_eq!(
            canonicalize("ﬀ@example.org").unwrap().canonical,
            "ff@example.org"
        );
        assert!(canonicalize("a@exa mple.org").is_err());
        assert!(canonicalize("a@xn--.org").is_err());
    }

    #[test]
    fn registrable_domains_by_the_public_suffix_list() {
        assert_eq!(registrable_domain("gmail.com"), "gmail.com");
        assert_eq!(
            registrable_domain("mx7.attacker.example.com"),
            "example.com"
        );
        assert_eq!(registrable_domain("a.b.example.co.uk"), "example.co.uk");
        assert_eq!(
            registrable_domain("x.assemblee-nationale.fr"),
            "assemblee-nationale.fr"
        );
        assert_eq!(registrable_domain("Sub.Gouv.FR"), "sub.gouv.fr");
    }

    #[test]
    fn protected_domains_cover_subdomains_only() {
        assert!(domain_matches("senat.fr", "senat.fr"));
        assert!(domain_matches("x.senat.fr", "senat.fr"));
        assert!(!domain_matches("notsenat.fr", "senat.fr"));
        assert!(!domain_matches("senat.fr.evil.org", "senat.fr"));
    }

    proptest! {
        #[test]
        fn canonical_form_is_idempotent_and_case_insensitive(
            local in "[a-zA-Z0-9][a-zA-Z0-9._+-]{0,20}", domain in "[a-z]{1,10}\\.(org|com|fr)",
        ) {
            let addr = format!("{local}@{domain}");
            if let Ok(c) = canonicalize(&addr) {
                let again = canonicalize(&c.canonical).unwrap();
                prop_assert_eq!(&again.canonical, &c.canonical);
                let upper = canonicalize(&addr.to_uppercase()).unwrap();
                prop_assert_eq!(&upper.canonical, &c.canonical);
                prop_assert!(c.canonical.len() <= MAX_EMAIL);
                prop_assert_eq!(c.canonical.to_lowercase(), c.canonical.clone());
            }
        }

        #[test]
        fn gmail_dots_and_tags_never_matter(local in "[a-z0-9]{1,12}", tag in "[a-z0-9]{0,8}", dots in proptest::collection::vec(0usize..12, 0..4)) {
            let mut dotted = local.clone();
            for d in dots { if d > 0 && d < dotted.len() && !dotted[..d].ends_with('.') && !dotted[d..].starts_with('.') { dotted.insert(d, '.'); } }
            let addr = if tag.is_empty() { format!("{dotted}@googlemail.com") } else { format!("{dotted}+{tag}@gmail.com") };
            let c = canonicalize(&addr).unwrap();
            prop_assert_eq!(c.canonical, format!("{local}@gmail.com"));
        }

        #[test]
        fn never_panics(s in ".{0,300}") {
            let _ = canonicalize(&s);
        }
    }
}
