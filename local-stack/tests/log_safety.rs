//! What the functions print, over a whole run (issue 7): the local stack runs the deployed
//! handler code with its logs in CloudWatch's JSON form and its metrics as EMF lines, so a
//! run that touches every path (first contact, replies, retries, a landline's failure, a closed
//! window, media, STOP, a stranger, commands, an agent known by user id only, the AWS SMS
//! line's texts, events and opt-out, a forged and a
//! replayed webhook) shows what CloudWatch would receive. No line may hold a phone number
//! unmasked or a secret, and every metric line must be valid Embedded Metric Format naming a
//! metric the bridge declares.

#![allow(clippy::unwrap_used)] // a failed unwrap is the test failing

use crate::common;

use std::collections::BTreeSet;

use base64::Engine;
use serde_json::{Value, json};
use shared::adapters::twilio::{compute_signature, encode_form};

use common::{LocalStack, Page, until};

const CUSTOMER: &str = "+14155550134";
const LANDLINE: &str = "+14155550177";
const NEWCOMER: &str = "+14155550188";
const ANA: &str = "14155550111";
const BEN: &str = "14155550112";
const STRANGER: &str = "14155550199";
/// The sample's AWS End User Messaging SMS line and its first agent.
const AWS_NUMBER: &str = "+14155550200";
const CHLOE: &str = "14155550113";
/// The local stack's own secrets (settings.rs).
const SECRETS: [&str; 4] =
    ["local-twilio-auth-token", "local-meta-app-secret", "local-meta-access-token", "local-meta-verify-token"];

#[tokio::test]
async fn a_full_run_logs_no_phone_number_or_secret_and_only_valid_emf() {
    let stack = LocalStack::start(
        &[
            "--fail-rate",
            "0.2",
            "--fail-seed",
            "3",
            "--fail-number",
            LANDLINE,
            "--closed-window",
            BEN,
            "--aws-fail-rate",
            "0.02",
        ],
        &[("RETRY_BASE_SECONDS", "1"), ("RETRY_MAX_SECONDS", "2")],
    );
    let page = Page::new(&stack);
    run_every_path(&stack, &page).await;
    let printed = stack.stop_and_collect();

    let json_lines: Vec<(usize, Value)> = printed
        .iter()
        .enumerate()
        .filter_map(|(n, line)| serde_json::from_str::<Value>(line).ok().filter(Value::is_object).map(|v| (n, v)))
        .collect();
    let (metrics, logs): (Vec<_>, Vec<_>) = json_lines.iter().partition(|(_, v)| v.get("_aws").is_some());
    assert!(logs.len() > 50 && metrics.len() > 20, "{} log lines, {} metric lines", logs.len(), metrics.len());

    // No phone number, in any form a log could hold it (digits, national forms, inside a
    // wamid's base64), no wamid unhashed, and no secret.
    let numbers = [CUSTOMER, LANDLINE, NEWCOMER, "+14155550100", AWS_NUMBER, ANA, BEN, CHLOE, STRANGER];
    let forbidden: Vec<String> = numbers
        .iter()
        .flat_map(|n| bridge_testkit::testing::logs::number_forms(n))
        .chain(SECRETS.iter().map(|s| s.to_string()))
        .chain(["wamid.".to_owned()])
        .collect();
    for (n, line) in json_lines.iter().map(|(n, _)| (n, &printed[*n])) {
        for needle in &forbidden {
            assert!(!line.contains(needle.as_str()), "line {n} holds {needle:?}: {line}");
        }
    }

    // Every metric line is EMF naming a declared metric with its declared dimension.
    let mut seen = BTreeSet::new();
    for (n, line) in &metrics {
        let name = check_emf(line).unwrap_or_else(|e| panic!("line {n} is not valid EMF ({e}): {line}"));
        seen.insert(name);
    }
    // WhatsAppMessagesBilled: the simulator's status reports carry Meta's pricing block.
    for expected in [
        "MessagesRelayed",
        "RelayLatencyMs",
        "DeliveryFailed",
        "DuplicateWebhook",
        "SignatureRejected",
        "WhatsAppMessagesBilled",
    ] {
        assert!(seen.contains(expected), "{expected} was never emitted; seen {seen:?}");
    }

    // Outcomes say which line and conversation they are about (the Lambda runtime adds the
    // request id to each event's spans in AWS).
    let sent_with_handle = logs
        .iter()
        .filter(|(_, l)| {
            l["fields"]["outcome"] == "sent" && l["span"]["line"] == "demo" && l["span"]["handle"].is_string()
        })
        .count();
    assert!(sent_with_handle >= 5, "{sent_with_handle} sends name their line and handle");
    for outcome in ["relayed", "accepted"] {
        assert!(
            logs.iter().any(|(_, l)| l["fields"]["outcome"] == outcome && l["fields"]["handle"].is_string()),
            "no {outcome} event names its handle"
        );
    }

    // Each log line is one JSON event with a level and a message, as CloudWatch gets it.
    for (n, log) in &logs {
        assert!(log["level"].is_string() && log["fields"]["message"].is_string(), "line {n}: {log}");
    }
}

/// Checks one EMF line against the specification (CloudWatch "Embedded metric format
/// specification") and the bridge's declared metrics; returns the metric's name.
fn check_emf(line: &Value) -> Result<String, String> {
    let aws = line["_aws"].as_object().ok_or("_aws is not an object")?;
    aws.get("Timestamp").and_then(Value::as_u64).ok_or("Timestamp is not epoch milliseconds")?;
    let directives = aws.get("CloudWatchMetrics").and_then(Value::as_array).ok_or("no CloudWatchMetrics array")?;
    let [directive] = directives.as_slice() else { return Err("one directive expected".into()) };
    if directive["Namespace"] != shared::telemetry::NAMESPACE {
        return Err(format!("namespace {}", directive["Namespace"]));
    }
    let dimension_sets = directive["Dimensions"].as_array().ok_or("Dimensions is not an array")?;
    let mut dimensions = Vec::new();
    for set in dimension_sets {
        for key in set.as_array().ok_or("a dimension set is not an array")? {
            let key = key.as_str().ok_or("a dimension is not a string")?;
            line[key].as_str().ok_or(format!("dimension {key} has no string value at the top level"))?;
            dimensions.push(key.to_owned());
        }
    }
    let metrics = directive["Metrics"].as_array().ok_or("Metrics is not an array")?;
    let [metric] = metrics.as_slice() else { return Err("one metric per line expected".into()) };
    let name = metric["Name"].as_str().ok_or("a metric without Name")?;
    const UNITS: [&str; 3] = ["Count", "Milliseconds", "Seconds"];
    if !metric["Unit"].as_str().is_some_and(|u| UNITS.contains(&u)) {
        return Err(format!("unit {}", metric["Unit"]));
    }
    if !line[name].is_number() {
        return Err(format!("{name} has no numeric value at the top level"));
    }
    let declared =
        shared::telemetry::METRICS.iter().find(|(m, _)| *m == name).ok_or(format!("{name} is not declared"))?;
    if dimensions != [declared.1] {
        return Err(format!("{name} has dimensions {dimensions:?}, declared [{}]", declared.1));
    }
    Ok(name.to_owned())
}

async fn run_every_path(stack: &LocalStack, page: &Page) {
    // First contact, a swipe-reply, a retry or two (--fail-rate), the reply marked read.
    page.customer_texts(CUSTOMER, "Is my bike ready?").await;
    let (copy, _) = page.delivered_copy(ANA, "Is my bike ready?").await;
    page.agent_sends(ANA, "Yes, ready at 9!", copy["id"].as_str()).await;
    page.sms_to(CUSTOMER, "Yes, ready at 9!").await;
    // Ben's window never opens: 131047, then the template.
    let handle = page.handle_of(CUSTOMER).await;
    page.agent_sends(BEN, &format!("{handle} I'll check"), None).await;
    page.customer_texts(CUSTOMER, "Thanks").await;
    page.delivered_copy(BEN, "Thanks").await;
    // A landline: undelivered 30006, the agent told.
    page.customer_texts(LANDLINE, "Call me back?").await;
    let (copy, _) = page.delivered_copy(ANA, "Call me back?").await;
    page.agent_sends(ANA, "Calling you now", copy["id"].as_str()).await;
    page.sms_to(LANDLINE, "Calling you now").await;
    // Media both ways.
    let photo = base64::engine::general_purpose::STANDARD.encode(b"\xff\xd8\xff\xe0 a photo");
    let (status, _) = page
        .post("/_sim/customer/send", json!({ "from": CUSTOMER, "text": "Look", "media": [{ "content_type": "image/jpeg", "data_base64": photo }] }))
        .await;
    assert_eq!(status, 200);
    let (status, _) = page
        .post("/_sim/agent/media", json!({ "from": ANA, "caption": format!("{handle} Here"), "content_type": "image/jpeg", "data_base64": photo }))
        .await;
    assert_eq!(status, 200);
    page.sms_to(CUSTOMER, "Here").await;
    // Commands, a button, a stranger, /to.
    page.agent_sends(ANA, "/list", None).await;
    page.agent_sends(ANA, "/help", None).await;
    page.agent_sends(ANA, &format!("/to {NEWCOMER} Your table is ready"), None).await;
    page.sms_to(NEWCOMER, "Your table is ready").await;
    let (status, _) = page
        .post("/_sim/agent/button", json!({ "from": ANA, "context": copy["id"], "id": format!("act:claim:{}", &handle[1..]), "title": "Claim" }))
        .await;
    assert_eq!(status, 200);
    page.agent_sends(STRANGER, "hello?", None).await;
    // Ana hides her number (a WhatsApp username): recognised by her user id alone.
    page.hide_number(ANA, true).await;
    page.agent_sends(ANA, &format!("{handle} Ready when you are"), None).await;
    page.sms_to(CUSTOMER, "Ready when you are").await;
    page.hide_number(ANA, false).await;
    // The AWS SMS line: a text by SNS, a reply by SendTextMessage and its delivery events,
    // STOP answered by AWS, and the next reply refused by AWS (the customer opted out).
    let aws_text = async |text: &str| {
        let (status, answer) =
            page.post("/_sim/customer/send", json!({ "from": CUSTOMER, "line": "aws-demo", "text": text })).await;
        assert_eq!(status, 200, "{answer}");
        answer
    };
    assert_eq!(aws_text("Is my laptop fixed?").await["webhook_status"], 200);
    let (aws_copy, _) = page.delivered_copy(CHLOE, "Is my laptop fixed?").await;
    page.agent_sends(CHLOE, "Yes, at 5", aws_copy["id"].as_str()).await;
    page.sms_to(CUSTOMER, "Yes, at 5").await;
    assert_eq!(aws_text("STOP").await["answered_by"], "aws");
    page.agent_sends(CHLOE, "Still there?", aws_copy["id"].as_str()).await;
    until("the AWS line's opted-out notice", 60, async || {
        (!page.to_agent(CHLOE, "opted out").await.is_empty()).then_some(())
    })
    .await;
    // STOP, then a reply the bridge refuses.
    page.customer_texts(CUSTOMER, "STOP").await;
    page.agent_sends(ANA, &format!("{handle} one more thing"), None).await;
    until("the refusal notice", 30, async || {
        let notices = page.to_agent(ANA, "Not sent").await;
        (!notices.is_empty()).then_some(())
    })
    .await;
    // A forged webhook of each kind, and a replayed inbound SMS.
    let http = reqwest::Client::new();
    let base = stack.base();
    let forged = http
        .post(format!("{base}/sms/inbound"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", "bm90IGEgc2lnbmF0dXJl")
        .body(format!("From=%2B1{}&To=%2B14155550100&Body=hi&MessageSid=SM1", &CUSTOMER[2..]))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let forged = http
        .post(format!("{base}/whatsapp"))
        .header("content-type", "application/json")
        .header("x-hub-signature-256", "sha256=00")
        .body(r#"{"object":"whatsapp_business_account","entry":[]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let params = [
        ("MessageSid", "SMffffffffffffffffffffffffffffffff"),
        ("AccountSid", "AC00000000000000000000000000000000"),
        ("From", CUSTOMER),
        ("To", "+14155550100"),
        ("Body", "sent twice"),
        ("NumMedia", "0"),
    ];
    let owned: Vec<(String, String)> = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let url = format!("{base}/sms/inbound");
    for _ in 0..2 {
        let answer = http
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-twilio-signature", compute_signature("local-twilio-auth-token", &url, &owned))
            .body(encode_form(&params))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
    }
    page.delivered_copy(ANA, "sent twice").await;
}
