//! What may reach a log line about text the bridge doesn't control (docs/operating.md): provider ids
//! that embed a phone number, and providers' or AWS's error messages that quote one.
//!
//! - A WhatsApp message id (`wamid.HBgL…`) is base64 that holds the recipient's number, so
//!   logs show a short hash of it ([`LogId`]), which still tells two messages apart.
//! - Free text (a provider's error message, an SDK error) has every run of digits that could
//!   be a phone number replaced ([`scrub_numbers`]): Twilio's 21211, 21408 and 21612 texts
//!   quote the number they refused.

use std::fmt;

use sha2::Digest;

/// A provider's message id as a log may show it: an SMS sid (`SM…`, no number in it) as it
/// is; anything else (a `wamid`, an id we don't know the shape of) as a short hash.
pub struct LogId<'a>(pub &'a str);

impl fmt::Display for LogId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = self.0;
        let is_sid = id.len() == 34
            && (id.starts_with("SM") || id.starts_with("MM"))
            && id.bytes().skip(2).all(|b| b.is_ascii_hexdigit());
        if is_sid {
            return f.write_str(id);
        }
        let kind = if id.starts_with("wamid.") { "wamid" } else { "id" };
        let hash = sha2::Sha256::digest(id.as_bytes());
        write!(f, "{kind}#{}", hex::encode(&hash[..6]))
    }
}

/// Digits in a row (separators allowed between them) from which a run counts as a number:
/// more than Meta's six-digit error codes, fewer than any number with its country code.
const NUMBER_DIGITS: usize = 7;

/// `text` with every run of at least seven digits, in any of the ways numbers are written
/// (`+14155550134`, `14155550134`, `+1 415-555-0134`, `(415) 555.0134`), replaced by
/// `<number>`. Shorter runs (error codes like 21211 or 131026, HTTP statuses, counts) stay
/// readable.
pub fn scrub_numbers(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let starts_run = chars[i].is_ascii_digit() || (chars[i] == '+' || chars[i] == '(') && next_is_digit(&chars, i);
        if !starts_run {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        // The run: digits, and single separators between digits.
        let (mut end, mut digits) = (i, 0);
        let mut j = i;
        while j < chars.len() {
            let c = chars[j];
            if c.is_ascii_digit() {
                digits += 1;
                end = j + 1;
            } else if !(is_separator(c) || (j == i && c == '+')) {
                break;
            }
            j += 1;
        }
        if digits >= NUMBER_DIGITS {
            out.push_str("<number>");
        } else {
            out.extend(&chars[i..end.max(i + 1)]);
        }
        i = end.max(i + 1);
    }
    out
}

fn next_is_digit(chars: &[char], i: usize) -> bool {
    chars.get(i + 1).is_some_and(|c| c.is_ascii_digit())
}

fn is_separator(c: char) -> bool {
    matches!(c, ' ' | '-' | '.' | '(' | ')' | '\u{a0}')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn wamids_are_hashed_and_sids_kept() {
        let wamid = "wamid.HBgLMTQxNTU1NTAxMTEVAgARGBI=";
        let shown = LogId(wamid).to_string();
        assert!(shown.starts_with("wamid#") && shown.len() == "wamid#".len() + 12, "{shown}");
        assert_ne!(shown, LogId("wamid.HBgLMTQxNTU1NTAxMTIVAgARGBI=").to_string(), "two messages stay apart");
        let sid = "SM0123456789abcdef0123456789abcdef";
        assert_eq!(LogId(sid).to_string(), sid);
        assert!(LogId("14155550134").to_string().starts_with("id#"));
    }

    #[test]
    fn twilio_and_meta_error_texts_lose_their_numbers_and_keep_their_codes() {
        for (text, want) in [
            (
                "The 'To' number +14155550134 is not a valid phone number.",
                "The 'To' number <number> is not a valid phone number.",
            ),
            (
                "Attempt to send to unsubscribed recipient 14155550134",
                "Attempt to send to unsubscribed recipient <number>",
            ),
            ("code 21211: To +1 415-555-0134 invalid", "code 21211: To <number> invalid"),
            ("(415) 555.0134 is a landline", "<number> is a landline"),
            ("HTTP 400, code 131026: Message undeliverable", "HTTP 400, code 131026: Message undeliverable"),
        ] {
            assert_eq!(scrub_numbers(text), want);
        }
    }

    proptest! {
        /// Law: a phone number written any usual way, anywhere in a text, doesn't survive.
        #[test]
        fn no_number_survives(
            prefix in "[a-zA-Z :,'\"]{0,20}",
            suffix in "[a-zA-Z :,.'\"]{0,20}",
            country in 1u32..999,
            national in 1_000_000u64..99_999_999_999,
            style in 0usize..4,
        ) {
            let digits = format!("{country}{national}");
            let written = match style {
                0 => format!("+{digits}"),
                1 => digits.clone(),
                2 => format!("+{country} {national}"),
                _ => {
                    let n = national.to_string();
                    let (a, b) = n.split_at(n.len() / 2);
                    format!("+{country} ({a}) {b}")
                }
            };
            let scrubbed = scrub_numbers(&format!("{prefix}{written}{suffix}"));
            prop_assert!(!scrubbed.contains(&digits), "{scrubbed}");
            prop_assert!(!scrubbed.contains(&national.to_string()), "{scrubbed}");
        }
    }
}
