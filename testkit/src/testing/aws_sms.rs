//! A fake of AWS End User Messaging SMS's API, and the SNS events it publishes, for tests
//! over the wire (docs/aws-sms.md).
//!
//! The API is awsJson1_0 (the service model's protocol in `aws-sdk-pinpointsmsvoicev2`
//! 1.134): `POST /`, `Content-Type: application/x-amz-json-1.0`, the operation in
//! `X-Amz-Target: PinpointSMSVoiceV2.<Operation>`, a JSON body with the input's member names
//! (`OriginationIdentity`, `DestinationPhoneNumber`, `MessageBody`, `ConfigurationSetName`,
//! `Context`...), and errors as a JSON body naming the exception in `__type`. The SDK reaches
//! it through `AWS_ENDPOINT_URL_PINPOINT_SMS_VOICE_V2`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub const SEND_TEXT_MESSAGE: &str = "PinpointSMSVoiceV2.SendTextMessage";
pub const SEND_MEDIA_MESSAGE: &str = "PinpointSMSVoiceV2.SendMediaMessage";
/// The test deployment's configuration set and SNS topics.
pub const CONFIGURATION_SET: &str = "bridge-sms";
pub const INBOUND_TOPIC_ARN: &str = "arn:aws:sns:us-east-1:111122223333:bridge-sms-inbound";
pub const EVENTS_TOPIC_ARN: &str = "arn:aws:sns:us-east-1:111122223333:bridge-sms-events";
/// The test line's phone number id at AWS.
pub const ORIGINATION_IDENTITY: &str = "phone-0123456789abcdef0123456789abcdef";

/// Mounted below a test's own answers (wiremock: the lower priority number wins).
const DEFAULT_ANSWER_PRIORITY: u8 = 10;

pub struct FakeAwsSms {
    pub server: MockServer,
}

impl FakeAwsSms {
    /// Accepts every `SendTextMessage` and `SendMediaMessage` with a new `MessageId` (one
    /// numbering for both).
    pub async fn start() -> Self {
        let server = MockServer::start().await;
        let accepts = AwsSmsAccepts::default();
        for target in [SEND_TEXT_MESSAGE, SEND_MEDIA_MESSAGE] {
            Mock::given(method("POST"))
                .and(path("/"))
                .and(header("x-amz-target", target))
                .respond_with(AwsSmsAccepts { count: accepts.count.clone() })
                .with_priority(DEFAULT_ANSWER_PRIORITY)
                .mount(&server)
                .await;
        }
        Self { server }
    }

    /// `AWS_ENDPOINT_URL_PINPOINT_SMS_VOICE_V2` pointing here.
    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// The next `times` sends are refused with `exception` (`ConflictException`...) and its
    /// `Reason` and `Fields`, as AWS answers.
    pub async fn refuse(&self, status: u16, exception: &str, reason: Option<&str>, fields: &[&str], times: u64) {
        let mut body = json!({ "__type": exception, "Message": "refused for a test" });
        if let Some(reason) = reason {
            body["Reason"] = json!(reason);
        }
        if !fields.is_empty() {
            body["Fields"] = fields.iter().map(|name| json!({ "Name": name, "Message": "invalid" })).collect();
        }
        Mock::given(method("POST"))
            .and(header("x-amz-target", SEND_TEXT_MESSAGE))
            .respond_with(
                ResponseTemplate::new(status)
                    .insert_header("content-type", "application/x-amz-json-1.0")
                    .insert_header("x-amzn-errortype", exception)
                    .set_body_json(body),
            )
            .up_to_n_times(times)
            .with_priority(DEFAULT_ANSWER_PRIORITY - 1)
            .mount(&self.server)
            .await;
    }

    /// Every `SendTextMessage` request's JSON body, in order (refused ones included).
    pub async fn sends(&self) -> Vec<Value> {
        let requests = self.server.received_requests().await.unwrap_or_default();
        requests
            .iter()
            .filter(|r| r.headers.get("x-amz-target").is_some_and(|t| t == SEND_TEXT_MESSAGE))
            .map(|r| serde_json::from_slice(&r.body).expect("a JSON body"))
            .collect()
    }

    /// Every `SendMediaMessage` request's JSON body, in order.
    pub async fn media_sends(&self) -> Vec<Value> {
        let requests = self.server.received_requests().await.unwrap_or_default();
        requests
            .iter()
            .filter(|r| r.headers.get("x-amz-target").is_some_and(|t| t == SEND_MEDIA_MESSAGE))
            .map(|r| serde_json::from_slice(&r.body).expect("a JSON body"))
            .collect()
    }

    /// Every request, for checks on the protocol (headers).
    pub async fn requests(&self) -> Vec<Request> {
        self.server.received_requests().await.unwrap_or_default()
    }
}

/// AWS's answer to a send: `200` with `{"MessageId": ...}`, a new id each time.
#[derive(Default)]
pub struct AwsSmsAccepts {
    count: Arc<AtomicUsize>,
}

impl Respond for AwsSmsAccepts {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let n = self.count.fetch_add(1, Ordering::SeqCst);
        ResponseTemplate::new(200)
            .insert_header("content-type", "application/x-amz-json-1.0")
            .set_body_json(json!({ "MessageId": format!("a0a0a0a0-0000-4000-8000-{n:012}") }))
    }
}

/// The `MessageId` the fake gave its `n`th accepted send (from 0).
pub fn message_id(n: usize) -> String {
    format!("a0a0a0a0-0000-4000-8000-{n:012}")
}

/// An SNS event carrying `messages` (one record each) from `topic`, as Lambda receives it
/// (AWS Lambda Developer Guide, "Invoking Lambda functions with Amazon SNS notifications").
pub fn sns_event(topic: &str, messages: &[Value]) -> String {
    let records: Vec<Value> = messages
        .iter()
        .map(|message| {
            json!({
                "EventVersion": "1.0",
                "EventSubscriptionArn": format!("{topic}:2bcfbf39-05c3-41de-beaa-fcfcc21c8f55"),
                "EventSource": "aws:sns",
                "Sns": {
                    "SignatureVersion": "1",
                    "Timestamp": jiff::Timestamp::now().to_string(),
                    "Signature": "EXAMPLE",
                    "SigningCertUrl": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem",
                    "MessageId": uuid::Uuid::new_v4().to_string(),
                    "Message": message.to_string(),
                    "MessageAttributes": {},
                    "Type": "Notification",
                    "UnsubscribeUrl": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
                    "TopicArn": topic,
                    "Subject": null
                }
            })
        })
        .collect();
    json!({ "Records": records }).to_string()
}

/// A customer's text as two-way SMS publishes it (AWS End User Messaging SMS User Guide,
/// "Example of a two-way SMS message payload for Amazon SNS topics").
pub fn inbound_text(from: &str, to: &str, body: &str, inbound_message_id: &str) -> Value {
    json!({
        "originationNumber": from,
        "destinationNumber": to,
        "messageKeyword": "KEYWORD_111122223333",
        "messageBody": body,
        "inboundMessageId": inbound_message_id,
        "previousPublishedMessageId": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    })
}

/// A delivery event as the configuration set's event destination publishes it (AWS End
/// User Messaging User Guide, "Messaging Events"), `context` as the send gave it.
pub fn delivery_event(
    event_type: &str,
    is_final: bool,
    message_id: &str,
    from: &str,
    to: &str,
    context: Option<Value>,
) -> Value {
    let status = event_type.trim_start_matches("TEXT_");
    let mut event = json!({
        "eventType": event_type,
        "eventVersion": "1.0",
        "eventTimestamp": jiff::Timestamp::now().as_millisecond(),
        "isFinal": is_final,
        "originationPhoneNumber": from,
        "destinationPhoneNumber": to,
        "isInternationalSend": false,
        "mcc": "310",
        "mnc": "800",
        "messageId": message_id,
        "messageRequestTimestamp": jiff::Timestamp::now().as_millisecond(),
        "messageEncoding": "GSM",
        "messageType": "TRANSACTIONAL",
        "messageStatus": status,
        "messageStatusDescription": "for a test",
        "totalMessageParts": 1,
        "totalMessagePrice": 0.00581,
        "totalCarrierFee": 0.003
    });
    if let Some(context) = context {
        event["context"] = context;
    }
    event
}
