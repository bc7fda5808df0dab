//! The lines in force (`shared::app::live_lines`) over the parameter's in-memory twin: a
//! stale reading is read again, a bad document or a failed read keeps the last good lines
//! and waits a whole interval, and a slow read is cut off.

use std::time::{Duration, Instant};

use bridge_testkit::memory::MemoryLinesParameter;
use bridge_testkit::testing::{AGENTS, lines, lines_json, logs};
use shared::app::live_lines::LiveLines;
use shared::domain::WaId;

const EVERY: Duration = Duration::from_secs(60);
const NEWCOMER: &str = "14155550177";

/// The test lines with `agents` as the line's agents.
fn lines_with_agents(agents: &[&str]) -> String {
    let mut lines: serde_json::Value = serde_json::from_str(&lines_json()).unwrap();
    lines[0]["agents"] = serde_json::json!(agents);
    lines.to_string()
}

fn agents_in_force(lines: &shared::domain::Lines) -> Vec<String> {
    lines.iter().next().unwrap().agents.iter().map(|a| a.as_str().to_owned()).collect()
}

fn has_agent(lines: &shared::domain::Lines, agent: &str) -> bool {
    lines.iter().next().unwrap().agents.contains(&WaId::parse(agent).unwrap())
}

/// Lines read at `t0` from a parameter holding them as version 1.
fn started_at(t0: Instant) -> (LiveLines, MemoryLinesParameter) {
    let parameter = MemoryLinesParameter::holding(&lines_json());
    (LiveLines::from_parameter_at(lines(), parameter.clone(), EVERY, t0), parameter)
}

#[tokio::test]
async fn lines_given_in_the_environment_are_never_read_again() {
    let fixed = LiveLines::fixed(lines());
    assert!(!fixed.refreshes());
    let later = Instant::now() + Duration::from_secs(24 * 3600);
    assert_eq!(*fixed.current_at(later).await, lines());
}

#[tokio::test]
async fn a_change_is_in_force_once_the_reading_is_an_interval_old_and_not_before() {
    let t0 = Instant::now();
    let (live, parameter) = started_at(t0);
    parameter.put(&lines_with_agents(&[AGENTS[0], AGENTS[1], NEWCOMER]));

    let early = live.current_at(t0 + EVERY - Duration::from_secs(1)).await;
    assert!(!has_agent(&early, NEWCOMER), "within the interval, the lines read at cold start");
    assert_eq!(parameter.reads(), 0, "no SSM call while the reading is fresh");

    let due = live.current_at(t0 + EVERY).await;
    assert!(has_agent(&due, NEWCOMER), "read again when due, and the new agent is in force at once");
    assert_eq!((parameter.reads(), live.version()), (1, Some(2)));

    // The agent leaves: in force one interval after the last reading.
    parameter.put(&lines_with_agents(&[AGENTS[0], NEWCOMER]));
    assert_eq!(agents_in_force(&*live.current_at(t0 + EVERY * 2 - Duration::from_millis(1)).await).len(), 3);
    assert_eq!(agents_in_force(&*live.current_at(t0 + EVERY * 2).await), [AGENTS[0], NEWCOMER]);
    assert_eq!(parameter.reads(), 2);
}

#[tokio::test]
async fn the_cold_starts_lines_read_again_unchanged_are_kept_with_their_version() {
    let t0 = Instant::now();
    let (live, parameter) = started_at(t0);
    assert_eq!(live.version(), None, "GetParameters at cold start isn't asked the version");
    assert_eq!(*live.current_at(t0 + EVERY).await, lines());
    assert_eq!((parameter.reads(), live.version()), (1, Some(1)));
}

#[tokio::test]
async fn a_bad_document_is_kept_out_and_logged_without_its_numbers() {
    logs::capture_logs();
    let t0 = Instant::now();
    let (live, parameter) = started_at(t0);
    // An agent's number written as a JSON number: serde's error quotes it.
    let bad = lines_json().replace(&format!("\"{}\"", AGENTS[1]), AGENTS[1]);
    let bad_version = parameter.put(&bad);

    assert_eq!(*live.current_at(t0 + EVERY).await, lines(), "the last good lines stay in force");
    assert_eq!(live.version(), None, "the bad version isn't the one in force");
    assert_eq!(*live.current_at(t0 + EVERY + Duration::from_secs(30)).await, lines());
    assert_eq!(parameter.reads(), 1, "tried again only an interval later");
    assert_eq!(*live.current_at(t0 + EVERY * 2).await, lines());
    assert_eq!(parameter.reads(), 2, "still bad: still kept out");

    let refused: Vec<String> = logs::logged_lines()
        .into_iter()
        .filter(|line| line.contains("lines_kept") && line.contains(&format!("\"version\":{bad_version}")))
        .collect();
    assert!(!refused.is_empty(), "the refusal is logged");
    assert!(refused.iter().all(|line| line.contains("BRIDGE_LINES_PARAM[0].agents[1]")), "{refused:?}");
    logs::assert_no_number_logged(&[AGENTS[1]]);

    // Fixed: in force at the next reading.
    parameter.put(&lines_with_agents(&[AGENTS[0], NEWCOMER]));
    assert_eq!(agents_in_force(&*live.current_at(t0 + EVERY * 3).await), [AGENTS[0], NEWCOMER]);
}

#[tokio::test]
async fn a_failed_read_keeps_the_last_good_lines_and_waits_a_whole_interval() {
    let t0 = Instant::now();
    let (live, parameter) = started_at(t0);
    parameter.put(&lines_with_agents(&[AGENTS[0], NEWCOMER]));
    parameter.fail_reads(true);

    assert_eq!(*live.current_at(t0 + EVERY).await, lines());
    for second in 1..60 {
        assert_eq!(*live.current_at(t0 + EVERY + Duration::from_secs(second)).await, lines());
    }
    assert_eq!(parameter.reads(), 1, "no call storm while SSM fails: one read per interval");

    parameter.fail_reads(false);
    assert_eq!(agents_in_force(&*live.current_at(t0 + EVERY * 2).await), [AGENTS[0], NEWCOMER]);
    assert_eq!(parameter.reads(), 2);
}

#[tokio::test]
async fn a_slow_read_is_cut_off_and_the_lines_in_force_answer() {
    let t0 = Instant::now();
    let parameter = MemoryLinesParameter::holding(&lines_with_agents(&[NEWCOMER]));
    let live = LiveLines::from_parameter_at(lines(), parameter.clone(), EVERY, t0)
        .with_read_timeout(Duration::from_millis(50));
    parameter.hang_reads(Some(Duration::from_secs(30)));
    let asked = Instant::now();
    assert_eq!(*live.current_at(t0 + EVERY).await, lines());
    assert!(asked.elapsed() < Duration::from_secs(5), "waited {:?}", asked.elapsed());
}

#[tokio::test]
async fn requests_while_a_read_is_under_way_wait_for_it_and_one_read_serves_them_all() {
    let t0 = Instant::now();
    let (live, parameter) = started_at(t0);
    parameter.put(&lines_with_agents(&[AGENTS[0], NEWCOMER]));
    parameter.hang_reads(Some(Duration::from_millis(200)));
    let due = t0 + EVERY;
    let a_moment_later = || async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        live.current_at(due).await
    };
    let (reader, second, third) = tokio::join!(live.current_at(due), a_moment_later(), a_moment_later());
    assert_eq!(parameter.reads(), 1, "one reading, however many requests");
    assert!(has_agent(&reader, NEWCOMER), "the request that read acts on what it read");
    assert!(has_agent(&second, NEWCOMER) && has_agent(&third, NEWCOMER), "none acts on the team replaced");
}
