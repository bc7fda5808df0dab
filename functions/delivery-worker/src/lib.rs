//! The delivery worker (SPEC §4.4, §9): an SQS batch in, one job per record, and
//! `ReportBatchItemFailures` naming exactly the records to retry.

use aws_config::SdkConfig;
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use jiff::Timestamp;
use shared::adapters::dynamodb::DynamoStore;
use shared::adapters::whatsapp::GraphClient;
use shared::app::deliver_job::{DeliverError, Delivered, deliver_job};
use shared::config::DeliveryWorkerConfig;
use shared::domain::{Job, JobPayload, Lines};
use shared::ports::{ConversationStore, WhatsAppClient};
use tracing::Instrument;

pub mod sqs_poller;

pub struct DeliveryWorker<S, W> {
    lines: Lines,
    store: S,
    whatsapp: W,
}

impl DeliveryWorker<DynamoStore, GraphClient> {
    /// The deployed wiring: DynamoDB from `sdk`, the Graph API over `http`.
    pub fn from_config(config: DeliveryWorkerConfig, sdk: &SdkConfig, http: reqwest::Client) -> Self {
        let store = DynamoStore::new(
            aws_sdk_dynamodb::Client::new(sdk),
            &config.table_name,
            config.message_retention,
        );
        let whatsapp = GraphClient::new(
            http,
            &config.graph_api_base,
            &config.graph_api_version,
            config.meta_access_token,
        );
        Self::new(config.lines, store, whatsapp)
    }
}

impl<S: ConversationStore, W: WhatsAppClient> DeliveryWorker<S, W> {
    pub fn new(lines: Lines, store: S, whatsapp: W) -> Self {
        Self { lines, store, whatsapp }
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
        let JobPayload::ForwardToAgent(forward) = &job.payload;
        let span = tracing::info_span!(
            "job",
            job_id = %job.job_id,
            kind = job.kind(),
            line = %forward.conversation.line,
            agent = forward.agent.masked(),
        );
        let delivered = deliver_job(&self.store, &self.whatsapp, &self.lines, &job, Timestamp::now())
            .instrument(span.clone())
            .await;
        let _entered = span.enter();
        match delivered {
            Ok(Delivered::Sent { wamid, via }) => {
                tracing::info!(
                    outcome = "sent",
                    via = via.as_str(),
                    wamid = wamid.as_str(),
                    "forwarded to agent"
                );
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
                tracing::error!(
                    outcome = "escalate",
                    reason,
                    "needs an operator; stays on the queue until the DLQ"
                );
                Err(reason)
            }
            Err(DeliverError::Store(e)) => {
                tracing::error!(outcome = "store_error", error = %e, "will retry");
                Err(e.to_string())
            }
        }
    }
}
