//! `InboundLog`: customers' texts, recorded once.

use shared::domain::compliance::CustomerKeyword;
use shared::domain::{Attachment, ConversationKey, JobId};
use shared::domain::{JobKind, LegState};
use shared::ports::{
    AppendOutcome, ConversationStore, ConversationSummary, Direction, Outbox, PriorDelivery, StartOutcome, ThreadLeg,
};

use super::fixture::*;

pub async fn a_first_text_starts_the_conversation_and_later_texts_append<S: ConversationStore + Outbox>(store: &S) {
    let case = Case::new("first-text");
    let conversation = case.conversation(0);
    let (agents, t) = ([agent(0), agent(1)], t0());
    let first = inbound(&conversation, "hello", &agents, t);

    assert_eq!(store.append_inbound(&first).await.unwrap(), AppendOutcome::NoConversation);
    assert_eq!(store.conversation(&conversation).await.unwrap(), None);
    assert!(store.thread(&conversation).await.unwrap().is_empty());
    // The refused append left no dedupe marker: the same text can still start it.
    assert_eq!(store.start_conversation(&first, &handle("K7")).await.unwrap(), StartOutcome::Started);
    assert_eq!(
        store.conversation(&conversation).await.unwrap(),
        Some(ConversationSummary {
            key: conversation.clone(),
            handle: handle("K7"),
            open: true,
            last_text: "hello".into(),
            opted_out: false,
            claimed_by: None,
            claimer: None,
            handle_renewal_due: false,
        })
    );

    let second = inbound(&conversation, "are you there?", &agents[..1], t + secs(5));
    assert_eq!(store.append_inbound(&second).await.unwrap(), AppendOutcome::Appended);
    assert_eq!(store.conversation(&conversation).await.unwrap().unwrap().last_text, "are you there?");

    let thread = store.thread(&conversation).await.unwrap();
    assert_eq!(thread.len(), 2);
    for (message, sent) in thread.iter().zip([&first, &second]) {
        assert_eq!(message.message_id, sent.message_id);
        assert_eq!(message.direction, Direction::Inbound);
        assert_eq!(message.agent, None);
        assert_eq!(message.body, sent.body);
        assert_eq!(message.at, sent.received_at);
        let queued: Vec<ThreadLeg> = sent
            .jobs
            .iter()
            .map(|job| ThreadLeg {
                job_id: job.job_id.clone(),
                kind: JobKind::ForwardToAgent,
                to: job.recipient().into(),
                state: LegState::Queued,
                status: None,
                provider_id: None,
                error: None,
            })
            .collect();
        assert_eq!(message.legs, queued);
    }
}

pub async fn a_replayed_text_is_a_duplicate_carrying_the_first_delivery<S: ConversationStore + Outbox>(store: &S) {
    let case = Case::new("replayed-text");
    let conversation = case.conversation(0);
    let original = started(store, &conversation, &handle("K7"), t0()).await;
    let prior = PriorDelivery { message_id: Some(original.message_id.clone()), jobs: original.jobs.clone() };

    // The provider's retry: same sid, but the webhook made a new message id and new jobs.
    let mut replay = inbound(&conversation, "hello", &[agent(0)], t0() + secs(1));
    replay.provider_message_id = original.provider_message_id.clone();
    assert_eq!(store.start_conversation(&replay, &handle("M3")).await.unwrap(), StartOutcome::Duplicate(prior.clone()));
    assert_eq!(store.append_inbound(&replay).await.unwrap(), AppendOutcome::Duplicate(prior));

    assert_eq!(store.thread(&conversation).await.unwrap().len(), 1);
    assert_eq!(store.find_handle(&case.line, &handle("M3")).await.unwrap(), None);
}

pub async fn the_dedupe_key_is_the_provider_with_its_message_id<S: ConversationStore + Outbox>(store: &S) {
    let case = Case::new("dedupe-key");
    let conversation = case.conversation(0);
    let first = started(store, &conversation, &handle("K7"), t0()).await;

    let mut other_provider = inbound(&conversation, "same id, other provider", &[agent(0)], t0() + secs(1));
    other_provider.provider_message_id = first.provider_message_id.clone();
    other_provider.provider = "telnyx";
    assert_eq!(store.append_inbound(&other_provider).await.unwrap(), AppendOutcome::Appended);
    assert_eq!(store.thread(&conversation).await.unwrap().len(), 2);
}

pub async fn a_taken_handle_or_an_existing_conversation_refuses_the_start_and_records_nothing<
    S: ConversationStore + Outbox,
>(
    store: &S,
) {
    let case = Case::new("refused-start");
    let (first, second) = (case.conversation(0), case.conversation(1));
    started(store, &first, &handle("K7"), t0()).await;

    let other_customer = inbound(&second, "hi", &[agent(0)], t0() + secs(1));
    assert_eq!(store.start_conversation(&other_customer, &handle("K7")).await.unwrap(), StartOutcome::HandleTaken);
    assert_eq!(store.conversation(&second).await.unwrap(), None);
    // Nothing of it was recorded, its dedupe marker included: it starts with another handle.
    assert_eq!(store.start_conversation(&other_customer, &handle("M3")).await.unwrap(), StartOutcome::Started);

    let same_customer = inbound(&first, "again", &[agent(0)], t0() + secs(2));
    assert_eq!(
        store.start_conversation(&same_customer, &handle("P4")).await.unwrap(),
        StartOutcome::ConversationExists
    );
    // The existing conversation is reported first, even when the handle is its own.
    assert_eq!(
        store.start_conversation(&same_customer, &handle("K7")).await.unwrap(),
        StartOutcome::ConversationExists
    );
    assert_eq!(store.find_handle(&case.line, &handle("P4")).await.unwrap(), None);
    assert_eq!(store.append_inbound(&same_customer).await.unwrap(), AppendOutcome::Appended);

    assert_eq!(store.find_handle(&case.line, &handle("K7")).await.unwrap(), Some(first.clone()));
    assert_eq!(store.find_handle(&case.line, &handle("M3")).await.unwrap(), Some(second.clone()));
    assert_eq!(store.conversation(&first).await.unwrap().unwrap().handle, handle("K7"));
    assert_eq!(store.thread(&first).await.unwrap().len(), 2);
}

pub async fn handles_are_unique_within_a_line_only<S: ConversationStore + Outbox>(store: &S) {
    let (one, two) = (Case::new("handles-one"), Case::new("handles-two"));
    started(store, &one.conversation(0), &handle("K7"), t0()).await;
    started(store, &two.conversation(0), &handle("K7"), t0()).await;

    assert_eq!(store.find_handle(&one.line, &handle("K7")).await.unwrap(), Some(one.conversation(0)));
    assert_eq!(store.find_handle(&two.line, &handle("K7")).await.unwrap(), Some(two.conversation(0)));
}

pub async fn of_two_customers_racing_for_a_handle_one_gets_it<S: ConversationStore + Outbox>(handles: impl Fn() -> S) {
    let case = Case::new("handle-race");
    let (webhook_a, webhook_b) = (handles(), handles());
    let a = inbound(&case.conversation(0), "hi", &[agent(0)], t0());
    let b = inbound(&case.conversation(1), "hi", &[agent(0)], t0());
    let k7 = handle("K7");

    let (a_started, b_started) =
        tokio::join!(webhook_a.start_conversation(&a, &k7), webhook_b.start_conversation(&b, &k7));
    let mut outcomes = [a_started.unwrap(), b_started.unwrap()];
    outcomes.sort_by_key(|outcome| format!("{outcome:?}"));
    assert_eq!(outcomes, [StartOutcome::HandleTaken, StartOutcome::Started]);
    let winner = webhook_a.find_handle(&case.line, &k7).await.unwrap().unwrap();
    assert!(webhook_b.conversation(&winner).await.unwrap().is_some());
}

pub async fn stop_and_start_keywords_opt_the_customer_out_and_back_in<S: ConversationStore + Outbox>(store: &S) {
    let case = Case::new("keywords");
    let conversation = case.conversation(0);
    let t = t0();
    let text = |n: i64, keyword: Option<CustomerKeyword>| {
        let message = inbound(&conversation, "text", &[agent(0)], t + secs(n));
        match keyword {
            Some(keyword) => with_keyword(message, keyword),
            None => message,
        }
    };

    let stop = text(0, Some(CustomerKeyword::OptOut));
    assert_eq!(store.start_conversation(&stop, &handle("K7")).await.unwrap(), StartOutcome::Started);
    assert!(opted_out(store, &conversation).await);
    assert!(store.forward_context(&conversation, &agent(0)).await.unwrap().unwrap().opted_out);

    for (n, keyword, expected) in [
        (1, Some(CustomerKeyword::Help), true),
        (2, None, true),
        (3, Some(CustomerKeyword::OptIn), false),
        (4, None, false),
        (5, Some(CustomerKeyword::Help), false),
        (6, Some(CustomerKeyword::OptOut), true),
    ] {
        assert_eq!(store.append_inbound(&text(n, keyword)).await.unwrap(), AppendOutcome::Appended);
        assert_eq!(opted_out(store, &conversation).await, expected, "after {keyword:?}");
    }
}

pub async fn the_last_text_is_cut_to_80_characters_and_names_attachments_when_empty<S: ConversationStore + Outbox>(
    store: &S,
) {
    let case = Case::new("last-text");
    let conversation = case.conversation(0);
    let long = inbound(&conversation, &"a".repeat(100), &[agent(0)], t0());
    store.start_conversation(&long, &handle("K7")).await.unwrap();
    assert_eq!(store.conversation(&conversation).await.unwrap().unwrap().last_text, format!("{}…", "a".repeat(79)));

    let mut photos = inbound(&conversation, " ", &[agent(0)], t0() + secs(1));
    photos.attachments = vec![
        Attachment { url: "https://media.example.com/1.jpg".into(), content_type: "image/jpeg".into() },
        Attachment { url: "https://media.example.com/2.png".into(), content_type: "image/png".into() },
    ];
    store.append_inbound(&photos).await.unwrap();
    assert_eq!(store.conversation(&conversation).await.unwrap().unwrap().last_text, "[2 attachment(s)]");
    let thread = store.thread(&conversation).await.unwrap();
    assert_eq!(thread[0].body, "a".repeat(100), "the thread keeps the whole text");
    assert_eq!(thread[0].attachments, vec![]);
    assert_eq!(thread[1].attachments, photos.attachments);
}

pub async fn an_automated_reply_is_replayed_but_is_no_leg_of_the_message<S: ConversationStore + Outbox>(store: &S) {
    let case = Case::new("auto-reply-leg");
    let conversation = case.conversation(0);
    let mut message = inbound(&conversation, "hello", &[agent(0)], t0());
    let welcome = auto_reply(&conversation, "first");
    message.jobs.push(welcome.clone());
    store.start_conversation(&message, &handle("K7")).await.unwrap();

    let legs: Vec<JobId> =
        store.thread(&conversation).await.unwrap()[0].legs.iter().map(|l| l.job_id.clone()).collect();
    assert_eq!(legs, vec![message.jobs[0].job_id.clone()]);
    // Its leg is made when it is first claimed (it may be due for several texts).
    assert_eq!(store.unsent_jobs(std::slice::from_ref(&welcome)).await.unwrap(), vec![]);
    let AppendOutcome::Duplicate(prior) = store.append_inbound(&message).await.unwrap() else {
        panic!("not a duplicate")
    };
    assert_eq!(prior.jobs, message.jobs);
}

async fn opted_out<S: ConversationStore>(store: &S, conversation: &ConversationKey) -> bool {
    store.conversation(conversation).await.unwrap().unwrap().opted_out
}
