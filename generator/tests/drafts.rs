//! Drafts: a petition marked `draft = true` and a translation marked `draft = true` stay out of
//! the build unless `--drafts` is given.

mod common;

use common::{empty_site, opts, write};

const FR: &str = "+++\ntitle = \"Une pétition\"\ngoal = 10\n+++\nTexte.\n";

fn build(site: &tempfile::TempDir, drafts: bool) -> (tempfile::TempDir, std::path::PathBuf) {
    let out = tempfile::tempdir().unwrap();
    let public = out.path().join("public");
    let mut o = opts(site.path(), &public);
    o.drafts = drafts;
    cahier::build(&o).expect("build");
    (out, public)
}

#[test]
fn a_draft_translation_is_left_out_unless_drafts_are_asked_for() {
    let site = empty_site();
    write(site.path(), "content/p/index.md", FR);
    write(
        site.path(),
        "content/p/index.en.md",
        "+++\ntitle = \"A petition\"\ndraft = true\n+++\nText.\n",
    );
    let (_out, public) = build(&site, false);
    assert!(public.join("p/index.html").exists(), "French page built");
    assert!(
        !public.join("en/p/index.html").exists(),
        "English draft left out"
    );
    let fr = std::fs::read_to_string(public.join("p/index.html")).unwrap();
    assert!(!fr.contains("/en/p/"), "no link to the draft translation");

    let (_out, public) = build(&site, true);
    assert!(
        public.join("en/p/index.html").exists(),
        "--drafts builds it"
    );
}

#[test]
fn a_draft_petition_is_left_out_unless_drafts_are_asked_for() {
    let site = empty_site();
    write(
        site.path(),
        "content/p/index.md",
        "+++\ntitle = \"Une pétition\"\ndraft = true\n+++\nTexte.\n",
    );
    write(
        site.path(),
        "content/p/index.en.md",
        "+++\ntitle = \"A petition\"\n+++\nText.\n",
    );
    let (_out, public) = build(&site, false);
    assert!(!public.join("p/index.html").exists());
    assert!(!public.join("en/p/index.html").exists());
    let (_out, public) = build(&site, true);
    assert!(public.join("p/index.html").exists());
}
