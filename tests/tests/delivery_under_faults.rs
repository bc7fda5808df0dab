//! The delivery promise under AWS's and the providers' real faults (issue 14), over the wire:
//! the webhooks and the worker wired as deployed, DynamoDB and SQS on moto behind a client
//! that fails chosen calls (`bridge_emulator::faults`), the providers as HTTP fakes.
//!
//! - SQS refusing sends as texts arrive, for longer than the webhook keeps trying: recorded,
//!   answered 200, enqueued by the outbox sweep, each agent gets each text once.
//! - SQS taking the jobs and losing its answer: nothing twice.
//! - DynamoDB refusing calls for a few seconds as a text arrives: the webhook keeps trying.
//! - A status report while SQS refuses: the agent's ✅ still arrives, once.
//! - A WhatsApp outage through many retries: nothing dead-lettered, everything once
//!   and in order; and one longer than the maximum job age: parked for an operator.

#![allow(clippy::unwrap_used)] // a failed unwrap is the test failing

use crate::common;

use std::time::{Duration, Instant};

use bridge_emulator::faults::{AwsFaults, FaultKind, FaultWhen};
use bridge_testkit::testing::{AGENTS, CUSTOMER, message_sid, signed_status_callback};
use common::{Bridge, copies, readable};
use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, Request, Respond, ResponseTemplate};

/// Every number these tests use: none may reach a log line, in any form.
const NUMBERS_IN_LOGS: [&str; 5] = [
    bridge_testkit::testing::KNOWN_NUMBERS[0],
    bridge_testkit::testing::KNOWN_NUMBERS[1],
    bridge_testkit::testing::KNOWN_NUMBERS[2],
    bridge_testkit::testing::KNOWN_NUMBERS[3],
    OTHER_CUSTOMER,
];

const OTHER_CUSTOMER: &str = "+14155550135";
/// Retries come back within a second or two, so the tests wait seconds, not minutes.
const QUICK_RETRIES: &[(&str, &str)] = &[("RETRY_BASE_SECONDS", "1"), ("RETRY_MAX_SECONDS", "2")];

fn agent_copies(sent: &[serde_json::Value]) -> Vec<String> {
    copies(sent)
}

#[tokio::test]
async fn texts_recorded_while_sqs_refuses_sends_reach_each_agent_exactly_once() {
    bridge_testkit::testing::logs::capture_logs();
    let faults = AwsFaults::seeded(1);
    let bridge = Bridge::with_faults(&faults, QUICK_RETRIES).await;
    // Longer than the webhook keeps trying: it answers 200 with the texts recorded only.
    faults.outage("AmazonSQS.SendMessageBatch", Duration::from_secs(60));
    let started = Instant::now();
    let (first, second) = (message_sid(), message_sid());
    tokio::join!(
        bridge.sms_from(CUSTOMER, &first, "first text"),
        bridge.sms_from(OTHER_CUSTOMER, &second, "second text"),
    );
    assert!(started.elapsed() >= Duration::from_millis(1900), "the webhook kept trying for its budget (2 s here)");
    assert!(faults.injected() > 4, "SQS refused every try");
    assert_eq!(bridge.aws.queue_depth().await, 0, "nothing reached the queue");

    // SQS is back. The sweep enqueues what was recorded; a second one finds nothing left.
    faults.clear();
    let swept = bridge.sweep().await;
    assert_eq!((swept.entries, swept.jobs), (2, 4), "{swept:?}");
    assert_eq!(bridge.sweep().await.entries, 0);
    bridge.run_worker_until_idle(Duration::from_secs(60)).await;
    for agent in AGENTS {
        let got = agent_copies(&bridge.sent_to(agent).await);
        assert_eq!(got.len(), 2, "{agent}: {got:?}");
        for text in ["first text", "second text"] {
            assert_eq!(got.iter().filter(|copy| copy.contains(text)).count(), 1, "{agent}: {got:?}");
        }
    }
    bridge_testkit::testing::logs::assert_no_number_logged(&NUMBERS_IN_LOGS);
}

#[tokio::test]
async fn jobs_sqs_took_and_lost_the_answer_for_go_out_once() {
    bridge_testkit::testing::logs::capture_logs();
    let faults = AwsFaults::seeded(2);
    let bridge = Bridge::with_faults(&faults, QUICK_RETRIES).await;
    // The queue takes the batch; the answer never comes back. The webhook tries again, and
    // the sweep offers the same jobs once more: SQS's deduplication and the legs keep it once.
    faults.inject("AmazonSQS.SendMessageBatch", FaultWhen::Next(1), FaultKind::LoseAnswer);
    bridge.customer_texts("Is my bike ready?").await;
    assert_eq!(faults.injected(), 1);
    bridge.sweep().await;
    bridge.run_worker_until_idle(Duration::from_secs(60)).await;
    for agent in AGENTS {
        assert_eq!(agent_copies(&bridge.sent_to(agent).await).len(), 1, "{agent}");
    }
    bridge_testkit::testing::logs::assert_no_number_logged(&NUMBERS_IN_LOGS);
}

#[tokio::test]
async fn dynamodb_refusing_calls_for_seconds_as_a_text_arrives_delays_it_and_loses_nothing() {
    bridge_testkit::testing::logs::capture_logs();
    let faults = AwsFaults::seeded(3);
    let bridge = Bridge::with_faults(&faults, QUICK_RETRIES).await;
    // Shorter than the webhook's budget (2 s in the tests' environment).
    faults.outage("DynamoDB", Duration::from_secs(1));
    let started = Instant::now();
    bridge.customer_texts("Are you open on Sunday?").await;
    assert!(started.elapsed() >= Duration::from_millis(900), "recorded only once DynamoDB answered");
    bridge.run_worker_until_idle(Duration::from_secs(60)).await;
    for agent in AGENTS {
        let got = agent_copies(&bridge.sent_to(agent).await);
        assert_eq!(got.len(), 1, "{agent}: {got:?}");
    }
    assert_eq!(bridge.thread(CUSTOMER).await.len(), 1, "recorded once");
    bridge_testkit::testing::logs::assert_no_number_logged(&NUMBERS_IN_LOGS);
}

#[tokio::test]
async fn a_delivery_report_while_sqs_refuses_sends_still_reaches_the_agent_once() {
    bridge_testkit::testing::logs::capture_logs();
    let faults = AwsFaults::seeded(4);
    let bridge = Bridge::with_faults(&faults, QUICK_RETRIES).await;
    bridge.customer_texts("Hi").await;
    bridge.run_worker_until_idle(Duration::from_secs(60)).await;
    let copy = bridge.copy_for(AGENTS[0], "Hi").await;
    bridge.agent_writes(bridge_testkit::testing::whatsapp_text(AGENTS[0], "See you at 9", Some(&copy))).await;
    bridge.run_worker_until_idle(Duration::from_secs(60)).await;
    let reply = bridge.thread(CUSTOMER).await.pop().unwrap();
    let leg = &reply.legs[0];
    let sid = leg.provider_id.clone().unwrap();

    faults.outage("AmazonSQS.SendMessageBatch", Duration::from_secs(60));
    let path = format!("/sms/status?job={}", leg.job_id);
    let (body, signature) = signed_status_callback(&path, &sid, "delivered", None, CUSTOMER);
    let status =
        bridge.post(&path, "application/x-www-form-urlencoded", ("x-twilio-signature", &signature), body).await;
    assert_eq!(status, 200, "recorded; the notice waits in the outbox");
    faults.clear();
    bridge.sweep().await;
    bridge.run_worker_until_idle(Duration::from_secs(60)).await;
    let ticks: Vec<String> =
        bridge.sent_to(AGENTS[0]).await.iter().filter(|m| m["type"] == "reaction").map(readable).collect();
    assert_eq!(ticks, ["✅"]);
    bridge_testkit::testing::logs::assert_no_number_logged(&NUMBERS_IN_LOGS);
}

/// The Graph API down (503) until `until`, then accepting, with what it accepted kept in order.
struct DownUntil {
    until: Instant,
    accepted: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
}

impl Respond for DownUntil {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if Instant::now() < self.until {
            return ResponseTemplate::new(503)
                .set_body_json(json!({ "error": { "message": "Service temporarily unavailable", "code": 2 } }));
        }
        let mut accepted = self.accepted.lock().unwrap();
        accepted.push(serde_json::from_slice(&request.body).unwrap());
        ResponseTemplate::new(200)
            .set_body_json(json!({ "messages": [{ "id": format!("wamid.up{}", accepted.len()) }] }))
    }
}

#[tokio::test]
async fn a_whatsapp_outage_through_many_retries_dead_letters_nothing_and_keeps_order() {
    bridge_testkit::testing::logs::capture_logs();
    let faults = AwsFaults::seeded(5);
    // Retried about every second: each job is tried several times during the outage, and
    // the jobs behind a failing head wait their turn.
    let bridge = Bridge::with_faults(&faults, &[("RETRY_BASE_SECONDS", "1"), ("RETRY_MAX_SECONDS", "1")]).await;
    let accepted = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let outage = Duration::from_secs(6);
    Mock::given(method("POST"))
        .respond_with(DownUntil { until: Instant::now() + outage, accepted: accepted.clone() })
        .with_priority(1)
        .mount(&bridge.providers.graph)
        .await;
    let customers = [CUSTOMER, OTHER_CUSTOMER];
    for n in 0..4 {
        for (c, customer) in customers.iter().enumerate() {
            bridge.sms_from(customer, &message_sid(), &format!("c{c}-m{n}")).await;
        }
    }
    bridge.run_worker_until_idle(Duration::from_secs(90)).await;

    assert_eq!(bridge.aws.dlq_depth().await, 0, "an outage dead-letters nothing");
    let accepted = accepted.lock().unwrap();
    for agent in AGENTS {
        for c in 0..customers.len() {
            let tokens: Vec<String> = accepted
                .iter()
                .filter(|m| m["to"] == agent)
                .map(readable)
                .flat_map(|text| {
                    text.split(|ch: char| !ch.is_alphanumeric() && ch != '-')
                        .filter(|t| t.starts_with(&format!("c{c}-m")))
                        .map(str::to_owned)
                        .collect::<Vec<_>>()
                })
                .collect();
            let want: Vec<String> = (0..4).map(|n| format!("c{c}-m{n}")).collect();
            assert_eq!(tokens, want, "{agent}, customer {c}: once each, in order");
        }
    }
    bridge_testkit::testing::logs::assert_no_number_logged(&NUMBERS_IN_LOGS);
}

#[tokio::test]
async fn an_outage_longer_than_the_maximum_job_age_parks_the_job_for_an_operator() {
    bridge_testkit::testing::logs::capture_logs();
    let faults = AwsFaults::seeded(6);
    // 3.6 s of maximum age, against a provider that never recovers.
    let bridge = Bridge::with_faults(
        &faults,
        &[("RETRY_BASE_SECONDS", "1"), ("RETRY_MAX_SECONDS", "1"), ("MAX_JOB_AGE_HOURS", "0.001")],
    )
    .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .with_priority(1)
        .mount(&bridge.providers.graph)
        .await;
    bridge.customer_texts("Hello?").await;
    bridge.run_worker_until_idle(Duration::from_secs(60)).await;
    assert_eq!(bridge.aws.dlq_depth().await, 2, "each agent's copy waits for an operator");
    let legs = &bridge.thread(CUSTOMER).await[0].legs;
    assert!(legs.iter().all(|l| l.state == shared::domain::LegState::Retry), "{legs:?}");
    bridge_testkit::testing::logs::assert_no_number_logged(&NUMBERS_IN_LOGS);
}
