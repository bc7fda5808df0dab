//! An agent's answers to a digest (docs/using.md, "A busy line: digests"): a swipe-reply
//! names none of its conversations, so the text's handle decides or the agent is asked
//! (never their focus); its statuses are each of its copies'; a late 131047 re-sends every
//! copy it carried, each to its own conversation, as the template.

use shared::app::receive_whatsapp::MessageHandled;
use shared::domain::routing::RouteRule;
use shared::domain::{DeliveryStatus, JobKind, JobPayload, LegState};
use shared::ports::{Deliveries, StatusChange};

use super::fixture::*;

/// Customers 0 and 1 texted; agent 0 got both copies as one digest, returned.
async fn digest(w: &World) -> (Vec<shared::domain::Job>, shared::domain::Wamid) {
    let first = w.customer_texts(0, "Is my bike ready?", t0()).await;
    let second = w.customer_texts(1, "Do you fix e-bikes?", t0() + secs(1)).await;
    let jobs = vec![first.jobs[0].clone(), second.jobs[0].clone()];
    let copy = wamid("digest");
    for job in &jobs {
        w.store.claim_job(job, t0(), t0() + secs(60), "worker").await.unwrap();
    }
    let refs: Vec<&shared::domain::Job> = jobs.iter().collect();
    w.store.record_digest_sent(&refs, &copy, t0() + secs(2)).await.unwrap();
    (jobs, copy)
}

#[tokio::test]
async fn a_swipe_reply_to_a_digest_is_asked_which_conversation_unless_it_names_one() {
    let w = World::new();
    let (_, copy) = digest(&w).await;
    // A focus on customer 0 (an earlier reply): a swipe on the digest must not use it.
    w.receive(text(0, "#K7"), t0() + secs(3)).await;
    w.take();

    assert_eq!(w.receive(swipe(0, "Ready at 5", &copy), t0() + secs(4)).await, MessageHandled::AskedWhich);
    assert!(sms_of(&w.take()).is_empty(), "nothing texted to either customer");

    let named = w.receive(swipe(0, "#M3 Yes we do", &copy), t0() + secs(5)).await;
    assert_eq!(
        named,
        MessageHandled::Relayed { conversation: w.conversation(1), handle: handle("M3"), rule: RouteRule::Handle }
    );
    let texted = texted(&w.take());
    assert_eq!(texted, [(customer(1), "Yes we do".to_owned())]);
}

#[tokio::test]
async fn a_digests_status_is_each_copys_and_a_late_131047_resends_each_as_the_template() {
    let w = World::new();
    let (jobs, copy) = digest(&w).await;
    let delivered = w.status(&status(&copy, "delivered", None)).await.unwrap();
    assert_eq!(delivered.change, StatusChange::Advanced);
    for job in &jobs {
        assert_eq!(w.store.leg(job).unwrap().status, Some(DeliveryStatus::Delivered), "{job:?}");
    }

    let w = World::new();
    let (jobs, copy) = digest(&w).await;
    let failed = w.status(&status(&copy, "failed", Some(131047))).await.unwrap();
    assert_eq!(failed.resent_as_template, 2);
    let resends = w.take();
    let to: Vec<_> = resends
        .iter()
        .map(|job| match &job.payload {
            JobPayload::ForwardToAgent(f) => (f.conversation.clone(), f.agent.clone()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(to, [(w.conversation(0), agent(0)), (w.conversation(1), agent(0))], "each to its own conversation");
    for (resend, job) in resends.iter().zip(&jobs) {
        assert_eq!(resend.job_id, job.job_id.template_resend());
        let leg = w.store.leg(resend).unwrap();
        assert_eq!((leg.kind, leg.state), (JobKind::ForwardToAgent, LegState::Queued));
    }
}

/// A digest whose answer the worker lost: its `sent` report names each job's handle, so every
/// part's leg learns the wamid (its next delivery records it, nothing is sent again) and the
/// routing record lists the parts, a digest still; recorded again part by part afterwards, it
/// stays one.
#[tokio::test]
async fn a_digest_whose_answer_was_lost_is_learnt_of_from_its_sent_report_part_by_part() {
    use shared::domain::SendTracking;
    let w = World::new();
    let first = w.customer_texts(0, "Is my bike ready?", t0()).await;
    let second = w.customer_texts(1, "Do you fix e-bikes?", t0() + secs(1)).await;
    let jobs = [first.jobs[0].clone(), second.jobs[0].clone()];
    for job in &jobs {
        w.store.claim_job(job, t0(), t0() + secs(60), "worker").await.unwrap();
    }
    let copy = wamid("digest-lost");
    let mut report = status(&copy, "sent", None);
    report.recipient = Some(agent(0));
    report.tracking = Some(SendTracking {
        line: w.line.id.clone(),
        handle: None,
        jobs: jobs.iter().map(|j| j.job_id.clone()).collect(),
        part_handles: vec![handle("K7"), handle("M3")],
    });
    let handled = w.status(&report).await.unwrap();
    assert_eq!(handled.noted, 2);
    for job in &jobs {
        assert_eq!(w.store.leg(job).unwrap().provider_id.as_deref(), Some(copy.as_str()), "{job:?}");
    }
    let route = shared::ports::Routing::find_forwarded_copy(&w.store, &copy).await.unwrap().unwrap();
    assert_eq!(route.conversations(), [w.conversation(0), w.conversation(1)]);
    assert!(route.is_digest());
    // The worker's next delivery records each part as reconciled: the record stays the digest's.
    for job in &jobs {
        w.store.record_forwarded(job, &copy, shared::ports::ForwardedVia::Reconciled, t0() + secs(40)).await.unwrap();
    }
    let after = shared::ports::Routing::find_forwarded_copy(&w.store, &copy).await.unwrap().unwrap();
    assert_eq!(after, route);
    assert_eq!(w.receive(swipe(0, "Ready at 5", &copy), t0() + secs(50)).await, MessageHandled::AskedWhich);
}
