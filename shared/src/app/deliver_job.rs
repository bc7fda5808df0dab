//! The delivery worker's use case (docs/using.md, docs/guarantees.md): take a job, send it once, record
//! what happened on its leg.
//!
//! Each leg goes queued → sending (claimed with a lease) → sent | retry | failed, or
//! `uncertain` when an attempt may have reached the provider without the bridge learning
//! its answer. The guarantees:
//!
//! - A job whose leg is `sent` or `failed` is never sent again.
//! - A claimed job is never stranded: a store or queue error before the send gives the claim
//!   back (or, if even that fails, the lease runs out), and a failure after the send leaves
//!   the leg claimed, so the next delivery treats it as uncertain.
//! - An uncertain job is reconciled before it is sent again: the provider's id learnt from a
//!   status report carrying the job's id (WhatsApp's `biz_opaque_callback_data`, Twilio's
//!   `?job=` callback URL), the SMS provider's message list, or this process's own memory of
//!   a send the store didn't take. Only a WhatsApp send that no status report answered within
//!   the reconciliation wait is sent again unverified, and counted
//!   (`AmbiguousResolved{outcome=resent_unverified}`).
//! - Nothing is started that the invocation's deadline can't finish.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex as SyncMutex;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use tokio::sync::Mutex;

use crate::app::live_lines::LiveLines;
use crate::domain::agent_copy::{CopyFacts, DigestEntry, agent_copy, annotated_text, digest_copy};
use crate::domain::delivery::agent_window_open;
use crate::domain::media::{MediaLinks, MediaSource, WhatsAppMediaKind};
use crate::domain::pacing::{Pacer, SendPace, SlotOffer};
use crate::domain::{
    AutoReply, ConversationKey, DeliveryStatus, ErrorClass, FailureClass, ForwardToAgent, Handle, Job, JobId,
    JobPayload, Line, NotifyAgent, ProviderFailure, SendSms, SendTracking, Wamid, WhatsAppMessage, WhatsAppRecipient,
    notices,
};
use crate::ports::{
    Agents, Claim, ConversationSummary, Conversations, Deliveries, DeliveryQueue, ForwardContext, ForwardedVia,
    HandleRenewal, LegFailure, QueueError, Routing, SentLookup, SmsProvider, SmsTracking, StoreError, WhatsAppClient,
};
use crate::telemetry;

pub use crate::domain::compliance::OPTED_OUT_CODE;

/// The longest a claimed job is ours when the caller gives no deadline. With a deadline
/// (a Lambda invocation's), the lease ends a little after it: no job outlives its worker.
pub const CLAIM_LEASE: Duration = Duration::from_secs(120);
/// How far past the invocation's deadline a lease reaches.
const LEASE_PAST_DEADLINE: Duration = Duration::from_secs(5);

/// How long an uncertain send waits for a status report before the provider is asked (or,
/// for WhatsApp, which can't be asked, before it is sent again). Configurable per worker.
pub const DEFAULT_RECONCILE_WAIT: Duration = Duration::from_secs(180);

/// A pair slot this close is taken as free: waited for, not parked for.
const PAIR_SLOT_TOLERANCE: Duration = Duration::from_millis(250);

/// The most parked copies one digest takes (a message holds 4,096 characters; the rest wait
/// for the next).
const DIGEST_MAX_PARTS: usize = 20;

/// What a job must have left of the invocation to start: its sends, and the writes after.
const FINISH_MARGIN: Duration = Duration::from_millis(1500);

/// Messages per second per sending number (docs/guarantees.md), shared by every worker
/// instance: WhatsApp's Cloud API allows 80 per business number; SMS depends on the number
/// (1 for a US long code, 3 toll-free, 100 short code).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SendRates {
    pub whatsapp_per_second: f64,
    pub sms_per_second: f64,
    /// The spacing of messages to one agent, WhatsApp's pair limit (docs/using.md, "A busy
    /// line: digests"); 0: none, and no digests.
    pub whatsapp_pair_seconds: f64,
}

/// WhatsApp's pair rate: "1 message every 6 seconds" from one business number to one user
/// (error 131056 past it; Cloud API error codes, and "WhatsApp Cloud API Rate Limits in
/// Practice", dev.to, read 2026-12-06).
pub const WHATSAPP_PAIR_SECONDS: f64 = 6.0;

impl Default for SendRates {
    fn default() -> Self {
        Self { whatsapp_per_second: 80.0, sms_per_second: 1.0, whatsapp_pair_seconds: WHATSAPP_PAIR_SECONDS }
    }
}

/// WhatsApp sends that may go at once from an idle number: a full batch of the queue (10
/// records), so a batch's copies don't wait behind each other for the spacing; any second
/// still holds at most `whatsapp_per_second` (`domain::pacing`).
pub const WHATSAPP_BURST: u32 = 10;

impl SendRates {
    pub fn whatsapp_pace(&self) -> SendPace {
        SendPace::new(self.whatsapp_per_second, WHATSAPP_BURST)
    }

    /// Messages to one agent, one at a time: `None` when the pair limit isn't kept.
    pub fn pair_pace(&self) -> Option<SendPace> {
        (self.whatsapp_pair_seconds > 0.0).then(|| SendPace::new(1.0 / self.whatsapp_pair_seconds, 1))
    }

    /// SMS numbers are spaced evenly: carriers count a long code's messages per second.
    pub fn sms_pace(&self) -> SendPace {
        SendPace::new(self.sms_per_second, 1)
    }
}

/// A step of a job after which tests can make the worker stop dead, to prove what a
/// redelivery does (issue 4's failpoints).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failpoint {
    AfterClaim,
    AfterSend,
    AfterRecord,
}

/// When the caller must be done (a Lambda invocation's deadline, less its own margin);
/// `None`: no limit (tests, tools).
#[derive(Debug, Clone, Copy, Default)]
pub struct Deadline(Option<Instant>);

impl Deadline {
    pub const NONE: Self = Self(None);

    pub fn at(instant: Instant) -> Self {
        Self(Some(instant))
    }

    pub fn after(duration: Duration) -> Self {
        Self(Some(Instant::now() + duration))
    }

    /// Time left, `None` when unlimited.
    pub fn left(&self) -> Option<Duration> {
        self.0.map(|at| at.saturating_duration_since(Instant::now()))
    }

    /// Whether `needed` still fits.
    pub fn allows(&self, needed: Duration) -> bool {
        self.left().is_none_or(|left| left >= needed)
    }
}

/// Everything the worker sends with, built once per cold start.
pub struct Deliverer<S, W, P, Q> {
    /// Read per run of jobs: an agent removed from the lines gets no more copies and their
    /// queued replies don't go out (`refuse_former_agent`).
    pub lines: LiveLines,
    pub store: S,
    pub whatsapp: W,
    pub sms: P,
    pub queue: Q,
    /// `PUBLIC_BASE_URL/sms/status`: where the SMS provider reports delivery.
    pub status_callback_url: String,
    pub rates: SendRates,
    /// Signs the links providers fetch relayed media from (docs/media.md).
    pub media_links: Option<MediaLinks>,
    /// The longest one provider call may take (the HTTP client's timeout).
    pub send_timeout: Duration,
    /// How long an uncertain send waits for a status report before it is reconciled.
    pub reconcile_wait: Duration,
    /// Names this process's leases: a job it holds and couldn't give back is its own to
    /// resume.
    owner: String,
    pacer: Mutex<Pacer>,
    /// Outcomes this process knows and the store didn't take (it failed right after a send,
    /// or while giving a job back): the job's next delivery here records them.
    settled: SyncMutex<HashMap<JobId, Settlement>>,
    failpoint: Option<Failpoint>,
}

/// What happened to a job's attempt, as this process knows it.
#[derive(Debug, Clone, PartialEq)]
enum Settlement {
    Sent(SentAs),
    /// Sent as one digest carrying `parts` (the lead first) under `wamid`: whichever part is
    /// delivered next records them all, with the digest's reply-routing record, so a
    /// swipe-reply to the digest is never routed like one to an unknown message (to the
    /// agent's focus, which may be another customer).
    SentInDigest {
        sent: SentAs,
        wamid: Wamid,
        parts: std::sync::Arc<[Job]>,
    },
    NotSent,
    /// This process's claim at this time was maybe written, its answer lost: nothing was
    /// sent under it. A later claim that finds the leg in doubt since exactly then, and not
    /// since before, knows the doubt is its own, and sends without a reconciliation wait.
    ClaimLost(Timestamp),
}

/// What asking the provider about an uncertain send found.
#[derive(Debug)]
enum Asked {
    Found(SentAs),
    NotFound,
    /// No list to ask (WhatsApp; AWS SMS).
    CannotAsk,
}

/// How a job went out.
#[derive(Debug, Clone, PartialEq)]
struct SentAs {
    provider_id: String,
    via: Option<ForwardedVia>,
    status: Option<DeliveryStatus>,
}

/// Outcomes kept in memory at most; a busy worker forgets the oldest half.
const SETTLED_LIMIT: usize = 10_000;

#[derive(Debug, Clone, PartialEq)]
pub enum Delivered {
    /// Sent; `provider_id` is the copy's wamid or SMS sid.
    Sent { provider_id: String, via: Option<ForwardedVia> },
    /// An earlier attempt whose answer was lost did send it: recorded, not sent again.
    Reconciled { provider_id: String },
    /// Done by an earlier delivery of the same job: acknowledged, nothing sent.
    AlreadyDone,
    /// The job's record no longer exists (erased): acknowledged, nothing sent.
    Dropped,
    /// Failed for good; recorded on the leg (and the agent told, for their replies).
    Failed { class: ErrorClass, reason: String },
}

#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    /// Try the job again after the backoff for its `attempt` (or the provider's `Retry-After`).
    #[error("will retry: {reason}")]
    Retry { reason: String, retry_after: Option<Duration>, attempt: u32 },
    /// Not an attempt: come back at `until` (a lease held by another delivery, an uncertain
    /// send waiting for its status report, a send the store didn't take yet).
    #[error("waiting: {reason}")]
    Wait { reason: String, until: Timestamp },
    /// Not an attempt: the invocation's deadline is too close to start or finish the job.
    #[error("out of time before the deadline")]
    OutOfTime,
    /// Needs an operator: straight to the dead-letter queue.
    #[error("escalated: {reason}")]
    Escalate { reason: String },
    /// A failpoint stopped the worker (tests only).
    #[error("stopped at {0:?}")]
    Stopped(Failpoint),
}

/// Why a claimed delivery stopped before it finished; the run's claims are settled by kind.
#[derive(Debug)]
enum Halt {
    /// A store or queue call failed before anything went out: the claims are given back.
    Unavailable(String),
    /// The provider took it, the store didn't take the record: the claims stay (this process
    /// remembers), and the next delivery records it.
    Unrecorded(String),
    /// Out of time before anything went out: the claims are given back.
    OutOfTime,
    /// Not yet: an earlier attempt's status report may still come. The claims are given
    /// back as they were.
    Waiting { reason: String, until: Timestamp },
    /// The agent is at WhatsApp's pair limit: the copies wait, parked, for the agent's next
    /// digest (docs/using.md, "A busy line: digests"); the claims go back untried.
    Parked { until: Timestamp },
    /// Not this copy's turn yet (the agent's pair slot is further off than the invocation
    /// has left): the claims go back untried.
    NotYet { reason: String, until: Timestamp },
    /// Already decided (a provider's failure recorded, a failpoint).
    Done(DeliverError),
}

impl From<StoreError> for Halt {
    fn from(e: StoreError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

impl From<QueueError> for Halt {
    fn from(e: QueueError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

impl From<DeliverError> for Halt {
    fn from(e: DeliverError) -> Self {
        Self::Done(e)
    }
}

/// A job this delivery holds, and whether an earlier attempt may have sent it.
#[derive(Debug, Clone, Copy)]
struct Taken<'a> {
    job: &'a Job,
    attempts: u32,
    uncertain_since: Option<Timestamp>,
    /// An attempt before the one at `uncertain_since` may have gone out too.
    earlier_in_doubt: bool,
}

/// One conversation's copies in a digest, and the claims they hold.
struct DigestGroup<'a> {
    handle: Handle,
    opted_out: bool,
    forward: ForwardToAgent,
    taken: Vec<Taken<'a>>,
}

impl<S, W, P, Q> Deliverer<S, W, P, Q>
where
    S: Deliveries + Agents + Conversations + Routing,
    W: WhatsAppClient,
    P: SmsProvider,
    Q: DeliveryQueue,
{
    #[allow(clippy::too_many_arguments)] // the worker's whole wiring, once
    pub fn new(
        lines: impl Into<LiveLines>,
        store: S,
        whatsapp: W,
        sms: P,
        queue: Q,
        status_callback_url: String,
        rates: SendRates,
    ) -> Self {
        Self {
            lines: lines.into(),
            store,
            whatsapp,
            sms,
            queue,
            status_callback_url,
            rates,
            media_links: None,
            send_timeout: Duration::from_secs(10),
            reconcile_wait: DEFAULT_RECONCILE_WAIT,
            owner: uuid::Uuid::new_v4().simple().to_string(),
            pacer: Mutex::default(),
            settled: SyncMutex::default(),
            failpoint: None,
        }
    }

    pub fn with_media_links(mut self, links: MediaLinks) -> Self {
        self.media_links = Some(links);
        self
    }

    /// The providers' HTTP timeout: what a job needs left of the deadline to start a send.
    pub fn with_send_timeout(mut self, timeout: Duration) -> Self {
        self.send_timeout = timeout;
        self
    }

    pub fn with_reconcile_wait(mut self, wait: Duration) -> Self {
        self.reconcile_wait = wait;
        self
    }

    /// Stops every job at `step` (tests of the delivery guarantee).
    pub fn with_failpoint(mut self, step: Failpoint) -> Self {
        self.failpoint = Some(step);
        self
    }

    pub async fn deliver(&self, job: &Job, now: Timestamp) -> Result<Delivered, DeliverError> {
        self.deliver_run(std::slice::from_ref(job), now, Deadline::NONE).await
    }

    /// Delivers consecutive jobs of one order group before `deadline`. Forwards to one agent
    /// are coalesced into one WhatsApp message (docs/guarantees.md: a burst of SMS from one customer
    /// must not trip WhatsApp's ~1 message / 6 s pair limit); any other run holds one job.
    pub async fn deliver_run(
        &self,
        jobs: &[Job],
        now: Timestamp,
        deadline: Deadline,
    ) -> Result<Delivered, DeliverError> {
        let Some(first) = jobs.first() else { return Ok(Delivered::AlreadyDone) };
        let lines = self.lines.current().await;
        let Some(line) = lines.by_id(first.line()) else {
            return Err(DeliverError::Escalate { reason: format!("line `{}` is not configured", first.line()) });
        };
        if !deadline.allows(self.send_timeout + FINISH_MARGIN) {
            return Err(DeliverError::OutOfTime);
        }
        let attempt_of = |taken: &[Taken<'_>]| taken.first().map_or(1, |t| t.attempts + 1);
        // An automated reply's leg is made by its first claim, and only while its conversation
        // exists (`Deliveries::claim_job`): one erased meanwhile gets no item holding the
        // customer's number back, and the claim says `Missing`.
        let lease_until = lease_until(now, deadline);
        let (taken, done_before) = match self.claim_all(jobs, now, lease_until).await {
            Ok(claimed) => claimed,
            Err(halt) => return Err(self.settle(&[], halt, now, lease_until, 1).await),
        };
        self.stop_at(Failpoint::AfterClaim)?;
        if taken.is_empty() {
            // Done before, or erased since: nothing to send.
            return Ok(if done_before { Delivered::AlreadyDone } else { Delivered::Dropped });
        }
        let attempt = attempt_of(&taken);
        let result = async {
            let (to_send, reconciled) = self.reconcile(line, &taken, now).await?;
            match (to_send.is_empty(), reconciled) {
                (true, Some(provider_id)) => Ok(Delivered::Reconciled { provider_id }),
                (true, None) => Ok(Delivered::AlreadyDone),
                (false, _) => self.send_taken(line, &to_send, now, deadline).await,
            }
        }
        .await;
        match result {
            Ok(delivered) => Ok(delivered),
            Err(halt) => Err(self.settle(&taken, halt, now, lease_until, attempt).await),
        }
    }

    /// Claims every job of the run; a job another delivery holds stops the run (with the
    /// claims made so far given back), so the group keeps its order.
    async fn claim_all<'a>(
        &self,
        jobs: &'a [Job],
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<(Vec<Taken<'a>>, bool), Halt> {
        let (mut taken, mut done_before) = (Vec::new(), false);
        for job in jobs {
            let claim = match self.store.claim_job(job, now, lease_until, &self.owner).await {
                Ok(claim) => claim,
                Err(e) => {
                    self.remember(job, Settlement::ClaimLost(now));
                    self.give_back(
                        &taken,
                        &LegFailure { class: FailureClass::Store, code: None, reason: e.to_string() },
                        now,
                    )
                    .await;
                    return Err(Halt::Done(unavailable_retry(&e.to_string(), 1)));
                }
            };
            match claim {
                Claim::Claimed { attempts } => {
                    taken.push(Taken { job, attempts, uncertain_since: None, earlier_in_doubt: false })
                }
                Claim::Uncertain { attempts, since, provider_id, earlier_in_doubt } => {
                    if let Some(id) = provider_id {
                        // A status report told us it went out: remember, record below.
                        self.remember(job, Settlement::Sent(SentAs { provider_id: id, via: None, status: None }));
                        telemetry::count("AmbiguousResolved", &[("outcome", "found")]);
                    }
                    taken.push(Taken { job, attempts, uncertain_since: Some(since), earlier_in_doubt })
                }
                Claim::AlreadyDone { .. } => done_before = true,
                Claim::Missing => {}
                Claim::Busy { until } => {
                    let failure = LegFailure {
                        class: FailureClass::Provider(ErrorClass::Retry),
                        code: None,
                        reason: "a later job waits for an earlier one held by another delivery".into(),
                    };
                    self.give_back(&taken, &failure, now).await;
                    return Err(Halt::Done(DeliverError::Wait {
                        reason: "another delivery holds the job".into(),
                        until,
                    }));
                }
            }
        }
        Ok((taken, done_before))
    }

    /// The claimed jobs that still need sending, after settling the uncertain ones: a send
    /// this process or a status report knows of is recorded; an SMS the provider lists is
    /// recorded; an uncertain WhatsApp send is sent again only after the reconciliation wait.
    /// Also the provider id of one it recorded, if any.
    async fn reconcile<'a>(
        &self,
        line: &Line,
        taken: &[Taken<'a>],
        now: Timestamp,
    ) -> Result<(Vec<Taken<'a>>, Option<String>), Halt> {
        let (mut to_send, mut reconciled) = (Vec::new(), None);
        for t in taken {
            let known = self.settled.lock().map(|s| s.get(&t.job.job_id).cloned()).unwrap_or_default();
            match known {
                Some(Settlement::Sent(sent)) => {
                    self.record_sent(t.job, &sent, now).await?;
                    self.forget(t.job);
                    reconciled = Some(sent.provider_id);
                    continue;
                }
                Some(Settlement::SentInDigest { sent, wamid, parts }) => {
                    let parts: Vec<&Job> = parts.iter().collect();
                    self.store.record_digest_sent(&parts, &wamid, now).await?;
                    for part in parts {
                        self.forget(part);
                    }
                    reconciled = Some(sent.provider_id);
                    continue;
                }
                Some(Settlement::NotSent) => {
                    self.forget(t.job);
                    to_send.push(Taken { uncertain_since: None, ..*t });
                    continue;
                }
                Some(Settlement::ClaimLost(at)) => {
                    self.forget(t.job);
                    // In doubt only since this process's own lost claim (the store keeps
                    // milliseconds): nothing went out under it.
                    let own = t.uncertain_since.map(|since| since.as_millisecond()) == Some(at.as_millisecond());
                    if own && !t.earlier_in_doubt {
                        to_send.push(Taken { uncertain_since: None, ..*t });
                        continue;
                    }
                }
                None => {}
            }
            let Some(since) = t.uncertain_since else {
                to_send.push(*t);
                continue;
            };
            let ask_after = since + signed(self.reconcile_wait);
            if now < ask_after {
                return Err(Halt::Waiting {
                    reason: "an earlier attempt may have been sent; waiting for its status report".into(),
                    until: ask_after,
                });
            }
            match self.ask_provider(line, t.job, since).await? {
                Asked::Found(sent) => {
                    telemetry::count("AmbiguousResolved", &[("outcome", "found")]);
                    tracing::info!(outcome = "reconciled", "the provider has the uncertain send: recorded, not resent");
                    self.remember(t.job, Settlement::Sent(sent.clone()));
                    self.record_sent(t.job, &sent, now).await?;
                    self.forget(t.job);
                    reconciled = Some(sent.provider_id);
                }
                Asked::NotFound => {
                    telemetry::count("AmbiguousResolved", &[("outcome", "not_found")]);
                    to_send.push(Taken { uncertain_since: None, ..*t });
                }
                // WhatsApp, and SMS providers without a message list (AWS): the status report
                // that names the job (its tracking, its `Context`) had the wait to come.
                Asked::CannotAsk => {
                    telemetry::count("AmbiguousResolved", &[("outcome", "resent_unverified")]);
                    tracing::warn!(
                        outcome = "resent_unverified",
                        kind = t.job.kind().as_str(),
                        "no status report for an uncertain send and no provider list to ask: sending again (may duplicate)"
                    );
                    to_send.push(Taken { uncertain_since: None, ..*t });
                }
            }
        }
        Ok((to_send, reconciled))
    }

    /// Whether the provider holds an uncertain SMS (its message list). WhatsApp, and an SMS
    /// provider without a list (AWS), can't be asked.
    async fn ask_provider(&self, line: &Line, job: &Job, since: Timestamp) -> Result<Asked, Halt> {
        let (to, body) = match &job.payload {
            JobPayload::SendSms(sms) => (&sms.conversation.customer, sms.text.as_str()),
            JobPayload::AutoReply(reply) => (&reply.conversation.customer, reply.text.as_str()),
            JobPayload::ForwardToAgent(_) | JobPayload::NotifyAgent(_) => return Ok(Asked::CannotAsk),
        };
        let lookup = self
            .sms
            .find_sent(line.sms_origin(), to, body, since)
            .await
            .map_err(|failure| Halt::Unavailable(format!("asking the SMS provider: {failure}")))?;
        let SentLookup::Listed(listed) = lookup else {
            return Ok(Asked::CannotAsk);
        };
        for candidate in listed {
            // Another job with the same text (an agent typing "ok" twice) recorded it.
            match self.store.find_sent_sms(&candidate.id).await? {
                Some(record) if record.job_id != job.job_id => continue,
                _ => {
                    return Ok(Asked::Found(SentAs { provider_id: candidate.id, via: None, status: candidate.status }));
                }
            }
        }
        Ok(Asked::NotFound)
    }

    /// What a halted delivery leaves behind, as the error the worker acts on.
    async fn settle(
        &self,
        taken: &[Taken<'_>],
        halt: Halt,
        now: Timestamp,
        lease_until: Timestamp,
        attempt: u32,
    ) -> DeliverError {
        match halt {
            Halt::Unavailable(reason) => {
                self.give_back(
                    taken,
                    &LegFailure { class: FailureClass::Store, code: None, reason: reason.clone() },
                    now,
                )
                .await;
                unavailable_retry(&reason, attempt)
            }
            Halt::OutOfTime => {
                self.hand_back_untried(taken, now).await;
                DeliverError::OutOfTime
            }
            Halt::Waiting { reason, until } => {
                let failure = LegFailure {
                    class: FailureClass::Provider(ErrorClass::Ambiguous),
                    code: None,
                    reason: reason.clone(),
                };
                self.give_back(taken, &failure, now).await;
                DeliverError::Wait { reason, until }
            }
            Halt::Unrecorded(reason) => DeliverError::Wait {
                reason: format!("sent, not yet recorded: {reason}"),
                // This process remembers; another one waits for the lease and reconciles.
                until: lease_until.min(now + SignedDuration::from_secs(2)),
            },
            Halt::Parked { until } => {
                self.hand_back_untried(taken, now).await;
                telemetry::count("Digests", &[("outcome", "parked")]);
                DeliverError::Wait { reason: "parked for the agent's digest (WhatsApp's pair limit)".into(), until }
            }
            Halt::NotYet { reason, until } => {
                self.hand_back_untried(taken, now).await;
                DeliverError::Wait { reason, until }
            }
            Halt::Done(error) => error,
        }
    }

    /// Gives claimed jobs back: `retry`, or `uncertain` again when an earlier attempt may
    /// have sent them. If the store refuses this too, the lease runs out instead and this
    /// process remembers that nothing went out.
    async fn give_back(&self, taken: &[Taken<'_>], failure: &LegFailure, now: Timestamp) {
        for t in taken {
            let given = match t.uncertain_since {
                Some(since) => self.store.mark_job_uncertain(t.job, failure, since, now).await,
                None => self.store.release_job(t.job, failure, now).await,
            };
            if let Err(e) = given {
                tracing::warn!(error = %e, "could not give the job back; its lease will run out");
                if t.uncertain_since.is_none() {
                    self.remember(t.job, Settlement::NotSent);
                }
            }
        }
    }

    /// Gives claimed jobs back untried at the deadline (docs/guarantees.md: not an attempt).
    /// One uncertain from an earlier attempt stays uncertain; a refused give-back is left to
    /// its lease, as in `give_back`.
    async fn hand_back_untried(&self, taken: &[Taken<'_>], now: Timestamp) {
        let failure = LegFailure {
            class: FailureClass::Provider(ErrorClass::Retry),
            code: None,
            reason: "handed back before the deadline".into(),
        };
        for t in taken {
            let given = match t.uncertain_since {
                Some(since) => self.store.mark_job_uncertain(t.job, &failure, since, now).await,
                None => self.store.hand_back_untried(t.job, now).await,
            };
            if let Err(e) = given {
                tracing::warn!(error = %e, "could not hand the job back; its lease will run out");
                if t.uncertain_since.is_none() {
                    self.remember(t.job, Settlement::NotSent);
                }
            }
        }
    }

    fn remember(&self, job: &Job, settlement: Settlement) {
        if let Ok(mut settled) = self.settled.lock() {
            if settled.len() >= SETTLED_LIMIT {
                let keep: Vec<JobId> = settled.keys().skip(SETTLED_LIMIT / 2).cloned().collect();
                settled.retain(|id, _| keep.contains(id));
            }
            settled.insert(job.job_id.clone(), settlement);
        }
    }

    fn forget(&self, job: &Job) {
        if let Ok(mut settled) = self.settled.lock() {
            settled.remove(&job.job_id);
        }
    }

    fn stop_at(&self, step: Failpoint) -> Result<(), DeliverError> {
        if self.failpoint == Some(step) { Err(DeliverError::Stopped(step)) } else { Ok(()) }
    }

    /// Sends what the run's kind sends.
    async fn send_taken(
        &self,
        line: &Line,
        taken: &[Taken<'_>],
        now: Timestamp,
        deadline: Deadline,
    ) -> Result<Delivered, Halt> {
        let first = taken[0];
        if is_for_a_former_agent(line, &first.job.payload) {
            return self.refuse_former_agent(taken, now).await;
        }
        match &first.job.payload {
            JobPayload::ForwardToAgent(_) => self.forward_to_agent(line, taken, now, deadline).await,
            JobPayload::SendSms(sms) => self.send_sms(line, first, sms, now, deadline).await,
            JobPayload::NotifyAgent(notice) => self.notify_agent(line, first, notice, now, deadline).await,
            JobPayload::AutoReply(reply) => self.auto_reply(line, first, reply, now, deadline).await,
        }
    }

    /// Waits for the sender's next slot (docs/guarantees.md pacing), unless the slot leaves no time
    /// for the send before the deadline. The slot comes from the store, so every worker
    /// instance shares the sender's pace; if the store can't answer, this process's own
    /// pacer spaces its sends (a moment's outage costs no send, and one instance still keeps
    /// to the rate).
    async fn pace(&self, sender: &str, pace: SendPace, deadline: Deadline) -> Result<(), Halt> {
        let (wait, shared_slot) = match self.store.reserve_send_slot(sender, pace, Timestamp::now()).await {
            Ok(slot) => {
                let wait = slot.at_us.saturating_sub(Timestamp::now().as_microsecond());
                (Duration::from_micros(u64::try_from(wait).unwrap_or(0)), Some(slot))
            }
            Err(e) => {
                tracing::warn!(error = %e, "shared send slot unavailable: this process paces alone");
                let slot = self.pacer.lock().await.reserve(sender, pace, Instant::now());
                (slot.saturating_duration_since(Instant::now()), None)
            }
        };
        if !deadline.allows(wait + self.send_timeout + FINISH_MARGIN) {
            // Unused: the next send needn't wait behind it (a failure only costs that wait).
            if let Some(slot) = shared_slot {
                let _ = self.store.give_back_send_slot(sender, slot, pace).await;
            }
            return Err(Halt::OutOfTime);
        }
        tokio::time::sleep(wait).await;
        Ok(())
    }

    /// A provider call, cut off where the deadline would be missed. A cut-off call may have
    /// reached the provider: ambiguous, like the provider's own timeout.
    async fn call<T>(
        &self,
        deadline: Deadline,
        call: impl Future<Output = Result<T, ProviderFailure>>,
    ) -> Result<T, ProviderFailure> {
        match deadline.left() {
            None => call.await,
            Some(left) => tokio::time::timeout(left.saturating_sub(FINISH_MARGIN / 2), call)
                .await
                .unwrap_or_else(|_| Err(ProviderFailure::Ambiguous("cut off by the invocation's deadline".into()))),
        }
    }

    /// The provider accepted `jobs` as `sent`: record it (the failpoints stop around this).
    async fn accepted(&self, jobs: &[&Job], sent: SentAs, now: Timestamp, deadline: Deadline) -> Result<String, Halt> {
        self.stop_at(Failpoint::AfterSend)?;
        self.record_sent_or_remember(jobs, &sent, now, deadline).await?;
        self.stop_at(Failpoint::AfterRecord)?;
        Ok(sent.provider_id)
    }

    /// Records a send. A store error is retried within the deadline; if it persists, this
    /// process remembers the send and the job's next delivery records it (`Unrecorded`).
    async fn record_sent_or_remember(
        &self,
        jobs: &[&Job],
        sent: &SentAs,
        now: Timestamp,
        deadline: Deadline,
    ) -> Result<(), Halt> {
        self.record_or_remember(jobs, sent, None, now, deadline).await
    }

    /// Records `jobs` sent as `sent` (with `digest`: as one digest, `record_digest_sent`),
    /// retried within the deadline; this process remembers the send meanwhile, and past the
    /// deadline (`Unrecorded`).
    async fn record_or_remember(
        &self,
        jobs: &[&Job],
        sent: &SentAs,
        digest: Option<&Wamid>,
        now: Timestamp,
        deadline: Deadline,
    ) -> Result<(), Halt> {
        let parts: Option<std::sync::Arc<[Job]>> = digest.map(|_| jobs.iter().map(|j| (*j).clone()).collect());
        for job in jobs {
            let settlement = match (digest, &parts) {
                (Some(wamid), Some(parts)) => {
                    Settlement::SentInDigest { sent: sent.clone(), wamid: wamid.clone(), parts: parts.clone() }
                }
                _ => Settlement::Sent(sent.clone()),
            };
            self.remember(job, settlement);
        }
        let mut pause = Duration::from_millis(100);
        let mut tries = 0;
        loop {
            tries += 1;
            let result = match digest {
                Some(wamid) => self.store.record_digest_sent(jobs, wamid, now).await,
                None => {
                    let mut result = Ok(());
                    for job in jobs {
                        result = self.record_sent(job, sent, now).await;
                        if result.is_err() {
                            break;
                        }
                    }
                    result
                }
            };
            match result {
                Ok(()) => {
                    for job in jobs {
                        self.forget(job);
                    }
                    return Ok(());
                }
                Err(e) if tries < 6 && deadline.allows(pause + FINISH_MARGIN) => {
                    tracing::warn!(error = %e, "recording a send failed; trying again");
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
                Err(e) => return Err(Halt::Unrecorded(e.to_string())),
            }
        }
    }

    /// Marks a job's leg sent, by its kind.
    async fn record_sent(&self, job: &Job, sent: &SentAs, now: Timestamp) -> Result<(), StoreError> {
        match &job.payload {
            JobPayload::ForwardToAgent(_) => {
                let wamid = Wamid::parse(&sent.provider_id).map_err(StoreError::Corrupt)?;
                self.store.record_forwarded(job, &wamid, sent.via.unwrap_or(ForwardedVia::Reconciled), now).await
            }
            JobPayload::SendSms(_) => self.store.record_sms_sent(job, &sent.provider_id, sent.status, now).await,
            JobPayload::NotifyAgent(_) | JobPayload::AutoReply(_) => {
                self.store.record_job_sent(job, &sent.provider_id, now).await
            }
        }
    }

    async fn forward_to_agent(
        &self,
        line: &Line,
        taken: &[Taken<'_>],
        now: Timestamp,
        deadline: Deadline,
    ) -> Result<Delivered, Halt> {
        let jobs: Vec<&Job> = taken.iter().map(|t| t.job).collect();
        let forwards: Vec<&ForwardToAgent> = jobs
            .iter()
            .filter_map(|j| match &j.payload {
                JobPayload::ForwardToAgent(f) => Some(f),
                _ => None,
            })
            .collect();
        let first = forwards[0];
        let agent = WhatsAppRecipient::from(&first.agent);
        let Some(context) = self.store.forward_context(&first.conversation, &first.agent).await? else {
            return Ok(Delivered::Dropped);
        };
        tracing::Span::current().record("handle", context.handle.as_str());
        if context.handle_renewal_due {
            self.renew_handle(&first.conversation, &context.handle, now).await;
        }
        let tracking = SendTracking {
            line: line.id.clone(),
            handle: Some(context.handle.clone()),
            jobs: jobs.iter().map(|j| j.job_id.clone()).collect(),
            part_handles: Vec::new(),
        }
        .encode();
        let window_open = agent_window_open(context.agent_last_inbound_at, context.agent_window_closed_at, now);
        // WhatsApp's pair limit (docs/using.md, "A busy line: digests"): a copy that would
        // come too soon after the last one to this agent waits, parked, for the next digest.
        if let Some(pair) = self.rates.pair_pace() {
            let digestible = window_open && forwards.iter().all(|f| f.media.is_empty());
            if let Err(halt) = self.take_pair_slot(line, &first.agent, pair, digestible, deadline).await {
                if let Halt::Parked { until } = halt {
                    return Err(self.park(line, &first.agent, &jobs, until, now).await?);
                }
                return Err(halt);
            }
            if digestible {
                let parked = self.claim_parked(line, &first.agent, &jobs, now, lease_until(now, deadline)).await;
                if !parked.is_empty()
                    && let Some(sent) =
                        self.send_digest(line, taken, &first.agent, &context, parked, now, deadline).await?
                {
                    return Ok(sent);
                }
            }
        }
        let combined = coalesce(&forwards);
        let copy =
            agent_copy(line, &context.handle, &combined, CopyFacts { window_open, opted_out: context.opted_out });
        self.pace(line.whatsapp_phone_number_id.as_str(), self.rates.whatsapp_pace(), deadline).await?;
        let started = Timestamp::now();
        let send = self.whatsapp.send(&line.whatsapp_phone_number_id, &agent, &copy, Some(&tracking));
        let mut result = self.call(deadline, send).await;
        let mut via = if window_open { ForwardedVia::Text } else { ForwardedVia::Template };

        // 131047: the agent's window closed after all. Remember it, and send the template.
        if let Err(failure) = &result
            && copy.is_free_form_text()
            && ErrorClass::of(failure) == ErrorClass::Fallback
        {
            self.store.mark_window_closed(&line.id, &first.agent, now).await?;
            let template = agent_copy(
                line,
                &context.handle,
                &combined,
                CopyFacts { window_open: false, opted_out: context.opted_out },
            );
            self.pace(line.whatsapp_phone_number_id.as_str(), self.rates.whatsapp_pace(), deadline).await?;
            let send = self.whatsapp.send(&line.whatsapp_phone_number_id, &agent, &template, Some(&tracking));
            result = self.call(deadline, send).await;
            via = ForwardedVia::Template;
        }
        match result {
            Ok(wamid) => {
                let sent = SentAs { provider_id: wamid.as_str().to_owned(), via: Some(via), status: None };
                let provider_id = self.accepted(&jobs, sent, now, deadline).await?;
                if via == ForwardedVia::Text {
                    self.forward_media(line, &context.handle, &forwards, now, deadline).await;
                }
                Ok(Delivered::Sent { provider_id, via: Some(via) })
            }
            Err(failure) => self.fail(taken, &failure, Vec::new(), started, now).await,
        }
    }

    /// Takes the next slot of messages to `agent` (WhatsApp's pair limit). A `digestible`
    /// copy takes it only if it is free now, or within a moment; when it is later, nothing is
    /// reserved and the copy parks (`Halt::Parked`) for the copy that will carry it.
    ///
    /// Any other message (a notice, a template, media) reserves the slot if it is at most one
    /// spacing away and waits for it here. Sent back to come at the slot instead, it would
    /// return late (SQS delays count whole seconds) and find the slot taken by copies arriving
    /// meanwhile, again and again on a busy line: the digests bench measured answers to an
    /// agent's command waiting 38–50 s that way (BENCHMARKS.md). Only a slot further away
    /// (other such messages ahead) sends it back untried (`Halt::NotYet`). If the store can't
    /// answer, the message goes as it would without the limit.
    async fn take_pair_slot(
        &self,
        line: &Line,
        agent: &crate::domain::WaId,
        pace: SendPace,
        digestible: bool,
        deadline: Deadline,
    ) -> Result<(), Halt> {
        let sender = pair_sender(line, agent);
        let within = if digestible { PAIR_SLOT_TOLERANCE } else { pace.interval.max(PAIR_SLOT_TOLERANCE) };
        let offer = match self.store.offer_send_slot(&sender, pace, Timestamp::now(), within).await {
            Ok(offer) => offer,
            Err(e) => {
                tracing::warn!(error = %e, "the agent's pair slot is unknown: sending without it");
                return Ok(());
            }
        };
        let slot = match offer {
            SlotOffer::Reserved(slot) => slot,
            SlotOffer::Busy { free_at_us } => {
                let until = Timestamp::from_microsecond(free_at_us).unwrap_or(Timestamp::now());
                if digestible {
                    return Err(Halt::Parked { until });
                }
                return Err(Halt::NotYet { reason: "waiting for the agent's next pair slot".into(), until });
            }
        };
        // Reserved: wait for it, if the invocation can.
        let wait = Duration::from_micros(
            u64::try_from(slot.at_us.saturating_sub(Timestamp::now().as_microsecond())).unwrap_or(0),
        );
        if !deadline.allows(wait + self.send_timeout + FINISH_MARGIN) {
            // Unused: the messages behind it needn't wait a spacing more.
            let _ = self.store.give_back_send_slot(&sender, slot, pace).await;
            return Err(Halt::OutOfTime);
        }
        tokio::time::sleep(wait).await;
        Ok(())
    }

    /// Parks the run's copies for the agent's next digest. The first copy parked for a slot
    /// is elected to carry the digest (`elect_digest_carrier`): it comes back when the slot
    /// frees; the others come back later, to find themselves sent (or, if the digest didn't
    /// take them, to carry the next one). Copies parked together all coming back at once
    /// would each be busy to the others' digests, and go one by one.
    async fn park(
        &self,
        line: &Line,
        agent: &crate::domain::WaId,
        jobs: &[&Job],
        until: Timestamp,
        now: Timestamp,
    ) -> Result<Halt, StoreError> {
        for job in jobs {
            self.store.park_copy(&line.id, agent, job, now).await?;
        }
        let carrier = match jobs.first() {
            Some(job) => {
                let elected =
                    self.store.elect_digest_carrier(&line.id, agent, until.as_microsecond(), &job.job_id, now);
                elected.await.unwrap_or(true)
            }
            None => true,
        };
        let after = Duration::from_secs_f64(self.rates.whatsapp_pair_seconds / 2.0).max(Duration::from_secs(1));
        Ok(Halt::Parked { until: if carrier { until } else { until + signed(after) } })
    }

    /// The copies parked for `agent` besides `own`, claimed for this digest (oldest first, at
    /// most what a digest may carry). One done meanwhile is taken off the parking; one held
    /// elsewhere, or in doubt, is left to its own delivery.
    async fn claim_parked(
        &self,
        line: &Line,
        agent: &crate::domain::WaId,
        own: &[&Job],
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Vec<(Job, u32)> {
        let parked = match self.store.parked_copies(&line.id, agent).await {
            Ok(parked) => parked,
            Err(e) => {
                tracing::warn!(error = %e, "parked copies unreadable: this copy goes alone");
                return Vec::new();
            }
        };
        let (mut claimed, mut finished) = (Vec::new(), Vec::new());
        let digest_owner = format!("{}+digest", self.owner);
        let candidates = parked.into_iter().filter(|job| {
            !own.iter().any(|o| o.job_id == job.job_id)
                && matches!(&job.payload, JobPayload::ForwardToAgent(f) if &f.agent == agent && f.conversation.line == line.id)
        });
        for job in candidates.take(DIGEST_MAX_PARTS) {
            // Claimed as another owner than this process's own deliveries: a copy one of them
            // holds right now is busy to the digest, never taken over from it.
            match self.store.claim_job(&job, now, lease_until, &digest_owner).await {
                Ok(Claim::Claimed { attempts }) => claimed.push((job, attempts)),
                Ok(Claim::AlreadyDone { .. } | Claim::Missing) => finished.push(job.job_id.clone()),
                Ok(Claim::Uncertain { since, .. }) => {
                    let taken = Taken { job: &job, attempts: 0, uncertain_since: Some(since), earlier_in_doubt: true };
                    let failure = LegFailure {
                        class: FailureClass::Provider(ErrorClass::Ambiguous),
                        code: None,
                        reason: "in doubt: left to its own delivery".into(),
                    };
                    self.give_back(&[taken], &failure, now).await;
                }
                Ok(Claim::Busy { .. }) => {}
                Err(e) => {
                    // The claim may have been taken: its lease runs out, and its own delivery
                    // knows nothing went out under it.
                    self.remember(&job, Settlement::ClaimLost(now));
                    tracing::warn!(error = %e, "claiming a parked copy failed; it is left to its own delivery");
                    break;
                }
            }
        }
        if !finished.is_empty()
            && let Err(e) = self.store.unpark_copies(&line.id, agent, &finished).await
        {
            tracing::warn!(error = %e, "done copies still parked; the next digest finds them done");
        }
        claimed
    }

    /// One message carrying this run's copy and the parked copies of other conversations
    /// (docs/using.md, "A busy line: digests"). A parked copy that doesn't fit, or whose
    /// conversation is gone, is handed back untried, once; every other way out settles each
    /// claim once too: the run's own by the caller, the parked ones here.
    #[allow(clippy::too_many_arguments)] // the run, its agent and its facts, as forward_to_agent has them
    async fn send_digest(
        &self,
        line: &Line,
        taken: &[Taken<'_>],
        agent_id: &crate::domain::WaId,
        context: &ForwardContext,
        parked: Vec<(Job, u32)>,
        now: Timestamp,
        deadline: Deadline,
    ) -> Result<Option<Delivered>, Halt> {
        let parked: Vec<Taken<'_>> = parked
            .iter()
            .map(|(job, attempts)| Taken { job, attempts: *attempts, uncertain_since: None, earlier_in_doubt: false })
            .collect();
        let (parts, gone) = match self.digest_groups(taken, context, &parked, now).await {
            Ok(found) => found,
            Err(halt) => {
                self.hand_back_untried(&parked, now).await;
                return Err(halt);
            }
        };
        if parts.len() < 2 {
            // Every other conversation is gone: this run's copy goes as a plain copy.
            self.hand_back_untried(&gone, now).await;
            return Ok(None);
        }
        let entries: Vec<DigestEntry<'_>> = parts
            .iter()
            .map(|g| DigestEntry { handle: &g.handle, forward: &g.forward, opted_out: g.opted_out })
            .collect();
        let (message, carried) = digest_copy(&entries);
        let (sent_parts, left) = parts.split_at(carried.clamp(1, parts.len()));
        let mut not_carried: Vec<Taken<'_>> = left.iter().flat_map(|g| g.taken.iter().copied()).collect();
        not_carried.extend(gone);
        let all: Vec<Taken<'_>> = sent_parts.iter().flat_map(|g| g.taken.iter().copied()).collect();
        let others: Vec<Taken<'_>> =
            all.iter().filter(|t| !taken.iter().any(|own| own.job.job_id == t.job.job_id)).copied().collect();
        self.hand_back_untried(&not_carried, now).await;
        let jobs: Vec<&Job> = all.iter().map(|t| t.job).collect();
        if let Err(halt) = self.pace(line.whatsapp_phone_number_id.as_str(), self.rates.whatsapp_pace(), deadline).await
        {
            self.hand_back_untried(&others, now).await;
            return Err(halt);
        }
        let part_handles: Vec<Handle> =
            sent_parts.iter().flat_map(|g| g.taken.iter().map(|_| g.handle.clone())).collect();
        let tracking = SendTracking {
            line: line.id.clone(),
            handle: None,
            jobs: jobs.iter().map(|j| j.job_id.clone()).collect(),
            part_handles,
        }
        .encode();
        let agent = WhatsAppRecipient::from(agent_id);
        let started = Timestamp::now();
        let send = self.whatsapp.send(&line.whatsapp_phone_number_id, &agent, &message, Some(&tracking));
        match self.call(deadline, send).await {
            Ok(wamid) => {
                let sent =
                    SentAs { provider_id: wamid.as_str().to_owned(), via: Some(ForwardedVia::Digest), status: None };
                self.stop_at(Failpoint::AfterSend)?;
                self.record_or_remember(&jobs, &sent, Some(&wamid), now, deadline).await?;
                self.stop_at(Failpoint::AfterRecord)?;
                let unparked: Vec<JobId> = jobs.iter().map(|j| j.job_id.clone()).collect();
                if let Err(e) = self.store.unpark_copies(&line.id, agent_id, &unparked).await {
                    tracing::warn!(error = %e, "sent copies still parked; the next digest finds them done");
                }
                telemetry::count("Digests", &[("outcome", "sent")]);
                tracing::info!(
                    outcome = "digest",
                    conversations = sent_parts.len(),
                    copies = jobs.len(),
                    "one message carried several conversations' copies"
                );
                Ok(Some(Delivered::Sent { provider_id: sent.provider_id, via: sent.via }))
            }
            // 131047: the agent's window closed after all. Each copy goes again on its own,
            // as the template.
            Err(failure) if ErrorClass::of(&failure) == ErrorClass::Fallback => {
                if let Err(e) = self.store.mark_window_closed(&line.id, agent_id, now).await {
                    self.hand_back_untried(&others, now).await;
                    return Err(e.into());
                }
                let reason = "the agent's window closed: each copy goes again, as the template".to_owned();
                let refused = LegFailure {
                    class: FailureClass::Provider(ErrorClass::Fallback),
                    code: match &failure {
                        ProviderFailure::Rejected { code, .. } => *code,
                        _ => None,
                    },
                    reason: reason.clone(),
                };
                self.give_back(taken, &refused, now).await;
                self.hand_back_untried(&others, now).await;
                Err(Halt::Done(DeliverError::Wait { reason, until: now }))
            }
            Err(failure) => self.fail(&all, &failure, Vec::new(), started, now).await.map(Some),
        }
    }

    /// The digest's conversations in order, this run's first, each with its copies coalesced;
    /// and the parked copies whose conversation is gone.
    async fn digest_groups<'a>(
        &self,
        taken: &[Taken<'a>],
        context: &ForwardContext,
        parked: &[Taken<'a>],
        now: Timestamp,
    ) -> Result<(Vec<DigestGroup<'a>>, Vec<Taken<'a>>), Halt> {
        let forward_of = |t: &Taken<'_>| match &t.job.payload {
            JobPayload::ForwardToAgent(f) => Some(f.clone()),
            _ => None,
        };
        let own: Vec<ForwardToAgent> = taken.iter().filter_map(forward_of).collect();
        let own_refs: Vec<&ForwardToAgent> = own.iter().collect();
        let mut groups = vec![DigestGroup {
            handle: context.handle.clone(),
            opted_out: context.opted_out,
            forward: coalesce(&own_refs),
            taken: taken.to_vec(),
        }];
        let mut gone = Vec::new();
        for t in parked {
            let Some(forward) = forward_of(t) else { continue };
            if let Some(group) = groups.iter_mut().find(|g| g.forward.conversation == forward.conversation) {
                group.forward = coalesce(&[&group.forward, &forward]);
                group.taken.push(*t);
                continue;
            }
            match self.store.forward_context(&forward.conversation, &forward.agent).await? {
                Some(found) => {
                    if found.handle_renewal_due {
                        self.renew_handle(&forward.conversation, &found.handle, now).await;
                    }
                    groups.push(DigestGroup {
                        handle: found.handle,
                        opted_out: found.opted_out,
                        forward,
                        taken: vec![*t],
                    });
                }
                None => gone.push(*t),
            }
        }
        Ok((groups, gone))
    }

    /// The customer's pictures, audio, video and documents, each as WhatsApp media the Cloud
    /// API fetches through the bridge's signed link, after the copy that names them. A
    /// medium that fails is counted and logged, never the copy's failure: the copy already
    /// lists it, and the agent can ask the customer.
    async fn forward_media(
        &self,
        line: &Line,
        handle: &crate::domain::Handle,
        forwards: &[&ForwardToAgent],
        now: Timestamp,
        deadline: Deadline,
    ) {
        let Some(links) = &self.media_links else { return };
        for forward in forwards {
            let customer = forward.conversation.customer.pretty();
            for (i, item) in forward.media.iter().enumerate() {
                let Some(kind) = WhatsAppMediaKind::for_content_type(&item.content_type) else { continue };
                // Numbered as the copy names them: "[image 1/2]".
                let message = WhatsAppMessage::Media {
                    kind,
                    link: links.link(MediaSource::Sms, &item.url, now),
                    caption: Some(format!("{handle} · {customer} ({}/{})", i + 1, forward.media.len())),
                };
                let sent =
                    match self.pace(line.whatsapp_phone_number_id.as_str(), self.rates.whatsapp_pace(), deadline).await
                    {
                        Ok(()) => {
                            let agent = WhatsAppRecipient::from(&forward.agent);
                            let send = self.whatsapp.send(&line.whatsapp_phone_number_id, &agent, &message, None);
                            self.call(deadline, send).await.map(|_| ())
                        }
                        Err(_) => Err(ProviderFailure::NotSent("no time left before the deadline".into())),
                    };
                if let Err(failure) = sent {
                    telemetry::count("MediaNotForwarded", &[("kind", kind.as_str())]);
                    tracing::warn!(error = %failure, kind = kind.as_str(), "a customer's media did not reach the agent");
                }
            }
        }
    }

    async fn send_sms(
        &self,
        line: &Line,
        taken: Taken<'_>,
        sms: &SendSms,
        now: Timestamp,
        deadline: Deadline,
    ) -> Result<Delivered, Halt> {
        let job = taken.job;
        let Some(conversation) = self.texted_conversation(&sms.conversation).await? else {
            return Ok(Delivered::Dropped);
        };
        let handle = conversation.handle.to_string();
        // The agent sees a refused reply on their message, like a failed delivery.
        let tell_agent = |code: Option<i64>| -> Vec<Job> {
            notices::delivery_result(DeliveryStatus::Failed, None, code, &sms.agent_wamid, line.delivery_receipts)
                .into_iter()
                .enumerate()
                .map(|(i, text)| {
                    let fallback = template_fallback(Some(&handle), &sms.conversation.customer, &text, &sms.text);
                    Job::notice(format!("{}:refused:{i}", job.job_id), line.id.clone(), sms.agent.clone(), text)
                        .with_template_fallback(fallback)
                })
                .collect()
        };
        // docs/using.md: nothing is texted to an opted-out customer, whatever queued it.
        if conversation.opted_out {
            return self.refuse_opted_out(job, tell_agent(Some(OPTED_OUT_CODE)), now).await;
        }
        // The leg rides with the send (Twilio's callback URL, AWS's `Context`), so a report
        // that overtakes our record finds it.
        let callback = format!("{}?job={}", self.status_callback_url, job.job_id);
        let tracking = SmsTracking { job: &job.job_id, status_callback: &callback };
        self.pace(line.sms_number.as_str(), self.rates.sms_pace(), deadline).await?;
        let media_urls: Vec<String> = match &self.media_links {
            Some(links) => sms.media.iter().map(|m| links.link(MediaSource::WhatsApp, &m.id, now)).collect(),
            None => Vec::new(),
        };
        let started = Timestamp::now();
        let send = self.sms.send(line.sms_origin(), &sms.conversation.customer, &sms.text, &media_urls, Some(tracking));
        match self.call(deadline, send).await {
            Ok(accepted) => {
                let sent = SentAs { provider_id: accepted.id, via: None, status: accepted.status };
                let provider_id = self.accepted(&[job], sent, now, deadline).await?;
                Ok(Delivered::Sent { provider_id, via: None })
            }
            Err(failure) => {
                let code = match &failure {
                    ProviderFailure::Rejected { code, .. } => *code,
                    _ => None,
                };
                self.note_carrier_opt_out(&sms.conversation, code, now).await?;
                self.fail(&[taken], &failure, tell_agent(code), started, now).await
            }
        }
    }

    /// The bridge's own text to a customer (docs/using.md): never to an opted-out customer unless
    /// it answers a keyword; no status callback (nobody waits for its result).
    async fn auto_reply(
        &self,
        line: &Line,
        taken: Taken<'_>,
        reply: &AutoReply,
        now: Timestamp,
        deadline: Deadline,
    ) -> Result<Delivered, Halt> {
        let job = taken.job;
        let Some(conversation) = self.texted_conversation(&reply.conversation).await? else {
            return Ok(Delivered::Dropped);
        };
        if conversation.opted_out && !reply.reason.allowed_when_opted_out() {
            return self.refuse_opted_out(job, Vec::new(), now).await;
        }
        self.pace(line.sms_number.as_str(), self.rates.sms_pace(), deadline).await?;
        let started = Timestamp::now();
        let send = self.sms.send(line.sms_origin(), &reply.conversation.customer, &reply.text, &[], None);
        match self.call(deadline, send).await {
            Ok(accepted) => {
                let sent = SentAs { provider_id: accepted.id, via: None, status: accepted.status };
                let provider_id = self.accepted(&[job], sent, now, deadline).await?;
                telemetry::count("AutoReplySent", &[("reason", reply.reason.as_str())]);
                Ok(Delivered::Sent { provider_id, via: None })
            }
            Err(failure) => {
                if let ProviderFailure::Rejected { code, .. } = &failure {
                    self.note_carrier_opt_out(&reply.conversation, *code, now).await?;
                }
                self.fail(&[taken], &failure, Vec::new(), started, now).await
            }
        }
    }

    /// The conversation an SMS is for (its handle named on the span), or `None` once it is gone
    /// (erased): then nothing is sent.
    async fn texted_conversation(&self, key: &ConversationKey) -> Result<Option<ConversationSummary>, Halt> {
        let conversation = self.store.conversation(key).await?;
        if let Some(found) = &conversation {
            tracing::Span::current().record("handle", found.handle.as_str());
            if found.handle_renewal_due {
                self.renew_handle(key, &found.handle, Timestamp::now()).await;
            }
        }
        Ok(conversation)
    }

    /// Keeps the conversation's handle alive as long as the conversation (`domain::retention`).
    /// Best effort: a failure costs nothing now (the handle has a retention left at least)
    /// and the next job tries again.
    async fn renew_handle(&self, key: &ConversationKey, handle: &Handle, now: Timestamp) {
        match self.store.renew_handle(key, handle, now).await {
            Ok(HandleRenewal::Renewed) => tracing::info!("handle renewed"),
            Ok(HandleRenewal::ConversationGone) => {}
            Ok(HandleRenewal::HandleTaken) => tracing::warn!("handle renewal found it naming another conversation"),
            Err(e) => tracing::warn!(error = %e, "handle renewal failed; the next job tries again"),
        }
    }

    /// The job would text an opted-out customer: it ends failed, with `notices` about it.
    async fn refuse_opted_out(&self, job: &Job, notices: Vec<Job>, now: Timestamp) -> Result<Delivered, Halt> {
        let reason = "customer opted out of SMS (texted STOP)".to_owned();
        let failure = LegFailure {
            class: FailureClass::Provider(ErrorClass::Permanent),
            code: Some(OPTED_OUT_CODE),
            reason: reason.clone(),
        };
        self.store.record_job_failed(job, &failure, &notices, now).await?;
        self.enqueue_recorded(&notices).await;
        telemetry::count("OptedOutRefused", &[("kind", job.kind().as_str())]);
        Ok(Delivered::Failed { class: ErrorClass::Permanent, reason })
    }

    /// The run's agent was removed from the line after its jobs were queued (docs/operating.md,
    /// "Change the team without a redeploy"): a copy of a customer's text isn't sent them,
    /// and their reply doesn't reach the customer. Each leg ends failed, saying why; the
    /// former agent is told nothing.
    async fn refuse_former_agent(&self, taken: &[Taken<'_>], now: Timestamp) -> Result<Delivered, Halt> {
        let reason = "not sent: the agent is no longer on the line".to_owned();
        let failure =
            LegFailure { class: FailureClass::Provider(ErrorClass::Permanent), code: None, reason: reason.clone() };
        for t in taken {
            self.store.record_job_failed(t.job, &failure, &[], now).await?;
        }
        let kind = taken[0].job.kind();
        tracing::info!(outcome = "former_agent", kind = kind.as_str(), jobs = taken.len(), "{reason}");
        telemetry::count("FormerAgentRefused", &[("kind", kind.as_str())]);
        Ok(Delivered::Failed { class: ErrorClass::Permanent, reason })
    }

    /// Notices already recorded with the leg's final state: a queue error here must not undo
    /// the job (its leg is done), so it is logged; the outbox sweep sends them.
    async fn enqueue_recorded(&self, jobs: &[Job]) {
        if let Err(e) = self.queue.enqueue(jobs).await {
            tracing::warn!(error = %e, jobs = jobs.len(), "recorded notices not enqueued; the outbox sweep sends them");
        }
    }

    /// 21610: the carrier says the customer opted out (e.g. STOP sent to another of the
    /// business's numbers, or handled by the provider: AWS's opt-out list refusal takes the
    /// same code, `domain::aws_sms`): remember it (docs/using.md).
    async fn note_carrier_opt_out(
        &self,
        conversation: &ConversationKey,
        code: Option<i64>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        if code == Some(OPTED_OUT_CODE) {
            self.store.mark_opted_out(conversation, now).await?;
        }
        Ok(())
    }

    async fn notify_agent(
        &self,
        line: &Line,
        taken: Taken<'_>,
        notice: &NotifyAgent,
        now: Timestamp,
        deadline: Deadline,
    ) -> Result<Delivered, Halt> {
        let job = taken.job;
        let tracking = SendTracking {
            line: line.id.clone(),
            handle: None,
            jobs: vec![job.job_id.clone()],
            part_handles: Vec::new(),
        }
        .encode();
        // WhatsApp's pair limit counts every message to the agent, notices too: a notice
        // takes the agent's slot like a copy, and when it is taken goes back untried to come
        // back at it (never parked: a notice doesn't join a digest).
        if let (Some(pair), Some(agent)) = (self.rates.pair_pace(), notice.agent.phone()) {
            self.take_pair_slot(line, agent, pair, false, deadline).await?;
        }
        self.pace(line.whatsapp_phone_number_id.as_str(), self.rates.whatsapp_pace(), deadline).await?;
        let started = Timestamp::now();
        let send = self.whatsapp.send(&line.whatsapp_phone_number_id, &notice.agent, &notice.message, Some(&tracking));
        let mut result = self.call(deadline, send).await;
        // Outside the agent's window, a notice about a conversation goes as the template
        // rather than failing silently (docs/using.md; issue 4).
        if let (Err(failure), Some(parameters), Some(agent)) = (&result, &notice.fallback, notice.agent.phone())
            && ErrorClass::of(failure) == ErrorClass::Fallback
        {
            self.store.mark_window_closed(&line.id, agent, now).await?;
            let template = WhatsAppMessage::Template {
                name: line.template.name.clone(),
                language: line.template.language.clone(),
                parameters: parameters.clone(),
            };
            let send = self.whatsapp.send(&line.whatsapp_phone_number_id, &notice.agent, &template, Some(&tracking));
            result = self.call(deadline, send).await;
        }
        match result {
            Ok(wamid) => {
                let sent = SentAs { provider_id: wamid.as_str().to_owned(), via: None, status: None };
                let provider_id = self.accepted(&[job], sent, now, deadline).await?;
                Ok(Delivered::Sent { provider_id, via: None })
            }
            Err(failure) => {
                if ErrorClass::of(&failure) == ErrorClass::Fallback {
                    // Nothing else reaches them until they write again: say so loudly.
                    telemetry::count("NoticeUndeliverable", &[("reason", "window_closed")]);
                    tracing::error!(job_id = %job.job_id, "notice could not reach the agent: their 24 h window is closed");
                }
                self.fail(&[taken], &failure, Vec::new(), started, now).await
            }
        }
    }

    /// Records a failed attempt by its class (docs/guarantees.md); `notices` go out only if it is
    /// final. `started`: when the attempt began (an ambiguous one is reconciled from then).
    async fn fail(
        &self,
        taken: &[Taken<'_>],
        failure: &ProviderFailure,
        notices: Vec<Job>,
        started: Timestamp,
        now: Timestamp,
    ) -> Result<Delivered, Halt> {
        let class = ErrorClass::of(failure);
        let (code, retry_after) = match failure {
            ProviderFailure::Rejected { code, retry_after, .. } => (*code, *retry_after),
            _ => (None, None),
        };
        let reason = failure.to_string();
        let leg_failure =
            |class: ErrorClass| LegFailure { class: FailureClass::Provider(class), code, reason: reason.clone() };
        let attempt = taken.first().map_or(1, |t| t.attempts + 1);
        match class {
            ErrorClass::Retry => {
                self.give_back(taken, &leg_failure(ErrorClass::Retry), now).await;
                Err(Halt::Done(DeliverError::Retry { reason, retry_after, attempt }))
            }
            ErrorClass::Ambiguous => {
                let provider = taken.first().map_or("whatsapp", |t| if is_sms(t.job) { "sms" } else { "whatsapp" });
                telemetry::count("AmbiguousSend", &[("provider", provider)]);
                tracing::warn!(outcome = "ambiguous", reason, "the provider may have it: reconciled before resending");
                let uncertain: Vec<Taken<'_>> =
                    taken.iter().map(|t| Taken { uncertain_since: Some(started), ..*t }).collect();
                self.give_back(&uncertain, &leg_failure(ErrorClass::Ambiguous), now).await;
                Err(Halt::Done(DeliverError::Wait { reason, until: started + signed(self.reconcile_wait) }))
            }
            ErrorClass::Escalate => {
                self.give_back(taken, &leg_failure(ErrorClass::Escalate), now).await;
                Err(Halt::Done(DeliverError::Escalate { reason }))
            }
            // A fallback that failed again as a fallback can't be helped by retrying.
            ErrorClass::Permanent | ErrorClass::Fallback => {
                for (i, t) in taken.iter().enumerate() {
                    let with = if i == 0 { notices.as_slice() } else { &[] };
                    self.store.record_job_failed(t.job, &leg_failure(ErrorClass::Permanent), with, now).await?;
                }
                self.enqueue_recorded(&notices).await;
                Ok(Delivered::Failed { class, reason })
            }
        }
    }
}

/// A copy to, or a reply from, someone the line no longer lists as an agent. Notices aren't
/// checked: some go to non-agents by design (the answer to a stranger), and none reaches a
/// customer.
fn is_for_a_former_agent(line: &Line, payload: &JobPayload) -> bool {
    let agent = match payload {
        JobPayload::ForwardToAgent(forward) => &forward.agent,
        JobPayload::SendSms(sms) => &sms.agent,
        JobPayload::NotifyAgent(_) | JobPayload::AutoReply(_) => return false,
    };
    !line.agents.contains(agent)
}

/// Whether the job texts a customer (the SMS provider can be asked about it).
fn is_sms(job: &Job) -> bool {
    matches!(job.payload, JobPayload::SendSms(_) | JobPayload::AutoReply(_))
}

/// A store or queue call failed before anything went out: retried with backoff like a
/// provider's transient error, and never a reason to dead-letter the job.
fn unavailable_retry(reason: &str, attempt: u32) -> DeliverError {
    DeliverError::Retry { reason: format!("store or queue unavailable: {reason}"), retry_after: None, attempt }
}

/// Until when a claim made now is ours.
fn lease_until(now: Timestamp, deadline: Deadline) -> Timestamp {
    now + signed(deadline.left().map_or(CLAIM_LEASE, |left| CLAIM_LEASE.min(left + LEASE_PAST_DEADLINE)))
}

/// The pacing key of messages from `line`'s number to `agent` (`PACE#<key>`): the agent's
/// number hashed, as in order groups, so the item holds no number.
fn pair_sender(line: &Line, agent: &crate::domain::WaId) -> String {
    use sha2::Digest;
    let hashed = hex::encode(&sha2::Sha256::digest(agent.as_str().as_bytes())[..12]);
    format!("pair.{}.{hashed}", line.whatsapp_phone_number_id.as_str())
}

fn signed(duration: Duration) -> SignedDuration {
    SignedDuration::try_from(duration).unwrap_or(SignedDuration::MAX)
}

/// One forward standing for several consecutive texts of the same customer, each with its
/// attachments and keyword note in place.
fn coalesce(forwards: &[&ForwardToAgent]) -> ForwardToAgent {
    let mut combined = forwards[0].clone();
    if forwards.len() > 1 {
        combined.text = forwards.iter().map(|f| annotated_text(f)).collect::<Vec<_>>().join("\n");
        combined.attachments = Vec::new();
        combined.keyword = None;
    }
    combined
}

/// The line template's parameters for a notice about a reply: handle, customer, and the
/// notice in words with the start of the reply it is about.
pub fn template_fallback(
    handle: Option<&str>,
    customer: &crate::domain::E164,
    notice: &WhatsAppMessage,
    reply: &str,
) -> Vec<String> {
    let words = notice.in_words();
    let start: String = reply.chars().take(60).collect();
    vec![handle.unwrap_or("#?").to_owned(), customer.pretty(), format!("{words} (your reply: \u{201c}{start}\u{201d})")]
}
