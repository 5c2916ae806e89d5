//! `cahier new <slug>`: scaffolds a petition that builds and passes `cahier check` at once.

use crate::config::Config;
use crate::content::{is_slug, CONTENT_DIR};
use anyhow::Context;
use std::path::{Path, PathBuf};

fn scaffold(lang: &str, default: bool) -> String {
    let (title, summary, body) = match lang {
        "fr" => (
            "Titre de la pétition",
            "Une phrase qui dit ce que vous demandez.",
            "## Pourquoi\n\nExpliquez la situation en quelques paragraphes.\n\n## Ce que nous demandons\n\n1. Une demande précise.\n2. Une autre.\n",
        ),
        _ => (
            "Petition title",
            "One sentence saying what you ask for.",
            "## Why\n\nExplain the situation in a few paragraphs.\n\n## What we ask\n\n1. One precise demand.\n2. Another one.\n",
        ),
    };
    if default {
        format!(
            "+++\ntitle = \"{title}\"\nsummary = \"{summary}\"\naddressee = \"\"\norganizers = []\ngoal = 1000\n\
             # opens = 2026-12-01\n# closes = 2027-01-31\ndraft = true\n\n\
             [[fields]]\nname = \"postcode\"\nrequired = true\n+++\n\n{body}"
        )
    } else {
        format!("+++\ntitle = \"{title}\"\nsummary = \"{summary}\"\n+++\n\n{body}")
    }
}

/// Creates `content/<slug>/index.md` (and a file per other language), or only the `lang`
/// file when given. Returns the files written; refuses to overwrite.
pub fn new_petition(
    root: &Path,
    cfg: &Config,
    slug: &str,
    lang: Option<&str>,
) -> anyhow::Result<Vec<PathBuf>> {
    anyhow::ensure!(
        is_slug(slug),
        "{slug:?} is not a valid slug: use lowercase letters, digits and dashes"
    );
    let dir = root.join(CONTENT_DIR).join(slug);
    let langs: Vec<&str> = match lang {
        Some(l) => {
            anyhow::ensure!(
                cfg.languages.iter().any(|x| x == l),
                "language {l:?} is not in `languages` of cahier.toml ({:?})",
                cfg.languages
            );
            vec![l]
        }
        None => cfg.languages.iter().map(|s| s.as_str()).collect(),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("while creating {}", dir.display()))?;
    let mut written = Vec::new();
    for l in langs {
        let default = l == cfg.default_language();
        let name = if default {
            "index.md".to_string()
        } else {
            format!("index.{l}.md")
        };
        let path = dir.join(name);
        anyhow::ensure!(!path.exists(), "{} already exists", path.display());
        std::fs::write(&path, scaffold(l, default))
            .with_context(|| format!("while writing {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}
