//! The agent's 24-hour window closes and WhatsApp says so only after accepting a copy: a
//! `failed` status with 131047 (docs/using.md). The copy must still reach the agent, as the
//! template, once, and the agent can answer it like any copy. Over the wire: the deployed
//! routers and worker, moto, Graph and Twilio fakes, signed notifications.

#![allow(clippy::unwrap_used)] // a failed unwrap is the test failing

use crate::common;

use bridge_testkit::testing::{AGENTS, CUSTOMER, signed_meta_notification, whatsapp_text};
use common::{Bridge, copies};
use serde_json::{Value, json};

/// Meta reports that the message `wamid` to `agent` failed.
async fn status_failed(bridge: &Bridge, wamid: &str, agent: &str, code: i64) {
    let status = json!({
        "id": wamid, "status": "failed", "timestamp": "1764072100", "recipient_id": agent,
        "errors": [{ "code": code, "title": "Re-engagement message",
                     "message": "Re-engagement message", "error_data": { "details": "Message failed to send because more than 24 hours have passed since the customer last replied to this number." } }],
    });
    let (body, signature) = signed_meta_notification(&[], &[status]);
    assert_eq!(bridge.post("/whatsapp", "application/json", ("x-hub-signature-256", &signature), body).await, 200);
}

/// The wamid of agent 0's copy of the conversation's first message, as the worker recorded it.
async fn first_copy_to_agent0(bridge: &Bridge) -> String {
    let thread = bridge.thread(CUSTOMER).await;
    thread[0].legs.iter().find(|l| l.to == AGENTS[0]).unwrap().provider_id.clone().unwrap()
}

#[tokio::test]
async fn a_copy_refused_later_with_131047_reaches_the_agent_as_the_template_once() {
    let bridge = Bridge::start().await;
    // The agent wrote recently, so the bridge believes the window is open.
    bridge.agent_writes(whatsapp_text(AGENTS[0], "/help", None)).await;
    bridge.run_worker().await;
    bridge.customer_texts("Is my bike ready?").await;
    bridge.run_worker().await;
    let free_form = copies(&bridge.sent_to(AGENTS[0]).await);
    assert!(free_form.len() == 1 && free_form[0].contains("Is my bike ready?"), "{free_form:?}");
    let copy = first_copy_to_agent0(&bridge).await;
    let before = bridge.sent_to(AGENTS[0]).await.len();

    status_failed(&bridge, &copy, AGENTS[0], 131047).await;
    bridge.run_worker().await;
    let after: Vec<Value> = bridge.sent_to(AGENTS[0]).await.into_iter().skip(before).collect();
    assert_eq!(after.len(), 1, "the copy goes again, as the template: {after:?}");
    assert_eq!(after[0]["type"], "template");
    let text = common::readable(&after[0]);
    assert!(text.contains("Is my bike ready?"), "{text}");

    // Meta retries the webhook: the same report changes nothing more.
    status_failed(&bridge, &copy, AGENTS[0], 131047).await;
    bridge.run_worker().await;
    assert_eq!(bridge.sent_to(AGENTS[0]).await.len(), before + 1);

    // The thread shows what happened to each message: the free-form leg failed 131047, the
    // template leg was sent; agent 1's copies are untouched.
    let thread = bridge.thread(CUSTOMER).await;
    for message in &thread {
        let to_agent0: Vec<_> = message.legs.iter().filter(|l| l.to == AGENTS[0]).collect();
        assert_eq!(to_agent0.len(), 2, "{:?}", message.legs);
        assert_eq!(to_agent0[0].status.map(|s| s.as_str()), Some("failed"));
        assert!(
            to_agent0[1].job_id.as_str().ends_with(".t") && to_agent0[1].state == shared::domain::LegState::Sent,
            "{to_agent0:?}"
        );
        assert_eq!(message.legs.iter().filter(|l| l.to == AGENTS[1]).count(), 1);
    }

    // The template is a copy like any other: swiping it answers the customer.
    let template_wamid = to_agent0_template_wamid(&thread);
    bridge.agent_writes(whatsapp_text(AGENTS[0], "Yes, ready at 9", Some(&template_wamid))).await;
    bridge.run_worker().await;
    assert_eq!(bridge.sms_to(CUSTOMER).await, ["Yes, ready at 9"]);
}

fn to_agent0_template_wamid(thread: &[shared::ports::ThreadMessage]) -> String {
    let leg = thread[0].legs.iter().find(|l| l.to == AGENTS[0] && l.job_id.as_str().ends_with(".t")).unwrap();
    leg.provider_id.clone().unwrap()
}

#[tokio::test]
async fn other_failures_are_recorded_and_not_resent() {
    let bridge = Bridge::start().await;
    bridge.agent_writes(whatsapp_text(AGENTS[0], "/help", None)).await;
    bridge.run_worker().await;
    bridge.customer_texts("Hello").await;
    bridge.run_worker().await;
    let before = bridge.sent_to(AGENTS[0]).await.len();

    // 131026: the agent's number can't receive it; nothing another form of the copy fixes.
    status_failed(&bridge, &first_copy_to_agent0(&bridge).await, AGENTS[0], 131026).await;
    bridge.run_worker().await;
    assert_eq!(bridge.sent_to(AGENTS[0]).await.len(), before);
    let thread = bridge.thread(CUSTOMER).await;
    let leg = thread[0].legs.iter().find(|l| l.to == AGENTS[0]).unwrap();
    assert_eq!(leg.status.map(|s| s.as_str()), Some("failed"));
    assert_eq!(thread[0].legs.len(), 2, "no template leg: {:?}", thread[0].legs);
}
