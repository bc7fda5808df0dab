//! `sweep_outbox`: the jobs of every outbox entry past its grace are offered to the queue
//! again, oldest first, a page at a time, and the entry is cleared only once they are on it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bridge_testkit::memory::{MemoryQueue, MemoryStore, StoreOp};
use jiff::{SignedDuration, Timestamp};
use shared::app::deliver_job::Deadline;
use shared::app::sweep_outbox::{DEFAULT_OUTBOX_GRACE, SweepError, Swept, sweep_outbox};
use shared::domain::Job;
use shared::ports::{DeliveryQueue, QueueError};

use super::fixture::*;

/// The test line with one agent: one job per text, so counts read as texts.
fn one_agent_line() -> shared::domain::Line {
    lines_with_agents(&[bridge_testkit::testing::AGENTS[0]], "").iter().next().unwrap().clone()
}

/// `count` texts left to the outbox (the queue refused each for the whole budget).
async fn deferred(store: &MemoryStore, count: usize) {
    let (queue, line) = (MemoryQueue::new(), one_agent_line());
    for i in 0..count {
        deferred_text(store, &queue, &line, CUSTOMER, &format!("text {i}")).await;
    }
    assert_eq!(store.outbox_len(), count);
}

#[tokio::test]
async fn an_entry_younger_than_the_grace_is_not_swept() {
    let (store, queue) = (MemoryStore::new(), MemoryQueue::new());
    deferred(&store, 1).await;

    let swept = sweep(&store, &queue, Timestamp::now()).await.unwrap();

    assert_eq!(swept, Swept::default());
    assert_eq!((queue.enqueue_calls(), store.outbox_len()), (0, 1), "left for a later sweep");
    assert_eq!(store.calls(StoreOp::ClearOutbox), 0);
}

#[tokio::test]
async fn entries_past_the_grace_are_enqueued_in_the_order_recorded_and_cleared() {
    let (store, queue) = (MemoryStore::new(), MemoryQueue::new());
    deferred(&store, 3).await;
    let recorded = outbox_jobs(&store);

    let swept = sweep(&store, &queue, after_grace()).await.unwrap();

    assert_eq!(swept, Swept { entries: 3, jobs: 3, more: false });
    assert_eq!(queue.jobs(), recorded, "oldest first");
    assert_eq!(
        forwards(&queue.jobs()).iter().map(|copy| copy.text.as_str()).collect::<Vec<_>>(),
        ["text 0", "text 1", "text 2"]
    );
    assert_eq!(store.outbox_len(), 0);
    assert_eq!(queue.enqueue_calls(), 1, "one page, one queue call (the adapter batches by ten)");

    let again = sweep(&store, &queue, after_grace()).await.unwrap();
    assert_eq!(again, Swept::default(), "nothing twice");
    assert_eq!(queue.jobs().len(), 3);
}

#[tokio::test]
async fn the_grace_is_counted_from_when_the_entry_was_recorded() {
    let (store, queue) = (MemoryStore::new(), MemoryQueue::new());
    let before = Timestamp::now();
    deferred(&store, 1).await;
    let after = Timestamp::now();

    let early = sweep(&store, &queue, before + SignedDuration::from_secs(59)).await.unwrap();
    assert_eq!(early, Swept::default(), "59 s after: within the minute's grace");
    assert_eq!(store.outbox_len(), 1);

    let due = sweep(&store, &queue, after + SignedDuration::from_secs(61)).await.unwrap();
    assert_eq!(due, Swept { entries: 1, jobs: 1, more: false });
    assert_eq!(store.outbox_len(), 0);
    assert_eq!(queue.jobs().len(), 1);
}

#[tokio::test]
async fn a_job_the_webhook_had_enqueued_is_offered_again_with_the_same_id() {
    let (store, queue) = (MemoryStore::new(), MemoryQueue::new());
    text(&store, &queue, &line(""), CUSTOMER, "Hi").await;
    let enqueued = queue.jobs();
    assert_eq!(store.outbox_len(), 1, "the entry stays until the sweep");

    let swept = sweep(&store, &queue, after_grace()).await.unwrap();

    assert_eq!((swept.entries, swept.jobs), (1, 2));
    // SQS FIFO drops the re-offer as a duplicate (the job id is its deduplication id).
    assert_eq!(job_ids(&queue.jobs()[enqueued.len()..]), job_ids(&enqueued));
    assert_eq!(store.outbox_len(), 0);
}

#[tokio::test]
async fn the_sweep_reads_fifty_entries_a_round_until_none_is_due() {
    let (store, queue) = (MemoryStore::new(), MemoryQueue::new());
    deferred(&store, 120).await;
    let recorded = outbox_jobs(&store);

    let swept = sweep(&store, &queue, after_grace()).await.unwrap();

    assert_eq!(swept, Swept { entries: 120, jobs: 120, more: false });
    assert_eq!(queue.jobs(), recorded, "in the order recorded");
    assert_eq!(queue.enqueue_calls(), 3, "50 + 50 + 20");
    assert_eq!((store.calls(StoreOp::DueOutbox), store.calls(StoreOp::ClearOutbox)), (4, 3), "and a last empty read");
    assert_eq!(store.outbox_len(), 0);
}

/// The twin queue, refusing only its `nth` enqueue (1-based).
struct RefusingCall {
    queue: MemoryQueue,
    nth: usize,
    calls: AtomicUsize,
}

impl DeliveryQueue for RefusingCall {
    async fn enqueue(&self, jobs: &[Job]) -> Result<(), QueueError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) + 1 == self.nth {
            return Err(QueueError("refused".into()));
        }
        self.queue.enqueue(jobs).await
    }

    async fn postpone(&self, receipt_handle: &str, delay: Duration) -> Result<(), QueueError> {
        self.queue.postpone(receipt_handle, delay).await
    }

    async fn dead_letter(&self, body: &str, group: Option<&str>, id: &str) -> Result<(), QueueError> {
        self.queue.dead_letter(body, group, id).await
    }
}

#[tokio::test]
async fn a_queue_failure_during_the_sweep_leaves_its_entries_for_the_next_sweep() {
    let (store, queue) = (MemoryStore::new(), MemoryQueue::new());
    deferred(&store, 2).await;
    let recorded = outbox_jobs(&store);
    queue.fail_next(1);

    let failed = sweep(&store, &queue, after_grace()).await;

    assert!(matches!(failed, Err(SweepError::Queue(_))), "{failed:?}");
    assert_eq!(store.outbox_len(), 2, "nothing cleared");
    assert_eq!(store.calls(StoreOp::ClearOutbox), 0);
    assert!(queue.jobs().is_empty());

    let swept = sweep(&store, &queue, after_grace()).await.unwrap();
    assert_eq!((swept.entries, swept.jobs), (2, 2));
    assert_eq!(queue.jobs(), recorded);
    assert_eq!(store.outbox_len(), 0);
}

#[tokio::test]
async fn a_queue_failure_on_a_later_page_keeps_the_pages_already_enqueued_cleared() {
    let store = MemoryStore::new();
    deferred(&store, 60).await;
    let recorded = outbox_jobs(&store);
    let queue = RefusingCall { queue: MemoryQueue::new(), nth: 2, calls: AtomicUsize::new(0) };

    let failed = sweep(&store, &queue, after_grace()).await;

    assert!(matches!(failed, Err(SweepError::Queue(_))), "{failed:?}");
    assert_eq!(queue.queue.jobs(), recorded[..50], "the first page is on the queue");
    assert_eq!(store.outbox_len(), 10, "and cleared; the second page waits");
    assert_eq!(outbox_jobs(&store), recorded[50..]);
}

#[tokio::test]
async fn a_clear_that_fails_after_the_enqueue_leaves_the_entry_offered_again_next_time() {
    let (store, queue) = (MemoryStore::new(), MemoryQueue::new());
    deferred(&store, 1).await;
    let recorded = outbox_jobs(&store);
    store.fail_next(StoreOp::ClearOutbox, 1);

    let failed = sweep(&store, &queue, after_grace()).await;

    assert!(matches!(failed, Err(SweepError::Store(_))), "{failed:?}");
    assert_eq!(queue.jobs(), recorded, "on the queue");
    assert_eq!(store.outbox_len(), 1, "not cleared");

    let swept = sweep(&store, &queue, after_grace()).await.unwrap();
    assert_eq!((swept.entries, swept.jobs), (1, 1));
    assert_eq!(job_ids(&queue.jobs()[1..]), job_ids(&recorded), "the same job again: SQS drops it");
    assert_eq!(store.outbox_len(), 0);
}

#[tokio::test]
async fn an_unreadable_outbox_is_an_error_and_nothing_is_enqueued() {
    let (store, queue) = (MemoryStore::new(), MemoryQueue::new());
    deferred(&store, 1).await;
    store.fail_next(StoreOp::DueOutbox, 1);

    let failed = sweep(&store, &queue, after_grace()).await;

    assert!(matches!(failed, Err(SweepError::Store(_))), "{failed:?}");
    assert_eq!((queue.enqueue_calls(), store.outbox_len()), (0, 1));
}

#[tokio::test]
async fn the_sweep_starts_no_round_it_cannot_finish_before_the_deadline() {
    let (store, queue) = (MemoryStore::new(), MemoryQueue::new());
    deferred(&store, 2).await;

    let near =
        sweep_outbox(&store, &queue, after_grace(), DEFAULT_OUTBOX_GRACE, Deadline::after(Duration::from_secs(2)))
            .await
            .unwrap();

    assert_eq!(near, Swept { entries: 0, jobs: 0, more: true }, "stopped, with entries still due");
    assert_eq!((store.calls(StoreOp::DueOutbox), queue.enqueue_calls(), store.outbox_len()), (0, 0, 2));

    let ample =
        sweep_outbox(&store, &queue, after_grace(), DEFAULT_OUTBOX_GRACE, Deadline::after(Duration::from_secs(60)))
            .await
            .unwrap();
    assert_eq!(ample, Swept { entries: 2, jobs: 2, more: false });
    assert_eq!(store.outbox_len(), 0);
}

#[tokio::test]
async fn a_near_deadline_reads_nothing_and_says_entries_may_be_left() {
    let (store, queue) = (MemoryStore::new(), MemoryQueue::new());

    let near =
        sweep_outbox(&store, &queue, after_grace(), DEFAULT_OUTBOX_GRACE, Deadline::after(Duration::from_secs(2)))
            .await
            .unwrap();

    assert_eq!(store.calls(StoreOp::DueOutbox), 0, "no round started that the deadline can't finish");
    assert_eq!(near, Swept { entries: 0, jobs: 0, more: true }, "the next sweep finds out");
}
