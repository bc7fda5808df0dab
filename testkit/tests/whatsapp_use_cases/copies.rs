//! Fewer copies (docs/using.md, "Fewer copies"): after a Claim the conversation's texts go to
//! the claimer only, `/unclaim` and another agent's Claim move them, `/away` agents get no
//! copies and no notices, and when nobody is on duty everyone gets them with the line's
//! `no_agent` reply. Each customer text here goes through `receive_sms`, as the webhook's.

use bridge_testkit::memory::StoreOp;
use jiff::Timestamp;
use shared::app::copy_facts_cache::{CopyFactsCache, DUTY_FRESH};
use shared::app::receive_sms::receive_sms;
use shared::app::receive_whatsapp::{AgentAction, MessageHandled, NotRelayed};
use shared::app::retry_budget::RetryBudget;
use shared::domain::compliance::AutoReplyReason;
use shared::domain::copies::ClaimedCopies;
use shared::domain::whatsapp_message::ButtonAction;
use shared::domain::{Handle, InboundSms, Job, JobPayload, ProviderMessageId, WaId, notices};
use shared::ports::Conversations;

use super::fixture::*;

/// Customer `n` texts the line through `receive_sms`, as a webhook instance that has seen
/// nothing yet; the jobs it enqueued.
async fn customer_sends(w: &World, n: usize, body: &str, at: Timestamp) -> Vec<Job> {
    customer_sends_to(w, &CopyFactsCache::new(), n, body, at).await
}

/// The same through a warm webhook instance that remembers what it saw in `seen`.
async fn customer_sends_to(w: &World, seen: &CopyFactsCache, n: usize, body: &str, at: Timestamp) -> Vec<Job> {
    let sms = InboundSms {
        provider_message_id: ProviderMessageId::parse(&format!("SM{}", uuid::Uuid::now_v7().simple())).unwrap(),
        from: customer(n),
        to: w.line.sms_number.clone(),
        body: body.into(),
        attachments: vec![],
        received_at: at,
    };
    let mut rng = fastrand::Rng::with_seed(7);
    receive_sms(&w.store, &w.queue, &w.line, sms, &mut rng, &RetryBudget::none(), seen).await.unwrap();
    w.take()
}

/// Who got a copy among `jobs`.
fn copied_to(jobs: &[Job]) -> Vec<WaId> {
    jobs.iter()
        .filter_map(|job| match &job.payload {
            JobPayload::ForwardToAgent(copy) => Some(copy.agent.clone()),
            _ => None,
        })
        .collect()
}

async fn handle_of(w: &World, n: usize) -> Handle {
    w.store.conversation(&w.conversation(n)).await.unwrap().unwrap().handle
}

/// Agent `agent` presses Claim on customer `n`'s conversation.
async fn claims(w: &World, agent: usize, n: usize, at: Timestamp) -> Vec<Job> {
    let id = ButtonAction::Claim.button_id(&handle_of(w, n).await);
    assert_eq!(w.receive(button(agent, &id), at).await, MessageHandled::Acted { action: AgentAction::Claim });
    w.take()
}

#[tokio::test]
async fn after_a_claim_the_conversations_texts_go_to_the_claimer_only() {
    let w = World::new();
    assert_eq!(copied_to(&customer_sends(&w, 0, "Is my bike ready?", t0()).await), [agent(0), agent(1)]);
    let told = claims(&w, 0, 0, t0() + secs(1)).await;
    let handle = handle_of(&w, 0).await;
    assert_eq!(notices_to(&told, 0), [notices::you_claimed(&handle, &customer(0), true)]);
    assert_eq!(notices_to(&told, 1), [notices::claimed_by(&handle, &customer(0), "Ana")]);

    let next = customer_sends(&w, 0, "Also the lights", t0() + secs(2)).await;

    assert_eq!(copied_to(&next), [agent(0)]);
    // Another customer's text still reaches everyone.
    assert_eq!(copied_to(&customer_sends(&w, 1, "Hello", t0() + secs(3)).await), [agent(0), agent(1)]);
}

#[tokio::test]
async fn another_agents_claim_moves_the_copies_and_unclaim_gives_them_back_to_everyone() {
    let w = World::new();
    customer_sends(&w, 0, "Is my bike ready?", t0()).await;
    claims(&w, 0, 0, t0() + secs(1)).await;
    claims(&w, 1, 0, t0() + secs(2)).await;
    assert_eq!(copied_to(&customer_sends(&w, 0, "Hello?", t0() + secs(3)).await), [agent(1)]);

    let handle = handle_of(&w, 0).await;
    let handled = w.receive(text(1, &format!("/unclaim {handle}")), t0() + secs(4)).await;

    assert_eq!(handled, MessageHandled::Acted { action: AgentAction::Unclaim });
    let told = w.take();
    assert_eq!(notices_to(&told, 1), [notices::you_unclaimed(&handle, &customer(0))]);
    assert_eq!(notices_to(&told, 0), [notices::unclaimed_by(&handle, &customer(0), "Ben")]);
    assert_eq!(copied_to(&customer_sends(&w, 0, "Anyone?", t0() + secs(5)).await), [agent(0), agent(1)]);
    // Nothing left to give back.
    let again = w.receive(text(1, &format!("/unclaim {handle}")), t0() + secs(6)).await;
    assert_eq!(again, MessageHandled::NotRelayed { why: NotRelayed::NotClaimed });
    assert_eq!(notices_to(&w.take(), 1), [notices::not_claimed(&handle)]);
}

#[tokio::test]
async fn unclaim_without_a_handle_gives_back_the_focused_conversation_or_asks_which() {
    let w = World::new();
    let which = w.receive(text(0, "/unclaim"), t0()).await;
    assert_eq!(which, MessageHandled::NotRelayed { why: NotRelayed::NotClaimed });
    assert_eq!(notices_to(&w.take(), 0), [notices::unclaim_which()]);

    customer_sends(&w, 0, "Is my bike ready?", t0()).await;
    claims(&w, 0, 0, t0() + secs(1)).await; // a claim focuses the claimer on it
    assert_eq!(
        w.receive(text(0, "/unclaim"), t0() + secs(2)).await,
        MessageHandled::Acted { action: AgentAction::Unclaim }
    );
    assert_eq!(w.store.conversation(&w.conversation(0)).await.unwrap().unwrap().claimer, None);
}

#[tokio::test]
async fn an_agent_away_gets_no_copies_and_no_notices_until_back() {
    let w = World::new();
    assert_eq!(w.receive(text(1, "/away"), t0()).await, MessageHandled::Acted { action: AgentAction::Away });
    assert_eq!(notices_to(&w.take(), 1), [notices::you_are_away()]);

    assert_eq!(copied_to(&customer_sends(&w, 0, "Is my bike ready?", t0() + secs(1)).await), [agent(0)]);
    let told = claims(&w, 0, 0, t0() + secs(2)).await;
    assert!(notices_to(&told, 1).is_empty(), "no claim notice to an agent away: {told:?}");

    assert_eq!(w.receive(text(1, "/back"), t0() + secs(3)).await, MessageHandled::Acted { action: AgentAction::Back });
    w.take();
    assert_eq!(copied_to(&customer_sends(&w, 1, "Hi", t0() + secs(4)).await), [agent(0), agent(1)]);
}

#[tokio::test]
async fn a_claimer_who_goes_away_hands_the_copies_to_those_on_duty() {
    let w = World::new();
    customer_sends(&w, 0, "Is my bike ready?", t0()).await;
    claims(&w, 0, 0, t0() + secs(1)).await;
    w.receive(text(0, "/away"), t0() + secs(2)).await;
    w.take();

    assert_eq!(copied_to(&customer_sends(&w, 0, "Hello?", t0() + secs(3)).await), [agent(1)]);
}

#[tokio::test]
async fn when_nobody_is_on_duty_everyone_gets_the_copy_and_the_customer_the_no_agent_reply() {
    let mut line = test_line();
    line.auto_replies.no_agent = Some("Nobody is in right now; we'll answer soon.".into());
    let w = World::with_line(line);
    w.receive(text(0, "/away"), t0()).await;
    w.receive(text(1, "/away"), t0()).await;
    w.take();

    let jobs = customer_sends(&w, 0, "Is my bike ready?", t0() + secs(1)).await;

    assert_eq!(copied_to(&jobs), [agent(0), agent(1)], "nothing is missed");
    let replies: Vec<_> = jobs
        .iter()
        .filter_map(|job| match &job.payload {
            JobPayload::AutoReply(reply) => Some(reply.reason),
            _ => None,
        })
        .collect();
    assert_eq!(replies, [AutoReplyReason::NoAgent]);
}

#[tokio::test]
async fn a_line_can_keep_copying_a_claimed_conversation_to_everyone_on_duty() {
    let mut line = test_line();
    line.claimed_copies = ClaimedCopies::Everyone;
    let w = World::with_line(line);
    customer_sends(&w, 0, "Is my bike ready?", t0()).await;
    let told = claims(&w, 0, 0, t0() + secs(1)).await;
    assert_eq!(notices_to(&told, 0), [notices::you_claimed(&handle_of(&w, 0).await, &customer(0), false)]);

    assert_eq!(copied_to(&customer_sends(&w, 0, "Hello?", t0() + secs(2)).await), [agent(0), agent(1)]);
}

#[tokio::test]
async fn a_store_that_cant_say_who_holds_the_conversation_costs_no_message() {
    let w = World::new();
    customer_sends(&w, 0, "Is my bike ready?", t0()).await;
    claims(&w, 0, 0, t0() + secs(1)).await;
    w.store.fail_next(StoreOp::CopyFacts, 1);

    let jobs = customer_sends(&w, 0, "Hello?", t0() + secs(2)).await;

    assert_eq!(copied_to(&jobs), [agent(0), agent(1)], "everyone, rather than nobody");
    assert_eq!(w.thread(0).await.len(), 2, "recorded");
}

#[tokio::test]
async fn a_copys_job_id_is_the_agents_place_in_the_line_whoever_else_gets_one() {
    let w = World::new();
    let both = customer_sends(&w, 0, "Is my bike ready?", t0()).await;
    claims(&w, 1, 0, t0() + secs(1)).await;
    let one = customer_sends(&w, 0, "Hello?", t0() + secs(2)).await;
    let suffix = |job: &Job| job.job_id.as_str().rsplit_once('.').map(|(_, leg)| leg.to_owned());
    let JobPayload::ForwardToAgent(first) = &both[1].payload else { panic!() };
    assert_eq!(first.agent, agent(1));
    assert_eq!(suffix(&one[0]), suffix(&both[1]), "agent 1's leg keeps its number");
}

#[tokio::test]
async fn an_agent_outside_their_own_hours_gets_no_copy_and_no_claim_notice() {
    let mut line = test_line();
    // Agent 1 works one hour a week, never at t0 (a Wednesday noon, UTC).
    let hours = r#"{ "time_zone": "Etc/UTC", "weekly": [{ "days": ["mon"], "open": "03:00", "close": "04:00" }] }"#;
    line.agent_hours.insert(agent(1), serde_json::from_str(hours).unwrap());
    let w = World::with_line(line);

    assert_eq!(copied_to(&customer_sends(&w, 0, "Is my bike ready?", t0()).await), [agent(0)]);
    let told = claims(&w, 0, 0, t0() + secs(1)).await;
    assert!(notices_to(&told, 1).is_empty(), "{told:?}");
}

/// A warm webhook reads who holds the conversation and who is away once, then decides from
/// what it saw; the claim it guesses is checked by the append itself, so a claim made
/// elsewhere since still decides the next text's copies (one refused append, no read).
#[tokio::test]
async fn a_warm_webhook_reads_the_facts_once_and_a_claim_it_did_not_see_still_decides() {
    let (w, seen) = (World::new(), CopyFactsCache::new());
    let reads = || w.store.calls(StoreOp::CopyFacts);
    let appends = || w.store.calls(StoreOp::AppendInbound);

    assert_eq!(copied_to(&customer_sends_to(&w, &seen, 0, "first", t0()).await), [agent(0), agent(1)]);
    assert_eq!(reads(), 1, "a cold instance reads");
    assert_eq!(copied_to(&customer_sends_to(&w, &seen, 0, "second", t0() + secs(1)).await), [agent(0), agent(1)]);
    assert_eq!(reads(), 1, "a warm one doesn't");

    claims(&w, 1, 0, t0() + secs(2)).await;
    let appends_before = appends();
    let after_claim = customer_sends_to(&w, &seen, 0, "third", t0() + secs(3)).await;
    assert_eq!(copied_to(&after_claim), [agent(1)], "the claim decides though this instance didn't see it");
    assert_eq!((reads(), appends() - appends_before), (1, 2), "one refused append, no read");
    let texts: Vec<String> = w.thread(0).await.into_iter().map(|m| m.body).collect();
    assert_eq!(texts, ["first", "second", "third"], "recorded once");

    let appends_before = appends();
    assert_eq!(copied_to(&customer_sends_to(&w, &seen, 0, "fourth", t0() + secs(4)).await), [agent(1)]);
    assert_eq!((reads(), appends() - appends_before), (1, 1), "now remembered");
}

/// `/away` and `/back` reach a warm webhook once what it read is `DUTY_FRESH` old: until then
/// an agent just away may get a copy more, and nothing is missed.
#[tokio::test]
async fn away_reaches_a_warm_webhook_within_its_freshness() {
    let (w, seen) = (World::new(), CopyFactsCache::new());
    customer_sends_to(&w, &seen, 0, "first", t0()).await;
    w.receive(text(0, "/away"), t0() + secs(1)).await;
    w.take();
    let stale = t0() + DUTY_FRESH - secs(1);
    assert_eq!(copied_to(&customer_sends_to(&w, &seen, 0, "still fresh", stale).await), [agent(0), agent(1)]);
    assert_eq!(copied_to(&customer_sends_to(&w, &seen, 0, "read again", t0() + DUTY_FRESH).await), [agent(1)]);
    assert_eq!(w.store.calls(StoreOp::CopyFacts), 2);
    // A cold instance sees it at once.
    assert_eq!(copied_to(&customer_sends(&w, 0, "cold", t0() + secs(2)).await), [agent(1)]);
}
