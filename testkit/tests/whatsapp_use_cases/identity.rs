//! Users with a WhatsApp username (docs/using.md, "Agents and customers with a WhatsApp
//! username"): a message may carry a business-scoped user id and no phone number. Agents are
//! recognised by the user id the bridge learnt for them; anyone else is answered at whichever
//! id they have; number and id changes update what the bridge knows and tell the other agents.

use bridge_testkit::memory::StoreOp;
use shared::app::agent_identity::learn_from_status;
use shared::app::receive_whatsapp::{MessageHandled, NotRelayed};
use shared::domain::routing::RouteRule;
use shared::domain::{
    IdentityChange, JobPayload, ReceivedWhatsApp, UserId, WaId, WhatsAppContent, WhatsAppRecipient, WhatsAppUser,
    notices,
};
use shared::ports::Agents;

use super::fixture::*;

fn user_id(n: usize) -> UserId {
    UserId::parse(&format!("US.1349120865530274191{n}")).unwrap()
}

/// Agent or stranger `user`, known only by user id (a username, no phone in the webhook).
fn by_user_id(id: UserId, content: WhatsAppContent) -> ReceivedWhatsApp {
    let sender = WhatsAppUser::new(None, Some(id)).unwrap();
    ReceivedWhatsApp { wamid: wamid("user"), sender, context: None, content }
}

/// Agent `n`'s message carrying both their phone and their user id, as Meta sends it.
fn with_both(n: usize, content: WhatsAppContent) -> ReceivedWhatsApp {
    let sender = WhatsAppUser::new(Some(agent(n)), Some(user_id(n))).unwrap();
    ReceivedWhatsApp { wamid: wamid("both"), sender, context: None, content }
}

fn text_content(body: &str) -> WhatsAppContent {
    WhatsAppContent::Text(body.into())
}

#[tokio::test]
async fn an_agent_known_by_their_user_id_only_is_still_the_agent_once_learnt() {
    let w = World::new();
    w.customer_texts(0, "Is my bike ready?", t0()).await;
    // Before anything was learnt, a user id alone is a stranger's.
    let unknown = w.receive(by_user_id(user_id(0), text_content("#K7 hello?")), t0()).await;
    assert_eq!(unknown, MessageHandled::NonAgent { replied: true });
    w.take();

    w.receive(with_both(0, text_content("/list")), t0() + secs(1)).await;
    assert_eq!(w.store.agent_by_user_id(&w.line.id, &user_id(0)).await.unwrap(), Some(agent(0)));
    w.take();

    let handled = w.receive(by_user_id(user_id(0), text_content("#K7 Ready at 5")), t0() + secs(2)).await;

    assert!(matches!(handled, MessageHandled::Relayed { rule: RouteRule::Handle, .. }), "{handled:?}");
    let replies = w.replies(0).await;
    assert_eq!(replies.len(), 1);
    assert_eq!(texted(&w.take()), [(customer(0), "Ready at 5".to_owned())]);
}

#[tokio::test]
async fn a_warm_webhook_stores_an_agents_user_id_once() {
    let w = World::new();
    for i in 0..3 {
        w.receive(with_both(0, text_content("/help")), t0() + secs(i)).await;
    }
    assert_eq!(w.store.calls(StoreOp::LearnAgentUserId), 1, "one write, then the instance remembers");
}

#[tokio::test]
async fn a_user_id_learnt_for_someone_no_longer_an_agent_counts_for_nothing() {
    let mut line = test_line();
    let w = World::new();
    w.receive(with_both(1, text_content("/help")), t0()).await;
    line.agents.retain(|a| *a != agent(1));
    let w = World { line, ..w };
    w.take();

    let handled = w.receive(by_user_id(user_id(1), text_content("hello")), t0() + secs(1)).await;

    assert_eq!(handled, MessageHandled::NonAgent { replied: true });
}

#[tokio::test]
async fn a_stranger_with_a_username_is_answered_at_their_user_id_once_a_day() {
    let w = World::new();
    let stranger = UserId::parse("BR.1A2B3C4D5E6F").unwrap();

    let first = w.receive(by_user_id(stranger.clone(), text_content("hi")), t0()).await;
    let again = w.receive(by_user_id(stranger.clone(), text_content("hello?")), t0() + secs(60)).await;

    assert_eq!(first, MessageHandled::NonAgent { replied: true });
    assert_eq!(again, MessageHandled::NonAgent { replied: false });
    let jobs = w.take();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let JobPayload::NotifyAgent(reply) = &jobs[0].payload else { panic!("{jobs:?}") };
    assert_eq!(reply.agent, WhatsAppRecipient::User(stranger));
    assert_eq!(reply.message, notices::not_an_agent(&w.line));
}

#[tokio::test]
async fn whatsapps_own_notice_about_a_stranger_gets_no_answer() {
    let w = World::new();
    let change = IdentityChange::Number { new_phone: WaId::parse("12195555358").unwrap() };
    let stranger = WhatsAppUser::by_phone(WaId::parse("12195550000").unwrap());
    let notice = ReceivedWhatsApp {
        wamid: wamid("system"),
        sender: stranger,
        context: None,
        content: WhatsAppContent::IdentityChanged(change),
    };

    assert_eq!(w.receive(notice, t0()).await, MessageHandled::NonAgent { replied: false });
    assert!(w.take().is_empty());
}

#[tokio::test]
async fn an_agents_new_user_id_replaces_the_old_and_the_others_are_told() {
    let w = World::new();
    w.receive(with_both(0, text_content("/help")), t0()).await;
    w.take();
    let new_id = UserId::parse("US.77").unwrap();
    let change = WhatsAppContent::IdentityChanged(IdentityChange::UserId { new_user_id: new_id.clone() });

    let handled = w.receive(with_both(0, change), t0() + secs(1)).await;

    assert_eq!(handled, MessageHandled::NotRelayed { why: NotRelayed::System });
    assert_eq!(w.store.agent_by_user_id(&w.line.id, &user_id(0)).await.unwrap(), None, "the old id is forgotten");
    assert_eq!(w.store.agent_by_user_id(&w.line.id, &new_id).await.unwrap(), Some(agent(0)));
    let jobs = w.take();
    assert_eq!(notices_to(&jobs, 1), [notices::agent_changed_user_id("Ana")]);
    assert!(notices_to(&jobs, 0).is_empty(), "nothing to the agent themselves");
    // Recognised by the new id from now on.
    let later = w.receive(by_user_id(new_id, text_content("/help")), t0() + secs(2)).await;
    assert_eq!(later, MessageHandled::NotRelayed { why: NotRelayed::Help });
}

#[tokio::test]
async fn an_agents_new_number_is_told_to_the_others_and_their_old_user_id_forgotten() {
    let w = World::new();
    w.receive(with_both(1, text_content("/help")), t0()).await;
    w.take();
    let new_phone = WaId::parse("12195555358").unwrap();
    let change = WhatsAppContent::IdentityChanged(IdentityChange::Number { new_phone: new_phone.clone() });

    let handled = w.receive(with_both(1, change.clone()), t0() + secs(1)).await;

    assert_eq!(handled, MessageHandled::NotRelayed { why: NotRelayed::System });
    assert_eq!(w.store.agent_by_user_id(&w.line.id, &user_id(1)).await.unwrap(), None);
    let told = notices_to(&w.take(), 0);
    assert_eq!(told, [notices::agent_changed_number("Ben", &new_phone)]);
    assert!(words(&told[0]).contains("+1 219-555-5358"), "{}", words(&told[0]));
}

#[tokio::test]
async fn a_status_of_a_send_to_an_agents_number_teaches_their_user_id() {
    let w = World::new();
    let mut report = status(&wamid("copy"), "delivered", None);
    report.recipient = Some(agent(1));
    report.recipient_user_id = Some(user_id(1));

    assert!(learn_from_status(&w.store, &w.line, &report, t0(), &w.learnt).await.unwrap());
    assert_eq!(w.store.agent_by_user_id(&w.line.id, &user_id(1)).await.unwrap(), Some(agent(1)));

    // A report on a send to anyone else (or with no user id) teaches nothing.
    let mut other = report.clone();
    other.recipient = Some(WaId::parse("12195550000").unwrap());
    assert!(!learn_from_status(&w.store, &w.line, &other, t0(), &w.learnt).await.unwrap());
    let mut no_id = report.clone();
    no_id.recipient_user_id = None;
    assert!(!learn_from_status(&w.store, &w.line, &no_id, t0(), &w.learnt).await.unwrap());
    assert_eq!(w.store.calls(StoreOp::LearnAgentUserId), 1);
}

#[tokio::test]
async fn a_store_refusing_to_recognise_a_user_id_fails_the_message_so_meta_retries() {
    let w = World::new();
    w.store.fail_next(StoreOp::AgentByUserId, 1);

    let result = w.try_receive(by_user_id(user_id(0), text_content("hi")), t0()).await;

    assert!(result.is_err(), "{result:?}");
    assert!(w.take().is_empty(), "nothing answered or relayed");
    // Meta's retry is handled whole.
    assert_eq!(
        w.receive(by_user_id(user_id(0), text_content("hi")), t0()).await,
        MessageHandled::NonAgent { replied: true }
    );
}
