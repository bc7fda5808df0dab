//! Opt-out in plain words (docs/using.md, "Opt-out in plain words"): an agent opts a customer
//! out with the Opt out button of a copy, or `/optout #K7`, exactly as the customer's STOP
//! would: the conversation is opted out, nothing more is texted, the other agents on duty
//! are told, and the line's opt-out confirmation (if set) is the last text.

use shared::app::receive_whatsapp::{AgentAction, MessageHandled, NotRelayed};
use shared::domain::compliance::AutoReplyReason;
use shared::domain::whatsapp_message::ButtonAction;
use shared::domain::{JobPayload, notices};
use shared::ports::Conversations;

use super::fixture::*;

#[tokio::test]
async fn the_opt_out_button_opts_the_customer_out_as_stop_does() {
    let mut line = test_line();
    line.auto_replies.opt_out = Some("You're unsubscribed. Text START to resubscribe.".into());
    let w = World::with_line(line);
    w.customer_texts(0, "please stop texting me", t0()).await;
    let id = ButtonAction::OptOut.button_id(&handle("K7"));

    let handled = w.receive(button(1, &id), t0() + secs(1)).await;

    assert_eq!(handled, MessageHandled::Acted { action: AgentAction::OptOut });
    let jobs = w.take();
    assert_eq!(notices_to(&jobs, 1), [notices::you_opted_out(&handle("K7"), &customer(0))]);
    assert_eq!(notices_to(&jobs, 0), [notices::opted_out_by(&handle("K7"), &customer(0), "Ben")]);
    let confirmations: Vec<_> = jobs
        .iter()
        .filter_map(|job| match &job.payload {
            JobPayload::AutoReply(reply) => Some((reply.reason, reply.text.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        confirmations,
        [(AutoReplyReason::OptOutConfirmation, "You're unsubscribed. Text START to resubscribe.".into())]
    );
    assert!(w.store.conversation(&w.conversation(0)).await.unwrap().unwrap().opted_out);

    // Nothing more is texted: a reply is refused with the reason.
    let reply = w.receive(text(0, "#K7 Sorry to see you go!"), t0() + secs(2)).await;
    assert_eq!(reply, MessageHandled::NotRelayed { why: NotRelayed::OptedOut });
    assert!(sms_of(&w.take()).is_empty());
    // Pressed again: nothing changes.
    let again = w.receive(button(0, &id), t0() + secs(3)).await;
    assert_eq!(again, MessageHandled::NotRelayed { why: NotRelayed::OptedOut });
    assert_eq!(notices_to(&w.take(), 0), [notices::already_opted_out(&handle("K7"))]);
}

#[tokio::test]
async fn optout_by_command_works_on_a_closed_conversation_too() {
    let w = World::new();
    w.customer_texts(0, "unsubscribe me please", t0()).await;
    w.receive(text(0, "/close #K7"), t0() + secs(1)).await;
    w.take();

    let handled = w.receive(text(0, "/optout #K7"), t0() + secs(2)).await;

    assert_eq!(handled, MessageHandled::Acted { action: AgentAction::OptOut });
    assert!(w.store.conversation(&w.conversation(0)).await.unwrap().unwrap().opted_out);
    let unknown = w.receive(text(0, "/optout #ZZ"), t0() + secs(3)).await;
    assert_eq!(unknown, MessageHandled::NotRelayed { why: NotRelayed::ConversationGone });
}

#[tokio::test]
async fn an_opt_out_an_agent_presses_is_recorded_once() {
    let w = World::new();
    w.customer_texts(0, "stop texting me", t0()).await;
    let press = button(0, &ButtonAction::OptOut.button_id(&handle("K7")));

    w.receive(press.clone(), t0() + secs(1)).await;
    let first = w.take();
    assert_eq!(w.receive(press, t0() + secs(2)).await, MessageHandled::Duplicate);
    assert!(w.take().iter().all(|job| first.contains(job)), "a replay offers the same jobs only");
}
