//! Interactive reply-button messages (`interactive.type` `"button"`): one to three buttons with unique ids
//! and titles.

use serde::Serialize;

use super::GraphContent;
use super::error::GraphError;
use super::interactive::{Uniques, interactive_frame};
use super::json::{Obj, check_len, expect_obj, req_array, req_obj, req_str};
use super::path::Path;

/// Reply buttons `<BODY_TEXT>`: "Maximum 1024 characters" (Interactive reply buttons messages).
pub const BUTTONS_BODY_MAX: usize = 1024;
/// Reply buttons: "up to three" buttons, at least one.
pub const BUTTONS_MIN: usize = 1;
/// Reply buttons: "up to three" buttons.
pub const BUTTONS_MAX: usize = 3;
/// `<BUTTON_ID>`: "Maximum 256 characters".
pub const BUTTON_ID_MAX: usize = 256;
/// `<BUTTON_LABEL_TEXT>`: "Maximum 20 characters", must be unique.
pub const BUTTON_TITLE_MAX: usize = 20;

/// One reply button of an interactive `button` message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplyButton {
    pub id: String,
    pub title: String,
}

pub(super) fn validate_buttons(interactive: &Obj, path: &Path) -> Result<GraphContent, GraphError> {
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

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::simulator::graph_rules::interactive::{FOOTER_TEXT_MAX, HEADER_TEXT_MAX};
    use crate::simulator::graph_rules::test_support::*;

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
}
