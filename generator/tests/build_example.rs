//! Builds the example site into a temp folder and checks every output: HTML parsed with an
//! HTML5 parser, feeds and sitemap parsed as XML, both manifests checked against the files.

mod common;

use base64::Engine;
use cahier_function::manifest::{FieldKind, Manifest};
use scraper::{Html, Selector};
use sha2::{Digest, Sha256, Sha384};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

struct Built {
    _site: tempfile::TempDir,
    out: tempfile::TempDir,
    report: cahier::BuildReport,
    files: BTreeMap<String, Vec<u8>>,
}

/// One build shared by the tests of this file.
fn built() -> &'static Built {
    static B: OnceLock<Built> = OnceLock::new();
    B.get_or_init(|| {
        let site = common::example_site();
        let out = tempfile::tempdir().unwrap();
        let public = out.path().join("public");
        let report =
            cahier::build(&common::opts(site.path(), &public)).expect("the example builds");
        let files = common::files(&public);
        Built {
            _site: site,
            out,
            report,
            files,
        }
    })
}

fn html(path: &str) -> Html {
    let b = built();
    let bytes = b
        .files
        .get(path)
        .unwrap_or_else(|| panic!("{path} was not written"));
    Html::parse_document(std::str::from_utf8(bytes).unwrap())
}

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap()
}

fn attr(doc: &Html, selector: &str, name: &str) -> Option<String> {
    doc.select(&sel(selector))
        .next()
        .and_then(|e| e.value().attr(name).map(str::to_string))
}

const SLUGS: [&str; 2] = ["noel-sans-geant", "mediatheque-des-tanneurs"];
const SUBPAGES: [&str; 7] = [
    "check-email",
    "confirm",
    "thanks",
    "erase",
    "embed",
    "check",
    "signers",
];

fn html_pages() -> Vec<String> {
    built()
        .files
        .keys()
        .filter(|k| k.ends_with(".html"))
        .cloned()
        .collect()
}

#[test]
fn every_output_exists() {
    let b = built();
    let mut expected: Vec<String> = vec![
        "sitemap.xml".into(),
        "robots.txt".into(),
        "_headers".into(),
        "api/manifest.json".into(),
        "integrity.json".into(),
    ];
    for prefix in ["", "en/"] {
        for f in [
            "index.html",
            "privacy/index.html",
            "unsubscribe/index.html",
            "404.html",
            "atom.xml",
        ] {
            expected.push(format!("{prefix}{f}"));
        }
        for slug in SLUGS {
            expected.push(format!("{prefix}{slug}/index.html"));
            expected.push(format!("{prefix}{slug}/og.png"));
            for sub in SUBPAGES {
                expected.push(format!("{prefix}{slug}/{sub}/index.html"));
            }
        }
        expected.push(format!("{prefix}noel-sans-geant/cover.svg"));
        expected.push(format!("{prefix}mediatheque-des-tanneurs/library.svg"));
    }
    for e in &expected {
        assert!(
            b.files.contains_key(e),
            "missing output {e}; have {:?}",
            b.files.keys().collect::<Vec<_>>()
        );
    }
    assert_eq!(b.report.pages, html_pages().len());
    assert_eq!(b.report.files, b.files.len());
    // Per language: home, privacy, unsubscribe, 404, and each petition with its 8 pages.
    assert_eq!(b.report.pages, 2 * (4 + 2 * 8));
    // The build folder was swapped in: no temporary folder left beside it.
    let leftovers: Vec<_> = std::fs::read_dir(b.out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, ["public"]);
}

#[test]
fn og_images_are_pngs_of_the_right_size() {
    for prefix in ["", "en/"] {
        for slug in SLUGS {
            let png = &built().files[&format!("{prefix}{slug}/og.png")];
            assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
            let w = u32::from_be_bytes(png[16..20].try_into().unwrap());
            let h = u32::from_be_bytes(png[20..24].try_into().unwrap());
            assert_eq!((w, h), (1200, 630));
        }
    }
    // Titles differ per language, so the cards do.
    assert_ne!(
        built().files["noel-sans-geant/og.png"],
        built().files["en/noel-sans-geant/og.png"]
    );
}

#[test]
fn sign_form_follows_the_conventions() {
    let doc = html("noel-sans-geant/index.html");
    let form = sel("form[data-sign-form]");
    let f = doc
        .select(&form)
        .next()
        .expect("the petition page has the sign form");
    assert_eq!(f.value().attr("method"), Some("post"));
    assert_eq!(
        f.value().attr("action"),
        Some("https://petitions.example.org/api/petitions/noel-sans-geant/sign")
    );
    assert_eq!(
        f.value().attr("data-next"),
        Some("/noel-sans-geant/check-email/")
    );
    let input = |name: &str| {
        f.select(&sel(&format!("[name=\"{name}\"]")))
            .next()
            .unwrap_or_else(|| panic!("no input {name}"))
            .value()
            .clone()
    };
    assert_eq!(input("name").attr("required"), Some(""));
    assert_eq!(input("email").attr("type"), Some("email"));
    assert_eq!(input("consent").attr("type"), Some("checkbox"));
    assert_eq!(input("consent").attr("value"), Some("yes"));
    assert!(input("consent").attr("required").is_some());
    assert_eq!(input("public").attr("value"), Some("yes"));
    assert_eq!(input("newsletter").attr("value"), Some("yes"));
    assert_eq!(input("postcode").attr("required"), Some(""));
    assert_eq!(input("postcode").attr("autocomplete"), Some("postal-code"));
    assert!(input("city").attr("required").is_none());
    assert_eq!(input("comment").name(), "textarea");
    assert_eq!(input("comment").attr("maxlength"), Some("600"));
    assert_eq!(input("lang").attr("type"), Some("hidden"));
    assert_eq!(input("lang").attr("value"), Some("fr"));
    assert_eq!(input("fill_ms").attr("type"), Some("hidden"));
    let hp = input("website");
    assert_eq!(hp.attr("type"), Some("text"));
    assert_eq!(hp.attr("tabindex"), Some("-1"));
    assert_eq!(hp.attr("autocomplete"), Some("off"));
    assert_eq!(hp.attr("value"), Some(""));
    assert_eq!(
        attr(&doc, "form .h-captcha", "data-sitekey").as_deref(),
        Some("10000000-ffff-ffff-ffff-000000000001")
    );
    // Every visible input has a label, and per-field error slots exist.
    for el in f.select(&sel("input:not([type=hidden]), textarea")) {
        let id = el.value().id().expect("inputs have ids");
        assert!(
            f.select(&sel(&format!("label[for=\"{id}\"]")))
                .next()
                .is_some(),
            "no label for #{id}"
        );
    }
    for name in [
        "name",
        "email",
        "consent",
        "postcode",
        "city",
        "comment",
        "h-captcha-response",
    ] {
        assert!(
            f.select(&sel(&format!("[data-error-for=\"{name}\"]")))
                .next()
                .is_some(),
            "no error slot for {name}"
        );
    }
    // The English page posts lang=en; the second petition declares a checkbox and no newsletter.
    let en = html("en/mediatheque-des-tanneurs/index.html");
    assert_eq!(
        attr(&en, "input[name=lang]", "value").as_deref(),
        Some("en")
    );
    assert_eq!(
        attr(&en, "input[name=usager]", "type").as_deref(),
        Some("checkbox")
    );
    let label = en
        .select(&sel("label[for=f-usager]"))
        .next()
        .unwrap()
        .text()
        .collect::<String>();
    assert!(label.contains("I use the Tanneurs library"), "{label}");
    assert!(en.select(&sel("input[name=newsletter]")).next().is_none());
    assert!(en.select(&sel("input[name=public]")).next().is_none());
}

#[test]
fn captcha_only_on_signing_pages_and_csp_everywhere() {
    for page in html_pages() {
        let doc = html(&page);
        let csp = attr(&doc, "meta[http-equiv=Content-Security-Policy]", "content")
            .unwrap_or_else(|| panic!("{page} has no CSP meta"));
        assert!(csp.starts_with("default-src 'none'"), "{page}: {csp}");
        assert!(
            csp.contains("connect-src https://petitions.example.org"),
            "{page}: {csp}"
        );
        assert!(!csp.contains("unsafe-inline"), "{page}: {csp}");
        assert!(
            !csp.contains("frame-ancestors"),
            "meta CSP cannot carry frame-ancestors ({page})"
        );
        // The petition page and the embed widget (which signs in place) carry the captcha.
        let signs = SLUGS.iter().any(|s| {
            [
                format!("{s}/index.html"),
                format!("en/{s}/index.html"),
                format!("{s}/embed/index.html"),
                format!("en/{s}/embed/index.html"),
            ]
            .contains(&page)
        });
        let scripts: Vec<String> = doc
            .select(&sel("script"))
            .filter_map(|s| s.value().attr("src").map(str::to_string))
            .collect();
        let has_captcha = scripts
            .iter()
            .any(|s| s == "https://js.hcaptcha.com/1/api.js");
        assert_eq!(has_captcha, signs, "{page}: captcha script presence");
        assert_eq!(csp.contains("hcaptcha.com"), signs, "{page}: CSP {csp}");
        // No inline script or style anywhere: the CSP needs no 'unsafe-inline'.
        for s in doc.select(&sel("script")) {
            assert!(
                s.value().attr("src").is_some(),
                "{page} has an inline script"
            );
        }
        assert!(
            doc.select(&sel("style, [style]")).next().is_none(),
            "{page} has inline style"
        );
    }
    let headers = std::str::from_utf8(&built().files["_headers"]).unwrap();
    assert!(headers.contains("/:slug/embed/\n  Content-Security-Policy: default-src 'none'"));
    assert!(headers.contains("frame-ancestors *"));
    assert!(headers.contains("/noel-sans-geant/\n  Content-Security-Policy: default-src 'none'; script-src 'self' https://hcaptcha.com"));
    assert!(headers.contains("/en/\n  Content-Security-Policy:"));
    // One CSP per path: CDNs would stack duplicates.
    let paths: Vec<&str> = headers.lines().filter(|l| l.starts_with('/')).collect();
    let mut dedup = paths.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(paths.len(), dedup.len());
}

#[test]
fn assets_are_fingerprinted_with_valid_sri() {
    let b = built();
    for page in html_pages() {
        let doc = html(&page);
        let mut n = 0;
        for (sel_s, attr_name) in [
            ("link[rel=stylesheet]", "href"),
            ("script[integrity]", "src"),
        ] {
            for el in doc.select(&sel(sel_s)) {
                let url = el.value().attr(attr_name).unwrap();
                let integrity = el
                    .value()
                    .attr("integrity")
                    .unwrap_or_else(|| panic!("{page}: {url} lacks integrity"));
                let rel = url.trim_start_matches('/');
                assert!(rel.starts_with("static/"), "{url}");
                let bytes = b
                    .files
                    .get(rel)
                    .unwrap_or_else(|| panic!("{page} links {url}, not written"));
                let want = format!(
                    "sha384-{}",
                    base64::engine::general_purpose::STANDARD.encode(Sha384::digest(bytes))
                );
                assert_eq!(integrity, want, "{page}: {url}");
                // name.<hash>.ext
                let hash = rel.rsplit('.').nth(1).unwrap();
                assert_eq!(hash, &hex::encode(Sha256::digest(bytes))[..10]);
                n += 1;
            }
        }
        // The "check my signature" page also carries the log checker.
        let scripts = if page.ends_with("/check/index.html") {
            2
        } else {
            1
        };
        assert_eq!(
            n,
            1 + scripts,
            "{page}: one stylesheet and {scripts} script(s)"
        );
    }
}

#[test]
fn home_pages_carry_their_language_s_description() {
    for (page, expected) in [
        ("index.html", "sans traceur et sans plateforme"),
        ("en/index.html", "with no trackers and no platform"),
    ] {
        let doc = html(page);
        let meta = attr(&doc, "meta[name=description]", "content").unwrap();
        assert!(meta.contains(expected), "{page}: {meta}");
        let lede: String = doc.select(&sel(".lede")).next().unwrap().text().collect();
        assert!(lede.contains(expected), "{page}: {lede}");
    }
}

#[test]
fn hreflang_alternates_and_language_switch() {
    for (page, lang, canonical) in [
        (
            "noel-sans-geant/index.html",
            "fr",
            "https://petitions.example.org/noel-sans-geant/",
        ),
        (
            "en/noel-sans-geant/confirm/index.html",
            "en",
            "https://petitions.example.org/en/noel-sans-geant/confirm/",
        ),
        ("en/index.html", "en", "https://petitions.example.org/en/"),
    ] {
        let doc = html(page);
        assert_eq!(attr(&doc, "html", "lang").as_deref(), Some(lang));
        assert_eq!(
            attr(&doc, "link[rel=canonical]", "href").as_deref(),
            Some(canonical)
        );
        let alts: BTreeMap<String, String> = doc
            .select(&sel("link[rel=alternate][hreflang]"))
            .map(|e| {
                (
                    e.value().attr("hreflang").unwrap().into(),
                    e.value().attr("href").unwrap().into(),
                )
            })
            .collect();
        let fr = canonical.replace("/en/", "/");
        let en = if canonical.contains("/en/") {
            canonical.to_string()
        } else {
            canonical.replace(".org/", ".org/en/")
        };
        assert_eq!(alts.get("fr"), Some(&fr), "{page}");
        assert_eq!(alts.get("en"), Some(&en), "{page}");
        assert_eq!(alts.get("x-default"), Some(&fr), "{page}");
        // The switcher links the other language's version of the same page.
        let other = if lang == "fr" { "en" } else { "fr" };
        let href = attr(&doc, &format!(".lang-switch a[hreflang={other}]"), "href").unwrap();
        assert_eq!(
            href,
            if other == "fr" { &fr } else { &en }
                .trim_start_matches("https://petitions.example.org")
        );
    }
}

#[test]
fn accessibility_landmarks() {
    for page in html_pages().into_iter().filter(|p| !p.contains("/embed/")) {
        let doc = html(&page);
        for s in [
            "header",
            "main#main",
            "footer",
            "a.skip-link[href=\"#main\"]",
            "h1",
        ] {
            assert!(doc.select(&sel(s)).next().is_some(), "{page}: no {s}");
        }
        assert_eq!(doc.select(&sel("h1")).count(), 1, "{page}: one h1");
    }
    let doc = html("noel-sans-geant/index.html");
    assert!(doc
        .select(&sel("[data-form-error][role=alert]"))
        .next()
        .is_some());
    assert!(doc
        .select(&sel("[data-count-line][aria-live=polite]"))
        .next()
        .is_some());
    let img = doc.select(&sel("figure.cover img")).next().unwrap();
    assert!(!img.value().attr("alt").unwrap().is_empty());
}

#[test]
fn count_progress_and_token_pages() {
    let doc = html("noel-sans-geant/index.html");
    assert_eq!(
        attr(&doc, ".sign-panel [data-count-url]", "data-count-url").as_deref(),
        Some("https://petitions.example.org/api/petitions/noel-sans-geant/count")
    );
    assert_eq!(
        attr(&doc, ".sign-panel progress", "max").as_deref(),
        Some("50000")
    );
    // Without JavaScript the goal is still shown, in the page's language.
    let goal = doc
        .select(&sel(".sign-panel [data-goal-line]"))
        .next()
        .unwrap()
        .text()
        .collect::<String>();
    assert_eq!(goal, "Objectif : 50\u{202f}000 signatures");
    let en = html("en/noel-sans-geant/index.html");
    let goal = en
        .select(&sel(".sign-panel [data-goal-line]"))
        .next()
        .unwrap()
        .text()
        .collect::<String>();
    assert_eq!(goal, "Goal: 50,000 signatures");

    for (page, api, next) in [
        (
            "noel-sans-geant/confirm/index.html",
            "https://petitions.example.org/api/confirm",
            Some("/noel-sans-geant/thanks/"),
        ),
        (
            "en/noel-sans-geant/confirm/index.html",
            "https://petitions.example.org/api/confirm",
            Some("/en/noel-sans-geant/thanks/"),
        ),
        (
            "noel-sans-geant/erase/index.html",
            "https://petitions.example.org/api/erase",
            None,
        ),
    ] {
        let doc = html(page);
        assert_eq!(
            attr(&doc, "[data-token-page]", "data-api").as_deref(),
            Some(api),
            "{page}"
        );
        assert_eq!(
            attr(&doc, "[data-token-page]", "data-next").as_deref(),
            next,
            "{page}"
        );
        // Only a click posts: a button, never a form that a GET or a prefetch could submit.
        assert_eq!(
            attr(&doc, "[data-token-button]", "type").as_deref(),
            Some("button")
        );
        assert!(
            doc.select(&sel("form")).next().is_none(),
            "{page} must not hold a form"
        );
        assert_eq!(
            attr(&doc, "meta[name=robots]", "content").as_deref(),
            Some("noindex")
        );
    }
    let thanks = html("noel-sans-geant/thanks/index.html");
    let shares: Vec<String> = thanks
        .select(&sel("ul.share a"))
        .map(|a| a.value().attr("href").unwrap().to_string())
        .collect();
    assert!(shares.len() >= 4);
    assert!(
        shares
            .iter()
            .all(|s| s.contains("petitions.example.org%2Fnoel-sans-geant%2F")),
        "{shares:?}"
    );
    assert!(shares[0].starts_with("mailto:?subject="));
    let embed = html("noel-sans-geant/embed/index.html");
    assert!(embed.select(&sel("[data-count-url]")).next().is_some());
    // The embed widget signs in place (issue 6): the same form, posting to the API.
    let form = embed
        .select(&sel("form[data-sign-form][data-done-inline]"))
        .next();
    assert_eq!(
        form.and_then(|f| f.value().attr("action")),
        Some("https://petitions.example.org/api/petitions/noel-sans-geant/sign")
    );
}

#[test]
fn feeds_and_sitemap_are_valid_xml() {
    let b = built();
    for (path, lang, first) in [
        (
            "atom.xml",
            "fr",
            "https://petitions.example.org/noel-sans-geant/",
        ),
        (
            "en/atom.xml",
            "en",
            "https://petitions.example.org/en/noel-sans-geant/",
        ),
    ] {
        let text = std::str::from_utf8(&b.files[path]).unwrap();
        let doc = roxmltree::Document::parse(text).unwrap_or_else(|e| panic!("{path}: {e}"));
        let feed = doc.root_element();
        assert_eq!(feed.tag_name().name(), "feed");
        assert_eq!(
            feed.tag_name().namespace(),
            Some("http://www.w3.org/2005/Atom")
        );
        assert_eq!(
            feed.attribute(("http://www.w3.org/XML/1998/namespace", "lang")),
            Some(lang)
        );
        let entries: Vec<_> = feed
            .children()
            .filter(|n| n.has_tag_name("entry"))
            .collect();
        assert_eq!(entries.len(), 2);
        // Newest first: the Christmas petition is dated after the library one.
        let id = entries[0]
            .children()
            .find(|n| n.has_tag_name("id"))
            .unwrap()
            .text()
            .unwrap();
        assert_eq!(id, first);
        let updated = feed
            .children()
            .find(|n| n.has_tag_name("updated"))
            .unwrap()
            .text()
            .unwrap();
        assert_eq!(updated, "2026-11-10T00:00:00Z");
    }
    let text = std::str::from_utf8(&b.files["sitemap.xml"]).unwrap();
    let doc = roxmltree::Document::parse(text).unwrap();
    let urls: Vec<_> = doc
        .root_element()
        .children()
        .filter(|n| n.has_tag_name("url"))
        .collect();
    assert_eq!(urls.len(), 2 * (2 + 2));
    let locs: Vec<&str> = urls
        .iter()
        .map(|u| {
            u.children()
                .find(|n| n.has_tag_name("loc"))
                .unwrap()
                .text()
                .unwrap()
        })
        .collect();
    assert!(locs.contains(&"https://petitions.example.org/en/mediatheque-des-tanneurs/"));
    for u in &urls {
        let alts = u
            .children()
            .filter(|n| {
                n.tag_name().name() == "link"
                    && n.tag_name().namespace() == Some("http://www.w3.org/1999/xhtml")
            })
            .count();
        assert_eq!(alts, 2);
    }
    let robots = std::str::from_utf8(&b.files["robots.txt"]).unwrap();
    assert!(robots.contains("Sitemap: https://petitions.example.org/sitemap.xml"));
    assert!(robots.contains("Disallow: /*/confirm/"));
}

#[test]
fn integrity_manifest_matches_the_files() {
    let b = built();
    let m: serde_json::Value = serde_json::from_slice(&b.files["integrity.json"]).unwrap();
    assert_eq!(m["version"], 1);
    let listed = m["files"].as_object().unwrap();
    let keys: Vec<&String> = listed.keys().collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "keys sorted");
    let expected: Vec<&String> = b.files.keys().filter(|k| *k != "integrity.json").collect();
    assert_eq!(keys, expected, "every other output file, and nothing else");
    for (path, entry) in listed {
        let bytes = &b.files[path];
        assert_eq!(
            entry["sha256"].as_str().unwrap(),
            hex::encode(Sha256::digest(bytes)),
            "{path}"
        );
        assert_eq!(
            entry["bytes"].as_u64().unwrap(),
            bytes.len() as u64,
            "{path}"
        );
    }
}

fn sha(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

#[test]
fn petition_manifest_matches_content_and_pages() {
    let b = built();
    let m = Manifest::from_json(&b.files["api/manifest.json"]).expect("valid manifest");
    assert_eq!(m.site.base_url, "https://petitions.example.org");
    assert_eq!(m.site.api_url, "https://petitions.example.org/api");
    assert_eq!(m.site.origins, ["https://petitions.example.org"]);
    assert_eq!(m.site.languages, ["fr", "en"]);
    assert_eq!(m.site.default_language, "fr");
    assert_eq!(m.site.captcha_provider, "hcaptcha");
    assert_eq!(
        m.site.protected_domains,
        ["assemblee-nationale.fr", "senat.fr"]
    );
    let slugs: Vec<&str> = m.petitions.iter().map(|p| p.slug.as_str()).collect();
    assert_eq!(slugs, ["mediatheque-des-tanneurs", "noel-sans-geant"]);
    let noel = m.petition("noel-sans-geant").unwrap();
    assert_eq!(noel.goal, 50_000);
    assert_eq!(noel.opens_at, Some(1_794_700_800)); // 2026-11-15T00:00:00Z
    assert_eq!(noel.closes_at, Some(1_798_156_800)); // end of 2026-12-24 UTC
    assert!(noel.is_open(1_798_156_799) && !noel.is_open(1_798_156_800));
    assert!(noel.newsletter && noel.public_signers);
    let names: Vec<(&str, FieldKind, bool)> = noel
        .fields
        .iter()
        .map(|f| (f.name.as_str(), f.kind, f.required))
        .collect();
    assert_eq!(
        names,
        [
            ("postcode", FieldKind::Postcode, true),
            ("city", FieldKind::Text, false),
            ("comment", FieldKind::Textarea, false)
        ]
    );
    assert_eq!(
        noel.titles["en"],
        "Christmas without the online giant: support local shops"
    );
    let lib = m.petition("mediatheque-des-tanneurs").unwrap();
    assert_eq!(lib.closes_at, Some(1_801_439_999 - 3600)); // 2027-01-31T23:59:59+01:00
    assert_eq!(lib.fields[1].kind, FieldKind::Checkbox);

    // The consent hash is the hash of the very words next to the checkbox.
    for (page, lang) in [
        ("noel-sans-geant/index.html", "fr"),
        ("en/noel-sans-geant/index.html", "en"),
    ] {
        let doc = html(page);
        let label = doc.select(&sel("label[for=f-consent]")).next().unwrap();
        let words: String = label
            .children()
            .filter_map(|c| c.value().as_text().map(|t| t.to_string()))
            .collect::<String>()
            .trim()
            .to_string();
        assert_eq!(noel.consent_sha256[lang], sha(&words), "{lang}: {words}");
    }
    // The text hash covers the title and the Markdown as written.
    let root = common::repo_root();
    let src = std::fs::read_to_string(root.join("content/noel-sans-geant/index.en.md")).unwrap();
    let body = src.splitn(3, "+++\n").nth(2).unwrap();
    assert_eq!(
        noel.text_sha256["en"],
        sha(&format!("{}\n\n{body}", noel.titles["en"]))
    );
}

#[test]
fn the_example_builds_but_is_warned_about_the_hcaptcha_test_key() {
    let w = &built().report.warnings;
    assert!(
        w.iter().any(|w| w.contains("hCaptcha's public test key")),
        "{w:?}"
    );
}

#[test]
fn the_privacy_notice_says_which_network_is_kept_and_why() {
    let fr = String::from_utf8(built().files["privacy/index.html"].clone()).unwrap();
    assert!(
        fr.contains("203.0.113.0/24") && fr.contains("réseau"),
        "{fr}"
    );
    let en = String::from_utf8(built().files["en/privacy/index.html"].clone()).unwrap();
    assert!(
        en.contains("only its network") && en.contains("attack"),
        "{en}"
    );
}

/// A mail queued behind its network's budget keeps the address sealed until it is sent: the
/// notice says so, in both languages.
#[test]
fn the_privacy_notice_says_a_queued_mail_keeps_the_address_until_sent() {
    let fr = String::from_utf8(built().files["privacy/index.html"].clone()).unwrap();
    assert!(
        fr.contains("conservée chiffrée") && fr.contains("effacée dès"),
        "{fr}"
    );
    let en = String::from_utf8(built().files["en/privacy/index.html"].clone()).unwrap();
    assert!(
        en.contains("kept encrypted") && en.contains("as soon as the e-mail is sent"),
        "{en}"
    );
}

#[test]
fn dev_overrides_for_serve() {
    let site = common::example_site();
    let out = tempfile::tempdir().unwrap();
    let mut o = common::opts(site.path(), &out.path().join("public"));
    o.base_url = Some("http://127.0.0.1:8080".into());
    o.captcha_provider = Some("dev".into());
    let report = cahier::build(&o).unwrap();
    assert!(
        !report.warnings.iter().any(|w| w.contains("captcha")),
        "a loopback site may use the dev captcha: {:?}",
        report.warnings
    );
    let public = out.path().join("public");
    let m = Manifest::from_json(&std::fs::read(public.join("api/manifest.json")).unwrap()).unwrap();
    assert_eq!(m.site.api_url, "http://127.0.0.1:8080/api");
    assert_eq!(m.site.origins, ["http://127.0.0.1:8080"]);
    assert_eq!(m.site.captcha_provider, "dev");
    let doc = Html::parse_document(
        &std::fs::read_to_string(public.join("noel-sans-geant/index.html")).unwrap(),
    );
    let scripts: Vec<String> = doc
        .select(&sel("script"))
        .filter_map(|s| s.value().attr("src").map(str::to_string))
        .collect();
    assert!(
        scripts.contains(&"http://127.0.0.1:8080/api/__dev/captcha.js".to_string()),
        "{scripts:?}"
    );
    assert!(!scripts.iter().any(|s| s.contains("hcaptcha.com")));
    assert!(doc
        .select(&sel(".h-captcha[data-sitekey]"))
        .next()
        .is_some());
    assert_eq!(
        attr(&doc, "form[data-sign-form]", "action").as_deref(),
        Some("http://127.0.0.1:8080/api/petitions/noel-sans-geant/sign")
    );
    let csp = attr(&doc, "meta[http-equiv=Content-Security-Policy]", "content").unwrap();
    assert!(!csp.contains("hcaptcha"), "{csp}");
    assert!(csp.contains("connect-src http://127.0.0.1:8080"), "{csp}");
    let _ = Path::new("");
}

/// A site that publishes no log key gives no receipt link: the check page could not verify it.
#[test]
fn no_receipt_without_a_published_log_key() {
    let doc = html("noel-sans-geant/thanks/index.html");
    assert_eq!(doc.select(&sel("[data-receipt]")).count(), 0);
}
