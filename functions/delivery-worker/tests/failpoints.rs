//! The delivery guarantee (docs/guarantees.md), proven by stopping the
//! worker dead after each step of a job and delivering the job again from a fresh worker (a
//! new process knows nothing of the stopped one), over the wire.
//!
//! - Stopped after the claim: the lease runs out, the job is uncertain (nothing tells a new
//!   process that nothing went out), the reconciliation wait passes, and it goes once.
//! - Stopped after the provider accepted, before the record: the provider's status report,
//!   carrying the job's id, tells the bridge it went (WhatsApp's `biz_opaque_callback_data`,
//!   Twilio's `?job=` callback), or Twilio's message list shows it: recorded, never resent.
//!   Only a WhatsApp send no status report answered is sent again, and counted.
//! - Stopped after the record: nothing goes again.

#![allow(clippy::unwrap_used)] // a failed unwrap is the test failing

use bridge_testkit::testing::{
    AGENTS, CUSTOMER, FakeProviders, META_ACCESS_TOKEN, NoQueue, TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TestAws, lines,
    record_agent_reply, record_customer_text,
};
use jiff::{SignedDuration, Timestamp};
use shared::adapters::sqs::SqsQueue;
use shared::adapters::twilio::TwilioClient;
use shared::adapters::whatsapp::GraphClient;
use shared::app::apply_whatsapp_status::apply_whatsapp_status;
use shared::app::deliver_job::{
    CLAIM_LEASE, DEFAULT_RECONCILE_WAIT, DeliverError, Delivered, Deliverer, Failpoint, SendRates,
};
use shared::app::retry_budget::RetryBudget;
use shared::domain::LegState;
use shared::domain::{Job, JobPayload, SendTracking, Wamid, WhatsAppStatusReport};
use shared::ports::Conversations;

/// Every number these tests use: none may reach a log line, in any form.
const NUMBERS_IN_LOGS: [&str; 4] = [
    bridge_testkit::testing::KNOWN_NUMBERS[0],
    bridge_testkit::testing::KNOWN_NUMBERS[1],
    bridge_testkit::testing::KNOWN_NUMBERS[2],
    bridge_testkit::testing::KNOWN_NUMBERS[3],
];

type TestDeliverer = Deliverer<shared::adapters::dynamodb::DynamoStore, GraphClient, TwilioClient, SqsQueue>;

fn deliverer(aws: &TestAws, providers: &FakeProviders, failpoint: Option<Failpoint>) -> TestDeliverer {
    let http = shared::aws::provider_http_client(std::time::Duration::from_secs(2));
    let whatsapp = GraphClient::new(
        http.clone(),
        &providers.graph.uri(),
        shared::config::DEFAULT_GRAPH_API_VERSION,
        META_ACCESS_TOKEN.to_owned().into(),
    );
    let sms = TwilioClient::new(http, &providers.twilio.uri(), TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN.to_owned().into());
    let rates = SendRates { whatsapp_per_second: 1000.0, sms_per_second: 1000.0, whatsapp_pair_seconds: 0.0 };
    let d = Deliverer::new(
        lines(),
        aws.store(),
        whatsapp,
        sms,
        aws.queue(),
        "https://bridge.example.com/sms/status".into(),
        rates,
    );
    match failpoint {
        Some(step) => d.with_failpoint(step),
        None => d,
    }
}

/// When a stopped job comes back: its lease has run out, and then its reconciliation wait.
fn after_lease(t0: Timestamp) -> Timestamp {
    t0 + SignedDuration::try_from(CLAIM_LEASE).unwrap() + SignedDuration::from_secs(1)
}

fn after_reconcile_wait(t0: Timestamp) -> Timestamp {
    t0 + SignedDuration::try_from(DEFAULT_RECONCILE_WAIT).unwrap() + SignedDuration::from_secs(1)
}

/// Meta's `sent` status webhook for every copy the fake accepted, carrying back what the
/// bridge sent in `biz_opaque_callback_data`, through the WhatsApp webhook's use case.
async fn meta_reports_sent(aws: &TestAws, providers: &FakeProviders) {
    let line = lines().iter().next().unwrap().clone();
    for (n, body) in providers.whatsapp_sent().await.iter().enumerate() {
        let report = WhatsAppStatusReport {
            wamid: Wamid::parse(&format!("wamid.fake{n:04}")).unwrap(),
            status: "sent".into(),
            error_code: None,
            tracking: body["biz_opaque_callback_data"].as_str().and_then(SendTracking::parse),
            recipient: body["to"].as_str().and_then(|to| shared::domain::WaId::parse(to).ok()),
            recipient_user_id: None,
            pricing: None,
        };
        assert!(report.tracking.is_some(), "every send carries its tracking: {body}");
        apply_whatsapp_status(&aws.store(), &NoQueue, &line, &report, Timestamp::now(), &RetryBudget::none())
            .await
            .unwrap();
    }
}

/// Stops at `step` on the first delivery of each job, then delivers them again from a fresh
/// worker: early (the lease holds), after the lease, after the reconciliation wait. Returns
/// each agent's copies and the final outcomes.
async fn stop_then_redeliver(step: Failpoint, status_reports: bool) -> (Vec<usize>, Vec<Delivered>) {
    let aws = TestAws::new().await;
    let providers = FakeProviders::start().await;
    let jobs = record_customer_text(&aws, CUSTOMER, "Is my order ready?").await;
    let stopped = deliverer(&aws, &providers, Some(step));
    let t0 = Timestamp::from_millisecond(Timestamp::now().as_millisecond()).unwrap();
    for job in &jobs {
        assert!(matches!(stopped.deliver(job, t0).await, Err(DeliverError::Stopped(s)) if s == step));
    }
    if status_reports {
        meta_reports_sent(&aws, &providers).await;
    }
    let worker = deliverer(&aws, &providers, None);
    let mut outcomes = Vec::new();
    for job in &jobs {
        let early = worker.deliver(job, t0 + SignedDuration::from_secs(5)).await;
        if step == Failpoint::AfterRecord {
            outcomes.push(early.unwrap());
            continue;
        }
        // Another process's live lease holds the job: not an attempt, back when it ends.
        assert!(
            matches!(&early, Err(DeliverError::Wait { until, .. }) if *until > t0 + SignedDuration::from_secs(100)),
            "{step:?}: {early:?}"
        );
        let later = worker.deliver(job, after_lease(t0)).await;
        match later {
            Ok(delivered) => outcomes.push(delivered),
            // Uncertain, and no report yet: wait for one, then decide.
            Err(DeliverError::Wait { until, .. }) => {
                assert!(!status_reports, "{step:?}: the status report settled it");
                assert!(until > after_lease(t0) && until <= after_reconcile_wait(t0), "{until}");
                outcomes.push(worker.deliver(job, after_reconcile_wait(t0)).await.unwrap());
            }
            Err(other) => panic!("{step:?}: {other:?}"),
        }
    }
    // And once more: whatever happened, a finished job is never sent again.
    for job in &jobs {
        assert_eq!(worker.deliver(job, after_reconcile_wait(t0)).await.unwrap(), Delivered::AlreadyDone);
    }
    let copies: Vec<serde_json::Value> = providers
        .whatsapp_sent()
        .await
        .into_iter()
        .filter(|m| m["type"] == "template" || m["type"] == "text" || m["type"] == "interactive")
        .collect();
    let per_agent = AGENTS.iter().map(|a| copies.iter().filter(|m| m["to"] == *a).count()).collect();
    let thread = aws.store().thread(&conversation_of(&jobs[0])).await.unwrap();
    assert!(thread[0].legs.iter().all(|l| l.state == LegState::Sent), "{step:?}: every leg ends recorded sent");
    (per_agent, outcomes)
}

fn conversation_of(job: &Job) -> shared::domain::ConversationKey {
    match &job.payload {
        JobPayload::ForwardToAgent(f) => f.conversation.clone(),
        JobPayload::SendSms(s) => s.conversation.clone(),
        _ => panic!("a leg job"),
    }
}

#[tokio::test]
async fn stopped_after_the_claim_the_copy_goes_once() {
    bridge_testkit::testing::logs::capture_logs();
    let (per_agent, outcomes) = stop_then_redeliver(Failpoint::AfterClaim, false).await;
    assert_eq!(per_agent, [1, 1]);
    assert!(outcomes.iter().all(|o| matches!(o, Delivered::Sent { .. })), "{outcomes:?}");
    bridge_testkit::testing::logs::assert_no_number_logged(&NUMBERS_IN_LOGS);
}

#[tokio::test]
async fn stopped_after_the_send_the_status_report_settles_it_and_nothing_goes_twice() {
    bridge_testkit::testing::logs::capture_logs();
    let (per_agent, outcomes) = stop_then_redeliver(Failpoint::AfterSend, true).await;
    assert_eq!(per_agent, [1, 1], "reconciled from Meta's status reports");
    assert!(outcomes.iter().all(|o| matches!(o, Delivered::Reconciled { .. })), "{outcomes:?}");
    bridge_testkit::testing::logs::assert_no_number_logged(&NUMBERS_IN_LOGS);
}

#[tokio::test]
async fn stopped_after_the_send_with_no_status_report_the_copy_goes_again_counted() {
    bridge_testkit::testing::logs::capture_logs();
    // The one window left (docs/guarantees.md): Meta accepted, the worker stopped before its record,
    // and no status report came within the reconciliation wait.
    let (per_agent, outcomes) = stop_then_redeliver(Failpoint::AfterSend, false).await;
    assert_eq!(per_agent, [2, 2]);
    assert!(outcomes.iter().all(|o| matches!(o, Delivered::Sent { .. })), "{outcomes:?}");
    bridge_testkit::testing::logs::assert_no_number_logged(&NUMBERS_IN_LOGS);
}

#[tokio::test]
async fn stopped_after_the_record_nothing_goes_again() {
    bridge_testkit::testing::logs::capture_logs();
    let (per_agent, outcomes) = stop_then_redeliver(Failpoint::AfterRecord, false).await;
    assert_eq!(per_agent, [1, 1]);
    assert!(outcomes.iter().all(|o| *o == Delivered::AlreadyDone));
    bridge_testkit::testing::logs::assert_no_number_logged(&NUMBERS_IN_LOGS);
}

#[tokio::test]
async fn an_sms_sent_before_the_worker_stopped_is_found_in_twilios_list_and_not_sent_again() {
    bridge_testkit::testing::logs::capture_logs();
    let aws = TestAws::new().await;
    let providers = FakeProviders::start().await;
    let job = record_agent_reply(&aws, CUSTOMER, "See you at 9").await;
    let t0 = Timestamp::from_millisecond(Timestamp::now().as_millisecond()).unwrap();
    let stopped = deliverer(&aws, &providers, Some(Failpoint::AfterSend));
    assert!(matches!(stopped.deliver(&job, t0).await, Err(DeliverError::Stopped(_))));

    let worker = deliverer(&aws, &providers, None);
    assert!(matches!(worker.deliver(&job, after_lease(t0)).await, Err(DeliverError::Wait { .. })));
    let delivered = worker.deliver(&job, after_reconcile_wait(t0)).await.unwrap();
    let sent = providers.sms_sent().await;
    assert_eq!(sent.len(), 1, "listed at Twilio, so not sent again: {sent:?}");
    assert!(
        matches!(&delivered, Delivered::Reconciled { provider_id } if provider_id.starts_with("SM")),
        "{delivered:?}"
    );
    let thread = aws.store().thread(&conversation_of(&job)).await.unwrap();
    let leg = &thread.last().unwrap().legs[0];
    assert_eq!((leg.state, leg.provider_id.as_deref()), (LegState::Sent, Some(delivered_id(&delivered))));
    bridge_testkit::testing::logs::assert_no_number_logged(&NUMBERS_IN_LOGS);
}

fn delivered_id(delivered: &Delivered) -> &str {
    match delivered {
        Delivered::Reconciled { provider_id } | Delivered::Sent { provider_id, .. } => provider_id,
        other => panic!("{other:?}"),
    }
}
