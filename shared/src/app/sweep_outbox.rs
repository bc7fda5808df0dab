//! The outbox sweep (docs/guarantees.md, "Recorded means delivered"): every entry whose grace has
//! passed has its jobs offered to the queue again, then is cleared. A job the webhook had
//! enqueued is dropped by SQS as a duplicate (same deduplication id within five minutes);
//! one it couldn't (SQS down, the function stopped) is enqueued now. The worker runs it on a
//! schedule (EventBridge Scheduler, every minute), and the local stack on a timer.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use crate::app::deliver_job::Deadline;
use crate::ports::{DeliveryQueue, Outbox, QueueError, StoreError};

/// Entries read per round.
const PAGE: usize = 50;

/// How old an outbox entry must be before the sweep re-offers its jobs: the webhook's own
/// enqueue has long happened by then, and the re-offer still falls inside SQS's five-minute
/// deduplication window, so for jobs already on the queue it adds nothing.
pub const DEFAULT_OUTBOX_GRACE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Outbox entries whose jobs are on the queue now.
    pub entries: usize,
    pub jobs: usize,
    /// Stopped for the deadline before it knew the outbox was empty: entries may be due.
    pub more: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("outbox unreadable: {0}")]
    Store(#[from] StoreError),
    #[error("queue refused the outbox's jobs: {0}")]
    Queue(#[from] QueueError),
}

/// Offers the jobs of every entry older than `grace` to the queue, oldest first, until none
/// is left or the deadline is near. An entry is cleared only after its jobs were accepted,
/// so an error leaves it for the next sweep.
pub async fn sweep_outbox<O: Outbox, Q: DeliveryQueue>(
    outbox: &O,
    queue: &Q,
    now: Timestamp,
    grace: Duration,
    deadline: Deadline,
) -> Result<Swept, SweepError> {
    let recorded_before = now - SignedDuration::try_from(grace).unwrap_or(SignedDuration::ZERO);
    let mut swept = Swept::default();
    loop {
        if !deadline.allows(std::time::Duration::from_secs(3)) {
            swept.more = true;
            return Ok(swept);
        }
        let due = outbox.due_outbox(recorded_before, PAGE).await?;
        if due.is_empty() {
            return Ok(swept);
        }
        // One queue call per ten jobs, in the order they were recorded.
        let jobs: Vec<_> = due.iter().flat_map(|entry| entry.jobs.iter().cloned()).collect();
        queue.enqueue(&jobs).await?;
        let ids: Vec<String> = due.iter().map(|entry| entry.id.clone()).collect();
        outbox.clear_outbox(&ids).await?;
        swept.entries += due.len();
        swept.jobs += jobs.len();
    }
}
