//! Errors a writer can act on name the file, the line and the key; a failed build leaves the
//! previous output untouched.

mod common;

use common::{empty_site, opts, write};

fn build_err(site: &tempfile::TempDir) -> String {
    let out = tempfile::tempdir().unwrap();
    let e = cahier::build(&opts(site.path(), &out.path().join("public")))
        .expect_err("the build must fail");
    format!("{e:#}")
}

const GOOD_TOML: &str = "+++\ntitle = \"Une pétition\"\ngoal = 10\n+++\nTexte.\n";
const GOOD_EN: &str = "+++\ntitle = \"A petition\"\n+++\nText.\n";

#[test]
fn bad_toml_names_file_and_line() {
    let site = empty_site();
    write(
        site.path(),
        "content/p/index.md",
        "+++\ntitle = \"x\"\ngoal = = 3\n+++\nbody\n",
    );
    write(site.path(), "content/p/index.en.md", GOOD_EN);
    let msg = build_err(&site);
    assert!(msg.contains("content/p/index.md:3:"), "{msg}");
}

#[test]
fn bad_yaml_names_file_and_line() {
    let site = empty_site();
    write(
        site.path(),
        "content/p/index.md",
        "---\ntitle: x\ngoal: 10\ntags: [a, b\n---\nbody\n",
    );
    write(site.path(), "content/p/index.en.md", GOOD_EN);
    let msg = build_err(&site);
    assert!(msg.contains("content/p/index.md:"), "{msg}");
    let line: usize = msg
        .split("content/p/index.md:")
        .nth(1)
        .unwrap()
        .split(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (4..=6).contains(&line),
        "line {line} should point at the broken list: {msg}"
    );
}

#[test]
fn ill_typed_value_names_key_and_line() {
    let site = empty_site();
    write(
        site.path(),
        "content/p/index.md",
        "+++\ntitle = \"x\"\n\ngoal = \"beaucoup\"\n+++\nbody\n",
    );
    write(site.path(), "content/p/index.en.md", GOOD_EN);
    let msg = build_err(&site);
    assert!(msg.contains("content/p/index.md:4:"), "{msg}");
    assert!(msg.contains("`goal`"), "{msg}");
}

#[test]
fn bad_date_names_file_line_and_key() {
    let site = empty_site();
    write(
        site.path(),
        "content/p/index.md",
        "+++\ntitle = \"x\"\ngoal = 10\ncloses = \"24/12/2026\"\n+++\nbody\n",
    );
    write(site.path(), "content/p/index.en.md", GOOD_EN);
    let msg = build_err(&site);
    assert!(msg.contains("content/p/index.md:4:"), "{msg}");
    assert!(msg.contains("closes"), "{msg}");
    assert!(msg.contains("invalid date"), "{msg}");
    // The same in YAML.
    let site = empty_site();
    write(
        site.path(),
        "content/q/index.md",
        "---\ntitle: x\nopens: 2026-13-45\n---\nbody\n",
    );
    write(site.path(), "content/q/index.en.md", GOOD_EN);
    let msg = build_err(&site);
    assert!(msg.contains("content/q/index.md:3:"), "{msg}");
    assert!(msg.contains("opens"), "{msg}");
}

#[test]
fn unknown_key_names_file_line_and_key() {
    let site = empty_site();
    write(
        site.path(),
        "content/p/index.md",
        "+++\ntitle = \"x\"\ngoal = 10\nclose = 2026-12-24\n+++\nbody\n",
    );
    write(site.path(), "content/p/index.en.md", GOOD_EN);
    let msg = build_err(&site);
    assert!(msg.contains("content/p/index.md:4:"), "{msg}");
    assert!(msg.contains("unknown field `close`"), "{msg}");
    // In YAML, and in a translation a shared key is explained.
    let site = empty_site();
    write(site.path(), "content/p/index.md", GOOD_TOML);
    write(
        site.path(),
        "content/p/index.en.md",
        "---\ntitle: A\nsummary: B\ngoal: 5\n---\nText\n",
    );
    let msg = build_err(&site);
    assert!(msg.contains("content/p/index.en.md:4:"), "{msg}");
    assert!(msg.contains("`goal` is shared by all languages"), "{msg}");
}

#[test]
fn unknown_config_key_names_line() {
    let site = empty_site();
    let cfg = std::fs::read_to_string(site.path().join("cahier.toml")).unwrap();
    std::fs::write(
        site.path().join("cahier.toml"),
        format!("{cfg}\n[captcha2]\nx = 1\n"),
    )
    .unwrap();
    let msg = build_err(&site);
    let line = cfg.lines().count() + 2;
    assert!(msg.contains(&format!("cahier.toml:{line}:")), "{msg}");
    assert!(msg.contains("captcha2"), "{msg}");
}

#[test]
fn missing_template_names_the_template() {
    let site = empty_site();
    write(site.path(), "content/p/index.md", GOOD_TOML);
    write(site.path(), "content/p/index.en.md", GOOD_EN);
    write(
        site.path(),
        "templates/thanks.html",
        "{# site override #}\n{% extends \"layout.html\" %}\n",
    );
    let msg = build_err(&site);
    assert!(msg.contains("templates/thanks.html:2:"), "{msg}");
    assert!(msg.contains("layout.html"), "{msg}");
    // A theme without a required template.
    let site = empty_site();
    std::fs::remove_file(site.path().join("themes/default/templates/embed.html")).unwrap();
    let msg = build_err(&site);
    assert!(msg.contains("themes/default/templates/embed.html"), "{msg}");
    assert!(msg.contains("missing template"), "{msg}");
}

#[test]
fn template_syntax_error_names_file_and_line() {
    let site = empty_site();
    write(site.path(), "templates/404.html", "<p>\n\n{{ oops( }}\n");
    let msg = build_err(&site);
    assert!(msg.contains("templates/404.html:3:"), "{msg}");
}

#[test]
fn site_templates_override_the_theme() {
    let site = empty_site();
    write(site.path(), "content/p/index.md", GOOD_TOML);
    write(site.path(), "content/p/index.en.md", GOOD_EN);
    write(
        site.path(),
        "templates/404.html",
        "<!doctype html><title>{{ t.not_found_title }}</title><p>custom 404</p>\n",
    );
    let out = tempfile::tempdir().unwrap();
    cahier::build(&opts(site.path(), &out.path().join("public"))).unwrap();
    let fr = std::fs::read_to_string(out.path().join("public/404.html")).unwrap();
    assert!(
        fr.contains("custom 404") && fr.contains("Page introuvable"),
        "{fr}"
    );
    let en = std::fs::read_to_string(out.path().join("public/en/404.html")).unwrap();
    assert!(en.contains("Page not found"), "{en}");
}

#[test]
fn failed_build_leaves_previous_output_intact() {
    let site = empty_site();
    write(site.path(), "content/p/index.md", GOOD_TOML);
    write(site.path(), "content/p/index.en.md", GOOD_EN);
    let out = tempfile::tempdir().unwrap();
    let public = out.path().join("public");
    cahier::build(&opts(site.path(), &public)).unwrap();
    let before = common::files(&public);
    // Break a template that is only rendered after many files were written.
    write(
        site.path(),
        "templates/privacy.html",
        "{{ undefined_variable.field }}\n",
    );
    let e = cahier::build(&opts(site.path(), &public)).expect_err("must fail");
    assert!(format!("{e:#}").contains("privacy.html"), "{e:#}");
    assert_eq!(
        common::files(&public),
        before,
        "the previous site is untouched"
    );
    let entries: Vec<_> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries, ["public"], "no temporary folder left behind");
    // A later good build replaces it.
    std::fs::remove_file(site.path().join("templates/privacy.html")).unwrap();
    write(
        site.path(),
        "content/p/index.md",
        &GOOD_TOML.replace("Une pétition", "Une autre"),
    );
    cahier::build(&opts(site.path(), &public)).unwrap();
    let after = std::fs::read_to_string(public.join("p/index.html")).unwrap();
    assert!(after.contains("Une autre"));
}

/// Paper batches in front matter: a bad one names the file, its line and `offline[i].field`;
/// two batches that would share an id are refused.
#[test]
fn offline_batches_in_front_matter_name_the_batch_and_the_field() {
    let site = empty_site();
    write(
        site.path(),
        "content/p/index.md",
        "---\ntitle: x\ngoal: 10\noffline:\n  - date: 2026-11-28\n    signatures: 120\n    note: marché\n  - id: porte\n    date: 28/11/2026\n    count: 12\ntags: [a]\n---\nbody\n",
    );
    write(site.path(), "content/p/index.en.md", GOOD_EN);
    let msg = build_err(&site);
    assert!(msg.contains("content/p/index.md:9:"), "{msg}");
    assert!(msg.contains("offline[1].date"), "{msg}");
    assert!(msg.contains("YYYY-MM-DD"), "{msg}");

    write(
        site.path(),
        "content/p/index.md",
        "+++\ntitle = \"x\"\ngoal = 10\n\n[[offline]]\ndate = \"2026-11-28\"\nsignatures = 120\n\n[[offline]]\ndate = \"2026-11-28\"\nsignatures = 0\n+++\nbody\n",
    );
    let msg = build_err(&site);
    assert!(msg.contains("content/p/index.md:11:"), "{msg}");
    assert!(msg.contains("offline[1].signatures"), "{msg}");

    write(
        site.path(),
        "content/p/index.md",
        "+++\ntitle = \"x\"\ngoal = 10\n\n[[offline]]\ndate = \"2026-11-28\"\nsignatures = 120\n\n[[offline]]\ndate = \"2026-11-28\"\nsignatures = 3\n+++\nbody\n",
    );
    let msg = build_err(&site);
    assert!(msg.contains("content/p/index.md:9:"), "{msg}");
    assert!(
        msg.contains("two batches on 2026-11-28: give each an `id`"),
        "{msg}"
    );

    // A translation cannot declare batches: they are the petition's, not a language's.
    write(
        site.path(),
        "content/p/index.md",
        "+++\ntitle = \"x\"\ngoal = 10\n\n[[offline]]\ndate = \"2026-11-28\"\nsignatures = 120\n+++\nbody\n",
    );
    write(
        site.path(),
        "content/p/index.en.md",
        "+++\ntitle = \"A petition\"\n\n[[offline]]\ndate = \"2026-11-29\"\nsignatures = 1\n+++\nText.\n",
    );
    let msg = build_err(&site);
    assert!(msg.contains("content/p/index.en.md"), "{msg}");
    assert!(msg.contains("offline"), "{msg}");
    write(site.path(), "content/p/index.en.md", GOOD_EN);
    let out = tempfile::tempdir().unwrap();
    let report = cahier::build(&opts(site.path(), &out.path().join("public"))).unwrap();
    assert_eq!(report.offline.len(), 1);
    assert_eq!(report.offline[0].batch.id, "paper-2026-11-28");
    assert_eq!(report.offline[0].batch.signatures, 120);
}
