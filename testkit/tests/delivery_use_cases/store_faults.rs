//! The store failing around a send: before the claim, between the claim and the send, and
//! after the send (the record). Nothing is sent twice, nothing is stranded.

use std::time::{Duration, Instant};

use bridge_testkit::memory::StoreOp;
use jiff::SignedDuration;
use shared::app::deliver_job::{Deadline, DeliverError, Delivered};
use shared::domain::{FailureClass, LegState};
use shared::ports::{Routing, StatusLog};

use super::world::{AFTER_THE_WAIT, TestDeliverer, World};

/// A process whose record after a send can't be retried before its deadline: its provider
/// call may take 10 ms, and the deadline leaves time to start (10 ms + the deliverer's
/// 1.5 s margin) but not for a retry's 100 ms pause plus that margin.
fn hurried(w: &World) -> (TestDeliverer, Deadline) {
    let process = w.process().with_send_timeout(Duration::from_millis(10));
    (process, Deadline::at(Instant::now() + Duration::from_millis(1595)))
}

#[tokio::test]
async fn store_refusing_the_claim_is_retried_and_nothing_is_sent() {
    let w = World::new();
    let job = w.forward("hi").await;
    w.store.fail_next(StoreOp::ClaimJob, 1);

    let result = w.process().deliver(&job, w.now).await;

    assert!(matches!(result, Err(DeliverError::Retry { attempt: 1, retry_after: None, .. })), "{result:?}");
    assert_eq!(w.wa.call_count(), 0);
    assert_eq!(w.state(&job), LegState::Queued, "nothing changed");
    assert!(matches!(w.process().deliver(&job, w.now).await.unwrap(), Delivered::Sent { .. }));
    assert_eq!(w.wa.sends_of(&job.job_id), 1);
}

#[tokio::test]
async fn store_refusing_after_the_claim_gives_the_claim_back_and_sends_nothing() {
    let w = World::new();
    let job = w.forward("hi").await;
    w.store.fail_next(StoreOp::ForwardContext, 1);

    let result = w.process().deliver(&job, w.now).await;

    assert!(matches!(result, Err(DeliverError::Retry { attempt: 1, .. })), "{result:?}");
    assert_eq!(w.wa.call_count(), 0, "nothing sent");
    let leg = w.leg(&job);
    assert_eq!(leg.state, LegState::Retry, "given back");
    assert_eq!(leg.error.map(|e| e.class), Some(FailureClass::Store));
    // Given back, not held: another process takes it at once.
    assert!(matches!(w.process().deliver(&job, w.now).await.unwrap(), Delivered::Sent { .. }));
    assert_eq!(w.wa.sends_of(&job.job_id), 1);
}

#[tokio::test]
async fn store_refusing_before_an_sms_send_gives_the_claim_back_and_sends_nothing() {
    let w = World::new();
    let job = w.agent_replies("On my way").await;
    w.store.fail_next(StoreOp::Conversation, 1);

    let result = w.process().deliver(&job, w.now).await;

    assert!(matches!(result, Err(DeliverError::Retry { .. })), "{result:?}");
    assert_eq!(w.sms.call_count(), 0);
    assert_eq!(w.state(&job), LegState::Retry);
    assert!(matches!(w.process().deliver(&job, w.now).await.unwrap(), Delivered::Sent { .. }));
    assert_eq!(w.sms.sends_of(&job.job_id), 1);
}

#[tokio::test]
async fn a_claim_that_could_not_be_given_back_is_resumed_by_its_own_process_and_waited_for_by_others() {
    let w = World::new();
    let job = w.forward("hi").await;
    w.store.fail_next(StoreOp::ForwardContext, 1);
    w.store.fail_next(StoreOp::ReleaseJob, 1);
    let owner = w.process();

    let result = owner.deliver(&job, w.now).await;
    assert!(matches!(result, Err(DeliverError::Retry { .. })), "{result:?}");
    assert_eq!(w.state(&job), LegState::Sending, "the give-back failed: the lease stays");

    // Another process can't know nothing went out: it waits for the lease.
    let soon = w.at(SignedDuration::from_secs(5));
    let other = w.process().deliver(&job, soon).await;
    assert!(matches!(other, Err(DeliverError::Wait { .. })), "{other:?}");
    assert_eq!(w.wa.call_count(), 0);

    // The owner remembers nothing went out, and sends on its retry without waiting.
    let resumed = owner.deliver(&job, soon).await.unwrap();
    assert!(matches!(resumed, Delivered::Sent { .. }), "{resumed:?}");
    assert_eq!(w.wa.sends_of(&job.job_id), 1);
    assert_eq!(w.state(&job), LegState::Sent);
}

#[tokio::test]
async fn a_refused_record_is_tried_again_within_the_deadline_and_the_job_is_sent_once() {
    let w = World::new();
    let job = w.forward("hi").await;
    w.store.fail_next(StoreOp::RecordForwarded, 1);

    let delivered = w.process().deliver(&job, w.now).await.unwrap();

    let Delivered::Sent { provider_id, .. } = delivered else { panic!("{delivered:?}") };
    assert_eq!(w.store.calls(StoreOp::RecordForwarded), 2, "recorded on the second try");
    assert_eq!(w.wa.call_count(), 1, "the send isn't repeated");
    assert_eq!(w.leg(&job).provider_id.as_deref(), Some(provider_id.as_str()));
}

#[tokio::test]
async fn a_send_the_store_would_not_record_is_recorded_by_the_same_process_without_a_second_send() {
    let w = World::new();
    let job = w.forward("hi").await;
    w.store.fail_next(StoreOp::RecordForwarded, 1);
    let (process, deadline) = hurried(&w);

    let result = process.deliver_run(std::slice::from_ref(&job), w.now, deadline).await;

    assert!(matches!(result, Err(DeliverError::Wait { .. })), "sent, not recorded: {result:?}");
    assert_eq!(w.wa.sent().len(), 1);
    assert_eq!(w.state(&job), LegState::Sending, "left claimed: the next delivery finds out");

    let later = w.at(SignedDuration::from_secs(3));
    let delivered = process.deliver(&job, later).await.unwrap();
    let wamid = w.wa.sent()[0].wamid.clone();
    assert_eq!(delivered, Delivered::Reconciled { provider_id: wamid.as_str().to_owned() });
    assert_eq!(w.wa.call_count(), 1, "its memory: not sent again");
    assert_eq!(w.state(&job), LegState::Sent);
    assert!(w.store.find_forwarded_copy(&wamid).await.unwrap().is_some(), "the reply route is recorded");
}

#[tokio::test]
async fn an_sms_the_store_would_not_record_is_recorded_by_the_same_process_without_asking_the_list() {
    let w = World::new();
    let job = w.agent_replies("See you").await;
    w.store.fail_next(StoreOp::RecordSmsSent, 1);
    let (process, deadline) = hurried(&w);

    let result = process.deliver_run(std::slice::from_ref(&job), w.now, deadline).await;
    assert!(matches!(result, Err(DeliverError::Wait { .. })), "{result:?}");

    let delivered = process.deliver(&job, w.at(SignedDuration::from_secs(3))).await.unwrap();
    let sid = w.sms.sent()[0].id.clone();
    assert_eq!(delivered, Delivered::Reconciled { provider_id: sid.clone() });
    assert_eq!((w.sms.call_count(), w.sms.find_calls()), (1, 0));
    assert_eq!(w.store.find_sent_sms(&sid).await.unwrap().map(|r| r.job_id), Some(job.job_id.clone()));
}

#[tokio::test]
async fn a_send_the_store_would_not_record_is_uncertain_to_another_process_until_a_status_report_names_it() {
    let w = World::new();
    let job = w.forward("hi").await;
    w.store.fail_next(StoreOp::RecordForwarded, 1);
    let (process, deadline) = hurried(&w);
    let result = process.deliver_run(std::slice::from_ref(&job), w.now, deadline).await;
    assert!(matches!(result, Err(DeliverError::Wait { .. })), "{result:?}");
    let other = w.process();

    // While the first process's lease lasts, the other waits.
    let during = other.deliver(&job, w.at(SignedDuration::from_secs(3))).await;
    assert!(matches!(during, Err(DeliverError::Wait { .. })), "{during:?}");
    // After it, the send is uncertain: no resend before the reconciliation wait.
    let after = other.deliver(&job, w.at(SignedDuration::from_secs(10))).await;
    assert!(matches!(after, Err(DeliverError::Wait { .. })), "{after:?}");
    assert_eq!(w.state(&job), LegState::Uncertain);
    assert_eq!(w.wa.call_count(), 1);

    // Meta's `sent` status names the job: the next delivery records it.
    let wamid = w.wa.sent()[0].wamid.clone();
    assert!(w.store.note_sent_as(&w.leg_ref(&job), wamid.as_str(), w.at(SignedDuration::from_secs(11))).await.unwrap());
    let delivered = other.deliver(&job, w.at(SignedDuration::from_secs(12))).await.unwrap();
    assert_eq!(delivered, Delivered::Reconciled { provider_id: wamid.as_str().to_owned() });
    assert_eq!(w.wa.sends_of(&job.job_id), 1, "never twice");
    assert_eq!(w.state(&job), LegState::Sent);
}

#[tokio::test]
async fn an_sms_the_store_would_not_record_is_found_by_another_process_in_twilios_list() {
    let w = World::new();
    let job = w.agent_replies("See you").await;
    w.store.fail_next(StoreOp::RecordSmsSent, 1);
    let (process, deadline) = hurried(&w);
    let result = process.deliver_run(std::slice::from_ref(&job), w.now, deadline).await;
    assert!(matches!(result, Err(DeliverError::Wait { .. })), "{result:?}");

    let delivered = w.process().deliver(&job, w.at(AFTER_THE_WAIT)).await.unwrap();

    let sid = w.sms.sent()[0].id.clone();
    assert_eq!(delivered, Delivered::Reconciled { provider_id: sid.clone() });
    assert_eq!((w.sms.call_count(), w.sms.find_calls()), (1, 1), "asked the list, didn't send");
    assert_eq!(w.leg(&job).provider_id, Some(sid));
}

#[tokio::test]
async fn a_claim_whose_answer_was_lost_is_resumed_by_its_own_process_without_a_reconciliation_wait() {
    let w = World::new();
    let job = w.forward("hi").await;
    // The claim is written, its answer lost: the process holds a lease it doesn't know of.
    w.store.lose_next_answer(StoreOp::ClaimJob, 1);
    let owner = w.process();

    let result = owner.deliver(&job, w.now).await;
    assert!(matches!(result, Err(DeliverError::Retry { .. })), "{result:?}");
    assert_eq!(w.wa.call_count(), 0, "nothing went out");

    // Its retry (the backoff's few seconds later) sends: nothing can have gone out.
    let resumed = owner.deliver(&job, w.at(SignedDuration::from_secs(5))).await;
    assert!(matches!(resumed, Ok(Delivered::Sent { .. })), "{resumed:?}");
    assert_eq!(w.wa.sends_of(&job.job_id), 1);
}

/// The other side of the rule above: a lost claim over a leg already in doubt (an earlier
/// attempt given back uncertain) must not send at once on the owner's retry: that earlier
/// attempt may have gone out, so the reconciliation wait still applies.
#[tokio::test]
async fn a_lost_claim_over_an_earlier_uncertain_attempt_still_waits_for_the_reconciliation() {
    let w = World::new();
    let job = w.forward("hi").await;
    // An earlier delivery's send timed out: given back uncertain.
    use shared::ports::Deliveries;
    let ambiguous = shared::ports::LegFailure {
        class: FailureClass::Provider(shared::domain::ErrorClass::Ambiguous),
        code: None,
        reason: "timed out".into(),
    };
    w.store.claim_job(&job, w.now, w.at(SignedDuration::from_secs(60)), "earlier").await.unwrap();
    w.store.mark_job_uncertain(&job, &ambiguous, w.now, w.now).await.unwrap();
    w.store.lose_next_answer(StoreOp::ClaimJob, 1);
    let owner = w.process();

    let result = owner.deliver(&job, w.at(SignedDuration::from_secs(1))).await;
    assert!(matches!(result, Err(DeliverError::Retry { .. })), "{result:?}");
    let resumed = owner.deliver(&job, w.at(SignedDuration::from_secs(5))).await;
    assert!(matches!(resumed, Err(DeliverError::Wait { .. })), "waits for the earlier attempt: {resumed:?}");
    assert_eq!(w.wa.call_count(), 0, "nothing sent while the earlier attempt is in doubt");
}
