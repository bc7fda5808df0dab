//! AWS End User Messaging SMS, simulated (docs/aws-sms.md, docs/local-stack.md): the
//! `SendTextMessage` and `SendMediaMessage` API the worker sends an AWS line's texts and MMS
//! through (awsJson1_0, checked like
//! AWS checks it: `aws_sms_rules`, then the account: the origination identity, the
//! configuration set, the opt-out list), the delivery events its configuration set's event
//! destination publishes to SNS, and the customer's phone texting an AWS number: two-way SMS
//! publishes the text to SNS, after AWS's own keyword handling.
//!
//! SNS reaches the SMS webhook in process: the simulator builds the Lambda SNS event and hands
//! it to the subscriber `main` wires to `SmsWebhook::handle_sns`, the function the Lambda's
//! main calls. An invocation that fails is retried as Lambda retries an asynchronous
//! invocation (twice), sooner than Lambda does.
//!
//! AWS behaviour modelled, from AWS's documentation (read 2026-12-06):
//! - the event JSON and its types: End User Messaging SMS User Guide, "Example event data" and
//!   "Event types for SMS, MMS, and voice" (`TEXT_QUEUED`, then `TEXT_SUCCESSFUL` when the
//!   carrier took the message and `TEXT_DELIVERED` when the phone did, which only some
//!   countries report; a failure type otherwise; an MMS reports the same under `MEDIA_`
//!   names, and `MEDIA_FILE_INACCESSIBLE` when its file can't be read from S3);
//! - a customer's text: "Example of a two-way SMS message payload for Amazon SNS topics";
//! - keywords: "Required opt-out keywords" (ARRET, CANCEL, END, OPT-OUT, OPTOUT, QUIT, REMOVE,
//!   STOP, TD, UNSUBSCRIBE; the recipient then receives nothing more "from your AWS account"),
//!   "Keywords" (AWS answers a message that begins with HELP or STOP), and "Self-managed
//!   opt-outs" (only with that setting does AWS route HELP and STOP to the two-way SMS topic
//!   instead of answering them: by default the bridge never sees them);
//! - the SNS record Lambda receives: Lambda Developer Guide, "Invoking Lambda functions with
//!   Amazon SNS notifications"; retries: "Asynchronous invocation" (two more attempts).

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use shared::domain::{Line, SmsProviderKind};

use super::aws_sms_rules::{AwsError, SendKind, SendText, validate_send};
use super::world::{SmsRecord, now_string};
use super::{AwsSmsSettings, Simulator, SnsAnswer};

pub const AWS_SMS_PREFIX: &str = "/_sim/aws-sms";
const SEND_TEXT_MESSAGE: &str = "PinpointSMSVoiceV2.SendTextMessage";
const SEND_MEDIA_MESSAGE: &str = "PinpointSMSVoiceV2.SendMediaMessage";
const AWS_JSON_1_0: &str = "application/x-amz-json-1.0";
/// The simulated AWS account (moto's default) and its region.
pub const ACCOUNT_ID: &str = "123456789012";
pub const REGION: &str = "us-east-1";
/// The account's default opt-out list, shared by its numbers (the world keys opt-outs by it).
pub const OPT_OUT_LIST: &str = "aws:default-opt-out-list";

const OPT_OUT_KEYWORDS: [&str; 10] =
    ["ARRET", "CANCEL", "END", "OPT-OUT", "OPTOUT", "QUIT", "REMOVE", "STOP", "TD", "UNSUBSCRIBE"];
const HELP_KEYWORD: &str = "HELP";
/// AWS's answers to the keywords (customizable per number; these stand for the defaults).
const OPT_OUT_ANSWER: &str = "You have been unsubscribed and will receive no more messages from this number.";
const HELP_ANSWER: &str = "Reply STOP to unsubscribe. Msg&Data rates may apply.";

/// How long after the API call each event is published.
const QUEUED_AFTER: Duration = Duration::from_millis(100);
const CARRIER_AFTER: Duration = Duration::from_millis(300);
const HANDSET_AFTER: Duration = Duration::from_millis(600);
/// Lambda retries a failed asynchronous invocation twice, about a minute and two apart; the
/// local stack waits less.
const SNS_RETRIES: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(2)];

pub fn routes() -> Router<Simulator> {
    // The SDK posts to the endpoint's path; with or without the trailing slash.
    Router::new().route(AWS_SMS_PREFIX, post(api)).route(&format!("{AWS_SMS_PREFIX}/"), post(api))
}

fn error_response(error: &AwsError) -> Response {
    let status = StatusCode::from_u16(error.http_status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = (status, error.body().to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(AWS_JSON_1_0));
    headers.insert("x-amzn-errortype", HeaderValue::from_static(error.exception));
    response
}

/// `POST /` with the operation in `X-Amz-Target`.
async fn api(State(sim): State<Simulator>, headers: HeaderMap, body: Bytes) -> Response {
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let kind = match target {
        SEND_TEXT_MESSAGE => SendKind::Text,
        SEND_MEDIA_MESSAGE => SendKind::Media,
        _ => {
            let error = AwsError::new(400, "UnknownOperationException", format!("`{target}` is not simulated"));
            return error_response(&error);
        }
    };
    match accept(&sim, &headers, &body, kind) {
        Ok((message_id, send, line)) => {
            if !send.dry_run {
                // --late-answer-rate: sent and reported, but answered past the worker's timeout.
                let late = sim.answers_late();
                tokio::spawn(deliver(sim.clone(), message_id.clone(), send, line));
                if late {
                    println!("AWS SMS {message_id}: accepted, answering after {:?}", super::failures::LATE_ANSWER);
                    tokio::time::sleep(super::failures::LATE_ANSWER).await;
                }
            }
            let mut response = json!({ "MessageId": message_id }).to_string().into_response();
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(AWS_JSON_1_0));
            response
        }
        Err(error) => {
            let reason = error.members.get("Reason").and_then(Value::as_str).unwrap_or_default();
            println!("AWS SMS refused: {} {} {reason}", error.http_status, error.exception);
            error_response(&error)
        }
    }
}

/// AWS's checks in order: the request is signed (the simulator doesn't check the signature
/// itself: the credentials are local), its members are valid, the configuration set and the
/// origination identity exist in the account, and the destination isn't opted out.
fn accept(
    sim: &Simulator,
    headers: &HeaderMap,
    body: &[u8],
    kind: SendKind,
) -> Result<(String, SendText, Line), AwsError> {
    let signed = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|auth| auth.starts_with("AWS4-HMAC-SHA256 ") && auth.contains("/sms-voice/aws4_request"));
    if !signed {
        return Err(AwsError::new(403, "MissingAuthenticationToken", "Request is missing Authentication Token"));
    }
    let send = validate_send(body, kind)?;
    let settings = &sim.0.config.aws_sms;
    if let Some(set) = &send.configuration_set {
        let name = set.rsplit_once(":configuration-set/").map_or(set.as_str(), |(_, name)| name);
        if name != settings.configuration_set {
            return Err(AwsError::not_found("configuration-set", set));
        }
    }
    let Some(identity) = &send.identity else {
        // The simulated account has no default pool to pick a number from.
        return Err(AwsError::conflict(
            "NO_ORIGINATION_IDENTITIES_FOUND",
            "No origination identity was given or found",
        ));
    };
    let line = sim.aws_line_by_identity(identity).cloned().ok_or_else(|| {
        let resource = match identity.rsplit('/').next().unwrap_or(identity) {
            id if id.starts_with("pool-") => "pool",
            id if id.starts_with("senderid-") => "sender-id",
            _ => "phone-number",
        };
        AwsError::not_found(resource, identity)
    })?;
    if sim.fails_at_random() {
        return Err(if sim.coin() {
            AwsError::new(400, "ThrottlingException", "Rate exceeded (simulated --fail-rate)")
        } else {
            AwsError::new(500, "InternalServerException", "Internal failure (simulated --fail-rate)")
        });
    }
    if sim.world().is_opted_out(OPT_OUT_LIST, &send.destination) {
        return Err(AwsError::conflict(
            "DESTINATION_PHONE_NUMBER_OPTED_OUT",
            "The destination phone number is opted out of receiving messages",
        ));
    }

    let message_id = uuid::Uuid::new_v4().to_string();
    if send.dry_run {
        println!("AWS SMS {} (dry run): checked, not sent  ({message_id})", line.sms_number.as_str());
        return Ok((message_id, send, line));
    }
    let segments = shared::domain::sms_text::cost(&send.body).segments;
    sim.update(|world| {
        world.add_sms(SmsRecord {
            id: message_id.clone(),
            line: line.sms_number.as_str().to_owned(),
            customer: send.destination.clone(),
            direction: "out",
            body: send.body.clone(),
            at: now_string(),
            status: Some("queued".into()),
            sender: "bridge",
            segments: Some(segments),
            ..SmsRecord::default()
        })
    });
    let media_note = if send.media.is_empty() { String::new() } else { format!(" [+{} media]", send.media.len()) };
    println!(
        "AWS SMS {} → {}: {}{media_note}  ({message_id})",
        line.sms_number.as_str(),
        send.destination,
        send.body.replace('\n', "\n    ")
    );
    Ok((message_id, send, line))
}

/// What AWS reports after accepting: queued, then the carrier's answer, then (where the
/// carrier reports it) the phone's. An MMS's files are read from S3 first, as AWS reads them,
/// and shown on the customer's phone.
async fn deliver(sim: Simulator, message_id: String, send: SendText, line: Line) {
    let requested_at = jiff::Timestamp::now().as_millisecond();
    let prefix = match send.kind {
        SendKind::Text => "TEXT_",
        SendKind::Media => "MEDIA_",
    };
    let event = |status: &str, is_final: bool| DeliveryEvent {
        event_type: format!("{prefix}{status}"),
        is_final,
        message_id: &message_id,
        send: &send,
        from: line.sms_number.as_str(),
        requested_at,
    };
    tokio::time::sleep(QUEUED_AFTER).await;
    sim.report_aws_sms(event("QUEUED", false), "queued").await;
    if let Err(reason) = sim.receive_mms_files(&message_id, &send).await {
        println!("AWS SMS {message_id}: {reason}: MEDIA_FILE_INACCESSIBLE");
        sim.report_aws_sms(event("FILE_INACCESSIBLE", true), "undelivered").await;
        return;
    }
    tokio::time::sleep(CARRIER_AFTER).await;
    if let Some(code) = sim.0.config.failures.failing_code(&send.destination) {
        sim.report_aws_sms(event(failure_event(code), true), "undelivered").await;
        return;
    }
    sim.report_aws_sms(event("SUCCESSFUL", true), "delivered").await;
    // Handset receipts: North American carriers report them (the country decides, AWS says).
    if send.destination.starts_with("+1") {
        tokio::time::sleep(HANDSET_AFTER).await;
        sim.report_aws_sms(event("DELIVERED", true), "delivered").await;
    }
}

/// `--fail-number`'s Twilio code as the AWS event status that means the same (after
/// `TEXT_` or `MEDIA_`).
pub fn failure_event(twilio_code: i64) -> &'static str {
    match twilio_code {
        // Unreachable handset; blocked; unknown destination; landline or unreachable carrier;
        // carrier filtering; unknown error (Twilio's 3000x codes).
        30003 => "UNREACHABLE",
        30004 => "BLOCKED",
        30005 => "INVALID",
        30006 => "CARRIER_UNREACHABLE",
        30007 => "CARRIER_BLOCKED",
        30008 => "UNKNOWN",
        21610 => "BLOCKED",
        30032 | 21614 | 21211 => "INVALID",
        _ => "UNKNOWN",
    }
}

struct DeliveryEvent<'a> {
    event_type: String,
    is_final: bool,
    message_id: &'a str,
    send: &'a SendText,
    /// The number the message went out from (the line's, whichever identity named it).
    from: &'a str,
    requested_at: i64,
}

impl DeliveryEvent<'_> {
    /// The event's JSON as the configuration set's event destination publishes it.
    fn json(&self) -> Value {
        let cost = shared::domain::sms_text::cost(&self.send.body);
        let encoding = match cost.encoding {
            shared::domain::sms_text::SmsEncoding::Gsm7 => "GSM",
            shared::domain::sms_text::SmsEncoding::Ucs2 => "UCS2",
        };
        let status = self.event_type.trim_start_matches("TEXT_").trim_start_matches("MEDIA_");
        let description = match status {
            "QUEUED" => "Message is queued for delivery",
            "SUCCESSFUL" => "Message has been accepted by phone carrier",
            "DELIVERED" => "Message has been accepted by phone",
            "FILE_INACCESSIBLE" => "The media file could not be read from its S3 bucket",
            _ => "Message could not be delivered (simulated --fail-number)",
        };
        let mut event = json!({
            "eventType": self.event_type,
            "eventVersion": "1.0",
            "eventTimestamp": jiff::Timestamp::now().as_millisecond(),
            "isFinal": self.is_final,
            "originationPhoneNumber": self.from,
            "destinationPhoneNumber": self.send.destination,
            "isoCountryCode": if self.send.destination.starts_with("+1") { "US" } else { "ZZ" },
            "isInternationalSend": false,
            "mcc": "310",
            "mnc": "800",
            "messageId": self.message_id,
            "messageRequestTimestamp": self.requested_at,
            "messageEncoding": encoding,
            "messageType": self.send.message_type.as_deref().unwrap_or("TRANSACTIONAL"),
            "messageStatus": status,
            "messageStatusDescription": description,
            "totalMessageParts": cost.segments.max(1),
            "totalMessagePrice": 0.00581 * cost.segments.max(1) as f64,
            "totalCarrierFee": 0.003,
        });
        if !self.send.context.is_empty() {
            event["context"] = json!(self.send.context);
        }
        event
    }
}

impl Simulator {
    /// The AWS line `identity` names: its number, its phone number id, or that id's ARN.
    fn aws_line_by_identity(&self, identity: &str) -> Option<&Line> {
        let arn_id = identity
            .strip_prefix("arn:aws:sms-voice:")
            .and_then(|rest| rest.split_once(':'))
            .and_then(|(_region, rest)| rest.strip_prefix(&format!("{ACCOUNT_ID}:phone-number/")));
        self.lines().filter(|l| l.sms_provider == SmsProviderKind::AwsEndUserMessaging).find(|line| {
            let configured = line.aws_origination_identity.as_ref().map(|i| i.as_str());
            identity == line.sms_number.as_str()
                || Some(identity) == configured
                || (arn_id.is_some() && arn_id == configured)
        })
    }

    /// An MMS's files, read from S3 as AWS reads them, onto the customer's phone. A text has
    /// none; a file that can't be read is why the MMS fails.
    async fn receive_mms_files(&self, message_id: &str, send: &SendText) -> Result<(), String> {
        if send.media.is_empty() {
            return Ok(());
        }
        let Some(s3) = self.0.config.aws_sms.s3.clone() else {
            return Err("no S3 to read the media from".into());
        };
        let mut media = Vec::with_capacity(send.media.len());
        for (n, (bucket, key)) in send.media.iter().enumerate() {
            let object = s3.get_object().bucket(bucket).key(key).send().await.map_err(|e| {
                format!("s3://{bucket}/{key} could not be read ({})", aws_sdk_s3::error::DisplayErrorContext(&e))
            })?;
            let content_type = object.content_type().unwrap_or("application/octet-stream").to_owned();
            let bytes = object.body.collect().await.map_err(|e| e.to_string())?.into_bytes().to_vec();
            let blob = super::world::Blob { content_type, name: None, bytes };
            media.push(self.keep_blob(&format!("{message_id}-{n}"), blob, None));
        }
        self.update(|world| {
            if let Some(record) = world.sms_mut(message_id) {
                record.media = media;
            }
        });
        Ok(())
    }

    /// Records the event on the customer's phone and publishes it to the events topic.
    async fn report_aws_sms(&self, event: DeliveryEvent<'_>, status: &str) {
        self.update(|world| {
            if let Some(record) = world.sms_mut(event.message_id) {
                record.status = Some(status.to_owned());
                record.event_type = Some(event.event_type.to_owned());
            }
        });
        let settings = &self.0.config.aws_sms;
        let answer = self.publish_sns(&settings.events_topic, &event.json()).await;
        println!("AWS SMS {}: {} → SNS: {answer}", event.message_id, event.event_type);
    }

    /// Publishes `message` to `topic` and hands the SNS event to the subscribed SMS webhook,
    /// trying again when the invocation fails, as Lambda does.
    pub(super) async fn publish_sns(&self, topic: &str, message: &Value) -> SnsAnswer {
        let Some(subscriber) = self.0.config.aws_sms.subscriber.clone() else {
            return SnsAnswer::Failed("no SMS webhook is subscribed to the topic".into());
        };
        let event = sns_event(topic, message);
        let mut answer = subscriber(event.clone()).await;
        for pause in SNS_RETRIES {
            if !matches!(answer, SnsAnswer::Failed(_)) {
                break;
            }
            tokio::time::sleep(pause).await;
            answer = subscriber(event.clone()).await;
        }
        self.touch();
        answer
    }
}

/// One SNS notification as Lambda receives it: an event with one record.
fn sns_event(topic: &str, message: &Value) -> String {
    let now = jiff::Timestamp::now();
    let timestamp = jiff::Timestamp::from_millisecond(now.as_millisecond()).unwrap_or(now);
    json!({
        "Records": [{
            "EventSource": "aws:sns",
            "EventVersion": "1.0",
            "EventSubscriptionArn": format!("{topic}:{}", uuid::Uuid::new_v4()),
            "Sns": {
                "Type": "Notification",
                "MessageId": uuid::Uuid::new_v4().to_string(),
                "TopicArn": topic,
                "Subject": null,
                "Message": message.to_string(),
                "Timestamp": timestamp.to_string(),
                "SignatureVersion": "1",
                "Signature": "c2ltdWxhdGVk",
                "SigningCertUrl": format!("https://sns.{REGION}.amazonaws.com/SimpleNotificationService-local.pem"),
                "UnsubscribeUrl": format!("https://sns.{REGION}.amazonaws.com/?Action=Unsubscribe"),
                "MessageAttributes": {},
            }
        }]
    })
    .to_string()
}

/// What became of a customer's text to an AWS number.
pub struct CustomerText {
    pub id: String,
    /// What the SMS webhook's SNS handler made of it; `None` when AWS answered a keyword
    /// itself and published nothing.
    pub answer: Option<SnsAnswer>,
}

/// The customer's phone texts an AWS line's number: AWS answers HELP and the opt-out keywords
/// itself (unless the number has self-managed opt-outs), and two-way SMS publishes anything
/// else to the inbound topic, which the SMS webhook takes.
pub async fn customer_texts(sim: &Simulator, from: &str, line: &Line, text: &str) -> CustomerText {
    let id = uuid::Uuid::new_v4().to_string();
    let number = line.sms_number.as_str().to_owned();
    // The message the customer answers: the last one the line sent them.
    let previous = sim
        .world()
        .sms
        .iter()
        .rev()
        .find(|m| m.direction == "out" && m.sender == "bridge" && m.line == number && m.customer == from)
        .map(|m| m.id.clone());
    sim.update(|world| {
        world.add_sms(SmsRecord {
            id: id.clone(),
            line: number.clone(),
            customer: from.to_owned(),
            direction: "in",
            body: text.to_owned(),
            at: now_string(),
            status: Some("received".into()),
            sender: "customer",
            ..SmsRecord::default()
        })
    });
    let keyword = first_word_keyword(text);
    let settings: &AwsSmsSettings = &sim.0.config.aws_sms;
    if !settings.self_managed_opt_outs {
        let answered = if OPT_OUT_KEYWORDS.contains(&keyword.as_str()) {
            sim.update(|world| world.set_opted_out(OPT_OUT_LIST, from, true));
            Some(OPT_OUT_ANSWER)
        } else if keyword == HELP_KEYWORD {
            Some(HELP_ANSWER)
        } else {
            None
        };
        if let Some(answer) = answered {
            sim.update(|world| {
                if let Some(record) = world.sms_mut(&id) {
                    record.note = Some("answered by AWS: not published to SNS".into());
                }
                world.add_sms(SmsRecord {
                    id: uuid::Uuid::new_v4().to_string(),
                    line: number.clone(),
                    customer: from.to_owned(),
                    direction: "out",
                    body: answer.to_owned(),
                    at: now_string(),
                    status: Some("delivered".into()),
                    sender: "aws",
                    segments: Some(shared::domain::sms_text::cost(answer).segments),
                    ..SmsRecord::default()
                });
            });
            println!("customer {from} → {number}: {text}  ({id}, {keyword} answered by AWS, not published)");
            return CustomerText { id, answer: None };
        }
    }
    let is_keyword = OPT_OUT_KEYWORDS.contains(&keyword.as_str()) || keyword == HELP_KEYWORD;
    let mut payload = json!({
        "originationNumber": from,
        "destinationNumber": number,
        "messageKeyword": if is_keyword { keyword.clone() } else { format!("KEYWORD_{ACCOUNT_ID}") },
        "messageBody": text,
        "inboundMessageId": id,
    });
    if let Some(previous) = previous {
        payload["previousPublishedMessageId"] = json!(previous);
    }
    let answer = sim.publish_sns(&settings.inbound_topic, &payload).await;
    sim.update(|world| {
        if let Some(record) = world.sms_mut(&id) {
            record.webhook_status = Some(answer.as_status());
        }
    });
    println!("customer {from} → {number}: {}  ({id}, SNS: {answer})", text.replace('\n', "\n    "));
    CustomerText { id, answer: Some(answer) }
}

/// The text's first word in capitals, without the punctuation around it: what AWS matches
/// keywords against ("a message that begins with HELP or STOP").
fn first_word_keyword(text: &str) -> String {
    let word = text.split_whitespace().next().unwrap_or_default();
    word.trim_matches(|c: char| c.is_ascii_punctuation() && c != '-').to_uppercase()
}

/// What the page shows of the simulated account.
pub fn account_summary(settings: &AwsSmsSettings) -> Value {
    json!({
        "configuration_set": settings.configuration_set,
        "inbound_topic": settings.inbound_topic,
        "events_topic": settings.events_topic,
        "self_managed_opt_outs": settings.self_managed_opt_outs,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn send(destination: &str, body: &str) -> SendText {
        SendText {
            destination: destination.into(),
            identity: Some("phone-1".into()),
            body: body.into(),
            message_type: Some("TRANSACTIONAL".into()),
            configuration_set: Some("bridge-sms".into()),
            context: BTreeMap::from([("job".to_owned(), "j-1".to_owned())]),
            time_to_live: None,
            dry_run: false,
            kind: SendKind::Text,
            media: Vec::new(),
        }
    }

    #[test]
    fn a_delivery_event_has_the_documented_fields_and_echoes_the_context() {
        let send = send("+14155550134", "Hi 😀");
        let event = DeliveryEvent {
            event_type: "TEXT_SUCCESSFUL".into(),
            is_final: true,
            message_id: "m-1",
            send: &send,
            from: "+14155550200",
            requested_at: 1,
        }
        .json();
        assert_eq!(event["messageStatus"], "SUCCESSFUL");
        assert_eq!(event["context"]["job"], "j-1");
        assert_eq!((event["messageEncoding"].as_str(), event["isFinal"].as_bool()), (Some("UCS2"), Some(true)));
        assert_eq!(event["originationPhoneNumber"], "+14155550200");
    }

    #[test]
    fn an_sns_event_carries_the_message_as_a_string_from_its_topic() {
        let event: Value =
            serde_json::from_str(&sns_event("arn:aws:sns:us-east-1:123456789012:t", &json!({"a": 1}))).unwrap();
        let record = &event["Records"][0];
        assert_eq!(record["EventSource"], "aws:sns");
        assert_eq!(record["Sns"]["TopicArn"], "arn:aws:sns:us-east-1:123456789012:t");
        assert_eq!(record["Sns"]["Message"], r#"{"a":1}"#);
        assert!(record["Sns"]["Timestamp"].as_str().unwrap().parse::<jiff::Timestamp>().is_ok());
    }

    #[test]
    fn keywords_are_the_first_word_in_capitals() {
        assert_eq!(first_word_keyword("stop!"), "STOP");
        assert_eq!(first_word_keyword("  Opt-Out please"), "OPT-OUT");
        assert_eq!(first_word_keyword("Is my order ready? STOP"), "IS");
        assert_eq!(first_word_keyword(""), "");
    }

    #[test]
    fn twilio_failure_codes_become_the_aws_event_that_means_the_same() {
        assert_eq!(failure_event(30006), "CARRIER_UNREACHABLE");
        assert_eq!(failure_event(30003), "UNREACHABLE");
        assert_eq!(failure_event(12345), "UNKNOWN");
    }
}
