//! The dead-letter queue for an operator (docs/operating.md): what waits there and why
//! (`dlq list`), and putting it back on the delivery queue once the cause is fixed
//! (`redrive`).
//!
//! Both queues are SQS FIFO. SQS has no peek: a message is seen by receiving it, which hides
//! it (and, in a FIFO queue, every later message of its group) until it is deleted or its
//! visibility timeout ends ("Why doesn't my Amazon SQS FIFO queue return all messages or
//! messages in other message groups?", AWS re:Post Knowledge Center, read 2026-12-06). So a
//! listing holds what it receives for a short while, then makes it visible again at once
//! (`ChangeMessageVisibility` to 0, which the API allows: 0 to 12 hours, SQS API Reference,
//! read 2026-12-06); what waits behind a shown message in its group can't be seen without
//! moving the one before it, and is counted instead.

use std::fmt;
use std::time::Duration;

use aws_sdk_sqs::Client as Sqs;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, Message, MessageSystemAttributeName, QueueAttributeName,
};
use jiff::Timestamp;
use shared::domain::{Job, JobId, JobKind, LegState, LineId, scrub_numbers};
use shared::ports::{Deliveries, LegFailureRecord};

use crate::provider_checks::{Check, CheckOutcome, ProviderChecks};

/// How long a listing hides what it receives: longer than receiving a large DLQ takes; if it
/// ends early, a message received twice stops the listing.
const PEEK_VISIBILITY_SECONDS: i32 = 30;
/// How long a message being moved stays hidden: a send and a delete take milliseconds; if
/// the redrive stops between them, the message is offered again after this.
const MOVE_VISIBILITY_SECONDS: i32 = 60;
/// Long polls in a row that find nothing while SQS still counts messages before a redrive
/// gives up on them (they are in flight elsewhere, or behind a record kept back).
const EMPTY_POLLS_BEFORE_GIVING_UP: u32 = 3;
/// SQS's most per receive, and per batch.
const BATCH: i32 = 10;

/// The longest long poll SQS allows ("Setting-up long polling in Amazon SQS", SQS Developer
/// Guide, read 2026-12-06): an empty answer then means the queue had nothing to give, not
/// that the servers asked happened to hold nothing (short polling samples a subset).
pub const LONGEST_POLL: Duration = Duration::from_secs(20);

fn sqs_error(e: impl std::error::Error) -> String {
    scrub_numbers(&DisplayErrorContext(e).to_string())
}

/// A message as received from the DLQ.
#[derive(Debug, Clone)]
struct Received {
    message_id: String,
    receipt: String,
    body: String,
    group: Option<String>,
    sent_at: Option<Timestamp>,
}

impl Received {
    fn of(message: &Message) -> Option<Self> {
        let attribute = |name: MessageSystemAttributeName| message.attributes().and_then(|a| a.get(&name)).cloned();
        Some(Self {
            message_id: message.message_id()?.to_owned(),
            receipt: message.receipt_handle()?.to_owned(),
            body: message.body().unwrap_or_default().to_owned(),
            group: attribute(MessageSystemAttributeName::MessageGroupId),
            sent_at: attribute(MessageSystemAttributeName::SentTimestamp)
                .and_then(|ms| ms.parse::<i64>().ok())
                .and_then(|ms| Timestamp::from_millisecond(ms).ok()),
        })
    }

    fn job(&self) -> Option<Job> {
        Job::decode(&self.body).ok()
    }
}

async fn receive(
    sqs: &Sqs,
    url: &str,
    most: i32,
    visibility_seconds: i32,
    wait: Duration,
) -> Result<Vec<Received>, String> {
    let out = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(most.clamp(1, BATCH))
        .visibility_timeout(visibility_seconds)
        .wait_time_seconds(i32::try_from(wait.as_secs()).unwrap_or(20).clamp(0, 20))
        .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
        .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
        .send()
        .await
        .map_err(sqs_error)?;
    Ok(out.messages().iter().filter_map(Received::of).collect())
}

/// Makes held messages visible again at once.
async fn release(sqs: &Sqs, url: &str, held: &[Received]) -> Result<(), String> {
    let mut failed = 0;
    for chunk in held.chunks(BATCH as usize) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, r)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(&r.receipt)
                    .visibility_timeout(0)
                    .build()
                    .map_err(sqs_error)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = sqs
            .change_message_visibility_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(sqs_error)?;
        failed += out.failed().len();
    }
    if failed > 0 {
        return Err(format!(
            "{failed} message(s) stay hidden for up to {PEEK_VISIBILITY_SECONDS} s more (SQS refused to show them again now)"
        ));
    }
    Ok(())
}

/// Messages in the queue, visible and in flight (SQS's approximate counts).
async fn depth(sqs: &Sqs, url: &str) -> Result<usize, String> {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .map_err(sqs_error)?
        .attributes
        .unwrap_or_default();
    Ok(attributes.values().filter_map(|v| v.parse::<usize>().ok()).sum())
}

/// Everything the DLQ lets us receive now (each group's first messages), then shown again.
async fn peek(sqs: &Sqs, url: &str, wait: Duration) -> Result<Vec<Received>, String> {
    let mut held: Vec<Received> = Vec::new();
    let outcome = async {
        loop {
            let batch = receive(sqs, url, BATCH, PEEK_VISIBILITY_SECONDS, wait).await?;
            if batch.is_empty() {
                return Ok(());
            }
            for received in batch {
                // Seen before: the hold ran out, so everything receivable has been seen.
                if let Some(earlier) = held.iter_mut().find(|h| h.message_id == received.message_id) {
                    earlier.receipt = received.receipt;
                    return Ok(());
                }
                held.push(received);
            }
        }
    }
    .await;
    let released = release(sqs, url, &held).await;
    outcome.and(released).map(|()| held)
}

/// Why a parked job failed, as the table recorded it on the job's leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The last failure recorded on the leg.
    Failed { state: LegState, failure: LegFailureRecord },
    /// The leg records no failure (already sent, or never tried).
    NoFailure(LegState),
    /// The table has no leg for it: its conversation was erased, or it expired.
    NoRecord,
    /// The record is not a delivery job (something else wrote to the queue).
    NotAJob,
    /// The table couldn't be read.
    Unreadable(String),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Failed { failure, .. } => {
                let code = failure.code.map(|c| format!(" {c}")).unwrap_or_default();
                write!(f, "{}{code}: {}", failure.class, scrub_numbers(&failure.reason).replace('\n', " "))
            }
            Self::NoFailure(LegState::Sent) => f.write_str("already sent: a redrive acknowledges it, sends nothing"),
            Self::NoFailure(state) => write!(f, "no failure recorded (leg {})", state.as_str()),
            Self::NoRecord => f.write_str("no record in the table (erased or expired): the worker drops it"),
            Self::NotAJob => f.write_str("not a delivery job: left in the queue by a redrive"),
            Self::Unreadable(e) => write!(f, "table unreadable: {}", scrub_numbers(e)),
        }
    }
}

/// One record of the DLQ, as `dlq list` shows it: never a full number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedRecord {
    /// Since the message entered the queue it is in (its `SentTimestamp`).
    pub age: Option<Duration>,
    /// `None`: not a job.
    pub kind: Option<JobKind>,
    pub line: Option<LineId>,
    /// Masked (`+1415*****34`, `1415*****11`).
    pub to: Option<String>,
    pub job_id: Option<JobId>,
    pub reason: Reason,
}

/// What `dlq list` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub records: Vec<ListedRecord>,
    /// Messages in the DLQ by SQS's count, those not shown included.
    pub in_queue: usize,
}

impl Listing {
    /// Messages waiting behind a shown one in their group (FIFO shows a group's next message
    /// only once the ones before it are gone).
    pub fn not_shown(&self) -> usize {
        self.in_queue.saturating_sub(self.records.len())
    }
}

/// Lists the DLQ, oldest first within each group, with the reason each job failed; leaves
/// every message where it was. `wait`: each receive's long poll.
pub async fn list<S: Deliveries>(
    sqs: &Sqs,
    dead_letter_url: &str,
    store: &S,
    wait: Duration,
) -> Result<Listing, String> {
    let held = peek(sqs, dead_letter_url, wait).await?;
    let in_queue = depth(sqs, dead_letter_url).await?.max(held.len());
    let now = Timestamp::now();
    let mut records = Vec::with_capacity(held.len());
    for received in &held {
        let age = received.sent_at.map(|at| now.duration_since(at).unsigned_abs());
        let Some(job) = received.job() else {
            records.push(ListedRecord { age, kind: None, line: None, to: None, job_id: None, reason: Reason::NotAJob });
            continue;
        };
        let reason = match store.job_leg(&job).await {
            Ok(Some(leg)) => match leg.error {
                Some(failure) => Reason::Failed { state: leg.state, failure },
                None => Reason::NoFailure(leg.state),
            },
            Ok(None) => Reason::NoRecord,
            Err(e) => Reason::Unreadable(e.to_string()),
        };
        records.push(ListedRecord {
            age,
            kind: Some(job.kind()),
            line: Some(job.line().clone()),
            to: Some(job.masked_recipient()),
            job_id: Some(job.job_id.clone()),
            reason,
        });
    }
    Ok(Listing { records, in_queue })
}

/// `45s`, `12m`, `3h05m`, `2d04h`.
pub fn age_text(age: Duration) -> String {
    let s = age.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

impl fmt::Display for Listing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.in_queue == 0 {
            return writeln!(f, "the dead-letter queue is empty");
        }
        writeln!(f, "{:<6} {:<16} {:<10} {:<13} reason", "age", "kind", "line", "to")?;
        for record in &self.records {
            let text = |value: Option<String>| value.unwrap_or_else(|| "-".to_owned());
            writeln!(
                f,
                "{:<6} {:<16} {:<10} {:<13} {}",
                text(record.age.map(age_text)),
                record.kind.map_or("(not a job)", JobKind::as_str),
                text(record.line.as_ref().map(ToString::to_string)),
                text(record.to.clone()),
                record.reason,
            )?;
        }
        write!(f, "{} shown", self.records.len())?;
        match self.not_shown() {
            0 => writeln!(f, ", all of the dead-letter queue"),
            more => writeln!(
                f,
                "; {more} more wait behind them in their order groups (SQS shows a group's next \
                 message only after the ones before it leave; a redrive moves them all)"
            ),
        }
    }
}

impl Listing {
    /// The listing as JSON (`dlq list --json`): the same fields, no full number.
    pub fn to_json(&self) -> serde_json::Value {
        let records: Vec<serde_json::Value> = self
            .records
            .iter()
            .map(|r| {
                let (state, failure) = match &r.reason {
                    Reason::Failed { state, failure } => (
                        Some(state.as_str()),
                        Some(serde_json::json!({
                            "class": failure.class.as_str(),
                            "code": failure.code,
                            "reason": scrub_numbers(&failure.reason),
                        })),
                    ),
                    Reason::NoFailure(state) => (Some(state.as_str()), None),
                    _ => (None, None),
                };
                serde_json::json!({
                    "age_seconds": r.age.map(|a| a.as_secs()),
                    "kind": r.kind.map(JobKind::as_str),
                    "line": r.line.as_ref().map(ToString::to_string),
                    "to": r.to,
                    "job_id": r.job_id.as_ref().map(JobId::as_str),
                    "leg_state": state,
                    "last_failure": failure,
                    "reason": r.reason.to_string(),
                })
            })
            .collect();
        serde_json::json!({ "records": records, "in_queue": self.in_queue, "not_shown": self.not_shown() })
    }
}

#[derive(Debug, Clone, Copy)]
pub struct RedriveOptions {
    /// Move at most this many.
    pub max: Option<usize>,
    /// Move even if a provider check fails (or can't be made); the checks aren't made.
    pub force: bool,
    /// Check and count, move nothing.
    pub dry_run: bool,
    /// Each receive's long poll ([`LONGEST_POLL`] for an operator).
    pub wait: Duration,
}

/// Jobs moved (or that would move), by kind and line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally(Vec<(JobKind, LineId, usize)>);

impl Tally {
    fn add(&mut self, job: &Job) {
        match self.0.iter_mut().find(|(kind, line, _)| *kind == job.kind() && line == job.line()) {
            Some((_, _, count)) => *count += 1,
            None => self.0.push((job.kind(), job.line().clone(), 1)),
        }
    }

    pub fn total(&self) -> usize {
        self.0.iter().map(|(_, _, n)| n).sum()
    }

    pub fn by_kind_and_line(&self) -> &[(JobKind, LineId, usize)] {
        &self.0
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (kind, line, count) in &self.0 {
            writeln!(f, "  {:<16} {:<10} {count}", kind.as_str(), line.to_string())?;
        }
        Ok(())
    }
}

/// What a redrive did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedriveReport {
    /// Each provider check and what it found; empty with `--force`.
    pub checks: Vec<(Check, CheckOutcome)>,
    /// Moved; for a dry run, what would move of what could be seen.
    pub moved: Tally,
    pub dry_run: bool,
    /// Records that aren't jobs, left in the DLQ.
    pub kept_back: usize,
    /// Still in the DLQ when it ended (SQS's count), those kept back included. For a dry run,
    /// what waits behind the jobs counted.
    pub left: usize,
}

impl fmt::Display for RedriveReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (check, outcome) in &self.checks {
            writeln!(f, "checked {check}: {outcome}")?;
        }
        let total = self.moved.total();
        if self.dry_run {
            writeln!(f, "dry run, nothing moved: {total} job(s) would move now")?;
            write!(f, "{}", self.moved)?;
            if self.left > 0 {
                writeln!(f, "and {} more waiting behind them in their order groups", self.left)?;
            }
        } else {
            writeln!(f, "moved {total} job(s) from the dead-letter queue to the delivery queue")?;
            write!(f, "{}", self.moved)?;
            match self.left {
                0 => writeln!(f, "the dead-letter queue is empty")?,
                left => writeln!(f, "{left} message(s) left in the dead-letter queue")?,
            }
        }
        if self.kept_back > 0 {
            writeln!(f, "{} record(s) that aren't jobs left in the dead-letter queue", self.kept_back)?;
        }
        Ok(())
    }
}

#[derive(Debug)]
pub enum RedriveError {
    /// A provider the jobs need still fails (or couldn't be checked): nothing moved.
    Refused(Vec<(Check, CheckOutcome)>),
    /// SQS failed part way; `moved` went back before it did.
    Queue { moved: usize, error: String },
}

impl fmt::Display for RedriveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused(checks) => {
                writeln!(f, "nothing moved: the cause of the parked jobs is not fixed")?;
                for (check, outcome) in checks.iter().filter(|(_, outcome)| !outcome.works()) {
                    writeln!(f, "  {check}: {outcome}")?;
                }
                write!(f, "fix it (docs/operating.md), or move them anyway with --force")
            }
            Self::Queue { moved, error } => write!(f, "stopped after moving {moved} job(s): {error}"),
        }
    }
}

impl std::error::Error for RedriveError {}

/// Moves the DLQ's jobs back to the delivery queue once the providers they need work:
/// each with its own message group (its conversation's order) and a new deduplication id
/// (its old one may be inside SQS's five-minute window, which would drop it). Long polls
/// until a receive comes back empty and SQS counts nothing left, or `max` moved. Records
/// that aren't jobs stay in the DLQ. A job finished meanwhile is acknowledged by the worker
/// without a second send.
pub async fn redrive(
    sqs: &Sqs,
    dead_letter_url: &str,
    queue_url: &str,
    providers: &ProviderChecks,
    options: RedriveOptions,
) -> Result<RedriveReport, RedriveError> {
    let queue_error = |moved: usize| move |error: String| RedriveError::Queue { moved, error };
    let mut checks = Vec::new();
    if !options.force || options.dry_run {
        // Each group's first messages name every (kind, line) the DLQ holds: the rest of a
        // group is the same kind for the same line.
        let seen = peek(sqs, dead_letter_url, options.wait).await.map_err(queue_error(0))?;
        let jobs: Vec<Job> = seen.iter().filter_map(Received::job).collect();
        if !options.force {
            checks = providers.run(&Check::for_jobs(&jobs)).await;
            if checks.iter().any(|(_, outcome)| !outcome.works()) {
                return Err(RedriveError::Refused(checks));
            }
        }
        if options.dry_run {
            let mut moved = Tally::default();
            for job in jobs.iter().take(options.max.unwrap_or(usize::MAX)) {
                moved.add(job);
            }
            let in_queue = depth(sqs, dead_letter_url).await.map_err(queue_error(0))?;
            let kept_back = seen.len() - jobs.len();
            let left = in_queue.saturating_sub(seen.len());
            return Ok(RedriveReport { checks, moved, dry_run: true, kept_back, left });
        }
    }

    let run = Timestamp::now().as_millisecond();
    let mut moved = Tally::default();
    let mut kept_back: Vec<Received> = Vec::new();
    let mut empty_polls = 0;
    let outcome: Result<(), String> = async {
        loop {
            let room = options.max.map_or(BATCH as usize, |max| max.saturating_sub(moved.total()));
            if room == 0 {
                return Ok(());
            }
            let batch = receive(
                sqs,
                dead_letter_url,
                i32::try_from(room).unwrap_or(BATCH),
                MOVE_VISIBILITY_SECONDS,
                options.wait,
            )
            .await?;
            if batch.is_empty() {
                if depth(sqs, dead_letter_url).await? <= kept_back.len() {
                    return Ok(());
                }
                empty_polls += 1;
                if empty_polls >= EMPTY_POLLS_BEFORE_GIVING_UP {
                    return Ok(());
                }
                continue;
            }
            empty_polls = 0;
            let mut batch = batch.into_iter();
            while let Some(received) = batch.next() {
                let Some(job) = received.job() else {
                    // Held (hidden) until the end, so the drain can tell it from the rest.
                    match kept_back.iter_mut().find(|k| k.message_id == received.message_id) {
                        Some(earlier) => earlier.receipt = received.receipt,
                        None => kept_back.push(received),
                    }
                    continue;
                };
                if let Err(e) = move_one(sqs, dead_letter_url, queue_url, &received, &job, run).await {
                    // The rest of the batch is offered again at once, in its order.
                    let rest: Vec<Received> = batch.collect();
                    let _ = release(sqs, dead_letter_url, &rest).await;
                    return Err(e);
                }
                moved.add(&job);
            }
        }
    }
    .await;
    let released = release(sqs, dead_letter_url, &kept_back).await;
    outcome.and(released).map_err(queue_error(moved.total()))?;
    let left = depth(sqs, dead_letter_url).await.map_err(queue_error(moved.total()))?;
    Ok(RedriveReport { checks, moved, dry_run: false, kept_back: kept_back.len(), left })
}

/// Sends one job to the delivery queue in its group, then deletes it from the DLQ. Stopped
/// between the two, the job is in both: the worker acknowledges the second without sending.
async fn move_one(
    sqs: &Sqs,
    dead_letter_url: &str,
    queue_url: &str,
    received: &Received,
    job: &Job,
    run: i64,
) -> Result<(), String> {
    let mut send = sqs.send_message().queue_url(queue_url).message_body(&received.body);
    if queue_url.ends_with(".fifo") {
        let group = received.group.clone().unwrap_or_else(|| job.order_group());
        send = send.message_group_id(group).message_deduplication_id(format!("{}.{run}", received.message_id));
    }
    send.send().await.map_err(sqs_error)?;
    sqs.delete_message()
        .queue_url(dead_letter_url)
        .receipt_handle(&received.receipt)
        .send()
        .await
        .map_err(sqs_error)?;
    Ok(())
}
