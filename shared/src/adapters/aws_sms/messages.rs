//! AWS End User Messaging SMS (`pinpoint-sms-voice-v2`): the SMS provider port's second
//! adapter (docs/aws-sms.md). `SendTextMessage` from the line's phone number, with the
//! deployment's configuration set (its event destination reports delivery) and the job in
//! `Context` (the events echo it, so a report finds its leg before the worker records the
//! message id).
//!
//! API reference read 2026-12-06 in the service model as `aws-sdk-pinpointsmsvoicev2` 1.134
//! ships it: `OriginationIdentity` takes a phone number, its id or its ARN; `Context` is
//! "custom data ... logged to the event destination"; the errors are `AccessDenied`,
//! `Conflict`, `InternalServer`, `ResourceNotFound`, `ServiceQuotaExceeded`, `Throttling`
//! and `Validation`, with the reasons `domain::aws_sms` maps.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_pinpointsmsvoicev2::Client;
use aws_sdk_pinpointsmsvoicev2::config::http::HttpResponse;
use aws_sdk_pinpointsmsvoicev2::config::retry::RetryConfig;
use aws_sdk_pinpointsmsvoicev2::config::timeout::TimeoutConfig;
use aws_sdk_pinpointsmsvoicev2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_pinpointsmsvoicev2::operation::send_text_message::SendTextMessageError;
use aws_sdk_pinpointsmsvoicev2::types::MessageType;

use crate::domain::aws_sms::{AwsSendRefusal, AwsSmsReason, refusal_code};
use crate::domain::{E164, ProviderFailure, SmsOrigin, SmsSender};
use crate::ports::{AcceptedSms, SentLookup, SmsProvider, SmsTracking};

/// The SDK's service-specific endpoint setting (the SDK's service id "Pinpoint SMS Voice V2";
/// AWS SDKs and Tools Reference Guide, "Service-specific endpoints", read 2026-12-06). The
/// worker reads it itself so that it also wins over `EMULATOR_ENDPOINT_URL`, which points
/// every other client at the emulator.
pub const ENDPOINT_ENV: &str = "AWS_ENDPOINT_URL_PINPOINT_SMS_VOICE_V2";

/// The `Context` key that carries the job (`SendTextMessage` → the delivery events'
/// `context`).
pub const CONTEXT_JOB_KEY: &str = "job";

pub struct AwsSmsClient {
    client: Client,
    configuration_set: String,
}

impl AwsSmsClient {
    /// A client from the deployment's SDK configuration, without the SDK's own retries: a
    /// retried `SendTextMessage` could text twice, and the worker already retries with its
    /// uncertain-send rules. `timeout` bounds one call, like the providers' HTTP client.
    pub fn new(
        sdk: &aws_config::SdkConfig,
        endpoint: Option<&str>,
        configuration_set: &str,
        timeout: Duration,
    ) -> Self {
        let mut config = aws_sdk_pinpointsmsvoicev2::config::Builder::from(sdk)
            .retry_config(RetryConfig::disabled())
            .timeout_config(TimeoutConfig::builder().operation_timeout(timeout).build());
        if let Some(endpoint) = endpoint {
            config = config.endpoint_url(endpoint);
        }
        Self { client: Client::from_conf(config.build()), configuration_set: configuration_set.to_owned() }
    }

    pub fn with_client(client: Client, configuration_set: &str) -> Self {
        Self { client, configuration_set: configuration_set.to_owned() }
    }
}

impl SmsProvider for AwsSmsClient {
    async fn send(
        &self,
        from: SmsOrigin<'_>,
        to: &E164,
        body: &str,
        media_urls: &[String],
        tracking: Option<SmsTracking<'_>>,
    ) -> Result<AcceptedSms, ProviderFailure> {
        if !media_urls.is_empty() {
            // MMS (`SendMediaMessage` with the media in S3) is not wired yet: nothing is sent,
            // rather than the caption without its picture.
            return Err(refused(
                AwsSmsReason::MediaNotSupportedYet.code(),
                "media is not supported on AWS SMS lines yet",
            ));
        }
        let identity = match from.provider {
            SmsSender::AwsEndUserMessaging { identity: Some(identity) } => identity.as_str(),
            _ => from.number.as_str(),
        };
        let context = tracking.map(|t| HashMap::from([(CONTEXT_JOB_KEY.to_owned(), t.job.as_str().to_owned())]));
        let sent = self
            .client
            .send_text_message()
            .origination_identity(identity)
            .destination_phone_number(to.as_str())
            .message_body(body)
            .message_type(MessageType::Transactional)
            .configuration_set_name(&self.configuration_set)
            .set_context(context)
            .send()
            .await;
        match sent {
            Ok(output) => match output.message_id {
                Some(id) if !id.is_empty() => Ok(AcceptedSms { id, status: None }),
                // Accepted without an id the reports could name: it may be out; the worker
                // settles it from the report that names the job.
                _ => Err(ProviderFailure::Ambiguous("SendTextMessage answered without a MessageId".into())),
            },
            Err(error) => Err(send_failure(error)),
        }
    }

    /// AWS End User Messaging SMS keeps no list of sent messages to ask (its API has no
    /// message lookup; checked against the service model, 2026-12-06): only a delivery
    /// event naming the job can tell the worker an uncertain send went out.
    async fn find_sent(
        &self,
        _from: SmsOrigin<'_>,
        _to: &E164,
        _body: &str,
        _since: jiff::Timestamp,
    ) -> Result<SentLookup, ProviderFailure> {
        Ok(SentLookup::Unsupported)
    }
}

fn refused(code: i64, message: &str) -> ProviderFailure {
    ProviderFailure::Rejected { http_status: 400, code: Some(code), message: message.to_owned(), retry_after: None }
}

/// The SDK's error in the bridge's terms: a refusal with its reason's code; a request that
/// certainly never left (`NotSent`); anything else may have been sent (`Ambiguous`).
fn send_failure(error: SdkError<SendTextMessageError, HttpResponse>) -> ProviderFailure {
    match error {
        SdkError::ServiceError(service) => {
            let http_status = service.raw().status().as_u16();
            let err = service.into_err();
            let message =
                crate::domain::scrub_numbers(&err.message().unwrap_or_default().chars().take(200).collect::<String>());
            let fields: Vec<&str> = match &err {
                SendTextMessageError::ValidationException(v) => {
                    v.fields.iter().flatten().map(|field| field.name()).collect()
                }
                _ => Vec::new(),
            };
            let refusal = match &err {
                SendTextMessageError::ThrottlingException(_) => AwsSendRefusal::Throttling,
                SendTextMessageError::InternalServerException(_) => AwsSendRefusal::InternalServer,
                SendTextMessageError::ServiceQuotaExceededException(e) => {
                    AwsSendRefusal::ServiceQuotaExceeded { reason: e.reason.as_ref().map(|r| r.as_str()) }
                }
                SendTextMessageError::AccessDeniedException(e) => {
                    AwsSendRefusal::AccessDenied { reason: e.reason.as_ref().map(|r| r.as_str()) }
                }
                SendTextMessageError::ResourceNotFoundException(_) => AwsSendRefusal::ResourceNotFound,
                SendTextMessageError::ValidationException(e) => {
                    AwsSendRefusal::Validation { reason: e.reason.as_ref().map(|r| r.as_str()), fields: &fields }
                }
                SendTextMessageError::ConflictException(e) => {
                    AwsSendRefusal::Conflict { reason: e.reason.as_ref().map(|r| r.as_str()) }
                }
                // An error the model doesn't name (a new exception): by its HTTP status.
                other => {
                    let name = other.code().unwrap_or("unknown error").chars().take(64).collect::<String>();
                    return ProviderFailure::Rejected {
                        http_status,
                        code: None,
                        message: format!("{name}: {message}"),
                        retry_after: None,
                    };
                }
            };
            ProviderFailure::Rejected { http_status, code: Some(refusal_code(refusal)), message, retry_after: None }
        }
        SdkError::ConstructionFailure(_) => ProviderFailure::NotSent("the request could not be built".into()),
        SdkError::DispatchFailure(dispatch) => {
            let text = dispatch.as_connector_error().map_or_else(|| "dispatch failed".to_owned(), |e| chain_text(e));
            if never_connected(&text) {
                ProviderFailure::NotSent(format!("could not connect: {text}"))
            } else {
                ProviderFailure::Ambiguous(format!("no answer: {text}"))
            }
        }
        SdkError::TimeoutError(_) => ProviderFailure::Ambiguous("timed out waiting for SendTextMessage".into()),
        SdkError::ResponseError(_) => ProviderFailure::Ambiguous("an answer that could not be read".into()),
        other => ProviderFailure::Ambiguous(crate::domain::scrub_numbers(&other.to_string())),
    }
}

/// Only a failure to connect (DNS, a refused connection) proves the request never left; the
/// SDK reports those and a connection lost mid-request alike as I/O, so the words decide.
fn never_connected(error_text: &str) -> bool {
    let text = error_text.to_ascii_lowercase();
    text.contains("dns error") || text.contains("(connect)") || text.contains("connection refused")
}

/// The error and its sources, one line, no numbers.
fn chain_text(error: &dyn std::error::Error) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(inner) = source {
        parts.push(inner.to_string());
        source = inner.source();
    }
    crate::domain::scrub_numbers(&parts.join(": ").chars().take(300).collect::<String>())
}
