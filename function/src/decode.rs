//! Strict, bounded decoding of request bodies. Pure CPU: it runs before anything that costs.
//!
//! The sign form arrives as JSON (the theme's `fetch`) or as a plain form post, with the field
//! names of the brief's sign-form convention. Unknown or repeated fields, over-long values,
//! control characters (bidi overrides among them) and undeclared fields are refused with one
//! error per field.

use crate::manifest::{FieldKind, Petition};
use crate::problem::FieldError;
use std::collections::BTreeMap;

/// Largest body the API reads (DESIGN.md: 413 above).
pub const MAX_BODY: usize = 8 * 1024;
pub const MAX_NAME: usize = 200;
/// hCaptcha responses are a few KiB at most.
pub const MAX_CAPTCHA: usize = 6 * 1024;
pub const MAX_TOKEN: usize = 512;

/// How the body is encoded, from its Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Json,
    Form,
}

impl BodyKind {
    /// `None` for anything else (415). Parameters such as `charset=utf-8` are ignored.
    pub fn from_content_type(value: &str) -> Option<BodyKind> {
        let essence = value.split(';').next().unwrap_or("").trim();
        if essence.eq_ignore_ascii_case("application/json") {
            Some(BodyKind::Json)
        } else if essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            Some(BodyKind::Form)
        } else {
            None
        }
    }
}

/// A decoded, validated signature form (values trimmed).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SignForm {
    pub name: String,
    pub email: String,
    pub consent: bool,
    pub captcha: String,
    /// Declared fields, by name; empty values left out.
    pub fields: BTreeMap<String, String>,
    pub public: bool,
    pub newsletter: bool,
    pub lang: Option<String>,
    /// Honeypot: must stay empty; a filled one flags the signature, it does not refuse it.
    pub website: String,
    pub fill_ms: Option<u64>,
}

/// One raw value before validation.
enum Raw {
    Text(String),
    Bool(bool),
    Number(u64),
}

fn raw_pairs(kind: BodyKind, body: &[u8]) -> Result<Vec<(String, Raw)>, FieldError> {
    match kind {
        BodyKind::Form => {
            let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
                .map_err(|_| FieldError::new("body", "The form body is not valid."))?;
            Ok(pairs.into_iter().map(|(k, v)| (k, Raw::Text(v))).collect())
        }
        BodyKind::Json => {
            let JsonPairs(pairs) = serde_json::from_slice(body)
                .map_err(|_| FieldError::new("body", "The body must be a JSON object."))?;
            pairs
                .into_iter()
                .map(|(k, v)| {
                    let raw = match v {
                        serde_json::Value::String(s) => Raw::Text(s),
                        serde_json::Value::Bool(b) => Raw::Bool(b),
                        serde_json::Value::Number(n) if n.as_u64().is_some() => {
                            Raw::Number(n.as_u64().unwrap_or_default())
                        }
                        _ => return Err(FieldError::new(k, "Must be a string.")),
                    };
                    Ok((k, raw))
                })
                .collect()
        }
    }
}

/// A JSON object's members in order, repeated keys kept: `serde_json::Map` would keep only the
/// last of `{"email": "a@x", "email": "b@y"}`, so a repeated key is refused like in a form body.
struct JsonPairs(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for JsonPairs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = JsonPairs;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<JsonPairs, A::Error> {
                let mut pairs = Vec::new();
                while let Some(pair) = map.next_entry::<String, serde_json::Value>()? {
                    pairs.push(pair);
                }
                Ok(JsonPairs(pairs))
            }
        }
        d.deserialize_map(Visitor)
    }
}

fn text(field: &str, raw: Raw, max: usize, multiline: bool) -> Result<String, FieldError> {
    let s = match raw {
        Raw::Text(s) => s,
        Raw::Number(n) => n.to_string(),
        Raw::Bool(_) => return Err(FieldError::new(field, "Must be text.")),
    };
    let s = s.trim();
    if s.chars().count() > max {
        return Err(FieldError::new(field, format!("At most {max} characters.")));
    }
    if s.chars().any(|c| {
        (c.is_control() && !(multiline && (c == '\n' || c == '\r' || c == '\t')))
            || is_bidi_control(c)
    }) {
        return Err(FieldError::new(
            field,
            "Contains characters that are not allowed.",
        ));
    }
    Ok(s.to_string())
}

/// Characters that reorder or hide text: the explicit directional embeddings, overrides and
/// isolates of UAX #9 (§2.1–2.4), the line and paragraph separators (bidi paragraph breaks),
/// the deprecated format characters, and the invisible ones a name could hide behind (zero
/// width space, word joiner and invisible operators, byte order mark, tag characters). A name
/// on the public list could otherwise reorder the text after it ("Trojan Source") or pass for
/// another. LRM, RLM and ALM stay allowed (they only mark a direction and cannot span other
/// text), and so do ZWNJ and ZWJ, which Persian, Indic scripts and emoji need.
fn is_bidi_control(c: char) -> bool {
    matches!(c,
        '\u{202A}'..='\u{202E}'
        | '\u{2066}'..='\u{2069}'
        | '\u{2028}' | '\u{2029}'
        | '\u{206A}'..='\u{206F}'
        | '\u{200B}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}'
        | '\u{E0000}'..='\u{E007F}')
}

/// Checkbox semantics of the form: "yes"/"on"/"true"/true checked; absent or ""/"no"/false not.
fn checkbox(field: &str, raw: Raw) -> Result<bool, FieldError> {
    match raw {
        Raw::Bool(b) => Ok(b),
        Raw::Text(s) => match s.as_str() {
            "yes" | "on" | "true" | "1" => Ok(true),
            "" | "no" | "off" | "false" | "0" => Ok(false),
            _ => Err(FieldError::new(field, "Must be a checkbox value.")),
        },
        Raw::Number(n) if n <= 1 => Ok(n == 1),
        Raw::Number(_) => Err(FieldError::new(field, "Must be a checkbox value.")),
    }
}

/// Decodes and validates a sign form for `petition`. Every problem is reported, one per field.
pub fn decode_sign(
    kind: BodyKind,
    body: &[u8],
    petition: &Petition,
) -> Result<SignForm, Vec<FieldError>> {
    if body.len() > MAX_BODY {
        return Err(vec![FieldError::new("body", "The body is too large.")]);
    }
    let pairs = raw_pairs(kind, body).map_err(|e| vec![e])?;
    let mut form = SignForm::default();
    let mut errors = Vec::new();
    let mut seen: BTreeMap<String, ()> = BTreeMap::new();
    let mut has_consent = false;
    for (key, raw) in pairs {
        if seen.insert(key.clone(), ()).is_some() {
            errors.push(FieldError::new(key, "Given more than once."));
            continue;
        }
        let result: Result<(), FieldError> = (|| {
            match key.as_str() {
                "name" => form.name = text("name", raw, MAX_NAME, false)?,
                "email" => form.email = text("email", raw, crate::email::MAX_EMAIL, false)?,
                "consent" => {
                    has_consent = true;
                    form.consent = checkbox("consent", raw)?
                }
                "h-captcha-response" => {
                    form.captcha = text("h-captcha-response", raw, MAX_CAPTCHA, false)?
                }
                "public" if petition.public_signers => form.public = checkbox("public", raw)?,
                "newsletter" if petition.newsletter => {
                    form.newsletter = checkbox("newsletter", raw)?
                }
                "lang" => {
                    let lang = text("lang", raw, 16, false)?;
                    if !lang.is_empty() {
                        if !petition.languages.contains(&lang) {
                            return Err(FieldError::new("lang", "Unknown language."));
                        }
                        form.lang = Some(lang);
                    }
                }
                "website" => form.website = text("website", raw, 200, false)?,
                "fill_ms" => {
                    let v = text("fill_ms", raw, 12, false)?;
                    if !v.is_empty() {
                        form.fill_ms = Some(
                            v.parse()
                                .map_err(|_| FieldError::new("fill_ms", "Must be a number."))?,
                        );
                    }
                }
                other => {
                    let Some(field) = petition.fields.iter().find(|f| f.name == other) else {
                        return Err(FieldError::new(other, "Unknown field."));
                    };
                    let value = if field.kind == FieldKind::Checkbox {
                        if checkbox(other, raw)? {
                            "yes".to_string()
                        } else {
                            String::new()
                        }
                    } else {
                        let max = (field.max_len as usize).clamp(1, 2000);
                        text(other, raw, max, field.kind == FieldKind::Textarea)?
                    };
                    if !value.is_empty() {
                        form.fields.insert(other.to_string(), value);
                    }
                }
            }
            Ok(())
        })();
        if let Err(e) = result {
            errors.push(e);
        }
    }
    let failed = |errors: &[FieldError], f: &str| errors.iter().any(|e| e.field == f);
    if form.name.is_empty() && !failed(&errors, "name") {
        errors.push(FieldError::new("name", "Please enter your name."));
    }
    if form.email.is_empty() && !failed(&errors, "email") {
        errors.push(FieldError::new(
            "email",
            "Please enter your e-mail address.",
        ));
    }
    if (!has_consent || !form.consent) && !failed(&errors, "consent") {
        errors.push(FieldError::new("consent", "Please tick the box to agree."));
    }
    if form.captcha.is_empty() && !failed(&errors, "h-captcha-response") {
        errors.push(FieldError::new(
            "h-captcha-response",
            "Please complete the captcha.",
        ));
    }
    for field in petition.fields.iter().filter(|f| f.required) {
        if !form.fields.contains_key(&field.name) && !failed(&errors, &field.name) {
            errors.push(FieldError::new(
                field.name.clone(),
                "This field is required.",
            ));
        }
    }
    if errors.is_empty() {
        Ok(form)
    } else {
        Err(errors)
    }
}

/// Decodes `{"token": "..."}` (confirm and erase), strictly.
pub fn decode_token(body: &[u8]) -> Result<String, Vec<FieldError>> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct TokenBody {
        token: String,
    }
    let parsed: TokenBody = serde_json::from_slice(body)
        .map_err(|_| vec![FieldError::new("token", "Expected {\"token\": \"...\"}.")])?;
    let token = parsed.token.trim();
    if token.is_empty() || token.len() > MAX_TOKEN {
        return Err(vec![FieldError::new("token", "This link is not valid.")]);
    }
    Ok(token.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Field;
    use proptest::prelude::*;

    fn petition() -> Petition {
        Petition {
            slug: "p".into(),
            languages: vec!["fr".into(), "en".into()],
            titles: Default::default(),
            opens_at: None,
            closes_at: None,
            goal: 10,
            fields: vec![
                Field {
                    name: "postcode".into(),
                    kind: FieldKind::Postcode,
                    required: true,
                    max_len: 10,
                },
                Field {
                    name: "comment".into(),
                    kind: FieldKind::Textarea,
                    required: false,
                    max_len: 500,
                },
            ],
            public_signers: true,
            public_city: false,
            newsletter: false,
            text_sha256: Default::default(),
            consent_sha256: Default::default(),
            geography_threshold: None,
        }
    }

    const OK_FORM: &str = "name=Jane+Doe&email=jane%40example.org&consent=yes&h-captcha-response=tok&postcode=75001&lang=fr&website=&fill_ms=4200&public=yes";

    #[test]
    fn form_and_json_decode_to_the_same() {
        let a = decode_sign(BodyKind::Form, OK_FORM.as_bytes(), &petition()).unwrap();
        let json = r#"{"name":"Jane Doe","email":"jane@example.org","consent":true,"h-captcha-response":"tok","postcode":"75001","lang":"fr","website":"","fill_ms":4200,"public":"yes"}"#;
        let b = decode_sign(BodyKind::Json, json.as_bytes(), &petition()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.fields.get("postcode").map(String::as_str), Some("75001"));
        assert!(a.public && !a.newsletter && a.consent);
    }

    #[test]
    fn every_problem_is_reported_per_field() {
        let body = "email=x&newsletter=yes&bogus=1&comment=a%00b&lang=de";
        let errors = decode_sign(BodyKind::Form, body.as_bytes(), &petition()).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        for f in [
            "newsletter",
            "bogus",
            "comment",
            "lang",
            "name",
            "consent",
            "h-captcha-response",
            "postcode",
        ] {
            assert!(fields.contains(&f), "{f} missing from {fields:?}");
        }
    }

    #[test]
    fn repeated_fields_and_bad_json_are_refused() {
        let body = format!("{OK_FORM}&name=Other");
        let errors = decode_sign(BodyKind::Form, body.as_bytes(), &petition()).unwrap_err();
        assert_eq!(errors[0].field, "name");
        assert!(decode_sign(BodyKind::Json, b"[1,2]", &petition()).is_err());
        assert!(decode_sign(BodyKind::Json, br#"{"name":{"a":1}}"#, &petition()).is_err());
        assert!(decode_token(br#"{"token":"a","x":1}"#).is_err());
        assert_eq!(decode_token(br#"{"token":" abc "}"#).unwrap(), "abc");
    }

    #[test]
    fn repeated_json_keys_are_refused_naming_the_key() {
        // Last-wins would let `email` be checked as one address and stored as another.
        let json = r#"{"name":"Jane","email":"jane@example.org","consent":true,"h-captcha-response":"t","postcode":"1","email":"other@example.org"}"#;
        let errors = decode_sign(BodyKind::Json, json.as_bytes(), &petition()).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].field, "email");
        assert_eq!(errors[0].detail, "Given more than once.");
        assert!(decode_token(br#"{"token":"a","token":"b"}"#).is_err());
    }

    #[test]
    fn lengths_are_bounded() {
        let long = format!(
            "name={}&email=a%40b.org&consent=yes&h-captcha-response=t&postcode=1",
            "x".repeat(MAX_NAME + 1)
        );
        let errors = decode_sign(BodyKind::Form, long.as_bytes(), &petition()).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "name");
        let postcode =
            "name=a&email=a%40b.org&consent=yes&h-captcha-response=t&postcode=12345678901";
        assert_eq!(
            decode_sign(BodyKind::Form, postcode.as_bytes(), &petition()).unwrap_err()[0].field,
            "postcode"
        );
    }

    #[test]
    fn bidi_overrides_are_refused_marks_are_not() {
        let body = |name: &str| {
            serde_urlencoded::to_string([
                ("name", name),
                ("email", "a@b.org"),
                ("consent", "yes"),
                ("h-captcha-response", "t"),
                ("postcode", "75001"),
            ])
            .unwrap()
        };
        for bad in [
            "Alice\u{202E}tnemevuom",
            "\u{2067}Bob",
            "Eve\u{2069}",
            "\u{202A}x",
            "Line\u{2029}break",
            "Ad\u{200B}min",
            "\u{FEFF}Zoe",
            "Tag\u{E0041}",
        ] {
            let errors =
                decode_sign(BodyKind::Form, body(bad).as_bytes(), &petition()).unwrap_err();
            assert_eq!(errors.len(), 1, "{bad:?}");
            assert_eq!(errors[0].field, "name");
        }
        let comment = "name=a&email=a%40b.org&consent=yes&h-captcha-response=t&postcode=1&comment=x%E2%80%AEy";
        assert_eq!(
            decode_sign(BodyKind::Form, comment.as_bytes(), &petition()).unwrap_err()[0].field,
            "comment"
        );
        // A right-to-left mark in a mixed-script name is a letter's business, not an attack.
        let form = decode_sign(
            BodyKind::Form,
            body("Dana \u{200F}דנה").as_bytes(),
            &petition(),
        )
        .unwrap();
        assert_eq!(form.name, "Dana \u{200F}דנה");
        // A zero-width non-joiner inside a Persian name is spelling.
        let persian = "\u{0645}\u{06CC}\u{200C}\u{0634}\u{0648}\u{062F}";
        let form = decode_sign(BodyKind::Form, body(persian).as_bytes(), &petition()).unwrap();
        assert_eq!(form.name, persian);
    }

    proptest! {
        #[test]
        fn decoder_never_panics_and_bounds_hold(body in proptest::collection::vec(any::<u8>(), 0..2048), json in any::<bool>()) {
            let kind = if json { BodyKind::Json } else { BodyKind::Form };
            if let Ok(form) = decode_sign(kind, &body, &petition()) {
                prop_assert!(form.name.chars().count() <= MAX_NAME && !form.name.is_empty());
                prop_assert!(form.consent);
                prop_assert!(form.fields.keys().all(|k| k == "postcode" || k == "comment"));
            }
        }

        #[test]
        fn valid_values_round_trip(name in "[\\p{L} '-]{1,60}", postcode in "[0-9]{1,10}") {
            let body = serde_urlencoded::to_string([
                ("name", name.as_str()), ("email", "a@b.org"), ("consent", "yes"),
                ("h-captcha-response", "t"), ("postcode", postcode.as_str()),
            ]).unwrap();
            let trimmed = name.trim();
            let res = decode_sign(BodyKind::Form, body.as_bytes(), &petition());
            if trimmed.is_empty() {
                prop_assert!(res.is_err());
            } else {
                let form = res.unwrap();
                prop_assert_eq!(form.name, trimmed);
                prop_assert_eq!(form.fields.get("postcode").unwrap(), &postcode);
            }
        }
    }
}
