//! `StatusLog`: delivery statuses that only move forward, provider ids learnt from status
//! reports, copy routes, added legs, and the notices still waiting.

use jiff::Timestamp;
use shared::domain::{DeliveryStatus, Job, JobId, MessageId};
use shared::domain::{JobKind, LegState};
use shared::ports::{
    AgentEffect, Claim, ConversationStore, ForwardedVia, LegAddress, LegRef, Outbox, StatusChange, ThreadLeg,
};

use super::fixture::*;

pub async fn delivery_statuses_only_move_forward<S: ConversationStore + Outbox>(store: &S) {
    let case = Case::new("forward-only");
    let t = t0();
    let message = started(store, &case.conversation(0), &handle("K7"), t).await;
    let (leg_a, leg_b) = (address(&message.jobs[0]), address(&message.jobs[1]));
    let unchanged = |current: DeliveryStatus| StatusChange::Unchanged { current: Some(current) };

    assert_eq!(report(store, &leg_a, DeliveryStatus::Sent, None, t + secs(1)).await, StatusChange::Advanced);
    assert_eq!(leg(store, &message.jobs[0]).await.status, Some(DeliveryStatus::Sent));
    assert_eq!(report(store, &leg_a, DeliveryStatus::Sent, None, t + secs(2)).await, unchanged(DeliveryStatus::Sent));
    assert_eq!(report(store, &leg_a, DeliveryStatus::Queued, None, t + secs(3)).await, unchanged(DeliveryStatus::Sent));
    assert_eq!(report(store, &leg_a, DeliveryStatus::Delivered, None, t + secs(4)).await, StatusChange::Advanced);
    assert_eq!(
        report(store, &leg_a, DeliveryStatus::Failed, None, t + secs(5)).await,
        unchanged(DeliveryStatus::Delivered)
    );
    assert_eq!(report(store, &leg_a, DeliveryStatus::Read, None, t + secs(6)).await, StatusChange::Advanced);
    assert_eq!(leg(store, &message.jobs[0]).await.status, Some(DeliveryStatus::Read));

    // A failure is final, unless the provider says later that the message did arrive.
    assert_eq!(report(store, &leg_b, DeliveryStatus::Failed, None, t + secs(1)).await, StatusChange::Advanced);
    assert_eq!(
        report(store, &leg_b, DeliveryStatus::Undelivered, None, t + secs(2)).await,
        unchanged(DeliveryStatus::Failed)
    );
    assert_eq!(leg(store, &message.jobs[1]).await.status, Some(DeliveryStatus::Failed));
    assert_eq!(report(store, &leg_b, DeliveryStatus::Delivered, None, t + secs(3)).await, StatusChange::Advanced);

    let no_such_leg = LegAddress { job_id: JobId::for_leg(&leg_a.message_id, 7), ..leg_a.clone() };
    assert_eq!(report(store, &no_such_leg, DeliveryStatus::Sent, None, t + secs(1)).await, StatusChange::Missing);
    let no_such_message = LegAddress { message_id: MessageId::new_v7(), ..leg_a };
    assert_eq!(report(store, &no_such_message, DeliveryStatus::Sent, None, t + secs(1)).await, StatusChange::Missing);
}

pub async fn notices_wait_to_be_sent_only_when_their_status_change_advanced<S: ConversationStore + Outbox>(store: &S) {
    let case = Case::new("status-notices");
    let t = t0();
    let message = started(store, &case.conversation(0), &handle("K7"), t).await;
    let leg_a = address(&message.jobs[0]);
    let (reaction, late, lost) =
        (case.notice(&agent(0), "✅"), case.notice(&agent(0), "sent"), case.notice(&agent(0), "lost"));

    let delivered = store
        .advance_leg_status(&leg_a, DeliveryStatus::Delivered, None, None, std::slice::from_ref(&reaction), t)
        .await;
    assert_eq!(delivered.unwrap(), StatusChange::Advanced);
    assert_eq!(store.unsent_jobs(std::slice::from_ref(&reaction)).await.unwrap(), vec![reaction]);

    let stale = store
        .advance_leg_status(&leg_a, DeliveryStatus::Sent, None, None, std::slice::from_ref(&late), t + secs(1))
        .await;
    assert!(matches!(stale.unwrap(), StatusChange::Unchanged { .. }));
    assert_eq!(store.unsent_jobs(std::slice::from_ref(&late)).await.unwrap(), vec![]);

    let nowhere = LegAddress { job_id: JobId::for_leg(&leg_a.message_id, 7), ..leg_a };
    let missing =
        store.advance_leg_status(&nowhere, DeliveryStatus::Sent, None, None, std::slice::from_ref(&lost), t).await;
    assert_eq!(missing.unwrap(), StatusChange::Missing);
    assert_eq!(store.unsent_jobs(std::slice::from_ref(&lost)).await.unwrap(), vec![]);
}

pub async fn a_status_report_keeps_the_first_provider_id_the_leg_learns<S: ConversationStore + Outbox>(store: &S) {
    let case = Case::new("status-provider-id");
    let t = t0();
    let message = started(store, &case.conversation(0), &handle("K7"), t).await;
    let (reported, forwarded) = (&message.jobs[0], &message.jobs[1]);

    assert_eq!(
        report(store, &address(reported), DeliveryStatus::Sent, Some("wamid.first"), t + secs(1)).await,
        StatusChange::Advanced
    );
    assert_eq!(leg(store, reported).await.provider_id.as_deref(), Some("wamid.first"));
    assert_eq!(
        report(store, &address(reported), DeliveryStatus::Delivered, Some("wamid.other"), t + secs(2)).await,
        StatusChange::Advanced
    );
    assert_eq!(leg(store, reported).await.provider_id.as_deref(), Some("wamid.first"));

    let copy = wamid();
    store.record_forwarded(forwarded, &copy, ForwardedVia::Template, t).await.unwrap();
    assert_eq!(
        report(store, &address(forwarded), DeliveryStatus::Delivered, Some("wamid.other"), t + secs(1)).await,
        StatusChange::Advanced
    );
    assert_eq!(leg(store, forwarded).await.provider_id, Some(copy.as_str().to_owned()));

    // A report that changes nothing teaches nothing either.
    let later = started(store, &case.conversation(1), &handle("M3"), t).await;
    let quiet = &later.jobs[0];
    store.advance_leg_status(&address(quiet), DeliveryStatus::Read, None, None, &[], t).await.unwrap();
    assert_eq!(
        report(store, &address(quiet), DeliveryStatus::Sent, Some("wamid.late"), t + secs(1)).await,
        StatusChange::Unchanged { current: Some(DeliveryStatus::Read) }
    );
    assert_eq!(leg(store, quiet).await.provider_id, None);
}

pub async fn note_sent_as_gives_an_unfinished_leg_its_provider_id<S: ConversationStore + Outbox>(store: &S) {
    let case = Case::new("note-sent-as");
    let t = t0();
    let message = started(store, &case.conversation(0), &handle("K7"), t).await;
    let queued = LegRef::Message(address(&message.jobs[0]));

    assert!(store.note_sent_as(&queued, "wamid.first", t).await.unwrap());
    assert_eq!(leg(store, &message.jobs[0]).await.provider_id.as_deref(), Some("wamid.first"));
    assert!(store.note_sent_as(&queued, "wamid.first", t + secs(1)).await.unwrap(), "the same report again");
    store.note_sent_as(&queued, "wamid.second", t + secs(2)).await.unwrap();
    assert_eq!(leg(store, &message.jobs[0]).await.provider_id.as_deref(), Some("wamid.first"));

    // A notice's leg, held by a worker that stopped: the next claimer learns it went out.
    let notice = case.notice(&agent(0), "Ben answered #K7");
    let record = case.agent_message(&agent(1), t, AgentEffect::Nothing, vec![notice.clone()]);
    store.record_agent_message(&record).await.unwrap();
    store.claim_job(&notice, t, t + secs(60), "a").await.unwrap();
    let standalone = LegRef::Standalone(notice.job_id.clone());
    assert!(store.note_sent_as(&standalone, "wamid.notice", t + secs(1)).await.unwrap());
    assert_eq!(
        store.claim_job(&notice, t + secs(61), t + secs(121), "b").await.unwrap(),
        Claim::Uncertain { attempts: 1, since: t, provider_id: Some("wamid.notice".into()), earlier_in_doubt: false }
    );
    store.record_job_sent(&notice, "wamid.notice", t + secs(62)).await.unwrap();
    assert!(!store.note_sent_as(&standalone, "wamid.notice", t + secs(63)).await.unwrap(), "finished");

    let unknown = case.notice(&agent(0), "never recorded");
    assert!(!store.note_sent_as(&LegRef::Standalone(unknown.job_id), "wamid.x", t).await.unwrap());
    let first = address(&message.jobs[0]);
    let no_such_leg = LegAddress { job_id: JobId::for_leg(&first.message_id, 7), ..first };
    assert!(!store.note_sent_as(&LegRef::Message(no_such_leg), "wamid.x", t).await.unwrap());
}

pub async fn a_copy_route_learnt_from_a_status_report_routes_replies<S: ConversationStore + Outbox>(store: &S) {
    let case = Case::new("copy-route");
    let t = t0();
    let message = started(store, &case.conversation(0), &handle("K7"), t).await;
    let (copy, copy_wamid) = (copy_of(&message.jobs[1]), wamid());

    assert_eq!(store.find_forwarded_copy(&copy_wamid).await.unwrap(), None);
    store.record_copy_route(&copy, &copy_wamid, t).await.unwrap();
    assert_eq!(store.find_forwarded_copy(&copy_wamid).await.unwrap(), Some(copy));
}

pub async fn a_leg_is_added_to_its_message_once<S: ConversationStore + Outbox>(store: &S) {
    let case = Case::new("add-leg");
    let t = t0();
    let message = started(store, &case.conversation(0), &handle("K7"), t).await;
    // The copy forwarded again as the template after a 131047.
    let template = Job { job_id: message.jobs[0].job_id.template_resend(), ..message.jobs[0].clone() };

    store.add_leg(&template).await.unwrap();
    assert_eq!(
        leg(store, &template).await,
        ThreadLeg {
            job_id: template.job_id.clone(),
            kind: JobKind::ForwardToAgent,
            to: agent(0).as_str().into(),
            state: LegState::Queued,
            status: None,
            provider_id: None,
            error: None,
        }
    );
    assert_eq!(store.thread(&case.conversation(0)).await.unwrap()[0].legs.len(), 3);
    assert_eq!(store.claim_job(&template, t, t + secs(60), "a").await.unwrap(), Claim::Claimed { attempts: 0 });
    store.add_leg(&template).await.unwrap();
    assert_eq!(leg(store, &template).await.state, LegState::Sending, "adding it again changes nothing");

    let gone = case.conversation(1);
    let orphan = forward_job(&gone, &MessageId::new_v7(), 0, &agent(0), t);
    store.add_leg(&orphan).await.unwrap();
    assert_eq!(store.claim_job(&orphan, t, t + secs(60), "a").await.unwrap(), Claim::Missing);
    assert_eq!(store.thread(&gone).await.unwrap(), vec![]);
}

pub async fn unsent_jobs_are_the_recorded_notices_still_waiting<S: ConversationStore + Outbox>(store: &S) {
    let case = Case::new("unsent");
    let t = t0();
    let notice = |text: &str| case.notice(&agent(0), text);
    let (queued, sent, sending, failed) = (notice("queued"), notice("sent"), notice("sending"), notice("failed"));
    let (unknown, follow_up) = (notice("never recorded"), notice("the notice failed"));
    let record = case.agent_message(
        &agent(1),
        t,
        AgentEffect::Nothing,
        vec![queued.clone(), sent.clone(), sending.clone(), failed.clone()],
    );
    store.record_agent_message(&record).await.unwrap();
    store.record_job_sent(&sent, "wamid.sent", t).await.unwrap();
    store.claim_job(&sending, t, t + secs(60), "a").await.unwrap();
    store.claim_job(&failed, t, t + secs(60), "a").await.unwrap();
    store.record_job_failed(&failed, &permanent(), std::slice::from_ref(&follow_up), t + secs(1)).await.unwrap();
    // A message's own legs are never "unsent notices", queued as they are.
    let message = started(store, &case.conversation(0), &handle("K7"), t).await;

    let asked = [message.jobs[0].clone(), queued.clone(), sent, sending.clone(), failed, unknown, follow_up.clone()];
    assert_eq!(store.unsent_jobs(&asked).await.unwrap(), vec![queued, sending, follow_up]);
    assert_eq!(store.unsent_jobs(&[]).await.unwrap(), vec![]);
}

/// A status report on `leg` (a failure with its provider code), received `at`.
async fn report<S: ConversationStore>(
    store: &S,
    leg: &LegAddress,
    status: DeliveryStatus,
    provider_id: Option<&str>,
    at: Timestamp,
) -> StatusChange {
    let code = status.is_failure().then_some(131026);
    store.advance_leg_status(leg, status, code, provider_id, &[], at).await.unwrap()
}
