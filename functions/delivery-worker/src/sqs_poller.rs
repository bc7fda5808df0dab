//! Outside AWS, this stands in for the Lambda event source mapping (docs/local-stack.md): receive up
//! to ten messages, hand them to the worker as an `SqsEvent`, delete the ones it did not
//! report as failed, and leave the failed ones until their visibility timeout.

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use shared::ports::{ConversationStore, DeliveryQueue, SmsProvider, WhatsAppClient};

use crate::DeliveryWorker;

pub struct SqsPoller {
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    /// Seconds `ReceiveMessage` waits for messages (long polling).
    wait_seconds: i32,
}

impl SqsPoller {
    pub fn new(sqs: aws_sdk_sqs::Client, queue_url: impl Into<String>, wait_seconds: i32) -> Self {
        Self { sqs, queue_url: queue_url.into(), wait_seconds }
    }

    /// One receive → invoke → delete round. Returns how many records the worker saw.
    pub async fn poll_once<S, W, P, Q>(&self, worker: &DeliveryWorker<S, W, P, Q>) -> Result<usize, String>
    where
        S: ConversationStore,
        W: WhatsAppClient,
        P: SmsProvider,
        Q: DeliveryQueue,
    {
        let received = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(self.wait_seconds)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(|e| DisplayErrorContext(&e).to_string())?;
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            return Ok(0);
        }
        let mut event = SqsEvent::default();
        event.records = messages
            .iter()
            .map(|m| {
                let mut record = SqsMessage::default();
                record.message_id = m.message_id.clone();
                record.receipt_handle = m.receipt_handle.clone();
                record.body = m.body.clone();
                record.md5_of_body = m.md5_of_body.clone();
                record.attributes = m
                    .attributes
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v))
                    .collect();
                record.event_source = Some("aws:sqs".into());
                record
            })
            .collect();
        let response = worker.handle_batch(event).await;
        let failed: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
        let done: Vec<DeleteMessageBatchRequestEntry> = messages
            .iter()
            .enumerate()
            .filter(|(_, m)| !failed.contains(&m.message_id.as_deref().unwrap_or_default()))
            .filter_map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .set_receipt_handle(m.receipt_handle.clone())
                    .build()
                    .ok()
            })
            .collect();
        if !done.is_empty() {
            self.sqs
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(done))
                .send()
                .await
                .map_err(|e| DisplayErrorContext(&e).to_string())?;
        }
        Ok(messages.len())
    }
}
