//! Validation of AWS End User Messaging SMS `SendTextMessage` and `SendMediaMessage`
//! requests, and AWS's error shape.
//!
//! Pure functions only (no I/O). [`validate_send`] takes the request's JSON body and either
//! returns the send as the simulator records it ([`SendText`]) or the error AWS would answer
//! ([`AwsError`]).
//!
//! Written from AWS's documentation, not from the bridge (read 2026-12-06): the API reference
//! page "SendTextMessage" (`docs.aws.amazon.com/pinpoint/latest/apireference_smsvoicev2/
//! API_SendTextMessage.html`: members, length constraints and patterns), its "Errors" section
//! and the exception shapes (`ValidationException` with `Reason` and `Fields[{Name, Message}]`,
//! `ConflictException` and `ResourceNotFoundException` with `Reason`/`ResourceType`/
//! `ResourceId`), and the awsJson1_0 protocol (an error is a JSON body naming its exception in
//! `__type`, also in the `x-amzn-ErrorType` header).
//!
//! Checks run in this order and the first failure is answered: the body parses as a JSON
//! object with members of the right types (`SerializationException`), then
//! `DestinationPhoneNumber`, `OriginationIdentity`, `MessageBody`, `MessageType`,
//! `ConfigurationSetName`, `Context`, `TimeToLive` (`ValidationException`, `MISSING_PARAMETER`
//! or `FIELD_VALIDATION_FAILED` naming the field). What needs the account (does the identity
//! exist, is the destination opted out) is checked by the simulator after these.
//!
//! `SendMediaMessage` (its API reference page, read 2026-12-06) takes the same members, with
//! `MessageBody` optional and `MediaUrls`: the files, which "have to be stored in an S3
//! bucket", so each must be an `s3://bucket/key` URL.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

/// `MessageBody`: length 1 to 1600.
pub const BODY_MAX: usize = 1600;
/// `TimeToLive`: 5 to 259200 seconds.
pub const TTL_RANGE: std::ops::RangeInclusive<i64> = 5..=259_200;
/// `Context`: at most 5 entries; keys 1–100 characters, values 1–800.
pub const CONTEXT_MAX_ENTRIES: usize = 5;
const CONTEXT_KEY_MAX: usize = 100;
const CONTEXT_VALUE_MAX: usize = 800;

/// A send AWS would take (before the account's checks), as the simulator records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendText {
    pub kind: SendKind,
    pub destination: String,
    pub identity: Option<String>,
    pub body: String,
    pub message_type: Option<String>,
    pub configuration_set: Option<String>,
    pub context: BTreeMap<String, String>,
    pub time_to_live: Option<i64>,
    /// `DryRun`: checked, answered, never sent.
    pub dry_run: bool,
    /// `SendMediaMessage`'s files, as `(bucket, key)`.
    pub media: Vec<(String, String)>,
}

/// Which operation the request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendKind {
    Text,
    Media,
}

/// An error as AWS answers it over awsJson1_0.
#[derive(Debug, Clone, PartialEq)]
pub struct AwsError {
    pub http_status: u16,
    /// The exception's name: `ValidationException`, `ConflictException`...
    pub exception: &'static str,
    pub message: String,
    /// The exception's own members (`Reason`, `Fields`, `ResourceType`, `ResourceId`).
    pub members: Map<String, Value>,
}

impl AwsError {
    pub fn new(http_status: u16, exception: &'static str, message: impl Into<String>) -> Self {
        Self { http_status, exception, message: message.into(), members: Map::new() }
    }

    pub fn with(mut self, member: &str, value: impl Into<Value>) -> Self {
        self.members.insert(member.to_owned(), value.into());
        self
    }

    /// The JSON body: `__type`, `Message` and the exception's members.
    pub fn body(&self) -> Value {
        let mut body = self.members.clone();
        body.insert("__type".into(), json!(self.exception));
        body.insert("Message".into(), json!(self.message));
        Value::Object(body)
    }

    /// `ValidationException` naming one field.
    pub fn validation(reason: &str, field: &str, message: &str) -> Self {
        Self::new(400, "ValidationException", format!("{field}: {message}"))
            .with("Reason", reason)
            .with("Fields", json!([{ "Name": field, "Message": message }]))
    }

    /// `ConflictException` with its reason (`DESTINATION_PHONE_NUMBER_OPTED_OUT`...).
    pub fn conflict(reason: &str, message: &str) -> Self {
        Self::new(400, "ConflictException", message).with("Reason", reason)
    }

    /// `ResourceNotFoundException` for a resource of `resource_type` (`phone-number`,
    /// `configuration-set`...).
    pub fn not_found(resource_type: &str, resource_id: &str) -> Self {
        Self::new(400, "ResourceNotFoundException", format!("The {resource_type} {resource_id} was not found"))
            .with("ResourceType", resource_type)
            .with("ResourceId", resource_id)
    }
}

fn serialization(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "SerializationException", message)
}

fn missing(field: &str) -> AwsError {
    AwsError::validation("MISSING_PARAMETER", field, "is required")
}

fn invalid(field: &str, message: &str) -> AwsError {
    AwsError::validation("FIELD_VALIDATION_FAILED", field, message)
}

/// A string member, or a `SerializationException` when it has another type.
fn string_member(object: &Map<String, Value>, name: &str) -> Result<Option<String>, AwsError> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(serialization(format!("{name}: expected a string"))),
    }
}

/// `\+?[1-9][0-9]{1,18}`, length 1 to 20.
fn is_destination_number(s: &str) -> bool {
    let digits = s.strip_prefix('+').unwrap_or(s);
    (2..=19).contains(&digits.len()) && !digits.starts_with('0') && digits.bytes().all(|b| b.is_ascii_digit())
}

/// `[A-Za-z0-9_:/\+-]+`, length 1 to 256.
fn is_identity(s: &str) -> bool {
    (1..=256).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_:/+-".contains(&b))
}

/// `[A-Za-z0-9_:/-]+`, length 1 to 256.
fn is_configuration_set(s: &str) -> bool {
    (1..=256).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_:/-".contains(&b))
}

pub fn validate_send(body: &[u8], kind: SendKind) -> Result<SendText, AwsError> {
    let request: Value = serde_json::from_slice(body).map_err(|e| serialization(format!("cannot parse: {e}")))?;
    let Value::Object(object) = request else { return Err(serialization("the body must be a JSON object")) };

    let destination =
        string_member(&object, "DestinationPhoneNumber")?.ok_or_else(|| missing("DestinationPhoneNumber"))?;
    if !is_destination_number(&destination) {
        return Err(invalid("DestinationPhoneNumber", "must be a phone number in E.164 format"));
    }
    let identity = string_member(&object, "OriginationIdentity")?;
    if identity.as_deref().is_some_and(|i| !is_identity(i)) {
        return Err(invalid("OriginationIdentity", "must match [A-Za-z0-9_:/+-]+ (1 to 256 characters)"));
    }
    let message_body = match (string_member(&object, "MessageBody")?, kind) {
        (Some(body), _) => body,
        (None, SendKind::Media) => String::new(),
        (None, SendKind::Text) => return Err(missing("MessageBody")),
    };
    if (kind == SendKind::Text && message_body.is_empty()) || message_body.chars().count() > BODY_MAX {
        return Err(invalid("MessageBody", "must be 1 to 1600 characters"));
    }
    let media = match kind {
        SendKind::Text => Vec::new(),
        SendKind::Media => media_urls(&object)?,
    };
    let message_type = string_member(&object, "MessageType")?;
    if message_type.as_deref().is_some_and(|t| t != "TRANSACTIONAL" && t != "PROMOTIONAL") {
        return Err(invalid("MessageType", "must be TRANSACTIONAL or PROMOTIONAL"));
    }
    let configuration_set = string_member(&object, "ConfigurationSetName")?;
    if configuration_set.as_deref().is_some_and(|c| !is_configuration_set(c)) {
        return Err(invalid("ConfigurationSetName", "must match [A-Za-z0-9_:/-]+ (1 to 256 characters)"));
    }
    let context = match object.get("Context") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(entries)) => {
            let mut context = BTreeMap::new();
            for (key, value) in entries {
                let Value::String(value) = value else { return Err(serialization("Context: values must be strings")) };
                context.insert(key.clone(), value.clone());
            }
            context
        }
        Some(_) => return Err(serialization("Context: expected a map of strings")),
    };
    if context.len() > CONTEXT_MAX_ENTRIES {
        return Err(invalid("Context", "at most 5 entries"));
    }
    for (key, value) in &context {
        if key.is_empty() || key.chars().count() > CONTEXT_KEY_MAX || key.chars().any(char::is_whitespace) {
            return Err(invalid("Context", "keys must be 1 to 100 characters without spaces"));
        }
        let trimmed = value.trim() == value;
        if value.is_empty() || value.chars().count() > CONTEXT_VALUE_MAX || !trimmed {
            return Err(invalid("Context", "values must be 1 to 800 characters, not starting or ending with a space"));
        }
    }
    let time_to_live = match object.get("TimeToLive") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(n.as_i64().ok_or_else(|| serialization("TimeToLive: expected an integer"))?),
        Some(_) => return Err(serialization("TimeToLive: expected an integer")),
    };
    if time_to_live.is_some_and(|ttl| !TTL_RANGE.contains(&ttl)) {
        return Err(invalid("TimeToLive", "must be 5 to 259200 seconds"));
    }
    let dry_run = match object.get("DryRun") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(serialization("DryRun: expected a boolean")),
    };
    Ok(SendText {
        kind,
        destination,
        identity,
        body: message_body,
        message_type,
        configuration_set,
        context,
        time_to_live,
        dry_run,
        media,
    })
}

/// `MediaUrls`: at least one file, each in S3.
fn media_urls(object: &Map<String, Value>) -> Result<Vec<(String, String)>, AwsError> {
    let urls = match object.get("MediaUrls") {
        None | Some(Value::Null) => return Err(missing("MediaUrls")),
        Some(Value::Array(urls)) => urls,
        Some(_) => return Err(serialization("MediaUrls: expected a list of strings")),
    };
    if urls.is_empty() {
        return Err(missing("MediaUrls"));
    }
    urls.iter()
        .map(|url| {
            let Value::String(url) = url else { return Err(serialization("MediaUrls: expected a list of strings")) };
            url.strip_prefix("s3://")
                .and_then(|rest| rest.split_once('/'))
                .filter(|(bucket, key)| !bucket.is_empty() && !key.is_empty())
                .map(|(bucket, key)| (bucket.to_owned(), key.to_owned()))
                .ok_or_else(|| invalid("MediaUrls", "each must be an s3://bucket/key URL"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(members: Value) -> Result<SendText, AwsError> {
        validate_send(members.to_string().as_bytes(), SendKind::Text)
    }

    fn media(members: Value) -> Result<SendText, AwsError> {
        validate_send(members.to_string().as_bytes(), SendKind::Media)
    }

    fn good() -> Value {
        json!({
            "DestinationPhoneNumber": "+14155550134", "OriginationIdentity": "phone-0123abcd",
            "MessageBody": "Hi", "MessageType": "TRANSACTIONAL", "ConfigurationSetName": "bridge-sms",
            "Context": { "job": "j-1" },
        })
    }

    fn with(member: &str, value: Value) -> Value {
        let mut request = good();
        request[member] = value;
        request
    }

    fn refusal(request: Value) -> (&'static str, Option<String>, Option<String>) {
        let error = send(request).unwrap_err();
        let reason = error.members.get("Reason").and_then(Value::as_str).map(str::to_owned);
        let field = error.members.get("Fields").and_then(|f| f[0]["Name"].as_str()).map(str::to_owned);
        (error.exception, reason, field)
    }

    #[test]
    fn a_well_formed_send_is_taken_as_given() {
        let taken = send(good()).unwrap();
        assert_eq!(taken.destination, "+14155550134");
        assert_eq!(taken.identity.as_deref(), Some("phone-0123abcd"));
        assert_eq!(taken.context.get("job").map(String::as_str), Some("j-1"));
        assert!(!taken.dry_run);
        let arn = with("OriginationIdentity", json!("arn:aws:sms-voice:us-east-1:123456789012:phone-number/phone-1"));
        assert!(send(arn).is_ok());
    }

    #[test]
    fn each_rule_names_its_field_and_reason() {
        let missing = |field: &str| {
            let mut request = good();
            request.as_object_mut().unwrap().remove(field);
            refusal(request)
        };
        let v = "ValidationException";
        let (missing_p, failed) = (Some("MISSING_PARAMETER".to_owned()), Some("FIELD_VALIDATION_FAILED".to_owned()));
        let field = |f: &str| Some(f.to_owned());
        assert_eq!(missing("DestinationPhoneNumber"), (v, missing_p.clone(), field("DestinationPhoneNumber")));
        assert_eq!(missing("MessageBody"), (v, missing_p, field("MessageBody")));
        let cases = [
            ("DestinationPhoneNumber", json!("0415555"), "DestinationPhoneNumber"),
            ("DestinationPhoneNumber", json!("+1 415 555 0134"), "DestinationPhoneNumber"),
            ("OriginationIdentity", json!("phone 1"), "OriginationIdentity"),
            ("MessageBody", json!(""), "MessageBody"),
            ("MessageBody", json!("x".repeat(1601)), "MessageBody"),
            ("MessageType", json!("URGENT"), "MessageType"),
            ("ConfigurationSetName", json!("bridge sms"), "ConfigurationSetName"),
            ("Context", json!({ "a": "1", "b": "2", "c": "3", "d": "4", "e": "5", "f": "6" }), "Context"),
            ("Context", json!({ "job": " padded" }), "Context"),
            ("TimeToLive", json!(4), "TimeToLive"),
        ];
        for (member, value, expected) in cases {
            assert_eq!(refusal(with(member, value.clone())), (v, failed.clone(), field(expected)), "{member} {value}");
        }
        assert!(send(with("MessageBody", json!("é".repeat(1600)))).is_ok(), "characters, not bytes");
    }

    #[test]
    fn a_body_that_is_not_the_operations_json_is_a_serialization_error() {
        for body in [&b"not json"[..], b"[]", br#"{"DestinationPhoneNumber": 14155550134}"#] {
            assert_eq!(validate_send(body, SendKind::Text).unwrap_err().exception, "SerializationException");
        }
        assert_eq!(refusal(with("Context", json!({ "job": 1 }))).0, "SerializationException");
    }

    #[test]
    fn a_media_send_names_its_files_in_s3_and_may_have_no_text() {
        let mut request = with("MediaUrls", json!(["s3://bridge-mms/mms/j-1/0"]));
        request.as_object_mut().unwrap().remove("MessageBody");
        let taken = media(request.clone()).unwrap();
        assert_eq!((taken.kind, taken.body.as_str()), (SendKind::Media, ""));
        assert_eq!(taken.media, [("bridge-mms".to_owned(), "mms/j-1/0".to_owned())]);
        assert_eq!(refusal(request.clone()).1.as_deref(), Some("MISSING_PARAMETER"), "a text needs its body");

        let (v, failed) = ("ValidationException", Some("FIELD_VALIDATION_FAILED".to_owned()));
        for urls in [json!(["https://example.com/a.png"]), json!(["s3://bucket-only"]), json!(["s3:///key"])] {
            let error = media(with("MediaUrls", urls.clone())).unwrap_err();
            let field = error.members.get("Fields").and_then(|f| f[0]["Name"].as_str()).map(str::to_owned);
            let reason = error.members.get("Reason").and_then(Value::as_str).map(str::to_owned);
            assert_eq!((error.exception, reason, field.as_deref()), (v, failed.clone(), Some("MediaUrls")), "{urls}");
        }
        for urls in [json!([]), Value::Null] {
            let error = media(with("MediaUrls", urls)).unwrap_err();
            assert_eq!(error.members.get("Reason").and_then(Value::as_str), Some("MISSING_PARAMETER"));
        }
        assert_eq!(media(with("MediaUrls", json!([1]))).unwrap_err().exception, "SerializationException");
    }

    #[test]
    fn an_error_body_names_its_exception_as_aws_json_does() {
        let body = AwsError::conflict("DESTINATION_PHONE_NUMBER_OPTED_OUT", "opted out").body();
        assert_eq!(body["__type"], "ConflictException");
        assert_eq!(body["Reason"], "DESTINATION_PHONE_NUMBER_OPTED_OUT");
        let body = AwsError::not_found("phone-number", "phone-9").body();
        assert_eq!((&body["ResourceType"], &body["ResourceId"]), (&json!("phone-number"), &json!("phone-9")));
    }
}
