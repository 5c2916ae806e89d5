//! Every byte the build writes goes through [`Output`], which hashes it on the way: the
//! integrity manifest (`integrity.json`), Subresource Integrity and fingerprinted names all
//! come from those hashes, never from a second read of the output.

use anyhow::Context;
use base64::Engine;
use serde::Serialize;
use sha2::{Digest, Sha256, Sha384};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const INTEGRITY_FILE: &str = "integrity.json";

/// A written file: path relative to the output root, `/`-separated.
#[derive(Debug, Clone)]
pub struct OutFile {
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
}

#[derive(Serialize)]
struct Entry<'a> {
    sha256: &'a str,
    bytes: u64,
}

#[derive(Serialize)]
struct IntegrityManifest<'a> {
    version: u32,
    files: BTreeMap<&'a str, Entry<'a>>,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The `integrity=` value of a resource (SHA-384, as browsers recommend).
pub fn sri(bytes: &[u8]) -> String {
    format!(
        "sha384-{}",
        base64::engine::general_purpose::STANDARD.encode(Sha384::digest(bytes))
    )
}

/// `style.css` -> `style.<10 hex of sha256>.css`, so CDNs may cache it forever.
pub fn fingerprinted(name: &str, bytes: &[u8]) -> String {
    let h = &sha256_hex(bytes)[..10];
    match name.rsplit_once('.') {
        Some((stem, ext)) => format!("{stem}.{h}.{ext}"),
        None => format!("{name}.{h}"),
    }
}

/// Writes files under a root and records their hashes.
pub struct Output {
    root: PathBuf,
}

impl Output {
    pub fn new(root: &Path) -> Output {
        Output {
            root: root.to_path_buf(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn write(&self, rel: &str, bytes: &[u8]) -> anyhow::Result<OutFile> {
        let path = self.root.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("while creating {}", parent.display()))?;
        }
        std::fs::write(&path, bytes)
            .with_context(|| format!("while writing {}", path.display()))?;
        Ok(OutFile {
            path: rel.to_string(),
            sha256: sha256_hex(bytes),
            bytes: bytes.len() as u64,
        })
    }
}

impl Output {
    /// Puts an existing file whose SHA-256 and size are known at `rel`: a hard link when the
    /// file system allows (no bytes copied; the source must never be modified in place), a
    /// copy otherwise.
    pub fn link(&self, rel: &str, src: &Path, sha256: &str, bytes: u64) -> anyhow::Result<OutFile> {
        let path = self.root.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("while creating {}", parent.display()))?;
        }
        if std::fs::hard_link(src, &path).is_err() {
            std::fs::copy(src, &path).with_context(|| {
                format!("while copying {} to {}", src.display(), path.display())
            })?;
        }
        Ok(OutFile {
            path: rel.to_string(),
            sha256: sha256.to_string(),
            bytes,
        })
    }
}

/// `integrity.json`: SHA-256 and size of every other output file, keys sorted.
pub fn manifest(files: &[OutFile]) -> Vec<u8> {
    let m = IntegrityManifest {
        version: 1,
        files: files
            .iter()
            .map(|f| {
                (
                    f.path.as_str(),
                    Entry {
                        sha256: &f.sha256,
                        bytes: f.bytes,
                    },
                )
            })
            .collect(),
    };
    let mut v = serde_json::to_vec_pretty(&m).expect("serializable");
    v.push(b'\n');
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_hashes() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(fingerprinted("style.css", b"x").starts_with("style."));
        assert!(fingerprinted("style.css", b"x").ends_with(".css"));
        assert!(sri(b"").starts_with(
            "sha384-OLBgp1GsljhM2TJ+sbHjaiH9txEUvgdDTAzHv2P24donTt6/529l+9Ua0vFImLlb"
        ));
    }
}
