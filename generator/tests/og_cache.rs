//! The Open Graph cache: cards are cached by content hash with their SHA-256 and size beside
//! them, a warm build takes them from there without rendering, reading or hashing them, and
//! the output and its integrity manifest stay exact.

mod common;

use sha2::{Digest, Sha256};
use std::path::Path;

fn og_pngs(dir: &Path) -> Vec<std::path::PathBuf> {
    walkdir_pngs(dir)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "og.png"))
        .collect()
}

fn walkdir_pngs(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            v.extend(walkdir_pngs(&p));
        } else if p.extension().is_some_and(|e| e == "png") {
            v.push(p);
        }
    }
    v.sort();
    v
}

fn integrity(out: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(out.join("integrity.json")).unwrap()).unwrap()
}

#[test]
fn cache_entries_carry_hash_and_size_and_warm_builds_use_them() {
    let site = common::example_site();
    let cache = site.path().join(".cahier/og-cache");
    let a = tempfile::tempdir().unwrap();
    let ra = cahier::build(&common::opts(site.path(), a.path())).unwrap();
    assert_eq!(ra.og_rendered, 4);

    // Every cached PNG has a sidecar "<sha256> <bytes>" that is true.
    let cached = walkdir_pngs(&cache);
    assert_eq!(cached.len(), 4);
    for png in &cached {
        let bytes = std::fs::read(png).unwrap();
        let side = std::fs::read_to_string(png.with_extension("sha256")).unwrap();
        assert_eq!(
            side.trim(),
            format!("{} {}", hex::encode(Sha256::digest(&bytes)), bytes.len())
        );
    }

    // The warm build renders nothing; its cards and their integrity entries are exact.
    let b = tempfile::tempdir().unwrap();
    let rb = cahier::build(&common::opts(site.path(), b.path())).unwrap();
    assert_eq!((rb.og_rendered, rb.og_cached), (0, 4));
    let manifest = integrity(b.path());
    let cards = og_pngs(b.path());
    assert_eq!(cards.len(), 4);
    for card in &cards {
        let bytes = std::fs::read(card).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "{} is a PNG", card.display());
        let rel = card
            .strip_prefix(b.path())
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let entry = &manifest["files"][&rel];
        assert_eq!(
            entry["sha256"],
            hex::encode(Sha256::digest(&bytes)),
            "{rel}"
        );
        assert_eq!(entry["bytes"], bytes.len() as u64, "{rel}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(card).unwrap().permissions().mode();
            assert_eq!(mode & 0o044, 0o044, "{rel} is readable by a web server");
        }
    }
    assert_eq!(common::files(a.path()), common::files(b.path()));
}

#[test]
fn a_cache_without_or_with_a_wrong_sidecar_is_rehashed_not_rerendered() {
    let site = common::example_site();
    let cache = site.path().join(".cahier/og-cache");
    let a = tempfile::tempdir().unwrap();
    cahier::build(&common::opts(site.path(), a.path())).unwrap();
    let sides: Vec<_> = walkdir_pngs(&cache)
        .iter()
        .map(|p| p.with_extension("sha256"))
        .collect();
    // Older caches had no sidecar; a sidecar whose size disagrees with the PNG is not trusted.
    std::fs::remove_file(&sides[0]).unwrap();
    std::fs::write(&sides[1], format!("{} 1\n", "0".repeat(64))).unwrap();
    std::fs::write(&sides[2], "garbage").unwrap();

    let b = tempfile::tempdir().unwrap();
    let rb = cahier::build(&common::opts(site.path(), b.path())).unwrap();
    assert_eq!((rb.og_rendered, rb.og_cached), (0, 4));
    assert_eq!(common::files(a.path()), common::files(b.path()));
    for side in &sides {
        let text = std::fs::read_to_string(side).unwrap();
        let png = std::fs::read(side.with_extension("png")).unwrap();
        assert_eq!(
            text.trim(),
            format!("{} {}", hex::encode(Sha256::digest(&png)), png.len()),
            "{} rewritten",
            side.display()
        );
    }
}
