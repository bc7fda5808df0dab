//! The DynamoDB conversation store against the moto emulator, over the wire.

#![allow(clippy::unwrap_used)] // a failed unwrap is the test failing

use bridge_testkit::testing::{TestAws, attr_s};
use jiff::{SignedDuration, Timestamp};
use shared::domain::{
    ConversationKey, E164, ForwardToAgent, Handle, Job, JobId, JobPayload, LegState, LineId, MessageId, WaId, Wamid,
};
use shared::domain::{ErrorClass, FailureClass};
use shared::ports::{
    Agents, AppendOutcome, Claim, Deliveries, ForwardedVia, InboundLog, LegFailure, NewInboundMessage, StartOutcome,
};

fn conversation(customer: &str) -> ConversationKey {
    ConversationKey { line: LineId::parse("main").unwrap(), customer: E164::parse(customer).unwrap() }
}

fn message(customer: &str, sid: &str, agents: &[&str]) -> NewInboundMessage {
    let conversation = conversation(customer);
    let message_id = MessageId::new_v7();
    let jobs = agents
        .iter()
        .enumerate()
        .map(|(leg, agent)| Job {
            job_id: JobId::for_leg(&message_id, leg),
            attempt: 0,
            payload: JobPayload::ForwardToAgent(ForwardToAgent {
                conversation: conversation.clone(),
                message_id: message_id.clone(),
                agent: WaId::parse(agent).unwrap(),
                text: "hello".into(),
                attachments: vec![],
                media: vec![],
                received_at: Timestamp::now(),
                keyword: None,
            }),
        })
        .collect();
    NewInboundMessage {
        conversation,
        message_id,
        provider: "twilio",
        provider_message_id: sid.into(),
        body: "hello".into(),
        attachments: vec![],
        received_at: Timestamp::now(),
        keyword: None,
        jobs,
        claim_assumed: Default::default(),
    }
}

const AGENTS: [&str; 2] = ["14155550111", "14155550112"];

#[tokio::test]
async fn first_contact_creates_the_conversation_its_handle_and_the_message() {
    let aws = TestAws::new().await;
    let store = aws.store();
    let first = message("+14155550134", "SM1", &AGENTS);
    assert_eq!(store.append_inbound(&first).await.unwrap(), AppendOutcome::NoConversation);
    assert!(aws.items().await.is_empty(), "a refused append writes nothing");

    let handle = Handle::parse("K7").unwrap();
    assert_eq!(store.start_conversation(&first, &handle).await.unwrap(), StartOutcome::Started);
    let meta = &aws.items_with_prefix("CONV#").await.into_iter().find(|i| attr_s(i, "SK") == "META").unwrap();
    assert_eq!(attr_s(meta, "handle"), "K7");
    assert_eq!(attr_s(meta, "status"), "open");
    assert_eq!(aws.items_with_prefix("HANDLE#main#K7").await.len(), 1);
    assert_eq!(aws.items_with_prefix("SEEN#twilio#SM1").await.len(), 1);

    let second = message("+14155550134", "SM2", &AGENTS);
    assert_eq!(store.append_inbound(&second).await.unwrap(), AppendOutcome::Appended);
    let messages = aws.items_with_prefix("CONV#main#+14155550134").await;
    assert_eq!(messages.iter().filter(|i| attr_s(i, "SK").starts_with("MSG#")).count(), 2);
}

#[tokio::test]
async fn a_replayed_provider_message_changes_nothing_and_returns_the_first_jobs() {
    let aws = TestAws::new().await;
    let store = aws.store();
    let original = message("+14155550134", "SM1", &AGENTS);
    store.start_conversation(&original, &Handle::parse("K7").unwrap()).await.unwrap();
    let before = aws.items().await;

    // Same MessageSid, new message id and jobs: the store hands back the originals.
    let replay = message("+14155550134", "SM1", &AGENTS);
    let StartOutcome::Duplicate(prior) =
        store.start_conversation(&replay, &Handle::parse("M3").unwrap()).await.unwrap()
    else {
        panic!("not a duplicate")
    };
    assert_eq!(prior.message_id, Some(original.message_id.clone()));
    assert_eq!(prior.jobs, original.jobs);
    let AppendOutcome::Duplicate(prior) = store.append_inbound(&replay).await.unwrap() else {
        panic!("not a duplicate")
    };
    assert_eq!(prior.jobs, original.jobs);
    assert_eq!(aws.items().await.len(), before.len());
}

#[tokio::test]
async fn handles_are_unique_per_line_and_conversations_per_customer() {
    let aws = TestAws::new().await;
    let store = aws.store();
    let k7 = Handle::parse("K7").unwrap();
    store.start_conversation(&message("+14155550134", "SM1", &AGENTS), &k7).await.unwrap();
    let items = aws.items().await.len();

    let other_customer = message("+14155550135", "SM2", &AGENTS);
    assert_eq!(store.start_conversation(&other_customer, &k7).await.unwrap(), StartOutcome::HandleTaken);
    let same_customer = message("+14155550134", "SM3", &AGENTS);
    assert_eq!(
        store.start_conversation(&same_customer, &Handle::parse("M3").unwrap()).await.unwrap(),
        StartOutcome::ConversationExists
    );
    assert_eq!(aws.items().await.len(), items, "refused transactions write nothing");
}

fn first_job(message: &NewInboundMessage) -> Job {
    message.jobs[0].clone()
}

#[tokio::test]
async fn a_job_is_claimed_once_until_its_lease_runs_out() {
    let aws = TestAws::new().await;
    let store = aws.store();
    let msg = message("+14155550134", "SM1", &AGENTS);
    store.start_conversation(&msg, &Handle::parse("K7").unwrap()).await.unwrap();
    let job = first_job(&msg);
    let now = Timestamp::from_millisecond(Timestamp::now().as_millisecond()).unwrap();
    let until = now + SignedDuration::from_secs(60);

    // A worker's clock is finer than the store's milliseconds.
    let now_exactly = now + SignedDuration::from_nanos(123_456);
    assert_eq!(store.claim_job(&job, now_exactly, until, "w1").await.unwrap(), Claim::Claimed { attempts: 0 });
    assert_eq!(store.claim_job(&job, now, until, "w2").await.unwrap(), Claim::Busy { until });
    // The same claim sent again (the SDK retrying after a lost answer) is still a claim.
    assert_eq!(store.claim_job(&job, now_exactly, until, "w1").await.unwrap(), Claim::Claimed { attempts: 0 });
    // The holder's own later retry resumes its lease; it can't know whether it sent.
    assert_eq!(
        store.claim_job(&job, now + SignedDuration::from_secs(1), until, "w1").await.unwrap(),
        Claim::Uncertain { attempts: 2, since: now, provider_id: None, earlier_in_doubt: false }
    );
    // The other agent's leg is independent.
    assert_eq!(store.claim_job(&msg.jobs[1], now, until, "w1").await.unwrap(), Claim::Claimed { attempts: 0 });
    // A stopped holder's lease runs out and the job can be taken again, uncertain: the
    // holder may have sent before it stopped, from when it claimed.
    let later = now + SignedDuration::from_secs(61);
    assert_eq!(
        store.claim_job(&job, later, later + SignedDuration::from_secs(60), "w2").await.unwrap(),
        Claim::Uncertain {
            attempts: 3,
            since: now + SignedDuration::from_secs(1),
            provider_id: None,
            earlier_in_doubt: false
        }
    );

    let wamid = Wamid::parse("wamid.HBgLMTQxNTU1NTAxMTEVAgARGBI=").unwrap();
    store.record_forwarded(&job, &wamid, ForwardedVia::Text, later).await.unwrap();
    assert_eq!(store.claim_job(&job, later, until, "w1").await.unwrap(), Claim::AlreadyDone { state: LegState::Sent });
    let copy = &aws.items_with_prefix("WAMID#").await[0];
    assert_eq!(attr_s(copy, "job_id"), job.job_id.as_str());
    assert_eq!(attr_s(copy, "conversation"), "CONV#main#+14155550134");
}

#[tokio::test]
async fn released_jobs_can_be_retried_uncertain_ones_say_since_when_and_failed_jobs_are_done() {
    let aws = TestAws::new().await;
    let store = aws.store();
    let msg = message("+14155550134", "SM1", &AGENTS);
    store.start_conversation(&msg, &Handle::parse("K7").unwrap()).await.unwrap();
    let (job, other) = (msg.jobs[0].clone(), msg.jobs[1].clone());
    let now = Timestamp::from_millisecond(Timestamp::now().as_millisecond()).unwrap();
    let until = now + SignedDuration::from_secs(60);
    let failure =
        LegFailure { class: FailureClass::Provider(ErrorClass::Retry), code: Some(131000), reason: "HTTP 500".into() };

    store.claim_job(&job, now, until, "w1").await.unwrap();
    store.release_job(&job, &failure, now).await.unwrap();
    assert_eq!(store.claim_job(&job, now, until, "w1").await.unwrap(), Claim::Claimed { attempts: 1 });
    // An ambiguous attempt: given back uncertain, and the next claim says since when.
    let since = now - SignedDuration::from_secs(3);
    let ambiguous =
        LegFailure { class: FailureClass::Provider(ErrorClass::Ambiguous), code: None, reason: "timed out".into() };
    store.mark_job_uncertain(&job, &ambiguous, since, now).await.unwrap();
    assert_eq!(
        store.claim_job(&job, now, until, "w1").await.unwrap(),
        Claim::Uncertain { attempts: 2, since, provider_id: None, earlier_in_doubt: false }
    );
    // Giving it back uncertain again keeps the time the uncertain attempt began.
    store.mark_job_uncertain(&job, &ambiguous, since, now).await.unwrap();
    assert!(
        matches!(store.claim_job(&job, now, until, "w1").await.unwrap(), Claim::Uncertain { since: s, .. } if s == since)
    );

    store.claim_job(&other, now, until, "w1").await.unwrap();
    let permanent = LegFailure {
        class: FailureClass::Provider(ErrorClass::Permanent),
        code: Some(131026),
        reason: "undeliverable".into(),
    };
    store.record_job_failed(&other, &permanent, &[], now).await.unwrap();
    assert_eq!(
        store.claim_job(&other, now, until, "w1").await.unwrap(),
        Claim::AlreadyDone { state: LegState::Failed }
    );
    // Only a claimed leg can be given back: a finished one stays finished.
    store.release_job(&other, &failure, now).await.unwrap();
    assert_eq!(
        store.claim_job(&other, now, until, "w1").await.unwrap(),
        Claim::AlreadyDone { state: LegState::Failed }
    );
}

#[tokio::test]
async fn claiming_a_job_of_an_unknown_message_finds_nothing() {
    let aws = TestAws::new().await;
    let msg = message("+14155550134", "SM1", &AGENTS);
    let now = Timestamp::now();
    assert_eq!(
        aws.store().claim_job(&msg.jobs[0], now, now + SignedDuration::from_secs(60), "w1").await.unwrap(),
        Claim::Missing
    );
}

#[tokio::test]
async fn forward_context_has_the_handle_and_the_agents_window() {
    let aws = TestAws::new().await;
    let store = aws.store();
    let msg = message("+14155550134", "SM1", &AGENTS);
    let conv = msg.conversation.clone();
    let agent = WaId::parse(AGENTS[0]).unwrap();
    assert_eq!(store.forward_context(&conv, &agent).await.unwrap(), None);

    store.start_conversation(&msg, &Handle::parse("K7").unwrap()).await.unwrap();
    let context = store.forward_context(&conv, &agent).await.unwrap().unwrap();
    assert_eq!(context.handle.as_str(), "K7");
    assert_eq!(context.agent_last_inbound_at, None);

    let at = Timestamp::from_millisecond(Timestamp::now().as_millisecond()).unwrap();
    store.record_agent_inbound(&conv.line, &agent, at).await.unwrap();
    // A late webhook about an older message doesn't move the window back.
    store.record_agent_inbound(&conv.line, &agent, at - SignedDuration::from_hours(2)).await.unwrap();
    let context = store.forward_context(&conv, &agent).await.unwrap().unwrap();
    assert_eq!(context.agent_last_inbound_at, Some(at));
}
