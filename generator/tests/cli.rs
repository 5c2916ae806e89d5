//! The real binary: `cahier new`, `cahier check` and `cahier build`.

mod common;

use std::process::{Command, Output};

fn cahier(root: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cahier"))
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .expect("run cahier")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn example_passes_check() {
    let o = cahier(&common::repo_root(), &["check"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("OK: 2 petitions"));
}

#[test]
fn new_then_check_then_build() {
    let site = common::example_site();
    let o = cahier(site.path(), &["new", "piste-cyclable"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(site
        .path()
        .join("content/piste-cyclable/index.md")
        .is_file());
    assert!(site
        .path()
        .join("content/piste-cyclable/index.en.md")
        .is_file());
    let o = cahier(site.path(), &["check"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("OK: 3 petitions"), "{}", text(&o));
    // Refuses to overwrite, and refuses bad slugs and unknown languages.
    assert!(!cahier(site.path(), &["new", "piste-cyclable"])
        .status
        .success());
    assert!(!cahier(site.path(), &["new", "Pas Bon"]).status.success());
    let o = cahier(site.path(), &["new", "autre", "--lang", "de"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("\"de\""), "{}", text(&o));
    // The scaffold is a draft: built only with --drafts.
    let out = site.path().join("public");
    let o = cahier(site.path(), &["build"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("40 pages"), "{}", text(&o));
    assert!(!out.join("piste-cyclable").exists());
    let o = cahier(site.path(), &["build", "--drafts"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(out.join("piste-cyclable/index.html").is_file());
    assert!(text(&o).contains("56 pages"), "{}", text(&o));
}

/// Raw HTML that would turn a petition into a redirect or a script is named by `check` with its
/// file and line, and never reaches the built page; formatting HTML passes.
#[test]
fn check_names_raw_html_that_is_removed_and_build_drops_it() {
    let site = common::empty_site();
    let p = site.path();
    common::write(
        p,
        "content/a/index.md",
        "+++\ntitle = \"A\"\n+++\n\nTexte <abbr title=\"Organisation\">OMS</abbr>.\n\n\
         <meta http-equiv=\"refresh\" content=\"0; url=https://evil.test/\">\n\n\
         Un [lien](javascript:alert(1)) et <a href=\"/a/\" onclick=\"x()\">là</a>.\n",
    );
    common::write(
        p,
        "content/a/index.en.md",
        "+++\ntitle = \"A\"\n+++\nText <sup>1</sup>.\n",
    );
    let o = cahier(p, &["check"]);
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    for want in [
        "content/a/index.md:7: raw HTML <meta> is not allowed",
        "content/a/index.md:9: link \"javascript:alert(1)\"",
        "content/a/index.md:9: raw HTML onclick on <a> is not allowed",
    ] {
        assert!(t.contains(want), "missing {want:?} in:\n{t}");
    }
    assert!(!t.contains("abbr") && !t.contains("index.en.md"), "{t}");

    let o = cahier(p, &["build"]);
    assert!(o.status.success(), "{}", text(&o));
    let page = std::fs::read_to_string(p.join("public/a/index.html")).unwrap();
    assert!(!page.contains("http-equiv=\"refresh\""), "{page}");
    assert!(
        !page.contains("evil.test") && !page.contains("onclick"),
        "{page}"
    );
    assert!(!page.contains("javascript:"), "{page}");
    assert!(
        page.contains("<abbr title=\"Organisation\">OMS</abbr>"),
        "{page}"
    );
}

#[test]
fn check_reports_every_problem_with_file_and_line() {
    let site = common::empty_site();
    let p = site.path();
    // closes before opens (line 4), a broken internal link (body line 8), a missing image (line 9)
    common::write(
        p,
        "content/a/index.md",
        "+++\ntitle = \"A\"\nopens = 2026-12-01\ncloses = 2026-11-01\nimage = \"nope.png\"\n+++\n\nVoir [ailleurs](/inexistante/).\n![photo](absente.jpg)\n",
    );
    common::write(
        p,
        "content/a/index.en.md",
        "+++\ntitle = \"A\"\n+++\nSee [a](/en/a/), [home](/en/) and [b](/en/b/).\n",
    );
    // missing translation
    common::write(
        p,
        "content/b/index.md",
        "+++\ntitle = \"B\"\n+++\n[a](../a/)\n",
    );
    // unknown key and bad date
    common::write(p, "content/c/index.md", "---\ntitle: C\ngoals: 3\n---\n");
    common::write(
        p,
        "content/d/index.md",
        "+++\ntitle = \"D\"\nopens = \"demain\"\n+++\n",
    );
    let o = cahier(p, &["check"]);
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    for want in [
        "content/a/index.md:4: `closes` is not after `opens`",
        "content/a/index.md:5: key `image`: image \"nope.png\" not found",
        "content/a/index.md:8: broken internal link \"/inexistante/\"",
        "content/a/index.md:9: missing image \"absente.jpg\"",
        "content/b/index.en.md: missing translation",
        "content/c/index.md:3: unknown field `goals`",
        "content/d/index.md:3:",
        "invalid date \"demain\"",
    ] {
        assert!(t.contains(want), "missing {want:?} in:\n{t}");
    }
    // b has no English page; links that do resolve are not reported.
    assert!(
        t.contains("content/a/index.en.md:4: broken internal link \"/en/b/\""),
        "{t}"
    );
    assert!(!t.contains("\"/en/a/\"") && !t.contains("\"/en/\""), "{t}");
    assert!(!t.contains("\"../a/\""), "{t}");
    // check wrote nothing.
    assert!(!p.join("public").exists());
}

#[test]
fn errors_exit_non_zero_with_the_chain() {
    let site = common::empty_site();
    std::fs::write(site.path().join("cahier.toml"), "title = \"x\"\n").unwrap();
    let o = cahier(site.path(), &["build"]);
    assert!(!o.status.success());
    let t = text(&o);
    assert!(t.contains("cahier.toml"), "{t}");
    assert!(t.contains("base_url"), "{t}");
    let o = Command::new(env!("CARGO_BIN_EXE_cahier"))
        .arg("--help")
        .output()
        .unwrap();
    let t = text(&o);
    for c in ["build", "new", "check"] {
        assert!(t.contains(c), "{t}");
    }
}
