//! What AWS End User Messaging SMS publishes to SNS, as Lambda receives it: a customer's text
//! (two-way SMS) or a delivery event (the configuration set's event destination), each the
//! `Message` of one SNS record. Read record by record, so one bad record costs only itself.
//!
//! Shapes, read 2026-12-06:
//! - the SNS event: AWS Lambda Developer Guide, "Invoking Lambda functions with Amazon SNS
//!   notifications" (`Records[].EventSource` `aws:sns`, `Records[].Sns.{TopicArn, MessageId,
//!   Message, Timestamp}`);
//! - a customer's text: AWS End User Messaging SMS User Guide, "Example of a two-way SMS
//!   message payload for Amazon SNS topics"
//!   (<https://docs.aws.amazon.com/sms-voice/latest/userguide/two-way-sms-payload.html>):
//!   `originationNumber`, `destinationNumber`, `messageKeyword`, `messageBody`,
//!   `inboundMessageId`, `previousPublishedMessageId`; no timestamp of its own, so the SNS
//!   record's `Timestamp` (when AWS published it) is the text's time;
//! - a delivery event: "Messaging Events"
//!   (<https://docs.aws.amazon.com/end-user-messaging/latest/userguide/nx-features-messaging-events.html>):
//!   `eventType`, `isFinal`, `originationPhoneNumber`, `destinationPhoneNumber`,
//!   `messageId`, `messageStatus`, `context`, `eventTimestamp` (ms).
//!
//! Errors never quote a number: parse errors are scrubbed, and the topic is named by its
//! name alone.

use std::collections::HashMap;

use jiff::Timestamp;
use serde::Deserialize;

use super::messages::CONTEXT_JOB_KEY;
use crate::domain::aws_sms::event_status;
use crate::domain::{E164, InboundSms, JobId, ProviderMessageId, ReportedStatus, scrub_numbers};

/// The SNS topics the deployment's AWS SMS numbers publish to (docs/configuration.md). They
/// may be one topic; a notification from any other topic is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSmsTopics {
    /// `AWS_SMS_INBOUND_TOPIC_ARN`: the phone numbers' two-way SMS destination.
    pub inbound: String,
    /// `AWS_SMS_EVENTS_TOPIC_ARN`: the configuration set's event destination.
    pub events: String,
}

/// One SNS record, as the bridge reads it.
#[derive(Debug, Clone, PartialEq)]
pub enum AwsSmsNotification {
    /// A customer's text; `keyword` is AWS's `messageKeyword` when it matched one.
    Inbound {
        sms: InboundSms,
        keyword: Option<String>,
    },
    Delivery(AwsDeliveryEvent),
}

/// A delivery event in the status path's terms.
#[derive(Debug, Clone, PartialEq)]
pub struct AwsDeliveryEvent {
    /// `messageId`: what `SendTextMessage` answered, recorded on the leg.
    pub message_id: ProviderMessageId,
    pub status: ReportedStatus,
    pub error_code: Option<i64>,
    /// The job from the send's `Context`.
    pub job: Option<JobId>,
    /// The line's number and the customer's.
    pub from: Option<E164>,
    pub to: Option<E164>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnsRecordError {
    #[error("not an SNS event: {0}")]
    NotSns(String),
    #[error("unreadable SNS record: {0}")]
    UnreadableRecord(String),
    #[error("from SNS topic `{0}`, which is not one of the configured AWS SMS topics")]
    WrongTopic(String),
    #[error("a {kind} from SNS topic `{topic}`, which is not the topic configured for it")]
    KindNotFromTopic { kind: &'static str, topic: String },
    #[error("the notification's Message is not AWS SMS JSON: {0}")]
    MalformedMessage(String),
    #[error("field {field}: {reason}")]
    InvalidField { field: &'static str, reason: String },
}

#[derive(Deserialize)]
struct SnsEvent {
    #[serde(rename = "Records")]
    records: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct SnsRecord {
    #[serde(rename = "EventSource", default)]
    event_source: Option<String>,
    #[serde(rename = "Sns")]
    sns: SnsEnvelope,
}

#[derive(Deserialize)]
struct SnsEnvelope {
    #[serde(rename = "TopicArn")]
    topic_arn: String,
    #[serde(rename = "Message")]
    message: String,
    #[serde(rename = "Timestamp", default)]
    timestamp: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InboundPayload {
    origination_number: Option<String>,
    destination_number: Option<String>,
    #[serde(default)]
    message_body: Option<String>,
    inbound_message_id: Option<String>,
    #[serde(default)]
    message_keyword: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventPayload {
    event_type: String,
    #[serde(default)]
    is_final: Option<bool>,
    message_id: Option<String>,
    #[serde(default)]
    origination_phone_number: Option<String>,
    #[serde(default)]
    destination_phone_number: Option<String>,
    #[serde(default)]
    context: Option<HashMap<String, serde_json::Value>>,
}

/// Whether a Lambda event is an SNS event (its records come from `aws:sns`); anything else
/// is for the HTTP router.
pub fn is_sns_event(event: &str) -> bool {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(rename = "Records")]
        records: Vec<ProbeRecord>,
    }
    #[derive(Deserialize)]
    struct ProbeRecord {
        #[serde(rename = "EventSource")]
        event_source: String,
    }
    serde_json::from_str::<Probe>(event)
        .is_ok_and(|probe| !probe.records.is_empty() && probe.records.iter().all(|r| r.event_source == "aws:sns"))
}

/// Every record of an SNS event, each read on its own.
pub fn read_sns_event(
    event: &str,
    topics: &AwsSmsTopics,
    now: Timestamp,
) -> Result<Vec<Result<AwsSmsNotification, SnsRecordError>>, SnsRecordError> {
    let event: SnsEvent =
        serde_json::from_str(event).map_err(|e| SnsRecordError::NotSns(scrub_numbers(&e.to_string())))?;
    Ok(event.records.into_iter().map(|record| read_record(record, topics, now)).collect())
}

fn read_record(
    record: serde_json::Value,
    topics: &AwsSmsTopics,
    now: Timestamp,
) -> Result<AwsSmsNotification, SnsRecordError> {
    let record: SnsRecord =
        serde_json::from_value(record).map_err(|e| SnsRecordError::UnreadableRecord(scrub_numbers(&e.to_string())))?;
    if let Some(source) = record.event_source.as_deref().filter(|s| *s != "aws:sns") {
        return Err(SnsRecordError::NotSns(format!("EventSource `{}`", scrub_numbers(source))));
    }
    let topic = record.sns.topic_arn;
    let (from_inbound, from_events) = (topic == topics.inbound, topic == topics.events);
    if !from_inbound && !from_events {
        return Err(SnsRecordError::WrongTopic(topic_name(&topic)));
    }
    let message: serde_json::Value = serde_json::from_str(&record.sns.message)
        .map_err(|e| SnsRecordError::MalformedMessage(scrub_numbers(&e.to_string())))?;
    if message.get("inboundMessageId").is_some() {
        if !from_inbound {
            return Err(SnsRecordError::KindNotFromTopic { kind: "customer's text", topic: topic_name(&topic) });
        }
        let published = record.sns.timestamp.as_deref().and_then(|t| t.parse::<Timestamp>().ok());
        inbound(message, published, now)
    } else if message.get("eventType").is_some() {
        if !from_events {
            return Err(SnsRecordError::KindNotFromTopic { kind: "delivery event", topic: topic_name(&topic) });
        }
        delivery(message)
    } else {
        Err(SnsRecordError::MalformedMessage("neither inboundMessageId nor eventType".into()))
    }
}

fn inbound(
    message: serde_json::Value,
    published: Option<Timestamp>,
    now: Timestamp,
) -> Result<AwsSmsNotification, SnsRecordError> {
    let payload: InboundPayload =
        serde_json::from_value(message).map_err(|e| SnsRecordError::MalformedMessage(scrub_numbers(&e.to_string())))?;
    let required = |field: &'static str, value: Option<String>| {
        value.filter(|v| !v.is_empty()).ok_or(SnsRecordError::InvalidField { field, reason: "missing".into() })
    };
    let invalid = |field: &'static str| move |reason: String| SnsRecordError::InvalidField { field, reason };
    let id = required("inboundMessageId", payload.inbound_message_id)?;
    let provider_message_id = ProviderMessageId::parse(&id).map_err(invalid("inboundMessageId"))?;
    let from = E164::parse(&required("originationNumber", payload.origination_number)?)
        .map_err(|e| invalid("originationNumber")(e.to_string()))?;
    let to = E164::parse(&required("destinationNumber", payload.destination_number)?)
        .map_err(|e| invalid("destinationNumber")(e.to_string()))?;
    // AWS doesn't keep inbound texts in order; the time it published each is the closest to
    // when it was sent (never later than now: a clock ahead must not reorder the thread).
    let received_at = published.map_or(now, |at| at.min(now));
    let sms = InboundSms {
        provider_message_id,
        from,
        to,
        body: payload.message_body.unwrap_or_default(),
        // AWS offers no inbound MMS (two-way SMS is text only).
        attachments: Vec::new(),
        received_at,
    };
    Ok(AwsSmsNotification::Inbound { sms, keyword: payload.message_keyword.filter(|k| !k.is_empty()) })
}

fn delivery(message: serde_json::Value) -> Result<AwsSmsNotification, SnsRecordError> {
    let payload: EventPayload =
        serde_json::from_value(message).map_err(|e| SnsRecordError::MalformedMessage(scrub_numbers(&e.to_string())))?;
    let id = payload
        .message_id
        .filter(|v| !v.is_empty())
        .ok_or(SnsRecordError::InvalidField { field: "messageId", reason: "missing".into() })?;
    let message_id =
        ProviderMessageId::parse(&id).map_err(|reason| SnsRecordError::InvalidField { field: "messageId", reason })?;
    // A final failure unless AWS says otherwise: the agent hears of it rather than not.
    let (status, error_code) = event_status(&payload.event_type, payload.is_final.unwrap_or(true));
    let job = payload
        .context
        .as_ref()
        .and_then(|context| context.get(CONTEXT_JOB_KEY))
        .and_then(|job| job.as_str())
        .and_then(|job| JobId::parse(job).ok());
    Ok(AwsSmsNotification::Delivery(AwsDeliveryEvent {
        message_id,
        status,
        error_code,
        job,
        // A sender id (not a number) or a missing field: the leg is found by `messageId`.
        from: payload.origination_phone_number.and_then(|n| E164::parse(&n).ok()),
        to: payload.destination_phone_number.and_then(|n| E164::parse(&n).ok()),
    }))
}

/// A topic by its name (an ARN's last part), for logs: the ARN's account id is noise there.
fn topic_name(arn: &str) -> String {
    let name = arn.rsplit(':').next().unwrap_or(arn);
    scrub_numbers(&name.chars().take(256).collect::<String>())
}

#[cfg(test)]
mod tests {
    use super::*;

    const INBOUND: &str = "arn:aws:sns:us-east-1:111122223333:sms-inbound";
    const EVENTS: &str = "arn:aws:sns:us-east-1:111122223333:sms-events";

    fn topics() -> AwsSmsTopics {
        AwsSmsTopics { inbound: INBOUND.into(), events: EVENTS.into() }
    }

    fn event(topic: &str, message: &serde_json::Value) -> String {
        serde_json::json!({ "Records": [{
            "EventSource": "aws:sns", "EventVersion": "1.0",
            "Sns": { "Type": "Notification", "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
                     "TopicArn": topic, "Message": message.to_string(),
                     "Timestamp": "2026-12-06T10:00:00.000Z" } }] })
        .to_string()
    }

    fn one(event: &str) -> Result<AwsSmsNotification, SnsRecordError> {
        let now: Timestamp = "2026-12-06T10:00:05Z".parse().unwrap();
        let mut records = read_sns_event(event, &topics(), now).unwrap();
        assert_eq!(records.len(), 1);
        records.remove(0)
    }

    #[test]
    fn reads_a_customers_text_as_the_user_guide_shows_it() {
        let message = serde_json::json!({ "originationNumber": "+14155550134", "destinationNumber": "+14155550100",
            "messageKeyword": "KEYWORD_111122223333", "messageBody": "Is my bike ready?",
            "inboundMessageId": "cae173d2-66b9-564c-8309-21f858e9fb84",
            "previousPublishedMessageId": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" });
        let raw = event(INBOUND, &message);
        assert!(is_sns_event(&raw));
        let AwsSmsNotification::Inbound { sms, keyword } = one(&raw).unwrap() else { panic!() };
        assert_eq!(sms.provider_message_id.as_str(), "cae173d2-66b9-564c-8309-21f858e9fb84");
        assert_eq!((sms.from.as_str(), sms.to.as_str()), ("+14155550134", "+14155550100"));
        assert_eq!(sms.body, "Is my bike ready?");
        assert_eq!(sms.received_at, "2026-12-06T10:00:00Z".parse().unwrap(), "SNS's publish time");
        assert!(keyword.is_some());
    }

    #[test]
    fn reads_a_delivery_event_with_its_job() {
        let message = serde_json::json!({ "eventType": "TEXT_DELIVERED", "eventVersion": "1.0",
            "eventTimestamp": 1_686_975_103_470_i64, "isFinal": true, "originationPhoneNumber": "+14155550100",
            "destinationPhoneNumber": "+14155550134", "messageId": "862a8790-60c0-4430-9b2b-658bdexample",
            "messageStatus": "DELIVERED", "context": { "job": "m1.0" }, "totalMessageParts": 1 });
        let AwsSmsNotification::Delivery(report) = one(&event(EVENTS, &message)).unwrap() else { panic!() };
        assert_eq!(report.status.as_str(), "delivered");
        assert_eq!(report.job.unwrap().as_str(), "m1.0");
        assert_eq!(report.message_id.as_str(), "862a8790-60c0-4430-9b2b-658bdexample");
        assert_eq!(report.from.unwrap().as_str(), "+14155550100");
    }

    #[test]
    fn refuses_what_is_not_from_the_configured_topics_or_not_aws_sms() {
        let text = serde_json::json!({ "originationNumber": "+14155550134", "destinationNumber": "+14155550100",
            "messageBody": "hi", "inboundMessageId": "cae173d2-66b9-564c-8309-21f858e9fb84" });
        let other = "arn:aws:sns:us-east-1:999988887777:someone-else";
        assert_eq!(one(&event(other, &text)), Err(SnsRecordError::WrongTopic("someone-else".into())));
        let delivered = serde_json::json!({ "eventType": "TEXT_DELIVERED", "messageId": "862a8790" });
        assert!(matches!(one(&event(INBOUND, &delivered)), Err(SnsRecordError::KindNotFromTopic { .. })));
        assert!(matches!(one(&event(EVENTS, &text)), Err(SnsRecordError::KindNotFromTopic { .. })));

        let cases: Vec<(String, &str)> = vec![
            (event(INBOUND, &serde_json::json!("not an object")), "neither"),
            (event(INBOUND, &serde_json::json!({ "hello": 1 })), "neither"),
            (
                event(
                    INBOUND,
                    &serde_json::json!({ "originationNumber": "4155550134", "destinationNumber": "+14155550100", "inboundMessageId": "a-1" }),
                ),
                "originationNumber",
            ),
            (
                event(
                    INBOUND,
                    &serde_json::json!({ "originationNumber": "+14155550134", "destinationNumber": "+14155550100", "inboundMessageId": "a#1" }),
                ),
                "inboundMessageId",
            ),
            (
                event(
                    INBOUND,
                    &serde_json::json!({ "originationNumber": 14155550134_i64, "destinationNumber": "+14155550100", "inboundMessageId": "a-1" }),
                ),
                "invalid type",
            ),
            (event(EVENTS, &serde_json::json!({ "eventType": "TEXT_DELIVERED" })), "messageId"),
        ];
        for (raw, expected) in cases {
            let error = one(&raw).unwrap_err().to_string();
            assert!(error.contains(expected), "{error}");
            assert!(!error.contains("4155550134"), "no number in an error: {error}");
        }
        // A Message that isn't JSON at all, or JSON with a lone surrogate (not UTF-8 text).
        for message in ["{not json", r#"{"messageBody": "\ud800", "inboundMessageId": "a"}"#] {
            let raw = serde_json::json!({ "Records": [{ "EventSource": "aws:sns",
                "Sns": { "TopicArn": INBOUND, "Message": message } }] })
            .to_string();
            assert!(matches!(one(&raw), Err(SnsRecordError::MalformedMessage(_))), "{message}");
        }
        assert!(!is_sns_event(r#"{"version": "2.0", "routeKey": "POST /sms/inbound"}"#));
        assert!(!is_sns_event(r#"{"Records": [{"EventSource": "aws:sqs"}]}"#));
        assert!(read_sns_event("[]", &topics(), Timestamp::now()).is_err());
    }

    #[test]
    fn a_record_that_fails_costs_only_itself() {
        let good = serde_json::json!({ "originationNumber": "+14155550134", "destinationNumber": "+14155550100",
            "messageBody": "hi", "inboundMessageId": "cae173d2-66b9-564c-8309-21f858e9fb84" });
        let raw = serde_json::json!({ "Records": [
            { "EventSource": "aws:sns", "Sns": { "TopicArn": INBOUND, "Message": "garbage" } },
            { "EventSource": "aws:sns", "Sns": { "TopicArn": INBOUND, "Message": good.to_string() } },
            { "EventSource": "aws:sns" },
        ] })
        .to_string();
        let records = read_sns_event(&raw, &topics(), Timestamp::now()).unwrap();
        assert!(records[0].is_err() && records[1].is_ok() && records[2].is_err());
    }

    #[test]
    fn a_clock_ahead_never_dates_a_text_in_the_future() {
        let message = serde_json::json!({ "originationNumber": "+14155550134", "destinationNumber": "+14155550100",
            "messageBody": "hi", "inboundMessageId": "cae173d2" });
        let now: Timestamp = "2026-12-06T09:00:00Z".parse().unwrap();
        let records = read_sns_event(&event(INBOUND, &message), &topics(), now).unwrap();
        let Ok(AwsSmsNotification::Inbound { sms, .. }) = &records[0] else { panic!() };
        assert_eq!(sms.received_at, now);
    }
}
