//! Markdown to HTML with pulldown-cmark: tables, footnotes, strikethrough, smart punctuation,
//! and an `id` on every heading so that sections can be linked to.

use pulldown_cmark::{CowStr, Event, HeadingLevel, Options, Parser, Tag, TagEnd};

/// A rendered body and what it points at (for `check`).
#[derive(Debug, Default, Clone)]
pub struct Rendered {
    pub html: String,
    /// Link destinations with the byte offset of the link in the source.
    pub links: Vec<(String, usize)>,
    /// Image sources with their byte offset.
    pub images: Vec<(String, usize)>,
}

fn options() -> Options {
    Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_SMART_PUNCTUATION
        | Options::ENABLE_HEADING_ATTRIBUTES
}

pub fn render(source: &str) -> Rendered {
    let mut out = Rendered::default();
    let mut events: Vec<(Event, std::ops::Range<usize>)> = Parser::new_ext(source, options())
        .into_offset_iter()
        .collect();
    let mut used: Vec<String> = Vec::new();
    let mut i = 0;
    while i < events.len() {
        match &events[i].0 {
            Event::Start(Tag::Heading { id: None, .. }) => {
                let mut text = String::new();
                let mut j = i + 1;
                while j < events.len() {
                    match &events[j].0 {
                        Event::End(TagEnd::Heading(_)) => break,
                        Event::Text(t) | Event::Code(t) => text.push_str(t),
                        _ => {}
                    }
                    j += 1;
                }
                let mut id = slugify(&text);
                if id.is_empty() {
                    id = "section".into();
                }
                let base = id.clone();
                let mut n = 1;
                while used.contains(&id) {
                    id = format!("{base}-{n}");
                    n += 1;
                }
                used.push(id.clone());
                if let Event::Start(Tag::Heading { id: slot, .. }) = &mut events[i].0 {
                    *slot = Some(CowStr::from(id));
                }
            }
            Event::Start(Tag::Link { dest_url, .. }) => {
                out.links.push((dest_url.to_string(), events[i].1.start));
            }
            Event::Start(Tag::Image { dest_url, .. }) => {
                out.images.push((dest_url.to_string(), events[i].1.start));
            }
            _ => {}
        }
        i += 1;
    }
    // Page titles are h1; the body starts at h2 so the outline stays valid.
    let events = events.into_iter().map(|(e, _)| match e {
        Event::Start(Tag::Heading {
            level: HeadingLevel::H1,
            id,
            classes,
            attrs,
        }) => Event::Start(Tag::Heading {
            level: HeadingLevel::H2,
            id,
            classes,
            attrs,
        }),
        Event::End(TagEnd::Heading(HeadingLevel::H1)) => {
            Event::End(TagEnd::Heading(HeadingLevel::H2))
        }
        e => e,
    });
    out.html.reserve(source.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut out.html, events);
    out
}

/// Lowercase ASCII id from heading text; common Latin accents folded.
pub fn slugify(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut dash = false;
    for c in s.chars().flat_map(|c| c.to_lowercase()) {
        let folded: &str = match c {
            'à' | 'á' | 'â' | 'ä' | 'ã' | 'å' => "a",
            'ç' => "c",
            'è' | 'é' | 'ê' | 'ë' => "e",
            'ì' | 'í' | 'î' | 'ï' => "i",
            'ñ' => "n",
            'ò' | 'ó' | 'ô' | 'ö' | 'õ' => "o",
            'ù' | 'ú' | 'û' | 'ü' => "u",
            'ý' | 'ÿ' => "y",
            'œ' => "oe",
            'æ' => "ae",
            'ß' => "ss",
            _ => "",
        };
        if !folded.is_empty() {
            out.push_str(folded);
            dash = false;
        } else if c.is_ascii_alphanumeric() {
            out.push(c);
            dash = false;
        } else if !dash && !out.is_empty() {
            out.push('-');
            dash = true;
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_and_anchors() {
        let r = render("# Pourquoi agir ?\n\n## Pourquoi agir ?\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n~~non~~ \"oui\"[^1]\n\n[^1]: note\n\n[lien](/autre/) ![img](photo.png)\n");
        assert!(r.html.contains("<h2 id=\"pourquoi-agir\">"), "{}", r.html);
        assert!(r.html.contains("id=\"pourquoi-agir-1\""));
        assert!(r.html.contains("<table>"));
        assert!(r.html.contains("<del>non</del>"));
        assert!(r.html.contains("“oui”"));
        assert!(r.html.contains("footnote"));
        assert_eq!(r.links[0].0, "/autre/");
        assert_eq!(r.images[0].0, "photo.png");
    }
}
