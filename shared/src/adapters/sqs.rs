//! The delivery queue over SQS: jobs as JSON message bodies, sent in batches of ten.

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
}

impl SqsQueue {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self { client, queue_url: queue_url.into() }
    }
}

impl DeliveryQueue for SqsQueue {
    async fn enqueue(&self, jobs: &[Job]) -> Result<(), QueueError> {
        for chunk in jobs.chunks(BATCH) {
            let mut pending: Vec<(String, String)> =
                chunk.iter().enumerate().map(|(i, job)| (i.to_string(), job.encode())).collect();
            for round in 0..=RESEND_ROUNDS {
                let entries = pending
                    .iter()
                    .map(|(id, body)| {
                        SendMessageBatchRequestEntry::builder()
                            .id(id)
                            .message_body(body)
                            .build()
                            .map_err(|e| QueueError(e.to_string()))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let out = self
                    .client
                    .send_message_batch()
                    .queue_url(&self.queue_url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .map_err(|e| QueueError(DisplayErrorContext(&e).to_string()))?;
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
}

/// The delivery queue and its dead-letter queue, as `template.yaml` declares them
/// (local stack and tests). Existing queues are reused. Returns (queue URL, DLQ URL).
pub async fn create_queues(
    client: &Client,
    name: &str,
    max_receive_count: u32,
) -> Result<(String, String), QueueError> {
    let error = |e: &dyn std::error::Error| QueueError(DisplayErrorContext(e).to_string());
    let dlq_url = client
        .create_queue()
        .queue_name(format!("{name}-dlq"))
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
        .queue_name(name)
        .attributes(QueueAttributeName::VisibilityTimeout, "60")
        .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
        .send()
        .await
        .map_err(|e| error(&e))?
        .queue_url
        .ok_or_else(|| QueueError("no queue url".into()))?;
    Ok((queue_url, dlq_url))
}
