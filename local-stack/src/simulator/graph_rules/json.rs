//! Field access on the decoded JSON body: required and optional fields of one JSON type (`null` counts as
//! absent), character lengths, and the schema errors for a missing or mistyped field.

use serde_json::{Map, Value};

use super::error::GraphError;
use super::path::Path;

pub(super) type Obj = Map<String, Value>;

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

pub(super) fn expect_obj<'a>(value: &'a Value, path: &Path) -> Result<&'a Obj, GraphError> {
    value.as_object().ok_or_else(|| GraphError::wrong_type(path, "a JSON object", value))
}

fn expect_array<'a>(value: &'a Value, path: &Path) -> Result<&'a [Value], GraphError> {
    value.as_array().map(Vec::as_slice).ok_or_else(|| GraphError::wrong_type(path, "an array", value))
}

pub(super) fn req_str<'a>(object: &'a Obj, path: &Path) -> Result<&'a str, GraphError> {
    expect_str(require(object, path)?, path)
}

pub(super) fn req_obj<'a>(object: &'a Obj, path: &Path) -> Result<&'a Obj, GraphError> {
    expect_obj(require(object, path)?, path)
}

pub(super) fn req_array<'a>(object: &'a Obj, path: &Path) -> Result<&'a [Value], GraphError> {
    expect_array(require(object, path)?, path)
}

pub(super) fn opt_str<'a>(object: &'a Obj, path: &Path) -> Result<Option<&'a str>, GraphError> {
    field(object, path).map(|value| expect_str(value, path)).transpose()
}

pub(super) fn opt_obj<'a>(object: &'a Obj, path: &Path) -> Result<Option<&'a Obj>, GraphError> {
    field(object, path).map(|value| expect_obj(value, path)).transpose()
}

pub(super) fn opt_array<'a>(object: &'a Obj, path: &Path) -> Result<Option<&'a [Value]>, GraphError> {
    field(object, path).map(|value| expect_array(value, path)).transpose()
}

pub(super) fn opt_bool(object: &Obj, path: &Path) -> Result<Option<bool>, GraphError> {
    field(object, path)
        .map(|value| value.as_bool().ok_or_else(|| GraphError::wrong_type(path, "a boolean", value)))
        .transpose()
}

pub(super) fn char_len(text: &str) -> usize {
    text.chars().count()
}

/// `min..=max` characters, else 131009 naming the field and the length found.
pub(super) fn check_len(path: &Path, text: &str, min: usize, max: usize) -> Result<(), GraphError> {
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

pub(super) fn check_not_empty(path: &Path, text: &str) -> Result<(), GraphError> {
    if text.is_empty() {
        return Err(GraphError::invalid_value(format!("{path} must not be empty")));
    }
    Ok(())
}

pub(super) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "a JSON object",
    }
}
