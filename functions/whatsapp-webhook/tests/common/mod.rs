//! What the WhatsApp webhook's tests share: the deployed routers over the moto emulator, a
//! customer texting, the worker's forwarding played in place, and readers of queued jobs.

#![allow(dead_code)] // each test file uses its own part
#![allow(clippy::unwrap_used)] // a failed unwrap is the test failing

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use axum::Router;
use bridge_testkit::testing::{
    META_APP_SECRET, TestAws, attr_s, lookup, message_sid, signed_meta_notification, signed_twilio_form, test_env,
    twilio_inbound_params,
};
use http_body_util::BodyExt;
use jiff::Timestamp;
use lambda_http::Body;
use serde_json::Value;
use shared::adapters::whatsapp::signature::compute_signature;
use shared::config::{SmsWebhookConfig, WhatsAppWebhookConfig};
use shared::domain::{Job, JobPayload, WhatsAppMessage};
use shared::ports::{Claim, Deliveries, ForwardedVia};
use tower::ServiceExt;
use whatsapp_webhook::{WhatsAppWebhook, router};

pub const CUSTOMER_A: &str = "+14155550134";
pub const CUSTOMER_B: &str = "+14155550177";
pub const STRANGER: &str = "14155550999";

pub struct Harness {
    pub aws: TestAws,
    pub whatsapp: Router,
    pub sms: Router,
}

impl Harness {
    pub async fn new() -> Self {
        Self::with_env(&[]).await
    }

    /// With `extra` environment, e.g. `BRIDGE_LINES` for a line with other options.
    pub async fn with_env(extra: &[(&str, &str)]) -> Self {
        let aws = TestAws::new().await;
        let env = test_env(&aws, extra);
        let config = WhatsAppWebhookConfig::from_lookup(&lookup(&env)).unwrap();
        let whatsapp = router(Arc::new(WhatsAppWebhook::new(config, aws.store(), aws.queue())));
        let sms_config = SmsWebhookConfig::from_lookup(&lookup(&env)).unwrap();
        let sms = sms_webhook::router(Arc::new(sms_webhook::SmsWebhook::new(sms_config, aws.store(), aws.queue())));
        Self { aws, whatsapp, sms }
    }

    pub async fn call(&self, request: http::Request<Body>) -> (u16, String) {
        let response = self.whatsapp.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    pub async fn notify(&self, messages: &[Value], statuses: &[Value]) -> u16 {
        let (body, signature) = signed_meta_notification(messages, statuses);
        self.call(post(body, Some(signature))).await.0
    }

    /// A customer texts the line; returns their conversation's handle (e.g. `#K7`).
    pub async fn customer_texts(&self, customer: &str, text: &str) -> String {
        let (body, signature) =
            signed_twilio_form("/sms/inbound", &twilio_inbound_params(&message_sid(), customer, text));
        let request = http::Request::builder()
            .method("POST")
            .uri("/sms/inbound")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-twilio-signature", signature)
            .body(Body::from(body))
            .unwrap();
        assert_eq!(self.sms.clone().oneshot(request).await.unwrap().status(), 200);
        let meta = self.aws.items_with_prefix(&format!("CONV#main#{customer}")).await;
        let meta = meta.iter().find(|i| attr_s(i, "SK") == "META").unwrap();
        format!("#{}", attr_s(meta, "handle"))
    }

    pub async fn take_jobs(&self) -> Vec<Job> {
        self.aws.take_jobs().await
    }

    /// Plays the worker for forward jobs: records a copy per agent; returns agent → wamid.
    pub async fn forward(&self) -> HashMap<String, String> {
        let store = self.aws.store();
        let mut copies = HashMap::new();
        for job in self.take_jobs().await {
            let JobPayload::ForwardToAgent(forward) = &job.payload else {
                continue;
            };
            assert_eq!(
                store
                    .claim_job(&job, Timestamp::now(), Timestamp::now() + jiff::SignedDuration::from_secs(60), "test")
                    .await
                    .unwrap(),
                Claim::Claimed { attempts: 0 }
            );
            let wamid = format!("wamid.copy.{}.{}", forward.agent.as_str(), fastrand::u64(..));
            store
                .record_forwarded(
                    &job,
                    &shared::domain::Wamid::parse(&wamid).unwrap(),
                    ForwardedVia::Text,
                    Timestamp::now(),
                )
                .await
                .unwrap();
            copies.insert(forward.agent.as_str().to_owned(), wamid);
        }
        copies
    }

    pub async fn agent_item(&self, agent: &str) -> HashMap<String, AttributeValue> {
        self.aws.items_with_prefix(&format!("AGENT#main#{agent}")).await.pop().unwrap_or_default()
    }
}

pub fn get(query: &str) -> http::Request<Body> {
    http::Request::builder().uri(format!("/whatsapp?{query}")).body(Body::Empty).unwrap()
}

pub fn post(body: impl Into<Vec<u8>>, signature: Option<String>) -> http::Request<Body> {
    let mut request =
        http::Request::builder().method("POST").uri("/whatsapp").header("content-type", "application/json");
    if let Some(sig) = signature {
        request = request.header("x-hub-signature-256", sig);
    }
    request.body(Body::from(body.into())).unwrap()
}

pub fn signed(body: &str) -> http::Request<Body> {
    post(body, Some(compute_signature(META_APP_SECRET, body.as_bytes())))
}

pub fn sms_jobs(jobs: &[Job]) -> Vec<(String, String)> {
    jobs.iter()
        .filter_map(|j| match &j.payload {
            JobPayload::SendSms(s) => Some((s.conversation.customer.as_str().to_owned(), s.text.clone())),
            _ => None,
        })
        .collect()
}

pub fn notices(jobs: &[Job]) -> Vec<WhatsAppMessage> {
    jobs.iter()
        .filter_map(|j| match &j.payload {
            JobPayload::NotifyAgent(n) => Some(n.message.clone()),
            _ => None,
        })
        .collect()
}

pub fn text_of(message: &WhatsAppMessage) -> String {
    match message {
        WhatsAppMessage::Text { body, .. } | WhatsAppMessage::List { body, .. } => body.clone(),
        other => format!("{other:?}"),
    }
}

/// The test line with some options set, e.g. `("quick_reply", json!({...}))`.
pub fn lines_with_options(options: &[(&str, Value)]) -> String {
    let mut lines: Value = serde_json::from_str(&bridge_testkit::testing::lines_json()).unwrap();
    for (field, value) in options {
        lines[0][*field] = value.clone();
    }
    lines.to_string()
}

/// A reply-button press from `from` on the message `context`, as Meta reports it.
pub fn whatsapp_button(from: &str, id: &str, title: &str, context: Option<&str>) -> Value {
    let mut message = serde_json::json!({
        "from": from,
        "id": format!("wamid.in.{:016x}", fastrand::u64(..)),
        "timestamp": "1764072000",
        "type": "interactive",
        "interactive": { "type": "button_reply", "button_reply": { "id": id, "title": title } },
    });
    if let Some(id) = context {
        message["context"] = serde_json::json!({ "from": "14155550100", "id": id });
    }
    message
}

/// The conversation item of `customer` on the test line.
pub async fn conversation_item(aws: &TestAws, customer: &str) -> HashMap<String, AttributeValue> {
    let items = aws.items_with_prefix(&format!("CONV#main#{customer}")).await;
    items.into_iter().find(|i| attr_s(i, "SK") == "META").unwrap()
}

/// Notices queued for `agent`, as text.
pub fn notices_to(jobs: &[Job], agent: &str) -> Vec<String> {
    jobs.iter()
        .filter_map(|j| match &j.payload {
            JobPayload::NotifyAgent(n) if n.agent.as_str() == agent => Some(text_of(&n.message)),
            _ => None,
        })
        .collect()
}

pub fn key(customer: &str) -> shared::domain::ConversationKey {
    shared::domain::ConversationKey {
        line: shared::domain::LineId::parse("main").unwrap(),
        customer: shared::domain::E164::parse(customer).unwrap(),
    }
}
