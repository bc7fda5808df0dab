//! `Outbox`: every write that records jobs keeps them until the sweep clears them. Entries
//! aren't per line, so these cases run on a store of their own.

use jiff::Timestamp;
use shared::domain::{DeliveryStatus, Job};
use shared::ports::{AgentEffect, ConversationStore, NonAgentOutcome, Outbox, OutboxEntry, StatusChange};

use super::fixture::*;

/// Three entries recorded `base` + 10 s, 20 s and 30 s (in another order), one notice each.
async fn three_entries<S: ConversationStore + Outbox>(store: &S, case: &Case, base: Timestamp) -> [Job; 3] {
    let notices = [10, 20, 30].map(|n| case.notice(&agent(0), &format!("recorded at +{n} s")));
    for (n, notice) in [(20, &notices[1]), (10, &notices[0]), (30, &notices[2])] {
        let record = case.agent_message(&agent(1), base + secs(n), AgentEffect::Nothing, vec![notice.clone()]);
        store.record_agent_message(&record).await.unwrap();
    }
    notices
}

fn jobs(entries: &[OutboxEntry]) -> Vec<Vec<Job>> {
    entries.iter().map(|entry| entry.jobs.clone()).collect()
}

pub async fn due_entries_are_those_recorded_before_the_cutoff_oldest_first_up_to_the_limit<
    S: ConversationStore + Outbox,
>(
    store: &S,
) {
    let case = Case::new("outbox-due");
    let base = t0() - secs(3600);
    let [a, b, c] = three_entries(store, &case, base).await;

    // Recorded at the cutoff itself isn't before it.
    let due = store.due_outbox(base + secs(30), 10).await.unwrap();
    assert_eq!(jobs(&due), [vec![a.clone()], vec![b.clone()]]);
    assert_eq!(jobs(&store.due_outbox(base + secs(31), 10).await.unwrap()), [vec![a.clone()], vec![b], vec![c]]);
    assert_eq!(jobs(&store.due_outbox(base + secs(31), 1).await.unwrap()), [vec![a]]);
    assert_eq!(store.due_outbox(base + secs(10), 10).await.unwrap(), vec![]);
    let all = store.due_outbox(base + secs(31), 10).await.unwrap();
    assert!(all[0].id != all[1].id && all[1].id != all[2].id && all[0].id != all[2].id);
}

pub async fn cleared_entries_are_not_offered_again<S: ConversationStore + Outbox>(store: &S) {
    let case = Case::new("outbox-clear");
    let base = t0() - secs(3600);
    let [a, b, c] = three_entries(store, &case, base).await;
    let cutoff = base + secs(31);
    let ids = |entries: Vec<OutboxEntry>| entries.into_iter().map(|entry| entry.id).collect::<Vec<_>>();
    let [id_a, id_b, id_c]: [String; 3] = ids(store.due_outbox(cutoff, 10).await.unwrap()).try_into().unwrap();

    store.clear_outbox(std::slice::from_ref(&id_a)).await.unwrap();
    assert_eq!(jobs(&store.due_outbox(cutoff, 10).await.unwrap()), [vec![b], vec![c]]);
    // Clearing nothing, an entry cleared already, or one never recorded changes nothing.
    store.clear_outbox(&[]).await.unwrap();
    store.clear_outbox(&[id_a, "0196f0d4c2a87b3e9d1f5a6b7c8d9e0f".to_owned()]).await.unwrap();
    assert_eq!(ids(store.due_outbox(cutoff, 10).await.unwrap()), [id_b.clone(), id_c.clone()]);

    store.clear_outbox(&[id_b, id_c]).await.unwrap();
    assert_eq!(store.due_outbox(cutoff, 10).await.unwrap(), vec![]);
    assert_eq!(store.unsent_jobs(std::slice::from_ref(&a)).await.unwrap(), vec![a], "the jobs themselves stay");
}

pub async fn every_write_that_records_jobs_puts_them_in_the_outbox<S: ConversationStore + Outbox>(store: &S) {
    let case = Case::new("outbox-writes");
    let (conversation, t) = (case.conversation(0), t0());
    let notice = |text: &str| case.notice(&agent(0), text);
    let mut expected: Vec<Vec<Job>> = Vec::new();

    let first = started(store, &conversation, &handle("K7"), t).await;
    expected.push(first.jobs.clone());
    let second = inbound(&conversation, "more", &[agent(0)], t + secs(1));
    store.append_inbound(&second).await.unwrap();
    expected.push(second.jobs.clone());
    let mut answer = reply(&case, &conversation, &handle("K7"), &agent(0), "On it", t + secs(2));
    let told = notice("Ana answered");
    answer.notices = vec![told.clone()];
    store.record_agent_message(&answer).await.unwrap();
    expected.push(vec![sms_job(&answer), told]);
    let failure_notice = notice("not delivered");
    store
        .record_job_failed(&first.jobs[0], &permanent(), std::slice::from_ref(&failure_notice), t + secs(3))
        .await
        .unwrap();
    expected.push(vec![failure_notice]);
    let reaction = notice("✅");
    let read = store
        .advance_leg_status(
            &address(&first.jobs[1]),
            DeliveryStatus::Read,
            None,
            None,
            std::slice::from_ref(&reaction),
            t + secs(4),
        )
        .await;
    assert_eq!(read.unwrap(), StatusChange::Advanced);
    expected.push(vec![reaction]);
    let stranger = shared::domain::WaId::parse("14155550177").unwrap();
    let polite = case.notice(&stranger, "This number is for our team");
    let replied =
        store.record_non_agent(&case.line, &stranger.clone().into(), &wamid(), "2026-12-05", &polite).await.unwrap();
    assert_eq!(replied, NonAgentOutcome::Replied);
    expected.push(vec![polite]);

    // Writes that record no job add no entry.
    store.start_agent_conversation(&case.conversation(1), &handle("M3"), t).await.unwrap();
    store
        .record_agent_message(&case.agent_message(&agent(0), t + secs(5), AgentEffect::Nothing, vec![]))
        .await
        .unwrap();
    store.start_conversation(&first, &handle("K7")).await.unwrap();
    store.record_job_failed(&second.jobs[0], &permanent(), &[], t + secs(6)).await.unwrap();
    let late = store
        .advance_leg_status(&address(&first.jobs[1]), DeliveryStatus::Sent, None, None, &[notice("late")], t + secs(7))
        .await;
    assert!(matches!(late.unwrap(), StatusChange::Unchanged { .. }));
    let again = store
        .record_non_agent(&case.line, &stranger.clone().into(), &wamid(), "2026-12-05", &notice("again"))
        .await
        .unwrap();
    assert_eq!(again, NonAgentOutcome::AlreadyRepliedToday);

    let mut due = jobs(&store.due_outbox(Timestamp::now() + secs(3600), 100).await.unwrap());
    let by_first_job = |jobs: &Vec<Job>| jobs[0].job_id.as_str().to_owned();
    due.sort_by_key(by_first_job);
    expected.sort_by_key(by_first_job);
    assert_eq!(due, expected);
}
