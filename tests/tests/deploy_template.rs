//! `deploy/aws/template.yaml` is clean under cfn-lint (from PyPI, in the venv `scripts/test.sh` makes: `$CAHIER_VENV` or `<repo>/.venv`), and
//! cfn-lint does catch a broken copy, so this test can fail.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn cfn_lint(template: &Path) -> std::process::Output {
    let bin = std::env::var_os("CAHIER_CFN_LINT")
        .map(PathBuf::from)
        .unwrap_or_else(|| cahier_tests::moto::venv_python().with_file_name("cfn-lint"));
    assert!(
        bin.exists(),
        "cfn-lint not found at {}: run scripts/test.sh, which creates .venv with tests/requirements.txt",
        bin.display()
    );
    Command::new(&bin)
        .arg(template)
        .output()
        .expect("cfn-lint runs")
}

#[test]
fn the_template_is_cfn_lint_clean() {
    let out = cfn_lint(&repo().join("deploy/aws/template.yaml"));
    assert!(
        out.status.success(),
        "cfn-lint found problems ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_template_has_the_cost_and_abuse_caps() {
    let t = std::fs::read_to_string(repo().join("deploy/aws/template.yaml")).unwrap();
    for needle in [
        "ReservedConcurrentExecutions: !Ref ReservedConcurrency",
        "MemorySize: 128",
        "Runtime: provided.al2023",
        "BillingMode: PAY_PER_REQUEST",
        "MaxWriteRequestUnits: !Ref MaxWriteRequestUnits",
        "PointInTimeRecoveryEnabled: true",
        "AttributeName: ttl",
        "OriginAccessControlOriginType: s3",
        "OriginAccessControlOriginType: lambda",
        "PathPattern: /api/*",
        "StrictTransportSecurity:",
        "frame-ancestors 'none'",
        "ContentTypeOptions:",
        "Name: sign-rate-per-ip",
        "Name: global-rate-per-ip",
        "resolve:secretsmanager:",
        "BlockPublicPolicy: true",
    ] {
        assert!(t.contains(needle), "template lacks {needle:?}");
    }
}

#[test]
fn cfn_lint_catches_a_broken_template() {
    let t = std::fs::read_to_string(repo().join("deploy/aws/template.yaml")).unwrap();
    let broken = t
        .replace("MemorySize: 128", "MemorySize: lots")
        .replace("Runtime: provided.al2023", "Runtime: cobol");
    let dir = std::env::temp_dir().join(format!("cahier-cfn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("template.yaml");
    std::fs::write(&path, broken).unwrap();
    let out = cfn_lint(&path);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!out.status.success(), "cfn-lint accepted a broken template");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains("lots") || report.contains("MemorySize"),
        "{report}"
    );
}

/// The sequencer may write only the logs' objects and read only the log key; it runs alone;
/// CloudFront serves the logs without the index rewrite (their paths have no extension) and
/// with a cache policy that honours the objects' own `Cache-Control`.
#[test]
fn the_log_sequencer_is_confined_and_its_files_are_served_as_stored() {
    let text = std::fs::read_to_string(repo().join("deploy/aws/template.yaml")).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let res = &doc["Resources"];
    let seq = &res["Sequencer"]["Properties"];
    assert_eq!(seq["Handler"].as_str(), Some("sequencer"));
    assert_eq!(seq["ReservedConcurrentExecutions"].as_u64(), Some(1));
    let vars = seq["Environment"]["Variables"].as_mapping().unwrap();
    assert!(
        vars.keys()
            .filter_map(|k| k.as_str())
            .all(|k| !k.contains("SECRET") && k != "CAHIER_LOG_KEY"),
        "a secret value in the sequencer's environment: {vars:?}"
    );
    let statements = serde_yaml::to_string(
        &res["SequencerRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"],
    )
    .unwrap();
    assert!(
        statements.contains("${SiteBucket.Arn}/*/log/*"),
        "{statements}"
    );
    assert!(
        !statements.contains("${SiteBucket.Arn}/*\n"),
        "{statements}"
    );
    for other in [
        "TokenKeySecret",
        "PepperSecret",
        "HCaptchaSecretArn",
        "ses:",
    ] {
        assert!(!statements.contains(other), "the sequencer may use {other}");
    }
    let behaviors = res["Distribution"]["Properties"]["DistributionConfig"]["CacheBehaviors"]
        .as_sequence()
        .unwrap();
    let log = behaviors
        .iter()
        .find(|b| b["PathPattern"].as_str() == Some("/*/log/*"))
        .expect("a behavior for the logs");
    assert!(log.get("FunctionAssociations").is_none());
    let policy = &res["LogCachePolicy"]["Properties"]["CachePolicyConfig"];
    assert_eq!(policy["DefaultTTL"].as_u64(), Some(0));
    assert_eq!(policy["MaxTTL"].as_u64(), Some(31_536_000));
}
