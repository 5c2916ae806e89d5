//! What of a page can run code or loosen the policy: its `<script>` elements and its
//! Content-Security-Policy `<meta>`. Compared between the built page and the live one.

use scraper::{Html, Selector};
use serde::Serialize;
use std::collections::BTreeSet;
use std::fmt;

/// A script as it appears in a page: by `src` (and `integrity`), or by the hash of its text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Script {
    External {
        src: String,
        integrity: Option<String>,
    },
    Inline {
        sha256: String,
        /// The first characters, for a human reading the report.
        excerpt: String,
    },
    /// Code in an attribute: an event handler (`onerror=`) or a `javascript:` URL.
    Attribute {
        element: String,
        attribute: String,
        sha256: String,
        excerpt: String,
    },
}

impl fmt::Display for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Script::External { src, integrity } => {
                write!(f, "<script src=\"{src}\"")?;
                if let Some(i) = integrity {
                    write!(f, " integrity=\"{i}\"")?;
                }
                f.write_str(">")
            }
            Script::Inline { sha256, excerpt } => {
                write!(f, "inline <script> (sha256 {}): {excerpt:?}", &sha256[..16])
            }
            Script::Attribute {
                element,
                attribute,
                excerpt,
                ..
            } => write!(f, "<{element} {attribute}=\"{excerpt}\">"),
        }
    }
}

/// The scripts and CSP metas of one page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageFacts {
    pub scripts: BTreeSet<Script>,
    /// `content` of every `<meta http-equiv="Content-Security-Policy">`, in page order.
    pub csp_metas: Vec<String>,
}

pub fn excerpt(code: &str) -> String {
    let words: Vec<&str> = code.split_whitespace().collect();
    words.join(" ").chars().take(60).collect()
}

/// Code carried by an attribute rather than a `<script>`.
fn is_code_attribute(name: &str, value: &str) -> bool {
    let url_attr = matches!(name, "href" | "src" | "action" | "formaction" | "data");
    name.starts_with("on")
        || url_attr
            && value
                .trim_start()
                .get(..11)
                .is_some_and(|p| p.eq_ignore_ascii_case("javascript:"))
}

pub fn facts(html: &str) -> PageFacts {
    let doc = Html::parse_document(html);
    let script_sel = Selector::parse("script").expect("valid selector");
    let meta_sel = Selector::parse("meta[http-equiv]").expect("valid selector");
    let mut scripts = BTreeSet::new();
    for el in doc.select(&script_sel) {
        let v = el.value();
        let s = match v.attr("src") {
            Some(src) => Script::External {
                src: src.trim().to_string(),
                integrity: v.attr("integrity").map(|i| i.trim().to_string()),
            },
            None => {
                let text: String = el.text().collect();
                Script::Inline {
                    sha256: crate::integrity::sha256_hex(text.as_bytes()),
                    excerpt: excerpt(&text),
                }
            }
        };
        scripts.insert(s);
    }
    for node in doc.root_element().descendants() {
        let Some(el) = node.value().as_element() else {
            continue;
        };
        for (name, value) in el.attrs() {
            if is_code_attribute(name, value) {
                scripts.insert(Script::Attribute {
                    element: el.name().to_string(),
                    attribute: name.to_string(),
                    sha256: crate::integrity::sha256_hex(value.as_bytes()),
                    excerpt: excerpt(value),
                });
            }
        }
    }
    let csp_metas = doc
        .select(&meta_sel)
        .filter(|m| {
            m.value()
                .attr("http-equiv")
                .is_some_and(|h| h.trim().eq_ignore_ascii_case("content-security-policy"))
        })
        .map(|m| m.value().attr("content").unwrap_or("").trim().to_string())
        .collect();
    PageFacts { scripts, csp_metas }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_scripts_and_policy() {
        let f = facts(
            r#"<!doctype html><html><head>
<meta http-equiv="content-security-policy" content=" default-src 'none' ">
<script src="/static/a.js" integrity="sha384-x" defer></script>
</head><body><script>alert( 1 )</script></body></html>"#,
        );
        assert_eq!(f.csp_metas, vec!["default-src 'none'".to_string()]);
        assert_eq!(f.scripts.len(), 2);
        assert!(f.scripts.contains(&Script::External {
            src: "/static/a.js".into(),
            integrity: Some("sha384-x".into())
        }));
        let inline = f
            .scripts
            .iter()
            .find(|s| matches!(s, Script::Inline { .. }))
            .unwrap();
        assert!(inline.to_string().contains("alert( 1 )"), "{inline}");
    }

    #[test]
    fn finds_code_in_attributes() {
        let f = facts(
            r#"<p><img src="x" onerror="fetch('//evil.example')"><a href=" JavaScript:go()">x</a>
<a href="/ok/">ok</a><img src="/a.png" alt="on"></p>"#,
        );
        let shown: Vec<String> = f.scripts.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            shown,
            [
                "<a href=\"JavaScript:go()\">",
                "<img onerror=\"fetch('//evil.example')\">",
            ]
        );
    }
}
