//! What the live site must serve: the integrity manifest and, from the build beside it, the
//! scripts and policies of each page and the `_headers` rules.

use super::headers::HeaderRules;
use super::html::{self, PageFacts};
use crate::integrity::{sha256_hex, INTEGRITY_FILE};
use anyhow::{bail, Context};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Files a CDN reads as configuration and never serves.
pub const CDN_CONFIG_FILES: &[&str] = &["_headers", "_redirects"];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expected {
    pub sha256: String,
    pub bytes: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestFile {
    version: u32,
    files: BTreeMap<String, Expected>,
}

/// The built site, as recorded by `cahier build`.
#[derive(Debug)]
pub struct Reference {
    pub manifest: PathBuf,
    pub files: BTreeMap<String, Expected>,
    pub pages: HashMap<String, PageFacts>,
    pub headers: Option<HeaderRules>,
}

impl Reference {
    /// Reads `integrity.json` and the HTML pages and `_headers` beside it, each checked
    /// against the manifest so that a stale or edited build is not taken as the truth.
    pub fn load(manifest: &Path) -> anyhow::Result<Reference> {
        let text = std::fs::read_to_string(manifest)
            .with_context(|| format!("while reading {}", manifest.display()))?;
        let m: ManifestFile = serde_json::from_str(&text)
            .with_context(|| format!("while parsing {}", manifest.display()))?;
        if m.version != 1 {
            bail!(
                "{}: unsupported integrity manifest version {} (this cahier reads version 1)",
                manifest.display(),
                m.version
            );
        }
        let dir = manifest.parent().unwrap_or(Path::new("."));
        let read = |rel: &str| -> anyhow::Result<Vec<u8>> {
            let path = dir.join(rel);
            let bytes = std::fs::read(&path)
                .with_context(|| format!("while reading {}", path.display()))?;
            if sha256_hex(&bytes) != m.files[rel].sha256 {
                bail!(
                    "{} does not match {}: rebuild the site, or point --manifest at the build \
                     that was deployed",
                    path.display(),
                    manifest.display()
                );
            }
            Ok(bytes)
        };
        let mut pages = HashMap::new();
        for rel in m.files.keys().filter(|k| is_html(k)) {
            let bytes = read(rel)?;
            pages.insert(rel.clone(), html::facts(&String::from_utf8_lossy(&bytes)));
        }
        let headers = match m.files.contains_key("_headers") {
            true => Some(
                HeaderRules::parse(&String::from_utf8_lossy(&read("_headers")?))
                    .with_context(|| format!("while reading {}", dir.join("_headers").display()))?,
            ),
            false => None,
        };
        Ok(Reference {
            manifest: manifest.to_path_buf(),
            files: m.files,
            pages,
            headers,
        })
    }

    /// The files a browser can fetch (everything but the CDN's configuration files).
    pub fn served(&self) -> impl Iterator<Item = (&String, &Expected)> {
        self.files.iter().filter(|(k, _)| {
            !CDN_CONFIG_FILES.contains(&k.as_str()) && k.as_str() != INTEGRITY_FILE
        })
    }

    pub fn skipped(&self) -> Vec<String> {
        self.files
            .keys()
            .filter(|k| CDN_CONFIG_FILES.contains(&k.as_str()))
            .cloned()
            .collect()
    }
}

pub fn is_html(rel: &str) -> bool {
    rel.ends_with(".html")
}

/// The URL path (relative to the site's base) a visitor uses for a file: pages by their
/// folder (`a/index.html` -> `a/`), everything else as is.
pub fn url_path(rel: &str) -> &str {
    if rel == "index.html" {
        ""
    } else if let Some(dir) = rel.strip_suffix("/index.html") {
        &rel[..dir.len() + 1]
    } else {
        rel
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_fetched_by_folder() {
        assert_eq!(url_path("index.html"), "");
        assert_eq!(url_path("en/noel/index.html"), "en/noel/");
        assert_eq!(url_path("404.html"), "404.html");
        assert_eq!(url_path("static/a.css"), "static/a.css");
    }

    #[test]
    fn stale_build_is_refused() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("index.html"), "<p>changed</p>").unwrap();
        std::fs::write(
            d.path().join("integrity.json"),
            format!(
                r#"{{"version":1,"files":{{"index.html":{{"sha256":"{}","bytes":3}}}}}}"#,
                sha256_hex(b"<p>")
            ),
        )
        .unwrap();
        let e = Reference::load(&d.path().join("integrity.json")).unwrap_err();
        assert!(e.to_string().contains("does not match"), "{e}");
    }
}
