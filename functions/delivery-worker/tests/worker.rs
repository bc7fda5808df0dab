//! The delivery worker over the wire: jobs from SQS on moto, state in DynamoDB on moto, and
//! a wiremock fake of the Graph API.

#![allow(clippy::unwrap_used)] // a failed unwrap is the test failing

use std::sync::atomic::{AtomicUsize, Ordering};

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use aws_sdk_dynamodb::types::AttributeValue;
use delivery_worker::DeliveryWorker;
use delivery_worker::sqs_poller::SqsPoller;
use jiff::Timestamp;
use serde_json::{Value, json};
use shared::adapters::dynamodb::DynamoStore;
use shared::adapters::whatsapp::GraphClient;
use shared::app::receive_sms::{Received, receive_sms};
use shared::domain::{E164, InboundSms, Job, LineId, ProviderMessageId, WaId};
use shared::ports::DeliveryQueue;
use shared::testing::{AGENTS, CUSTOMER, LINE_SMS_NUMBER, META_ACCESS_TOKEN, TestAws, attr_s, lines};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const MESSAGES_PATH: &str = "/v23.0/106540352242922/messages";

/// Answers like the Cloud API, with a new wamid each time.
struct Accepts(AtomicUsize);

impl Respond for Accepts {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let n = self.0.fetch_add(1, Ordering::SeqCst);
        let to = serde_json::from_slice::<Value>(&request.body).unwrap()["to"].clone();
        ResponseTemplate::new(200).set_body_json(json!({
            "messaging_product": "whatsapp",
            "contacts": [{ "input": to, "wa_id": to }],
            "messages": [{ "id": format!("wamid.test{n}") }],
        }))
    }
}

fn graph_error(status: u16, code: i64) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "error": { "message": "(#x) error", "type": "OAuthException", "code": code, "fbtrace_id": "AbC" }
    }))
}

async fn accepting(graph: &MockServer) {
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .and(header("authorization", format!("Bearer {META_ACCESS_TOKEN}").as_str()))
        .respond_with(Accepts(AtomicUsize::new(0)))
        .mount(graph)
        .await;
}

struct Harness {
    aws: TestAws,
    graph: MockServer,
    worker: DeliveryWorker<DynamoStore, GraphClient>,
}

impl Harness {
    async fn new() -> Self {
        let aws = TestAws::new().await;
        let graph = MockServer::start().await;
        let client = GraphClient::new(
            shared::aws::provider_http_client(),
            &graph.uri(),
            "v23.0",
            secrecy::SecretString::from(META_ACCESS_TOKEN),
        );
        let worker = DeliveryWorker::new(lines(), aws.store(), client);
        Self { aws, graph, worker }
    }

    /// What the SMS webhook does for a customer's text.
    async fn customer_texts(&self, text: &str) -> Received {
        let line = lines().iter().next().unwrap().clone();
        let sms = InboundSms {
            provider_message_id: ProviderMessageId::parse(&shared::testing::message_sid()).unwrap(),
            from: E164::parse(CUSTOMER).unwrap(),
            to: E164::parse(LINE_SMS_NUMBER).unwrap(),
            body: text.into(),
            attachments: vec![],
            received_at: Timestamp::now(),
        };
        receive_sms(
            &self.aws.store(),
            &self.aws.queue(),
            &line,
            sms,
            &mut fastrand::Rng::new(),
        )
        .await
        .unwrap()
    }

    /// Feeds the queue to the worker until nothing visible is left.
    async fn drain(&self) {
        let poller = SqsPoller::new(self.aws.sqs.clone(), &self.aws.queue_url, 0);
        while poller.poll_once(&self.worker).await.unwrap() > 0 {}
    }

    async fn sent(&self) -> Vec<Value> {
        let requests = self.graph.received_requests().await.unwrap_or_default();
        requests
            .iter()
            .map(|r| serde_json::from_slice(&r.body).unwrap())
            .collect()
    }

    async fn legs(&self) -> Vec<(String, std::collections::HashMap<String, AttributeValue>)> {
        let mut legs = Vec::new();
        for item in self.aws.items_with_prefix("CONV#").await {
            if let Some(AttributeValue::M(map)) = item.get("legs") {
                for (id, leg) in map {
                    legs.push((id.clone(), leg.as_m().unwrap().clone()));
                }
            }
        }
        legs.sort_by(|a, b| a.0.cmp(&b.0));
        legs
    }
}

fn leg_state(leg: &std::collections::HashMap<String, AttributeValue>) -> &str {
    leg.get("state").unwrap().as_s().unwrap()
}

#[tokio::test]
async fn closed_windows_get_the_template_and_each_copy_is_recorded() {
    let h = Harness::new().await;
    accepting(&h.graph).await;
    h.customer_texts("Is my order ready?").await;
    h.drain().await;

    let sent = h.sent().await;
    assert_eq!(sent.len(), 2);
    let mut recipients: Vec<&str> = sent.iter().map(|m| m["to"].as_str().unwrap()).collect();
    recipients.sort();
    assert_eq!(recipients, AGENTS);
    for message in &sent {
        assert_eq!(message["type"], "template");
        assert_eq!(message["template"]["name"], "new_customer_message");
        assert_eq!(message["template"]["language"]["code"], "en");
        let params = &message["template"]["components"][0]["parameters"];
        assert!(params[0]["text"].as_str().unwrap().starts_with('#'));
        assert_eq!(params[1]["text"], "+1 415-555-0134");
        assert_eq!(params[2]["text"], "Is my order ready?");
    }
    let copies = h.aws.items_with_prefix("WAMID#").await;
    assert_eq!(copies.len(), 2);
    for (_, leg) in h.legs().await {
        assert_eq!(leg_state(&leg), "sent");
        assert_eq!(leg.get("via").unwrap().as_s().unwrap(), "template");
    }
    assert_eq!(h.aws.queue_depth().await, 0);
}

#[tokio::test]
async fn an_open_window_gets_labelled_free_form_text() {
    let h = Harness::new().await;
    accepting(&h.graph).await;
    let line = LineId::parse("main").unwrap();
    h.aws
        .store()
        .record_agent_inbound(&line, &WaId::parse(AGENTS[0]).unwrap(), Timestamp::now())
        .await
        .unwrap();
    h.customer_texts("Hello there").await;
    h.drain().await;

    let sent = h.sent().await;
    let to_open = sent.iter().find(|m| m["to"] == AGENTS[0]).unwrap();
    assert_eq!(to_open["type"], "text");
    let body = to_open["text"]["body"].as_str().unwrap();
    assert!(
        body.starts_with('#') && body.ends_with(" · +1 415-555-0134\nHello there"),
        "{body}"
    );
    let to_closed = sent.iter().find(|m| m["to"] == AGENTS[1]).unwrap();
    assert_eq!(to_closed["type"], "template");
}

#[tokio::test]
async fn a_redelivered_job_is_acknowledged_without_a_second_send() {
    let h = Harness::new().await;
    accepting(&h.graph).await;
    h.customer_texts("once").await;
    h.drain().await;
    assert_eq!(h.sent().await.len(), 2);

    // SQS delivers at least once: the same jobs arrive again.
    let copies = h.aws.items_with_prefix("CONV#").await;
    let message = copies.iter().find(|i| attr_s(i, "SK").starts_with("MSG#")).unwrap();
    let seen = h.aws.items_with_prefix("SEEN#").await;
    let jobs: Vec<Job> = seen[0]
        .get("jobs")
        .unwrap()
        .as_l()
        .unwrap()
        .iter()
        .map(|j| Job::decode(j.as_s().unwrap()).unwrap())
        .collect();
    assert_eq!(jobs.len(), 2);
    h.aws.queue().enqueue(&jobs).await.unwrap();
    h.drain().await;
    assert_eq!(h.sent().await.len(), 2, "no second copy");
    assert_eq!(h.aws.queue_depth().await, 0, "acknowledged");
    assert!(message.get("legs").is_some());
}

#[tokio::test]
async fn a_closed_window_reported_by_meta_falls_back_to_the_template() {
    let h = Harness::new().await;
    // Our record says the window is open, Meta says 131047: re-send as the template.
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .and(wiremock::matchers::body_partial_json(json!({ "type": "text" })))
        .respond_with(graph_error(400, 131047))
        .mount(&h.graph)
        .await;
    accepting(&h.graph).await;
    let line = LineId::parse("main").unwrap();
    for agent in AGENTS {
        h.aws
            .store()
            .record_agent_inbound(&line, &WaId::parse(agent).unwrap(), Timestamp::now())
            .await
            .unwrap();
    }
    h.customer_texts("fallback please").await;
    h.drain().await;

    let kinds: Vec<String> = h
        .sent()
        .await
        .iter()
        .map(|m| m["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds.iter().filter(|k| *k == "text").count(), 2);
    assert_eq!(kinds.iter().filter(|k| *k == "template").count(), 2);
    for (_, leg) in h.legs().await {
        assert_eq!(leg_state(&leg), "sent");
        assert_eq!(leg.get("via").unwrap().as_s().unwrap(), "template");
    }
}

#[tokio::test]
async fn transient_failures_stay_on_the_queue_and_succeed_later() {
    let h = Harness::new().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .respond_with(ResponseTemplate::new(503).set_body_string("upstream down"))
        .up_to_n_times(2)
        .mount(&h.graph)
        .await;
    accepting(&h.graph).await;
    h.customer_texts("retry me").await;

    // A short visibility timeout stands in for the deployed one (the test can't wait minutes).
    h.aws
        .sqs
        .set_queue_attributes()
        .queue_url(&h.aws.queue_url)
        .attributes(aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout, "1")
        .send()
        .await
        .unwrap();
    let poller = SqsPoller::new(h.aws.sqs.clone(), &h.aws.queue_url, 0);
    assert_eq!(poller.poll_once(&h.worker).await.unwrap(), 2);
    assert_eq!(h.aws.queue_depth().await, 2, "failed jobs are not deleted");
    for (_, leg) in h.legs().await {
        assert_eq!(leg_state(&leg), "retry");
        let error = leg.get("error").unwrap().as_m().unwrap();
        assert_eq!(error.get("class").unwrap().as_s().unwrap(), "retry");
        assert!(error.get("reason").unwrap().as_s().unwrap().contains("503"));
    }
    assert_eq!(
        poller.poll_once(&h.worker).await.unwrap(),
        0,
        "in flight until the visibility timeout"
    );

    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    h.drain().await;
    assert_eq!(h.legs().await.iter().filter(|(_, l)| leg_state(l) == "sent").count(), 2);
    assert_eq!(h.aws.items_with_prefix("WAMID#").await.len(), 2);
    assert_eq!(h.sent().await.len(), 4, "two failed attempts, then one copy each");
}

#[tokio::test]
async fn permanent_failures_are_recorded_and_acknowledged() {
    let h = Harness::new().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .respond_with(graph_error(400, 131026))
        .mount(&h.graph)
        .await;
    h.customer_texts("to nowhere").await;
    h.drain().await;
    assert_eq!(h.aws.queue_depth().await, 0);
    for (_, leg) in h.legs().await {
        assert_eq!(leg_state(&leg), "failed");
        let error = leg.get("error").unwrap().as_m().unwrap();
        assert_eq!(error.get("class").unwrap().as_s().unwrap(), "permanent");
        assert_eq!(error.get("code").unwrap().as_n().unwrap(), "131026");
    }
    assert_eq!(h.sent().await.len(), 2, "tried once each, never again");
}

#[tokio::test]
async fn a_broken_access_token_escalates_and_keeps_the_job() {
    let h = Harness::new().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .respond_with(graph_error(401, 190))
        .mount(&h.graph)
        .await;
    h.customer_texts("hello").await;
    let poller = SqsPoller::new(h.aws.sqs.clone(), &h.aws.queue_url, 0);
    poller.poll_once(&h.worker).await.unwrap();
    assert_eq!(h.aws.queue_depth().await, 2, "kept for the DLQ after maxReceiveCount");
    for (_, leg) in h.legs().await {
        assert_eq!(
            leg.get("error")
                .unwrap()
                .as_m()
                .unwrap()
                .get("class")
                .unwrap()
                .as_s()
                .unwrap(),
            "escalate"
        );
        assert_eq!(
            leg_state(&leg),
            "retry",
            "claimable again once the operator fixes the token"
        );
    }
}

fn record(id: &str, body: &str) -> SqsMessage {
    let mut record = SqsMessage::default();
    record.message_id = Some(id.into());
    record.body = Some(body.into());
    record
}

#[tokio::test]
async fn only_the_failing_records_of_a_batch_are_reported() {
    let h = Harness::new().await;
    accepting(&h.graph).await;
    h.customer_texts("good").await;
    let jobs: Vec<Job> = {
        let seen = h.aws.items_with_prefix("SEEN#").await;
        seen[0]
            .get("jobs")
            .unwrap()
            .as_l()
            .unwrap()
            .iter()
            .map(|j| Job::decode(j.as_s().unwrap()).unwrap())
            .collect()
    };
    let mut event = SqsEvent::default();
    event.records = vec![
        record("m-1", &jobs[0].encode()),
        record("m-garbage", "{\"not\": \"a job\"}"),
        record("m-2", &jobs[1].encode()),
        record("m-empty", ""),
    ];
    let response = h.worker.handle_batch(event).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["m-garbage", "m-empty"]);
    assert_eq!(h.sent().await.len(), 2);
}

#[tokio::test]
async fn jobs_for_an_unconfigured_line_escalate() {
    let h = Harness::new().await;
    accepting(&h.graph).await;
    let job = Job::decode(
        &json!({
            "job_id": "01a2123e-cba6-756b-9183-530bf8f7743a:0",
            "attempt": 0,
            "kind": "forward_to_agent",
            "payload": {
                "conversation": { "line": "gone", "customer": CUSTOMER },
                "message_id": "01a2123e-cba6-756b-9183-530bf8f7743a",
                "agent": AGENTS[0],
                "text": "hi",
                "received_at": "2026-11-25T10:00:00Z"
            }
        })
        .to_string(),
    )
    .unwrap();
    let mut event = SqsEvent::default();
    event.records = vec![record("m-1", &job.encode())];
    let response = h.worker.handle_batch(event).await;
    assert_eq!(response.batch_item_failures.len(), 1);
    assert!(h.sent().await.is_empty());
}
