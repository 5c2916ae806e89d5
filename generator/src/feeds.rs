//! Atom feeds, the sitemap and robots.txt: small, fixed XML written directly (no template,
//! so no chance of a theme breaking the markup that crawlers and feed readers parse).

use crate::templates::escape;
use std::fmt::Write;

pub struct FeedEntry {
    pub title: String,
    pub summary: String,
    /// Absolute URL of the page; also the entry's id.
    pub url: String,
    /// Unix seconds.
    pub updated: i64,
    pub author: String,
}

pub fn rfc3339(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// An Atom 1.0 feed (RFC 4287).
pub fn atom(
    title: &str,
    self_url: &str,
    site_url: &str,
    lang: &str,
    updated: i64,
    entries: &[FeedEntry],
) -> String {
    let mut s = String::with_capacity(512 + entries.len() * 512);
    s.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    let _ = writeln!(
        s,
        "<feed xmlns=\"http://www.w3.org/2005/Atom\" xml:lang=\"{}\">",
        escape(lang)
    );
    let _ = writeln!(s, "  <title>{}</title>", escape(title));
    let _ = writeln!(s, "  <id>{}</id>", escape(self_url));
    let _ = writeln!(
        s,
        "  <link rel=\"self\" type=\"application/atom+xml\" href=\"{}\"/>",
        escape(self_url)
    );
    let _ = writeln!(
        s,
        "  <link rel=\"alternate\" type=\"text/html\" href=\"{}\"/>",
        escape(site_url)
    );
    let _ = writeln!(s, "  <updated>{}</updated>", rfc3339(updated));
    let _ = writeln!(s, "  <generator>Cahier</generator>");
    for e in entries {
        s.push_str("  <entry>\n");
        let _ = writeln!(s, "    <title>{}</title>", escape(&e.title));
        let _ = writeln!(s, "    <id>{}</id>", escape(&e.url));
        let _ = writeln!(
            s,
            "    <link rel=\"alternate\" type=\"text/html\" href=\"{}\"/>",
            escape(&e.url)
        );
        let _ = writeln!(s, "    <updated>{}</updated>", rfc3339(e.updated));
        let _ = writeln!(s, "    <author><name>{}</name></author>", escape(&e.author));
        if !e.summary.is_empty() {
            let _ = writeln!(s, "    <summary>{}</summary>", escape(&e.summary));
        }
        s.push_str("  </entry>\n");
    }
    s.push_str("</feed>\n");
    s
}

pub struct SitemapUrl {
    pub loc: String,
    pub lastmod: Option<i64>,
    /// (hreflang, absolute URL) of every language version, itself included.
    pub alternates: Vec<(String, String)>,
}

/// A sitemap (sitemaps.org 0.9) with hreflang alternates.
pub fn sitemap(urls: &[SitemapUrl]) -> String {
    let mut s = String::with_capacity(256 + urls.len() * 400);
    s.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    s.push_str("<urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\" xmlns:xhtml=\"http://www.w3.org/1999/xhtml\">\n");
    for u in urls {
        s.push_str("  <url>\n");
        let _ = writeln!(s, "    <loc>{}</loc>", escape(&u.loc));
        if let Some(t) = u.lastmod {
            let _ = writeln!(s, "    <lastmod>{}</lastmod>", rfc3339(t));
        }
        if u.alternates.len() > 1 {
            for (lang, href) in &u.alternates {
                let _ = writeln!(
                    s,
                    "    <xhtml:link rel=\"alternate\" hreflang=\"{}\" href=\"{}\"/>",
                    escape(lang),
                    escape(href)
                );
            }
        }
        s.push_str("  </url>\n");
    }
    s.push_str("</urlset>\n");
    s
}

/// robots.txt: everything public may be crawled except the per-signer pages.
pub fn robots(sitemap_url: &str, disallow: &[String]) -> String {
    let mut s = String::from("User-agent: *\n");
    for d in disallow {
        let _ = writeln!(s, "Disallow: {d}");
    }
    s.push_str("Allow: /\n");
    let _ = writeln!(s, "\nSitemap: {sitemap_url}");
    s
}
