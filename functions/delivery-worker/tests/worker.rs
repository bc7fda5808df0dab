//! The delivery worker over the wire: jobs from SQS on moto, state in DynamoDB on moto, and
//! wiremock fakes of the Graph API and Twilio, wired exactly as the Lambda wires them.

#![allow(clippy::unwrap_used)] // a failed unwrap is the test failing

use shared::app::copy_facts_cache::CopyFactsCache;
use std::collections::HashMap;

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use aws_sdk_dynamodb::types::AttributeValue;
use bridge_testkit::testing::{
    AGENTS, CUSTOMER, FakeProviders, LINE_SMS_NUMBER, TestAws, attr_s, graph_error, lines, lookup, twilio_error,
};
use delivery_worker::sqs_poller::SqsPoller;
use delivery_worker::{DeliveryWorker, DeployedWorker};
use jiff::Timestamp;
use serde_json::json;
use shared::app::receive_sms::receive_sms;
use shared::config::DeliveryWorkerConfig;
use shared::domain::{E164, InboundSms, Job, JobPayload, LineId, ProviderMessageId, WaId, Wamid, WhatsAppMessage};
use shared::ports::{AgentEffect, AgentMessageRecord, Agents, DeliveryQueue};
use wiremock::matchers::{body_partial_json, method};
use wiremock::{Mock, ResponseTemplate};

struct Harness {
    aws: TestAws,
    providers: FakeProviders,
    worker: DeployedWorker,
}

impl Harness {
    async fn new() -> Self {
        let aws = TestAws::new().await;
        let providers = FakeProviders::start().await;
        let env = providers.test_env(&aws);
        let config = DeliveryWorkerConfig::from_lookup(&lookup(&env)).unwrap();
        let sdk = aws.sdk_config().await;
        let worker = DeliveryWorker::from_config(config, &sdk);
        Self { aws, providers, worker }
    }

    /// What the SMS webhook does for a customer's text.
    async fn customer_texts(&self, text: &str) {
        let line = lines().iter().next().unwrap().clone();
        let sms = InboundSms {
            provider_message_id: ProviderMessageId::parse(&bridge_testkit::testing::message_sid()).unwrap(),
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
            &shared::app::retry_budget::RetryBudget::none(),
            &CopyFactsCache::new(),
        )
        .await
        .unwrap();
    }

    /// What the webhooks record for a customer's text and an agent's reply; the reply's
    /// SMS job is enqueued (after the customer's copies went out).
    async fn agent_replies(&self, text: &str) -> Job {
        self.customer_texts("first").await;
        self.drain().await;
        let job = bridge_testkit::testing::record_agent_reply(&self.aws, CUSTOMER, text).await;
        self.aws.queue().enqueue(std::slice::from_ref(&job)).await.unwrap();
        job
    }

    /// Feeds the queue to the worker until nothing visible is left.
    async fn drain(&self) {
        let poller = SqsPoller::new(self.aws.sqs.clone(), &self.aws.queue_url, 0);
        while poller.poll_once(&self.worker).await.unwrap() > 0 {}
    }

    async fn legs(&self) -> Vec<(String, HashMap<String, AttributeValue>)> {
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

    async fn seen_jobs(&self) -> Vec<Job> {
        let seen = self.aws.items_with_prefix("SEEN#").await;
        seen[0].get("jobs").unwrap().as_l().unwrap().iter().map(|j| Job::decode(j.as_s().unwrap()).unwrap()).collect()
    }
}

fn leg_state(leg: &HashMap<String, AttributeValue>) -> &str {
    leg.get("state").unwrap().as_s().unwrap()
}

fn error_of(leg: &HashMap<String, AttributeValue>) -> &HashMap<String, AttributeValue> {
    leg.get("error").unwrap().as_m().unwrap()
}

#[tokio::test]
async fn closed_windows_get_the_template_and_each_copy_is_recorded() {
    let h = Harness::new().await;
    h.customer_texts("Is my order ready?").await;
    h.drain().await;

    let sent = h.providers.whatsapp_sent().await;
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
    assert_eq!(h.aws.items_with_prefix("WAMID#").await.len(), 2);
    for (_, leg) in h.legs().await {
        assert_eq!(leg_state(&leg), "sent");
        assert_eq!(leg.get("via").unwrap().as_s().unwrap(), "template");
        assert!(leg.get("provider_id").unwrap().as_s().unwrap().starts_with("wamid."));
    }
    assert_eq!(h.aws.queue_depth().await, 0);
}

#[tokio::test]
async fn an_open_window_gets_labelled_text_with_claim_and_close_buttons() {
    let h = Harness::new().await;
    let line = LineId::parse("main").unwrap();
    h.aws.store().record_agent_inbound(&line, &WaId::parse(AGENTS[0]).unwrap(), Timestamp::now()).await.unwrap();
    h.customer_texts("Hello there").await;
    h.drain().await;

    let sent = h.providers.whatsapp_sent().await;
    let to_open = sent.iter().find(|m| m["to"] == AGENTS[0]).unwrap();
    assert_eq!(to_open["type"], "interactive");
    assert_eq!(to_open["interactive"]["type"], "button");
    let body = to_open["interactive"]["body"]["text"].as_str().unwrap();
    assert!(body.starts_with('#') && body.ends_with(" · +1 415-555-0134\nHello there"), "{body}");
    let handle = &body[1..body.find(' ').unwrap()];
    let buttons = to_open["interactive"]["action"]["buttons"].as_array().unwrap();
    let ids: Vec<&str> = buttons.iter().map(|b| b["reply"]["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [format!("act:claim:{handle}"), format!("act:close:{handle}")]);
    assert_eq!(sent.iter().find(|m| m["to"] == AGENTS[1]).unwrap()["type"], "template");
}

#[tokio::test]
async fn a_redelivered_job_is_acknowledged_without_a_second_send() {
    let h = Harness::new().await;
    h.customer_texts("once").await;
    h.drain().await;
    assert_eq!(h.providers.whatsapp_sent().await.len(), 2);

    // SQS delivers at least once: the same jobs arrive again.
    let jobs = h.seen_jobs().await;
    assert_eq!(jobs.len(), 2);
    h.aws.queue().enqueue(&jobs).await.unwrap();
    h.drain().await;
    assert_eq!(h.providers.whatsapp_sent().await.len(), 2, "no second copy");
    assert_eq!(h.aws.queue_depth().await, 0, "acknowledged");
}

#[tokio::test]
async fn a_closed_window_reported_by_meta_falls_back_to_the_template() {
    let h = Harness::new().await;
    // Our record says the window is open, Meta says 131047: re-send as the template.
    Mock::given(method("POST"))
        .and(body_partial_json(json!({ "type": "interactive" })))
        .respond_with(graph_error(400, 131047))
        .mount(&h.providers.graph)
        .await;
    let line = LineId::parse("main").unwrap();
    for agent in AGENTS {
        h.aws.store().record_agent_inbound(&line, &WaId::parse(agent).unwrap(), Timestamp::now()).await.unwrap();
    }
    h.customer_texts("fallback please").await;
    h.drain().await;

    let kinds: Vec<String> =
        h.providers.whatsapp_sent().await.iter().map(|m| m["type"].as_str().unwrap().to_owned()).collect();
    assert_eq!(kinds.iter().filter(|k| *k == "interactive").count(), 2);
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
        .respond_with(ResponseTemplate::new(503).set_body_string("upstream down"))
        .up_to_n_times(2)
        .mount(&h.providers.graph)
        .await;
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
    // At once: the backoff keeps them in flight for about a second, which the checks below
    // can outlast on a busy machine (moto's scans are slow).
    assert_eq!(poller.poll_once(&h.worker).await.unwrap(), 0, "in flight until the visibility timeout");
    assert_eq!(h.aws.queue_depth().await, 2, "failed jobs are not deleted");
    for (_, leg) in h.legs().await {
        assert_eq!(leg_state(&leg), "retry");
        assert_eq!(error_of(&leg).get("class").unwrap().as_s().unwrap(), "retry");
        assert!(error_of(&leg).get("reason").unwrap().as_s().unwrap().contains("503"));
    }

    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    h.drain().await;
    assert_eq!(h.legs().await.iter().filter(|(_, l)| leg_state(l) == "sent").count(), 2);
    assert_eq!(h.aws.items_with_prefix("WAMID#").await.len(), 2);
    assert_eq!(h.providers.whatsapp_sent().await.len(), 4, "two failed attempts, then one copy each");
}

#[tokio::test]
async fn permanent_failures_are_recorded_and_acknowledged() {
    let h = Harness::new().await;
    Mock::given(method("POST")).respond_with(graph_error(400, 131026)).mount(&h.providers.graph).await;
    h.customer_texts("to nowhere").await;
    h.drain().await;
    assert_eq!(h.aws.queue_depth().await, 0);
    for (_, leg) in h.legs().await {
        assert_eq!(leg_state(&leg), "failed");
        assert_eq!(error_of(&leg).get("class").unwrap().as_s().unwrap(), "permanent");
        assert_eq!(error_of(&leg).get("code").unwrap().as_n().unwrap(), "131026");
    }
    assert_eq!(h.providers.whatsapp_sent().await.len(), 2, "tried once each, never again");
}

#[tokio::test]
async fn a_broken_access_token_escalates_to_the_dead_letter_queue_at_once() {
    let h = Harness::new().await;
    Mock::given(method("POST")).respond_with(graph_error(401, 190)).mount(&h.providers.graph).await;
    h.customer_texts("hello").await;
    let poller = SqsPoller::new(h.aws.sqs.clone(), &h.aws.queue_url, 0);
    poller.poll_once(&h.worker).await.unwrap();
    assert_eq!(h.aws.queue_depth().await, 0, "not retried: retrying won't fix a revoked token");
    assert_eq!(h.aws.dlq_depth().await, 2, "waiting for an operator, as they were");
    for (_, leg) in h.legs().await {
        assert_eq!(error_of(&leg).get("class").unwrap().as_s().unwrap(), "escalate");
        assert_eq!(leg_state(&leg), "retry", "claimable again once the operator fixes the token and redrives");
    }
}

#[tokio::test]
async fn an_agent_reply_goes_out_once_by_sms_with_its_status_callback() {
    let h = Harness::new().await;
    let job = h.agent_replies("See you at 9").await;
    h.drain().await;

    let sms = h.providers.sms_sent().await;
    assert_eq!(sms.len(), 1);
    assert_eq!(sms[0]["To"], CUSTOMER);
    assert_eq!(sms[0]["From"], LINE_SMS_NUMBER, "from the line's number");
    assert_eq!(sms[0]["Body"], "See you at 9");
    assert_eq!(sms[0]["StatusCallback"], format!("https://bridge.example.com/sms/status?job={}", job.job_id));
    let record = &h.aws.items_with_prefix("SMS#").await[0];
    assert_eq!(attr_s(record, "job_id"), job.job_id.as_str());
    let (_, leg) = h.legs().await.into_iter().find(|(id, _)| id == job.job_id.as_str()).unwrap();
    assert_eq!(leg_state(&leg), "sent");
    assert_eq!(leg.get("status").unwrap().as_s().unwrap(), "queued");

    h.aws.queue().enqueue(std::slice::from_ref(&job)).await.unwrap();
    h.drain().await;
    assert_eq!(h.providers.sms_sent().await.len(), 1, "a redelivered reply is not sent twice");
}

#[tokio::test]
async fn a_refused_reply_shows_the_agent_a_cross_and_the_reason() {
    let h = Harness::new().await;
    Mock::given(method("POST")).respond_with(twilio_error(400, 21610)).mount(&h.providers.twilio).await;
    let job = h.agent_replies("Promo!").await;
    let before = h.providers.whatsapp_sent().await.len();
    h.drain().await;

    let (_, leg) = h.legs().await.into_iter().find(|(id, _)| id == job.job_id.as_str()).unwrap();
    assert_eq!(leg_state(&leg), "failed");
    assert_eq!(error_of(&leg).get("code").unwrap().as_n().unwrap(), "21610");
    let notices: Vec<_> = h.providers.whatsapp_sent().await.into_iter().skip(before).collect();
    let JobPayload::SendSms(sms) = &job.payload else { panic!() };
    assert_eq!(notices.len(), 2);
    assert_eq!(notices[0]["type"], "reaction");
    assert_eq!(notices[0]["reaction"]["emoji"], "❌");
    assert_eq!(notices[0]["reaction"]["message_id"], sms.agent_wamid.as_str());
    assert_eq!(notices[1]["text"]["body"], "not delivered: customer opted out (21610)");
    assert_eq!(notices[1]["context"]["message_id"], sms.agent_wamid.as_str());
    assert_eq!(h.aws.queue_depth().await, 0);
}

#[tokio::test]
async fn notices_are_sent_once() {
    let h = Harness::new().await;
    let notice = Job::notice(
        "wamid.x:which".into(),
        LineId::parse("main").unwrap(),
        WaId::parse(AGENTS[0]).unwrap(),
        WhatsAppMessage::text("Which conversation?"),
    );
    let record = AgentMessageRecord {
        line: LineId::parse("main").unwrap(),
        agent: WaId::parse(AGENTS[0]).unwrap(),
        wamid: Wamid::parse("wamid.x").unwrap(),
        received_at: Timestamp::now(),
        profile_name: None,
        effect: AgentEffect::Nothing,
        notices: vec![notice.clone()],
    };
    h.aws.store().record_agent_message(&record).await.unwrap();
    h.aws.queue().enqueue(&[notice.clone(), notice]).await.unwrap();
    h.drain().await;
    let sent = h.providers.whatsapp_sent().await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["text"]["body"], "Which conversation?");
    let item = &h.aws.items_with_prefix("JOB#").await[0];
    let legs = item.get("legs").unwrap().as_m().unwrap();
    assert_eq!(leg_state(legs.values().next().unwrap().as_m().unwrap()), "sent");
}

fn record(id: &str, body: &str) -> SqsMessage {
    let mut record = SqsMessage::default();
    record.message_id = Some(id.into());
    record.body = Some(body.into());
    record
}

#[tokio::test]
async fn records_that_are_not_jobs_go_to_the_dead_letter_queue_and_spare_their_neighbours() {
    let h = Harness::new().await;
    h.customer_texts("good").await;
    let jobs = h.seen_jobs().await;
    let mut event = SqsEvent::default();
    event.records = vec![
        record("m-1", &jobs[0].encode()),
        record("m-garbage", "{\"not\": \"a job\"}"),
        record("m-2", &jobs[1].encode()),
        record("m-empty", ""),
    ];
    let response = h.worker.handle_batch(event).await;
    assert!(response.batch_item_failures.is_empty(), "never retried forever");
    assert_eq!(h.aws.dlq_depth().await, 2, "never dropped");
    assert_eq!(h.providers.whatsapp_sent().await.len(), 2, "the good neighbours went out");
}

fn grouped(id: &str, job: &Job) -> SqsMessage {
    let mut r = record(id, &job.encode());
    r.attributes.insert("MessageGroupId".into(), job.order_group());
    r
}

#[tokio::test]
async fn after_a_failure_the_rest_of_its_group_waits_and_other_groups_go_on() {
    let h = Harness::new().await;
    // The first agent's sends fail for now; the second agent's succeed.
    Mock::given(method("POST"))
        .and(body_partial_json(json!({ "to": AGENTS[0] })))
        .respond_with(ResponseTemplate::new(503))
        .mount(&h.providers.graph)
        .await;
    h.customer_texts("first").await;
    h.customer_texts("second").await;
    let jobs: Vec<Job> = h.aws.take_jobs().await;
    let to = |agent: &str| jobs.iter().filter(|j| j.recipient() == agent).cloned().collect::<Vec<_>>();
    let (first_agent, second_agent) = (to(AGENTS[0]), to(AGENTS[1]));
    let mut event = SqsEvent::default();
    // Interleaved as SQS may hand them over; each group is delivered on its own, in order,
    // and a group's consecutive copies still go as one message.
    event.records = vec![
        grouped("a-1", &first_agent[0]),
        grouped("b-1", &second_agent[0]),
        grouped("a-2", &first_agent[1]),
        grouped("b-2", &second_agent[1]),
    ];
    let response = h.worker.handle_batch(event).await;
    let mut failed: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    failed.sort_unstable();
    assert_eq!(failed, ["a-1", "a-2"], "the failing group comes back whole");
    let sent = h.providers.whatsapp_sent().await;
    assert_eq!(sent.iter().filter(|m| m["to"] == AGENTS[0]).count(), 1, "one attempt for the failing group");
    let to_second: Vec<_> = sent.iter().filter(|m| m["to"] == AGENTS[1]).collect();
    assert_eq!(to_second.len(), 1, "the other group's two copies, as one message: {to_second:?}");
    assert_eq!(to_second[0]["template"]["components"][0]["parameters"][2]["text"], "first second");
}

#[tokio::test]
async fn a_burst_for_one_agent_goes_out_as_one_message_in_order() {
    let h = Harness::new().await;
    for text in ["Hi", "are you open", "today?"] {
        h.customer_texts(text).await;
    }
    let jobs: Vec<Job> = h.aws.take_jobs().await;
    let mut event = SqsEvent::default();
    event.records = jobs
        .iter()
        .filter(|j| j.recipient() == AGENTS[0])
        .enumerate()
        .map(|(i, j)| grouped(&format!("m-{i}"), j))
        .collect();
    assert_eq!(event.records.len(), 3);
    assert!(h.worker.handle_batch(event).await.batch_item_failures.is_empty());
    let sent = h.providers.whatsapp_sent().await;
    assert_eq!(sent.len(), 1, "one WhatsApp message for three SMS");
    assert_eq!(sent[0]["template"]["components"][0]["parameters"][2]["text"], "Hi are you open today?");
    let sent_legs = h.legs().await.into_iter().filter(|(_, l)| leg_state(l) == "sent").count();
    assert_eq!(sent_legs, 3, "each SMS's leg is recorded sent");
}

#[tokio::test]
async fn jobs_for_an_unconfigured_line_escalate() {
    let h = Harness::new().await;
    let job = json!({
        "job_id": "01a2123e-cba6-756b-9183-530bf8f7743a.0",
        "attempt": 0,
        "kind": "forward_to_agent",
        "payload": {
            "conversation": { "line": "gone", "customer": CUSTOMER },
            "message_id": "01a2123e-cba6-756b-9183-530bf8f7743a",
            "agent": AGENTS[0],
            "text": "hi",
            "received_at": "2026-11-25T10:00:00Z"
        }
    });
    let mut event = SqsEvent::default();
    event.records = vec![record("m-1", &job.to_string())];
    let response = h.worker.handle_batch(event).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(h.aws.dlq_depth().await, 1, "parked for an operator");
    assert!(h.providers.whatsapp_sent().await.is_empty());
}

#[tokio::test]
async fn outside_the_window_a_reply_result_reaches_the_agent_as_the_template_and_the_window_is_remembered_closed() {
    let h = Harness::new().await;
    // WhatsApp refuses free-form text to the agent: their 24 h window has closed.
    Mock::given(method("POST"))
        .and(body_partial_json(json!({ "to": AGENTS[0] })))
        .and(wiremock::matchers::body_string_contains("\"type\":\"reaction\""))
        .respond_with(graph_error(400, 131047))
        .mount(&h.providers.graph)
        .await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({ "to": AGENTS[0], "type": "text" })))
        .respond_with(graph_error(400, 131047))
        .mount(&h.providers.graph)
        .await;
    Mock::given(method("POST")).respond_with(twilio_error(400, 21610)).mount(&h.providers.twilio).await;
    let line = LineId::parse("main").unwrap();
    h.aws.store().record_agent_inbound(&line, &WaId::parse(AGENTS[0]).unwrap(), Timestamp::now()).await.unwrap();
    let job = h.agent_replies("Promo!").await;
    let before = h.providers.whatsapp_sent().await.len();
    h.drain().await;

    let to_agent: Vec<serde_json::Value> =
        h.providers.whatsapp_sent().await.into_iter().skip(before).filter(|m| m["to"] == AGENTS[0]).collect();
    let templates: Vec<&serde_json::Value> = to_agent.iter().filter(|m| m["type"] == "template").collect();
    assert_eq!(templates.len(), 2, "the ❌ and the reason, each as the template: {to_agent:#?}");
    let params = &templates[1]["template"]["components"][0]["parameters"];
    assert!(params[0]["text"].as_str().unwrap().starts_with('#'));
    assert_eq!(params[1]["text"], "+1 415-555-0134");
    assert!(params[2]["text"].as_str().unwrap().contains("not delivered: customer opted out (21610)"), "{params}");
    assert_eq!(h.aws.queue_depth().await, 0);
    let JobPayload::SendSms(_) = &job.payload else { panic!() };

    // The window is now known closed: the next copy goes straight out as the template.
    h.customer_texts("are you there?").await;
    let before = h.providers.whatsapp_sent().await.len();
    h.drain().await;
    let copy = h.providers.whatsapp_sent().await.into_iter().skip(before).find(|m| m["to"] == AGENTS[0]).unwrap();
    assert_eq!(copy["type"], "template", "no wasted free-form attempt");
}
