//! Sends whose answer was lost (docs/guarantees.md, "Uncertain sends are reconciled, not
//! guessed"): uncertain, then recorded from a status report, found in Twilio's list, or
//! sent again after the reconciliation wait, and only WhatsApp unverified.

use bridge_testkit::providers::Outcome;
use jiff::SignedDuration;
use shared::app::deliver_job::{DEFAULT_RECONCILE_WAIT, DeliverError, Delivered};
use shared::domain::{ErrorClass, FailureClass, LegState, ProviderFailure};
use shared::ports::{Routing, StatusLog};
use shared::telemetry::counted;

use super::world::{AFTER_THE_WAIT, RECONCILE_WAIT, World};

#[tokio::test]
async fn a_whatsapp_send_whose_answer_was_lost_is_uncertain_and_not_resent_before_the_wait() {
    assert_eq!(RECONCILE_WAIT.unsigned_abs(), DEFAULT_RECONCILE_WAIT);
    let w = World::new();
    let job = w.forward("hi").await;
    w.wa.lose_next_answer();
    let ambiguous_before = counted("AmbiguousSend", "whatsapp");
    let process = w.process();

    let result = process.deliver(&job, w.now).await;

    let Err(DeliverError::Wait { until, .. }) = result else { panic!("{result:?}") };
    assert!(until >= w.now + RECONCILE_WAIT, "back after the wait: {until}");
    let leg = w.leg(&job);
    assert_eq!(leg.state, LegState::Uncertain);
    assert_eq!(leg.error.map(|e| e.class), Some(FailureClass::Provider(ErrorClass::Ambiguous)));
    assert!(counted("AmbiguousSend", "whatsapp") > ambiguous_before, "counted");

    // Delivered again before the wait, by this process or another: still nothing sent.
    for p in [&process, &w.process()] {
        let early = p.deliver(&job, w.at(SignedDuration::from_secs(30))).await;
        assert!(matches!(early, Err(DeliverError::Wait { .. })), "{early:?}");
    }
    assert_eq!(w.wa.call_count(), 1);
    assert_eq!(w.wa.sends_of(&job.job_id), 1, "the agent has it once");
    assert_eq!(w.state(&job), LegState::Uncertain);
}

#[tokio::test]
async fn a_status_report_naming_a_lost_whatsapp_send_records_it_without_a_second_send() {
    let w = World::new();
    let job = w.forward("hi").await;
    w.wa.lose_next_answer();
    assert!(w.process().deliver(&job, w.now).await.is_err());
    let wamid = w.wa.sent()[0].wamid.clone();
    assert_eq!(w.wa.sent()[0].jobs(), vec![job.job_id.clone()], "the status report will name the job");

    // apply_whatsapp_status: Meta's `sent` status carries the job in its callback data.
    assert!(w.store.note_sent_as(&w.leg_ref(&job), wamid.as_str(), w.at(SignedDuration::from_secs(5))).await.unwrap());
    // Before the wait is over: the id is enough.
    let delivered = w.process().deliver(&job, w.at(SignedDuration::from_secs(10))).await.unwrap();

    assert_eq!(delivered, Delivered::Reconciled { provider_id: wamid.as_str().to_owned() });
    assert_eq!(w.wa.call_count(), 1, "not sent again");
    let leg = w.leg(&job);
    assert_eq!((leg.state, leg.provider_id.as_deref()), (LegState::Sent, Some(wamid.as_str())));
    let route = w.store.find_forwarded_copy(&wamid).await.unwrap().expect("swipe-replies to it are routed");
    assert_eq!(route.job_id, job.job_id);
}

#[tokio::test]
async fn an_uncertain_whatsapp_send_with_no_report_after_the_wait_is_sent_again_and_counted() {
    let w = World::new();
    let job = w.forward("hi").await;
    w.wa.lose_next_answer();
    assert!(w.process().deliver(&job, w.now).await.is_err());
    let resent_before = counted("AmbiguousResolved", "resent_unverified");

    let delivered = w.process().deliver(&job, w.at(AFTER_THE_WAIT)).await.unwrap();

    let Delivered::Sent { provider_id, .. } = delivered else { panic!("{delivered:?}") };
    // The one window docs/guarantees.md leaves: Meta had it, no report came.
    assert_eq!(w.wa.sends_of(&job.job_id), 2, "the agent got it twice");
    assert!(counted("AmbiguousResolved", "resent_unverified") > resent_before, "and it is counted");
    let leg = w.leg(&job);
    assert_eq!((leg.state, leg.provider_id), (LegState::Sent, Some(provider_id)));
    assert_eq!(w.process().deliver(&job, w.at(AFTER_THE_WAIT)).await.unwrap(), Delivered::AlreadyDone);
    assert_eq!(w.wa.call_count(), 2, "and never a third time");
}

#[tokio::test]
async fn an_sms_whose_answer_was_lost_is_found_in_twilios_list_and_recorded_not_resent() {
    let w = World::new();
    let job = w.agent_replies("See you at 9").await;
    w.sms.lose_next_answer();
    let ambiguous_before = counted("AmbiguousSend", "sms");

    let result = w.process().deliver(&job, w.now).await;
    assert!(matches!(result, Err(DeliverError::Wait { .. })), "{result:?}");
    assert_eq!(w.state(&job), LegState::Uncertain);
    assert!(counted("AmbiguousSend", "sms") > ambiguous_before);
    // Before the wait, the list isn't asked yet (a status callback may come).
    let early = w.process().deliver(&job, w.at(SignedDuration::from_secs(30))).await;
    assert!(matches!(early, Err(DeliverError::Wait { .. })), "{early:?}");
    assert_eq!(w.sms.find_calls(), 0);

    let delivered = w.process().deliver(&job, w.at(AFTER_THE_WAIT)).await.unwrap();

    let sid = w.sms.sent()[0].id.clone();
    assert_eq!(delivered, Delivered::Reconciled { provider_id: sid.clone() });
    assert_eq!((w.sms.call_count(), w.sms.find_calls()), (1, 1), "found, not resent");
    assert_eq!(w.sms.sends_of(&job.job_id), 1);
    assert_eq!(w.leg(&job).provider_id.as_deref(), Some(sid.as_str()));
    assert_eq!(w.store.find_sent_sms(&sid).await.unwrap().map(|r| r.job_id), Some(job.job_id.clone()));
}

#[tokio::test]
async fn an_sms_twilios_list_does_not_show_is_sent_after_the_wait() {
    let w = World::new();
    let job = w.agent_replies("See you at 9").await;
    // A timeout that in fact never reached Twilio.
    w.sms.script([Outcome::ambiguous()]);
    let result = w.process().deliver(&job, w.now).await;
    assert!(matches!(result, Err(DeliverError::Wait { .. })), "{result:?}");
    assert_eq!(w.state(&job), LegState::Uncertain);

    let delivered = w.process().deliver(&job, w.at(AFTER_THE_WAIT)).await.unwrap();

    assert!(matches!(delivered, Delivered::Sent { .. }), "{delivered:?}");
    assert_eq!((w.sms.call_count(), w.sms.find_calls()), (2, 1));
    assert_eq!(w.sms.sends_of(&job.job_id), 1, "the customer has it once");
    assert_eq!(w.state(&job), LegState::Sent);
}

#[tokio::test]
async fn an_sms_status_callback_naming_the_lost_send_records_it_without_asking_the_list() {
    let w = World::new();
    let job = w.agent_replies("See you at 9").await;
    w.sms.lose_next_answer();
    assert!(w.process().deliver(&job, w.now).await.is_err());
    let sid = w.sms.sent()[0].id.clone();
    assert_eq!(w.sms.sent()[0].job(), Some(job.job_id.clone()), "the callback URL names the job");

    // apply_sms_status: Twilio's callback for `?job=` carries the sid.
    assert!(w.store.note_sent_as(&w.leg_ref(&job), &sid, w.at(SignedDuration::from_secs(5))).await.unwrap());
    let delivered = w.process().deliver(&job, w.at(SignedDuration::from_secs(10))).await.unwrap();

    assert_eq!(delivered, Delivered::Reconciled { provider_id: sid.clone() });
    assert_eq!((w.sms.call_count(), w.sms.find_calls()), (1, 0));
    assert_eq!(w.state(&job), LegState::Sent);
}

#[tokio::test]
async fn the_same_text_recorded_by_another_job_is_not_taken_for_the_uncertain_sms() {
    let w = World::new();
    let first = w.agent_replies("ok").await;
    let second = w.agent_replies("ok").await;
    assert!(matches!(w.process().deliver(&first, w.now).await.unwrap(), Delivered::Sent { .. }));
    // The second's attempt, right after, times out without reaching Twilio.
    w.sms.script([Outcome::ambiguous()]);
    assert!(w.process().deliver(&second, w.now).await.is_err());

    // Twilio's list (same To, From and body, within the adapter's clock slack of the
    // attempt) shows the first "ok": it is the first job's, so the second is sent.
    let delivered = w.process().deliver(&second, w.at(AFTER_THE_WAIT)).await.unwrap();

    let Delivered::Sent { provider_id, .. } = delivered else { panic!("{delivered:?}") };
    assert_ne!(Some(provider_id.as_str()), w.leg(&first).provider_id.as_deref());
    assert_eq!((w.sms.sends_of(&first.job_id), w.sms.sends_of(&second.job_id)), (1, 1));
    assert_eq!(w.sms.find_calls(), 1, "the list was asked");
}

#[tokio::test]
async fn twilios_list_unavailable_keeps_the_sms_uncertain_and_sends_nothing() {
    let w = World::new();
    let job = w.agent_replies("See you at 9").await;
    w.sms.lose_next_answer();
    assert!(w.process().deliver(&job, w.now).await.is_err());
    w.sms.fail_next_find(ProviderFailure::Rejected {
        http_status: 503,
        code: None,
        message: "unavailable".into(),
        retry_after: None,
    });

    let result = w.process().deliver(&job, w.at(AFTER_THE_WAIT)).await;

    assert!(matches!(result, Err(DeliverError::Retry { .. })), "{result:?}");
    assert_eq!(w.sms.call_count(), 1, "not sent blind");
    assert_eq!(w.state(&job), LegState::Uncertain, "still to be found out");
    let delivered = w.process().deliver(&job, w.at(AFTER_THE_WAIT)).await.unwrap();
    assert_eq!(delivered, Delivered::Reconciled { provider_id: w.sms.sent()[0].id.clone() });
    assert_eq!(w.sms.sends_of(&job.job_id), 1);
}
