//! The whole loop over the wire (docs/using.md): a customer's SMS reaches the agents, an
//! agent swipe-replies in WhatsApp, the customer gets exactly one SMS from the line's number,
//! and the delivery result comes back to the agent as a reaction on their message. DynamoDB
//! and SQS on moto; Twilio and the Graph API as HTTP fakes; every request really signed.

#![allow(clippy::unwrap_used)] // a failed unwrap is the test failing

use std::sync::Arc;

use axum::Router;
use bridge_testkit::testing::{
    AGENTS, CUSTOMER, FakeProviders, LINE_SMS_NUMBER, PUBLIC_BASE_URL, TestAws, attr_s, lookup, message_sid,
    signed_meta_notification, signed_status_callback, signed_twilio_form, twilio_inbound_params, whatsapp_text,
};
use delivery_worker::sqs_poller::SqsPoller;
use delivery_worker::{DeliveryWorker, DeployedWorker};
use http_body_util::BodyExt;
use lambda_http::Body;
use serde_json::Value;
use shared::config::{DeliveryWorkerConfig, SmsWebhookConfig, WhatsAppWebhookConfig};
use sms_webhook::SmsWebhook;
use tower::ServiceExt;
use whatsapp_webhook::WhatsAppWebhook;

struct Bridge {
    aws: TestAws,
    providers: FakeProviders,
    webhooks: Router,
    worker: DeployedWorker,
}

impl Bridge {
    /// Wired as the Lambdas' `main` functions wire it, from the docs/configuration.md environment.
    async fn start() -> Self {
        Self::with_lines(None).await
    }

    /// The same, with another `BRIDGE_LINES` document.
    async fn with_lines(lines: Option<String>) -> Self {
        let aws = TestAws::new().await;
        let providers = FakeProviders::start().await;
        let mut env = providers.test_env(&aws);
        if let Some(lines) = lines {
            env.insert("BRIDGE_LINES".into(), lines);
        }
        let sdk = aws.sdk_config().await;
        let sms = SmsWebhook::from_config(SmsWebhookConfig::from_lookup(&lookup(&env)).unwrap(), &sdk);
        let whatsapp = WhatsAppWebhook::from_config(WhatsAppWebhookConfig::from_lookup(&lookup(&env)).unwrap(), &sdk);
        let webhooks = sms_webhook::router(Arc::new(sms)).merge(whatsapp_webhook::router(Arc::new(whatsapp)));
        let worker = DeliveryWorker::from_config(DeliveryWorkerConfig::from_lookup(&lookup(&env)).unwrap(), &sdk);
        Self { aws, providers, webhooks, worker }
    }

    async fn post(&self, path_and_query: &str, content_type: &str, signature: (&str, &str), body: String) -> u16 {
        let request = http::Request::builder()
            .method("POST")
            .uri(path_and_query)
            .header("content-type", content_type)
            .header(signature.0, signature.1)
            .body(Body::from(body))
            .unwrap();
        let response = self.webhooks.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let _ = response.into_body().collect().await;
        status
    }

    async fn customer_texts(&self, text: &str) {
        let (body, signature) =
            signed_twilio_form("/sms/inbound", &twilio_inbound_params(&message_sid(), CUSTOMER, text));
        let status = self
            .post("/sms/inbound", "application/x-www-form-urlencoded", ("x-twilio-signature", &signature), body)
            .await;
        assert_eq!(status, 200);
    }

    async fn agent_writes(&self, message: Value) {
        let (body, signature) = signed_meta_notification(&[message], &[]);
        assert_eq!(self.post("/whatsapp", "application/json", ("x-hub-signature-256", &signature), body).await, 200);
    }

    /// Twilio reports on an SMS the bridge sent, at the StatusCallback the bridge gave it.
    async fn twilio_reports(&self, sms: &std::collections::HashMap<String, String>, status: &str, code: Option<&str>) {
        let callback = sms["StatusCallback"].strip_prefix(PUBLIC_BASE_URL).unwrap().to_owned();
        let (body, signature) =
            signed_status_callback(&callback, "SM44444444444444444444444444444444", status, code, &sms["To"]);
        let status =
            self.post(&callback, "application/x-www-form-urlencoded", ("x-twilio-signature", &signature), body).await;
        assert_eq!(status, 200);
    }

    /// The event source mapping's part: feed the queue to the worker until it is empty.
    async fn run_worker(&self) {
        let poller = SqsPoller::new(self.aws.sqs.clone(), &self.aws.queue_url, 0);
        while poller.poll_once(&self.worker).await.unwrap() > 0 {}
    }

    /// The wamid of the copy an agent received (what their phone would swipe-reply to).
    async fn copy_for(&self, agent: &str) -> String {
        let copies = self.aws.items_with_prefix("WAMID#").await;
        let copy = copies.iter().find(|c| attr_s(c, "agent") == agent).unwrap();
        attr_s(copy, "PK").trim_start_matches("WAMID#").to_owned()
    }
}

#[tokio::test]
async fn a_swipe_reply_reaches_the_customer_once_and_the_agent_sees_it_delivered() {
    let bridge = Bridge::start().await;
    bridge.customer_texts("Do you have the blue one in M?").await;
    bridge.run_worker().await;
    assert_eq!(bridge.providers.whatsapp_sent().await.len(), 2, "both agents got the text");

    let reply =
        whatsapp_text(AGENTS[0], "Yes, *one* left, want us to hold it?", Some(&bridge.copy_for(AGENTS[0]).await));
    let agent_wamid = reply["id"].as_str().unwrap().to_owned();
    bridge.agent_writes(reply).await;
    bridge.run_worker().await;

    let sms = bridge.providers.sms_sent().await;
    assert_eq!(sms.len(), 1, "exactly one SMS");
    assert_eq!(sms[0]["To"], CUSTOMER);
    assert_eq!(sms[0]["From"], LINE_SMS_NUMBER);
    assert_eq!(sms[0]["Body"], "Yes, one left, want us to hold it?");
    assert!(sms[0]["StatusCallback"].starts_with(&format!("{PUBLIC_BASE_URL}/sms/status?job=")));

    let before = bridge.providers.whatsapp_sent().await.len();
    bridge.twilio_reports(&sms[0], "sent", None).await;
    bridge.twilio_reports(&sms[0], "delivered", None).await;
    bridge.run_worker().await;
    let to_agent: Vec<Value> = bridge.providers.whatsapp_sent().await.into_iter().skip(before).collect();
    assert_eq!(to_agent.len(), 1);
    assert_eq!(to_agent[0]["to"], AGENTS[0]);
    assert_eq!(to_agent[0]["type"], "reaction");
    assert_eq!(to_agent[0]["reaction"]["emoji"], "✅");
    assert_eq!(to_agent[0]["reaction"]["message_id"], agent_wamid.as_str());

    // A late or replayed callback changes nothing and sends nothing.
    bridge.twilio_reports(&sms[0], "sent", None).await;
    bridge.twilio_reports(&sms[0], "delivered", None).await;
    bridge.run_worker().await;
    assert_eq!(bridge.providers.whatsapp_sent().await.len(), before + 1);
    assert_eq!(bridge.providers.sms_sent().await.len(), 1);
}

#[tokio::test]
async fn an_undelivered_reply_shows_the_agent_a_cross_and_why() {
    let bridge = Bridge::start().await;
    bridge.customer_texts("Call me back").await;
    bridge.run_worker().await;
    let reply = whatsapp_text(AGENTS[1], "Calling you in 5", Some(&bridge.copy_for(AGENTS[1]).await));
    let agent_wamid = reply["id"].as_str().unwrap().to_owned();
    bridge.agent_writes(reply).await;
    bridge.run_worker().await;

    let sms = bridge.providers.sms_sent().await;
    let before = bridge.providers.whatsapp_sent().await.len();
    bridge.twilio_reports(&sms[0], "undelivered", Some("30006")).await;
    bridge.run_worker().await;
    let to_agent: Vec<Value> = bridge.providers.whatsapp_sent().await.into_iter().skip(before).collect();
    assert_eq!(to_agent.len(), 2);
    assert_eq!(to_agent[0]["reaction"]["emoji"], "❌");
    assert_eq!(to_agent[0]["reaction"]["message_id"], agent_wamid.as_str());
    assert_eq!(to_agent[1]["text"]["body"], "not delivered: landline or unreachable carrier (30006)");
    assert_eq!(to_agent[1]["context"]["message_id"], agent_wamid.as_str());
    assert!(to_agent.iter().all(|m| m["to"] == AGENTS[1]));

    // The thread holds both directions, in order, with each leg's status.
    let conversation = shared::domain::ConversationKey {
        line: shared::domain::LineId::parse("main").unwrap(),
        customer: shared::domain::E164::parse(CUSTOMER).unwrap(),
    };
    use shared::ports::Conversations;
    let thread = bridge.aws.store().thread(&conversation).await.unwrap();
    assert_eq!(thread.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(), ["Call me back", "Calling you in 5"]);
    assert_eq!(thread[0].legs.len(), 2);
    assert!(thread[0].legs.iter().all(|l| l.state == shared::domain::LegState::Sent && l.provider_id.is_some()));
    assert_eq!(thread[1].legs[0].status, Some(shared::domain::DeliveryStatus::Undelivered));
}

#[tokio::test]
async fn on_a_line_with_read_marks_a_delivered_reply_is_marked_read_and_no_message_is_sent() {
    // The line's default receipts (no `delivery_receipts`): the reaction option removed.
    let mut lines: Value = serde_json::from_str(&bridge_testkit::testing::lines_json()).unwrap();
    lines[0].as_object_mut().unwrap().remove("delivery_receipts");
    let bridge = Bridge::with_lines(Some(lines.to_string())).await;
    bridge.customer_texts("Do you have the blue one in M?").await;
    bridge.run_worker().await;
    let reply = whatsapp_text(AGENTS[0], "Yes, one left", Some(&bridge.copy_for(AGENTS[0]).await));
    let agent_wamid = reply["id"].as_str().unwrap().to_owned();
    bridge.agent_writes(reply).await;
    bridge.run_worker().await;
    let sms = bridge.providers.sms_sent().await;

    let before = bridge.providers.whatsapp_sent().await.len();
    bridge.twilio_reports(&sms[0], "delivered", None).await;
    bridge.run_worker().await;

    let to_agent: Vec<Value> = bridge.providers.whatsapp_sent().await.into_iter().skip(before).collect();
    assert_eq!(
        to_agent,
        [serde_json::json!({ "messaging_product": "whatsapp", "status": "read", "message_id": agent_wamid })]
    );
    // The read mark's job is done: it isn't tried again.
    bridge.run_worker().await;
    assert_eq!(bridge.providers.whatsapp_sent().await.len(), before + 1);
}
