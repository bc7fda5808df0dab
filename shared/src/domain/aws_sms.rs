//! AWS End User Messaging SMS in the bridge's terms (docs/aws-sms.md): what its refusals and
//! delivery events mean, as an error class, a delivery status and a reason in words.
//!
//! The bridge records a failure's code as a number (Twilio's and Meta's codes are numbers).
//! AWS names its reasons instead, so each AWS reason the bridge knows has a number of its own
//! in a range neither of those providers uses ([`AWS_SMS_CODE_BASE`] + n): legs, notices and
//! metrics keep one code field, and the agent reads the AWS name (`TEXT_BLOCKED`), not the
//! number. "The recipient opted out" is the one meaning the bridge already has a code for
//! ([`OPTED_OUT_CODE`]), so AWS's refusal takes that code and marks the conversation opted
//! out like Twilio's 21610.
//!
//! Sources, read 2026-12-06: the `SendTextMessage` errors and their reason enums in the
//! service model (`aws-sdk-pinpointsmsvoicev2` 1.134: `ConflictExceptionReason`,
//! `ValidationExceptionReason`, `ServiceQuotaExceededExceptionReason`,
//! `AccessDeniedExceptionReason`); the event types in the AWS End User Messaging SMS User
//! Guide, "Event types for SMS, MMS, and voice"
//! (<https://docs.aws.amazon.com/sms-voice/latest/userguide/configuration-sets-event-types.html>),
//! and the event's JSON in "Messaging Events"
//! (<https://docs.aws.amazon.com/end-user-messaging/latest/userguide/nx-features-messaging-events.html>).

use super::compliance::OPTED_OUT_CODE;
use super::delivery::ErrorClass;
use super::status::{DeliveryStatus, ReportedStatus};

/// Where the bridge's numbers for AWS reasons start: ten digits, far above Twilio's five-digit
/// and Meta's (at most seven-digit) codes.
pub const AWS_SMS_CODE_BASE: i64 = 1_600_000_000;

/// A reason AWS End User Messaging SMS gives for not sending or not delivering a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AwsSmsReason {
    // `SendTextMessage` refusals.
    /// `ThrottlingException`: over the account's or the number's rate.
    Throttled,
    /// `InternalServerException`.
    ServiceError,
    /// `ServiceQuotaExceededException` `MONTHLY_SPEND_LIMIT_REACHED_FOR_TEXT`.
    SpendLimitReached,
    /// Another `ServiceQuotaExceededException`.
    QuotaExceeded,
    /// `AccessDeniedException` `ACCOUNT_DISABLED`.
    AccountDisabled,
    /// `AccessDeniedException` `INSUFFICIENT_ACCOUNT_REPUTATION`.
    AccountReputation,
    /// Any other `AccessDeniedException` (the function's IAM role).
    AccessDenied,
    /// `ResourceNotFoundException`: the line's phone number or the configuration set doesn't
    /// exist in this account and region.
    ResourceNotFound,
    /// `ValidationException` on `DestinationPhoneNumber`, or `CANNOT_PARSE` of it.
    InvalidDestination,
    /// `ValidationException` `COUNTRY_NOT_ENABLED`, `DESTINATION_COUNTRY_BLOCKED`,
    /// `INTERNATIONAL_SENDING_NOT_SUPPORTED`: this customer's country, not the others'.
    CountryNotEnabled,
    /// `ValidationException` `PRICE_OVER_THRESHOLD`.
    PriceOverThreshold,
    /// `ValidationException` `MAXIMUM_SIZE_EXCEEDED` or on `MessageBody`.
    MessageRefused,
    /// `ValidationException` `SENDER_ID_NOT_REGISTERED`, `SENDER_ID_REQUIRES_REGISTRATION`,
    /// `INVALID_IDENTITY_FOR_DESTINATION_COUNTRY`; `ConflictException`
    /// `REGISTRATION_NOT_COMPLETE`: the number isn't registered (10DLC, toll-free
    /// verification) for where it sends.
    RegistrationIncomplete,
    /// `ConflictException` `DESTINATION_PHONE_NUMBER_NOT_VERIFIED`: the account is in the SMS
    /// sandbox, which texts verified numbers only.
    SandboxUnverifiedDestination,
    /// `ConflictException` `DESTINATION_COUNTRY_BLOCKED_BY_PROTECT_CONFIGURATION` or
    /// `DESTINATION_PHONE_NUMBER_BLOCKED_BY_PROTECT_NUMBER_OVERRIDE`.
    BlockedByProtect,
    /// Any other `ValidationException` or `ConflictException` (`RESOURCE_NOT_ACTIVE`,
    /// `NO_ORIGINATION_IDENTITIES_FOUND`...): the bridge's request or the account's setup.
    RequestRefused,
    /// The bridge's own: an agent's media on an AWS line of a deployment without a media
    /// bucket (`AWS_SMS_MEDIA_BUCKET`): nothing is sent rather than the text alone.
    MediaBucketMissing,
    /// `MEDIA_FILE_INACCESSIBLE`: the SMS service couldn't read the file from the media
    /// bucket (its bucket policy must let the service read it, docs/aws-sms.md).
    MediaFileInaccessible,
    /// The bridge's own: a file MMS can't carry (its type, or its size: AWS End User
    /// Messaging SMS User Guide, "MMS file types, size and character limits", read 2026-12-06).
    MediaNotAllowed,

    // Delivery events (`eventType`).
    /// `TEXT_BLOCKED`: the recipient's device or carrier blocks messages to them.
    TextBlocked,
    /// `TEXT_CARRIER_BLOCKED`: the carrier took the message for malicious or abusive.
    TextCarrierBlocked,
    /// `TEXT_SPAM`: the carrier took the message for unsolicited commercial content.
    TextSpam,
    /// `TEXT_INVALID`: the destination number is not valid.
    TextInvalid,
    /// `TEXT_INVALID_MESSAGE`: the body can't be delivered.
    TextInvalidMessage,
    /// `TEXT_CARRIER_UNREACHABLE`: a temporary error in the carrier's network.
    TextCarrierUnreachable,
    /// `TEXT_UNREACHABLE`: the phone is off or out of coverage.
    TextUnreachable,
    /// `TEXT_TTL_EXPIRED`: not handed off within the message's time to live (72 h).
    TextTtlExpired,
    /// `TEXT_PROTECT_BLOCKED`: the account's protect configuration blocked it.
    TextProtectBlocked,
    /// `TEXT_UNKNOWN`: not delivered, for a reason no other type covers.
    TextUnknown,
}

use AwsSmsReason::*;

/// Every reason, in code order: the table tests walk it.
pub const ALL_REASONS: [AwsSmsReason; 29] = [
    Throttled,
    ServiceError,
    SpendLimitReached,
    QuotaExceeded,
    AccountDisabled,
    AccountReputation,
    AccessDenied,
    ResourceNotFound,
    InvalidDestination,
    CountryNotEnabled,
    PriceOverThreshold,
    MessageRefused,
    RegistrationIncomplete,
    SandboxUnverifiedDestination,
    BlockedByProtect,
    RequestRefused,
    MediaBucketMissing,
    MediaNotAllowed,
    MediaFileInaccessible,
    TextBlocked,
    TextCarrierBlocked,
    TextSpam,
    TextInvalid,
    TextInvalidMessage,
    TextCarrierUnreachable,
    TextUnreachable,
    TextTtlExpired,
    TextProtectBlocked,
    TextUnknown,
];

impl AwsSmsReason {
    /// The bridge's number for it (never renumber: legs keep it for the retention period).
    pub fn code(self) -> i64 {
        let offset = match self {
            Throttled => 1,
            ServiceError => 2,
            SpendLimitReached => 3,
            QuotaExceeded => 4,
            AccountDisabled => 5,
            AccountReputation => 6,
            AccessDenied => 7,
            ResourceNotFound => 8,
            InvalidDestination => 9,
            CountryNotEnabled => 10,
            PriceOverThreshold => 11,
            MessageRefused => 12,
            RegistrationIncomplete => 13,
            SandboxUnverifiedDestination => 14,
            BlockedByProtect => 15,
            RequestRefused => 16,
            MediaBucketMissing => 17,
            MediaNotAllowed => 18,
            MediaFileInaccessible => 19,
            TextBlocked => 101,
            TextCarrierBlocked => 102,
            TextSpam => 103,
            TextInvalid => 104,
            TextInvalidMessage => 105,
            TextCarrierUnreachable => 106,
            TextUnreachable => 107,
            TextTtlExpired => 108,
            TextProtectBlocked => 109,
            TextUnknown => 110,
        };
        AWS_SMS_CODE_BASE + offset
    }

    pub fn from_code(code: i64) -> Option<Self> {
        ALL_REASONS.into_iter().find(|reason| reason.code() == code)
    }

    /// The name an operator finds in AWS's documentation (the agent sees it in brackets).
    pub fn aws_name(self) -> &'static str {
        match self {
            Throttled => "ThrottlingException",
            ServiceError => "InternalServerException",
            SpendLimitReached => "MONTHLY_SPEND_LIMIT_REACHED_FOR_TEXT",
            QuotaExceeded => "ServiceQuotaExceededException",
            AccountDisabled => "ACCOUNT_DISABLED",
            AccountReputation => "INSUFFICIENT_ACCOUNT_REPUTATION",
            AccessDenied => "AccessDeniedException",
            ResourceNotFound => "ResourceNotFoundException",
            InvalidDestination => "DestinationPhoneNumber invalid",
            CountryNotEnabled => "COUNTRY_NOT_ENABLED",
            PriceOverThreshold => "PRICE_OVER_THRESHOLD",
            MessageRefused => "MessageBody invalid",
            RegistrationIncomplete => "registration incomplete",
            SandboxUnverifiedDestination => "DESTINATION_PHONE_NUMBER_NOT_VERIFIED",
            BlockedByProtect => "blocked by protect configuration",
            RequestRefused => "request refused",
            MediaBucketMissing => "no media bucket",
            MediaNotAllowed => "MMS file type or size",
            MediaFileInaccessible => "MEDIA_FILE_INACCESSIBLE",
            TextBlocked => "TEXT_BLOCKED",
            TextCarrierBlocked => "TEXT_CARRIER_BLOCKED",
            TextSpam => "TEXT_SPAM",
            TextInvalid => "TEXT_INVALID",
            TextInvalidMessage => "TEXT_INVALID_MESSAGE",
            TextCarrierUnreachable => "TEXT_CARRIER_UNREACHABLE",
            TextUnreachable => "TEXT_UNREACHABLE",
            TextTtlExpired => "TEXT_TTL_EXPIRED",
            TextProtectBlocked => "TEXT_PROTECT_BLOCKED",
            TextUnknown => "TEXT_UNKNOWN",
        }
    }

    /// For the agent: why their reply didn't arrive.
    pub fn in_words(self) -> &'static str {
        match self {
            Throttled => "the SMS service was busy",
            ServiceError => "the SMS service failed",
            SpendLimitReached => "the account's monthly SMS spend limit is reached",
            QuotaExceeded => "an SMS service quota is reached",
            AccountDisabled => "the SMS account is disabled",
            AccountReputation => "the SMS account's sending is suspended (reputation)",
            AccessDenied => "the bridge is not allowed to send SMS (permissions)",
            ResourceNotFound => "the line's SMS number or configuration set was not found",
            InvalidDestination | TextInvalid => "invalid phone number",
            CountryNotEnabled => "the destination country is not enabled",
            PriceOverThreshold => "the message costs more than the account allows",
            MessageRefused | TextInvalidMessage => "the message can't be sent as written",
            RegistrationIncomplete => "sender not registered for this destination (10DLC or toll-free verification)",
            SandboxUnverifiedDestination => "the SMS account is in the sandbox and this number isn't verified",
            BlockedByProtect | TextProtectBlocked => "blocked by the account's protect configuration",
            RequestRefused => "the SMS service refused the request",
            MediaBucketMissing => "pictures and files can't be sent by SMS on this line",
            MediaNotAllowed => "this file can't go by MMS (its type or size)",
            MediaFileInaccessible => "the SMS service couldn't read the file (the media bucket's policy)",
            TextBlocked => "blocked by the recipient or their carrier",
            TextCarrierBlocked => "filtered by the carrier",
            TextSpam => "filtered by the carrier as spam",
            TextCarrierUnreachable => "the carrier could not be reached",
            TextUnreachable => "the phone is off or unreachable",
            TextTtlExpired => "not delivered in time (expired)",
            TextUnknown => "unknown error from the carrier",
        }
    }

    /// What the worker does when a send is refused for this reason (docs/guarantees.md).
    /// Delivery events come after a send was accepted, so their class only matters if one is
    /// ever seen as a send's answer: a failure for this message alone.
    pub fn class(self) -> ErrorClass {
        match self {
            Throttled | ServiceError => ErrorClass::Retry,
            // The account or the stack is misconfigured: an operator must act, and every
            // reply would fail the same way until then.
            SpendLimitReached
            | QuotaExceeded
            | AccountDisabled
            | AccountReputation
            | AccessDenied
            | ResourceNotFound
            | RegistrationIncomplete
            | RequestRefused
            | MediaFileInaccessible => ErrorClass::Escalate,
            InvalidDestination
            | CountryNotEnabled
            | PriceOverThreshold
            | MessageRefused
            | SandboxUnverifiedDestination
            | BlockedByProtect
            // A deployment may choose to have no media bucket: the agent learns at once.
            | MediaBucketMissing
            | MediaNotAllowed
            | TextBlocked
            | TextCarrierBlocked
            | TextSpam
            | TextInvalid
            | TextInvalidMessage
            | TextCarrierUnreachable
            | TextUnreachable
            | TextTtlExpired
            | TextProtectBlocked
            | TextUnknown => ErrorClass::Permanent,
        }
    }
}

/// What MMS carries (AWS End User Messaging SMS User Guide, "MMS file types, size and
/// character limits", read 2026-12-06): images up to 2 MB, the other types up to 600 KB.
const MMS_TYPES: &[(&str, usize)] = &[
    ("image/gif", 2_000_000),
    ("image/jpeg", 2_000_000),
    ("image/png", 2_000_000),
    ("image/tiff", 600_000),
    ("audio/3gpp", 600_000),
    ("video/3gpp", 600_000),
    ("audio/3gpp2", 600_000),
    ("video/3gpp2", 600_000),
    ("audio/amr", 600_000),
    ("audio/mp4", 600_000),
    ("video/mp4", 600_000),
    ("audio/mpeg", 600_000),
    ("audio/ogg", 600_000),
    ("video/quicktime", 600_000),
    ("video/webm", 600_000),
    ("text/calendar", 600_000),
    ("text/vcard", 600_000),
    ("text/x-vcard", 600_000),
    ("application/pdf", 600_000),
];

/// The most bytes any file MMS takes: more need not be read.
pub const MMS_MAX_BYTES: usize = 2_000_000;

/// Whether MMS carries a file of `content_type` (parameters such as `; charset` ignored) and
/// `size` bytes.
pub fn mms_allows(content_type: &str, size: usize) -> bool {
    let kind = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    MMS_TYPES.iter().any(|(name, max)| *name == kind && size <= *max && size > 0)
}

/// A `SendTextMessage` refusal as the SDK reports it: the exception and its `Reason`, and
/// the fields a `ValidationException` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsSendRefusal<'a> {
    Throttling,
    InternalServer,
    ServiceQuotaExceeded { reason: Option<&'a str> },
    AccessDenied { reason: Option<&'a str> },
    ResourceNotFound,
    Validation { reason: Option<&'a str>, fields: &'a [&'a str] },
    Conflict { reason: Option<&'a str> },
}

/// The bridge's code for a refusal: an [`AwsSmsReason`]'s, or [`OPTED_OUT_CODE`] when the
/// customer is on the number's opt-out list.
pub fn refusal_code(refusal: AwsSendRefusal<'_>) -> i64 {
    let reason = match refusal {
        AwsSendRefusal::Throttling => Throttled,
        AwsSendRefusal::InternalServer => ServiceError,
        AwsSendRefusal::ServiceQuotaExceeded { reason: Some("MONTHLY_SPEND_LIMIT_REACHED_FOR_TEXT") } => {
            SpendLimitReached
        }
        AwsSendRefusal::ServiceQuotaExceeded { .. } => QuotaExceeded,
        AwsSendRefusal::AccessDenied { reason: Some("ACCOUNT_DISABLED") } => AccountDisabled,
        AwsSendRefusal::AccessDenied { reason: Some("INSUFFICIENT_ACCOUNT_REPUTATION") } => AccountReputation,
        AwsSendRefusal::AccessDenied { .. } => AccessDenied,
        AwsSendRefusal::ResourceNotFound => ResourceNotFound,
        AwsSendRefusal::Validation { reason, fields } => {
            if fields.contains(&"DestinationPhoneNumber") {
                InvalidDestination
            } else if fields.contains(&"MessageBody") {
                MessageRefused
            } else {
                match reason {
                    Some(
                        "COUNTRY_NOT_ENABLED" | "DESTINATION_COUNTRY_BLOCKED" | "INTERNATIONAL_SENDING_NOT_SUPPORTED",
                    ) => CountryNotEnabled,
                    Some("PRICE_OVER_THRESHOLD") => PriceOverThreshold,
                    Some("MAXIMUM_SIZE_EXCEEDED") => MessageRefused,
                    Some(
                        "SENDER_ID_NOT_REGISTERED"
                        | "SENDER_ID_REQUIRES_REGISTRATION"
                        | "INVALID_IDENTITY_FOR_DESTINATION_COUNTRY",
                    ) => RegistrationIncomplete,
                    _ => RequestRefused,
                }
            }
        }
        AwsSendRefusal::Conflict { reason } => match reason {
            Some("DESTINATION_PHONE_NUMBER_OPTED_OUT") => return OPTED_OUT_CODE,
            Some("DESTINATION_PHONE_NUMBER_NOT_VERIFIED") => SandboxUnverifiedDestination,
            Some(
                "DESTINATION_COUNTRY_BLOCKED_BY_PROTECT_CONFIGURATION"
                | "DESTINATION_PHONE_NUMBER_BLOCKED_BY_PROTECT_NUMBER_OVERRIDE",
            ) => BlockedByProtect,
            Some("REGISTRATION_NOT_COMPLETE") => RegistrationIncomplete,
            _ => RequestRefused,
        },
    };
    reason.code()
}

/// A delivery event's `eventType` (and `isFinal`) as the status the bridge tracks, and the
/// failure's code. `TEXT_SUCCESSFUL` (the recipient's carrier accepted it) counts as
/// delivered: AWS uses it and `TEXT_DELIVERED` interchangeably, depending on the country. A
/// failure that isn't final (AWS may still deliver it) changes nothing yet: only
/// `isFinal: true` failures are tracked, so the agent sees ❌ once, when it is decided.
pub fn event_status(event_type: &str, is_final: bool) -> (ReportedStatus, Option<i64>) {
    let failed = |reason: AwsSmsReason| {
        if is_final {
            (ReportedStatus::Tracked(DeliveryStatus::Undelivered), Some(reason.code()))
        } else {
            (ReportedStatus::parse(event_type), None)
        }
    };
    // An MMS's events are its SMS's, named MEDIA_ (the `EventType` values of the service
    // model in `aws-sdk-pinpointsmsvoicev2` 1.134), plus three about the file itself.
    let (kind, media) = match (event_type.strip_prefix("TEXT_"), event_type.strip_prefix("MEDIA_")) {
        (Some(kind), _) => (kind, false),
        (None, Some(kind)) => (kind, true),
        // Voice, registration and future events: acknowledged, kept for the log.
        (None, None) => return (ReportedStatus::parse(event_type), None),
    };
    match kind {
        "QUEUED" => (ReportedStatus::Tracked(DeliveryStatus::Queued), None),
        "PENDING" => (ReportedStatus::Tracked(DeliveryStatus::Sending), None),
        "SENT" => (ReportedStatus::Tracked(DeliveryStatus::Sent), None),
        "DELIVERED" | "SUCCESSFUL" => (ReportedStatus::Tracked(DeliveryStatus::Delivered), None),
        "BLOCKED" => failed(TextBlocked),
        "CARRIER_BLOCKED" => failed(TextCarrierBlocked),
        "SPAM" => failed(TextSpam),
        "INVALID" => failed(TextInvalid),
        "INVALID_MESSAGE" => failed(TextInvalidMessage),
        "CARRIER_UNREACHABLE" => failed(TextCarrierUnreachable),
        "UNREACHABLE" => failed(TextUnreachable),
        "TTL_EXPIRED" => failed(TextTtlExpired),
        "PROTECT_BLOCKED" => failed(TextProtectBlocked),
        "UNKNOWN" => failed(TextUnknown),
        "FILE_TYPE_UNSUPPORTED" | "FILE_SIZE_EXCEEDED" if media => failed(MediaNotAllowed),
        "FILE_INACCESSIBLE" if media => failed(MediaFileInaccessible),
        _ => (ReportedStatus::parse(event_type), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::status::failure_notice;

    #[test]
    fn codes_are_unique_stable_and_out_of_the_other_providers_ranges() {
        let mut seen = std::collections::HashSet::new();
        for reason in ALL_REASONS {
            assert!(seen.insert(reason.code()), "{reason:?}");
            assert_eq!(AwsSmsReason::from_code(reason.code()), Some(reason));
            assert!(reason.code() > 9_999_999, "beyond Twilio's and Meta's codes");
            assert!(ErrorClass::of_code(reason.code()).is_some(), "{reason:?} classified");
        }
        // Stored in legs: a renumbering would misread old records.
        assert_eq!(Throttled.code(), 1_600_000_001);
        assert_eq!(TextBlocked.code(), 1_600_000_101);
        assert_eq!(AwsSmsReason::from_code(21610), None);
    }

    #[test]
    fn mms_carries_images_to_2_mb_and_the_other_listed_types_to_600_kb() {
        for (content_type, size, allowed) in [
            ("image/jpeg", 2_000_000, true),
            ("image/jpeg", 2_000_001, false),
            ("IMAGE/PNG; charset=binary", 1_500_000, true),
            ("application/pdf", 600_000, true),
            ("application/pdf", 600_001, false),
            ("video/mp4", 100_000, true),
            ("image/webp", 10_000, false),
            ("application/zip", 10, false),
            ("image/gif", 0, false),
        ] {
            assert_eq!(mms_allows(content_type, size), allowed, "{content_type} {size}");
        }
        assert!(MMS_TYPES.iter().all(|(_, max)| *max <= MMS_MAX_BYTES));
    }

    /// Each refusal `SendTextMessage` can give, as the worker treats it.
    #[test]
    fn send_refusals_table() {
        use AwsSendRefusal as R;
        let none: &[&str] = &[];
        let cases: Vec<(AwsSendRefusal<'_>, ErrorClass, &str)> = vec![
            (
                R::Conflict { reason: Some("DESTINATION_PHONE_NUMBER_OPTED_OUT") },
                ErrorClass::Permanent,
                "customer opted out",
            ),
            (R::Throttling, ErrorClass::Retry, "busy"),
            (R::InternalServer, ErrorClass::Retry, "failed"),
            (
                R::ServiceQuotaExceeded { reason: Some("MONTHLY_SPEND_LIMIT_REACHED_FOR_TEXT") },
                ErrorClass::Escalate,
                "spend limit",
            ),
            (R::ServiceQuotaExceeded { reason: Some("PHONE_NUMBERS_PER_ACCOUNT") }, ErrorClass::Escalate, "quota"),
            (R::AccessDenied { reason: Some("ACCOUNT_DISABLED") }, ErrorClass::Escalate, "disabled"),
            (R::AccessDenied { reason: Some("INSUFFICIENT_ACCOUNT_REPUTATION") }, ErrorClass::Escalate, "reputation"),
            (R::AccessDenied { reason: None }, ErrorClass::Escalate, "permissions"),
            (R::ResourceNotFound, ErrorClass::Escalate, "not found"),
            (
                R::Validation { reason: Some("INVALID_PARAMETER"), fields: &["DestinationPhoneNumber"] },
                ErrorClass::Permanent,
                "invalid phone number",
            ),
            (R::Validation { reason: Some("COUNTRY_NOT_ENABLED"), fields: none }, ErrorClass::Permanent, "country"),
            (
                R::Validation { reason: Some("DESTINATION_COUNTRY_BLOCKED"), fields: none },
                ErrorClass::Permanent,
                "country",
            ),
            (R::Validation { reason: Some("PRICE_OVER_THRESHOLD"), fields: none }, ErrorClass::Permanent, "costs"),
            (
                R::Validation { reason: Some("MAXIMUM_SIZE_EXCEEDED"), fields: none },
                ErrorClass::Permanent,
                "as written",
            ),
            (
                R::Validation { reason: Some("INVALID_IDENTITY_FOR_DESTINATION_COUNTRY"), fields: none },
                ErrorClass::Escalate,
                "registered",
            ),
            (
                R::Validation { reason: Some("SENDER_ID_NOT_REGISTERED"), fields: none },
                ErrorClass::Escalate,
                "registered",
            ),
            (
                R::Validation { reason: Some("INVALID_PARAMETER"), fields: &["ConfigurationSetName"] },
                ErrorClass::Escalate,
                "refused",
            ),
            (R::Validation { reason: None, fields: none }, ErrorClass::Escalate, "refused"),
            (R::Conflict { reason: Some("DESTINATION_PHONE_NUMBER_NOT_VERIFIED") }, ErrorClass::Permanent, "sandbox"),
            (
                R::Conflict { reason: Some("DESTINATION_COUNTRY_BLOCKED_BY_PROTECT_CONFIGURATION") },
                ErrorClass::Permanent,
                "protect",
            ),
            (R::Conflict { reason: Some("REGISTRATION_NOT_COMPLETE") }, ErrorClass::Escalate, "registered"),
            (R::Conflict { reason: Some("RESOURCE_NOT_ACTIVE") }, ErrorClass::Escalate, "refused"),
            (R::Conflict { reason: None }, ErrorClass::Escalate, "refused"),
        ];
        for (refusal, class, words) in cases {
            let code = refusal_code(refusal);
            assert_eq!(ErrorClass::of_code(code), Some(class), "{refusal:?}");
            let notice = failure_notice(Some(code));
            assert!(notice.contains(words), "{refusal:?}: {notice}");
            assert!(!notice.contains("1600000"), "the agent reads AWS's name, not the bridge's number: {notice}");
        }
        assert_eq!(refusal_code(R::Conflict { reason: Some("DESTINATION_PHONE_NUMBER_OPTED_OUT") }), OPTED_OUT_CODE);
    }

    /// Each SMS event type, final or not, as the status path sees it.
    #[test]
    fn delivery_events_table() {
        use DeliveryStatus::*;
        let tracked = |status| ReportedStatus::Tracked(status);
        let cases = [
            ("TEXT_QUEUED", tracked(Queued), None),
            ("TEXT_PENDING", tracked(Sending), None),
            ("TEXT_SENT", tracked(Sent), None),
            ("TEXT_DELIVERED", tracked(Delivered), None),
            ("TEXT_SUCCESSFUL", tracked(Delivered), None),
            ("TEXT_BLOCKED", tracked(Undelivered), Some(TextBlocked)),
            ("TEXT_CARRIER_BLOCKED", tracked(Undelivered), Some(TextCarrierBlocked)),
            ("TEXT_SPAM", tracked(Undelivered), Some(TextSpam)),
            ("TEXT_INVALID", tracked(Undelivered), Some(TextInvalid)),
            ("TEXT_INVALID_MESSAGE", tracked(Undelivered), Some(TextInvalidMessage)),
            ("TEXT_CARRIER_UNREACHABLE", tracked(Undelivered), Some(TextCarrierUnreachable)),
            ("TEXT_UNREACHABLE", tracked(Undelivered), Some(TextUnreachable)),
            ("TEXT_TTL_EXPIRED", tracked(Undelivered), Some(TextTtlExpired)),
            ("TEXT_PROTECT_BLOCKED", tracked(Undelivered), Some(TextProtectBlocked)),
            ("TEXT_UNKNOWN", tracked(Undelivered), Some(TextUnknown)),
        ];
        for (event_type, status, reason) in cases {
            let (reported, code) = event_status(event_type, true);
            assert_eq!(reported, status, "{event_type}");
            assert_eq!(code, reason.map(AwsSmsReason::code), "{event_type}");
            if let Some(reason) = reason {
                assert_eq!(reason.aws_name(), event_type);
                assert!(failure_notice(code).ends_with(&format!("({event_type})")), "{}", failure_notice(code));
                // Not final: AWS may still deliver it; nothing is tracked yet.
                let (pending, code) = event_status(event_type, false);
                assert_eq!((pending.tracked(), code), (None, None), "{event_type}");
            }
        }
        let (voice, code) = event_status("VOICE_COMPLETED", true);
        assert_eq!((voice.tracked(), voice.as_str(), code), (None, "VOICE_COMPLETED", None));
    }

    /// An MMS reports as its SMS would, under MEDIA_ names, and on its file.
    #[test]
    fn mms_events_table() {
        use DeliveryStatus::*;
        let tracked = |status| ReportedStatus::Tracked(status);
        for (event_type, status, reason) in [
            ("MEDIA_QUEUED", tracked(Queued), None),
            ("MEDIA_PENDING", tracked(Sending), None),
            ("MEDIA_DELIVERED", tracked(Delivered), None),
            ("MEDIA_SUCCESSFUL", tracked(Delivered), None),
            ("MEDIA_BLOCKED", tracked(Undelivered), Some(TextBlocked)),
            ("MEDIA_SPAM", tracked(Undelivered), Some(TextSpam)),
            ("MEDIA_TTL_EXPIRED", tracked(Undelivered), Some(TextTtlExpired)),
            ("MEDIA_UNKNOWN", tracked(Undelivered), Some(TextUnknown)),
            ("MEDIA_FILE_TYPE_UNSUPPORTED", tracked(Undelivered), Some(MediaNotAllowed)),
            ("MEDIA_FILE_SIZE_EXCEEDED", tracked(Undelivered), Some(MediaNotAllowed)),
            ("MEDIA_FILE_INACCESSIBLE", tracked(Undelivered), Some(MediaFileInaccessible)),
        ] {
            let (reported, code) = event_status(event_type, true);
            assert_eq!((reported, code), (status, reason.map(AwsSmsReason::code)), "{event_type}");
        }
        // A file event is the MMS's alone.
        assert_eq!(event_status("TEXT_FILE_INACCESSIBLE", true).1, None);
        assert_eq!(MediaFileInaccessible.class(), ErrorClass::Escalate, "the bucket policy: an operator's fix");
    }
}
