//! A loaded theme: templates, UI strings per language, static assets (CSS/JS fingerprinted,
//! with their Subresource Integrity), and the Open Graph renderer with the theme's fonts.

use crate::config::Config;
use crate::integrity::{fingerprinted, sri};
use crate::layout::STATIC_DIR;
use crate::og::OgRenderer;
use crate::templates::{self, Strings, Templates};
use anyhow::Context;
use cahier_function::mail_templates::{
    mail_strings, MailBundle, MailTemplates, TEMPLATES as MAIL_TEMPLATES,
};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// A static file the site links to.
#[derive(Debug, Clone, Serialize)]
pub struct Asset {
    /// Root-relative URL (with the site's base path).
    pub url: String,
    /// `sha384-...` for `integrity=`.
    pub integrity: String,
}

/// The site's icon, for `<link rel="icon">`.
#[derive(Debug, Clone, Serialize)]
pub struct Favicon {
    pub url: String,
    /// `type=`: `image/svg+xml`, `image/png` or `image/x-icon`.
    pub mime: &'static str,
}

pub struct Theme {
    pub templates: Templates,
    pub strings: BTreeMap<String, Strings>,
    /// Assets by their source name (`style.css`), for templates.
    pub assets: BTreeMap<String, Asset>,
    /// Files to write: (path relative to the output, bytes).
    pub files: Vec<(String, Vec<u8>)>,
    pub og: OgRenderer,
    /// `favicon` of cahier.toml, else the theme's `static/favicon.svg`, if any.
    pub favicon: Option<Favicon>,
    /// The mail templates and strings the function renders (bundled into the manifest),
    /// checked to render in every language.
    pub mails: MailBundle,
}

fn read_tree(dir: &Path) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut v = Vec::new();
    if !dir.is_dir() {
        return Ok(v);
    }
    for e in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let e = e.with_context(|| format!("while reading {}", dir.display()))?;
        if !e.file_type().is_file() {
            continue;
        }
        let rel = e
            .path()
            .strip_prefix(dir)
            .expect("under dir")
            .to_string_lossy()
            .replace('\\', "/");
        if rel.split('/').any(|s| s.starts_with('.')) {
            continue;
        }
        let bytes = std::fs::read(e.path())
            .with_context(|| format!("while reading {}", e.path().display()))?;
        v.push((rel, bytes));
    }
    Ok(v)
}

impl Theme {
    pub fn load(root: &Path, cfg: &Config) -> anyhow::Result<Theme> {
        let dir = cfg.theme_dir(root);
        anyhow::ensure!(
            dir.is_dir(),
            "theme {:?} not found: expected the folder {} (set `theme` in cahier.toml)",
            cfg.theme,
            dir.display()
        );
        let templates = Templates::load(root, &dir)?;
        let mut strings = BTreeMap::new();
        for lang in &cfg.languages {
            strings.insert(lang.clone(), templates::load_strings(root, &dir, lang)?);
        }
        let bp = cfg.base_path();
        let mut assets = BTreeMap::new();
        let mut files = Vec::new();
        // Theme assets under /static/, CSS and JS fingerprinted.
        for (rel, bytes) in read_tree(&dir.join("static"))? {
            let out = if rel.ends_with(".css") || rel.ends_with(".js") {
                format!("{STATIC_DIR}/{}", fingerprinted(&rel, &bytes))
            } else {
                format!("{STATIC_DIR}/{rel}")
            };
            assets.insert(
                rel,
                Asset {
                    url: format!("{bp}/{out}"),
                    integrity: sri(&bytes),
                },
            );
            files.push((out, bytes));
        }
        // The site's own static files land at the root as they are (favicon.ico, ...).
        for (rel, bytes) in read_tree(&root.join("static"))? {
            assets.insert(
                rel.clone(),
                Asset {
                    url: format!("{bp}/{rel}"),
                    integrity: sri(&bytes),
                },
            );
            files.push((rel, bytes));
        }
        for needed in ["style.css", "cahier.js"] {
            anyhow::ensure!(
                assets.contains_key(needed),
                "theme {:?} has no static/{needed}",
                cfg.theme
            );
        }
        let favicon = match &cfg.favicon {
            // Under the site's static/: already copied (at the root, as it is).
            Some(f) if f.starts_with("static/") && assets.contains_key(&f["static/".len()..]) => {
                Some(Favicon {
                    url: assets[&f["static/".len()..]].url.clone(),
                    mime: crate::config::favicon_mime(f).unwrap_or("image/png"),
                })
            }
            // Anywhere else in the site: copied under a fingerprinted name.
            Some(f) => {
                let bytes = std::fs::read(root.join(f))
                    .with_context(|| format!("while reading the favicon {f}"))?;
                let name = f.rsplit('/').next().unwrap_or(f);
                let out = format!("{STATIC_DIR}/{}", fingerprinted(name, &bytes));
                files.push((out.clone(), bytes));
                Some(Favicon {
                    url: format!("{bp}/{out}"),
                    mime: crate::config::favicon_mime(f).unwrap_or("image/png"),
                })
            }
            None => assets.get("favicon.svg").map(|a| Favicon {
                url: a.url.clone(),
                mime: "image/svg+xml",
            }),
        };
        let og = OgRenderer::new(&dir, root.join(".cahier").join("og-cache"))?;
        let mails = mail_bundle(root, &templates, &strings, cfg.default_language())?;
        Ok(Theme {
            templates,
            strings,
            assets,
            files,
            og,
            favicon,
            mails,
        })
    }
}

/// The mail templates (site override or theme, by name) and each language's `mail_*` strings,
/// compiled and rendered once here so that a broken override stops the build, naming the file.
fn mail_bundle(
    root: &Path,
    templates: &Templates,
    strings: &BTreeMap<String, Strings>,
    default_language: &str,
) -> anyhow::Result<MailBundle> {
    let mut bundle = MailBundle {
        templates: BTreeMap::new(),
        strings: strings
            .iter()
            .map(|(lang, s)| (lang.clone(), mail_strings(s)))
            .collect(),
    };
    let mut files = Vec::new();
    for name in MAIL_TEMPLATES {
        let rel = &templates.sources[*name];
        let source = std::fs::read_to_string(root.join(rel))
            .with_context(|| format!("while reading {}", rel.display()))?;
        bundle.templates.insert(name.to_string(), source);
        files.push(rel.display().to_string());
    }
    MailTemplates::compile(&bundle, default_language).with_context(|| {
        format!(
            "while checking the mails ({}, and the mail_* strings of i18n/)",
            files.join(", ")
        )
    })?;
    Ok(bundle)
}
