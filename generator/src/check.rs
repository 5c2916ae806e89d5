//! `cahier check`: validates configuration, content and theme without writing anything, and
//! reports every problem with its file and line (unknown or ill-typed front-matter keys, bad
//! dates, closing before opening, missing translations, broken internal links, missing images,
//! raw HTML that the sanitiser removes, slugs that collide with the site's layout).

use crate::config::{self, Config, CONFIG_FILE};
use crate::content::{self, Content};
use crate::diag::{self, Diagnostic};
use crate::layout::{self, SITE_PAGES, SUBPAGES};
use crate::markdown;
use crate::theme::Theme;
use std::collections::BTreeSet;
use std::path::Path;

#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    pub petitions: usize,
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}

impl CheckReport {
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }
}

pub fn check(root: &Path) -> anyhow::Result<CheckReport> {
    let mut report = CheckReport::default();
    let path = root.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        anyhow::anyhow!(
            "while reading {}: {e} (is this a Cahier site? try --root)",
            path.display()
        )
    })?;
    let cfg = match config::parse(Path::new(CONFIG_FILE), &text) {
        Ok(c) => c,
        Err(errs) => {
            report.errors = errs;
            return Ok(report);
        }
    };
    let theme = match Theme::load(root, &cfg) {
        Ok(t) => Some(t),
        Err(e) => {
            report.errors.push(Diagnostic::new(
                Path::new("themes").join(&cfg.theme),
                None,
                format!("{e:#}"),
            ));
            None
        }
    };
    let (content, errs) = content::load_all(root, &cfg, true);
    report.errors.extend(errs);
    // Without the theme, the site's own static files are not known: the rest still is.
    let outputs = theme
        .iter()
        .flat_map(|t| t.files.iter().map(|(p, _)| p.as_str()));
    report
        .errors
        .extend(layout::slug_collisions(&cfg, &content, outputs));
    report.petitions = content.petitions.len();
    for p in &content.petitions {
        let missing = content::missing_languages(p, &cfg);
        for l in missing {
            report.errors.push(Diagnostic::new(
                p.dir.join(format!("index.{l}.md")),
                None,
                format!("missing translation: {l:?} is in `languages` of cahier.toml"),
            ));
        }
    }
    check_links(&cfg, &content, &mut report.errors);
    if let Some(theme) = &theme {
        let default = &theme.strings[cfg.default_language()];
        for (lang, strings) in &theme.strings {
            for k in default.keys().filter(|k| !strings.contains_key(*k)) {
                report.warnings.push(Diagnostic::new(
                    Path::new("themes")
                        .join(&cfg.theme)
                        .join("i18n")
                        .join(format!("{lang}.toml")),
                    None,
                    format!("missing UI string `{k}`"),
                ));
            }
        }
    }
    report.errors.sort();
    report.errors.dedup();
    Ok(report)
}

/// Every root-relative path the site will have.
fn known_paths(cfg: &Config, content: &Content) -> BTreeSet<String> {
    let bp = cfg.base_path();
    let mut set = BTreeSet::new();
    for l in &cfg.languages {
        let prefix = format!("{bp}{}", cfg.lang_prefix(l));
        for page in SITE_PAGES {
            set.insert(format!("{prefix}/{}", page.rel));
        }
        set.insert(format!("{prefix}/{}", layout::FEED_FILE));
        for p in content.petitions.iter().filter(|p| p.texts.contains_key(l)) {
            let page = format!("{prefix}/{}/", p.slug);
            for sub in SUBPAGES {
                set.insert(format!("{page}{}/", sub.name));
            }
            for a in &p.assets {
                set.insert(format!("{page}{a}"));
            }
            set.insert(format!("{page}{}", layout::OG_IMAGE));
            set.insert(page);
        }
    }
    for file in [
        layout::SITEMAP_FILE,
        layout::ROBOTS_FILE,
        layout::MANIFEST_FILE,
        crate::integrity::INTEGRITY_FILE,
    ] {
        set.insert(format!("{bp}/{file}"));
    }
    set
}

fn is_external(dest: &str) -> bool {
    dest.contains("://")
        || dest.starts_with("//")
        || dest.starts_with('#')
        || dest.contains(':') && !dest.starts_with('/')
}

fn check_links(cfg: &Config, content: &Content, errs: &mut Vec<Diagnostic>) {
    let known = known_paths(cfg, content);
    let bp = cfg.base_path();
    for p in &content.petitions {
        for (lang, text) in &p.texts {
            let page = format!("{bp}{}/{}/", cfg.lang_prefix(lang), p.slug);
            let base = url::Url::parse(&format!("http://site.invalid{page}")).expect("valid base");
            let r = markdown::render(&text.body);
            let line = |off: usize| text.body_line + diag::line_of_offset(&text.body, off) - 1;
            for (fragment, off) in &r.raw_html {
                for what in crate::sanitize::refused(fragment) {
                    errs.push(Diagnostic::new(
                        &text.file,
                        Some(line(*off)),
                        format!(
                            "raw HTML {what} is not allowed and is removed from the page \
                             (only formatting HTML is kept)"
                        ),
                    ));
                }
            }
            for (dest, off, what) in r
                .links
                .iter()
                .map(|(d, o)| (d, o, "link"))
                .chain(r.images.iter().map(|(d, o)| (d, o, "image")))
            {
                if !crate::sanitize::url_allowed(dest) {
                    errs.push(Diagnostic::new(
                        &text.file,
                        Some(line(*off)),
                        format!("{what} {dest:?}: only http, https and mailto URLs are kept"),
                    ));
                    continue;
                }
                if dest.is_empty() || is_external(dest) {
                    continue;
                }
                let Ok(resolved) = base.join(dest) else {
                    errs.push(Diagnostic::new(
                        &text.file,
                        Some(line(*off)),
                        format!("{what} {dest:?} is not a valid URL"),
                    ));
                    continue;
                };
                let path = percent_decode(resolved.path());
                let ok = known.contains(&path)
                    || (!path.ends_with('/') && known.contains(&format!("{path}/")));
                if !ok {
                    let msg = if what == "image" {
                        format!("missing image {dest:?} (no such file beside the petition)")
                    } else {
                        format!("broken internal link {dest:?} (no page {path})")
                    };
                    errs.push(Diagnostic::new(&text.file, Some(line(*off)), msg));
                }
            }
        }
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_string())
}
