//! Raw HTML in a petition's Markdown, made harmless. Markdown lets a writer drop in raw HTML,
//! and a `<meta http-equiv="refresh">`, a `<script>`, an `<iframe>` or an `onclick` in one
//! petition would turn the collective's own site into a redirect or a trap. Every rendered body
//! goes through [`clean`] (the `ammonia` crate, an html5ever-based allow-list sanitiser): the
//! formatting tags a petition needs are kept, everything else goes. [`refused`] names, for
//! `cahier check`, what of a raw fragment would be removed.

use regex::Regex;
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

/// Elements kept: what Markdown itself produces, plus inline and block formatting.
pub const TAGS: &[&str] = &[
    "a",
    "abbr",
    "b",
    "bdi",
    "bdo",
    "blockquote",
    "br",
    "caption",
    "cite",
    "code",
    "col",
    "colgroup",
    "dd",
    "del",
    "details",
    "dfn",
    "div",
    "dl",
    "dt",
    "em",
    "figcaption",
    "figure",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "img",
    "ins",
    "kbd",
    "li",
    "mark",
    "ol",
    "p",
    "pre",
    "q",
    "s",
    "samp",
    "section",
    "small",
    "span",
    "strong",
    "sub",
    "summary",
    "sup",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "time",
    "tr",
    "u",
    "ul",
    "wbr",
];

/// Attributes kept on any kept element (`id` for heading anchors and footnotes).
pub const GENERIC_ATTRIBUTES: &[&str] = &["id", "class", "title", "lang", "dir", "role"];

/// Attributes kept on one element only.
pub const TAG_ATTRIBUTES: &[(&str, &[&str])] = &[
    ("a", &["href"]),
    ("img", &["src", "alt", "width", "height"]),
    ("li", &["value"]),
    ("ol", &["start", "reversed"]),
    ("td", &["colspan", "rowspan", "style"]),
    ("th", &["colspan", "rowspan", "scope", "style"]),
    ("time", &["datetime"]),
    ("q", &["cite"]),
    ("blockquote", &["cite"]),
];

/// URL schemes allowed in `href`/`src`; relative URLs are kept as they are.
pub const URL_SCHEMES: &[&str] = &["http", "https", "mailto"];

/// The one inline style Markdown emits (table column alignment).
static ALIGN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*text-align:\s*(left|center|right)\s*;?\s*$").expect("valid regex")
});

fn builder() -> ammonia::Builder<'static> {
    let tag_attributes: HashMap<&str, HashSet<&str>> = TAG_ATTRIBUTES
        .iter()
        .map(|(t, a)| (*t, a.iter().copied().collect()))
        .collect();
    let mut b = ammonia::Builder::default();
    b.tags(TAGS.iter().copied().collect())
        .generic_attributes(GENERIC_ATTRIBUTES.iter().copied().collect())
        .tag_attributes(tag_attributes)
        .url_schemes(URL_SCHEMES.iter().copied().collect())
        .link_rel(None)
        .attribute_filter(|_element, attribute, value| {
            if attribute == "style" && !ALIGN.is_match(value) {
                None
            } else {
                Some(Cow::Borrowed(value))
            }
        });
    b
}

static CLEANER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(builder);

/// The rendered body with only allowed elements, attributes and URLs left.
pub fn clean(html: &str) -> String {
    CLEANER.clean(html).to_string()
}

static TAG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"<\s*(/?)\s*([A-Za-z][A-Za-z0-9-]*)([^>]*)>").expect("valid regex")
});
static ATTRIBUTE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"([A-Za-z_:][-A-Za-z0-9_:.]*)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s"'>]+))?"#)
        .expect("valid regex")
});

/// What [`clean`] would remove from a raw HTML fragment written in Markdown: one line per
/// element (`<meta>`), attribute (`onclick on <a>`) or URL (`href="javascript:…" on <a>`).
pub fn refused(fragment: &str) -> Vec<String> {
    let mut out = Vec::new();
    for t in TAG.captures_iter(fragment) {
        let name = t[2].to_ascii_lowercase();
        if !TAGS.contains(&name.as_str()) {
            let s = format!("<{name}>");
            if !out.contains(&s) {
                out.push(s);
            }
            continue;
        }
        if !t[1].is_empty() {
            continue; // a closing tag carries no attributes
        }
        let own: &[&str] = TAG_ATTRIBUTES
            .iter()
            .find(|(tag, _)| *tag == name)
            .map(|(_, a)| *a)
            .unwrap_or(&[]);
        for a in ATTRIBUTE.captures_iter(t[3].trim_end_matches('/')) {
            let attr = a[1].to_ascii_lowercase();
            let value = a
                .get(2)
                .map(|v| v.as_str().trim_matches(['"', '\'']))
                .unwrap_or("");
            if !GENERIC_ATTRIBUTES.contains(&attr.as_str()) && !own.contains(&attr.as_str()) {
                out.push(format!("{attr} on <{name}>"));
            } else if (attr == "href" || attr == "src") && !url_allowed(value) {
                out.push(format!("{attr}={value:?} on <{name}>"));
            } else if attr == "style" && !ALIGN.is_match(value) {
                out.push(format!("style={value:?} on <{name}>"));
            }
        }
    }
    out
}

/// Whether a link or image URL survives [`clean`]: relative, or of an allowed scheme.
pub fn url_allowed(value: &str) -> bool {
    let v = value.trim();
    match v.split_once(':') {
        // A colon before any '/', '?' or '#' is a scheme.
        Some((scheme, _)) if !scheme.contains(['/', '?', '#']) => {
            URL_SCHEMES.contains(&scheme.to_ascii_lowercase().as_str())
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dangerous_html_goes_formatting_stays() {
        let html = clean(
            "<meta http-equiv=\"refresh\" content=\"0; url=https://evil.test/\">\
             <p>Texte <abbr title=\"Organisation mondiale\">OMS</abbr> <sup>2</sup><br>\
             <a href=\"javascript:alert(1)\" onclick=\"x()\">lien</a> \
             <a href=\"/autre/\">ici</a></p><script>alert(1)</script>\
             <iframe src=\"https://evil.test/\"></iframe>\
             <table><tr><th style=\"text-align: center\">a</th>\
             <td style=\"position: fixed\">b</td></tr></table>",
        );
        assert!(
            !html.contains("meta") && !html.contains("refresh"),
            "{html}"
        );
        assert!(
            !html.contains("script") && !html.contains("alert"),
            "{html}"
        );
        assert!(
            !html.contains("iframe") && !html.contains("onclick"),
            "{html}"
        );
        assert!(!html.contains("javascript"), "{html}");
        assert!(
            html.contains("<abbr title=\"Organisation mondiale\">OMS</abbr>"),
            "{html}"
        );
        assert!(html.contains("<sup>2</sup><br>"), "{html}");
        assert!(html.contains("<a href=\"/autre/\">ici</a>"), "{html}");
        assert!(html.contains("<th style=\"text-align: center\">"), "{html}");
        assert!(!html.contains("position"), "{html}");
    }

    #[test]
    fn refused_names_what_would_go() {
        assert_eq!(
            refused("<meta http-equiv=\"refresh\" content=\"0; url=https://evil.test/\">"),
            ["<meta>"]
        );
        assert_eq!(
            refused("<a href=\"javascript:alert(1)\" onclick=\"x()\">"),
            ["href=\"javascript:alert(1)\" on <a>", "onclick on <a>"]
        );
        assert!(refused("<abbr title=\"x\">OMS</abbr> <br/> <a href=\"/p/?a=b:c\">").is_empty());
        assert!(refused("<sup>1</sup><span class=\"x\" lang=\"en\">y</span>").is_empty());
        assert_eq!(refused("<SCRIPT>x</SCRIPT>"), ["<script>"]);
    }
}
