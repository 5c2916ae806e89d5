//! The same binary under a Lambda runtime (cargo-lambda's emulator of the runtime and
//! function-URL APIs): `lambda_http::run` serves the router, the captcha goes through the real
//! `hcaptcha` crate to a siteverify endpoint (a second, standalone instance's development
//! siteverify, which has hCaptcha's semantics), and the dev captcha itself is refused.

use cahier_function::captcha::dev::DEV_SITEKEY;
use cahier_tests::fixture::{self, SLUG};
use cahier_tests::flow::Api;
use cahier_tests::lambda::LambdaFunction;
use cahier_tests::moto::Moto;
use cahier_tests::outbox::{read_dir, token};
use cahier_tests::server::Fixture;
use serde_json::{json, Value};

const SITE: &str = "https://petitions.test";

struct Setup {
    /// The standalone instance playing hCaptcha (issues tokens, answers siteverify).
    captcha: Fixture,
    lambda: LambdaFunction,
    outbox: std::path::PathBuf,
    http: reqwest::Client,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

/// Where the function's secrets come from.
enum SecretsFrom<'a> {
    Environment,
    /// Stored in this Secrets Manager; only their ARNs (and the endpoint) in the environment.
    SecretsManager(&'a Moto),
}

async fn start(captcha_provider: &str, from: SecretsFrom<'_>) -> Setup {
    let captcha_dir = tempfile::tempdir().unwrap();
    let captcha = Fixture::start(captcha_dir.path(), None, &[]);
    let dir = tempfile::tempdir().unwrap();
    let (secrets, _identity) = fixture::secrets();
    let mut manifest = fixture::manifest(SITE, secrets.age_recipient.as_deref().unwrap());
    manifest.site.captcha_provider = captcha_provider.to_string();
    manifest.site.captcha_sitekey = DEV_SITEKEY.to_string();
    let manifest_path = dir.path().join("manifest.json");
    std::fs::write(&manifest_path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    let outbox = dir.path().join("outbox");
    let mut env: Vec<(String, String)> = fixture::secrets_env(&secrets)
        .into_iter()
        .filter(|(k, _)| k != "HCAPTCHA_SECRET")
        .collect();
    // The siteverify secret is the one the captcha instance checks.
    env.push((
        "HCAPTCHA_SECRET".into(),
        captcha.secrets.hcaptcha_secret.clone().unwrap(),
    ));
    env.push((
        "HCAPTCHA_VERIFY_URL".into(),
        captcha.server.url("/api/__dev/siteverify"),
    ));
    let args = vec![
        "--manifest".to_string(),
        manifest_path.display().to_string(),
        "--store".to_string(),
        format!("sqlite:{}", dir.path().join("signatures.sqlite3").display()),
        "--mailer".to_string(),
        format!("outbox:{}", outbox.display()),
    ];
    let env = match from {
        SecretsFrom::Environment => env,
        SecretsFrom::SecretsManager(moto) => {
            cahier_tests::moto::into_secrets_manager(moto, env).await
        }
    };
    let lambda = LambdaFunction::start(dir.path(), &args, &env);
    Setup {
        captcha,
        lambda,
        outbox,
        http: reqwest::Client::new(),
        _dirs: (captcha_dir, dir),
    }
}

impl Setup {
    /// Signs on the function URL from the petition site, captchas solved on the other instance.
    fn api(&self) -> Api {
        Api::new(&self.lambda.url)
            .origin(SITE)
            .captcha_at(&self.captcha.server.base)
    }
}

#[tokio::test]
async fn signs_confirms_and_counts_under_the_lambda_runtime() {
    let moto = Moto::start().expect("moto starts (run scripts/test.sh to create the venv)");
    let mut s = start("hcaptcha", SecretsFrom::SecretsManager(&moto)).await;
    // Nothing secret in the function's environment: only ARNs.
    let environ = std::fs::read(format!("/proc/{}/environ", s.lambda.pid())).unwrap();
    let environ = String::from_utf8_lossy(&environ);
    for name in cahier_function::secrets::SECRET_VARIABLES {
        assert!(
            !environ.contains(&format!("\0{name}=")),
            "{name} in the environment"
        );
    }
    for name in ["CAHIER_TOKEN_KEY", "CAHIER_PEPPER", "HCAPTCHA_SECRET"] {
        assert!(
            environ.contains(&format!("\0{name}_ARN=arn:")),
            "{name}_ARN missing"
        );
    }
    let api = s.api();
    let res = s
        .http
        .get(api.url(&format!("/api/petitions/{SLUG}/count")))
        .send()
        .await
        .unwrap();
    s.lambda.assert_running();
    assert_eq!(res.status(), 200, "{}", s.lambda.log());
    assert_eq!(
        res.headers()["cache-control"],
        cahier_function::sign::COUNT_CACHE_CONTROL
    );
    assert_eq!(api.count().await, 0);

    let captcha = api.captcha().await;
    let res = api.sign_with("lambda@example.org", &captcha).await;
    assert_eq!(res.status(), 202, "{}", s.lambda.log());
    let mails = read_dir(&s.outbox);
    assert_eq!(mails.len(), 1, "one confirmation mail");
    let confirm = token(&mails[0].text, "confirm").expect("confirm link");
    assert!(mails[0]
        .text
        .contains(&format!("{SITE}/{SLUG}/confirm/#t=")));

    // The captcha token was redeemed by siteverify: a replay is refused, nothing written.
    let res = api.sign_with("other@example.org", &captcha).await;
    assert_eq!(res.status(), 403);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    assert_eq!(read_dir(&s.outbox).len(), 1);

    // Confirm by GET changes nothing; by POST it counts.
    let res = s
        .http
        .get(format!("{}/api/confirm", s.lambda.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(api.count().await, 0);
    let res = api.confirm(&confirm).await;
    assert_eq!(res.status(), 200, "{}", s.lambda.log());
    assert_eq!(api.count().await, 1);

    // A bad request gets its problem body through API Gateway's event format too.
    let res = api
        .sign_json(&json!({ "email": "x@example.org", "unknown": 1 }))
        .await;
    assert_eq!(res.status(), 400);
    let problem: Value = res.json().await.unwrap();
    assert!(problem["detail"].as_str().is_some() || problem["errors"].is_array());
    s.lambda.assert_running();
}

#[tokio::test]
async fn a_secret_that_cannot_be_read_stops_the_cold_start_naming_it() {
    let moto = Moto::start().expect("moto starts");
    let (secrets, _identity) = fixture::secrets();
    let mut env =
        cahier_tests::moto::into_secrets_manager(&moto, fixture::secrets_env(&secrets)).await;
    for (k, v) in env.iter_mut() {
        if k == "CAHIER_PEPPER_ARN" {
            *v =
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:cahier/missing-AbCdEf".into();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let manifest = fixture::manifest(SITE, secrets.age_recipient.as_deref().unwrap());
    let manifest_path = dir.path().join("manifest.json");
    std::fs::write(&manifest_path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    let args = vec![
        "--manifest".to_string(),
        manifest_path.display().to_string(),
        "--store".to_string(),
        format!("sqlite:{}", dir.path().join("s.sqlite3").display()),
        "--mailer".to_string(),
        format!("outbox:{}", dir.path().join("outbox").display()),
    ];
    let lambda = LambdaFunction::start(dir.path(), &args, &env);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !lambda.log().contains("CAHIER_PEPPER from Secrets Manager") {
        assert!(
            std::time::Instant::now() < deadline,
            "no error naming the secret:\n{}",
            lambda.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let pepper = hex::encode(&secrets.pepper);
    assert!(!lambda.log().contains(&pepper));
}

#[tokio::test]
async fn the_development_captcha_is_refused_under_lambda() {
    let s = start("dev", SecretsFrom::Environment).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !s.lambda.log().contains("refused under AWS Lambda") {
        assert!(
            std::time::Instant::now() < deadline,
            "no refusal in the log:\n{}",
            s.lambda.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
