//! Per-sender pacing (docs/guarantees.md): sends from one number are spaced so a burst doesn't
//! trip the provider's throttling (WhatsApp Cloud API: 80 messages/s per business number,
//! error 130429 above it, developers.facebook.com/documentation/business-messaging/whatsapp/throughput,
//! updated 2026-05-21, read 2026-12-05; SMS: the number's MPS, e.g. 1 for a US long code).
//!
//! The rule is a generic cell rate algorithm: each sender has a theoretical next send time
//! (`next`); a send may go `tolerance` ahead of it, so up to `burst` go at once from an idle
//! sender, and the interval is chosen so that no second ever holds more than `per_second`
//! sends. Pure: the caller supplies the clock and sleeps. The store keeps `next` for every
//! worker instance (`Deliveries::reserve_send_slot`); `Pacer` keeps it in one process.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How one sender is paced: the spacing between sends, and how far ahead of it a send may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendPace {
    pub interval: Duration,
    pub tolerance: Duration,
}

impl SendPace {
    /// At most `per_second` sends in any second, of which up to `burst` at once. A rate of 0
    /// (or less) doesn't pace. `burst` is capped by the rate (at least 1: no burst).
    pub fn new(per_second: f64, burst: u32) -> Self {
        if per_second.is_nan() || per_second <= 0.0 {
            return Self { interval: Duration::ZERO, tolerance: Duration::ZERO };
        }
        // A burst of b takes b - 1 sends ahead of the spacing: spacing them at
        // per_second - (b - 1) keeps any second at per_second.
        let burst = f64::from(burst.max(1)).min(per_second.floor().max(1.0));
        let spaced_rate = per_second - (burst - 1.0);
        // Rounded up to the microsecond the store keeps: never a hair faster than the rate.
        let interval = Duration::from_micros((1_000_000.0 / spaced_rate).ceil() as u64);
        Self { interval, tolerance: interval * (burst as u32 - 1) }
    }

    pub fn interval_us(&self) -> i64 {
        i64::try_from(self.interval.as_micros()).unwrap_or(i64::MAX)
    }

    pub fn tolerance_us(&self) -> i64 {
        i64::try_from(self.tolerance.as_micros()).unwrap_or(i64::MAX)
    }
}

/// A reserved send: when it may go, and the sender's `next` after it (what giving it back
/// checks: nobody reserved since).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotReservation {
    pub at_us: i64,
    pub next_us: i64,
}

/// The rule, in microseconds: a sender whose `next` is `next_us` (none: never sent) asks at
/// `now_us`.
pub fn reserve(next_us: Option<i64>, now_us: i64, pace: SendPace) -> SlotReservation {
    match next_us {
        Some(next) if next >= now_us => SlotReservation {
            at_us: now_us.max(next.saturating_sub(pace.tolerance_us())),
            next_us: next.saturating_add(pace.interval_us()),
        },
        // Idle (or new): now, and the spacing counts from now.
        _ => SlotReservation { at_us: now_us, next_us: now_us.saturating_add(pace.interval_us()) },
    }
}

/// What asking for a slot within a time gave: the slot, or when the sender is next free
/// (nothing reserved).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotOffer {
    Reserved(SlotReservation),
    Busy { free_at_us: i64 },
}

/// The rule for a slot wanted within `within_us` of `now_us`: reserved as `reserve` would,
/// unless it would start later than that.
pub fn offer(next_us: Option<i64>, now_us: i64, within_us: i64, pace: SendPace) -> SlotOffer {
    let reservation = reserve(next_us, now_us, pace);
    if reservation.at_us > now_us.saturating_add(within_us) {
        SlotOffer::Busy { free_at_us: reservation.at_us }
    } else {
        SlotOffer::Reserved(reservation)
    }
}

/// `next` once an unused reservation is given back (only if it is still the last one).
pub fn given_back(reservation: SlotReservation, pace: SendPace) -> i64 {
    reservation.next_us.saturating_sub(pace.interval_us())
}

/// One process's pacer: the same rule, when the store can't answer.
#[derive(Debug, Default)]
pub struct Pacer {
    /// When each sender's next send is due, in microseconds after `origin`.
    next: HashMap<String, i64>,
    origin: Option<Instant>,
}

impl Pacer {
    /// Reserves `sender`'s next slot and returns when it starts (`now` if the sender is idle).
    pub fn reserve(&mut self, sender: &str, pace: SendPace, now: Instant) -> Instant {
        let origin = *self.origin.get_or_insert(now);
        let now_us = i64::try_from(now.saturating_duration_since(origin).as_micros()).unwrap_or(i64::MAX);
        let reservation = reserve(self.next.get(sender).copied(), now_us, pace);
        self.next.insert(sender.to_owned(), reservation.next_us);
        origin + Duration::from_micros(u64::try_from(reservation.at_us).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_slot_is_offered_only_within_the_wait_asked_for() {
        let pace = SendPace::new(1.0, 1);
        assert_eq!(offer(None, 0, 0, pace), SlotOffer::Reserved(SlotReservation { at_us: 0, next_us: 1_000_000 }));
        assert_eq!(offer(Some(1_000_000), 0, 250_000, pace), SlotOffer::Busy { free_at_us: 1_000_000 });
        let soon = offer(Some(1_000_000), 800_000, 250_000, pace);
        assert_eq!(soon, SlotOffer::Reserved(SlotReservation { at_us: 1_000_000, next_us: 2_000_000 }));
    }

    proptest! {
        #[test]
        fn an_offer_is_the_reservation_or_says_when_it_would_start(
            next in proptest::option::of(0i64..10_000_000), now in 0i64..10_000_000, within in 0i64..5_000_000,
        ) {
            let pace = SendPace::new(0.5, 1);
            let reservation = reserve(next, now, pace);
            match offer(next, now, within, pace) {
                SlotOffer::Reserved(r) => prop_assert!(r == reservation && r.at_us <= now + within),
                SlotOffer::Busy { free_at_us } => prop_assert!(free_at_us == reservation.at_us && free_at_us > now + within),
            }
        }
    }

    #[test]
    fn spaces_one_senders_burst_and_leaves_others_alone() {
        let mut pacer = Pacer::default();
        let t0 = Instant::now();
        let no_burst = SendPace::new(2.0, 1);
        let slots: Vec<Duration> = (0..4).map(|_| pacer.reserve("+14155550100", no_burst, t0) - t0).collect();
        assert_eq!(slots, [0, 500, 1000, 1500].map(Duration::from_millis));
        assert_eq!(pacer.reserve("+14155550199", no_burst, t0), t0, "another number is not held up");
        // After a pause the sender is idle again.
        let later = t0 + Duration::from_secs(10);
        assert_eq!(pacer.reserve("+14155550100", no_burst, later), later);
    }

    #[test]
    fn an_idle_sender_sends_a_burst_at_once_then_keeps_to_the_rate() {
        // 80 a second, 10 at once: the 10 go now, the rest 1/71 s apart.
        let pace = SendPace::new(80.0, 10);
        let mut next = None;
        let slots: Vec<i64> = (0..12)
            .map(|_| {
                let r = reserve(next, 0, pace);
                next = Some(r.next_us);
                r.at_us
            })
            .collect();
        assert_eq!(&slots[..10], &[0; 10]);
        assert_eq!(slots[10], pace.interval_us() * 10 - pace.tolerance_us());
        assert!(slots[11] - slots[10] == pace.interval_us());
        assert_eq!(pace.interval, Duration::from_micros(14_085), "1/71 s, rounded up");
    }

    #[test]
    fn the_burst_is_capped_by_the_rate_and_no_rate_means_no_pacing() {
        assert_eq!(SendPace::new(1.0, 10), SendPace::new(1.0, 1), "one a second: no burst");
        assert_eq!(SendPace::new(0.1, 10).interval, Duration::from_secs(10));
        assert_eq!(SendPace::new(80.0, 1).interval, Duration::from_micros(12_500));
        assert_eq!(SendPace::new(0.0, 10).interval, Duration::ZERO);
        assert_eq!(SendPace::new(f64::NAN, 10).interval, Duration::ZERO);
    }

    #[test]
    fn a_reservation_given_back_restores_the_senders_next() {
        let pace = SendPace::new(2.0, 1);
        let first = reserve(None, 0, pace);
        let second = reserve(Some(first.next_us), 0, pace);
        assert_eq!(given_back(second, pace), first.next_us);
        assert_eq!(reserve(Some(given_back(second, pace)), 0, pace), second, "the same slot again");
    }

    proptest! {
        #[test]
        fn never_more_than_the_rate_in_any_second_and_never_early(
            rate in 1u32..100,
            burst in 1u32..20,
            arrivals in proptest::collection::vec(0i64..3_000_000, 1..200),
        ) {
            let pace = SendPace::new(f64::from(rate), burst);
            let mut sorted = arrivals.clone();
            sorted.sort();
            let mut next = None;
            let mut slots = Vec::new();
            for now in &sorted {
                let r = reserve(next, *now, pace);
                next = Some(r.next_us);
                prop_assert!(r.at_us >= *now, "never before it was asked for");
                slots.push(r.at_us);
            }
            slots.sort();
            // Any half-open second [s, s + 1 s) starting at a send holds at most `rate` sends.
            for (i, start) in slots.iter().enumerate() {
                let in_second = slots[i..].iter().take_while(|s| **s < start + 1_000_000).count();
                prop_assert!(in_second <= rate as usize, "{in_second} sends in a second at {rate}/s, burst {burst}");
            }
        }

        #[test]
        fn the_process_pacer_keeps_the_same_rule(rate in 1u32..100, n in 1usize..40) {
            let pace = SendPace::new(f64::from(rate), 5);
            let mut pacer = Pacer::default();
            let t0 = Instant::now();
            let mut next = None;
            for _ in 0..n {
                let r = reserve(next, 0, pace);
                next = Some(r.next_us);
                let got = pacer.reserve("s", pace, t0) - t0;
                prop_assert_eq!(i64::try_from(got.as_micros()).unwrap(), r.at_us);
            }
        }
    }
}
