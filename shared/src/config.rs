//! The environment contract of docs/configuration.md, parsed once at cold start into typed values.
//! Every error names the variable (or the field inside `BRIDGE_LINES`) at fault.

use std::time::Duration;

use secrecy::SecretString;

use crate::adapters::aws_sms::events::AwsSmsTopics;
use crate::adapters::dynamodb::DEFAULT_MESSAGE_RETENTION;
use crate::app::deliver_job::SendRates;
use crate::domain::media::MediaUrlKey;
use crate::domain::{Lines, RetryPolicy, SmsProviderKind};

/// Reads one variable; empty values count as unset.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment as a [`Lookup`].
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {name}: {reason}")]
pub struct ConfigError {
    pub name: String,
    pub reason: String,
}

impl ConfigError {
    pub(crate) fn new(name: &str, reason: impl Into<String>) -> Self {
        Self { name: name.to_owned(), reason: reason.into() }
    }
}

/// Where the SMS webhook takes the provider's status callbacks (docs/configuration.md).
pub const SMS_STATUS_PATH: &str = "/sms/status";

pub const DEFAULT_TWILIO_API_BASE: &str = "https://api.twilio.com";
pub const DEFAULT_GRAPH_API_BASE: &str = "https://graph.facebook.com";
pub const DEFAULT_GRAPH_API_VERSION: &str = "v26.0";

/// What the SMS webhook function reads.
pub struct SmsWebhookConfig {
    pub lines: Lines,
    pub lines_refresh: Option<LinesRefresh>,
    pub table_name: String,
    pub delivery_queue_url: String,
    pub public_base_url: String,
    /// `TWILIO_AUTH_TOKEN`: verifies Twilio's requests; required when a line uses Twilio.
    /// Unset, every Twilio request is refused.
    pub twilio_auth_token: Option<SecretString>,
    /// When set, inbound requests for another account are refused.
    pub twilio_account_sid: Option<String>,
    /// What the bridge's media links are signed with ([`media_url_key`]).
    pub media_url_key: MediaUrlKey,
    /// `TWILIO_WEBHOOK_SHARED_KEY`: the secrets of a Webhook Setting's shared key (two,
    /// comma-separated, while it is rotated); empty when Twilio signs with the auth token.
    pub twilio_webhook_shared_keys: Vec<SecretString>,
    pub message_retention: Duration,
    /// Where `GET /media/...` fetches relayed media from (docs/media.md): customers' MMS
    /// parts at Twilio, and, when `META_ACCESS_TOKEN` is set, agents' media at the Graph API.
    pub twilio_api_base: String,
    pub meta_access_token: Option<SecretString>,
    pub graph_api_base: String,
    pub graph_api_version: String,
    /// How long a request keeps trying DynamoDB and SQS (`WEBHOOK_RETRY_SECONDS`).
    pub retry_budget: Duration,
    /// `DUTY_ROSTER_CACHE_SECONDS`: how long a warm instance decides copies from the duty
    /// roster it read (`app::copy_facts_cache`).
    pub duty_roster_fresh: jiff::SignedDuration,
    /// `AWS_SMS_INBOUND_TOPIC_ARN` and `AWS_SMS_EVENTS_TOPIC_ARN`: the SNS topics AWS SMS
    /// lines' texts and delivery events come from; required when a line uses AWS.
    pub aws_sms_topics: Option<AwsSmsTopics>,
}

impl SmsWebhookConfig {
    pub fn from_lookup(env: Lookup) -> Result<Self, ConfigError> {
        let lines = lines(env)?;
        // In the order the errors are reported: the first missing or invalid variable is named.
        let aws_sms_topics = aws_sms_topics(env, &lines)?;
        let lines_refresh = lines_refresh(env)?;
        let table_name = required(env, "TABLE_NAME")?;
        let delivery_queue_url = required(env, "DELIVERY_QUEUE_URL")?;
        let public_base_url = base_url(env, "PUBLIC_BASE_URL", None)?;
        let twilio_auth_token = twilio_secret(env, &lines, "TWILIO_AUTH_TOKEN")?;
        Ok(Self {
            aws_sms_topics,
            lines,
            lines_refresh,
            table_name,
            delivery_queue_url,
            public_base_url,
            media_url_key: media_url_key(env, twilio_auth_token.as_ref())?,
            twilio_auth_token,
            twilio_account_sid: account_sid(env)?,
            twilio_webhook_shared_keys: shared_keys(env)?,
            message_retention: message_retention(env)?,
            twilio_api_base: base_url(env, "TWILIO_API_BASE", Some(DEFAULT_TWILIO_API_BASE))?,
            meta_access_token: env("META_ACCESS_TOKEN").map(SecretString::from),
            graph_api_base: base_url(env, "GRAPH_API_BASE", Some(DEFAULT_GRAPH_API_BASE))?,
            graph_api_version: graph_api_version(env)?,
            retry_budget: webhook_retry_budget(env)?,
            duty_roster_fresh: duty_roster_fresh(env)?,
        })
    }
}

/// What the WhatsApp webhook function reads.
pub struct WhatsAppWebhookConfig {
    pub lines: Lines,
    pub lines_refresh: Option<LinesRefresh>,
    pub table_name: String,
    pub delivery_queue_url: String,
    pub meta_app_secret: SecretString,
    pub meta_verify_token: SecretString,
    pub message_retention: Duration,
    /// How long a request keeps trying DynamoDB and SQS (`WEBHOOK_RETRY_SECONDS`).
    pub retry_budget: Duration,
}

impl WhatsAppWebhookConfig {
    pub fn from_lookup(env: Lookup) -> Result<Self, ConfigError> {
        Ok(Self {
            meta_app_secret: secret(env, "META_APP_SECRET")?,
            meta_verify_token: secret(env, "META_VERIFY_TOKEN")?,
            lines: lines(env)?,
            lines_refresh: lines_refresh(env)?,
            table_name: required(env, "TABLE_NAME")?,
            delivery_queue_url: required(env, "DELIVERY_QUEUE_URL")?,
            message_retention: message_retention(env)?,
            retry_budget: webhook_retry_budget(env)?,
        })
    }
}

/// What the delivery worker reads.
pub struct DeliveryWorkerConfig {
    pub lines: Lines,
    pub lines_refresh: Option<LinesRefresh>,
    pub table_name: String,
    pub delivery_queue_url: String,
    pub message_retention: Duration,
    pub graph_api_base: String,
    pub graph_api_version: String,
    pub meta_access_token: SecretString,
    /// Where SMS status callbacks go: `PUBLIC_BASE_URL/sms/status`.
    pub public_base_url: String,
    pub twilio_api_base: String,
    /// `TWILIO_ACCOUNT_SID` and `TWILIO_AUTH_TOKEN`, required when a line uses Twilio; unset,
    /// a send from a Twilio line (one switched to Twilio later) fails for an operator to fix.
    pub twilio: Option<TwilioCredentials>,
    /// What the bridge's media links are signed with ([`media_url_key`]).
    pub media_url_key: MediaUrlKey,
    /// Where jobs that need an operator go at once (escalations, undecodable records).
    pub dead_letter_queue_url: String,
    pub rates: SendRates,
    pub retry: RetryPolicy,
    /// Longest wait for a provider's answer before the attempt counts as a timeout.
    pub provider_timeout: Duration,
    /// How long a send whose answer was lost waits for its status report before the
    /// provider is asked (or, for WhatsApp and AWS SMS, before it is sent again).
    pub reconcile_wait: Duration,
    /// `AWS_SMS_CONFIGURATION_SET`: the configuration set every AWS SMS send names (its
    /// event destination reports delivery); required when a line uses AWS.
    pub aws_sms_configuration_set: Option<String>,
    /// `AWS_ENDPOINT_URL_PINPOINT_SMS_VOICE_V2`: where the AWS SMS client sends instead of
    /// AWS (tests, the local stack).
    pub aws_sms_endpoint: Option<String>,
    /// `AWS_SMS_MEDIA_BUCKET`: where agents' media for AWS SMS lines is staged as MMS; without
    /// it, media on those lines is refused (docs/aws-sms.md).
    pub aws_sms_media_bucket: Option<String>,
}

impl DeliveryWorkerConfig {
    pub fn from_lookup(env: Lookup) -> Result<Self, ConfigError> {
        let lines = lines(env)?;
        // In the order the errors are reported: the first missing or invalid variable is named.
        let aws_sms_configuration_set = aws_sms_configuration_set(env, &lines)?;
        let lines_refresh = lines_refresh(env)?;
        let table_name = required(env, "TABLE_NAME")?;
        let delivery_queue_url = required(env, "DELIVERY_QUEUE_URL")?;
        let message_retention = message_retention(env)?;
        let graph_api_base = base_url(env, "GRAPH_API_BASE", Some(DEFAULT_GRAPH_API_BASE))?;
        let graph_api_version = graph_api_version(env)?;
        let meta_access_token = secret(env, "META_ACCESS_TOKEN")?;
        let public_base_url = base_url(env, "PUBLIC_BASE_URL", None)?;
        let twilio_api_base = base_url(env, "TWILIO_API_BASE", Some(DEFAULT_TWILIO_API_BASE))?;
        let twilio = twilio_credentials(env, &lines)?;
        Ok(Self {
            media_url_key: media_url_key(env, twilio.as_ref().map(|t| &t.auth_token))?,
            twilio,
            aws_sms_configuration_set,
            lines,
            lines_refresh,
            table_name,
            delivery_queue_url,
            message_retention,
            graph_api_base,
            graph_api_version,
            meta_access_token,
            public_base_url,
            twilio_api_base,
            dead_letter_queue_url: required(env, "DEAD_LETTER_QUEUE_URL")?,
            rates: SendRates {
                whatsapp_per_second: positive(
                    env,
                    "WHATSAPP_MESSAGES_PER_SECOND",
                    SendRates::default().whatsapp_per_second,
                )?,
                sms_per_second: positive(env, "SMS_MESSAGES_PER_SECOND", SendRates::default().sms_per_second)?,
                whatsapp_pair_seconds: pair_seconds(env)?,
            },
            retry: RetryPolicy {
                base: Duration::from_secs_f64(positive(
                    env,
                    "RETRY_BASE_SECONDS",
                    RetryPolicy::default().base.as_secs_f64(),
                )?),
                cap: Duration::from_secs_f64(positive(
                    env,
                    "RETRY_MAX_SECONDS",
                    RetryPolicy::default().cap.as_secs_f64(),
                )?),
                max_job_age: Duration::from_secs_f64(
                    positive(env, "MAX_JOB_AGE_HOURS", RetryPolicy::default().max_job_age.as_secs_f64() / 3600.0)?
                        * 3600.0,
                ),
                max_receive_count: max_receive_count(env)?,
            },
            provider_timeout: Duration::from_secs_f64(positive(env, "PROVIDER_TIMEOUT_SECONDS", 10.0)?),
            reconcile_wait: Duration::from_secs_f64(positive(
                env,
                "RECONCILE_WAIT_SECONDS",
                crate::app::deliver_job::DEFAULT_RECONCILE_WAIT.as_secs_f64(),
            )?),
            aws_sms_endpoint: match env(crate::adapters::aws_sms::ENDPOINT_ENV) {
                None => None,
                Some(_) => Some(base_url(env, crate::adapters::aws_sms::ENDPOINT_ENV, None)?),
            },
            aws_sms_media_bucket: bucket_name(env, "AWS_SMS_MEDIA_BUCKET")?,
        })
    }
}

/// How the worker reaches the Graph API: what `bridge-ops redrive` asks it with, to learn
/// whether a parked job's cause is fixed (the worker's own variables and `_PARAM`s).
pub struct GraphAccess {
    pub base: String,
    pub version: String,
    pub access_token: SecretString,
}

impl GraphAccess {
    pub fn from_lookup(env: Lookup) -> Result<Self, ConfigError> {
        Ok(Self {
            base: base_url(env, "GRAPH_API_BASE", Some(DEFAULT_GRAPH_API_BASE))?,
            version: graph_api_version(env)?,
            access_token: secret(env, "META_ACCESS_TOKEN")?,
        })
    }
}

/// How the worker reaches Twilio's Messages API, likewise.
pub struct TwilioAccess {
    pub api_base: String,
    pub account_sid: String,
    pub auth_token: SecretString,
}

impl TwilioAccess {
    pub fn from_lookup(env: Lookup) -> Result<Self, ConfigError> {
        Ok(Self {
            api_base: base_url(env, "TWILIO_API_BASE", Some(DEFAULT_TWILIO_API_BASE))?,
            account_sid: account_sid(env)?
                .ok_or_else(|| ConfigError::new("TWILIO_ACCOUNT_SID", "not set (the worker sends SMS with it)"))?,
            auth_token: secret(env, "TWILIO_AUTH_TOKEN")?,
        })
    }
}

/// An S3 bucket's name (S3 User Guide, "General purpose bucket naming rules", read
/// 2026-12-06: 3 to 63 lowercase letters, digits, `.` and `-`, starting and ending with a
/// letter or digit), if set.
fn bucket_name(env: Lookup, name: &str) -> Result<Option<String>, ConfigError> {
    let Some(value) = env(name) else { return Ok(None) };
    let value = value.trim().to_owned();
    let edge = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let ok = (3..=63).contains(&value.len())
        && value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && edge(value.as_bytes().first())
        && edge(value.as_bytes().last());
    if ok {
        Ok(Some(value))
    } else {
        Err(ConfigError::new(name, "must be an S3 bucket name (3-63 of a-z, 0-9, . and -)"))
    }
}

/// The Twilio account the worker sends with.
pub struct TwilioCredentials {
    pub account_sid: String,
    pub auth_token: SecretString,
}

/// A Twilio secret: required when a line uses Twilio at the cold start, optional otherwise
/// (a deployment whose lines all use AWS End User Messaging SMS needs no Twilio account).
fn twilio_secret(env: Lookup, lines: &Lines, name: &str) -> Result<Option<SecretString>, ConfigError> {
    match env(name) {
        Some(value) => Ok(Some(SecretString::from(value))),
        None if lines.use_provider(SmsProviderKind::Twilio) => {
            Err(ConfigError::new(name, "not set (a line sends through twilio)"))
        }
        None => Ok(None),
    }
}

/// `TWILIO_ACCOUNT_SID` and `TWILIO_AUTH_TOKEN` for the worker: both or neither, and both
/// when a line uses Twilio.
fn twilio_credentials(env: Lookup, lines: &Lines) -> Result<Option<TwilioCredentials>, ConfigError> {
    let uses_twilio = lines.use_provider(SmsProviderKind::Twilio);
    let sid_name = "TWILIO_ACCOUNT_SID";
    match (account_sid(env)?, twilio_secret(env, lines, "TWILIO_AUTH_TOKEN")?) {
        (Some(account_sid), Some(auth_token)) => Ok(Some(TwilioCredentials { account_sid, auth_token })),
        (None, _) if uses_twilio => Err(ConfigError::new(sid_name, "not set (a line sends through twilio)")),
        (None, None) => Ok(None),
        (None, Some(_)) => Err(ConfigError::new(sid_name, "not set (TWILIO_AUTH_TOKEN is)")),
        (Some(_), None) => Err(ConfigError::new("TWILIO_AUTH_TOKEN", "not set (TWILIO_ACCOUNT_SID is)")),
    }
}

/// Shortest `MEDIA_LINK_KEY`: as many characters as a 192-bit key in base64.
pub const MEDIA_LINK_KEY_MIN_CHARS: usize = 32;

/// The key media links are signed with (docs/media.md), the same in the worker that signs
/// them and the SMS webhook that checks them: from `MEDIA_LINK_KEY` when it is set; otherwise
/// derived from the Twilio auth token, as before the key had a variable of its own, so a
/// deployment with Twilio keeps its links valid and needs no new secret. A deployment
/// without Twilio must give `MEDIA_LINK_KEY`.
pub fn media_url_key(env: Lookup, twilio_auth_token: Option<&SecretString>) -> Result<MediaUrlKey, ConfigError> {
    let name = "MEDIA_LINK_KEY";
    match (env(name), twilio_auth_token) {
        (Some(key), _) if key.trim().chars().count() < MEDIA_LINK_KEY_MIN_CHARS => Err(ConfigError::new(
            name,
            format!("must be at least {MEDIA_LINK_KEY_MIN_CHARS} characters (e.g. openssl rand -base64 32)"),
        )),
        (Some(key), _) => Ok(MediaUrlKey::derive(&SecretString::from(key.trim().to_owned()))),
        (None, Some(token)) => Ok(MediaUrlKey::derive(token)),
        (None, None) => Err(ConfigError::new(name, "not set (media links need it when TWILIO_AUTH_TOKEN isn't set)")),
    }
}

/// `AWS_SMS_CONFIGURATION_SET`: a configuration set's name or ARN (AWS: 1 to 64 letters,
/// digits, `-` and `_` for a name). Required when a line uses AWS End User Messaging SMS:
/// without it, no delivery event would come back.
fn aws_sms_configuration_set(env: Lookup, lines: &Lines) -> Result<Option<String>, ConfigError> {
    let name = "AWS_SMS_CONFIGURATION_SET";
    let uses_aws = lines.use_provider(SmsProviderKind::AwsEndUserMessaging);
    match env(name) {
        None if uses_aws => Err(ConfigError::new(
            name,
            "not set (a line sends through aws_end_user_messaging; its delivery events need it)",
        )),
        None => Ok(None),
        Some(value) => {
            let value = value.trim().to_owned();
            let plain = |s: &str| {
                (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            };
            let ok = match value.strip_prefix("arn:") {
                Some(arn) => {
                    arn.contains(":sms-voice:") && arn.rsplit_once(":configuration-set/").is_some_and(|(_, n)| plain(n))
                }
                None => plain(&value),
            };
            if ok {
                Ok(Some(value))
            } else {
                Err(ConfigError::new(name, "must be a configuration set name (letters, digits, - and _) or its ARN"))
            }
        }
    }
}

/// `AWS_SMS_INBOUND_TOPIC_ARN` and `AWS_SMS_EVENTS_TOPIC_ARN` (they may name one topic).
/// Required when a line uses AWS End User Messaging SMS; SNS notifications from any other
/// topic are refused.
fn aws_sms_topics(env: Lookup, lines: &Lines) -> Result<Option<AwsSmsTopics>, ConfigError> {
    let uses_aws = lines.use_provider(SmsProviderKind::AwsEndUserMessaging);
    let topic = |name: &str| -> Result<Option<String>, ConfigError> {
        match env(name) {
            None if uses_aws => Err(ConfigError::new(name, "not set (a line sends through aws_end_user_messaging)")),
            None => Ok(None),
            Some(arn) => {
                let arn = arn.trim().to_owned();
                let parts: Vec<&str> = arn.splitn(6, ':').collect();
                let ok = parts.len() == 6
                    && parts[0] == "arn"
                    && parts[1].starts_with("aws")
                    && parts[2] == "sns"
                    && !parts[3].is_empty()
                    && parts[4].len() == 12
                    && parts[4].bytes().all(|b| b.is_ascii_digit())
                    && !parts[5].is_empty();
                if ok {
                    Ok(Some(arn))
                } else {
                    Err(ConfigError::new(name, "must be an SNS topic ARN (arn:aws:sns:…)"))
                }
            }
        }
    };
    match (topic("AWS_SMS_INBOUND_TOPIC_ARN")?, topic("AWS_SMS_EVENTS_TOPIC_ARN")?) {
        (Some(inbound), Some(events)) => Ok(Some(AwsSmsTopics { inbound, events })),
        (None, None) => Ok(None),
        (Some(_), None) => Err(ConfigError::new("AWS_SMS_EVENTS_TOPIC_ARN", "not set (AWS_SMS_INBOUND_TOPIC_ARN is)")),
        (None, Some(_)) => Err(ConfigError::new("AWS_SMS_INBOUND_TOPIC_ARN", "not set (AWS_SMS_EVENTS_TOPIC_ARN is)")),
    }
}

/// `BRIDGE_LINES` (JSON) or, failing that, the file named by `BRIDGE_LINES_FILE`.
pub fn lines(env: Lookup) -> Result<Lines, ConfigError> {
    let parsed = if let Some(json) = env("BRIDGE_LINES") {
        Lines::from_json("BRIDGE_LINES", &json)
    } else if let Some(path) = env("BRIDGE_LINES_FILE") {
        let json = std::fs::read_to_string(&path)
            .map_err(|e| ConfigError::new("BRIDGE_LINES_FILE", format!("can't read {path}: {e}")))?;
        Lines::from_json("BRIDGE_LINES_FILE", &json)
    } else {
        return Err(ConfigError::new("BRIDGE_LINES", "not set (nor BRIDGE_LINES_FILE)"));
    };
    parsed.map_err(|e| ConfigError { name: e.path, reason: e.reason })
}

/// Where a running function reads the lines again (`app::live_lines`), and how often.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinesRefresh {
    /// `BRIDGE_LINES_PARAM`: the SSM parameter the cold start read the lines from.
    pub parameter: String,
    /// `BRIDGE_LINES_REFRESH_SECONDS`, 1 to 3600 (default 60).
    pub every: Duration,
}

/// With the lines in an SSM parameter, how the functions pick up a change; `None` for lines
/// given as `BRIDGE_LINES` or `BRIDGE_LINES_FILE`, which never change while a function runs.
pub fn lines_refresh(env: Lookup) -> Result<Option<LinesRefresh>, ConfigError> {
    let name = "BRIDGE_LINES_REFRESH_SECONDS";
    let every = match env(name) {
        None => crate::app::live_lines::DEFAULT_REFRESH,
        Some(v) => match v.trim().parse::<u16>() {
            Ok(seconds) if (1..=3600).contains(&seconds) => Duration::from_secs(u64::from(seconds)),
            _ => return Err(ConfigError::new(name, "must be a whole number of seconds from 1 to 3600")),
        },
    };
    Ok(env("BRIDGE_LINES_PARAM").map(|parameter| LinesRefresh { parameter: parameter.trim().to_owned(), every }))
}

pub fn required(env: Lookup, name: &str) -> Result<String, ConfigError> {
    env(name).ok_or_else(|| ConfigError::new(name, "not set"))
}

pub fn secret(env: Lookup, name: &str) -> Result<SecretString, ConfigError> {
    required(env, name).map(SecretString::from)
}

/// An http(s) base URL without query or fragment, returned without a trailing slash.
pub fn base_url(env: Lookup, name: &str, default: Option<&str>) -> Result<String, ConfigError> {
    let raw = match (env(name), default) {
        (Some(v), _) => v,
        (None, Some(d)) => d.to_owned(),
        (None, None) => return Err(ConfigError::new(name, "not set")),
    };
    let url = reqwest::Url::parse(raw.trim()).map_err(|e| ConfigError::new(name, format!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ConfigError::new(name, "must be an http(s) URL with a host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::new(name, "must not have a query or fragment"));
    }
    Ok(raw.trim().trim_end_matches('/').to_owned())
}

/// `GRAPH_API_VERSION` (default `v26.0`: the newest version Meta names in its Graph API
/// changelog, introduced 2026-07-29, checked 2026-12-05; docs/deploying.md says how to move).
fn graph_api_version(env: Lookup) -> Result<String, ConfigError> {
    let version = env("GRAPH_API_VERSION").unwrap_or_else(|| DEFAULT_GRAPH_API_VERSION.to_owned());
    let version_ok = version.strip_prefix('v').and_then(|v| v.split_once('.')).is_some_and(|(major, minor)| {
        !major.is_empty() && !minor.is_empty() && (major.to_owned() + minor).bytes().all(|b| b.is_ascii_digit())
    });
    if version_ok { Ok(version) } else { Err(ConfigError::new("GRAPH_API_VERSION", "must look like v26.0")) }
}

fn account_sid(env: Lookup) -> Result<Option<String>, ConfigError> {
    match env("TWILIO_ACCOUNT_SID") {
        None => Ok(None),
        Some(sid) if sid.len() == 34 && sid.starts_with("AC") && sid.bytes().all(|b| b.is_ascii_alphanumeric()) => {
            Ok(Some(sid))
        }
        Some(_) => Err(ConfigError::new("TWILIO_ACCOUNT_SID", "must be AC followed by 32 characters")),
    }
}

/// `TWILIO_WEBHOOK_SHARED_KEY`: one secret, or two comma-separated while a key is rotated.
fn shared_keys(env: Lookup) -> Result<Vec<SecretString>, ConfigError> {
    let name = "TWILIO_WEBHOOK_SHARED_KEY";
    let Some(value) = env(name) else { return Ok(Vec::new()) };
    let keys: Vec<&str> = value.split(',').map(str::trim).collect();
    if keys.len() > 2 || keys.iter().any(|key| key.is_empty()) {
        return Err(ConfigError::new(name, "one secret, or two separated by a comma while a key is rotated"));
    }
    Ok(keys.into_iter().map(|key| SecretString::from(key.to_owned())).collect())
}

/// `WEBHOOK_RETRY_SECONDS`: how long a webhook request keeps trying DynamoDB and SQS before
/// it answers (default 6 s). At most 8 s: the functions' timeout is 10 s (`template.yaml`),
/// and the answer needs the rest.
fn webhook_retry_budget(env: Lookup) -> Result<Duration, ConfigError> {
    let name = "WEBHOOK_RETRY_SECONDS";
    match env(name) {
        None => Ok(crate::app::retry_budget::WEBHOOK_RETRY_BUDGET),
        Some(v) => match v.trim().parse::<f64>() {
            Ok(seconds) if (0.0..=8.0).contains(&seconds) => Ok(Duration::from_secs_f64(seconds)),
            _ => Err(ConfigError::new(name, "must be a number of seconds from 0 to 8")),
        },
    }
}

/// `DUTY_ROSTER_CACHE_SECONDS`: 0 (read the roster for every text) to 300, default 30.
fn duty_roster_fresh(env: Lookup) -> Result<jiff::SignedDuration, ConfigError> {
    let name = "DUTY_ROSTER_CACHE_SECONDS";
    match env(name) {
        None => Ok(crate::app::copy_facts_cache::DUTY_FRESH),
        Some(v) => match v.trim().parse::<u16>() {
            Ok(seconds) if seconds <= 300 => Ok(jiff::SignedDuration::from_secs(i64::from(seconds))),
            _ => Err(ConfigError::new(name, "must be a whole number of seconds from 0 to 300")),
        },
    }
}

/// A positive number (rates, seconds), or `default` when unset.
fn positive(env: Lookup, name: &str, default: f64) -> Result<f64, ConfigError> {
    match env(name) {
        None => Ok(default),
        Some(v) => match v.trim().parse::<f64>() {
            Ok(x) if x.is_finite() && x > 0.0 && x <= 1e6 => Ok(x),
            _ => Err(ConfigError::new(name, "must be a positive number")),
        },
    }
}

/// `WHATSAPP_PAIR_SECONDS`: the spacing of messages to one agent (WhatsApp's pair limit,
/// about one every 6 s); copies that would come sooner wait for the agent's digest. `0`
/// turns both off: each copy goes at once, and a busy line meets 131056.
fn pair_seconds(env: Lookup) -> Result<f64, ConfigError> {
    let name = "WHATSAPP_PAIR_SECONDS";
    match env(name) {
        None => Ok(SendRates::default().whatsapp_pair_seconds),
        Some(v) => match v.trim().parse::<f64>() {
            Ok(x) if x.is_finite() && (0.0..=60.0).contains(&x) => Ok(x),
            _ => Err(ConfigError::new(name, "must be a number of seconds from 0 to 60")),
        },
    }
}

/// `DELIVERY_MAX_RECEIVE_COUNT`: the delivery queue's `maxReceiveCount` (SQS allows 1 to
/// 1000; the template's default, 1000). The retry backoff keeps a failing job under it.
fn max_receive_count(env: Lookup) -> Result<u32, ConfigError> {
    let name = "DELIVERY_MAX_RECEIVE_COUNT";
    match env(name) {
        None => Ok(RetryPolicy::default().max_receive_count),
        Some(v) => match v.trim().parse::<u32>() {
            Ok(count) if (crate::domain::delivery::RECEIVE_COUNT_MARGIN + 10..=1000).contains(&count) => Ok(count),
            _ => Err(ConfigError::new(
                name,
                format!(
                    "must be a whole number from {} to 1000 (the queue's maxReceiveCount)",
                    crate::domain::delivery::RECEIVE_COUNT_MARGIN + 10
                ),
            )),
        },
    }
}

/// `MESSAGE_RETENTION_DAYS` (default 90): how long messages stay before DynamoDB's TTL.
fn message_retention(env: Lookup) -> Result<Duration, ConfigError> {
    match env("MESSAGE_RETENTION_DAYS") {
        None => Ok(DEFAULT_MESSAGE_RETENTION),
        Some(days) => match days.trim().parse::<u64>() {
            Ok(d) if (1..=3650).contains(&d) => Ok(Duration::from_secs(d * 24 * 3600)),
            _ => Err(ConfigError::new("MESSAGE_RETENTION_DAYS", "must be a whole number of days between 1 and 3650")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::collections::HashMap;

    const LINES: &str = r#"[{ "id": "main", "sms_number": "+14155550100", "sms_provider": "twilio",
        "whatsapp_phone_number_id": "106540352242922", "agents": ["14155550111"],
        "template": { "name": "new_customer_message", "language": "en" } }]"#;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    fn sms_env(overrides: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let mut pairs = vec![
            ("BRIDGE_LINES", LINES),
            ("TABLE_NAME", "bridge"),
            ("DELIVERY_QUEUE_URL", "http://localhost/q"),
            ("PUBLIC_BASE_URL", "https://x.execute-api.us-east-1.amazonaws.com/"),
            ("TWILIO_AUTH_TOKEN", "token"),
        ];
        pairs.retain(|(k, _)| !overrides.iter().any(|(o, _)| o == k));
        pairs.extend(overrides.iter().filter(|(_, v)| !v.is_empty()));
        env(&pairs)
    }

    #[test]
    fn reads_the_sms_webhook_contract() {
        let config = SmsWebhookConfig::from_lookup(&sms_env(&[])).unwrap();
        assert_eq!(config.public_base_url, "https://x.execute-api.us-east-1.amazonaws.com");
        assert_eq!(config.message_retention, DEFAULT_MESSAGE_RETENTION);
        assert_eq!(config.retry_budget, crate::app::retry_budget::WEBHOOK_RETRY_BUDGET);
        assert!(config.twilio_account_sid.is_none());
        let quick = SmsWebhookConfig::from_lookup(&sms_env(&[("WEBHOOK_RETRY_SECONDS", "1.5")])).unwrap();
        assert_eq!(quick.retry_budget, Duration::from_millis(1500));
        assert_eq!(config.duty_roster_fresh, jiff::SignedDuration::from_secs(30));
        let every_text = SmsWebhookConfig::from_lookup(&sms_env(&[("DUTY_ROSTER_CACHE_SECONDS", "0")])).unwrap();
        assert_eq!(every_text.duty_roster_fresh, jiff::SignedDuration::ZERO);
        assert!(config.twilio_webhook_shared_keys.is_empty());
        let rotating = SmsWebhookConfig::from_lookup(&sms_env(&[("TWILIO_WEBHOOK_SHARED_KEY", "new, old")])).unwrap();
        let keys: Vec<&str> = rotating.twilio_webhook_shared_keys.iter().map(|k| k.expose_secret()).collect();
        assert_eq!(keys, ["new", "old"]);
    }

    #[test]
    fn errors_name_the_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("TABLE_NAME", "")], "TABLE_NAME"),
            (&[("PUBLIC_BASE_URL", "not a url")], "PUBLIC_BASE_URL"),
            (&[("PUBLIC_BASE_URL", "ftp://x")], "PUBLIC_BASE_URL"),
            (&[("TWILIO_ACCOUNT_SID", "AC123")], "TWILIO_ACCOUNT_SID"),
            (&[("MESSAGE_RETENTION_DAYS", "0")], "MESSAGE_RETENTION_DAYS"),
            (&[("WEBHOOK_RETRY_SECONDS", "9")], "WEBHOOK_RETRY_SECONDS"),
            (&[("TWILIO_WEBHOOK_SHARED_KEY", "a,b,c")], "TWILIO_WEBHOOK_SHARED_KEY"),
            (&[("TWILIO_WEBHOOK_SHARED_KEY", "a,")], "TWILIO_WEBHOOK_SHARED_KEY"),
            (&[("WEBHOOK_RETRY_SECONDS", "-1")], "WEBHOOK_RETRY_SECONDS"),
            (&[("DUTY_ROSTER_CACHE_SECONDS", "301")], "DUTY_ROSTER_CACHE_SECONDS"),
            (&[("DUTY_ROSTER_CACHE_SECONDS", "1.5")], "DUTY_ROSTER_CACHE_SECONDS"),
            (&[("BRIDGE_LINES", "")], "BRIDGE_LINES"),
            (&[("BRIDGE_LINES", "[{\"id\": 1}]")], "BRIDGE_LINES[0].id"),
        ];
        for (overrides, name) in cases {
            let err = SmsWebhookConfig::from_lookup(&sms_env(overrides)).err().unwrap();
            assert_eq!(err.name, *name, "{err}");
        }
    }

    const AWS_LINE: &str = r#"[{ "id": "main", "sms_number": "+14155550100", "sms_provider": "aws_end_user_messaging",
        "whatsapp_phone_number_id": "106540352242922", "agents": ["14155550111"],
        "template": { "name": "new_customer_message", "language": "en" } }]"#;
    const INBOUND_TOPIC: &str = "arn:aws:sns:us-east-1:111122223333:sms-inbound";
    const EVENTS_TOPIC: &str = "arn:aws:sns:us-east-1:111122223333:sms-events";

    #[test]
    fn an_aws_line_needs_its_topics_and_configuration_set() {
        let aws = [("BRIDGE_LINES", AWS_LINE)];
        assert_eq!(SmsWebhookConfig::from_lookup(&sms_env(&aws)).err().unwrap().name, "AWS_SMS_INBOUND_TOPIC_ARN");
        let both = [
            ("BRIDGE_LINES", AWS_LINE),
            ("AWS_SMS_INBOUND_TOPIC_ARN", INBOUND_TOPIC),
            ("AWS_SMS_EVENTS_TOPIC_ARN", EVENTS_TOPIC),
        ];
        let config = SmsWebhookConfig::from_lookup(&sms_env(&both)).unwrap();
        assert_eq!(
            config.aws_sms_topics,
            Some(AwsSmsTopics { inbound: INBOUND_TOPIC.into(), events: EVENTS_TOPIC.into() })
        );
        assert!(SmsWebhookConfig::from_lookup(&sms_env(&[])).unwrap().aws_sms_topics.is_none(), "a Twilio-only stack");
        for (overrides, name) in [
            (
                vec![("AWS_SMS_INBOUND_TOPIC_ARN", "sms-inbound"), ("AWS_SMS_EVENTS_TOPIC_ARN", EVENTS_TOPIC)],
                "AWS_SMS_INBOUND_TOPIC_ARN",
            ),
            (vec![("AWS_SMS_INBOUND_TOPIC_ARN", INBOUND_TOPIC)], "AWS_SMS_EVENTS_TOPIC_ARN"),
            (vec![("AWS_SMS_EVENTS_TOPIC_ARN", "arn:aws:sqs:us-east-1:111122223333:q")], "AWS_SMS_EVENTS_TOPIC_ARN"),
        ] {
            let err = SmsWebhookConfig::from_lookup(&sms_env(&overrides)).err().unwrap();
            assert_eq!(err.name, name, "{err}");
        }

        let mut worker = WORKER.to_vec();
        worker.retain(|(k, _)| *k != "BRIDGE_LINES");
        worker.push(("BRIDGE_LINES", AWS_LINE));
        assert_eq!(DeliveryWorkerConfig::from_lookup(&env(&worker)).err().unwrap().name, "AWS_SMS_CONFIGURATION_SET");
        for good in ["bridge-sms", "arn:aws:sms-voice:us-east-1:111122223333:configuration-set/bridge-sms"] {
            let mut with = worker.clone();
            with.extend([
                ("AWS_SMS_CONFIGURATION_SET", good),
                ("AWS_ENDPOINT_URL_PINPOINT_SMS_VOICE_V2", "http://127.0.0.1:9/"),
            ]);
            let config = DeliveryWorkerConfig::from_lookup(&env(&with)).unwrap();
            assert_eq!(config.aws_sms_configuration_set.as_deref(), Some(good));
            assert_eq!(config.aws_sms_endpoint.as_deref(), Some("http://127.0.0.1:9"));
        }
        for (name, bad) in
            [("AWS_SMS_CONFIGURATION_SET", "bridge sms"), ("AWS_ENDPOINT_URL_PINPOINT_SMS_VOICE_V2", "local")]
        {
            let mut with = worker.clone();
            with.extend([("AWS_SMS_CONFIGURATION_SET", "bridge-sms"), (name, bad)]);
            assert_eq!(DeliveryWorkerConfig::from_lookup(&env(&with)).err().unwrap().name, name);
        }
        assert!(DeliveryWorkerConfig::from_lookup(&env(WORKER)).unwrap().aws_sms_configuration_set.is_none());
    }

    const MEDIA_KEY: &str = "a-media-link-key-of-32-characters";

    fn link(key: &MediaUrlKey) -> String {
        key.sign("https://b", crate::domain::media::MediaSource::WhatsApp, "123", jiff::Timestamp::UNIX_EPOCH)
    }

    /// A deployment whose lines all use AWS needs no Twilio account: the media links are
    /// signed with MEDIA_LINK_KEY, the same in the webhook that checks them and the worker that
    /// signs them. A Twilio line still needs Twilio's settings.
    #[test]
    fn a_deployment_without_twilio_needs_only_a_media_link_key() {
        let topics = [("AWS_SMS_INBOUND_TOPIC_ARN", INBOUND_TOPIC), ("AWS_SMS_EVENTS_TOPIC_ARN", EVENTS_TOPIC)];
        let aws_only = |extra: &[(&'static str, &'static str)]| {
            let mut overrides = vec![("BRIDGE_LINES", AWS_LINE), ("TWILIO_AUTH_TOKEN", "")];
            overrides.extend(topics);
            overrides.extend(extra);
            sms_env(&overrides)
        };
        let worker_aws_only = |extra: &[(&'static str, &'static str)]| {
            let mut pairs: Vec<_> = WORKER
                .iter()
                .copied()
                .filter(|(k, _)| !["BRIDGE_LINES", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"].contains(k))
                .collect();
            pairs.extend([("BRIDGE_LINES", AWS_LINE), ("AWS_SMS_CONFIGURATION_SET", "bridge-sms")]);
            pairs.extend(extra);
            env(&pairs)
        };
        let err = SmsWebhookConfig::from_lookup(&aws_only(&[])).err().unwrap();
        assert_eq!(err.name, "MEDIA_LINK_KEY", "{err}");
        assert_eq!(DeliveryWorkerConfig::from_lookup(&worker_aws_only(&[])).err().unwrap().name, "MEDIA_LINK_KEY");
        let short = [("MEDIA_LINK_KEY", "short")];
        assert_eq!(SmsWebhookConfig::from_lookup(&aws_only(&short)).err().unwrap().name, "MEDIA_LINK_KEY");
        assert_eq!(DeliveryWorkerConfig::from_lookup(&worker_aws_only(&short)).err().unwrap().name, "MEDIA_LINK_KEY");

        let keyed = [("MEDIA_LINK_KEY", MEDIA_KEY)];
        let webhook = SmsWebhookConfig::from_lookup(&aws_only(&keyed)).unwrap();
        assert!(webhook.twilio_auth_token.is_none() && webhook.twilio_account_sid.is_none());
        let worker = DeliveryWorkerConfig::from_lookup(&worker_aws_only(&keyed)).unwrap();
        assert!(worker.twilio.is_none());
        assert_eq!(link(&webhook.media_url_key), link(&worker.media_url_key), "one key signs and checks");
        assert_eq!(link(&worker.media_url_key), link(&MediaUrlKey::derive(&SecretString::from(MEDIA_KEY))));

        // A Twilio line (or a Twilio setting given halfway) still needs Twilio's settings.
        assert_eq!(
            SmsWebhookConfig::from_lookup(&sms_env(&[("TWILIO_AUTH_TOKEN", ""), ("MEDIA_LINK_KEY", MEDIA_KEY)]))
                .err()
                .unwrap()
                .name,
            "TWILIO_AUTH_TOKEN"
        );
        for (missing, named) in
            [("TWILIO_AUTH_TOKEN", "TWILIO_AUTH_TOKEN"), ("TWILIO_ACCOUNT_SID", "TWILIO_ACCOUNT_SID")]
        {
            let mut pairs: Vec<_> = WORKER.iter().copied().filter(|(k, _)| *k != missing).collect();
            pairs.push(("MEDIA_LINK_KEY", MEDIA_KEY));
            assert_eq!(DeliveryWorkerConfig::from_lookup(&env(&pairs)).err().unwrap().name, named, "{missing}");
        }
        let halfway = worker_aws_only(&[
            ("MEDIA_LINK_KEY", MEDIA_KEY),
            ("TWILIO_ACCOUNT_SID", "AC00000000000000000000000000000000"),
        ]);
        assert_eq!(DeliveryWorkerConfig::from_lookup(&halfway).err().unwrap().name, "TWILIO_AUTH_TOKEN");
        let halfway = worker_aws_only(&[("MEDIA_LINK_KEY", MEDIA_KEY), ("TWILIO_AUTH_TOKEN", "x")]);
        assert_eq!(DeliveryWorkerConfig::from_lookup(&halfway).err().unwrap().name, "TWILIO_ACCOUNT_SID");
    }

    /// With Twilio and no MEDIA_LINK_KEY, the key is derived from the auth token as it always
    /// was, so links already sent stay valid; a MEDIA_LINK_KEY given wins.
    #[test]
    fn with_twilio_the_media_link_key_is_still_the_auth_tokens() {
        let from_token = link(&MediaUrlKey::derive(&SecretString::from("x")));
        let webhook = SmsWebhookConfig::from_lookup(&sms_env(&[("TWILIO_AUTH_TOKEN", "x")])).unwrap();
        let worker = DeliveryWorkerConfig::from_lookup(&env(WORKER)).unwrap();
        assert_eq!(link(&webhook.media_url_key), from_token);
        assert_eq!(link(&worker.media_url_key), from_token);
        let twilio = worker.twilio.unwrap();
        assert_eq!(
            (twilio.account_sid.as_str(), twilio.auth_token.expose_secret()),
            ("AC00000000000000000000000000000000", "x")
        );

        let mut keyed = WORKER.to_vec();
        keyed.push(("MEDIA_LINK_KEY", MEDIA_KEY));
        let worker = DeliveryWorkerConfig::from_lookup(&env(&keyed)).unwrap();
        let webhook =
            SmsWebhookConfig::from_lookup(&sms_env(&[("TWILIO_AUTH_TOKEN", "x"), ("MEDIA_LINK_KEY", MEDIA_KEY)]))
                .unwrap();
        assert_ne!(link(&worker.media_url_key), from_token);
        assert_eq!(link(&worker.media_url_key), link(&webhook.media_url_key));
    }

    #[test]
    fn lines_can_come_from_a_file() {
        let path = std::env::temp_dir().join(format!("lines-{}.json", std::process::id()));
        std::fs::write(&path, LINES).unwrap();
        let lookup = env(&[("BRIDGE_LINES_FILE", path.to_str().unwrap())]);
        assert_eq!(lines(&lookup).unwrap().iter().count(), 1);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(lines(&lookup).unwrap_err().name, "BRIDGE_LINES_FILE");
    }

    #[test]
    fn lines_from_ssm_are_read_again_every_refresh_interval() {
        assert_eq!(lines_refresh(&env(&[])).unwrap(), None, "BRIDGE_LINES never changes");
        let refresh = lines_refresh(&env(&[("BRIDGE_LINES_PARAM", "/bridge/lines")])).unwrap();
        assert_eq!(refresh, Some(LinesRefresh { parameter: "/bridge/lines".into(), every: Duration::from_secs(60) }));
        let quick = env(&[("BRIDGE_LINES_PARAM", "/bridge/lines"), ("BRIDGE_LINES_REFRESH_SECONDS", "1")]);
        assert_eq!(lines_refresh(&quick).unwrap().unwrap().every, Duration::from_secs(1));
        for bad in ["0", "3601", "1.5", "soon"] {
            let err = lines_refresh(&env(&[("BRIDGE_LINES_REFRESH_SECONDS", bad)])).unwrap_err();
            assert_eq!(err.name, "BRIDGE_LINES_REFRESH_SECONDS", "{bad}");
        }
    }

    const WORKER: &[(&str, &str)] = &[
        ("BRIDGE_LINES", LINES),
        ("TABLE_NAME", "t"),
        ("DELIVERY_QUEUE_URL", "q"),
        ("META_ACCESS_TOKEN", "x"),
        ("PUBLIC_BASE_URL", "https://bridge.example.com"),
        ("TWILIO_ACCOUNT_SID", "AC00000000000000000000000000000000"),
        ("TWILIO_AUTH_TOKEN", "x"),
        ("DEAD_LETTER_QUEUE_URL", "dlq"),
    ];

    #[test]
    fn worker_defaults_to_the_public_provider_apis() {
        let config = DeliveryWorkerConfig::from_lookup(&env(WORKER)).unwrap();
        assert_eq!(config.graph_api_base, DEFAULT_GRAPH_API_BASE);
        assert_eq!(config.graph_api_version, "v26.0");
        assert_eq!(config.twilio_api_base, DEFAULT_TWILIO_API_BASE);
        let mut bad = WORKER.to_vec();
        bad.push(("GRAPH_API_VERSION", "23"));
        assert_eq!(DeliveryWorkerConfig::from_lookup(&env(&bad)).err().unwrap().name, "GRAPH_API_VERSION");
        assert_eq!(config.rates, SendRates::default());
        assert_eq!(config.retry, RetryPolicy::default());
        for (name, bad) in
            [("SMS_MESSAGES_PER_SECOND", "0"), ("RETRY_BASE_SECONDS", "-1"), ("PROVIDER_TIMEOUT_SECONDS", "soon")]
        {
            let mut env_with = WORKER.to_vec();
            env_with.push((name, bad));
            assert_eq!(DeliveryWorkerConfig::from_lookup(&env(&env_with)).err().unwrap().name, name);
        }
        for (name, bad) in [
            ("DELIVERY_MAX_RECEIVE_COUNT", "5"),
            ("DELIVERY_MAX_RECEIVE_COUNT", "1001"),
            ("MAX_JOB_AGE_HOURS", "0"),
            ("RECONCILE_WAIT_SECONDS", "never"),
        ] {
            let mut env_with = WORKER.to_vec();
            env_with.push((name, bad));
            assert_eq!(DeliveryWorkerConfig::from_lookup(&env(&env_with)).err().unwrap().name, name, "{bad}");
        }
        let mut tuned = WORKER.to_vec();
        tuned.extend([
            ("DELIVERY_MAX_RECEIVE_COUNT", "500"),
            ("MAX_JOB_AGE_HOURS", "12"),
            ("RECONCILE_WAIT_SECONDS", "60"),
        ]);
        let tuned = DeliveryWorkerConfig::from_lookup(&env(&tuned)).unwrap();
        assert_eq!(tuned.retry.max_receive_count, 500);
        assert_eq!(tuned.retry.max_job_age, Duration::from_secs(12 * 3600));
        assert_eq!(tuned.reconcile_wait, Duration::from_secs(60));
        assert_eq!(config.reconcile_wait, crate::app::deliver_job::DEFAULT_RECONCILE_WAIT);
        let without_sid: Vec<_> = WORKER.iter().copied().filter(|(k, _)| *k != "TWILIO_ACCOUNT_SID").collect();
        assert_eq!(DeliveryWorkerConfig::from_lookup(&env(&without_sid)).err().unwrap().name, "TWILIO_ACCOUNT_SID");
    }
}
