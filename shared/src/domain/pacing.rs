//! Per-sender pacing (docs/guarantees.md): sends from one number are spaced so a burst doesn't trip the
//! provider's throttling (WhatsApp Cloud API: 80 messages/s per business number; SMS: the
//! number's MPS, e.g. 1 for a US long code). Pure: the caller supplies the clock and sleeps.

use std::collections::HashMap;
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
pub struct Pacer {
    /// When each sender may send next.
    next_slot: HashMap<String, Instant>,
}

impl Pacer {
    /// Reserves `sender`'s next slot at `per_second` messages a second and returns when it
    /// starts (`now` if the sender is idle).
    pub fn reserve(&mut self, sender: &str, per_second: f64, now: Instant) -> Instant {
        let interval = if per_second > 0.0 { Duration::from_secs_f64(1.0 / per_second) } else { Duration::ZERO };
        let slot = self.next_slot.get(sender).map_or(now, |next| (*next).max(now));
        self.next_slot.insert(sender.to_owned(), slot + interval);
        slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn spaces_one_senders_burst_and_leaves_others_alone() {
        let mut pacer = Pacer::default();
        let t0 = Instant::now();
        let slots: Vec<Duration> = (0..4).map(|_| pacer.reserve("+14155550100", 2.0, t0) - t0).collect();
        assert_eq!(slots, [0, 500, 1000, 1500].map(Duration::from_millis));
        assert_eq!(pacer.reserve("+14155550199", 2.0, t0), t0, "another number is not held up");
        // After a pause the sender is idle again.
        let later = t0 + Duration::from_secs(10);
        assert_eq!(pacer.reserve("+14155550100", 2.0, later), later);
    }

    proptest! {
        #[test]
        fn never_more_than_the_rate_in_any_window(rate in 1u32..100, arrivals in proptest::collection::vec(0u64..2000, 1..60)) {
            let mut pacer = Pacer::default();
            let t0 = Instant::now();
            let mut sorted = arrivals.clone();
            sorted.sort();
            let slots: Vec<Instant> = sorted.iter().map(|ms| pacer.reserve("s", f64::from(rate), t0 + Duration::from_millis(*ms))).collect();
            let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
            for pair in slots.windows(2) {
                prop_assert!(pair[1] - pair[0] + Duration::from_nanos(1) >= interval);
            }
            for (slot, ms) in slots.iter().zip(&sorted) {
                prop_assert!(*slot >= t0 + Duration::from_millis(*ms), "never before it was asked for");
            }
        }
    }
}
