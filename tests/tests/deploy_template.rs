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

/// SES's bounces and complaints reach the mail-events function, which may write only the
/// suppression list and read only the pepper; every mail goes through the configuration set;
/// each alarm watches a metric of a resource the stack deploys, and reaches the alarm topic.
#[test]
fn mail_events_are_wired_and_confined_and_the_alarms_watch_the_stack() {
    let text = std::fs::read_to_string(repo().join("deploy/aws/template.yaml")).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let res = &doc["Resources"];
    let yaml = |v: &serde_yaml::Value| serde_yaml::to_string(v).unwrap();

    let mailer = yaml(&res["Function"]["Properties"]["Environment"]["Variables"]["CAHIER_MAILER"]);
    assert!(
        mailer.contains("configuration_set=${MailConfigurationSet}"),
        "{mailer}"
    );
    let destination = &res["MailEventsDestination"]["Properties"];
    assert_eq!(
        yaml(&destination["EventDestination"]["MatchingEventTypes"]),
        "- bounce\n- complaint\n"
    );
    assert!(yaml(&destination["EventDestination"]["SnsDestination"]).contains("MailEventsTopic"));
    let subscription = &res["MailEventsSubscription"]["Properties"];
    assert_eq!(subscription["Protocol"].as_str(), Some("lambda"));
    assert!(yaml(&subscription["Endpoint"]).contains("MailEvents.Arn"));
    let permission = &res["MailEventsFromTopic"]["Properties"];
    assert_eq!(permission["Principal"].as_str(), Some("sns.amazonaws.com"));
    assert!(yaml(&permission["SourceArn"]).contains("MailEventsTopic"));

    let function = &res["MailEvents"]["Properties"];
    assert_eq!(function["Handler"].as_str(), Some("mail-events"));
    let vars = yaml(&function["Environment"]["Variables"]);
    assert!(vars.contains("!Ref MailEventsTopic"), "{vars}");
    assert!(
        !vars.contains("CAHIER_PEPPER:"),
        "the pepper's value in the environment: {vars}"
    );
    let statements =
        yaml(&res["MailEventsRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]);
    assert!(statements.contains("suppress#*"), "{statements}");
    for other in [
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:Query",
        "TokenKeySecret",
        "HCaptchaSecretArn",
        "LogKeySecretArn",
        "ses:",
        "s3:",
    ] {
        assert!(
            !statements.contains(other),
            "mail events may use {other}: {statements}"
        );
    }

    let alarms: Vec<(&str, &serde_yaml::Value)> = res
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::CloudWatch::Alarm"))
        .map(|(k, r)| (k.as_str().unwrap(), &r["Properties"]))
        .collect();
    let watched: Vec<String> = alarms
        .iter()
        .map(|(_, p)| {
            format!(
                "{}/{}",
                p["Namespace"].as_str().unwrap(),
                p["MetricName"].as_str().unwrap()
            )
        })
        .collect();
    for metric in [
        "AWS/Lambda/Errors",
        "AWS/Lambda/Throttles",
        "AWS/WAFV2/BlockedRequests",
        "AWS/SES/Reputation.BounceRate",
        "AWS/SES/Reputation.ComplaintRate",
        "Cahier/MailCeilingRefusals",
    ] {
        assert!(
            watched.iter().any(|w| w == metric),
            "no alarm on {metric}: {watched:?}"
        );
    }
    // The ceiling's metric comes from the function's own log lines.
    let filter = &res["MailCeilingMetric"]["Properties"];
    assert!(yaml(&filter["LogGroupName"]).contains("FunctionLogGroup"));
    assert_eq!(
        filter["FilterPattern"].as_str(),
        Some(r#"{ $.fields.decision = "mail_ceiling" }"#)
    );
    let acl_name = yaml(&res["WebAcl"]["Properties"]["Name"]);
    for (name, p) in &alarms {
        assert!(
            yaml(&p["AlarmActions"]).contains("AlarmTopic"),
            "{name} reaches nobody"
        );
        for d in p["Dimensions"]
            .as_sequence()
            .map(Vec::as_slice)
            .unwrap_or(&[])
        {
            let value = yaml(&d["Value"]);
            match d["Name"].as_str().unwrap() {
                // A function the stack deploys.
                "FunctionName" => {
                    let target = value.trim().trim_start_matches("!Ref ").trim_matches('\'');
                    assert_eq!(
                        res[target]["Type"].as_str(),
                        Some("AWS::Lambda::Function"),
                        "{name} watches {value}"
                    );
                }
                // The web ACL's own name.
                "WebACL" => assert_eq!(value, acl_name, "{name}"),
                "Rule" => assert_eq!(value.trim(), "ALL", "{name}"),
                other => panic!("{name}: an unexpected dimension {other}"),
            }
        }
    }
}
