//! Delivery statuses (docs/using.md) and the rule that they only move forward.
//!
//! queued < sending < sent < failed = undelivered < delivered < read. A failure is final
//! unless the provider's own later report says the message did arrive; a late `sent` after
//! `delivered`, a duplicate, or a `failed` after `delivered` changes nothing.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    Queued,
    Sending,
    Sent,
    Failed,
    Undelivered,
    Delivered,
    Read,
}

/// A status as a provider reported it, read at the edge: one the bridge tracks, or another
/// it acknowledges and ignores (kept for the log: at most 32 characters, no digit runs that
/// could be a number).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportedStatus {
    Tracked(DeliveryStatus),
    Other(String),
}

impl ReportedStatus {
    pub fn parse(reported: &str) -> Self {
        let other = || Self::Other(super::scrub_numbers(&reported.chars().take(32).collect::<String>()));
        DeliveryStatus::parse(reported).map_or_else(other, Self::Tracked)
    }

    /// The status the bridge tracks, if it is one.
    pub fn tracked(&self) -> Option<DeliveryStatus> {
        match self {
            Self::Tracked(status) => Some(*status),
            Self::Other(_) => None,
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Tracked(status) => status.as_str(),
            Self::Other(reported) => reported,
        }
    }
}

impl From<&str> for ReportedStatus {
    fn from(reported: &str) -> Self {
        Self::parse(reported)
    }
}

impl DeliveryStatus {
    /// Twilio's `MessageStatus` or WhatsApp's `statuses[].status`; `None` for statuses that
    /// say nothing about delivery (`receiving`, `scheduled`, unknown future values).
    pub fn parse(status: &str) -> Option<Self> {
        Some(match status {
            "queued" | "accepted" => Self::Queued,
            "sending" => Self::Sending,
            "sent" => Self::Sent,
            "failed" | "canceled" => Self::Failed,
            "undelivered" => Self::Undelivered,
            "delivered" => Self::Delivered,
            "read" => Self::Read,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::Undelivered => "undelivered",
            Self::Delivered => "delivered",
            Self::Read => "read",
        }
    }

    /// Position in the forward order; equal ranks don't replace each other.
    pub fn rank(self) -> u8 {
        match self {
            Self::Queued => 0,
            Self::Sending => 1,
            Self::Sent => 2,
            Self::Failed | Self::Undelivered => 3,
            Self::Delivered => 4,
            Self::Read => 5,
        }
    }

    pub fn is_failure(self) -> bool {
        matches!(self, Self::Failed | Self::Undelivered)
    }

    /// Whether a report of `self` may replace the recorded `current` status.
    pub fn advances(self, current: Option<DeliveryStatus>) -> bool {
        current.is_none_or(|c| self.rank() > c.rank())
    }

    /// Whether a report of `self` is worth a write (issue 17: a status that changes nothing
    /// costs none): it moves `current` forward, and it says more than the worker's own record
    /// of the send. `queued`, `sending` and `sent` say only that the provider took it, which a
    /// recorded send (`send_recorded`: the provider's id is on the leg) already says.
    pub fn worth_recording(self, current: Option<DeliveryStatus>, send_recorded: bool) -> bool {
        self.advances(current) && !(self.only_says_taken() && send_recorded)
    }

    /// `queued`, `sending`, `sent`: the provider took the message, nothing more.
    pub fn only_says_taken(self) -> bool {
        self.rank() <= Self::Sent.rank()
    }

    /// The reaction the agent who wrote the message is shown when its status moves from
    /// `previous` to this: ✅ the first time it is known to have arrived, ❌ when it failed.
    pub fn agent_reaction(self, previous: Option<DeliveryStatus>) -> Option<&'static str> {
        let arrived_before = previous.is_some_and(|p| p.rank() >= Self::Delivered.rank());
        match self {
            Self::Delivered | Self::Read if !arrived_before => Some("✅"),
            Self::Failed | Self::Undelivered => Some("❌"),
            _ => None,
        }
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A provider error code in words, for the agent (docs/using.md: "not delivered: customer opted
/// out (21610)").
pub fn reason_in_words(code: Option<i64>) -> &'static str {
    if let Some(reason) = code.and_then(super::aws_sms::AwsSmsReason::from_code) {
        return reason.in_words();
    }
    match code {
        Some(21211) => "invalid phone number",
        Some(21408) => "the destination country is not enabled",
        Some(super::compliance::OPTED_OUT_CODE) => "customer opted out",
        Some(21612) => "the number can't receive this message",
        Some(21614) => "not a mobile number",
        Some(30001) => "the provider's queue overflowed",
        Some(30002) => "account suspended",
        Some(30003) => "the phone is off or unreachable",
        Some(30004) => "blocked by the recipient",
        Some(30005) => "unknown destination",
        Some(30006) => "landline or unreachable carrier",
        Some(30007) => "filtered by the carrier",
        Some(30008) => "unknown error from the carrier",
        Some(30034) => "sender not registered (A2P 10DLC)",
        Some(131026) => "the WhatsApp user can't receive this message",
        Some(131047) => "more than 24 hours since they last wrote",
        Some(131051) => "unsupported message type",
        Some(131062) => "WhatsApp refused the user id as the recipient",
        _ => "the provider gave no reason",
    }
}

/// The agent-facing line for a failed reply, e.g. `not delivered: unknown destination (30005)`;
/// an AWS SMS reason shows AWS's name (`(TEXT_BLOCKED)`), not the bridge's number for it.
pub fn failure_notice(code: Option<i64>) -> String {
    match code {
        Some(code) => match super::aws_sms::AwsSmsReason::from_code(code) {
            Some(reason) => format!("not delivered: {} ({})", reason.in_words(), reason.aws_name()),
            None => format!("not delivered: {} ({code})", reason_in_words(Some(code))),
        },
        None => format!("not delivered: {}", reason_in_words(None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DeliveryStatus::*;
    use proptest::prelude::*;

    #[test]
    fn a_reported_status_is_tracked_or_kept_as_reported() {
        assert_eq!(ReportedStatus::parse("delivered").tracked(), Some(Delivered));
        assert_eq!(ReportedStatus::parse("accepted"), ReportedStatus::Tracked(Queued));
        let other = ReportedStatus::parse("receiving");
        assert_eq!((other.tracked(), other.as_str()), (None, "receiving"));
        assert_eq!(ReportedStatus::from("read").as_str(), "read");
        // Logged as it came, but never a phone number, and never long.
        assert!(!ReportedStatus::parse("to +14155550134").as_str().contains("4155550134"));
        assert_eq!(ReportedStatus::parse(&"x".repeat(100)).as_str().len(), 32);
    }

    #[test]
    fn forward_only() {
        assert!(Sent.advances(None));
        assert!(Delivered.advances(Some(Sent)));
        assert!(!Sent.advances(Some(Delivered)), "a late sent");
        assert!(!Delivered.advances(Some(Delivered)), "a duplicate");
        assert!(!Failed.advances(Some(Delivered)), "a failure after delivery");
        assert!(Delivered.advances(Some(Undelivered)), "the provider's later success");
        assert!(!Undelivered.advances(Some(Failed)), "equal ranks don't flip");
        assert!(Read.advances(Some(Delivered)));
    }

    #[test]
    fn the_agent_sees_arrival_once_and_every_failure() {
        assert_eq!(Delivered.agent_reaction(Some(Sent)), Some("✅"));
        assert_eq!(Read.agent_reaction(Some(Sent)), Some("✅"), "read without a delivered report");
        assert_eq!(Read.agent_reaction(Some(Delivered)), None, "already shown");
        assert_eq!(Delivered.agent_reaction(Some(Failed)), Some("✅"), "a late success replaces the cross");
        assert_eq!(Undelivered.agent_reaction(None), Some("❌"));
        assert_eq!(Sent.agent_reaction(None), None);
    }

    #[test]
    fn parses_both_providers_vocabularies() {
        for (raw, status) in [
            ("queued", Queued),
            ("accepted", Queued),
            ("sending", Sending),
            ("sent", Sent),
            ("failed", Failed),
            ("undelivered", Undelivered),
            ("delivered", Delivered),
            ("read", Read),
            ("canceled", Failed),
        ] {
            assert_eq!(DeliveryStatus::parse(raw), Some(status), "{raw}");
            assert_eq!(DeliveryStatus::parse(status.as_str()), Some(status));
        }
        for unknown in ["receiving", "received", "scheduled", "", "DELIVERED", "warning"] {
            assert_eq!(DeliveryStatus::parse(unknown), None, "{unknown}");
        }
    }

    #[test]
    fn notices_name_the_reason_and_code() {
        assert_eq!(failure_notice(Some(30005)), "not delivered: unknown destination (30005)");
        assert_eq!(failure_notice(Some(21610)), "not delivered: customer opted out (21610)");
        assert_eq!(failure_notice(Some(12345)), "not delivered: the provider gave no reason (12345)");
        assert_eq!(failure_notice(None), "not delivered: the provider gave no reason");
    }

    fn any_status() -> impl Strategy<Value = DeliveryStatus> {
        prop_oneof![
            Just(Queued),
            Just(Sending),
            Just(Sent),
            Just(Failed),
            Just(Undelivered),
            Just(Delivered),
            Just(Read)
        ]
    }

    proptest! {
        /// Whatever order callbacks arrive in, duplicates included, the recorded status ends
        /// at the highest rank reported, and the agent is shown each reaction at most once
        /// per change.
        #[test]
        fn any_callback_order_ends_at_the_furthest_status(reports in proptest::collection::vec(any_status(), 1..12), seed in any::<u64>()) {
            let mut shuffled = reports.clone();
            fastrand::Rng::with_seed(seed).shuffle(&mut shuffled);
            let mut current: Option<DeliveryStatus> = None;
            let mut changes = 0;
            for report in &shuffled {
                if report.advances(current) {
                    prop_assert!(current.is_none_or(|c| c.rank() < report.rank()), "never backwards");
                    current = Some(*report);
                    changes += 1;
                }
            }
            let max_rank = reports.iter().map(|s| s.rank()).max().unwrap();
            prop_assert_eq!(current.map(|c| c.rank()), Some(max_rank));
            prop_assert!(changes <= 6, "at most one change per rank");
        }

        /// Skipping the writes `worth_recording` refuses loses nothing anyone is shown:
        /// the agent's reactions come out the same, and the status ends at the furthest one
        /// reported past `sent` (or the worker's own `sent`).
        #[test]
        fn skipped_writes_change_no_reaction_and_no_final_status(reports in proptest::collection::vec(any_status(), 1..12)) {
            let (mut every, mut worth): (Option<DeliveryStatus>, Option<DeliveryStatus>) = (None, None);
            let (mut shown_every, mut shown_worth) = (Vec::new(), Vec::new());
            for report in &reports {
                if report.advances(every) {
                    shown_every.extend(report.agent_reaction(every));
                    every = Some(*report);
                }
                if report.worth_recording(worth, true) {
                    shown_worth.extend(report.agent_reaction(worth));
                    worth = Some(*report);
                }
            }
            prop_assert_eq!(shown_every, shown_worth);
            let past_sent = |s: Option<DeliveryStatus>| s.filter(|s| s.rank() > Sent.rank());
            prop_assert_eq!(past_sent(every), worth);
        }
    }

    #[test]
    fn only_a_status_past_the_providers_acceptance_is_worth_a_write_once_the_send_is_recorded() {
        assert!(!Sent.worth_recording(None, true), "the worker recorded the send: nothing new");
        assert!(Sent.worth_recording(None, false), "a lost answer: the report tells the leg it went out");
        assert!(Delivered.worth_recording(None, true));
        assert!(!Sent.worth_recording(Some(Delivered), false), "backwards");
        assert!(!Delivered.worth_recording(Some(Delivered), true), "a replay");
        assert!(Failed.worth_recording(None, true) && Read.worth_recording(Some(Delivered), true));
    }
}
