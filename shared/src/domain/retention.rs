//! How long the bridge keeps what it stores (SECURITY.md, "Personal data"): every item kind
//! expires by DynamoDB TTL (`expires_at`). A conversation lives its retention past its last
//! message; its handle must live at least as long, or an agent's `#handle` reply would find
//! nothing while the conversation is still there.
//!
//! The handle's item is renewed by the worker, which reads the conversation for every job
//! anyway, only when it is due: a renewal is one write every half retention per busy
//! conversation, not one per message.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

/// A handle is written (or renewed) to last this many retentions from `now`.
const HANDLE_LIFETIME_RETENTIONS: u32 = 3;
/// ...and is due for renewal once less than this many retentions are left.
const HANDLE_RENEW_BELOW_RETENTIONS: u32 = 2;

/// When a conversation touched at `now` expires.
pub fn conversation_expires_at(now: Timestamp, retention: Duration) -> Timestamp {
    after(now, retention)
}

/// When a handle written or renewed at `now` expires: a retention and a half later, so
/// that a renewal whenever less than a retention is left (`handle_renewal_due`) keeps it
/// past its conversation's expiry.
pub fn handle_expires_at(now: Timestamp, retention: Duration) -> Timestamp {
    after(now, retention * HANDLE_LIFETIME_RETENTIONS / 2)
}

/// Whether a handle that expires at `expires_at` should be renewed at `now`. `None` (an
/// item written before handles expired) is due: the renewal gives it its expiry.
pub fn handle_renewal_due(expires_at: Option<Timestamp>, now: Timestamp, retention: Duration) -> bool {
    match expires_at {
        None => true,
        Some(expires_at) => expires_at < after(now, retention * HANDLE_RENEW_BELOW_RETENTIONS / 2),
    }
}

fn after(now: Timestamp, duration: Duration) -> Timestamp {
    let duration = SignedDuration::try_from(duration).unwrap_or(SignedDuration::MAX);
    now.checked_add(duration).unwrap_or(Timestamp::MAX)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proptest::prelude::*;

    use super::*;

    const DAY: u64 = 24 * 3600;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    proptest! {
        /// Law: with renewals whenever due at each activity, the handle never expires before
        /// the conversation (which expires a retention after the last activity).
        #[test]
        fn a_handle_renewed_when_due_outlives_its_conversation(
            retention_days in 1u64..400,
            gaps in proptest::collection::vec(0i64..(800 * DAY as i64), 1..30),
        ) {
            let retention = Duration::from_secs(retention_days * DAY);
            let mut now = at(1_700_000_000);
            let mut handle = handle_expires_at(now, retention);
            for gap in gaps {
                let next = at(now.as_second() + gap);
                // An activity after the conversation expired starts a new one (and handle).
                if next > conversation_expires_at(now, retention) {
                    handle = handle_expires_at(next, retention);
                }
                now = next;
                if handle_renewal_due(Some(handle), now, retention) {
                    handle = handle_expires_at(now, retention);
                }
                prop_assert!(handle >= conversation_expires_at(now, retention));
            }
        }

        /// Law: a fresh or just-renewed handle is never due, so a burst of messages costs
        /// no renewal writes.
        #[test]
        fn a_fresh_handle_is_not_due(retention_days in 1u64..400, now in 0i64..4_000_000_000) {
            let retention = Duration::from_secs(retention_days * DAY);
            let now = at(now);
            prop_assert!(!handle_renewal_due(Some(handle_expires_at(now, retention)), now, retention));
        }
    }

    #[test]
    fn a_handle_without_expiry_is_due_and_a_huge_retention_saturates() {
        assert!(handle_renewal_due(None, at(0), Duration::from_secs(DAY)));
        assert_eq!(conversation_expires_at(at(0), Duration::MAX), Timestamp::MAX);
    }
}
