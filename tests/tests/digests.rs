//! A busy line under WhatsApp's pair limit, over the wire (docs/using.md, "A busy line:
//! digests"): the Graph fake refuses a second message to an agent within the pair spacing
//! with 131056, as Meta does. Customers text at once and an agent writes a command; every
//! copy reaches every agent, the later ones in digests, the command's answer (a notice) takes
//! its agent's pair slot, and WhatsApp refuses nothing. A swipe-reply to a digest asks which
//! conversation; one that names it by its handle is texted to that customer. The bridge
//! spaces an agent's messages 2 s apart here (WhatsApp: 6 s) and the fake refuses under
//! 1.5 s: the slack is the time a send takes to leave after its slot, longer on a loaded
//! CI machine than in life.

use std::time::Duration;

use bridge_testkit::testing::{AGENTS, attr_s, whatsapp_text};
use serde_json::Value;
use shared::domain::{LegState, LineId, WaId};
use shared::ports::Direction;

use crate::common::Bridge;

/// What the Graph fake enforces; the bridge spaces by `PAIR_SECONDS`.
const SPACING: Duration = Duration::from_millis(1_500);
const PAIR_SECONDS: &str = "2";
const CUSTOMERS: [&str; 6] =
    ["+14155550141", "+14155550142", "+14155550143", "+14155550144", "+14155550145", "+14155550146"];

fn body(message: &Value) -> String {
    let text = message["text"]["body"].as_str();
    let interactive = message["interactive"]["body"]["text"].as_str();
    text.or(interactive).unwrap_or_default().to_owned()
}

#[tokio::test]
async fn customers_texting_at_once_reach_every_agent_in_digests_and_whatsapp_refuses_nothing() {
    bridge_testkit::testing::logs::capture_logs();
    let bridge = Bridge::with_env(&[("WHATSAPP_PAIR_SECONDS", PAIR_SECONDS)]).await;
    let pair_limit = bridge.providers.graph_keeps_pair_limit(SPACING).await;
    let line = LineId::parse("main").unwrap();
    for agent in AGENTS {
        let at = jiff::Timestamp::now() - jiff::SignedDuration::from_mins(5);
        bridge.aws.store().record_agent_inbound(&line, &WaId::parse(agent).unwrap(), at).await.unwrap();
    }
    for (i, customer) in CUSTOMERS.iter().enumerate() {
        bridge
            .sms_from(customer, &bridge_testkit::testing::message_sid(), &format!("Question {i} from a busy day"))
            .await;
    }
    // An agent's command meanwhile: its answer, a notice, takes the agent's next pair slot.
    bridge.agent_writes(whatsapp_text(AGENTS[0], "/help", None)).await;
    let ran =
        tokio::time::timeout(Duration::from_secs(60), bridge.run_worker_until_idle(Duration::from_secs(90))).await;
    if ran.is_err() {
        for line in
            bridge_testkit::testing::logs::logged_lines().iter().filter(|l| l.contains("outcome") || l.contains("WARN"))
        {
            eprintln!("{line}");
        }
        panic!("refused {}", pair_limit.refused());
    }

    assert_eq!(pair_limit.refused(), 0, "no send past WhatsApp's pair limit");
    for agent in AGENTS {
        let to_agent: Vec<Value> = bridge
            .sent_to(agent)
            .await
            .into_iter()
            .filter(|m| m["type"] == "text" || m["type"] == "interactive")
            .collect();
        let bodies: Vec<String> = to_agent.iter().map(body).collect();
        for i in 0..CUSTOMERS.len() {
            let copies = bodies.iter().filter(|b| b.contains(&format!("Question {i} from"))).count();
            assert_eq!(copies, 1, "customer {i}'s text reached agent {agent} once: {bodies:#?}");
        }
        assert!(bodies.iter().any(|b| b.starts_with("📥")), "some came as a digest: {bodies:#?}");
        let answers = bodies.iter().filter(|b| b.contains("/list – open conversations")).count();
        assert_eq!(answers, usize::from(agent == AGENTS[0]), "the /help answer, to its agent only, once");
        assert!(to_agent.len() < CUSTOMERS.len() + answers, "fewer messages than texts: {}", to_agent.len());
    }
    for customer in CUSTOMERS {
        let thread = bridge.thread(customer).await;
        let legs: Vec<LegState> = thread.iter().flat_map(|m| m.legs.iter().map(|l| l.state)).collect();
        assert!(legs.iter().all(|s| *s == LegState::Sent), "{customer}: {legs:?}");
    }
    let numbers: Vec<&str> = CUSTOMERS.iter().chain(AGENTS.iter()).copied().collect();
    bridge_testkit::testing::logs::assert_no_number_logged(&numbers);
}

#[tokio::test]
async fn a_swipe_reply_to_a_digest_asks_which_conversation_and_a_handle_answers_it() {
    bridge_testkit::testing::logs::capture_logs();
    let bridge = Bridge::with_env(&[("WHATSAPP_PAIR_SECONDS", PAIR_SECONDS)]).await;
    bridge.providers.graph_keeps_pair_limit(SPACING).await;
    let line = LineId::parse("main").unwrap();
    let at = jiff::Timestamp::now() - jiff::SignedDuration::from_mins(5);
    bridge.aws.store().record_agent_inbound(&line, &WaId::parse(AGENTS[0]).unwrap(), at).await.unwrap();
    for (i, customer) in CUSTOMERS[..3].iter().enumerate() {
        bridge.sms_from(customer, &bridge_testkit::testing::message_sid(), &format!("Hello {i}")).await;
    }
    bridge.run_worker_until_idle(Duration::from_secs(60)).await;
    // The digest's wamid: its routing record lists its parts.
    let routes = bridge.aws.items_with_prefix("WAMID#").await;
    let sent0: Vec<String> = bridge.sent_to(AGENTS[0]).await.iter().map(body).collect();
    let route = routes.iter().find(|item| item.contains_key("digest"));
    if route.is_none() {
        for line in bridge_testkit::testing::logs::logged_lines().iter().filter(|l| l.contains("outcome")) {
            eprintln!("{}", &line[..line.len().min(400)]);
        }
    }
    let route = route.unwrap_or_else(|| panic!("no digest's routing record: {} routes, sent {sent0:#?}", routes.len()));
    let digest_wamid = attr_s(route, "PK").trim_start_matches("WAMID#").to_owned();
    let digest_body =
        bridge.sent_to(AGENTS[0]).await.iter().map(body).find(|b| b.starts_with("📥")).expect("a digest to agent 0");
    // A customer the digest carries (the copies that came first may have gone plain).
    let mut named = None;
    for customer in &CUSTOMERS[..3] {
        let handle = bridge.conversation(customer).await.handle;
        if digest_body.contains(&format!("{handle} · ")) {
            named = Some((*customer, handle));
        }
    }
    let (named_customer, second) = named.unwrap_or_else(|| panic!("the digest names its customers: {digest_body}"));

    let before = bridge.providers.sms_sent().await.len();
    bridge.agent_writes(whatsapp_text(AGENTS[0], "See you at 5", Some(&digest_wamid))).await;
    bridge.run_worker_until_idle(Duration::from_secs(30)).await;
    let asked = bridge.sent_to(AGENTS[0]).await.last().cloned().unwrap();
    assert_eq!(asked["type"], "interactive", "the which-conversation list: {asked}");
    assert_eq!(bridge.providers.sms_sent().await.len(), before, "nothing texted to any customer yet");

    bridge.agent_writes(whatsapp_text(AGENTS[0], &format!("{second} See you at 5"), Some(&digest_wamid))).await;
    bridge.run_worker_until_idle(Duration::from_secs(30)).await;
    let thread = bridge.thread(named_customer).await;
    let reply = thread.iter().find(|m| m.direction == Direction::Outbound).expect("a reply to the named customer");
    assert_eq!(reply.body, "See you at 5");
    assert_eq!(reply.legs[0].state, LegState::Sent);
}
