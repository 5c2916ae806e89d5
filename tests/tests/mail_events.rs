//! What SES says back, on the production path: the template's `MailEvents` function (the
//! package with `Handler: mail-events`, its environment read from deploy/aws/template.yaml)
//! under the Lambda runtime emulator, invoked with SNS's Lambda event carrying SES's bounce
//! and complaint notifications (the documented formats: a configuration set's event
//! publishing and an identity's feedback), writing the suppression list in DynamoDB on moto;
//! then signers through the edge (CloudFront model, the signing function under the emulator,
//! SES on moto): a bounced or complaining address is never mailed again, the others are.
//!
//! What only a real account shows: that SES publishes to the topic (the template's topic
//! policy) and that SNS invokes the function (its permission); cfn-lint checks their shape.

use cahier_function::store::{Store, SuppressionReason};
use cahier_tests::attack::{client_from, spread_address};
use cahier_tests::edge::stack::{EdgeStack, PETITION};
use cahier_tests::edge::template::ApiAuth;
use cahier_tests::edge::theme_client::{self, Signer};
use serde_json::{json, Value};

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:cahier-MailEventsTopic-1QW2E3R4T5Y6";

/// SNS's Lambda event for one message per record, as AWS delivers it to a subscribed function
/// (the `Message` is the SES notification, as a string).
fn sns_event(topic: &str, messages: &[Value]) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            json!({
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": format!("{topic}:2bcfbf39-05c3-41de-beaa-fcfcc21c8f5{i}"),
                "Sns": {
                    "Type": "Notification",
                    "MessageId": format!("95df01b4-ee98-5cb9-9903-4c221d41eb5{i}"),
                    "TopicArn": topic,
                    "Subject": null,
                    "Message": m.to_string(),
                    "Timestamp": "2026-12-04T12:00:00.000Z",
                    "SignatureVersion": "1",
                    "Signature": "EXAMPLE",
                    "SigningCertUrl": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000000000.pem",
                    "UnsubscribeUrl": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
                    "MessageAttributes": {}
                }
            })
        })
        .collect();
    json!({ "Records": records })
}

/// A configuration set's bounce event: recipients failed for good, and one still retried.
fn permanent_bounce(failed: &[&str], delayed: &str) -> Value {
    let mut recipients: Vec<Value> = failed
        .iter()
        .map(|a| {
            json!({"emailAddress": a, "action": "failed", "status": "5.1.1",
                   "diagnosticCode": "smtp; 550 5.1.1 user unknown"})
        })
        .collect();
    recipients.push(json!({"emailAddress": delayed, "action": "delayed", "status": "4.4.7"}));
    json!({
        "eventType": "Bounce",
        "bounce": {
            "bounceType": "Permanent", "bounceSubType": "General",
            "bouncedRecipients": recipients,
            "timestamp": "2026-12-04T11:59:58.000Z", "feedbackId": "0100018c-bounce"
        },
        "mail": {"timestamp": "2026-12-04T11:59:50.000Z", "source": "petitions@example.org",
                 "messageId": "0100018c-mail",
                 "tags": {"ses:configuration-set": ["cahier-MailConfigurationSet"]}}
    })
}

/// An identity's complaint notification.
fn complaint(address: &str) -> Value {
    json!({
        "notificationType": "Complaint",
        "complaint": {"complainedRecipients": [{"emailAddress": address}],
                      "complaintFeedbackType": "abuse", "timestamp": "2026-12-04T11:59:59.000Z",
                      "feedbackId": "0100018c-complaint"},
        "mail": {"source": "petitions@example.org", "destination": [address]}
    })
}

/// Signs `email` through the edge as the theme does, from a network of its own (`who`), so
/// that no address budget stands between the signers.
async fn sign(stack: &EdgeStack, who: usize, email: &str) {
    let http = client_from(spread_address(100 + who)).unwrap();
    let captcha = stack.api().captcha().await;
    let signer = Signer::new("Claude Essai", email);
    let res = theme_client::sign(&http, &stack.edge.base, PETITION, &signer, &captcha)
        .send()
        .await
        .expect("POST sign through the edge");
    assert_eq!(res.status(), 202, "{email}: {}", stack.lambda.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bounced_or_complaining_address_is_never_mailed_again() {
    let stack = EdgeStack::start(ApiAuth::AwsIam).await.unwrap();
    let (gone, slow, angry) = (
        "nobody.here@example.org",
        "slow.server@example.org",
        "Angry.Reader@Example.org",
    );
    // The attacker's trick: sign as a tagged variant of someone's address, which a strict
    // server bounces, hoping to silence the real mailbox. The bounce stays with the variant.
    let (tagged, jean) = ("jean+x@example.org", "jean@example.org");
    let event = sns_event(
        TOPIC,
        &[permanent_bounce(&[gone, tagged], slow), complaint(angry)],
    );
    let answers = stack
        .run_mail_events(
            TOPIC,
            &[
                event.clone(),
                // SNS delivers at least once: the same event again changes nothing.
                event,
                // Another topic's record (a forged or misrouted invocation) is refused whole.
                sns_event(
                    "arn:aws:sns:us-east-1:999999999999:elsewhere",
                    &[complaint(slow)],
                ),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        answers[0].as_ref().unwrap(),
        &json!({"notifications": 2, "suppressed": 3, "already": 0, "ignored": 1}),
    );
    assert_eq!(
        answers[1].as_ref().unwrap(),
        &json!({"notifications": 2, "suppressed": 0, "already": 3, "ignored": 1}),
    );
    let refused = answers[2].as_ref().unwrap_err();
    assert!(
        refused.contains("not from the site's mail-events topic"),
        "{refused}"
    );

    // The list, keyed as the sign path reads it: a bounce by the delivered address, a
    // complaint by the person (the canonical address).
    let store = stack.store().await;
    let entry = |key: String| {
        let store = &store;
        async move { store.suppression(&key).await.unwrap().map(|e| e.reason) }
    };
    let canonical = |a: &str| {
        stack
            .hasher()
            .email(&cahier_function::email::canonicalize(a).unwrap().canonical)
    };
    let delivered = |a: &str| stack.hasher().email(a);
    assert_eq!(
        entry(delivered(gone)).await,
        Some(SuppressionReason::Bounced)
    );
    assert_eq!(
        entry(delivered(tagged)).await,
        Some(SuppressionReason::Bounced)
    );
    assert_eq!(
        entry(canonical(tagged)).await,
        None,
        "the person behind a variant"
    );
    assert_eq!(
        entry(canonical(angry)).await,
        Some(SuppressionReason::Complained)
    );
    assert_eq!(entry(canonical(slow)).await, None, "a delayed recipient");

    // Through the edge: everyone gets the same answer; only deliverable addresses are mailed,
    // the real owner of the tagged variant among them.
    for (who, email) in [gone, angry, slow, jean].into_iter().enumerate() {
        sign(&stack, who, email).await;
    }
    stack.wait_mail(jean).await.unwrap();
    stack.wait_mail(slow).await.unwrap();
    let mut mailed: Vec<String> = stack
        .mails()
        .unwrap()
        .into_iter()
        .map(|(to, _)| to)
        .collect();
    mailed.sort();
    assert_eq!(mailed, [jean, slow], "{}", stack.lambda.log());
    let log = stack.lambda.log();
    assert_eq!(
        log.matches("mail_suppressed").count(),
        2,
        "each suppressed mail is logged for the organizer:\n{log}"
    );
    // The organizer sees the list in `cahier admin stats`; the four signatures were
    // recorded (pending) as for any other signer.
    let stats = stack.admin(&["stats", "--petition", PETITION]).unwrap();
    assert_eq!(
        stats["suppression_list"],
        json!({"bounced": 2, "complained": 1}),
        "{stats:#}"
    );
    assert_eq!(stats["petitions"][0]["pending"], 4, "{stats:#}");
}

/// The template's metric filter, read from it, applied to one JSON log line as CloudWatch Logs
/// applies its documented form `{ $.a.b = "value" }`.
fn filter_matches(pattern: &str, line: &str) -> bool {
    let inner = pattern
        .trim()
        .strip_prefix('{')
        .and_then(|p| p.strip_suffix('}'))
        .expect("a JSON metric filter");
    let (path, value) = inner.split_once('=').expect("a `$.path = value` filter");
    let path = path.trim().strip_prefix("$.").expect("a `$.` selector");
    let value = value.trim().trim_matches('"');
    let Ok(event) = serde_json::from_str::<Value>(line) else {
        return false;
    };
    let mut at = &event;
    for key in path.split('.') {
        at = &at[key];
    }
    at.as_str() == Some(value)
}

/// Three signers at three domains (no per-domain budget near) on a site whose mail ceiling is
/// 2: who was mailed, and how many of the function's log lines the template's metric filter
/// counts.
async fn three_signers_under_a_ceiling_of_two(hard: bool) -> (Vec<String>, usize) {
    let ceiling = json!({"mail_site": {"limit": 2, "window_secs": 86400}, "mail_site_hard": hard});
    let stack = EdgeStack::start_with(ApiAuth::AwsIam, Some(ceiling))
        .await
        .unwrap();
    let signers = ["ana@one.example", "ben@two.example", "cyd@three.example"];
    for (who, email) in signers.into_iter().enumerate() {
        sign(&stack, who, email).await;
    }
    let text = std::fs::read_to_string(cahier_tests::repo_root().join("deploy/aws/template.yaml"))
        .unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let pattern = doc["Resources"]["MailCeilingMetric"]["Properties"]["FilterPattern"]
        .as_str()
        .expect("the template's mail ceiling metric filter")
        .to_string();
    // The decision is logged before the mail would go: once it is there, and the mails
    // before it have arrived, nothing more is on its way but the third one's, if sent.
    let hits = || {
        let log = stack.lambda.log();
        log.lines().filter(|l| filter_matches(&pattern, l)).count()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while hits() == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    stack.wait_mail(signers[1]).await.unwrap();
    if !hard {
        stack.wait_mail(signers[2]).await.unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let mailed: Vec<String> = stack
        .mails()
        .unwrap()
        .into_iter()
        .map(|(to, _)| to)
        .collect();
    let hits = hits();
    (mailed, hits)
}

/// By default the ceiling is an alarm: whoever drains it cannot silence the honest signers.
/// Made hard, it refuses the mail above it. Either way the alarm's metric counts that mail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_site_wide_mail_ceiling_raises_the_alarm_and_stops_mail_only_when_hard() {
    let (mailed, hits) = three_signers_under_a_ceiling_of_two(false).await;
    assert_eq!(mailed.len(), 3, "{mailed:?}");
    assert_eq!(
        hits, 1,
        "the alarm's metric counts the one mail over the ceiling"
    );
    let (mailed, hits) = three_signers_under_a_ceiling_of_two(true).await;
    assert_eq!(mailed, ["ana@one.example", "ben@two.example"], "{mailed:?}");
    assert_eq!(hits, 1, "the alarm's metric counts the one refused mail");
}
