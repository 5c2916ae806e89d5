//! Tera templates: the theme's `templates/`, overridden by name by the site's own `templates/`
//! (as in Zola), and the theme's translations `i18n/<lang>.toml` (site `i18n/` overrides keys).

use crate::diag::{self, Diagnostic, Diagnostics};
use anyhow::Context;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Templates the generator renders; a theme must provide them all.
pub const REQUIRED: &[&str] = &[
    "petition.html",
    "check-email.html",
    "confirm.html",
    "thanks.html",
    "erase.html",
    "embed.html",
    "check.html",
    "signers.html",
    "index.html",
    "privacy.html",
    "unsubscribe.html",
    "404.html",
    "og.svg",
    "mail/signer.txt",
    "mail/signer.html",
    "mail/update.txt",
    "mail/milestone.txt",
    "mail/milestone.html",
    "mail/update.html",
];

pub struct Templates {
    pub tera: tera::Tera,
    /// Where each template came from (relative to the root), to name it in errors.
    pub sources: BTreeMap<String, PathBuf>,
}

/// Escapes text for HTML and XML; unlike Tera's default it leaves `/` alone so URLs stay
/// readable. The same function escapes the mails the signing function renders.
pub use cahier_function::mail_templates::escape_html as escape;

fn collect(dir: &Path, root: &Path, into: &mut BTreeMap<String, PathBuf>) {
    if !dir.is_dir() {
        return;
    }
    for e in walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .filter_map(|e| e.ok())
    {
        if e.file_type().is_file() {
            let name = e
                .path()
                .strip_prefix(dir)
                .expect("under dir")
                .to_string_lossy()
                .replace('\\', "/");
            if name.starts_with('.') || name.ends_with('~') {
                continue;
            }
            let rel = e
                .path()
                .strip_prefix(root)
                .unwrap_or(e.path())
                .to_path_buf();
            into.insert(name, rel);
        }
    }
}

/// A Tera error with its whole chain, located in the template file when Tera says where.
pub fn describe(err: &tera::Error, sources: &BTreeMap<String, PathBuf>, root: &Path) -> String {
    let mut chain = vec![err.to_string()];
    let mut src = std::error::Error::source(err);
    while let Some(e) = src {
        chain.push(e.to_string());
        src = e.source();
    }
    let text = chain.join(": ");
    // Name the template file and, when possible, the line.
    let mut located = String::new();
    for (name, rel) in sources {
        let path = format!("{}\"", rel.display());
        if text.contains(&format!("'{name}'")) || text.contains(&path) {
            let mut line = None;
            // "--> 3:5" is how Tera points into a template it cannot parse.
            if let Some(pos) = text.find("--> ") {
                line = text[pos + 4..]
                    .split(':')
                    .next()
                    .and_then(|n| n.trim().parse::<usize>().ok());
            }
            // A missing parent or include: point at the line naming it.
            if line.is_none() {
                if let Ok(body) = std::fs::read_to_string(root.join(rel)) {
                    for other in text.split('\'').skip(1).step_by(2) {
                        if other != name {
                            if let Some(i) = body.find(&format!("\"{other}\"")) {
                                line = Some(diag::line_of_offset(&body, i));
                                break;
                            }
                        }
                    }
                }
            }
            located = match line {
                Some(l) => format!("{}:{l}: ", rel.display()),
                None => format!("{}: ", rel.display()),
            };
            break;
        }
    }
    format!("{located}template error: {text}")
}

impl Templates {
    /// Loads the theme's templates then the site's overrides.
    pub fn load(root: &Path, theme_dir: &Path) -> anyhow::Result<Templates> {
        let mut sources = BTreeMap::new();
        collect(&theme_dir.join("templates"), root, &mut sources);
        collect(&root.join("templates"), root, &mut sources);
        let missing: Vec<Diagnostic> = REQUIRED
            .iter()
            .filter(|t| !sources.contains_key(**t))
            .map(|t| {
                Diagnostic::new(
                    theme_dir.strip_prefix(root).unwrap_or(theme_dir).join("templates").join(t),
                    None,
                    format!("missing template {t:?} (neither the theme nor the site's templates/ has it)"),
                )
            })
            .collect();
        if !missing.is_empty() {
            return Err(Diagnostics(missing).into());
        }
        let mut tera = tera::Tera::default();
        tera.autoescape_on(vec![".html", ".svg", ".xml"]);
        tera.set_escape_fn(escape);
        let files: Vec<(PathBuf, Option<String>)> = sources
            .iter()
            .map(|(n, p)| (root.join(p), Some(n.clone())))
            .collect();
        tera.add_template_files(files)
            .map_err(|e| anyhow::anyhow!(describe(&e, &sources, root)))?;
        Ok(Templates { tera, sources })
    }

    pub fn render(&self, name: &str, ctx: &tera::Context, root: &Path) -> anyhow::Result<String> {
        self.tera
            .render(name, ctx)
            .map_err(|e| anyhow::anyhow!(describe(&e, &self.sources, root)))
    }
}

/// UI strings of one language.
pub type Strings = BTreeMap<String, String>;

/// Loads `i18n/<lang>.toml` from the theme, then the site's `i18n/<lang>.toml` over it.
pub fn load_strings(root: &Path, theme_dir: &Path, lang: &str) -> anyhow::Result<Strings> {
    let mut strings = Strings::new();
    let mut found = false;
    for dir in [theme_dir.join("i18n"), root.join("i18n")] {
        let path = dir.join(format!("{lang}.toml"));
        if !path.is_file() {
            continue;
        }
        found = true;
        let rel = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("while reading {}", rel.display()))?;
        let map: Strings = toml::from_str(&text).map_err(|e| {
            anyhow::Error::new(Diagnostics(vec![diag::from_toml(&rel, &text, 1, &e)]))
        })?;
        strings.extend(map);
    }
    anyhow::ensure!(
        found,
        "no translations for language {lang:?}: add {}/i18n/{lang}.toml (or i18n/{lang}.toml in the site)",
        theme_dir.strip_prefix(root).unwrap_or(theme_dir).display()
    );
    Ok(strings)
}
