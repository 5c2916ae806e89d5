//! E-mail syntax and canonical form. The canonical form is the de-duplication key (hashed with
//! the pepper), so that `Jane.Doe+petition@GoogleMail.com` and `janedoe@gmail.com` sign once.
//! Mail is still sent to the address as typed.

use std::str::FromStr;

/// Longest address we accept (RFC 5321 path limit).
pub const MAX_EMAIL: usize = 254;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalEmail {
    /// The address as typed, trimmed (where mail goes).
    pub address: String,
    /// Lower-case, provider rules applied: the dedup key before hashing.
    pub canonical: String,
    /// Lower-case domain of the canonical form.
    pub domain: String,
}

/// Checks the syntax and returns the canonical form, or a short reason for the form.
pub fn canonicalize(input: &str) -> Result<CanonicalEmail, &'static str> {
    let address = input.trim();
    if address.is_empty() {
        return Err("Please enter your e-mail address.");
    }
    if address.len() > MAX_EMAIL {
        return Err("This e-mail address is too long.");
    }
    // The crate implements RFC 5322 addr-spec; we additionally refuse the quoted, commented and
    // IP-literal forms real providers never hand out, and require a dotted domain.
    let parsed = email_address::EmailAddress::from_str(address)
        .map_err(|_| "This e-mail address is not valid.")?;
    let (local, domain) = (parsed.local_part(), parsed.domain());
    if local.starts_with('"')
        || domain.starts_with('[')
        || !domain.contains('.')
        || domain.ends_with('.')
        || domain
            .split('.')
            .any(|l| l.is_empty() || l.starts_with('-') || l.ends_with('-'))
        || address
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '(' || c == ')')
    {
        return Err("This e-mail address is not valid.");
    }
    let mut domain = domain.to_lowercase();
    let mut local = local.to_lowercase();
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
        return Err("This e-mail address is not valid.");
    }
    let canonical = format!("{local}@{domain}");
    // The canonical form must itself be a valid address (`a.+x@…` would give `a.@…`).
    if !email_address::EmailAddress::is_valid(&canonical) {
        return Err("This e-mail address is not valid.");
    }
    Ok(CanonicalEmail {
        address: address.to_string(),
        canonical,
        domain,
    })
}

/// True if `domain` is `protected` or one of its subdomains (`senat.fr` covers `x.senat.fr`).
pub fn domain_matches(domain: &str, protected: &str) -> bool {
    let protected = protected
        .trim()
        .trim_start_matches('.')
        .to_ascii_lowercase();
    !protected.is_empty()
        && (domain == protected
            || (domain.len() > protected.len()
                && domain.ends_with(&protected)
                && domain.as_bytes()[domain.len() - protected.len() - 1] == b'.'))
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
        assert_eq!(a.address, "Jane.Doe+petition@GoogleMail.com");
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
