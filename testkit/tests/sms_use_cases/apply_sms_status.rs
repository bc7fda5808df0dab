//! `apply_sms_status`: Twilio's callbacks on an agent's reply move its leg's status forward
//! only, and the agent sees their message marked read (or ✅, a line option) or ❌ (with the
//! reason) on it, once.

use bridge_testkit::memory::{MemoryQueue, MemoryStore, StoreOp};
use bridge_testkit::testing::AGENTS;
use jiff::{SignedDuration, Timestamp};
use shared::app::apply_sms_status::{SmsStatusReport, StatusError, StatusHandled, apply_sms_status};
use shared::app::retry_budget::RetryBudget;
use shared::domain::{DeliveryStatus, E164, Job, JobPayload, LegState, WhatsAppMessage};
use shared::ports::{Deliveries, StoreError};

use super::fixture::*;

const SID: &str = "SM11111111111111111111111111111111";

/// An agent's reply on the test line, sent by the worker as `SID`.
async fn sent_reply(store: &MemoryStore) -> Job {
    let job = agent_reply(store, &line(""), CUSTOMER, "See you at 9").await;
    worker_sent(store, &job, SID).await;
    job
}

/// "Delivered", as the default line shows it: the agent's message marked read.
fn tick(job: &Job) -> (String, WhatsAppMessage) {
    (AGENTS[0].to_owned(), WhatsAppMessage::ReadMark { message: send_sms(job).agent_wamid.clone() })
}

fn cross_and_reason(job: &Job, reason: &str) -> [(String, WhatsAppMessage); 2] {
    let wamid = &send_sms(job).agent_wamid;
    [
        (AGENTS[0].to_owned(), WhatsAppMessage::Reaction { message: wamid.clone(), emoji: "❌".into() }),
        (AGENTS[0].to_owned(), WhatsAppMessage::reply(reason, wamid)),
    ]
}

#[tokio::test]
async fn delivered_moves_the_leg_forward_and_shows_the_agent_a_tick_on_their_message() {
    let (store, queue, lines) = (MemoryStore::new(), MemoryQueue::new(), lines(""));
    let job = sent_reply(&store).await;
    let outbox = store.outbox_len();

    let handled = apply(&store, &queue, &lines, &report_without_job(&job, SID, "delivered", None), &budget()).await;

    assert_eq!(handled.unwrap(), StatusHandled::Advanced { status: DeliveryStatus::Delivered, notices: 1 });
    assert_eq!(leg_status(&store, &job), Some(DeliveryStatus::Delivered));
    let enqueued = queue.jobs();
    assert_eq!(notices(&enqueued), [tick(&job)]);
    let JobPayload::NotifyAgent(notice) = &enqueued[0].payload else { panic!() };
    assert!(notice.fallback.is_some(), "sent as the template if the agent's window has closed");
    let leg = store.leg(&enqueued[0]).unwrap();
    assert_eq!(leg.state, LegState::Queued, "the notice's own leg, recorded with the status");
    assert_eq!(store.outbox_len(), outbox + 1, "and its outbox entry");
    assert_eq!(outbox_jobs(&store).last(), enqueued.last());
}

#[tokio::test]
async fn a_line_that_chose_reactions_shows_a_tick_reaction_instead_of_the_read_mark() {
    let (store, queue) = (MemoryStore::new(), MemoryQueue::new());
    let lines = lines(r#""delivery_receipts": "reaction""#);
    let job = sent_reply(&store).await;

    apply(&store, &queue, &lines, &report_without_job(&job, SID, "delivered", None), &budget()).await.unwrap();

    let reaction = WhatsAppMessage::Reaction { message: send_sms(&job).agent_wamid.clone(), emoji: "✅".into() };
    assert_eq!(notices(&queue.jobs()), [(AGENTS[0].to_owned(), reaction)]);
}

#[tokio::test]
async fn undelivered_shows_a_cross_and_the_reason_in_words() {
    let (store, queue, lines) = (MemoryStore::new(), MemoryQueue::new(), lines(""));
    let job = sent_reply(&store).await;

    let handled =
        apply(&store, &queue, &lines, &report_without_job(&job, SID, "undelivered", Some(30006)), &budget()).await;

    assert_eq!(handled.unwrap(), StatusHandled::Advanced { status: DeliveryStatus::Undelivered, notices: 2 });
    assert_eq!(leg_status(&store, &job), Some(DeliveryStatus::Undelivered));
    assert_eq!(
        notices(&queue.jobs()),
        cross_and_reason(&job, "not delivered: landline or unreachable carrier (30006)")
    );
}

#[tokio::test]
async fn a_failure_without_a_readable_code_is_kept_and_the_agent_told_no_reason_was_given() {
    let (store, queue, lines) = (MemoryStore::new(), MemoryQueue::new(), lines(""));
    let job = sent_reply(&store).await;

    // The webhook passes an unreadable `ErrorCode` on as none.
    let handled = apply(&store, &queue, &lines, &report_without_job(&job, SID, "failed", None), &budget()).await;

    assert_eq!(handled.unwrap(), StatusHandled::Advanced { status: DeliveryStatus::Failed, notices: 2 });
    assert_eq!(leg_status(&store, &job), Some(DeliveryStatus::Failed));
    assert_eq!(notices(&queue.jobs()), cross_and_reason(&job, "not delivered: the provider gave no reason"));
}

#[tokio::test]
async fn statuses_only_move_forward_and_the_tick_is_shown_once() {
    let (store, queue, lines) = (MemoryStore::new(), MemoryQueue::new(), lines(""));
    let job = sent_reply(&store).await;
    let steps: [(&str, StatusHandled); 8] = [
        // The worker recorded the send (as `queued`): `sent` says nothing new, no write.
        ("sent", StatusHandled::Unchanged { current: Some(DeliveryStatus::Queued) }),
        ("queued", StatusHandled::Unchanged { current: Some(DeliveryStatus::Queued) }),
        ("delivered", StatusHandled::Advanced { status: DeliveryStatus::Delivered, notices: 1 }),
        ("sent", StatusHandled::Unchanged { current: Some(DeliveryStatus::Delivered) }),
        ("failed", StatusHandled::Unchanged { current: Some(DeliveryStatus::Delivered) }),
        ("undelivered", StatusHandled::Unchanged { current: Some(DeliveryStatus::Delivered) }),
        ("read", StatusHandled::Advanced { status: DeliveryStatus::Read, notices: 0 }),
        ("delivered", StatusHandled::Unchanged { current: Some(DeliveryStatus::Read) }),
    ];
    for (status, expected) in steps {
        let writes = store.calls(StoreOp::AdvanceLegStatus);
        let handled = apply(&store, &queue, &lines, &report(&job, SID, status, Some(30003)), &budget()).await;
        let advanced = matches!(expected, StatusHandled::Advanced { .. });
        assert_eq!(handled.unwrap(), expected, "{status}");
        assert_eq!(
            store.calls(StoreOp::AdvanceLegStatus) - writes,
            usize::from(advanced),
            "{status}: a write only to advance"
        );
    }
    assert_eq!(leg_status(&store, &job), Some(DeliveryStatus::Read));
    let told = notices(&queue.jobs());
    assert!(told.iter().all(|notice| *notice == tick(&job)), "no cross after delivered: {told:?}");
    assert_eq!(job_ids(&queue.jobs()).iter().collect::<std::collections::HashSet<_>>().len(), 1, "one ✅ job");
}

#[tokio::test]
async fn read_without_a_delivered_report_shows_the_tick_once() {
    let (store, queue, lines) = (MemoryStore::new(), MemoryQueue::new(), lines(""));
    let job = sent_reply(&store).await;

    let read = apply(&store, &queue, &lines, &report(&job, SID, "read", None), &budget()).await.unwrap();
    let late = apply(&store, &queue, &lines, &report(&job, SID, "delivered", None), &budget()).await.unwrap();

    assert_eq!(read, StatusHandled::Advanced { status: DeliveryStatus::Read, notices: 1 });
    assert_eq!(late, StatusHandled::Unchanged { current: Some(DeliveryStatus::Read) });
    assert_eq!(notices(&queue.jobs()), [tick(&job)]);
    assert_eq!(leg_status(&store, &job), Some(DeliveryStatus::Read));
}

#[tokio::test]
async fn a_late_success_replaces_the_cross() {
    let (store, queue, lines) = (MemoryStore::new(), MemoryQueue::new(), lines(""));
    let job = sent_reply(&store).await;
    apply(&store, &queue, &lines, &report(&job, SID, "undelivered", Some(30003)), &budget()).await.unwrap();

    let handled = apply(&store, &queue, &lines, &report(&job, SID, "delivered", None), &budget()).await;

    assert_eq!(handled.unwrap(), StatusHandled::Advanced { status: DeliveryStatus::Delivered, notices: 1 });
    assert_eq!(leg_status(&store, &job), Some(DeliveryStatus::Delivered));
    assert_eq!(notices(&queue.jobs()).last(), Some(&tick(&job)));
}

#[tokio::test]
async fn a_replayed_callback_changes_nothing_and_reoffers_only_a_notice_not_yet_sent() {
    let (store, queue, lines) = (MemoryStore::new(), MemoryQueue::new(), lines(""));
    let job = sent_reply(&store).await;
    let delivered = report(&job, SID, "delivered", None);
    apply(&store, &queue, &lines, &delivered, &budget()).await.unwrap();
    let first = queue.jobs();
    let (items, outbox) = (store.record_count(), store.outbox_len());

    let replay = apply(&store, &queue, &lines, &delivered, &budget()).await.unwrap();

    assert_eq!(replay, StatusHandled::Unchanged { current: Some(DeliveryStatus::Delivered) });
    assert_eq!((store.record_count(), store.outbox_len()), (items, outbox), "nothing written");
    assert_eq!(job_ids(&queue.jobs()[first.len()..]), job_ids(&first), "the same ✅ job, not a new one");

    // Once the worker has sent it, a replay offers nothing.
    worker_sent_standalone(&store, &first[0]).await;
    let calls = queue.enqueue_calls();
    let replay = apply(&store, &queue, &lines, &delivered, &budget()).await.unwrap();
    assert_eq!(replay, StatusHandled::Unchanged { current: Some(DeliveryStatus::Delivered) });
    assert_eq!(queue.enqueue_calls(), calls, "nothing to offer");
    assert_eq!(store.record_count(), items);
}

#[tokio::test]
async fn a_callback_naming_its_job_is_applied_before_the_worker_recorded_the_send() {
    let (store, queue, lines) = (MemoryStore::new(), MemoryQueue::new(), lines(""));
    let job = agent_reply(&store, &line(""), CUSTOMER, "See you at 9").await;

    // Twilio's callback overtakes the worker's record of the sid.
    let handled = apply(&store, &queue, &lines, &report(&job, SID, "delivered", None), &budget()).await;

    assert_eq!(handled.unwrap(), StatusHandled::Advanced { status: DeliveryStatus::Delivered, notices: 1 });
    assert_eq!(store.calls(StoreOp::FindSentSms), 0, "found by the job in its URL");
    let leg = store.leg(&job).unwrap();
    assert_eq!((leg.status, leg.provider_id.as_deref()), (Some(DeliveryStatus::Delivered), Some(SID)));
    assert_eq!(notices(&queue.jobs()), [tick(&job)]);
    // The worker's record, arriving after, keeps what the callback recorded.
    let now = Timestamp::now();
    store.claim_job(&job, now, now + SignedDuration::from_secs(60), "worker").await.unwrap();
    store.record_sms_sent(&job, SID, Some(DeliveryStatus::Queued), now).await.unwrap();
    assert_eq!(leg_status(&store, &job), Some(DeliveryStatus::Delivered));
}

#[tokio::test]
async fn without_the_job_the_sid_the_worker_recorded_finds_the_leg() {
    let (store, queue, lines) = (MemoryStore::new(), MemoryQueue::new(), lines(""));
    let job = sent_reply(&store).await;

    let handled = apply(&store, &queue, &lines, &report_without_job(&job, SID, "delivered", None), &budget()).await;

    assert_eq!(handled.unwrap(), StatusHandled::Advanced { status: DeliveryStatus::Delivered, notices: 1 });
    assert_eq!(store.calls(StoreOp::FindSentSms), 1);
    assert_eq!(leg_status(&store, &job), Some(DeliveryStatus::Delivered));
    assert_eq!(notices(&queue.jobs()), [tick(&job)]);
}

#[tokio::test]
async fn an_unknown_sid_is_acknowledged_and_changes_nothing() {
    let (store, queue, lines) = (MemoryStore::new(), MemoryQueue::new(), lines(""));
    let job = sent_reply(&store).await;
    let items = store.record_count();
    let stranger = "SM99999999999999999999999999999999";

    let handled =
        apply(&store, &queue, &lines, &report_without_job(&job, stranger, "delivered", None), &budget()).await;

    assert_eq!(handled.unwrap(), StatusHandled::Unknown);
    assert_eq!(store.record_count(), items);
    assert_eq!(store.calls(StoreOp::AdvanceLegStatus), 0);
    assert_eq!(leg_status(&store, &job), Some(DeliveryStatus::Queued), "the worker's record, untouched");
    assert!(queue.jobs().is_empty());
}

#[tokio::test]
async fn a_job_from_a_number_no_line_owns_is_looked_up_by_its_sid_instead() {
    let (store, queue, lines) = (MemoryStore::new(), MemoryQueue::new(), lines(""));
    let job = agent_reply(&store, &line(""), CUSTOMER, "hi").await;
    let from_elsewhere =
        SmsStatusReport { from: Some(E164::parse("+14155550999").unwrap()), ..report(&job, SID, "delivered", None) };

    let handled = apply(&store, &queue, &lines, &from_elsewhere, &budget()).await;

    assert_eq!(handled.unwrap(), StatusHandled::Unknown, "no sid record either");
    assert_eq!(store.calls(StoreOp::FindSentSms), 1);
    assert_eq!(leg_status(&store, &job), None);
    assert!(queue.jobs().is_empty());
}

#[tokio::test]
async fn a_job_that_is_no_agent_reply_is_unknown() {
    let (store, queue, lines) = (MemoryStore::new(), MemoryQueue::new(), lines(""));
    text(&store, &queue, &line(""), CUSTOMER, "Hi").await;
    let copy = queue.take_all().remove(0);
    let reply = agent_reply(&store, &line(""), CUSTOMER, "hi").await;
    // The customer's copy to an agent: its leg exists, but no agent wrote it.
    let about_copy = SmsStatusReport { job: Some(copy.job_id.clone()), ..report(&reply, SID, "delivered", None) };

    let handled = apply(&store, &queue, &lines, &about_copy, &budget()).await;

    assert_eq!(handled.unwrap(), StatusHandled::Unknown);
    assert_eq!(store.leg(&copy).unwrap().status, None);
    assert_eq!(store.calls(StoreOp::AdvanceLegStatus), 0);
    assert!(queue.waiting().is_empty(), "no notice");
}

#[tokio::test]
async fn a_status_that_says_nothing_about_delivery_is_ignored_without_a_store_call() {
    let (store, queue, lines) = (MemoryStore::new(), MemoryQueue::new(), lines(""));
    let job = sent_reply(&store).await;
    for status in ["receiving", "received", "scheduled", "", "DELIVERED"] {
        let handled = apply(&store, &queue, &lines, &report(&job, SID, status, None), &budget()).await;
        assert_eq!(handled.unwrap(), StatusHandled::Ignored, "{status:?}");
    }
    let reads = [StoreOp::FindSentSms, StoreOp::OutboundLeg, StoreOp::AdvanceLegStatus, StoreOp::UnsentJobs];
    assert!(reads.iter().all(|op| store.calls(*op) == 0));
    assert_eq!(leg_status(&store, &job), Some(DeliveryStatus::Queued));
    assert!(queue.jobs().is_empty());
}

#[tokio::test]
async fn a_status_write_refused_for_a_moment_within_the_budget_is_tried_again() {
    let (store, queue, lines) = (MemoryStore::new(), MemoryQueue::new(), lines(""));
    let job = sent_reply(&store).await;
    store.fail_next(StoreOp::AdvanceLegStatus, 1);

    let handled = apply(&store, &queue, &lines, &report(&job, SID, "delivered", None), &budget()).await;

    assert_eq!(handled.unwrap(), StatusHandled::Advanced { status: DeliveryStatus::Delivered, notices: 1 });
    assert_eq!(store.calls(StoreOp::AdvanceLegStatus), 2);
    assert_eq!(leg_status(&store, &job), Some(DeliveryStatus::Delivered));
    assert_eq!(notices(&queue.jobs()), [tick(&job)]);
}

#[tokio::test]
async fn a_status_write_whose_answer_was_lost_still_tells_the_agent_once() {
    let (store, queue, lines) = (MemoryStore::new(), MemoryQueue::new(), lines(""));
    let job = sent_reply(&store).await;
    let outbox = store.outbox_len();
    store.lose_next_answer(StoreOp::AdvanceLegStatus, 1);

    let handled = apply(&store, &queue, &lines, &report(&job, SID, "delivered", None), &budget()).await;

    // The retry finds it applied; the notice that write recorded is offered.
    assert_eq!(handled.unwrap(), StatusHandled::Unchanged { current: Some(DeliveryStatus::Delivered) });
    assert_eq!(leg_status(&store, &job), Some(DeliveryStatus::Delivered));
    assert_eq!(notices(&queue.jobs()), [tick(&job)]);
    assert_eq!(store.outbox_len(), outbox + 1, "one notice recorded");
}

#[tokio::test]
async fn a_status_write_refused_beyond_the_budget_is_an_error_and_changes_nothing() {
    let (store, queue, lines) = (MemoryStore::new(), MemoryQueue::new(), lines(""));
    let job = sent_reply(&store).await;
    let (items, outbox) = (store.record_count(), store.outbox_len());
    store.fail_next(StoreOp::AdvanceLegStatus, 1000);

    let handled = apply(&store, &queue, &lines, &report(&job, SID, "delivered", None), &RetryBudget::none()).await;

    assert!(matches!(handled, Err(StatusError::Store(StoreError::Unavailable(_)))), "{handled:?}");
    assert_eq!(store.calls(StoreOp::AdvanceLegStatus), 1);
    assert_eq!(leg_status(&store, &job), Some(DeliveryStatus::Queued));
    assert_eq!((store.record_count(), store.outbox_len()), (items, outbox));
    assert!(queue.jobs().is_empty());
}

/// docs/guarantees.md ("Recorded means delivered"): a store call that fails is tried again
/// with backoff within the webhook's budget. Twilio doesn't send a status callback again, so
/// a read refused once would lose the agent's ✅ or ❌.
async fn a_read_refused_once_is_tried_again(op: StoreOp, report_of: fn(&Job) -> SmsStatusReport) {
    let (store, queue, lines) = (MemoryStore::new(), MemoryQueue::new(), lines(""));
    let job = sent_reply(&store).await;
    store.fail_next(op, 1);

    let handled = apply(&store, &queue, &lines, &report_of(&job), &budget()).await;

    assert_eq!(handled.unwrap(), StatusHandled::Advanced { status: DeliveryStatus::Delivered, notices: 1 });
    assert_eq!(store.calls(op), 2, "{op:?} tried again");
    assert_eq!(notices(&queue.jobs()), [tick(&job)]);
}

#[tokio::test]
async fn reading_the_reply_leg_refused_once_is_tried_again_within_the_budget() {
    a_read_refused_once_is_tried_again(StoreOp::OutboundLeg, |job| report(job, SID, "delivered", None)).await;
}

#[tokio::test]
async fn finding_the_sid_refused_once_is_tried_again_within_the_budget() {
    a_read_refused_once_is_tried_again(StoreOp::FindSentSms, |job| report_without_job(job, SID, "delivered", None))
        .await;
}

#[tokio::test]
async fn reading_a_replays_unsent_notices_refused_once_is_tried_again_within_the_budget() {
    let (store, queue, lines) = (MemoryStore::new(), MemoryQueue::new(), lines(""));
    let job = sent_reply(&store).await;
    let delivered = report(&job, SID, "delivered", None);
    queue.fail_next(1);
    apply(&store, &queue, &lines, &delivered, &RetryBudget::none()).await.unwrap();
    assert!(queue.jobs().is_empty(), "the ✅ wasn't enqueued");
    store.fail_next(StoreOp::UnsentJobs, 1);

    let replay = apply(&store, &queue, &lines, &delivered, &budget()).await;

    assert_eq!(replay.unwrap(), StatusHandled::Unchanged { current: Some(DeliveryStatus::Delivered) });
    assert_eq!(store.calls(StoreOp::UnsentJobs), 2);
    assert_eq!(notices(&queue.jobs()), [tick(&job)]);
}

#[tokio::test]
async fn notices_the_queue_refuses_are_left_to_the_outbox_sweep() {
    let (store, queue, lines) = (MemoryStore::new(), MemoryQueue::new(), lines(""));
    let job = sent_reply(&store).await;
    // The reply's own entries are swept first: only the status's notice is left after.
    sweep(&store, &MemoryQueue::new(), after_grace()).await.unwrap();
    queue.fail_next(1);
    let now = Timestamp::now();

    let handled =
        apply_sms_status(&store, &queue, &lines, &report(&job, SID, "delivered", None), now, &RetryBudget::none())
            .await;

    assert_eq!(handled.unwrap(), StatusHandled::Advanced { status: DeliveryStatus::Delivered, notices: 1 });
    assert!(queue.jobs().is_empty());
    assert_eq!(notices(&outbox_jobs(&store)), [tick(&job)], "recorded with the status");
    let swept = sweep(&store, &queue, now + SignedDuration::from_secs(61)).await.unwrap();
    assert_eq!((swept.entries, swept.jobs), (1, 1));
    assert_eq!(notices(&queue.jobs()), [tick(&job)]);
    assert_eq!(store.outbox_len(), 0);
}
