//! Validation of Twilio Messages API create requests:
//! `POST /2010-04-01/Accounts/{AccountSid}/Messages.json` (form-encoded).
//!
//! Pure functions only (no I/O). [`validate_create`] takes the decoded form fields in request order and
//! either returns the message as the simulator records it ([`SmsCreate`]) or the error Twilio would
//! answer ([`TwilioError`], whose [`TwilioError::body`] is Twilio's error JSON).
//!
//! Rules and codes come from Twilio's documentation, not from the bridge: the "Messages resource" page
//! (`twilio.com/docs/messaging/api/message-resource`, create parameters `To`, `From`, `Body`, `MediaUrl`,
//! `StatusCallback`) and the error pages `twilio.com/docs/api/errors/<code>`.
//!
//! Checks run in this order and the first failure is answered: `To` (21604, 21211), `From` (21603,
//! 21212), `Body`/`MediaUrl` presence (21602), `Body` length (21617), number of `MediaUrl`s (21623),
//! each `MediaUrl` (21620), `StatusCallback` (21609). All are HTTP 400. Parameter names are
//! case-sensitive; unknown parameters are ignored; a repeated single-valued parameter keeps its first
//! value.

use serde::Serialize;
use serde_json::{Value, json};

use super::url::{http_url_host, is_http_url};

/// `Body`: "up to 1,600 characters" (Messages resource; error 21617). Counted in UTF-16 code units, see
/// [`body_length`].
pub const BODY_MAX: usize = 1600;
/// `MediaUrl`: "up to 10 media files in a single message" (error 21623).
pub const MEDIA_URLS_MAX: usize = 10;
/// `StatusCallback`: "The URL exceeds the 4000-character limit" is a cause of error 21609.
pub const STATUS_CALLBACK_MAX: usize = 4000;
/// E.164: at most 15 digits after the `+`.
pub const E164_MAX_DIGITS: usize = 15;
/// Fewest digits [`is_e164`] accepts after the `+`.
pub const E164_MIN_DIGITS: usize = 2;

/// A message create Twilio would accept, as the simulator records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SmsCreate {
    pub from: String,
    pub to: String,
    /// `""` when the message only carries media.
    pub body: String,
    /// Every `MediaUrl`, in request order.
    pub media_urls: Vec<String>,
    pub status_callback: Option<String>,
}

/// An error as Twilio answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwilioError {
    pub http_status: u16,
    pub code: i64,
    pub message: String,
}

impl TwilioError {
    /// 21211: invalid `To` phone number.
    pub const INVALID_TO: i64 = 21_211;
    /// 21212: invalid `From` phone number.
    pub const INVALID_FROM: i64 = 21_212;
    /// 21602: message body (or media) is required.
    pub const BODY_REQUIRED: i64 = 21_602;
    /// 21603: a `From` (or `MessagingServiceSid`) is required.
    pub const FROM_REQUIRED: i64 = 21_603;
    /// 21604: a `To` phone number is required.
    pub const TO_REQUIRED: i64 = 21_604;
    /// 21609: invalid `StatusCallback` URL.
    pub const INVALID_STATUS_CALLBACK: i64 = 21_609;
    /// 21617: the body exceeds the 1600 character limit.
    pub const BODY_TOO_LONG: i64 = 21_617;
    /// 21620: invalid media URL(s).
    pub const INVALID_MEDIA_URL: i64 = 21_620;
    /// 21623: number of media files exceeds the allowed limit.
    pub const TOO_MANY_MEDIA: i64 = 21_623;

    /// Twilio's error JSON: `{"code","message","more_info":"https://www.twilio.com/docs/errors/<code>","status"}`.
    pub fn body(&self) -> Value {
        json!({
            "code": self.code,
            "message": self.message,
            "more_info": format!("https://www.twilio.com/docs/errors/{}", self.code),
            "status": self.http_status,
        })
    }

    fn new(code: i64, message: String) -> Self {
        TwilioError { http_status: 400, code, message }
    }
}

/// Validates the form fields of a message create. `params` are the decoded form fields in request order;
/// `MediaUrl` may repeat.
pub fn validate_create(params: &[(String, String)]) -> Result<SmsCreate, TwilioError> {
    let to = first(params, "To").filter(|to| !to.is_empty());
    let Some(to) = to else {
        return Err(TwilioError::new(TwilioError::TO_REQUIRED, "A 'To' phone number is required.".into()));
    };
    if !is_e164(to) {
        return Err(TwilioError::new(
            TwilioError::INVALID_TO,
            format!("The 'To' number {to} is not a valid phone number."),
        ));
    }

    let from = first(params, "From").filter(|from| !from.is_empty());
    let Some(from) = from else {
        return Err(TwilioError::new(TwilioError::FROM_REQUIRED, "A 'From' phone number is required.".into()));
    };
    if !is_e164(from) {
        return Err(TwilioError::new(
            TwilioError::INVALID_FROM,
            format!("The 'From' number {from} is not a valid phone number, shortcode, or alphanumeric sender ID."),
        ));
    }

    let body = first(params, "Body").unwrap_or_default();
    let media_urls: Vec<&str> = params.iter().filter(|(name, _)| name == "MediaUrl").map(|(_, v)| v.as_str()).collect();
    if body.is_empty() && media_urls.is_empty() {
        return Err(TwilioError::new(TwilioError::BODY_REQUIRED, "Message body is required.".into()));
    }
    let length = body_length(body);
    if length > BODY_MAX {
        return Err(TwilioError::new(
            TwilioError::BODY_TOO_LONG,
            format!("The concatenated message body exceeds the {BODY_MAX} character limit (got {length} characters)."),
        ));
    }

    if media_urls.len() > MEDIA_URLS_MAX {
        return Err(TwilioError::new(
            TwilioError::TOO_MANY_MEDIA,
            format!(
                "Number of media files exceeds allowed limit: {} MediaUrl given, at most {MEDIA_URLS_MAX} allowed.",
                media_urls.len()
            ),
        ));
    }
    let invalid: Vec<&str> = media_urls.iter().copied().filter(|url| !is_http_url(url)).collect();
    if !invalid.is_empty() {
        return Err(TwilioError::new(
            TwilioError::INVALID_MEDIA_URL,
            format!("Media urls: {} are invalid. Please use only valid http and https urls", invalid.join(", ")),
        ));
    }

    let status_callback = first(params, "StatusCallback");
    if let Some(callback) = status_callback
        && !is_status_callback_url(callback)
    {
        return Err(TwilioError::new(
            TwilioError::INVALID_STATUS_CALLBACK,
            format!("The StatusCallback URL {callback} is not a valid URL."),
        ));
    }

    Ok(SmsCreate {
        from: from.to_string(),
        to: to.to_string(),
        body: body.to_string(),
        media_urls: media_urls.into_iter().map(str::to_string).collect(),
        status_callback: status_callback.map(str::to_string),
    })
}

/// Whether `number` is E.164: `+`, then 2 to 15 ASCII digits, the first not `0`.
pub fn is_e164(number: &str) -> bool {
    let Some(digits) = number.strip_prefix('+') else {
        return false;
    };
    (E164_MIN_DIGITS..=E164_MAX_DIGITS).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// The length Twilio compares with [`BODY_MAX`]: UTF-16 code units, so a character outside the Basic
/// Multilingual Plane (most emoji) counts twice and an accented letter once. Twilio's error 21617 page
/// says emoji and other non-GSM characters "can use more space" and reach the limit sooner; UTF-16 units
/// are the stricter reading that keeps accented Latin text at one unit per character.
pub fn body_length(body: &str) -> usize {
    body.encode_utf16().count()
}

/// The value of the first field named `name`.
fn first<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
}

/// A `StatusCallback` is an http(s) URL of at most 4000 characters whose host has no underscore
/// (error 21609: "underscores are not permitted").
fn is_status_callback_url(url: &str) -> bool {
    url.chars().count() <= STATUS_CALLBACK_MAX && http_url_host(url).is_some_and(|host| !host.contains('_'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn form(fields: &[(&str, &str)]) -> Vec<(String, String)> {
        fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn base() -> Vec<(String, String)> {
        form(&[("To", "+15557654321"), ("From", "+15551234567"), ("Body", "Hello")])
    }

    fn with(mut params: Vec<(String, String)>, name: &str, value: &str) -> Vec<(String, String)> {
        params.retain(|(k, _)| k != name);
        params.push((name.to_string(), value.to_string()));
        params
    }

    fn without(mut params: Vec<(String, String)>, name: &str) -> Vec<(String, String)> {
        params.retain(|(k, _)| k != name);
        params
    }

    fn ok(params: &[(String, String)]) -> SmsCreate {
        match validate_create(params) {
            Ok(create) => create,
            Err(err) => panic!("expected acceptance of {params:?}, got {err:?}"),
        }
    }

    fn expect(params: &[(String, String)], code: i64, needle: &str) -> TwilioError {
        match validate_create(params) {
            Ok(create) => panic!("expected rejection of {params:?}, got {create:?}"),
            Err(err) => {
                assert_eq!(err.http_status, 400, "{err:?}");
                assert_eq!(err.code, code, "wrong code: {err:?}");
                assert!(err.message.contains(needle), "message {:?} should contain {needle:?}", err.message);
                err
            }
        }
    }

    fn s(ch: char, n: usize) -> String {
        std::iter::repeat_n(ch, n).collect()
    }

    // ----- accepted creates ------------------------------------------------------------------------------

    #[test]
    fn minimal_sms_is_parsed() {
        assert_eq!(
            ok(&base()),
            SmsCreate {
                from: "+15551234567".into(),
                to: "+15557654321".into(),
                body: "Hello".into(),
                media_urls: vec![],
                status_callback: None,
            }
        );
    }

    #[test]
    fn full_mms_is_parsed_in_order() {
        let params = form(&[
            ("From", "+15551234567"),
            ("MediaUrl", "https://e.com/1.png"),
            ("To", "+447700900123"),
            ("Body", "Look"),
            ("MediaUrl", "http://e.com:8080/2.jpg?x=1"),
            ("StatusCallback", "https://bridge.example.com/twilio/status"),
            ("MessagingServiceSid", "MG00000000000000000000000000000000"),
            ("Unknown", "ignored"),
        ]);
        assert_eq!(
            ok(&params),
            SmsCreate {
                from: "+15551234567".into(),
                to: "+447700900123".into(),
                body: "Look".into(),
                media_urls: vec!["https://e.com/1.png".into(), "http://e.com:8080/2.jpg?x=1".into()],
                status_callback: Some("https://bridge.example.com/twilio/status".into()),
            }
        );
    }

    #[test]
    fn media_only_messages_need_no_body() {
        for body in [None, Some("")] {
            let mut params = without(base(), "Body");
            if let Some(body) = body {
                params.push(("Body".into(), body.into()));
            }
            params.push(("MediaUrl".into(), "https://e.com/a.png".into()));
            let create = ok(&params);
            assert_eq!((create.body.as_str(), create.media_urls.len()), ("", 1));
        }
    }

    #[test]
    fn repeated_single_valued_parameters_keep_the_first() {
        let mut params = base();
        params.push(("To".into(), "not a number".into()));
        params.push(("Body".into(), "second".into()));
        let create = ok(&params);
        assert_eq!((create.to.as_str(), create.body.as_str()), ("+15557654321", "Hello"));
    }

    #[test]
    fn parameter_names_are_case_sensitive() {
        let params = form(&[("to", "+15557654321"), ("From", "+15551234567"), ("Body", "x")]);
        expect(&params, TwilioError::TO_REQUIRED, "A 'To' phone number is required.");
        let params = form(&[("To", "+15557654321"), ("From", "+15551234567"), ("body", "x")]);
        expect(&params, TwilioError::BODY_REQUIRED, "Message body is required.");
    }

    // ----- To / From -------------------------------------------------------------------------------------

    #[test]
    fn to_rules() {
        expect(&without(base(), "To"), TwilioError::TO_REQUIRED, "A 'To' phone number is required.");
        expect(&with(base(), "To", ""), TwilioError::TO_REQUIRED, "A 'To' phone number is required.");
        for bad in [
            "15557654321",
            "+0123456",
            "+1",
            "+1234567890123456",
            "+1 555 765 4321",
            "+1-555",
            "whatsapp:+15557654321",
            "+",
            "++15557654321",
            "+１５５５",
        ] {
            let err = expect(&with(base(), "To", bad), TwilioError::INVALID_TO, "The 'To' number");
            assert_eq!(err.message, format!("The 'To' number {bad} is not a valid phone number."));
        }
        // To is checked before From.
        let params = form(&[("To", "bad"), ("From", "bad"), ("Body", "x")]);
        expect(&params, TwilioError::INVALID_TO, "'To'");
    }

    #[test]
    fn from_rules() {
        expect(&without(base(), "From"), TwilioError::FROM_REQUIRED, "A 'From' phone number is required.");
        expect(&with(base(), "From", ""), TwilioError::FROM_REQUIRED, "A 'From' phone number is required.");
        for bad in ["15551234567", "MyCompany", "+0155", "+1234567890123456"] {
            let err = expect(&with(base(), "From", bad), TwilioError::INVALID_FROM, "The 'From' number");
            assert_eq!(
                err.message,
                format!("The 'From' number {bad} is not a valid phone number, shortcode, or alphanumeric sender ID.")
            );
        }
    }

    #[test]
    fn e164_table() {
        let cases = [
            ("+15551234567", true),
            ("+12", true),
            ("+123456789012345", true),
            ("+1234567890123456", false),
            ("+1", false),
            ("+", false),
            ("", false),
            ("15551234567", false),
            ("+05551234567", false),
            ("+1555123456a", false),
            ("+1 5551234567", false),
            ("++15551234567", false),
            ("+١٢٣٤٥", false),
            ("+1555\n", false),
        ];
        for (number, expected) in cases {
            assert_eq!(is_e164(number), expected, "{number:?}");
        }
    }

    // ----- Body ------------------------------------------------------------------------------------------

    #[test]
    fn body_is_required_without_media() {
        expect(&without(base(), "Body"), TwilioError::BODY_REQUIRED, "Message body is required.");
        expect(&with(base(), "Body", ""), TwilioError::BODY_REQUIRED, "Message body is required.");
    }

    #[test]
    fn body_length_limit_in_utf16_units() {
        // ASCII and accented Latin letters are one unit each.
        for ch in ['a', 'é', 'ñ', '中'] {
            ok(&with(base(), "Body", &s(ch, BODY_MAX)));
            let err =
                expect(&with(base(), "Body", &s(ch, BODY_MAX + 1)), TwilioError::BODY_TOO_LONG, "1600 character limit");
            assert_eq!(
                err.message,
                "The concatenated message body exceeds the 1600 character limit (got 1601 characters)."
            );
        }
        // Emoji outside the BMP are two units: 800 fit, 801 do not.
        ok(&with(base(), "Body", &s('😀', BODY_MAX / 2)));
        expect(&with(base(), "Body", &s('😀', BODY_MAX / 2 + 1)), TwilioError::BODY_TOO_LONG, "(got 1602 characters)");
        // 1599 letters plus one emoji is 1601 units.
        let mixed = format!("{}😀", s('a', BODY_MAX - 1));
        assert_eq!(body_length(&mixed), BODY_MAX + 1);
        expect(&with(base(), "Body", &mixed), TwilioError::BODY_TOO_LONG, "1600");
        assert_eq!(body_length("é😀"), 3);
    }

    // ----- MediaUrl --------------------------------------------------------------------------------------

    #[test]
    fn media_count_limit() {
        let mut params = base();
        for i in 0..MEDIA_URLS_MAX {
            params.push(("MediaUrl".into(), format!("https://e.com/{i}.png")));
        }
        assert_eq!(ok(&params).media_urls.len(), MEDIA_URLS_MAX);
        params.push(("MediaUrl".into(), "https://e.com/10.png".into()));
        let err = expect(&params, TwilioError::TOO_MANY_MEDIA, "Number of media files exceeds allowed limit");
        assert!(err.message.contains("11 MediaUrl given, at most 10 allowed"), "{err:?}");
    }

    #[test]
    fn media_url_rules() {
        let good = [
            "https://e.com/a.png",
            "HTTP://E.COM/A.PNG",
            "http://127.0.0.1:8080/a",
            "https://[::1]/a",
            "https://user:pw@e.com/a",
            "https://my_bucket.s3.example.com/a",
            "https://e.com",
        ];
        for url in good {
            let mut params = base();
            params.push(("MediaUrl".into(), url.into()));
            ok(&params);
        }
        let bad = [
            "",
            "e.com/a.png",
            "ftp://e.com/a",
            "https://",
            "https:///a",
            "https://e.com:abc/a",
            "https://e .com",
            "htttp://e.com/a",
            "https://é.com/a",
        ];
        for url in bad {
            let mut params = base();
            params.push(("MediaUrl".into(), "https://e.com/ok.png".into()));
            params.push(("MediaUrl".into(), url.into()));
            let err = expect(&params, TwilioError::INVALID_MEDIA_URL, "Please use only valid http and https urls");
            assert_eq!(
                err.message,
                format!("Media urls: {url} are invalid. Please use only valid http and https urls")
            );
        }
    }

    // ----- StatusCallback --------------------------------------------------------------------------------

    #[test]
    fn status_callback_rules() {
        let long_ok = format!("https://e.com/{}", s('a', STATUS_CALLBACK_MAX - "https://e.com/".len()));
        assert_eq!(long_ok.chars().count(), STATUS_CALLBACK_MAX);
        ok(&with(base(), "StatusCallback", &long_ok));
        let long_bad = format!("{long_ok}a");
        let bad = [
            "",
            "bridge.example.com/status",
            "ftp://e.com/s",
            "https://",
            "https://my_host.example.com/s",
            long_bad.as_str(),
        ];
        for url in bad {
            let err =
                expect(&with(base(), "StatusCallback", url), TwilioError::INVALID_STATUS_CALLBACK, "StatusCallback");
            assert_eq!(err.message, format!("The StatusCallback URL {url} is not a valid URL."));
        }
        ok(&with(base(), "StatusCallback", "http://localhost:3000/twilio/status?sig=a%20b"));
    }

    // ----- error body ------------------------------------------------------------------------------------

    #[test]
    fn error_body_has_twilio_shape() {
        let err = expect(&with(base(), "To", "12"), TwilioError::INVALID_TO, "'To'");
        assert_eq!(
            err.body(),
            json!({
                "code": 21211,
                "message": "The 'To' number 12 is not a valid phone number.",
                "more_info": "https://www.twilio.com/docs/errors/21211",
                "status": 400,
            })
        );
    }

    #[test]
    fn every_code_is_reachable() {
        let mut many_media = base();
        for i in 0..=MEDIA_URLS_MAX {
            many_media.push(("MediaUrl".into(), format!("https://e.com/{i}")));
        }
        let mut bad_media = base();
        bad_media.push(("MediaUrl".into(), "nope".into()));
        let cases: Vec<(Vec<(String, String)>, i64)> = vec![
            (without(base(), "To"), 21604),
            (with(base(), "To", "1"), 21211),
            (without(base(), "From"), 21603),
            (with(base(), "From", "1"), 21212),
            (without(base(), "Body"), 21602),
            (with(base(), "Body", &s('x', 1601)), 21617),
            (many_media, 21623),
            (bad_media, 21620),
            (with(base(), "StatusCallback", "nope"), 21609),
        ];
        for (params, code) in cases {
            let err = expect(&params, code, "");
            assert_eq!(err.body()["more_info"], json!(format!("https://www.twilio.com/docs/errors/{code}")));
            assert_eq!(err.body()["status"], json!(400));
        }
    }

    #[test]
    fn records_serialize() {
        let value = serde_json::to_value(ok(&base())).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(value["to"], "+15557654321");
        assert_eq!(value["media_urls"], json!([]));
    }

    // ----- property tests --------------------------------------------------------------------------------

    const NAMES: &[&str] = &["To", "From", "Body", "MediaUrl", "StatusCallback", "to", "MessagingServiceSid", ""];
    const VALUES: &[&str] = &[
        "+15551234567",
        "+447700900123",
        "15551234567",
        "+0",
        "",
        "https://e.com/a",
        "http://",
        "ftp://x",
        "https://a_b.com/s",
        "😀",
        "é",
        "whatsapp:+15551234567",
    ];

    fn arb_value() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(VALUES).prop_map(str::to_string),
            ".{0,40}",
            "\\+[0-9]{0,17}",
            (prop::sample::select(&['a', 'é', '😀'][..]), 0usize..2000).prop_map(|(c, n)| s(c, n)),
        ]
    }

    fn arb_params() -> impl Strategy<Value = Vec<(String, String)>> {
        prop::collection::vec(
            (prop_oneof![prop::sample::select(NAMES).prop_map(str::to_string), "[A-Za-z]{0,12}"], arb_value()),
            0..16,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn random_forms_never_panic(params in arb_params()) {
            match validate_create(&params) {
                Ok(create) => {
                    prop_assert!(is_e164(&create.to) && is_e164(&create.from));
                    prop_assert!(body_length(&create.body) <= BODY_MAX);
                    prop_assert!(!create.body.is_empty() || !create.media_urls.is_empty());
                    prop_assert!(create.media_urls.len() <= MEDIA_URLS_MAX);
                    prop_assert!(create.media_urls.iter().all(|u| is_http_url(u)));
                }
                Err(err) => {
                    prop_assert_eq!(err.http_status, 400);
                    prop_assert!([21211, 21212, 21602, 21603, 21604, 21609, 21617, 21620, 21623].contains(&err.code));
                    prop_assert_eq!(err.body()["code"].as_i64(), Some(err.code));
                }
            }
        }

        #[test]
        fn e164_matches_its_definition(number in "\\+?[0-9a ]{0,18}") {
            let digits = number.strip_prefix('+');
            let expected = digits.is_some_and(|d| {
                d.len() >= 2 && d.len() <= 15 && d.chars().all(|c| c.is_ascii_digit()) && !d.starts_with('0')
            });
            prop_assert_eq!(is_e164(&number), expected);
        }
    }
}
