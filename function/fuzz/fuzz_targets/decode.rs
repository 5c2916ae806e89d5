//! Fuzzes the request decoders and the e-mail canonicaliser: no input may panic, and whatever
//! is accepted must respect the documented bounds.
//! Run: `cd function/fuzz && cargo +nightly fuzz run decode -- -max_total_time=60`
#![no_main]

use cahier_function::decode::{decode_sign, decode_token, BodyKind, MAX_BODY, MAX_NAME};
use cahier_function::manifest::{Field, FieldKind, Petition};
use libfuzzer_sys::fuzz_target;

fn petition() -> Petition {
    Petition {
        slug: "p".into(),
        languages: vec!["fr".into(), "en".into()],
        titles: Default::default(),
        opens_at: None,
        closes_at: None,
        goal: 1,
        fields: vec![
            Field { name: "postcode".into(), kind: FieldKind::Postcode, required: true, max_len: 10 },
            Field { name: "comment".into(), kind: FieldKind::Textarea, required: false, max_len: 500 },
            Field { name: "union".into(), kind: FieldKind::Checkbox, required: false, max_len: 3 },
        ],
        public_signers: true,
        newsletter: false,
        text_sha256: Default::default(),
        consent_sha256: Default::default(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let kind = if selector & 1 == 0 { BodyKind::Json } else { BodyKind::Form };
    if let Ok(form) = decode_sign(kind, body, &petition()) {
        assert!(body.len() <= MAX_BODY);
        assert!(!form.name.is_empty() && form.name.chars().count() <= MAX_NAME);
        assert!(form.consent && !form.captcha.is_empty());
        assert!(form.fields.contains_key("postcode"));
        assert!(form.fields.keys().all(|k| ["postcode", "comment", "union"].contains(&k.as_str())));
        assert!(!form.newsletter);
        if let Some(e) = form.fields.get("comment") {
            assert!(e.chars().count() <= 500);
        }
    }
    let _ = decode_token(body);
    if let Ok(s) = std::str::from_utf8(body) {
        if let Ok(c) = cahier_function::email::canonicalize(s) {
            assert_eq!(cahier_function::email::canonicalize(&c.canonical).map(|d| d.canonical), Ok(c.canonical.clone()));
        }
    }
});
