//! The real `cahier` binary on a copy of the example site: a petition whose slug (its folder's
//! name) collides with a path of the site — a page or folder the build writes at the top
//! (`/api/`, `/static/`, `/privacy/`, a language's `/en/`, the site's own `static/` files) or a
//! name every petition has under it (`/<slug>/confirm/`, `/<slug>/embed/`, `/<slug>/log/`...) —
//! or that is not in its one canonical spelling, is refused by `cahier check` and by `cahier
//! build`, each naming the folder, the slug and what it collides with.

use cahier_tests::server::cahier_binary;
use std::path::Path;
use std::process::Command;

/// A copy of the example site with the library petition copied under each of `slugs`.
fn site_with(slugs: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    cahier_tests::serve::copy_example_site(dir.path());
    let from = dir.path().join("content/mediatheque-des-tanneurs");
    for slug in slugs {
        let to = dir.path().join("content").join(slug);
        std::fs::create_dir_all(&to).unwrap();
        for e in std::fs::read_dir(&from).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
    dir
}

/// Runs `cahier --root ROOT ARGS`; returns (success, stdout + stderr).
fn cahier(root: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(cahier_binary())
        .arg("--root")
        .arg(root)
        .args(args)
        .env_remove("CAHIER_SECRETS_FILE")
        .output()
        .expect("run cahier");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The line of `text` naming the petition folder `content/<slug>`.
fn line_for<'a>(text: &'a str, slug: &str) -> Option<&'a str> {
    let folder = format!("content/{slug}: ");
    text.lines().find(|l| l.contains(&folder))
}

/// (slug, what its diagnostic must say it collides with)
const COLLIDING: &[(&str, &str)] = &[
    ("api", "collides with the site's /api/ path"),
    ("static", "collides with the site's /static/ folder"),
    ("privacy", "collides with the site's /privacy/ page"),
    ("en", "collides with the site's /en/ folder"),
    ("fr", "language code \"fr\""),
    (
        "press",
        "collides with the site's /press/ folder (the site's own static/press/)",
    ),
    ("check-email", "every petition has at /<slug>/check-email/"),
    ("confirm", "every petition has at /<slug>/confirm/"),
    ("thanks", "every petition has at /<slug>/thanks/"),
    ("erase", "every petition has at /<slug>/erase/"),
    ("embed", "every petition has at /<slug>/embed/"),
    ("log", "transparency log every petition has at /<slug>/log/"),
];

const NOT_CANONICAL: &[&str] = &["Noel", "noel.", "noel%41", "noel_x", "noël", "-noel"];

/// Near misses of reserved names are good slugs.
const FINE: &[&str] = &["apis", "confirmation", "en-bref", "statique"];

fn all_slugs() -> Vec<&'static str> {
    COLLIDING
        .iter()
        .map(|(s, _)| *s)
        .chain(NOT_CANONICAL.iter().copied())
        .chain(FINE.iter().copied())
        .collect()
}

fn assert_refusals(text: &str) {
    for (slug, why) in COLLIDING {
        let line = line_for(text, slug).unwrap_or_else(|| panic!("nothing about {slug}:\n{text}"));
        assert!(
            line.contains(&format!("folder name {slug:?} (the petition's slug")),
            "{slug}: {line}"
        );
        assert!(line.contains(why), "{slug}: expected {why:?} in {line}");
    }
    for slug in NOT_CANONICAL {
        let line = line_for(text, slug).unwrap_or_else(|| panic!("nothing about {slug}:\n{text}"));
        assert!(line.contains("is not a valid slug"), "{slug}: {line}");
    }
    for slug in FINE {
        assert!(line_for(text, slug).is_none(), "{slug} refused:\n{text}");
    }
}

#[test]
fn check_refuses_slugs_that_collide_or_are_not_canonical() {
    let site = site_with(&all_slugs());
    // The site's own static files land at the root of the built site.
    std::fs::create_dir_all(site.path().join("static/press")).unwrap();
    std::fs::write(site.path().join("static/press/kit.txt"), "press kit").unwrap();
    let (ok, text) = cahier(site.path(), &["check"]);
    assert!(!ok, "check passed:\n{text}");
    assert_refusals(&text);
    for line in text.lines().filter(|l| l.starts_with("error: ")) {
        assert!(
            all_slugs()
                .iter()
                .any(|s| line.contains(&format!("content/{s}"))),
            "an error about something else: {line}"
        );
    }
}

#[test]
fn build_refuses_them_too_and_writes_nothing() {
    let site = site_with(&all_slugs());
    std::fs::create_dir_all(site.path().join("static/press")).unwrap();
    std::fs::write(site.path().join("static/press/kit.txt"), "press kit").unwrap();
    let public = site.path().join("public");
    // Content errors come first: the build stops on them before the theme's checks.
    let (ok, text) = cahier(site.path(), &["build", "--out", public.to_str().unwrap()]);
    assert!(!ok, "build passed:\n{text}");
    for slug in NOT_CANONICAL {
        assert!(line_for(&text, slug).is_some(), "{slug}:\n{text}");
    }
    for slug in NOT_CANONICAL {
        std::fs::remove_dir_all(site.path().join("content").join(slug)).unwrap();
    }
    let (ok, text) = cahier(site.path(), &["build", "--out", public.to_str().unwrap()]);
    assert!(!ok, "build passed:\n{text}");
    assert!(text.contains("errors in the site's sources"), "{text}");
    for (slug, why) in COLLIDING {
        let line = line_for(&text, slug).unwrap_or_else(|| panic!("nothing about {slug}:\n{text}"));
        assert!(line.contains(why), "{slug}: expected {why:?} in {line}");
    }
    assert!(
        !public.exists(),
        "a refused build wrote {}",
        public.display()
    );

    // Without the colliding ones the same site builds.
    for (slug, _) in COLLIDING {
        std::fs::remove_dir_all(site.path().join("content").join(slug)).unwrap();
    }
    let (ok, text) = cahier(site.path(), &["build", "--out", public.to_str().unwrap()]);
    assert!(ok, "{text}");
    for slug in FINE {
        assert!(public.join(slug).join("index.html").is_file(), "{slug}");
    }
    assert!(public.join("press/kit.txt").is_file());
}
