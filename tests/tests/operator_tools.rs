//! Operator tools (issue 4): after a fix, the dead-letter queue is redriven and every job
//! goes out once; the thread says why a message failed (class and code).

#![allow(clippy::unwrap_used)] // a failed unwrap is the test failing

use std::sync::Arc;

use bridge_testkit::testing::{
    AGENTS, CUSTOMER, FakeProviders, TestAws, graph_error, lookup, message_sid, signed_twilio_form,
    twilio_inbound_params,
};
use delivery_worker::DeliveryWorker;
use delivery_worker::sqs_poller::SqsPoller;
use http_body_util::BodyExt;
use lambda_http::Body;
use shared::config::{DeliveryWorkerConfig, SmsWebhookConfig};
use shared::domain::{ConversationKey, E164, LineId};
use sms_webhook::SmsWebhook;
use tower::ServiceExt;
use wiremock::Mock;
use wiremock::matchers::{body_partial_json, method};

#[tokio::test]
async fn a_revoked_token_parks_jobs_and_a_redrive_after_the_fix_delivers_each_once() {
    let aws = TestAws::new().await;
    let providers = FakeProviders::start().await;
    let env = providers.test_env(&aws);
    let sdk = aws.sdk_config().await;
    let webhook = sms_webhook::router(Arc::new(SmsWebhook::from_config(
        SmsWebhookConfig::from_lookup(&lookup(&env)).unwrap(),
        &sdk,
    )));
    let worker = DeliveryWorker::from_config(DeliveryWorkerConfig::from_lookup(&lookup(&env)).unwrap(), &sdk);
    let poller = SqsPoller::new(aws.sqs.clone(), &aws.queue_url, 0);

    // The access token is revoked: every send escalates.
    let revoked =
        Mock::given(method("POST")).respond_with(graph_error(401, 190)).mount_as_scoped(&providers.graph).await;
    // One agent also can't receive WhatsApp messages at all: a permanent failure.
    Mock::given(method("POST"))
        .and(body_partial_json(serde_json::json!({ "to": AGENTS[1] })))
        .respond_with(graph_error(400, 131026))
        .with_priority(1)
        .mount(&providers.graph)
        .await;
    for text in ["first", "second"] {
        let (body, signature) =
            signed_twilio_form("/sms/inbound", &twilio_inbound_params(&message_sid(), CUSTOMER, text));
        let request = http::Request::builder()
            .method("POST")
            .uri("/sms/inbound")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-twilio-signature", signature)
            .body(Body::from(body))
            .unwrap();
        let response = webhook.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), 200);
        let _ = response.into_body().collect().await;
    }
    while poller.poll_once(&worker).await.unwrap() > 0 {}
    assert_eq!(aws.dlq_depth().await, 2, "the first agent's two copies wait for an operator");

    let conversation =
        ConversationKey { line: LineId::parse("main").unwrap(), customer: E164::parse(CUSTOMER).unwrap() };
    let report = bridge_ops::thread_report(&aws.store(), &conversation).await.unwrap();
    println!("{report}");
    assert!(report.contains("[escalate 190:"), "{report}");
    assert!(report.contains("failed [permanent 131026:"), "{report}");

    // The operator rotates the token and redrives.
    drop(revoked);
    let sent_before_redrive = providers.whatsapp_sent().await.len();
    let moved = bridge_ops::redrive(&aws.sqs, &aws.dlq_url, &aws.queue_url).await.unwrap();
    assert_eq!(moved, 2);
    while poller.poll_once(&worker).await.unwrap() > 0 {}
    // Redriving again (nothing left) and redelivering changes nothing.
    assert_eq!(bridge_ops::redrive(&aws.sqs, &aws.dlq_url, &aws.queue_url).await.unwrap(), 0);

    let sent = providers.whatsapp_sent().await;
    let after_redrive: Vec<&str> = sent[sent_before_redrive..]
        .iter()
        .filter(|m| m["to"] == AGENTS[0])
        .filter_map(|m| m["template"]["components"][0]["parameters"][2]["text"].as_str())
        .collect();
    // Both came back together, so they went out as one coalesced message, in order.
    assert_eq!(after_redrive, ["first second"], "each once, in order");
    let report = bridge_ops::thread_report(&aws.store(), &conversation).await.unwrap();
    assert_eq!(report.matches(&format!("forward_to_agent → {}: sent", AGENTS[0])).count(), 2, "{report}");
    assert_eq!(aws.dlq_depth().await, 0);
}
