//! What the functions log during a test, as CloudWatch would receive it (JSON lines, level
//! info), kept in memory so the test can search it: no phone number may reach a log line in
//! any form (docs/operating.md; issue 14).
//!
//! The fault and business suites call [`capture_logs`] first and [`assert_no_number_logged`]
//! last, with the numbers they used. Tests of one binary share the capture (tracing has one
//! global subscriber per process); every one of them uses the same known numbers.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Mutex, OnceLock};

use base64::Engine;

static CAPTURED: Mutex<Vec<u8>> = Mutex::new(Vec::new());
/// Lines captured so far.
static LINES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

struct Captured;

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        CAPTURED.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend_from_slice(bytes);
        let lines = bytes.iter().filter(|b| **b == b'\n').count();
        LINES.fetch_add(lines, std::sync::atomic::Ordering::Relaxed);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Starts capturing this process's log lines (once; later calls do nothing).
pub fn capture_logs() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_max_level(tracing::Level::INFO)
            .with_writer(|| Captured)
            .finish();
        // A test binary that set its own subscriber keeps it; then nothing is captured and
        // `assert_no_number_logged` says so.
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
}

/// Every line captured so far.
pub fn logged_lines() -> Vec<String> {
    let bytes = CAPTURED.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    String::from_utf8_lossy(&bytes).lines().map(str::to_owned).collect()
}

/// Every way a log line could hold `number` (an E.164 number or a WhatsApp id): its digits
/// with and without `+`, its national forms, and inside a `wamid`'s base64 at each of the
/// three alignments.
pub fn number_forms(number: &str) -> Vec<String> {
    let digits = number.trim_start_matches('+').to_owned();
    let mut forms = vec![digits.clone()];
    if let Some(national) = digits.strip_prefix('1').filter(|n| n.len() == 10) {
        let (area, exchange, line) = (&national[..3], &national[3..6], &national[6..]);
        forms.push(format!("{area}-{exchange}-{line}"));
        forms.push(format!("({area}) {exchange}-{line}"));
        forms.push(format!("{area} {exchange} {line}"));
        forms.push(national.to_owned());
    }
    // The digits preceded by 0, 1 or 2 other bytes, in base64: the three-byte groups made of
    // digits only encode the same whatever surrounds them, and a wamid holds one of these.
    for pad in 0..3 {
        let mut bytes = vec![b'x'; pad];
        bytes.extend_from_slice(digits.as_bytes());
        let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let (start, end) = (pad.div_ceil(3) * 4, (pad + digits.len()) / 3 * 4);
        if end >= start + 8 {
            forms.push(encoded[start..end].to_owned());
        }
    }
    forms
}

/// Fails if any captured line holds any of `numbers` in any form, or a `wamid` unhashed.
/// Returns how many lines were searched (the caller checks there were some).
///
/// The tests of one binary share the capture, so each form remembers how far the lines were
/// already found free of it: every line is searched for each form once, not once per test.
pub fn assert_no_number_logged(numbers: &[&str]) -> usize {
    static CLEAN_UP_TO: Mutex<BTreeMap<String, usize>> = Mutex::new(BTreeMap::new());
    let forbidden: Vec<(String, String)> = numbers
        .iter()
        .flat_map(|n| number_forms(n).into_iter().map(move |form| (form, (*n).to_owned())))
        .chain([("wamid.".to_owned(), "a wamid (a number in base64)".to_owned())])
        .collect();
    let mut clean_up_to = CLEAN_UP_TO.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let searched = |clean_up_to: &BTreeMap<String, usize>, form: &str| clean_up_to.get(form).copied().unwrap_or(0);
    let start = forbidden.iter().map(|(form, _)| searched(&clean_up_to, form)).min().unwrap_or(0);
    // Only whole lines, and only those some form hasn't been searched for yet: a line being
    // written now is searched by the next call.
    let (unsearched, complete) = {
        let bytes = CAPTURED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |last| last + 1);
        (bytes[start.min(complete)..complete].to_vec(), complete)
    };
    assert!(complete > 0, "no log line was captured: call capture_logs() first");
    // The capture is tracing's JSON, valid UTF-8: offsets in it are offsets in the text.
    let text = String::from_utf8_lossy(&unsearched);
    for (form, what) in &forbidden {
        let from = searched(&clean_up_to, form).saturating_sub(start).min(text.len());
        for line in text[from..].lines() {
            assert!(!line.contains(form.as_str()), "a log line holds {what} as {form:?}: {line}");
        }
        clean_up_to.insert(form.clone(), complete);
    }
    LINES.load(std::sync::atomic::Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_numbers_forms_include_its_base64_inside_a_wamid() {
        // A real-shaped wamid for 14155550111: base64 of a protobuf that holds the digits.
        let wamid = "HBgLMTQxNTU1NTAxMTEVAgARGBI=";
        let forms = number_forms("14155550111");
        assert!(forms.iter().any(|f| wamid.contains(f.as_str())), "{forms:?}");
        let us = number_forms("+14155550134");
        for form in ["14155550134", "415-555-0134", "(415) 555-0134", "4155550134"] {
            assert!(us.contains(&form.to_owned()), "{form}");
        }
    }
}
