//! Change the team without a redeploy (issue 19, item 8; docs/operating.md): with the lines in
//! an SSM parameter, `bridge-ops lines put` writes a new team and the running functions (the
//! same handler instances, no restart) pick it up at their next reading: a new agent's
//! reply is relayed, a removed agent's message is refused as a stranger's, and what was
//! queued for or by them before the change doesn't reach anyone.

use std::time::Duration;

use bridge_testkit::testing::{AGENTS, CUSTOMER, KNOWN_NUMBERS, lines_json, logs, whatsapp_text};
use shared::domain::LegState;
use shared::ports::Direction;

use crate::common::Bridge;

const NEWCOMER: &str = "14155550177";
/// The refresh interval the functions run with here (deployed: 60 s).
const REFRESH_SECONDS: u32 = 1;

/// The test lines with `agents` as the line's team, as a file an operator edits.
fn team_file(agents: &[&str]) -> std::path::PathBuf {
    let mut lines: serde_json::Value = serde_json::from_str(&lines_json()).unwrap();
    lines[0]["agents"] = serde_json::json!(agents);
    let path = std::env::temp_dir().join(format!("team-{}.json", uuid_like()));
    std::fs::write(&path, serde_json::to_string_pretty(&lines).unwrap()).unwrap();
    path
}

fn uuid_like() -> String {
    format!("{:016x}", fastrand::u64(..))
}

/// `bridge-ops lines put FILE`, then the wait for the functions' next reading.
async fn put_team(bridge: &Bridge, parameter: &str, agents: &[&str]) -> String {
    let ssm = aws_sdk_ssm::Client::new(&bridge.aws.sdk_config().await);
    let file = team_file(agents);
    let printed = bridge_ops::lines::put(&ssm, parameter, &file).await.unwrap();
    std::fs::remove_file(file).unwrap();
    tokio::time::sleep(Duration::from_millis(u64::from(REFRESH_SECONDS) * 1000 + 100)).await;
    printed
}

#[tokio::test]
async fn an_agent_added_is_relayed_and_one_removed_is_refused_without_a_restart() {
    logs::capture_logs();
    let (bridge, parameter) = Bridge::with_lines_parameter(lines_json(), REFRESH_SECONDS).await;
    bridge.customer_texts("Is anyone there?").await;
    bridge.run_worker().await;
    let handle = bridge.conversation(CUSTOMER).await.handle.as_str().to_owned();
    let agents_reply = |agent: &str, text: &str| whatsapp_text(agent, &format!("#{handle} {text}"), None);

    // Tomorrow's agent writes before they are on the line: a stranger, nothing relayed.
    bridge.agent_writes(agents_reply(NEWCOMER, "Hi, I'm new")).await;
    bridge.run_worker().await;
    assert_eq!(bridge.sms_to(CUSTOMER).await, Vec::<String>::new());
    let told = bridge.sent_to(NEWCOMER).await;
    assert_eq!(told.len(), 1, "the stranger's one polite reply: {told:?}");

    // The operator adds them; the functions pick it up, no restart.
    let printed = put_team(&bridge, &parameter, &[AGENTS[0], AGENTS[1], NEWCOMER]).await;
    assert!(printed.contains("3 agents") && printed.contains("version 2"), "{printed}");
    assert!(KNOWN_NUMBERS.iter().chain([&NEWCOMER]).all(|n| !printed.contains(n.trim_start_matches('+'))), "{printed}");
    bridge.agent_writes(agents_reply(NEWCOMER, "Yes, how can I help?")).await;
    bridge.run_worker().await;
    assert_eq!(bridge.sms_to(CUSTOMER).await, ["Yes, how can I help?"], "the new agent is relayed");
    bridge.customer_texts("My order is late").await;
    bridge.run_worker().await;
    assert_eq!(bridge.sent_to(NEWCOMER).await.len(), 2, "and gets the customer's next text");

    // Agent 1 leaves. A copy for them and a reply of theirs are queued when the team changes.
    bridge.customer_texts("Hello again").await;
    bridge.agent_writes(agents_reply(AGENTS[1], "One last thing")).await;
    let copies_before = bridge.sent_to(AGENTS[1]).await.len();
    put_team(&bridge, &parameter, &[AGENTS[0], NEWCOMER]).await;
    bridge.run_worker().await;
    let after = bridge.sent_to(AGENTS[1]).await;
    assert_eq!(after.len(), copies_before, "no copy reaches a former agent: {:?}", &after[copies_before..]);
    assert_eq!(bridge.sent_to(NEWCOMER).await.len(), 3, "the others still get theirs");
    // Their message now: refused as a stranger's.
    bridge.agent_writes(agents_reply(AGENTS[1], "Are you still getting this?")).await;
    bridge.run_worker().await;
    assert_eq!(
        bridge.sms_to(CUSTOMER).await,
        ["Yes, how can I help?"],
        "neither the queued reply nor the new message reaches the customer"
    );
    let told = bridge.sent_to(AGENTS[1]).await;
    assert_eq!(told.len(), copies_before + 1, "told once that they aren't an agent: {told:?}");

    // The legs say why (what `bridge-ops thread` prints).
    let thread = bridge.thread(CUSTOMER).await;
    let hello = thread.iter().find(|m| m.direction == Direction::Inbound && m.body == "Hello again").unwrap();
    let refused = |leg: &shared::ports::ThreadLeg| {
        leg.state == LegState::Failed && leg.error.as_ref().is_some_and(|e| e.reason.contains("no longer on the line"))
    };
    let refused_copies: Vec<&str> = hello.legs.iter().filter(|leg| refused(leg)).map(|leg| leg.to.as_str()).collect();
    assert_eq!(refused_copies, [AGENTS[1]], "{:?}", hello.legs);
    let last_words = thread.iter().find(|m| m.body == "One last thing").unwrap();
    assert!(!last_words.legs.is_empty() && last_words.legs.iter().all(refused), "{:?}", last_words.legs);
    logs::assert_no_number_logged(&[CUSTOMER, AGENTS[0], AGENTS[1], NEWCOMER]);
}

#[tokio::test]
async fn a_bad_team_file_is_refused_naming_the_field_and_the_parameter_is_unchanged() {
    let (bridge, parameter) = Bridge::with_lines_parameter(lines_json(), REFRESH_SECONDS).await;
    let ssm = aws_sdk_ssm::Client::new(&bridge.aws.sdk_config().await);
    let file = std::env::temp_dir().join(format!("team-{}.json", uuid_like()));
    std::fs::write(&file, lines_json().replace(&format!("\"{}\"", AGENTS[1]), "\"+1 415 555 0112\"")).unwrap();
    let error = bridge_ops::lines::put(&ssm, &parameter, &file).await.unwrap_err();
    std::fs::remove_file(&file).unwrap();
    assert!(error.contains("[0].agents[1]"), "{error}");
    assert!(!error.contains("555 0112"), "no number in the error: {error}");
    let stored = ssm.get_parameter().name(&parameter).with_decryption(true).send().await.unwrap();
    let stored = stored.parameter.unwrap();
    assert_eq!((stored.version, stored.value.as_deref()), (1, Some(lines_json().as_str())));

    // A good one is written as the next version, kept a SecureString; the functions read it.
    put_team(&bridge, &parameter, &[NEWCOMER]).await;
    let stored = ssm.get_parameter().name(&parameter).with_decryption(true).send().await.unwrap().parameter.unwrap();
    assert_eq!(stored.version, 2);
    assert_eq!(stored.r#type, Some(aws_sdk_ssm::types::ParameterType::SecureString));
    let lines = shared::domain::Lines::from_json("stored", stored.value.as_deref().unwrap()).unwrap();
    assert_eq!(lines.iter().next().unwrap().agents.iter().map(|a| a.as_str()).collect::<Vec<_>>(), [NEWCOMER]);
}
