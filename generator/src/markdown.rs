//! Markdown to HTML with pulldown-cmark: tables, footnotes, strikethrough, smart punctuation,
//! and an `id` on every heading so that sections can be linked to. The result goes through
//! [`crate::sanitize::clean`]: raw HTML in a petition keeps its formatting, never a script, a
//! frame, a `<meta>` redirect or an event handler.

use pulldown_cmark::{CowStr, Event, HeadingLevel, Options, Parser, Tag, TagEnd};

/// A rendered body and what it points at (for `check`).
#[derive(Debug, Default, Clone)]
pub struct Rendered {
    pub html: String,
    /// Link destinations with the byte offset of the link in the source.
    pub links: Vec<(String, usize)>,
    /// Image sources with their byte offset.
    pub images: Vec<(String, usize)>,
    /// Raw HTML written in the source, with its byte offset (for `check`: what the sanitiser
    /// removes from it is reported).
    pub raw_html: Vec<(String, usize)>,
}

fn options() -> Options {
    Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_SMART_PUNCTUATION
        | Options::ENABLE_HEADING_ATTRIBUTES
}

/// How an image that the petition ships is shown: what its `<img>` carries beside `alt`.
#[derive(Debug, Clone)]
pub struct ImageAttrs {
    pub src: String,
    pub srcset: String,
    pub sizes: String,
    pub width: u32,
    pub height: u32,
}

pub fn render(source: &str) -> Rendered {
    render_with(source, &|_| None, false)
}

/// Image destinations of `source` with their byte offsets, without rendering it.
pub fn image_refs(source: &str) -> Vec<(String, usize)> {
    Parser::new_ext(source, options())
        .into_offset_iter()
        .filter_map(|(e, r)| match e {
            Event::Start(Tag::Image { dest_url, .. }) => Some((dest_url.to_string(), r.start)),
            _ => None,
        })
        .collect()
}

/// Like [`render`], with the images that `images` knows (by destination) written with their
/// `srcset`, `sizes`, `width` and `height`, lazily loaded and decoded except the page's first
/// image when `first_is_eager`. Those `<img>` are put in after the sanitiser, which never sees
/// (nor has to allow) `srcset`: each stands in its place as a token it keeps as text.
pub fn render_with(
    source: &str,
    images: &dyn Fn(&str) -> Option<ImageAttrs>,
    first_is_eager: bool,
) -> Rendered {
    let mut out = Rendered::default();
    // Unguessable from the text itself (it contains the text's hash), so a writer cannot forge one.
    let nonce = &crate::integrity::sha256_hex(source.as_bytes())[..16];
    let mut tags: Vec<String> = Vec::new();
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
            Event::Start(Tag::Image {
                dest_url, title, ..
            }) => {
                let (dest, title) = (dest_url.to_string(), title.to_string());
                out.images.push((dest.clone(), events[i].1.start));
                if let Some(a) = images(&dest) {
                    // The alt text is the image's inner text, as pulldown-cmark writes it.
                    let (mut depth, mut j, mut alt) = (0usize, i + 1, String::new());
                    while j < events.len() {
                        match &events[j].0 {
                            Event::Start(Tag::Image { .. }) => depth += 1,
                            Event::End(TagEnd::Image) if depth == 0 => break,
                            Event::End(TagEnd::Image) => depth -= 1,
                            Event::Text(t) | Event::Code(t) => alt.push_str(t),
                            Event::SoftBreak | Event::HardBreak => alt.push(' '),
                            _ => {}
                        }
                        j += 1;
                    }
                    let esc = crate::templates::escape;
                    let lazy = if first_is_eager && tags.is_empty() {
                        ""
                    } else {
                        " loading=\"lazy\" decoding=\"async\""
                    };
                    let title = if title.is_empty() {
                        String::new()
                    } else {
                        format!(" title=\"{}\"", esc(&title))
                    };
                    tags.push(format!(
                        "<img src=\"{}\" srcset=\"{}\" sizes=\"{}\" width=\"{}\" height=\"{}\" alt=\"{}\"{title}{lazy}>",
                        esc(&a.src),
                        esc(&a.srcset),
                        esc(&a.sizes),
                        a.width,
                        a.height,
                        esc(&alt)
                    ));
                    let token = format!("cahier-img-{nonce}-{}-", tags.len() - 1);
                    let end = j.min(events.len() - 1);
                    let range = events[i].1.clone();
                    events.splice(i..=end, [(Event::Text(token.into()), range)]);
                }
            }
            Event::Html(h) | Event::InlineHtml(h) => {
                out.raw_html.push((h.to_string(), events[i].1.start));
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
    let events = footnotes(events.collect());
    let mut html = String::with_capacity(source.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, events.into_iter());
    out.html = crate::sanitize::clean(&html);
    for (n, tag) in tags.iter().enumerate() {
        out.html = out
            .html
            .replacen(&format!("cahier-img-{nonce}-{n}-"), tag, 1);
    }
    out
}

/// Footnotes as a numbered list at the end of the body (`doc-endnotes`), numbered in the order
/// they are first referenced, each with a link back to where it is referenced; pulldown-cmark
/// alone leaves each definition where it was written, with its raw label as the `id`.
fn footnotes(events: Vec<Event<'_>>) -> Vec<Event<'_>> {
    let mut body = Vec::with_capacity(events.len());
    let mut defs: Vec<(String, Vec<Event>)> = Vec::new();
    let mut current: Option<(String, Vec<Event>)> = None;
    let mut order: Vec<String> = Vec::new();
    let mut refs_seen: Vec<String> = Vec::new();
    let mut ids = NoteIds::default();
    for event in events {
        match event {
            Event::Start(Tag::FootnoteDefinition(label)) => {
                current = Some((label.to_string(), Vec::new()));
            }
            Event::End(TagEnd::FootnoteDefinition) => defs.extend(current.take()),
            Event::FootnoteReference(label) => {
                let label = label.to_string();
                if !order.contains(&label) {
                    order.push(label.clone());
                }
                let n = order.iter().position(|l| *l == label).unwrap_or(0) + 1;
                let id = ids.get(&label, n);
                let seen = refs_seen.iter().filter(|l| **l == label).count();
                refs_seen.push(label);
                let ref_id = if seen == 0 {
                    format!("fnref-{id}")
                } else {
                    format!("fnref-{id}-{}", seen + 1)
                };
                let html = format!(
                    "<sup class=\"footnote-ref\"><a href=\"#fn-{id}\" id=\"{ref_id}\" role=\"doc-noteref\">{n}</a></sup>"
                );
                let target = current.as_mut().map_or(&mut body, |(_, evs)| evs);
                target.push(Event::InlineHtml(html.into()));
            }
            e => match current.as_mut() {
                Some((_, evs)) => evs.push(e),
                None => body.push(e),
            },
        }
    }
    if defs.is_empty() {
        return body;
    }
    // Referenced notes in reference order, then any never referenced, in source order.
    for (label, _) in &defs {
        if !order.contains(label) {
            order.push(label.clone());
        }
    }
    body.push(Event::Html(
        "<section class=\"footnotes\" role=\"doc-endnotes\">\n<ol>\n".into(),
    ));
    for (i, label) in order.iter().enumerate() {
        let Some(pos) = defs.iter().position(|(l, _)| l == label) else {
            continue;
        };
        let (_, evs) = defs.swap_remove(pos);
        let id = ids.get(label, i + 1);
        body.push(Event::Html(
            format!("<li id=\"fn-{id}\" value=\"{}\">\n", i + 1).into(),
        ));
        body.extend(evs);
        if refs_seen.contains(label) {
            body.push(Event::Html(
                format!(
                    "<a href=\"#fnref-{id}\" class=\"footnote-back\" role=\"doc-backlink\">↩</a>\n"
                )
                .into(),
            ));
        }
        body.push(Event::Html("</li>\n".into()));
    }
    body.push(Event::Html("</ol>\n</section>\n".into()));
    body
}

/// The `id` of each note, from its label (`[^source]` gives `source`), or its number when the
/// label has no letter or digit. Two labels that slugify alike (`[^a b]`, `[^a-b]`) must not
/// share an id, or the second note's links would land on the first: the later one gets `-2`, `-3`…
#[derive(Default)]
struct NoteIds(Vec<(String, String)>);

impl NoteIds {
    fn get(&mut self, label: &str, n: usize) -> String {
        if let Some((_, id)) = self.0.iter().find(|(l, _)| l == label) {
            return id.clone();
        }
        let slug = slugify(label);
        let base = if slug.is_empty() { n.to_string() } else { slug };
        let mut id = base.clone();
        let mut k = 2;
        while self.0.iter().any(|(_, taken)| *taken == id) {
            id = format!("{base}-{k}");
            k += 1;
        }
        self.0.push((label.to_string(), id.clone()));
        id
    }
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
        assert!(r.raw_html.is_empty());
    }

    #[test]
    fn raw_html_is_sanitised_and_recorded() {
        let src =
            "Texte.\n\n<meta http-equiv=\"refresh\" content=\"0; url=https://evil.test/\">\n\n\
                   Un <abbr title=\"Organisation mondiale de la santé\">OMS</abbr> et \
                   <a href=\"javascript:alert(1)\">ça</a>.\n\n[lien](javascript:alert(2))\n";
        let r = render(src);
        assert!(
            !r.html.contains("refresh") && !r.html.contains("<meta"),
            "{}",
            r.html
        );
        assert!(!r.html.contains("javascript"), "{}", r.html);
        assert!(
            r.html
                .contains("<abbr title=\"Organisation mondiale de la santé\">OMS</abbr>"),
            "{}",
            r.html
        );
        let offsets: Vec<usize> = r.raw_html.iter().map(|(_, o)| *o).collect();
        assert_eq!(
            r.raw_html[0].0.trim(),
            "<meta http-equiv=\"refresh\" content=\"0; url=https://evil.test/\">"
        );
        assert_eq!(offsets[0], src.find("<meta").unwrap());
        assert!(r.raw_html.iter().any(|(h, _)| h.contains("javascript")));
    }

    #[test]
    fn footnotes_are_numbered_at_the_end_with_links_both_ways() {
        let r = render(
            "Avant[^source] puis[^2] et encore[^source].\n\n[^2]: Deuxième.\n[^source]: La *source*.\n\n## Suite\n\nTexte.\n",
        );
        let html = &r.html;
        // Numbered in the order of first reference, whatever the order of definitions.
        assert!(
            html.contains(r##"<a href="#fn-source" id="fnref-source" role="doc-noteref">1</a>"##),
            "{html}"
        );
        assert!(
            html.contains(r##"<a href="#fn-2" id="fnref-2" role="doc-noteref">2</a>"##),
            "{html}"
        );
        assert!(
            html.contains(r##"<a href="#fn-source" id="fnref-source-2" role="doc-noteref">1</a>"##),
            "{html}"
        );
        // The notes come after the rest of the body, in that order, each with its way back.
        let notes = html.find("role=\"doc-endnotes\"").expect("notes section");
        assert!(html.find("Texte.").unwrap() < notes, "{html}");
        let first = html.find("<li id=\"fn-source\" value=\"1\">").unwrap();
        let second = html.find("<li id=\"fn-2\" value=\"2\">").unwrap();
        assert!(notes < first && first < second, "{html}");
        assert!(html[first..second].contains("<em>source</em>"));
        assert!(html[first..second].contains(r##"href="#fnref-source""##));
        // Nothing of pulldown-cmark's own footnote markup is left.
        assert!(!html.contains("footnote-definition"), "{html}");
        // Labels are turned into safe ids.
        let r = render("X[^a \"b\"<c>]\n\n[^a \"b\"<c>]: n\n");
        assert!(r.html.contains("id=\"fn-a-b-c\""), "{}", r.html);
        // Labels that slugify alike still get distinct ids, and each link finds its own note.
        let r = render(
            "X[^a b] Y[^a-b] Z[^1] W[^!]\n\n[^a b]: un\n[^a-b]: deux\n[^1]: trois\n[^!]: quatre\n",
        );
        let html = &r.html;
        for (id, text) in [
            ("a-b", "un"),
            ("a-b-2", "deux"),
            ("1", "trois"),
            ("4", "quatre"),
        ] {
            let li = html
                .find(&format!("<li id=\"fn-{id}\""))
                .unwrap_or_else(|| panic!("{id}: {html}"));
            assert!(
                html[li..].split("</li>").next().unwrap().contains(text),
                "{id}: {html}"
            );
            assert!(
                html.contains(&format!("href=\"#fn-{id}\" id=\"fnref-{id}\"")),
                "{id}: {html}"
            );
        }
    }
}
