//! WhatsApp users with a username, over the whole wire (docs/using.md, "Agents and customers
//! with a WhatsApp username"): the deployed routers and worker, DynamoDB and SQS on moto, the
//! Graph API as an HTTP fake. A stranger known only by their user id is answered at it
//! (`recipient`, not `to`); an agent whose number disappears from the webhooks still reaches
//! the customer.

use crate::common;

use bridge_testkit::testing::{AGENTS, CUSTOMER, whatsapp_text};
use common::Bridge;
use serde_json::json;

#[tokio::test]
async fn a_stranger_with_a_username_is_answered_at_their_user_id_and_an_agent_without_a_number_still_replies() {
    let bridge = Bridge::start().await;
    let mut stranger = whatsapp_text("14155550999", "hello?", None);
    stranger.as_object_mut().unwrap().remove("from");
    stranger["from_user_id"] = json!("BR.1A2B3C4D5E6F");
    bridge.agent_writes(stranger).await;
    bridge.run_worker().await;
    let answers: Vec<_> =
        bridge.providers.whatsapp_sent().await.into_iter().filter(|m| m["recipient"] == "BR.1A2B3C4D5E6F").collect();
    assert_eq!(answers.len(), 1, "one polite answer, at the user id");
    assert!(answers[0].get("to").is_none(), "{}", answers[0]);

    // Agent 0 writes once with both ids, then only with the user id.
    bridge.customer_texts("Is my bike ready?").await;
    bridge.run_worker().await;
    let handle = bridge.conversation(CUSTOMER).await.handle.to_string();
    let mut both = whatsapp_text(AGENTS[0], "/help", None);
    both["from_user_id"] = json!("US.13491208655302741918");
    bridge.agent_writes(both).await;
    let mut user_id_only = whatsapp_text(AGENTS[0], &format!("{handle} Ready at 5"), None);
    user_id_only.as_object_mut().unwrap().remove("from");
    user_id_only["from_user_id"] = json!("US.13491208655302741918");
    bridge.agent_writes(user_id_only).await;
    bridge.run_worker().await;
    assert_eq!(bridge.sms_to(CUSTOMER).await, ["Ready at 5"]);
}
