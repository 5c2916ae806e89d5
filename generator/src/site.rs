//! `cahier build`: content + theme -> a complete static site, rendered in parallel into a
//! temporary folder beside the output and swapped in at the end, so the output folder is
//! never half-written. Everything is sorted and nothing reads the clock: same input, same bytes.

use crate::config::Config;
use crate::content::{self, Content, Petition};
use crate::diag::Diagnostics;
use crate::headers::{HeadersFile, PageClass};
use crate::images::{self, ImageCache, SiteImages};
use crate::integrity::{self, OutFile, Output};
use crate::layout::{self, SITE_PAGES};
use crate::pages::{self, LangSite};
use crate::theme::Theme;
use crate::{feeds, petition_manifest};
use anyhow::Context;
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// What to build and where; the overrides serve `cahier serve` (local origin, dev captcha).
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Site root (holds `cahier.toml`, `content/`, `themes/`).
    pub root: PathBuf,
    /// Output folder, usually `<root>/public`.
    pub out: PathBuf,
    /// Include petitions marked `draft = true`.
    pub drafts: bool,
    /// Overrides `base_url` (e.g. `http://127.0.0.1:8080`); `api_url` then follows unless set.
    pub base_url: Option<String>,
    /// Overrides `api_url`.
    pub api_url: Option<String>,
    /// Overrides `captcha.provider` (`dev` for local development).
    pub captcha_provider: Option<String>,
    /// Overrides `log_public_key` (`cahier serve`'s development log key).
    pub log_public_key: Option<String>,
}

#[derive(Debug, Clone)]
pub struct BuildReport {
    /// HTML pages written.
    pub pages: usize,
    /// All files written, `integrity.json` included.
    pub files: usize,
    pub elapsed: Duration,
    pub petitions: usize,
    /// Open Graph cards rendered now / taken from the cache.
    pub og_rendered: usize,
    pub og_cached: usize,
    /// Source images (JPEG, PNG) whose derivatives were made now / taken from the cache.
    pub images_rendered: usize,
    pub images_cached: usize,
    /// Problems that did not stop the build (e.g. a missing translation).
    pub warnings: Vec<String>,
    /// The paper batches the front matters declare (recorded by [`crate::offline_sync`]).
    pub offline: Vec<crate::offline_sync::Declared>,
}

/// Loads the configuration with the options' overrides applied.
pub fn load_config(opts: &BuildOptions) -> anyhow::Result<Config> {
    let mut cfg = crate::config::load(&opts.root)?;
    if let Some(b) = &opts.base_url {
        cfg.base_url = b.trim_end_matches('/').to_string();
    }
    if let Some(a) = &opts.api_url {
        cfg.api_url = Some(a.trim_end_matches('/').to_string());
    } else if opts.base_url.is_some() {
        cfg.api_url = None;
    }
    if let Some(p) = &opts.captcha_provider {
        anyhow::ensure!(
            p == "hcaptcha" || p == "dev",
            "captcha provider {p:?} is unknown; use \"hcaptcha\" or \"dev\""
        );
        cfg.captcha.provider = p.clone();
    }
    if let Some(k) = &opts.log_public_key {
        cfg.log_public_key = Some(k.clone());
    }
    Ok(cfg)
}

/// A public site whose captcha lets anyone sign (the dev captcha, hCaptcha's public test keys)
/// builds — the example does — but is said so: the function refuses to start with it.
fn open_captcha_warning(cfg: &Config) -> Option<String> {
    use cahier_function::captcha::public_site::{is_loopback, uses_test_keys};
    if is_loopback(&cfg.base_url) {
        return None;
    }
    match cfg.captcha.provider.as_str() {
        "dev" => Some(format!(
            "captcha.provider = \"dev\" lets anyone sign and {} is public: the function will refuse to start; use \"hcaptcha\" with your own keys",
            cfg.base_url
        )),
        "hcaptcha" if uses_test_keys(&cfg.captcha.sitekey, None) => Some(format!(
            "captcha.sitekey is hCaptcha's public test key, which passes every response, and {} is public: the function will refuse to start with it; put your own site key in cahier.toml",
            cfg.base_url
        )),
        _ => None,
    }
}

pub fn build(opts: &BuildOptions) -> anyhow::Result<BuildReport> {
    let start = Instant::now();
    let root = &opts.root;
    let cfg = load_config(opts)?;
    let content = content::load(root, &cfg, opts.drafts).map_err(Diagnostics)?;
    let theme = Theme::load(root, &cfg)?;
    // The checks of `cahier check` that need the theme: a slug the site's layout already uses.
    let clashes =
        layout::slug_collisions(&cfg, &content, theme.files.iter().map(|(p, _)| p.as_str()));
    if !clashes.is_empty() {
        return Err(Diagnostics(clashes).into());
    }
    let mut warnings: Vec<String> = open_captcha_warning(&cfg).into_iter().collect();
    for p in &content.petitions {
        let missing = content::missing_languages(p, &cfg);
        if !missing.is_empty() {
            warnings.push(format!(
                "{}: no translation for {} (the petition is published in {} only)",
                p.dir.display(),
                missing.join(", "),
                p.texts.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
    }

    // Responsive derivatives of the petitions' images, before anything is written: a broken
    // image stops the build with the file and line that show it.
    let image_cache = ImageCache::new(root.join(".cahier").join("image-cache"));
    let images = images::prepare(
        root,
        &content.petitions,
        cfg.default_language(),
        &image_cache,
    )
    .map_err(Diagnostics)?;

    let out = &opts.out;
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent)
        .with_context(|| format!("while creating {}", parent.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix(".cahier-build-")
        .tempdir_in(&parent)
        .with_context(|| format!("while creating a build folder in {}", parent.display()))?;
    let output = Output::new(tmp.path());
    let stats = render_all(root, &cfg, &content, &theme, &images, &output)?;
    let mut files = stats.files;
    files.sort_by(|a, b| a.path.cmp(&b.path));
    if let Some(w) = files.windows(2).find(|w| w[0].path == w[1].path) {
        anyhow::bail!(
            "two outputs would be written to {}: rename one of them",
            w[0].path
        );
    }
    output.write(integrity::INTEGRITY_FILE, &integrity::manifest(&files))?;
    let n_files = files.len() + 1;
    swap_into_place(tmp, out)?;
    Ok(BuildReport {
        pages: stats.pages,
        files: n_files,
        elapsed: start.elapsed(),
        petitions: content.petitions.len(),
        og_rendered: stats.og_rendered,
        og_cached: stats.og_cached,
        images_rendered: images.rendered,
        images_cached: images.cached,
        warnings,
        offline: crate::offline_sync::declared(&content, cfg.default_language()),
    })
}

/// Replaces `out` by the finished build: the old output is renamed away first, then removed.
fn swap_into_place(tmp: tempfile::TempDir, out: &Path) -> anyhow::Result<()> {
    let new = tmp.keep();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // tempdir is 0700; a site folder is meant to be read by a web server.
        let _ = std::fs::set_permissions(&new, std::fs::Permissions::from_mode(0o755));
    }
    if out.exists() {
        let old = new.with_file_name(format!(
            "{}.old",
            new.file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default()
        ));
        std::fs::rename(out, &old)
            .with_context(|| format!("while moving the previous {} away", out.display()))?;
        if let Err(e) = std::fs::rename(&new, out) {
            let _ = std::fs::rename(&old, out);
            let _ = std::fs::remove_dir_all(&new);
            return Err(e)
                .with_context(|| format!("while moving the new site into {}", out.display()));
        }
        std::fs::remove_dir_all(&old)
            .with_context(|| format!("while removing {}", old.display()))?;
    } else {
        std::fs::rename(&new, out)
            .with_context(|| format!("while moving the new site into {}", out.display()))?;
    }
    Ok(())
}

struct Stats {
    files: Vec<OutFile>,
    pages: usize,
    og_rendered: usize,
    og_cached: usize,
}

/// The sub-pages every petition has, besides its main page (see [`crate::layout`]).
pub use crate::layout::SUBPAGES;

fn render_all(
    root: &Path,
    cfg: &Config,
    content: &Content,
    theme: &Theme,
    images: &SiteImages,
    output: &Output,
) -> anyhow::Result<Stats> {
    let sites: Vec<LangSite> = cfg
        .languages
        .iter()
        .map(|l| LangSite::new(cfg, theme, content, l))
        .collect();
    let og_rendered = AtomicUsize::new(0);
    let og_cached = AtomicUsize::new(0);

    // Every (petition, language) renders its six pages, its card and its images.
    let jobs: Vec<(&Petition, &LangSite)> = content
        .petitions
        .iter()
        .flat_map(|p| {
            sites
                .iter()
                .filter(|s| p.texts.contains_key(&s.lang))
                .map(move |s| (p, s))
        })
        .collect();
    let per_petition: Vec<(Vec<OutFile>, usize)> = jobs
        .par_iter()
        .map(|(p, site)| {
            let og = (&og_rendered, &og_cached);
            let r = render_petition(root, cfg, theme, site, p, images, output, og);
            r.with_context(|| format!("while building {} ({})", p.dir.display(), site.lang))
        })
        .collect::<anyhow::Result<_>>()?;

    let mut files = Vec::new();
    let mut pages = 0;
    for (f, n) in per_petition {
        files.extend(f);
        pages += n;
    }
    for site in &sites {
        let (f, n) = render_site_pages(root, cfg, theme, content, images, site, output)
            .with_context(|| format!("while building the site pages ({})", site.lang))?;
        files.extend(f);
        pages += n;
    }
    for (rel, bytes) in &theme.files {
        files.push(output.write(rel, bytes)?);
    }
    files.push(output.write(
        layout::MANIFEST_FILE,
        &petition_manifest::to_json(&petition_manifest::build(cfg, content, theme)),
    )?);
    files.push(output.write(
        layout::SITEMAP_FILE,
        feeds::sitemap(&pages::sitemap_urls(cfg, content, &sites)).as_bytes(),
    )?);
    files.push(
        output.write(
            layout::ROBOTS_FILE,
            feeds::robots(
                &format!("{}/{}", cfg.base_url, layout::SITEMAP_FILE),
                &pages::robots_disallow(cfg),
            )
            .as_bytes(),
        )?,
    );
    let mut h = HeadersFile::new(cfg);
    for site in &sites {
        for page in SITE_PAGES {
            h.page(cfg, &site.path(&format!("/{}", page.rel)), PageClass::Plain);
        }
    }
    for p in &content.petitions {
        for site in sites.iter().filter(|s| p.texts.contains_key(&s.lang)) {
            h.page(cfg, &site.path(&format!("/{}/", p.slug)), PageClass::Sign);
        }
    }
    files.push(output.write(layout::HEADERS_FILE, h.finish().as_bytes())?);
    Ok(Stats {
        files,
        pages,
        og_rendered: og_rendered.into_inner(),
        og_cached: og_cached.into_inner(),
    })
}

#[allow(clippy::too_many_arguments)]
fn render_petition(
    root: &Path,
    cfg: &Config,
    theme: &Theme,
    site: &LangSite,
    p: &Petition,
    images: &SiteImages,
    output: &Output,
    (og_rendered, og_cached): (&AtomicUsize, &AtomicUsize),
) -> anyhow::Result<(Vec<OutFile>, usize)> {
    let mut files = Vec::with_capacity(8 + p.assets.len());
    let dir = format!("{}{}/", site.dir, p.slug);
    let mut ctx = site.context.clone();
    let pctx = pages::petition_context(cfg, site, p, images);
    ctx.insert("petition", &pctx);

    let main_page = pages::page_context(cfg, site, p, "petition", "");
    ctx.insert("page", &main_page);
    let html = theme.templates.render("petition.html", &ctx, root)?;
    files.push(output.write(&format!("{dir}index.html"), html.as_bytes())?);
    for sub in SUBPAGES {
        let name = sub.name;
        ctx.insert(
            "page",
            &pages::page_context(cfg, site, p, name, &format!("{name}/")),
        );
        let html = theme.templates.render(sub.template, &ctx, root)?;
        files.push(output.write(&format!("{dir}{name}/index.html"), html.as_bytes())?);
    }

    // Open Graph card.
    let cover = pages::og_cover(p, images);
    let svg = theme.templates.render(
        "og.svg",
        &pages::og_context(site, &pctx, cover.is_some()),
        root,
    )?;
    let card = theme.og.card(&svg, cover)?;
    if card.rendered {
        og_rendered
    } else {
        og_cached
    }
    .fetch_add(1, Ordering::Relaxed);
    files.push(output.link(
        &format!("{dir}{}", layout::OG_IMAGE),
        &card.path,
        &card.sha256,
        card.bytes,
    )?);

    // Images and other files beside the petition, copied beside each language's page.
    for a in &p.assets {
        let src = root.join(&p.dir).join(a);
        let bytes =
            std::fs::read(&src).with_context(|| format!("while reading {}", src.display()))?;
        files.push(output.write(&format!("{dir}{a}"), &bytes)?);
    }
    // Their responsive derivatives, linked from the cache.
    for set in images.of(&p.slug) {
        for d in &set.derivatives {
            files.push(output.link(
                &format!("{dir}{}", set.name(d)),
                &d.path,
                &d.sha256,
                d.bytes,
            )?);
        }
    }
    Ok((files, 1 + SUBPAGES.len()))
}

fn render_site_pages(
    root: &Path,
    cfg: &Config,
    theme: &Theme,
    content: &Content,
    images: &SiteImages,
    site: &LangSite,
    output: &Output,
) -> anyhow::Result<(Vec<OutFile>, usize)> {
    let mut files = Vec::new();
    let mut ctx = site.context.clone();
    ctx.insert("petitions", &pages::index_cards(cfg, site, content, images));
    for page in SITE_PAGES {
        let rel = page.rel;
        ctx.insert("page", &pages::site_page_context(cfg, site, page.kind, rel));
        let html = theme.templates.render(page.template, &ctx, root)?;
        let out = if rel.ends_with(".html") {
            format!("{}{rel}", site.dir)
        } else {
            format!("{}{rel}index.html", site.dir)
        };
        files.push(output.write(&out, html.as_bytes())?);
    }
    let feed = pages::atom_feed(cfg, site, content);
    files.push(output.write(
        &format!("{}{}", site.dir, layout::FEED_FILE),
        feed.as_bytes(),
    )?);
    Ok((files, SITE_PAGES.len()))
}
