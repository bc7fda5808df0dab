//! Recorded once, atomically, then enqueued (docs/guarantees.md, "Recorded means delivered"):
//! a replayed wamid, the store refusing or losing an answer within the retry budget, the
//! queue refusing after the record; and people who aren't agents of the line.

use bridge_testkit::memory::StoreOp;
use shared::app::receive_whatsapp::{HandleError, MessageHandled, receive_whatsapp_message};
use shared::domain::routing::RouteRule;
use shared::domain::{InboundWhatsApp, JobPayload, WaId, WhatsAppContent, notices};
use shared::ports::{Deliveries, Outbox};

use super::fixture::*;

#[tokio::test]
async fn a_replayed_wamid_records_nothing_new_and_offers_the_first_deliverys_jobs_again() {
    let w = World::new();
    w.customer_texts(0, "Is my bike ready?", t0()).await;
    let costly = format!("#K7 😀 {}", "a".repeat(200)); // an SMS and a segment notice
    let message = text(0, &costly);
    // The first delivery stops after its record: SQS refuses, the webhook answers anyway.
    w.queue.fail_next(1);
    assert!(matches!(w.receive(message.clone(), t0()).await, MessageHandled::Relayed { .. }));
    assert!(w.queue.jobs().is_empty());
    let recorded = w.agents_outbox().last().unwrap().clone();
    assert_eq!((sms_of(&recorded).len(), notices_to(&recorded, 0).len()), (1, 1));
    let (records, outbox) = (w.store.record_count(), w.store.outbox_len());

    let replayed = w.receive(message.clone(), t0() + secs(30)).await;

    assert_eq!(replayed, MessageHandled::Duplicate);
    assert_eq!(w.take(), recorded, "the same jobs, same ids: the worker sends each once");
    assert_eq!((w.store.record_count(), w.store.outbox_len()), (records, outbox), "nothing new recorded");
    assert_eq!(w.replies(0).await.len(), 1);
    assert_eq!(w.agent_state(0).await.last_inbound_at, Some(t0()), "the replay doesn't move the window");

    // Replayed again, after the first delivery's jobs went out: offered again all the same.
    assert_eq!(w.receive(message, t0() + secs(60)).await, MessageHandled::Duplicate);
    assert_eq!(w.take(), recorded);
}

#[tokio::test]
async fn a_replayed_question_offers_the_same_list_and_keeps_the_same_text_waiting() {
    let w = World::new();
    w.customer_texts(0, "Is my bike ready?", t0()).await;
    let message = text(0, "Be there at 5");

    assert_eq!(w.receive(message.clone(), t0()).await, MessageHandled::AskedWhich);
    let first = w.take();
    assert_eq!(w.receive(message, t0() + secs(1)).await, MessageHandled::Duplicate);

    assert_eq!(w.take(), first);
    assert_eq!(w.agent_state(0).await.pending.unwrap().text, "Be there at 5");
}

#[tokio::test]
async fn a_store_refusing_the_record_for_a_moment_is_tried_again_within_the_budget() {
    // One pause of the budget's backoff (10 to 100 ms): tokio's `test-util` isn't enabled.
    let w = World::new();
    w.customer_texts(0, "Is my bike ready?", t0()).await;
    w.store.fail_next(StoreOp::RecordAgentMessage, 1);

    let handled = receive_whatsapp_message(
        &w.store,
        &w.queue,
        &w.line,
        Some("Ana".into()),
        text(0, "#K7 Ready at 5"),
        t0(),
        &webhook_budget(),
        &w.learnt,
    )
    .await
    .unwrap();

    assert!(matches!(handled, MessageHandled::Relayed { rule: RouteRule::Handle, .. }), "{handled:?}");
    assert_eq!(w.store.calls(StoreOp::RecordAgentMessage), 2);
    assert_eq!(texted(&w.take()), [(customer(0), "Ready at 5".to_owned())]);
    assert_eq!(w.replies(0).await.len(), 1);
}

#[tokio::test]
async fn a_record_whose_answer_was_lost_is_found_by_the_retry_and_its_jobs_enqueued() {
    let w = World::new();
    w.customer_texts(0, "Is my bike ready?", t0()).await;
    w.store.lose_next_answer(StoreOp::RecordAgentMessage, 1);

    let handled = receive_whatsapp_message(
        &w.store,
        &w.queue,
        &w.line,
        None,
        text(0, "#K7 Ready at 5"),
        t0(),
        &webhook_budget(),
        &w.learnt,
    )
    .await
    .unwrap();

    // The retry finds its own first write.
    assert_eq!(handled, MessageHandled::Duplicate);
    assert_eq!(w.store.calls(StoreOp::RecordAgentMessage), 2);
    assert_eq!(texted(&w.take()), [(customer(0), "Ready at 5".to_owned())], "enqueued once");
    assert_eq!(w.replies(0).await.len(), 1, "recorded once");
}

#[tokio::test]
async fn a_store_refusing_past_the_budget_records_nothing_and_fails_so_meta_delivers_it_again() {
    let w = World::new();
    w.customer_texts(0, "Is my bike ready?", t0()).await;
    let (records, outbox) = (w.store.record_count(), w.store.outbox_len());
    w.store.fail_next(StoreOp::RecordAgentMessage, 1);
    let message = text(0, "#K7 Ready at 5");

    let refused = w.try_receive(message.clone(), t0()).await;

    assert!(matches!(refused, Err(HandleError::Store(_))), "{refused:?}");
    assert_eq!((w.store.record_count(), w.store.outbox_len()), (records, outbox), "nothing recorded");
    assert!(w.queue.jobs().is_empty());
    assert_eq!(w.agent_state(0).await.last_inbound_at, None);

    // Meta's redelivery is the first recording.
    assert!(matches!(w.receive(message, t0() + secs(60)).await, MessageHandled::Relayed { .. }));
    assert_eq!(texted(&w.take()), [(customer(0), "Ready at 5".to_owned())]);
}

#[tokio::test]
async fn a_queue_refusing_after_the_record_leaves_the_jobs_to_the_outbox_and_answers() {
    let w = World::new();
    w.customer_texts(0, "Is my bike ready?", t0()).await;

    w.queue.fail_next(1);
    let handled = w.receive(button(0, "act:claim:K7"), t0()).await;
    w.queue.fail_next(1);
    let replied = w.receive(text(0, "Ready at 5"), t0() + secs(1)).await;

    assert!(matches!(handled, MessageHandled::Acted { .. }), "{handled:?}");
    assert!(matches!(replied, MessageHandled::Relayed { rule: RouteRule::Focus, .. }), "the claim was recorded");
    assert!(w.queue.jobs().is_empty(), "SQS took nothing");
    assert_eq!(w.queue.enqueue_calls(), 2);
    let entries = w.agents_outbox();
    assert_eq!(entries.len(), 2);
    let claim_jobs = &entries[0];
    assert_eq!((notices_to(claim_jobs, 0).len(), notices_to(claim_jobs, 1).len(), sms_of(claim_jobs).len()), (1, 1, 0));
    assert_eq!(texted(&entries[1]), [(customer(0), "Ready at 5".to_owned())]);
    // The sweep finds them due a minute later.
    let due = w.store.due_outbox(t0() + secs(120), 10).await.unwrap();
    let due: Vec<_> =
        due.into_iter().map(|entry| entry.jobs).filter(|jobs| !sms_of(jobs).is_empty() || jobs == claim_jobs).collect();
    assert_eq!(due, entries);
}

#[tokio::test]
async fn a_queue_losing_its_answer_still_has_the_jobs_and_the_webhook_answers() {
    let w = World::new();
    w.customer_texts(0, "Is my bike ready?", t0()).await;
    w.queue.lose_next_answer(1);

    let handled = w.receive(text(0, "#K7 Ready at 5"), t0()).await;

    assert!(matches!(handled, MessageHandled::Relayed { .. }));
    assert_eq!(texted(&w.queue.jobs()), [(customer(0), "Ready at 5".to_owned())]);
}

#[tokio::test]
async fn a_routing_read_the_store_refuses_for_a_moment_is_tried_again_within_the_budget() {
    let w = World::new();
    w.customer_texts(0, "Is my bike ready?", t0()).await;
    w.store.fail_next(StoreOp::FindHandle, 1);

    let handled = receive_whatsapp_message(
        &w.store,
        &w.queue,
        &w.line,
        None,
        text(0, "#K7 Ready at 5"),
        t0(),
        &webhook_budget(),
        &w.learnt,
    )
    .await;

    assert!(matches!(handled, Ok(MessageHandled::Relayed { .. })), "{handled:?}");
    assert_eq!(texted(&w.take()), [(customer(0), "Ready at 5".to_owned())]);
}

fn from_stranger(content: WhatsAppContent) -> InboundWhatsApp {
    InboundWhatsApp { from: WaId::parse(STRANGER).unwrap(), ..from_agent(0, content) }
}

/// The notices to the stranger among `jobs`.
fn replies_to_stranger(jobs: &[shared::domain::Job]) -> Vec<shared::domain::Job> {
    jobs.iter()
        .filter(|job| matches!(&job.payload, JobPayload::NotifyAgent(n) if n.agent.as_str() == STRANGER))
        .cloned()
        .collect()
}

#[tokio::test]
async fn someone_who_is_not_an_agent_gets_one_polite_reply_a_day_and_nothing_is_relayed() {
    let w = World::new();
    w.customer_texts(0, "Is my bike ready?", t0()).await;

    let first = w.receive(from_stranger(WhatsAppContent::Text("#K7 Hello".into())), t0()).await;

    assert_eq!(first, MessageHandled::NonAgent { replied: true });
    let jobs = w.take();
    let replies = replies_to_stranger(&jobs);
    assert_eq!(jobs, replies, "only the reply: {jobs:?}");
    let JobPayload::NotifyAgent(reply) = &replies[0].payload else { panic!("a notice") };
    assert_eq!(reply.message, notices::not_an_agent(&w.line));
    assert!(words(&reply.message).contains("+1 415-555-0100"), "points to the SMS number");

    // Later the same day, whatever they send: recorded, not answered, nothing acted on.
    for (i, content) in [
        WhatsAppContent::Text("Hello??".into()),
        WhatsAppContent::ButtonReply { id: "act:close:K7".into(), title: "Close".into() },
    ]
    .into_iter()
    .enumerate()
    {
        let later = w.receive(from_stranger(content), t0() + hours(1 + i as i64)).await;
        assert_eq!(later, MessageHandled::NonAgent { replied: false });
    }
    assert!(w.take().is_empty());
    assert!(w.is_open(0).await && w.replies(0).await.is_empty());

    // The next day (UTC), one more.
    let next_day = w.receive(from_stranger(WhatsAppContent::Text("Hi".into())), t0() + hours(13)).await;
    assert_eq!(next_day, MessageHandled::NonAgent { replied: true });
    let again = replies_to_stranger(&w.take());
    assert_eq!(again.len(), 1);
    assert_ne!(again[0].job_id, replies[0].job_id);
}

#[tokio::test]
async fn a_replayed_message_from_a_non_agent_offers_the_reply_again_until_it_is_sent() {
    let w = World::new();
    let message = from_stranger(WhatsAppContent::Text("Hello".into()));
    w.queue.fail_next(1);
    assert_eq!(w.receive(message.clone(), t0()).await, MessageHandled::NonAgent { replied: true });
    assert!(w.queue.jobs().is_empty());
    let recorded = w.agents_outbox().last().unwrap().clone();
    assert_eq!(replies_to_stranger(&recorded).len(), 1);

    assert_eq!(w.receive(message.clone(), t0() + secs(30)).await, MessageHandled::Duplicate);
    assert_eq!(w.take(), recorded);

    w.store.record_job_sent(&recorded[0], "wamid.reply", t0() + secs(40)).await.unwrap();
    assert_eq!(w.receive(message, t0() + secs(60)).await, MessageHandled::Duplicate);
    assert!(w.take().is_empty(), "sent already: nothing to offer");
}
