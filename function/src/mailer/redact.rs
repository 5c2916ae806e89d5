//! Mail errors without the recipient's address. SMTP servers and Amazon SES echo the address
//! in their refusals (`550 5.1.1 <jeanne@example.org>: Recipient address rejected`), and those
//! errors end in the function's logs: every mailer passes its errors through [`redact`], which
//! keeps the reason and the domain (which provider refuses is worth knowing) but never the
//! mailbox.

use regex::Regex;
use std::sync::LazyLock;

/// Anything shaped like an address: a local part, `@`, a domain.
static ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"[^\s<>"'(),;:\[\]@]+@([A-Za-z0-9\-.\[\]:]+[A-Za-z0-9\]])"#).expect("valid regex")
});

/// The pseudonymous form logged instead of an address: `***@example.org`.
pub fn pseudonym(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((_, domain)) => format!("***@{domain}"),
        None => "***".to_string(),
    }
}

/// `text` with the recipient `to` (in any case) and any other address replaced by their
/// pseudonym.
pub fn scrub(text: &str, to: &str) -> String {
    let mut out = text.to_string();
    if !to.is_empty() {
        let exact = Regex::new(&format!("(?i){}", regex::escape(to))).expect("escaped");
        out = exact.replace_all(&out, pseudonym(to).as_str()).into_owned();
    }
    ADDRESS.replace_all(&out, "***@$1").into_owned()
}

/// The error, with its whole chain flattened into one message, scrubbed of addresses.
pub fn redact(err: anyhow::Error, to: &str) -> anyhow::Error {
    anyhow::anyhow!(scrub(&format!("{err:#}"), to))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_address_survives() {
        let to = "Jeanne.Martin+petition@Example.org";
        let text = "while sending a mail over SMTP: permanent error (550): 5.1.1 \
                    <jeanne.martin+petition@example.org>: Recipient address rejected; \
                    also \"bob@other.test\" (alias of x_y@sub.mail.example)";
        let s = scrub(text, to);
        assert!(!s.to_lowercase().contains("jeanne"), "{s}");
        assert!(!s.contains("bob@") && !s.contains("x_y@"), "{s}");
        assert!(s.contains("<***@Example.org>"), "{s}");
        assert!(s.contains("***@other.test") && s.contains("***@sub.mail.example"));
        assert!(
            s.contains("Recipient address rejected"),
            "the reason stays: {s}"
        );
        assert_eq!(pseudonym("a@b.test"), "***@b.test");
    }

    #[test]
    fn the_chain_is_kept() {
        let e = anyhow::anyhow!("rejected <a@b.test>").context("while sending to a@b.test");
        let r = format!("{:#}", redact(e, "a@b.test"));
        assert_eq!(r, "while sending to ***@b.test: rejected <***@b.test>");
    }
}
