//! The delivery guarantee (README, "What the bridge promises"), proven by stopping the
//! worker dead after each step of a job and delivering the job again, over the wire.
//!
//! Stopped after the claim: the redelivery sends it, once. Stopped after the provider
//! accepted it but before the record: the redelivery can't know, sends again (the stated
//! at-least-once window) and reports `Reclaimed`. Stopped after the record: the redelivery
//! sends nothing.

#![allow(clippy::unwrap_used)] // a failed unwrap is the test failing

use jiff::{SignedDuration, Timestamp};
use shared::adapters::sqs::SqsQueue;
use shared::adapters::twilio::TwilioClient;
use shared::adapters::whatsapp::GraphClient;
use shared::app::deliver_job::{CLAIM_LEASE, DeliverError, Delivered, Deliverer, Failpoint, SendRates};
use shared::app::receive_sms::receive_sms;
use shared::domain::{E164, InboundSms, Job, ProviderMessageId};
use shared::ports::ConversationStore;
use shared::testing::{
    AGENTS, CUSTOMER, FakeProviders, LINE_SMS_NUMBER, META_ACCESS_TOKEN, TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN,
    TestAws, lines, message_sid,
};

type TestDeliverer = Deliverer<shared::adapters::dynamodb::DynamoStore, GraphClient, TwilioClient, SqsQueue>;

fn deliverer(aws: &TestAws, providers: &FakeProviders, failpoint: Option<Failpoint>) -> TestDeliverer {
    let http = shared::aws::provider_http_client(std::time::Duration::from_secs(2));
    let whatsapp = GraphClient::new(http.clone(), &providers.graph.uri(), "v23.0", META_ACCESS_TOKEN.to_owned().into());
    let sms = TwilioClient::new(http, &providers.twilio.uri(), TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN.to_owned().into());
    let rates = SendRates { whatsapp_per_second: 1000.0, sms_per_second: 1000.0 };
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

/// A customer's text, recorded and queued as the SMS webhook does; returns its jobs.
async fn forward_jobs(aws: &TestAws) -> Vec<Job> {
    let line = lines().iter().next().unwrap().clone();
    let sms = InboundSms {
        provider_message_id: ProviderMessageId::parse(&message_sid()).unwrap(),
        from: E164::parse(CUSTOMER).unwrap(),
        to: E164::parse(LINE_SMS_NUMBER).unwrap(),
        body: "Is my order ready?".into(),
        attachments: vec![],
        received_at: Timestamp::now(),
    };
    receive_sms(&aws.store(), &shared::testing::NoQueue, &line, sms, &mut fastrand::Rng::new()).await.unwrap();
    let seen = aws.items_with_prefix("SEEN#").await;
    seen[0].get("jobs").unwrap().as_l().unwrap().iter().map(|j| Job::decode(j.as_s().unwrap()).unwrap()).collect()
}

/// Stops at `step` on the first delivery, redelivers after the lease ran out, and returns
/// how many copies each agent received and what the redelivery said.
async fn stop_then_redeliver(step: Failpoint) -> (Vec<usize>, Vec<Delivered>) {
    let aws = TestAws::new().await;
    let providers = FakeProviders::start().await;
    let jobs = forward_jobs(&aws).await;
    let stopped = deliverer(&aws, &providers, Some(step));
    let t0 = Timestamp::now();
    for job in &jobs {
        assert!(matches!(stopped.deliver(job, t0).await, Err(DeliverError::Stopped(s)) if s == step));
    }
    let worker = deliverer(&aws, &providers, None);
    // SQS redelivers after the visibility timeout; before the lease runs out the job is busy.
    for job in &jobs {
        let early = worker.deliver(job, t0 + SignedDuration::from_secs(5)).await;
        if step != Failpoint::AfterRecord {
            assert!(
                matches!(early, Err(DeliverError::Retry { .. })),
                "{step:?}: a live lease holds the job: {early:?}"
            );
        }
    }
    let after_lease = t0 + SignedDuration::try_from(CLAIM_LEASE).unwrap() + SignedDuration::from_secs(1);
    let mut outcomes = Vec::new();
    for job in &jobs {
        outcomes.push(worker.deliver(job, after_lease).await.unwrap());
    }
    // And once more: whatever happened, a finished job is never sent again.
    for job in &jobs {
        assert_eq!(worker.deliver(job, after_lease).await.unwrap(), Delivered::AlreadyDone);
    }
    let sent = providers.whatsapp_sent().await;
    let per_agent = AGENTS.iter().map(|a| sent.iter().filter(|m| m["to"] == *a).count()).collect();
    let thread = aws.store().thread(&jobs_conversation(&jobs[0])).await.unwrap();
    assert!(thread[0].legs.iter().all(|l| l.state == "sent"), "{step:?}: every leg ends recorded sent");
    (per_agent, outcomes)
}

fn jobs_conversation(job: &Job) -> shared::domain::ConversationKey {
    match &job.payload {
        shared::domain::JobPayload::ForwardToAgent(f) => f.conversation.clone(),
        _ => panic!("a forward"),
    }
}

#[tokio::test]
async fn stopped_after_the_claim_the_copy_goes_once() {
    let (per_agent, outcomes) = stop_then_redeliver(Failpoint::AfterClaim).await;
    assert_eq!(per_agent, [1, 1]);
    assert!(outcomes.iter().all(|o| matches!(o, Delivered::Sent { .. })));
}

#[tokio::test]
async fn stopped_between_the_send_and_the_record_the_copy_may_go_twice() {
    let (per_agent, outcomes) = stop_then_redeliver(Failpoint::AfterSend).await;
    assert_eq!(per_agent, [2, 2], "the stated at-least-once window, and only there");
    assert!(outcomes.iter().all(|o| matches!(o, Delivered::Sent { .. })));
}

#[tokio::test]
async fn stopped_after_the_record_nothing_goes_again() {
    let (per_agent, outcomes) = stop_then_redeliver(Failpoint::AfterRecord).await;
    assert_eq!(per_agent, [1, 1]);
    assert!(outcomes.iter().all(|o| *o == Delivered::AlreadyDone));
}
