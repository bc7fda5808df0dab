//! Operator tools (issue 4, issue 19): after a fix, the dead-letter queue is redriven and every
//! job goes out once, in its conversation's order; while the cause still fails, nothing moves;
//! `dlq list` says why each job failed and leaves the queue as it was; the thread says why a
//! message failed (class and code).

#![allow(clippy::unwrap_used)] // a failed unwrap is the test failing

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bridge_ops::dead_letters::{self, Reason, RedriveError, RedriveOptions};
use bridge_ops::provider_checks::{Check, ProviderChecks};
use bridge_testkit::testing::{
    AGENTS, CUSTOMER, FakeProviders, FaultSwitch, KNOWN_NUMBERS, TestAws, graph_error, lookup, message_sid,
    record_agent_reply, record_customer_text, signed_twilio_form, twilio_error, twilio_inbound_params,
};
use delivery_worker::DeliveryWorker;
use delivery_worker::sqs_poller::SqsPoller;
use http_body_util::BodyExt;
use lambda_http::Body;
use shared::config::{DeliveryWorkerConfig, SmsWebhookConfig};
use shared::domain::{ConversationKey, E164, ErrorClass, FailureClass, Job, JobKind, JobPayload, LineId};
use shared::ports::DeliveryQueue;
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

    // The access token is revoked: every send escalates, and every read fails.
    let revoked = FaultSwitch::mount(&providers.graph, graph_error(401, 190)).await;
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

    // Redriving before the token is rotated would only park them again: refused.
    let checks = ProviderChecks::from_lookup(&lookup(&env));
    let refused = dead_letters::redrive(&aws.sqs, &aws.dlq_url, &aws.queue_url, &checks, options()).await;
    assert!(matches!(refused, Err(RedriveError::Refused(_))), "{refused:?}");
    assert_eq!((aws.dlq_depth().await, aws.queue_depth().await), (2, 0));

    // The operator rotates the token and redrives.
    revoked.off();
    let sent_before_redrive = providers.whatsapp_sent().await.len();
    let report = dead_letters::redrive(&aws.sqs, &aws.dlq_url, &aws.queue_url, &checks, options()).await.unwrap();
    assert_eq!(report.moved.total(), 2);
    while poller.poll_once(&worker).await.unwrap() > 0 {}
    // Redriving again (nothing left) and redelivering changes nothing.
    let again = dead_letters::redrive(&aws.sqs, &aws.dlq_url, &aws.queue_url, &checks, options()).await.unwrap();
    assert_eq!(again.moved.total(), 0);

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

/// Long polls of a second: SQS's 20 s would make every drain's last, empty answer slow.
fn options() -> RedriveOptions {
    RedriveOptions { max: None, force: false, dry_run: false, wait: Duration::from_secs(1) }
}

/// Three customers besides the usual one: each texts three times (a copy to each agent) and
/// agent 0 answers the first two several times.
const CUSTOMERS: [&str; 3] = ["+14155550161", "+14155550162", "+14155550163"];

/// Every form a number of the test could take in text.
fn numbers() -> Vec<String> {
    let mut digits: Vec<String> =
        KNOWN_NUMBERS.iter().chain(&CUSTOMERS).map(|n| n.trim_start_matches('+').to_owned()).collect();
    let national: Vec<String> = digits.iter().map(|d| d[1..].to_owned()).collect();
    digits.extend(national);
    digits
}

fn assert_no_number(printed: &str) {
    for number in numbers() {
        assert!(!printed.contains(&number), "a full number in the output:\n{printed}");
    }
}

/// 25 jobs as the webhooks record them, in the order they were recorded: 18 copies (six
/// customer/agent groups of three) and 7 replies by SMS (groups of four and three).
async fn recorded_jobs(aws: &TestAws) -> Vec<Job> {
    let mut jobs = Vec::new();
    for customer in CUSTOMERS {
        for text in ["one", "two", "three"] {
            let recorded = record_customer_text(aws, customer, text).await;
            jobs.extend(recorded.into_iter().filter(|job| matches!(job.payload, JobPayload::ForwardToAgent(_))));
        }
    }
    for (customer, replies) in [(CUSTOMERS[0], 4), (CUSTOMERS[1], 3)] {
        for reply in 0..replies {
            jobs.push(record_agent_reply(aws, customer, &format!("reply {reply}")).await);
        }
    }
    assert_eq!(jobs.len(), 25);
    jobs
}

/// Each order group's job ids, in order.
fn by_group<'a>(jobs: impl IntoIterator<Item = &'a Job>) -> HashMap<String, Vec<String>> {
    let mut groups: HashMap<String, Vec<String>> = HashMap::new();
    for job in jobs {
        groups.entry(job.order_group()).or_default().push(job.job_id.to_string());
    }
    groups
}

#[tokio::test]
async fn a_redrive_moves_all_25_parked_jobs_in_their_conversations_order_once_the_cause_is_fixed() {
    let aws = TestAws::new().await;
    let providers = FakeProviders::start().await;
    let env = providers.test_env(&aws);
    let sdk = aws.sdk_config().await;
    let worker = DeliveryWorker::from_config(DeliveryWorkerConfig::from_lookup(&lookup(&env)).unwrap(), &sdk);
    let poller = SqsPoller::new(aws.sqs.clone(), &aws.queue_url, 0);
    let checks = ProviderChecks::from_lookup(&lookup(&env));

    // Both providers' credentials are revoked: the worker parks every job as production does.
    let graph_revoked = FaultSwitch::mount(&providers.graph, graph_error(401, 190)).await;
    let twilio_revoked = FaultSwitch::mount(&providers.twilio, twilio_error(401, 20003)).await;
    let jobs = recorded_jobs(&aws).await;
    aws.queue().enqueue(&jobs).await.unwrap();
    while poller.poll_once(&worker).await.unwrap() > 0 {}
    assert_eq!((aws.dlq_depth().await, aws.queue_depth().await), (25, 0), "all 25 parked");

    // The listing: why each failed, never a number, and every job left where it was.
    let listing = dead_letters::list(&aws.sqs, &aws.dlq_url, &aws.store(), Duration::from_secs(1)).await.unwrap();
    let printed = format!("{listing}{:#}", listing.to_json());
    println!("{printed}");
    assert_no_number(&printed);
    assert_eq!(listing.in_queue, 25);
    assert_eq!(listing.records.len() + listing.not_shown(), 25);
    assert!(!listing.records.is_empty());
    for record in &listing.records {
        let (kind, code) = match record.kind {
            Some(JobKind::ForwardToAgent) => (JobKind::ForwardToAgent, 190),
            Some(JobKind::SendSms) => (JobKind::SendSms, 20003),
            other => panic!("a parked {other:?}"),
        };
        assert_eq!(record.line.as_ref().map(ToString::to_string).as_deref(), Some("main"));
        let to = record.to.as_deref().unwrap();
        assert!(to.contains("*****"), "masked: {to}");
        assert!(record.age.is_some());
        match &record.reason {
            Reason::Failed { failure, .. } => {
                assert_eq!((failure.class, failure.code), (FailureClass::Provider(ErrorClass::Escalate), Some(code)));
                assert_eq!(record.kind, Some(kind));
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(aws.dlq_depth().await, 25, "listing moved nothing");

    // The cause still fails: nothing moves, and the refusal names each failing provider.
    let refused = dead_letters::redrive(&aws.sqs, &aws.dlq_url, &aws.queue_url, &checks, options()).await;
    let Err(RedriveError::Refused(failing)) = &refused else { panic!("{refused:?}") };
    let failing: Vec<&Check> = failing.iter().filter(|(_, outcome)| !outcome.works()).map(|(c, _)| c).collect();
    assert_eq!(failing, [&Check::WhatsApp(LineId::parse("main").unwrap()), &Check::Sms]);
    let refusal = refused.unwrap_err().to_string();
    println!("{refusal}");
    assert!(refusal.contains("escalate 190") && refusal.contains("escalate 20003"), "{refusal}");
    assert_no_number(&refusal);
    assert_eq!((aws.dlq_depth().await, aws.queue_depth().await), (25, 0), "a refusal moves nothing");

    // Only WhatsApp fixed: the SMS jobs would bounce, so still nothing moves.
    graph_revoked.off();
    let refused = dead_letters::redrive(&aws.sqs, &aws.dlq_url, &aws.queue_url, &checks, options()).await;
    let Err(RedriveError::Refused(outcomes)) = &refused else { panic!("{refused:?}") };
    assert_eq!(outcomes.iter().filter(|(_, o)| !o.works()).map(|(c, _)| c).collect::<Vec<_>>(), [&Check::Sms]);
    assert_eq!(aws.dlq_depth().await, 25);

    // Fixed: a dry run counts, then the redrive moves all 25 in one go.
    twilio_revoked.off();
    let dry_run = RedriveOptions { dry_run: true, ..options() };
    let would = dead_letters::redrive(&aws.sqs, &aws.dlq_url, &aws.queue_url, &checks, dry_run).await.unwrap();
    println!("{would}");
    assert_eq!(would.moved.total() + would.left, 25);
    assert_eq!((aws.dlq_depth().await, aws.queue_depth().await), (25, 0), "a dry run moves nothing");

    let report = dead_letters::redrive(&aws.sqs, &aws.dlq_url, &aws.queue_url, &checks, options()).await.unwrap();
    let printed = report.to_string();
    println!("{printed}");
    assert_no_number(&printed);
    assert_eq!(report.moved.total(), 25);
    let main = LineId::parse("main").unwrap();
    let mut tally = report.moved.by_kind_and_line().to_vec();
    tally.sort_by_key(|(kind, _, _)| kind.as_str());
    assert_eq!(tally, [(JobKind::ForwardToAgent, main.clone(), 18), (JobKind::SendSms, main, 7)]);
    assert_eq!((report.left, aws.dlq_depth().await), (0, 0), "drained");
    assert!(printed.contains("the dead-letter queue is empty"), "{printed}");

    // The delivery queue gives each conversation's jobs back in the order they were recorded.
    let redriven = aws.take_jobs().await;
    assert_eq!(redriven.len(), 25);
    assert_eq!(by_group(&redriven), by_group(&jobs), "every group in its order");
}

#[tokio::test]
async fn forced_and_capped_redrives_move_what_they_are_told_and_the_listing_leaves_the_queue_alone() {
    let aws = TestAws::new().await;
    let providers = FakeProviders::start().await;
    let env = providers.test_env(&aws);
    let checks = ProviderChecks::from_lookup(&lookup(&env));
    // Parked straight into the DLQ as the worker does it: the body, its group, its message id.
    let jobs = recorded_jobs(&aws).await;
    let parking = aws.queue().with_dead_letter_queue(&aws.dlq_url);
    for (i, job) in jobs.iter().enumerate() {
        parking.dead_letter(&job.encode(), Some(&job.order_group()), &format!("parked-{i}")).await.unwrap();
    }
    let _revoked = FaultSwitch::mount(&providers.graph, graph_error(401, 190)).await;

    // A listing right before a redrive leaves all 25 to move.
    let listing = dead_letters::list(&aws.sqs, &aws.dlq_url, &aws.store(), Duration::from_secs(1)).await.unwrap();
    assert_eq!(listing.records.len() + listing.not_shown(), 25);
    assert!(listing.records.iter().all(|r| r.reason == Reason::NoFailure(shared::domain::LegState::Queued)));

    // Still revoked, but forced (the operator knows better) and capped: 10 move.
    let capped = RedriveOptions { max: Some(10), force: true, ..options() };
    let report = dead_letters::redrive(&aws.sqs, &aws.dlq_url, &aws.queue_url, &checks, capped).await.unwrap();
    assert_eq!((report.moved.total(), report.left, report.checks.len()), (10, 15, 0));
    assert_eq!((aws.dlq_depth().await, aws.queue_depth().await), (15, 10));

    // The rest, forced too; then the delivery queue holds every group in its order.
    let forced = RedriveOptions { force: true, ..options() };
    let report = dead_letters::redrive(&aws.sqs, &aws.dlq_url, &aws.queue_url, &checks, forced).await.unwrap();
    assert_eq!((report.moved.total(), report.left), (15, 0));
    let redriven = aws.take_jobs().await;
    assert_eq!(by_group(&redriven), by_group(&jobs));
}

#[tokio::test]
async fn records_that_are_not_jobs_stay_in_the_dead_letter_queue_and_the_rest_moves() {
    let aws = TestAws::new().await;
    let providers = FakeProviders::start().await;
    let env = providers.test_env(&aws);
    let checks = ProviderChecks::from_lookup(&lookup(&env));
    let jobs = record_customer_text(&aws, CUSTOMER, "hello").await;
    let parking = aws.queue().with_dead_letter_queue(&aws.dlq_url);
    parking.dead_letter("not a job", None, "garbage-1").await.unwrap();
    for (i, job) in jobs.iter().enumerate() {
        parking.dead_letter(&job.encode(), Some(&job.order_group()), &format!("parked-{i}")).await.unwrap();
    }

    let listing = dead_letters::list(&aws.sqs, &aws.dlq_url, &aws.store(), Duration::from_secs(1)).await.unwrap();
    assert_eq!(listing.records.iter().filter(|r| r.reason == Reason::NotAJob).count(), 1, "{listing}");

    let report = dead_letters::redrive(&aws.sqs, &aws.dlq_url, &aws.queue_url, &checks, options()).await.unwrap();
    assert_eq!((report.moved.total(), report.kept_back, report.left), (jobs.len(), 1, 1), "{report}");
    assert_eq!(aws.dlq_depth().await, 1);
    assert_eq!(aws.take_jobs().await.len(), jobs.len());
}
