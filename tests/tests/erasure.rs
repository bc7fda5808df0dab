//! Erasure and export on request (docs/operating.md), over the wire: a customer's whole
//! footprint (their texts, the agents' copies and reply routes, an agent's answer and its SMS
//! record, an automated reply, dedupe markers, an agent's focus on them, jobs still queued)
//! is erased; a scan of the table finds their number in no form and none of their texts;
//! the queued jobs then send nothing and write nothing; another customer keeps everything.

use aws_sdk_dynamodb::types::AttributeValue;
use bridge_ops::export::{ExportFormat, export};
use bridge_testkit::testing::logs::number_forms;
use bridge_testkit::testing::{AGENTS, CUSTOMER, Item, attr_s, whatsapp_text};
use serde_json::json;
use shared::adapters::dynamodb::erasure::{ErasureRequest, ItemKind, tombstone_key};
use shared::domain::{E164, LineId};
use shared::ports::Conversations;

use crate::common::{Bridge, key};

const OTHER: &str = "+14155550177";
const TEXTS: [&str; 3] = ["my order 4471 is late", "On its way, sorry!", "and the invoice please"];

/// Every string in an item, keys and nested values included.
fn strings(item: &Item) -> Vec<String> {
    fn walk(value: &AttributeValue, out: &mut Vec<String>) {
        match value {
            AttributeValue::S(s) => out.push(s.clone()),
            AttributeValue::N(n) => out.push(n.clone()),
            AttributeValue::Ss(ss) => out.extend(ss.iter().cloned()),
            AttributeValue::L(values) => values.iter().for_each(|v| walk(v, out)),
            AttributeValue::M(map) => map.iter().for_each(|(k, v)| {
                out.push(k.clone());
                walk(v, out);
            }),
            _ => {}
        }
    }
    let mut out = Vec::new();
    item.iter().for_each(|(k, v)| {
        out.push(k.clone());
        walk(v, &mut out);
    });
    out
}

/// The items holding `needle` (any of the number's forms, or a text), as their keys.
async fn items_holding(bridge: &Bridge, needles: &[String]) -> Vec<String> {
    bridge
        .aws
        .items()
        .await
        .iter()
        .filter(|item| strings(item).iter().any(|s| needles.iter().any(|n| s.contains(n.as_str()))))
        .map(item_key)
        .collect()
}

fn item_key(item: &Item) -> String {
    format!("{} {}", attr_s(item, "PK"), attr_s(item, "SK"))
}

/// The customer texts twice and an agent answers; the worker delivers all but the last text.
async fn a_customer_with_history() -> Bridge {
    let bridge = Bridge::with_line(json!({ "auto_replies": { "first_contact": "Thanks for texting Acme!" } })).await;
    bridge.customer_texts(TEXTS[0]).await;
    bridge.sms_from(OTHER, &bridge_testkit::testing::message_sid(), "hello from someone else").await;
    bridge.run_worker().await;
    let copy = bridge.copy_for(AGENTS[0], TEXTS[0]).await;
    bridge.agent_writes(whatsapp_text(AGENTS[0], TEXTS[1], Some(&copy))).await;
    bridge.run_worker().await;
    assert_eq!(bridge.sms_to(CUSTOMER).await, ["Thanks for texting Acme!", TEXTS[1]]);
    // Still queued when the erasure runs: its copies must never go.
    bridge.customer_texts(TEXTS[2]).await;
    bridge
}

#[tokio::test]
async fn export_returns_every_message_of_the_thread_in_order_with_statuses() {
    let bridge = a_customer_with_history().await;
    let exported = export(&bridge.aws.store(), &key(CUSTOMER)).await.unwrap();
    let texts: Vec<&str> = exported.messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, TEXTS);
    assert!(exported.messages.windows(2).all(|pair| pair[0].at <= pair[1].at));
    assert_eq!(exported.customer, CUSTOMER);
    assert_eq!(exported.conversation.as_ref().unwrap().handle, bridge.conversation(CUSTOMER).await.handle.to_string());
    let reply = &exported.messages[1];
    assert_eq!((reply.direction, reply.from.starts_with("agent ") && reply.from.contains('*')), ("outbound", true));
    assert_eq!(reply.deliveries.len(), 1);
    assert_eq!((reply.deliveries[0].to.as_str(), reply.deliveries[0].state), ("customer", "sent"));
    let first = &exported.messages[0];
    assert_eq!(first.deliveries.len(), AGENTS.len(), "a copy per agent");
    assert!(first.deliveries.iter().all(|d| d.state == "sent" && d.to.contains('*')), "agents masked");

    let json = exported.render(ExportFormat::Json).unwrap();
    let csv = exported.render(ExportFormat::Csv).unwrap();
    println!("{csv}");
    for agent in AGENTS {
        assert!(!json.contains(agent) && !csv.contains(agent), "another person's number in the export");
    }
    assert_eq!(csv.lines().count(), 1 + TEXTS.len(), "{csv}");
    assert!(csv.lines().nth(2).unwrap().contains("On its way, sorry!"), "{csv}");
    let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed["messages"].as_array().unwrap().len(), TEXTS.len());
}

#[tokio::test]
async fn after_erase_no_item_holds_the_number_or_a_text_and_queued_jobs_send_and_write_nothing() {
    let bridge = a_customer_with_history().await;
    let mut needles: Vec<String> = number_forms(CUSTOMER);
    needles.extend(TEXTS.iter().map(|t| (*t).to_owned()));
    let before = items_holding(&bridge, &needles).await;
    assert!(before.len() >= 8, "the customer's footprint, before: {before:#?}");
    let request =
        ErasureRequest { customer: E164::parse(CUSTOMER).unwrap(), line: Some(LineId::parse("main").unwrap()) };

    // A dry run counts and changes nothing.
    let store = bridge.aws.store();
    let dry = store.erase_customer(&request, true).await.unwrap();
    assert_eq!(items_holding(&bridge, &needles).await.len(), before.len());
    let report = store.erase_customer(&request, false).await.unwrap();
    assert_eq!(report.deleted, dry.deleted, "the dry run said what the erasure did");
    for kind in [ItemKind::Conversation, ItemKind::Message, ItemKind::Handle, ItemKind::CopyRoute, ItemKind::SmsRecord]
    {
        assert!(report.deleted.get(&kind).copied().unwrap_or(0) > 0, "{kind:?} in {report:?}");
    }
    assert_eq!(report.stripped.get(&ItemKind::Agent), Some(&1), "the answering agent's focus");
    let printed = bridge_ops::erase::render(&request, &report);
    assert!(number_forms(CUSTOMER).iter().all(|form| !printed.contains(form.as_str())), "{printed}");
    println!("{printed}");

    let left = items_holding(&bridge, &needles).await;
    assert!(left.is_empty(), "after erase, items still hold the customer: {left:#?}");
    println!(
        "scan of {} items: {} held the customer's number or texts before the erasure, {} after",
        bridge.aws.items().await.len(),
        before.len(),
        left.len()
    );

    // The jobs still queued: nothing sent, nothing written.
    let (whatsapp_before, sms_before) =
        (bridge.providers.whatsapp_sent().await.len(), bridge.providers.sms_sent().await.len());
    let keys = |items: Vec<Item>| -> Vec<String> {
        let mut keys: Vec<String> = items.iter().map(item_key).collect();
        keys.sort();
        keys
    };
    let items_before = keys(bridge.aws.items().await);
    bridge.run_worker().await;
    bridge.sweep().await;
    bridge.run_worker().await;
    assert_eq!(bridge.providers.whatsapp_sent().await.len(), whatsapp_before, "a copy went after the erasure");
    assert_eq!(bridge.providers.sms_sent().await.len(), sms_before);
    // Nothing new; gone only the other customer's outbox entry, which the sweep clears.
    let items_after = keys(bridge.aws.items().await);
    let added: Vec<&String> = items_after.iter().filter(|k| !items_before.contains(k)).collect();
    let removed: Vec<&String> = items_before.iter().filter(|k| !items_after.contains(k)).collect();
    assert!(added.is_empty(), "a job wrote after the erasure: {added:?}");
    assert!(removed.iter().all(|k| k.starts_with("OUTBOX#")), "{removed:?}");
    assert!(items_holding(&bridge, &needles).await.is_empty());

    // The other customer keeps everything; the tombstone holds no number.
    let other = bridge.aws.store().thread(&key(OTHER)).await.unwrap();
    assert_eq!(other.len(), 1);
    assert!(bridge.aws.store().conversation(&key(OTHER)).await.unwrap().is_some());
    let tombstone = bridge.aws.items_with_prefix("ERASED#").await;
    assert_eq!(tombstone.len(), 1);
    assert_eq!(attr_s(&tombstone[0], "PK"), tombstone_key(&request));
    assert_eq!(attr_s(&tombstone[0], "state"), "done");

    // Again: nothing left to erase.
    let again = store.erase_customer(&request, false).await.unwrap();
    assert!(again.deleted.is_empty(), "{again:?}");
}

#[tokio::test]
async fn a_send_under_way_while_the_erasure_runs_leaves_no_route_behind() {
    let bridge = a_customer_with_history().await;
    // The queued text's copies are claimed and sent; WhatsApp answers a second later, and the
    // erasure runs in that second. The copies went (they were under way); what the worker
    // writes once answered, the reply routes that name the customer, must not stay.
    bridge.providers.graph_accepts_then_hangs(std::time::Duration::from_millis(1500), 2).await;
    let sent_before = bridge.providers.whatsapp_sent().await.len();
    let request = ErasureRequest { customer: E164::parse(CUSTOMER).unwrap(), line: None };
    let erase = async {
        tokio::time::sleep(std::time::Duration::from_millis(600)).await;
        bridge.aws.store().erase_customer(&request, false).await.unwrap()
    };
    let ((), report) = tokio::join!(bridge.run_worker(), erase);
    assert!(report.deleted.contains_key(&ItemKind::Message), "{report:?}");
    assert_eq!(bridge.providers.whatsapp_sent().await.len(), sent_before + AGENTS.len(), "the copies under way went");
    let mut needles = number_forms(CUSTOMER);
    needles.push(TEXTS[2].to_owned());
    let left = items_holding(&bridge, &needles).await;
    assert!(left.is_empty(), "written back after the erasure: {left:#?}");
}

/// SECURITY.md's retention table, per item kind: the longest an item may live from its
/// last write (days), at the default `MESSAGE_RETENTION_DAYS` of 90.
fn longest_life_days(kind: ItemKind) -> i64 {
    match kind {
        ItemKind::Conversation | ItemKind::Message | ItemKind::SmsRecord | ItemKind::Agent | ItemKind::ParkedCopy => 90,
        ItemKind::Handle => 135,
        ItemKind::CopyRoute | ItemKind::Tombstone => 30,
        ItemKind::DedupeMarker | ItemKind::Notice => 7,
        ItemKind::OutboxEntry => 14,
        ItemKind::NonAgentMarker => 2,
        ItemKind::SendSlot => 1,
        ItemKind::AgentUserId => 180,
        ItemKind::DutyRoster => 400,
        ItemKind::Unknown => 0,
    }
}

#[tokio::test]
async fn every_item_kind_the_bridge_writes_expires() {
    let bridge = a_customer_with_history().await;
    // The kinds the history above doesn't write: a duty roster, a stranger's daily marker,
    // an agent's learnt user id, and an erasure's tombstone.
    bridge.agent_writes(whatsapp_text(AGENTS[1], "/away", None)).await;
    bridge.agent_writes(whatsapp_text("14155550199", "who is this?", None)).await;
    let handle = bridge.conversation(CUSTOMER).await.handle;
    let mut with_user_id = whatsapp_text(AGENTS[0], &format!("{handle} Ready at 5"), None);
    with_user_id["from_user_id"] = json!("US.13491208655302741918");
    bridge.agent_writes(with_user_id).await;
    bridge.run_worker().await;
    let request = ErasureRequest { customer: E164::parse(OTHER).unwrap(), line: None };
    bridge.aws.store().erase_customer(&request, false).await.unwrap();

    // DynamoDB deletes an item once the time in `expires_at` is past: the table says so.
    let ttl = bridge.aws.dynamodb.describe_time_to_live().table_name(&bridge.aws.table).send().await.unwrap();
    let ttl = ttl.time_to_live_description.unwrap();
    assert_eq!(ttl.attribute_name(), Some("expires_at"));
    assert_eq!(ttl.time_to_live_status().map(|s| s.as_str()), Some("ENABLED"));
    let now = jiff::Timestamp::now().as_second();
    let mut kinds = std::collections::BTreeSet::new();
    for item in bridge.aws.items().await {
        let kind = ItemKind::of(attr_s(&item, "PK"), attr_s(&item, "SK"));
        kinds.insert(kind);
        let expires_at: i64 = match item.get("expires_at") {
            Some(AttributeValue::N(n)) => n.parse().unwrap(),
            other => panic!("{} has no TTL: {other:?}", item_key(&item)),
        };
        let longest = longest_life_days(kind) * 24 * 3600;
        assert!(expires_at > now && expires_at <= now + longest + 60, "{} expires at {expires_at}", item_key(&item));
    }
    let expected = [
        ItemKind::Conversation,
        ItemKind::Message,
        ItemKind::Handle,
        ItemKind::CopyRoute,
        ItemKind::SmsRecord,
        ItemKind::DedupeMarker,
        ItemKind::Agent,
        ItemKind::AgentUserId,
        ItemKind::DutyRoster,
        ItemKind::SendSlot,
        ItemKind::Notice,
        ItemKind::OutboxEntry,
        ItemKind::NonAgentMarker,
        ItemKind::Tombstone,
    ];
    let missing: Vec<_> = expected.iter().filter(|k| !kinds.contains(k)).collect();
    assert!(missing.is_empty(), "kinds this run didn't write, so didn't check: {missing:?}");
}

/// A conversation written before handles expired (no `expires_at` on its handle, no note of
/// it on the conversation): the worker's next job for it gives the handle its expiry, at
/// least the conversation's own, in one renewal.
#[tokio::test]
async fn the_worker_gives_an_old_handle_an_expiry_that_outlives_its_conversation() {
    let bridge = Bridge::start().await;
    bridge.customer_texts("hello").await;
    bridge.run_worker().await;
    let handle = bridge.conversation(CUSTOMER).await.handle;
    let conversation_pk = format!("CONV#main#{CUSTOMER}");
    let handle_pk = format!("HANDLE#main#{}", handle.as_str());
    let strip = |pk: &str, attribute: &str| {
        bridge
            .aws
            .dynamodb
            .update_item()
            .table_name(&bridge.aws.table)
            .key("PK", AttributeValue::S(pk.to_owned()))
            .key("SK", AttributeValue::S(if pk.starts_with("CONV#") { "META" } else { "HANDLE" }.to_owned()))
            .update_expression(format!("REMOVE {attribute}"))
            .send()
    };
    strip(&conversation_pk, "handle_expires_at").await.unwrap();
    strip(&handle_pk, "expires_at").await.unwrap();
    assert!(bridge.conversation(CUSTOMER).await.handle_renewal_due);

    bridge.customer_texts("still there?").await;
    bridge.run_worker().await;
    let number = |pk: &str, sk: &str, attribute: &str| {
        let items = bridge.aws.items();
        let (pk, sk, attribute) = (pk.to_owned(), sk.to_owned(), attribute.to_owned());
        async move {
            let items = items.await;
            let item = items.iter().find(|i| attr_s(i, "PK") == pk && attr_s(i, "SK") == sk).unwrap();
            match item.get(&attribute) {
                Some(AttributeValue::N(n)) => n.parse::<i64>().unwrap(),
                other => panic!("{pk} {attribute}: {other:?}"),
            }
        }
    };
    let handle_expires = number(&handle_pk, "HANDLE", "expires_at").await;
    assert_eq!(number(&conversation_pk, "META", "handle_expires_at").await, handle_expires);
    assert!(handle_expires >= number(&conversation_pk, "META", "expires_at").await);
    assert!(!bridge.conversation(CUSTOMER).await.handle_renewal_due);
}
