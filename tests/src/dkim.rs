//! Checking DKIM signatures with an independent implementation, Stalwart's `mail-auth`, whose
//! DNS answers come from a map the test fills (no network): the record a collective would
//! publish at `<selector>._domainkey.<domain>`.

use mail_auth::common::parse::TxtRecordParser;
use mail_auth::common::verify::DomainKey;
use mail_auth::{AuthenticatedMessage, DkimResult, MessageAuthenticator, Parameters, Txt};
use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Instant;

/// The DNS TXT answers, by name.
#[derive(Default)]
struct TxtRecords(Mutex<HashMap<String, Txt>>);

impl mail_auth::ResolverCache<String, Txt> for TxtRecords {
    fn get<Q>(&self, name: &Q) -> Option<Txt>
    where
        String: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.lock().unwrap().get(name).cloned()
    }

    fn remove<Q>(&self, name: &Q) -> Option<Txt>
    where
        String: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.lock().unwrap().remove(name)
    }

    fn insert(&self, key: String, value: Txt, _: Instant) {
        self.0.lock().unwrap().insert(key, value);
    }
}

/// `raw` with every bare LF made CRLF, as it travelled.
fn crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 40);
    for (i, b) in raw.iter().enumerate() {
        if *b == b'\n' && (i == 0 || raw[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(*b);
    }
    out
}

/// The verdict of every DKIM signature of `raw`, the key of `selector._domainkey.domain`
/// being the TXT record `record` (`v=DKIM1; k=ed25519; p=...`). Empty: no signature.
pub async fn verify(raw: &[u8], selector: &str, domain: &str, record: &str) -> Vec<DkimResult> {
    let parse = || Txt::from(DomainKey::parse(record.as_bytes()).expect("a valid DKIM key record"));
    let records = TxtRecords::default();
    let name = format!("{selector}._domainkey.{domain}");
    {
        let mut map = records.0.lock().unwrap();
        map.insert(format!("{name}."), parse());
        map.insert(name, parse());
    }
    // On the wire (SMTP) lines end in CRLF; a maildir stores them with LF only.
    let wire = crlf(raw);
    let message = AuthenticatedMessage::parse(&wire).expect("a parsable message");
    // Never queried: every answer is in the map.
    let authenticator = MessageAuthenticator::new_cloudflare().expect("a resolver");
    authenticator
        .verify_dkim(Parameters::new(&message).with_txt_cache(&records))
        .await
        .iter()
        .map(|o| o.result().clone())
        .collect()
}
