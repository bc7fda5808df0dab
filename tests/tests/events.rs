//! Every sample event in `events/` (the ones docs/deploying.md feeds to `sam local invoke`) goes
//! through its function's deployed handler here, exactly as Lambda would deliver it, with
//! the environment of `events/env.json`.

#![allow(clippy::unwrap_used)] // a failed unwrap is the test failing

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_lambda_events::sqs::SqsEvent;
use bridge_testkit::testing::{FakeProviders, TestAws, lookup, test_env};
use delivery_worker::DeliveryWorker;
use http_body_util::BodyExt;
use jiff::Timestamp;
use serde_json::Value;
use shared::config::{DeliveryWorkerConfig, SmsWebhookConfig, WhatsAppWebhookConfig};
use shared::domain::{ConversationKey, Handle, Job, JobPayload, MessageId};
use shared::ports::{InboundLog, NewInboundMessage};
use sms_webhook::SmsWebhook;
use tower::ServiceExt;
use whatsapp_webhook::WhatsAppWebhook;

fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("events")
}

fn events_of(function: &str) -> Vec<(String, String)> {
    let mut events: Vec<(String, String)> = std::fs::read_dir(events_dir().join(function))
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            (path.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    events.sort();
    events
}

/// `events/env.json`: the variables `sam local invoke --env-vars` gives each function.
fn sam_env(function: &str) -> Vec<(String, String)> {
    let env: Value = serde_json::from_str(&std::fs::read_to_string(events_dir().join("env.json")).unwrap()).unwrap();
    env[function].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned())).collect()
}

fn with_sam_env(aws: &TestAws, function: &str) -> HashMap<String, String> {
    let extra = sam_env(function);
    let borrowed: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    test_env(aws, &borrowed)
}

async fn status_of(router: &axum::Router, event: &str) -> (u16, String) {
    let request = lambda_http::request::from_str(event).unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[test]
fn every_event_file_belongs_to_a_function() {
    let mut dirs: Vec<String> = std::fs::read_dir(events_dir())
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    dirs.sort();
    assert_eq!(dirs, ["delivery-worker", "sms-webhook", "whatsapp-webhook"]);
}

#[tokio::test]
async fn sms_webhook_events() {
    let aws = TestAws::new().await;
    let env = with_sam_env(&aws, "SmsWebhookFunction");
    let config = SmsWebhookConfig::from_lookup(&lookup(&env)).unwrap();
    let router = sms_webhook::router(Arc::new(SmsWebhook::new(config, aws.store(), aws.queue())));
    for (name, event) in events_of("sms-webhook") {
        let expected = if name.contains("forged") { 403 } else { 200 };
        let (status, body) = status_of(&router, &event).await;
        assert_eq!(status, expected, "{name}: {body}");
    }
    assert_eq!(aws.items_with_prefix("SEEN#").await.len(), 1, "the genuine event was recorded once");
    assert_eq!(aws.queue_depth().await, 2);
}

#[tokio::test]
async fn whatsapp_webhook_events() {
    let aws = TestAws::new().await;
    let env = with_sam_env(&aws, "WhatsAppWebhookFunction");
    let config = WhatsAppWebhookConfig::from_lookup(&lookup(&env)).unwrap();
    let router = whatsapp_webhook::router(Arc::new(WhatsAppWebhook::new(config, aws.store(), aws.queue())));
    for (name, event) in events_of("whatsapp-webhook") {
        let (status, body) = status_of(&router, &event).await;
        assert_eq!(status, 200, "{name}: {body}");
        if name.contains("verify") {
            assert_eq!(body, "1158201444");
        }
    }
}

#[tokio::test]
async fn delivery_worker_events() {
    let aws = TestAws::new().await;
    let providers = FakeProviders::start().await;
    let env = providers.test_env(&aws);
    let sdk = aws.sdk_config().await;
    let config = DeliveryWorkerConfig::from_lookup(&lookup(&env)).unwrap();
    let worker = DeliveryWorker::from_config(config, &sdk);

    for (name, event) in events_of("delivery-worker") {
        let event: SqsEvent = serde_json::from_str(&event).unwrap();
        // The message the jobs belong to, as the SMS webhook would have recorded it.
        for record in &event.records {
            let job = Job::decode(record.body.as_deref().unwrap()).unwrap();
            let JobPayload::ForwardToAgent(forward) = &job.payload else { panic!("{name}: a forward job") };
            let message = NewInboundMessage {
                conversation: ConversationKey { ..forward.conversation.clone() },
                message_id: MessageId::parse(forward.message_id.as_str()).unwrap(),
                provider: "twilio",
                provider_message_id: format!("SM-{name}"),
                body: forward.text.clone(),
                attachments: vec![],
                received_at: Timestamp::now(),
                keyword: None,
                jobs: vec![job.clone()],
                claim_assumed: Default::default(),
            };
            aws.store().start_conversation(&message, &Handle::parse("K7").unwrap()).await.unwrap();
        }
        let records = event.records.len();
        let response = worker.handle_batch(event).await;
        assert!(response.batch_item_failures.is_empty(), "{name}");
        assert_eq!(providers.whatsapp_sent().await.len(), records, "{name}");
    }
}
