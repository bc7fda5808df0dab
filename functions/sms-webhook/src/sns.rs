//! AWS End User Messaging SMS (docs/aws-sms.md): customers' texts and delivery events arrive
//! as SNS notifications, not HTTP requests. The same function takes them (the design's three
//! binaries stay three): `main` sends an SNS event here and anything else to the router.
//!
//! Each record is handled on its own, with the use cases Twilio's webhooks use:
//! - a customer's text → `receive_sms` (deduplicated on AWS's `inboundMessageId`);
//! - a delivery event → `apply_sms_status` (the leg found by the send's `Context` or by the
//!   `MessageId` the worker recorded; statuses only move forward, so late and repeated
//!   events change nothing).
//!
//! A record that isn't from a configured topic, can't be read, or names no AWS line is
//! refused with a log line and nothing recorded: retrying it can't help. A record the store
//! couldn't take now fails the invocation once the others are done, so Lambda's retry of
//! the asynchronous invocation replays the event (the rest are then duplicates, harmless).

use jiff::Timestamp;
use shared::adapters::aws_sms::events::{AwsSmsNotification, read_sns_event};
use shared::app::apply_sms_status::{SmsStatusReport, apply_sms_status};
use shared::app::receive_sms::{Received, receive_sms};
use shared::app::retry_budget::RetryBudget;
use shared::domain::{InboundSms, SmsProviderKind};
use shared::ports::{ConversationStore, DeliveryQueue};
use shared::telemetry;

use crate::SmsWebhook;

/// What one SNS event came to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SnsHandled {
    /// Customers' texts recorded (or replayed: nothing recorded twice).
    pub texts: usize,
    /// Delivery events applied (whether or not they changed the status).
    pub statuses: usize,
    /// Records refused: nothing recorded.
    pub refused: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum SnsError {
    /// Not an SNS event at all: nothing in it was read.
    #[error("{0}")]
    Unreadable(String),
    /// Some records couldn't be recorded now; the invocation fails so Lambda delivers the
    /// event again.
    #[error("{failed} record(s) not recorded now (the store or queue failed); Lambda's retry replays them")]
    Unavailable { failed: usize, handled: SnsHandled },
}

/// Why a readable notification was refused.
enum Refusal {
    UnknownLine,
    NotAnAwsLine(SmsProviderKind),
}

impl<S: ConversationStore, Q: DeliveryQueue> SmsWebhook<S, Q> {
    /// Handles an SNS event (`event` as the Lambda payload's JSON).
    pub async fn handle_sns(&self, event: &str) -> Result<SnsHandled, SnsError> {
        let mut handled = SnsHandled::default();
        let Some(topics) = &self.aws_sms_topics else {
            tracing::warn!(
                outcome = "rejected",
                "an SNS event, but no AWS SMS topics are configured (AWS_SMS_INBOUND_TOPIC_ARN): nothing recorded"
            );
            telemetry::count("WebhookItemSkipped", &[("source", "aws_sms")]);
            return Ok(SnsHandled { refused: 1, ..handled });
        };
        let records = read_sns_event(event, topics, Timestamp::now()).map_err(|e| {
            tracing::warn!(outcome = "rejected", error = %e, "unreadable SNS event: nothing recorded");
            SnsError::Unreadable(e.to_string())
        })?;
        let mut failed = 0;
        for record in records {
            let notification = match record {
                Ok(notification) => notification,
                Err(error) => {
                    tracing::warn!(outcome = "rejected", error = %error, "aws sms notification refused: nothing recorded");
                    telemetry::count("WebhookItemSkipped", &[("source", "aws_sms")]);
                    handled.refused += 1;
                    continue;
                }
            };
            let done = match notification {
                AwsSmsNotification::Inbound { sms, keyword } => self.inbound(sms, keyword.is_some()).await,
                AwsSmsNotification::Delivery(event) => {
                    let report = SmsStatusReport {
                        sid: event.message_id.as_str().to_owned(),
                        status: event.status,
                        error_code: event.error_code,
                        job: event.job,
                        from: event.from,
                        to: event.to,
                    };
                    self.status(&report).await.map(|()| Counted::Status)
                }
            };
            match done {
                Ok(Counted::Text) => handled.texts += 1,
                Ok(Counted::Status) => handled.statuses += 1,
                Ok(Counted::Refused) => handled.refused += 1,
                Err(()) => failed += 1,
            }
        }
        if failed > 0 { Err(SnsError::Unavailable { failed, handled }) } else { Ok(handled) }
    }

    async fn inbound(&self, sms: InboundSms, aws_keyword: bool) -> Result<Counted, ()> {
        let lines = self.lines.current().await;
        let line = match lines.by_sms_number(&sms.to) {
            Some(line) if line.sms_provider == SmsProviderKind::AwsEndUserMessaging => line,
            found => {
                let refusal = found.map_or(Refusal::UnknownLine, |line| Refusal::NotAnAwsLine(line.sms_provider));
                let reason = match refusal {
                    Refusal::UnknownLine => "no line is configured for the destination number".to_owned(),
                    Refusal::NotAnAwsLine(kind) => {
                        format!("the destination number's line sends through {}, not AWS", kind.as_str())
                    }
                };
                tracing::warn!(
                    outcome = "rejected",
                    to = sms.to.masked(),
                    message_id = sms.provider_message_id.as_str(),
                    error = reason,
                    "aws sms text refused: nothing recorded"
                );
                telemetry::count("WebhookItemSkipped", &[("source", "aws_sms")]);
                return Ok(Counted::Refused);
            }
        };
        let (customer, inbound_id) = (sms.from.masked(), sms.provider_message_id.as_str().to_owned());
        let mut rng = fastrand::Rng::new();
        let budget = RetryBudget::new(self.retry_budget);
        match receive_sms(&self.store, &self.queue, line, sms, &mut rng, &budget, &self.copy_facts).await {
            Ok(Received::Accepted { message_id, new_conversation, jobs, enqueued }) => tracing::info!(
                outcome = "accepted",
                source = "aws_sms",
                line = %line.id,
                customer,
                inbound_message_id = inbound_id,
                aws_keyword,
                message_id = message_id.as_str(),
                new_conversation = new_conversation.is_some(),
                handle = new_conversation.as_ref().map(|h| h.as_str()),
                jobs,
                enqueued,
                "inbound sms recorded"
            ),
            Ok(Received::Duplicate { message_id, jobs, enqueued }) => {
                tracing::info!(
                    outcome = "duplicate",
                    source = "aws_sms",
                    line = %line.id,
                    customer,
                    inbound_message_id = inbound_id,
                    message_id = message_id.as_ref().map(|m| m.as_str()),
                    jobs,
                    enqueued,
                    "inbound sms replayed; jobs re-offered, nothing recorded"
                );
                telemetry::count("DuplicateWebhook", &[("source", "aws_sms")]);
            }
            Err(e) => {
                tracing::error!(outcome = "error", source = "aws_sms", error = %e, "inbound sms not accepted");
                return Err(());
            }
        }
        Ok(Counted::Text)
    }

    async fn status(&self, report: &SmsStatusReport) -> Result<(), ()> {
        let budget = RetryBudget::new(self.retry_budget);
        let lines = self.lines.current().await;
        let handled =
            apply_sms_status(&self.store, &self.queue, &lines, report, Timestamp::now(), &budget).await.map_err(
                |e| tracing::error!(outcome = "error", source = "aws_sms", error = %e, "sms status not recorded"),
            )?;
        crate::log_status_outcome(&handled, report, crate::StatusSource::AwsSms);
        Ok(())
    }
}

enum Counted {
    Text,
    Status,
    Refused,
}
