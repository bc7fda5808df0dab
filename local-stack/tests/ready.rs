//! The README's first command, as a newcomer runs it: the binary starts its own emulator,
//! prints `ready`, and serves the whole round trip against the providers named by
//! `GRAPH_API_BASE` and `TWILIO_API_BASE` (here HTTP fakes): a Twilio-signed SMS reaches
//! both agents, an agent's Meta-signed swipe-reply goes out as one SMS, Twilio's signed
//! `delivered` callback has the agent's message marked read. Ctrl-C stops everything.

#![allow(clippy::unwrap_used)] // a failed unwrap is the test failing

use crate::common;

use bridge_testkit::testing::FakeProviders;
use serde_json::{Value, json};
use shared::adapters::twilio::{compute_signature, encode_form};

use common::{LocalStack, until};

const APP_SECRET: &str = "local-meta-app-secret";
const ACCOUNT_SID: &str = "AC00000000000000000000000000000000";

async fn post_form(url: &str, token: &str, params: &[(&str, &str)]) -> u16 {
    let owned: Vec<(String, String)> = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    reqwest::Client::new()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", compute_signature(token, url, &owned))
        .body(encode_form(params))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn serves_the_round_trip_and_stops_on_ctrl_c() {
    let providers = FakeProviders::start().await;
    let (graph, twilio) = (providers.graph.uri(), providers.twilio.uri());
    let stack = LocalStack::start(
        &[],
        &[
            ("GRAPH_API_BASE", &graph),
            ("TWILIO_API_BASE", &twilio),
            // The fakes accept the test credentials; the webhooks keep the local defaults.
            ("META_ACCESS_TOKEN", bridge_testkit::testing::META_ACCESS_TOKEN),
            ("TWILIO_ACCOUNT_SID", ACCOUNT_SID),
            ("TWILIO_AUTH_TOKEN", bridge_testkit::testing::TWILIO_AUTH_TOKEN),
        ],
    );
    let ready = stack.ready_line.clone();
    let base = stack.base();
    assert!(ready.contains(&base), "{ready}");

    // A customer texts: signed over PUBLIC_BASE_URL + path, as the README says.
    let inbound = [
        ("MessageSid", "SMcccccccccccccccccccccccccccccccc"),
        ("AccountSid", ACCOUNT_SID),
        ("From", "+14155550134"),
        ("To", "+14155550100"),
        ("Body", "Hello from the README"),
        ("NumMedia", "0"),
    ];
    assert_eq!(
        post_form(&format!("{base}/sms/inbound"), bridge_testkit::testing::TWILIO_AUTH_TOKEN, &inbound).await,
        200
    );
    let copies = until("both agents' copies", 30, async || {
        let sent = providers.whatsapp_sent().await;
        (sent.len() >= 2).then_some(sent)
    })
    .await;
    let mut agents: Vec<&str> = copies.iter().map(|m| m["to"].as_str().unwrap()).collect();
    agents.sort();
    assert_eq!(agents, ["14155550111", "14155550112"]);
    assert!(copies[0].to_string().contains("Hello from the README"));

    // The agent swipe-replies; the fake answered copies with wamid.fake0000, wamid.fake0001.
    let to_first = copies.iter().position(|m| m["to"] == "14155550111").unwrap();
    let copy_wamid = format!("wamid.fake{to_first:04}");
    let notification = json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "0", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "14155550100", "phone_number_id": "106540352242922" },
            "contacts": [{ "profile": { "name": "Agent" }, "wa_id": "14155550111" }],
            "messages": [{ "from": "14155550111", "id": "wamid.agent-reply", "timestamp": "1", "type": "text",
                           "text": { "body": "It's *ready*" }, "context": { "from": "14155550100", "id": copy_wamid } }],
        }}]}],
    })
    .to_string();
    let signature = shared::adapters::whatsapp::signature::compute_signature(APP_SECRET, notification.as_bytes());
    let status = reqwest::Client::new()
        .post(format!("{base}/whatsapp"))
        .header("content-type", "application/json")
        .header("x-hub-signature-256", signature)
        .body(notification)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    // The sample line also sends a first-contact acknowledgement: find the reply.
    let sms = until("the reply by SMS", 30, async || {
        providers.sms_sent().await.into_iter().find(|sms| sms["Body"] == "It's ready")
    })
    .await;
    assert_eq!(
        (sms["To"].as_str(), sms["From"].as_str(), sms["Body"].as_str()),
        ("+14155550134", "+14155550100", "It's ready")
    );

    // Twilio reports delivery at the StatusCallback the bridge gave it.
    let callback = sms["StatusCallback"].clone();
    assert!(callback.starts_with(&format!("{base}/sms/status?job=")), "{callback}");
    let report = [
        ("MessageSid", "SM00000000000000000000000000000000"),
        ("MessageStatus", "delivered"),
        ("AccountSid", ACCOUNT_SID),
        ("From", "+14155550100"),
        ("To", "+14155550134"),
    ];
    assert_eq!(post_form(&callback, bridge_testkit::testing::TWILIO_AUTH_TOKEN, &report).await, 200);
    // The line's default receipt: the agent's message marked read (Cloud API, "Mark messages
    // as read"), no ✅ message.
    let read_mark: Value = until("the agent's message marked read", 30, async || {
        providers.whatsapp_sent().await.into_iter().find(|m| m["status"] == "read")
    })
    .await;
    assert_eq!(
        read_mark,
        json!({ "messaging_product": "whatsapp", "status": "read", "message_id": "wamid.agent-reply" })
    );
    assert!(!providers.whatsapp_sent().await.iter().any(|m| m["type"] == "reaction"), "no ✅ as well");

    // Ctrl-C: the stack (and the emulator it started) stop. Its printed hints name the
    // sample's line, so the `thread` command it suggests finds the conversation.
    let printed = stack.stop_and_collect();
    assert!(printed.iter().any(|line| line.contains("bridge-ops -- thread --line demo +14155550134")), "{printed:#?}");
}
