//! [`GraphError`]: the errors the Graph API answers, their codes, and the JSON body Graph sends for them.

use serde_json::{Value, json};

use super::json::json_kind;
use super::path::Path;

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

    pub(super) fn new(code: i64, message: String, details: String) -> Self {
        GraphError { http_status: 400, code, message, details }
    }

    /// A required field is absent (or null): code 100.
    pub(super) fn missing(path: &Path) -> Self {
        let message = if path.is_top_level() {
            format!("(#100) The parameter {} is required.", path.dotted())
        } else {
            format!("(#100) Param {} is required.", path.graph())
        };
        GraphError::new(Self::INVALID_PARAMETER, message, format!("{path} is required"))
    }

    /// A field has the wrong JSON type: code 100.
    pub(super) fn wrong_type(path: &Path, expected: &str, got: &Value) -> Self {
        GraphError::new(
            Self::INVALID_PARAMETER,
            format!("(#100) Param {} must be {expected}.", path.graph()),
            format!("{path} must be {expected} (got {})", json_kind(got)),
        )
    }

    /// A field holds a value outside its enum: code 100.
    pub(super) fn not_one_of(path: &Path, allowed: &[&str], got: &str) -> Self {
        let upper: Vec<String> = allowed.iter().map(|a| a.to_ascii_uppercase()).collect();
        let quoted: Vec<String> = allowed.iter().map(|a| format!("{a:?}")).collect();
        GraphError::new(
            Self::INVALID_PARAMETER,
            format!("(#100) Param {} must be one of {{{}}} - got {got:?}.", path.graph(), upper.join(", ")),
            format!("{path} must be one of {} (got {got:?})", quoted.join(", ")),
        )
    }

    /// A parameter required only in combination with others is absent: code 131008.
    pub(super) fn conditionally_missing(details: String) -> Self {
        GraphError::new(Self::REQUIRED_PARAMETER_MISSING, "(#131008) Required parameter is missing".into(), details)
    }

    /// A value breaks a documented limit: code 131009.
    pub(super) fn invalid_value(details: String) -> Self {
        GraphError::new(Self::PARAMETER_VALUE_INVALID, "(#131009) Parameter value is not valid".into(), details)
    }

    /// A template parameter's content is refused: code 132018.
    pub(super) fn template_parameter(details: String) -> Self {
        GraphError::new(
            Self::TEMPLATE_PARAMETER_ISSUE,
            "(#132018) There's an issue with the parameters in your template".into(),
            details,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::graph_rules::test_support::*;
    use crate::simulator::graph_rules::text::TEXT_BODY_MAX;

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
}
