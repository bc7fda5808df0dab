//! The simulator's scriptable failure modes (`--fail-rate`, `--fail-number`,
//! `--closed-window`, `--late-answer-rate`) and the AWS side's (`--aws-fail-rate`,
//! `--aws-outage`): what a demo needs to show retries, permanent failures, the template
//! fallback, reconciliation and the outbox happening for real.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Serialize;

/// Twilio's "unreachable destination handset / landline": the default for `--fail-number`.
pub const DEFAULT_FAILING_CODE: i64 = 30006;

#[derive(Debug, Clone, Default, Serialize)]
pub struct FailureSettings {
    /// The share of provider sends (both APIs) answered with a transient error.
    pub fail_rate: f64,
    /// SMS to these numbers are accepted, then reported failed with the code.
    pub failing_numbers: BTreeMap<String, i64>,
    /// Agents whose 24-hour window never opens.
    pub closed_windows: BTreeSet<String>,
    /// Seeds the random failures, so a run can be repeated send for send.
    pub seed: Option<u64>,
    /// The share of provider sends accepted (and delivered) but answered only after
    /// [`LATE_ANSWER`], longer than the bridge waits: their outcome is lost to it.
    pub late_answer_rate: f64,
}

/// How late a "late answer" comes: past the worker's provider timeout (10 s by default).
pub const LATE_ANSWER: Duration = Duration::from_secs(12);

/// AWS's side: every DynamoDB or SQS call of the functions fails at `fail_rate`, and each
/// outage refuses one service's calls for a while (`bridge_emulator::faults`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct AwsFailureSettings {
    pub fail_rate: f64,
    pub outages: Vec<AwsOutage>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AwsOutage {
    /// `AmazonSQS` or `DynamoDB`: the calls' `X-Amz-Target` prefix.
    pub service: &'static str,
    pub after: Duration,
    pub length: Duration,
}

/// `sqs=30` (from the start, 30 s) or `dynamodb=20@60` (20 s, starting a minute in).
pub fn parse_aws_outage(value: &str) -> Result<AwsOutage, String> {
    let bad = || format!("--aws-outage {value}: expected sqs=SECONDS or dynamodb=SECONDS@AFTER");
    let (service, timing) = value.split_once('=').ok_or_else(bad)?;
    let service = match service {
        "sqs" => "AmazonSQS",
        "dynamodb" => "DynamoDB",
        _ => return Err(bad()),
    };
    let (length, after) = timing.split_once('@').unwrap_or((timing, "0"));
    let seconds = |s: &str| s.parse::<u64>().map(Duration::from_secs).map_err(|_| bad());
    Ok(AwsOutage { service, after: seconds(after)?, length: seconds(length)? })
}

impl FailureSettings {
    /// Whether this send fails at random; `roll` is uniform in [0, 1).
    pub fn fails_at_random(&self, roll: f64) -> bool {
        roll < self.fail_rate
    }

    pub fn failing_code(&self, number: &str) -> Option<i64> {
        self.failing_numbers.get(number).copied()
    }

    /// Whether this accepted send is answered too late; `roll` is uniform in [0, 1).
    pub fn answers_late(&self, roll: f64) -> bool {
        roll < self.late_answer_rate
    }
}

pub fn parse_fail_rate(value: &str) -> Result<f64, String> {
    parse_rate("--fail-rate", value)
}

/// A share from 0 to 1, for the option `name`.
pub fn parse_rate(name: &str, value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(rate) if (0.0..=1.0).contains(&rate) => Ok(rate),
        _ => Err(format!("{name} must be a number from 0 to 1 (got `{value}`)")),
    }
}

/// `+14155550199=30007`, or `+14155550199` for [`DEFAULT_FAILING_CODE`].
pub fn parse_failing_number(value: &str) -> Result<(String, i64), String> {
    let (number, code) = match value.split_once('=') {
        Some((number, code)) => {
            let code = code.parse::<i64>().ok().filter(|c| (1..=99_999).contains(c));
            (number, code.ok_or_else(|| format!("--fail-number {value}: the code must be a Twilio error code"))?)
        }
        None => (value, DEFAULT_FAILING_CODE),
    };
    let digits = number.strip_prefix('+').unwrap_or_default();
    let e164 =
        (2..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0');
    if e164 { Ok((number.to_owned(), code)) } else { Err(format!("--fail-number {value}: not an E.164 number")) }
}

pub fn parse_seed(value: &str) -> Result<u64, String> {
    value.parse().map_err(|_| format!("--fail-seed must be a whole number (got `{value}`)"))
}

pub fn parse_wa_id(value: &str) -> Result<String, String> {
    if (5..=15).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_digit()) {
        Ok(value.to_owned())
    } else {
        Err(format!("--closed-window {value}: a WhatsApp id is 5 to 15 digits"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_or_say_what_is_wrong() {
        assert_eq!(parse_fail_rate("0.2"), Ok(0.2));
        assert!(parse_fail_rate("1.5").unwrap_err().contains("0 to 1"));
        assert!(parse_fail_rate("lots").is_err());
        assert_eq!(parse_failing_number("+14155550199"), Ok(("+14155550199".into(), 30006)));
        assert_eq!(parse_failing_number("+14155550199=30007"), Ok(("+14155550199".into(), 30007)));
        assert!(parse_failing_number("14155550199").is_err());
        assert!(parse_failing_number("+14155550199=abc").is_err());
        assert_eq!(parse_seed("7"), Ok(7));
        assert!(parse_seed("-1").is_err());
        assert_eq!(parse_wa_id("14155550112"), Ok("14155550112".into()));
        assert!(parse_wa_id("+14155550112").is_err());
    }

    #[test]
    fn aws_outages_name_a_service_a_length_and_a_start() {
        assert_eq!(
            parse_aws_outage("sqs=30"),
            Ok(AwsOutage { service: "AmazonSQS", after: Duration::ZERO, length: Duration::from_secs(30) })
        );
        assert_eq!(
            parse_aws_outage("dynamodb=20@60"),
            Ok(AwsOutage { service: "DynamoDB", after: Duration::from_secs(60), length: Duration::from_secs(20) })
        );
        for bad in ["s3=1", "sqs", "sqs=soon", "sqs=1@later"] {
            assert!(parse_aws_outage(bad).is_err(), "{bad}");
        }
        assert!(parse_rate("--aws-fail-rate", "2").unwrap_err().contains("--aws-fail-rate"));
        let late = FailureSettings { late_answer_rate: 0.5, ..Default::default() };
        assert!(late.answers_late(0.4) && !late.answers_late(0.6));
    }

    #[test]
    fn random_failures_follow_the_rate() {
        let none = FailureSettings::default();
        assert!(!none.fails_at_random(0.0));
        let all = FailureSettings { fail_rate: 1.0, ..Default::default() };
        assert!(all.fails_at_random(0.999));
        let some = FailureSettings { fail_rate: 0.2, ..Default::default() };
        assert!(some.fails_at_random(0.19) && !some.fails_at_random(0.2));
    }
}
