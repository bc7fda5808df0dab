//! Buttons on forwarded copies (docs/using.md) and agents' commands (docs/using.md), through
//! the deployed routers with DynamoDB and SQS on the moto emulator.

#![allow(clippy::unwrap_used)] // a failed unwrap is the test failing

use crate::common;

use bridge_testkit::testing::{AGENTS, attr_s, whatsapp_text};
use common::*;
use serde_json::json;
use shared::domain::{JobPayload, WhatsAppMessage};

fn quick_reply_line() -> String {
    lines_with_options(&[("quick_reply", json!({ "title": "On our way", "text": "We're on our way, see you soon!" }))])
}

// ---- buttons ----------------------------------------------------------------------------

#[tokio::test]
async fn claim_assigns_the_conversation_and_tells_the_other_agents() {
    let h = Harness::new().await;
    let handle = h.customer_texts(CUSTOMER_A, "Is my order ready?").await;
    let copies = h.forward().await;

    let press = whatsapp_button(AGENTS[0], &format!("act:claim:{}", &handle[1..]), "Claim", Some(&copies[AGENTS[0]]));
    assert_eq!(h.notify(&[press], &[]).await, 200);

    let meta = conversation_item(&h.aws, CUSTOMER_A).await;
    assert_eq!(attr_s(&meta, "claimed_by"), AGENTS[0]);
    assert_eq!(attr_s(&meta, "claimed_by_name"), "Agent", "the WhatsApp profile name");
    let jobs = h.take_jobs().await;
    assert_eq!(
        notices_to(&jobs, AGENTS[0]),
        [format!(
            "You claimed {handle} · +1 415-555-0134. The other agents were told; your next messages go to them. \
             Their texts now come to you only; /unclaim gives them back."
        )]
    );
    assert_eq!(notices_to(&jobs, AGENTS[1]), [format!("{handle} · +1 415-555-0134 claimed by Agent.")]);
    let to_other = jobs.iter().find_map(|j| match &j.payload {
        JobPayload::NotifyAgent(n) if n.agent.as_str() == AGENTS[1] => n.fallback.clone(),
        _ => None,
    });
    assert_eq!(to_other.unwrap()[0], handle, "outside their window the others get the template");

    // The claimer is now focused on it: a plain follow-up goes to that customer.
    assert_eq!(h.notify(&[whatsapp_text(AGENTS[0], "Yes, ready at 5", None)], &[]).await, 200);
    assert_eq!(sms_jobs(&h.take_jobs().await), [(CUSTOMER_A.to_owned(), "Yes, ready at 5".to_owned())]);
}

#[tokio::test]
async fn close_takes_it_off_the_open_list_until_the_customer_writes_again() {
    let h = Harness::new().await;
    let handle = h.customer_texts(CUSTOMER_A, "Thanks, all good").await;
    h.forward().await;
    let press = whatsapp_button(AGENTS[1], &format!("act:close:{}", &handle[1..]), "Close", None);
    assert_eq!(h.notify(&[press], &[]).await, 200);

    let meta = conversation_item(&h.aws, CUSTOMER_A).await;
    assert_eq!(attr_s(&meta, "status"), "closed");
    assert!(!meta.contains_key("GSI1PK"), "not listed as open");
    let jobs = h.take_jobs().await;
    assert_eq!(notices_to(&jobs, AGENTS[1]), [format!("Closed {handle}. It reopens when the customer texts again.")]);
    assert_eq!(notices_to(&jobs, AGENTS[0]), [format!("{handle} · +1 415-555-0134 closed by Agent.")]);

    // /list no longer shows it; a second Close gets a clear answer and changes nothing.
    assert_eq!(h.notify(&[whatsapp_text(AGENTS[0], "/list", None)], &[]).await, 200);
    assert_eq!(notices_to(&h.take_jobs().await, AGENTS[0]), ["There are no open conversations."]);
    let again = whatsapp_button(AGENTS[0], &format!("act:close:{}", &handle[1..]), "Close", None);
    assert_eq!(h.notify(&[again], &[]).await, 200);
    let told = notices_to(&h.take_jobs().await, AGENTS[0]);
    assert_eq!(
        told,
        [format!("{handle} is already closed, so nothing changed. It reopens when the customer texts again.")]
    );

    // The customer's next text reopens it, same handle.
    assert_eq!(h.customer_texts(CUSTOMER_A, "One more thing").await, handle);
    let meta = conversation_item(&h.aws, CUSTOMER_A).await;
    assert_eq!(attr_s(&meta, "status"), "open");
    assert_eq!(attr_s(&meta, "GSI1PK"), "OPEN#main");
}

#[tokio::test]
async fn the_quick_reply_button_sends_the_configured_text() {
    let h = Harness::with_env(&[("BRIDGE_LINES", &quick_reply_line())]).await;
    let handle = h.customer_texts(CUSTOMER_A, "Where are you?").await;
    let copies = h.forward().await;
    let press =
        whatsapp_button(AGENTS[0], &format!("act:quick:{}", &handle[1..]), "On our way", Some(&copies[AGENTS[0]]));
    assert_eq!(h.notify(&[press], &[]).await, 200);
    let jobs = h.take_jobs().await;
    assert_eq!(sms_jobs(&jobs), [(CUSTOMER_A.to_owned(), "We're on our way, see you soon!".to_owned())]);
    let thread = shared::ports::Conversations::thread(&h.aws.store(), &key(CUSTOMER_A)).await.unwrap();
    assert_eq!(thread.last().unwrap().body, "We're on our way, see you soon!", "recorded in the thread");
}

#[tokio::test]
async fn buttons_that_are_not_ours_or_name_no_open_conversation_get_a_clear_answer() {
    let h = Harness::new().await;
    let handle = h.customer_texts(CUSTOMER_A, "hello").await;
    h.forward().await;
    let cases = [
        ("weird", "That button isn't one the bridge knows, so nothing was done.".to_owned()),
        ("act:fly:K7", "That button isn't one the bridge knows, so nothing was done.".to_owned()),
        ("act:claim:ZZZZZZ", "That conversation #ZZZZZZ no longer exists, so nothing was sent.".to_owned()),
        (
            &*format!("act:quick:{}", &handle[1..]),
            "This line has no quick reply configured, so nothing was sent.".to_owned(),
        ),
    ];
    for (id, expected) in cases {
        assert_eq!(h.notify(&[whatsapp_button(AGENTS[0], id, "?", None)], &[]).await, 200, "{id}");
        let jobs = h.take_jobs().await;
        assert_eq!(notices_to(&jobs, AGENTS[0]), [expected], "{id}");
        assert!(sms_jobs(&jobs).is_empty() && notices_to(&jobs, AGENTS[1]).is_empty(), "{id}");
    }
    assert!(!conversation_item(&h.aws, CUSTOMER_A).await.contains_key("claimed_by"), "nothing was claimed");
}

// ---- commands ---------------------------------------------------------------------------

#[tokio::test]
async fn help_and_unknown_commands_answer_with_the_commands() {
    let h = Harness::new().await;
    assert_eq!(h.notify(&[whatsapp_text(AGENTS[0], "/help", None)], &[]).await, 200);
    let help = notices_to(&h.take_jobs().await, AGENTS[0]);
    assert!(help[0].contains("/list") && help[0].contains("/close") && !help[0].contains("/to "), "{help:?}");
    assert_eq!(h.notify(&[whatsapp_text(AGENTS[0], "/frobnicate now", None)], &[]).await, 200);
    let told = notices_to(&h.take_jobs().await, AGENTS[0]);
    assert!(told[0].starts_with("There is no command /frobnicate.") && told[0].contains("/list"), "{told:?}");
    assert_eq!(h.notify(&[whatsapp_text(AGENTS[0], "/list two", None)], &[]).await, 200);
    let told = notices_to(&h.take_jobs().await, AGENTS[0]);
    assert_eq!(told, ["That command needs other details. Type it like this: /list or /list 2"]);
}

#[tokio::test]
async fn list_pages_open_conversations_ten_at_a_time_newest_first() {
    let h = Harness::new().await;
    let mut handles = Vec::new();
    for i in 0..12 {
        handles.push(h.customer_texts(&format!("+141555502{i:02}"), &format!("text {i}")).await);
    }
    h.take_jobs().await;
    assert_eq!(h.notify(&[whatsapp_text(AGENTS[0], "/list", None)], &[]).await, 200);
    let jobs = h.take_jobs().await;
    let lists: Vec<&WhatsAppMessage> = jobs
        .iter()
        .filter_map(|j| match &j.payload {
            JobPayload::NotifyAgent(n) => Some(&n.message),
            _ => None,
        })
        .collect();
    let WhatsAppMessage::List { body, rows, .. } = lists[0] else { panic!("{lists:?}") };
    assert!(body.contains("page 1") && body.contains("Send /list 2 for more."), "{body}");
    assert_eq!(rows.len(), 10);
    assert_eq!(rows[0].id, format!("conv:{}", &handles[11][1..]), "newest first");
    assert_eq!(rows[0].description, "text 11");

    assert_eq!(h.notify(&[whatsapp_text(AGENTS[0], "/list 2", None)], &[]).await, 200);
    let jobs = h.take_jobs().await;
    let JobPayload::NotifyAgent(n) = &jobs[0].payload else { panic!() };
    let WhatsAppMessage::List { body, rows, .. } = &n.message else { panic!() };
    assert!(!body.contains("for more"), "{body}");
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, [format!("conv:{}", &handles[1][1..]), format!("conv:{}", &handles[0][1..])]);

    assert_eq!(h.notify(&[whatsapp_text(AGENTS[0], "/list 3", None)], &[]).await, 200);
    let told = notices_to(&h.take_jobs().await, AGENTS[0]);
    assert_eq!(told, ["There is no page 3: fewer open conversations than that."]);
}

#[tokio::test]
async fn close_by_handle_or_focus_and_asks_when_neither() {
    let h = Harness::new().await;
    let a = h.customer_texts(CUSTOMER_A, "a").await;
    let b = h.customer_texts(CUSTOMER_B, "b").await;
    h.take_jobs().await;

    assert_eq!(h.notify(&[whatsapp_text(AGENTS[0], "/close", None)], &[]).await, 200);
    let told = notices_to(&h.take_jobs().await, AGENTS[0]);
    assert_eq!(told, ["Which conversation? You aren't answering one right now. Type it like this: /close #K7"]);

    assert_eq!(h.notify(&[whatsapp_text(AGENTS[0], &format!("/close {a}"), None)], &[]).await, 200);
    assert_eq!(attr_s(&conversation_item(&h.aws, CUSTOMER_A).await, "status"), "closed");
    h.take_jobs().await;

    // Focus on B (a bare handle), then /close closes B and drops the focus.
    assert_eq!(h.notify(&[whatsapp_text(AGENTS[0], &b, None)], &[]).await, 200);
    h.take_jobs().await;
    assert_eq!(h.notify(&[whatsapp_text(AGENTS[0], "/close", None)], &[]).await, 200);
    assert_eq!(attr_s(&conversation_item(&h.aws, CUSTOMER_B).await, "status"), "closed");
    assert!(!h.agent_item(AGENTS[0]).await.contains_key("focus_handle"));
    assert_eq!(notices_to(&h.take_jobs().await, AGENTS[1]), [format!("{b} · +1 415-555-0177 closed by Agent.")]);
}

#[tokio::test]
async fn to_starts_a_conversation_only_where_the_line_allows_it() {
    let h = Harness::new().await;
    assert_eq!(h.notify(&[whatsapp_text(AGENTS[0], "/to +14155550188 Your table is ready", None)], &[]).await, 200);
    let jobs = h.take_jobs().await;
    assert!(sms_jobs(&jobs).is_empty());
    assert_eq!(
        notices_to(&jobs, AGENTS[0]),
        ["This line doesn't allow texting customers who haven't written first, so nothing was sent."]
    );
    assert!(h.aws.items_with_prefix("CONV#main#+14155550188").await.is_empty(), "no conversation created");
}

#[tokio::test]
async fn to_texts_a_new_customer_with_a_fresh_handle_and_respects_opt_out() {
    let h =
        Harness::with_env(&[("BRIDGE_LINES", &lines_with_options(&[("allow_agent_initiated", json!(true))]))]).await;
    assert_eq!(h.notify(&[whatsapp_text(AGENTS[0], "/to +14155550188 Your table is ready", None)], &[]).await, 200);
    let jobs = h.take_jobs().await;
    assert_eq!(sms_jobs(&jobs), [("+14155550188".to_owned(), "Your table is ready".to_owned())]);
    let meta = conversation_item(&h.aws, "+14155550188").await;
    let handle = attr_s(&meta, "handle").to_owned();
    assert_eq!(h.aws.items_with_prefix(&format!("HANDLE#main#{handle}")).await.len(), 1);
    assert_eq!(attr_s(&h.agent_item(AGENTS[0]).await, "focus_handle"), handle, "focused on it");

    // Their reply lands in the same conversation; after STOP, /to is refused.
    assert_eq!(h.customer_texts("+14155550188", "STOP").await, format!("#{handle}"));
    h.take_jobs().await;
    assert_eq!(h.notify(&[whatsapp_text(AGENTS[1], "/to +14155550188 Still there?", None)], &[]).await, 200);
    let jobs = h.take_jobs().await;
    assert!(sms_jobs(&jobs).is_empty());
    assert!(notices_to(&jobs, AGENTS[1])[0].contains("opted out of SMS"), "{jobs:?}");

    // The line's own number is not a customer.
    assert_eq!(h.notify(&[whatsapp_text(AGENTS[1], "/to +14155550100 hi", None)], &[]).await, 200);
    let told = notices_to(&h.take_jobs().await, AGENTS[1]);
    assert_eq!(told, ["+1 415-555-0100 is one of the business's own numbers, so nothing was sent."]);
}
