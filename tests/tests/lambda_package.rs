//! `scripts/package-lambda.sh` produces a deployable zip: `bootstrap` as an executable x86-64
//! ELF linked for Amazon Linux 2023's glibc (the script checks the symbol versions), and the
//! petition manifest byte for byte. The packaged binary starts.
//!
//! The full release build takes minutes on two cores, so this test builds the `dev` profile
//! (`CAHIER_LAMBDA_PROFILE=dev`): the same target, features, linker and zip, unoptimised.
//! `CAHIER_LAMBDA_TEST_PROFILE=release` checks the real package instead.
//!
//! The build goes to its own folder (`CARGO_TARGET_TMPDIR/lambda-package`): it holds that
//! folder's lock for minutes, and the other tests' binaries are built in the main one, so
//! `scripts/test.sh` runs this test beside the others rather than after them.

use cahier_tests::fixture;
use std::path::Path;
use std::process::Command;

/// Name, Unix mode and the first 20 bytes (hex) of each entry, read with Python's zipfile.
const LIST: &str = r#"
import json, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    print(json.dumps([
        {"name": i.filename, "mode": i.external_attr >> 16, "size": i.file_size,
         "head": z.read(i.filename)[:20].hex()}
        for i in z.infolist()]))
"#;

#[test]
fn package_lambda_builds_a_zip_with_bootstrap_and_manifest() {
    let root = cahier_tests::repo_root();
    let venv = cahier_tests::moto::venv_python();
    assert!(
        venv.exists(),
        "no venv at {}: run scripts/test.sh first",
        venv.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let (secrets, _) = fixture::secrets();
    let manifest = fixture::manifest(
        "https://petitions.example",
        secrets.age_recipient.as_deref().unwrap(),
    );
    let manifest_path = dir.path().join("manifest.json");
    let manifest_bytes = serde_json::to_vec_pretty(&manifest).unwrap();
    std::fs::write(&manifest_path, &manifest_bytes).unwrap();

    let profile = std::env::var("CAHIER_LAMBDA_TEST_PROFILE").unwrap_or_else(|_| "dev".to_string());
    let venv_dir = venv.parent().and_then(Path::parent).unwrap();
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("lambda-package");
    let mut cmd = Command::new("bash");
    cmd.arg(root.join("scripts/package-lambda.sh"))
        .arg(&manifest_path)
        .current_dir(&root)
        .env("CAHIER_LAMBDA_PROFILE", &profile)
        .env("CAHIER_LAMBDA_ARCH", "x86_64")
        .env("CAHIER_VENV", venv_dir)
        .env("CARGO_TARGET_DIR", &target);
    // The variables cargo sets for this test would change the inner build's fingerprints.
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().to_string();
        if (k.starts_with("CARGO_") && k != "CARGO_HOME" && k != "CARGO_TARGET_DIR")
            || k.starts_with("RUSTC")
        {
            cmd.env_remove(k);
        }
    }
    let started = std::time::Instant::now();
    let out = cmd.output().expect("running scripts/package-lambda.sh");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "package-lambda.sh failed:\n{log}");
    eprintln!(
        "package-lambda ({profile}) took {:.0} s: {}",
        started.elapsed().as_secs_f64(),
        log.lines()
            .filter(|l| l.starts_with("package-lambda:") || l.starts_with("bootstrap:"))
            .collect::<Vec<_>>()
            .join(" | ")
    );

    let zip = target.join("lambda/cahier-function/bootstrap.zip");
    let listing = Command::new(&venv)
        .args(["-c", LIST])
        .arg(&zip)
        .output()
        .expect("python reads the zip");
    assert!(
        listing.status.success(),
        "{}",
        String::from_utf8_lossy(&listing.stderr)
    );
    let entries: serde_json::Value = serde_json::from_slice(&listing.stdout).unwrap();
    let entries = entries.as_array().unwrap();
    let names: Vec<&str> = entries
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bootstrap", "manifest.json"]);

    let bootstrap = &entries[0];
    let mode = bootstrap["mode"].as_u64().unwrap();
    assert_eq!(mode & 0o170000, 0o100000, "bootstrap is a regular file");
    assert_eq!(mode & 0o111, 0o111, "bootstrap is executable: {mode:o}");
    let head = hex::decode(bootstrap["head"].as_str().unwrap()).unwrap();
    assert_eq!(&head[..4], b"\x7fELF", "bootstrap is an ELF file");
    assert_eq!(head[4], 2, "64-bit ELF");
    assert_eq!(head[5], 1, "little-endian");
    assert!(
        matches!(u16::from_le_bytes([head[16], head[17]]), 2 | 3),
        "ELF type: an executable (ET_EXEC, or ET_DYN for a position-independent one)"
    );
    assert_eq!(
        u16::from_le_bytes([head[18], head[19]]),
        0x3e,
        "machine x86-64"
    );
    assert_eq!(
        entries[1]["size"].as_u64().unwrap(),
        manifest_bytes.len() as u64
    );
    eprintln!(
        "zip: {} bytes; bootstrap {} bytes",
        std::fs::metadata(&zip).unwrap().len(),
        bootstrap["size"]
    );

    // The binary it was zipped from starts (this machine's glibc is newer than 2.34).
    let built = target.join(format!(
        "x86_64-unknown-linux-gnu/{}/cahier-function",
        if profile == "release" {
            "release"
        } else {
            "debug"
        }
    ));
    assert_eq!(
        std::fs::metadata(&built).unwrap().len(),
        bootstrap["size"].as_u64().unwrap(),
        "the zipped bootstrap is the built binary"
    );
    let version = Command::new(&built).arg("--version").output().unwrap();
    assert!(version.status.success());
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("cahier-function "));
}
