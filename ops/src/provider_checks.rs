//! Before a redrive: is the cause of the parked jobs still failing? One read per provider
//! (and per line for WhatsApp) with the credentials and endpoint the worker sends with, that
//! messages nobody: the Graph API's read of the line's business number, Twilio's fetch of the
//! account. A job whose cause is not fixed would only come straight back to the DLQ.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use shared::adapters::twilio::{AccountStatus, TwilioClient};
use shared::adapters::whatsapp::GraphClient;
use shared::config::{ConfigError, GraphAccess, Lookup, TwilioAccess};
use shared::domain::{ErrorClass, Job, JobPayload, LineId, Lines, ProviderFailure, scrub_numbers};

/// How long a check waits for the provider.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// What a parked job needs to work again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// The Graph API with the access token, for the line's WhatsApp number (copies, notices).
    WhatsApp(LineId),
    /// The SMS provider's account (agents' replies, automated replies): one for every line.
    Sms,
}

impl Check {
    pub fn for_job(job: &Job) -> Self {
        match &job.payload {
            JobPayload::ForwardToAgent(_) | JobPayload::NotifyAgent(_) => Self::WhatsApp(job.line().clone()),
            JobPayload::SendSms(_) | JobPayload::AutoReply(_) => Self::Sms,
        }
    }

    /// The checks a set of jobs needs, each once.
    pub fn for_jobs<'a>(jobs: impl IntoIterator<Item = &'a Job>) -> BTreeSet<Self> {
        jobs.into_iter().map(Self::for_job).collect()
    }
}

/// WhatsApp's lines by name, then SMS: the order the checks are made and shown in.
impl Ord for Check {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let key = |check: &Self| match check {
            Self::WhatsApp(line) => (0, line.as_str().to_owned()),
            Self::Sms => (1, String::new()),
        };
        key(self).cmp(&key(other))
    }
}

impl PartialOrd for Check {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WhatsApp(line) => write!(f, "WhatsApp for line {line}"),
            Self::Sms => f.write_str("SMS (the Twilio account)"),
        }
    }
}

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckOutcome {
    Works,
    /// The provider refused, as a send would have been: the cause isn't fixed.
    Failing {
        class: ErrorClass,
        code: Option<i64>,
        reason: String,
    },
    /// The provider took the credentials but refused the read for want of a permission a
    /// send doesn't need (Meta's codes 10 and 200-299: a token with only
    /// `whatsapp_business_messaging`): what parks jobs (a revoked or expired token, 190) is fixed.
    TokenAccepted {
        code: i64,
    },
    /// The check couldn't be made (no credentials here, a line that isn't configured).
    Unknown(String),
}

impl CheckOutcome {
    pub fn works(&self) -> bool {
        matches!(self, Self::Works | Self::TokenAccepted { .. })
    }

    /// A Graph read's failure: a permissions error still says the token is good.
    fn of_graph_failure(failure: &ProviderFailure) -> Self {
        match failure {
            ProviderFailure::Rejected { code: Some(code @ (10 | 200..=299)), .. } => {
                Self::TokenAccepted { code: *code }
            }
            other => Self::of_failure(other),
        }
    }

    fn of_failure(failure: &ProviderFailure) -> Self {
        let code = match failure {
            ProviderFailure::Rejected { code, .. } => *code,
            ProviderFailure::NotSent(_) | ProviderFailure::Ambiguous(_) => None,
        };
        Self::Failing { class: ErrorClass::of(failure), code, reason: scrub_numbers(&failure.to_string()) }
    }
}

impl fmt::Display for CheckOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Works => f.write_str("works"),
            Self::Failing { class, code, reason } => {
                let class = shared::domain::FailureClass::Provider(*class);
                match code {
                    Some(code) => write!(f, "still failing: {class} {code} ({reason})"),
                    None => write!(f, "still failing: {class} ({reason})"),
                }
            }
            Self::TokenAccepted { code } => write!(
                f,
                "works: the token is valid (the read itself was refused with {code}: the token lacks \
                 whatsapp_business_management, which sending doesn't need)"
            ),
            Self::Unknown(why) => write!(f, "can't check: {why}"),
        }
    }
}

/// The providers as the worker reaches them, from the worker's own variables (secrets read
/// from SSM where a `_PARAM` names them, docs/configuration.md).
pub struct ProviderChecks {
    lines: Result<Lines, ConfigError>,
    graph: Result<GraphClient, ConfigError>,
    twilio: Result<TwilioClient, ConfigError>,
}

impl ProviderChecks {
    /// What is missing or invalid in `env` only fails the checks that need it.
    pub fn from_lookup(env: Lookup) -> Self {
        let http = shared::aws::provider_http_client(CHECK_TIMEOUT);
        Self {
            lines: shared::config::lines(env),
            graph: GraphAccess::from_lookup(env)
                .map(|a| GraphClient::new(http.clone(), &a.base, &a.version, a.access_token)),
            twilio: TwilioAccess::from_lookup(env)
                .map(|a| TwilioClient::new(http, &a.api_base, &a.account_sid, a.auth_token)),
        }
    }

    pub async fn check(&self, check: &Check) -> CheckOutcome {
        match check {
            Check::WhatsApp(line_id) => {
                let lines = match &self.lines {
                    Ok(lines) => lines,
                    Err(e) => return CheckOutcome::Unknown(e.to_string()),
                };
                let Some(line) = lines.by_id(line_id) else {
                    return CheckOutcome::Unknown(format!("line {line_id} is not in BRIDGE_LINES"));
                };
                let graph = match &self.graph {
                    Ok(graph) => graph,
                    Err(e) => return CheckOutcome::Unknown(e.to_string()),
                };
                match graph.read_phone_number(&line.whatsapp_phone_number_id).await {
                    Ok(()) => CheckOutcome::Works,
                    Err(failure) => CheckOutcome::of_graph_failure(&failure),
                }
            }
            Check::Sms => {
                let twilio = match &self.twilio {
                    Ok(twilio) => twilio,
                    Err(e) => return CheckOutcome::Unknown(e.to_string()),
                };
                match twilio.fetch_account().await {
                    Ok(AccountStatus::Active) => CheckOutcome::Works,
                    // Twilio refuses every send of an account that isn't active (error 10001).
                    Ok(status) => CheckOutcome::Failing {
                        class: ErrorClass::Escalate,
                        code: None,
                        reason: format!("the account is {}", format!("{status:?}").to_lowercase()),
                    },
                    Err(failure) => CheckOutcome::of_failure(&failure),
                }
            }
        }
    }

    /// Every check, in order, with what it found.
    pub async fn run(&self, checks: &BTreeSet<Check>) -> Vec<(Check, CheckOutcome)> {
        let mut outcomes = Vec::with_capacity(checks.len());
        for check in checks {
            outcomes.push((check.clone(), self.check(check).await));
        }
        outcomes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(code: i64) -> ProviderFailure {
        ProviderFailure::Rejected { http_status: 400, code: Some(code), message: "error".into(), retry_after: None }
    }

    #[test]
    fn a_permissions_error_on_the_read_still_says_the_token_is_good_and_a_revoked_one_fails() {
        for code in [10, 200, 299] {
            assert!(CheckOutcome::of_graph_failure(&rejected(code)).works(), "{code}");
        }
        for code in [190, 100, 131031] {
            assert!(!CheckOutcome::of_graph_failure(&rejected(code)).works(), "{code}");
        }
    }
}
