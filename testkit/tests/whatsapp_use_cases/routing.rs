//! Where an agent's text goes (docs/using.md, "How agents answer"): swipe-reply, `#K7 text`,
//! `#K7` alone, focus, and "which conversation?" with its list; the opted-out customer and
//! the conversation that is gone.

use bridge_testkit::memory::StoreOp;
use shared::app::receive_whatsapp::{MessageHandled, NotRelayed};
use shared::domain::notices;
use shared::domain::routing::RouteRule;
use shared::domain::whatsapp_message::PickableConversation;
use shared::domain::{JobKind, LegState, WhatsAppMessage};
use shared::ports::{Conversations, Deliveries, ForwardedCopy, PendingText, Routing, StatusLog};

use super::fixture::*;

#[tokio::test]
async fn a_swipe_reply_to_a_forwarded_copy_goes_to_that_conversation_before_handle_or_focus() {
    let w = World::new();
    let (_, copy) = w.copy_to(0, "Is my bike ready?", 0, t0()).await;
    w.customer_texts(1, "Hello?", t0() + secs(1)).await;
    w.receive(text(0, "#M3"), t0() + secs(2)).await; // focus on the other customer
    w.take();
    let (handles_before, focus_before) = (w.store.calls(StoreOp::FindHandle), w.store.calls(StoreOp::AgentState));

    let reply = swipe(0, "#M3 is next, you're first: ready at 5", &copy);
    let agent_wamid = reply.wamid.clone();
    let handled = w.receive(reply, t0() + secs(3)).await;

    assert_eq!(
        handled,
        MessageHandled::Relayed { conversation: w.conversation(0), handle: handle("K7"), rule: RouteRule::SwipeReply }
    );
    let jobs = w.take();
    let sms = sms_of(&jobs);
    assert_eq!(sms.len(), 1, "{jobs:?}");
    assert_eq!(sms[0].conversation, w.conversation(0));
    assert_eq!(sms[0].text, "#M3 is next, you're first: ready at 5", "a swipe-reply goes as typed");
    assert_eq!((&sms[0].agent, &sms[0].agent_wamid), (&agent(0), &agent_wamid));
    assert_eq!(jobs.len(), 1, "no notice");
    assert_eq!(
        (w.store.calls(StoreOp::FindHandle), w.store.calls(StoreOp::AgentState)),
        (handles_before, focus_before),
        "the swipe decides: neither the handle nor the focus is looked up"
    );
    let replies = w.replies(0).await;
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].body, "#M3 is next, you're first: ready at 5");
    assert_eq!(replies[0].agent, Some(agent(0)));
    assert_eq!(replies[0].legs.len(), 1);
    assert_eq!((replies[0].legs[0].kind, replies[0].legs[0].state), (JobKind::SendSms, LegState::Queued));
    assert!(w.replies(1).await.is_empty());
    assert_eq!(w.agent_state(0).await.focus.unwrap().handle, handle("K7"), "the reply moves the focus");
}

#[tokio::test]
async fn a_swipe_reply_to_another_lines_copy_is_routed_as_if_it_quoted_nothing() {
    let w = World::new();
    let other = other_line();
    let message = customer_texts_on(&w.store, &other, 0, "Hello other line", t0()).await;
    let copy = wamid("other-copy");
    w.store.record_forwarded(&message.jobs[0], &copy, shared::ports::ForwardedVia::Text, t0()).await.unwrap();
    w.customer_texts(1, "Hello main line", t0() + secs(1)).await;

    let handled = w.receive(swipe(0, "Sure", &copy), t0() + secs(2)).await;

    assert_eq!(handled, MessageHandled::AskedWhich, "no focus: asked, not sent to the other line's customer");
    let jobs = w.take();
    assert!(sms_of(&jobs).is_empty());
    let other_thread = w.store.thread(&message.conversation).await.unwrap();
    assert_eq!(other_thread.len(), 1, "only the customer's text");
    assert!(w.replies(1).await.is_empty());
}

#[tokio::test]
async fn a_leading_handle_in_any_case_sends_the_rest_to_that_conversation() {
    let w = World::new();
    w.customer_texts(0, "Is my bike ready?", t0()).await;
    w.customer_texts(1, "Hello?", t0()).await;

    let handled = w.receive(text(1, "  #k7   Your bike is ready"), t0() + secs(1)).await;

    assert_eq!(
        handled,
        MessageHandled::Relayed { conversation: w.conversation(0), handle: handle("K7"), rule: RouteRule::Handle }
    );
    let jobs = w.take();
    assert_eq!(texted(&jobs), [(customer(0), "Your bike is ready".to_owned())], "the handle is not sent");
    assert_eq!(jobs.len(), 1);
    assert_eq!(w.replies(0).await[0].body, "Your bike is ready");
    assert!(w.replies(1).await.is_empty());
    assert_eq!(w.store.calls(StoreOp::AgentState), 0, "a found handle decides: the focus isn't read");
    assert_eq!(w.agent_state(1).await.focus.unwrap().handle, handle("K7"));
}

#[tokio::test]
async fn an_unknown_handle_asks_which_conversation_and_never_falls_back_to_the_focus() {
    let w = World::new();
    w.customer_texts(0, "Is my bike ready?", t0()).await;
    w.receive(text(0, "#K7"), t0() + secs(1)).await;
    w.take();

    let typo = text(0, "#ZZ Your bike is ready");
    let typo_wamid = typo.wamid.clone();
    let handled = w.receive(typo, t0() + secs(2)).await;

    assert_eq!(handled, MessageHandled::AskedWhich);
    let jobs = w.take();
    assert!(sms_of(&jobs).is_empty(), "nothing reaches the focused customer: {jobs:?}");
    let open =
        [PickableConversation { handle: handle("K7"), customer: customer(0), last_text: "Is my bike ready?".into() }];
    assert_eq!(notices_to(&jobs, 0), [notices::which_conversation(Some(&handle("ZZ")), "Your bike is ready", &open)]);
    assert!(words(&notices_to(&jobs, 0)[0]).starts_with("There is no conversation #ZZ."));
    let state = w.agent_state(0).await;
    assert_eq!(state.pending, Some(PendingText { text: "Your bike is ready".into(), wamid: typo_wamid }));
    assert_eq!(state.focus.unwrap().handle, handle("K7"), "the focus stays");
    assert!(w.replies(0).await.is_empty());
}

#[tokio::test]
async fn a_handle_alone_moves_the_focus_says_so_and_the_next_plain_text_follows_it() {
    let w = World::new();
    w.customer_texts(0, "Is my bike ready?", t0()).await;
    w.customer_texts(1, "Hello?", t0()).await;

    let handled = w.receive(text(0, "#M3"), t0() + secs(1)).await;

    assert_eq!(handled, MessageHandled::Focused);
    let jobs = w.take();
    assert_eq!(notices_to(&jobs, 0), [notices::now_answering(&handle("M3"), &customer(1))]);
    assert_eq!(jobs.len(), 1, "nothing to a customer");
    let focus = w.agent_state(0).await.focus.unwrap();
    assert_eq!((focus.conversation, focus.handle, focus.since), (w.conversation(1), handle("M3"), t0() + secs(1)));
    assert!(w.replies(1).await.is_empty());

    let handled = w.receive(text(0, "On my way"), t0() + secs(2)).await;
    assert_eq!(
        handled,
        MessageHandled::Relayed { conversation: w.conversation(1), handle: handle("M3"), rule: RouteRule::Focus }
    );
    assert_eq!(texted(&w.take()), [(customer(1), "On my way".to_owned())]);
    assert_eq!(w.agent_state(1).await.focus, None, "another agent's focus is their own");
}

#[tokio::test]
async fn a_focus_older_than_the_lines_focus_hours_no_longer_routes() {
    let w = World::new();
    assert_eq!(w.line.focus_hours, 12);
    w.customer_texts(0, "Is my bike ready?", t0()).await;
    w.receive(text(0, "#K7"), t0()).await;

    // Within the hours: relayed, and the reply renews the focus.
    let handled = w.receive(text(0, "Still there?"), t0() + hours(11)).await;
    assert!(matches!(handled, MessageHandled::Relayed { rule: RouteRule::Focus, .. }), "{handled:?}");
    w.take();

    let late = t0() + hours(11) + hours(12) + secs(1);
    assert_eq!(w.receive(text(0, "Hello again"), late).await, MessageHandled::AskedWhich);
    assert!(sms_of(&w.take()).is_empty());
    assert_eq!(w.replies(0).await.len(), 1);
}

#[tokio::test]
async fn without_a_focus_a_plain_text_waits_while_the_agent_is_asked_with_the_open_conversations() {
    let w = World::new();
    w.customer_texts(0, "Is my bike ready?", t0()).await;
    w.customer_texts(1, "Hello?", t0() + secs(1)).await;

    let message = text(0, "Be there at 5");
    let pending_wamid = message.wamid.clone();
    assert_eq!(w.receive(message, t0() + secs(2)).await, MessageHandled::AskedWhich);

    let jobs = w.take();
    assert!(sms_of(&jobs).is_empty());
    let newest_first = [
        PickableConversation { handle: handle("M3"), customer: customer(1), last_text: "Hello?".into() },
        PickableConversation { handle: handle("K7"), customer: customer(0), last_text: "Is my bike ready?".into() },
    ];
    assert_eq!(notices_to(&jobs, 0), [notices::which_conversation(None, "Be there at 5", &newest_first)]);
    let WhatsAppMessage::List { rows, .. } = &notices_to(&jobs, 0)[0] else { panic!("a list") };
    assert_eq!(rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["conv:M3", "conv:K7"]);
    assert_eq!(
        w.agent_state(0).await.pending,
        Some(PendingText { text: "Be there at 5".into(), wamid: pending_wamid })
    );
    assert!(w.replies(0).await.is_empty() && w.replies(1).await.is_empty());
}

#[tokio::test]
async fn picking_a_row_sends_the_waiting_text_there_on_the_agents_first_message() {
    let w = World::new();
    w.customer_texts(0, "Is my bike ready?", t0()).await;
    w.customer_texts(1, "Hello?", t0() + secs(1)).await;
    let message = text(0, "Be there at *5*");
    let pending_wamid = message.wamid.clone();
    w.receive(message, t0() + secs(2)).await;
    w.take();

    let handled = w.receive(list_reply(0, "conv:K7"), t0() + secs(3)).await;

    assert_eq!(
        handled,
        MessageHandled::Relayed { conversation: w.conversation(0), handle: handle("K7"), rule: RouteRule::Handle }
    );
    let jobs = w.take();
    let sms = sms_of(&jobs);
    assert_eq!(sms.len(), 1);
    assert_eq!((sms[0].conversation.clone(), sms[0].text.as_str()), (w.conversation(0), "Be there at 5"));
    assert_eq!(sms[0].agent_wamid, pending_wamid, "the delivery result shows on the text the agent typed");
    let state = w.agent_state(0).await;
    assert_eq!(state.pending, None, "sent, no longer waiting");
    assert_eq!(state.focus.unwrap().handle, handle("K7"));
    assert_eq!(w.replies(0).await[0].body, "Be there at 5");
    assert!(w.replies(1).await.is_empty());
}

#[tokio::test]
async fn picking_a_row_with_nothing_waiting_moves_the_focus() {
    let w = World::new();
    w.customer_texts(0, "Is my bike ready?", t0()).await;

    assert_eq!(w.receive(list_reply(1, "conv:K7"), t0() + secs(1)).await, MessageHandled::Focused);

    let jobs = w.take();
    assert_eq!(notices_to(&jobs, 1), [notices::now_answering(&handle("K7"), &customer(0))]);
    assert_eq!(jobs.len(), 1);
    assert_eq!(w.agent_state(1).await.focus.unwrap().conversation, w.conversation(0));
    assert!(w.replies(0).await.is_empty());
}

#[tokio::test]
async fn a_row_the_bridge_did_not_send_is_ignored_and_a_row_of_a_gone_conversation_says_so() {
    let w = World::new();
    w.customer_texts(0, "Is my bike ready?", t0()).await;
    w.receive(text(0, "Waiting text"), t0()).await;
    w.take();

    let handled = w.receive(list_reply(0, "something-else"), t0() + secs(1)).await;
    assert_eq!(handled, MessageHandled::NotRelayed { why: NotRelayed::UnknownListReply });
    assert!(w.take().is_empty(), "silent");

    let handled = w.receive(list_reply(0, "conv:ZZ"), t0() + secs(2)).await;
    assert_eq!(handled, MessageHandled::NotRelayed { why: NotRelayed::ConversationGone });
    let jobs = w.take();
    assert_eq!(notices_to(&jobs, 0), [notices::conversation_gone(Some(&handle("ZZ")))]);
    assert_eq!(jobs.len(), 1);
    assert!(w.agent_state(0).await.pending.is_some(), "the text still waits for a row that exists");
    assert!(w.replies(0).await.is_empty());
}

#[tokio::test]
async fn with_no_open_conversation_a_plain_text_is_answered_and_nothing_waits() {
    let w = World::new();

    let handled = w.receive(text(0, "Hello?"), t0()).await;

    assert_eq!(handled, MessageHandled::NotRelayed { why: NotRelayed::NoOpenConversation });
    assert_eq!(notices_to(&w.take(), 0), [notices::no_open_conversation(None)]);
    assert_eq!(w.agent_state(0).await.pending, None);
    assert_eq!(w.agent_state(0).await.last_inbound_at, Some(t0()), "the agent's window is still recorded");
}

#[tokio::test]
async fn a_reply_to_an_opted_out_customer_is_refused_with_a_notice_and_nothing_is_texted() {
    let w = World::new();
    w.customer_texts(0, "Is my bike ready?", t0()).await;
    w.customer_texts(0, "STOP", t0() + secs(1)).await;
    let (_, copy) = w.copy_to(0, "Just checking", 0, t0() + secs(2)).await;

    for message in [text(0, "#K7 one more thing"), swipe(0, "one more thing", &copy)] {
        let agent_wamid = message.wamid.clone();
        let handled = w.receive(message, t0() + secs(3)).await;

        assert_eq!(handled, MessageHandled::NotRelayed { why: NotRelayed::OptedOut });
        let jobs = w.take();
        assert_eq!(notices_to(&jobs, 0), [notices::customer_opted_out(&handle("K7"), &agent_wamid)]);
        assert!(sms_of(&jobs).is_empty(), "nothing for the customer: {jobs:?}");
    }
    assert!(w.replies(0).await.is_empty());
    assert_eq!(w.agent_state(0).await.focus, None, "a refused reply focuses nothing");
}

#[tokio::test]
async fn picking_an_opted_out_customers_row_refuses_the_waiting_text_with_a_notice() {
    let w = World::new();
    w.customer_texts(0, "Is my bike ready?", t0()).await;
    w.customer_texts(0, "STOP", t0() + secs(1)).await;
    w.receive(text(0, "one more thing"), t0() + secs(2)).await;
    w.take();

    let handled = w.receive(list_reply(0, "conv:K7"), t0() + secs(3)).await;

    assert_eq!(handled, MessageHandled::NotRelayed { why: NotRelayed::OptedOut });
    let jobs = w.take();
    assert!(sms_of(&jobs).is_empty(), "nothing for the customer: {jobs:?}");
    assert_eq!(notices_to(&jobs, 0).len(), 1, "the agent is told");
    assert!(w.replies(0).await.is_empty());
}

#[tokio::test]
async fn a_swipe_reply_to_a_copy_whose_conversation_is_gone_is_answered_with_a_notice() {
    let w = World::new();
    let message = w.customer_texts(0, "Is my bike ready?", t0()).await;
    // A route to a conversation the store no longer holds (erased, or expired).
    let gone = ForwardedCopy {
        conversation: w.conversation(2),
        message_id: message.message_id.clone(),
        job_id: message.jobs[0].job_id.clone(),
        agent: agent(0),
        digest: Vec::new(),
    };
    let copy = wamid("gone");
    w.store.record_copy_route(&gone, &copy, t0()).await.unwrap();
    assert!(w.store.find_forwarded_copy(&copy).await.unwrap().is_some());

    let handled = w.receive(swipe(0, "Ready at 5", &copy), t0() + secs(1)).await;

    assert_eq!(handled, MessageHandled::NotRelayed { why: NotRelayed::ConversationGone });
    let jobs = w.take();
    assert_eq!(notices_to(&jobs, 0), [notices::conversation_gone(None)]);
    assert_eq!(jobs.len(), 1);
    assert!(w.thread(2).await.is_empty(), "nothing recorded for it");
}
