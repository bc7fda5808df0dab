//! Fuzz target bodies (issue 8): one function per parser of outside input, each asserting the
//! parser's invariants, not only that it returns. `fuzz/fuzz_targets/<name>.rs` (cargo-fuzz,
//! nightly) hand libFuzzer's bytes to these; `tests/fuzz_corpus.rs` replays every file of
//! `fuzz/corpus/<name>/` through them on stable, so the seeds and every crash found so far
//! stay regression tests in the normal suite. A panic here is a finding.
//!
//! Inputs are text where the parser takes text, so seeds are real provider payloads as they
//! arrive; where a target needs several fields they are lines (see each function).

use jiff::{SignedDuration, Timestamp};
use secrecy::SecretString;

use shared::adapters::twilio::{
    SignatureAlgorithm, TwilioSignatureVerifier, compute_signature, compute_signature_with, encode_form, inbound_sms,
    parse_form,
};
use shared::adapters::whatsapp::signature::compute_signature as meta_signature;
use shared::adapters::whatsapp::{MetaSignatureVerifier, parse_notification};
use shared::domain::compliance::CustomerKeyword;
use shared::domain::conversation::{ConversationKey, Handle};
use shared::domain::line::MAX_AGENTS_PER_LINE;
use shared::domain::media::{
    MEDIA_PATH_PREFIX, MediaSource, MediaUrlError, MediaUrlKey, WhatsAppMedia, WhatsAppMediaKind,
};
use shared::domain::routing::{
    AgentCommand, AgentText, Focus, HandleLookup, LIST_MAX_PAGE, Route, RouteRule, RoutingFacts,
};
use shared::domain::sms_text::{
    PROVIDER_MAX_UNITS, SmsEncoding, cost, decode_gsm7, encode_gsm7, is_gsm7, smart_encode, split_for_provider,
};
use shared::domain::whatsapp_message::{ButtonAction, picked_handle};
use shared::domain::whatsapp_text::strip_formatting;
use shared::domain::{
    DeliveryStatus, E164, ErrorClass, IdentityChange, Job, JobId, LineId, Lines, UserId, WaId, Wamid, WhatsAppContent,
    business_hours, notices,
};

/// A target's body: libFuzzer's input in, a panic out if an invariant breaks.
pub type TargetBody = fn(&[u8]);

/// Every target: its name (the `fuzz/fuzz_targets/` file and `fuzz/corpus/` directory) and body.
pub const TARGETS: &[(&str, TargetBody)] = &[
    ("twilio_webhook", twilio_webhook),
    ("meta_webhook", meta_webhook),
    ("signatures", signatures),
    ("phone_numbers", phone_numbers),
    ("sms_text", sms_text),
    ("job_decode", job_decode),
    ("lines_config", lines_config),
    ("agent_routing", agent_routing),
    ("media_link", media_link),
    ("aws_sms_event", aws_sms_event),
];

/// The deployment the targets sign and verify for.
pub const PUBLIC_BASE_URL: &str = "https://bridge.example.com";
pub const TWILIO_AUTH_TOKEN: &str = "fuzz-twilio-auth-token";
pub const META_APP_SECRET: &str = "fuzz-meta-app-secret";

fn now() -> Timestamp {
    Timestamp::constant(1_795_608_000, 0) // 2026-11-25T12:00:00Z
}

/// `<path and query>\n<form body>`, or just a form body (posted to `/sms/inbound`): what Twilio
/// POSTs to `/sms/inbound` and `/sms/status`. The target signs the parameters with the known
/// token, so every well-formed body gets past the verifier to `inbound_sms` and to the status
/// report's parsing (the steps of `functions/sms-webhook`'s `status_report`, which is private
/// to that crate).
pub fn twilio_webhook(data: &[u8]) {
    let (path_and_query, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (String::from_utf8_lossy(&data[..i]).into_owned(), &data[i + 1..]),
        None => ("/sms/inbound".to_owned(), data),
    };
    let Ok(params) = parse_form(body) else { return };
    let borrowed: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(parse_form(encode_form(&borrowed).as_bytes()).as_ref(), Ok(&params), "encode_form, then parse_form");

    let signature = compute_signature(TWILIO_AUTH_TOKEN, &format!("{PUBLIC_BASE_URL}{path_and_query}"), &params);
    let verifier = TwilioSignatureVerifier::new(SecretString::from(TWILIO_AUTH_TOKEN), PUBLIC_BASE_URL);
    let verified = verifier
        .verify(&path_and_query, Some(&signature), None, params.clone())
        .expect("parameters signed the way Twilio signs them verify");
    for (name, _) in &params {
        let first = params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        assert_eq!(verified.get(name), first, "a parameter reads as its first value");
    }

    if let Ok(sms) = inbound_sms(&verified, now()) {
        assert_eq!(Some(sms.provider_message_id.as_str()), verified.get("MessageSid"));
        assert_eq!(Some(sms.from.as_str()), verified.get("From"));
        assert_eq!(Some(sms.to.as_str()), verified.get("To"));
        assert_eq!(sms.body, verified.get("Body").unwrap_or_default());
        assert!(sms.attachments.len() <= 10, "Twilio sends at most 10 media");
        check_e164(&sms.from);
        check_e164(&sms.to);
        let _ = CustomerKeyword::of(&sms.body);
        for attachment in &sms.attachments {
            let _ = WhatsAppMediaKind::for_content_type(&attachment.content_type);
        }
    }

    // The status callback: required sid and status, an optional numeric ErrorCode, and the
    // bridge's own `?job=` naming the leg.
    let required = |name| verified.get(name).filter(|v| !v.is_empty());
    let (Some(_sid), Some(status)) = (required("MessageSid"), required("MessageStatus")) else { return };
    let error_code = match verified.get("ErrorCode").filter(|c| !c.is_empty()).map(str::parse::<i64>) {
        Some(Err(_)) => return,
        Some(Ok(code)) => Some(code),
        None => None,
    };
    let query = path_and_query.split_once('?').map(|(_, query)| query);
    let job = query
        .and_then(|q| parse_form(q.as_bytes()).ok())
        .and_then(|params| params.into_iter().find(|(k, _)| k == "job").map(|(_, v)| v))
        .and_then(|job| JobId::parse(&job).ok());
    if let Some(job) = job {
        assert_eq!(JobId::parse(job.as_str()).as_ref(), Ok(&job));
        let _ = job.message_id();
    }
    if let Some(from) = verified.get("From").and_then(|f| E164::parse(f).ok()) {
        check_e164(&from);
    }
    let _ = error_code.and_then(ErrorClass::of_code);
    if let Some(status) = DeliveryStatus::parse(status) {
        assert_eq!(DeliveryStatus::parse(status.as_str()), Some(status));
        let agent_message = Wamid::parse("wamid.fuzz").expect("a wamid");
        for previous in [None, Some(DeliveryStatus::Sent), Some(DeliveryStatus::Failed), Some(DeliveryStatus::Read)] {
            let _ = notices::delivery_result(status, previous, error_code, &agent_message, Default::default());
        }
    }
}

/// A Cloud API webhook body, any bytes. Signed with the known app secret, so it reaches
/// `parse_notification`; what parses goes on to what the webhook does with it (the agent's
/// text is routed, button and list ids read).
pub fn meta_webhook(data: &[u8]) {
    let header = meta_signature(META_APP_SECRET, data);
    let verified = MetaSignatureVerifier::new(SecretString::from(META_APP_SECRET))
        .verify(Some(&header), data)
        .expect("a body signed the way Meta signs it verifies");
    assert_eq!(verified.body(), data);
    let Ok(batches) = parse_notification(&verified) else { return };
    assert!(std::str::from_utf8(data).is_ok(), "only UTF-8 parses");
    for batch in batches {
        for message in &batch.messages {
            if let Some(phone) = message.sender.phone() {
                check_wa_id(phone);
            }
            if let Some(id) = message.sender.user_id() {
                assert_eq!(UserId::parse(id.as_str()).as_ref(), Ok(id));
                assert!(!message.sender.masked().contains(&id.as_str()[3..]) || id.as_str().len() <= 5);
            }
            assert_eq!(Wamid::parse(message.wamid.as_str()).as_ref(), Ok(&message.wamid));
            match &message.content {
                WhatsAppContent::Text(text) => check_agent_text(text),
                WhatsAppContent::ListReply { id, .. } => {
                    let _ = picked_handle(id);
                }
                WhatsAppContent::ButtonReply { id, .. } => check_button_id(id),
                WhatsAppContent::Media { caption, media, .. } => {
                    if let Some(media) = media {
                        assert!(media.id.bytes().all(|b| b.is_ascii_digit()), "media ids are digits");
                        let _ = WhatsAppMediaKind::for_content_type(&media.mime_type);
                    }
                    if let Some(caption) = caption {
                        check_agent_text(caption);
                    }
                }
                WhatsAppContent::IdentityChanged(IdentityChange::Number { new_phone }) => check_wa_id(new_phone),
                WhatsAppContent::IdentityChanged(IdentityChange::UserId { new_user_id }) => {
                    assert_eq!(UserId::parse(new_user_id.as_str()).as_ref(), Ok(new_user_id));
                }
                WhatsAppContent::Reaction { .. } | WhatsAppContent::Unsupported { .. } => {}
            }
            let _ = message.content.kind();
        }
        for status in &batch.statuses {
            let _ = status.status.tracked();
            let _ = status.error_code.and_then(ErrorClass::of_code);
        }
    }
}

/// Both webhook signature checks with everything from outside: six lines,
/// `<PUBLIC_BASE_URL>\n<path and query>\n<X-Twilio-Signature>\n<form body>\n<X-Hub-Signature-256>\n<body>`
/// (the body runs to the end; a missing header line is a missing header). A signature from the
/// input verifies only if it is the HMAC of these exact parameters or body; the right one
/// always verifies.
pub fn signatures(data: &[u8]) {
    let mut fields = data.splitn(6, |&b| b == b'\n');
    let mut text = || fields.next().map(String::from_utf8_lossy);
    let base_url = text().unwrap_or_default();
    let path_and_query = text().unwrap_or_default();
    let twilio_header = text();
    let form = text().unwrap_or_default();
    let meta_header = text();
    let meta_body = data.splitn(6, |&b| b == b'\n').nth(5).unwrap_or_default();

    let params = parse_form(form.as_bytes()).unwrap_or_default();
    let verifier = TwilioSignatureVerifier::new(SecretString::from(TWILIO_AUTH_TOKEN), &base_url);
    if verifier.verify(&path_and_query, twilio_header.as_deref(), None, params.clone()).is_ok() {
        let header = twilio_header.as_deref().unwrap_or_default();
        let url = format!("{}{path_and_query}", base_url.trim_end_matches('/'));
        let genuine = twilio_url_forms(&url).iter().any(|candidate| {
            let expected = compute_signature(TWILIO_AUTH_TOKEN, candidate, &params);
            base64_bytes(header.trim()) == base64_bytes(&expected)
        });
        assert!(genuine, "a signature that is not Twilio's verified: {header:?}");
    }
    let url = format!("{}{path_and_query}", base_url.trim_end_matches('/'));
    let right = compute_signature(TWILIO_AUTH_TOKEN, &url, &params);
    assert!(
        verifier.verify(&path_and_query, Some(&right), None, params.clone()).is_ok(),
        "Twilio's signature verifies"
    );
    let other = compute_signature("another-token", &url, &params);
    assert!(
        verifier.verify(&path_and_query, Some(&other), None, params.clone()).is_err(),
        "another account's signature verifies"
    );
    // A Webhook Setting's shared key: its HMAC-SHA256 verifies under the settings header, the
    // auth token's signature doesn't.
    let settings = Some("key=webhooks_sharedkey_fuzz,algorithm=HMAC_SHA256");
    let shared = verifier.with_shared_keys(vec![SecretString::from("fuzz-shared-key")]);
    let keyed = compute_signature_with(SignatureAlgorithm::HmacSha256, "fuzz-shared-key", &url, &params);
    assert!(shared.verify(&path_and_query, Some(&keyed), settings, params.clone()).is_ok(), "the shared key verifies");
    assert!(shared.verify(&path_and_query, Some(&right), settings, params).is_err(), "the token signs for the key");

    let meta = MetaSignatureVerifier::new(SecretString::from(META_APP_SECRET));
    if let Ok(verified) = meta.verify(meta_header.as_deref(), meta_body) {
        let header = meta_header.as_deref().unwrap_or_default().trim();
        let expected = meta_signature(META_APP_SECRET, meta_body);
        let hex_part = header.strip_prefix("sha256=").unwrap_or_default();
        assert_eq!(hex::decode(hex_part).ok(), hex::decode(&expected["sha256=".len()..]).ok(), "forged: {header:?}");
        assert_eq!(verified.body(), meta_body);
    }
    let right = meta_signature(META_APP_SECRET, meta_body);
    assert!(meta.verify(Some(&right), meta_body).is_ok(), "Meta's signature verifies");
    assert!(meta.verify(Some(&meta_signature("another-secret", meta_body)), meta_body).is_err());
}

/// The URL with its default port added or removed, the forms Twilio may have signed (an
/// independent statement of the rule in `adapters::twilio::signature`).
fn twilio_url_forms(url: &str) -> Vec<String> {
    let mut forms = vec![url.to_owned()];
    for (scheme, port) in [("https://", ":443"), ("http://", ":80")] {
        let Some(rest) = url.strip_prefix(scheme) else { continue };
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        match authority.strip_suffix(port) {
            Some(host) => forms.push(format!("{scheme}{host}{tail}")),
            None => forms.push(format!("{scheme}{authority}{port}{tail}")),
        }
    }
    forms
}

fn base64_bytes(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

/// A phone number as either provider gives it (`+14155550134`, `14155550111`).
pub fn phone_numbers(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(number) = E164::parse(text) {
        assert_eq!(number.as_str(), text);
        check_e164(&number);
    }
    if let Ok(wa_id) = WaId::parse(text) {
        assert_eq!(wa_id.as_str(), text);
        check_wa_id(&wa_id);
        assert!(E164::parse(&format!("+{text}")).is_ok(), "a wa_id is an E.164 number without '+'");
    }
}

fn check_e164(number: &E164) {
    let text = number.as_str();
    let digits = number.digits();
    assert_eq!(&text[1..], digits);
    assert!(text.starts_with('+') && (2..=15).contains(&digits.len()));
    assert!(digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0'));
    check_masked(digits, &number.masked()[1..]);
    assert_eq!(format!("{number:?}"), format!("E164({})", number.masked()));
    let pretty = number.pretty();
    let pretty_digits: String = pretty.chars().filter(char::is_ascii_digit).collect();
    assert_eq!(pretty_digits, digits, "pretty() only adds formatting");
    let json = serde_json::to_string(number).expect("serializes");
    assert_eq!(serde_json::from_str::<E164>(&json).ok().as_ref(), Some(number));
}

fn check_wa_id(wa_id: &WaId) {
    let digits = wa_id.as_str();
    assert!((5..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()));
    check_masked(digits, &wa_id.masked());
    assert_eq!(format!("{wa_id:?}"), format!("WaId({})", wa_id.masked()));
}

/// Masking keeps the length, shows at most six digits, and hides something once there is
/// something to hide (docs/operating.md).
fn check_masked(digits: &str, masked: &str) {
    assert_eq!(masked.len(), digits.len(), "{masked}");
    assert!(masked.bytes().filter(u8::is_ascii_digit).count() <= 6, "{masked}");
    for (shown, digit) in masked.bytes().zip(digits.bytes()) {
        assert!(shown == b'*' || shown == digit, "{masked}");
    }
    if digits.len() > 2 {
        assert!(masked.contains('*'), "{masked} hides nothing");
    }
}

/// An SMS body, as text (cost, encoding, smart encoding, splitting), and as raw septets
/// (decoding). The text is also split ten times over, to reach many numbered parts.
pub fn sms_text(data: &[u8]) {
    let decoded = decode_gsm7(data);
    if data.iter().all(|&b| b < 0x80) {
        assert!(is_gsm7(&decoded), "septets decode to GSM-7 text: {decoded:?}");
        let septets = encode_gsm7(&decoded).expect("GSM-7 text encodes");
        assert_eq!(decode_gsm7(&septets), decoded, "decode, encode, decode");
    } else {
        assert!(decoded.contains(char::REPLACEMENT_CHARACTER), "a byte above 0x7F is not a septet");
    }
    let Ok(text) = std::str::from_utf8(data) else { return };
    check_sms_text(text);
    if !text.is_empty() {
        check_split(&text.repeat(10));
    }
}

fn check_sms_text(text: &str) {
    let sms = cost(text);
    assert!(sms.segments >= 1, "an SMS is at least one segment");
    assert_eq!(is_gsm7(text), sms.encoding == SmsEncoding::Gsm7);
    match encode_gsm7(text) {
        Some(septets) => {
            assert_eq!(sms.encoding, SmsEncoding::Gsm7);
            assert_eq!(septets.len(), sms.units);
            assert_eq!(decode_gsm7(&septets), text, "GSM-7 round trip");
        }
        None => {
            assert_eq!(sms.encoding, SmsEncoding::Ucs2);
            assert_eq!(sms.units, utf16_len(text));
        }
    }
    if sms.units <= sms.encoding.single_segment_units() {
        assert_eq!(sms.segments, 1);
    } else {
        // Packing wastes at most one unit per part (a pair that doesn't fit).
        let per_part = sms.encoding.per_part_units();
        assert!(sms.segments >= sms.units.div_ceil(per_part) && sms.segments <= sms.units.div_ceil(per_part - 1));
    }
    let smart = smart_encode(text);
    if smart != text {
        assert!(is_gsm7(&smart), "smart encoding only ever yields GSM-7");
        assert!(cost(&smart).segments <= sms.segments, "smart encoding never costs more");
    }
    assert_eq!(smart_encode(&smart), smart, "smart encoding is idempotent");
    check_split(text);
}

/// Every part within the provider's limit, numbered when there are several, and together
/// the whole text but for the breaking whitespace at the cuts.
fn check_split(text: &str) {
    let parts = split_for_provider(text);
    if utf16_len(text) <= PROVIDER_MAX_UNITS {
        assert_eq!(parts, [text], "a text within the limit is one part, unchanged");
        return;
    }
    assert_eq!(parts.is_empty(), text.chars().all(is_break_space), "no parts only for whitespace");
    let count = parts.len();
    let mut bodies = Vec::with_capacity(count);
    for (i, part) in parts.iter().enumerate() {
        assert!(utf16_len(part) <= PROVIDER_MAX_UNITS, "part {} has {} units", i + 1, utf16_len(part));
        let body = if count == 1 {
            part.as_str()
        } else {
            part.strip_prefix(&format!("({}/{count}) ", i + 1)).expect("numbered")
        };
        assert!(!body.is_empty(), "part {} is empty", i + 1);
        bodies.push(body);
    }
    let squeeze = |s: &str| s.chars().filter(|&c| !is_break_space(c)).collect::<String>();
    assert!(bodies.iter().map(|b| squeeze(b)).collect::<String>() == squeeze(text), "the parts lose or add text");
}

/// Where `split_for_provider` may cut (restated: a no-break space asks not to be).
fn is_break_space(c: char) -> bool {
    c.is_whitespace() && !matches!(c, '\u{A0}' | '\u{2007}' | '\u{202F}')
}

fn utf16_len(text: &str) -> usize {
    text.chars().map(char::len_utf16).sum()
}

/// A delivery job's SQS body. What decodes encodes back to the same job.
pub fn job_decode(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(job) = Job::decode(text) else { return };
    let encoded = job.encode();
    let again = Job::decode(&encoded).expect("an encoded job decodes");
    assert_eq!(again, job, "decode, encode, decode");
    assert_eq!(again.encode(), encoded);
    let _ = (job.kind(), job.leg_location(), job.line(), job.recipient(), job.order_group());
    let _ = job.job_id.message_id();
}

/// A `BRIDGE_LINES` document. A valid one finds each line by every key it is looked up by,
/// and its business hours answer consistently.
pub fn lines_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(lines) = Lines::from_json("BRIDGE_LINES", text) else { return };
    for line in lines.iter() {
        assert_eq!(lines.by_sms_number(&line.sms_number).map(|l| &l.id), Some(&line.id));
        assert_eq!(lines.by_id(&line.id).map(|l| &l.id), Some(&line.id));
        let by_phone_id = lines.by_phone_number_id(line.whatsapp_phone_number_id.as_str());
        assert_eq!(by_phone_id.map(|l| &l.id), Some(&line.id));
        assert!(line.agents.len() <= MAX_AGENTS_PER_LINE);
        assert!((1..=720).contains(&line.focus_hours) && line.segment_warning >= 1);
        check_e164(&line.sms_number);
        line.agents.iter().for_each(check_wa_id);
        let _ = (notices::help(line, None), notices::help(line, Some("x")), notices::not_an_agent(line));
        if let Some(hours) = &line.business_hours {
            check_business_hours(hours, data);
        }
    }
}

fn check_business_hours(hours: &business_hours::BusinessHours, data: &[u8]) {
    // FNV-1a of the input picks one more instant between 1970 and 2100.
    let hash = data.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    let seconds = i64::try_from(hash % 4_102_444_800).unwrap_or_default();
    let instants = [
        now(),
        Timestamp::constant(1_772_953_199, 0), // 2026-03-08T06:59:59Z, a US spring-forward
        Timestamp::constant(1_792_889_999, 0), // 2026-10-25T00:59:59Z, the EU fall-back
        Timestamp::constant(seconds, 0),
    ];
    for at in instants {
        let open = hours.is_open(at);
        match hours.next_opening(at) {
            Some(next) => {
                let opens = next.timestamp();
                assert!(opens > at, "next opening {opens} is not after {at}");
                assert!(hours.is_open(opens), "closed at its next opening {opens}");
                assert!(!hours.is_open(opens - SignedDuration::from_nanos(1)), "already open before {opens}");
            }
            None => assert!(open, "never opens again, yet closed at {at}"),
        }
    }
    let _ = hours.time_zone_name();
}

/// An agent's WhatsApp text, as routing reads it; also what a button or list row id is.
pub fn agent_routing(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    check_agent_text(text);
    check_button_id(text);
    if let Some(handle) = picked_handle(text) {
        assert_eq!(Handle::parse(&handle.to_string()).as_ref(), Ok(&handle));
    }
    if let Ok(handle) = Handle::parse(text) {
        assert_eq!(Handle::parse(&handle.to_string()).as_ref(), Ok(&handle));
    }
}

fn check_button_id(id: &str) {
    if let Some((action, handle)) = ButtonAction::parse_button_id(id) {
        assert_eq!(ButtonAction::parse_button_id(&action.button_id(&handle)), Some((action, handle)));
    }
}

/// Parses `text` as routing does and checks the precedence of docs/using.md on it, then takes the
/// relayed body the way the worker does (formatting stripped, then the SMS rules).
fn check_agent_text(text: &str) {
    let parsed = AgentText::parse(text);
    assert_eq!(parsed.body, parsed.body.trim(), "the body is trimmed");
    assert!(parsed.handle.is_none() || parsed.command.is_none(), "a handle and a command");
    if let Some(handle) = &parsed.handle {
        assert!(text.trim_start().starts_with('#'));
        assert_eq!(Handle::parse(handle.as_str()).as_ref(), Ok(handle));
    }
    if let Some(command) = &parsed.command {
        assert!(text.trim_start().starts_with('/'));
        assert!(!command.name.is_empty());
        assert!(command.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        match command.interpret() {
            AgentCommand::List { page } => assert!((1..=LIST_MAX_PAGE).contains(&page)),
            AgentCommand::To { customer, text } => {
                check_e164(&customer);
                assert!(!text.is_empty() && text == text.trim());
            }
            AgentCommand::Close { handle: Some(handle) } => {
                assert_eq!(Handle::parse(handle.as_str()).as_ref(), Ok(&handle));
            }
            _ => {}
        }
    }

    let conversation = |n: u8| ConversationKey {
        line: LineId::parse("main").expect("a line id"),
        customer: E164::parse(&format!("+1415555010{n}")).expect("a number"),
    };
    let focus = |hours_ago| Focus {
        conversation: conversation(3),
        handle: Handle::parse("F5").expect("a handle"),
        since: now() - SignedDuration::from_hours(hours_ago),
    };
    let decide = |facts| shared::domain::routing::decide(&parsed, facts, 12, now());
    // 1. A swipe-reply wins over everything.
    let facts = RoutingFacts {
        replied_to: Some(conversation(1)),
        handle: parsed.handle.clone().map(|_| HandleLookup::Found(conversation(2))),
        focus: Some(focus(1)),
    };
    assert!(matches!(
        decide(facts),
        Route::Relay { conversation: c, rule: RouteRule::SwipeReply, .. } if c == conversation(1)
    ));
    // 2. Then the handle, found or not.
    if let Some(handle) = &parsed.handle {
        let found = decide(RoutingFacts {
            handle: Some(HandleLookup::Found(conversation(2))),
            focus: Some(focus(1)),
            ..RoutingFacts::default()
        });
        match found {
            Route::Focus { conversation: c } => assert!(c == conversation(2) && parsed.body.is_empty()),
            Route::Relay { conversation: c, text, rule: RouteRule::Handle } => {
                assert!(c == conversation(2) && text == parsed.body && !text.is_empty());
            }
            other => panic!("a found handle routed to {other:?}"),
        }
        let unknown = decide(RoutingFacts {
            handle: Some(HandleLookup::Unknown(handle.clone())),
            focus: Some(focus(1)),
            ..RoutingFacts::default()
        });
        assert!(matches!(unknown, Route::AskWhich { unknown_handle: Some(h), .. } if &h == handle));
    } else {
        // 3. A command; 4. the focus while current; 5. otherwise ask.
        let current = decide(RoutingFacts { focus: Some(focus(1)), ..RoutingFacts::default() });
        let stale = decide(RoutingFacts { focus: Some(focus(13)), ..RoutingFacts::default() });
        if let Some(command) = &parsed.command {
            assert!(matches!(&current, Route::Command(c) if c == command));
            assert!(matches!(&stale, Route::Command(c) if c == command));
        } else {
            assert!(matches!(current, Route::Relay { rule: RouteRule::Focus, .. }));
            assert!(matches!(stale, Route::AskWhich { unknown_handle: None, .. }));
        }
    }

    let _ = CustomerKeyword::of(text);
    let sms = strip_formatting(&parsed.body);
    assert!(is_subsequence(&sms, &parsed.body), "stripping formatting only removes markers");
    check_sms_text(&sms);
}

fn is_subsequence(short: &str, long: &str) -> bool {
    let mut long = long.chars();
    short.chars().all(|c| long.any(|l| l == c))
}

/// A media link's parts as `GET /media/{source}/{reference}?exp=&sig=` receives them, one a
/// line: `<source>\n<reference>\n<exp>\n<sig>`. Only the bridge's own, unexpired signature
/// opens it; and any text signed as a reference (the whole input) comes back out exactly.
pub fn media_link(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut fields = text.splitn(4, '\n');
    let mut field = || fields.next().unwrap_or_default();
    let (source, reference, exp, sig) = (field(), field(), field(), field());
    let key = MediaUrlKey::derive(&SecretString::from(TWILIO_AUTH_TOKEN));
    if let Ok((media_source, decoded)) = key.verify(source, reference, exp, sig, now()) {
        let expires: i64 = exp.parse().expect("a verified expiry is a number");
        assert!(expires >= now().as_second(), "an expired link opened");
        if let Ok(expires) = Timestamp::from_second(expires) {
            let url = key.sign(PUBLIC_BASE_URL, media_source, &decoded, expires);
            let (.., signed_sig) = link_parts(&url);
            assert_eq!(hex::decode(sig).ok(), hex::decode(signed_sig).ok(), "a link the bridge didn't sign opened");
        }
    }

    let other_key = MediaUrlKey::derive(&SecretString::from("another-token"));
    let expires = now() + SignedDuration::from_hours(1);
    for media_source in [MediaSource::Sms, MediaSource::WhatsApp] {
        let url = key.sign(PUBLIC_BASE_URL, media_source, &text, expires);
        let (source, reference, exp, sig) = link_parts(&url);
        let verify = |key: &MediaUrlKey, at| key.verify(source, reference, exp, sig, at);
        assert_eq!(verify(&key, now()), Ok((media_source, text.to_string())), "{url}");
        assert_eq!(verify(&key, expires + SignedDuration::from_secs(1)), Err(MediaUrlError::Expired));
        assert_eq!(verify(&other_key, now()), Err(MediaUrlError::Invalid));
    }

    let _ = WhatsAppMediaKind::for_content_type(&text);
    if let Some(media) = WhatsAppMedia::parse(&text, "image/jpeg") {
        assert!(media.id.bytes().all(|b| b.is_ascii_digit()) && !media.id.is_empty());
    }
    if shared::domain::media::host_allowed(&text, &["api.twilio.com"], &["twiliocdn.com"]) {
        let host = text.trim_end_matches('.').to_ascii_lowercase();
        assert!(host == "api.twilio.com" || host.ends_with(".twiliocdn.com"), "{host:?} allowed");
    }
}

/// `source`, `reference`, `exp` and `sig` of a link made by `MediaUrlKey::sign`.
fn link_parts(url: &str) -> (&str, &str, &str, &str) {
    let path = url.split_once(MEDIA_PATH_PREFIX).map(|(_, path)| path).unwrap_or_default();
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let (source, reference) = path.split_once('/').unwrap_or((path, ""));
    let param = |name: &str| query.split('&').find_map(|p| p.strip_prefix(name)).unwrap_or_default();
    (source, reference, param("exp="), param("sig="))
}

/// An SNS event as Lambda hands it to the SMS webhook (AWS End User Messaging SMS's two-way
/// texts and delivery events): never a panic; a customer's text has valid numbers and is
/// never dated after now; what can't be read says why without a number in it.
pub fn aws_sms_event(data: &[u8]) {
    use shared::adapters::aws_sms::events::{
        AwsSmsNotification, AwsSmsTopics, SnsRecordError, is_sns_event, read_sns_event,
    };
    let event = String::from_utf8_lossy(data);
    let topics = AwsSmsTopics {
        inbound: "arn:aws:sns:us-east-1:123456789012:bridge-inbound".into(),
        events: "arn:aws:sns:us-east-1:123456789012:bridge-events".into(),
    };
    let looks_like_sns = is_sns_event(&event);
    let Ok(records) = read_sns_event(&event, &topics, now()) else { return };
    let long_digit_run = |text: &str| text.split(|c: char| !c.is_ascii_digit()).any(|run| run.len() >= 7);
    for record in records {
        match record {
            Ok(AwsSmsNotification::Inbound { sms, .. }) => {
                check_e164(&sms.from);
                check_e164(&sms.to);
                assert!(sms.received_at <= now(), "a text dated after now would reorder the thread");
                assert!(sms.attachments.is_empty(), "AWS two-way SMS carries no media");
                assert!(looks_like_sns, "a text read from an event the dispatcher sends elsewhere");
            }
            Ok(AwsSmsNotification::Delivery(event)) => {
                event.from.iter().chain(&event.to).for_each(check_e164);
            }
            // A topic's name is the operator's own, not a customer's number.
            Err(SnsRecordError::WrongTopic(_) | SnsRecordError::KindNotFromTopic { .. }) => {}
            Err(e) => assert!(!long_digit_run(&e.to_string()), "a number in an error: {e}"),
        }
    }
}
