//! Marking a received message as read: `{"messaging_product": "whatsapp", "status": "read",
//! "message_id": "wamid…"}` on the same `/messages` endpoint as sends (Cloud API, "Mark messages
//! as read", updated 2026-10-15).
//!
//! It is not a message: Graph answers `{"success": true}`, with no wamid and no status
//! notifications after it, and the sender sees blue ticks. Marking one message also marks the
//! earlier messages of the chat read. An id that names no message the business number received
//! is answered with 131009 "Parameter value is not valid" (Meta's page says so explicitly); that
//! check needs the simulator's state, so it is [`not_a_received_message`], called by the caller.

use serde_json::Value;

use super::error::GraphError;
use super::json::{check_not_empty, req_str};
use super::messaging_product;
use super::path::Path;

/// A mark-as-read request the Cloud API would accept (before looking the message up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkRead {
    /// The wamid of the received message to mark read.
    pub message_id: String,
}

/// Checks the body of a mark-as-read request: `messaging_product`, then `status` (only `read`
/// is a status a business can set), then a non-empty `message_id`. Unknown fields (such as
/// `typing_indicator`) are ignored, as elsewhere.
pub(super) fn validate_mark_read(body: &Value) -> Result<MarkRead, GraphError> {
    let root = messaging_product(body)?;
    let status_path = Path::root("status");
    let status = req_str(root, &status_path)?;
    if status != "read" {
        return Err(GraphError::not_one_of(&status_path, &["read"], status));
    }
    let id_path = Path::root("message_id");
    let message_id = req_str(root, &id_path)?;
    check_not_empty(&id_path, message_id)?;
    Ok(MarkRead { message_id: message_id.to_owned() })
}

/// What Graph answers when `message_id` is not a message this business number received: the
/// id is unknown, belongs to another number, or is one the business sent (a business can't
/// mark its own messages read).
pub fn not_a_received_message(message_id: &str) -> GraphError {
    GraphError::invalid_value(format!("message_id {message_id:?} is not a message this business phone number received"))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::simulator::graph_rules::test_support::*;
    use crate::simulator::graph_rules::{GraphRequest, validate_request};

    fn mark(message_id: Value) -> Value {
        json!({ "messaging_product": "whatsapp", "status": "read", "message_id": message_id })
    }

    fn marked(body: &Value) -> MarkRead {
        match validate_request(body) {
            Ok(GraphRequest::MarkRead(mark)) => mark,
            other => panic!("expected a mark-as-read of {body}, got {other:?}"),
        }
    }

    fn refused(body: &Value, code: i64, needle: &str) -> GraphError {
        let error = match validate_request(body) {
            Ok(request) => panic!("expected rejection of {body}, got {request:?}"),
            Err(error) => error,
        };
        assert_eq!((error.http_status, error.code), (400, code), "{error:?}");
        assert!(error.details.contains(needle), "details {:?} should contain {needle:?}", error.details);
        error
    }

    #[test]
    fn a_status_read_body_is_a_mark_read_not_a_send() {
        assert_eq!(marked(&mark(json!("wamid.HBgLabc"))), MarkRead { message_id: "wamid.HBgLabc".into() });
        // Meta's documented extra (a typing indicator) and a stray `to` change nothing.
        let mut body = mark(json!("wamid.X"));
        body["typing_indicator"] = json!({ "type": "text" });
        body["to"] = json!("15551234567");
        assert_eq!(marked(&body).message_id, "wamid.X");
    }

    #[test]
    fn a_body_without_status_is_still_a_send() {
        assert!(matches!(validate_request(&text_send("hi")), Ok(GraphRequest::Send(_))));
        let mut body = text_send("hi");
        body["status"] = Value::Null;
        assert!(matches!(validate_request(&body), Ok(GraphRequest::Send(_))), "null counts as absent");
    }

    #[test]
    fn mark_read_errors() {
        let mut no_product = mark(json!("wamid.X"));
        remove(&mut no_product, "/messaging_product");
        refused(&no_product, INVALID, "messaging_product is required");
        let mut other_status = mark(json!("wamid.X"));
        other_status["status"] = json!("delivered");
        let error = refused(&other_status, INVALID, "status must be one of \"read\" (got \"delivered\")");
        assert_eq!(error.message, "(#100) Param status must be one of {READ} - got \"delivered\".");
        other_status["status"] = json!(true);
        refused(&other_status, INVALID, "status must be a string (got a boolean)");
        let error =
            refused(&json!({ "messaging_product": "whatsapp", "status": "read" }), INVALID, "message_id is required");
        assert_eq!(error.message, "(#100) The parameter message_id is required.");
        refused(&mark(json!(7)), INVALID, "message_id must be a string (got a number)");
        refused(&mark(json!("")), VALUE, "message_id must not be empty");
    }

    #[test]
    fn an_unknown_message_is_parameter_value_not_valid() {
        let error = not_a_received_message("wamid.nope");
        assert_eq!((error.http_status, error.code), (400, 131_009));
        assert_eq!(error.message, "(#131009) Parameter value is not valid");
        assert!(error.details.contains("\"wamid.nope\""), "{error:?}");
    }
}
