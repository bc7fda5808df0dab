//! Reply buttons on forwarded copies (docs/using.md): Claim, Close and the line's quick
//! reply, each acting on the conversation its button names (`act:<action>:<handle>`).

use shared::app::receive_whatsapp::{AgentAction, MessageHandled, NotRelayed};
use shared::domain::line::QuickReply;
use shared::domain::notices;
use shared::domain::routing::RouteRule;
use shared::ports::Conversations;

use super::fixture::*;

fn quick_reply_line() -> shared::domain::Line {
    let mut line = test_line();
    line.quick_reply =
        Some(QuickReply { title: "On our way".into(), text: "We're on our *way*, see you soon!".into() });
    line
}

#[tokio::test]
async fn claim_assigns_the_conversation_to_the_presser_focuses_them_and_tells_the_others() {
    let w = World::new();
    w.customer_texts(0, "Is my order ready?", t0()).await;

    let handled = w.receive(button(0, "act:claim:K7"), t0() + secs(1)).await;

    assert_eq!(handled, MessageHandled::Acted { action: AgentAction::Claim });
    let summary = w.store.conversation(&w.conversation(0)).await.unwrap().unwrap();
    assert_eq!(summary.claimed_by.as_deref(), Some("Ana"), "named by their WhatsApp profile");
    assert!(summary.open);
    let jobs = w.take();
    assert_eq!(notices_to(&jobs, 0), [notices::you_claimed(&handle("K7"), &customer(0), true)]);
    let told = notices::claimed_by(&handle("K7"), &customer(0), "Ana");
    assert_eq!(notices_to(&jobs, 1), std::slice::from_ref(&told));
    assert_eq!(
        fallbacks_to(&jobs, 1),
        [Some(vec!["#K7".to_owned(), customer(0).pretty(), words(&told)])],
        "outside their window the others get it as the template"
    );
    assert!(sms_of(&jobs).is_empty());
    assert_eq!(w.agent_state(0).await.focus.unwrap().conversation, w.conversation(0));
    assert_eq!(w.agent_state(1).await.focus, None);

    // The claimer's next plain text goes to the customer.
    let handled = w.receive(text(0, "Yes, ready at 5"), t0() + secs(2)).await;
    assert!(matches!(handled, MessageHandled::Relayed { rule: RouteRule::Focus, .. }), "{handled:?}");
    assert_eq!(texted(&w.take()), [(customer(0), "Yes, ready at 5".to_owned())]);
}

#[tokio::test]
async fn close_closes_the_conversation_unfocuses_the_closer_and_tells_the_others() {
    let w = World::new();
    w.customer_texts(0, "Thanks, all good", t0()).await;
    w.customer_texts(1, "Hello?", t0()).await;
    w.receive(text(1, "#K7"), t0()).await;
    w.take();

    let handled = w.receive(button(1, "act:close:K7"), t0() + secs(1)).await;

    assert_eq!(handled, MessageHandled::Acted { action: AgentAction::Close });
    assert!(!w.is_open(0).await);
    let open = w.store.open_conversations(&w.line.id, 10).await.unwrap();
    assert_eq!(open.iter().map(|c| c.handle.clone()).collect::<Vec<_>>(), [handle("M3")], "off the list");
    let jobs = w.take();
    assert_eq!(notices_to(&jobs, 1), [notices::you_closed(&handle("K7"))]);
    assert_eq!(notices_to(&jobs, 0), [notices::closed_by(&handle("K7"), &customer(0), "Ben")]);
    assert!(fallbacks_to(&jobs, 0)[0].is_some());
    assert!(sms_of(&jobs).is_empty());
    assert_eq!(w.agent_state(1).await.focus, None, "the closer's focus was on it");

    // The customer's next text reopens it, same handle.
    w.customer_texts(0, "One more thing", t0() + secs(2)).await;
    assert!(w.is_open(0).await);
}

#[tokio::test]
async fn closing_another_conversation_keeps_the_closers_focus() {
    let w = World::new();
    w.customer_texts(0, "Thanks, all good", t0()).await;
    w.customer_texts(1, "Hello?", t0()).await;
    w.receive(text(0, "#M3"), t0()).await;

    w.receive(button(0, "act:close:K7"), t0() + secs(1)).await;

    assert!(!w.is_open(0).await);
    assert_eq!(w.agent_state(0).await.focus.unwrap().handle, handle("M3"));
}

#[tokio::test]
async fn the_quick_reply_button_sends_the_lines_text_to_the_customer() {
    let w = World::with_line(quick_reply_line());
    w.customer_texts(0, "Where are you?", t0()).await;
    let press = button(1, "act:quick:K7");
    let press_wamid = press.wamid.clone();

    let handled = w.receive(press, t0() + secs(1)).await;

    assert_eq!(
        handled,
        MessageHandled::Relayed { conversation: w.conversation(0), handle: handle("K7"), rule: RouteRule::QuickReply }
    );
    let jobs = w.take();
    let sms = sms_of(&jobs);
    assert_eq!(texted(&jobs), [(customer(0), "We're on our way, see you soon!".to_owned())], "formatting stripped");
    assert_eq!((&sms[0].agent, &sms[0].agent_wamid), (&agent(1), &press_wamid));
    assert_eq!(jobs.len(), 1);
    assert_eq!(w.replies(0).await[0].body, "We're on our way, see you soon!");
    assert_eq!(w.agent_state(1).await.focus.unwrap().handle, handle("K7"));
}

#[tokio::test]
async fn the_quick_reply_button_on_a_line_without_one_sends_nothing_and_says_so() {
    let w = World::new();
    w.customer_texts(0, "Where are you?", t0()).await;

    let handled = w.receive(button(0, "act:quick:K7"), t0() + secs(1)).await;

    assert_eq!(handled, MessageHandled::NotRelayed { why: NotRelayed::NoQuickReply });
    let jobs = w.take();
    assert_eq!(notices_to(&jobs, 0), [notices::no_quick_reply()]);
    assert!(sms_of(&jobs).is_empty());
    assert!(w.replies(0).await.is_empty());
}

#[tokio::test]
async fn the_quick_reply_to_an_opted_out_customer_is_refused_with_a_notice() {
    let w = World::with_line(quick_reply_line());
    w.customer_texts(0, "Where are you?", t0()).await;
    w.customer_texts(0, "stop", t0() + secs(1)).await;
    let press = button(0, "act:quick:K7");
    let press_wamid = press.wamid.clone();

    let handled = w.receive(press, t0() + secs(2)).await;

    assert_eq!(handled, MessageHandled::NotRelayed { why: NotRelayed::OptedOut });
    let jobs = w.take();
    assert_eq!(notices_to(&jobs, 0), [notices::customer_opted_out(&handle("K7"), &press_wamid)]);
    assert!(sms_of(&jobs).is_empty());
    assert!(w.replies(0).await.is_empty());
}

#[tokio::test]
async fn a_button_on_a_closed_conversation_changes_nothing_and_says_so() {
    let w = World::with_line(quick_reply_line());
    w.customer_texts(0, "Thanks, all good", t0()).await;
    w.receive(button(0, "act:close:K7"), t0()).await;
    w.take();

    for id in ["act:claim:K7", "act:close:K7", "act:quick:K7"] {
        let handled = w.receive(button(1, id), t0() + secs(1)).await;

        assert_eq!(handled, MessageHandled::NotRelayed { why: NotRelayed::Closed }, "{id}");
        let jobs = w.take();
        assert_eq!(notices_to(&jobs, 1), [notices::already_closed(&handle("K7"))], "{id}");
        assert_eq!(jobs.len(), 1, "{id}: the other agent isn't told, the customer isn't texted");
    }
    let summary = w.store.conversation(&w.conversation(0)).await.unwrap().unwrap();
    assert_eq!((summary.open, summary.claimed_by), (false, None));
    assert!(w.replies(0).await.is_empty());
}

#[tokio::test]
async fn a_button_the_bridge_did_not_send_is_answered_as_unknown() {
    let w = World::new();
    w.customer_texts(0, "Hello?", t0()).await;

    for id in ["act:archive:K7", "act:claim:not a handle", "order-123", ""] {
        let handled = w.receive(button(0, id), t0()).await;

        assert_eq!(handled, MessageHandled::NotRelayed { why: NotRelayed::UnknownButton }, "{id:?}");
        assert_eq!(notices_to(&w.take(), 0), [notices::unknown_button()], "{id:?}");
    }
    let summary = w.store.conversation(&w.conversation(0)).await.unwrap().unwrap();
    assert!(summary.open && summary.claimed_by.is_none());
}

#[tokio::test]
async fn a_button_naming_a_conversation_that_does_not_exist_says_it_is_gone() {
    let w = World::new();

    let handled = w.receive(button(0, "act:claim:ZZ"), t0()).await;

    assert_eq!(handled, MessageHandled::NotRelayed { why: NotRelayed::ConversationGone });
    let jobs = w.take();
    assert_eq!(notices_to(&jobs, 0), [notices::conversation_gone(Some(&handle("ZZ")))]);
    assert_eq!(jobs.len(), 1, "nobody else is told");
}
