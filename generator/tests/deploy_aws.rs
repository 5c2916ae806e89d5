//! `[deploy] target = "aws"`: behind CloudFront with origin access control (the template's
//! default `ApiAuth=AWS_IAM`) a form posted without JavaScript cannot carry
//! `x-amz-content-sha256` and is refused, so every page that signs says plainly, in its own
//! language, that signing needs JavaScript. Other deployments keep the plain form post.

mod common;

use scraper::{Html, Selector};
use std::collections::BTreeMap;

/// Builds the example site with `deploy` appended to its `cahier.toml`.
fn build(deploy: &str) -> BTreeMap<String, Vec<u8>> {
    let site = common::example_site();
    let config = site.path().join("cahier.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}\n{deploy}")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let public = out.path().join("public");
    cahier::build(&common::opts(site.path(), &public)).expect("the example builds");
    common::files(&public)
}

/// The text of the `<noscript>` notice of the sign form on `page`, if any.
fn notice(files: &BTreeMap<String, Vec<u8>>, page: &str) -> Option<String> {
    let html = std::str::from_utf8(&files[page]).unwrap();
    let doc = Html::parse_document(html);
    let form = Selector::parse("form[data-sign-form] noscript").unwrap();
    // An HTML5 parser (scripting on) keeps <noscript>'s content as text.
    doc.select(&form)
        .map(|n| n.inner_html())
        .find(|t| t.contains("data-needs-js"))
}

const SIGNING_PAGES: [(&str, &str); 4] = [
    ("noel-sans-geant/index.html", "activez JavaScript"),
    ("noel-sans-geant/embed/index.html", "activez JavaScript"),
    ("en/noel-sans-geant/index.html", "turn on JavaScript"),
    ("en/noel-sans-geant/embed/index.html", "turn on JavaScript"),
];

#[test]
fn under_aws_with_iam_every_signing_page_says_it_needs_javascript() {
    for deploy in [
        "[deploy]\ntarget = \"aws\"\n",
        "[deploy]\ntarget = \"aws\"\napi_auth = \"AWS_IAM\"\n",
    ] {
        let files = build(deploy);
        for (page, words) in SIGNING_PAGES {
            let text = notice(&files, page).unwrap_or_else(|| panic!("no notice on {page}"));
            assert!(text.contains(words), "{page}: {text}");
        }
    }
}

#[test]
fn elsewhere_the_form_posts_without_javascript_and_says_nothing() {
    for deploy in ["", "[deploy]\ntarget = \"aws\"\napi_auth = \"NONE\"\n"] {
        let files = build(deploy);
        for (page, _) in SIGNING_PAGES {
            assert_eq!(notice(&files, page), None, "{page} with {deploy:?}");
        }
    }
}

#[test]
fn the_theme_script_hashes_every_post_body() {
    let files = build("");
    let (_, js) = files
        .iter()
        .find(|(k, _)| k.starts_with("static/cahier.") && k.ends_with(".js"))
        .expect("the fingerprinted script");
    let js = std::str::from_utf8(js).unwrap();
    assert!(js.contains("\"x-amz-content-sha256\""));
    assert!(js.contains("digest(\"SHA-256\", bytes)"));
    // One POST helper; no other fetch posts a body of its own.
    assert_eq!(js.matches("method: \"POST\"").count(), 1, "{js}");
}
