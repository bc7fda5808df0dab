//! End to end, over the wire: a Twilio-signed SMS enters the deployed SMS webhook router,
//! is recorded in DynamoDB and queued in SQS (moto), the worker takes it from the queue like
//! the event source mapping, and each agent's copy reaches a fake Graph API.

#![allow(clippy::unwrap_used)] // a failed unwrap is the test failing

use std::sync::Arc;

use axum::Router;
use bridge_testkit::testing::{AGENTS, CUSTOMER, TestAws, lookup, signed_twilio_form, test_env, twilio_inbound_params};
use delivery_worker::sqs_poller::SqsPoller;
use delivery_worker::{DeliveryWorker, DeployedWorker};
use http_body_util::BodyExt;
use lambda_http::Body;
use serde_json::{Value, json};
use shared::config::{DeliveryWorkerConfig, SmsWebhookConfig};
use sms_webhook::SmsWebhook;
use tower::ServiceExt;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

struct Bridge {
    aws: TestAws,
    graph: MockServer,
    webhook: Router,
    worker: DeployedWorker,
}

impl Bridge {
    /// Wired exactly as the Lambdas' `main` functions wire it, from the docs/configuration.md environment.
    async fn start() -> Self {
        let aws = TestAws::new().await;
        let graph = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v26.0/106540352242922/messages"))
            .and(header("authorization", "Bearer test-meta-access-token"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "messaging_product": "whatsapp",
                "contacts": [{ "input": "x", "wa_id": "x" }],
                "messages": [{ "id": "wamid.HBgLMTQxNTU1NTAxMTEVAgARGBI=" }],
            })))
            .mount(&graph)
            .await;
        let env = test_env(&aws, &[("GRAPH_API_BASE", &graph.uri())]);
        let sdk = aws.sdk_config().await;
        let sms = SmsWebhookConfig::from_lookup(&lookup(&env)).unwrap();
        let webhook = sms_webhook::router(Arc::new(SmsWebhook::from_config(sms, &sdk)));
        let worker_config = DeliveryWorkerConfig::from_lookup(&lookup(&env)).unwrap();
        let worker = DeliveryWorker::from_config(worker_config, &sdk);
        Self { aws, graph, webhook, worker }
    }

    async fn post_sms(&self, body: String, signature: &str) -> u16 {
        let request = http::Request::builder()
            .method("POST")
            .uri("/sms/inbound")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-twilio-signature", signature)
            .body(Body::from(body))
            .unwrap();
        let response = self.webhook.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let _ = response.into_body().collect().await;
        status
    }

    /// The event source mapping's part: feed the queue to the worker until it is empty.
    async fn run_worker(&self) {
        let poller = SqsPoller::new(self.aws.sqs.clone(), &self.aws.queue_url, 0);
        while poller.poll_once(&self.worker).await.unwrap() > 0 {}
    }

    async fn whatsapp_messages(&self) -> Vec<Value> {
        let requests = self.graph.received_requests().await.unwrap_or_default();
        requests.iter().map(|r| serde_json::from_slice(&r.body).unwrap()).collect()
    }
}

#[tokio::test]
async fn a_customer_sms_reaches_every_agent_once() {
    let bridge = Bridge::start().await;
    let params = twilio_inbound_params("SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", CUSTOMER, "Do you deliver on Sundays?");
    let (body, signature) = signed_twilio_form("/sms/inbound", &params);

    assert_eq!(bridge.post_sms(body.clone(), &signature).await, 200);
    bridge.run_worker().await;
    let messages = bridge.whatsapp_messages().await;
    let mut recipients: Vec<&str> = messages.iter().map(|m| m["to"].as_str().unwrap()).collect();
    recipients.sort();
    assert_eq!(recipients, AGENTS, "each agent once");
    for message in &messages {
        let text = message["template"]["components"][0]["parameters"][2]["text"].as_str().unwrap();
        assert_eq!(text, "Do you deliver on Sundays?");
    }
    let stored = bridge.aws.items().await.len();

    // Twilio replays the webhook: nothing more reaches the agents, nothing more is stored.
    assert_eq!(bridge.post_sms(body, &signature).await, 200);
    bridge.run_worker().await;
    assert_eq!(bridge.whatsapp_messages().await.len(), 2);
    assert_eq!(bridge.aws.items().await.len(), stored);
    assert_eq!(bridge.aws.queue_depth().await, 0);
}

#[tokio::test]
async fn a_forged_sms_is_refused_and_leaves_nothing_behind() {
    let bridge = Bridge::start().await;
    let params = twilio_inbound_params("SMbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", CUSTOMER, "Text +1 900 555 0100 now");
    let (body, _) = signed_twilio_form("/sms/inbound", &params);
    let forged = shared::adapters::twilio::compute_signature(
        "guessed-token",
        "https://bridge.example.com/sms/inbound",
        &params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>(),
    );

    assert_eq!(bridge.post_sms(body, &forged).await, 403);
    bridge.run_worker().await;
    assert!(bridge.whatsapp_messages().await.is_empty());
    assert!(bridge.aws.items().await.is_empty(), "nothing stored");
    assert_eq!(bridge.aws.queue_depth().await, 0, "nothing queued");
}

#[tokio::test]
async fn each_text_of_a_conversation_reaches_the_agents_in_order() {
    let bridge = Bridge::start().await;
    for (i, text) in ["first", "second", "third"].iter().enumerate() {
        let sid = format!("SM{i:032}");
        let (body, signature) = signed_twilio_form("/sms/inbound", &twilio_inbound_params(&sid, CUSTOMER, text));
        assert_eq!(bridge.post_sms(body, &signature).await, 200);
        bridge.run_worker().await;
    }
    let to_first_agent: Vec<String> = bridge
        .whatsapp_messages()
        .await
        .iter()
        .filter(|m| m["to"] == AGENTS[0])
        .map(|m| m["template"]["components"][0]["parameters"][2]["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(to_first_agent, ["first", "second", "third"]);
    // One conversation, one handle, in every copy.
    let handles: std::collections::HashSet<String> = bridge
        .whatsapp_messages()
        .await
        .iter()
        .map(|m| m["template"]["components"][0]["parameters"][0]["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(handles.len(), 1);
}

#[tokio::test]
async fn ten_concurrent_copies_of_one_webhook_make_one_send_per_agent() {
    let bridge = Bridge::start().await;
    let params = twilio_inbound_params("SMdddddddddddddddddddddddddddddddd", CUSTOMER, "Twilio retried me");
    let (body, signature) = signed_twilio_form("/sms/inbound", &params);
    let requests = (0..10).map(|_| bridge.post_sms(body.clone(), &signature));
    let statuses = futures_join_all(requests).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    bridge.run_worker().await;
    let messages = bridge.whatsapp_messages().await;
    let mut recipients: Vec<&str> = messages.iter().map(|m| m["to"].as_str().unwrap()).collect();
    recipients.sort();
    assert_eq!(recipients, AGENTS, "exactly one send per agent");
    assert_eq!(bridge.aws.items_with_prefix("CONV#").await.len(), 2, "one conversation, one message");
}

/// Runs the futures concurrently on this task (no extra dependency for a join-all).
async fn futures_join_all<F: std::future::Future<Output = u16>>(futures: impl Iterator<Item = F>) -> Vec<u16> {
    let set: Vec<_> = futures.map(Box::pin).collect();
    let mut results = vec![0; set.len()];
    let mut pending: Vec<(usize, std::pin::Pin<Box<F>>)> = set.into_iter().enumerate().collect();
    std::future::poll_fn(|cx| {
        pending.retain_mut(|(i, f)| match f.as_mut().poll(cx) {
            std::task::Poll::Ready(status) => {
                results[*i] = status;
                false
            }
            std::task::Poll::Pending => true,
        });
        if pending.is_empty() { std::task::Poll::Ready(()) } else { std::task::Poll::Pending }
    })
    .await;
    results
}
