//! `GET|POST /whatsapp` through the deployed router, signed like Meta signs, with DynamoDB
//! and SQS on the moto emulator: verification, bad input, and every routing rule.

#![allow(clippy::unwrap_used)] // a failed unwrap is the test failing

use crate::common;

use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use bridge_testkit::testing::{
    AGENTS, META_APP_SECRET, META_VERIFY_TOKEN, lookup, signed_meta_notification, test_env, whatsapp_text,
};
use common::*;
use jiff::Timestamp;
use serde_json::json;
use shared::adapters::whatsapp::signature::compute_signature;
use shared::config::WhatsAppWebhookConfig;
use shared::domain::{JobPayload, WhatsAppMessage};
use shared::ports::Conversations;
use tower::ServiceExt;
use whatsapp_webhook::{MAX_BODY_BYTES, WhatsAppWebhook, router};

const TEXT_MESSAGE: &str = include_str!("../../../tests/fixtures/meta/agent_text_message.json");
const DELIVERED: &str = include_str!("../../../tests/fixtures/meta/delivered_status.json");
const UNKNOWN_TYPE: &str = include_str!("../../../tests/fixtures/meta/unknown_message_type.json");

// ---- verification and bad input -------------------------------------------------------

#[tokio::test]
async fn subscription_check_echoes_the_challenge_only_for_our_token() {
    let h = Harness::new().await;
    let ok = format!("hub.mode=subscribe&hub.verify_token={META_VERIFY_TOKEN}&hub.challenge=1158201444");
    assert_eq!(h.call(get(&ok)).await, (200, "1158201444".into()));
    for bad in [
        "hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1".to_owned(),
        format!("hub.mode=subscribe&hub.verify_token={META_VERIFY_TOKEN}x&hub.challenge=1"),
        format!("hub.mode=unsubscribe&hub.verify_token={META_VERIFY_TOKEN}&hub.challenge=1"),
        format!("hub.mode=subscribe&hub.verify_token={META_VERIFY_TOKEN}"),
        "hub.challenge=1".to_owned(),
        String::new(),
    ] {
        assert_eq!(h.call(get(&bad)).await.0, 403, "{bad}");
    }
}

#[tokio::test]
async fn real_shaped_notifications_are_acknowledged() {
    let h = Harness::new().await;
    for fixture in [TEXT_MESSAGE, DELIVERED, UNKNOWN_TYPE] {
        assert_eq!(h.call(signed(fixture)).await.0, 200);
    }
}

#[tokio::test]
async fn unsigned_forged_or_altered_notifications_are_forbidden_and_leave_no_trace() {
    let h = Harness::new().await;
    let good = compute_signature(META_APP_SECRET, TEXT_MESSAGE.as_bytes());
    let cases = [
        ("missing", post(TEXT_MESSAGE, None)),
        ("other secret", post(TEXT_MESSAGE, Some(compute_signature("not-the-secret", TEXT_MESSAGE.as_bytes())))),
        ("altered body", post(TEXT_MESSAGE.replace("see you then", "send me money"), Some(good.clone()))),
        ("no prefix", post(TEXT_MESSAGE, Some(good.trim_start_matches("sha256=").to_owned()))),
        ("sha1", post(TEXT_MESSAGE, Some(good.replace("sha256=", "sha1=")))),
        ("truncated", post(TEXT_MESSAGE, Some(good[..good.len() - 2].to_owned()))),
    ];
    for (name, request) in cases {
        let (status, body) = h.call(request).await;
        assert_eq!(status, 403, "{name}");
        assert!(!body.contains(&good[7..]), "{name}: never echo the expected signature");
    }
    assert!(h.aws.items().await.is_empty());
    assert_eq!(h.aws.queue_depth().await, 0);
}

#[tokio::test]
async fn signed_but_malformed_notifications_are_bad_requests_and_store_nothing() {
    let h = Harness::new().await;
    let bad_shapes = [
        "",
        "not json",
        "[]",
        r#"{"object":"page","entry":[]}"#,
        r#"{"entry":[]}"#,
        r#"{"object":"whatsapp_business_account","entry":{}}"#,
    ];
    for body in bad_shapes {
        assert_eq!(h.call(signed(body)).await.0, 400, "{body}");
    }
    // Inside a good envelope, a message that can't be read is skipped, not refused: its
    // neighbours are handled (`one_unreadable_message_doesnt_take_its_neighbours_down`).
    let unreadable = r#"{"object":"whatsapp_business_account","entry":[{"changes":[{"value":{"metadata":{"phone_number_id":"106540352242922"},"messages":[{"id":"wamid.1","type":"text"}]}}]}]}"#;
    assert_eq!(h.call(signed(unreadable)).await.0, 200);
    let mut invalid_utf8 = br#"{"object":"whatsapp_business_account","entry":[],"x":""#.to_vec();
    invalid_utf8.extend_from_slice(b"\xff\"}");
    let signature = compute_signature(META_APP_SECRET, &invalid_utf8);
    assert_eq!(h.call(post(invalid_utf8, Some(signature))).await.0, 400);
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert_eq!(h.call(signed(&deep)).await.0, 400, "deep nesting is refused, not a stack overflow");
    assert_eq!(h.call(signed(&"x".repeat(MAX_BODY_BYTES + 1))).await.0, 413);
    assert!(h.aws.items().await.is_empty());
    assert_eq!(h.aws.queue_depth().await, 0);
}

#[tokio::test]
async fn notifications_for_another_number_are_acknowledged_and_ignored() {
    let h = Harness::new().await;
    let body = TEXT_MESSAGE.replace("106540352242922", "999999999999999");
    assert_eq!(h.call(signed(&body)).await.0, 200);
    assert!(h.aws.items().await.is_empty());
}

#[tokio::test]
async fn one_unreadable_message_doesnt_take_its_neighbours_down() {
    let h = Harness::new().await;
    h.customer_texts(CUSTOMER_A, "Hi from A").await;
    let copies = h.forward().await;
    // Four messages in one notification: a swipe-reply, two Meta could send that the bridge
    // can't read (no sender at all, a number as the id), a stranger with a username and no
    // phone number; then a status on a copy. The reply and the status are handled, the
    // stranger answered at their user id, the rest skipped and counted.
    let reply = whatsapp_text(AGENTS[0], "Yes, open till 6", Some(&copies[AGENTS[0]]));
    let no_sender = serde_json::json!({ "id": "wamid.nosender", "type": "text", "text": { "body": "hi" } });
    let username_only = serde_json::json!({ "from_user_id": STRANGER_USER_ID, "id": "wamid.user", "type": "text", "text": { "body": "hi" } });
    let numeric_id = serde_json::json!({ "from": AGENTS[1], "id": 7, "type": "text", "text": { "body": "hi" } });
    let status =
        serde_json::json!({ "id": copies[AGENTS[1]], "status": "read", "timestamp": "1", "recipient_id": AGENTS[1] });
    assert_eq!(h.notify(&[no_sender, reply, username_only, numeric_id], &[status]).await, 200);
    let jobs = h.take_jobs().await;
    assert_eq!(sms_jobs(&jobs), [(CUSTOMER_A.to_owned(), "Yes, open till 6".to_owned())]);
    let answered: Vec<_> = jobs
        .iter()
        .filter_map(|job| match &job.payload {
            JobPayload::NotifyAgent(n) => Some(n.agent.as_str().to_owned()),
            _ => None,
        })
        .collect();
    assert_eq!(answered, [STRANGER_USER_ID], "the stranger gets the daily reply at their user id");
    let thread = h.aws.store().thread(&key(CUSTOMER_A)).await.unwrap();
    let read = thread[0].legs.iter().find(|l| l.to == AGENTS[1]).unwrap();
    assert_eq!(read.status, Some(shared::domain::DeliveryStatus::Read), "the status beside them applied");
}

// ---- users with a WhatsApp username (business-scoped user ids) ---------------------------

const STRANGER_USER_ID: &str = "BR.1A2B3C4D5E6F";
const AGENT_USER_ID: &str = "US.13491208655302741918";

/// Agent 0's message as Meta sends it once usernames exist: their phone and their user id.
fn agent_text_with_user_id(text: &str) -> serde_json::Value {
    let mut message = whatsapp_text(AGENTS[0], text, None);
    message["from_user_id"] = json!(AGENT_USER_ID);
    message
}

/// Agent 0's message with their user id only (they adopted a username).
fn agent_text_by_user_id(text: &str) -> serde_json::Value {
    let mut message = whatsapp_text(AGENTS[0], text, None);
    message.as_object_mut().unwrap().remove("from");
    message["from_user_id"] = json!(AGENT_USER_ID);
    message
}

#[tokio::test]
async fn an_agent_whose_messages_lose_their_phone_number_is_recognised_by_user_id() {
    let h = Harness::new().await;
    let handle = h.customer_texts(CUSTOMER_A, "Is my bike ready?").await;
    h.take_jobs().await;
    // Meta's notifications carry both ids while the number is shown: the bridge learns it.
    assert_eq!(h.notify(&[agent_text_with_user_id("/help")], &[]).await, 200);
    h.take_jobs().await;

    assert_eq!(h.notify(&[agent_text_by_user_id(&format!("{handle} Ready at 5"))], &[]).await, 200);

    let jobs = h.take_jobs().await;
    assert_eq!(sms_jobs(&jobs), [(CUSTOMER_A.to_owned(), "Ready at 5".to_owned())]);
    let replies = h.aws.store().thread(&key(CUSTOMER_A)).await.unwrap();
    assert_eq!(replies.len(), 2, "the customer's text and the agent's reply");
}

#[tokio::test]
async fn a_status_naming_the_recipient_by_user_id_only_applies_and_a_send_to_an_agent_teaches_it() {
    let h = Harness::new().await;
    h.customer_texts(CUSTOMER_A, "Hi from A").await;
    let copies = h.forward().await;
    let by_user_id =
        json!({ "id": copies[AGENTS[1]], "status": "delivered", "timestamp": "1", "recipient_user_id": "US.55" });
    let both = json!({ "id": copies[AGENTS[0]], "status": "read", "timestamp": "1", "recipient_id": AGENTS[0], "recipient_user_id": AGENT_USER_ID });

    assert_eq!(h.notify(&[], &[by_user_id, both]).await, 200);

    let thread = h.aws.store().thread(&key(CUSTOMER_A)).await.unwrap();
    let status_of = |agent: &str| thread[0].legs.iter().find(|l| l.to == agent).unwrap().status;
    assert_eq!(status_of(AGENTS[1]), Some(shared::domain::DeliveryStatus::Delivered));
    assert_eq!(status_of(AGENTS[0]), Some(shared::domain::DeliveryStatus::Read));
    // The report on agent 0's copy taught their user id: a message with it alone is theirs.
    assert_eq!(h.notify(&[agent_text_by_user_id("/help")], &[]).await, 200);
    let jobs = h.take_jobs().await;
    assert_eq!(notices_to(&jobs, AGENTS[0]).len(), 1, "{jobs:?}");
}

#[tokio::test]
async fn an_agents_new_user_id_is_followed() {
    let h = Harness::new().await;
    let handle = h.customer_texts(CUSTOMER_A, "Is my bike ready?").await;
    assert_eq!(h.notify(&[agent_text_with_user_id("/help")], &[]).await, 200);
    let change = json!({ "from": AGENTS[0], "from_user_id": AGENT_USER_ID, "id": "wamid.sys2", "timestamp": "1",
        "type": "system", "system": { "type": "user_changed_user_id", "user_id": "US.77" } });
    assert_eq!(h.notify(&[change], &[]).await, 200);
    h.take_jobs().await;

    let mut by_new_id = agent_text_by_user_id(&format!("{handle} Ready at 5"));
    by_new_id["from_user_id"] = json!("US.77");
    assert_eq!(h.notify(&[by_new_id], &[]).await, 200);
    assert_eq!(sms_jobs(&h.take_jobs().await), [(CUSTOMER_A.to_owned(), "Ready at 5".to_owned())]);
    // The old id names nobody now: a message with it alone is a stranger's.
    assert_eq!(h.notify(&[agent_text_by_user_id(&format!("{handle} Hello?"))], &[]).await, 200);
    assert!(sms_jobs(&h.take_jobs().await).is_empty());
}

#[tokio::test]
async fn an_agents_new_number_is_told_to_the_other_agents() {
    let h = Harness::new().await;
    let change = json!({ "from": AGENTS[0], "id": "wamid.sys1", "timestamp": "1", "type": "system",
        "system": { "body": "User A changed from one number to another", "wa_id": "12195555358", "type": "user_changed_number" } });

    assert_eq!(h.notify(std::slice::from_ref(&change), &[]).await, 200);
    assert_eq!(h.notify(&[change], &[]).await, 200, "a replay");

    let jobs = h.take_jobs().await;
    let told = notices_to(&jobs, AGENTS[1]);
    assert_eq!(told.len(), 1, "told once: {told:?}");
    assert!(told[0].contains("+1 219-555-5358"), "{told:?}");
    assert!(notices_to(&jobs, AGENTS[0]).is_empty());
}

// ---- routing ---------------------------------------------------------------------------

#[tokio::test]
async fn a_swipe_reply_goes_to_the_conversation_of_the_copy() {
    let h = Harness::new().await;
    h.customer_texts(CUSTOMER_A, "Hi from A").await;
    h.forward().await;
    h.customer_texts(CUSTOMER_B, "Hi from B").await;
    let copies_of_b = h.forward().await;

    let reply = whatsapp_text(AGENTS[0], "Hello *B*, yes we are _open_", Some(&copies_of_b[AGENTS[0]]));
    assert_eq!(h.notify(&[reply], &[]).await, 200);
    let jobs = h.take_jobs().await;
    assert_eq!(sms_jobs(&jobs), [(CUSTOMER_B.to_owned(), "Hello B, yes we are open".to_owned())]);

    let thread = h.aws.store().thread(&key(CUSTOMER_B)).await.unwrap();
    assert_eq!(thread.len(), 2);
    assert_eq!(thread[1].body, "Hello B, yes we are open");
    assert_eq!(thread[1].agent.as_ref().map(|a| a.as_str()), Some(AGENTS[0]));
    assert_eq!(thread[1].legs[0].kind, shared::domain::JobKind::SendSms);
    assert_eq!(thread[1].legs[0].state, shared::domain::LegState::Queued);
    // The agent is now focused on B, and their window is open.
    let agent = h.agent_item(AGENTS[0]).await;
    assert_eq!(agent["focus_customer"].as_s().unwrap(), CUSTOMER_B);
    assert!(agent.contains_key("last_inbound_at_ms"));
}

#[tokio::test]
async fn a_leading_handle_picks_the_conversation_and_is_not_sent() {
    let h = Harness::new().await;
    let a = h.customer_texts(CUSTOMER_A, "Hi from A").await;
    h.customer_texts(CUSTOMER_B, "Hi from B").await;
    h.take_jobs().await;

    let lower = a.to_lowercase();
    h.notify(&[whatsapp_text(AGENTS[1], &format!("{lower}   On our way!"), None)], &[]).await;
    assert_eq!(sms_jobs(&h.take_jobs().await), [(CUSTOMER_A.to_owned(), "On our way!".to_owned())]);
}

#[tokio::test]
async fn an_unknown_swipe_reply_falls_through_to_the_next_rule() {
    let h = Harness::new().await;
    let a = h.customer_texts(CUSTOMER_A, "Hi from A").await;
    h.take_jobs().await;
    let reply = whatsapp_text(AGENTS[0], &format!("{a} via handle"), Some("wamid.not-a-forwarded-copy"));
    h.notify(&[reply], &[]).await;
    assert_eq!(sms_jobs(&h.take_jobs().await), [(CUSTOMER_A.to_owned(), "via handle".to_owned())]);
}

#[tokio::test]
async fn the_focus_carries_plain_follow_ups_until_it_expires() {
    let h = Harness::new().await;
    let a = h.customer_texts(CUSTOMER_A, "Hi from A").await;
    h.customer_texts(CUSTOMER_B, "Hi from B").await;
    h.take_jobs().await;
    h.notify(&[whatsapp_text(AGENTS[0], &format!("{a} first"), None)], &[]).await;
    h.notify(&[whatsapp_text(AGENTS[0], "and a follow-up", None)], &[]).await;
    let sent = sms_jobs(&h.take_jobs().await);
    assert_eq!(
        sent,
        [(CUSTOMER_A.to_owned(), "first".to_owned()), (CUSTOMER_A.to_owned(), "and a follow-up".to_owned())]
    );

    // 13 hours later (focus_hours is 12): the agent is asked instead.
    let stale = Timestamp::now().as_millisecond() - 13 * 3600 * 1000;
    h.aws
        .dynamodb
        .update_item()
        .table_name(&h.aws.table)
        .key("PK", AttributeValue::S(format!("AGENT#main#{}", AGENTS[0])))
        .key("SK", AttributeValue::S("AGENT".into()))
        .update_expression("SET focus_at_ms = :stale")
        .expression_attribute_values(":stale", AttributeValue::N(stale.to_string()))
        .send()
        .await
        .unwrap();
    h.notify(&[whatsapp_text(AGENTS[0], "still there?", None)], &[]).await;
    let jobs = h.take_jobs().await;
    assert!(sms_jobs(&jobs).is_empty());
    assert!(matches!(notices(&jobs)[..], [WhatsAppMessage::List { .. }]));
}

#[tokio::test]
async fn without_a_clue_the_agent_picks_from_a_list_and_the_text_follows() {
    let h = Harness::new().await;
    let a = h.customer_texts(CUSTOMER_A, "Older").await;
    let b = h.customer_texts(CUSTOMER_B, "Newer").await;
    h.take_jobs().await;

    let first = whatsapp_text(AGENTS[0], "We ship *tomorrow*", None);
    let first_wamid = first["id"].as_str().unwrap().to_owned();
    h.notify(&[first], &[]).await;
    let jobs = h.take_jobs().await;
    assert!(sms_jobs(&jobs).is_empty(), "nothing relayed before the agent picks");
    let [WhatsAppMessage::List { body, rows, .. }] = &notices(&jobs)[..] else { panic!("{jobs:?}") };
    assert!(body.contains("We ship *tomorrow*"), "{body}");
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, [format!("conv:{}", &b[1..]), format!("conv:{}", &a[1..])], "newest first");
    assert_eq!(h.agent_item(AGENTS[0]).await["pending_text"].as_s().unwrap(), "We ship *tomorrow*");

    let pick = json!({
        "from": AGENTS[0], "id": "wamid.pick.1", "timestamp": "1", "type": "interactive",
        "interactive": { "type": "list_reply", "list_reply": { "id": format!("conv:{}", &a[1..]), "title": a } },
    });
    h.notify(&[pick], &[]).await;
    let jobs = h.take_jobs().await;
    assert_eq!(sms_jobs(&jobs), [(CUSTOMER_A.to_owned(), "We ship tomorrow".to_owned())]);
    let JobPayload::SendSms(sms) = &jobs[0].payload else { panic!() };
    assert_eq!(sms.agent_wamid.as_str(), first_wamid, "the result shows on the message the agent wrote");
    let agent = h.agent_item(AGENTS[0]).await;
    assert!(!agent.contains_key("pending_text"), "sent once, then forgotten");
    assert_eq!(agent["focus_customer"].as_s().unwrap(), CUSTOMER_A);
}

#[tokio::test]
async fn an_unknown_handle_asks_rather_than_guessing() {
    let h = Harness::new().await;
    let a = h.customer_texts(CUSTOMER_A, "Hi").await;
    h.take_jobs().await;
    h.notify(&[whatsapp_text(AGENTS[0], &format!("{a} focus on A"), None)], &[]).await;
    h.take_jobs().await;
    let unknown = if a == "#ZZ" { "#ZY" } else { "#ZZ" };
    h.notify(&[whatsapp_text(AGENTS[0], &format!("{unknown} for someone else"), None)], &[]).await;
    let jobs = h.take_jobs().await;
    assert!(sms_jobs(&jobs).is_empty(), "a typo never reaches the focused customer");
    let [WhatsAppMessage::List { body, .. }] = &notices(&jobs)[..] else { panic!("{jobs:?}") };
    assert!(body.starts_with(&format!("There is no conversation {unknown}.")), "{body}");
}

#[tokio::test]
async fn a_bare_handle_moves_the_focus() {
    let h = Harness::new().await;
    let b = h.customer_texts(CUSTOMER_B, "Hi").await;
    h.take_jobs().await;
    h.notify(&[whatsapp_text(AGENTS[0], &b, None)], &[]).await;
    let jobs = h.take_jobs().await;
    assert!(sms_jobs(&jobs).is_empty());
    assert!(text_of(&notices(&jobs)[0]).starts_with(&format!("Now answering {b}")));
    h.notify(&[whatsapp_text(AGENTS[0], "then this", None)], &[]).await;
    assert_eq!(sms_jobs(&h.take_jobs().await), [(CUSTOMER_B.to_owned(), "then this".to_owned())]);
}

#[tokio::test]
async fn with_no_open_conversation_the_agent_is_told_nothing_was_sent() {
    let h = Harness::new().await;
    h.notify(&[whatsapp_text(AGENTS[0], "hello?", None)], &[]).await;
    let jobs = h.take_jobs().await;
    assert!(text_of(&notices(&jobs)[0]).contains("nothing was sent"));
}

#[tokio::test]
async fn reactions_stickers_and_commands_are_not_relayed_and_a_picture_goes_to_the_focus() {
    let h = Harness::new().await;
    let a = h.customer_texts(CUSTOMER_A, "Hi").await;
    h.take_jobs().await;
    h.notify(&[whatsapp_text(AGENTS[0], &format!("{a} focus"), None)], &[]).await;
    h.take_jobs().await;

    let reaction = json!({ "from": AGENTS[0], "id": "wamid.r1", "type": "reaction", "reaction": { "message_id": "wamid.x", "emoji": "👍" } });
    let sticker = json!({ "from": AGENTS[0], "id": "wamid.s1", "type": "sticker", "sticker": { "id": "2", "mime_type": "image/webp" } });
    let command = whatsapp_text(AGENTS[0], "/list", None);
    assert_eq!(h.notify(&[reaction, sticker, command], &[]).await, 200);
    let jobs = h.take_jobs().await;
    assert!(sms_jobs(&jobs).is_empty(), "none of them reaches the customer");
    let texts: Vec<String> = notices(&jobs).iter().map(text_of).collect();
    assert_eq!(texts.len(), 2, "the reaction gets no answer: {texts:?}");
    assert!(texts.iter().any(|t| t.contains("sticker can't be sent by SMS")), "{texts:?}");
    assert!(texts.iter().any(|t| t.starts_with("Open conversations, newest first")), "{texts:?}");

    // A picture (docs/media.md) follows the same routing as text: here, the focus.
    let image = json!({ "from": AGENTS[0], "id": "wamid.i1", "type": "image", "image": { "id": "1", "mime_type": "image/jpeg" } });
    assert_eq!(h.notify(&[image], &[]).await, 200);
    let jobs = h.take_jobs().await;
    assert_eq!(sms_jobs(&jobs), [(CUSTOMER_A.to_owned(), String::new())]);
    let media: Vec<_> = jobs
        .iter()
        .filter_map(|j| match &j.payload {
            JobPayload::SendSms(sms) => Some(sms.media.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(media[0][0].id, "1");
}

#[tokio::test]
async fn strangers_get_one_polite_reply_a_day_and_reach_nobody() {
    let h = Harness::new().await;
    h.customer_texts(CUSTOMER_A, "Hi").await;
    h.take_jobs().await;
    let items = h.aws.items_with_prefix("CONV#").await.len();
    for text in ["hello?", "anyone?", "#K7 text this customer"] {
        assert_eq!(h.notify(&[whatsapp_text(STRANGER, text, None)], &[]).await, 200);
    }
    let jobs = h.take_jobs().await;
    assert!(sms_jobs(&jobs).is_empty());
    let replies = notices(&jobs);
    assert_eq!(replies.len(), 1, "one reply a day");
    assert!(text_of(&replies[0]).contains("+1 415-555-0100"));
    let JobPayload::NotifyAgent(n) = &jobs[0].payload else { panic!() };
    assert_eq!(n.agent.as_str(), STRANGER);
    assert_eq!(h.aws.items_with_prefix("CONV#").await.len(), items, "nothing relayed or recorded in threads");
    assert!(h.agent_item(STRANGER).await.is_empty(), "strangers get no agent record");
}

#[tokio::test]
async fn a_replayed_message_changes_nothing() {
    let h = Harness::new().await;
    let a = h.customer_texts(CUSTOMER_A, "Hi").await;
    h.take_jobs().await;
    let message = whatsapp_text(AGENTS[0], &format!("{a} once"), None);
    h.notify(std::slice::from_ref(&message), &[]).await;
    let first = h.take_jobs().await;
    let items = h.aws.items().await;

    assert_eq!(h.notify(&[message], &[]).await, 200);
    assert_eq!(h.aws.items().await, items, "the store is unchanged");
    let replayed = h.take_jobs().await;
    assert_eq!(
        replayed.iter().map(|j| &j.job_id).collect::<Vec<_>>(),
        first.iter().map(|j| &j.job_id).collect::<Vec<_>>(),
        "the same job, which the worker sends once"
    );
}

// ---- statuses --------------------------------------------------------------------------

#[tokio::test]
async fn statuses_of_forwarded_copies_only_move_forward() {
    let h = Harness::new().await;
    h.customer_texts(CUSTOMER_A, "Hi").await;
    let copies = h.forward().await;
    let wamid = &copies[AGENTS[0]];
    let status = |s: &str| json!({ "id": wamid, "status": s, "timestamp": "1", "recipient_id": AGENTS[0] });
    assert_eq!(h.notify(&[], &[status("read"), status("delivered"), status("sent")]).await, 200);
    let thread = h.aws.store().thread(&key(CUSTOMER_A)).await.unwrap();
    let leg = thread[0].legs.iter().find(|l| l.to == AGENTS[0]).unwrap();
    assert_eq!(leg.status, Some(shared::domain::DeliveryStatus::Read));

    let items = h.aws.items().await;
    let unknown = json!({ "id": "wamid.unknown", "status": "delivered", "timestamp": "1", "recipient_id": "1" });
    assert_eq!(h.notify(&[], &[unknown]).await, 200);
    assert_eq!(h.aws.items().await, items, "a status for an unknown message changes nothing");
}

/// The webhook on the harness's emulator, its AWS calls counted.
fn counted_webhook(h: &Harness) -> (axum::Router, bridge_testkit::testing::AwsCallCounter) {
    let counter = bridge_testkit::testing::AwsCallCounter::default();
    let env = test_env(&h.aws, &[]);
    let store = shared::adapters::dynamodb::DynamoStore::new(
        counter.dynamodb(&h.aws.dynamodb),
        &h.aws.table,
        shared::adapters::dynamodb::DEFAULT_MESSAGE_RETENTION,
    );
    let queue = shared::adapters::sqs::SqsQueue::new(counter.sqs(&h.aws.sqs), &h.aws.queue_url);
    let webhook = WhatsAppWebhook::new(WhatsAppWebhookConfig::from_lookup(&lookup(&env)).unwrap(), store, queue);
    (router(Arc::new(webhook)), counter)
}

#[tokio::test]
async fn aws_calls_per_agent_reply() {
    let h = Harness::new().await;
    let handle = h.customer_texts(CUSTOMER_A, "Hi").await;
    let copies = h.forward().await;
    let (counted, counter) = counted_webhook(&h);

    let mut calls = Vec::new();
    for message in [
        whatsapp_text(AGENTS[0], "swipe", Some(&copies[AGENTS[0]])),
        whatsapp_text(AGENTS[0], &format!("{handle} by handle"), None),
        whatsapp_text(AGENTS[0], "by focus", None),
    ] {
        let (body, signature) = signed_meta_notification(&[message], &[]);
        let response = counted.clone().oneshot(post(body, Some(signature))).await.unwrap();
        assert_eq!(response.status(), 200);
        calls.push(counter.take());
    }
    println!("AWS calls per agent reply: swipe {:?}; handle {:?}; focus {:?}", calls[0], calls[1], calls[2]);
    let relay = ["DynamoDB.GetItem", "DynamoDB.GetItem", "DynamoDB.TransactWriteItems", "SQS.SendMessageBatch"];
    assert_eq!(calls[0], relay, "copy lookup, conversation, record, enqueue");
    assert_eq!(calls[1], relay, "handle lookup, conversation, record, enqueue");
    assert_eq!(calls[2], relay, "agent focus, conversation, record, enqueue");
    assert_eq!(sms_jobs(&h.take_jobs().await).len(), 3);
}

/// A copy's statuses over the wire: `sent` on a recorded copy is one read and no write
/// (issue 17); `delivered` and `read` a read and a conditional update; a late one the same,
/// refused by the condition (the copy's route doesn't know the leg's status).
#[tokio::test]
async fn aws_calls_per_copy_status() {
    let h = Harness::new().await;
    h.customer_texts(CUSTOMER_A, "Hi").await;
    let copies = h.forward().await;
    let wamid = &copies[AGENTS[0]];
    let (counted, counter) = counted_webhook(&h);
    let mut calls = Vec::new();
    for status in ["sent", "delivered", "read", "delivered"] {
        let report = json!({ "id": wamid, "status": status, "timestamp": "1", "recipient_id": AGENTS[0] });
        let (body, signature) = signed_meta_notification(&[], &[report]);
        assert_eq!(counted.clone().oneshot(post(body, Some(signature))).await.unwrap().status(), 200);
        calls.push(counter.take());
    }
    println!(
        "AWS calls per copy status: sent {:?}; delivered {:?}; read {:?}; late {:?}",
        calls[0], calls[1], calls[2], calls[3]
    );
    assert_eq!(calls[0], ["DynamoDB.GetItem"], "the copy's route, nothing written");
    assert_eq!(calls[1], ["DynamoDB.GetItem", "DynamoDB.UpdateItem"]);
    assert_eq!(calls[2], ["DynamoDB.GetItem", "DynamoDB.UpdateItem"]);
    assert_eq!(calls[3], ["DynamoDB.GetItem", "DynamoDB.UpdateItem"]);
    let thread = h.aws.store().thread(&key(CUSTOMER_A)).await.unwrap();
    let leg = thread[0].legs.iter().find(|l| l.to == AGENTS[0]).unwrap();
    assert_eq!(leg.status, Some(shared::domain::DeliveryStatus::Read));
}

// ---- what WhatsApp bills, and the line's template ----------------------------------------

/// How often `metric` was counted with each of `values` while `call` ran (the process's
/// totals; no other test counts these metrics).
async fn counted_during(metric: &str, values: &[&str], call: impl Future<Output = u16>) -> (u16, Vec<f64>) {
    let totals = || values.iter().map(|value| shared::telemetry::counted(metric, value)).collect::<Vec<f64>>();
    let before = totals();
    let status = call.await;
    (status, totals().iter().zip(before).map(|(after, before)| after - before).collect())
}

/// Each message Meta bills is counted once, by category, from its `sent` report's `pricing`
/// block, tracked or not (a notice to an agent costs the same as a copy); free messages,
/// later reports of the same message and reports without pricing count nothing.
#[tokio::test]
async fn billed_messages_are_counted_by_category_from_their_sent_report() {
    let h = Harness::new().await;
    let status = |id: &str, status: &str, pricing: serde_json::Value| json!({ "id": id, "status": status, "timestamp": "1764072000", "recipient_id": AGENTS[0], "pricing": pricing });
    let service = json!({ "billable": true, "pricing_model": "PMP", "category": "service", "type": "regular" });
    let utility = json!({ "billable": true, "pricing_model": "PMP", "category": "utility", "type": "regular" });
    let free =
        json!({ "billable": false, "pricing_model": "PMP", "category": "service", "type": "free_customer_service" });
    let statuses = [
        status("wamid.billed1", "sent", service.clone()),
        status("wamid.billed1", "delivered", service),
        status("wamid.billed2", "sent", utility),
        status("wamid.free3", "sent", free),
        json!({ "id": "wamid.unpriced4", "status": "sent", "timestamp": "1764072000", "recipient_id": AGENTS[0] }),
    ];
    let (body, signature) = signed_meta_notification(&[], &statuses);
    let categories = ["service", "utility", "marketing", "other"];
    let call = async { h.call(post(body, Some(signature))).await.0 };
    let (status, counted) = counted_during("WhatsAppMessagesBilled", &categories, call).await;
    assert_eq!((status, counted), (200, vec![1.0, 1.0, 0.0, 0.0]), "service, utility, marketing, other");
}

/// Meta's template news (`message_template_status_update`, `template_category_update`): about
/// a line's template it is counted by concern (the alarms watch `stopped` and
/// `recategorized`); about another template, or unreadable, it changes nothing; 200 either way.
#[tokio::test]
async fn template_news_about_a_lines_template_is_counted_for_the_alarms() {
    let h = Harness::new().await;
    let change = |field: &str, value: serde_json::Value| json!({ "field": field, "value": value });
    let ours = |extra: serde_json::Value| {
        let mut value = json!({ "message_template_id": 1_234_567, "message_template_name": "new_customer_message",
            "message_template_language": "en" });
        value.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        value
    };
    let body = json!({ "object": "whatsapp_business_account", "entry": [{ "id": "102290129340398", "time": 1_764_072_000,
        "changes": [
            change("message_template_status_update", ours(json!({ "event": "PAUSED", "reason": "LOW_QUALITY" }))),
            change("template_category_update", ours(json!({ "previous_category": "UTILITY", "new_category": "MARKETING" }))),
            change("message_template_status_update", ours(json!({ "event": "APPROVED", "reason": "NONE" }))),
            change("message_template_status_update", json!({ "event": "PAUSED", "message_template_name": "someone_elses",
                "message_template_language": "en" })),
            change("message_template_status_update", json!({ "message_template_name": "new_customer_message" })),
        ] }] })
    .to_string();
    let signature = compute_signature(META_APP_SECRET, body.as_bytes());
    let concerns = ["stopped", "recategorized", "restored", "other"];
    let call = async { h.call(post(body, Some(signature))).await.0 };
    let (status, counted) = counted_during("LineTemplateChanged", &concerns, call).await;
    assert_eq!((status, counted), (200, vec![1.0, 1.0, 1.0, 0.0]), "stopped, recategorized, restored, other");
}
