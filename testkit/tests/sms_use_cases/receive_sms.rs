//! `receive_sms`: a customer's text recorded once, a conversation started on first contact,
//! one copy per agent and the automated reply that is due, the compliance keywords, and the
//! store and queue failing within and beyond the webhook's budget.

use shared::app::copy_facts_cache::CopyFactsCache;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bridge_testkit::memory::{MemoryQueue, MemoryStore, StoreOp};
use bridge_testkit::testing::AGENTS;
use jiff::{SignedDuration, Timestamp};
use shared::app::receive_sms::{ReceiveError, Received, receive_sms};
use shared::app::retry_budget::RetryBudget;
use shared::domain::agent_copy::annotated_text;
use shared::domain::compliance::{AutoReplyReason, CustomerKeyword};
use shared::domain::copies::CopyFacts;
use shared::domain::{Attachment, ConversationKey, Handle, Job, JobKind, LegState};
use shared::ports::{
    AppendOutcome, Claim, Conversations, Deliveries, Direction, InboundLog, NewInboundMessage, StartOutcome, StoreError,
};

use super::fixture::*;

/// The customer texts "Hi", the handle drawn from `rng` (a clone of it foretells the draws).
async fn customer_says_hi(
    store: &MemoryStore,
    queue: &MemoryQueue,
    line: &shared::domain::Line,
    rng: &mut fastrand::Rng,
) -> Result<Received, ReceiveError> {
    let hi = sms(&sid(), CUSTOMER, "Hi", Timestamp::now());
    receive_sms(store, queue, line, hi, rng, &budget(), &CopyFactsCache::new()).await
}

const FIRST_CONTACT: &str = r#""auto_replies": { "first_contact": "Thanks, we got your message." }"#;

// ---------------------------------------------------------------------------------------
// Conversations and copies
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_first_text_starts_a_conversation_with_a_handle_and_one_copy_per_agent() {
    let (store, queue) = (MemoryStore::new(), MemoryQueue::new());
    let line = line("");

    let received = text(&store, &queue, &line, CUSTOMER, "Is my bike ready?").await;

    let Received::Accepted { message_id, new_conversation: Some(handle), jobs: 2, enqueued: true } = received else {
        panic!("{received:?}")
    };
    assert_eq!(handle.as_str().len(), Handle::length_after_collisions(0), "a short handle while the line has room");
    let conversation = store.conversation(&key(CUSTOMER)).await.unwrap().unwrap();
    assert_eq!(
        (&conversation.handle, conversation.open, conversation.opted_out, conversation.last_text.as_str()),
        (&handle, true, false, "Is my bike ready?")
    );
    let thread = store.thread(&key(CUSTOMER)).await.unwrap();
    assert_eq!(thread.len(), 1);
    assert_eq!((&thread[0].message_id, thread[0].direction), (&message_id, Direction::Inbound));
    assert_eq!(thread[0].body, "Is my bike ready?");
    let legs: Vec<_> = thread[0].legs.iter().map(|leg| (leg.to.as_str(), leg.kind, leg.state)).collect();
    assert_eq!(
        legs,
        [
            (AGENTS[0], JobKind::ForwardToAgent, LegState::Queued),
            (AGENTS[1], JobKind::ForwardToAgent, LegState::Queued)
        ]
    );

    let enqueued = queue.jobs();
    let copies = forwards(&enqueued);
    assert_eq!(copies.iter().map(|copy| copy.agent.as_str()).collect::<Vec<_>>(), AGENTS);
    for copy in &copies {
        assert_eq!((&copy.conversation, &copy.message_id), (&key(CUSTOMER), &message_id));
        assert_eq!((copy.text.as_str(), copy.keyword), ("Is my bike ready?", None));
    }
    assert!(auto_replies(&enqueued).is_empty(), "no first-contact reply unless the line sets one");
    assert_eq!(outbox_jobs(&store), enqueued, "the jobs are in the outbox entry recorded with the message");
    assert_eq!(store.outbox_len(), 1);
    assert_eq!(
        (store.calls(StoreOp::AppendInbound), store.calls(StoreOp::StartConversation), queue.enqueue_calls()),
        (1, 1, 1),
        "append first (no conversation), then start: one queue call"
    );
}

#[tokio::test]
async fn a_first_text_gets_the_first_contact_reply_when_the_line_sets_one() {
    let (store, queue) = (MemoryStore::new(), MemoryQueue::new());
    let line = line(FIRST_CONTACT);

    let received = text(&store, &queue, &line, CUSTOMER, "Hi").await;

    assert!(matches!(received, Received::Accepted { jobs: 3, new_conversation: Some(_), .. }), "{received:?}");
    let enqueued = queue.jobs();
    assert_eq!(forwards(&enqueued).len(), 2);
    assert_eq!(replies_said(&enqueued), [(AutoReplyReason::FirstContact, "Thanks, we got your message.".to_owned())]);
    let (reply, to) = auto_replies(&enqueued)[0];
    assert_eq!(to.conversation, key(CUSTOMER));
    let once = Job::auto_reply(key(CUSTOMER), AutoReplyReason::FirstContact, to.text.clone(), "first");
    assert_eq!(reply.job_id, once.job_id, "one first-contact reply per conversation, ever");
    assert_eq!(outbox_jobs(&store), enqueued);
    let thread = store.thread(&key(CUSTOMER)).await.unwrap();
    assert_eq!(thread[0].legs.len(), 2, "the automated reply's leg is its own item, created when claimed");
}

#[tokio::test]
async fn a_later_text_appends_to_the_conversation_with_no_new_handle_and_no_first_contact_reply() {
    let (store, queue) = (MemoryStore::new(), MemoryQueue::new());
    let line = line(FIRST_CONTACT);
    let Received::Accepted { new_conversation: Some(handle), .. } = text(&store, &queue, &line, CUSTOMER, "Hi").await
    else {
        panic!("a new conversation")
    };
    let first_jobs = queue.jobs();

    let received = text(&store, &queue, &line, CUSTOMER, "Here's the receipt").await;

    let Received::Accepted { message_id, new_conversation: None, jobs: 2, enqueued: true } = received else {
        panic!("{received:?}")
    };
    let thread = store.thread(&key(CUSTOMER)).await.unwrap();
    assert_eq!(thread.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(), ["Hi", "Here's the receipt"]);
    assert_eq!(thread[1].message_id, message_id);
    let conversation = store.conversation(&key(CUSTOMER)).await.unwrap().unwrap();
    assert_eq!((conversation.handle, conversation.last_text.as_str()), (handle, "Here's the receipt"));
    let later_jobs = &queue.jobs()[first_jobs.len()..];
    assert_eq!(forwards(later_jobs).iter().map(|copy| &copy.message_id).collect::<Vec<_>>(), [&message_id; 2]);
    assert!(auto_replies(later_jobs).is_empty(), "the first-contact reply goes to the first text only");
    assert_eq!(store.outbox_len(), 2);
    assert_eq!(
        (store.calls(StoreOp::AppendInbound), store.calls(StoreOp::StartConversation)),
        (2, 1),
        "a known customer's text is one append, no read"
    );
}

#[tokio::test]
async fn texts_of_two_customers_are_two_conversations_with_different_handles() {
    let (store, queue) = (MemoryStore::new(), MemoryQueue::new());
    let line = line("");
    let Received::Accepted { new_conversation: Some(first), .. } = text(&store, &queue, &line, CUSTOMER, "a").await
    else {
        panic!()
    };
    let Received::Accepted { new_conversation: Some(second), .. } =
        text(&store, &queue, &line, OTHER_CUSTOMER, "b").await
    else {
        panic!()
    };
    assert_ne!(first, second);
    assert_eq!(store.conversation(&key(OTHER_CUSTOMER)).await.unwrap().unwrap().handle, second);
    assert_eq!(store.thread(&key(CUSTOMER)).await.unwrap().len(), 1);
    assert_eq!(store.thread(&key(OTHER_CUSTOMER)).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_closed_conversation_reopens_when_the_customer_writes_again() {
    let (store, queue) = (MemoryStore::new(), MemoryQueue::new());
    let line = line("");
    text(&store, &queue, &line, CUSTOMER, "Hi").await;
    close(&store, CUSTOMER).await;
    assert!(!store.conversation(&key(CUSTOMER)).await.unwrap().unwrap().open);

    let received = text(&store, &queue, &line, CUSTOMER, "One more thing").await;

    assert!(matches!(received, Received::Accepted { new_conversation: None, jobs: 2, .. }), "{received:?}");
    assert!(store.conversation(&key(CUSTOMER)).await.unwrap().unwrap().open);
    assert_eq!(store.thread(&key(CUSTOMER)).await.unwrap().len(), 2);
}

#[tokio::test]
async fn an_mms_is_recorded_with_its_parts_and_the_copies_carry_what_whatsapp_can_show() {
    let (store, queue) = (MemoryStore::new(), MemoryQueue::new());
    let line = line("");
    let photo = Attachment { url: "https://api.twilio.com/media/ME1".into(), content_type: "image/jpeg".into() };
    let card = Attachment { url: "https://api.twilio.com/media/ME2".into(), content_type: "text/vcard".into() };
    let mut mms = sms(&sid(), CUSTOMER, "Here's the receipt", Timestamp::now());
    mms.attachments = vec![photo.clone(), card.clone()];

    let received = receive(&store, &queue, &line, mms, &budget()).await.unwrap();

    assert!(matches!(received, Received::Accepted { jobs: 2, .. }), "{received:?}");
    let thread = store.thread(&key(CUSTOMER)).await.unwrap();
    assert_eq!(thread[0].attachments, [photo.clone(), card]);
    let enqueued = queue.jobs();
    for copy in forwards(&enqueued) {
        assert_eq!(copy.media, std::slice::from_ref(&photo), "relayed as WhatsApp media");
        assert_eq!(copy.attachments, ["text/vcard"], "named in the copy");
    }
}

// ---------------------------------------------------------------------------------------
// Replays and races
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_replayed_message_sid_is_a_duplicate_that_writes_nothing_and_reoffers_the_first_jobs() {
    let (store, queue) = (MemoryStore::new(), MemoryQueue::new());
    let line = line(FIRST_CONTACT);
    let message_sid = sid();
    let first =
        receive(&store, &queue, &line, sms(&message_sid, CUSTOMER, "Hi", Timestamp::now()), &budget()).await.unwrap();
    let Received::Accepted { message_id, .. } = first else { panic!("{first:?}") };
    let first_jobs = queue.jobs();
    let items = store.record_count();

    // Twilio sends the same MessageSid again, a second later.
    let later = Timestamp::now() + SignedDuration::from_secs(1);
    let replay = receive(&store, &queue, &line, sms(&message_sid, CUSTOMER, "Hi", later), &budget()).await.unwrap();

    assert_eq!(replay, Received::Duplicate { message_id: Some(message_id), jobs: 3, enqueued: true });
    assert_eq!(store.record_count(), items, "nothing written");
    assert_eq!(store.thread(&key(CUSTOMER)).await.unwrap().len(), 1);
    assert_eq!(store.outbox_len(), 1);
    let jobs = queue.jobs();
    assert_eq!(&jobs[first_jobs.len()..], &first_jobs[..], "the same jobs (same ids) offered again");
}

#[tokio::test]
async fn a_replay_after_the_queue_refused_the_first_attempt_enqueues_the_recorded_jobs() {
    let (store, queue) = (MemoryStore::new(), MemoryQueue::new());
    let line = line("");
    let message_sid = sid();
    queue.fail_next(1);
    let first =
        receive(&store, &queue, &line, sms(&message_sid, CUSTOMER, "Hi", Timestamp::now()), &RetryBudget::none())
            .await
            .unwrap();
    assert!(matches!(first, Received::Accepted { enqueued: false, .. }), "{first:?}");
    assert!(queue.jobs().is_empty());

    let replay =
        receive(&store, &queue, &line, sms(&message_sid, CUSTOMER, "Hi", Timestamp::now()), &budget()).await.unwrap();

    assert!(matches!(replay, Received::Duplicate { jobs: 2, enqueued: true, .. }), "{replay:?}");
    assert_eq!(queue.jobs(), outbox_jobs(&store), "the recorded jobs, from the dedupe marker");
    assert_eq!(store.thread(&key(CUSTOMER)).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_handle_taken_by_another_conversation_is_drawn_again() {
    let (store, queue) = (MemoryStore::new(), MemoryQueue::new());
    let line = line("");
    // A `fastrand::Rng` (its type inferred from `Handle::random`); a copy draws what it will.
    let mut rng = Default::default();
    let mut probe = Clone::clone(&rng);
    let drawn: Vec<Handle> =
        (0..2).map(|collisions| Handle::random(Handle::length_after_collisions(collisions), &mut probe)).collect();
    // Another customer's conversation holds the first handle the text will draw.
    let started = store.start_agent_conversation(&key(OTHER_CUSTOMER), &drawn[0], Timestamp::now()).await.unwrap();
    assert_eq!(started, StartOutcome::Started);

    let received = customer_says_hi(&store, &queue, &line, &mut rng).await.unwrap();

    let Received::Accepted { new_conversation: Some(handle), .. } = received else { panic!("{received:?}") };
    if drawn[1] != drawn[0] {
        assert_eq!(handle, drawn[1], "the next draw");
    }
    assert_ne!(handle, drawn[0]);
    assert_eq!(store.conversation(&key(CUSTOMER)).await.unwrap().unwrap().handle, handle);
    assert_eq!(store.conversation(&key(OTHER_CUSTOMER)).await.unwrap().unwrap().handle, drawn[0], "untouched");
    assert!(store.calls(StoreOp::StartConversation) >= 2, "the taken handle was tried, and refused");
    assert_eq!(store.thread(&key(CUSTOMER)).await.unwrap().len(), 1);
    assert_eq!(forwards(&queue.jobs()).len(), 2);
}

#[tokio::test]
async fn handles_that_keep_colliding_give_up_after_eight_store_calls_and_write_nothing() {
    let (store, queue) = (MemoryStore::new(), MemoryQueue::new());
    let line = line("");
    let mut rng = Default::default();
    let mut probe = Clone::clone(&rng);
    // One append and seven starts: every handle they draw is taken (by other customers).
    for collisions in 0..7 {
        let handle = Handle::random(Handle::length_after_collisions(collisions), &mut probe);
        let customer = format!("+1415555030{collisions}");
        // A repeated draw is taken already; that is all this needs.
        store.start_agent_conversation(&key(&customer), &handle, Timestamp::now()).await.unwrap();
    }
    let items = store.record_count();

    let result = customer_says_hi(&store, &queue, &line, &mut rng).await;

    assert!(matches!(result, Err(ReceiveError::TooManyAttempts)), "{result:?}");
    assert_eq!((store.calls(StoreOp::AppendInbound), store.calls(StoreOp::StartConversation)), (1, 7));
    assert_eq!(store.record_count(), items, "nothing written: the webhook answers 500");
    assert!(store.conversation(&key(CUSTOMER)).await.unwrap().is_none());
    assert_eq!(queue.enqueue_calls(), 0);
}

/// The twin, with another text of the same customer starting the conversation between this
/// text's append (no conversation yet) and its start.
struct StartedMeanwhile {
    store: MemoryStore,
    rival: NewInboundMessage,
    raced: AtomicBool,
}

impl InboundLog for StartedMeanwhile {
    async fn copy_facts(&self, conversation: &ConversationKey) -> Result<CopyFacts, StoreError> {
        self.store.copy_facts(conversation).await
    }

    async fn append_inbound(&self, message: &NewInboundMessage) -> Result<AppendOutcome, StoreError> {
        let outcome = self.store.append_inbound(message).await?;
        if outcome == AppendOutcome::NoConversation && !self.raced.swap(true, Ordering::SeqCst) {
            let rival = self.store.start_conversation(&self.rival, &Handle::parse("RV").unwrap()).await?;
            assert_eq!(rival, StartOutcome::Started);
        }
        Ok(outcome)
    }

    async fn start_conversation(
        &self,
        message: &NewInboundMessage,
        handle: &Handle,
    ) -> Result<StartOutcome, StoreError> {
        self.store.start_conversation(message, handle).await
    }
}

#[tokio::test]
async fn a_conversation_started_meanwhile_by_another_text_is_appended_to_not_started_twice() {
    let (store, queue) = (MemoryStore::new(), MemoryQueue::new());
    let line = line(FIRST_CONTACT);
    let rival = NewInboundMessage {
        conversation: key(CUSTOMER),
        message_id: shared::domain::MessageId::new_v7(),
        provider: "twilio",
        provider_message_id: sid(),
        body: "First!".into(),
        attachments: vec![],
        received_at: Timestamp::now(),
        keyword: None,
        jobs: vec![],
        claim_assumed: Default::default(),
    };
    let racing = StartedMeanwhile { store: store.clone(), rival, raced: AtomicBool::new(false) };

    let received =
        receive(&racing, &queue, &line, sms(&sid(), CUSTOMER, "Second", Timestamp::now()), &budget()).await.unwrap();

    assert!(matches!(received, Received::Accepted { new_conversation: None, jobs: 2, .. }), "{received:?}");
    assert!(auto_replies(&queue.jobs()).is_empty(), "the text that started it had the first contact");
    assert_eq!(store.conversation(&key(CUSTOMER)).await.unwrap().unwrap().handle, Handle::parse("RV").unwrap());
    let thread = store.thread(&key(CUSTOMER)).await.unwrap();
    assert_eq!(thread.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(), ["First!", "Second"]);
    // Append (none), the rival's start, this start (exists), append again.
    assert_eq!((store.calls(StoreOp::AppendInbound), store.calls(StoreOp::StartConversation)), (2, 2));
}

// ---------------------------------------------------------------------------------------
// STOP, START, HELP
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn stop_opts_the_customer_out_and_the_agents_copies_say_so() {
    let (store, queue) = (MemoryStore::new(), MemoryQueue::new());
    let line = line("");
    text(&store, &queue, &line, CUSTOMER, "Hi").await;
    let before = queue.jobs().len();

    let received = text(&store, &queue, &line, CUSTOMER, " Stop. ").await;

    assert!(matches!(received, Received::Accepted { jobs: 2, .. }), "{received:?}");
    assert!(store.conversation(&key(CUSTOMER)).await.unwrap().unwrap().opted_out);
    let jobs = &queue.jobs()[before..];
    let copies = forwards(jobs);
    assert_eq!(copies.len(), 2, "both agents are told");
    assert!(copies.iter().all(|copy| copy.keyword == Some(CustomerKeyword::OptOut)), "{copies:?}");
    for copy in &copies {
        let shown = annotated_text(copy);
        assert!(shown.ends_with("🚫 Opted out of SMS: replies can't be sent until they text START."), "{shown}");
    }
    assert!(auto_replies(jobs).is_empty(), "no confirmation unless `auto_replies.opt_out` is set");
    assert_eq!(store.thread(&key(CUSTOMER)).await.unwrap()[1].body, " Stop. ", "recorded as sent");
}

#[tokio::test]
async fn stop_is_confirmed_only_when_the_line_sets_a_confirmation_and_nothing_else_is_said() {
    let (store, queue) = (MemoryStore::new(), MemoryQueue::new());
    let extra = format!(
        r#""auto_replies": {{ "first_contact": "Thanks!", "after_hours": "Closed.", "opt_out": "You're unsubscribed." }},
            {WEEKDAY_HOURS}"#
    );
    let line = line(&extra);

    // A first contact, after hours: STOP is answered by its confirmation only.
    let received = text_at(&store, &queue, &line, CUSTOMER, "STOP", monday_evening()).await;

    assert!(matches!(received, Received::Accepted { new_conversation: Some(_), jobs: 3, .. }), "{received:?}");
    assert_eq!(replies_said(&queue.jobs()), [(AutoReplyReason::OptOutConfirmation, "You're unsubscribed.".to_owned())]);
    assert!(AutoReplyReason::OptOutConfirmation.allowed_when_opted_out(), "its last message");
    assert!(store.conversation(&key(CUSTOMER)).await.unwrap().unwrap().opted_out, "opted out from the start");
}

#[tokio::test]
async fn an_opted_out_customer_stays_opted_out_until_start_and_is_still_relayed() {
    let (store, queue) = (MemoryStore::new(), MemoryQueue::new());
    let line = line("");
    text(&store, &queue, &line, CUSTOMER, "stop").await;

    text(&store, &queue, &line, CUSTOMER, "actually, one question").await;
    assert!(store.conversation(&key(CUSTOMER)).await.unwrap().unwrap().opted_out, "an ordinary text changes nothing");

    let before = queue.jobs().len();
    let received = text(&store, &queue, &line, CUSTOMER, "Start").await;

    assert!(matches!(received, Received::Accepted { jobs: 2, .. }), "{received:?}");
    assert!(!store.conversation(&key(CUSTOMER)).await.unwrap().unwrap().opted_out, "START opts back in");
    let jobs = &queue.jobs()[before..];
    assert!(forwards(jobs).iter().all(|copy| copy.keyword == Some(CustomerKeyword::OptIn)));
    assert!(auto_replies(jobs).is_empty(), "no confirmation unless `auto_replies.opt_in` is set");
    assert_eq!(forwards(&queue.jobs()).len(), 6, "every text reached both agents");
}

#[tokio::test]
async fn start_and_its_synonyms_are_confirmed_when_the_line_sets_a_confirmation() {
    let (store, queue) = (MemoryStore::new(), MemoryQueue::new());
    let line = line(r#""auto_replies": { "opt_in": "Welcome back." }"#);
    text(&store, &queue, &line, CUSTOMER, "STOP").await;
    for (i, word) in ["unstop", "YES."].into_iter().enumerate() {
        let before = queue.jobs().len();
        text(&store, &queue, &line, CUSTOMER, word).await;
        let jobs = &queue.jobs()[before..];
        assert_eq!(replies_said(jobs), [(AutoReplyReason::OptInConfirmation, "Welcome back.".to_owned())], "{word}");
        assert!(!store.conversation(&key(CUSTOMER)).await.unwrap().unwrap().opted_out, "{word}");
        // Each keyword message gets its own answer: the customer asked.
        assert_eq!(auto_replies(&queue.jobs()).len(), i + 1);
    }
}

#[tokio::test]
async fn help_is_answered_with_the_line_help_text_and_changes_no_opt_out() {
    let (store, queue) = (MemoryStore::new(), MemoryQueue::new());
    let line = line(r#""help_text": "Acme Bikes support. Reply STOP to opt out.""#);
    text(&store, &queue, &line, CUSTOMER, "STOP").await;
    let before = queue.jobs().len();

    let received = text(&store, &queue, &line, CUSTOMER, "help?").await;

    assert!(matches!(received, Received::Accepted { jobs: 3, .. }), "{received:?}");
    let jobs = &queue.jobs()[before..];
    assert_eq!(replies_said(jobs), [(AutoReplyReason::Help, "Acme Bikes support. Reply STOP to opt out.".to_owned())]);
    assert!(AutoReplyReason::Help.allowed_when_opted_out(), "carriers require HELP to be answered");
    assert!(forwards(jobs).iter().all(|copy| copy.keyword == Some(CustomerKeyword::Help)));
    assert!(store.conversation(&key(CUSTOMER)).await.unwrap().unwrap().opted_out, "HELP doesn't opt back in");
}

#[tokio::test]
async fn help_without_a_help_text_is_relayed_as_an_ordinary_text() {
    let (store, queue) = (MemoryStore::new(), MemoryQueue::new());
    let line = line(FIRST_CONTACT);
    text(&store, &queue, &line, CUSTOMER, "Hi").await;
    let before = queue.jobs().len();

    let received = text(&store, &queue, &line, CUSTOMER, "INFO").await;

    assert!(matches!(received, Received::Accepted { jobs: 2, .. }), "{received:?}");
    let jobs = &queue.jobs()[before..];
    assert!(auto_replies(jobs).is_empty(), "nothing answered: the line has no help_text");
    assert_eq!(forwards(jobs).len(), 2);
    assert!(!store.conversation(&key(CUSTOMER)).await.unwrap().unwrap().opted_out);
}

#[tokio::test]
async fn a_sentence_containing_a_keyword_is_an_ordinary_text() {
    let (store, queue) = (MemoryStore::new(), MemoryQueue::new());
    let line = line(r#""help_text": "Acme.", "auto_replies": { "opt_out": "Bye." }"#);
    text(&store, &queue, &line, CUSTOMER, "please stop texting me").await;
    text(&store, &queue, &line, CUSTOMER, "I need help").await;

    assert!(!store.conversation(&key(CUSTOMER)).await.unwrap().unwrap().opted_out);
    let jobs = queue.jobs();
    assert!(forwards(&jobs).iter().all(|copy| copy.keyword.is_none()));
    assert!(auto_replies(&jobs).is_empty());
}

// ---------------------------------------------------------------------------------------
// Business hours and no agent
// ---------------------------------------------------------------------------------------

const AFTER_HOURS: &str = r#""auto_replies": { "first_contact": "Thanks!", "after_hours": "Closed; back {opens}." }"#;

fn after_hours_line() -> shared::domain::Line {
    line(&format!("{AFTER_HOURS}, {WEEKDAY_HOURS}"))
}

#[tokio::test]
async fn a_text_in_business_hours_gets_no_closed_reply() {
    let (store, queue) = (MemoryStore::new(), MemoryQueue::new());
    let line = after_hours_line();
    text_at(&store, &queue, &line, CUSTOMER, "Hi", monday_noon()).await;
    text_at(&store, &queue, &line, CUSTOMER, "Still there?", monday_noon() + SignedDuration::from_mins(5)).await;

    assert_eq!(replies_said(&queue.jobs()), [(AutoReplyReason::FirstContact, "Thanks!".to_owned())]);
    assert_eq!(forwards(&queue.jobs()).len(), 4);
}

#[tokio::test]
async fn a_first_text_after_hours_gets_the_closed_reply_instead_of_the_first_contact_reply() {
    let (store, queue) = (MemoryStore::new(), MemoryQueue::new());
    let line = after_hours_line();

    let received = text_at(&store, &queue, &line, CUSTOMER, "Hi", monday_evening()).await;

    assert!(matches!(received, Received::Accepted { jobs: 3, .. }), "{received:?}");
    assert_eq!(replies_said(&queue.jobs()), [(AutoReplyReason::AfterHours, "Closed; back Tuesday 09:00.".to_owned())]);
    assert_eq!(forwards(&queue.jobs()).len(), 2, "the agents still get it");
}

#[tokio::test]
async fn the_closed_reply_goes_once_per_closed_period() {
    let (store, queue) = (MemoryStore::new(), MemoryQueue::new());
    let line = after_hours_line();
    let evening = monday_evening();

    text_at(&store, &queue, &line, CUSTOMER, "Hi", evening).await;
    text_at(&store, &queue, &line, CUSTOMER, "Hello??", evening + SignedDuration::from_hours(3)).await;
    text_at(&store, &queue, &line, CUSTOMER, "Tomorrow then", evening + SignedDuration::from_hours(24)).await;

    let jobs = queue.jobs();
    let replies = auto_replies(&jobs);
    assert_eq!(replies.len(), 3, "each text offers the reply that is due");
    let (monday, later_monday, tuesday) = (replies[0].0, replies[1].0, replies[2].0);
    assert_eq!(monday.job_id, later_monday.job_id, "one job for one closed period");
    assert_ne!(monday.job_id, tuesday.job_id, "the next closed period has its own");
    assert_eq!(replies[2].1.text, "Closed; back Wednesday 09:00.");
    // The worker sends the first; the second text's offer is the same job, already done.
    worker_sent_standalone(&store, monday).await;
    let now = Timestamp::now();
    let again = store.claim_job(later_monday, now, now + SignedDuration::from_secs(60), "w2").await.unwrap();
    assert_eq!(again, Claim::AlreadyDone { state: LegState::Sent });
}

#[tokio::test]
async fn a_line_without_agents_records_the_text_and_answers_no_agent() {
    let (store, queue) = (MemoryStore::new(), MemoryQueue::new());
    let line = line_without_agents(r#""auto_replies": { "no_agent": "Nobody can answer right now." }"#);

    let received = text(&store, &queue, &line, CUSTOMER, "Hello?").await;

    assert!(matches!(received, Received::Accepted { jobs: 1, new_conversation: Some(_), .. }), "{received:?}");
    assert_eq!(queue.jobs().len(), 1);
    assert_eq!(replies_said(&queue.jobs()), [(AutoReplyReason::NoAgent, "Nobody can answer right now.".to_owned())]);
    let thread = store.thread(&key(CUSTOMER)).await.unwrap();
    assert_eq!((thread.len(), thread[0].legs.len()), (1, 0), "recorded, with no copy to deliver");
    assert_eq!(outbox_jobs(&store), queue.jobs());
    // Once per window: a second text offers the same job.
    text(&store, &queue, &line, CUSTOMER, "Anyone?").await;
    let replies = auto_replies(&queue.jobs()).into_iter().map(|(job, _)| job.job_id.clone()).collect::<Vec<_>>();
    assert_eq!(replies.len(), 2);
    assert_eq!(replies[0], replies[1]);
}

#[tokio::test]
async fn a_line_without_agents_or_a_no_agent_text_records_the_text_and_enqueues_nothing() {
    let (store, queue) = (MemoryStore::new(), MemoryQueue::new());
    let line = line_without_agents("");

    let received = text(&store, &queue, &line, CUSTOMER, "Hello?").await;

    assert!(matches!(received, Received::Accepted { jobs: 0, enqueued: true, .. }), "{received:?}");
    assert_eq!(queue.enqueue_calls(), 0, "no queue call for no jobs");
    assert_eq!(store.outbox_len(), 0, "and no outbox entry");
    assert_eq!(store.thread(&key(CUSTOMER)).await.unwrap().len(), 1);
}

// ---------------------------------------------------------------------------------------
// The store and the queue failing: within and beyond the budget
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_store_refusing_for_a_moment_within_the_budget_still_records_the_text_once() {
    let (store, queue) = (MemoryStore::new(), MemoryQueue::new());
    let line = line("");
    store.fail_next(StoreOp::AppendInbound, 1);
    store.fail_next(StoreOp::StartConversation, 1);

    let received = text(&store, &queue, &line, CUSTOMER, "Hi").await;

    assert!(matches!(received, Received::Accepted { new_conversation: Some(_), jobs: 2, enqueued: true, .. }));
    assert_eq!(
        (store.calls(StoreOp::AppendInbound), store.calls(StoreOp::StartConversation)),
        (2, 2),
        "each refused call tried again"
    );
    assert_eq!(store.thread(&key(CUSTOMER)).await.unwrap().len(), 1);
    assert_eq!(store.outbox_len(), 1);
    assert_eq!(forwards(&queue.jobs()).len(), 2, "enqueued once");
}

#[tokio::test]
async fn a_recording_whose_answer_was_lost_is_found_by_the_retry_not_recorded_twice() {
    let (store, queue) = (MemoryStore::new(), MemoryQueue::new());
    let line = line("");
    text(&store, &queue, &line, CUSTOMER, "Hi").await;
    let before = queue.jobs().len();
    store.lose_next_answer(StoreOp::AppendInbound, 1);

    let received = text_or_duplicate(&store, &queue, &line, "Second").await;

    let Received::Duplicate { message_id: Some(message_id), jobs: 2, enqueued: true } = received else {
        panic!("the retry finds the first recording: {received:?}")
    };
    let thread = store.thread(&key(CUSTOMER)).await.unwrap();
    assert_eq!(thread.len(), 2, "recorded once");
    assert_eq!(thread[1].message_id, message_id);
    assert_eq!(store.outbox_len(), 2);
    let jobs = &queue.jobs()[before..];
    assert_eq!(forwards(jobs).iter().map(|copy| &copy.message_id).collect::<Vec<_>>(), [&message_id; 2]);
    assert_eq!(store.calls(StoreOp::AppendInbound), 3);
}

async fn text_or_duplicate(
    store: &MemoryStore,
    queue: &MemoryQueue,
    line: &shared::domain::Line,
    body: &str,
) -> Received {
    receive(store, queue, line, sms(&sid(), CUSTOMER, body, Timestamp::now()), &budget()).await.unwrap()
}

#[tokio::test]
async fn a_store_refusing_beyond_the_budget_is_an_error_and_nothing_is_half_written() {
    for refused in [StoreOp::AppendInbound, StoreOp::StartConversation] {
        let (store, queue) = (MemoryStore::new(), MemoryQueue::new());
        let line = line(FIRST_CONTACT);
        store.fail_next(refused, 1000);

        let result =
            receive(&store, &queue, &line, sms(&sid(), CUSTOMER, "Hi", Timestamp::now()), &RetryBudget::none()).await;

        let Err(ReceiveError::Store(error)) = result else { panic!("{refused:?}: {result:?}") };
        assert!(error.is_transient(), "{refused:?}: the webhook answers 500 and Twilio may retry");
        assert_eq!(store.calls(refused), 1, "{refused:?}: a spent budget allows no second try");
        assert_eq!(store.record_count(), 0, "{refused:?}: nothing written");
        assert_eq!((queue.enqueue_calls(), store.outbox_len()), (0, 0), "{refused:?}: nothing enqueued");
    }
}

#[tokio::test]
async fn a_short_budget_is_spent_retrying_then_the_error_is_answered() {
    let (store, queue) = (MemoryStore::new(), MemoryQueue::new());
    let line = line("");
    store.fail_next(StoreOp::AppendInbound, 1000);
    let limit = Duration::from_millis(250);
    let started = Instant::now();

    let result =
        receive(&store, &queue, &line, sms(&sid(), CUSTOMER, "Hi", Timestamp::now()), &RetryBudget::new(limit)).await;

    assert!(matches!(result, Err(ReceiveError::Store(StoreError::Unavailable(_)))), "{result:?}");
    // No pause is started that would end past the budget (a busy machine's timer may fire late).
    let slack = Duration::from_millis(50);
    assert!(started.elapsed() < limit + slack, "gave up when the budget ran out: {:?}", started.elapsed());
    assert!(store.calls(StoreOp::AppendInbound) >= 2, "tried again while the budget lasted");
    assert_eq!(store.record_count(), 0);
}

/// A store that refuses every call for good (`Rejected`: no table, no permission).
#[derive(Default)]
struct RejectingStore {
    calls: AtomicUsize,
}

impl InboundLog for RejectingStore {
    /// Refused as well (not counted): the copies then go to every agent.
    async fn copy_facts(&self, _conversation: &ConversationKey) -> Result<CopyFacts, StoreError> {
        Err(StoreError::Rejected("AccessDeniedException".into()))
    }

    async fn append_inbound(&self, _message: &NewInboundMessage) -> Result<AppendOutcome, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Err(StoreError::Rejected("AccessDeniedException".into()))
    }

    async fn start_conversation(
        &self,
        _message: &NewInboundMessage,
        _handle: &Handle,
    ) -> Result<StartOutcome, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Err(StoreError::Rejected("AccessDeniedException".into()))
    }
}

#[tokio::test]
async fn a_permanent_store_error_is_not_retried() {
    let (store, queue) = (RejectingStore::default(), MemoryQueue::new());

    let result = receive(&store, &queue, &line(""), sms(&sid(), CUSTOMER, "Hi", Timestamp::now()), &budget()).await;

    assert!(matches!(result, Err(ReceiveError::Store(StoreError::Rejected(_)))), "{result:?}");
    assert_eq!(store.calls.load(Ordering::SeqCst), 1, "one call, however much budget is left");
    assert_eq!(queue.enqueue_calls(), 0);
}

#[tokio::test]
async fn a_queue_refusing_for_a_moment_within_the_budget_is_tried_again() {
    let (store, queue) = (MemoryStore::new(), MemoryQueue::new());
    let line = line("");
    queue.fail_next(1);

    let received = text(&store, &queue, &line, CUSTOMER, "Hi").await;

    assert!(matches!(received, Received::Accepted { enqueued: true, .. }), "{received:?}");
    assert_eq!(queue.enqueue_calls(), 2);
    assert_eq!(forwards(&queue.jobs()).len(), 2, "enqueued once");
}

#[tokio::test]
async fn a_queue_refusing_after_the_commit_answers_ok_and_leaves_the_jobs_to_the_outbox_sweep() {
    let (store, queue) = (MemoryStore::new(), MemoryQueue::new());
    let line = line(FIRST_CONTACT);
    let deferred_before = shared::telemetry::counted("OutboxDeferred", "webhook");
    // Refused for the whole (zero) budget.
    queue.fail_next(1);

    let received =
        receive(&store, &queue, &line, sms(&sid(), CUSTOMER, "Hi", Timestamp::now()), &RetryBudget::none()).await;

    let Ok(Received::Accepted { new_conversation: Some(_), jobs: 3, enqueued: false, .. }) = received else {
        panic!("recorded, so the webhook answers 200: {received:?}")
    };
    assert!(shared::telemetry::counted("OutboxDeferred", "webhook") > deferred_before, "counted");
    assert!(queue.jobs().is_empty());
    assert_eq!(store.thread(&key(CUSTOMER)).await.unwrap().len(), 1, "the text is recorded");
    let recorded = outbox_jobs(&store);
    assert_eq!(recorded.len(), 3, "its jobs wait in the outbox");

    // SQS recovers; the sweep, a minute later, enqueues them and clears the entry.
    let swept = sweep(&store, &queue, after_grace()).await.unwrap();

    assert_eq!((swept.entries, swept.jobs, swept.more), (1, 3, false));
    assert_eq!(queue.jobs(), recorded);
    assert_eq!(store.outbox_len(), 0);
}

#[tokio::test]
async fn a_queue_that_took_the_jobs_but_lost_the_answer_leaves_them_offered_again_by_the_sweep() {
    let (store, queue) = (MemoryStore::new(), MemoryQueue::new());
    let line = line("");
    queue.lose_next_answer(1);

    let received =
        receive(&store, &queue, &line, sms(&sid(), CUSTOMER, "Hi", Timestamp::now()), &RetryBudget::none()).await;

    assert!(matches!(received, Ok(Received::Accepted { enqueued: false, .. })), "{received:?}");
    let first = queue.jobs();
    assert_eq!(first.len(), 2, "on the queue despite the error");
    sweep(&store, &queue, after_grace()).await.unwrap();
    // SQS drops the re-offer (same deduplication id, the job id); the twin keeps both.
    assert_eq!(job_ids(&queue.jobs()[2..]), job_ids(&first));
    assert_eq!(store.outbox_len(), 0);
}
