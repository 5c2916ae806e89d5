//! What templates see: the per-language site context, and the context of each petition and
//! page. Built once per (petition, language) and shared by its six pages.

use crate::config::Config;
use crate::content::{Content, Petition};
use crate::feeds::{self, FeedEntry, SitemapUrl};
use crate::headers::{csp, PageClass};
use crate::images::SiteImages;
use crate::markdown;
use crate::og;
use crate::templates::Strings;
use crate::theme::{Asset, Theme};
use serde::Serialize;
use std::collections::BTreeMap;

/// One language of the site: URL prefix, strings and the context every page starts from.
pub struct LangSite {
    pub lang: String,
    /// Output folder prefix: `""` for the default language, `"en/"` otherwise.
    pub dir: String,
    /// Root-relative URL prefix, e.g. `""`, `"/en"`, or `"/petitions/en"` under a base path.
    pub prefix: String,
    pub strings: Strings,
    pub base_url: String,
    pub context: tera::Context,
    pub csp_sign: String,
    pub csp_plain: String,
    pub csp_embed: String,
    pub csp_check: String,
    /// `SOURCE_DATE_EPOCH`, the date of undated things (never the clock).
    pub epoch: i64,
}

#[derive(Serialize)]
struct LangLink {
    code: String,
    name: String,
    path: String,
}

#[derive(Serialize)]
struct SiteCtx<'a> {
    title: &'a str,
    description: &'a str,
    base_url: &'a str,
    base_path: String,
    api_url: String,
    lang: &'a str,
    default_lang: &'a str,
    home_path: String,
    privacy_path: String,
    feed_path: String,
    feed_url: String,
    languages: Vec<LangLink>,
    organization: &'a crate::config::Organization,
    captcha_provider: &'a str,
    /// Every POST must carry `x-amz-content-sha256` (see [`Config::signed_posts`]): the pages
    /// say that signing, confirming and erasing need JavaScript.
    signed_posts: bool,
    captcha_sitekey: &'a str,
    /// Script of the captcha widget, loaded only on signing pages.
    captcha_script: String,
    retention_days: u32,
    css: &'a Asset,
    js: &'a Asset,
    assets: &'a BTreeMap<String, Asset>,
    favicon: Option<&'a crate::theme::Favicon>,
    /// The transparency log's public key (base64), for the "check my signature" page.
    log_public_key: Option<&'a str>,
}

impl LangSite {
    pub fn new(cfg: &Config, theme: &Theme, _content: &Content, lang: &str) -> LangSite {
        let strings = theme.strings[lang].clone();
        let bp = cfg.base_path();
        let prefix = format!("{bp}{}", cfg.lang_prefix(lang));
        let dir = if lang == cfg.default_language() {
            String::new()
        } else {
            format!("{lang}/")
        };
        let captcha_script = match cfg.captcha.provider.as_str() {
            "dev" => format!("{}/__dev/captcha.js", cfg.api_url()),
            _ => "https://js.hcaptcha.com/1/api.js".to_string(),
        };
        let languages = cfg
            .languages
            .iter()
            .map(|l| LangLink {
                code: l.clone(),
                name: theme.strings[l]
                    .get("language_name")
                    .cloned()
                    .unwrap_or_else(|| l.clone()),
                path: format!("{bp}{}/", cfg.lang_prefix(l)),
            })
            .collect();
        let site = SiteCtx {
            title: &cfg.title,
            description: cfg.description.get(lang, cfg.default_language()),
            base_url: &cfg.base_url,
            base_path: bp.clone(),
            api_url: cfg.api_url(),
            lang,
            default_lang: cfg.default_language(),
            home_path: format!("{prefix}/"),
            privacy_path: format!("{prefix}/privacy/"),
            feed_path: format!("{prefix}/atom.xml"),
            feed_url: format!("{}{}/atom.xml", cfg.base_url, cfg.lang_prefix(lang)),
            languages,
            organization: &cfg.organization,
            captcha_provider: &cfg.captcha.provider,
            signed_posts: cfg.signed_posts(),
            captcha_sitekey: &cfg.captcha.sitekey,
            captcha_script,
            retention_days: cfg.retention_days,
            css: &theme.assets["style.css"],
            js: &theme.assets["cahier.js"],
            assets: &theme.assets,
            favicon: theme.favicon.as_ref(),
            log_public_key: cfg.log_public_key.as_deref(),
        };
        let mut context = tera::Context::new();
        context.insert("site", &site);
        context.insert("t", &strings);
        context.insert("lang", lang);
        let epoch = std::env::var("SOURCE_DATE_EPOCH")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        LangSite {
            lang: lang.to_string(),
            dir,
            prefix,
            strings,
            base_url: cfg.base_url.clone(),
            context,
            csp_sign: csp(cfg, PageClass::Sign, true),
            csp_plain: csp(cfg, PageClass::Plain, true),
            csp_embed: csp(cfg, PageClass::Embed, true),
            csp_check: csp(cfg, PageClass::Check, true),
            epoch,
        }
    }

    /// Root-relative path of `rest` (which starts with `/`) in this language.
    pub fn path(&self, rest: &str) -> String {
        format!("{}{rest}", self.prefix)
    }

    pub fn home_path(&self) -> String {
        self.path("/")
    }

    /// Absolute URL of a root-relative path.
    pub fn url(&self, path: &str) -> String {
        let origin_end = self.base_url.find("://").map(|i| i + 3).unwrap_or(0);
        let origin = match self.base_url[origin_end..].find('/') {
            Some(i) => &self.base_url[..origin_end + i],
            None => &self.base_url,
        };
        format!("{origin}{path}")
    }

    fn t(&self, key: &str) -> String {
        self.strings
            .get(key)
            .cloned()
            .unwrap_or_else(|| key.to_string())
    }

    /// A number with this language's thousands separator ("10 000", "10,000").
    pub fn number_text(&self, n: u64) -> String {
        let sep = self
            .strings
            .get("thousands_separator")
            .map(|s| s.as_str())
            .unwrap_or(",");
        let digits = n.to_string();
        let mut out = String::with_capacity(digits.len() + 8);
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push_str(sep);
            }
            out.push(c);
        }
        out
    }

    /// "Goal: 10,000 signatures" in this language.
    pub fn goal_text(&self, goal: u64) -> String {
        self.t("goal_text")
            .replace("{goal}", &self.number_text(goal))
    }

    /// A date in this language's words ("24 décembre 2026").
    pub fn date_text(&self, unix: i64) -> String {
        use chrono::Datelike;
        let d = chrono::DateTime::from_timestamp(unix, 0).unwrap_or_default();
        self.t("date_format")
            .replace("{day}", &d.day().to_string())
            .replace("{month}", &self.t(&format!("month_{}", d.month())))
            .replace("{year}", &d.year().to_string())
    }
}

#[derive(Serialize)]
pub struct FieldCtx {
    pub name: String,
    pub kind: &'static str,
    pub label: String,
    pub required: bool,
    pub max_len: u32,
    pub autocomplete: &'static str,
}

#[derive(Serialize)]
pub struct Link {
    pub name: String,
    pub url: String,
}

#[derive(Serialize)]
pub struct PetitionCtx {
    pub slug: String,
    pub lang: String,
    pub title: String,
    pub summary: String,
    pub addressee: String,
    pub organizers: Vec<String>,
    pub tags: Vec<String>,
    /// The petition text as HTML.
    pub body: String,
    pub goal: u64,
    pub goal_text: String,
    pub opens_unix: Option<i64>,
    pub closes_unix: Option<i64>,
    pub opens_text: Option<String>,
    pub closes_text: Option<String>,
    /// The cover: its path (the largest derivative for a JPEG or PNG), and for those the
    /// `srcset`, `sizes` and intrinsic size of that derivative.
    pub image_path: Option<String>,
    pub image_srcset: Option<String>,
    pub image_sizes: Option<String>,
    pub image_width: Option<u32>,
    pub image_height: Option<u32>,
    pub image_alt: String,
    pub og_image_url: String,
    pub fields: Vec<FieldCtx>,
    pub consent: String,
    pub newsletter: Option<String>,
    pub public_signers: bool,
    /// The public list shows the signer's town too: the consent box says so.
    pub public_city: bool,
    pub sign_url: String,
    pub count_url: String,
    /// The public list's pages are `<signers_api><n>`.
    pub signers_api: String,
    pub signers_path: String,
    /// Where the signatures come from (`/api/petitions/<slug>/regions.json`), when the
    /// petition publishes it: the page charts it.
    pub geography: bool,
    pub regions_url: String,
    pub confirm_api: String,
    pub erase_api: String,
    pub url: String,
    pub path: String,
    pub check_email_path: String,
    pub confirm_path: String,
    pub thanks_path: String,
    pub erase_path: String,
    /// The "check my signature" page, and the log it reads (`/<slug>/log/`, its origin line).
    pub check_path: String,
    pub log_path: String,
    pub log_origin: String,
    pub embed_path: String,
    pub embed_url: String,
    pub embed_code: String,
    pub share: Vec<Link>,
}

fn field_kind_name(k: cahier_function::manifest::FieldKind) -> &'static str {
    use cahier_function::manifest::FieldKind::*;
    match k {
        Text => "text",
        Textarea => "textarea",
        Postcode => "postcode",
        Country => "country",
        Checkbox => "checkbox",
    }
}

/// The consent wording signers see in `lang` (hashed into the petition manifest).
pub fn consent_text(cfg: &Config, strings: &Strings, p: &Petition, lang: &str) -> String {
    let own = p.texts.get(lang).and_then(|t| t.consent.clone());
    own.unwrap_or_else(|| {
        strings
            .get("consent_default")
            .cloned()
            .unwrap_or_default()
            .replace("{organization}", &cfg.organization.name)
            .replace("{retention_days}", &cfg.retention_days.to_string())
    })
}

/// Newsletter opt-in wording in `lang`, when the petition offers one.
pub fn newsletter_text(
    cfg: &Config,
    strings: &Strings,
    p: &Petition,
    lang: &str,
) -> Option<String> {
    p.meta.newsletter.as_ref()?;
    Some(
        p.texts
            .get(lang)
            .and_then(|t| t.newsletter.clone())
            .unwrap_or_else(|| {
                strings
                    .get("newsletter_default")
                    .cloned()
                    .unwrap_or_default()
                    .replace("{organization}", &cfg.organization.name)
            }),
    )
}

/// What the signer read: title and Markdown text, as written.
pub fn petition_text(p: &Petition, lang: &str) -> String {
    let t = &p.texts[lang];
    format!("{}\n\n{}", t.title, t.body)
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
}

/// A petition's cover image: (path, srcset, sizes, width, height); derivatives for a JPEG or
/// PNG, the file as it is otherwise (SVG).
type Cover = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<u32>,
    Option<u32>,
);

fn cover(p: &Petition, images: &SiteImages, path: &str, sizes: &str) -> Cover {
    let Some(img) = p.meta.image.as_ref() else {
        return (None, None, None, None, None);
    };
    match images.get(&p.slug, img) {
        Some(set) => {
            let a = set.attrs(path);
            (
                Some(a.src),
                Some(a.srcset),
                Some(sizes.to_string()),
                Some(a.width),
                Some(a.height),
            )
        }
        None => (Some(format!("{path}{img}")), None, None, None, None),
    }
}

pub fn petition_context(
    cfg: &Config,
    site: &LangSite,
    p: &Petition,
    images: &SiteImages,
) -> PetitionCtx {
    let text = &p.texts[&site.lang];
    let api = cfg.api_url();
    let path = site.path(&format!("/{}/", p.slug));
    let (image_path, image_srcset, image_sizes, image_width, image_height) =
        cover(p, images, &path, crate::images::SIZES_PROSE);
    // The cover comes first on the page: it loads at once, the text's images lazily.
    let body = markdown::render_with(
        &text.body,
        &|dest| {
            let name = crate::images::local_asset(p, dest)?;
            let a = images.get(&p.slug, name)?.attrs(&path);
            Some(markdown::ImageAttrs {
                src: a.src,
                srcset: a.srcset,
                sizes: crate::images::SIZES_PROSE.to_string(),
                width: a.width,
                height: a.height,
            })
        },
        image_path.is_none(),
    )
    .html;
    let url = site.url(&path);
    let fields = p
        .meta
        .fields
        .iter()
        .map(|f| FieldCtx {
            name: f.name.clone(),
            kind: field_kind_name(f.kind()),
            label: text
                .field_labels
                .get(&f.name)
                .cloned()
                .or_else(|| site.strings.get(&format!("field_{}", f.name)).cloned())
                .or_else(|| {
                    p.texts[cfg.default_language()]
                        .field_labels
                        .get(&f.name)
                        .cloned()
                })
                .unwrap_or_else(|| f.name.clone()),
            required: f.required,
            max_len: f.max_len(),
            autocomplete: match f.name.as_str() {
                "postcode" => "postal-code",
                "city" => "address-level2",
                "country" => "country-name",
                "organization" => "organization",
                _ => "off",
            },
        })
        .collect();
    let share_text = format!("{} — {}", text.title, site.t("share_text"));
    let share = vec![
        Link {
            name: site.t("share_email"),
            url: format!(
                "mailto:?subject={}&body={}",
                enc(&text.title).replace('+', "%20"),
                enc(&format!("{share_text}\n{url}")).replace('+', "%20")
            ),
        },
        Link {
            name: "Mastodon".into(),
            url: format!(
                "https://toot.kytta.com/?text={}",
                enc(&format!("{share_text} {url}"))
            ),
        },
        Link {
            name: "Bluesky".into(),
            url: format!(
                "https://bsky.app/intent/compose?text={}",
                enc(&format!("{share_text} {url}"))
            ),
        },
        Link {
            name: "Facebook".into(),
            url: format!("https://www.facebook.com/sharer/sharer.php?u={}", enc(&url)),
        },
        Link {
            name: "WhatsApp".into(),
            url: format!(
                "https://wa.me/?text={}",
                enc(&format!("{share_text} {url}"))
            ),
        },
        Link {
            name: "Telegram".into(),
            url: format!(
                "https://t.me/share/url?url={}&text={}",
                enc(&url),
                enc(&share_text)
            ),
        },
        Link {
            name: "X".into(),
            url: format!(
                "https://x.com/intent/post?text={}&url={}",
                enc(&share_text),
                enc(&url)
            ),
        },
    ];
    let embed_path = format!("{path}embed/");
    let embed_url = site.url(&embed_path);
    PetitionCtx {
        slug: p.slug.clone(),
        lang: site.lang.clone(),
        title: text.title.clone(),
        summary: text.summary.clone(),
        addressee: text.addressee.clone(),
        organizers: p.meta.organizers.clone(),
        tags: text.tags.clone(),
        body,
        goal: p.meta.goal,
        goal_text: site.goal_text(p.meta.goal),
        opens_unix: p.opens_at(),
        closes_unix: p.closes_at(),
        opens_text: p.meta.opens.map(|i| site.date_text(i.unix)),
        closes_text: p.meta.closes.map(|i| site.date_text(i.unix)),
        image_path,
        image_srcset,
        image_sizes,
        image_width,
        image_height,
        image_alt: text.image_alt.clone(),
        og_image_url: format!("{url}og.png"),
        fields,
        consent: consent_text(cfg, &site.strings, p, &site.lang),
        newsletter: newsletter_text(cfg, &site.strings, p, &site.lang),
        public_signers: p.meta.public_signers,
        public_city: p.meta.public_city,
        sign_url: format!("{api}/petitions/{}/sign", p.slug),
        count_url: format!("{api}/petitions/{}/count", p.slug),
        signers_api: format!("{api}/petitions/{}/signers/", p.slug),
        signers_path: format!("{path}signers/"),
        geography: p.meta.geography_threshold().is_some(),
        regions_url: format!("{api}/petitions/{}/regions.json", p.slug),
        confirm_api: format!("{api}/confirm"),
        erase_api: format!("{api}/erase"),
        check_email_path: format!("{path}check-email/"),
        confirm_path: format!("{path}confirm/"),
        thanks_path: format!("{path}thanks/"),
        erase_path: format!("{path}erase/"),
        check_path: format!("{path}check/"),
        log_path: format!("{}/{}/{}/", cfg.base_path(), p.slug, crate::layout::LOG_DIR),
        log_origin: cahier_tlog::checkpoint::origin(&cfg.base_url, &p.slug),
        embed_code: format!(
            "<iframe src=\"{embed_url}\" title=\"{}\" width=\"100%\" height=\"720\" loading=\"lazy\"></iframe>",
            crate::templates::escape(&text.title)
        ),
        embed_path,
        embed_url,
        url,
        path,
        share,
    }
}

#[derive(Serialize)]
pub struct Alternate {
    pub lang: String,
    pub name: String,
    pub path: String,
    pub url: String,
}

#[derive(Serialize)]
pub struct PageCtx {
    /// petition, check-email, confirm, thanks, erase, embed, index, privacy, 404.
    pub kind: String,
    pub path: String,
    pub url: String,
    /// Same page in every language it exists in (hreflang); includes this one.
    pub alternates: Vec<Alternate>,
    /// URL for hreflang="x-default": the default language's version.
    pub x_default: Option<String>,
    /// Content-Security-Policy for the `<meta>` (the `_headers` file adds frame-ancestors).
    pub csp: String,
    /// Whether the page loads the captcha.
    pub signs: bool,
    pub noindex: bool,
}

fn lang_name(site: &LangSite, cfg: &Config, l: &str) -> String {
    // The switcher shows each language in its own words; the theme provides them.
    let _ = cfg;
    site.strings
        .get(&format!("language_{l}"))
        .cloned()
        .unwrap_or_else(|| l.to_string())
}

pub fn page_context(cfg: &Config, site: &LangSite, p: &Petition, kind: &str, sub: &str) -> PageCtx {
    let bp = cfg.base_path();
    let rest = format!("/{}/{sub}", p.slug);
    let path = site.path(&rest);
    let alternates: Vec<Alternate> = cfg
        .languages
        .iter()
        .filter(|l| p.texts.contains_key(*l))
        .map(|l| {
            let path = format!("{bp}{}{rest}", cfg.lang_prefix(l));
            Alternate {
                lang: l.clone(),
                name: lang_name(site, cfg, l),
                url: site.url(&path),
                path,
            }
        })
        .collect();
    let x_default = alternates
        .first()
        .filter(|a| a.lang == cfg.default_language())
        .map(|a| a.url.clone());
    let (csp, signs) = match kind {
        "petition" => (site.csp_sign.clone(), true),
        "embed" => (site.csp_embed.clone(), true),
        "check" => (site.csp_check.clone(), false),
        _ => (site.csp_plain.clone(), false),
    };
    PageCtx {
        kind: kind.to_string(),
        url: site.url(&path),
        path,
        alternates,
        x_default,
        csp,
        signs,
        noindex: kind != "petition",
    }
}

pub fn site_page_context(cfg: &Config, site: &LangSite, kind: &str, rel: &str) -> PageCtx {
    let bp = cfg.base_path();
    let rest = format!("/{rel}");
    let path = site.path(&rest);
    let alternates: Vec<Alternate> = cfg
        .languages
        .iter()
        .map(|l| {
            let path = format!("{bp}{}{rest}", cfg.lang_prefix(l));
            Alternate {
                lang: l.clone(),
                name: lang_name(site, cfg, l),
                url: site.url(&path),
                path,
            }
        })
        .collect();
    PageCtx {
        kind: kind.to_string(),
        url: site.url(&path),
        x_default: alternates.first().map(|a| a.url.clone()),
        path,
        alternates,
        csp: site.csp_plain.clone(),
        signs: false,
        noindex: kind == "404" || kind == "unsubscribe",
    }
}

/// The photo the Open Graph card shows: the petition's cover when it is a JPEG or PNG (its
/// 960-pixel derivative, or its largest when narrower); an SVG cover is not drawn.
pub fn og_cover<'a>(p: &Petition, images: &'a SiteImages) -> Option<&'a crate::images::Derivative> {
    let set = images.get(&p.slug, p.meta.image.as_deref()?)?;
    set.derivatives
        .iter()
        .find(|d| d.width >= 960)
        .or_else(|| set.derivatives.last())
}

/// The context of `og.svg`: the card shows the title (wrapped), the summary and the site;
/// with `cover`, the photo fills the template's `<rect id="cover">` (text wrapped narrower).
pub fn og_context(site: &LangSite, p: &PetitionCtx, cover: bool) -> tera::Context {
    let mut ctx = tera::Context::new();
    let (title_width, summary_width) = if cover { (18, 40) } else { (28, 64) };
    let title_lines = og::wrap(&p.title, title_width, 4);
    // SVG has no flow layout: the summary starts below the last title line.
    ctx.insert("summary_top", &(250 + 74 * title_lines.len()));
    ctx.insert("title_lines", &title_lines);
    ctx.insert("summary_lines", &og::wrap(&p.summary, summary_width, 2));
    ctx.insert("cover", &cover);
    ctx.insert("site", &site.context.get("site"));
    ctx.insert("t", &site.strings);
    ctx.insert("lang", &site.lang);
    ctx.insert("goal", &p.goal);
    ctx.insert("closes_text", &p.closes_text);
    ctx
}

#[derive(Serialize)]
pub struct Card {
    pub slug: String,
    pub title: String,
    pub summary: String,
    pub path: String,
    pub goal: u64,
    pub goal_text: String,
    pub count_url: String,
    pub closes_text: Option<String>,
    pub closes_unix: Option<i64>,
    pub image_path: Option<String>,
    pub image_srcset: Option<String>,
    pub image_sizes: Option<String>,
    pub image_width: Option<u32>,
    pub image_height: Option<u32>,
    pub image_alt: String,
}

/// Petitions available in this language, newest first (then by slug).
fn listed<'a>(site: &LangSite, content: &'a Content) -> Vec<&'a Petition> {
    let mut v: Vec<&Petition> = content
        .petitions
        .iter()
        .filter(|p| p.texts.contains_key(&site.lang))
        .collect();
    v.sort_by(|a, b| {
        b.date()
            .map(|d| d.unix)
            .cmp(&a.date().map(|d| d.unix))
            .then_with(|| a.slug.cmp(&b.slug))
    });
    v
}

pub fn index_cards(
    cfg: &Config,
    site: &LangSite,
    content: &Content,
    images: &SiteImages,
) -> Vec<Card> {
    let api = cfg.api_url();
    listed(site, content)
        .into_iter()
        .map(|p| {
            let t = &p.texts[&site.lang];
            let path = site.path(&format!("/{}/", p.slug));
            let (image_path, image_srcset, image_sizes, image_width, image_height) =
                cover(p, images, &path, crate::images::SIZES_CARD);
            Card {
                slug: p.slug.clone(),
                title: t.title.clone(),
                summary: t.summary.clone(),
                goal: p.meta.goal,
                goal_text: site.goal_text(p.meta.goal),
                count_url: format!("{api}/petitions/{}/count", p.slug),
                closes_text: p.meta.closes.map(|i| site.date_text(i.unix)),
                closes_unix: p.closes_at(),
                image_path,
                image_srcset,
                image_sizes,
                image_width,
                image_height,
                image_alt: t.image_alt.clone(),
                path,
            }
        })
        .collect()
}

pub fn atom_feed(cfg: &Config, site: &LangSite, content: &Content) -> String {
    let entries: Vec<FeedEntry> = listed(site, content)
        .into_iter()
        .map(|p| {
            let t = &p.texts[&site.lang];
            FeedEntry {
                title: t.title.clone(),
                summary: t.summary.clone(),
                url: site.url(&site.path(&format!("/{}/", p.slug))),
                updated: p.date().map(|d| d.unix).unwrap_or(site.epoch),
                author: if p.meta.organizers.is_empty() {
                    cfg.organization.name.clone()
                } else {
                    p.meta.organizers.join(", ")
                },
            }
        })
        .collect();
    let updated = entries
        .iter()
        .map(|e| e.updated)
        .max()
        .unwrap_or(site.epoch);
    feeds::atom(
        &cfg.title,
        &format!("{}{}/atom.xml", cfg.base_url, cfg.lang_prefix(&site.lang)),
        &site.url(&site.home_path()),
        &site.lang,
        updated,
        &entries,
    )
}

pub fn sitemap_urls(cfg: &Config, content: &Content, sites: &[LangSite]) -> Vec<SitemapUrl> {
    let mut urls = Vec::new();
    for site in sites {
        for rest in ["/", "/privacy/"] {
            urls.push(SitemapUrl {
                loc: site.url(&site.path(rest)),
                lastmod: None,
                alternates: sites
                    .iter()
                    .map(|s| (s.lang.clone(), s.url(&s.path(rest))))
                    .collect(),
            });
        }
    }
    for p in &content.petitions {
        let langs: Vec<&LangSite> = sites
            .iter()
            .filter(|s| p.texts.contains_key(&s.lang))
            .collect();
        let rest = format!("/{}/", p.slug);
        for site in &langs {
            urls.push(SitemapUrl {
                loc: site.url(&site.path(&rest)),
                lastmod: p.date().map(|d| d.unix),
                alternates: langs
                    .iter()
                    .map(|s| (s.lang.clone(), s.url(&s.path(&rest))))
                    .collect(),
            });
        }
    }
    let _ = cfg;
    urls
}

/// Per-signer pages are not for crawlers.
pub fn robots_disallow(cfg: &Config) -> Vec<String> {
    let bp = cfg.base_path();
    let mut v = vec![format!("{bp}/{}/", crate::layout::API_DIR)];
    for l in &cfg.languages {
        let prefix = format!("{bp}{}", cfg.lang_prefix(l));
        for sub in crate::layout::SUBPAGES {
            v.push(format!("{prefix}/*/{}/", sub.name));
        }
    }
    v
}

/// Shared by the manifest: the hash of the exact text behind each language.
pub fn texts_by_lang<F: Fn(&str) -> String>(p: &Petition, f: F) -> BTreeMap<String, String> {
    p.texts.keys().map(|l| (l.clone(), f(l))).collect()
}
