//! Template messages: the `template` object, its language, and the text parameters of its body and header.

use super::GraphContent;
use super::error::GraphError;
use super::json::{Obj, char_len, check_not_empty, expect_obj, opt_array, opt_str, req_obj, req_str};
use super::path::Path;

/// Template body text parameter when the body is the only component: 32768 characters.
pub const TEMPLATE_BODY_PARAM_MAX_ALONE: usize = 32_768;
/// Template body text parameter when other components are included: 1024 characters.
pub const TEMPLATE_BODY_PARAM_MAX_WITH_OTHERS: usize = 1024;
/// Template header text parameter: 60 characters.
pub const TEMPLATE_HEADER_PARAM_MAX: usize = 60;
/// Template text parameters may not hold more than this many consecutive spaces (error 132018).
pub const TEMPLATE_PARAM_MAX_CONSECUTIVE_SPACES: usize = 4;

pub(super) fn validate_template(root: &Obj) -> Result<GraphContent, GraphError> {
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

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::simulator::graph_rules::test_support::*;

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
}
