//! Request builders and assertions shared by the tests of the `graph_rules` modules.

use serde_json::{Value, json};

use super::{GraphError, GraphSend, validate_send};

pub(super) const INVALID: i64 = GraphError::INVALID_PARAMETER;
pub(super) const MISSING: i64 = GraphError::REQUIRED_PARAMETER_MISSING;
pub(super) const VALUE: i64 = GraphError::PARAMETER_VALUE_INVALID;
pub(super) const TEMPLATE: i64 = GraphError::TEMPLATE_PARAMETER_ISSUE;

pub(super) fn send(kind: &str, content: Value) -> Value {
    json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "+15551234567",
        "type": kind,
        kind: content,
    })
}

pub(super) fn ok(body: &Value) -> GraphSend {
    match validate_send(body) {
        Ok(send) => send,
        Err(err) => panic!("expected acceptance of {body}, got {err:?}"),
    }
}

pub(super) fn err(body: &Value) -> GraphError {
    match validate_send(body) {
        Ok(send) => panic!("expected rejection of {body}, got {send:?}"),
        Err(err) => err,
    }
}

/// Asserts a rejection with `code`, HTTP 400 and details containing `needle`.
pub(super) fn expect(body: &Value, code: i64, needle: &str) -> GraphError {
    let error = err(body);
    assert_eq!(error.http_status, 400, "{error:?}");
    assert_eq!(error.code, code, "wrong code for {body}: {error:?}");
    assert!(error.details.contains(needle), "details {:?} should contain {needle:?}", error.details);
    error
}

pub(super) fn s(ch: char, n: usize) -> String {
    std::iter::repeat_n(ch, n).collect()
}

/// Sets the value at a JSON-pointer-like path of keys/indices (test helper; panics on a bad path).
pub(super) fn set(body: &mut Value, pointer: &str, value: Value) {
    let slot = body.pointer_mut(pointer).unwrap_or_else(|| panic!("no {pointer} in body"));
    *slot = value;
}

pub(super) fn remove(body: &mut Value, pointer: &str) {
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

pub(super) fn text_send(body: &str) -> Value {
    send("text", json!({ "body": body }))
}

pub(super) fn buttons_send() -> Value {
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

pub(super) fn list_send() -> Value {
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

pub(super) fn template_send(components: Value) -> Value {
    send("template", json!({ "name": "welcome", "language": { "code": "en_US" }, "components": components }))
}

pub(super) fn body_params(texts: &[&str]) -> Value {
    let params: Vec<Value> = texts.iter().map(|t| json!({ "type": "text", "text": t })).collect();
    json!([{ "type": "body", "parameters": params }])
}

/// The string at `pointer` passes at `max` characters and fails with 131009 naming `name` at `max + 1`.
pub(super) fn assert_string_limit(base: &Value, pointer: &str, max: usize, name: &str) {
    for ch in ['x', '😀'] {
        let mut at = base.clone();
        set(&mut at, pointer, json!(s(ch, max)));
        ok(&at);
        let mut over = base.clone();
        set(&mut over, pointer, json!(s(ch, max + 1)));
        expect(&over, VALUE, &format!("{name} must be at most {max} characters (got {})", max + 1));
    }
}
