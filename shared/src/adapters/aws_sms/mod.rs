//! AWS End User Messaging SMS: the second SMS provider (docs/aws-sms.md). Sending over the
//! SDK (`messages`); customers' texts and delivery events arriving as SNS notifications
//! (`events`).

pub mod events;
pub mod messages;

pub use messages::{AwsSmsClient, CONTEXT_JOB_KEY, ENDPOINT_ENV};
