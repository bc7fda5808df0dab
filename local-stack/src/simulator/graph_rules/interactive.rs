//! Interactive messages: the `interactive.type` dispatch, and the header, body and footer that reply-button
//! and list messages share.

use std::collections::HashMap;

use super::GraphContent;
use super::buttons::validate_buttons;
use super::error::GraphError;
use super::json::{Obj, check_len, opt_obj, req_obj, req_str};
use super::list::validate_list;
use super::path::Path;

/// Interactive text header: "Maximum 60 characters" (both interactive pages).
pub const HEADER_TEXT_MAX: usize = 60;
/// Interactive footer: "Maximum 60 characters" (both interactive pages).
pub const FOOTER_TEXT_MAX: usize = 60;

/// Real interactive types that are accepted by Meta but not modelled here.
const UNMODELLED_INTERACTIVE_TYPES: &[&str] =
    &["cta_url", "flow", "product", "product_list", "catalog_message", "location_request_message", "address_message"];

pub(super) fn validate_interactive(root: &Obj) -> Result<GraphContent, GraphError> {
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
pub(super) struct InteractiveFrame {
    pub(super) header: Option<String>,
    pub(super) body: String,
    pub(super) footer: Option<String>,
}

pub(super) fn interactive_frame(
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

/// Detects duplicates, naming the first occurrence in the error.
#[derive(Default)]
pub(super) struct Uniques {
    seen: HashMap<String, String>,
}

impl Uniques {
    pub(super) fn insert(&mut self, value: &str, path: &Path, what: &str) -> Result<(), GraphError> {
        if let Some(first) = self.seen.get(value) {
            return Err(GraphError::invalid_value(format!(
                "{path} duplicates {first} ({value:?}); {what} must be unique"
            )));
        }
        self.seen.insert(value.to_string(), path.dotted());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::simulator::graph_rules::test_support::*;

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
}
