//! `Agents`: their window, focus and pending text, their messages recorded once, and the
//! once-a-day answer to people who aren't agents.

use std::collections::BTreeSet;

use shared::domain::copies::{ClaimAssumed, CopyFacts};
use shared::domain::routing::Focus;
use shared::domain::{ConversationKey, UserId, WaId, WhatsAppRecipient};
use shared::ports::{
    AgentEffect, AgentState, AppendOutcome, ConversationStore, ForwardContext, NewInboundMessage, NonAgentOutcome,
    Outbox, PendingText, PriorDelivery, RecordOutcome, ThreadMessage,
};

use super::fixture::*;

pub async fn a_pending_text_waits_until_a_reply_clears_it<S: ConversationStore + Outbox>(store: &S) {
    let case = Case::new("pending");
    let conversation = case.conversation(0);
    let (ana, t) = (agent(0), t0());
    started(store, &conversation, &handle("K7"), t).await;
    assert_eq!(store.agent_state(&case.line, &ana).await.unwrap(), AgentState::default());

    let pending = PendingText { text: "what's your order number?".into(), wamid: wamid() };
    let held = case.agent_message(&ana, t + secs(1), AgentEffect::Pending(pending.clone()), vec![]);
    assert_eq!(store.record_agent_message(&held).await.unwrap(), RecordOutcome::Recorded);
    assert_eq!(
        store.agent_state(&case.line, &ana).await.unwrap(),
        AgentState { focus: None, pending: Some(pending.clone()), last_inbound_at: Some(t + secs(1)) }
    );

    let answer = reply(&case, &conversation, &handle("K7"), &ana, "Hi!", t + secs(2));
    assert_eq!(store.record_agent_message(&answer).await.unwrap(), RecordOutcome::Recorded);
    let focus = |since| Some(Focus { conversation: conversation.clone(), handle: handle("K7"), since });
    assert_eq!(
        store.agent_state(&case.line, &ana).await.unwrap(),
        AgentState { focus: focus(t + secs(2)), pending: Some(pending), last_inbound_at: Some(t + secs(2)) }
    );

    let mut clearing = reply(&case, &conversation, &handle("K7"), &ana, "Order 1234?", t + secs(3));
    let AgentEffect::Reply { clear_pending, .. } = &mut clearing.effect else { unreachable!() };
    *clear_pending = true;
    store.record_agent_message(&clearing).await.unwrap();
    assert_eq!(
        store.agent_state(&case.line, &ana).await.unwrap(),
        AgentState { focus: focus(t + secs(3)), pending: None, last_inbound_at: Some(t + secs(3)) }
    );
    assert_eq!(store.agent_state(&case.line, &agent(1)).await.unwrap(), AgentState::default());
}

pub async fn focus_claim_and_close_move_the_agents_focus_and_the_conversation<S: ConversationStore + Outbox>(
    store: &S,
) {
    let case = Case::new("focus");
    let (a, b) = (case.conversation(0), case.conversation(1));
    let (ana, t) = (agent(0), t0());
    started(store, &a, &handle("K7"), t).await;
    started(store, &b, &handle("M3"), t).await;
    let record = |n: i64, effect: AgentEffect| case.agent_message(&ana, t + secs(n), effect, vec![]);
    let focus = |key: &ConversationKey, text: &str, n: i64| {
        Some(Focus { conversation: key.clone(), handle: handle(text), since: t + secs(n) })
    };

    store
        .record_agent_message(&record(1, AgentEffect::Focus { conversation: a.clone(), handle: handle("K7") }))
        .await
        .unwrap();
    assert_eq!(store.agent_state(&case.line, &ana).await.unwrap().focus, focus(&a, "K7", 1));

    let claim = AgentEffect::Claim { conversation: b.clone(), handle: handle("M3"), name: "Ana".into() };
    assert_eq!(store.record_agent_message(&record(2, claim)).await.unwrap(), RecordOutcome::Recorded);
    assert_eq!(store.agent_state(&case.line, &ana).await.unwrap().focus, focus(&b, "M3", 2));
    assert_eq!(store.conversation(&b).await.unwrap().unwrap().claimed_by.as_deref(), Some("Ana"));
    assert_eq!(store.conversation(&a).await.unwrap().unwrap().claimed_by, None);

    let close_other = AgentEffect::Close { conversation: a.clone(), unfocus: false };
    assert_eq!(store.record_agent_message(&record(3, close_other)).await.unwrap(), RecordOutcome::Recorded);
    assert!(!store.conversation(&a).await.unwrap().unwrap().open);
    assert_eq!(store.agent_state(&case.line, &ana).await.unwrap().focus, focus(&b, "M3", 2));

    let close_focused = AgentEffect::Close { conversation: b.clone(), unfocus: true };
    store.record_agent_message(&record(4, close_focused)).await.unwrap();
    assert!(!store.conversation(&b).await.unwrap().unwrap().open);
    assert_eq!(store.agent_state(&case.line, &ana).await.unwrap().focus, None);

    store.record_agent_message(&record(5, AgentEffect::Nothing)).await.unwrap();
    assert_eq!(
        store.agent_state(&case.line, &ana).await.unwrap(),
        AgentState { focus: None, pending: None, last_inbound_at: Some(t + secs(5)) }
    );
}

pub async fn an_agents_message_is_recorded_once<S: ConversationStore + Outbox>(store: &S) {
    let case = Case::new("agent-once");
    let conversation = case.conversation(0);
    let (ana, t) = (agent(0), t0());
    started(store, &conversation, &handle("K7"), t).await;
    let mut answer = reply(&case, &conversation, &handle("K7"), &ana, "On it", t + secs(1));
    let notice = case.notice(&agent(1), "Ana answered #K7");
    answer.notices = vec![notice.clone()];
    assert_eq!(store.record_agent_message(&answer).await.unwrap(), RecordOutcome::Recorded);

    // The webhook again, deciding differently this time: the first record stands.
    let mut replay = answer.clone();
    replay.effect = AgentEffect::Pending(PendingText { text: "On it".into(), wamid: answer.wamid.clone() });
    replay.notices = vec![];
    let sms = sms_job(&answer);
    assert_eq!(
        store.record_agent_message(&replay).await.unwrap(),
        RecordOutcome::Duplicate(PriorDelivery { message_id: Some(address(&sms).message_id), jobs: vec![sms, notice] })
    );
    assert_eq!(store.agent_state(&case.line, &ana).await.unwrap().pending, None);
    assert_eq!(store.thread(&conversation).await.unwrap().len(), 2);

    let later = case.notice(&ana, "pick a conversation");
    let focus = case.agent_message(
        &ana,
        t + secs(2),
        AgentEffect::Focus { conversation: conversation.clone(), handle: handle("K7") },
        vec![later.clone()],
    );
    store.record_agent_message(&focus).await.unwrap();
    assert_eq!(
        store.record_agent_message(&focus).await.unwrap(),
        RecordOutcome::Duplicate(PriorDelivery { message_id: None, jobs: vec![later] })
    );
    // One dedupe per WhatsApp message, whoever sent it.
    let polite = case.notice(&ana, "this number is for agents");
    assert_eq!(
        store.record_non_agent(&case.line, &ana.clone().into(), &focus.wamid, "2026-12-05", &polite).await.unwrap(),
        NonAgentOutcome::Duplicate
    );
}

pub async fn a_message_about_a_conversation_that_is_gone_records_nothing<S: ConversationStore + Outbox>(store: &S) {
    let case = Case::new("gone");
    let conversation = case.conversation(0);
    let (ana, t) = (agent(0), t0());
    let notice = case.notice(&agent(1), "Ana answered #K7");
    let mut answer = reply(&case, &conversation, &handle("K7"), &ana, "Hello?", t);
    answer.notices = vec![notice.clone()];

    assert_eq!(store.record_agent_message(&answer).await.unwrap(), RecordOutcome::ConversationGone);
    assert_eq!(store.agent_state(&case.line, &ana).await.unwrap(), AgentState::default(), "not even the window");
    assert_eq!(store.thread(&conversation).await.unwrap(), vec![]);
    assert_eq!(store.unsent_jobs(std::slice::from_ref(&notice)).await.unwrap(), vec![]);
    let claim = AgentEffect::Claim { conversation: conversation.clone(), handle: handle("K7"), name: "Ana".into() };
    let close = AgentEffect::Close { conversation: conversation.clone(), unfocus: true };
    for effect in [claim, close] {
        let record = case.agent_message(&ana, t, effect, vec![]);
        assert_eq!(store.record_agent_message(&record).await.unwrap(), RecordOutcome::ConversationGone);
    }
    assert_eq!(store.conversation(&conversation).await.unwrap(), None);

    // Nothing was kept, its dedupe marker included: once the conversation exists it records.
    started(store, &conversation, &handle("K7"), t).await;
    assert_eq!(store.record_agent_message(&answer).await.unwrap(), RecordOutcome::Recorded);
    assert_eq!(store.unsent_jobs(std::slice::from_ref(&notice)).await.unwrap(), vec![notice]);
}

pub async fn forward_context_has_the_handle_the_agents_window_and_the_opt_out<S: ConversationStore + Outbox>(
    store: &S,
) {
    let case = Case::new("forward-context");
    let conversation = case.conversation(0);
    let (ana, ben, t) = (agent(0), agent(1), t0());
    assert_eq!(store.forward_context(&conversation, &ana).await.unwrap(), None);

    started(store, &conversation, &handle("K7"), t).await;
    let context = |last_inbound, closed| ForwardContext {
        handle: handle("K7"),
        agent_last_inbound_at: last_inbound,
        agent_window_closed_at: closed,
        opted_out: false,
        handle_renewal_due: false,
    };
    assert_eq!(store.forward_context(&conversation, &ana).await.unwrap(), Some(context(None, None)));

    store.record_agent_message(&case.agent_message(&ana, t + secs(1), AgentEffect::Nothing, vec![])).await.unwrap();
    assert_eq!(store.forward_context(&conversation, &ana).await.unwrap(), Some(context(Some(t + secs(1)), None)));
    store.mark_window_closed(&case.line, &ana, t + secs(2)).await.unwrap();
    assert_eq!(
        store.forward_context(&conversation, &ana).await.unwrap(),
        Some(context(Some(t + secs(1)), Some(t + secs(2))))
    );
    assert_eq!(store.forward_context(&conversation, &ben).await.unwrap(), Some(context(None, None)));

    // An agent the bridge never heard from.
    store.mark_window_closed(&case.line, &ben, t + secs(3)).await.unwrap();
    assert_eq!(store.forward_context(&conversation, &ben).await.unwrap(), Some(context(None, Some(t + secs(3)))));
    assert_eq!(store.agent_state(&case.line, &ben).await.unwrap(), AgentState::default());

    // An agent's records are the line's: on another line Ana hasn't written.
    let elsewhere = Case::new("forward-context-other");
    started(store, &elsewhere.conversation(0), &handle("K7"), t).await;
    assert_eq!(store.forward_context(&elsewhere.conversation(0), &ana).await.unwrap(), Some(context(None, None)));

    // Writing again reopens the window; when it was closed stays known.
    store.record_agent_message(&case.agent_message(&ana, t + secs(4), AgentEffect::Nothing, vec![])).await.unwrap();
    assert_eq!(
        store.forward_context(&conversation, &ana).await.unwrap(),
        Some(context(Some(t + secs(4)), Some(t + secs(2))))
    );
}

pub async fn someone_who_is_not_an_agent_gets_one_reply_a_day<S: ConversationStore + Outbox>(store: &S) {
    let (case, other_line) = (Case::new("non-agent"), Case::new("non-agent-other"));
    let stranger = WaId::parse("14155550177").unwrap();
    let someone_else = WaId::parse("14155550178").unwrap();
    let (today, tomorrow) = ("2026-12-05", "2026-12-06");
    let polite = |case: &Case, to: &WaId| case.notice(to, "This number is for our team");
    let (first, second) = (polite(&case, &stranger), polite(&case, &stranger));
    let (w1, w2) = (wamid(), wamid());

    assert_eq!(
        store.record_non_agent(&case.line, &stranger.clone().into(), &w1, today, &first).await.unwrap(),
        NonAgentOutcome::Replied
    );
    assert_eq!(store.unsent_jobs(std::slice::from_ref(&first)).await.unwrap(), vec![first.clone()]);
    assert_eq!(
        store.record_non_agent(&case.line, &stranger.clone().into(), &w2, today, &second).await.unwrap(),
        NonAgentOutcome::AlreadyRepliedToday
    );
    assert_eq!(store.unsent_jobs(std::slice::from_ref(&second)).await.unwrap(), vec![], "no second reply");
    assert_eq!(
        store.record_non_agent(&case.line, &stranger.clone().into(), &w1, today, &first).await.unwrap(),
        NonAgentOutcome::Duplicate
    );
    assert_eq!(
        store.record_non_agent(&case.line, &stranger.clone().into(), &w2, today, &second).await.unwrap(),
        NonAgentOutcome::Duplicate
    );

    for (line, from, day) in
        [(&case.line, &someone_else, today), (&case.line, &stranger, tomorrow), (&other_line.line, &stranger, today)]
    {
        let answer = polite(&case, from);
        assert_eq!(
            store.record_non_agent(line, &from.clone().into(), &wamid(), day, &answer).await.unwrap(),
            NonAgentOutcome::Replied,
            "{from:?} on {day}"
        );
    }
}

pub async fn an_agents_user_id_is_learnt_relearnt_and_forgotten<S: ConversationStore>(store: &S) {
    let case = Case::new("userid");
    let other = Case::new("userid-other");
    let id = UserId::parse("US.13491208655302741918").unwrap();
    let (ana, ben, t) = (agent(0), agent(1), t0());
    assert_eq!(store.agent_by_user_id(&case.line, &id).await.unwrap(), None);

    store.learn_agent_user_id(&case.line, &id, &ana, t).await.unwrap();
    store.learn_agent_user_id(&case.line, &id, &ana, t + secs(1)).await.unwrap();
    assert_eq!(store.agent_by_user_id(&case.line, &id).await.unwrap(), Some(ana.clone()), "learning twice is once");
    assert_eq!(store.agent_by_user_id(&other.line, &id).await.unwrap(), None, "per line");

    store.learn_agent_user_id(&case.line, &id, &ben, t + secs(2)).await.unwrap();
    assert_eq!(store.agent_by_user_id(&case.line, &id).await.unwrap(), Some(ben), "the latest learning wins");

    store.forget_agent_user_id(&case.line, &id).await.unwrap();
    store.forget_agent_user_id(&case.line, &id).await.unwrap();
    assert_eq!(store.agent_by_user_id(&case.line, &id).await.unwrap(), None, "forgetting twice is once");
}

pub async fn a_stranger_known_by_user_id_gets_one_reply_a_day_apart_from_one_known_by_phone<S: ConversationStore>(
    store: &S,
) {
    let case = Case::new("nonagent-userid");
    let today = "2026-12-05";
    let by_id = WhatsAppRecipient::parse("BR.1A2B3C4D5E6F").unwrap();
    let by_phone = WhatsAppRecipient::parse("12195550000").unwrap();
    let answer = |n: &str| case.notice(&agent(0), &format!("polite-{n}"));
    assert_eq!(
        store.record_non_agent(&case.line, &by_id, &wamid(), today, &answer("a")).await.unwrap(),
        NonAgentOutcome::Replied
    );
    assert_eq!(
        store.record_non_agent(&case.line, &by_id, &wamid(), today, &answer("b")).await.unwrap(),
        NonAgentOutcome::AlreadyRepliedToday
    );
    assert_eq!(
        store.record_non_agent(&case.line, &by_phone, &wamid(), today, &answer("c")).await.unwrap(),
        NonAgentOutcome::Replied
    );
}

pub async fn claims_and_duty_are_the_copy_facts<S: ConversationStore>(store: &S) {
    let case = Case::new("copyfacts");
    let (k7, gone) = (case.conversation(0), case.conversation(1));
    let (ana, ben, t) = (agent(0), agent(1), t0());
    assert_eq!(store.copy_facts(&k7).await.unwrap(), CopyFacts::default(), "no conversation yet");
    started(store, &k7, &handle("K7"), t).await;
    let record = |who: &WaId, n: i64, effect: AgentEffect| case.agent_message(who, t + secs(n), effect, vec![]);

    let claim = AgentEffect::Claim { conversation: k7.clone(), handle: handle("K7"), name: "Ana".into() };
    assert_eq!(store.record_agent_message(&record(&ana, 1, claim)).await.unwrap(), RecordOutcome::Recorded);
    assert_eq!(store.copy_facts(&k7).await.unwrap().claimed_by, Some(ana.clone()));
    assert_eq!(store.conversation(&k7).await.unwrap().unwrap().claimer, Some(ana.clone()));
    let taken = AgentEffect::Claim { conversation: k7.clone(), handle: handle("K7"), name: "Ben".into() };
    store.record_agent_message(&record(&ben, 2, taken)).await.unwrap();
    assert_eq!(store.copy_facts(&k7).await.unwrap().claimed_by, Some(ben.clone()), "a claim moves it");

    let unclaim = || AgentEffect::Unclaim { conversation: k7.clone() };
    assert_eq!(store.record_agent_message(&record(&ben, 3, unclaim())).await.unwrap(), RecordOutcome::Recorded);
    let summary = store.conversation(&k7).await.unwrap().unwrap();
    assert_eq!((summary.claimer, summary.claimed_by), (None, None));
    assert_eq!(store.record_agent_message(&record(&ben, 4, unclaim())).await.unwrap(), RecordOutcome::Recorded);
    let unclaim_gone = AgentEffect::Unclaim { conversation: gone.clone() };
    assert_eq!(
        store.record_agent_message(&record(&ben, 5, unclaim_gone)).await.unwrap(),
        RecordOutcome::ConversationGone
    );

    let duty = |on_duty| AgentEffect::Duty { on_duty };
    for (n, (who, on_duty)) in [(&ben, false), (&ben, false), (&ana, false), (&ana, true)].into_iter().enumerate() {
        let n = 6 + i64::try_from(n).unwrap();
        assert_eq!(store.record_agent_message(&record(who, n, duty(on_duty))).await.unwrap(), RecordOutcome::Recorded);
    }
    assert_eq!(store.away_agents(&case.line).await.unwrap(), BTreeSet::from([ben.clone()]));
    assert_eq!(
        store.copy_facts(&k7).await.unwrap(),
        CopyFacts { claimed_by: None, away: BTreeSet::from([ben.clone()]) }
    );
    assert!(store.away_agents(&Case::new("copyfacts-other").line).await.unwrap().is_empty(), "per line");
    for n in 10..12 {
        store.record_agent_message(&record(&ben, n, duty(true))).await.unwrap();
    }
    assert!(store.away_agents(&case.line).await.unwrap().is_empty(), "back, twice");
}

/// A text is appended only if the conversation's claim is the one its copies were decided
/// on; else nothing is written and the store says who holds it (issue 17: the webhook guesses
/// the claim instead of reading it).
pub async fn a_text_whose_copies_assumed_another_claim_is_refused_and_told_the_claim<S: ConversationStore>(store: &S) {
    let case = Case::new("claimassumed");
    let k7 = case.conversation(0);
    let (ana, ben, t) = (agent(0), agent(1), t0());
    started(store, &k7, &handle("K7"), t).await;
    let text = |n: i64, assumed: ClaimAssumed| NewInboundMessage {
        claim_assumed: assumed,
        ..inbound(&k7, &format!("text {n}"), std::slice::from_ref(&ana), t + secs(n))
    };

    let unclaimed = text(1, ClaimAssumed::Unclaimed);
    assert_eq!(store.append_inbound(&unclaimed).await.unwrap(), AppendOutcome::Appended);
    let wrong = text(2, ClaimAssumed::ClaimedBy(ana.clone()));
    assert_eq!(store.append_inbound(&wrong).await.unwrap(), AppendOutcome::ClaimChanged { claimed_by: None });

    let claim = AgentEffect::Claim { conversation: k7.clone(), handle: handle("K7"), name: "Ben".into() };
    store.record_agent_message(&case.agent_message(&ben, t + secs(3), claim, vec![])).await.unwrap();
    let stale = text(4, ClaimAssumed::Unclaimed);
    assert_eq!(
        store.append_inbound(&stale).await.unwrap(),
        AppendOutcome::ClaimChanged { claimed_by: Some(ben.clone()) }
    );
    assert_eq!(
        store.append_inbound(&text(5, ClaimAssumed::ClaimedBy(ana.clone()))).await.unwrap(),
        AppendOutcome::ClaimChanged { claimed_by: Some(ben.clone()) }
    );
    let bodies = |thread: Vec<ThreadMessage>| thread.into_iter().map(|m| m.body).collect::<Vec<_>>();
    assert_eq!(bodies(store.thread(&k7).await.unwrap()), ["hello", "text 1"], "the refused texts left nothing");
    // Nor a dedupe marker: the same text, its copies decided again, is appended.
    let decided_again = NewInboundMessage { claim_assumed: ClaimAssumed::ClaimedBy(ben.clone()), ..stale };
    assert_eq!(store.append_inbound(&decided_again).await.unwrap(), AppendOutcome::Appended);
    assert_eq!(store.append_inbound(&text(6, ClaimAssumed::Any)).await.unwrap(), AppendOutcome::Appended);
    assert_eq!(bodies(store.thread(&k7).await.unwrap()), ["hello", "text 1", "text 4", "text 6"]);

    let no_conversation = NewInboundMessage {
        claim_assumed: ClaimAssumed::Unclaimed,
        ..inbound(&case.conversation(1), "hi", std::slice::from_ref(&ana), t)
    };
    assert_eq!(store.append_inbound(&no_conversation).await.unwrap(), AppendOutcome::NoConversation);
}
