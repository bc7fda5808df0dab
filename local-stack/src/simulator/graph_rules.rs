//! Validation of WhatsApp Cloud API send requests: `POST /{version}/{phone_number_id}/messages`.
//!
//! Pure functions only (no I/O). [`validate_send`] takes the decoded JSON body and either returns the
//! send as the simulator records it ([`GraphSend`]) or the error the Graph API would answer
//! ([`GraphError`], whose [`GraphError::body`] is the exact JSON shape Graph sends).
//!
//! Every limit below is taken from Meta's documentation, not from the bridge:
//! * Messages API / message-type pages under
//!   `developers.facebook.com/documentation/business-messaging/whatsapp/messages/` (text, image and other
//!   media messages, interactive reply buttons messages, interactive list messages, reaction messages);
//! * the template "parameter object" of the Messages API reference;
//! * the error-code page `developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes`.
//!
//! Error codes follow one rule (see [`GraphError`]): `100` when the body does not fit the schema
//! (missing field, wrong JSON type, value outside an enum, and the `text.body` length, which Graph checks
//! in its schema), `131008` for parameters that are only required in combination, `131009` for values
//! that break a documented limit, `132018` for template parameter contents. All are HTTP 400.
//!
//! Lengths are counted in Unicode scalar values (`char`s), not bytes.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::{Map, Value, json};

// ---------------------------------------------------------------------------------------------------------
// Limits (each with the Meta documentation it comes from)
// ---------------------------------------------------------------------------------------------------------

/// `text.body`: "Maximum 4096 characters" (Text messages page); Graph answers
/// `(#100) Param text['body'] must be at most 4096 characters long.`
pub const TEXT_BODY_MAX: usize = 4096;
/// Reply buttons `<BODY_TEXT>`: "Maximum 1024 characters" (Interactive reply buttons messages).
pub const BUTTONS_BODY_MAX: usize = 1024;
/// List `<MESSAGE_BODY_TEXT>`: "Maximum 4096 characters" (Interactive list messages).
pub const LIST_BODY_MAX: usize = 4096;
/// Interactive text header: "Maximum 60 characters" (both interactive pages).
pub const HEADER_TEXT_MAX: usize = 60;
/// Interactive footer: "Maximum 60 characters" (both interactive pages).
pub const FOOTER_TEXT_MAX: usize = 60;
/// Reply buttons: "up to three" buttons, at least one.
pub const BUTTONS_MIN: usize = 1;
/// Reply buttons: "up to three" buttons.
pub const BUTTONS_MAX: usize = 3;
/// `<BUTTON_ID>`: "Maximum 256 characters".
pub const BUTTON_ID_MAX: usize = 256;
/// `<BUTTON_LABEL_TEXT>`: "Maximum 20 characters", must be unique.
pub const BUTTON_TITLE_MAX: usize = 20;
/// List `<BUTTON_TEXT>`: "Maximum 20 characters".
pub const LIST_BUTTON_MAX: usize = 20;
/// List: "up to 10 sections".
pub const LIST_SECTIONS_MAX: usize = 10;
/// List: "up to 10 rows for all sections combined".
pub const LIST_ROWS_MAX: usize = 10;
/// `<ROW_ID>`: "Maximum 200 characters".
pub const ROW_ID_MAX: usize = 200;
/// `<ROW_TITLE_TEXT>`: "Maximum 24 characters".
pub const ROW_TITLE_MAX: usize = 24;
/// `<ROW_DESCRIPTION_TEXT>`: "Maximum 72 characters".
pub const ROW_DESCRIPTION_MAX: usize = 72;
/// `<SECTION_TITLE_TEXT>`: "Maximum 24 characters"; required when there is more than one section.
pub const SECTION_TITLE_MAX: usize = 24;
/// Media `<MEDIA_CAPTION_TEXT>`: "Maximum 1024 characters" (image, video and document pages).
pub const MEDIA_CAPTION_MAX: usize = 1024;
/// Template body text parameter when the body is the only component: 32768 characters.
pub const TEMPLATE_BODY_PARAM_MAX_ALONE: usize = 32_768;
/// Template body text parameter when other components are included: 1024 characters.
pub const TEMPLATE_BODY_PARAM_MAX_WITH_OTHERS: usize = 1024;
/// Template header text parameter: 60 characters.
pub const TEMPLATE_HEADER_PARAM_MAX: usize = 60;
/// Template text parameters may not hold more than this many consecutive spaces (error 132018).
pub const TEMPLATE_PARAM_MAX_CONSECUTIVE_SPACES: usize = 4;
/// `to`: fewest digits accepted (after an optional leading `+`).
pub const TO_MIN_DIGITS: usize = 5;
/// `to`: most digits accepted (E.164 allows at most 15).
pub const TO_MAX_DIGITS: usize = 15;

/// The message types this simulator models (the `type` field).
const MODELLED_TYPES: &[&str] =
    &["text", "template", "interactive", "reaction", "image", "video", "audio", "document", "sticker"];
/// Real Cloud API message types that are accepted by Meta but not modelled here.
const UNMODELLED_TYPES: &[&str] = &["location", "contacts"];
/// Real interactive types that are accepted by Meta but not modelled here.
const UNMODELLED_INTERACTIVE_TYPES: &[&str] =
    &["cta_url", "flow", "product", "product_list", "catalog_message", "location_request_message", "address_message"];

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

/// Meta's limit for `biz_opaque_callback_data` (Cloud API changelog: raised from 256 to 512).
const TRACKING_MAX_CHARS: usize = 512;

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

/// One reply button of an interactive `button` message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplyButton {
    pub id: String,
    pub title: String,
}

/// One section of an interactive `list` message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListSection {
    pub title: Option<String>,
    pub rows: Vec<ListRow>,
}

/// One row of a list section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListRow {
    pub id: String,
    pub title: String,
    pub description: Option<String>,
}

/// The media message types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    Image,
    Video,
    Audio,
    Document,
    Sticker,
}

impl MediaKind {
    /// The `type` value (and the name of the media object) in a send.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Video => "video",
            MediaKind::Audio => "audio",
            MediaKind::Document => "document",
            MediaKind::Sticker => "sticker",
        }
    }

    /// Whether the Cloud API accepts a `caption` for this media type (image, video and document only).
    pub fn allows_caption(self) -> bool {
        matches!(self, MediaKind::Image | MediaKind::Video | MediaKind::Document)
    }

    /// Whether the Cloud API accepts a `filename` for this media type (document only).
    pub fn allows_filename(self) -> bool {
        matches!(self, MediaKind::Document)
    }
}

/// An error as the Graph API answers it.
///
/// `code` is one of [`GraphError::INVALID_PARAMETER`] (100), [`GraphError::REQUIRED_PARAMETER_MISSING`]
/// (131008), [`GraphError::PARAMETER_VALUE_INVALID`] (131009) or [`GraphError::TEMPLATE_PARAMETER_ISSUE`]
/// (132018); `details` is one sentence naming the offending field by its dotted path
/// (for example `interactive.action.buttons[1].reply.title`).
#[derive(Debug, Clone, PartialEq)]
pub struct GraphError {
    pub http_status: u16,
    pub code: i64,
    pub message: String,
    pub details: String,
}

impl GraphError {
    /// `100` "Invalid parameter": the body does not fit the schema.
    pub const INVALID_PARAMETER: i64 = 100;
    /// `131008` "Required parameter is missing": a parameter required only in combination is absent.
    pub const REQUIRED_PARAMETER_MISSING: i64 = 131_008;
    /// `131009` "Parameter value is not valid": a value breaks a documented limit.
    pub const PARAMETER_VALUE_INVALID: i64 = 131_009;
    /// `132018` "There's an issue with the parameters in your template".
    pub const TEMPLATE_PARAMETER_ISSUE: i64 = 132_018;

    /// The JSON body Graph sends: `{"error":{"message","type":"OAuthException","code",`
    /// `"error_data":{"messaging_product":"whatsapp","details"},"fbtrace_id"}}`.
    pub fn body(&self, fbtrace_id: &str) -> Value {
        json!({
            "error": {
                "message": self.message,
                "type": "OAuthException",
                "code": self.code,
                "error_data": {
                    "messaging_product": "whatsapp",
                    "details": self.details,
                },
                "fbtrace_id": fbtrace_id,
            }
        })
    }

    fn new(code: i64, message: String, details: String) -> Self {
        GraphError { http_status: 400, code, message, details }
    }

    /// A required field is absent (or null): code 100.
    fn missing(path: &Path) -> Self {
        let message = if path.is_top_level() {
            format!("(#100) The parameter {} is required.", path.dotted())
        } else {
            format!("(#100) Param {} is required.", path.graph())
        };
        GraphError::new(Self::INVALID_PARAMETER, message, format!("{path} is required"))
    }

    /// A field has the wrong JSON type: code 100.
    fn wrong_type(path: &Path, expected: &str, got: &Value) -> Self {
        GraphError::new(
            Self::INVALID_PARAMETER,
            format!("(#100) Param {} must be {expected}.", path.graph()),
            format!("{path} must be {expected} (got {})", json_kind(got)),
        )
    }

    /// A field holds a value outside its enum: code 100.
    fn not_one_of(path: &Path, allowed: &[&str], got: &str) -> Self {
        let upper: Vec<String> = allowed.iter().map(|a| a.to_ascii_uppercase()).collect();
        let quoted: Vec<String> = allowed.iter().map(|a| format!("{a:?}")).collect();
        GraphError::new(
            Self::INVALID_PARAMETER,
            format!("(#100) Param {} must be one of {{{}}} - got {got:?}.", path.graph(), upper.join(", ")),
            format!("{path} must be one of {} (got {got:?})", quoted.join(", ")),
        )
    }

    /// A parameter required only in combination with others is absent: code 131008.
    fn conditionally_missing(details: String) -> Self {
        GraphError::new(Self::REQUIRED_PARAMETER_MISSING, "(#131008) Required parameter is missing".into(), details)
    }

    /// A value breaks a documented limit: code 131009.
    fn invalid_value(details: String) -> Self {
        GraphError::new(Self::PARAMETER_VALUE_INVALID, "(#131009) Parameter value is not valid".into(), details)
    }

    /// A template parameter's content is refused: code 132018.
    fn template_parameter(details: String) -> Self {
        GraphError::new(
            Self::TEMPLATE_PARAMETER_ISSUE,
            "(#132018) There's an issue with the parameters in your template".into(),
            details,
        )
    }
}

// ---------------------------------------------------------------------------------------------------------
// Entry point
// ---------------------------------------------------------------------------------------------------------

/// Validates a `POST /{version}/{phone_number_id}/messages` body the way the Cloud API does.
///
/// Checks run in this order and the first failure is answered: `messaging_product`, `recipient_type`,
/// `to`, `context`, `type`, then the object named by `type`. A missing `type` means `text`, as in the API.
/// JSON `null` is treated like an absent field. Unknown fields are ignored.
pub fn validate_send(body: &Value) -> Result<GraphSend, GraphError> {
    let Some(root) = body.as_object() else {
        return Err(GraphError::missing(&Path::root("messaging_product")));
    };

    let product_path = Path::root("messaging_product");
    let product = req_str(root, &product_path)?;
    if product != "whatsapp" {
        return Err(GraphError::not_one_of(&product_path, &["whatsapp"], product));
    }

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

// ---------------------------------------------------------------------------------------------------------
// Text
// ---------------------------------------------------------------------------------------------------------

fn validate_text(root: &Obj) -> Result<GraphContent, GraphError> {
    let path = Path::root("text");
    let text = req_obj(root, &path)?;
    let body_path = path.key("body");
    let body = req_str(text, &body_path)?;
    let len = char_len(body);
    if len == 0 {
        return Err(GraphError::new(
            GraphError::INVALID_PARAMETER,
            format!("(#100) Param {} must be at least 1 character long.", body_path.graph()),
            format!("{body_path} must be at least 1 character (got 0)"),
        ));
    }
    if len > TEXT_BODY_MAX {
        return Err(GraphError::new(
            GraphError::INVALID_PARAMETER,
            format!("(#100) Param {} must be at most {TEXT_BODY_MAX} characters long.", body_path.graph()),
            format!("{body_path} must be at most {TEXT_BODY_MAX} characters (got {len})"),
        ));
    }
    let preview_url = opt_bool(text, &path.key("preview_url"))?.unwrap_or(false);
    Ok(GraphContent::Text { body: body.to_string(), preview_url })
}

// ---------------------------------------------------------------------------------------------------------
// Template
// ---------------------------------------------------------------------------------------------------------

fn validate_template(root: &Obj) -> Result<GraphContent, GraphError> {
    let path = Path::root("template");
    let template = req_obj(root, &path)?;

    let name_path = path.key("name");
    let name = req_str(template, &name_path)?;
    check_not_empty(&name_path, name)?;

    let language_path = path.key("language");
    let language = req_obj(template, &language_path)?;
    let code_path = language_path.key("code");
    let code = req_str(language, &code_path)?;
    check_not_empty(&code_path, code)?;
    let policy_path = language_path.key("policy");
    if let Some(policy) = opt_str(language, &policy_path)?
        && policy != "deterministic"
    {
        return Err(GraphError::not_one_of(&policy_path, &["deterministic"], policy));
    }

    let mut parameters = Vec::new();
    let components_path = path.key("components");
    if let Some(components) = opt_array(template, &components_path)? {
        // First pass: every component is an object with a string `type` (matched case-insensitively).
        let mut typed = Vec::with_capacity(components.len());
        for (index, component) in components.iter().enumerate() {
            let component_path = components_path.index(index);
            let object = expect_obj(component, &component_path)?;
            let kind = req_str(object, &component_path.key("type"))?.to_ascii_lowercase();
            typed.push((component_path, object, kind));
        }
        let bodies = typed.iter().filter(|(_, _, kind)| kind == "body").count();
        if bodies > 1 {
            return Err(GraphError::invalid_value(format!(
                "{components_path} must contain at most one body component (got {bodies})"
            )));
        }
        let body_max = if typed.iter().all(|(_, _, kind)| kind == "body") {
            TEMPLATE_BODY_PARAM_MAX_ALONE
        } else {
            TEMPLATE_BODY_PARAM_MAX_WITH_OTHERS
        };
        for (component_path, object, kind) in &typed {
            match kind.as_str() {
                "body" => parameters = template_parameters(object, component_path, body_max, true)?,
                "header" => {
                    template_parameters(object, component_path, TEMPLATE_HEADER_PARAM_MAX, false)?;
                }
                // Button, carousel and other components: their parameters are not modelled.
                _ => {}
            }
        }
    }

    Ok(GraphContent::Template { name: name.to_string(), language: code.to_string(), parameters })
}

/// Validates the `parameters` of a body (`is_body`) or header component. Body parameters are returned in
/// order; header parameters are only checked (text parameters only).
fn template_parameters(
    component: &Obj,
    component_path: &Path,
    max_len: usize,
    is_body: bool,
) -> Result<Vec<String>, GraphError> {
    let params_path = component_path.key("parameters");
    let Some(params) = opt_array(component, &params_path)? else {
        return Ok(Vec::new());
    };
    let mut values = Vec::with_capacity(params.len());
    for (index, param) in params.iter().enumerate() {
        let param_path = params_path.index(index);
        let object = expect_obj(param, &param_path)?;
        let kind = req_str(object, &param_path.key("type"))?;
        match kind {
            "text" => {
                let text_path = param_path.key("text");
                let text = req_str(object, &text_path)?;
                check_template_text(&text_path, text, max_len)?;
                values.push(text.to_string());
            }
            "currency" | "date_time" if is_body => {
                let key = if kind == "currency" { "currency" } else { "date_time" };
                let value_path = param_path.key(key);
                let value = req_obj(object, &value_path)?;
                let fallback_path = value_path.key("fallback_value");
                let fallback = req_str(value, &fallback_path)?;
                check_template_text(&fallback_path, fallback, max_len)?;
                values.push(fallback.to_string());
            }
            other if is_body => {
                return Err(GraphError::invalid_value(format!(
                    "{} {other:?} is not a parameter type of a body component (use \"text\", \"currency\" or \
                     \"date_time\")",
                    param_path.key("type")
                )));
            }
            // Header media/location parameters are not modelled.
            _ => {}
        }
    }
    Ok(values)
}

/// A template text parameter is non-empty, has no new-line or tab characters, no more than 4 consecutive
/// spaces, and fits `max_len` characters.
fn check_template_text(path: &Path, text: &str, max_len: usize) -> Result<(), GraphError> {
    if text.is_empty() {
        return Err(GraphError::template_parameter(format!("{path} must not be empty")));
    }
    if let Some(found) = text.chars().find(|c| matches!(c, '\n' | '\r' | '\t')) {
        let what = if found == '\t' { "a tab" } else { "a new-line" };
        return Err(GraphError::template_parameter(format!(
            "{path} cannot have new-line/tab characters or more than {TEMPLATE_PARAM_MAX_CONSECUTIVE_SPACES} \
             consecutive spaces (found {what})"
        )));
    }
    let longest_run = longest_space_run(text);
    if longest_run > TEMPLATE_PARAM_MAX_CONSECUTIVE_SPACES {
        return Err(GraphError::template_parameter(format!(
            "{path} cannot have new-line/tab characters or more than {TEMPLATE_PARAM_MAX_CONSECUTIVE_SPACES} \
             consecutive spaces (found {longest_run} consecutive spaces)"
        )));
    }
    let len = char_len(text);
    if len > max_len {
        return Err(GraphError::template_parameter(format!("{path} must be at most {max_len} characters (got {len})")));
    }
    Ok(())
}

fn longest_space_run(text: &str) -> usize {
    let mut longest = 0;
    let mut current = 0;
    for c in text.chars() {
        if c == ' ' {
            current += 1;
            longest = longest.max(current);
        } else {
            current = 0;
        }
    }
    longest
}

// ---------------------------------------------------------------------------------------------------------
// Interactive
// ---------------------------------------------------------------------------------------------------------

fn validate_interactive(root: &Obj) -> Result<GraphContent, GraphError> {
    let path = Path::root("interactive");
    let interactive = req_obj(root, &path)?;
    let type_path = path.key("type");
    let kind = req_str(interactive, &type_path)?;
    match kind {
        "button" => validate_buttons(interactive, &path),
        "list" => validate_list(interactive, &path),
        other if UNMODELLED_INTERACTIVE_TYPES.contains(&other) => Err(GraphError::invalid_value(format!(
            "{type_path} {other:?} is a Cloud API interactive type that this simulator does not model"
        ))),
        other => {
            let mut allowed: Vec<&str> =
                ["button", "list"].iter().chain(UNMODELLED_INTERACTIVE_TYPES).copied().collect();
            allowed.sort_unstable();
            Err(GraphError::not_one_of(&type_path, &allowed, other))
        }
    }
}

/// Header, body and footer shared by button and list messages.
struct InteractiveFrame {
    header: Option<String>,
    body: String,
    footer: Option<String>,
}

fn interactive_frame(
    interactive: &Obj,
    path: &Path,
    body_max: usize,
    is_list: bool,
) -> Result<InteractiveFrame, GraphError> {
    let header_path = path.key("header");
    let header = match opt_obj(interactive, &header_path)? {
        Some(header) => Some(interactive_header(header, &header_path, is_list)?),
        None => None,
    };

    let body_path = path.key("body");
    let body = req_obj(interactive, &body_path)?;
    let body_text_path = body_path.key("text");
    let body_text = req_str(body, &body_text_path)?;
    check_len(&body_text_path, body_text, 1, body_max)?;

    let footer_path = path.key("footer");
    let footer = match opt_obj(interactive, &footer_path)? {
        Some(footer) => {
            let text_path = footer_path.key("text");
            let text = req_str(footer, &text_path)?;
            check_len(&text_path, text, 1, FOOTER_TEXT_MAX)?;
            Some(text.to_string())
        }
        None => None,
    };

    Ok(InteractiveFrame { header, body: body_text.to_string(), footer })
}

/// Text headers are modelled. Reply-button messages also accept image, video and document headers in the
/// real API (not modelled here); list messages accept text headers only.
fn interactive_header(header: &Obj, path: &Path, is_list: bool) -> Result<String, GraphError> {
    let type_path = path.key("type");
    let kind = req_str(header, &type_path)?;
    match kind {
        "text" => {
            let text_path = path.key("text");
            let text = req_str(header, &text_path)?;
            check_len(&text_path, text, 1, HEADER_TEXT_MAX)?;
            Ok(text.to_string())
        }
        "image" | "video" | "document" if is_list => Err(GraphError::invalid_value(format!(
            "{type_path} must be \"text\": list messages support text headers only (got {kind:?})"
        ))),
        "image" | "video" | "document" => Err(GraphError::invalid_value(format!(
            "{type_path} {kind:?} is a valid reply-button header type that this simulator does not model"
        ))),
        other => Err(GraphError::not_one_of(&type_path, &["document", "image", "text", "video"], other)),
    }
}

fn validate_buttons(interactive: &Obj, path: &Path) -> Result<GraphContent, GraphError> {
    let frame = interactive_frame(interactive, path, BUTTONS_BODY_MAX, false)?;

    let action_path = path.key("action");
    let action = req_obj(interactive, &action_path)?;
    let buttons_path = action_path.key("buttons");
    let entries = req_array(action, &buttons_path)?;
    if !(BUTTONS_MIN..=BUTTONS_MAX).contains(&entries.len()) {
        return Err(GraphError::invalid_value(format!(
            "{buttons_path} must contain between {BUTTONS_MIN} and {BUTTONS_MAX} buttons (got {})",
            entries.len()
        )));
    }

    let mut buttons = Vec::with_capacity(entries.len());
    let mut seen_ids = Uniques::default();
    let mut seen_titles = Uniques::default();
    for (index, entry) in entries.iter().enumerate() {
        let button_path = buttons_path.index(index);
        let button = expect_obj(entry, &button_path)?;
        let type_path = button_path.key("type");
        let kind = req_str(button, &type_path)?;
        if kind != "reply" {
            return Err(GraphError::not_one_of(&type_path, &["reply"], kind));
        }
        let reply_path = button_path.key("reply");
        let reply = req_obj(button, &reply_path)?;

        let id_path = reply_path.key("id");
        let id = req_str(reply, &id_path)?;
        check_len(&id_path, id, 1, BUTTON_ID_MAX)?;
        if id.trim() != id {
            return Err(GraphError::invalid_value(format!(
                "{id_path} cannot have leading or trailing spaces (got {id:?})"
            )));
        }
        seen_ids.insert(id, &id_path, "button ids")?;

        let title_path = reply_path.key("title");
        let title = req_str(reply, &title_path)?;
        check_len(&title_path, title, 1, BUTTON_TITLE_MAX)?;
        seen_titles.insert(title, &title_path, "button titles")?;

        buttons.push(ReplyButton { id: id.to_string(), title: title.to_string() });
    }

    Ok(GraphContent::Buttons { header: frame.header, body: frame.body, footer: frame.footer, buttons })
}

fn validate_list(interactive: &Obj, path: &Path) -> Result<GraphContent, GraphError> {
    let frame = interactive_frame(interactive, path, LIST_BODY_MAX, true)?;

    let action_path = path.key("action");
    let action = req_obj(interactive, &action_path)?;

    let button_path = action_path.key("button");
    let button = req_str(action, &button_path)?;
    check_len(&button_path, button, 1, LIST_BUTTON_MAX)?;

    let sections_path = action_path.key("sections");
    let entries = req_array(action, &sections_path)?;
    if !(1..=LIST_SECTIONS_MAX).contains(&entries.len()) {
        return Err(GraphError::invalid_value(format!(
            "{sections_path} must contain between 1 and {LIST_SECTIONS_MAX} sections (got {})",
            entries.len()
        )));
    }

    // First pass: shapes and row counts, so the total is known before rows are read.
    let mut shaped = Vec::with_capacity(entries.len());
    let mut total_rows = 0;
    for (index, entry) in entries.iter().enumerate() {
        let section_path = sections_path.index(index);
        let section = expect_obj(entry, &section_path)?;
        let rows_path = section_path.key("rows");
        let rows = req_array(section, &rows_path)?;
        if rows.is_empty() {
            return Err(GraphError::invalid_value(format!("{rows_path} must contain at least 1 row (got 0)")));
        }
        total_rows += rows.len();
        shaped.push((section_path, section, rows_path, rows));
    }
    if total_rows > LIST_ROWS_MAX {
        return Err(GraphError::invalid_value(format!(
            "{sections_path} must contain at most {LIST_ROWS_MAX} rows across all sections (got {total_rows})"
        )));
    }

    let several = shaped.len() > 1;
    let mut sections = Vec::with_capacity(shaped.len());
    let mut seen_row_ids = Uniques::default();
    for (section_path, section, rows_path, rows) in shaped {
        let title_path = section_path.key("title");
        let title = opt_str(section, &title_path)?;
        match title {
            Some(title) => check_len(&title_path, title, 1, SECTION_TITLE_MAX)?,
            None if several => {
                return Err(GraphError::conditionally_missing(format!(
                    "{title_path} is required when a list has more than one section"
                )));
            }
            None => {}
        }

        let mut list_rows = Vec::with_capacity(rows.len());
        for (index, entry) in rows.iter().enumerate() {
            let row_path = rows_path.index(index);
            let row = expect_obj(entry, &row_path)?;

            let id_path = row_path.key("id");
            let id = req_str(row, &id_path)?;
            check_len(&id_path, id, 1, ROW_ID_MAX)?;
            seen_row_ids.insert(id, &id_path, "row ids")?;

            let title_path = row_path.key("title");
            let title = req_str(row, &title_path)?;
            check_len(&title_path, title, 1, ROW_TITLE_MAX)?;

            let description_path = row_path.key("description");
            let description = opt_str(row, &description_path)?;
            if let Some(description) = description {
                check_len(&description_path, description, 0, ROW_DESCRIPTION_MAX)?;
            }

            list_rows.push(ListRow {
                id: id.to_string(),
                title: title.to_string(),
                description: description.map(str::to_string),
            });
        }
        sections.push(ListSection { title: title.map(str::to_string), rows: list_rows });
    }

    Ok(GraphContent::List {
        header: frame.header,
        body: frame.body,
        footer: frame.footer,
        button: button.to_string(),
        sections,
    })
}

/// Detects duplicates, naming the first occurrence in the error.
#[derive(Default)]
struct Uniques {
    seen: HashMap<String, String>,
}

impl Uniques {
    fn insert(&mut self, value: &str, path: &Path, what: &str) -> Result<(), GraphError> {
        if let Some(first) = self.seen.get(value) {
            return Err(GraphError::invalid_value(format!(
                "{path} duplicates {first} ({value:?}); {what} must be unique"
            )));
        }
        self.seen.insert(value.to_string(), path.dotted());
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------------------
// Reaction
// ---------------------------------------------------------------------------------------------------------

fn validate_reaction(root: &Obj) -> Result<GraphContent, GraphError> {
    let path = Path::root("reaction");
    let reaction = req_obj(root, &path)?;
    let id_path = path.key("message_id");
    let message_id = req_str(reaction, &id_path)?;
    check_not_empty(&id_path, message_id)?;
    // An empty emoji removes the reaction, so only presence and type are checked.
    let emoji = req_str(reaction, &path.key("emoji"))?;
    Ok(GraphContent::Reaction { message_id: message_id.to_string(), emoji: emoji.to_string() })
}

// ---------------------------------------------------------------------------------------------------------
// Media
// ---------------------------------------------------------------------------------------------------------

fn validate_media(root: &Obj, kind: MediaKind) -> Result<GraphContent, GraphError> {
    let path = Path::root(kind.as_str());
    let media = req_obj(root, &path)?;

    let link_path = path.key("link");
    let id_path = path.key("id");
    let link = opt_str(media, &link_path)?;
    let id = opt_str(media, &id_path)?;
    match (link, id) {
        (Some(_), Some(_)) => {
            return Err(GraphError::invalid_value(format!(
                "{path} must contain exactly one of {link_path} or {id_path} (got both)"
            )));
        }
        (None, None) => {
            return Err(GraphError::conditionally_missing(format!("{link_path} or {id_path} is required")));
        }
        (Some(link), None) if !is_http_url(link) => {
            return Err(GraphError::invalid_value(format!(
                "{link_path} must be an http:// or https:// URL with a host (got {link:?})"
            )));
        }
        (None, Some(id)) => check_not_empty(&id_path, id)?,
        (Some(_), None) => {}
    }

    let caption_path = path.key("caption");
    let caption = opt_str(media, &caption_path)?;
    if let Some(caption) = caption {
        if !kind.allows_caption() {
            return Err(GraphError::invalid_value(format!(
                "{caption_path} is not allowed: {} messages cannot have a caption",
                kind.as_str()
            )));
        }
        check_len(&caption_path, caption, 0, MEDIA_CAPTION_MAX)?;
    }

    let filename_path = path.key("filename");
    let filename = opt_str(media, &filename_path)?;
    if filename.is_some() && !kind.allows_filename() {
        return Err(GraphError::invalid_value(format!(
            "{filename_path} is not allowed: only document messages have a filename"
        )));
    }

    Ok(GraphContent::Media {
        kind,
        link: link.map(str::to_string),
        id: id.map(str::to_string),
        caption: caption.map(str::to_string),
        filename: filename.map(str::to_string),
    })
}

/// `http://` or `https://` (any case), then a non-empty host (name, IPv4 or bracketed IPv6) with an
/// optional numeric port; no whitespace or control characters anywhere.
fn is_http_url(url: &str) -> bool {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some(rest) = strip_prefix_ignore_case(url, "https://").or_else(|| strip_prefix_ignore_case(url, "http://"))
    else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_and_port = authority.rsplit('@').next().unwrap_or_default();
    url_host(host_and_port).is_some()
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) { text.get(prefix.len()..) } else { None }
}

/// The host of `host[:port]` or `[v6][:port]`, if both parts are well formed and the host is non-empty.
fn url_host(host_and_port: &str) -> Option<&str> {
    if let Some(bracketed) = host_and_port.strip_prefix('[') {
        let (inside, after) = bracketed.split_once(']')?;
        let valid_v6 = !inside.is_empty() && inside.chars().all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.');
        let valid_port = after.is_empty() || after.strip_prefix(':').is_some_and(is_port);
        return (valid_v6 && valid_port).then_some(inside);
    }
    let (host, port) = match host_and_port.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (host_and_port, None),
    };
    let valid_host =
        !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    let valid_port = port.is_none_or(is_port);
    (valid_host && valid_port).then_some(host)
}

fn is_port(port: &str) -> bool {
    !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok()
}

// ---------------------------------------------------------------------------------------------------------
// Field access
// ---------------------------------------------------------------------------------------------------------

type Obj = Map<String, Value>;

/// The value at the last key of `path` inside `object`; `null` counts as absent.
fn field<'a>(object: &'a Obj, path: &Path) -> Option<&'a Value> {
    object.get(path.last_key()).filter(|value| !value.is_null())
}

fn require<'a>(object: &'a Obj, path: &Path) -> Result<&'a Value, GraphError> {
    field(object, path).ok_or_else(|| GraphError::missing(path))
}

fn expect_str<'a>(value: &'a Value, path: &Path) -> Result<&'a str, GraphError> {
    value.as_str().ok_or_else(|| GraphError::wrong_type(path, "a string", value))
}

fn expect_obj<'a>(value: &'a Value, path: &Path) -> Result<&'a Obj, GraphError> {
    value.as_object().ok_or_else(|| GraphError::wrong_type(path, "a JSON object", value))
}

fn expect_array<'a>(value: &'a Value, path: &Path) -> Result<&'a [Value], GraphError> {
    value.as_array().map(Vec::as_slice).ok_or_else(|| GraphError::wrong_type(path, "an array", value))
}

fn req_str<'a>(object: &'a Obj, path: &Path) -> Result<&'a str, GraphError> {
    expect_str(require(object, path)?, path)
}

fn req_obj<'a>(object: &'a Obj, path: &Path) -> Result<&'a Obj, GraphError> {
    expect_obj(require(object, path)?, path)
}

fn req_array<'a>(object: &'a Obj, path: &Path) -> Result<&'a [Value], GraphError> {
    expect_array(require(object, path)?, path)
}

fn opt_str<'a>(object: &'a Obj, path: &Path) -> Result<Option<&'a str>, GraphError> {
    field(object, path).map(|value| expect_str(value, path)).transpose()
}

fn opt_obj<'a>(object: &'a Obj, path: &Path) -> Result<Option<&'a Obj>, GraphError> {
    field(object, path).map(|value| expect_obj(value, path)).transpose()
}

fn opt_array<'a>(object: &'a Obj, path: &Path) -> Result<Option<&'a [Value]>, GraphError> {
    field(object, path).map(|value| expect_array(value, path)).transpose()
}

fn opt_bool(object: &Obj, path: &Path) -> Result<Option<bool>, GraphError> {
    field(object, path)
        .map(|value| value.as_bool().ok_or_else(|| GraphError::wrong_type(path, "a boolean", value)))
        .transpose()
}

fn char_len(text: &str) -> usize {
    text.chars().count()
}

/// `min..=max` characters, else 131009 naming the field and the length found.
fn check_len(path: &Path, text: &str, min: usize, max: usize) -> Result<(), GraphError> {
    let len = char_len(text);
    if len < min {
        let unit = if min == 1 { "character" } else { "characters" };
        return Err(GraphError::invalid_value(format!("{path} must be at least {min} {unit} (got {len})")));
    }
    if len > max {
        return Err(GraphError::invalid_value(format!("{path} must be at most {max} characters (got {len})")));
    }
    Ok(())
}

fn check_not_empty(path: &Path, text: &str) -> Result<(), GraphError> {
    if text.is_empty() {
        return Err(GraphError::invalid_value(format!("{path} must not be empty")));
    }
    Ok(())
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "a JSON object",
    }
}

// ---------------------------------------------------------------------------------------------------------
// Field paths
// ---------------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Segment {
    Key(&'static str),
    Index(usize),
}

/// The location of a field: shown as `a.b[1].c` in details and as `a['b'][1]['c']` in Graph messages.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Path(Vec<Segment>);

impl Path {
    fn root(key: &'static str) -> Self {
        Path(vec![Segment::Key(key)])
    }

    fn key(&self, key: &'static str) -> Self {
        let mut segments = self.0.clone();
        segments.push(Segment::Key(key));
        Path(segments)
    }

    fn index(&self, index: usize) -> Self {
        let mut segments = self.0.clone();
        segments.push(Segment::Index(index));
        Path(segments)
    }

    fn is_top_level(&self) -> bool {
        self.0.len() == 1
    }

    fn last_key(&self) -> &'static str {
        match self.0.last() {
            Some(Segment::Key(key)) => key,
            _ => "",
        }
    }

    fn dotted(&self) -> String {
        let mut out = String::new();
        for segment in &self.0 {
            match segment {
                Segment::Key(key) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(key);
                }
                Segment::Index(index) => {
                    out.push('[');
                    out.push_str(&index.to_string());
                    out.push(']');
                }
            }
        }
        out
    }

    fn graph(&self) -> String {
        let mut out = String::new();
        for segment in &self.0 {
            match segment {
                Segment::Key(key) if out.is_empty() => out.push_str(key),
                Segment::Key(key) => {
                    out.push_str("['");
                    out.push_str(key);
                    out.push_str("']");
                }
                Segment::Index(index) => {
                    out.push('[');
                    out.push_str(&index.to_string());
                    out.push(']');
                }
            }
        }
        out
    }
}

impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.dotted())
    }
}

// ---------------------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const INVALID: i64 = GraphError::INVALID_PARAMETER;
    const MISSING: i64 = GraphError::REQUIRED_PARAMETER_MISSING;
    const VALUE: i64 = GraphError::PARAMETER_VALUE_INVALID;
    const TEMPLATE: i64 = GraphError::TEMPLATE_PARAMETER_ISSUE;

    fn send(kind: &str, content: Value) -> Value {
        json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "+15551234567",
            "type": kind,
            kind: content,
        })
    }

    fn ok(body: &Value) -> GraphSend {
        match validate_send(body) {
            Ok(send) => send,
            Err(err) => panic!("expected acceptance of {body}, got {err:?}"),
        }
    }

    fn err(body: &Value) -> GraphError {
        match validate_send(body) {
            Ok(send) => panic!("expected rejection of {body}, got {send:?}"),
            Err(err) => err,
        }
    }

    /// Asserts a rejection with `code`, HTTP 400 and details containing `needle`.
    fn expect(body: &Value, code: i64, needle: &str) -> GraphError {
        let error = err(body);
        assert_eq!(error.http_status, 400, "{error:?}");
        assert_eq!(error.code, code, "wrong code for {body}: {error:?}");
        assert!(error.details.contains(needle), "details {:?} should contain {needle:?}", error.details);
        error
    }

    fn s(ch: char, n: usize) -> String {
        std::iter::repeat_n(ch, n).collect()
    }

    /// Sets the value at a JSON-pointer-like path of keys/indices (test helper; panics on a bad path).
    fn set(body: &mut Value, pointer: &str, value: Value) {
        let slot = body.pointer_mut(pointer).unwrap_or_else(|| panic!("no {pointer} in body"));
        *slot = value;
    }

    fn remove(body: &mut Value, pointer: &str) {
        let (parent, key) = pointer.rsplit_once('/').unwrap_or_else(|| panic!("bad pointer {pointer}"));
        let parent = body.pointer_mut(parent).unwrap_or_else(|| panic!("no {parent} in body"));
        match parent {
            Value::Object(map) => {
                map.remove(key);
            }
            Value::Array(items) => {
                let index: usize = key.parse().unwrap_or_else(|_| panic!("bad index {key}"));
                items.remove(index);
            }
            other => panic!("cannot remove from {other}"),
        }
    }

    fn text_send(body: &str) -> Value {
        send("text", json!({ "body": body }))
    }

    fn buttons_send() -> Value {
        send(
            "interactive",
            json!({
                "type": "button",
                "header": { "type": "text", "text": "Header" },
                "body": { "text": "Pick one" },
                "footer": { "text": "Footer" },
                "action": { "buttons": [
                    { "type": "reply", "reply": { "id": "yes", "title": "Yes" } },
                    { "type": "reply", "reply": { "id": "no", "title": "No" } },
                ]},
            }),
        )
    }

    fn list_send() -> Value {
        send(
            "interactive",
            json!({
                "type": "list",
                "header": { "type": "text", "text": "Header" },
                "body": { "text": "Choose" },
                "footer": { "text": "Footer" },
                "action": {
                    "button": "Options",
                    "sections": [
                        { "title": "First", "rows": [
                            { "id": "a", "title": "A", "description": "Row A" },
                            { "id": "b", "title": "B" },
                        ]},
                        { "title": "Second", "rows": [ { "id": "c", "title": "C" } ] },
                    ],
                },
            }),
        )
    }

    fn template_send(components: Value) -> Value {
        send("template", json!({ "name": "welcome", "language": { "code": "en_US" }, "components": components }))
    }

    fn body_params(texts: &[&str]) -> Value {
        let params: Vec<Value> = texts.iter().map(|t| json!({ "type": "text", "text": t })).collect();
        json!([{ "type": "body", "parameters": params }])
    }

    fn rows(count: usize, prefix: &str) -> Value {
        Value::Array((0..count).map(|i| json!({ "id": format!("{prefix}{i}"), "title": format!("R{i}") })).collect())
    }

    // ----- accepted sends, parsed into the right struct --------------------------------------------------

    #[test]
    fn text_is_parsed() {
        let mut body = send("text", json!({ "body": "Hello", "preview_url": true }));
        body["context"] = json!({ "message_id": "wamid.ABC" });
        body["biz_opaque_callback_data"] = json!("bridge1|main|K7|n-1");
        assert_eq!(
            ok(&body),
            GraphSend {
                to: "+15551234567".into(),
                reply_to: Some("wamid.ABC".into()),
                content: GraphContent::Text { body: "Hello".into(), preview_url: true },
                tracking: Some("bridge1|main|K7|n-1".into()),
            }
        );
        body["biz_opaque_callback_data"] = json!("x".repeat(513));
        assert!(validate_send(&body).unwrap_err().details.contains("at most 512"));
    }

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
    fn template_is_parsed() {
        let body = template_send(json!([
            { "type": "header", "parameters": [ { "type": "text", "text": "Hi" } ] },
            { "type": "body", "parameters": [
                { "type": "text", "text": "Ana" },
                { "type": "currency", "currency": { "fallback_value": "$10", "code": "USD", "amount_1000": 10000 } },
                { "type": "date_time", "date_time": { "fallback_value": "May 1" } },
            ]},
            { "type": "button", "sub_type": "quick_reply", "index": "0", "parameters": [ { "type": "payload", "payload": "P" } ] },
        ]));
        assert_eq!(
            ok(&body).content,
            GraphContent::Template {
                name: "welcome".into(),
                language: "en_US".into(),
                parameters: vec!["Ana".into(), "$10".into(), "May 1".into()],
            }
        );
    }

    #[test]
    fn template_without_components_has_no_parameters() {
        let body = send(
            "template",
            json!({ "name": "hello_world", "language": { "code": "en_US", "policy": "deterministic" } }),
        );
        assert_eq!(
            ok(&body).content,
            GraphContent::Template { name: "hello_world".into(), language: "en_US".into(), parameters: vec![] }
        );
    }

    #[test]
    fn template_component_type_is_case_insensitive() {
        let body = template_send(json!([{ "type": "BODY", "parameters": [ { "type": "text", "text": "x" } ] }]));
        assert!(matches!(ok(&body).content, GraphContent::Template { ref parameters, .. } if parameters == &["x"]));
    }

    #[test]
    fn buttons_are_parsed() {
        assert_eq!(
            ok(&buttons_send()).content,
            GraphContent::Buttons {
                header: Some("Header".into()),
                body: "Pick one".into(),
                footer: Some("Footer".into()),
                buttons: vec![
                    ReplyButton { id: "yes".into(), title: "Yes".into() },
                    ReplyButton { id: "no".into(), title: "No".into() },
                ],
            }
        );
    }

    #[test]
    fn list_is_parsed() {
        assert_eq!(
            ok(&list_send()).content,
            GraphContent::List {
                header: Some("Header".into()),
                body: "Choose".into(),
                footer: Some("Footer".into()),
                button: "Options".into(),
                sections: vec![
                    ListSection {
                        title: Some("First".into()),
                        rows: vec![
                            ListRow { id: "a".into(), title: "A".into(), description: Some("Row A".into()) },
                            ListRow { id: "b".into(), title: "B".into(), description: None },
                        ],
                    },
                    ListSection {
                        title: Some("Second".into()),
                        rows: vec![ListRow { id: "c".into(), title: "C".into(), description: None }],
                    },
                ],
            }
        );
    }

    #[test]
    fn single_section_list_needs_no_title_and_header_footer_are_optional() {
        let body = send(
            "interactive",
            json!({ "type": "list", "body": { "text": "b" }, "action": { "button": "Go", "sections": [ { "rows": rows(1, "r") } ] } }),
        );
        let GraphContent::List { header, footer, sections, .. } = ok(&body).content else { panic!("not a list") };
        assert_eq!((header, footer), (None, None));
        assert_eq!(sections[0].title, None);
    }

    #[test]
    fn reaction_is_parsed_and_empty_emoji_removes() {
        for emoji in ["👍", ""] {
            let body = send("reaction", json!({ "message_id": "wamid.X", "emoji": emoji }));
            assert_eq!(ok(&body).content, GraphContent::Reaction { message_id: "wamid.X".into(), emoji: emoji.into() });
        }
    }

    #[test]
    fn media_of_each_kind_is_parsed() {
        let kinds = [MediaKind::Image, MediaKind::Video, MediaKind::Audio, MediaKind::Document, MediaKind::Sticker];
        for kind in kinds {
            let by_link = send(kind.as_str(), json!({ "link": "https://cdn.example.com/a.bin" }));
            assert_eq!(
                ok(&by_link).content,
                GraphContent::Media {
                    kind,
                    link: Some("https://cdn.example.com/a.bin".into()),
                    id: None,
                    caption: None,
                    filename: None,
                }
            );
            let by_id = send(kind.as_str(), json!({ "id": "1013859600285441" }));
            assert!(matches!(ok(&by_id).content, GraphContent::Media { id: Some(_), link: None, .. }));
        }
        let document = send(
            "document",
            json!({ "link": "http://example.com:8080/f.pdf?x=1", "caption": "Invoice", "filename": "f.pdf" }),
        );
        assert_eq!(
            ok(&document).content,
            GraphContent::Media {
                kind: MediaKind::Document,
                link: Some("http://example.com:8080/f.pdf?x=1".into()),
                id: None,
                caption: Some("Invoice".into()),
                filename: Some("f.pdf".into()),
            }
        );
        for kind in ["image", "video"] {
            ok(&send(kind, json!({ "id": "1", "caption": "c" })));
        }
    }

    #[test]
    fn media_kind_strings() {
        let names: Vec<&str> =
            [MediaKind::Image, MediaKind::Video, MediaKind::Audio, MediaKind::Document, MediaKind::Sticker]
                .into_iter()
                .map(MediaKind::as_str)
                .collect();
        assert_eq!(names, ["image", "video", "audio", "document", "sticker"]);
    }

    // ----- error body shape ------------------------------------------------------------------------------

    #[test]
    fn error_body_has_the_graph_shape() {
        let error = err(&text_send(&s('a', TEXT_BODY_MAX + 1)));
        assert_eq!(
            error.body("AbCdEf123"),
            json!({
                "error": {
                    "message": "(#100) Param text['body'] must be at most 4096 characters long.",
                    "type": "OAuthException",
                    "code": 100,
                    "error_data": {
                        "messaging_product": "whatsapp",
                        "details": "text.body must be at most 4096 characters (got 4097)",
                    },
                    "fbtrace_id": "AbCdEf123",
                }
            })
        );
    }

    #[test]
    fn messages_carry_the_code_prefix() {
        let cases = [
            (json!({}), "(#100) The parameter messaging_product is required."),
            (json!({ "messaging_product": "whatsapp", "to": 5 }), "(#100) Param to must be a string."),
            (send("text", json!({ "body": 1 })), "(#100) Param text['body'] must be a string."),
            (send("text", json!([])), "(#100) Param text must be a JSON object."),
            (send("image", json!({})), "(#131008) Required parameter is missing"),
            (send("reaction", json!({ "message_id": "", "emoji": "" })), "(#131009) Parameter value is not valid"),
            (template_send(body_params(&["a\nb"])), "(#132018) There's an issue with the parameters in your template"),
        ];
        for (body, message) in cases {
            assert_eq!(err(&body).message, message, "for {body}");
        }
    }

    // ----- envelope --------------------------------------------------------------------------------------

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

    // ----- text ------------------------------------------------------------------------------------------

    #[test]
    fn text_body_limits_count_chars() {
        for ch in ['a', 'é', '😀', '中'] {
            assert!(matches!(ok(&text_send(&s(ch, TEXT_BODY_MAX))).content, GraphContent::Text { .. }));
            let error = expect(
                &text_send(&s(ch, TEXT_BODY_MAX + 1)),
                INVALID,
                "text.body must be at most 4096 characters (got 4097)",
            );
            assert_eq!(error.message, "(#100) Param text['body'] must be at most 4096 characters long.");
        }
        // 1024 four-byte emoji are 4096 bytes but far below the limit.
        ok(&text_send(&s('😀', 1024)));
    }

    #[test]
    fn text_errors() {
        let cases: Vec<(Value, i64, &str)> = vec![
            (json!({}), INVALID, "text.body is required"),
            (json!({ "body": null }), INVALID, "text.body is required"),
            (json!({ "body": "" }), INVALID, "text.body must be at least 1 character (got 0)"),
            (json!({ "body": 12 }), INVALID, "text.body must be a string (got a number)"),
            (json!({ "body": ["x"] }), INVALID, "text.body must be a string (got an array)"),
            (json!({ "body": { "text": "x" } }), INVALID, "text.body must be a string (got a JSON object)"),
            (
                json!({ "body": "x", "preview_url": "true" }),
                INVALID,
                "text.preview_url must be a boolean (got a string)",
            ),
            (json!("hello"), INVALID, "text must be a JSON object (got a string)"),
            (json!(["hello"]), INVALID, "text must be a JSON object (got an array)"),
        ];
        for (text, code, needle) in cases {
            expect(&send("text", text), code, needle);
        }
        assert_eq!(err(&send("text", json!({}))).message, "(#100) Param text['body'] is required.");
    }

    // ----- template --------------------------------------------------------------------------------------

    #[test]
    fn template_structure_errors() {
        let cases: Vec<(Value, i64, &str)> = vec![
            (json!({ "language": { "code": "en" } }), INVALID, "template.name is required"),
            (
                json!({ "name": 1, "language": { "code": "en" } }),
                INVALID,
                "template.name must be a string (got a number)",
            ),
            (json!({ "name": "", "language": { "code": "en" } }), VALUE, "template.name must not be empty"),
            (json!({ "name": "t" }), INVALID, "template.language is required"),
            (
                json!({ "name": "t", "language": "en" }),
                INVALID,
                "template.language must be a JSON object (got a string)",
            ),
            (json!({ "name": "t", "language": {} }), INVALID, "template.language.code is required"),
            (json!({ "name": "t", "language": { "code": "" } }), VALUE, "template.language.code must not be empty"),
            (
                json!({ "name": "t", "language": { "code": "en", "policy": "fallback" } }),
                INVALID,
                "template.language.policy must be one of \"deterministic\"",
            ),
            (
                json!({ "name": "t", "language": { "code": "en" }, "components": {} }),
                INVALID,
                "template.components must be an array (got a JSON object)",
            ),
            (
                json!({ "name": "t", "language": { "code": "en" }, "components": ["body"] }),
                INVALID,
                "template.components[0] must be a JSON object (got a string)",
            ),
            (
                json!({ "name": "t", "language": { "code": "en" }, "components": [{}] }),
                INVALID,
                "template.components[0].type is required",
            ),
            (
                json!({ "name": "t", "language": { "code": "en" }, "components": [{ "type": "body" }, { "type": "body" }] }),
                VALUE,
                "template.components must contain at most one body component (got 2)",
            ),
            (
                json!({ "name": "t", "language": { "code": "en" }, "components": [{ "type": "body", "parameters": {} }] }),
                INVALID,
                "template.components[0].parameters must be an array",
            ),
            (
                json!({ "name": "t", "language": { "code": "en" }, "components": [{ "type": "body", "parameters": ["x"] }] }),
                INVALID,
                "template.components[0].parameters[0] must be a JSON object",
            ),
            (
                json!({ "name": "t", "language": { "code": "en" }, "components": [{ "type": "body", "parameters": [{ "text": "x" }] }] }),
                INVALID,
                "template.components[0].parameters[0].type is required",
            ),
            (
                json!({ "name": "t", "language": { "code": "en" }, "components": [{ "type": "body", "parameters": [{ "type": "text" }] }] }),
                INVALID,
                "template.components[0].parameters[0].text is required",
            ),
            (
                json!({ "name": "t", "language": { "code": "en" }, "components": [{ "type": "body", "parameters": [{ "type": "text", "text": 5 }] }] }),
                INVALID,
                "template.components[0].parameters[0].text must be a string (got a number)",
            ),
            (
                json!({ "name": "t", "language": { "code": "en" }, "components": [{ "type": "body", "parameters": [{ "type": "image", "image": { "id": "1" } }] }] }),
                VALUE,
                "template.components[0].parameters[0].type \"image\" is not a parameter type of a body component",
            ),
            (
                json!({ "name": "t", "language": { "code": "en" }, "components": [{ "type": "body", "parameters": [{ "type": "currency" }] }] }),
                INVALID,
                "template.components[0].parameters[0].currency is required",
            ),
            (
                json!({ "name": "t", "language": { "code": "en" }, "components": [{ "type": "body", "parameters": [{ "type": "date_time", "date_time": {} }] }] }),
                INVALID,
                "template.components[0].parameters[0].date_time.fallback_value is required",
            ),
        ];
        for (template, code, needle) in cases {
            expect(&send("template", template), code, needle);
        }
    }

    #[test]
    fn template_text_parameter_whitespace() {
        for good in ["a b", "a    b", "    ", "Olá, José 😀", "a\u{a0}\u{a0}\u{a0}\u{a0}\u{a0}b"] {
            ok(&template_send(body_params(&["first", good])));
        }
        let bad = [
            ("line\nbreak", "found a new-line"),
            ("carriage\rreturn", "found a new-line"),
            ("tab\there", "found a tab"),
            ("five     spaces", "found 5 consecutive spaces"),
            ("      ", "found 6 consecutive spaces"),
        ];
        for (text, found) in bad {
            let error = expect(
                &template_send(body_params(&["first", text])),
                TEMPLATE,
                "template.components[0].parameters[1].text cannot have new-line/tab characters or more than 4 consecutive spaces",
            );
            assert!(error.details.contains(found), "{error:?}");
        }
        expect(
            &template_send(body_params(&[""])),
            TEMPLATE,
            "template.components[0].parameters[0].text must not be empty",
        );
    }

    #[test]
    fn template_body_parameter_length_depends_on_other_components() {
        // Body only: 32768 characters.
        ok(&template_send(body_params(&[&s('x', TEMPLATE_BODY_PARAM_MAX_ALONE)])));
        ok(&template_send(body_params(&[&s('é', TEMPLATE_BODY_PARAM_MAX_ALONE)])));
        expect(
            &template_send(body_params(&[&s('x', TEMPLATE_BODY_PARAM_MAX_ALONE + 1)])),
            TEMPLATE,
            "template.components[0].parameters[0].text must be at most 32768 characters (got 32769)",
        );
        // With another component: 1024 characters.
        let with_header = |text: &str| {
            template_send(json!([
                { "type": "header", "parameters": [ { "type": "image", "image": { "link": "https://e.com/i.png" } } ] },
                { "type": "body", "parameters": [ { "type": "text", "text": text } ] },
            ]))
        };
        ok(&with_header(&s('😀', TEMPLATE_BODY_PARAM_MAX_WITH_OTHERS)));
        expect(
            &with_header(&s('😀', TEMPLATE_BODY_PARAM_MAX_WITH_OTHERS + 1)),
            TEMPLATE,
            "template.components[1].parameters[0].text must be at most 1024 characters (got 1025)",
        );
    }

    #[test]
    fn template_header_text_parameter_limits() {
        let with_header_text = |text: &str| {
            template_send(json!([
                { "type": "header", "parameters": [ { "type": "text", "text": text } ] },
                { "type": "body", "parameters": [ { "type": "text", "text": "b" } ] },
            ]))
        };
        ok(&with_header_text(&s('h', TEMPLATE_HEADER_PARAM_MAX)));
        expect(
            &with_header_text(&s('h', TEMPLATE_HEADER_PARAM_MAX + 1)),
            TEMPLATE,
            "template.components[0].parameters[0].text must be at most 60 characters (got 61)",
        );
        expect(&with_header_text("a\tb"), TEMPLATE, "template.components[0].parameters[0].text cannot have");
    }

    // ----- interactive -----------------------------------------------------------------------------------

    #[test]
    fn interactive_type_errors() {
        let cases: Vec<(Value, i64, &str)> = vec![
            (json!({ "body": { "text": "b" } }), INVALID, "interactive.type is required"),
            (json!({ "type": 1 }), INVALID, "interactive.type must be a string"),
            (json!({ "type": "buttons" }), INVALID, "interactive.type must be one of"),
            (
                json!({ "type": "cta_url" }),
                VALUE,
                "interactive.type \"cta_url\" is a Cloud API interactive type that this simulator does not model",
            ),
            (json!({ "type": "flow" }), VALUE, "does not model"),
            (json!("button"), INVALID, "interactive must be a JSON object (got a string)"),
        ];
        for (interactive, code, needle) in cases {
            expect(&send("interactive", interactive), code, needle);
        }
    }

    /// The string at `pointer` passes at `max` characters and fails with 131009 naming `name` at `max + 1`.
    fn assert_string_limit(base: &Value, pointer: &str, max: usize, name: &str) {
        for ch in ['x', '😀'] {
            let mut at = base.clone();
            set(&mut at, pointer, json!(s(ch, max)));
            ok(&at);
            let mut over = base.clone();
            set(&mut over, pointer, json!(s(ch, max + 1)));
            expect(&over, VALUE, &format!("{name} must be at most {max} characters (got {})", max + 1));
        }
    }

    #[test]
    fn button_message_string_limits() {
        let base = buttons_send();
        let cases = [
            ("/interactive/body/text", BUTTONS_BODY_MAX, "interactive.body.text"),
            ("/interactive/header/text", HEADER_TEXT_MAX, "interactive.header.text"),
            ("/interactive/footer/text", FOOTER_TEXT_MAX, "interactive.footer.text"),
            ("/interactive/action/buttons/1/reply/id", BUTTON_ID_MAX, "interactive.action.buttons[1].reply.id"),
            (
                "/interactive/action/buttons/1/reply/title",
                BUTTON_TITLE_MAX,
                "interactive.action.buttons[1].reply.title",
            ),
        ];
        for (pointer, max, name) in cases {
            assert_string_limit(&base, pointer, max, name);
        }
        let mut long_title = base.clone();
        set(&mut long_title, "/interactive/action/buttons/1/reply/title", json!("This title is too long"));
        let error = err(&long_title);
        assert_eq!(error.details, "interactive.action.buttons[1].reply.title must be at most 20 characters (got 22)");
    }

    #[test]
    fn button_message_errors() {
        let three = json!([
            { "type": "reply", "reply": { "id": "1", "title": "One" } },
            { "type": "reply", "reply": { "id": "2", "title": "Two" } },
            { "type": "reply", "reply": { "id": "3", "title": "Three" } },
        ]);
        let mut at_max = buttons_send();
        set(&mut at_max, "/interactive/action/buttons", three.clone());
        assert!(matches!(ok(&at_max).content, GraphContent::Buttons { ref buttons, .. } if buttons.len() == 3));

        let mut four = three.clone();
        if let Value::Array(items) = &mut four {
            items.push(json!({ "type": "reply", "reply": { "id": "4", "title": "Four" } }));
        }

        let cases: Vec<(&str, Value, i64, &str)> = vec![
            (
                "/interactive/action/buttons",
                json!([]),
                VALUE,
                "interactive.action.buttons must contain between 1 and 3 buttons (got 0)",
            ),
            (
                "/interactive/action/buttons",
                four,
                VALUE,
                "interactive.action.buttons must contain between 1 and 3 buttons (got 4)",
            ),
            (
                "/interactive/action/buttons",
                json!({}),
                INVALID,
                "interactive.action.buttons must be an array (got a JSON object)",
            ),
            (
                "/interactive/action/buttons/0",
                json!("yes"),
                INVALID,
                "interactive.action.buttons[0] must be a JSON object (got a string)",
            ),
            (
                "/interactive/action/buttons/0/type",
                json!("url"),
                INVALID,
                "interactive.action.buttons[0].type must be one of \"reply\" (got \"url\")",
            ),
            (
                "/interactive/action/buttons/0/reply",
                json!([]),
                INVALID,
                "interactive.action.buttons[0].reply must be a JSON object (got an array)",
            ),
            (
                "/interactive/action/buttons/0/reply/id",
                json!(""),
                VALUE,
                "interactive.action.buttons[0].reply.id must be at least 1 character (got 0)",
            ),
            (
                "/interactive/action/buttons/0/reply/id",
                json!(1),
                INVALID,
                "interactive.action.buttons[0].reply.id must be a string (got a number)",
            ),
            (
                "/interactive/action/buttons/0/reply/id",
                json!(" yes"),
                VALUE,
                "interactive.action.buttons[0].reply.id cannot have leading or trailing spaces",
            ),
            (
                "/interactive/action/buttons/1/reply/id",
                json!("yes"),
                VALUE,
                "interactive.action.buttons[1].reply.id duplicates interactive.action.buttons[0].reply.id (\"yes\"); button ids must be unique",
            ),
            (
                "/interactive/action/buttons/0/reply/title",
                json!(""),
                VALUE,
                "interactive.action.buttons[0].reply.title must be at least 1 character (got 0)",
            ),
            (
                "/interactive/action/buttons/1/reply/title",
                json!("Yes"),
                VALUE,
                "interactive.action.buttons[1].reply.title duplicates interactive.action.buttons[0].reply.title (\"Yes\"); button titles must be unique",
            ),
            ("/interactive/body/text", json!(""), VALUE, "interactive.body.text must be at least 1 character (got 0)"),
            ("/interactive/body/text", json!(5), INVALID, "interactive.body.text must be a string (got a number)"),
            ("/interactive/body", json!("text"), INVALID, "interactive.body must be a JSON object (got a string)"),
            (
                "/interactive/header/type",
                json!("image"),
                VALUE,
                "interactive.header.type \"image\" is a valid reply-button header type that this simulator does not model",
            ),
            ("/interactive/header/type", json!("audio"), INVALID, "interactive.header.type must be one of"),
            (
                "/interactive/header",
                json!("Header"),
                INVALID,
                "interactive.header must be a JSON object (got a string)",
            ),
            (
                "/interactive/footer/text",
                json!(""),
                VALUE,
                "interactive.footer.text must be at least 1 character (got 0)",
            ),
            ("/interactive/footer", json!(["f"]), INVALID, "interactive.footer must be a JSON object (got an array)"),
            ("/interactive/action", json!([]), INVALID, "interactive.action must be a JSON object (got an array)"),
        ];
        for (pointer, value, code, needle) in cases {
            let mut body = buttons_send();
            set(&mut body, pointer, value);
            expect(&body, code, needle);
        }

        let removals: Vec<(&str, &str)> = vec![
            ("/interactive/body", "interactive.body is required"),
            ("/interactive/body/text", "interactive.body.text is required"),
            ("/interactive/action", "interactive.action is required"),
            ("/interactive/action/buttons", "interactive.action.buttons is required"),
            ("/interactive/action/buttons/0/type", "interactive.action.buttons[0].type is required"),
            ("/interactive/action/buttons/0/reply", "interactive.action.buttons[0].reply is required"),
            ("/interactive/action/buttons/0/reply/id", "interactive.action.buttons[0].reply.id is required"),
            ("/interactive/action/buttons/0/reply/title", "interactive.action.buttons[0].reply.title is required"),
            ("/interactive/header/type", "interactive.header.type is required"),
            ("/interactive/header/text", "interactive.header.text is required"),
            ("/interactive/footer/text", "interactive.footer.text is required"),
        ];
        for (pointer, needle) in removals {
            let mut body = buttons_send();
            remove(&mut body, pointer);
            expect(&body, INVALID, needle);
        }
    }

    #[test]
    fn list_message_string_limits() {
        let base = list_send();
        let cases = [
            ("/interactive/body/text", LIST_BODY_MAX, "interactive.body.text"),
            ("/interactive/header/text", HEADER_TEXT_MAX, "interactive.header.text"),
            ("/interactive/footer/text", FOOTER_TEXT_MAX, "interactive.footer.text"),
            ("/interactive/action/button", LIST_BUTTON_MAX, "interactive.action.button"),
            ("/interactive/action/sections/1/title", SECTION_TITLE_MAX, "interactive.action.sections[1].title"),
            ("/interactive/action/sections/0/rows/1/id", ROW_ID_MAX, "interactive.action.sections[0].rows[1].id"),
            (
                "/interactive/action/sections/0/rows/1/title",
                ROW_TITLE_MAX,
                "interactive.action.sections[0].rows[1].title",
            ),
            (
                "/interactive/action/sections/0/rows/0/description",
                ROW_DESCRIPTION_MAX,
                "interactive.action.sections[0].rows[0].description",
            ),
        ];
        for (pointer, max, name) in cases {
            assert_string_limit(&base, pointer, max, name);
        }
    }

    #[test]
    fn list_counts() {
        // 10 sections of one row each: at both limits.
        let ten_sections: Vec<Value> = (0..LIST_SECTIONS_MAX)
            .map(|i| json!({ "title": format!("S{i}"), "rows": rows(1, &format!("s{i}r")) }))
            .collect();
        let mut body = list_send();
        set(&mut body, "/interactive/action/sections", Value::Array(ten_sections.clone()));
        ok(&body);

        let mut eleven = ten_sections;
        eleven.push(json!({ "title": "S10", "rows": rows(1, "s10r") }));
        set(&mut body, "/interactive/action/sections", Value::Array(eleven));
        expect(&body, VALUE, "interactive.action.sections must contain between 1 and 10 sections (got 11)");

        set(&mut body, "/interactive/action/sections", json!([]));
        expect(&body, VALUE, "interactive.action.sections must contain between 1 and 10 sections (got 0)");

        // 10 rows across sections pass, 11 fail.
        set(
            &mut body,
            "/interactive/action/sections",
            json!([{ "title": "A", "rows": rows(6, "a") }, { "title": "B", "rows": rows(4, "b") }]),
        );
        ok(&body);
        set(
            &mut body,
            "/interactive/action/sections",
            json!([{ "title": "A", "rows": rows(6, "a") }, { "title": "B", "rows": rows(5, "b") }]),
        );
        expect(&body, VALUE, "interactive.action.sections must contain at most 10 rows across all sections (got 11)");
        set(&mut body, "/interactive/action/sections", json!([{ "rows": rows(11, "a") }]));
        expect(&body, VALUE, "(got 11)");
    }

    #[test]
    fn list_errors() {
        let cases: Vec<(&str, Value, i64, &str)> = vec![
            (
                "/interactive/action/button",
                json!(""),
                VALUE,
                "interactive.action.button must be at least 1 character (got 0)",
            ),
            (
                "/interactive/action/button",
                json!(["Go"]),
                INVALID,
                "interactive.action.button must be a string (got an array)",
            ),
            (
                "/interactive/action/sections",
                json!({}),
                INVALID,
                "interactive.action.sections must be an array (got a JSON object)",
            ),
            (
                "/interactive/action/sections/0",
                json!([]),
                INVALID,
                "interactive.action.sections[0] must be a JSON object (got an array)",
            ),
            (
                "/interactive/action/sections/0/rows",
                json!([]),
                VALUE,
                "interactive.action.sections[0].rows must contain at least 1 row (got 0)",
            ),
            (
                "/interactive/action/sections/0/rows",
                json!("a"),
                INVALID,
                "interactive.action.sections[0].rows must be an array (got a string)",
            ),
            (
                "/interactive/action/sections/0/rows/0",
                json!(1),
                INVALID,
                "interactive.action.sections[0].rows[0] must be a JSON object (got a number)",
            ),
            (
                "/interactive/action/sections/0/rows/0/id",
                json!(""),
                VALUE,
                "interactive.action.sections[0].rows[0].id must be at least 1 character (got 0)",
            ),
            (
                "/interactive/action/sections/1/rows/0/id",
                json!("a"),
                VALUE,
                "interactive.action.sections[1].rows[0].id duplicates interactive.action.sections[0].rows[0].id (\"a\"); row ids must be unique",
            ),
            (
                "/interactive/action/sections/0/rows/1/id",
                json!("a"),
                VALUE,
                "interactive.action.sections[0].rows[1].id duplicates interactive.action.sections[0].rows[0].id",
            ),
            (
                "/interactive/action/sections/0/rows/0/title",
                json!(""),
                VALUE,
                "interactive.action.sections[0].rows[0].title must be at least 1 character (got 0)",
            ),
            (
                "/interactive/action/sections/0/rows/0/description",
                json!(false),
                INVALID,
                "interactive.action.sections[0].rows[0].description must be a string (got a boolean)",
            ),
            (
                "/interactive/action/sections/0/title",
                json!(""),
                VALUE,
                "interactive.action.sections[0].title must be at least 1 character (got 0)",
            ),
            (
                "/interactive/action/sections/0/title",
                json!(1),
                INVALID,
                "interactive.action.sections[0].title must be a string (got a number)",
            ),
            (
                "/interactive/action/sections/1/title",
                json!(null),
                MISSING,
                "interactive.action.sections[1].title is required when a list has more than one section",
            ),
            (
                "/interactive/header/type",
                json!("image"),
                VALUE,
                "interactive.header.type must be \"text\": list messages support text headers only (got \"image\")",
            ),
            ("/interactive/body/text", json!(""), VALUE, "interactive.body.text must be at least 1 character (got 0)"),
        ];
        for (pointer, value, code, needle) in cases {
            let mut body = list_send();
            set(&mut body, pointer, value);
            expect(&body, code, needle);
        }

        let removals: Vec<(&str, i64, &str)> = vec![
            ("/interactive/action/button", INVALID, "interactive.action.button is required"),
            ("/interactive/action/sections", INVALID, "interactive.action.sections is required"),
            ("/interactive/action/sections/0/rows", INVALID, "interactive.action.sections[0].rows is required"),
            (
                "/interactive/action/sections/0/rows/0/id",
                INVALID,
                "interactive.action.sections[0].rows[0].id is required",
            ),
            (
                "/interactive/action/sections/0/rows/0/title",
                INVALID,
                "interactive.action.sections[0].rows[0].title is required",
            ),
            (
                "/interactive/action/sections/0/title",
                MISSING,
                "interactive.action.sections[0].title is required when a list has more than one section",
            ),
        ];
        for (pointer, code, needle) in removals {
            let mut body = list_send();
            remove(&mut body, pointer);
            expect(&body, code, needle);
        }
        let mut no_description = list_send();
        remove(&mut no_description, "/interactive/action/sections/0/rows/0/description");
        ok(&no_description);
    }

    // ----- reaction --------------------------------------------------------------------------------------

    #[test]
    fn reaction_errors() {
        let cases: Vec<(Value, i64, &str)> = vec![
            (json!({ "emoji": "👍" }), INVALID, "reaction.message_id is required"),
            (json!({ "message_id": "", "emoji": "👍" }), VALUE, "reaction.message_id must not be empty"),
            (json!({ "message_id": 1, "emoji": "👍" }), INVALID, "reaction.message_id must be a string (got a number)"),
            (json!({ "message_id": "wamid.X" }), INVALID, "reaction.emoji is required"),
            (json!({ "message_id": "wamid.X", "emoji": null }), INVALID, "reaction.emoji is required"),
            (
                json!({ "message_id": "wamid.X", "emoji": 128077 }),
                INVALID,
                "reaction.emoji must be a string (got a number)",
            ),
            (json!(["wamid.X", "👍"]), INVALID, "reaction must be a JSON object (got an array)"),
        ];
        for (reaction, code, needle) in cases {
            expect(&send("reaction", reaction), code, needle);
        }
    }

    // ----- media -----------------------------------------------------------------------------------------

    #[test]
    fn media_source_rules() {
        for kind in ["image", "video", "audio", "document", "sticker"] {
            expect(
                &send(kind, json!({ "link": "https://e.com/a", "id": "1" })),
                VALUE,
                &format!("{kind} must contain exactly one of {kind}.link or {kind}.id (got both)"),
            );
            let error = expect(&send(kind, json!({})), MISSING, &format!("{kind}.link or {kind}.id is required"));
            assert_eq!(error.message, "(#131008) Required parameter is missing");
            expect(&send(kind, json!({ "id": "" })), VALUE, &format!("{kind}.id must not be empty"));
            expect(&send(kind, json!({ "id": 42 })), INVALID, &format!("{kind}.id must be a string (got a number)"));
            expect(
                &send(kind, json!("https://e.com/a")),
                INVALID,
                &format!("{kind} must be a JSON object (got a string)"),
            );
        }
        let good_links = [
            "https://e.com/a.png",
            "HTTPS://E.COM",
            "http://localhost:8080/x",
            "http://127.0.0.1/x",
            "https://user:pw@e.com/x",
            "https://[::1]:443/x",
            "https://my_bucket.s3.example.com/a",
        ];
        for link in good_links {
            ok(&send("image", json!({ "link": link })));
        }
        let bad_links = [
            "",
            "e.com/a.png",
            "ftp://e.com/a",
            "https://",
            "https:///a.png",
            "https://?x",
            "https://e.com:port/a",
            "https://e.com:99999/a",
            "https://e .com/a",
            "https://e.com/a b",
            "https://[zz]/a",
            "https://[::1/a",
            "//e.com/a",
            "https://é.com/a",
        ];
        for link in bad_links {
            let error = expect(
                &send("image", json!({ "link": link })),
                VALUE,
                "image.link must be an http:// or https:// URL with a host",
            );
            assert!(error.details.contains(&format!("{link:?}")), "{error:?}");
        }
    }

    #[test]
    fn media_caption_and_filename_rules() {
        for kind in ["image", "video", "document"] {
            for ch in ['c', '😀'] {
                ok(&send(kind, json!({ "id": "1", "caption": s(ch, MEDIA_CAPTION_MAX) })));
                expect(
                    &send(kind, json!({ "id": "1", "caption": s(ch, MEDIA_CAPTION_MAX + 1) })),
                    VALUE,
                    &format!("{kind}.caption must be at most 1024 characters (got 1025)"),
                );
            }
            expect(
                &send(kind, json!({ "id": "1", "caption": 1 })),
                INVALID,
                &format!("{kind}.caption must be a string"),
            );
        }
        for kind in ["audio", "sticker"] {
            expect(
                &send(kind, json!({ "id": "1", "caption": "c" })),
                VALUE,
                &format!("{kind}.caption is not allowed: {kind} messages cannot have a caption"),
            );
        }
        for kind in ["image", "video", "audio", "sticker"] {
            expect(
                &send(kind, json!({ "id": "1", "filename": "a.bin" })),
                VALUE,
                &format!("{kind}.filename is not allowed: only document messages have a filename"),
            );
        }
        expect(
            &send("document", json!({ "id": "1", "filename": ["a"] })),
            INVALID,
            "document.filename must be a string",
        );
    }

    // ----- paths -----------------------------------------------------------------------------------------

    #[test]
    fn paths_render_in_both_styles() {
        let path = Path::root("interactive").key("action").key("buttons").index(1).key("reply").key("title");
        assert_eq!(path.dotted(), "interactive.action.buttons[1].reply.title");
        assert_eq!(path.graph(), "interactive['action']['buttons'][1]['reply']['title']");
        assert_eq!(path.to_string(), path.dotted());
        assert!(Path::root("to").is_top_level());
        assert_eq!(Path::root("a").index(0).last_key(), "");
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

    // ----- property tests: random JSON never panics --------------------------------------------------------

    const KEYS: &[&str] = &[
        "messaging_product",
        "recipient_type",
        "to",
        "type",
        "context",
        "message_id",
        "text",
        "body",
        "preview_url",
        "template",
        "name",
        "language",
        "code",
        "policy",
        "components",
        "parameters",
        "interactive",
        "header",
        "footer",
        "action",
        "buttons",
        "reply",
        "id",
        "title",
        "button",
        "sections",
        "rows",
        "description",
        "reaction",
        "emoji",
        "image",
        "video",
        "audio",
        "document",
        "sticker",
        "link",
        "caption",
        "filename",
        "currency",
        "date_time",
        "fallback_value",
    ];
    const WORDS: &[&str] = &[
        "whatsapp",
        "individual",
        "15551234567",
        "+15551234567",
        "text",
        "template",
        "interactive",
        "reaction",
        "image",
        "video",
        "audio",
        "document",
        "sticker",
        "button",
        "list",
        "reply",
        "body",
        "header",
        "BODY",
        "currency",
        "date_time",
        "https://e.com/a",
        "http://",
        "",
        " ",
        "a\nb",
        "a     b",
        "😀",
        "é",
        "cta_url",
    ];

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>().prop_map(|f| json!(f)),
            prop::sample::select(WORDS).prop_map(|w| json!(w)),
            ".{0,30}".prop_map(Value::String),
            (prop::sample::select(&['x', '😀', ' '][..]), 0usize..5000).prop_map(|(c, n)| json!(s(c, n))),
        ];
        leaf.prop_recursive(6, 96, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..12).prop_map(Value::Array),
                prop::collection::vec((prop::sample::select(KEYS), inner.clone()), 0..10)
                    .prop_map(|pairs| Value::Object(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
                prop::collection::vec((".{0,8}", inner), 0..4)
                    .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
            ]
        })
    }

    /// Known-good bodies with one subtree replaced by random JSON.
    fn arb_mutated() -> impl Strategy<Value = Value> {
        let bases = vec![
            text_send("hi"),
            buttons_send(),
            list_send(),
            template_send(body_params(&["a", "b"])),
            send("reaction", json!({ "message_id": "m", "emoji": "👍" })),
            send("document", json!({ "link": "https://e.com/f.pdf", "caption": "c", "filename": "f.pdf" })),
        ];
        (prop::sample::select(bases), any::<prop::sample::Index>(), arb_json()).prop_map(|(mut base, index, value)| {
            let pointers = all_pointers(&base);
            if let Some(slot) = pointers.get(index.index(pointers.len())).and_then(|p| base.pointer_mut(p)) {
                *slot = value;
            }
            base
        })
    }

    fn all_pointers(value: &Value) -> Vec<String> {
        fn walk(value: &Value, prefix: String, out: &mut Vec<String>) {
            match value {
                Value::Object(map) => {
                    for (key, child) in map {
                        let pointer = format!("{prefix}/{key}");
                        out.push(pointer.clone());
                        walk(child, pointer, out);
                    }
                }
                Value::Array(items) => {
                    for (index, child) in items.iter().enumerate() {
                        let pointer = format!("{prefix}/{index}");
                        out.push(pointer.clone());
                        walk(child, pointer, out);
                    }
                }
                _ => {}
            }
        }
        let mut out = vec![String::new()];
        walk(value, String::new(), &mut out);
        out
    }

    fn check_invariants(body: &Value) {
        match validate_send(body) {
            Ok(send) => {
                assert!(send.to.trim_start_matches('+').bytes().all(|b| b.is_ascii_digit()));
                // Accepted sends are stable: validating again gives the same record.
                assert_eq!(validate_send(body), Ok(send));
            }
            Err(error) => {
                assert_eq!(error.http_status, 400);
                assert!([INVALID, MISSING, VALUE, TEMPLATE].contains(&error.code), "{error:?}");
                assert!(error.message.starts_with(&format!("(#{})", error.code)), "{error:?}");
                assert!(!error.details.is_empty());
                let rendered = error.body("trace");
                assert_eq!(rendered["error"]["code"], json!(error.code));
                assert_eq!(rendered["error"]["error_data"]["details"], json!(error.details));
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn random_json_never_panics(body in arb_json()) {
            check_invariants(&body);
        }

        #[test]
        fn random_envelopes_never_panic(
            kind in prop::sample::select(WORDS),
            content in arb_json(),
            to in prop::sample::select(WORDS),
        ) {
            let body = json!({ "messaging_product": "whatsapp", "to": to, "type": kind, kind: content });
            check_invariants(&body);
        }

        #[test]
        fn mutated_valid_sends_never_panic(body in arb_mutated()) {
            check_invariants(&body);
        }

        #[test]
        fn text_length_rule_matches_char_count(text in ".{1,64}", pad in 4000usize..4200) {
            let body_text: String = std::iter::repeat_n('x', pad).chain(text.chars()).collect();
            let accepted = validate_send(&text_send(&body_text)).is_ok();
            prop_assert_eq!(accepted, body_text.chars().count() <= TEXT_BODY_MAX);
        }
    }
}
