//! Opt-out in plain words over the whole wire (docs/using.md, "Opt-out in plain words"): a
//! customer's "unsubscribe me please" reaches the agents with an Opt out button and a hint;
//! pressing it opts the customer out exactly as STOP does, so the next reply is refused and
//! no SMS reaches them.

use crate::common;

use bridge_testkit::testing::{AGENTS, CUSTOMER, whatsapp_text};
use common::{Bridge, pressed, readable};

#[tokio::test]
async fn the_opt_out_button_on_a_plain_words_request_stops_every_text() {
    let bridge = Bridge::start().await;
    // Agent 0 wrote today: their window is open, so copies come with buttons.
    bridge.agent_writes(whatsapp_text(AGENTS[0], "/help", None)).await;
    bridge.customer_texts("unsubscribe me please").await;
    bridge.run_worker().await;
    assert!(!bridge.opted_out(CUSTOMER).await, "words alone opt nobody out");
    // The copy, whichever went out first: the /help answer and the copy are separate
    // message groups, delivered side by side.
    let copy = bridge.sent_to(AGENTS[0]).await.into_iter().find(|m| m["type"] == "interactive").unwrap();
    let buttons = copy["interactive"]["action"]["buttons"].as_array().unwrap().clone();
    assert_eq!(buttons[0]["reply"]["title"], "Opt out", "{copy}");
    assert!(readable(&copy).contains("reads like a request to stop texts"), "{copy}");

    let id = buttons[0]["reply"]["id"].as_str().unwrap();
    bridge.agent_writes(pressed(AGENTS[0], id)).await;
    bridge.run_worker().await;
    assert!(bridge.opted_out(CUSTOMER).await);

    let handle = bridge.conversation(CUSTOMER).await.handle.to_string();
    bridge.agent_writes(whatsapp_text(AGENTS[1], &format!("{handle} Are you sure?"), None)).await;
    bridge.run_worker().await;
    assert!(bridge.sms_to(CUSTOMER).await.is_empty(), "nothing reaches an opted-out customer");
    let told = bridge.sent_to(AGENTS[1]).await.iter().map(readable).collect::<Vec<_>>().join("\n");
    assert!(told.contains("opted out of SMS by"), "{told}");
    assert!(told.contains("opted out of SMS (texted STOP)") || told.contains("Not sent"), "{told}");
}
