//! Reaction messages: the `reaction` object (`message_id`, and an `emoji` that is empty to remove a reaction).

use super::GraphContent;
use super::error::GraphError;
use super::json::{Obj, check_not_empty, req_obj, req_str};
use super::path::Path;

pub(super) fn validate_reaction(root: &Obj) -> Result<GraphContent, GraphError> {
    let path = Path::root("reaction");
    let reaction = req_obj(root, &path)?;
    let id_path = path.key("message_id");
    let message_id = req_str(reaction, &id_path)?;
    check_not_empty(&id_path, message_id)?;
    // An empty emoji removes the reaction, so only presence and type are checked.
    let emoji = req_str(reaction, &path.key("emoji"))?;
    Ok(GraphContent::Reaction { message_id: message_id.to_string(), emoji: emoji.to_string() })
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::simulator::graph_rules::test_support::*;

    #[test]
    fn reaction_is_parsed_and_empty_emoji_removes() {
        for emoji in ["👍", ""] {
            let body = send("reaction", json!({ "message_id": "wamid.X", "emoji": emoji }));
            assert_eq!(ok(&body).content, GraphContent::Reaction { message_id: "wamid.X".into(), emoji: emoji.into() });
        }
    }

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
}
