//! Text messages: the `text` object (`body`, `preview_url`).

use super::GraphContent;
use super::error::GraphError;
use super::json::{Obj, char_len, opt_bool, req_obj, req_str};
use super::path::Path;

/// `text.body`: "Maximum 4096 characters" (Text messages page); Graph answers
/// `(#100) Param text['body'] must be at most 4096 characters long.`
pub const TEXT_BODY_MAX: usize = 4096;

pub(super) fn validate_text(root: &Obj) -> Result<GraphContent, GraphError> {
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;
    use crate::simulator::graph_rules::test_support::*;
    use crate::simulator::graph_rules::{GraphSend, validate_send};

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

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn text_length_rule_matches_char_count(text in ".{1,64}", pad in 4000usize..4200) {
            let body_text: String = std::iter::repeat_n('x', pad).chain(text.chars()).collect();
            let accepted = validate_send(&text_send(&body_text)).is_ok();
            prop_assert_eq!(accepted, body_text.chars().count() <= TEXT_BODY_MAX);
        }
    }
}
