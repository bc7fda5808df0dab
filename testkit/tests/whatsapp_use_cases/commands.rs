//! Agents' commands (docs/using.md): `/help`, `/list [page]`, `/close [#K7]`, `/to +E164 text`;
//! an unknown command answers with the help, one typed wrong with how to type it.

use bridge_testkit::memory::StoreOp;
use shared::app::receive_whatsapp::{AgentAction, MessageHandled, NotRelayed};
use shared::domain::routing::{RouteRule, USAGE_CLOSE, USAGE_LIST, USAGE_TO};
use shared::domain::whatsapp_message::{ListedConversation, conversation_list};
use shared::domain::{ConversationKey, E164, WhatsAppMessage, notices};
use shared::ports::Conversations;

use super::fixture::*;

fn line_allowing_to() -> shared::domain::Line {
    let mut line = test_line();
    line.allow_agent_initiated = true;
    line
}

#[tokio::test]
async fn help_answers_with_the_commands_the_line_allows_and_relays_nothing_even_with_a_focus() {
    for line in [test_line(), line_allowing_to()] {
        let w = World::with_line(line);
        w.customer_texts(0, "Hello?", t0()).await;
        w.receive(text(0, "#K7"), t0()).await;
        w.take();
        let state_reads = w.store.calls(StoreOp::AgentState);

        let handled = w.receive(text(0, "/HELP"), t0() + secs(1)).await;

        assert_eq!(handled, MessageHandled::NotRelayed { why: NotRelayed::Help });
        let jobs = w.take();
        assert_eq!(notices_to(&jobs, 0), [notices::help(&w.line, None)]);
        assert_eq!(words(&notices_to(&jobs, 0)[0]).contains("/to +"), w.line.allow_agent_initiated);
        assert_eq!(jobs.len(), 1);
        assert!(w.replies(0).await.is_empty(), "not sent to the focused customer");
        assert_eq!(w.store.calls(StoreOp::AgentState), state_reads, "a command doesn't read the focus");
    }
}

#[tokio::test]
async fn an_unknown_command_answers_with_the_help_naming_it() {
    let w = World::new();
    w.customer_texts(0, "Hello?", t0()).await;
    w.receive(text(0, "#K7"), t0()).await;
    w.take();

    let handled = w.receive(text(0, "/archive #K7"), t0() + secs(1)).await;

    assert_eq!(handled, MessageHandled::NotRelayed { why: NotRelayed::Help });
    let jobs = w.take();
    assert_eq!(notices_to(&jobs, 0), [notices::help(&w.line, Some("archive"))]);
    assert!(words(&notices_to(&jobs, 0)[0]).starts_with("There is no command /archive."));
    assert!(sms_of(&jobs).is_empty());
    assert!(w.is_open(0).await);
}

#[tokio::test]
async fn a_command_typed_wrong_answers_how_to_type_it_and_does_nothing() {
    let w = World::with_line(line_allowing_to());
    w.customer_texts(0, "Hello?", t0()).await;

    for (typed, usage) in [
        ("/list two", USAGE_LIST),
        ("/list 0", USAGE_LIST),
        ("/list 21", USAGE_LIST),
        ("/close K7 now", USAGE_CLOSE),
        ("/to 4155550177 Hi", USAGE_TO),
        ("/to +14155550177", USAGE_TO),
    ] {
        let handled = w.receive(text(0, typed), t0()).await;

        assert_eq!(handled, MessageHandled::NotRelayed { why: NotRelayed::Usage }, "{typed}");
        let jobs = w.take();
        assert_eq!(notices_to(&jobs, 0), [notices::how_to_type(usage)], "{typed}");
        assert_eq!(jobs.len(), 1, "{typed}");
    }
    assert!(w.is_open(0).await);
    let stranger = ConversationKey { line: w.line.id.clone(), customer: E164::parse("+14155550177").unwrap() };
    assert_eq!(w.store.conversation(&stranger).await.unwrap(), None, "no conversation started");
}

/// Twelve conversations, customer `i` texting at `t0 + i s` (so the last is the newest).
async fn twelve_conversations(w: &World) -> Vec<ListedConversation> {
    let mut listed = Vec::new();
    for (i, letter) in "ABCDEFGHJKMN".chars().enumerate() {
        let from = E164::parse(&format!("+141555502{i:02}")).unwrap();
        let new_handle = handle(&format!("Q{letter}"));
        let body = format!("text number {i}");
        record_text(&w.store, &w.line, &from, &new_handle, &body, t0() + secs(i as i64)).await;
        listed.push(ListedConversation { handle: new_handle, customer: from, last_text: body, claimed_by: None });
    }
    listed.reverse();
    listed
}

#[tokio::test]
async fn list_pages_the_open_conversations_newest_first_ten_at_a_time() {
    let w = World::new();
    let mut newest_first = twelve_conversations(&w).await;
    w.receive(button(1, "act:claim:QN"), t0() + secs(20)).await;
    newest_first[0].claimed_by = Some("Ben".into());
    w.take();

    let handled = w.receive(text(0, "/list"), t0() + secs(21)).await;

    assert_eq!(handled, MessageHandled::NotRelayed { why: NotRelayed::List });
    let page_1 = notices_to(&w.take(), 0);
    assert_eq!(page_1, [conversation_list(1, &newest_first[..10], true)]);
    let WhatsAppMessage::List { body, rows, .. } = &page_1[0] else { panic!("a list") };
    assert_eq!(rows.len(), 10);
    assert_eq!((rows[0].id.as_str(), rows[9].id.as_str()), ("conv:QN", "conv:QC"));
    assert!(rows[0].description.starts_with("Ben · "), "who claimed it: {}", rows[0].description);
    assert!(body.contains("Send /list 2 for more."));

    w.receive(text(0, "/list 2"), t0() + secs(22)).await;
    let page_2 = notices_to(&w.take(), 0);
    assert_eq!(page_2, [conversation_list(2, &newest_first[10..], false)]);
    let WhatsAppMessage::List { body, rows, .. } = &page_2[0] else { panic!("a list") };
    assert_eq!(rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["conv:QB", "conv:QA"]);
    assert!(!body.contains("/list 3"));

    w.receive(text(0, "/list 3"), t0() + secs(23)).await;
    assert_eq!(notices_to(&w.take(), 0), [notices::no_open_conversations(3)]);

    // Picking a row of the list focuses on it.
    assert_eq!(w.receive(list_reply(0, &rows[1].id), t0() + secs(24)).await, MessageHandled::Focused);
    assert_eq!(w.agent_state(0).await.focus.unwrap().handle, handle("QA"));
}

#[tokio::test]
async fn list_with_no_open_conversation_says_so() {
    let w = World::new();
    w.customer_texts(0, "Thanks, bye", t0()).await;
    w.receive(button(0, "act:close:K7"), t0()).await;
    w.take();

    assert_eq!(w.receive(text(1, "/list"), t0() + secs(1)).await, MessageHandled::NotRelayed { why: NotRelayed::List });
    assert_eq!(notices_to(&w.take(), 1), [notices::no_open_conversations(1)]);
}

#[tokio::test]
async fn close_alone_closes_the_focused_conversation_unfocuses_and_tells_the_others() {
    let w = World::new();
    w.customer_texts(0, "Thanks, all good", t0()).await;
    w.receive(text(0, "#K7"), t0()).await;
    w.take();

    let handled = w.receive(text(0, "/close"), t0() + secs(1)).await;

    assert_eq!(handled, MessageHandled::Acted { action: AgentAction::Close });
    assert!(!w.is_open(0).await);
    let jobs = w.take();
    assert_eq!(notices_to(&jobs, 0), [notices::you_closed(&handle("K7"))]);
    assert_eq!(notices_to(&jobs, 1), [notices::closed_by(&handle("K7"), &customer(0), "Ana")]);
    assert_eq!(w.agent_state(0).await.focus, None);

    // The next plain text has nowhere to go.
    let handled = w.receive(text(0, "Anything else?"), t0() + secs(2)).await;
    assert_eq!(handled, MessageHandled::NotRelayed { why: NotRelayed::NoOpenConversation });
    assert!(sms_of(&w.take()).is_empty());
}

#[tokio::test]
async fn close_with_a_handle_closes_that_conversation_and_keeps_the_focus() {
    let w = World::new();
    w.customer_texts(0, "Hello?", t0()).await;
    w.customer_texts(1, "Thanks, bye", t0()).await;
    w.receive(text(1, "#K7"), t0()).await;
    w.take();

    let handled = w.receive(text(1, "/close #m3"), t0() + secs(1)).await;

    assert_eq!(handled, MessageHandled::Acted { action: AgentAction::Close });
    assert!(!w.is_open(1).await);
    assert!(w.is_open(0).await);
    let jobs = w.take();
    assert_eq!(notices_to(&jobs, 1), [notices::you_closed(&handle("M3"))]);
    assert_eq!(notices_to(&jobs, 0), [notices::closed_by(&handle("M3"), &customer(1), "Ben")]);
    assert_eq!(w.agent_state(1).await.focus.unwrap().handle, handle("K7"));
}

#[tokio::test]
async fn close_with_nothing_to_close_asks_which_or_says_it_is_gone_or_already_closed() {
    let w = World::new();
    w.customer_texts(0, "Thanks, bye", t0()).await;
    w.receive(button(0, "act:close:K7"), t0()).await;
    w.take();

    let cases = [
        ("/close", NotRelayed::CloseWhich, notices::close_which()),
        ("/close #ZZ", NotRelayed::ConversationGone, notices::conversation_gone(Some(&handle("ZZ")))),
        ("/close #K7", NotRelayed::Closed, notices::already_closed(&handle("K7"))),
    ];
    for (typed, why, told) in cases {
        assert_eq!(w.receive(text(1, typed), t0() + secs(1)).await, MessageHandled::NotRelayed { why }, "{typed}");
        let jobs = w.take();
        assert_eq!(notices_to(&jobs, 1), [told], "{typed}");
        assert_eq!(jobs.len(), 1, "{typed}: nobody else is told");
    }
}

#[tokio::test]
async fn to_starts_a_conversation_with_a_new_customer_where_the_line_allows_it() {
    let w = World::with_line(line_allowing_to());
    let message = text(0, "/to +14155550177 Your *table* is ready");
    let agent_wamid = message.wamid.clone();

    let handled = w.receive(message, t0() + secs(1)).await;

    let key = ConversationKey { line: w.line.id.clone(), customer: E164::parse("+14155550177").unwrap() };
    let summary = w.store.conversation(&key).await.unwrap().expect("the conversation was started");
    assert_eq!(
        handled,
        MessageHandled::Relayed { conversation: key.clone(), handle: summary.handle.clone(), rule: RouteRule::To }
    );
    assert!(summary.open && !summary.opted_out);
    let jobs = w.take();
    assert_eq!(texted(&jobs), [(key.customer.clone(), "Your table is ready".to_owned())]);
    assert_eq!(sms_of(&jobs)[0].agent_wamid, agent_wamid);
    let thread = w.store.thread(&key).await.unwrap();
    assert_eq!(thread.len(), 1, "the reply only: the customer hasn't written");
    assert_eq!(thread[0].body, "Your table is ready");
    assert_eq!(w.agent_state(0).await.focus.unwrap().handle, summary.handle, "the agent now answers them");
}

#[tokio::test]
async fn to_a_customer_who_has_a_conversation_texts_them_in_it() {
    let w = World::with_line(line_allowing_to());
    w.customer_texts(0, "Hello?", t0()).await;

    let handled = w.receive(text(1, &format!("/to {} Your table is ready", CUSTOMERS[0])), t0() + secs(1)).await;

    assert_eq!(
        handled,
        MessageHandled::Relayed { conversation: w.conversation(0), handle: handle("K7"), rule: RouteRule::To }
    );
    assert_eq!(texted(&w.take()), [(customer(0), "Your table is ready".to_owned())]);
    assert_eq!(w.thread(0).await.len(), 2, "the customer's text, then the reply");
    assert_eq!(w.store.calls(StoreOp::StartAgentConversation), 0);
}

#[tokio::test]
async fn to_is_refused_where_the_line_does_not_allow_it_to_its_own_number_and_to_an_opted_out_customer() {
    // Not allowed: nothing started, nothing texted.
    let w = World::new();
    let handled = w.receive(text(0, "/to +14155550177 Your table is ready"), t0()).await;
    assert_eq!(handled, MessageHandled::NotRelayed { why: NotRelayed::ToNotAllowed });
    let jobs = w.take();
    assert_eq!(notices_to(&jobs, 0), [notices::agent_initiated_not_allowed()]);
    assert!(sms_of(&jobs).is_empty());
    assert_eq!(w.store.calls(StoreOp::StartAgentConversation), 0);

    // The line's own number.
    let w = World::with_line(line_allowing_to());
    let own = w.line.sms_number.clone();
    let handled = w.receive(text(0, &format!("/to {} Hi", own.as_str())), t0()).await;
    assert_eq!(handled, MessageHandled::NotRelayed { why: NotRelayed::ToOwnNumber });
    assert_eq!(notices_to(&w.take(), 0), [notices::not_a_customer_number(&own)]);
    let key = ConversationKey { line: w.line.id.clone(), customer: own };
    assert_eq!(w.store.conversation(&key).await.unwrap(), None);

    // An opted-out customer.
    w.customer_texts(0, "STOP", t0()).await;
    let message = text(0, &format!("/to {} Your table is ready", CUSTOMERS[0]));
    let agent_wamid = message.wamid.clone();
    let handled = w.receive(message, t0() + secs(1)).await;
    assert_eq!(handled, MessageHandled::NotRelayed { why: NotRelayed::OptedOut });
    let jobs = w.take();
    assert_eq!(notices_to(&jobs, 0), [notices::customer_opted_out(&handle("K7"), &agent_wamid)]);
    assert!(sms_of(&jobs).is_empty());
    assert!(w.replies(0).await.is_empty());
}
