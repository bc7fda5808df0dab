//! The worker under faults at each step of a delivery (issue 14), over the wire: DynamoDB
//! refusing calls before the claim, after it, and after the provider accepted; a provider
//! that accepts and answers after the client gave up; and the invocation's deadline.
//!
//! What must hold: every copy goes out exactly once (or, where nobody can tell, is sent again
//! and counted), no claimed job is left stranded, and the worker never outlives its deadline.

#![allow(clippy::unwrap_used)] // a failed unwrap is the test failing

use std::time::{Duration, Instant};

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use bridge_emulator::faults::{AwsFaults, FaultKind, FaultWhen};
use bridge_testkit::testing::{
    AGENTS, CUSTOMER, FakeProviders, LINE_SMS_NUMBER, META_ACCESS_TOKEN, NoQueue, TWILIO_ACCOUNT_SID,
    TWILIO_AUTH_TOKEN, TestAws, lines, record_agent_reply, record_customer_text,
};
use jiff::{SignedDuration, Timestamp};
use shared::adapters::dynamodb::DynamoStore;
use shared::adapters::sqs::SqsQueue;
use shared::adapters::twilio::TwilioClient;
use shared::adapters::whatsapp::GraphClient;
use shared::app::apply_sms_status::{SmsStatusReport, apply_sms_status};
use shared::app::apply_whatsapp_status::apply_whatsapp_status;
use shared::app::deliver_job::{CLAIM_LEASE, Deadline, DeliverError, Delivered, Deliverer, SendRates};
use shared::app::retry_budget::RetryBudget;
use shared::domain::LegState;
use shared::domain::{E164, Job, JobPayload, RetryPolicy, SendTracking, Wamid, WhatsAppStatusReport};
use shared::ports::Conversations;

/// Every number these tests use: none may reach a log line, in any form.
const NUMBERS_IN_LOGS: [&str; 6] = [
    bridge_testkit::testing::KNOWN_NUMBERS[0],
    bridge_testkit::testing::KNOWN_NUMBERS[1],
    bridge_testkit::testing::KNOWN_NUMBERS[2],
    bridge_testkit::testing::KNOWN_NUMBERS[3],
    "+14155550200",
    "+14155550203",
];

type TestDeliverer = Deliverer<DynamoStore, GraphClient, TwilioClient, SqsQueue>;

/// Calls that fail until the test clears them.
const UNTIL_CLEARED: usize = 1_000_000;
/// What the worker waits for a provider before the attempt is uncertain.
const SEND_TIMEOUT: Duration = Duration::from_millis(500);

/// A deliverer whose DynamoDB and SQS calls pass through `faults`.
async fn deliverer(aws: &TestAws, providers: &FakeProviders, faults: &AwsFaults) -> TestDeliverer {
    let sdk = aws.sdk_config().await;
    let sdk = faults.sdk_config(&sdk);
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &aws.table, Duration::from_secs(3600));
    let queue = SqsQueue::new(aws_sdk_sqs::Client::new(&sdk), &aws.queue_url);
    let http = shared::aws::provider_http_client(SEND_TIMEOUT);
    let whatsapp = GraphClient::new(
        http.clone(),
        &providers.graph.uri(),
        shared::config::DEFAULT_GRAPH_API_VERSION,
        META_ACCESS_TOKEN.to_owned().into(),
    );
    let sms = TwilioClient::new(http, &providers.twilio.uri(), TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN.to_owned().into());
    let rates = SendRates { whatsapp_per_second: 1000.0, sms_per_second: 1000.0, whatsapp_pair_seconds: 0.0 };
    Deliverer::new(lines(), store, whatsapp, sms, queue, "https://bridge.example.com/sms/status".into(), rates)
        .with_send_timeout(SEND_TIMEOUT)
}

fn copies_to(sent: &[serde_json::Value], agent: &str) -> usize {
    sent.iter().filter(|m| m["to"] == agent && m["type"] != "reaction").count()
}

async fn legs_sent(aws: &TestAws, job: &Job) -> bool {
    let JobPayload::ForwardToAgent(forward) = &job.payload else { panic!("a forward") };
    let thread = aws.store().thread(&forward.conversation).await.unwrap();
    thread.iter().flat_map(|m| &m.legs).filter(|l| l.job_id == job.job_id).all(|l| l.state == LegState::Sent)
}

/// DynamoDB refuses every `operation` call from the `skip`+1-th on, while the worker delivers
/// a copy; then recovers, and the same worker delivers the job again.
async fn store_fails_at(step: &str, operation: &str, skip: usize) {
    let aws = TestAws::new().await;
    let providers = FakeProviders::start().await;
    let faults = AwsFaults::seeded(11);
    let worker = deliverer(&aws, &providers, &faults).await;
    let job = record_customer_text(&aws, CUSTOMER, "Is my order ready?").await.remove(0);

    faults.inject(operation, FaultWhen::After { skip, fail: UNTIL_CLEARED }, FaultKind::Refuse);
    let first = worker.deliver(&job, Timestamp::now()).await;
    assert!(
        matches!(first, Err(DeliverError::Retry { .. } | DeliverError::Wait { .. })),
        "{step}: the job comes back: {first:?}"
    );
    assert!(faults.injected() > 0, "{step}: the fault was hit");
    faults.clear();
    let again = worker.deliver(&job, Timestamp::now()).await.unwrap();
    assert!(matches!(again, Delivered::Sent { .. } | Delivered::Reconciled { .. }), "{step}: {again:?}");
    assert_eq!(worker.deliver(&job, Timestamp::now()).await.unwrap(), Delivered::AlreadyDone, "{step}");
    assert_eq!(copies_to(&providers.whatsapp_sent().await, AGENTS[0]), 1, "{step}: exactly once");
    assert!(legs_sent(&aws, &job).await, "{step}: recorded sent");
}

#[tokio::test]
async fn dynamodb_refusing_the_claim_sends_nothing_until_it_recovers_then_once() {
    bridge_testkit::testing::logs::capture_logs();
    store_fails_at("the claim", "DynamoDB_20120810.UpdateItem", 0).await;
    bridge_testkit::testing::logs::assert_no_number_logged(&NUMBERS_IN_LOGS);
}

#[tokio::test]
async fn dynamodb_failing_at_the_context_read_gives_the_job_back_and_it_goes_once() {
    bridge_testkit::testing::logs::capture_logs();
    // The copy's context can't be read: nothing was sent, the claim is given back.
    store_fails_at("the context read", "DynamoDB_20120810.BatchGetItem", 0).await;
    bridge_testkit::testing::logs::assert_no_number_logged(&NUMBERS_IN_LOGS);
}

#[tokio::test]
async fn dynamodb_failing_every_call_after_the_claim_leaves_the_lease_to_its_owner_and_it_goes_once() {
    bridge_testkit::testing::logs::capture_logs();
    // Everything after the claim fails, the give-back included: the claim stays, this
    // process remembers nothing went out, and its own retry resumes its own lease.
    store_fails_at("every call after the claim", "DynamoDB", 1).await;
    bridge_testkit::testing::logs::assert_no_number_logged(&NUMBERS_IN_LOGS);
}

#[tokio::test]
async fn dynamodb_refusing_the_routing_record_after_the_provider_accepted_records_it_later_and_never_resends() {
    bridge_testkit::testing::logs::capture_logs();
    // The reply-routing record refused: the send is remembered, and recorded later.
    store_fails_at("the copy's routing record", "DynamoDB_20120810.PutItem", 0).await;
    bridge_testkit::testing::logs::assert_no_number_logged(&NUMBERS_IN_LOGS);
}

#[tokio::test]
async fn dynamodb_refusing_the_legs_record_after_the_provider_accepted_records_it_later_and_never_resends() {
    bridge_testkit::testing::logs::capture_logs();
    // The leg's record refused: the send is remembered, and recorded later.
    store_fails_at("the leg's record", "DynamoDB_20120810.UpdateItem", 1).await;
    bridge_testkit::testing::logs::assert_no_number_logged(&NUMBERS_IN_LOGS);
}

#[tokio::test]
async fn a_send_recorded_by_nobody_is_found_by_another_process_from_metas_status_report() {
    bridge_testkit::testing::logs::capture_logs();
    // The worker that sent is gone (its memory with it): Meta's `sent` report, carrying the
    // job's id, is what tells the next one.
    let aws = TestAws::new().await;
    let providers = FakeProviders::start().await;
    let faults = AwsFaults::seeded(12);
    let gone = deliverer(&aws, &providers, &faults).await;
    let job = record_customer_text(&aws, CUSTOMER, "Is my order ready?").await.remove(0);
    faults.inject("DynamoDB_20120810.PutItem", FaultWhen::Always, FaultKind::Refuse);
    let t0 = Timestamp::now();
    assert!(matches!(gone.deliver(&job, t0).await, Err(DeliverError::Wait { .. })));
    faults.clear();
    drop(gone);

    let sent = providers.whatsapp_sent().await;
    let report = WhatsAppStatusReport {
        wamid: Wamid::parse("wamid.fake0000").unwrap(),
        status: "sent".into(),
        error_code: None,
        tracking: sent[0]["biz_opaque_callback_data"].as_str().and_then(SendTracking::parse),
        recipient: None,
        recipient_user_id: None,
        pricing: None,
    };
    let line = lines().iter().next().unwrap().clone();
    let handled =
        apply_whatsapp_status(&aws.store(), &NoQueue, &line, &report, t0, &RetryBudget::none()).await.unwrap().unwrap();
    assert_eq!(handled.noted, 1);

    let next = deliverer(&aws, &providers, &AwsFaults::seeded(13)).await;
    let after_lease = t0 + SignedDuration::try_from(CLAIM_LEASE).unwrap() + SignedDuration::from_secs(1);
    assert_eq!(
        next.deliver(&job, after_lease).await.unwrap(),
        Delivered::Reconciled { provider_id: "wamid.fake0000".into() }
    );
    assert_eq!(copies_to(&providers.whatsapp_sent().await, AGENTS[0]), 1);
    assert!(legs_sent(&aws, &job).await);
    bridge_testkit::testing::logs::assert_no_number_logged(&NUMBERS_IN_LOGS);
}

#[tokio::test]
async fn an_sms_accepted_then_answered_too_late_is_learnt_from_its_callback_and_not_resent() {
    bridge_testkit::testing::logs::capture_logs();
    let aws = TestAws::new().await;
    let providers = FakeProviders::start().await;
    providers.twilio_accepts_then_hangs(SEND_TIMEOUT * 4, 1).await;
    let worker = deliverer(&aws, &providers, &AwsFaults::seeded(14)).await;
    let job = record_agent_reply(&aws, CUSTOMER, "See you at 9").await;
    let t0 = Timestamp::now();
    let first = worker.deliver(&job, t0).await;
    assert!(matches!(first, Err(DeliverError::Wait { .. })), "uncertain, not retried at once: {first:?}");

    // Twilio's `sent` callback names the job in its URL: the leg learns the sid.
    let JobPayload::SendSms(sms) = &job.payload else { panic!("an SMS job") };
    let sid = "SM00000000000000000000000000009000"; // the fake's slow answers are numbered from 9000
    let report = SmsStatusReport {
        sid: sid.to_owned(),
        status: "sent".into(),
        error_code: None,
        job: Some(job.job_id.clone()),
        from: Some(E164::parse(LINE_SMS_NUMBER).unwrap()),
        to: Some(sms.conversation.customer.clone()),
    };
    apply_sms_status(&aws.store(), &NoQueue, &lines(), &report, t0, &RetryBudget::none()).await.unwrap();

    let again = worker.deliver(&job, t0 + SignedDuration::from_secs(5)).await.unwrap();
    assert_eq!(again, Delivered::Reconciled { provider_id: sid.to_owned() });
    assert_eq!(providers.sms_sent().await.len(), 1, "sent once");
    bridge_testkit::testing::logs::assert_no_number_logged(&NUMBERS_IN_LOGS);
}

#[tokio::test]
async fn an_sms_accepted_then_answered_too_late_is_found_in_twilios_list_and_not_resent() {
    bridge_testkit::testing::logs::capture_logs();
    let aws = TestAws::new().await;
    let providers = FakeProviders::start().await;
    providers.twilio_accepts_then_hangs(SEND_TIMEOUT * 4, 1).await;
    let worker = deliverer(&aws, &providers, &AwsFaults::seeded(15)).await.with_reconcile_wait(Duration::from_secs(30));
    let job = record_agent_reply(&aws, CUSTOMER, "See you at 9").await;
    let t0 = Timestamp::now();
    assert!(matches!(worker.deliver(&job, t0).await, Err(DeliverError::Wait { .. })));
    // No callback came: after the wait the bridge asks Twilio's list.
    let again = worker.deliver(&job, t0 + SignedDuration::from_secs(31)).await.unwrap();
    assert!(matches!(&again, Delivered::Reconciled { provider_id } if provider_id.starts_with("SM")), "{again:?}");
    assert_eq!(providers.sms_sent().await.len(), 1, "sent once");
    bridge_testkit::testing::logs::assert_no_number_logged(&NUMBERS_IN_LOGS);
}

#[tokio::test]
async fn a_whatsapp_copy_answered_too_late_goes_once_with_its_report_and_twice_counted_without() {
    bridge_testkit::testing::logs::capture_logs();
    for report in [true, false] {
        let aws = TestAws::new().await;
        let providers = FakeProviders::start().await;
        providers.graph_accepts_then_hangs(SEND_TIMEOUT * 4, 1).await;
        let worker =
            deliverer(&aws, &providers, &AwsFaults::seeded(16)).await.with_reconcile_wait(Duration::from_secs(30));
        let job = record_customer_text(&aws, CUSTOMER, "Is my order ready?").await.remove(0);
        let t0 = Timestamp::now();
        assert!(matches!(worker.deliver(&job, t0).await, Err(DeliverError::Wait { .. })));
        if report {
            let sent = providers.whatsapp_sent().await;
            let status = WhatsAppStatusReport {
                wamid: Wamid::parse("wamid.fake0000").unwrap(),
                status: "delivered".into(),
                error_code: None,
                tracking: sent[0]["biz_opaque_callback_data"].as_str().and_then(SendTracking::parse),
                recipient: None,
                recipient_user_id: None,
                pricing: None,
            };
            let line = lines().iter().next().unwrap().clone();
            apply_whatsapp_status(&aws.store(), &NoQueue, &line, &status, t0, &RetryBudget::none()).await.unwrap();
        }
        let again = worker.deliver(&job, t0 + SignedDuration::from_secs(31)).await.unwrap();
        let copies = copies_to(&providers.whatsapp_sent().await, AGENTS[0]);
        if report {
            assert_eq!(again, Delivered::Reconciled { provider_id: "wamid.fake0000".into() });
            assert_eq!(copies, 1, "Meta's report settled it");
        } else {
            assert!(matches!(again, Delivered::Sent { .. }), "{again:?}");
            assert_eq!(copies, 2, "no report: sent again (AmbiguousResolved resent_unverified)");
        }
        assert!(legs_sent(&aws, &job).await);
    }
    bridge_testkit::testing::logs::assert_no_number_logged(&NUMBERS_IN_LOGS);
}

/// `job`'s leg, as its conversation's thread shows it.
async fn leg_of(aws: &TestAws, job: &Job) -> shared::ports::ThreadLeg {
    let JobPayload::ForwardToAgent(forward) = &job.payload else { panic!("{job:?}") };
    let thread = aws.store().thread(&forward.conversation).await.unwrap();
    thread.into_iter().flat_map(|m| m.legs).find(|l| l.job_id == job.job_id).unwrap()
}

/// An SQS record for `job`, in its own order group.
fn record(n: usize, job: &Job) -> SqsMessage {
    let mut record = SqsMessage::default();
    record.message_id = Some(format!("m{n}"));
    record.body = Some(job.encode());
    record.attributes.insert("MessageGroupId".into(), job.order_group());
    record.attributes.insert("SentTimestamp".into(), Timestamp::now().as_millisecond().to_string());
    record
}

#[tokio::test]
async fn the_worker_keeps_its_deadline_and_hands_back_what_it_cannot_finish() {
    bridge_testkit::testing::logs::capture_logs();
    let aws = TestAws::new().await;
    let providers = FakeProviders::start().await;
    // Every send hangs past the client's timeout.
    providers.graph_accepts_then_hangs(Duration::from_secs(10), 100).await;
    let worker = delivery_worker::DeliveryWorker::new(
        deliverer(&aws, &providers, &AwsFaults::seeded(17)).await,
        RetryPolicy::default(),
    );
    let mut jobs = Vec::new();
    for c in 0..4 {
        jobs.extend(record_customer_text(&aws, &format!("+1415555020{c}"), "Is my order ready?").await);
    }
    let mut event = SqsEvent::default();
    event.records = jobs.iter().enumerate().map(|(n, job)| record(n, job)).collect();
    // Too little time for any send: nothing starts, and nothing spends an attempt.
    let too_short = SEND_TIMEOUT / 2;
    let response = worker.handle_batch_until(event.clone(), Deadline::after(too_short)).await;
    assert_eq!(response.batch_item_failures.len(), jobs.len(), "every record comes back");
    assert!(providers.whatsapp_sent().await.is_empty());
    for job in &jobs {
        assert_eq!(leg_of(&aws, job).await.state, LegState::Queued, "handed back untried");
    }

    // Time for one send each: the batch's groups (one copy each) start side by side, every
    // send is cut off by its timeout before the deadline, and every record comes back.
    let budget = Duration::from_millis(2500);
    let started = Instant::now();
    let response = worker.handle_batch_until(event, Deadline::after(budget)).await;
    let took = started.elapsed();
    assert!(took < budget, "answered within the deadline: {took:?}");
    assert_eq!(response.batch_item_failures.len(), jobs.len(), "every record comes back");
    assert_eq!(providers.whatsapp_sent().await.len(), jobs.len(), "each group's head started once");
    for job in &jobs {
        // Cut off after the provider may have taken it: found out before any second send.
        assert_eq!(leg_of(&aws, job).await.state, LegState::Uncertain);
    }
    bridge_testkit::testing::logs::assert_no_number_logged(&NUMBERS_IN_LOGS);
}
