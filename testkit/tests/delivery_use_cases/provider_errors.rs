//! What a provider's refusal does, by its class (`ErrorClass::of`): retry with backoff,
//! fail for good (the agent told), re-send as the template, escalate; and the age after
//! which a failing job is for an operator.

use std::time::Duration;

use bridge_testkit::providers::Outcome;
use jiff::SignedDuration;
use shared::app::deliver_job::{DeliverError, Delivered, OPTED_OUT_CODE};
use shared::domain::{ErrorClass, FailureClass, JobPayload, LegState, RetryPolicy, WhatsAppMessage};
use shared::ports::{Agents, Conversations, ForwardedVia};

use super::world::{World, secs};

#[tokio::test]
async fn connection_failures_5xx_and_429_are_retried_with_backoff_counting_attempts_and_respecting_retry_after() {
    let w = World::new();
    let job = w.forward("hi").await;
    w.wa.script([Outcome::not_sent(), Outcome::rejected(503, None), Outcome::throttled(secs(30))]);

    for (n, expected_after) in [(1, None), (2, None), (3, Some(secs(30)))] {
        let later = w.at(SignedDuration::from_secs(n * 60));
        let result = w.process().deliver(&job, later).await;
        let Err(DeliverError::Retry { attempt, retry_after, .. }) = result else { panic!("{result:?}") };
        assert_eq!(attempt, u32::try_from(n).unwrap(), "each attempt is counted");
        assert_eq!(retry_after, expected_after);
        let leg = w.leg(&job);
        assert_eq!(leg.state, LegState::Retry, "given back: certainly not sent");
        assert_eq!(leg.error.map(|e| e.class), Some(FailureClass::Provider(ErrorClass::Retry)));
    }
    assert!(w.wa.sent().is_empty());

    let delivered = w.process().deliver(&job, w.at(SignedDuration::from_secs(300))).await.unwrap();
    assert!(matches!(delivered, Delivered::Sent { .. }), "{delivered:?}");
    assert_eq!((w.wa.call_count(), w.wa.sends_of(&job.job_id)), (4, 1));
}

#[tokio::test]
async fn a_permanent_refusal_of_a_forward_fails_the_leg_with_its_code_for_good() {
    let w = World::new();
    let job = w.forward("hi").await;
    w.wa.script([Outcome::rejected(400, Some(131026))]);

    let delivered = w.process().deliver(&job, w.now).await.unwrap();

    assert!(matches!(delivered, Delivered::Failed { class: ErrorClass::Permanent, .. }), "{delivered:?}");
    let leg = w.leg(&job);
    assert_eq!(leg.state, LegState::Failed);
    let error = leg.error.unwrap();
    assert_eq!((error.class, error.code), (FailureClass::Provider(ErrorClass::Permanent), Some(131026)));
    assert_eq!(w.process().deliver(&job, w.now).await.unwrap(), Delivered::AlreadyDone);
    assert_eq!(w.wa.call_count(), 1);
}

#[tokio::test]
async fn a_customer_who_opted_out_fails_the_reply_tells_the_agent_and_is_never_texted_again() {
    let w = World::new();
    let job = w.agent_replies("Your order is ready").await;
    w.sms.script([Outcome::rejected(400, Some(OPTED_OUT_CODE))]);

    let delivered = w.process().deliver(&job, w.now).await.unwrap();

    assert!(matches!(delivered, Delivered::Failed { class: ErrorClass::Permanent, .. }), "{delivered:?}");
    let leg = w.leg(&job);
    assert_eq!(leg.state, LegState::Failed);
    assert_eq!(leg.error.and_then(|e| e.code), Some(OPTED_OUT_CODE));
    assert!(w.store.conversation(&w.conversation).await.unwrap().unwrap().opted_out, "the opt-out is remembered");
    let told = agent_notices(&w);
    assert!(!told.is_empty(), "the agent is told");
    for notice in &told {
        assert_eq!(w.state(notice), LegState::Queued, "the notice is recorded, with the failure, to be sent");
    }

    // The agent's next reply is refused by the bridge itself: Twilio isn't called.
    let next = w.agent_replies("Hello?").await;
    let refused = w.process().deliver(&next, w.now).await.unwrap();
    assert!(matches!(refused, Delivered::Failed { .. }), "{refused:?}");
    assert_eq!(w.leg(&next).error.and_then(|e| e.code), Some(OPTED_OUT_CODE));
    assert_eq!(w.sms.call_count(), 1);
    assert!(w.sms.sent().is_empty());
    assert!(agent_notices(&w).len() > told.len(), "told about that one too");
}

#[tokio::test]
async fn a_permanent_refusal_of_a_reply_fails_it_and_tells_the_agent_on_their_message() {
    let w = World::new();
    let job = w.agent_replies("Hi").await;
    w.sms.script([Outcome::rejected(400, Some(21211))]);

    let delivered = w.process().deliver(&job, w.now).await.unwrap();

    assert!(matches!(delivered, Delivered::Failed { .. }), "{delivered:?}");
    assert_eq!(w.leg(&job).error.and_then(|e| e.code), Some(21211));
    let JobPayload::SendSms(sms) = &job.payload else { unreachable!() };
    let reacted_on_their_message = agent_notices(&w).iter().any(|notice| {
        matches!(&notice.payload, JobPayload::NotifyAgent(n)
            if n.agent == w.agents[0]
            && matches!(&n.message, WhatsAppMessage::Reaction { message, .. } if *message == sms.agent_wamid))
    });
    assert!(reacted_on_their_message, "{:?}", agent_notices(&w));
    assert!(!w.store.conversation(&w.conversation).await.unwrap().unwrap().opted_out, "not an opt-out");
}

/// The notices enqueued to agents so far.
fn agent_notices(w: &World) -> Vec<shared::domain::Job> {
    w.queue.jobs().into_iter().filter(|job| matches!(job.payload, JobPayload::NotifyAgent(_))).collect()
}

#[tokio::test]
async fn window_closed_131047_marks_it_closed_and_sends_the_copy_as_the_template() {
    let w = World::new();
    w.open_window().await;
    let job = w.forward("Can I come at 5?").await;
    w.wa.script([Outcome::rejected(400, Some(131047))]);

    let delivered = w.process().deliver(&job, w.now).await.unwrap();

    let Delivered::Sent { provider_id, via } = delivered else { panic!("{delivered:?}") };
    assert_eq!(via, Some(ForwardedVia::Template));
    let calls = w.wa.calls();
    assert_eq!(calls.len(), 2);
    assert!(calls[0].message.is_free_form_text(), "tried as text first: {:?}", calls[0].message);
    assert!(matches!(&calls[1].message, WhatsAppMessage::Template { name, .. } if *name == w.line.template.name));
    assert_eq!(w.wa.sends_of(&job.job_id), 1, "only the template reached the agent");
    assert_eq!(w.wa.sent()[0].wamid.as_str(), provider_id);
    let context = w.store.forward_context(&w.conversation, &w.agents[0]).await.unwrap().unwrap();
    assert_eq!(context.agent_window_closed_at, Some(w.now), "the window is known closed");
    assert_eq!(w.state(&job), LegState::Sent);
}

#[tokio::test]
async fn escalations_190_401_and_403_go_to_an_operator_and_are_not_sent() {
    for (http_status, code) in [(401, Some(190)), (400, Some(190)), (403, None)] {
        let w = World::new();
        let job = w.forward("hi").await;
        w.wa.script([Outcome::rejected(http_status, code)]);

        let result = w.process().deliver(&job, w.now).await;

        assert!(matches!(result, Err(DeliverError::Escalate { .. })), "{http_status} {code:?}: {result:?}");
        assert!(w.wa.sent().is_empty());
        let leg = w.leg(&job);
        assert_eq!(leg.state, LegState::Retry, "given back for an operator's redrive, not failed");
        assert_eq!(leg.error.map(|e| e.class), Some(FailureClass::Provider(ErrorClass::Escalate)));
    }
}

#[tokio::test]
async fn a_job_failing_past_its_maximum_age_is_for_the_dead_letter_queue_and_a_younger_one_is_retried() {
    // The deliverer answers a failing job the same at any age; the worker parks it by age
    // (functions/delivery-worker: `RetryPolicy::expired` on the record's SentTimestamp).
    let w = World::new();
    let job = w.forward("hi").await;
    w.wa.script([Outcome::rejected(503, None), Outcome::rejected(503, None)]);
    let policy = RetryPolicy::default();
    let day = Duration::from_secs(24 * 3600);

    for age in [day - Duration::from_secs(1), day] {
        let now = w.now + SignedDuration::try_from(age).unwrap();
        let result = w.process().deliver(&job, now).await;
        assert!(matches!(result, Err(DeliverError::Retry { .. })), "{result:?}");
    }
    assert_eq!(policy.max_job_age, day, "MAX_JOB_AGE_HOURS defaults to 24");
    assert!(!policy.expired(day - Duration::from_secs(1)) && policy.expired(day));
    assert_eq!(w.state(&job), LegState::Retry, "nothing recorded as failed: the operator can redrive it");
    assert!(w.wa.sent().is_empty());
}
