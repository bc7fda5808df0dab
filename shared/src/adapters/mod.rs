//! Adapters: the ports implemented over AWS and the providers' HTTP APIs.

pub mod aws_sms;
pub mod dynamodb;
pub mod media;
pub mod sms_providers;
pub mod sqs;
pub mod ssm;
pub mod twilio;
pub mod whatsapp;

use std::time::Duration;

use crate::domain::ProviderFailure;

/// A request that got no HTTP answer. Only a failure to connect proves the provider never
/// saw it; a timeout or a connection lost after the request was written may have been
/// accepted (`Ambiguous`: the worker asks before sending again).
pub(crate) fn request_failure(e: reqwest::Error) -> ProviderFailure {
    // reqwest errors print the URL; ours carry no secret, but keep logs short and uniform.
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "<provider>");
    }
    let text = crate::domain::scrub_numbers(&text);
    if e.is_connect() || e.is_builder() { ProviderFailure::NotSent(text) } else { ProviderFailure::Ambiguous(text) }
}

/// `Retry-After` in seconds (capped at 15 minutes, SQS's longest delay).
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(|s| Duration::from_secs(s.min(900)))
}
