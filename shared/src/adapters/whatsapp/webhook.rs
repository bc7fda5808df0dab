//! The Cloud API webhook's JSON → the bridge's types. Only a [`VerifiedMetaPayload`] can be
//! parsed, so nothing reads a body whose signature wasn't checked (docs/using.md).
//!
//! The envelope must be a WhatsApp Business notification, or the whole body is refused.
//! Inside it, every change, message and status is read on its own: one that can't be read
//! is skipped with a reason (numbers scrubbed from it) and never takes its neighbours down.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue as RawJson;

use super::signature::VerifiedMetaPayload;
use crate::domain::media::WhatsAppMedia;
use crate::domain::pricing::Pricing;
use crate::domain::template_event::{TemplateChange, TemplateEvent};
use crate::domain::{
    IdentityChange, ReceivedWhatsApp, ReportedStatus, SendTracking, UserId, WaId, Wamid, WhatsAppContent,
    WhatsAppStatusReport, WhatsAppUser, scrub_numbers,
};

/// Everything one `entry[].changes[].value` carries for one business number.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChangeBatch {
    /// `metadata.phone_number_id`: which line it is about.
    pub phone_number_id: Option<String>,
    /// Profile names by `wa_id` and by `user_id`, from `contacts[]`.
    pub profile_names: HashMap<String, String>,
    pub messages: Vec<ReceivedWhatsApp>,
    pub statuses: Vec<WhatsAppStatusReport>,
    /// `errors[]` at the value level: Meta reporting a problem with the number or app.
    pub errors: Vec<String>,
    /// Items that couldn't be read, each with why (no number in it): logged, counted, skipped.
    pub skipped: Vec<String>,
    /// News about a message template (`message_template_status_update`,
    /// `template_category_update`): per business account, not per number.
    pub template_events: Vec<TemplateEvent>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a WhatsApp Business notification: {0}")]
pub struct MalformedNotification(pub String);

pub fn parse_notification(payload: &VerifiedMetaPayload) -> Result<Vec<ChangeBatch>, MalformedNotification> {
    // serde_json skips ignored strings without checking their UTF-8: check the whole body.
    let text = std::str::from_utf8(payload.body()).map_err(|_| MalformedNotification("body is not UTF-8".into()))?;
    let raw: RawNotification =
        serde_json::from_str(text).map_err(|e| MalformedNotification(scrub_numbers(&e.to_string())))?;
    if raw.object != "whatsapp_business_account" {
        return Err(MalformedNotification(format!("unexpected object `{}`", scrub_numbers(&raw.object))));
    }
    Ok(raw
        .entry
        .into_iter()
        .flat_map(|e| e.changes)
        .map(|change| match change.field.as_deref() {
            Some(field @ (TEMPLATE_STATUS_FIELD | TEMPLATE_CATEGORY_FIELD)) => {
                match template_event(field, &change.value) {
                    Ok(event) => ChangeBatch { template_events: vec![event], ..ChangeBatch::default() },
                    Err(why) => ChangeBatch { skipped: vec![why], ..ChangeBatch::default() },
                }
            }
            _ => batch(&change.value),
        })
        .collect())
}

const TEMPLATE_STATUS_FIELD: &str = "message_template_status_update";
const TEMPLATE_CATEGORY_FIELD: &str = "template_category_update";

/// A template's news (domain::template_event). Meta's words are kept short and scrubbed:
/// they are logged.
fn template_event(field: &str, value: &RawJson) -> Result<TemplateEvent, String> {
    let raw: RawTemplateValue = serde_json::from_str(value.get()).map_err(|e| unreadable(field, e))?;
    let word = |text: &str| scrub_numbers(&text.chars().take(64).collect::<String>());
    let (Some(name), Some(language)) = (raw.message_template_name, raw.message_template_language) else {
        return Err(format!("{field}: no message_template_name or message_template_language"));
    };
    let change = if field == TEMPLATE_STATUS_FIELD {
        let event = raw.event.ok_or_else(|| format!("{field}: no event"))?;
        TemplateChange::Status { event: word(&event).to_ascii_uppercase() }
    } else {
        let new = raw.new_category.ok_or_else(|| format!("{field}: no new_category"))?;
        // An impending change names the category it will correct to; a done one, the previous.
        TemplateChange::Category { new: word(&new), impending: raw.previous_category.is_none() }
    };
    Ok(TemplateEvent { name: word(&name), language: word(&language), change })
}

/// One item's parse error, with nothing in it that could be a number.
fn unreadable(what: &str, e: impl std::fmt::Display) -> String {
    scrub_numbers(&format!("{what}: {e}"))
}

fn batch(value: &RawJson) -> ChangeBatch {
    let value: RawChangeValue = match serde_json::from_str(value.get()) {
        Ok(value) => value,
        Err(e) => return ChangeBatch { skipped: vec![unreadable("changes[].value", e)], ..ChangeBatch::default() },
    };
    let mut skipped = Vec::new();
    let contacts: Vec<RawContact> =
        value.contacts.iter().filter_map(|c| serde_json::from_str::<RawContact>(c.get()).ok()).collect();
    let mut profile_names = HashMap::new();
    for contact in &contacts {
        // A username stands in for a missing profile name.
        let profile = contact.profile.as_ref();
        let Some(name) = profile.and_then(|p| p.name.clone().or_else(|| p.username.clone())) else { continue };
        for id in [&contact.wa_id, &contact.user_id].into_iter().flatten() {
            profile_names.insert(id.clone(), name.clone());
        }
    }
    let mut messages = Vec::new();
    for raw in &value.messages {
        let parsed = serde_json::from_str::<RawMessage>(raw.get()).map_err(|e| unreadable("messages[]", e));
        match parsed.and_then(|raw| message(raw, &contacts)) {
            Ok(message) => messages.push(message),
            Err(why) => skipped.push(why),
        }
    }
    let mut statuses = Vec::new();
    for raw in &value.statuses {
        match serde_json::from_str::<RawStatus>(raw.get()).map_err(|e| unreadable("statuses[]", e)).and_then(status) {
            Ok(status) => statuses.push(status),
            Err(why) => skipped.push(why),
        }
    }
    let errors = value
        .errors
        .iter()
        .filter_map(|e| serde_json::from_str::<RawError>(e.get()).ok())
        .map(|e| scrub_numbers(&format!("{} {}", e.code.unwrap_or_default(), e.title.as_deref().unwrap_or(""))))
        .collect();
    ChangeBatch {
        phone_number_id: value.metadata.map(|m| m.phone_number_id),
        profile_names,
        messages,
        statuses,
        errors,
        skipped,
        template_events: Vec::new(),
    }
}

fn status(raw: RawStatus) -> Result<WhatsAppStatusReport, String> {
    Ok(WhatsAppStatusReport {
        wamid: Wamid::parse(&raw.id).map_err(|_| "statuses[].id: not a message id".to_owned())?,
        status: ReportedStatus::parse(&raw.status),
        error_code: raw.errors.first().and_then(|e| e.code),
        tracking: raw.biz_opaque_callback_data.as_deref().and_then(SendTracking::parse),
        recipient: raw.recipient_id.as_deref().and_then(|id| WaId::parse(id).ok()),
        // A username user's report may carry the user id in `recipient_id` itself.
        recipient_user_id: raw
            .recipient_user_id
            .as_deref()
            .or(raw.recipient_id.as_deref())
            .and_then(|id| UserId::parse(id).ok()),
        pricing: raw.pricing.and_then(|p| Pricing::from_fields(p.billable, p.category.as_deref(), p.kind.as_deref())),
    })
}

/// Who sent it: `from` is the phone number, or (for a user with a username) may be their
/// user id or missing; `from_user_id` and the contact's `user_id` carry the user id.
fn sender(raw: &RawMessage, contacts: &[RawContact]) -> Result<WhatsAppUser, String> {
    let (mut phone, mut user_id) = (None, None);
    if let Some(from) = raw.from.as_deref() {
        match (WaId::parse(from), UserId::parse(from)) {
            (Ok(id), _) => phone = Some(id),
            (_, Ok(id)) => user_id = Some(id),
            _ => return Err("messages[].from: not a phone number or a user id".to_owned()),
        }
    }
    if let Some(id) = raw.from_user_id.as_deref() {
        user_id = Some(UserId::parse(id).map_err(|e| format!("messages[].from_user_id: {e}"))?);
    }
    if user_id.is_none() {
        // The contact that is this sender (by phone), or the only one.
        let contact = match &phone {
            Some(phone) => contacts.iter().find(|c| c.wa_id.as_deref() == Some(phone.as_str())),
            None => None,
        }
        .or(if contacts.len() == 1 { contacts.first() } else { None });
        user_id = contact.and_then(|c| c.user_id.as_deref()).and_then(|id| UserId::parse(id).ok());
    }
    WhatsAppUser::new(phone, user_id).ok_or_else(|| "messages[]: no sender (neither from nor from_user_id)".to_owned())
}

/// A `system` message: a user's number or user id changed (Meta's system messages reference).
fn system(raw: Option<&RawSystem>) -> WhatsAppContent {
    let unsupported = || WhatsAppContent::Unsupported { kind: "system".into() };
    let Some(system) = raw else { return unsupported() };
    match system.kind.as_deref() {
        Some("user_changed_number") => match system.wa_id.as_deref().map(WaId::parse) {
            Some(Ok(new_phone)) => WhatsAppContent::IdentityChanged(IdentityChange::Number { new_phone }),
            _ => unsupported(),
        },
        Some("user_changed_user_id") => match system.user_id.as_deref().map(UserId::parse) {
            Some(Ok(new_user_id)) => WhatsAppContent::IdentityChanged(IdentityChange::UserId { new_user_id }),
            _ => unsupported(),
        },
        _ => unsupported(),
    }
}

fn message(raw: RawMessage, contacts: &[RawContact]) -> Result<ReceivedWhatsApp, String> {
    let wamid = Wamid::parse(&raw.id).map_err(|_| "messages[].id: not a message id".to_owned())?;
    let sender = sender(&raw, contacts)?;
    let context = raw
        .context
        .and_then(|c| c.id)
        .map(|id| Wamid::parse(&id))
        .transpose()
        .map_err(|_| "messages[].context.id: not a message id".to_owned())?;
    let content = match raw.kind.as_str() {
        "text" => WhatsAppContent::Text(raw.text.map(|t| t.body).unwrap_or_default()),
        "interactive" => match raw.interactive {
            Some(RawInteractive { list_reply: Some(reply), .. }) => {
                WhatsAppContent::ListReply { id: reply.id, title: reply.title }
            }
            Some(RawInteractive { button_reply: Some(reply), .. }) => {
                WhatsAppContent::ButtonReply { id: reply.id, title: reply.title }
            }
            Some(other) => WhatsAppContent::Unsupported { kind: format!("interactive/{}", other.kind) },
            None => WhatsAppContent::Unsupported { kind: "interactive".into() },
        },
        "button" => match raw.button {
            Some(button) => WhatsAppContent::ButtonReply { id: button.payload.unwrap_or_default(), title: button.text },
            None => WhatsAppContent::Unsupported { kind: "button".into() },
        },
        "system" => system(raw.system.as_ref()),
        "reaction" => WhatsAppContent::Reaction { emoji: raw.reaction.and_then(|r| r.emoji).unwrap_or_default() },
        kind @ ("image" | "audio" | "video" | "document" | "sticker") => {
            let object = raw.media.get(kind);
            let field = |name: &str| object.and_then(|m| m.get(name)).and_then(Value::as_str);
            let caption = field("caption").map(str::to_owned);
            let media = field("id").and_then(|id| WhatsAppMedia::parse(id, field("mime_type").unwrap_or_default()));
            WhatsAppContent::Media { kind: kind.to_owned(), caption, media }
        }
        other => WhatsAppContent::Unsupported { kind: other.to_owned() },
    };
    Ok(ReceivedWhatsApp { wamid, sender, context, content })
}

#[derive(Deserialize)]
struct RawNotification {
    object: String,
    entry: Vec<RawEntry>,
}

#[derive(Deserialize)]
struct RawEntry {
    #[serde(default)]
    changes: Vec<RawChange>,
}

#[derive(Deserialize)]
struct RawChange {
    /// `messages`, or a template field; absent in some of Meta's samples (then `messages`).
    #[serde(default)]
    field: Option<String>,
    /// Read on its own, after the envelope: a change that can't be read is skipped.
    value: Box<RawJson>,
}

#[derive(Deserialize)]
struct RawTemplateValue {
    message_template_name: Option<String>,
    message_template_language: Option<String>,
    event: Option<String>,
    previous_category: Option<String>,
    new_category: Option<String>,
}

#[derive(Deserialize, Default)]
struct RawChangeValue {
    metadata: Option<RawMetadata>,
    #[serde(default)]
    contacts: Vec<Box<RawJson>>,
    #[serde(default)]
    messages: Vec<Box<RawJson>>,
    #[serde(default)]
    statuses: Vec<Box<RawJson>>,
    #[serde(default)]
    errors: Vec<Box<RawJson>>,
}

#[derive(Deserialize)]
struct RawMetadata {
    phone_number_id: String,
}

#[derive(Deserialize)]
struct RawContact {
    wa_id: Option<String>,
    /// The business-scoped user id (always there since 2026; Meta's BSUID page).
    user_id: Option<String>,
    profile: Option<RawProfile>,
}

#[derive(Deserialize)]
struct RawProfile {
    name: Option<String>,
    /// `@name`, for a user who adopted a username.
    username: Option<String>,
}

#[derive(Deserialize)]
struct RawMessage {
    id: String,
    /// The sender's phone number; missing, or their user id, for a user with a username.
    from: Option<String>,
    from_user_id: Option<String>,
    system: Option<RawSystem>,
    #[serde(rename = "type")]
    kind: String,
    text: Option<RawText>,
    interactive: Option<RawInteractive>,
    button: Option<RawButton>,
    reaction: Option<RawReaction>,
    context: Option<RawContext>,
    /// `image`, `audio`... keyed by type: kept loosely, only the caption is read.
    #[serde(flatten)]
    media: HashMap<String, Value>,
}

#[derive(Deserialize)]
struct RawSystem {
    #[serde(rename = "type")]
    kind: Option<String>,
    /// `user_changed_number`: the new phone number.
    wa_id: Option<String>,
    /// `user_changed_user_id`: the new user id.
    user_id: Option<String>,
}

#[derive(Deserialize)]
struct RawText {
    body: String,
}

#[derive(Deserialize)]
struct RawInteractive {
    #[serde(rename = "type", default)]
    kind: String,
    list_reply: Option<RawReply>,
    button_reply: Option<RawReply>,
}

#[derive(Deserialize)]
struct RawReply {
    id: String,
    #[serde(default)]
    title: String,
}

#[derive(Deserialize)]
struct RawButton {
    payload: Option<String>,
    #[serde(default)]
    text: String,
}

#[derive(Deserialize)]
struct RawReaction {
    emoji: Option<String>,
}

#[derive(Deserialize)]
struct RawContext {
    id: Option<String>,
}

#[derive(Deserialize)]
struct RawStatus {
    id: String,
    status: String,
    #[serde(default)]
    errors: Vec<RawError>,
    /// What the bridge sent with the message, echoed (`SendTracking`).
    #[serde(default)]
    biz_opaque_callback_data: Option<String>,
    #[serde(default)]
    recipient_id: Option<String>,
    #[serde(default)]
    recipient_user_id: Option<String>,
    #[serde(default)]
    pricing: Option<RawPricing>,
}

#[derive(Deserialize)]
struct RawPricing {
    billable: Option<bool>,
    category: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct RawError {
    code: Option<i64>,
    title: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::whatsapp::signature::{MetaSignatureVerifier, compute_signature};
    use secrecy::SecretString;

    fn parse(json: &str) -> Result<Vec<ChangeBatch>, MalformedNotification> {
        let verified = MetaSignatureVerifier::new(SecretString::from("s"))
            .verify(Some(&compute_signature("s", json.as_bytes())), json.as_bytes())
            .unwrap();
        parse_notification(&verified)
    }

    fn with_message(message: &str) -> String {
        format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"1","changes":[{{"field":"messages","value":{{
                "messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550783881","phone_number_id":"106540352242922"}},
                "contacts":[{{"profile":{{"name":"Sheena"}},"wa_id":"14155550111"}}],
                "messages":[{message}]}}}}]}}]}}"#
        )
    }

    #[test]
    fn reads_every_message_kind() {
        let cases = [
            (
                r#"{"from":"14155550111","id":"wamid.1","timestamp":"1","type":"text","text":{"body":"hi"},"context":{"from":"15550783881","id":"wamid.ctx"}}"#,
                WhatsAppContent::Text("hi".into()),
            ),
            (
                r##"{"from":"14155550111","id":"wamid.1","type":"interactive","interactive":{"type":"list_reply","list_reply":{"id":"conv:K7","title":"#K7"}}}"##,
                WhatsAppContent::ListReply { id: "conv:K7".into(), title: "#K7".into() },
            ),
            (
                r#"{"from":"14155550111","id":"wamid.1","type":"interactive","interactive":{"type":"button_reply","button_reply":{"id":"act:claim","title":"Claim"}}}"#,
                WhatsAppContent::ButtonReply { id: "act:claim".into(), title: "Claim".into() },
            ),
            (
                r#"{"from":"14155550111","id":"wamid.1","type":"reaction","reaction":{"message_id":"wamid.x","emoji":"👍"}}"#,
                WhatsAppContent::Reaction { emoji: "👍".into() },
            ),
            (
                r#"{"from":"14155550111","id":"wamid.1","type":"image","image":{"id":"1","mime_type":"image/jpeg","caption":"look"}}"#,
                WhatsAppContent::Media {
                    kind: "image".into(),
                    caption: Some("look".into()),
                    media: WhatsAppMedia::parse("1", "image/jpeg"),
                },
            ),
            (
                r#"{"from":"14155550111","id":"wamid.1","type":"document","document":{"id":"../x","mime_type":"application/pdf"}}"#,
                WhatsAppContent::Media { kind: "document".into(), caption: None, media: None },
            ),
            (
                r#"{"from":"14155550111","id":"wamid.1","type":"unsupported","errors":[{"code":131051}]}"#,
                WhatsAppContent::Unsupported { kind: "unsupported".into() },
            ),
            (
                r#"{"from":"14155550111","id":"wamid.1","type":"order","order":{}}"#,
                WhatsAppContent::Unsupported { kind: "order".into() },
            ),
        ];
        for (message, content) in cases.clone() {
            let batches = parse(&with_message(message)).unwrap();
            assert_eq!(batches[0].messages[0].content, content, "{message}");
            assert_eq!(batches[0].phone_number_id.as_deref(), Some("106540352242922"));
            assert_eq!(batches[0].profile_names["14155550111"], "Sheena");
            assert_eq!(batches[0].messages[0].sender.phone().map(WaId::as_str), Some("14155550111"));
        }
        let batches = parse(&with_message(cases[0].0)).unwrap();
        assert_eq!(batches[0].messages[0].context.as_ref().map(|c| c.as_str()), Some("wamid.ctx"));
    }

    #[test]
    fn skips_messages_without_their_identity_and_keeps_their_neighbours() {
        let good = r#"{"from":"14155550111","id":"wamid.good","type":"text","text":{"body":"hi"}}"#;
        for message in [
            r#"{"id":"wamid.1","type":"text","text":{"body":"hi"}}"#,
            r#"{"from":"14155550111","type":"text"}"#,
            r#"{"from":"+14155550111","id":"wamid.1","type":"text"}"#,
            r#"{"from":14155550111,"id":"wamid.1","type":"text"}"#,
            r#"{"from":"14155550111","id":"","type":"text"}"#,
            r#"{"from":"14155550111","id":"wamid.1"}"#,
            r#"{"from":"14155550111","id":"wamid.1","type":"text","text":{"body":5}}"#,
            &format!("{}{}", "[".repeat(300), "]".repeat(300)),
        ] {
            let batches = parse(&with_message(&format!("{message},{good}"))).unwrap();
            assert_eq!(batches[0].skipped.len(), 1, "{message}");
            assert!(!batches[0].skipped[0].contains("4155550111"), "{:?}", batches[0].skipped);
            assert_eq!(batches[0].messages.len(), 1, "{message}");
            assert_eq!(batches[0].messages[0].wamid.as_str(), "wamid.good");
        }
    }

    #[test]
    fn a_change_that_cant_be_read_is_skipped_and_the_envelope_must_hold() {
        let json = r#"{"object":"whatsapp_business_account","entry":[{"changes":[{"value":5},{"value":{"metadata":{"phone_number_id":"1"},"statuses":[{"id":"wamid.b","status":"read"}]}}]}]}"#;
        let batches = parse(json).unwrap();
        assert_eq!(batches[0].skipped.len(), 1);
        assert_eq!(batches[1].statuses.len(), 1);
        for bad in [r#"{"object":"page","entry":[]}"#, r#"{"object":"whatsapp_business_account","entry":{}}"#, "[]"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reads_statuses_with_their_error_codes() {
        let json = r#"{"object":"whatsapp_business_account","entry":[{"changes":[{"value":{"metadata":{"phone_number_id":"1"},
            "statuses":[{"id":"wamid.a","status":"failed","timestamp":"1","recipient_id":"1","errors":[{"code":131047,"title":"Re-engagement message"}]},
                        {"id":"wamid.b","status":"read","timestamp":"2","recipient_id":"1"}]}}]}]}"#;
        let statuses = &parse(json).unwrap()[0].statuses;
        assert_eq!(
            statuses[0],
            WhatsAppStatusReport {
                wamid: Wamid::parse("wamid.a").unwrap(),
                status: ReportedStatus::Tracked(crate::domain::DeliveryStatus::Failed),
                error_code: Some(131047),
                tracking: None,
                recipient: None,
                recipient_user_id: None,
                pricing: None,
            }
        );
        assert_eq!(statuses[1].error_code, None);
    }

    /// Meta's 2026 shapes: a username user has no phone in `from`; the user id is in
    /// `from_user_id`, in `from` itself, or only in the contact; statuses carry
    /// `recipient_user_id`.
    #[test]
    fn reads_senders_known_by_user_id_with_or_without_a_phone() {
        let id = "US.13491208655302741918";
        let batch = |contacts: &str, message: &str| {
            let json = format!(
                r#"{{"object":"whatsapp_business_account","entry":[{{"changes":[{{"field":"messages","value":{{
                    "metadata":{{"phone_number_id":"1"}},"contacts":[{contacts}],"messages":[{message}]}}}}]}}]}}"#
            );
            parse(&json).unwrap().remove(0)
        };
        let contact = format!(r#"{{"profile":{{"name":"Sam","username":"@sam"}},"user_id":"{id}"}}"#);
        let nameless = format!(r#"{{"profile":{{"username":"@sam"}},"user_id":"{id}"}}"#);
        let b = batch(&nameless, r#"{"id":"wamid.9","type":"text","text":{"body":"hi"}}"#);
        assert_eq!(b.profile_names[id], "@sam", "a username stands in for the name");
        for message in [
            format!(r#"{{"from_user_id":"{id}","id":"wamid.1","type":"text","text":{{"body":"hi"}}}}"#),
            format!(r#"{{"from":"{id}","id":"wamid.1","type":"text","text":{{"body":"hi"}}}}"#),
            r#"{"id":"wamid.1","type":"text","text":{"body":"hi"}}"#.to_owned(),
        ] {
            let b = batch(&contact, &message);
            assert_eq!(b.skipped, Vec::<String>::new(), "{message}");
            let sender = &b.messages[0].sender;
            assert_eq!((sender.phone(), sender.user_id().map(UserId::as_str)), (None, Some(id)), "{message}");
            assert_eq!(b.profile_names[id], "Sam");
        }
        // Both: the phone is kept, the user id comes from the matching contact.
        let both = batch(
            &format!(r#"{{"profile":{{"name":"Ann"}},"wa_id":"14155550111","user_id":"{id}"}}"#),
            r#"{"from":"14155550111","id":"wamid.2","type":"text","text":{"body":"hi"}}"#,
        );
        let sender = &both.messages[0].sender;
        assert_eq!(sender.phone().map(WaId::as_str), Some("14155550111"));
        assert_eq!(sender.user_id().map(UserId::as_str), Some(id));
        // A `from` that is neither is skipped, its text scrubbed.
        let bad = batch("", r#"{"from":"+14155550111x","id":"wamid.3","type":"text"}"#);
        assert_eq!(bad.messages.len(), 0);
        assert!(!bad.skipped[0].contains("4155550111"), "{:?}", bad.skipped);

        let json = format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"changes":[{{"value":{{"metadata":{{"phone_number_id":"1"}},
            "statuses":[{{"id":"wamid.a","status":"sent","recipient_user_id":"{id}"}},
                        {{"id":"wamid.b","status":"sent","recipient_id":"14155550111","recipient_user_id":"{id}"}}]}}}}]}}]}}"#
        );
        let statuses = &parse(&json).unwrap()[0].statuses;
        assert_eq!(
            (statuses[0].recipient.as_ref(), statuses[0].recipient_user_id.as_ref().map(UserId::as_str)),
            (None, Some(id))
        );
        assert_eq!(statuses[1].recipient.as_ref().map(WaId::as_str), Some("14155550111"));
        assert_eq!(statuses[1].recipient_user_id.as_ref().map(UserId::as_str), Some(id));
    }

    #[test]
    fn reads_identity_changes_from_system_messages() {
        let system = |body: &str| {
            let message = format!(r#"{{"from":"14155550111","id":"wamid.s","type":"system","system":{body}}}"#);
            parse(&with_message(&message)).unwrap().remove(0).messages.remove(0).content
        };
        assert_eq!(
            system(r#"{"body":"User A changed from 1 to 2","wa_id":"12195555358","type":"user_changed_number"}"#),
            WhatsAppContent::IdentityChanged(IdentityChange::Number { new_phone: WaId::parse("12195555358").unwrap() })
        );
        assert_eq!(
            system(r#"{"type":"user_changed_user_id","user_id":"US.99"}"#),
            WhatsAppContent::IdentityChanged(IdentityChange::UserId { new_user_id: UserId::parse("US.99").unwrap() })
        );
        for unknown in [r#"{"type":"customer_identity_changed"}"#, r#"{"type":"user_changed_number","wa_id":"+1"}"#] {
            assert_eq!(system(unknown), WhatsAppContent::Unsupported { kind: "system".into() }, "{unknown}");
        }
    }

    #[test]
    fn reads_template_news_done_and_impending_and_skips_what_it_cannot_read() {
        use crate::domain::template_event::TemplateChange;
        let json = r#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[
            {"field":"template_category_update","value":{"message_template_id":9,"message_template_name":"t","message_template_language":"en",
                "previous_category":"UTILITY","new_category":"MARKETING"}},
            {"field":"template_category_update","value":{"message_template_id":9,"message_template_name":"t","message_template_language":"en",
                "correct_category":"MARKETING","new_category":"MARKETING","category_update_timestamp":1764072000}},
            {"field":"message_template_status_update","value":{"event":"disabled","message_template_name":"t","message_template_language":"en",
                "reason":"Policy 14155550134"}},
            {"field":"message_template_status_update","value":{"message_template_name":"t","message_template_language":"en"}}]}]}"#;
        let batches = parse(json).unwrap();
        let events: Vec<TemplateChange> =
            batches.iter().flat_map(|b| b.template_events.iter().map(|e| e.change.clone())).collect();
        assert_eq!(
            events,
            [
                TemplateChange::Category { new: "MARKETING".into(), impending: false },
                TemplateChange::Category { new: "MARKETING".into(), impending: true },
                TemplateChange::Status { event: "DISABLED".into() },
            ]
        );
        assert_eq!(batches[3].skipped, ["message_template_status_update: no event"]);
        assert!(batches.iter().all(|b| b.phone_number_id.is_none() && b.messages.is_empty()));
    }

    #[test]
    fn reads_the_pricing_block_and_bills_a_message_on_its_sent_report_only() {
        use crate::domain::pricing::{Pricing, PricingCategory};
        let json = r#"{"object":"whatsapp_business_account","entry":[{"changes":[{"value":{"metadata":{"phone_number_id":"1"},
            "statuses":[{"id":"wamid.a","status":"sent","timestamp":"1","recipient_id":"1",
                         "pricing":{"billable":true,"pricing_model":"PMP","category":"utility","type":"regular"}},
                        {"id":"wamid.a","status":"delivered","timestamp":"2","recipient_id":"1",
                         "pricing":{"billable":true,"pricing_model":"PMP","category":"utility","type":"regular"}},
                        {"id":"wamid.b","status":"sent","timestamp":"3","recipient_id":"1",
                         "pricing":{"pricing_model":"PMP","category":"service","type":"free_customer_service"}},
                        {"id":"wamid.c","status":"sent","timestamp":"4","recipient_id":"1","pricing":"not an object"}]}}]}]}"#;
        let batch = &parse(json).unwrap()[0];
        let utility = Some(Pricing { billable: true, category: PricingCategory::Utility });
        assert_eq!(batch.statuses[0].pricing, utility);
        assert_eq!(batch.statuses[0].billed_category(), Some(PricingCategory::Utility));
        assert_eq!(batch.statuses[1].billed_category(), None, "delivered: counted on sent already");
        assert_eq!(batch.statuses[2].billed_category(), None, "free");
        assert_eq!(batch.skipped.len(), 1, "an unreadable pricing block skips that status only");
    }

    #[test]
    fn statuses_bring_back_the_bridges_own_tracking_only() {
        let json = r#"{"object":"whatsapp_business_account","entry":[{"changes":[{"value":{"metadata":{"phone_number_id":"1"},
            "statuses":[{"id":"wamid.a","status":"sent","biz_opaque_callback_data":"bridge1|main|K7|n-1"},
                        {"id":"wamid.b","status":"sent","biz_opaque_callback_data":"someone else's"}]}}]}]}"#;
        let statuses = &parse(json).unwrap()[0].statuses;
        let tracking = statuses[0].tracking.as_ref().unwrap();
        assert_eq!((tracking.line.as_str(), tracking.jobs[0].as_str()), ("main", "n-1"));
        assert_eq!(statuses[1].tracking, None);
    }
}
