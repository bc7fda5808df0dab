//! `Conversations`: started by agents, listed, read as a thread, and the customer's opt-out.

use shared::domain::ConversationKey;
use shared::domain::compliance::CustomerKeyword;
use shared::domain::{JobKind, LegState};
use shared::ports::{
    AgentEffect, AppendOutcome, ConversationStore, ConversationSummary, Direction, HandleRenewal, Outbox,
    RecordOutcome, StartOutcome, ThreadLeg,
};

use super::fixture::*;

pub async fn an_agent_can_start_a_conversation_before_the_customer_writes<S: ConversationStore + Outbox>(store: &S) {
    let case = Case::new("agent-start");
    let (conversation, other) = (case.conversation(0), case.conversation(1));
    let t = t0();

    assert_eq!(store.start_agent_conversation(&conversation, &handle("K7"), t).await.unwrap(), StartOutcome::Started);
    let summary = ConversationSummary {
        key: conversation.clone(),
        handle: handle("K7"),
        open: true,
        last_text: String::new(),
        opted_out: false,
        claimed_by: None,
        claimer: None,
        handle_renewal_due: false,
    };
    assert_eq!(store.conversation(&conversation).await.unwrap(), Some(summary.clone()));
    assert_eq!(store.open_conversations(&case.line, 10).await.unwrap(), vec![summary]);
    assert_eq!(store.thread(&conversation).await.unwrap(), vec![]);
    assert_eq!(store.find_handle(&case.line, &handle("K7")).await.unwrap(), Some(conversation.clone()));

    assert_eq!(
        store.start_agent_conversation(&conversation, &handle("M3"), t).await.unwrap(),
        StartOutcome::ConversationExists
    );
    assert_eq!(store.find_handle(&case.line, &handle("M3")).await.unwrap(), None, "the handle wasn't kept");
    assert_eq!(store.start_agent_conversation(&other, &handle("K7"), t).await.unwrap(), StartOutcome::HandleTaken);
    assert_eq!(store.conversation(&other).await.unwrap(), None);

    // The customer's first text then joins the conversation the agent started.
    let text = inbound(&conversation, "hi, you texted me?", &[agent(0)], t + secs(1));
    assert_eq!(store.start_conversation(&text, &handle("P4")).await.unwrap(), StartOutcome::ConversationExists);
    assert_eq!(store.append_inbound(&text).await.unwrap(), AppendOutcome::Appended);
    assert_eq!(store.conversation(&conversation).await.unwrap().unwrap().last_text, "hi, you texted me?");
}

pub async fn open_conversations_lists_the_lines_open_ones_latest_customer_text_first<S: ConversationStore + Outbox>(
    store: &S,
) {
    let (case, elsewhere) = (Case::new("open-list"), Case::new("open-list-other"));
    let [a, b, c] = [0, 1, 2].map(|n| case.conversation(n));
    let d = ConversationKey { line: case.line.clone(), customer: shared::domain::E164::parse("+14155550199").unwrap() };
    let t = t0();
    started(store, &a, &handle("AA"), t).await;
    started(store, &b, &handle("BB"), t + secs(10)).await;
    store.start_agent_conversation(&d, &handle("DD"), t + secs(15)).await.unwrap();
    started(store, &c, &handle("CC"), t + secs(20)).await;
    store.append_inbound(&inbound(&a, "latest", &[agent(0)], t + secs(30))).await.unwrap();
    // An agent's reply isn't the customer's activity: it doesn't move `b` up.
    let answer = reply(&case, &b, &handle("BB"), &agent(0), "On it", t + secs(40));
    assert_eq!(store.record_agent_message(&answer).await.unwrap(), RecordOutcome::Recorded);
    started(store, &elsewhere.conversation(0), &handle("EE"), t + secs(50)).await;

    let listed = store.open_conversations(&case.line, 10).await.unwrap();
    let keys: Vec<&ConversationKey> = listed.iter().map(|summary| &summary.key).collect();
    assert_eq!(keys, [&a, &c, &d, &b]);
    assert_eq!(listed[0].last_text, "latest");
    assert_eq!(listed[3].last_text, "hello", "the customer's last text, not the agent's");
    assert_eq!(listed[0].handle, handle("AA"));

    let first_two: Vec<ConversationKey> =
        store.open_conversations(&case.line, 2).await.unwrap().into_iter().map(|summary| summary.key).collect();
    assert_eq!(first_two, [a, c]);
}

pub async fn a_closed_conversation_leaves_the_open_list_until_the_customer_writes_again<
    S: ConversationStore + Outbox,
>(
    store: &S,
) {
    let case = Case::new("closed");
    let (a, b) = (case.conversation(0), case.conversation(1));
    let t = t0();
    started(store, &a, &handle("K7"), t).await;
    started(store, &b, &handle("M3"), t + secs(1)).await;

    let close = case.agent_message(
        &agent(0),
        t + secs(2),
        AgentEffect::Close { conversation: a.clone(), unfocus: false },
        vec![],
    );
    assert_eq!(store.record_agent_message(&close).await.unwrap(), RecordOutcome::Recorded);
    let closed = store.conversation(&a).await.unwrap().unwrap();
    assert!(!closed.open);
    assert_eq!(closed.handle, handle("K7"));
    let open = |listed: Vec<ConversationSummary>| listed.into_iter().map(|s| s.key).collect::<Vec<_>>();
    assert_eq!(open(store.open_conversations(&case.line, 10).await.unwrap()), std::slice::from_ref(&b));
    assert_eq!(store.find_handle(&case.line, &handle("K7")).await.unwrap(), Some(a.clone()), "its handle stays");

    store.append_inbound(&inbound(&a, "one more thing", &[agent(0)], t + secs(3))).await.unwrap();
    assert!(store.conversation(&a).await.unwrap().unwrap().open);
    assert_eq!(open(store.open_conversations(&case.line, 10).await.unwrap()), [a, b]);
}

pub async fn the_thread_holds_both_directions_oldest_first<S: ConversationStore + Outbox>(store: &S) {
    let case = Case::new("thread");
    let conversation = case.conversation(0);
    let t = t0();
    let question = started(store, &conversation, &handle("K7"), t).await;
    let answer = reply(&case, &conversation, &handle("K7"), &agent(1), "On it", t + secs(5));
    store.record_agent_message(&answer).await.unwrap();
    let thanks = inbound(&conversation, "thanks", &[agent(0), agent(1)], t + secs(10));
    store.append_inbound(&thanks).await.unwrap();

    let thread = store.thread(&conversation).await.unwrap();
    let directions: Vec<Direction> = thread.iter().map(|m| m.direction).collect();
    assert_eq!(directions, [Direction::Inbound, Direction::Outbound, Direction::Inbound]);
    assert_eq!(thread[0].message_id, question.message_id);
    assert_eq!(thread[2].message_id, thanks.message_id);
    let sms = sms_job(&answer);
    let outbound = &thread[1];
    assert_eq!(outbound.message_id, address(&sms).message_id);
    assert_eq!(outbound.agent, Some(agent(1)));
    assert_eq!(outbound.body, "On it");
    assert_eq!(outbound.at, t + secs(5));
    assert_eq!(
        outbound.legs,
        vec![ThreadLeg {
            job_id: sms.job_id.clone(),
            kind: JobKind::SendSms,
            to: conversation.customer.as_str().into(),
            state: LegState::Queued,
            status: None,
            provider_id: None,
            error: None,
        }]
    );
    assert_eq!(thread[2].legs.len(), 2);
}

pub async fn an_opt_out_the_provider_reports_shows_on_the_conversation<S: ConversationStore + Outbox>(store: &S) {
    let case = Case::new("provider-opt-out");
    let conversation = case.conversation(0);
    let t = t0();

    // Erased, or never there: nothing to mark, and nothing is created.
    store.mark_opted_out(&conversation, t).await.unwrap();
    assert_eq!(store.conversation(&conversation).await.unwrap(), None);

    started(store, &conversation, &handle("K7"), t).await;
    store.mark_opted_out(&conversation, t + secs(1)).await.unwrap();
    assert!(store.conversation(&conversation).await.unwrap().unwrap().opted_out);
    assert!(store.forward_context(&conversation, &agent(0)).await.unwrap().unwrap().opted_out);

    let start = with_keyword(inbound(&conversation, "START", &[agent(0)], t + secs(2)), CustomerKeyword::OptIn);
    store.append_inbound(&start).await.unwrap();
    assert!(!store.conversation(&conversation).await.unwrap().unwrap().opted_out);
}

/// `domain::retention`: a fresh handle isn't due; renewing it keeps it naming its
/// conversation; a conversation gone (erased) or another one gets nothing written.
pub async fn a_handle_is_renewed_only_for_its_own_live_conversation<S: ConversationStore + Outbox>(store: &S) {
    let case = Case::new("renew-handle");
    let (conversation, other, never) = (case.conversation(0), case.conversation(1), case.conversation(2));
    let t = t0();
    store.start_agent_conversation(&conversation, &handle("K7"), t).await.unwrap();
    store.start_agent_conversation(&other, &handle("M3"), t).await.unwrap();
    assert!(!store.conversation(&conversation).await.unwrap().unwrap().handle_renewal_due);
    let context = store.forward_context(&conversation, &agent(0)).await.unwrap().unwrap();
    assert!(!context.handle_renewal_due);

    assert_eq!(store.renew_handle(&conversation, &handle("K7"), t).await.unwrap(), HandleRenewal::Renewed);
    assert_eq!(store.find_handle(&case.line, &handle("K7")).await.unwrap(), Some(conversation.clone()));
    assert!(!store.conversation(&conversation).await.unwrap().unwrap().handle_renewal_due);

    assert_eq!(store.renew_handle(&other, &handle("K7"), t).await.unwrap(), HandleRenewal::ConversationGone);
    assert_eq!(store.find_handle(&case.line, &handle("K7")).await.unwrap(), Some(conversation.clone()));
    assert_eq!(store.renew_handle(&never, &handle("Z9"), t).await.unwrap(), HandleRenewal::ConversationGone);
    assert_eq!(store.find_handle(&case.line, &handle("Z9")).await.unwrap(), None, "no handle for nobody");
}
