//! `Routing`: finding a conversation and a leg by the ids the providers echo back.

use shared::domain::LegState;
use shared::domain::{DeliveryStatus, JobId, MessageId};
use shared::ports::{
    AgentState, Claim, ConversationStore, ForwardedVia, LegAddress, LegRef, OutboundLeg, Outbox, SentSmsRecord,
    StatusChange,
};

use super::fixture::*;

pub async fn nothing_is_found_for_what_was_never_recorded<S: ConversationStore + Outbox>(store: &S) {
    let case = Case::new("never-recorded");
    let conversation = case.conversation(0);
    let t = t0();
    let (message_id, notice) = (MessageId::new_v7(), case.notice(&agent(0), "hi"));
    let job = forward_job(&conversation, &message_id, 0, &agent(0), t);
    let leg =
        LegAddress { conversation: conversation.clone(), message_id: message_id.clone(), job_id: job.job_id.clone() };

    assert_eq!(store.conversation(&conversation).await.unwrap(), None);
    assert_eq!(store.thread(&conversation).await.unwrap(), vec![]);
    assert_eq!(store.open_conversations(&case.line, 10).await.unwrap(), vec![]);
    assert_eq!(store.find_handle(&case.line, &handle("K7")).await.unwrap(), None);
    assert_eq!(store.find_forwarded_copy(&wamid()).await.unwrap(), None);
    assert_eq!(store.find_sent_sms(&sid()).await.unwrap(), None);
    assert_eq!(store.outbound_leg(&conversation, &message_id, &job.job_id).await.unwrap(), None);
    assert_eq!(store.agent_state(&case.line, &agent(0)).await.unwrap(), AgentState::default());
    assert_eq!(store.forward_context(&conversation, &agent(0)).await.unwrap(), None);
    for job in [&job, &notice] {
        assert_eq!(store.claim_job(job, t, t + secs(60), "a").await.unwrap(), Claim::Missing);
    }
    let status = store.advance_leg_status(&leg, DeliveryStatus::Sent, None, None, &[], t).await.unwrap();
    assert_eq!(status, StatusChange::Missing);
    assert!(!store.note_sent_as(&LegRef::Message(leg), "wamid.x", t).await.unwrap());
    assert!(!store.note_sent_as(&LegRef::Standalone(notice.job_id.clone()), "wamid.x", t).await.unwrap());
    assert_eq!(store.unsent_jobs(&[job, notice]).await.unwrap(), vec![]);
}

pub async fn a_forwarded_copy_routes_the_agents_swipe_reply<S: ConversationStore + Outbox>(store: &S) {
    let case = Case::new("forwarded-copy");
    let t = t0();
    let message = started(store, &case.conversation(0), &handle("K7"), t).await;
    let job = &message.jobs[0];
    let copy = wamid();

    assert_eq!(store.claim_job(job, t, t + secs(60), "a").await.unwrap(), Claim::Claimed { attempts: 0 });
    store.record_forwarded(job, &copy, ForwardedVia::Text, t + secs(1)).await.unwrap();
    assert_eq!(store.find_forwarded_copy(&copy).await.unwrap(), Some(copy_of(job)));
    let sent = leg(store, job).await;
    assert_eq!((sent.state.as_str(), sent.provider_id), ("sent", Some(copy.as_str().to_owned())));
    assert_eq!(store.find_forwarded_copy(&wamid()).await.unwrap(), None);
}

pub async fn a_sent_sms_is_found_by_its_sid_and_its_leg_names_the_agents_message<S: ConversationStore + Outbox>(
    store: &S,
) {
    let case = Case::new("sent-sms");
    let conversation = case.conversation(0);
    let t = t0();
    let question = started(store, &conversation, &handle("K7"), t).await;
    let answer = reply(&case, &conversation, &handle("K7"), &agent(1), "See you at 5", t + secs(1));
    store.record_agent_message(&answer).await.unwrap();
    let sms = sms_job(&answer);
    let at = address(&sms);
    let leg_now = || store.outbound_leg(&conversation, &at.message_id, &sms.job_id);

    let expected = |status, send_recorded| OutboundLeg {
        agent: agent(1),
        agent_wamid: answer.wamid.clone(),
        status,
        send_recorded,
        handle: Some(handle("K7")),
        body: "See you at 5".into(),
    };
    assert_eq!(leg_now().await.unwrap(), Some(expected(None, false)));

    let provider_id = sid();
    assert_eq!(store.find_sent_sms(&provider_id).await.unwrap(), None);
    store.record_sms_sent(&sms, &provider_id, Some(DeliveryStatus::Queued), t + secs(2)).await.unwrap();
    assert_eq!(
        store.find_sent_sms(&provider_id).await.unwrap(),
        Some(SentSmsRecord {
            conversation: conversation.clone(),
            message_id: at.message_id.clone(),
            job_id: sms.job_id.clone(),
            agent: agent(1),
            agent_wamid: answer.wamid.clone(),
        })
    );
    assert_eq!(leg_now().await.unwrap(), Some(expected(Some(DeliveryStatus::Queued), true)));
    let sent = leg(store, &sms).await;
    assert_eq!((sent.state.as_str(), sent.provider_id), ("sent", Some(provider_id)));
    assert_eq!(
        store.claim_job(&sms, t + secs(3), t + secs(63), "a").await.unwrap(),
        Claim::AlreadyDone { state: shared::domain::LegState::Sent }
    );

    // Only an agent's reply has an outbound leg.
    let copy = &question.jobs[0];
    assert_eq!(store.outbound_leg(&conversation, &question.message_id, &copy.job_id).await.unwrap(), None);
    let no_such_leg = JobId::for_leg(&at.message_id, 5);
    assert_eq!(store.outbound_leg(&conversation, &at.message_id, &no_such_leg).await.unwrap(), None);
}

pub async fn a_status_that_overtook_the_sms_send_is_kept<S: ConversationStore + Outbox>(store: &S) {
    let case = Case::new("status-overtook");
    let conversation = case.conversation(0);
    let t = t0();
    started(store, &conversation, &handle("K7"), t).await;
    let answer = reply(&case, &conversation, &handle("K7"), &agent(0), "Done", t + secs(1));
    let quiet = reply(&case, &conversation, &handle("K7"), &agent(0), "Also done", t + secs(2));
    store.record_agent_message(&answer).await.unwrap();
    store.record_agent_message(&quiet).await.unwrap();
    let (sms, quiet_sms) = (sms_job(&answer), sms_job(&quiet));
    let status_of = |job| {
        let at = address(job);
        async move { store.outbound_leg(&at.conversation, &at.message_id, &at.job_id).await.unwrap().unwrap().status }
    };

    let delivered =
        store.advance_leg_status(&address(&sms), DeliveryStatus::Delivered, None, None, &[], t + secs(2)).await;
    assert_eq!(delivered.unwrap(), StatusChange::Advanced);
    store.record_sms_sent(&sms, &sid(), Some(DeliveryStatus::Queued), t + secs(3)).await.unwrap();
    assert_eq!(status_of(&sms).await, Some(DeliveryStatus::Delivered));
    assert_eq!(leg(store, &sms).await.state, LegState::Sent);

    store.record_sms_sent(&quiet_sms, &sid(), None, t + secs(3)).await.unwrap();
    assert_eq!(status_of(&quiet_sms).await, None, "the provider said nothing yet");
}

/// A digest (docs/using.md, "A busy line: digests"): one wamid, copies of several
/// conversations. Its routing record lists every part, each leg is sent under it, and a
/// part's own record (`ForwardedVia::Digest`, as the worker records a digest it remembers)
/// never replaces it.
pub async fn a_digest_is_routed_as_a_whole_and_marks_each_leg_sent<S: ConversationStore + Outbox>(store: &S) {
    let case = Case::new("digest");
    let t = t0();
    let first = started(store, &case.conversation(0), &handle("DK"), t).await;
    let second = started(store, &case.conversation(1), &handle("DM"), t).await;
    let jobs = [&first.jobs[0], &second.jobs[0]];
    for job in jobs {
        assert_eq!(store.claim_job(job, t, t + secs(60), "a").await.unwrap(), Claim::Claimed { attempts: 0 });
    }
    let digest = wamid();
    store.record_digest_sent(&jobs, &digest, t + secs(1)).await.unwrap();
    let found = store.find_forwarded_copy(&digest).await.unwrap().expect("the digest's record");
    assert!(found.is_digest());
    assert_eq!(
        (found.conversation.clone(), found.job_id.clone()),
        (case.conversation(0), first.jobs[0].job_id.clone())
    );
    let parts: Vec<_> = found.digest.iter().map(|p| (p.conversation.clone(), p.job_id.clone())).collect();
    assert_eq!(
        parts,
        [(case.conversation(0), first.jobs[0].job_id.clone()), (case.conversation(1), second.jobs[0].job_id.clone())]
    );
    assert_eq!(found.conversations(), [case.conversation(0), case.conversation(1)]);
    for job in jobs {
        let sent = leg(store, job).await;
        assert_eq!((sent.state.as_str(), sent.provider_id.as_deref()), ("sent", Some(digest.as_str())));
    }
    // Recorded again part by part (a remembered send): the digest's record stays whole.
    store.record_forwarded(jobs[1], &digest, ForwardedVia::Digest, t + secs(2)).await.unwrap();
    assert_eq!(store.find_forwarded_copy(&digest).await.unwrap(), Some(found));
}

/// Copies parked for an agent's digest: per agent and line, oldest first, parked once
/// however often, and gone once taken off.
pub async fn copies_park_per_agent_oldest_first_and_unpark<S: ConversationStore + Outbox>(store: &S) {
    let case = Case::new("parked");
    let t = t0();
    let first = started(store, &case.conversation(0), &handle("PK"), t).await;
    let second = started(store, &case.conversation(1), &handle("PM"), t).await;
    let (a, b) = (&first.jobs[0], &second.jobs[0]);
    assert_eq!(store.parked_copies(&case.line, &agent(0)).await.unwrap(), vec![]);
    store.park_copy(&case.line, &agent(0), a, t).await.unwrap();
    store.park_copy(&case.line, &agent(0), b, t + secs(1)).await.unwrap();
    store.park_copy(&case.line, &agent(0), a, t).await.unwrap();
    assert_eq!(store.parked_copies(&case.line, &agent(0)).await.unwrap(), vec![a.clone(), b.clone()]);
    assert_eq!(store.parked_copies(&case.line, &agent(1)).await.unwrap(), vec![], "another agent's parking");
    store.unpark_copies(&case.line, &agent(0), std::slice::from_ref(&a.job_id)).await.unwrap();
    assert_eq!(store.parked_copies(&case.line, &agent(0)).await.unwrap(), vec![b.clone()]);
    store.unpark_copies(&case.line, &agent(0), &[a.job_id.clone(), b.job_id.clone()]).await.unwrap();
    assert_eq!(store.parked_copies(&case.line, &agent(0)).await.unwrap(), vec![]);
}
