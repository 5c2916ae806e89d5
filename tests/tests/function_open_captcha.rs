//! The real `cahier-function` binary refuses, at start-up, a captcha that lets anyone sign a
//! public site: the development captcha, or hCaptcha's published test keys against hCaptcha
//! itself. On a loopback site (as under `cahier serve` and the other tests) both still start.

use cahier_tests::fixture;
use cahier_tests::server::binary;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TEST_SITEKEY: &str = "10000000-ffff-ffff-ffff-000000000001";
const TEST_SECRET: &str = "0x0000000000000000000000000000000000000000";
/// A refusal comes at once; this is only a bound.
const REFUSAL: Duration = Duration::from_secs(15);

/// Runs the binary with a manifest for `base_url` and `provider`; returns its exit and output
/// if it stops within `wait`, or `None` if it kept running (it is then killed).
fn run(base_url: &str, provider: &str, secret: &str, wait: Duration) -> Option<(bool, String)> {
    let dir = tempfile::tempdir().unwrap();
    let (secrets, _) = fixture::secrets();
    let mut manifest = fixture::manifest(base_url, secrets.age_recipient.as_deref().unwrap());
    manifest.site.captcha_provider = provider.into();
    manifest.site.captcha_sitekey = TEST_SITEKEY.into();
    let path = dir.path().join("manifest.json");
    std::fs::write(&path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    let log = dir.path().join("log");
    let mut child = Command::new(binary())
        .arg("--listen")
        .arg(format!("127.0.0.1:{}", cahier_tests::free_port()))
        .arg("--manifest")
        .arg(&path)
        .arg("--store")
        .arg(format!("sqlite:{}", dir.path().join("s.sqlite3").display()))
        .arg("--mailer")
        .arg(format!("outbox:{}", dir.path().join("outbox").display()))
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env_remove("CAHIER_SECRETS_FILE")
        .env_remove("HCAPTCHA_VERIFY_URL")
        .envs(
            fixture::secrets_env(&secrets)
                .into_iter()
                .filter(|(k, _)| k != "HCAPTCHA_SECRET"),
        )
        .env("HCAPTCHA_SECRET", secret)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("spawning cahier-function");
    let start = Instant::now();
    while start.elapsed() < wait {
        if let Some(status) = child.try_wait().unwrap() {
            return Some((status.success(), std::fs::read_to_string(&log).unwrap()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[test]
fn a_public_site_refuses_the_dev_captcha_and_hcaptcha_test_keys() {
    let (ok, log) = run("https://petitions.example", "dev", "0xsecret", REFUSAL)
        .expect("the binary must refuse to start");
    assert!(
        !ok && log.contains("development captcha lets anyone sign"),
        "{log}"
    );

    let (ok, log) = run("https://petitions.example", "hcaptcha", "0xabc123", REFUSAL)
        .expect("the binary must refuse the test site key");
    assert!(!ok && log.contains("public test keys"), "{log}");
}

#[test]
fn a_loopback_site_may_use_them() {
    assert!(
        run(
            "http://127.0.0.1:8080",
            "hcaptcha",
            TEST_SECRET,
            Duration::from_secs(3)
        )
        .is_none(),
        "a loopback site starts with hCaptcha's test keys"
    );
}
