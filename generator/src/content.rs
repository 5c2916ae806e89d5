//! Petitions on disk: `content/<slug>/index.md` (default language) and `index.<lang>.md`
//! (translations), front matter in TOML (`+++`) or YAML (`---`), images beside them.

use crate::config::Config;
use crate::diag::{self, Diagnostic};
use cahier_function::manifest::FieldKind;
use rayon::prelude::*;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

pub const CONTENT_DIR: &str = "content";

/// A date or instant from front matter, kept as Unix seconds (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Instant {
    pub unix: i64,
    /// True when written as a bare date (`2026-12-24`), which then means the whole day.
    pub date_only: bool,
}

impl Instant {
    pub fn parse(s: &str) -> Result<Instant, String> {
        let s = s.trim();
        if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            if s.len() == 10 {
                let unix = d
                    .and_hms_opt(0, 0, 0)
                    .expect("midnight")
                    .and_utc()
                    .timestamp();
                return Ok(Instant {
                    unix,
                    date_only: true,
                });
            }
        }
        if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
            return Ok(Instant {
                unix: t.timestamp(),
                date_only: false,
            });
        }
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S") {
            return Ok(Instant {
                unix: t.and_utc().timestamp(),
                date_only: false,
            });
        }
        Err(format!(
            "invalid date {s:?}: expected YYYY-MM-DD or RFC 3339 such as 2026-12-24T18:00:00+01:00"
        ))
    }

    /// End of the period this value names: a bare closing date includes that whole day.
    pub fn end_unix(&self) -> i64 {
        if self.date_only {
            self.unix + 86_400
        } else {
            self.unix
        }
    }

    pub fn utc(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp(self.unix, 0).unwrap_or_default()
    }
}

impl<'de> Deserialize<'de> for Instant {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Instant;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a date (YYYY-MM-DD) or an RFC 3339 date-time")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Instant, E> {
                Instant::parse(s).map_err(E::custom)
            }
            // TOML's native dates arrive as a one-entry map holding their text.
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Instant, A::Error> {
                let (_, v): (String, String) = map
                    .next_entry()?
                    .ok_or_else(|| de::Error::custom("empty date"))?;
                Instant::parse(&v).map_err(de::Error::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A form field declared by a petition (`name` and `email` are always there).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldDecl {
    pub name: String,
    /// text, textarea, postcode, country or checkbox; guessed from well-known names.
    #[serde(default)]
    pub kind: Option<FieldKind>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub max_len: Option<u32>,
    /// Label in the default language; well-known fields take theirs from the theme.
    #[serde(default)]
    pub label: Option<String>,
}

impl FieldDecl {
    pub fn kind(&self) -> FieldKind {
        self.kind.unwrap_or(match self.name.as_str() {
            "postcode" => FieldKind::Postcode,
            "country" => FieldKind::Country,
            "comment" => FieldKind::Textarea,
            _ => FieldKind::Text,
        })
    }

    pub fn max_len(&self) -> u32 {
        self.max_len.unwrap_or(match self.kind() {
            FieldKind::Text => 120,
            FieldKind::Textarea => 1000,
            FieldKind::Postcode => 16,
            FieldKind::Country => 64,
            FieldKind::Checkbox => 3,
        })
    }
}

/// Front matter of `index.md`: the petition itself in the default language.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrontMatter {
    pub title: String,
    #[serde(default)]
    pub summary: String,
    /// Who the petition asks (a minister, a city council...).
    #[serde(default)]
    pub addressee: String,
    #[serde(default)]
    pub organizers: Vec<String>,
    #[serde(default = "default_goal")]
    pub goal: u64,
    /// Publication date (feeds, sorting); defaults to `opens`.
    #[serde(default)]
    pub date: Option<Instant>,
    #[serde(default)]
    pub opens: Option<Instant>,
    #[serde(default)]
    pub closes: Option<Instant>,
    #[serde(default)]
    pub draft: bool,
    #[serde(default)]
    pub fields: Vec<FieldDecl>,
    /// Offer signers to show their name publicly (off by default).
    #[serde(default)]
    pub public_signers: bool,
    /// The public list also shows the town a signer gave (the `city` field).
    #[serde(default)]
    pub public_city: bool,
    /// Publish where the signatures come from (by country, French département); absent: on
    /// when the form has a postcode or country field.
    #[serde(default)]
    pub geography: Option<bool>,
    /// Smallest group the geography shows (default 10, at least 5).
    #[serde(default)]
    pub geography_threshold: Option<u32>,
    /// Newsletter opt-in wording; no opt-in when absent.
    #[serde(default)]
    pub newsletter: Option<String>,
    /// Consent wording above the checkbox; the theme's default when absent.
    #[serde(default)]
    pub consent: Option<String>,
    /// Image beside `index.md`, shown on the page (the Open Graph card is generated).
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub image_alt: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Paper signatures counted by hand, recorded in the store by `cahier serve` and by
    /// `cahier admin offline sync` (each once, by its id).
    #[serde(default)]
    pub offline: Vec<OfflineDecl>,
}

/// One batch of paper signatures declared in front matter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfflineDecl {
    /// Unique in the petition; `paper-<date>` when absent.
    #[serde(default)]
    pub id: Option<String>,
    /// When the paper was signed, `YYYY-MM-DD`.
    pub date: String,
    /// How many signatures the paper holds (`count` is accepted too).
    #[serde(alias = "count")]
    pub signatures: u32,
    /// For the organizers; stays in the store, never published.
    #[serde(default)]
    pub note: String,
}

impl OfflineDecl {
    pub fn id(&self) -> String {
        self.id
            .clone()
            .unwrap_or_else(|| format!("paper-{}", self.date))
    }

    /// The batch as the store records it.
    pub fn batch(&self, petition: &str) -> cahier_function::store::admin::OfflineBatch {
        cahier_function::store::admin::OfflineBatch {
            petition: petition.to_string(),
            id: self.id(),
            signatures: self.signatures,
            date: self.date.clone(),
            note: self.note.clone(),
            added_at: 0,
            withdrawn_at: None,
        }
    }
}

fn default_goal() -> u64 {
    1000
}

/// Front matter of `index.<lang>.md`: only what is worded, the rest is shared.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TranslationFrontMatter {
    pub title: String,
    #[serde(default)]
    pub summary: String,
    #[serde(default)]
    pub addressee: Option<String>,
    #[serde(default)]
    pub newsletter: Option<String>,
    #[serde(default)]
    pub consent: Option<String>,
    #[serde(default)]
    pub image_alt: Option<String>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// Labels of custom fields in this language, by field name.
    #[serde(default)]
    pub field_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub draft: Option<bool>,
}

/// One language version of a petition, as written.
#[derive(Debug, Clone)]
pub struct Text {
    pub lang: String,
    /// Path relative to the site root (for messages).
    pub file: PathBuf,
    pub title: String,
    pub summary: String,
    pub addressee: String,
    pub newsletter: Option<String>,
    pub consent: Option<String>,
    pub image_alt: String,
    pub tags: Vec<String>,
    pub field_labels: BTreeMap<String, String>,
    /// A translation still being written (`draft = true` in `index.<lang>.md`): left out of
    /// the build unless drafts are asked for.
    pub draft: bool,
    /// Markdown body and the file line where it starts.
    pub body: String,
    pub body_line: usize,
    /// Raw front matter text and the file line where it starts (to locate keys).
    pub front: String,
    pub front_line: usize,
}

#[derive(Debug, Clone)]
pub struct Petition {
    pub slug: String,
    /// Folder relative to the site root.
    pub dir: PathBuf,
    pub meta: FrontMatter,
    /// Texts by language; always holds the default language.
    pub texts: BTreeMap<String, Text>,
    /// Other files in the folder (images...), names relative to it, sorted.
    pub assets: Vec<String>,
}

impl Petition {
    pub fn opens_at(&self) -> Option<i64> {
        self.meta.opens.map(|i| i.unix)
    }
    pub fn closes_at(&self) -> Option<i64> {
        self.meta.closes.map(|i| i.end_unix())
    }
    /// Date used in feeds and for sorting.
    pub fn date(&self) -> Option<Instant> {
        self.meta.date.or(self.meta.opens)
    }
}

/// Everything under `content/`.
#[derive(Debug, Clone, Default)]
pub struct Content {
    /// Sorted by slug.
    pub petitions: Vec<Petition>,
}

/// Splits front matter from the body. Returns (format_is_toml, front, front_first_line, body, body_first_line).
pub(crate) fn split_front_matter(text: &str) -> Option<(bool, &str, &str, usize)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let (delim, toml) = if text.starts_with("+++") {
        ("+++", true)
    } else if text.starts_with("---") {
        ("---", false)
    } else {
        return None;
    };
    let after_open = text[3..].trim_start_matches([' ', '\t']);
    let after_open = after_open
        .strip_prefix("\r\n")
        .or_else(|| after_open.strip_prefix('\n'))?;
    let mut pos = 0;
    for line in after_open.split_inclusive('\n') {
        if line.trim_end() == delim {
            let front = &after_open[..pos];
            let body = &after_open[pos + line.len()..];
            let body_line = 2 + front.lines().count() + 1;
            return Some((toml, front, body, body_line));
        }
        pos += line.len();
    }
    None
}

fn parse_front<T: for<'de> Deserialize<'de>>(
    file: &Path,
    text: &str,
) -> Result<(T, String, String, usize), Diagnostic> {
    let (is_toml, front, body, body_line) = split_front_matter(text).ok_or_else(|| {
        Diagnostic::new(
            file,
            Some(1),
            "missing front matter: start the file with `+++` (TOML) or `---` (YAML) and close it the same way",
        )
    })?;
    let value: T = if is_toml {
        toml::from_str(front).map_err(|e| diag::from_toml(file, front, 2, &e))?
    } else {
        serde_yaml::from_str(front).map_err(|e| diag::from_yaml(file, front, 2, &e))?
    };
    Ok((value, front.to_string(), body.to_string(), body_line))
}

/// A slug in its only spelling: lowercase ASCII letters, digits and inner dashes (no capital,
/// no percent sign, dot, underscore or other character a URL could spell another way).
pub fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Names a declared field may not take: the form already uses them.
pub const RESERVED_FIELDS: &[&str] = &[
    "name",
    "email",
    "consent",
    "public",
    "newsletter",
    "lang",
    "website",
    "fill_ms",
    "h-captcha-response",
    "token",
];

/// Reads one petition folder. Errors are collected, not fatal, so `check` reports them all.
fn load_petition(
    root: &Path,
    dir: &Path,
    cfg: &Config,
    errs: &mut Vec<Diagnostic>,
) -> Option<Petition> {
    let rel_dir = dir.strip_prefix(root).unwrap_or(dir).to_path_buf();
    let slug = dir.file_name()?.to_string_lossy().to_string();
    if !is_slug(&slug) {
        errs.push(Diagnostic::new(
            &rel_dir,
            None,
            format!(
                "folder name {slug:?} is not a valid slug (lowercase letters, digits and dashes)"
            ),
        ));
        return None;
    }
    // A slug the site's layout uses (`/api/`, `/en/`, `/<slug>/confirm/`...) is refused by
    // `layout::slug_collisions`, which needs the theme's files too.
    let mut entries: Vec<_> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| e.ok()).map(|e| e.path()).collect(),
        Err(e) => {
            errs.push(Diagnostic::new(
                &rel_dir,
                None,
                format!("cannot read folder: {e}"),
            ));
            return None;
        }
    };
    entries.sort();
    let default = cfg.default_language().to_string();
    let mut meta = None;
    let mut texts = BTreeMap::new();
    let mut assets = Vec::new();
    for path in entries {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let rel = rel_dir.join(&name);
        if path.is_dir() {
            continue;
        }
        let lang = if name == "index.md" {
            Some(default.clone())
        } else {
            name.strip_prefix("index.")
                .and_then(|n| n.strip_suffix(".md"))
                .map(str::to_string)
        };
        let Some(lang) = lang else {
            if !name.starts_with('.') {
                assets.push(name);
            }
            continue;
        };
        if !cfg.languages.contains(&lang) {
            errs.push(Diagnostic::new(
                &rel,
                None,
                format!(
                    "language {lang:?} is not in `languages` of cahier.toml ({:?})",
                    cfg.languages
                ),
            ));
            continue;
        }
        if lang == default && name != "index.md" {
            errs.push(Diagnostic::new(
                &rel,
                None,
                format!("{lang:?} is the default language: write this text in index.md"),
            ));
            continue;
        }
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                errs.push(Diagnostic::new(&rel, None, format!("cannot read: {e}")));
                continue;
            }
        };
        if lang == default {
            match parse_front::<FrontMatter>(&rel, &text) {
                Ok((fm, front, body, body_line)) => {
                    texts.insert(
                        lang.clone(),
                        Text {
                            lang,
                            file: rel,
                            title: fm.title.clone(),
                            summary: fm.summary.clone(),
                            addressee: fm.addressee.clone(),
                            newsletter: fm.newsletter.clone(),
                            consent: fm.consent.clone(),
                            image_alt: fm.image_alt.clone().unwrap_or_default(),
                            tags: fm.tags.clone(),
                            field_labels: fm
                                .fields
                                .iter()
                                .filter_map(|f| Some((f.name.clone(), f.label.clone()?)))
                                .collect(),
                            draft: false,
                            body,
                            body_line,
                            front,
                            front_line: 2,
                        },
                    );
                    meta = Some(fm);
                }
                Err(d) => errs.push(d),
            }
        } else {
            match parse_front::<TranslationFrontMatter>(&rel, &text) {
                Ok((fm, front, body, body_line)) => {
                    texts.insert(
                        lang.clone(),
                        Text {
                            lang,
                            file: rel,
                            title: fm.title,
                            summary: fm.summary,
                            addressee: fm.addressee.unwrap_or_default(),
                            newsletter: fm.newsletter,
                            consent: fm.consent,
                            image_alt: fm.image_alt.unwrap_or_default(),
                            tags: fm.tags.unwrap_or_default(),
                            field_labels: fm.field_labels,
                            draft: fm.draft.unwrap_or(false),
                            body,
                            body_line,
                            front,
                            front_line: 2,
                        },
                    );
                }
                Err(mut d) => {
                    if let Some(k) = d.key.clone() {
                        if is_shared_key(&k) {
                            d.message = format!(
                                "`{k}` is shared by all languages: set it in index.md, not in a translation"
                            );
                        }
                    }
                    errs.push(d)
                }
            }
        }
    }
    let Some(meta) = meta else {
        // When index.md exists its own errors are already reported.
        if !dir.join("index.md").is_file() {
            errs.push(Diagnostic::new(
                rel_dir.join("index.md"),
                None,
                format!(
                    "missing: every petition needs index.md in the default language ({default})"
                ),
            ));
        }
        return None;
    };
    let p = Petition {
        slug,
        dir: rel_dir,
        meta,
        texts,
        assets,
    };
    validate(&p, cfg, errs);
    Some(p)
}

fn is_shared_key(k: &str) -> bool {
    matches!(
        k,
        "goal"
            | "opens"
            | "closes"
            | "date"
            | "fields"
            | "public_signers"
            | "public_city"
            | "geography"
            | "geography_threshold"
            | "image"
            | "organizers"
            | "offline"
    )
}

impl FrontMatter {
    /// The petition publishes its geography in groups of at least this many (the manifest's
    /// `geography_threshold`): unless `geography = false`, whenever the form asks where the
    /// signer is (a postcode or country field, by kind), since that is all it is made of.
    pub fn geography_threshold(&self) -> Option<u32> {
        let asks = self
            .fields
            .iter()
            .any(|f| matches!(f.kind(), FieldKind::Postcode | FieldKind::Country));
        (self.geography.unwrap_or(asks) && asks).then(|| {
            self.geography_threshold
                .unwrap_or(cahier_function::geography::DEFAULT_THRESHOLD)
        })
    }
}

/// `geography = true` needs a field to derive it from; a threshold under the minimum would
/// publish groups small enough to point at people.
fn validate_geography(
    meta: &FrontMatter,
    at: &dyn Fn(&str) -> Option<usize>,
    file: &Path,
    errs: &mut Vec<Diagnostic>,
) {
    use cahier_function::geography::MIN_THRESHOLD;
    if meta.geography == Some(true) && meta.geography_threshold().is_none() {
        errs.push(
            Diagnostic::new(
                file,
                at("geography"),
                "`geography` needs a `postcode` or `country` field",
            )
            .with_key("geography"),
        );
    }
    if meta.geography_threshold.is_some_and(|t| t < MIN_THRESHOLD) {
        errs.push(
            Diagnostic::new(
                file,
                at("geography_threshold"),
                format!("`geography_threshold` must be at least {MIN_THRESHOLD}"),
            )
            .with_key("geography_threshold"),
        );
    }
}

/// Paper batches: each valid as `cahier admin offline add` would take it, ids unique.
fn validate_offline(p: &Petition, text: &Text, errs: &mut Vec<Diagnostic>) {
    let mut seen: Vec<String> = Vec::new();
    for (i, decl) in p.meta.offline.iter().enumerate() {
        let at = |field: Option<&str>| {
            diag::line_of_list_item(&text.front, "offline", i, field)
                .map(|l| l + text.front_line - 1)
        };
        if let Some((field, why)) = decl.batch(&p.slug).invalid_field() {
            // The id is derived from the date when absent: a bad date is the date's fault.
            let field = if field == "id" && decl.id.is_none() {
                "date"
            } else {
                field
            };
            errs.push(
                Diagnostic::new(&text.file, at(Some(field)), why)
                    .with_key(format!("offline[{i}].{field}")),
            );
            continue;
        }
        let id = decl.id();
        if seen.contains(&id) {
            let why = if decl.id.is_none() {
                format!("two batches on {}: give each an `id`", decl.date)
            } else {
                format!("id {id:?} is used by another batch of this petition")
            };
            errs.push(
                Diagnostic::new(&text.file, at(Some("id")), why)
                    .with_key(format!("offline[{i}].id")),
            );
        }
        seen.push(id);
    }
}

/// Rules that need the whole petition: dates in order, fields well-formed, labels known.
fn validate(p: &Petition, cfg: &Config, errs: &mut Vec<Diagnostic>) {
    let text = &p.texts[cfg.default_language()];
    let at = |key: &str| diag::line_of_key(&text.front, key).map(|l| l + text.front_line - 1);
    if let (Some(o), Some(c)) = (p.meta.opens, p.meta.closes) {
        if c.end_unix() <= o.unix {
            errs.push(
                Diagnostic::new(&text.file, at("closes"), "`closes` is not after `opens`")
                    .with_key("closes"),
            );
        }
    }
    validate_offline(p, text, errs);
    validate_geography(&p.meta, &at, &text.file, errs);
    if p.meta.public_city
        && !(p.meta.public_signers && p.meta.fields.iter().any(|f| f.name == "city"))
    {
        errs.push(
            Diagnostic::new(
                &text.file,
                at("public_city"),
                "`public_city` needs `public_signers = true` and a `city` field",
            )
            .with_key("public_city"),
        );
    }
    if p.meta.goal == 0 {
        errs.push(
            Diagnostic::new(&text.file, at("goal"), "`goal` must be at least 1").with_key("goal"),
        );
    }
    let mut seen = Vec::new();
    for f in &p.meta.fields {
        let line = diag::line_of_key(&text.front, "name")
            .and_then(|_| {
                text.front
                    .lines()
                    .position(|l| {
                        l.contains(&format!("\"{}\"", f.name))
                            || l.trim_end().ends_with(&format!(": {}", f.name))
                    })
                    .map(|i| i + text.front_line)
            })
            .or_else(|| at("fields"));
        if RESERVED_FIELDS.contains(&f.name.as_str()) {
            errs.push(
                Diagnostic::new(
                    &text.file,
                    line,
                    format!("field name {:?} is reserved by the form", f.name),
                )
                .with_key("fields"),
            );
        }
        if !f
            .name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            || f.name.is_empty()
        {
            errs.push(
                Diagnostic::new(
                    &text.file,
                    line,
                    format!(
                        "field name {:?}: use lowercase letters, digits and `_`",
                        f.name
                    ),
                )
                .with_key("fields"),
            );
        }
        if seen.contains(&&f.name) {
            errs.push(
                Diagnostic::new(
                    &text.file,
                    line,
                    format!("field {:?} is declared twice", f.name),
                )
                .with_key("fields"),
            );
        }
        seen.push(&f.name);
    }
    for t in p.texts.values() {
        for name in t.field_labels.keys() {
            if !p.meta.fields.iter().any(|f| &f.name == name) {
                let line = diag::line_of_key(&t.front, name).map(|l| l + t.front_line - 1);
                errs.push(
                    Diagnostic::new(
                        &t.file,
                        line,
                        format!("label for undeclared field {name:?}"),
                    )
                    .with_key("field_labels"),
                );
            }
        }
        if t.title.trim().is_empty() {
            let line = diag::line_of_key(&t.front, "title").map(|l| l + t.front_line - 1);
            errs.push(
                Diagnostic::new(&t.file, line, "`title` must not be empty").with_key("title"),
            );
        }
    }
    if let Some(img) = &p.meta.image {
        if !p.assets.contains(img) {
            errs.push(
                Diagnostic::new(
                    &text.file,
                    at("image"),
                    format!("image {img:?} not found in {}", p.dir.display()),
                )
                .with_key("image"),
            );
        }
    }
}

/// Loads every petition. `Err` holds all problems found (the build stops on any).
pub fn load(root: &Path, cfg: &Config, drafts: bool) -> Result<Content, Vec<Diagnostic>> {
    let (content, errs) = load_all(root, cfg, drafts);
    if errs.is_empty() {
        Ok(content)
    } else {
        Err(errs)
    }
}

/// Loads every petition and returns problems beside what could be read.
pub fn load_all(root: &Path, cfg: &Config, drafts: bool) -> (Content, Vec<Diagnostic>) {
    let dir = root.join(CONTENT_DIR);
    let mut dirs: Vec<PathBuf> = Vec::new();
    if dir.is_dir() {
        for e in walkdir::WalkDir::new(&dir)
            .min_depth(1)
            .max_depth(1)
            .sort_by_file_name()
        {
            match e {
                Ok(e) if e.file_type().is_dir() => dirs.push(e.into_path()),
                _ => {}
            }
        }
    }
    let results: Vec<(Option<Petition>, Vec<Diagnostic>)> = dirs
        .par_iter()
        .map(|d| {
            let mut errs = Vec::new();
            let p = load_petition(root, d, cfg, &mut errs);
            (p, errs)
        })
        .collect();
    let mut petitions = Vec::new();
    let mut errs = Vec::new();
    for (p, e) in results {
        errs.extend(e);
        if let Some(mut p) = p {
            if !drafts {
                p.texts.retain(|_, t| !t.draft);
            }
            if drafts || !p.meta.draft {
                petitions.push(p);
            }
        }
    }
    petitions.sort_by(|a, b| a.slug.cmp(&b.slug));
    errs.sort();
    (Content { petitions }, errs)
}

/// Languages of `cfg` a petition lacks.
pub fn missing_languages<'a>(p: &Petition, cfg: &'a Config) -> Vec<&'a str> {
    cfg.languages
        .iter()
        .filter(|l| !p.texts.contains_key(*l))
        .map(|l| l.as_str())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        let d = Instant::parse("2026-12-24").unwrap();
        assert!(d.date_only);
        assert_eq!(d.end_unix() - d.unix, 86_400);
        let t = Instant::parse("2026-12-24T18:00:00+01:00").unwrap();
        assert_eq!(t.unix, d.unix + 17 * 3600);
        assert!(Instant::parse("24/12/2026").is_err());
    }

    #[test]
    fn slugs_are_canonical() {
        for ok in ["noel-sans-geant", "a", "2026", "a-b-c", "pour-la-ligne-12"] {
            assert!(is_slug(ok), "{ok}");
        }
        for bad in [
            "",
            "Noel",
            "NOEL",
            "noël",
            "noel%20",
            "no%65l",
            "noel.",
            ".noel",
            "no.el",
            "noel_1",
            "-noel",
            "noel-",
            "noel sans",
            "noel/x",
            "noel~",
            "noel+",
            "\u{fffd}",
        ] {
            assert!(!is_slug(bad), "{bad:?} is accepted");
        }
    }

    #[test]
    fn front_matter_split() {
        let (toml, front, body, line) =
            split_front_matter("+++\ntitle = \"a\"\n+++\nHello\n").unwrap();
        assert!(toml);
        assert_eq!(front, "title = \"a\"\n");
        assert_eq!(body, "Hello\n");
        assert_eq!(line, 4);
        let (toml, _, body, _) = split_front_matter("---\ntitle: a\n---\nHi").unwrap();
        assert!(!toml);
        assert_eq!(body, "Hi");
    }
}
