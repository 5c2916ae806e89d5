//! Shared helpers: a copy of the example site in a temp folder, and file walking.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The repository root (where the example site lives).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).unwrap();
        }
    }
}

/// A fresh copy of the example site (config, content, theme) in a temp folder.
pub fn example_site() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = repo_root();
    std::fs::copy(root.join("cahier.toml"), dir.path().join("cahier.toml")).unwrap();
    copy_dir(&root.join("content"), &dir.path().join("content"));
    copy_dir(&root.join("themes"), &dir.path().join("themes"));
    dir
}

/// A site with the example's theme and config, and no petition.
pub fn empty_site() -> tempfile::TempDir {
    let dir = example_site();
    std::fs::remove_dir_all(dir.path().join("content")).unwrap();
    std::fs::create_dir_all(dir.path().join("content")).unwrap();
    dir
}

pub fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

pub fn opts(root: &Path, out: &Path) -> cahier::BuildOptions {
    cahier::BuildOptions {
        root: root.to_path_buf(),
        out: out.to_path_buf(),
        drafts: false,
        base_url: None,
        api_url: None,
        captcha_provider: None,
        log_public_key: None,
    }
}

/// Every file under `dir`: relative '/'-separated path -> bytes.
pub fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut m = BTreeMap::new();
    fn walk(base: &Path, d: &Path, m: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                walk(base, &e.path(), m);
            } else {
                let rel = e
                    .path()
                    .strip_prefix(base)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                m.insert(rel, std::fs::read(e.path()).unwrap());
            }
        }
    }
    walk(dir, dir, &mut m);
    m
}
