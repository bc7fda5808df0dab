//! What a business runs on every day, over the wire (docs/using.md; issue 5 §1, §2, §5): STOP and
//! the other compliance keywords, the bridge's own automated replies, and what an agent's reply
//! becomes as SMS (smart encoding, numbered parts, the segment warning). The deployed SMS and
//! WhatsApp webhook routers and the delivery worker, DynamoDB and SQS on moto, Twilio and the
//! Graph API as HTTP fakes; every request really signed.

#![allow(clippy::unwrap_used)] // a failed unwrap is the test failing

use crate::common;

use bridge_testkit::testing::{AGENTS, CUSTOMER, message_sid, record_agent_reply, twilio_error, whatsapp_text};
use common::{Bridge, copies, readable};
use serde_json::{Value, json};
use shared::domain::JobPayload;
use shared::ports::{DeliveryQueue, Direction};

/// Every number these tests use: none may reach a log line, in any form.
const NUMBERS_IN_LOGS: [&str; 5] = [
    bridge_testkit::testing::KNOWN_NUMBERS[0],
    bridge_testkit::testing::KNOWN_NUMBERS[1],
    bridge_testkit::testing::KNOWN_NUMBERS[2],
    bridge_testkit::testing::KNOWN_NUMBERS[3],
    "+14155550177",
];

/// A second customer of the line, for "never to an opted-out customer".
const OTHER_CUSTOMER: &str = "+14155550177";

/// The note agents read on a copy once the customer opted out.
const OPTED_OUT_NOTE: &str = "Opted out of SMS";

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const DAY_NAMES: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

/// Business hours (UTC) open one minute a week, three days from today: closed now whenever
/// the test runs. Also returns how `{opens}` reads, e.g. "Thursday 12:00".
fn closed_now() -> (Value, String) {
    let today = jiff::tz::TimeZone::UTC.to_datetime(jiff::Timestamp::now()).weekday().to_monday_zero_offset();
    let day = usize::try_from((today + 3) % 7).unwrap();
    let hours =
        json!({ "time_zone": "Etc/UTC", "weekly": [{ "days": [DAYS[day]], "open": "12:00", "close": "12:01" }] });
    (hours, format!("{} 12:00", DAY_NAMES[day]))
}

/// Business hours open around the clock.
fn open_always() -> Value {
    json!({ "time_zone": "Etc/UTC", "weekly": [{ "days": DAYS, "open": "00:00", "close": "24:00" }] })
}

// ---------------------------------------------------------------------------------------------
// §7 compliance keywords

#[tokio::test]
async fn stop_opts_the_customer_out_and_no_reply_of_any_agent_reaches_them() {
    bridge_testkit::testing::logs::capture_logs();
    let bridge = Bridge::start().await;

    // Merely containing "stop" is a message, not a keyword: the agent's answer goes out.
    bridge.customer_texts("please stop texting me").await;
    bridge.run_worker().await;
    assert!(!bridge.opted_out(CUSTOMER).await);
    for agent in AGENTS {
        let copies = copies(&bridge.sent_to(agent).await);
        assert_eq!(copies.len(), 1, "{copies:?}");
        assert!(copies[0].contains("please stop texting me") && !copies[0].contains(OPTED_OUT_NOTE), "{copies:?}");
    }
    let sorry = bridge.copy_for(AGENTS[0], "please stop texting me").await;
    bridge.agent_writes(whatsapp_text(AGENTS[0], "Sorry! Noted.", Some(&sorry))).await;
    bridge.run_worker().await;
    assert_eq!(bridge.sms_to(CUSTOMER).await, ["Sorry! Noted."]);

    // A second reply is queued, then the customer texts STOP before the worker sends it.
    let handle = bridge.conversation(CUSTOMER).await.handle.to_string();
    let queued = bridge
        .agent_writes(whatsapp_text(AGENTS[0], &format!("{handle} One last thing: your refund is on its way."), None))
        .await;
    bridge.customer_texts(" Stop. ").await;
    assert!(bridge.opted_out(CUSTOMER).await, "STOP is recorded with the message, before any delivery");
    let before = bridge.sent_to(AGENTS[0]).await.len();
    bridge.run_worker().await;

    assert_eq!(bridge.sms_to(CUSTOMER).await, ["Sorry! Noted."], "the queued reply was not sent");
    let thread = bridge.thread(CUSTOMER).await;
    let refused = thread.iter().find(|m| m.body == "One last thing: your refund is on its way.").unwrap();
    assert_eq!(refused.legs.len(), 1);
    assert_eq!(refused.legs[0].state, shared::domain::LegState::Failed);
    assert_eq!(refused.legs[0].error.as_ref().unwrap().code, Some(21610));
    assert!(refused.legs[0].provider_id.is_none());

    let to_agent0: Vec<Value> = bridge.sent_to(AGENTS[0]).await.into_iter().skip(before).collect();
    let cross = to_agent0.iter().find(|m| m["type"] == "reaction").expect("a reaction on the refused reply");
    assert_eq!(cross["reaction"]["emoji"], "❌");
    assert_eq!(cross["reaction"]["message_id"], queued.as_str());
    let why = to_agent0.iter().find(|m| m["type"] == "text").expect("the reason, quoting the reply");
    assert_eq!(why["text"]["body"], "not delivered: customer opted out (21610)");
    assert_eq!(why["context"]["message_id"], queued.as_str());
    // Both agents' copies of the STOP say what it did (agent 0 inside their window, agent 1 as the template).
    for agent in AGENTS {
        let copies = copies(&bridge.sent_to(agent).await);
        assert_eq!(copies.len(), 2, "{copies:?}");
        assert!(copies[1].contains("Stop.") && copies[1].contains(OPTED_OUT_NOTE), "{agent}: {copies:?}");
    }

    // Later replies, by swipe-reply or by handle, are refused at the webhook with a notice.
    let stop_copy = bridge.copy_for(AGENTS[1], " Stop. ").await;
    let outbound_before = thread.iter().filter(|m| m.direction == Direction::Outbound).count();
    let attempts = [
        (AGENTS[1], whatsapp_text(AGENTS[1], "Can we call you instead?", Some(&stop_copy))),
        (AGENTS[0], whatsapp_text(AGENTS[0], &format!("{handle} Are you sure?"), None)),
    ];
    for (agent, attempt) in attempts {
        let before = bridge.sent_to(agent).await.len();
        let wamid = bridge.agent_writes(attempt).await;
        bridge.run_worker().await;
        let told: Vec<Value> = bridge.sent_to(agent).await.into_iter().skip(before).collect();
        assert_eq!(told.len(), 1, "one notice, no delivery result: {told:?}");
        let body = told[0]["text"]["body"].as_str().unwrap();
        assert!(body.starts_with("❌ Not sent:") && body.contains(&handle) && body.contains("opted out"), "{body}");
        assert_eq!(told[0]["context"]["message_id"], wamid.as_str());
    }
    assert_eq!(bridge.sms_to(CUSTOMER).await, ["Sorry! Noted."]);
    let outbound_after = bridge.thread(CUSTOMER).await.iter().filter(|m| m.direction == Direction::Outbound).count();
    assert_eq!(outbound_after, outbound_before, "no SMS was recorded for the refused replies");
    bridge_testkit::testing::logs::assert_no_number_logged(&NUMBERS_IN_LOGS);
}

#[tokio::test]
async fn start_after_stop_lets_replies_through_again_and_help_without_help_text_is_silent() {
    bridge_testkit::testing::logs::capture_logs();
    let bridge = Bridge::start().await;
    bridge.customer_texts("Hi, is my bike ready?").await;
    bridge.run_worker().await;
    bridge.customer_texts("STOP").await;
    bridge.run_worker().await;
    assert!(bridge.opted_out(CUSTOMER).await);
    // No help text configured: the bridge stays quiet (Twilio answers HELP itself).
    bridge.customer_texts("help").await;
    bridge.run_worker().await;
    assert!(bridge.opted_out(CUSTOMER).await, "HELP changes nothing");
    assert!(bridge.sms_to(CUSTOMER).await.is_empty());
    let copies_of_help = copies(&bridge.sent_to(AGENTS[1]).await);
    assert!(copies_of_help.last().unwrap().contains("Asked for help"), "{copies_of_help:?}");
    bridge.customer_texts("Start").await;
    bridge.run_worker().await;
    assert!(!bridge.opted_out(CUSTOMER).await);
    for agent in AGENTS {
        let copies = copies(&bridge.sent_to(agent).await);
        assert!(copies.last().unwrap().contains("Opted back in"), "{agent}: {copies:?}");
    }

    let start_copy = bridge.copy_for(AGENTS[0], "Start").await;
    bridge.agent_writes(whatsapp_text(AGENTS[0], "Welcome back! Your bike is ready.", Some(&start_copy))).await;
    bridge.run_worker().await;
    // No confirmations (none configured), no help text: only the agent's reply.
    assert_eq!(bridge.sms_to(CUSTOMER).await, ["Welcome back! Your bike is ready."]);
    assert!(bridge.auto_reply_legs().await.is_empty());
    bridge_testkit::testing::logs::assert_no_number_logged(&NUMBERS_IN_LOGS);
}

#[tokio::test]
async fn configured_confirmations_and_help_text_reach_the_customer_even_opted_out() {
    bridge_testkit::testing::logs::capture_logs();
    let help = "Acme Bikes: we answer texts 9-5. Reply STOP to opt out.";
    let opted_out = "You're unsubscribed from Acme Bikes. Reply START to resubscribe.";
    let opted_in = "Welcome back to Acme Bikes.";
    let bridge = Bridge::with_line(json!({
        "help_text": help,
        "auto_replies": { "opt_out": opted_out, "opt_in": opted_in },
    }))
    .await;

    bridge.customer_texts("stop").await;
    bridge.run_worker().await;
    assert!(bridge.opted_out(CUSTOMER).await);
    assert_eq!(bridge.sms_to(CUSTOMER).await, [opted_out], "the confirmation reaches the opted-out customer");
    bridge.customer_texts(" Info ").await;
    bridge.run_worker().await;
    assert!(bridge.opted_out(CUSTOMER).await);
    assert_eq!(bridge.sms_to(CUSTOMER).await, [opted_out, help], "HELP is answered even when opted out");
    bridge.customer_texts("UNSTOP").await;
    bridge.run_worker().await;
    assert!(!bridge.opted_out(CUSTOMER).await);
    assert_eq!(bridge.sms_to(CUSTOMER).await, [opted_out, help, opted_in]);
    // None of them has a status callback: nobody waits for an automated reply's result.
    assert!(bridge.providers.sms_sent().await.iter().all(|sms| !sms.contains_key("StatusCallback")));
    bridge_testkit::testing::logs::assert_no_number_logged(&NUMBERS_IN_LOGS);
}

#[tokio::test]
async fn twilio_21610_marks_the_opt_out_and_a_later_auto_reply_is_not_sent() {
    bridge_testkit::testing::logs::capture_logs();
    let (hours, _) = closed_now();
    let bridge = Bridge::with_line(json!({
        "business_hours": hours,
        "auto_replies": { "after_hours": "We're closed; we'll answer when we open ({opens})." },
    }))
    .await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(twilio_error(400, 21610))
        .mount(&bridge.providers.twilio)
        .await;

    // The customer texted and agent 0 replied (recorded as the webhooks record them; no
    // automated reply was due on that line then); the reply is sent and Twilio refuses it.
    let job = record_agent_reply(&bridge.aws, CUSTOMER, "Calling you in 5").await;
    let JobPayload::SendSms(reply) = &job.payload else { panic!("{job:?}") };
    let agent_wamid = reply.agent_wamid.as_str().to_owned();
    bridge.aws.queue().enqueue(std::slice::from_ref(&job)).await.unwrap();
    bridge.run_worker().await;

    assert_eq!(bridge.sms_to(CUSTOMER).await, ["Calling you in 5"], "one attempt");
    assert!(bridge.opted_out(CUSTOMER).await, "21610 marks the opt-out");
    let thread = bridge.thread(CUSTOMER).await;
    let leg = &thread.iter().find(|m| m.direction == Direction::Outbound).unwrap().legs[0];
    assert_eq!((leg.state, leg.error.as_ref().unwrap().code), (shared::domain::LegState::Failed, Some(21610)));
    let told = bridge.sent_to(AGENTS[0]).await;
    assert_eq!(told.len(), 2, "{told:?}");
    assert_eq!(
        (&told[0]["reaction"]["emoji"], &told[0]["reaction"]["message_id"]),
        (&json!("❌"), &json!(agent_wamid))
    );
    assert_eq!(told[1]["text"]["body"], "not delivered: customer opted out (21610)");

    // The customer writes again after hours: the after-hours reply is due (never sent to
    // them before) but they are opted out, so it is not sent; the agents are told.
    bridge.customer_texts("Hello? Did you call?").await;
    bridge.run_worker().await;
    assert_eq!(bridge.providers.sms_sent().await.len(), 1, "no second request to Twilio");
    assert_eq!(bridge.auto_reply_legs().await, [(CUSTOMER.to_owned(), "failed".to_owned(), Some("21610".to_owned()))]);
    for agent in AGENTS {
        let copies = copies(&bridge.sent_to(agent).await);
        assert!(
            copies.iter().any(|c| c.contains("Hello? Did you call?") && c.contains(OPTED_OUT_NOTE)),
            "{agent}: {copies:?}"
        );
    }
    bridge_testkit::testing::logs::assert_no_number_logged(&NUMBERS_IN_LOGS);
}

// ---------------------------------------------------------------------------------------------
// §7 automated replies

#[tokio::test]
async fn the_first_contact_acknowledgement_goes_once_and_not_again_on_a_replay() {
    bridge_testkit::testing::logs::capture_logs();
    let ack = "Thanks for texting Acme Bikes! Someone will answer shortly.";
    let bridge = Bridge::with_line(json!({
        "business_hours": open_always(),
        "auto_replies": { "first_contact": ack, "after_hours": "We're closed until {opens}." },
    }))
    .await;
    let first = message_sid();
    bridge.sms_from(CUSTOMER, &first, "Hi! Do you fix e-bikes?").await;
    bridge.run_worker().await;
    assert_eq!(bridge.sms_to(CUSTOMER).await, [ack]);

    // Twilio replays the first webhook, and the customer writes again: no second ack.
    bridge.sms_from(CUSTOMER, &first, "Hi! Do you fix e-bikes?").await;
    bridge.run_worker().await;
    bridge.customer_texts("Mine is a 2021 model").await;
    bridge.run_worker().await;
    assert_eq!(bridge.sms_to(CUSTOMER).await, [ack], "open now: no after-hours reply either");
    assert_eq!(bridge.auto_reply_legs().await, [(CUSTOMER.to_owned(), "sent".to_owned(), None)]);
    bridge_testkit::testing::logs::assert_no_number_logged(&NUMBERS_IN_LOGS);
}

#[tokio::test]
async fn the_thread_shows_no_copy_left_queued_once_an_automated_reply_went_out() {
    bridge_testkit::testing::logs::capture_logs();
    let bridge =
        Bridge::with_line(json!({ "auto_replies": { "first_contact": "Thanks for texting Acme Bikes!" } })).await;
    bridge.customer_texts("Hi! Do you fix e-bikes?").await;
    bridge.run_worker().await;
    assert_eq!(bridge.sms_to(CUSTOMER).await, ["Thanks for texting Acme Bikes!"]);
    assert_eq!(bridge.auto_reply_legs().await, [(CUSTOMER.to_owned(), "sent".to_owned(), None)]);
    // What `bridge-ops thread` prints: every leg of the customer's message, each finished.
    for message in bridge.thread(CUSTOMER).await {
        for leg in &message.legs {
            assert_eq!(
                leg.state,
                shared::domain::LegState::Sent,
                "{} leg {} of {:?} (to {}) stays {} although the worker is idle",
                leg.kind,
                leg.job_id,
                message.body,
                leg.to,
                leg.state.as_str()
            );
        }
    }
    bridge_testkit::testing::logs::assert_no_number_logged(&NUMBERS_IN_LOGS);
}

#[tokio::test]
async fn the_after_hours_reply_goes_once_per_closed_period_and_never_to_an_opted_out_customer() {
    bridge_testkit::testing::logs::capture_logs();
    let (hours, opens) = closed_now();
    let bridge = Bridge::with_line(json!({
        "business_hours": hours,
        "auto_replies": {
            "after_hours": "Thanks! We're closed now and back {opens}.",
            "first_contact": "Thanks for texting Acme Bikes!",
        },
    }))
    .await;
    bridge.customer_texts("Are you open?").await;
    bridge.run_worker().await;
    bridge.customer_texts("Hello??").await;
    bridge.run_worker().await;
    // One automated reply per message, the after-hours one first; once per closed period.
    assert_eq!(bridge.sms_to(CUSTOMER).await, [format!("Thanks! We're closed now and back {opens}.")]);
    // The agents still get the texts.
    for agent in AGENTS {
        let copies = copies(&bridge.sent_to(agent).await).join("\n");
        assert!(copies.contains("Are you open?") && copies.contains("Hello??"), "{agent}: {copies}");
    }

    bridge.sms_from(OTHER_CUSTOMER, &message_sid(), "STOP").await;
    bridge.run_worker().await;
    bridge.sms_from(OTHER_CUSTOMER, &message_sid(), "Actually, when do you open?").await;
    bridge.run_worker().await;
    assert!(bridge.sms_to(OTHER_CUSTOMER).await.is_empty(), "nothing to the opted-out customer");
    let mut legs = bridge.auto_reply_legs().await;
    legs.sort();
    assert_eq!(
        legs,
        [
            (CUSTOMER.to_owned(), "sent".to_owned(), None),
            (OTHER_CUSTOMER.to_owned(), "failed".to_owned(), Some("21610".to_owned())),
        ]
    );
    bridge_testkit::testing::logs::assert_no_number_logged(&NUMBERS_IN_LOGS);
}

#[tokio::test]
async fn a_line_without_agents_answers_once_per_window_and_never_an_opted_out_customer() {
    bridge_testkit::testing::logs::capture_logs();
    let nobody = "Nobody is answering this number yet. Please call 415-555-0100.";
    let bridge = Bridge::with_line(json!({
        "agents": [],
        "auto_replies": { "no_agent": nobody, "first_contact": "Thanks for texting!", "window_hours": 720 },
    }))
    .await;
    let first = message_sid();
    bridge.sms_from(CUSTOMER, &first, "Hi").await;
    bridge.run_worker().await;
    bridge.sms_from(CUSTOMER, &first, "Hi").await;
    bridge.run_worker().await;
    bridge.customer_texts("Anyone there?").await;
    bridge.run_worker().await;
    assert_eq!(bridge.sms_to(CUSTOMER).await, [nobody]);

    bridge.sms_from(OTHER_CUSTOMER, &message_sid(), "Quit").await;
    bridge.run_worker().await;
    bridge.sms_from(OTHER_CUSTOMER, &message_sid(), "ok so who reads these").await;
    bridge.run_worker().await;
    assert!(bridge.sms_to(OTHER_CUSTOMER).await.is_empty(), "nothing to the opted-out customer");
    assert!(bridge.opted_out(OTHER_CUSTOMER).await);
    assert!(bridge.providers.whatsapp_sent().await.is_empty(), "no agents, no copies");
    bridge_testkit::testing::logs::assert_no_number_logged(&NUMBERS_IN_LOGS);
}

// ---------------------------------------------------------------------------------------------
// §6 SMS text quality

/// The customer texts, agent 0 swipe-replies `reply`; returns the reply's wamid.
async fn agent_answers(bridge: &Bridge, reply: &str) -> String {
    if bridge.thread(CUSTOMER).await.is_empty() {
        bridge.customer_texts("Hi").await;
        bridge.run_worker().await;
    }
    let copy = bridge.copy_for(AGENTS[0], "Hi").await;
    let wamid = bridge.agent_writes(whatsapp_text(AGENTS[0], reply, Some(&copy))).await;
    bridge.run_worker().await;
    wamid
}

/// The bridge's notices to agent 0 quoting `wamid`.
async fn notices_about(bridge: &Bridge, wamid: &str) -> Vec<String> {
    bridge
        .sent_to(AGENTS[0])
        .await
        .iter()
        .filter(|m| m["type"] == "text" && m["context"]["message_id"] == wamid)
        .map(readable)
        .collect()
}

#[tokio::test]
async fn smart_encoding_sends_typographic_punctuation_as_gsm7() {
    bridge_testkit::testing::logs::capture_logs();
    let bridge = Bridge::start().await;
    agent_answers(&bridge, "\u{201c}Your order\u{2019}s ready\u{201d} \u{2014} pick it up at 5\u{2026} thanks!").await;
    assert_eq!(bridge.sms_to(CUSTOMER).await, ["\"Your order's ready\" - pick it up at 5... thanks!"]);
    bridge_testkit::testing::logs::assert_no_number_logged(&NUMBERS_IN_LOGS);
}

#[tokio::test]
async fn without_smart_encoding_the_reply_goes_as_typed() {
    bridge_testkit::testing::logs::capture_logs();
    let bridge = Bridge::with_line(json!({ "smart_encoding": false })).await;
    let typed = "\u{201c}Your order\u{2019}s ready\u{201d} \u{2014} pick it up at 5\u{2026} thanks!";
    agent_answers(&bridge, typed).await;
    assert_eq!(bridge.sms_to(CUSTOMER).await, [typed]);
    bridge_testkit::testing::logs::assert_no_number_logged(&NUMBERS_IN_LOGS);
}

#[tokio::test]
async fn a_reply_over_1600_characters_goes_in_numbered_parts_in_order_and_the_agent_learns_its_cost() {
    bridge_testkit::testing::logs::capture_logs();
    let bridge = Bridge::start().await;
    let long: String = (0..440).map(|i| format!("word{i:03}")).collect::<Vec<_>>().join(" ");
    assert!((3500..3600).contains(&long.len()));
    let wamid = agent_answers(&bridge, &long).await;

    let parts = bridge.sms_to(CUSTOMER).await;
    assert_eq!(parts.len(), 3, "{parts:?}");
    let mut bodies = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        assert!(part.chars().count() <= 1600, "part {} has {} characters", i + 1, part.chars().count());
        bodies.push(part.strip_prefix(&format!("({}/3) ", i + 1)).unwrap_or_else(|| panic!("part {i}: {part:.20}")));
    }
    assert_eq!(bodies.join(" "), long, "cut between words, nothing lost, in order");

    // GSM-7 only: ceil(units / 153) segments per part.
    let segments: usize = parts.iter().map(|p| p.chars().count().div_ceil(153)).sum();
    let notices = notices_about(&bridge, &wamid).await;
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(notices[0].contains(&format!("costs {segments} SMS segments")), "{}", notices[0]);
    assert!(notices[0].contains("3 numbered messages") && !notices[0].contains("Unicode"), "{}", notices[0]);
    bridge_testkit::testing::logs::assert_no_number_logged(&NUMBERS_IN_LOGS);
}

#[tokio::test]
async fn the_segment_warning_comes_above_the_threshold_and_names_the_unicode_character() {
    bridge_testkit::testing::logs::capture_logs();
    let bridge = Bridge::start().await;
    // Three GSM-7 segments: at the default threshold (3), no notice.
    let three = "x".repeat(400);
    let quiet = agent_answers(&bridge, &three).await;
    assert!(notices_about(&bridge, &quiet).await.is_empty());

    // One emoji makes it UCS-2: 228 UTF-16 units are four segments of 67.
    let emoji =
        format!("Thanks for your order \u{1f64f} {}", "we will ship it tomorrow morning. ".repeat(6).trim_end());
    assert_eq!(emoji.encode_utf16().count(), 228);
    let costly = agent_answers(&bridge, &emoji).await;
    assert_eq!(bridge.sms_to(CUSTOMER).await, [three, emoji], "sent anyway, as typed");
    let notices = notices_about(&bridge, &costly).await;
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(notices[0].contains("costs 4 SMS segments"), "{}", notices[0]);
    assert!(notices[0].contains("Unicode") && notices[0].contains('\u{1f64f}'), "{}", notices[0]);
    bridge_testkit::testing::logs::assert_no_number_logged(&NUMBERS_IN_LOGS);
}
