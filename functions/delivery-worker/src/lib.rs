//! The delivery worker (SPEC §4.4, §9): an SQS FIFO batch in, `ReportBatchItemFailures`
//! out, naming exactly the records to deliver again.
//!
//! - Records of one message group (one recipient of one conversation) are handled in order;
//!   after a failure, the rest of that group in the batch waits (reported failed, untried),
//!   so a retry never lets a later message overtake an earlier one. Other groups go on.
//! - Consecutive forwards of one group are coalesced into one WhatsApp message.
//! - A retryable failure waits out its backoff (`ChangeMessageVisibility`, full jitter,
//!   `Retry-After` honoured) and comes back; after `maxReceiveCount` SQS moves it to the DLQ.
//! - Escalations and records that aren't jobs go to the DLQ at once, for an operator.

use std::collections::HashSet;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use jiff::Timestamp;
use shared::adapters::dynamodb::DynamoStore;
use shared::adapters::sqs::SqsQueue;
use shared::adapters::twilio::TwilioClient;
use shared::adapters::whatsapp::GraphClient;
use shared::app::deliver_job::{DeliverError, Delivered, Deliverer, Failpoint};
use shared::config::{DeliveryWorkerConfig, SMS_STATUS_PATH};
use shared::domain::media::{MEDIA_LINK_TTL, MediaLinks, MediaUrlKey};
use shared::domain::{E164, Job, JobPayload, RetryPolicy, WaId};
use shared::ports::{ConversationStore, DeliveryQueue, SmsProvider, WhatsAppClient};
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
pub type DeployedWorker = DeliveryWorker<DynamoStore, GraphClient, TwilioClient, SqsQueue>;

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
        let media_key = MediaUrlKey::derive(&config.twilio_auth_token);
        let sms =
            TwilioClient::new(http, &config.twilio_api_base, &config.twilio_account_sid, config.twilio_auth_token);
        let status_callback_url = format!("{}{SMS_STATUS_PATH}", config.public_base_url);
        let deliverer = Deliverer::new(config.lines, store, whatsapp, sms, queue, status_callback_url, config.rates)
            .with_media_links(MediaLinks::new(media_key, &config.public_base_url, MEDIA_LINK_TTL));
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
        let mut failed: Vec<&SqsMessage> = Vec::new();
        // Groups whose earlier record failed in this batch.
        let mut held_groups: HashSet<&str> = HashSet::new();
        let records = &event.records;
        let mut next = 0;
        while next < records.len() {
            let record = &records[next];
            let group = group_of(record);
            if group.is_some_and(|g| held_groups.contains(g)) {
                // An earlier record of this group failed: this one goes back untried. It is
                // visible again at once, but FIFO keeps it behind its group's head, which
                // waits out its backoff in flight.
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
            if self.deliver(&run, &jobs).await.is_err() {
                failed.extend(run.iter().copied());
                if let Some(group) = group {
                    held_groups.insert(group);
                }
            }
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

    /// Delivers one run; `Err(delay)`: its records failed and come back after `delay`.
    async fn deliver(&self, run: &[&SqsMessage], jobs: &[Job]) -> Result<(), Duration> {
        let first = &jobs[0];
        // Every event of the job carries its line, and its conversation's handle once the
        // deliverer has read it.
        let span = tracing::info_span!(
            "job",
            job_id = %first.job_id,
            kind = first.kind(),
            line = %first.line(),
            handle = tracing::field::Empty,
            to = masked(first.recipient()),
            coalesced = jobs.len(),
        );
        let delivered = self.deliverer.deliver_run(jobs, Timestamp::now()).instrument(span.clone()).await;
        let _entered = span.enter();
        let retry_after = match delivered {
            Ok(Delivered::Sent { provider_id, via }) => {
                tracing::info!(outcome = "sent", via = via.map(|v| v.as_str()), provider_id, "sent");
                telemetry::metric("MessagesRelayed", jobs.len() as f64, "Count", &[("kind", first.kind())]);
                record_relay_latency(jobs, Timestamp::now());
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
                let mut all_parked = true;
                for record in run {
                    all_parked &= self.dead_letter(record, "escalate").await;
                }
                return if all_parked { Ok(()) } else { Err(self.retry.base) };
            }
            Err(DeliverError::Stopped(step)) => {
                tracing::warn!(outcome = "stopped", ?step, "stopped by a failpoint");
                return Err(Duration::ZERO);
            }
            Err(DeliverError::Retry { reason, retry_after }) => {
                tracing::warn!(
                    outcome = "retry",
                    reason,
                    retry_after_s = retry_after.map(|d| d.as_secs()),
                    "will retry"
                );
                telemetry::count("DeliveryFailed", &[("class", "retry")]);
                retry_after
            }
            Err(DeliverError::Store(e)) => {
                tracing::error!(outcome = "store_error", error = %e, "will retry");
                None
            }
            Err(DeliverError::Queue(e)) => {
                tracing::error!(outcome = "queue_error", error = %e, "will retry");
                None
            }
        };
        let attempt = run[0].attributes.get("ApproximateReceiveCount").and_then(|n| n.parse().ok()).unwrap_or(1);
        let delay = self.retry.delay(attempt, retry_after, &mut *self.rng.lock().await);
        // The head waits out the backoff in flight; the rest of the run is visible at once
        // but stays behind it (FIFO), so the group comes back in order.
        for (i, record) in run.iter().enumerate() {
            self.postpone(record, if i == 0 { delay } else { Duration::ZERO }).await;
        }
        Err(delay)
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

/// The records from `start` that go out as one send, with their jobs: a forward and the
/// forwards right after it in the same group (same customer, same agent).
fn coalescible_run(records: &[SqsMessage], start: usize, first: Job) -> (Vec<&SqsMessage>, Vec<Job>) {
    let group = group_of(&records[start]);
    let coalescible = matches!(first.payload, JobPayload::ForwardToAgent(_)) && group.is_some();
    let (mut run, mut jobs) = (vec![&records[start]], vec![first]);
    if coalescible {
        for record in &records[start + 1..] {
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
