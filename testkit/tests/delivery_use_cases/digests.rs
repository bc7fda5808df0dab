//! Digests under WhatsApp's pair limit (docs/using.md, "A busy line: digests"): a copy that
//! would reach an agent within the pair spacing of the last one waits, parked, and the next
//! copy to get the agent's slot carries every parked copy of other conversations in one
//! message. The spacing here is 0.4 s instead of WhatsApp's 6 s, so the tests wait it out.

use std::time::Duration;

use bridge_testkit::providers::{Outcome, SentWhatsApp};
use shared::app::deliver_job::{Deadline, DeliverError, Delivered, SendRates};
use shared::domain::{LegState, WhatsAppMessage};
use shared::ports::{Deliveries, Routing};

use super::world::{World, shown_text};

const PAIR: SendRates =
    SendRates { whatsapp_per_second: 10_000.0, sms_per_second: 10_000.0, whatsapp_pair_seconds: 0.4 };
/// WhatsApp's pair spacing in these tests, and a moment more to wait one out.
const PAIR_SPACING: Duration = Duration::from_millis(400);
const SPACING: Duration = Duration::from_millis(450);

const BEA: &str = "+14155550135";
const CAL: &str = "+14155550136";

#[tokio::test]
async fn copies_that_come_too_soon_park_and_go_as_one_digest_with_the_next_slot() {
    let w = World::new();
    w.open_window().await;
    let process = w.process_with(PAIR);
    let first = w.customer_texts("Is my bike ready?").await.remove(0);
    let bea = w.other_customer_texts(BEA, "B3", "Can I come at 5?").await.remove(0);
    let cal = w.other_customer_texts(CAL, "C4", "Do you sell helmets?").await.remove(0);

    assert!(matches!(process.deliver(&first, w.now).await.unwrap(), Delivered::Sent { .. }));
    // Within the spacing: parked, not sent, no attempt spent, back at the slot.
    for job in [&bea, &cal] {
        let Err(DeliverError::Wait { until, .. }) = process.deliver(job, w.now).await else { panic!("parked") };
        assert!(until > w.now, "back when the agent's slot comes");
        let leg = w.leg(job);
        assert_eq!((leg.state, leg.error.as_ref()), (LegState::Retry, None), "untried, no failure: {leg:?}");
    }
    assert_eq!(w.wa.sent_to(&w.agents[0]).len(), 1, "nothing more reached the agent yet");
    let parked = w.store.parked_copies(&w.line.id, &w.agents[0]).await.unwrap();
    assert_eq!(parked, [bea.clone(), cal.clone()]);

    tokio::time::sleep(SPACING).await;
    let Delivered::Sent { provider_id, .. } = process.deliver(&bea, w.now).await.unwrap() else { panic!() };
    let sent = w.wa.sent_to(&w.agents[0]);
    assert_eq!(sent.len(), 2, "one more message: the digest");
    let WhatsAppMessage::Buttons { body, buttons } = &sent[1].message else { panic!("{:?}", sent[1].message) };
    assert!(body.starts_with("📥 2 conversations"), "{body}");
    let (at_bea, at_cal) = (body.find("#B3 · ").unwrap(), body.find("#C4 · ").unwrap());
    assert!(
        at_bea < body.find("Can I come at 5?").unwrap() && at_cal > at_bea && body.contains("Do you sell helmets?")
    );
    assert!(buttons[0].id.ends_with("B3"), "the first conversation's buttons: {buttons:?}");
    assert_eq!(sent[1].jobs(), [bea.job_id.clone(), cal.job_id.clone()], "its status reports name both");
    for job in [&bea, &cal] {
        let leg = w.leg(job);
        assert_eq!((leg.state, leg.provider_id.as_deref()), (LegState::Sent, Some(provider_id.as_str())));
    }
    let route = w.store.find_forwarded_copy(&sent[1].wamid).await.unwrap().unwrap();
    assert!(route.is_digest(), "{route:?}");
    assert_eq!(w.store.parked_copies(&w.line.id, &w.agents[0]).await.unwrap(), vec![]);

    // Cal's own delivery comes back: already done, nothing sent twice.
    tokio::time::sleep(SPACING).await;
    assert_eq!(process.deliver(&cal, w.now).await.unwrap(), Delivered::AlreadyDone);
    assert_eq!(w.wa.sends_of(&cal.job_id), 1);
    assert_eq!(w.wa.sent_to(&w.agents[0]).len(), 2);
}

/// A copy of a conversation alone in its slot goes as a plain copy: a digest only when
/// several conversations wait. And the agent's other copies are paced per agent: another
/// agent's slot is their own.
#[tokio::test]
async fn a_copy_alone_in_its_slot_goes_plain_and_agents_are_paced_apart() {
    let w = World::new();
    w.open_window().await;
    let process = w.process_with(PAIR);
    let first = w.customer_texts("Hello").await;
    let bea = w.other_customer_texts(BEA, "B3", "Hi there").await;
    assert!(matches!(process.deliver(&first[0], w.now).await.unwrap(), Delivered::Sent { .. }));
    assert!(matches!(process.deliver(&first[1], w.now).await.unwrap(), Delivered::Sent { .. }), "agent 1's own slot");
    assert!(matches!(process.deliver(&bea[0], w.now).await, Err(DeliverError::Wait { .. })));
    tokio::time::sleep(SPACING).await;
    assert!(matches!(process.deliver(&bea[0], w.now).await.unwrap(), Delivered::Sent { .. }));
    let sent = w.wa.sent_to(&w.agents[0]);
    assert!(!shown_text(&sent[1].message).starts_with("📥"), "a plain copy: {:?}", sent[1].message);
    assert!(!w.store.find_forwarded_copy(&sent[1].wamid).await.unwrap().unwrap().is_digest());
}

/// A digest refused with 131047 (the agent's window closed after all) sends nothing for
/// its copies: each goes again on its own, as the line's template, none lost or doubled.
#[tokio::test]
async fn a_digest_the_closed_window_refuses_is_sent_again_copy_by_copy_as_templates() {
    let w = World::new();
    w.open_window().await;
    let process = w.process_with(PAIR);
    let first = w.customer_texts("Open today?").await.remove(0);
    let bea = w.other_customer_texts(BEA, "B3", "Price of a tune-up?").await.remove(0);
    let cal = w.other_customer_texts(CAL, "C4", "Any used bikes?").await.remove(0);
    process.deliver(&first, w.now).await.unwrap();
    for job in [&bea, &cal] {
        assert!(matches!(process.deliver(job, w.now).await, Err(DeliverError::Wait { .. })));
    }
    tokio::time::sleep(SPACING).await;
    w.wa.script([Outcome::rejected(400, Some(131047))]);
    assert!(matches!(process.deliver(&bea, w.now).await, Err(DeliverError::Wait { .. })));
    let tried = w.leg(&bea);
    assert_eq!((tried.state, tried.error.map(|e| e.code)), (LegState::Retry, Some(Some(131047))), "given back");
    let parked = w.leg(&cal);
    assert_eq!((parked.state, parked.error.as_ref()), (LegState::Retry, None), "handed back untried: {parked:?}");
    for job in [&bea, &cal] {
        tokio::time::sleep(SPACING).await;
        let delivered = process.deliver_run(std::slice::from_ref(job), w.now, Deadline::NONE).await.unwrap();
        assert!(matches!(delivered, Delivered::Sent { .. }), "{delivered:?}");
    }
    let sent = w.wa.sent_to(&w.agents[0]);
    let templates = sent.iter().filter(|m| matches!(m.message, WhatsAppMessage::Template { .. })).count();
    assert_eq!(templates, 2, "one template each: {sent:?}");
    assert!([&bea, &cal].iter().all(|job| w.state(job) == LegState::Sent));
}

/// A copy that can't join a digest (the agent's window is closed: the template) never parks:
/// when the agent's slot is taken it reserves the next one and goes then, one pair spacing
/// after the copy before it.
#[tokio::test]
async fn a_template_copy_waits_for_the_agents_next_slot_and_never_parks() {
    let w = World::new();
    let process = w.process_with(PAIR);
    let first = w.customer_texts("Hello").await.remove(0);
    let bea = w.other_customer_texts(BEA, "B3", "Hi").await.remove(0);
    assert!(matches!(process.deliver(&first, w.now).await.unwrap(), Delivered::Sent { .. }));

    assert!(matches!(process.deliver(&bea, w.now).await.unwrap(), Delivered::Sent { .. }));
    assert!(w.store.parked_copies(&w.line.id, &w.agents[0]).await.unwrap().is_empty(), "a template never parks");
    let sent = w.wa.sent_to(&w.agents[0]);
    assert_eq!(sent.len(), 2);
    assert!(sent.iter().all(|m| matches!(m.message, WhatsAppMessage::Template { .. })));
    assert_a_pair_spacing_apart(&sent[0], &sent[1]);
}

/// WhatsApp's pair limit counts notices too: a notice to an agent who just got a copy waits
/// for the agent's next slot, reserved, and goes then, rather than meet 131056 or go back to
/// race the copies arriving meanwhile for a later slot.
#[tokio::test]
async fn a_notice_within_the_pair_spacing_takes_the_agents_next_slot_and_goes_then() {
    let w = World::new();
    let process = w.process_with(PAIR);
    let notice = notice_after_a_copy(&w, &process).await;

    assert!(matches!(process.deliver(&notice, w.now).await.unwrap(), Delivered::Sent { .. }));
    let sent = w.wa.sent_to(&w.agents[0]);
    assert_eq!(sent.len(), 2);
    assert_eq!(shown_text(&sent[1].message), "Ben is on #K7");
    assert_a_pair_spacing_apart(&sent[0], &sent[1]);
    assert!(w.store.parked_copies(&w.line.id, &w.agents[0]).await.unwrap().is_empty(), "a notice never parks");

    // A copy arriving now finds the slot after the notice's: it parks for the next digest.
    let bea = w.other_customer_texts(BEA, "B3", "Can I come at 5?").await.remove(0);
    assert!(matches!(process.deliver(&bea, w.now).await, Err(DeliverError::Wait { .. })), "parked");
    assert_eq!(w.wa.sent_to(&w.agents[0]).len(), 2);
}

/// Two notices at once: the first reserves the agent's next slot; the second, whose slot
/// would be two spacings away, goes back untried (no attempt) to come at its slot.
#[tokio::test]
async fn a_notice_behind_another_for_the_next_slot_goes_back_untried() {
    let w = World::new();
    let process = w.process_with(PAIR);
    copy_sent(&w, &process).await;
    let (first, second) = (w.notice_to_agent(0, "Ben is on #K7").await, w.notice_to_agent(0, "Ana closed #B3").await);

    let (one, two) = tokio::join!(process.deliver(&first, w.now), process.deliver(&second, w.now));
    let (sent, waiting) = match (one, two) {
        (Ok(Delivered::Sent { .. }), Err(DeliverError::Wait { until, .. })) => (&first, (&second, until)),
        (Err(DeliverError::Wait { until, .. }), Ok(Delivered::Sent { .. })) => (&second, (&first, until)),
        other => panic!("one sent, one back untried: {other:?}"),
    };
    assert_eq!(w.wa.sends_of(&sent.job_id), 1);
    let (back, until) = waiting;
    assert!(until > w.now, "back at its slot");
    let leg = w.leg(back);
    assert_eq!((leg.state, leg.error.as_ref()), (LegState::Retry, None), "untried: {leg:?}");
    assert_eq!(w.wa.sent_to(&w.agents[0]).len(), 2, "the copy and one notice");

    tokio::time::sleep(SPACING).await;
    assert!(matches!(process.deliver(back, w.now).await.unwrap(), Delivered::Sent { .. }));
    assert_eq!(w.wa.sent_to(&w.agents[0]).len(), 3);
}

/// A notice whose slot comes too late for the invocation is handed back untried, and its
/// reserved slot given back: the next message to the agent doesn't wait a spacing for it.
#[tokio::test]
async fn a_notice_out_of_time_for_its_slot_gives_the_slot_back() {
    let w = World::new();
    let process = w.process_with(PAIR).with_send_timeout(Duration::from_millis(100));
    let notice = notice_after_a_copy(&w, &process).await;

    // Time to start a job (the send's timeout and the finishing margin, 1.6 s), not to wait
    // for the slot (~0.4 s away) as well.
    let deadline = Deadline::after(Duration::from_millis(1800));
    let handed_back = process.deliver_run(std::slice::from_ref(&notice), w.now, deadline).await;
    assert!(matches!(handed_back, Err(DeliverError::OutOfTime)), "{handed_back:?}");
    assert_eq!(w.wa.sends_of(&notice.job_id), 0);
    assert_eq!(w.state(&notice), LegState::Retry, "untried, free for the next invocation");

    // The slot after the copy is free again, and the notice takes it. Had it been kept, the
    // notice's would be two spacings away: back untried again.
    assert!(matches!(process.deliver(&notice, w.now).await.unwrap(), Delivered::Sent { .. }));
    let sent = w.wa.sent_to(&w.agents[0]);
    assert!(sent[1].at - sent[0].at < PAIR_SPACING * 2, "{:?}", sent[1].at - sent[0].at);
}

/// The store unable to answer for the agent's pair slot: the notice goes anyway, as it
/// would without the limit (a 131056 is retried), rather than wait on a store that's down.
#[tokio::test]
async fn a_notice_whose_pair_slot_the_store_cannot_answer_goes_anyway() {
    use bridge_testkit::memory::StoreOp;
    let w = World::new();
    let process = w.process_with(PAIR);
    let notice = notice_after_a_copy(&w, &process).await;
    w.store.fail_next(StoreOp::ReserveSendSlot, 2);

    assert!(matches!(process.deliver(&notice, w.now).await.unwrap(), Delivered::Sent { .. }));
    assert_eq!(shown_text(&w.wa.sent_to(&w.agents[0])[1].message), "Ben is on #K7");
    assert_eq!(w.wa.sends_of(&notice.job_id), 1);
}

/// Agent 0, their window open, just got a plain copy: their pair slot is taken.
async fn copy_sent(w: &World, process: &super::world::TestDeliverer) {
    w.open_window().await;
    let first = w.customer_texts("Is my bike ready?").await.remove(0);
    assert!(matches!(process.deliver(&first, w.now).await.unwrap(), Delivered::Sent { .. }));
}

/// Agent 0 just got a copy (`copy_sent`); a notice to them is recorded behind it.
async fn notice_after_a_copy(w: &World, process: &super::world::TestDeliverer) -> shared::domain::Job {
    copy_sent(w, process).await;
    w.notice_to_agent(0, "Ben is on #K7").await
}

/// `later` reached the agent at least one pair spacing after `earlier` (less the timer's
/// own jitter).
fn assert_a_pair_spacing_apart(earlier: &SentWhatsApp, later: &SentWhatsApp) {
    let gap = later.at - earlier.at;
    assert!(gap >= PAIR_SPACING - Duration::from_millis(20), "one pair spacing apart: {gap:?}");
}

/// Agent 0 got a plain copy; Bea's and Cal's copies wait parked for the next slot.
async fn two_parked(w: &World, process: &super::world::TestDeliverer) -> (shared::domain::Job, shared::domain::Job) {
    copy_sent(w, process).await;
    let bea = w.other_customer_texts(BEA, "B3", "Can I come at 5?").await.remove(0);
    let cal = w.other_customer_texts(CAL, "C4", "Do you sell helmets?").await.remove(0);
    for job in [&bea, &cal] {
        assert!(matches!(process.deliver(job, w.now).await, Err(DeliverError::Wait { .. })));
    }
    (bea, cal)
}

/// The store refusing to park a copy: nothing is sent, the copy is retried (its own queue
/// message), nothing lost.
#[tokio::test]
async fn a_copy_the_store_would_not_park_is_retried_and_nothing_is_sent() {
    use bridge_testkit::memory::StoreOp;
    let w = World::new();
    w.open_window().await;
    let process = w.process_with(PAIR);
    let first = w.customer_texts("Hello").await.remove(0);
    let bea = w.other_customer_texts(BEA, "B3", "Hi").await.remove(0);
    process.deliver(&first, w.now).await.unwrap();
    w.store.fail_next(StoreOp::ParkCopy, 1);
    assert!(matches!(process.deliver(&bea, w.now).await, Err(DeliverError::Retry { .. })));
    assert_eq!(w.state(&bea), LegState::Retry);
    assert_eq!(w.wa.sent_to(&w.agents[0]).len(), 1, "nothing more sent");
    tokio::time::sleep(SPACING).await;
    assert!(matches!(process.deliver(&bea, w.now).await.unwrap(), Delivered::Sent { .. }), "its retry sends it");
}

/// The parked copies unreadable when the slot comes: the carrier goes alone, and the others'
/// own deliveries send them; each copy once.
#[tokio::test]
async fn parked_copies_the_store_cannot_read_go_on_their_own() {
    use bridge_testkit::memory::StoreOp;
    let w = World::new();
    let process = w.process_with(PAIR);
    let (bea, cal) = two_parked(&w, &process).await;
    tokio::time::sleep(SPACING).await;
    w.store.fail_next(StoreOp::ParkedCopies, 1);
    assert!(matches!(process.deliver(&bea, w.now).await.unwrap(), Delivered::Sent { .. }));
    assert!(!shown_text(&w.wa.sent_to(&w.agents[0])[1].message).starts_with("📥"), "a plain copy");
    assert_eq!(w.state(&cal), LegState::Retry, "left to its own delivery");
    tokio::time::sleep(SPACING).await;
    assert!(matches!(process.deliver(&cal, w.now).await.unwrap(), Delivered::Sent { .. }));
    assert_eq!((w.wa.sends_of(&bea.job_id), w.wa.sends_of(&cal.job_id)), (1, 1));
}

/// A digest WhatsApp accepted but the store wouldn't record: the parts stay claimed, this
/// process remembers the send, and the first part delivered next records every part with
/// the digest's reply route: nothing sent twice, and a swipe-reply to the digest finds it
/// (without it, one would be routed like a reply to an unknown message: to the agent's
/// focus, which may be another customer).
#[tokio::test]
async fn a_digest_the_store_would_not_record_is_recorded_later_without_a_second_send() {
    use bridge_testkit::memory::StoreOp;
    let w = World::new();
    let process = w.process_with(PAIR).with_send_timeout(Duration::from_millis(10));
    let (bea, cal) = two_parked(&w, &process).await;
    tokio::time::sleep(SPACING).await;
    w.store.fail_next(StoreOp::RecordDigestSent, 1);
    let hurried = Deadline::at(std::time::Instant::now() + Duration::from_millis(1595));
    let result = process.deliver_run(std::slice::from_ref(&bea), w.now, hurried).await;
    assert!(matches!(result, Err(DeliverError::Wait { .. })), "sent, not recorded: {result:?}");
    assert_eq!(w.wa.sent_to(&w.agents[0]).len(), 2, "the digest went once");
    for job in [&bea, &cal] {
        assert_eq!(w.state(job), LegState::Sending, "left claimed: {job:?}");
    }
    let later = w.at(jiff::SignedDuration::from_secs(200));
    assert!(matches!(process.deliver(&bea, later).await.unwrap(), Delivered::Reconciled { .. }));
    assert!([&bea, &cal].iter().all(|job| w.state(job) == LegState::Sent), "both parts recorded at once");
    assert_eq!(process.deliver(&cal, later).await.unwrap(), Delivered::AlreadyDone);
    assert_eq!(w.wa.sent_to(&w.agents[0]).len(), 2, "nothing sent twice");
    let digest = w.wa.sent_to(&w.agents[0])[1].wamid.clone();
    let route = w.store.find_forwarded_copy(&digest).await.unwrap().expect("the digest's reply route");
    let parts: Vec<_> = route.digest.iter().map(|part| part.job_id.clone()).collect();
    assert_eq!(parts, [bea.job_id.clone(), cal.job_id.clone()], "{route:?}");
}
