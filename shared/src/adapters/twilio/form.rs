//! `application/x-www-form-urlencoded` bodies, strictly: a `%` not followed by two hex digits,
//! or text that isn't UTF-8 once decoded, is refused rather than passed on or replaced.

use percent_encoding::percent_decode;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("the body is not valid UTF-8")]
    NotUtf8,
    #[error("parameter {0} is not valid UTF-8 once decoded")]
    ParamNotUtf8(usize),
    #[error("parameter {0} has invalid percent-encoding")]
    BadPercentEncoding(usize),
    #[error("too many parameters (at most {MAX_PARAMS})")]
    TooManyParams,
}

/// Twilio sends a few dozen parameters; this bounds the work an unsigned body can cause.
pub const MAX_PARAMS: usize = 500;

/// Parameters in body order; repeated names are kept (the signature covers them all).
pub fn parse_form(body: &[u8]) -> Result<Vec<(String, String)>, FormError> {
    let body = std::str::from_utf8(body).map_err(|_| FormError::NotUtf8)?;
    let mut params = Vec::new();
    for (index, pair) in body.split('&').filter(|p| !p.is_empty()).enumerate() {
        if index >= MAX_PARAMS {
            return Err(FormError::TooManyParams);
        }
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        params.push((decode(name, index)?, decode(value, index)?));
    }
    Ok(params)
}

fn decode(raw: &str, index: usize) -> Result<String, FormError> {
    // `percent_decode` keeps a malformed escape as it is; Twilio never sends one.
    let bytes = raw.as_bytes();
    let escapes_ok = bytes.iter().enumerate().filter(|(_, b)| **b == b'%').all(|(i, _)| {
        bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit) && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
    });
    if !escapes_ok {
        return Err(FormError::BadPercentEncoding(index));
    }
    let spaced = raw.replace('+', " ");
    percent_decode(spaced.as_bytes()).decode_utf8().map(|s| s.into_owned()).map_err(|_| FormError::ParamNotUtf8(index))
}

/// Encodes parameters the way Twilio (and browsers) do; used by tests and the local tools.
pub fn encode_form(params: &[(&str, &str)]) -> String {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    const FORM: &AsciiSet = &NON_ALPHANUMERIC.remove(b'*').remove(b'-').remove(b'.').remove(b'_').remove(b' ');
    params
        .iter()
        .map(|(k, v)| {
            let enc = |s: &str| utf8_percent_encode(s, FORM).to_string().replace(' ', "+");
            format!("{}={}", enc(k), enc(v))
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decodes_twilio_bodies() {
        let params =
            parse_form(b"Body=Hello+there%21+%F0%9F%91%8B&From=%2B14155550134&To=%2B14155550100&Empty=&Flag").unwrap();
        assert_eq!(
            params,
            vec![
                ("Body".into(), "Hello there! 👋".into()),
                ("From".into(), "+14155550134".into()),
                ("To".into(), "+14155550100".into()),
                ("Empty".into(), String::new()),
                ("Flag".into(), String::new()),
            ]
        );
    }

    #[test]
    fn refuses_invalid_utf8() {
        assert_eq!(parse_form(b"Body=%FF%FE"), Err(FormError::ParamNotUtf8(0)));
        assert_eq!(parse_form(b"A=1&Body=\xff"), Err(FormError::NotUtf8));
        let many = vec!["a=1"; MAX_PARAMS + 1].join("&");
        assert_eq!(parse_form(many.as_bytes()), Err(FormError::TooManyParams));
    }

    #[test]
    fn refuses_malformed_percent_escapes() {
        for bad in ["Body=100%ZZ", "Body=%4", "Body=%", "Bo%dy=1", "Body=%%41"] {
            assert_eq!(parse_form(bad.as_bytes()), Err(FormError::BadPercentEncoding(0)), "{bad}");
        }
        assert_eq!(parse_form(b"A=1&Body=50%25+off").unwrap()[1].1, "50% off");
    }

    proptest! {
        #[test]
        fn encode_then_parse_is_identity(params in proptest::collection::vec(("\\PC{0,12}", "\\PC{0,40}"), 0..8)) {
            let params: Vec<(String, String)> = params.into_iter().filter(|(k, _)| !k.is_empty()).collect();
            let borrowed: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            prop_assert_eq!(parse_form(encode_form(&borrowed).as_bytes()).unwrap(), params);
        }

        #[test]
        fn never_panics(body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_form(&body);
        }
    }
}
