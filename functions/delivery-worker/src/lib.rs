//! The delivery worker (docs/using.md, docs/guarantees.md): an SQS FIFO batch in, `ReportBatchItemFailures`
//! out, naming exactly the records to deliver again.
//!
//! - Records of one message group (one recipient of one conversation) are handled in order;
//!   after a failure, the rest of that group in the batch waits (reported failed, untried),
//!   so a retry never lets a later message overtake an earlier one. Other groups go on, side
//!   by side: a batch's groups are delivered concurrently (the pacer still spaces each
//!   sender's sends).
//! - Consecutive forwards of one group are coalesced into one WhatsApp message.
//! - A retryable failure waits out its backoff (`ChangeMessageVisibility`, full jitter,
//!   `Retry-After` honoured) and comes back, however long the provider is down, until the
//!   job is `MAX_JOB_AGE_HOURS` old: the worker decides by age, never by SQS's receive count
//!   (the queue's `maxReceiveCount` is a backstop for poison, and the backoff keeps a job
//!   under it for its whole age). Records held behind a failing head spend no attempt.
//! - A wait that isn't an attempt (another delivery's lease, an uncertain send waiting for
//!   its status report) comes back when it ends.
//! - The invocation's deadline is kept: no job starts that can't finish before it, and the
//!   rest of the batch is handed back at once.
//! - Escalations, jobs older than `MAX_JOB_AGE_HOURS` and records that aren't jobs go to the
//!   DLQ at once, for an operator.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_config::SdkConfig;
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures_util::future::join_all;
use jiff::Timestamp;
use shared::adapters::aws_sms::AwsSmsClient;
use shared::adapters::aws_sms::messages::MediaStaging;
use shared::adapters::dynamodb::DynamoStore;
use shared::adapters::sms_providers::LineSmsProviders;
use shared::adapters::sqs::SqsQueue;
use shared::adapters::twilio::TwilioClient;
use shared::adapters::whatsapp::GraphClient;
use shared::app::deliver_job::{Deadline, DeliverError, Delivered, Deliverer, Failpoint};
use shared::app::sweep_outbox::{SweepError, Swept, sweep_outbox};
use shared::config::{DeliveryWorkerConfig, SMS_STATUS_PATH};
use shared::domain::media::{MEDIA_LINK_TTL, MediaLinks};
use shared::domain::{E164, Job, JobPayload, RetryPolicy, UserId, WaId};
use shared::ports::{ConversationStore, DeliveryQueue, Outbox, SmsProvider, WhatsAppClient};
use shared::telemetry;
use tokio::sync::Mutex;
use tracing::Instrument;

pub mod sqs_poller;

pub struct DeliveryWorker<S, W, P, Q> {
    deliverer: Deliverer<S, W, P, Q>,
    retry: RetryPolicy,
    rng: Mutex<fastrand::Rng>,
}

/// The deployed worker's adapters.
pub type DeployedWorker = DeliveryWorker<DynamoStore, GraphClient, LineSmsProviders, SqsQueue>;

impl DeployedWorker {
    /// The deployed wiring: DynamoDB and SQS from `sdk`, the providers over one HTTP client.
    pub fn from_config(config: DeliveryWorkerConfig, sdk: &SdkConfig) -> Self {
        Self::from_config_with(config, sdk, None)
    }

    /// Opens the connections every job uses (DynamoDB, SQS, the Graph API, Twilio) during
    /// the cold start, together.
    pub async fn warm_up(&self) {
        let parts = &self.deliverer;
        shared::aws::warm_up(async {
            let (store, queue, whatsapp, sms) = tokio::join!(
                parts.store.warm_up(),
                parts.queue.warm_up(),
                parts.whatsapp.warm_up(),
                parts.sms.warm_up()
            );
            vec![
                ("dynamodb", store.map_err(|e| e.to_string())),
                ("sqs", queue.map_err(|e| e.to_string())),
                ("graph", whatsapp.map_err(|e| e.without_url().to_string())),
                ("twilio", sms.map_err(|e| e.without_url().to_string())),
            ]
        })
        .await;
    }

    /// The same, stopping every job at `failpoint` (tests of the delivery guarantee).
    pub fn from_config_with(config: DeliveryWorkerConfig, sdk: &SdkConfig, failpoint: Option<Failpoint>) -> Self {
        let http = shared::aws::provider_http_client(config.provider_timeout);
        let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), &config.table_name, config.message_retention);
        let queue = SqsQueue::new(aws_sdk_sqs::Client::new(sdk), &config.delivery_queue_url)
            .with_dead_letter_queue(&config.dead_letter_queue_url);
        let whatsapp =
            GraphClient::new(http.clone(), &config.graph_api_base, &config.graph_api_version, config.meta_access_token);
        let media_key = config.media_url_key;
        // Built when the deployment has a Twilio account (required when a line uses Twilio).
        let twilio = config.twilio.map(|twilio| {
            TwilioClient::new(http.clone(), &config.twilio_api_base, &twilio.account_sid, twilio.auth_token)
        });
        // Built once per cold start when the deployment has a configuration set (required
        // when a line sends through AWS): also for lines switched to AWS later by a change
        // of the lines' parameter (`LiveLines`). Building opens no connection.
        let aws = config.aws_sms_configuration_set.as_ref().map(|set| {
            let client = AwsSmsClient::new(sdk, config.aws_sms_endpoint.as_deref(), set, config.provider_timeout);
            match &config.aws_sms_media_bucket {
                Some(bucket) => client.with_media(MediaStaging {
                    s3: shared::aws::s3_client(sdk),
                    bucket: bucket.clone(),
                    http: http.clone(),
                }),
                None => client,
            }
        });
        let sms = LineSmsProviders { twilio, aws };
        let status_callback_url = format!("{}{SMS_STATUS_PATH}", config.public_base_url);
        let lines = shared::aws::live_lines(config.lines, config.lines_refresh.as_ref(), sdk);
        let deliverer = Deliverer::new(lines, store, whatsapp, sms, queue, status_callback_url, config.rates)
            .with_media_links(MediaLinks::new(media_key, &config.public_base_url, MEDIA_LINK_TTL))
            .with_send_timeout(config.provider_timeout)
            .with_reconcile_wait(config.reconcile_wait);
        let deliverer = match failpoint {
            Some(step) => deliverer.with_failpoint(step),
            None => deliverer,
        };
        Self::new(deliverer, config.retry)
    }
}

impl<S, W, P, Q> DeliveryWorker<S, W, P, Q>
where
    S: ConversationStore,
    W: WhatsAppClient,
    P: SmsProvider,
    Q: DeliveryQueue,
{
    pub fn new(deliverer: Deliverer<S, W, P, Q>, retry: RetryPolicy) -> Self {
        Self { deliverer, retry, rng: Mutex::new(fastrand::Rng::new()) }
    }

    /// Handles every record of the batch; the response lists the ones to deliver again.
    pub async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        self.handle_batch_until(event, Deadline::NONE).await
    }

    /// The same, done before `deadline` (the invocation's, less the time to answer): what
    /// can't be finished in time is handed back untried, visible again at once.
    pub async fn handle_batch_until(&self, event: SqsEvent, deadline: Deadline) -> SqsBatchResponse {
        // Each message group's records, in the batch's order; a record without a group is a
        // group of its own. The groups are independent, so they go side by side.
        let mut groups: Vec<Vec<&SqsMessage>> = Vec::new();
        let mut group_index: HashMap<&str, usize> = HashMap::new();
        for record in &event.records {
            match group_of(record) {
                Some(group) => {
                    let index = *group_index.entry(group).or_insert_with(|| {
                        groups.push(Vec::new());
                        groups.len() - 1
                    });
                    groups[index].push(record);
                }
                None => groups.push(vec![record]),
            }
        }
        let out_of_time = AtomicBool::new(false);
        let failed: Vec<&SqsMessage> =
            join_all(groups.iter().map(|records| self.deliver_group(records, deadline, &out_of_time)))
                .await
                .into_iter()
                .flatten()
                .collect();
        if out_of_time.load(Ordering::Relaxed) {
            tracing::warn!(
                outcome = "handed_back",
                records = failed.len(),
                "deadline near: the rest of the batch goes back"
            );
        }
        let mut response = SqsBatchResponse::default();
        for record in failed {
            match &record.message_id {
                Some(id) if !id.is_empty() => {
                    let mut failure = BatchItemFailure::default();
                    failure.item_identifier = id.clone();
                    response.batch_item_failures.push(failure);
                }
                // SQS always sends an id; an empty identifier would fail the whole batch.
                _ => tracing::error!("failed record without a message id"),
            }
        }
        response
    }

    /// One message group's records, in order; returns those to deliver again. After a
    /// failure the rest of the group waits untried; when the deadline is near (`out_of_time`,
    /// shared by the batch's groups) everything not yet started goes back.
    async fn deliver_group<'a>(
        &self,
        records: &[&'a SqsMessage],
        deadline: Deadline,
        out_of_time: &AtomicBool,
    ) -> Vec<&'a SqsMessage> {
        let mut failed: Vec<&SqsMessage> = Vec::new();
        let mut held = false;
        let mut next = 0;
        while next < records.len() {
            let record = records[next];
            if held || out_of_time.load(Ordering::Relaxed) {
                // Out of time, or an earlier record of this group failed: this one goes back
                // untried (no attempt spent). It is visible again at once, but FIFO keeps it
                // behind its group's head, which waits out its backoff in flight.
                self.postpone(record, Duration::ZERO).await;
                failed.push(record);
                next += 1;
                continue;
            }
            let job = match decode(record) {
                Ok(job) => job,
                Err(reason) => {
                    tracing::error!(outcome = "undecodable", reason, "not a delivery job: to the dead-letter queue");
                    if !self.dead_letter(record, "undecodable").await {
                        failed.push(record);
                    }
                    next += 1;
                    continue;
                }
            };
            let (run, jobs) = coalescible_run(records, next, job);
            next += run.len();
            match self.deliver(&run, &jobs, deadline).await {
                Ok(()) => {}
                Err(Handback::Later) => {
                    failed.extend(run.iter().copied());
                    held = true;
                }
                Err(Handback::OutOfTime) => {
                    failed.extend(run.iter().copied());
                    out_of_time.store(true, Ordering::Relaxed);
                }
            }
        }
        failed
    }

    /// Delivers one run; `Err`: its records come back (after their backoff, or at once).
    async fn deliver(&self, run: &[&SqsMessage], jobs: &[Job], deadline: Deadline) -> Result<(), Handback> {
        let first = &jobs[0];
        // Every event of the job carries its line, and its conversation's handle once the
        // deliverer has read it.
        let span = tracing::info_span!(
            "job",
            job_id = %first.job_id,
            kind = first.kind().as_str(),
            line = %first.line(),
            handle = tracing::field::Empty,
            to = masked(first.recipient()),
            coalesced = jobs.len(),
        );
        let delivered = self.deliverer.deliver_run(jobs, Timestamp::now(), deadline).instrument(span.clone()).await;
        let _entered = span.enter();
        let now = Timestamp::now();
        let delay = match delivered {
            Ok(Delivered::Sent { provider_id, via }) => {
                tracing::info!(outcome = "sent", via = via.map(|v| v.as_str()), provider_id = %shared::domain::LogId(&provider_id), "sent");
                telemetry::metric("MessagesRelayed", jobs.len() as f64, "Count", &[("kind", first.kind().as_str())]);
                record_relay_latency(jobs, now);
                return Ok(());
            }
            Ok(Delivered::Reconciled { provider_id }) => {
                tracing::info!(outcome = "reconciled", provider_id = %shared::domain::LogId(&provider_id), "an earlier attempt had sent it; recorded, not resent");
                return Ok(());
            }
            Ok(Delivered::AlreadyDone) => {
                tracing::info!(outcome = "already_done", "delivered before; acknowledged");
                return Ok(());
            }
            Ok(Delivered::Dropped) => {
                tracing::warn!(outcome = "dropped", "the job's message no longer exists");
                return Ok(());
            }
            Ok(Delivered::Failed { class, reason }) => {
                tracing::warn!(outcome = "failed", class = ?class, reason, "delivery failed for good; recorded");
                telemetry::count("DeliveryFailed", &[("class", "permanent")]);
                return Ok(());
            }
            Err(DeliverError::Escalate { reason }) => {
                tracing::error!(outcome = "escalate", reason, "needs an operator: to the dead-letter queue");
                telemetry::count("DeliveryFailed", &[("class", "escalate")]);
                return self.park(run, "escalate").await;
            }
            Err(DeliverError::Stopped(step)) => {
                tracing::warn!(outcome = "stopped", ?step, "stopped by a failpoint");
                return Err(Handback::Later);
            }
            Err(DeliverError::OutOfTime) => {
                for record in run {
                    self.postpone(record, Duration::ZERO).await;
                }
                return Err(Handback::OutOfTime);
            }
            Err(DeliverError::Retry { reason, retry_after, attempt }) => {
                tracing::warn!(
                    outcome = "retry",
                    reason,
                    attempt,
                    retry_after_s = retry_after.map(|d| d.as_secs()),
                    "will retry"
                );
                telemetry::count("DeliveryFailed", &[("class", "retry")]);
                self.retry.delay(attempt, retry_after, &mut *self.rng.lock().await)
            }
            Err(DeliverError::Wait { reason, until }) => {
                let wait = until.duration_since(now).unsigned_abs();
                tracing::info!(outcome = "waiting", reason, wait_s = wait.as_secs(), "not an attempt; back later");
                wait.max(Duration::from_secs(1))
            }
        };
        // A job failing longer than its maximum age needs an operator (docs/guarantees.md, "Retries").
        if let Some(age) = age_of(run[0], now)
            && self.retry.expired(age)
        {
            tracing::error!(
                outcome = "expired",
                age_s = age.as_secs(),
                "failing for longer than MAX_JOB_AGE_HOURS: to the dead-letter queue"
            );
            return self.park(run, "expired").await;
        }
        // The head waits out the backoff in flight; the rest of the run is visible at once
        // but stays behind it (FIFO), so the group comes back in order.
        for (i, record) in run.iter().enumerate() {
            self.postpone(record, if i == 0 { delay } else { Duration::ZERO }).await;
        }
        Err(Handback::Later)
    }

    /// Moves a run to the dead-letter queue; what couldn't be moved comes back later.
    async fn park(&self, run: &[&SqsMessage], why: &str) -> Result<(), Handback> {
        let mut all_parked = true;
        for record in run {
            all_parked &= self.dead_letter(record, why).await;
        }
        if all_parked {
            Ok(())
        } else {
            for record in run {
                self.postpone(record, self.retry.base).await;
            }
            Err(Handback::Later)
        }
    }

    pub fn deliverer(&self) -> &Deliverer<S, W, P, Q> {
        &self.deliverer
    }

    async fn postpone(&self, record: &SqsMessage, delay: Duration) {
        if let Some(receipt) = &record.receipt_handle
            && let Err(e) = self.deliverer.queue.postpone(receipt, delay).await
        {
            // It comes back after the queue's own visibility timeout instead.
            tracing::warn!(error = %e, "could not set the retry's backoff");
        }
    }

    /// Moves a record to the dead-letter queue as it is; `false` if that failed too (then
    /// the record stays, and SQS's redrive moves it after `maxReceiveCount`).
    async fn dead_letter(&self, record: &SqsMessage, why: &str) -> bool {
        let id = record.message_id.as_deref().unwrap_or("unknown");
        match self.deliverer.queue.dead_letter(record.body.as_deref().unwrap_or_default(), group_of(record), id).await {
            Ok(()) => {
                telemetry::count("JobsDeadLettered", &[("reason", why)]);
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "could not move the record to the dead-letter queue");
                false
            }
        }
    }
}

/// What answering the Lambda runtime needs before the invocation's deadline.
pub const ANSWER_MARGIN: Duration = Duration::from_millis(1500);

/// The deadline a batch works to: the invocation's (`Context::deadline`), less the answer.
pub fn invocation_deadline(deadline: std::time::SystemTime) -> Deadline {
    let left = deadline.duration_since(std::time::SystemTime::now()).unwrap_or_default();
    Deadline::after(left.saturating_sub(ANSWER_MARGIN))
}

/// What the worker function is invoked with.
#[derive(Debug)]
pub enum WorkerEvent {
    /// A batch from the delivery queue (the event source mapping).
    Batch(SqsEvent),
    /// The schedule's `{"sweep": "outbox"}` (template.yaml, `OutboxSweep`).
    SweepOutbox,
}

/// The schedule's input, as `template.yaml` sets it.
pub const SWEEP_EVENT: &str = r#"{"sweep":"outbox"}"#;

impl WorkerEvent {
    pub fn parse(event: serde_json::Value) -> Result<Self, String> {
        if event.get("Records").is_some() {
            return serde_json::from_value(event).map(Self::Batch).map_err(|e| format!("not an SQS batch: {e}"));
        }
        match event.get("sweep").and_then(serde_json::Value::as_str) {
            Some("outbox") => Ok(Self::SweepOutbox),
            _ => Err("neither an SQS batch nor a sweep".into()),
        }
    }
}

impl<S, W, P, Q> DeliveryWorker<S, W, P, Q>
where
    S: ConversationStore + Outbox,
    W: WhatsAppClient,
    P: SmsProvider,
    Q: DeliveryQueue,
{
    /// Offers the jobs of outbox entries older than `grace` to the queue (docs/guarantees.md, "Recorded
    /// means delivered"). An error leaves the entries for the next sweep: nothing is cleared
    /// that wasn't enqueued.
    pub async fn sweep_outbox(&self, grace: Duration, deadline: Deadline) -> Result<Swept, SweepError> {
        let parts = &self.deliverer;
        match sweep_outbox(&parts.store, &parts.queue, Timestamp::now(), grace, deadline).await {
            Ok(swept) => {
                if swept.entries > 0 {
                    tracing::info!(
                        outcome = "swept",
                        entries = swept.entries,
                        jobs = swept.jobs,
                        more = swept.more,
                        "outbox swept"
                    );
                    telemetry::metric("OutboxSwept", swept.entries as f64, "Count", &[("source", "schedule")]);
                }
                Ok(swept)
            }
            Err(e) => {
                tracing::error!(outcome = "sweep_failed", error = %e, "outbox sweep failed; the next one tries again");
                Err(e)
            }
        }
    }
}

/// Why a run's records go back to the queue.
enum Handback {
    /// After their backoff or wait; the rest of their group waits behind them.
    Later,
    /// The deadline is near: this run and the rest of the batch, untried.
    OutOfTime,
}

/// How long ago SQS first accepted the record (`SentTimestamp`): the job's age.
fn age_of(record: &SqsMessage, now: Timestamp) -> Option<Duration> {
    let sent_ms: i64 = record.attributes.get("SentTimestamp")?.parse().ok()?;
    let sent = Timestamp::from_millisecond(sent_ms).ok()?;
    Some(now.duration_since(sent).unsigned_abs())
}

/// The records from `start` that go out as one send, with their jobs: a forward and the
/// forwards right after it in the same group (same customer, same agent).
fn coalescible_run<'a>(records: &[&'a SqsMessage], start: usize, first: Job) -> (Vec<&'a SqsMessage>, Vec<Job>) {
    let group = group_of(records[start]);
    let coalescible = matches!(first.payload, JobPayload::ForwardToAgent(_)) && group.is_some();
    let (mut run, mut jobs) = (vec![records[start]], vec![first]);
    if coalescible {
        for &record in &records[start + 1..] {
            match decode(record) {
                Ok(job) if group_of(record) == group && matches!(job.payload, JobPayload::ForwardToAgent(_)) => {
                    run.push(record);
                    jobs.push(job);
                }
                _ => break,
            }
        }
    }
    (run, jobs)
}

fn group_of(record: &SqsMessage) -> Option<&str> {
    record.attributes.get("MessageGroupId").map(String::as_str)
}

fn decode(record: &SqsMessage) -> Result<Job, String> {
    let body = record.body.as_deref().ok_or("record without a body")?;
    Job::decode(body).map_err(|e| e.to_string())
}

/// A recipient for logs: a masked phone number or WhatsApp id.
fn masked(recipient: &str) -> String {
    E164::parse(recipient)
        .map(|n| n.masked())
        .or_else(|_| WaId::parse(recipient).map(|w| w.masked()))
        .or_else(|_| UserId::parse(recipient).map(|u| u.masked()))
        .unwrap_or_else(|_| "?".to_owned())
}

/// `RelayLatencyMs` for each message this send relayed: from its arrival at a webhook to the
/// provider accepting it. The bridge's own messages (notices, automated replies) have none.
fn record_relay_latency(jobs: &[Job], now: Timestamp) {
    for job in jobs {
        let (direction, arrived) = match &job.payload {
            JobPayload::ForwardToAgent(forward) => ("to_agent", Some(forward.received_at)),
            JobPayload::SendSms(sms) => ("to_customer", sms.message_id.created_at()),
            JobPayload::NotifyAgent(_) | JobPayload::AutoReply(_) => continue,
        };
        if let Some(arrived) = arrived {
            telemetry::relay_latency(direction, now.duration_since(arrived).as_secs_f64() * 1000.0);
        }
    }
}
