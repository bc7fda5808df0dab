//! WhatsApp status reports on what the line sent (`app::apply_whatsapp_status`): a copy's
//! leg moves forward only, a tracked send whose answer the worker lost learns its wamid
//! (and routes swipe-replies), and a late 131047 re-sends what the copy carried as the
//! template, once.

use bridge_testkit::memory::StoreOp;
use shared::app::apply_whatsapp_status::{StatusHandled, apply_whatsapp_status};
use shared::app::receive_whatsapp::{HandleError, MessageHandled};
use shared::domain::routing::RouteRule;
use shared::domain::{
    ConversationKey, DeliveryStatus, ForwardToAgent, Job, JobKind, JobPayload, LegState, SendTracking, Wamid,
};
use shared::ports::{Agents, Conversations, Deliveries, ForwardedVia, NewInboundMessage, Routing, StatusChange};

use super::fixture::*;

fn handled(change: StatusChange, resent_as_template: usize, noted: usize) -> Option<StatusHandled> {
    Some(StatusHandled { change, resent_as_template, noted })
}

fn unchanged(current: DeliveryStatus) -> StatusChange {
    StatusChange::Unchanged { current: Some(current) }
}

fn leg_status(w: &World, job: &Job) -> Option<DeliveryStatus> {
    w.store.leg(job).unwrap().status
}

/// A report carrying the bridge's tracking (`biz_opaque_callback_data`) for `jobs`.
fn tracked(
    wamid: &Wamid,
    status: &str,
    line: &shared::domain::Line,
    handle: Option<&str>,
    jobs: &[&Job],
) -> shared::domain::WhatsAppStatusReport {
    shared::domain::WhatsAppStatusReport {
        wamid: wamid.clone(),
        status: status.into(),
        error_code: None,
        tracking: Some(SendTracking {
            line: line.id.clone(),
            handle: handle.map(super::fixture::handle),
            jobs: jobs.iter().map(|job| job.job_id.clone()).collect(),
            part_handles: Vec::new(),
        }),
        recipient: Some(agent(0)),
        recipient_user_id: None,
        pricing: None,
    }
}

async fn window_closed_at(w: &World, conversation: &ConversationKey, n: usize) -> Option<jiff::Timestamp> {
    w.store.forward_context(conversation, &agent(n)).await.unwrap().unwrap().agent_window_closed_at
}

#[tokio::test]
async fn a_status_moves_the_copys_leg_forward_only() {
    let w = World::new();
    let (message, copy) = w.copy_to(0, "Is my bike ready?", 0, t0()).await;
    let job = &message.jobs[0];

    assert_eq!(w.status(&status(&copy, "delivered", None)).await, handled(StatusChange::Advanced, 0, 0));
    assert_eq!(leg_status(&w, job), Some(DeliveryStatus::Delivered));

    // Late and out of order: nothing changes. `sent` and `accepted` on a recorded copy say
    // nothing new and cost no write at all.
    for (late, expected) in [
        ("sent", StatusChange::NothingNew),
        ("accepted", StatusChange::NothingNew),
        ("delivered", unchanged(DeliveryStatus::Delivered)),
        ("failed", unchanged(DeliveryStatus::Delivered)),
    ] {
        let writes = w.store.calls(StoreOp::AdvanceLegStatus);
        let change = w.status(&status(&copy, late, None)).await;
        assert_eq!(change, handled(expected.clone(), 0, 0), "{late}");
        let tried = w.store.calls(StoreOp::AdvanceLegStatus) - writes;
        assert_eq!(tried, usize::from(expected != StatusChange::NothingNew), "{late}");
    }
    assert_eq!(leg_status(&w, job), Some(DeliveryStatus::Delivered));

    assert_eq!(w.status(&status(&copy, "read", None)).await, handled(StatusChange::Advanced, 0, 0));
    assert_eq!(leg_status(&w, job), Some(DeliveryStatus::Read));
    assert_eq!(leg_status(&w, &message.jobs[1]), None, "the other agent's copy is its own");
    assert!(w.queue.jobs().is_empty());
}

#[tokio::test]
async fn a_status_meta_does_not_name_or_on_a_message_never_recorded_is_dropped() {
    let w = World::new();
    let (message, copy) = w.copy_to(0, "Is my bike ready?", 0, t0()).await;
    let records = w.store.record_count();

    assert_eq!(w.status(&status(&copy, "deleted", None)).await, None);
    assert_eq!(leg_status(&w, &message.jobs[0]), None);
    // A notice's status, or a copy nobody recorded, without the bridge's tracking.
    assert_eq!(w.status(&status(&wamid("notice"), "delivered", None)).await, None);

    assert_eq!(w.store.record_count(), records);
    assert!(w.queue.jobs().is_empty());
}

#[tokio::test]
async fn a_tracked_send_whose_answer_was_lost_notes_every_leg_it_names_and_routes_swipe_replies() {
    let w = World::new();
    let first = w.customer_texts(0, "Is my bike ready?", t0()).await;
    let second = w.customer_texts(0, "It's the red one", t0() + secs(1)).await;
    // The worker sent both as one copy to agent 0, and never got Meta's answer.
    let copy = wamid("lost-answer");
    let report = tracked(&copy, "sent", &w.line, Some("K7"), &[&first.jobs[0], &second.jobs[0]]);

    assert_eq!(w.status(&report).await, handled(StatusChange::Missing, 0, 2));

    for job in [&first.jobs[0], &second.jobs[0]] {
        let leg = w.store.leg(job).unwrap();
        assert_eq!(leg.provider_id.as_deref(), Some(copy.as_str()));
        assert_eq!(leg.state, LegState::Queued, "not marked sent: its next delivery records it");
    }
    assert_eq!(w.store.leg(&first.jobs[1]).unwrap().provider_id, None, "agent 1's copy isn't this one");
    let route = w.store.find_forwarded_copy(&copy).await.unwrap().unwrap();
    assert_eq!((route.conversation.clone(), route.agent.clone()), (w.conversation(0), agent(0)));
    assert!(route.job_id == first.jobs[0].job_id || route.job_id == second.jobs[0].job_id);
    assert!(w.queue.jobs().is_empty());

    // The agent swipe-replies to the copy before the worker records it: it reaches the customer.
    let handled = w.receive(swipe(0, "Yes, ready", &copy), t0() + secs(40)).await;
    assert!(matches!(handled, MessageHandled::Relayed { rule: RouteRule::SwipeReply, .. }), "{handled:?}");
    assert_eq!(texted(&w.take()), [(customer(0), "Yes, ready".to_owned())]);
}

#[tokio::test]
async fn a_tracked_notice_learns_its_wamid_and_routes_nothing() {
    let w = World::new();
    w.receive(text(0, "/help"), t0()).await;
    let notice = w.take().remove(0);
    let sent_as = wamid("notice");

    let report = tracked(&sent_as, "delivered", &w.line, None, &[&notice]);
    assert_eq!(w.status(&report).await, handled(StatusChange::Missing, 0, 1));

    assert_eq!(w.store.leg(&notice).unwrap().provider_id.as_deref(), Some(sent_as.as_str()));
    assert_eq!(w.store.find_forwarded_copy(&sent_as).await.unwrap(), None);
}

#[tokio::test]
async fn a_notices_report_reads_no_copy_record() {
    let w = World::new();
    w.receive(text(0, "/help"), t0()).await;
    let notice = w.take().remove(0);
    let sent_as = wamid("notice");

    for status in ["sent", "delivered", "read"] {
        w.status(&tracked(&sent_as, status, &w.line, None, &[&notice])).await;
    }

    assert_eq!(w.store.calls(bridge_testkit::memory::StoreOp::FindForwardedCopy), 0, "notices have none");
    assert_eq!(w.store.leg(&notice).unwrap().provider_id.as_deref(), Some(sent_as.as_str()), "still learnt");
}

#[tokio::test]
async fn another_lines_tracking_an_unknown_handle_or_a_finished_leg_notes_nothing() {
    let w = World::new();
    let message = w.customer_texts(0, "Is my bike ready?", t0()).await;
    let job = &message.jobs[0];

    // (A failure reported before the copy was recorded is the copy's failure: see
    // `a_131047_reported_before_the_copy_was_recorded_still_resends_it_as_the_template`.)
    let cases = [
        tracked(&wamid("other-line"), "failed", &other_line(), Some("K7"), &[job]),
        tracked(&wamid("other-line"), "sent", &other_line(), Some("K7"), &[job]),
        tracked(&wamid("unknown-handle"), "sent", &w.line, Some("ZZ"), &[job]),
    ];
    for report in &cases {
        assert_eq!(w.status(report).await, None, "{report:?}");
        assert_eq!(w.store.leg(job).unwrap().provider_id, None, "{report:?}");
        assert_eq!(w.store.find_forwarded_copy(&report.wamid).await.unwrap(), None);
    }

    // Recorded by the worker meanwhile: the leg keeps what it has.
    let recorded = wamid("recorded");
    w.forwarded(job, &recorded).await;
    let late = tracked(&wamid("another"), "sent", &w.line, Some("K7"), &[job]);
    assert_eq!(w.status(&late).await, None);
    assert_eq!(w.store.leg(job).unwrap().provider_id.as_deref(), Some(recorded.as_str()));
    assert_eq!(w.store.find_forwarded_copy(&late.wamid).await.unwrap(), None);
    assert!(w.queue.jobs().is_empty());
}

/// Two texts of customer 0 forwarded to agent 0 as one (coalesced) free-form copy, and a
/// third forwarded on its own; agent 0 wrote an hour before.
async fn coalesced(w: &World) -> ([NewInboundMessage; 3], Wamid) {
    w.store.record_agent_inbound(&w.line.id, &agent(0), t0() - hours(1)).await.unwrap();
    let first = w.customer_texts(0, "Is my bike ready?", t0()).await;
    let second = w.customer_texts(0, "It's the red one", t0() + secs(1)).await;
    let (third, alone) = w.copy_to(0, "Thanks!", 0, t0() + secs(20)).await;
    let copy = wamid("coalesced");
    w.forwarded(&first.jobs[0], &copy).await;
    w.forwarded(&second.jobs[0], &copy).await;
    assert_ne!(alone, copy);
    ([first, second, third], copy)
}

/// The template re-send of `message`'s copy to agent 0.
fn template_resend(w: &World, message: &NewInboundMessage) -> Job {
    Job {
        job_id: message.jobs[0].job_id.template_resend(),
        attempt: 0,
        payload: JobPayload::ForwardToAgent(ForwardToAgent::of_message(
            &w.line,
            message.conversation.clone(),
            message.message_id.clone(),
            agent(0),
            &message.body,
            &message.attachments,
            message.received_at,
        )),
    }
}

#[tokio::test]
async fn a_late_131047_closes_the_agents_window_and_resends_every_message_the_copy_carried_as_the_template() {
    let w = World::new();
    let ([first, second, third], copy) = coalesced(&w).await;
    assert_eq!(window_closed_at(&w, &w.conversation(0), 0).await, None);

    let report = status(&copy, "failed", Some(131047));
    assert_eq!(w.status(&report).await, handled(StatusChange::Advanced, 2, 0));

    assert_eq!(window_closed_at(&w, &w.conversation(0), 0).await, Some(t0() + secs(30)));
    assert_eq!(window_closed_at(&w, &w.conversation(0), 1).await, None, "only that agent's window");
    let resends = [template_resend(&w, &first), template_resend(&w, &second)];
    assert_eq!(w.queue.jobs(), resends, "the copy's messages, in order, as jobs the worker sends as the template");
    for job in &resends {
        let leg = w.store.leg(job).expect("a leg on its message");
        assert_eq!(
            (leg.kind, leg.state, leg.to.as_str()),
            (JobKind::ForwardToAgent, LegState::Queued, agent(0).as_str())
        );
    }
    let thread = w.thread(0).await;
    assert_eq!(thread.iter().map(|m| m.legs.len()).collect::<Vec<_>>(), [3, 3, 2], "the third wasn't in the copy");
    assert_eq!(w.store.leg(&third.jobs[0]).unwrap().state, LegState::Sent);
}

#[tokio::test]
async fn a_replayed_131047_offers_the_same_template_jobs_again_and_adds_no_leg() {
    let w = World::new();
    let ([first, second, _], copy) = coalesced(&w).await;
    let report = status(&copy, "failed", Some(131047));
    w.status(&report).await;
    let offered = w.take();

    assert_eq!(w.status(&report).await, handled(unchanged(DeliveryStatus::Failed), 2, 0));

    assert_eq!(w.take(), offered, "the same jobs, same ids: each is sent once");
    assert_eq!(offered, [template_resend(&w, &first), template_resend(&w, &second)]);
    let thread = w.thread(0).await;
    assert_eq!(thread.iter().map(|m| m.legs.len()).collect::<Vec<_>>(), [3, 3, 2]);
}

#[tokio::test]
async fn another_failure_or_a_131047_after_the_copy_was_delivered_resends_nothing() {
    let w = World::new();
    let ([_, second, _], copy) = coalesced(&w).await;

    let undeliverable = status(&copy, "failed", Some(131026));
    assert_eq!(w.status(&undeliverable).await, handled(StatusChange::Advanced, 0, 0));
    assert_eq!(leg_status(&w, &second.jobs[0]), Some(DeliveryStatus::Failed));

    let (_, delivered) = w.copy_to(0, "Hello again", 0, t0() + secs(40)).await;
    w.status(&status(&delivered, "delivered", None)).await;
    let late = status(&delivered, "failed", Some(131047));
    assert_eq!(w.status(&late).await, handled(unchanged(DeliveryStatus::Delivered), 0, 0));

    assert_eq!(window_closed_at(&w, &w.conversation(0), 0).await, None);
    assert!(w.queue.jobs().is_empty());
    assert!(w.thread(0).await.iter().all(|m| m.legs.len() == 2), "no leg added");
}

#[tokio::test]
async fn a_queue_refusing_the_template_resends_fails_the_report_and_metas_redelivery_offers_them() {
    let w = World::new();
    let ([first, second, _], copy) = coalesced(&w).await;
    let report = status(&copy, "failed", Some(131047));
    w.queue.fail_next(1);

    let refused = w.try_status(&report).await;

    assert!(matches!(refused, Err(HandleError::Queue(_))), "{refused:?}: Meta delivers it again");
    let resends = [template_resend(&w, &first), template_resend(&w, &second)];
    assert!(resends.iter().all(|job| w.store.leg(job).is_some()), "their legs are recorded");
    assert_eq!(window_closed_at(&w, &w.conversation(0), 0).await, Some(t0() + secs(30)));
    assert!(w.queue.jobs().is_empty());

    assert_eq!(w.status(&report).await, handled(unchanged(DeliveryStatus::Failed), 2, 0));
    assert_eq!(w.take(), resends);
}

/// A copy of a customer's text on another line, forwarded to agent 0.
async fn other_lines_copy(w: &World) -> (NewInboundMessage, Wamid) {
    let message = customer_texts_on(&w.store, &other_line(), 0, "Hello other line", t0()).await;
    let copy = wamid("other-line");
    w.store.record_forwarded(&message.jobs[0], &copy, ForwardedVia::Text, t0()).await.unwrap();
    (message, copy)
}

#[tokio::test]
async fn a_131047_for_another_lines_copy_closes_no_window_and_resends_nothing() {
    let w = World::new();
    w.customer_texts(0, "Hello main line", t0()).await;
    let (message, copy) = other_lines_copy(&w).await;

    let handled = w.status(&status(&copy, "failed", Some(131047))).await;

    assert_eq!(handled, None, "not this line's copy");
    assert_eq!(window_closed_at(&w, &w.conversation(0), 0).await, None);
    assert_eq!(window_closed_at(&w, &message.conversation, 0).await, None);
    assert!(w.queue.jobs().is_empty());
    let thread = w.store.thread(&message.conversation).await.unwrap();
    assert_eq!(thread[0].legs.len(), 2, "no leg added");
}

#[tokio::test]
async fn a_status_for_another_lines_copy_is_not_applied() {
    let w = World::new();
    let (message, copy) = other_lines_copy(&w).await;

    assert_eq!(w.status(&status(&copy, "delivered", None)).await, None);

    assert_eq!(leg_status(&w, &message.jobs[0]), None);
}

#[tokio::test]
async fn a_status_the_store_refuses_for_a_moment_is_tried_again() {
    let w = World::new();
    let (message, copy) = w.copy_to(0, "Is my bike ready?", 0, t0()).await;
    w.store.fail_next(StoreOp::FindForwardedCopy, 1);

    let report = status(&copy, "delivered", None);
    let applied = apply_whatsapp_status(&w.store, &w.queue, &w.line, &report, t0() + secs(30), &webhook_budget()).await;

    assert!(matches!(applied, Ok(Some(StatusHandled { change: StatusChange::Advanced, .. }))), "{applied:?}");
    assert_eq!(leg_status(&w, &message.jobs[0]), Some(DeliveryStatus::Delivered));
}

/// Meta can report `failed` 131047 before the worker has recorded the copy: the tracking
/// names the legs, which learn the send, and the copy is re-sent as the template all the
/// same (acknowledged unhandled, it was lost: seen in the local stack under load).
#[tokio::test]
async fn a_131047_reported_before_the_copy_was_recorded_still_resends_it_as_the_template() {
    let w = World::new();
    let message = w.customer_texts(0, "Thanks", t0()).await;
    let copy = wamid("early-failure");
    let mut report = tracked(&copy, "failed", &w.line, Some("K7"), &[&message.jobs[0]]);
    report.error_code = Some(131047);

    let handled_now = w.status(&report).await.expect("handled as the copy's failure");
    assert_eq!(handled_now.resent_as_template, 1, "{handled_now:?}");
    assert_eq!(window_closed_at(&w, &w.conversation(0), 0).await, Some(t0() + secs(30)));
    assert_eq!(w.queue.jobs(), [template_resend(&w, &message)]);
    assert_eq!(leg_status(&w, &message.jobs[0]), Some(DeliveryStatus::Failed));
    assert_eq!(w.store.leg(&message.jobs[0]).unwrap().provider_id.as_deref(), Some(copy.as_str()));
}
