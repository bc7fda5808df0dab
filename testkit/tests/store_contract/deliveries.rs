//! `Deliveries`: a job claimed under a lease, its outcome recorded, or given back.

use shared::domain::pacing::{SendPace, SlotReservation};
use shared::domain::{ErrorClass, FailureClass};
use shared::domain::{LegState, MessageId};
use shared::ports::{
    AgentEffect, Claim, ConversationStore, ForwardedVia, LegFailure, LegFailureRecord, LegRef, Outbox, StoreError,
};

use super::fixture::*;

pub async fn a_second_claimer_waits_for_the_lease_then_takes_the_job_over_uncertain<S: ConversationStore + Outbox>(
    handles: impl Fn() -> S,
) {
    let (worker_a, worker_b) = (handles(), handles());
    let case = Case::new("lease");
    let t = t0();
    let message = started(&worker_a, &case.conversation(0), &handle("K7"), t).await;
    let (job, lease) = (&message.jobs[0], t + secs(60));

    assert_eq!(worker_a.claim_job(job, t, lease, "a").await.unwrap(), Claim::Claimed { attempts: 0 });
    assert_eq!(leg(&worker_b, job).await.state, LegState::Sending);
    assert_eq!(worker_b.claim_job(job, t + secs(1), t + secs(61), "b").await.unwrap(), Claim::Busy { until: lease });
    // The lease holds through its last instant.
    assert_eq!(worker_b.claim_job(job, lease, lease + secs(60), "b").await.unwrap(), Claim::Busy { until: lease });

    // Worker a stopped, perhaps after sending: b takes the job over, uncertain since a's claim.
    let later = lease + secs(1);
    assert_eq!(
        worker_b.claim_job(job, later, later + secs(60), "b").await.unwrap(),
        Claim::Uncertain { attempts: 1, since: t, provider_id: None, earlier_in_doubt: false }
    );
    assert_eq!(
        worker_a.claim_job(job, later + secs(1), later + secs(61), "a").await.unwrap(),
        Claim::Busy { until: later + secs(60) }
    );
    // The other agent's copy is a job of its own.
    assert_eq!(worker_b.claim_job(&message.jobs[1], t, lease, "b").await.unwrap(), Claim::Claimed { attempts: 0 });
}

pub async fn of_two_workers_claiming_at_once_one_gets_the_job<S: ConversationStore + Outbox>(handles: impl Fn() -> S) {
    let (worker_a, worker_b) = (handles(), handles());
    let case = Case::new("claim-race");
    let t = t0();
    let message = started(&worker_a, &case.conversation(0), &handle("K7"), t).await;
    let (job, lease) = (&message.jobs[0], t + secs(60));

    let (a, b) = tokio::join!(worker_a.claim_job(job, t, lease, "a"), worker_b.claim_job(job, t, lease, "b"));
    let mut claims = [a.unwrap(), b.unwrap()];
    claims.sort_by_key(|claim| format!("{claim:?}"));
    assert_eq!(claims, [Claim::Busy { until: lease }, Claim::Claimed { attempts: 0 }]);
}

pub async fn a_worker_resumes_its_own_lease_and_a_repeated_claim_is_the_same_claim<S: ConversationStore + Outbox>(
    store: &S,
) {
    let case = Case::new("own-lease");
    let t = t0();
    let message = started(store, &case.conversation(0), &handle("K7"), t).await;
    let (repeated, resumed, lease) = (&message.jobs[0], &message.jobs[1], t + secs(60));

    // The same request sent again after its answer was lost: nothing happened in between.
    assert_eq!(store.claim_job(repeated, t, lease, "a").await.unwrap(), Claim::Claimed { attempts: 0 });
    assert_eq!(store.claim_job(repeated, t, lease, "a").await.unwrap(), Claim::Claimed { attempts: 0 });

    // The worker's own later retry (it couldn't give the job back) can't know whether it sent.
    assert_eq!(store.claim_job(resumed, t, lease, "a").await.unwrap(), Claim::Claimed { attempts: 0 });
    assert_eq!(
        store.claim_job(resumed, t + secs(5), t + secs(65), "a").await.unwrap(),
        Claim::Uncertain { attempts: 1, since: t, provider_id: None, earlier_in_doubt: false }
    );
    assert_eq!(
        store.claim_job(resumed, t + secs(6), t + secs(66), "b").await.unwrap(),
        Claim::Busy { until: t + secs(65) },
        "the resumed lease is the new one"
    );
}

/// A leg handed back untried at the deadline: free again, its claim not counted, the last
/// real failure kept; a leg that isn't being sent is left alone.
pub async fn a_job_handed_back_untried_spends_no_attempt<S: ConversationStore + Outbox>(store: &S) {
    let case = Case::new("untried");
    let t = t0();
    let message = started(store, &case.conversation(0), &handle("K7"), t).await;
    let (job, idle) = (&message.jobs[0], &message.jobs[1]);
    let claim = |n: i64| store.claim_job(job, t + secs(n), t + secs(n + 60), "a");

    assert_eq!(claim(0).await.unwrap(), Claim::Claimed { attempts: 0 });
    store.release_job(job, &retryable(), t + secs(1)).await.unwrap();
    assert_eq!(claim(2).await.unwrap(), Claim::Claimed { attempts: 1 });
    store.hand_back_untried(job, t + secs(3)).await.unwrap();
    let handed_back = leg(store, job).await;
    assert_eq!(handed_back.state, LegState::Retry);
    assert_eq!(handed_back.error.map(|e| e.code), Some(Some(131000)), "the last real failure stays");
    assert_eq!(claim(4).await.unwrap(), Claim::Claimed { attempts: 1 }, "the untried claim not counted");

    store.hand_back_untried(idle, t).await.unwrap();
    assert_eq!(leg(store, idle).await.state, LegState::Queued);
    assert_eq!(store.claim_job(idle, t + secs(1), t + secs(61), "a").await.unwrap(), Claim::Claimed { attempts: 0 });
}

pub async fn a_released_job_is_claimed_again_counting_its_attempts<S: ConversationStore + Outbox>(store: &S) {
    let case = Case::new("release");
    let t = t0();
    let message = started(store, &case.conversation(0), &handle("K7"), t).await;
    let (job, idle) = (&message.jobs[0], &message.jobs[1]);
    let claim = |n: i64, owner: &'static str| store.claim_job(job, t + secs(n), t + secs(n + 60), owner);

    assert_eq!(claim(0, "a").await.unwrap(), Claim::Claimed { attempts: 0 });
    store.release_job(job, &retryable(), t + secs(1)).await.unwrap();
    let released = leg(store, job).await;
    assert_eq!(released.state, LegState::Retry);
    assert_eq!(
        released.error,
        Some(LegFailureRecord {
            class: FailureClass::Provider(ErrorClass::Retry),
            code: Some(131000),
            reason: "HTTP 500".into()
        })
    );
    assert_eq!(claim(2, "b").await.unwrap(), Claim::Claimed { attempts: 1 });
    store.release_job(job, &retryable(), t + secs(3)).await.unwrap();
    assert_eq!(claim(4, "a").await.unwrap(), Claim::Claimed { attempts: 2 });

    // Only a leg being sent can be given back.
    store.release_job(idle, &retryable(), t).await.unwrap();
    assert_eq!(leg(store, idle).await.state, LegState::Queued);
    store.record_forwarded(idle, &wamid(), ForwardedVia::Text, t + secs(1)).await.unwrap();
    store.release_job(idle, &retryable(), t + secs(2)).await.unwrap();
    assert_eq!(
        store.claim_job(idle, t + secs(3), t + secs(63), "a").await.unwrap(),
        Claim::AlreadyDone { state: LegState::Sent }
    );
}

pub async fn an_uncertain_job_tells_the_next_claimer_since_when_and_what_the_provider_said<
    S: ConversationStore + Outbox,
>(
    store: &S,
) {
    let case = Case::new("uncertain");
    let t = t0();
    let message = started(store, &case.conversation(0), &handle("K7"), t).await;
    let (job, idle) = (&message.jobs[0], &message.jobs[1]);
    let claim = |n: i64, owner: &'static str| store.claim_job(job, t + secs(n), t + secs(n + 60), owner);

    assert_eq!(claim(0, "a").await.unwrap(), Claim::Claimed { attempts: 0 });
    store.mark_job_uncertain(job, &ambiguous(), t, t + secs(2)).await.unwrap();
    let given_back = leg(store, job).await;
    assert_eq!(given_back.state, LegState::Uncertain);
    assert_eq!(given_back.error.map(|e| e.class), Some(FailureClass::Provider(ErrorClass::Ambiguous)));
    assert_eq!(
        claim(3, "b").await.unwrap(),
        Claim::Uncertain { attempts: 1, since: t, provider_id: None, earlier_in_doubt: false }
    );

    store.mark_job_uncertain(job, &ambiguous(), t + secs(3), t + secs(4)).await.unwrap();
    // A status report says that send went out.
    let sent_as = wamid();
    assert!(store.note_sent_as(&LegRef::Message(address(job)), sent_as.as_str(), t + secs(5)).await.unwrap());
    let provider_id = Some(sent_as.as_str().to_owned());
    assert_eq!(
        claim(6, "c").await.unwrap(),
        Claim::Uncertain { attempts: 2, since: t + secs(3), provider_id: provider_id.clone(), earlier_in_doubt: false }
    );
    // Worker c stops in turn: the uncertain attempt is now its own, begun when it claimed,
    // and the one given back uncertain before it is still in doubt.
    assert_eq!(
        claim(70, "d").await.unwrap(),
        Claim::Uncertain { attempts: 3, since: t + secs(6), provider_id, earlier_in_doubt: true }
    );

    store.record_forwarded(job, &sent_as, ForwardedVia::Reconciled, t + secs(71)).await.unwrap();
    assert_eq!(claim(72, "e").await.unwrap(), Claim::AlreadyDone { state: LegState::Sent });
    let sent = leg(store, job).await;
    assert_eq!((sent.state.as_str(), sent.provider_id, sent.error), ("sent", Some(sent_as.as_str().to_owned()), None));

    // Only a leg being sent can be given back uncertain.
    store.mark_job_uncertain(idle, &ambiguous(), t, t).await.unwrap();
    assert_eq!(store.claim_job(idle, t, t + secs(60), "a").await.unwrap(), Claim::Claimed { attempts: 0 });
}

pub async fn sent_and_failed_jobs_are_done<S: ConversationStore + Outbox>(store: &S) {
    let case = Case::new("done");
    let t = t0();
    let message = started(store, &case.conversation(0), &handle("K7"), t).await;
    let (sent, failed) = (&message.jobs[0], &message.jobs[1]);
    let copy = wamid();

    // Whoever learns of the send records it: the leg needn't be claimed.
    store.record_forwarded(sent, &copy, ForwardedVia::Text, t).await.unwrap();
    assert_eq!(
        store.claim_job(sent, t + secs(1), t + secs(61), "a").await.unwrap(),
        Claim::AlreadyDone { state: LegState::Sent }
    );
    assert_eq!(store.claim_job(failed, t, t + secs(60), "a").await.unwrap(), Claim::Claimed { attempts: 0 });
    store.record_job_failed(failed, &permanent(), &[], t + secs(1)).await.unwrap();
    assert_eq!(
        store.claim_job(failed, t + secs(2), t + secs(62), "b").await.unwrap(),
        Claim::AlreadyDone { state: LegState::Failed }
    );
    let failed_leg = leg(store, failed).await;
    assert_eq!(failed_leg.state, LegState::Failed);
    assert_eq!(
        failed_leg.error,
        Some(LegFailureRecord {
            class: FailureClass::Provider(ErrorClass::Permanent),
            code: Some(131026),
            reason: "undeliverable".into()
        })
    );

    // A finished leg keeps what it has.
    for job in [sent, failed] {
        assert!(!store.note_sent_as(&LegRef::Message(address(job)), "wamid.late", t + secs(3)).await.unwrap());
    }
    store.mark_job_uncertain(sent, &ambiguous(), t, t + secs(3)).await.unwrap();
    store.release_job(failed, &retryable(), t + secs(3)).await.unwrap();
    assert_eq!(leg(store, sent).await.provider_id, Some(copy.as_str().to_owned()));
    assert_eq!(leg(store, sent).await.state, LegState::Sent);
    assert_eq!(leg(store, failed).await.state, LegState::Failed);
}

pub async fn outcomes_for_a_message_that_is_gone_change_nothing<S: ConversationStore + Outbox>(store: &S) {
    let case = Case::new("gone-message");
    let conversation = case.conversation(0);
    let t = t0();
    let forward = forward_job(&conversation, &MessageId::new_v7(), 0, &agent(0), t);
    let sms = sms_job(&reply(&case, &conversation, &handle("K7"), &agent(0), "Hello?", t));
    let notice = case.notice(&agent(0), "not delivered");

    store.record_forwarded(&forward, &wamid(), ForwardedVia::Text, t).await.unwrap();
    store.record_sms_sent(&sms, &sid(), None, t).await.unwrap();
    store.record_job_sent(&forward, "wamid.x", t).await.unwrap();
    store.release_job(&forward, &retryable(), t).await.unwrap();
    store.mark_job_uncertain(&forward, &ambiguous(), t, t).await.unwrap();
    // The notices go with the leg's failure, or not at all.
    store.record_job_failed(&forward, &permanent(), std::slice::from_ref(&notice), t).await.unwrap();

    for job in [&forward, &sms] {
        assert_eq!(store.claim_job(job, t, t + secs(60), "a").await.unwrap(), Claim::Missing);
    }
    assert_eq!(store.unsent_jobs(std::slice::from_ref(&notice)).await.unwrap(), vec![]);
    assert_eq!(store.thread(&conversation).await.unwrap(), vec![]);
    assert_eq!(store.conversation(&conversation).await.unwrap(), None);
}

pub async fn a_job_recorded_as_the_wrong_kind_is_refused<S: ConversationStore + Outbox>(store: &S) {
    let case = Case::new("wrong-kind");
    let conversation = case.conversation(0);
    let t = t0();
    let message = started(store, &conversation, &handle("K7"), t).await;
    let answer = reply(&case, &conversation, &handle("K7"), &agent(0), "Hi", t);
    store.record_agent_message(&answer).await.unwrap();
    let (forward, sms) = (&message.jobs[0], sms_job(&answer));

    let as_forward = store.record_forwarded(&sms, &wamid(), ForwardedVia::Text, t).await;
    assert!(matches!(as_forward, Err(StoreError::Corrupt(_))), "{as_forward:?}");
    let as_sms = store.record_sms_sent(forward, &sid(), None, t).await;
    assert!(matches!(as_sms, Err(StoreError::Corrupt(_))), "{as_sms:?}");
    assert_eq!(leg(store, forward).await.state, LegState::Queued);
    assert_eq!(leg(store, &sms).await.state, LegState::Queued);
}

pub async fn notices_and_automated_replies_are_claimed_from_their_own_records<S: ConversationStore + Outbox>(
    store: &S,
) {
    let case = Case::new("standalone-claims");
    let conversation = case.conversation(0);
    let t = t0();
    let notice = case.notice(&agent(0), "Ben answered #K7");
    assert_eq!(store.claim_job(&notice, t, t + secs(60), "a").await.unwrap(), Claim::Missing, "never recorded");

    let record = case.agent_message(&agent(1), t, AgentEffect::Nothing, vec![notice.clone()]);
    store.record_agent_message(&record).await.unwrap();
    assert_eq!(store.claim_job(&notice, t, t + secs(60), "a").await.unwrap(), Claim::Claimed { attempts: 0 });
    assert_eq!(
        store.claim_job(&notice, t + secs(1), t + secs(61), "b").await.unwrap(),
        Claim::Busy { until: t + secs(60) }
    );
    store.record_job_sent(&notice, wamid().as_str(), t + secs(2)).await.unwrap();
    assert_eq!(
        store.claim_job(&notice, t + secs(3), t + secs(63), "b").await.unwrap(),
        Claim::AlreadyDone { state: LegState::Sent }
    );

    // An automated reply's record is made by its first claim, while its conversation exists:
    // one erased (or never recorded) gets none, and so is never sent.
    let welcome = auto_reply(&conversation, "first");
    assert_eq!(store.claim_job(&welcome, t, t + secs(60), "a").await.unwrap(), Claim::Missing, "no conversation");
    assert_eq!(store.claim_job(&welcome, t, t + secs(60), "a").await.unwrap(), Claim::Missing, "nothing written");
    store.start_agent_conversation(&conversation, &handle("K7"), t).await.unwrap();
    assert_eq!(store.claim_job(&welcome, t, t + secs(60), "a").await.unwrap(), Claim::Claimed { attempts: 0 });
    store.record_job_sent(&welcome, &sid(), t + secs(1)).await.unwrap();
    // Due again for a later text (the same once-key, so the same job): it went out already.
    let again = auto_reply(&conversation, "first");
    assert_eq!(again.job_id, welcome.job_id);
    assert_eq!(
        store.claim_job(&again, t + secs(2), t + secs(62), "b").await.unwrap(),
        Claim::AlreadyDone { state: LegState::Sent }
    );
}

pub async fn send_slots_space_one_sender_for_every_caller_and_an_unused_one_can_be_given_back<S: ConversationStore>(
    handles: impl Fn() -> S,
) {
    let (worker_a, worker_b) = (handles(), handles());
    let sender = format!("+1415555{:04}", fastrand::u16(..10_000));
    let (t, pace) = (t0(), SendPace::new(2.0, 1));
    let at = |slot: SlotReservation| slot.at_us - t.as_microsecond();

    assert_eq!(at(worker_a.reserve_send_slot(&sender, pace, t).await.unwrap()), 0, "an idle sender: now");
    assert_eq!(at(worker_b.reserve_send_slot(&sender, pace, t).await.unwrap()), 500_000, "another caller: the next");
    let third = worker_a.reserve_send_slot(&sender, pace, t).await.unwrap();
    assert_eq!(at(third), 1_000_000);
    assert_eq!(at(worker_a.reserve_send_slot(&format!("{sender}-other"), pace, t).await.unwrap()), 0, "per sender");

    // The last slot, unused, goes back; one with a later reservation after it doesn't.
    worker_a.give_back_send_slot(&sender, third, pace).await.unwrap();
    let again = worker_b.reserve_send_slot(&sender, pace, t).await.unwrap();
    assert_eq!(again, third);
    let fourth = worker_b.reserve_send_slot(&sender, pace, t).await.unwrap();
    worker_a.give_back_send_slot(&sender, again, pace).await.unwrap();
    assert_eq!(at(worker_b.reserve_send_slot(&sender, pace, t).await.unwrap()), at(fourth) + 500_000);

    // Idle long enough, the sender's next slot is now again.
    let later = t + jiff::SignedDuration::from_secs(60);
    assert_eq!(worker_a.reserve_send_slot(&sender, pace, later).await.unwrap().at_us, later.as_microsecond());
}

pub async fn an_idle_senders_burst_goes_at_once_from_every_caller_then_is_spaced<S: ConversationStore>(
    handles: impl Fn() -> S,
) {
    let (worker_a, worker_b) = (handles(), handles());
    let sender = format!("+1415555{:04}", fastrand::u16(..10_000));
    let (t, pace) = (t0(), SendPace::new(4.0, 3));
    let mut slots = Vec::new();
    for i in 0..5 {
        let worker = if i % 2 == 0 { &worker_a } else { &worker_b };
        slots.push(worker.reserve_send_slot(&sender, pace, t).await.unwrap().at_us - t.as_microsecond());
    }
    // 4 a second, 3 at once: the 3 now, then 1/2 s apart (no second holds more than 4).
    assert_eq!(slots, [0, 0, 0, 500_000, 1_000_000]);
}

/// What `bridge-ops dlq list` reads: a parked job's leg and its last failure, from its
/// message or from its own record.
pub async fn a_jobs_leg_is_read_where_it_is_kept<S: ConversationStore + Outbox>(store: &S) {
    let case = Case::new("job-leg");
    let t = t0();
    let message = started(store, &case.conversation(0), &handle("K7"), t).await;
    let escalated = LegFailure {
        class: FailureClass::Provider(ErrorClass::Escalate),
        code: Some(190),
        reason: "HTTP 401, code 190: token expired".into(),
    };
    let copy = &message.jobs[0];
    assert_eq!(store.claim_job(copy, t, t + secs(60), "a").await.unwrap(), Claim::Claimed { attempts: 0 });
    store.release_job(copy, &escalated, t + secs(1)).await.unwrap();
    let read = store.job_leg(copy).await.unwrap().expect("the copy's leg");
    assert_eq!(read, leg(store, copy).await, "the same leg the thread shows");
    assert_eq!((read.state, read.kind), (LegState::Retry, copy.kind()));
    assert_eq!(
        read.error,
        Some(LegFailureRecord { class: escalated.class, code: Some(190), reason: escalated.reason.clone() })
    );
    assert_eq!(store.job_leg(&message.jobs[1]).await.unwrap().map(|l| l.error), Some(None), "never tried");

    let notice = case.notice(&agent(0), "Ben answered #K7");
    assert_eq!(store.job_leg(&notice).await.unwrap(), None, "never recorded");
    let record = case.agent_message(&agent(1), t, AgentEffect::Nothing, vec![notice.clone()]);
    store.record_agent_message(&record).await.unwrap();
    assert_eq!(store.claim_job(&notice, t, t + secs(60), "a").await.unwrap(), Claim::Claimed { attempts: 0 });
    store.release_job(&notice, &escalated, t + secs(1)).await.unwrap();
    let read = store.job_leg(&notice).await.unwrap().expect("the notice's own leg");
    assert_eq!((read.job_id, read.state), (notice.job_id.clone(), LegState::Retry));
    assert_eq!(read.error.map(|e| (e.class, e.code)), Some((escalated.class, Some(190))));
}

/// A slot asked for within a wait (a copy that may join a digest: a moment; a notice: a
/// spacing): taken when free by then, else nothing is reserved and the answer says when it
/// frees, so asking costs no slot.
pub async fn a_slot_offered_within_a_wait_is_taken_only_when_free_by_then<S: ConversationStore>(
    handles: impl Fn() -> S,
) {
    use shared::domain::pacing::SlotOffer;
    let (worker_a, worker_b) = (handles(), handles());
    let sender = format!("pair.{:04}", fastrand::u16(..10_000));
    let (t, pace) = (t0(), SendPace::new(1.0, 1));
    let within = std::time::Duration::from_millis(250);
    let SlotOffer::Reserved(first) = worker_a.offer_send_slot(&sender, pace, t, within).await.unwrap() else {
        panic!("an idle sender's slot is free")
    };
    assert_eq!(first.at_us, t.as_microsecond());
    for worker in [&worker_a, &worker_b, &worker_a] {
        let busy = worker.offer_send_slot(&sender, pace, t, within).await.unwrap();
        assert_eq!(busy, SlotOffer::Busy { free_at_us: t.as_microsecond() + 1_000_000 }, "asking again moves nothing");
    }
    let soon = t + jiff::SignedDuration::from_millis(800);
    let SlotOffer::Reserved(second) = worker_b.offer_send_slot(&sender, pace, soon, within).await.unwrap() else {
        panic!("free within the wait")
    };
    assert_eq!(second.at_us, t.as_microsecond() + 1_000_000);
    let reserved = worker_a.reserve_send_slot(&sender, pace, soon).await.unwrap();
    assert_eq!(reserved.at_us, t.as_microsecond() + 2_000_000, "a plain reservation comes after it");

    // Within a whole spacing (a notice, a template): the next slot, most of a spacing away,
    // is reserved; the one after it, further than that, is not.
    let later = t + jiff::SignedDuration::from_millis(2_500);
    let SlotOffer::Reserved(notice) = worker_b.offer_send_slot(&sender, pace, later, pace.interval).await.unwrap()
    else {
        panic!("the next slot is within a spacing")
    };
    assert_eq!(notice.at_us, t.as_microsecond() + 3_000_000);
    let behind = worker_a.offer_send_slot(&sender, pace, later, pace.interval).await.unwrap();
    assert_eq!(behind, SlotOffer::Busy { free_at_us: t.as_microsecond() + 4_000_000 }, "two spacings away");
}
