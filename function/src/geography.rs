//! Geography: where a petition's confirmed signatures come from, by country and, in France, by
//! département — `GET /api/petitions/{slug}/regions.json`, which the petition page charts.
//!
//! At signing, [`region_of`] reduces the plaintext form to one coarse code before the form is
//! sealed: `FR-75`, `FR-2A`, `FR-971` (a French postcode), `FR` (France without a usable
//! postcode), `BE` (any other country given as an ISO 3166-1 alpha-2 code), or nothing. Only that
//! code is stored in clear on the signature, never the postcode or the town, so that what the
//! store can publish is no finer than what the page shows. The store keeps a counter per region
//! that follows the count exactly (in the count's own transaction: confirm, release, invalidate,
//! hold and erase move both), so the chart never disagrees with the count and needs no scan.
//!
//! Published: the groups of at least the petition's threshold ([`DEFAULT_THRESHOLD`], never under
//! [`MIN_THRESHOLD`]); smaller groups are left out and only their total is given (`hidden`), so
//! that a département with two signers does not point at them. Never a name or a postcode.
//!
//! Built at most once per [`REGIONS_TTL`] per instance and cached as long by the CDN, like the
//! public list of signers: a flood of requests costs the store one read a minute per petition.

use crate::decode::SignForm;
use crate::manifest::{FieldKind, Petition};
use crate::problem::Problem;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Smallest group published when the petition does not say (`geography_threshold`).
pub const DEFAULT_THRESHOLD: u32 = 10;
/// No petition publishes smaller groups than this, whatever its front matter says: below it a
/// group comes too close to naming people in a small département or country.
pub const MIN_THRESHOLD: u32 = 5;
pub const REGIONS_TTL: Duration = Duration::from_secs(60);
pub const REGIONS_CACHE_CONTROL: &str =
    "public, max-age=60, s-maxage=60, stale-while-revalidate=120, stale-if-error=600";
/// Bodies one instance keeps (one per petition); past it the cache starts again empty.
const CACHED: usize = 4096;

/// ISO 3166-1 alpha-2, the officially assigned codes (249), sorted for a binary search. A
/// country field's value counts only if it is one of these: free text ("France", "Belgium")
/// would need per-language name tables, and a wrong guess would put people in the wrong place.
const COUNTRIES: [&str; 249] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

/// The ISO 3166-1 alpha-2 code `value` spells (any case, surrounding spaces ignored).
pub fn country_code(value: &str) -> Option<&'static str> {
    let v = value.trim().to_ascii_uppercase();
    COUNTRIES
        .binary_search(&v.as_str())
        .ok()
        .map(|i| COUNTRIES[i])
}

/// The département of a French postcode (five digits; spaces inside are ignored, as in
/// "75 001"): `01`–`95` from its first two digits, Corsica split at 20200 (`2A` below, `2B`
/// from it), the overseas départements and collectivities from the first three (`971`–`976`,
/// `984`–`988`). `None` for anything else, such as Monaco's 98000 or a Belgian 1000.
pub fn departement(postcode: &str) -> Option<String> {
    let digits: String = postcode.chars().filter(|c| *c != ' ').collect();
    if digits.len() != 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let two: u32 = digits[..2].parse().ok()?;
    let three: u32 = digits[..3].parse().ok()?;
    match two {
        20 => Some(if three < 202 { "2A" } else { "2B" }.to_string()),
        1..=95 => Some(digits[..2].to_string()),
        97 if (971..=976).contains(&three) => Some(three.to_string()),
        98 if (984..=988).contains(&three) => Some(three.to_string()),
        _ => None,
    }
}

/// The first non-empty answer to a field of `kind`.
fn answer<'a>(petition: &Petition, form: &'a SignForm, kind: FieldKind) -> Option<&'a str> {
    petition
        .fields
        .iter()
        .filter(|f| f.kind == kind)
        .find_map(|f| form.fields.get(&f.name))
        .map(String::as_str)
        .filter(|v| !v.trim().is_empty())
}

/// The coarse region a signature is counted in, from its form, when the petition publishes its
/// geography: the country when the signer gave one as an ISO code (and, for France, the
/// département of the postcode), a French postcode's département when no country was given,
/// else nothing. A country given in another form ("France") counts nowhere rather than
/// somewhere by guess; so does a postcode that is not French when no country says where it is.
pub fn region_of(petition: &Petition, form: &SignForm) -> Option<String> {
    petition.geography_threshold?;
    let postcode = answer(petition, form, FieldKind::Postcode).and_then(departement);
    match answer(petition, form, FieldKind::Country) {
        Some(country) => match country_code(country)? {
            "FR" => Some(postcode.map_or_else(|| "FR".to_string(), |d| format!("FR-{d}"))),
            other => Some(other.to_string()),
        },
        None => postcode.map(|d| format!("FR-{d}")),
    }
}

/// What the endpoint publishes of a petition's region counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Published {
    /// Signatures by country (ISO code), France with all its départements.
    pub countries: BTreeMap<String, u64>,
    /// French signatures by département (`75`, `2A`, `971`).
    pub departements: BTreeMap<String, u64>,
    /// Signatures left out for being in a group under the threshold, each counted once: with
    /// its country when the country is too small, else with its département (a French
    /// signature in a small département counts here even though France itself is shown).
    pub hidden: u64,
}

/// Groups the store's counters (`FR-75`, `FR`, `BE`) into countries and départements and
/// leaves out every group under `threshold`, adding it to `hidden`.
pub fn publish(regions: &BTreeMap<String, u64>, threshold: u32) -> Published {
    let mut countries: BTreeMap<String, u64> = BTreeMap::new();
    let mut departements: BTreeMap<String, u64> = BTreeMap::new();
    for (region, &n) in regions.iter().filter(|(_, n)| **n > 0) {
        match region.split_once('-') {
            Some((country, dept)) => {
                *countries.entry(country.to_string()).or_default() += n;
                if country == "FR" {
                    *departements.entry(dept.to_string()).or_default() += n;
                }
            }
            None => *countries.entry(region.clone()).or_default() += n,
        }
    }
    let threshold = u64::from(threshold.max(MIN_THRESHOLD));
    let small = |groups: &BTreeMap<String, u64>| -> u64 {
        groups.values().filter(|n| **n < threshold).sum()
    };
    // A signature is hidden once: with its country when the country is left out, else with
    // its département (France shown, the département too small).
    let mut hidden = small(&countries);
    if countries.get("FR").is_some_and(|n| *n >= threshold) {
        hidden += small(&departements);
    }
    countries.retain(|_, n| *n >= threshold);
    departements.retain(|_, n| *n >= threshold);
    Published {
        countries,
        departements,
        hidden,
    }
}

/// A built body: when, for which threshold, and the bytes.
type Built = (Instant, u32, Arc<Vec<u8>>);

/// The bodies this instance built lately, by petition.
#[derive(Default)]
pub struct RegionCache {
    built: Mutex<HashMap<String, Built>>,
    /// Held while a body is built, so that a burst at expiry reads the store once.
    building: tokio::sync::Mutex<()>,
}

impl RegionCache {
    fn get(&self, slug: &str, threshold: u32) -> Option<Arc<Vec<u8>>> {
        let built = self.built.lock().unwrap_or_else(|e| e.into_inner());
        built
            .get(slug)
            .filter(|(at, t, _)| at.elapsed() < REGIONS_TTL && *t == threshold)
            .map(|(_, _, body)| body.clone())
    }

    fn put(&self, slug: &str, threshold: u32, body: Arc<Vec<u8>>) {
        let mut built = self.built.lock().unwrap_or_else(|e| e.into_inner());
        if built.len() >= CACHED {
            built.clear();
        }
        built.insert(slug.to_string(), (Instant::now(), threshold, body));
    }
}

#[derive(Serialize)]
struct RegionsBody<'a> {
    petition: &'a str,
    threshold: u32,
    #[serde(flatten)]
    published: Published,
}

/// `GET /api/petitions/{slug}/regions.json` (canonical slug spelling only, as for the count:
/// any other spelling would be a fresh CDN cache key); 404 for a petition that does not
/// publish its geography.
pub async fn regions_json(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    uri: axum::http::Uri,
) -> Response {
    let loaded = state.loaded();
    let Some((petition, threshold)) = loaded
        .manifest
        .petition(&slug)
        .filter(|p| uri.path() == format!("/api/petitions/{}/regions.json", p.slug))
        .and_then(|p| Some((p, p.geography_threshold?.max(MIN_THRESHOLD))))
    else {
        return Problem::not_found("No such petition geography.").into_response();
    };
    let cache = &state.0.regions;
    if let Some(body) = cache.get(&petition.slug, threshold) {
        return cached(body.as_ref().clone());
    }
    let _building = cache.building.lock().await;
    if let Some(body) = cache.get(&petition.slug, threshold) {
        return cached(body.as_ref().clone());
    }
    let regions = match state.0.store.regions(&petition.slug).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "store.regions failed");
            return Problem::unavailable().into_response();
        }
    };
    let body = RegionsBody {
        petition: &petition.slug,
        threshold,
        published: publish(&regions, threshold),
    };
    match serde_json::to_vec(&body) {
        Ok(bytes) => {
            let bytes = Arc::new(bytes);
            cache.put(&petition.slug, threshold, bytes.clone());
            cached(bytes.as_ref().clone())
        }
        Err(e) => {
            tracing::error!(error = %e, "serialising the regions failed");
            Problem::unavailable().into_response()
        }
    }
}

fn cached(body: Vec<u8>) -> Response {
    let mut res = (StatusCode::OK, body).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(REGIONS_CACHE_CONTROL),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Field;

    #[test]
    fn the_country_table_is_complete_sorted_and_unique() {
        assert_eq!(COUNTRIES.len(), 249);
        assert!(
            COUNTRIES.windows(2).all(|w| w[0] < w[1]),
            "sorted, no repeat"
        );
        assert!(COUNTRIES
            .iter()
            .all(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase())));
    }

    #[test]
    fn country_codes_in_any_case_and_nothing_else() {
        assert_eq!(country_code("fr"), Some("FR"));
        assert_eq!(country_code(" Be "), Some("BE"));
        assert_eq!(country_code("DE"), Some("DE"));
        for bad in ["", "F", "FRA", "France", "XX", "UK", "EU", "f r", "ÉS"] {
            assert_eq!(country_code(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn metropolitan_postcodes_give_their_first_two_digits() {
        assert_eq!(departement("75001").as_deref(), Some("75"));
        assert_eq!(departement("01000").as_deref(), Some("01"));
        assert_eq!(departement("69 001").as_deref(), Some("69"));
        assert_eq!(departement("95880").as_deref(), Some("95"));
        assert_eq!(departement("13100").as_deref(), Some("13"));
    }

    #[test]
    fn corsica_is_split_at_20200() {
        assert_eq!(departement("20000").as_deref(), Some("2A"));
        assert_eq!(departement("20090").as_deref(), Some("2A"));
        assert_eq!(departement("20199").as_deref(), Some("2A"));
        assert_eq!(departement("20200").as_deref(), Some("2B"));
        assert_eq!(departement("20600").as_deref(), Some("2B"));
        assert_eq!(departement("20999").as_deref(), Some("2B"));
    }

    #[test]
    fn overseas_take_three_digits() {
        assert_eq!(departement("97100").as_deref(), Some("971"));
        assert_eq!(departement("97133").as_deref(), Some("971"));
        assert_eq!(departement("97200").as_deref(), Some("972"));
        assert_eq!(departement("97300").as_deref(), Some("973"));
        assert_eq!(departement("97400").as_deref(), Some("974"));
        assert_eq!(departement("97500").as_deref(), Some("975"));
        assert_eq!(departement("97600").as_deref(), Some("976"));
        assert_eq!(departement("98400").as_deref(), Some("984"));
        assert_eq!(departement("98600").as_deref(), Some("986"));
        assert_eq!(departement("98714").as_deref(), Some("987"));
        assert_eq!(departement("98800").as_deref(), Some("988"));
    }

    #[test]
    fn anything_else_has_no_departement() {
        for bad in [
            "",
            "7500",
            "750011",
            "75OO1",
            "7500a",
            "-7500",
            "00100",
            "96000",
            "97000",
            "97700",
            "97800",
            "98000",
            "98300",
            "98900",
            "99000",
            "1000",
            "SW1A 1AA",
            "７５００１",
        ] {
            assert_eq!(departement(bad), None, "{bad:?}");
        }
    }

    fn petition(fields: &[(&str, FieldKind)], threshold: Option<u32>) -> Petition {
        Petition {
            slug: "p".into(),
            languages: vec!["fr".into()],
            titles: Default::default(),
            opens_at: None,
            closes_at: None,
            goal: 10,
            fields: fields
                .iter()
                .map(|(name, kind)| Field {
                    name: name.to_string(),
                    kind: *kind,
                    required: false,
                    max_len: 64,
                })
                .collect(),
            public_signers: false,
            public_city: false,
            newsletter: false,
            text_sha256: Default::default(),
            consent_sha256: Default::default(),
            geography_threshold: threshold,
        }
    }

    fn form(answers: &[(&str, &str)]) -> SignForm {
        SignForm {
            fields: answers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn the_region_of_a_form() {
        let both = petition(
            &[("cp", FieldKind::Postcode), ("pays", FieldKind::Country)],
            Some(10),
        );
        let region = |answers: &[(&str, &str)]| region_of(&both, &form(answers));
        assert_eq!(region(&[("cp", "75011")]).as_deref(), Some("FR-75"));
        assert_eq!(
            region(&[("cp", "20090"), ("pays", "fr")]).as_deref(),
            Some("FR-2A")
        );
        assert_eq!(
            region(&[("cp", "97600"), ("pays", "FR")]).as_deref(),
            Some("FR-976")
        );
        assert_eq!(region(&[("pays", "FR")]).as_deref(), Some("FR"));
        assert_eq!(
            region(&[("cp", "98000"), ("pays", "fr")]).as_deref(),
            Some("FR")
        );
        assert_eq!(
            region(&[("cp", "1000"), ("pays", "be")]).as_deref(),
            Some("BE")
        );
        // A German postcode is five digits too: the country decides.
        assert_eq!(
            region(&[("cp", "10115"), ("pays", "DE")]).as_deref(),
            Some("DE")
        );
        assert_eq!(region(&[("cp", "75011"), ("pays", "France")]), None);
        assert_eq!(region(&[("cp", "1000")]), None);
        assert_eq!(region(&[]), None);
        // Only the postcode: five French digits count as France.
        let postcode_only = petition(&[("postcode", FieldKind::Postcode)], Some(10));
        assert_eq!(
            region_of(&postcode_only, &form(&[("postcode", "13001")])).as_deref(),
            Some("FR-13")
        );
        // Geography off: nothing is derived, nothing stored.
        let off = petition(&[("postcode", FieldKind::Postcode)], None);
        assert_eq!(region_of(&off, &form(&[("postcode", "13001")])), None);
    }

    #[test]
    fn small_groups_are_left_out_and_summed() {
        let regions: BTreeMap<String, u64> = [
            ("FR-75", 12),
            ("FR-69", 3),
            ("FR", 2),
            ("FR-2A", 10),
            ("BE", 4),
            ("DE", 10),
            ("CH", 0),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let p = publish(&regions, 10);
        assert_eq!(
            p.countries,
            BTreeMap::from([("DE".to_string(), 10), ("FR".to_string(), 27)])
        );
        assert_eq!(
            p.departements,
            BTreeMap::from([("2A".to_string(), 10), ("75".to_string(), 12)])
        );
        assert_eq!(p.hidden, 4 + 3, "Belgium, and the Rhône");
        // Never under the minimum, whatever the petition asks.
        let p = publish(&regions, 1);
        assert!(!p.countries.contains_key("BE") && !p.departements.contains_key("69"));
        assert_eq!(p.hidden, 4 + 3);
        assert_eq!(publish(&BTreeMap::new(), 10).hidden, 0);
        // France too small: its three signatures are hidden once, not once per level.
        let few = BTreeMap::from([("FR-69".to_string(), 3)]);
        let p = publish(&few, 10);
        assert!(p.countries.is_empty() && p.departements.is_empty());
        assert_eq!(p.hidden, 3);
    }
}
