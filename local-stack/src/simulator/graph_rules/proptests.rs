//! Property tests of [`validate_send`] and [`validate_request`]: random and mutated bodies never panic,
//! and every answer is well formed.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::test_support::*;
use super::{GraphError, GraphRequest, validate_request, validate_send};

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
    "status",
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
    "read",
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
            prop::collection::vec((".{0,8}", inner), 0..4).prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
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
        json!({ "messaging_product": "whatsapp", "status": "read", "message_id": "wamid.X" }),
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
        Err(error) => check_error(&error),
    }
    // The same body through the endpoint's dispatch: a read mark, a send, or a well-formed error.
    match validate_request(body) {
        Ok(GraphRequest::Send(send)) => assert_eq!(validate_send(body), Ok(send)),
        Ok(GraphRequest::MarkRead(mark)) => {
            assert_eq!(body["status"], "read");
            assert!(!mark.message_id.is_empty());
        }
        Err(error) => check_error(&error),
    }
}

fn check_error(error: &GraphError) {
    assert_eq!(error.http_status, 400);
    assert!([INVALID, MISSING, VALUE, TEMPLATE].contains(&error.code), "{error:?}");
    assert!(error.message.starts_with(&format!("(#{})", error.code)), "{error:?}");
    assert!(!error.details.is_empty());
    let rendered = error.body("trace");
    assert_eq!(rendered["error"]["code"], json!(error.code));
    assert_eq!(rendered["error"]["error_data"]["details"], json!(error.details));
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
}
