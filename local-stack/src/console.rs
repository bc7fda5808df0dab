//! The functions' logs on the local console, in the JSON form CloudWatch receives from the
//! Lambda runtime (`AWS_LAMBDA_LOG_FORMAT=JSON`: one object per event, `level`, `fields`,
//! `spans`, no target), with a `timestamp` that CloudWatch would add itself. In a terminal
//! the same JSON is coloured: the level by severity, the message in bold.

use std::io::{IsTerminal, Write};

use serde_json::Value;
use tracing_subscriber::fmt::MakeWriter;

pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,aws_config=warn,aws_smithy_runtime=warn".into());
    let colour = std::io::stderr().is_terminal();
    tracing_subscriber::fmt()
        .json()
        .with_target(false)
        .with_env_filter(filter)
        .with_writer(ConsoleWriter { colour })
        .init();
}

struct ConsoleWriter {
    colour: bool,
}

impl<'a> MakeWriter<'a> for ConsoleWriter {
    type Writer = ConsoleLine;

    fn make_writer(&'a self) -> ConsoleLine {
        ConsoleLine { colour: self.colour, line: Vec::new() }
    }
}

/// One event: collected, then written to stderr in one piece (coloured or as is).
struct ConsoleLine {
    colour: bool,
    line: Vec<u8>,
}

impl Write for ConsoleLine {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.line.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for ConsoleLine {
    fn drop(&mut self) {
        let out = if self.colour { coloured(&self.line) } else { std::mem::take(&mut self.line) };
        let _ = std::io::stderr().lock().write_all(&out);
    }
}

const RESET: &str = "\x1b[0m";
const DIM: &str = "\x1b[2m";
const BOLD: &str = "\x1b[1m";

/// The JSON event with ANSI colours around its parts; anything that isn't a JSON object is
/// left as it is.
fn coloured(line: &[u8]) -> Vec<u8> {
    let Ok(Value::Object(event)) = serde_json::from_slice::<Value>(line) else { return line.to_vec() };
    let level = event.get("level").and_then(Value::as_str).unwrap_or_default();
    let level_colour = match level {
        "ERROR" => "\x1b[31;1m",
        "WARN" => "\x1b[33;1m",
        "INFO" => "\x1b[32m",
        _ => "\x1b[34m",
    };
    // Time and level first, as a reader scans them (the object itself is unordered).
    const FIRST: [&str; 3] = ["timestamp", "level", "fields"];
    let ordered = FIRST
        .iter()
        .filter_map(|k| event.get_key_value(*k))
        .chain(event.iter().filter(|(k, _)| !FIRST.contains(&k.as_str())));
    let mut out = String::from("{");
    for (n, (key, value)) in ordered.enumerate() {
        if n > 0 {
            out.push(',');
        }
        out.push_str(&format!("{DIM}{}:{RESET}", Value::String(key.clone())));
        match (key.as_str(), value) {
            ("level", _) => out.push_str(&format!("{level_colour}{value}{RESET}")),
            ("fields", Value::Object(fields)) => {
                out.push('{');
                for (m, (name, field)) in fields.iter().enumerate() {
                    if m > 0 {
                        out.push(',');
                    }
                    let style = if name == "message" { BOLD } else { "" };
                    out.push_str(&format!("{DIM}{}:{RESET}{style}{field}{RESET}", Value::String(name.clone())));
                }
                out.push('}');
            }
            _ => out.push_str(&value.to_string()),
        }
    }
    out.push_str("}\n");
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn without_ansi(text: &str) -> String {
        let mut out = String::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                for c in chars.by_ref() {
                    if c == 'm' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    #[test]
    fn colouring_keeps_the_json_event_intact() {
        let line = br#"{"timestamp":"2026-12-03T07:45:23.1Z","level":"WARN","fields":{"message":"retry","job":"a \"b\""},"spans":[]}"#;
        let pretty = String::from_utf8(coloured(line)).unwrap();
        assert!(pretty.contains("\x1b[33;1m\"WARN\""), "{pretty}");
        assert!(pretty.contains("\x1b[1m\"retry\""), "{pretty}");
        let plain: Value = serde_json::from_str(&without_ansi(&pretty)).unwrap();
        assert_eq!(plain, serde_json::from_slice::<Value>(line).unwrap());
        assert_eq!(coloured(b"not json\n"), b"not json\n");
    }
}
