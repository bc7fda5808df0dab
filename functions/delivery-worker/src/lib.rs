//! The delivery worker (SPEC §4.4, §9): an SQS batch in, one job per record, and
//! `ReportBatchItemFailures` naming exactly the records to retry.

use aws_config::SdkConfig;
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use jiff::Timestamp;
use shared::adapters::dynamodb::DynamoStore;
use shared::adapters::sqs::SqsQueue;
use shared::adapters::twilio::TwilioClient;
use shared::adapters::whatsapp::GraphClient;
use shared::app::deliver_job::{DeliverError, Delivered, Deliverer};
use shared::config::{DeliveryWorkerConfig, SMS_STATUS_PATH};
use shared::domain::{E164, Job, WaId};
use shared::ports::{ConversationStore, DeliveryQueue, SmsProvider, WhatsAppClient};
use tracing::Instrument;

pub mod sqs_poller;

pub struct DeliveryWorker<S, W, P, Q> {
    deliverer: Deliverer<S, W, P, Q>,
}

/// The deployed worker's adapters.
pub type DeployedWorker = DeliveryWorker<DynamoStore, GraphClient, TwilioClient, SqsQueue>;

impl DeployedWorker {
    /// The deployed wiring: DynamoDB and SQS from `sdk`, the providers over `http`.
    pub fn from_config(config: DeliveryWorkerConfig, sdk: &SdkConfig, http: reqwest::Client) -> Self {
        let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), &config.table_name, config.message_retention);
        let queue = SqsQueue::new(aws_sdk_sqs::Client::new(sdk), &config.delivery_queue_url);
        let whatsapp =
            GraphClient::new(http.clone(), &config.graph_api_base, &config.graph_api_version, config.meta_access_token);
        let sms =
            TwilioClient::new(http, &config.twilio_api_base, &config.twilio_account_sid, config.twilio_auth_token);
        Self::new(Deliverer {
            lines: config.lines,
            store,
            whatsapp,
            sms,
            queue,
            status_callback_url: format!("{}{SMS_STATUS_PATH}", config.public_base_url),
        })
    }
}

impl<S, W, P, Q> DeliveryWorker<S, W, P, Q>
where
    S: ConversationStore,
    W: WhatsAppClient,
    P: SmsProvider,
    Q: DeliveryQueue,
{
    pub fn new(deliverer: Deliverer<S, W, P, Q>) -> Self {
        Self { deliverer }
    }

    /// Handles every record of the batch; the response lists the ones to deliver again.
    pub async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        // In order: records of one conversation keep the order they were enqueued in.
        for record in &event.records {
            if let Err(retry) = self.handle_record(record).await {
                match &record.message_id {
                    Some(id) if !id.is_empty() => {
                        let mut failure = BatchItemFailure::default();
                        failure.item_identifier = id.clone();
                        response.batch_item_failures.push(failure);
                    }
                    // SQS always sends an id; without one the failure could only be reported
                    // as an empty identifier, which Lambda treats as a failed *batch*.
                    _ => tracing::error!(reason = %retry, "record without a message id failed"),
                }
            }
        }
        response
    }

    /// `Err` means: leave this record on the queue.
    async fn handle_record(&self, record: &SqsMessage) -> Result<(), String> {
        let Some(body) = record.body.as_deref() else {
            tracing::error!(outcome = "undecodable", "record without a body");
            return Err("no body".into());
        };
        let job = match Job::decode(body) {
            Ok(job) => job,
            Err(e) => {
                // Left to fail until the redrive policy moves it to the DLQ for a person.
                tracing::error!(outcome = "undecodable", error = %e, "not a delivery job");
                return Err(e.to_string());
            }
        };
        let span = tracing::info_span!("job", job_id = %job.job_id, kind = job.kind(), to = masked(job.recipient()));
        let delivered = self.deliverer.deliver(&job, Timestamp::now()).instrument(span.clone()).await;
        let _entered = span.enter();
        match delivered {
            Ok(Delivered::Sent { provider_id, via }) => {
                tracing::info!(outcome = "sent", via = via.map(|v| v.as_str()), provider_id, "sent");
                Ok(())
            }
            Ok(Delivered::AlreadyDone) => {
                tracing::info!(outcome = "already_done", "job delivered before; acknowledged");
                Ok(())
            }
            Ok(Delivered::Dropped) => {
                tracing::warn!(outcome = "dropped", "the job's message no longer exists");
                Ok(())
            }
            Ok(Delivered::Failed { class, reason }) => {
                tracing::warn!(outcome = "failed", class = ?class, reason, "delivery failed for good");
                Ok(())
            }
            Err(DeliverError::Retry { reason, retry_after }) => {
                tracing::warn!(
                    outcome = "retry",
                    reason,
                    retry_after_s = retry_after.map(|d| d.as_secs()),
                    "will retry"
                );
                Err(reason)
            }
            Err(DeliverError::Escalate { reason }) => {
                tracing::error!(outcome = "escalate", reason, "needs an operator; stays on the queue until the DLQ");
                Err(reason)
            }
            Err(DeliverError::Store(e)) => {
                tracing::error!(outcome = "store_error", error = %e, "will retry");
                Err(e.to_string())
            }
            Err(DeliverError::Queue(e)) => {
                tracing::error!(outcome = "queue_error", error = %e, "will retry");
                Err(e.to_string())
            }
        }
    }
}

/// A recipient for logs: a masked phone number or WhatsApp id.
fn masked(recipient: &str) -> String {
    E164::parse(recipient)
        .map(|n| n.masked())
        .or_else(|_| WaId::parse(recipient).map(|w| w.masked()))
        .unwrap_or_else(|_| "?".to_owned())
}
