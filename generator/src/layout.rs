//! The shape of the built site: the names the build writes at the top of the output and under
//! every petition. The build writes from these constants, and `cahier check` (and `cahier
//! build`, which runs the same check) refuses the petition slugs that would collide with them,
//! so that the two cannot drift apart.

use crate::config::Config;
use crate::content::Content;
use crate::diag::Diagnostic;
use crate::headers::PageClass;
use std::collections::BTreeMap;

/// The theme's assets (CSS and JS fingerprinted, fonts, images): `/static/…`.
pub const STATIC_DIR: &str = "static";
/// The function's base path on the site's origin (CloudFront's `/api/*` behavior, `cahier
/// serve`); the petition manifest is published under it.
pub const API_DIR: &str = "api";
pub const MANIFEST_FILE: &str = "api/manifest.json";
pub const SITEMAP_FILE: &str = "sitemap.xml";
pub const ROBOTS_FILE: &str = "robots.txt";
/// Header rules for Netlify / Cloudflare Pages (see [`crate::headers::HeadersFile`]).
pub const HEADERS_FILE: &str = "_headers";
/// The Atom feed, in every language's folder.
pub const FEED_FILE: &str = "atom.xml";

/// A page of the site itself, written in every language's folder.
pub struct SitePage {
    /// `index`, `privacy`, `unsubscribe`, `404` (the template's `page.kind`).
    pub kind: &'static str,
    /// Path relative to the language's folder: a folder (`privacy/`, holding `index.html`), a
    /// file (`404.html`) or empty for the home page.
    pub rel: &'static str,
    pub template: &'static str,
    /// What it is, for messages.
    pub what: &'static str,
}

pub const SITE_PAGES: &[SitePage] = &[
    SitePage {
        kind: "index",
        rel: "",
        template: "index.html",
        what: "home page",
    },
    SitePage {
        kind: "privacy",
        rel: "privacy/",
        template: "privacy.html",
        what: "privacy notice",
    },
    SitePage {
        kind: "unsubscribe",
        rel: "unsubscribe/",
        template: "unsubscribe.html",
        what: "page that stops the updates to a signer",
    },
    SitePage {
        kind: "404",
        rel: "404.html",
        template: "404.html",
        what: "page for missing pages",
    },
];

/// A page every petition has besides its main page, at `/<slug>/<name>/`.
pub struct SubPage {
    pub name: &'static str,
    pub template: &'static str,
    /// Its Content-Security-Policy class (see [`crate::headers::csp`]).
    pub class: PageClass,
}

pub const SUBPAGES: &[SubPage] = &[
    SubPage {
        name: "check-email",
        template: "check-email.html",
        class: PageClass::Plain,
    },
    SubPage {
        name: "confirm",
        template: "confirm.html",
        class: PageClass::Plain,
    },
    SubPage {
        name: "thanks",
        template: "thanks.html",
        class: PageClass::Plain,
    },
    SubPage {
        name: "erase",
        template: "erase.html",
        class: PageClass::Plain,
    },
    SubPage {
        name: "embed",
        template: "embed.html",
        class: PageClass::Embed,
    },
    SubPage {
        name: "check",
        template: "check.html",
        class: PageClass::Check,
    },
    SubPage {
        name: "signers",
        template: "signers.html",
        class: PageClass::Plain,
    },
];

/// Served under every petition though not built: its transparency log, `/<slug>/log/`
/// (docs/transparency-log.md).
pub const LOG_DIR: &str = "log";
/// The petition's Open Graph card, beside its page.
pub const OG_IMAGE: &str = "og.png";

/// The names under every petition's folder (`/<slug>/<name>/`), with what each is.
pub fn petition_names() -> Vec<(&'static str, &'static str)> {
    let mut v: Vec<(&str, &str)> = SUBPAGES.iter().map(|s| (s.name, "page")).collect();
    v.push((LOG_DIR, "transparency log"));
    v.push((OG_IMAGE, "Open Graph card"));
    v
}

/// The first path segment of every root-relative path (under the base path) the site has
/// besides its petitions, with what it is: the site's pages and files in the default language,
/// the other languages' folders, the theme's assets, the API, and the site's own `static/` files
/// (`outputs`: [`crate::theme::Theme::files`], paths relative to the output).
pub fn top_level_names<'a>(
    cfg: &Config,
    outputs: impl IntoIterator<Item = &'a str>,
) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    let mut add = |name: &str, what: String| {
        if !name.is_empty() {
            names.entry(name.to_string()).or_insert(what);
        }
    };
    add(
        API_DIR,
        format!("/{API_DIR}/ path (the signing API, and the petition manifest)"),
    );
    add(
        STATIC_DIR,
        format!("/{STATIC_DIR}/ folder (the theme's CSS, JS and fonts)"),
    );
    for page in SITE_PAGES {
        let name = page.rel.trim_end_matches('/');
        let shown = if page.rel.ends_with('/') {
            format!("/{name}/")
        } else {
            format!("/{name}")
        };
        add(name, format!("{shown} page (its {})", page.what));
    }
    add(FEED_FILE, format!("/{FEED_FILE} feed"));
    for file in [
        SITEMAP_FILE,
        ROBOTS_FILE,
        HEADERS_FILE,
        crate::integrity::INTEGRITY_FILE,
    ] {
        add(file, format!("/{file} file"));
    }
    for lang in &cfg.languages {
        if lang == cfg.default_language() {
            add(
                lang,
                format!(
                    "language code {lang:?} (`languages` in cahier.toml; the default language \
                     has no folder, but would get /{lang}/ if another became the default)"
                ),
            );
        } else {
            add(lang, format!("/{lang}/ folder (its pages in {lang:?})"));
        }
    }
    for rel in outputs {
        let first = rel.split('/').next().unwrap_or_default();
        let what = if rel.contains('/') {
            format!("/{first}/ folder (the site's own static/{first}/)")
        } else {
            format!("/{first} file (the site's own static/{first})")
        };
        add(first, what);
    }
    names
}

/// Why `slug` cannot be a petition's slug, if it cannot: it would collide with a path of the
/// site (`top_level`, see [`top_level_names`]) or with a petition's sub-page name (a petition
/// named `embed` would have its English page at `/en/embed/`, which the rules written for every
/// petition's `/<slug>/embed/` — robots.txt, `_headers`, the CDN's `*/embed/*` — also match).
pub fn slug_collision(
    cfg: &Config,
    slug: &str,
    top_level: &BTreeMap<String, String>,
) -> Option<String> {
    if let Some(what) = top_level.get(slug) {
        return Some(format!("collides with the site's {what}"));
    }
    let (name, what) = petition_names()
        .into_iter()
        .find(|(name, _)| *name == slug)?;
    let elsewhere = match cfg.languages.get(1) {
        Some(l) => format!("{}{}/{name}/", cfg.base_path(), cfg.lang_prefix(l)),
        None => format!("/<other-slug>/{name}/"),
    };
    Some(format!(
        "collides with the {what} every petition has at /<slug>/{name}/: this petition's page \
         {elsewhere} would match the rules written for those (robots.txt, _headers, the CDN's \
         path patterns)"
    ))
}

/// Every petition whose slug collides with the site's layout, as diagnostics on its folder.
pub fn slug_collisions<'a>(
    cfg: &Config,
    content: &Content,
    outputs: impl IntoIterator<Item = &'a str>,
) -> Vec<Diagnostic> {
    let top = top_level_names(cfg, outputs);
    content
        .petitions
        .iter()
        .filter_map(|p| {
            let why = slug_collision(cfg, &p.slug, &top)?;
            Some(Diagnostic::new(
                &p.dir,
                None,
                format!(
                    "folder name {:?} (the petition's slug, in its URL /{}/) {why}; rename the folder",
                    p.slug, p.slug
                ),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn cfg(extra: &str) -> Config {
        crate::config::parse(
            Path::new("cahier.toml"),
            &format!(
                "base_url = \"https://x.org\"\ntitle = \"X\"\nlanguages = [\"fr\", \"en\"]\n{extra}[captcha]\nsitekey = \"k\"\n"
            ),
        )
        .unwrap()
    }

    #[test]
    fn reserved_and_sub_page_names_are_refused() {
        let c = cfg("");
        let top = top_level_names(&c, ["static/style.abc.css", "favicon.ico", "press/kit.pdf"]);
        for (slug, why) in [
            ("api", "/api/ path"),
            ("static", "/static/ folder"),
            ("privacy", "/privacy/ page"),
            ("en", "/en/ folder"),
            ("fr", "language code \"fr\""),
            ("press", "static/press/"),
            ("confirm", "/<slug>/confirm/"),
            ("check-email", "/<slug>/check-email/"),
            ("thanks", "/<slug>/thanks/"),
            ("erase", "/<slug>/erase/"),
            ("embed", "/<slug>/embed/"),
            ("log", "/<slug>/log/"),
        ] {
            let msg = slug_collision(&c, slug, &top).unwrap_or_else(|| panic!("{slug} accepted"));
            assert!(msg.contains(why), "{slug}: {msg}");
            assert!(msg.starts_with("collides with the"), "{slug}: {msg}");
            if why.starts_with("/<slug>/") {
                assert!(msg.contains(&format!(" /en/{slug}/ ")), "{slug}: {msg}");
            }
        }
        for slug in ["noel-sans-geant", "apis", "en-route", "confirmation", "de"] {
            assert_eq!(slug_collision(&c, slug, &top), None, "{slug}");
        }
        // Every page the build writes in a language's folder is in the list.
        for page in SITE_PAGES.iter().filter(|p| !p.rel.is_empty()) {
            assert!(
                top.contains_key(page.rel.trim_end_matches('/')),
                "{}",
                page.rel
            );
        }
    }

    #[test]
    fn a_configured_language_is_reserved() {
        let c = crate::config::parse(
            Path::new("cahier.toml"),
            "base_url = \"https://x.org\"\ntitle = \"X\"\nlanguages = [\"fr\", \"de\"]\n[captcha]\nsitekey = \"k\"\n",
        )
        .unwrap();
        let top = top_level_names(&c, []);
        assert!(slug_collision(&c, "de", &top)
            .unwrap()
            .contains("/de/ folder"));
        assert_eq!(slug_collision(&c, "en", &top), None);
    }
}
