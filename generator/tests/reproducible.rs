//! Same input, same bytes: two builds (the first renders the Open Graph cards, the second takes
//! them from the cache) give identical output folders.

mod common;

#[test]
fn two_builds_are_byte_identical() {
    let site = common::example_site();
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let ra = cahier::build(&common::opts(site.path(), a.path())).unwrap();
    let rb = cahier::build(&common::opts(site.path(), b.path())).unwrap();
    assert_eq!(ra.og_rendered, 4, "cold build renders every card");
    assert_eq!(rb.og_rendered, 0, "warm build renders none");
    assert_eq!(rb.og_cached, 4);
    let fa = common::files(a.path());
    let fb = common::files(b.path());
    assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>());
    for (k, v) in &fa {
        assert!(v == &fb[k], "{k} differs between builds");
    }
    // A cache wiped clean renders the same PNG bytes again (bundled fonts, no system state).
    std::fs::remove_dir_all(site.path().join(".cahier/og-cache")).unwrap();
    let c = tempfile::tempdir().unwrap();
    let rc = cahier::build(&common::opts(site.path(), c.path())).unwrap();
    assert_eq!(rc.og_rendered, 4);
    assert_eq!(common::files(c.path()), fa);
}

#[test]
fn source_date_epoch_dates_undated_feeds() {
    let site = common::empty_site();
    common::write(
        site.path(),
        "content/p/index.md",
        "+++\ntitle = \"P\"\n+++\nx\n",
    );
    common::write(
        site.path(),
        "content/p/index.en.md",
        "+++\ntitle = \"P\"\n+++\nx\n",
    );
    let out = tempfile::tempdir().unwrap();
    // Only this test in this binary touches the variable.
    std::env::set_var("SOURCE_DATE_EPOCH", "1800000000");
    let r = cahier::build(&common::opts(site.path(), out.path()));
    std::env::remove_var("SOURCE_DATE_EPOCH");
    r.unwrap();
    let atom = std::fs::read_to_string(out.path().join("atom.xml")).unwrap();
    assert!(
        atom.contains("<updated>2027-01-15T08:00:00Z</updated>"),
        "{atom}"
    );
}
