//! AWS End User Messaging SMS (`pinpoint-sms-voice-v2`): the SMS provider port's second
//! adapter (docs/aws-sms.md). `SendTextMessage` from the line's phone number, with the
//! deployment's configuration set (its event destination reports delivery) and the job in
//! `Context` (the events echo it, so a report finds its leg before the worker records the
//! message id).
//!
//! An agent's media goes as MMS (`SendMediaMessage`): each file is fetched from the bridge's
//! own signed link (the one Twilio would fetch, `domain::media`), checked against what MMS
//! carries, and put in the deployment's media bucket (`AWS_SMS_MEDIA_BUCKET`, objects under
//! `mms/<job>/`, expired by the bucket's lifecycle), whose `s3://` URLs the send names
//! ("The media files have to be stored in an S3 bucket", `SendMediaMessage` API reference,
//! read 2026-12-06).
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
use aws_sdk_pinpointsmsvoicev2::operation::send_media_message::SendMediaMessageError;
use aws_sdk_pinpointsmsvoicev2::operation::send_text_message::SendTextMessageError;
use aws_sdk_pinpointsmsvoicev2::types::MessageType;

use crate::domain::aws_sms::{AwsSendRefusal, AwsSmsReason, MMS_MAX_BYTES, mms_allows, refusal_code};
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
    /// Where MMS media is staged; `None` (no bucket configured): media is refused.
    media: Option<MediaStaging>,
}

/// The deployment's media bucket, and the client that fetches the bridge's media links.
pub struct MediaStaging {
    pub s3: aws_sdk_s3::Client,
    pub bucket: String,
    pub http: reqwest::Client,
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
        Self { client: Client::from_conf(config.build()), configuration_set: configuration_set.to_owned(), media: None }
    }

    pub fn with_client(client: Client, configuration_set: &str) -> Self {
        Self { client, configuration_set: configuration_set.to_owned(), media: None }
    }

    /// Sends media as MMS, staged in `staging`'s bucket.
    pub fn with_media(mut self, staging: MediaStaging) -> Self {
        self.media = Some(staging);
        self
    }
}

impl MediaStaging {
    /// Fetches `url` (the bridge's own media link), checks MMS carries it and puts it in the
    /// bucket as `key`: its `s3://` URL. Nothing is texted yet, so every failure here is
    /// `NotSent` (tried again) or a refusal of the file itself.
    async fn stage(&self, url: &str, key: &str) -> Result<String, ProviderFailure> {
        let response = self.http.get(url).send().await.map_err(|e| {
            ProviderFailure::NotSent(format!("the media link could not be fetched: {}", chain_text(&e)))
        })?;
        if !response.status().is_success() {
            return Err(ProviderFailure::NotSent(format!("the media link answered {}", response.status().as_u16())));
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        if response.content_length().is_some_and(|length| length > MMS_MAX_BYTES as u64) {
            return Err(media_not_allowed(&content_type));
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ProviderFailure::NotSent(format!("the media could not be read: {}", chain_text(&e))))?;
        if !mms_allows(&content_type, bytes.len()) {
            return Err(media_not_allowed(&content_type));
        }
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(&content_type)
            .body(bytes.into())
            .send()
            .await
            .map_err(|e| {
                let code = e.code().unwrap_or("no answer").chars().take(64).collect::<String>();
                ProviderFailure::NotSent(format!("the media could not be stored in the bucket: {code}"))
            })?;
        Ok(format!("s3://{}/{key}", self.bucket))
    }
}

fn media_not_allowed(content_type: &str) -> ProviderFailure {
    let kind: String = content_type.chars().take(60).collect();
    refused(AwsSmsReason::MediaNotAllowed.code(), &format!("MMS can't carry this file ({kind})"))
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
        let identity = match from.provider {
            SmsSender::AwsEndUserMessaging { identity: Some(identity) } => identity.as_str(),
            _ => from.number.as_str(),
        };
        let context = tracking.map(|t| HashMap::from([(CONTEXT_JOB_KEY.to_owned(), t.job.as_str().to_owned())]));
        if !media_urls.is_empty() {
            // Nothing is sent rather than the caption without its picture.
            let Some(staging) = &self.media else {
                return Err(refused(
                    AwsSmsReason::MediaBucketMissing.code(),
                    "no media bucket is configured (AWS_SMS_MEDIA_BUCKET)",
                ));
            };
            // One folder per job: a retried send puts the same objects again.
            let folder = tracking.map_or_else(|| uuid::Uuid::new_v4().to_string(), |t| t.job.as_str().to_owned());
            let mut staged = Vec::with_capacity(media_urls.len());
            for (index, url) in media_urls.iter().enumerate() {
                staged.push(staging.stage(url, &format!("mms/{folder}/{index}")).await?);
            }
            let sent = self
                .client
                .send_media_message()
                .origination_identity(identity)
                .destination_phone_number(to.as_str())
                .message_body(body)
                .set_media_urls(Some(staged))
                .configuration_set_name(&self.configuration_set)
                .set_context(context)
                .send()
                .await;
            return match sent {
                Ok(output) => accepted(output.message_id, "SendMediaMessage"),
                Err(error) => Err(send_failure(error, media_refusal_code)),
            };
        }
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
            Ok(output) => accepted(output.message_id, "SendTextMessage"),
            Err(error) => Err(send_failure(error, text_refusal_code)),
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

/// A send's answer: its `MessageId`, or, accepted without one the reports could name, a
/// send that may be out (the worker settles it from the report that names the job).
fn accepted(message_id: Option<String>, operation: &str) -> Result<AcceptedSms, ProviderFailure> {
    match message_id {
        Some(id) if !id.is_empty() => Ok(AcceptedSms { id, status: None }),
        _ => Err(ProviderFailure::Ambiguous(format!("{operation} answered without a MessageId"))),
    }
}

/// `SendTextMessage` and `SendMediaMessage` refuse with the same exceptions and reasons (the
/// service model): one mapping, written once for each operation's error type.
macro_rules! refusal_code_of {
    ($err:expr, $error:ident) => {{
        let err = $err;
        let fields: Vec<&str> = match err {
            $error::ValidationException(v) => v.fields.iter().flatten().map(|field| field.name()).collect(),
            _ => Vec::new(),
        };
        let refusal = match err {
            $error::ThrottlingException(_) => Some(AwsSendRefusal::Throttling),
            $error::InternalServerException(_) => Some(AwsSendRefusal::InternalServer),
            $error::ServiceQuotaExceededException(e) => {
                Some(AwsSendRefusal::ServiceQuotaExceeded { reason: e.reason.as_ref().map(|r| r.as_str()) })
            }
            $error::AccessDeniedException(e) => {
                Some(AwsSendRefusal::AccessDenied { reason: e.reason.as_ref().map(|r| r.as_str()) })
            }
            $error::ResourceNotFoundException(_) => Some(AwsSendRefusal::ResourceNotFound),
            $error::ValidationException(e) => {
                Some(AwsSendRefusal::Validation { reason: e.reason.as_ref().map(|r| r.as_str()), fields: &fields })
            }
            $error::ConflictException(e) => {
                Some(AwsSendRefusal::Conflict { reason: e.reason.as_ref().map(|r| r.as_str()) })
            }
            // An error the model doesn't name (a new exception): judged by its HTTP status.
            _ => None,
        };
        refusal.map(refusal_code)
    }};
}

fn text_refusal_code(err: &SendTextMessageError) -> Option<i64> {
    refusal_code_of!(err, SendTextMessageError)
}

fn media_refusal_code(err: &SendMediaMessageError) -> Option<i64> {
    refusal_code_of!(err, SendMediaMessageError)
}

/// The SDK's error in the bridge's terms: a refusal with its reason's code; a request that
/// certainly never left (`NotSent`); anything else may have been sent (`Ambiguous`).
fn send_failure<E>(error: SdkError<E, HttpResponse>, code_of: impl Fn(&E) -> Option<i64>) -> ProviderFailure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match error {
        SdkError::ServiceError(service) => {
            let http_status = service.raw().status().as_u16();
            let err = service.into_err();
            let message =
                crate::domain::scrub_numbers(&err.message().unwrap_or_default().chars().take(200).collect::<String>());
            match code_of(&err) {
                Some(code) => ProviderFailure::Rejected { http_status, code: Some(code), message, retry_after: None },
                None => {
                    let name = err.code().unwrap_or("unknown error").chars().take(64).collect::<String>();
                    ProviderFailure::Rejected {
                        http_status,
                        code: None,
                        message: format!("{name}: {message}"),
                        retry_after: None,
                    }
                }
            }
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
        SdkError::TimeoutError(_) => ProviderFailure::Ambiguous("timed out waiting for the send's answer".into()),
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
