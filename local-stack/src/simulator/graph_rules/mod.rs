//! Validation of WhatsApp Cloud API send requests: `POST /{version}/{phone_number_id}/messages`.
//!
//! Pure functions only (no I/O). [`validate_send`] takes the decoded JSON body and either returns the
//! send as the simulator records it ([`GraphSend`]) or the error the Graph API would answer
//! ([`GraphError`], whose [`GraphError::body`] is the exact JSON shape Graph sends).
//!
//! Every limit (here and in the submodules) is taken from Meta's documentation, not from the bridge:
//! * Messages API / message-type pages under
//!   `developers.facebook.com/documentation/business-messaging/whatsapp/messages/` (text, image and other
//!   media messages, interactive reply buttons messages, interactive list messages, reaction messages,
//!   and "Mark messages as read", updated 2026-10-15);
//! * the template "parameter object" of the Messages API reference;
//! * the error-code page `developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes`.
//!
//! Error codes follow one rule (see [`GraphError`]): `100` when the body does not fit the schema
//! (missing field, wrong JSON type, value outside an enum, and the `text.body` length, which Graph checks
//! in its schema), `131008` for parameters that are only required in combination, `131009` for values
//! that break a documented limit, `132018` for template parameter contents. All are HTTP 400.
//!
//! Lengths are counted in Unicode scalar values (`char`s), not bytes.
//!
//! The same endpoint also marks a received message as read (a body with `status` instead of a message):
//! [`validate_request`] tells the two apart, `mark_read` checks that request.
//!
//! This module holds the entry points, the envelope checks (`messaging_product`, `recipient_type`, `to`,
//! `context`, `biz_opaque_callback_data`, `type`) and the records it returns. Each message type has its own
//! module: `text`, `template`, `interactive` (with `buttons` and `list`), `reaction` and `media`, and
//! `mark_read` for read marks; `error` builds the Graph errors, `json` reads the fields of the decoded body
//! and `path` names them.

mod buttons;
mod error;
mod interactive;
mod json;
mod list;
mod mark_read;
mod media;
mod path;
mod reaction;
mod template;
mod text;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod test_support;

use serde::Serialize;
use serde_json::Value;

pub use buttons::ReplyButton;
pub use error::GraphError;
pub use list::ListSection;
pub use mark_read::{MarkRead, not_a_received_message};
pub use media::MediaKind;

use interactive::validate_interactive;
use json::{Obj, check_not_empty, opt_obj, opt_str, req_str};
use mark_read::validate_mark_read;
use media::validate_media;
use path::Path;
use reaction::validate_reaction;
use template::validate_template;
use text::validate_text;

// ---------------------------------------------------------------------------------------------------------
// Limits (each with the Meta documentation it comes from)
// ---------------------------------------------------------------------------------------------------------

/// `to`: fewest digits accepted (after an optional leading `+`).
pub const TO_MIN_DIGITS: usize = 5;
/// `to`: most digits accepted (E.164 allows at most 15).
pub const TO_MAX_DIGITS: usize = 15;
/// Meta's limit for `biz_opaque_callback_data` (Cloud API changelog: raised from 256 to 512).
const TRACKING_MAX_CHARS: usize = 512;

/// The message types this simulator models (the `type` field).
const MODELLED_TYPES: &[&str] =
    &["text", "template", "interactive", "reaction", "image", "video", "audio", "document", "sticker"];
/// Real Cloud API message types that are accepted by Meta but not modelled here.
const UNMODELLED_TYPES: &[&str] = &["location", "contacts"];

// ---------------------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------------------

/// A send the Cloud API would accept, as the simulator records it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GraphSend {
    /// The `to` field exactly as sent (a phone number or wa_id, possibly with a leading `+`).
    pub to: String,
    /// `context.message_id`, when the send quotes an earlier message.
    pub reply_to: Option<String>,
    pub content: GraphContent,
    /// `biz_opaque_callback_data`: the sender's string, echoed on the message's statuses.
    pub tracking: Option<String>,
}

/// The content of an accepted send.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum GraphContent {
    Text {
        body: String,
        preview_url: bool,
    },
    Template {
        name: String,
        /// `template.language.code`.
        language: String,
        /// Body component parameters in order: the `text` of text parameters, the `fallback_value` of
        /// currency and date_time parameters.
        parameters: Vec<String>,
    },
    Buttons {
        header: Option<String>,
        body: String,
        footer: Option<String>,
        buttons: Vec<ReplyButton>,
    },
    List {
        header: Option<String>,
        body: String,
        footer: Option<String>,
        button: String,
        sections: Vec<ListSection>,
    },
    Reaction {
        message_id: String,
        /// `""` removes a reaction.
        emoji: String,
    },
    Media {
        kind: MediaKind,
        link: Option<String>,
        id: Option<String>,
        caption: Option<String>,
        filename: Option<String>,
    },
}

/// What a `POST /{version}/{phone_number_id}/messages` body asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum GraphRequest {
    /// A message to send.
    Send(GraphSend),
    /// A received message to mark read (blue ticks): not a message.
    MarkRead(MarkRead),
}

// ---------------------------------------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------------------------------------

/// Validates a `POST /{version}/{phone_number_id}/messages` body: a body with a `status` is a status
/// update (a read mark, Cloud API "Mark messages as read"), anything else a message ([`validate_send`]).
pub fn validate_request(body: &Value) -> Result<GraphRequest, GraphError> {
    let updates_status = body.get("status").is_some_and(|status| !status.is_null());
    if updates_status {
        validate_mark_read(body).map(GraphRequest::MarkRead)
    } else {
        validate_send(body).map(GraphRequest::Send)
    }
}

/// Validates a message send the way the Cloud API does.
///
/// Checks run in this order and the first failure is answered: `messaging_product`, `recipient_type`,
/// `to`, `context`, `type`, then the object named by `type`. A missing `type` means `text`, as in the API.
/// JSON `null` is treated like an absent field. Unknown fields are ignored.
pub fn validate_send(body: &Value) -> Result<GraphSend, GraphError> {
    let root = messaging_product(body)?;

    let recipient_type_path = Path::root("recipient_type");
    if let Some(recipient_type) = opt_str(root, &recipient_type_path)?
        && recipient_type != "individual"
    {
        return Err(GraphError::not_one_of(&recipient_type_path, &["individual"], recipient_type));
    }

    let to_path = Path::root("to");
    let to = req_str(root, &to_path)?;
    check_recipient(&to_path, to)?;

    let reply_to = validate_context(root)?;

    let tracking_path = Path::root("biz_opaque_callback_data");
    let tracking = opt_str(root, &tracking_path)?.map(str::to_owned);
    if tracking.as_ref().is_some_and(|t| t.chars().count() > TRACKING_MAX_CHARS) {
        return Err(GraphError::invalid_value(format!(
            "biz_opaque_callback_data must be at most {TRACKING_MAX_CHARS} characters"
        )));
    }

    let type_path = Path::root("type");
    let kind = opt_str(root, &type_path)?.unwrap_or("text");
    let content = match kind {
        "text" => validate_text(root)?,
        "template" => validate_template(root)?,
        "interactive" => validate_interactive(root)?,
        "reaction" => validate_reaction(root)?,
        "image" => validate_media(root, MediaKind::Image)?,
        "video" => validate_media(root, MediaKind::Video)?,
        "audio" => validate_media(root, MediaKind::Audio)?,
        "document" => validate_media(root, MediaKind::Document)?,
        "sticker" => validate_media(root, MediaKind::Sticker)?,
        other if UNMODELLED_TYPES.contains(&other) => {
            return Err(GraphError::invalid_value(format!(
                "type {other:?} is a Cloud API message type that this simulator does not model"
            )));
        }
        other => {
            let mut allowed: Vec<&str> = MODELLED_TYPES.iter().chain(UNMODELLED_TYPES).copied().collect();
            allowed.sort_unstable();
            return Err(GraphError::not_one_of(&type_path, &allowed, other));
        }
    };

    Ok(GraphSend { to: to.to_string(), reply_to, content, tracking })
}

// ---------------------------------------------------------------------------------------------------------
// Envelope
// ---------------------------------------------------------------------------------------------------------

/// The body is a JSON object whose `messaging_product` is `whatsapp` (every request to `/messages`).
fn messaging_product(body: &Value) -> Result<&Obj, GraphError> {
    let path = Path::root("messaging_product");
    let root = body.as_object().ok_or_else(|| GraphError::missing(&path))?;
    let product = req_str(root, &path)?;
    if product != "whatsapp" {
        return Err(GraphError::not_one_of(&path, &["whatsapp"], product));
    }
    Ok(root)
}

/// `to` is a phone number or wa_id: ASCII digits with an optional leading `+`, 5 to 15 digits.
fn check_recipient(path: &Path, to: &str) -> Result<(), GraphError> {
    let digits = to.strip_prefix('+').unwrap_or(to);
    let all_digits = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    if all_digits && (TO_MIN_DIGITS..=TO_MAX_DIGITS).contains(&digits.len()) {
        return Ok(());
    }
    Err(GraphError::invalid_value(format!(
        "{path} must be a phone number or WhatsApp ID: {TO_MIN_DIGITS} to {TO_MAX_DIGITS} digits with an optional \
         leading '+' (got {to:?})"
    )))
}

/// `context.message_id`, when `context` is present, is a non-empty string.
fn validate_context(root: &Obj) -> Result<Option<String>, GraphError> {
    let path = Path::root("context");
    let Some(context) = opt_obj(root, &path)? else {
        return Ok(None);
    };
    let id_path = path.key("message_id");
    let id = req_str(context, &id_path)?;
    check_not_empty(&id_path, id)?;
    Ok(Some(id.to_string()))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::simulator::graph_rules::test_support::*;

    #[test]
    fn missing_type_defaults_to_text_and_optional_fields_may_be_absent() {
        let body = json!({ "messaging_product": "whatsapp", "to": "15551234567", "text": { "body": "hi" } });
        assert_eq!(
            ok(&body),
            GraphSend {
                to: "15551234567".into(),
                reply_to: None,
                content: GraphContent::Text { body: "hi".into(), preview_url: false },
                tracking: None,
            }
        );
    }

    #[test]
    fn null_optional_fields_count_as_absent() {
        let body = json!({
            "messaging_product": "whatsapp", "recipient_type": null, "to": "15551234567", "type": null,
            "context": null, "text": { "body": "hi", "preview_url": null },
        });
        assert!(matches!(ok(&body).content, GraphContent::Text { preview_url: false, .. }));
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let mut body = text_send("hi");
        body["biz_opaque_callback_data"] = json!("x");
        body["text"]["extra"] = json!(1);
        ok(&body);
    }

    #[test]
    fn envelope_errors() {
        let cases: Vec<(Value, i64, &str)> = vec![
            (json!(null), INVALID, "messaging_product is required"),
            (json!([1, 2]), INVALID, "messaging_product is required"),
            (json!("text"), INVALID, "messaging_product is required"),
            (json!({ "to": "15551234567", "text": { "body": "x" } }), INVALID, "messaging_product is required"),
            (
                json!({ "messaging_product": 1, "to": "15551234567" }),
                INVALID,
                "messaging_product must be a string (got a number)",
            ),
            (
                json!({ "messaging_product": "sms", "to": "15551234567" }),
                INVALID,
                "messaging_product must be one of \"whatsapp\" (got \"sms\")",
            ),
            (
                json!({ "messaging_product": "WhatsApp", "to": "15551234567" }),
                INVALID,
                "messaging_product must be one of",
            ),
            (
                json!({ "messaging_product": "whatsapp", "recipient_type": "group", "to": "15551234567" }),
                INVALID,
                "recipient_type must be one of \"individual\"",
            ),
            (
                json!({ "messaging_product": "whatsapp", "recipient_type": {}, "to": "15551234567" }),
                INVALID,
                "recipient_type must be a string (got a JSON object)",
            ),
            (json!({ "messaging_product": "whatsapp" }), INVALID, "to is required"),
            (json!({ "messaging_product": "whatsapp", "to": null }), INVALID, "to is required"),
            (
                json!({ "messaging_product": "whatsapp", "to": 15551234567_u64 }),
                INVALID,
                "to must be a string (got a number)",
            ),
            (json!({ "messaging_product": "whatsapp", "to": ["1"] }), INVALID, "to must be a string (got an array)"),
        ];
        for (body, code, needle) in cases {
            expect(&body, code, needle);
        }
    }

    #[test]
    fn recipient_formats() {
        let accepted = ["+15551234567", "15551234567", "12345", "123456789012345", "+123456789012345"];
        for to in accepted {
            let mut body = text_send("hi");
            body["to"] = json!(to);
            assert_eq!(ok(&body).to, to);
        }
        let rejected = [
            "",
            "+",
            "1234",
            "1234567890123456",
            "+1 555 123 4567",
            "1555-123-4567",
            "++15551234567",
            "15551234567a",
            " 15551234567",
            "１２３４５６",
        ];
        for to in rejected {
            let mut body = text_send("hi");
            body["to"] = json!(to);
            let error = expect(&body, VALUE, "to must be a phone number or WhatsApp ID");
            assert!(error.details.contains(&format!("{to:?}")), "{error:?}");
        }
    }

    #[test]
    fn message_types() {
        let mut body = text_send("x");
        body["type"] = json!("carousel");
        let error = expect(&body, INVALID, "type must be one of");
        assert!(error.message.starts_with("(#100) Param type must be one of {AUDIO, CONTACTS, DOCUMENT"), "{error:?}");
        assert!(error.message.ends_with("- got \"carousel\"."), "{error:?}");

        body["type"] = json!(7);
        expect(&body, INVALID, "type must be a string (got a number)");

        for unmodelled in ["location", "contacts"] {
            body["type"] = json!(unmodelled);
            expect(&body, VALUE, "does not model");
        }

        // The object named by `type` is required (a top-level parameter).
        for kind in ["text", "template", "interactive", "reaction", "image", "video", "audio", "document", "sticker"] {
            let body = json!({ "messaging_product": "whatsapp", "to": "15551234567", "type": kind });
            let error = expect(&body, INVALID, &format!("{kind} is required"));
            assert_eq!(error.message, format!("(#100) The parameter {kind} is required."));
        }
    }

    #[test]
    fn context_rules() {
        let cases: Vec<(Value, i64, &str)> = vec![
            (json!("wamid.X"), INVALID, "context must be a JSON object (got a string)"),
            (json!([]), INVALID, "context must be a JSON object (got an array)"),
            (json!({}), INVALID, "context.message_id is required"),
            (json!({ "message_id": 3 }), INVALID, "context.message_id must be a string (got a number)"),
            (json!({ "message_id": "" }), VALUE, "context.message_id must not be empty"),
        ];
        for (context, code, needle) in cases {
            let mut body = text_send("hi");
            body["context"] = context;
            let error = expect(&body, code, needle);
            if code == INVALID {
                assert!(error.message.contains("context"), "{error:?}");
            }
        }
    }

    #[test]
    fn records_serialize() {
        let value = serde_json::to_value(ok(&buttons_send())).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(value["content"]["type"], "buttons");
        assert_eq!(value["content"]["buttons"][0]["id"], "yes");
        let media = serde_json::to_value(ok(&send("sticker", json!({ "id": "9" })))).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(media["content"]["type"], "media");
        assert_eq!(media["content"]["kind"], "sticker");
    }
}
