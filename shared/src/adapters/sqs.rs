//! The delivery queue over SQS FIFO: jobs as JSON message bodies, sent in batches of ten,
//! each in its order group (`Job::order_group`) and deduplicated by `job_id`.

use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{QueueAttributeName, SendMessageBatchRequestEntry};

use crate::domain::Job;
use crate::ports::{DeliveryQueue, QueueError};

/// SQS takes at most ten entries per `SendMessageBatch`.
const BATCH: usize = 10;
/// Entries SQS failed on its side are re-sent this many times before giving up.
const RESEND_ROUNDS: u32 = 3;

pub struct SqsQueue {
    client: Client,
    queue_url: String,
    dead_letter_url: Option<String>,
}

impl SqsQueue {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self { client, queue_url: queue_url.into(), dead_letter_url: None }
    }

    /// Where [`DeliveryQueue::dead_letter`] puts messages (the worker needs it).
    pub fn with_dead_letter_queue(mut self, url: impl Into<String>) -> Self {
        self.dead_letter_url = Some(url.into());
        self
    }

    /// Opens the connection to SQS during a cold start (reads the queue's ARN), so the
    /// first enqueue doesn't pay the TLS handshake. Errors are the caller's to ignore.
    pub async fn warm_up(&self) -> Result<(), QueueError> {
        self.client
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| QueueError(DisplayErrorContext(&e).to_string()))
    }
}

/// FIFO queues order each message group and deduplicate by id for five minutes.
fn is_fifo(url: &str) -> bool {
    url.ends_with(".fifo")
}

fn queue_error(e: impl std::error::Error + 'static) -> QueueError {
    QueueError(crate::domain::scrub_numbers(&DisplayErrorContext(&e).to_string()))
}

impl DeliveryQueue for SqsQueue {
    async fn enqueue(&self, jobs: &[Job]) -> Result<(), QueueError> {
        for chunk in jobs.chunks(BATCH) {
            let mut pending: Vec<(String, &Job)> =
                chunk.iter().enumerate().map(|(i, job)| (i.to_string(), job)).collect();
            for round in 0..=RESEND_ROUNDS {
                let entries = pending
                    .iter()
                    .map(|(id, job)| {
                        let entry = SendMessageBatchRequestEntry::builder().id(id).message_body(job.encode());
                        let entry = if is_fifo(&self.queue_url) {
                            entry.message_group_id(job.order_group()).message_deduplication_id(job.job_id.as_str())
                        } else {
                            entry
                        };
                        entry.build().map_err(|e| QueueError(e.to_string()))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let out = self
                    .client
                    .send_message_batch()
                    .queue_url(&self.queue_url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .map_err(queue_error)?;
                if out.failed.is_empty() {
                    break;
                }
                if let Some(f) = out.failed.iter().find(|f| f.sender_fault) {
                    return Err(QueueError(format!(
                        "rejected entry: {} {}",
                        f.code,
                        f.message.as_deref().unwrap_or("")
                    )));
                }
                if round == RESEND_ROUNDS {
                    return Err(QueueError(format!(
                        "{} entries still failing after {RESEND_ROUNDS} resends",
                        out.failed.len()
                    )));
                }
                pending.retain(|(id, _)| out.failed.iter().any(|f| &f.id == id));
                tokio::time::sleep(Duration::from_millis(25 << round)).await;
            }
        }
        Ok(())
    }

    async fn postpone(&self, receipt_handle: &str, delay: Duration) -> Result<(), QueueError> {
        // SQS counts whole seconds: rounded up, a wait is never cut short (a job parked for
        // a slot 1.4 s away would come back before it). Up to 12 hours.
        let whole = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
        let seconds = i32::try_from(whole).unwrap_or(43_200).min(43_200);
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(seconds)
            .send()
            .await
            .map(|_| ())
            .map_err(queue_error)
    }

    async fn dead_letter(&self, body: &str, group: Option<&str>, id: &str) -> Result<(), QueueError> {
        let url =
            self.dead_letter_url.as_deref().ok_or_else(|| QueueError("no dead-letter queue configured".into()))?;
        let mut send = self.client.send_message().queue_url(url).message_body(body);
        if is_fifo(url) {
            send = send.message_group_id(group.unwrap_or("undecodable")).message_deduplication_id(id);
        }
        send.send().await.map(|_| ()).map_err(queue_error)
    }
}

/// The delivery queue and its dead-letter queue, both FIFO, as `template.yaml` declares
/// them (local stack and tests); `name` gets the `.fifo` suffix. Existing queues are
/// reused. Returns (queue URL, DLQ URL).
pub async fn create_queues(
    client: &Client,
    name: &str,
    max_receive_count: u32,
) -> Result<(String, String), QueueError> {
    let error = |e: &dyn std::error::Error| QueueError(DisplayErrorContext(e).to_string());
    let dlq_url = client
        .create_queue()
        .queue_name(format!("{name}-dlq.fifo"))
        .attributes(QueueAttributeName::FifoQueue, "true")
        .attributes(QueueAttributeName::MessageRetentionPeriod, "1209600")
        .send()
        .await
        .map_err(|e| error(&e))?
        .queue_url
        .ok_or_else(|| QueueError("no DLQ url".into()))?;
    let dlq_arn = client
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| error(&e))?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .ok_or_else(|| QueueError("no DLQ arn".into()))?;
    let redrive =
        serde_json::json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count.to_string() });
    let queue_url = client
        .create_queue()
        .queue_name(format!("{name}.fifo"))
        .attributes(QueueAttributeName::FifoQueue, "true")
        .attributes(QueueAttributeName::VisibilityTimeout, "60")
        .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
        .send()
        .await
        .map_err(|e| error(&e))?
        .queue_url
        .ok_or_else(|| QueueError("no queue url".into()))?;
    Ok((queue_url, dlq_url))
}
