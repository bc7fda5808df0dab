//! Phone numbers as the providers give them: E.164 from the SMS side, bare digits (`wa_id`)
//! from WhatsApp. Both parse once at the edge; `Debug` and `masked()` never print the middle
//! digits, so a number can't end up whole in a log line by accident (docs/operating.md).

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("must start with '+' followed by 2 to 15 digits, the first not 0")]
    NotE164,
    #[error("must be 5 to 15 digits, the first not 0")]
    NotWaId,
}

/// An E.164 number: `+` then 2–15 digits, the first not zero.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct E164(String);

impl E164 {
    pub fn parse(input: &str) -> Result<Self, PhoneError> {
        let digits = input.strip_prefix('+').ok_or(PhoneError::NotE164)?;
        if is_digits(digits, 2) { Ok(Self(input.to_owned())) } else { Err(PhoneError::NotE164) }
    }

    /// The digits without `+`: the form WhatsApp uses for a `wa_id`.
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }

    /// For logs: `+1415*****34`.
    pub fn masked(&self) -> String {
        format!("+{}", mask_digits(self.digits()))
    }

    /// For people: `+1 415-555-0134` for North American numbers, E.164 otherwise.
    pub fn pretty(&self) -> String {
        let d = self.digits();
        match d.strip_prefix('1') {
            Some(rest) if rest.len() == 10 => {
                format!("+1 {}-{}-{}", &rest[..3], &rest[3..6], &rest[6..])
            }
            _ => self.0.clone(),
        }
    }
}

impl fmt::Debug for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "E164({})", self.masked())
    }
}

string_newtype!(E164, PhoneError);

/// A WhatsApp user id (`wa_id`): the user's phone number as digits, no `+`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct WaId(String);

impl WaId {
    pub fn parse(input: &str) -> Result<Self, PhoneError> {
        if is_digits(input, 5) { Ok(Self(input.to_owned())) } else { Err(PhoneError::NotWaId) }
    }

    /// For logs: `1415*****11`.
    pub fn masked(&self) -> String {
        mask_digits(&self.0)
    }
}

impl fmt::Debug for WaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WaId({})", self.masked())
    }
}

string_newtype!(WaId, PhoneError);

fn is_digits(s: &str, min_len: usize) -> bool {
    (min_len..=15).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) && !s.starts_with('0')
}

/// Keeps the first four and last two digits (fewer for short numbers).
fn mask_digits(digits: &str) -> String {
    let n = digits.len();
    let (head, tail) = if n >= 8 { (4, 2) } else { (1, 1) };
    let hidden = n.saturating_sub(head + tail);
    format!("{}{}{}", &digits[..head.min(n)], "*".repeat(hidden), &digits[n - tail.min(n)..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn e164_accepts_provider_numbers() {
        for ok in ["+14155550134", "+447700900123", "+12", "+123456789012345"] {
            assert_eq!(E164::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn e164_rejects_everything_else() {
        for bad in [
            "",
            "+",
            "14155550134",
            "+1",
            "+0123456",
            "+1234567890123456",
            "+1 415 555 0134",
            "+1415555013a",
            "++14155550134",
            "+١٢٣٤٥",
            "whatsapp:+14155550134",
        ] {
            assert_eq!(E164::parse(bad), Err(PhoneError::NotE164), "{bad:?}");
        }
    }

    #[test]
    fn masks_like_the_spec() {
        let n = E164::parse("+14155550134").unwrap();
        assert_eq!(n.masked(), "+1415*****34");
        assert_eq!(format!("{n:?}"), "E164(+1415*****34)");
        assert_eq!(WaId::parse("14155550111").unwrap().masked(), "1415*****11");
        assert_eq!(E164::parse("+12").unwrap().masked(), "+12");
        assert_eq!(E164::parse("+12345").unwrap().masked(), "+1***5");
    }

    #[test]
    fn pretty_formats_north_american_numbers_only() {
        assert_eq!(E164::parse("+14155550134").unwrap().pretty(), "+1 415-555-0134");
        assert_eq!(E164::parse("+447700900123").unwrap().pretty(), "+447700900123");
    }

    #[test]
    fn wa_id_is_digits_only() {
        assert!(WaId::parse("14155550111").is_ok());
        for bad in ["+14155550111", "1234", "01234567", "1415555011x", ""] {
            assert_eq!(WaId::parse(bad), Err(PhoneError::NotWaId), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn masked_never_contains_the_middle_digits(digits in "[1-9][0-9]{7,14}") {
            let n = E164::parse(&format!("+{digits}")).unwrap();
            let masked = n.masked();
            prop_assert_eq!(masked.len(), n.as_str().len());
            // '+', four digits shown, the middle hidden, two digits shown.
            prop_assert!(masked[5..masked.len() - 2].bytes().all(|b| b == b'*'));
            prop_assert_eq!(&masked[1..5], &digits[..4]);
        }

        #[test]
        fn parse_never_panics(s in "\\PC*") {
            let _ = E164::parse(&s);
            let _ = WaId::parse(&s);
        }
    }
}
