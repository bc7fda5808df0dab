//! A job is sent once and recorded; a done job is acknowledged without a send; a job
//! another delivery holds is waited for.

use bridge_testkit::testing::PUBLIC_BASE_URL;
use jiff::SignedDuration;
use shared::app::deliver_job::{DeliverError, Delivered};
use shared::domain::{DeliveryStatus, LegState};
use shared::ports::{Deliveries, ForwardedVia, Routing};

use super::world::{AFTER_THE_WAIT, RECONCILE_WAIT, World, shown_text};

#[tokio::test]
async fn a_forward_is_sent_once_and_recorded_with_its_reply_route() {
    let w = World::new();
    let jobs = w.customer_texts("Is the shop open?").await;
    let job = &jobs[0];

    let delivered = w.process().deliver(job, w.now).await.unwrap();

    let Delivered::Sent { provider_id, via } = delivered else { panic!("{delivered:?}") };
    // The agent never wrote: their window is closed, so the copy goes as the template.
    assert_eq!(via, Some(ForwardedVia::Template));
    let sent = w.wa.sent();
    assert_eq!(sent.len(), 1, "one message reached WhatsApp");
    assert_eq!(sent[0].to, w.agents[0]);
    assert_eq!(sent[0].from, w.line.whatsapp_phone_number_id);
    assert_eq!(sent[0].wamid.as_str(), provider_id);
    assert!(shown_text(&sent[0].message).contains("Is the shop open?"));
    assert_eq!(sent[0].jobs(), vec![job.job_id.clone()], "the send carries its job for status reports");

    let leg = w.leg(job);
    assert_eq!(leg.state, LegState::Sent);
    assert_eq!(leg.provider_id.as_deref(), Some(provider_id.as_str()));
    let route = w.store.find_forwarded_copy(&sent[0].wamid).await.unwrap().expect("swipe-replies are routed");
    assert_eq!(
        (route.job_id, route.agent, route.conversation),
        (job.job_id.clone(), w.agents[0].clone(), w.conversation.clone())
    );
    assert_eq!(w.state(&jobs[1]), LegState::Queued, "the other agent's copy is its own job");
}

#[tokio::test]
async fn an_agents_reply_is_texted_once_with_its_status_callback_and_its_sid_recorded() {
    let w = World::new();
    let job = w.agent_replies("See you at 9").await;

    let delivered = w.process().deliver(&job, w.now).await.unwrap();

    let Delivered::Sent { provider_id, via: None } = delivered else { panic!("{delivered:?}") };
    let sent = w.sms.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (&sent[0].from, &sent[0].to, sent[0].body.as_str()),
        (&w.line.sms_number, &w.conversation.customer, "See you at 9")
    );
    assert_eq!(
        sent[0].status_callback.as_deref(),
        Some(format!("{PUBLIC_BASE_URL}/sms/status?job={}", job.job_id).as_str()),
        "the callback names the leg, so a report that overtakes the record finds it"
    );
    assert_eq!(sent[0].id, provider_id);
    let leg = w.leg(&job);
    assert_eq!(leg.state, LegState::Sent);
    assert_eq!(leg.provider_id.as_deref(), Some(provider_id.as_str()));
    assert_eq!(leg.status, Some(DeliveryStatus::Queued), "Twilio's answer's status is kept");
    let record = w.store.find_sent_sms(&provider_id).await.unwrap().expect("the sid routes status callbacks");
    assert_eq!(record.job_id, job.job_id);
    assert_eq!(record.agent, w.agents[0]);
}

#[tokio::test]
async fn a_redelivered_sent_job_is_acknowledged_without_a_send() {
    let w = World::new();
    let forward = w.forward("hi").await;
    let reply = w.agent_replies("hello").await;
    let first = w.process();
    assert!(matches!(first.deliver(&forward, w.now).await.unwrap(), Delivered::Sent { .. }));
    assert!(matches!(first.deliver(&reply, w.now).await.unwrap(), Delivered::Sent { .. }));

    // SQS delivers both again, to the same process and to another one, later.
    for process in [first, w.process()] {
        let later = w.at(SignedDuration::from_secs(30));
        assert_eq!(process.deliver(&forward, later).await.unwrap(), Delivered::AlreadyDone);
        assert_eq!(process.deliver(&reply, later).await.unwrap(), Delivered::AlreadyDone);
    }
    assert_eq!((w.wa.call_count(), w.sms.call_count()), (1, 1), "never sent twice");
    assert_eq!((w.state(&forward), w.state(&reply)), (LegState::Sent, LegState::Sent));
}

#[tokio::test]
async fn a_redelivered_failed_job_is_acknowledged_without_a_send() {
    let w = World::new();
    let job = w.forward("hi").await;
    w.wa.script([bridge_testkit::providers::Outcome::rejected(400, Some(131026))]);
    assert!(matches!(w.process().deliver(&job, w.now).await.unwrap(), Delivered::Failed { .. }));

    assert_eq!(w.process().deliver(&job, w.at(SignedDuration::from_secs(60))).await.unwrap(), Delivered::AlreadyDone);
    assert_eq!(w.wa.call_count(), 1, "a failed leg is never tried again");
    assert_eq!(w.state(&job), LegState::Failed);
}

#[tokio::test]
async fn a_job_held_by_another_live_lease_waits_for_it_and_sends_nothing() {
    let w = World::new();
    let job = w.forward("hi").await;
    let lease = w.at(SignedDuration::from_secs(60));
    w.store.claim_job(&job, w.now, lease, "another-worker").await.unwrap();

    let result = w.process().deliver(&job, w.at(SignedDuration::from_secs(1))).await;

    let Err(DeliverError::Wait { until, .. }) = result else { panic!("{result:?}") };
    assert_eq!(until, lease, "back when the other delivery's lease ends");
    assert_eq!(w.wa.call_count(), 0);
    assert_eq!(w.state(&job), LegState::Sending, "the holder's claim is untouched");
}

#[tokio::test]
async fn a_job_whose_worker_stopped_mid_send_is_uncertain_after_its_lease_and_sent_only_after_the_wait() {
    let w = World::new();
    let job = w.forward("hi").await;
    // A worker claimed it and stopped dead: nobody knows whether it sent.
    w.store.claim_job(&job, w.now, w.at(SignedDuration::from_secs(60)), "stopped-worker").await.unwrap();
    let process = w.process();

    let result = process.deliver(&job, w.at(SignedDuration::from_secs(61))).await;
    let Err(DeliverError::Wait { until, .. }) = result else { panic!("{result:?}") };
    assert_eq!(until, w.now + RECONCILE_WAIT, "the wait runs from the claim");
    assert_eq!(w.wa.call_count(), 0, "not sent while a status report may still come");
    assert_eq!(w.state(&job), LegState::Uncertain);

    let delivered = process.deliver(&job, w.at(AFTER_THE_WAIT)).await.unwrap();
    assert!(matches!(delivered, Delivered::Sent { .. }), "{delivered:?}");
    assert_eq!(w.wa.sends_of(&job.job_id), 1);
}

#[tokio::test]
async fn a_run_stops_at_a_job_another_delivery_holds_and_gives_back_the_claims_before_it() {
    let w = World::new();
    let first = w.forward("one").await;
    let second = w.forward("two").await;
    w.store.claim_job(&second, w.now, w.at(SignedDuration::from_secs(60)), "another-worker").await.unwrap();

    let result = w.process().deliver_run(&[first.clone(), second.clone()], w.now, Default::default()).await;

    assert!(matches!(result, Err(DeliverError::Wait { .. })), "{result:?}");
    assert_eq!(w.wa.call_count(), 0, "the group keeps its order: nothing overtakes the held job");
    assert_eq!(w.state(&first), LegState::Retry, "the claim made before is given back");
    assert_eq!(w.state(&second), LegState::Sending);
    let retaken = w.process().deliver(&first, w.now).await.unwrap();
    assert!(matches!(retaken, Delivered::Sent { .. }), "free to take at once: {retaken:?}");
}
