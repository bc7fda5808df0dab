//! `MemoryQueue`, the twin of the SQS FIFO delivery queue (`shared::adapters::sqs`): jobs in
//! the order enqueued (so each `Job::order_group` keeps its order), postponements and
//! dead letters recorded for tests to read.
//!
//! Unlike SQS FIFO, it doesn't drop a job id it accepted in the last five minutes: a job
//! offered twice (the webhook, then the outbox sweep) is there twice, and the worker's claim
//! is what keeps it from being sent twice.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use shared::domain::Job;
use shared::ports::{DeliveryQueue, QueueError};

/// The delivery queue in memory. Clones share one queue.
#[derive(Clone, Default)]
pub struct MemoryQueue {
    state: Arc<Mutex<QueueState>>,
}

/// A received job made to reappear later (`DeliveryQueue::postpone`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Postponed {
    pub receipt_handle: String,
    pub delay: Duration,
}

/// A message put on the dead-letter queue, as it was received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub body: String,
    pub group: Option<String>,
    pub id: String,
}

#[derive(Default)]
struct QueueState {
    /// Every job enqueued, in order, taken or not.
    enqueued: Vec<Job>,
    /// The jobs not taken yet, in order.
    waiting: Vec<Job>,
    postponed: Vec<Postponed>,
    dead_letters: Vec<DeadLetter>,
    enqueue_calls: usize,
    fail_enqueue: usize,
    lose_enqueue_answer: usize,
    fail_dead_letter: usize,
}

impl MemoryQueue {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every job ever enqueued, in order, including those taken since.
    pub fn jobs(&self) -> Vec<Job> {
        self.lock().enqueued.clone()
    }

    /// The jobs waiting to be delivered, in order, without taking them.
    pub fn waiting(&self) -> Vec<Job> {
        self.lock().waiting.clone()
    }

    /// Takes the waiting jobs, in order: what a worker would receive.
    pub fn take_all(&self) -> Vec<Job> {
        std::mem::take(&mut self.lock().waiting)
    }

    /// The waiting jobs of one [`Job::order_group`], in the order they are delivered.
    pub fn waiting_in_group(&self, group: &str) -> Vec<Job> {
        self.lock().waiting.iter().filter(|job| job.order_group() == group).cloned().collect()
    }

    /// The bodies put on the dead-letter queue, in order.
    pub fn dead_letters(&self) -> Vec<String> {
        self.lock().dead_letters.iter().map(|letter| letter.body.clone()).collect()
    }

    /// The dead letters with their group and id, in order.
    pub fn dead_letter_entries(&self) -> Vec<DeadLetter> {
        self.lock().dead_letters.clone()
    }

    /// The postponements asked for, in order.
    pub fn postponed(&self) -> Vec<Postponed> {
        self.lock().postponed.clone()
    }

    /// How many times `enqueue` was called, failed calls included.
    pub fn enqueue_calls(&self) -> usize {
        self.lock().enqueue_calls
    }

    /// The next `times` calls of `enqueue` fail and enqueue nothing.
    pub fn fail_next(&self, times: usize) {
        self.lock().fail_enqueue += times;
    }

    /// The next `times` calls of `enqueue` enqueue every job and then fail, as a send whose
    /// answer was lost.
    pub fn lose_next_answer(&self, times: usize) {
        self.lock().lose_enqueue_answer += times;
    }

    /// The next `times` calls of `dead_letter` fail and record nothing.
    pub fn fail_next_dead_letter(&self, times: usize) {
        self.lock().fail_dead_letter += times;
    }

    /// Nothing is left half-done under the lock, so a poisoned one is still usable.
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl DeliveryQueue for MemoryQueue {
    async fn enqueue(&self, jobs: &[Job]) -> Result<(), QueueError> {
        let mut state = self.lock();
        state.enqueue_calls += 1;
        if take_one(&mut state.fail_enqueue) {
            return Err(injected());
        }
        state.enqueued.extend_from_slice(jobs);
        state.waiting.extend_from_slice(jobs);
        if take_one(&mut state.lose_enqueue_answer) {
            return Err(injected());
        }
        Ok(())
    }

    async fn postpone(&self, receipt_handle: &str, delay: Duration) -> Result<(), QueueError> {
        self.lock().postponed.push(Postponed { receipt_handle: receipt_handle.to_owned(), delay });
        Ok(())
    }

    async fn dead_letter(&self, body: &str, group: Option<&str>, id: &str) -> Result<(), QueueError> {
        let mut state = self.lock();
        if take_one(&mut state.fail_dead_letter) {
            return Err(injected());
        }
        state.dead_letters.push(DeadLetter {
            body: body.to_owned(),
            group: group.map(str::to_owned),
            id: id.to_owned(),
        });
        Ok(())
    }
}

fn take_one(left: &mut usize) -> bool {
    if *left == 0 {
        return false;
    }
    *left -= 1;
    true
}

fn injected() -> QueueError {
    QueueError("injected".into())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use shared::domain::{Job, LineId, WaId, WhatsAppMessage};
    use shared::ports::DeliveryQueue;

    use super::{DeadLetter, MemoryQueue, Postponed};

    fn notice(key: &str, agent: &str) -> Job {
        Job::notice(key.into(), LineId::parse("main").unwrap(), WaId::parse(agent).unwrap(), WhatsAppMessage::text(key))
    }

    #[tokio::test]
    async fn jobs_keep_the_order_enqueued_within_each_group() {
        let queue = MemoryQueue::new();
        let (a1, a2, b1, a3) = (
            notice("a1", "14155550111"),
            notice("a2", "14155550111"),
            notice("b1", "14155550112"),
            notice("a3", "14155550111"),
        );
        queue.enqueue(&[a1.clone(), b1.clone()]).await.unwrap();
        queue.enqueue(&[a2.clone(), a3.clone()]).await.unwrap();

        assert_eq!(queue.jobs(), vec![a1.clone(), b1.clone(), a2.clone(), a3.clone()]);
        assert_eq!(queue.waiting_in_group(&a1.order_group()), vec![a1.clone(), a2.clone(), a3.clone()]);
        assert_eq!(queue.waiting_in_group(&b1.order_group()), vec![b1.clone()]);

        assert_eq!(queue.take_all(), vec![a1.clone(), b1.clone(), a2.clone(), a3.clone()]);
        assert!(queue.take_all().is_empty(), "drained");
        assert!(queue.waiting().is_empty());
        assert_eq!(queue.jobs().len(), 4, "the history stays");
        assert_eq!(queue.enqueue_calls(), 2);
    }

    #[tokio::test]
    async fn a_refused_enqueue_enqueues_nothing_and_a_lost_answer_everything() {
        let queue = MemoryQueue::new();
        let job = notice("n", "14155550111");
        queue.fail_next(1);
        queue.lose_next_answer(1);

        let refused = queue.enqueue(std::slice::from_ref(&job)).await.unwrap_err();
        assert_eq!(refused.0, "injected");
        assert!(queue.jobs().is_empty());

        assert!(queue.enqueue(std::slice::from_ref(&job)).await.is_err(), "the answer is lost");
        assert_eq!(queue.waiting(), vec![job.clone()], "but the job is on the queue");

        queue.enqueue(std::slice::from_ref(&job)).await.unwrap();
        assert_eq!(queue.waiting(), vec![job.clone(), job], "no deduplication: a re-offer is there twice");
        assert_eq!(queue.enqueue_calls(), 3);
    }

    #[tokio::test]
    async fn postponements_and_dead_letters_are_recorded_and_clones_share_them() {
        let queue = MemoryQueue::new();
        let clone = queue.clone();
        clone.postpone("receipt-1", Duration::from_secs(30)).await.unwrap();
        queue.fail_next_dead_letter(1);
        assert!(clone.dead_letter("{}", Some("g"), "m1").await.is_err());
        clone.dead_letter("{}", Some("g"), "m1").await.unwrap();
        clone.dead_letter("not json", None, "m2").await.unwrap();

        assert_eq!(
            queue.postponed(),
            vec![Postponed { receipt_handle: "receipt-1".into(), delay: Duration::from_secs(30) }]
        );
        assert_eq!(queue.dead_letters(), vec!["{}".to_owned(), "not json".to_owned()]);
        assert_eq!(
            queue.dead_letter_entries()[1],
            DeadLetter { body: "not json".into(), group: None, id: "m2".into() }
        );
    }
}
