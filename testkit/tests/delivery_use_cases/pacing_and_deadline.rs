//! A burst for one agent coalesced into one WhatsApp message; sends paced per number; the
//! invocation's deadline: nothing started that can't finish, the rest handed back untried.

use std::time::{Duration, Instant};

use bridge_testkit::memory::StoreOp;
use bridge_testkit::providers::Outcome;
use jiff::SignedDuration;
use shared::app::deliver_job::{Deadline, DeliverError, Delivered, SendRates};
use shared::domain::LegState;
use shared::ports::StatusLog;

use super::world::{World, shown_text};

#[tokio::test]
async fn a_burst_of_texts_for_one_agent_goes_as_one_whatsapp_message() {
    let w = World::new();
    w.open_window().await;
    let texts = ["Hi", "Is the shop open", "on Sunday?"];
    let mut burst = Vec::new();
    let mut other_agent = Vec::new();
    for text in texts {
        let jobs = w.customer_texts(text).await;
        burst.push(jobs[0].clone());
        other_agent.push(jobs[1].clone());
    }

    let delivered = w.process().deliver_run(&burst, w.now, Deadline::NONE).await.unwrap();

    let Delivered::Sent { provider_id, .. } = delivered else { panic!("{delivered:?}") };
    let sent = w.wa.sent();
    assert_eq!((w.wa.call_count(), sent.len()), (1, 1), "one message for the burst");
    let shown = shown_text(&sent[0].message);
    let positions: Vec<usize> = texts.iter().map(|t| shown.find(t).unwrap()).collect();
    assert!(positions.is_sorted(), "every text, in order: {shown}");
    let ids: Vec<_> = burst.iter().map(|j| j.job_id.clone()).collect();
    assert_eq!(sent[0].jobs(), ids, "its status reports name every job");
    for job in &burst {
        let leg = w.leg(job);
        assert_eq!((leg.state, leg.provider_id.as_deref()), (LegState::Sent, Some(provider_id.as_str())));
    }
    assert!(other_agent.iter().all(|job| w.state(job) == LegState::Queued), "another agent's copies are theirs");
}

#[tokio::test]
async fn sends_from_one_number_are_spaced_to_its_rate_and_another_number_is_not_held_up() {
    let w = World::new();
    let interval = Duration::from_millis(500);
    let process =
        w.process_with(SendRates { whatsapp_per_second: 10_000.0, sms_per_second: 2.0, whatsapp_pair_seconds: 0.0 });
    let first = w.agent_replies("one").await;
    let forward = w.forward("meanwhile").await;
    let second = w.agent_replies("two").await;

    for job in [&first, &forward, &second] {
        assert!(matches!(process.deliver(job, w.now).await.unwrap(), Delivered::Sent { .. }));
    }

    let sms = w.sms.calls();
    let whatsapp = w.wa.calls();
    assert_eq!((sms.len(), whatsapp.len()), (2, 1));
    // Unpaced, the second would follow within a millisecond or two.
    assert!(sms[1].at - sms[0].at >= interval * 4 / 5, "{:?}", sms[1].at - sms[0].at);
    assert!(whatsapp[0].at < sms[0].at + interval, "the WhatsApp number's send didn't wait for the SMS number's slot");
}

#[tokio::test]
async fn an_idle_whatsapp_number_sends_a_burst_at_once_then_keeps_to_its_rate() {
    let w = World::new();
    // Two a second: a burst of two (the batch's ten, capped by the rate), then one a second.
    let process =
        w.process_with(SendRates { whatsapp_per_second: 2.0, sms_per_second: 10_000.0, whatsapp_pair_seconds: 0.0 });
    let copies = [w.forward("one").await, w.forward("two").await, w.forward("three").await];

    for copy in &copies {
        assert!(matches!(process.deliver(copy, w.now).await.unwrap(), Delivered::Sent { .. }));
    }

    let sent = w.wa.calls();
    assert_eq!(sent.len(), 3);
    assert!(sent[1].at - sent[0].at < Duration::from_millis(300), "the burst goes at once");
    assert!(sent[2].at - sent[0].at >= Duration::from_millis(800), "then the rate: {:?}", sent[2].at - sent[0].at);
}

#[tokio::test]
async fn when_the_store_cant_reserve_a_slot_the_process_keeps_the_pace_alone() {
    let w = World::new();
    let interval = Duration::from_millis(500);
    let process =
        w.process_with(SendRates { whatsapp_per_second: 10_000.0, sms_per_second: 2.0, whatsapp_pair_seconds: 0.0 });
    let first = w.agent_replies("one").await;
    let second = w.agent_replies("two").await;
    w.store.fail_next(StoreOp::ReserveSendSlot, 2);

    for job in [&first, &second] {
        assert!(
            matches!(process.deliver(job, w.now).await.unwrap(), Delivered::Sent { .. }),
            "a slot fault costs no send"
        );
    }

    let sms = w.sms.calls();
    assert_eq!(sms.len(), 2);
    assert!(sms[1].at - sms[0].at >= interval * 4 / 5, "still spaced: {:?}", sms[1].at - sms[0].at);
}

#[tokio::test]
async fn two_worker_processes_share_one_numbers_pace() {
    let w = World::new();
    let interval = Duration::from_millis(500);
    let rates = SendRates { whatsapp_per_second: 10_000.0, sms_per_second: 2.0, whatsapp_pair_seconds: 0.0 };
    // Two instances of the worker, each with its own memory, on the one store.
    let (a, b) = (w.process_with(rates), w.process_with(rates));
    let first = w.agent_replies("one").await;
    let second = w.agent_replies("two").await;

    let (one, two) = tokio::join!(a.deliver(&first, w.now), b.deliver(&second, w.now));

    assert!(matches!(one.unwrap(), Delivered::Sent { .. }));
    assert!(matches!(two.unwrap(), Delivered::Sent { .. }));
    let sms = w.sms.calls();
    assert_eq!(sms.len(), 2);
    let gap = if sms[1].at > sms[0].at { sms[1].at - sms[0].at } else { sms[0].at - sms[1].at };
    // Each alone would send at once: together they keep the number's rate.
    assert!(gap >= interval * 4 / 5, "{gap:?}");
}

#[tokio::test]
async fn a_job_is_not_started_when_the_deadline_leaves_no_time_to_finish_it() {
    let w = World::new();
    let job = w.forward("hi").await;
    // A provider call may take 10 s (the default timeout), plus the writes after it.
    let result =
        w.process().deliver_run(std::slice::from_ref(&job), w.now, Deadline::after(Duration::from_secs(5))).await;

    assert!(matches!(result, Err(DeliverError::OutOfTime)), "{result:?}");
    assert_eq!(w.store.calls(StoreOp::ClaimJob), 0, "not even claimed");
    assert_eq!(w.state(&job), LegState::Queued);
    assert_eq!(w.wa.call_count(), 0);

    let enough = Deadline::after(Duration::from_secs(12));
    let delivered = w.process().deliver_run(std::slice::from_ref(&job), w.now, enough).await.unwrap();
    assert!(matches!(delivered, Delivered::Sent { .. }), "with time for the call and its writes: {delivered:?}");
}

#[tokio::test]
async fn the_rest_of_a_batch_whose_turn_falls_past_the_deadline_is_handed_back_untried() {
    let w = World::new();
    let first = w.forward("one").await;
    let rest = [w.forward("two").await, w.forward("three").await];
    // One WhatsApp send a second from the line's number: the second run's slot leaves no
    // time to finish before the deadline (the send's timeout and the finishing margin).
    let process = w
        .process_with(SendRates { whatsapp_per_second: 1.0, sms_per_second: 1.0, whatsapp_pair_seconds: 0.0 })
        .with_send_timeout(Duration::from_millis(100));
    let deadline = Deadline::after(Duration::from_secs(2));
    let started = Instant::now();

    let sent = process.deliver_run(std::slice::from_ref(&first), w.now, deadline).await.unwrap();
    let handed_back = process.deliver_run(&rest, w.now, deadline).await;

    assert!(matches!(sent, Delivered::Sent { .. }), "{sent:?}");
    assert!(matches!(handed_back, Err(DeliverError::OutOfTime)), "{handed_back:?}");
    assert!(started.elapsed() < Duration::from_secs(1), "it didn't wait for a slot it can't use");
    assert_eq!(w.wa.call_count(), 1, "the rest untried");
    for job in &rest {
        assert_eq!(w.state(job), LegState::Retry, "given back, free for the next invocation");
    }
    // The slot it didn't use was given back: the next send from the number waits only for
    // the one after the first send, shared by every process.
    let next_started = Instant::now();
    let next = w.process().deliver_run(&rest, w.now, Deadline::NONE).await.unwrap();
    assert!(matches!(next, Delivered::Sent { .. }), "taken at once, not waited for: {next:?}");
    assert!(next_started.elapsed() < Duration::from_millis(1500), "{:?}", next_started.elapsed());
    assert_eq!(w.wa.call_count(), 2);
}

#[tokio::test]
async fn a_provider_call_is_cut_at_the_deadline_and_the_job_left_uncertain() {
    let w = World::new();
    let job = w.forward("hi").await;
    // Meta takes the message and never answers.
    w.wa.script([Outcome::AcceptHang]);
    let process = w.process().with_send_timeout(Duration::from_millis(10));
    let deadline_in = Duration::from_millis(1600);
    let started = Instant::now();

    let result = process.deliver_run(std::slice::from_ref(&job), w.now, Deadline::after(deadline_in)).await;

    assert!(started.elapsed() < deadline_in, "done before the deadline: {:?}", started.elapsed());
    assert!(matches!(result, Err(DeliverError::Wait { .. })), "cut off: it may have gone out: {result:?}");
    assert_eq!(w.state(&job), LegState::Uncertain);
    // It had: the status report finds it, and it isn't sent again.
    let wamid = w.wa.sent()[0].wamid.clone();
    assert!(w.store.note_sent_as(&w.leg_ref(&job), wamid.as_str(), w.now).await.unwrap());
    let delivered = w.process().deliver(&job, w.at(SignedDuration::from_secs(5))).await.unwrap();
    assert_eq!(delivered, Delivered::Reconciled { provider_id: wamid.as_str().to_owned() });
    assert_eq!((w.wa.call_count(), w.wa.sends_of(&job.job_id)), (1, 1));
}

#[tokio::test]
async fn a_job_handed_back_at_the_deadline_spends_no_attempt() {
    let w = World::new();
    let first = w.forward("one").await;
    let second = w.forward("two").await;
    let process = w
        .process_with(SendRates { whatsapp_per_second: 0.1, sms_per_second: 1.0, whatsapp_pair_seconds: 0.0 })
        .with_send_timeout(Duration::from_millis(100));
    let deadline = Deadline::after(Duration::from_secs(5));
    assert!(process.deliver_run(std::slice::from_ref(&first), w.now, deadline).await.is_ok());
    let handed_back = process.deliver_run(std::slice::from_ref(&second), w.now, deadline).await;
    assert!(matches!(handed_back, Err(DeliverError::OutOfTime)), "{handed_back:?}");

    w.wa.script([Outcome::rejected(503, None)]);
    let result = w.process().deliver(&second, w.at(SignedDuration::from_secs(1))).await;

    assert!(matches!(result, Err(DeliverError::Retry { attempt: 1, .. })), "its first real attempt: {result:?}");
}
