//! Deliveries: each job's leg claimed, recorded sent or failed, or given back, with the
//! conditions of the adapter's writes (`dynamodb/legs.rs`), so a job is sent at most once
//! however often the queue delivers it (SPEC §9).

use jiff::Timestamp;
use shared::domain::delivery::LegDoubt;
use shared::domain::pacing::{self, SendPace, SlotOffer, SlotReservation};
use shared::domain::{DeliveryStatus, Job, JobId, JobPayload, LegState, LineId, WaId, Wamid};
use shared::ports::{Claim, Deliveries, ForwardedCopy, ForwardedVia, LegFailure, SentSmsRecord, StoreError, ThreadLeg};

use super::records::{Leg, from_ms};
use super::transaction::Conditions;
use super::{MemoryStore, State, StoreOp};

impl Deliveries for MemoryStore {
    async fn reserve_send_slot(
        &self,
        sender: &str,
        pace: SendPace,
        now: Timestamp,
    ) -> Result<SlotReservation, StoreError> {
        self.run(StoreOp::ReserveSendSlot, |state| {
            let next = state.send_slots.get(sender).copied();
            let reservation = pacing::reserve(next, now.as_microsecond(), pace);
            state.send_slots.insert(sender.to_owned(), reservation.next_us);
            Ok(reservation)
        })
    }

    async fn offer_send_slot(
        &self,
        sender: &str,
        pace: SendPace,
        now: Timestamp,
        within: std::time::Duration,
    ) -> Result<SlotOffer, StoreError> {
        self.run(StoreOp::ReserveSendSlot, |state| {
            let within_us = i64::try_from(within.as_micros()).unwrap_or(i64::MAX);
            let offer = pacing::offer(state.send_slots.get(sender).copied(), now.as_microsecond(), within_us, pace);
            if let SlotOffer::Reserved(reservation) = offer {
                state.send_slots.insert(sender.to_owned(), reservation.next_us);
            }
            Ok(offer)
        })
    }

    async fn give_back_send_slot(&self, sender: &str, slot: SlotReservation, pace: SendPace) -> Result<(), StoreError> {
        self.run(StoreOp::GiveBackSendSlot, |state| {
            // The adapter's condition: only if nobody reserved after it.
            if let Some(next) = state.send_slots.get_mut(sender)
                && *next == slot.next_us
            {
                *next = pacing::given_back(slot, pace);
            }
            Ok(())
        })
    }

    async fn claim_job(
        &self,
        job: &Job,
        now: Timestamp,
        lease_until: Timestamp,
        owner: &str,
    ) -> Result<Claim, StoreError> {
        self.run(StoreOp::ClaimJob, |state| Ok(state.claim_job(job, now, lease_until, owner)))
    }

    async fn record_forwarded(
        &self,
        job: &Job,
        wamid: &Wamid,
        via: ForwardedVia,
        _now: Timestamp,
    ) -> Result<(), StoreError> {
        self.run(StoreOp::RecordForwarded, |state| {
            let Some(copy) = ForwardedCopy::of_job(job) else {
                return Err(StoreError::Corrupt(format!("{} is not a forward", job.job_id)));
            };
            if via == ForwardedVia::Digest {
                // The digest's own record routes replies, as in the adapter.
                if let Some(leg) = state.leg_mut(job) {
                    leg.mark_sent(wamid.as_str());
                }
                return Ok(());
            }
            // The reply-routing record (never over a digest's), then the leg; a leg erased
            // meanwhile takes the record away again, as in the adapter.
            if !state.copies.get(wamid).is_some_and(ForwardedCopy::is_digest) {
                state.copies.insert(wamid.clone(), copy);
            }
            match state.leg_mut(job) {
                Some(leg) => leg.mark_sent(wamid.as_str()),
                None => {
                    state.copies.remove(wamid);
                }
            }
            Ok(())
        })
    }

    async fn record_digest_sent(&self, jobs: &[&Job], wamid: &Wamid, _now: Timestamp) -> Result<(), StoreError> {
        self.run(StoreOp::RecordDigestSent, |state| {
            let Some(route) = ForwardedCopy::digest_of(jobs)? else { return Ok(()) };
            // The record listing every part, then the legs; a part erased meanwhile takes
            // the record away again, as in the adapter.
            state.copies.insert(wamid.clone(), route);
            let mut erased = false;
            for job in jobs {
                match state.leg_mut(job) {
                    Some(leg) => leg.mark_sent(wamid.as_str()),
                    None => erased = true,
                }
            }
            if erased {
                state.copies.remove(wamid);
            }
            Ok(())
        })
    }

    async fn park_copy(&self, line: &LineId, agent: &WaId, job: &Job, now: Timestamp) -> Result<(), StoreError> {
        self.run(StoreOp::ParkCopy, |state| {
            let parked = state.parked.entry((line.clone(), agent.clone())).or_default();
            // One item per job, as in the adapter: parking again replaces it, and its time.
            parked.retain(|(_, j)| j.job_id != job.job_id);
            parked.push((now.as_millisecond(), job.clone()));
            Ok(())
        })
    }

    async fn elect_digest_carrier(
        &self,
        line: &LineId,
        agent: &WaId,
        slot_at_us: i64,
        job: &JobId,
        _now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.run(StoreOp::ElectDigestCarrier, |state| {
            let carrier = state.digest_carriers.entry((line.clone(), agent.clone())).or_insert((i64::MIN, job.clone()));
            // The adapter's condition: none yet, an older slot's, or this very election again.
            let elected = carrier.0 < slot_at_us || (carrier.0 == slot_at_us && &carrier.1 == job);
            if elected {
                *carrier = (slot_at_us, job.clone());
            }
            Ok(elected)
        })
    }

    async fn parked_copies(&self, line: &LineId, agent: &WaId) -> Result<Vec<Job>, StoreError> {
        self.run(StoreOp::ParkedCopies, |state| {
            let mut parked = state.parked.get(&(line.clone(), agent.clone())).cloned().unwrap_or_default();
            // By time, then by job id: the adapter's query order, sorted by time.
            parked.sort_by(|(a, x), (b, y)| a.cmp(b).then_with(|| x.job_id.as_str().cmp(y.job_id.as_str())));
            Ok(parked.into_iter().map(|(_, job)| job).collect())
        })
    }

    async fn unpark_copies(&self, line: &LineId, agent: &WaId, jobs: &[JobId]) -> Result<(), StoreError> {
        self.run(StoreOp::UnparkCopies, |state| {
            if let Some(parked) = state.parked.get_mut(&(line.clone(), agent.clone())) {
                parked.retain(|(_, j)| !jobs.contains(&j.job_id));
            }
            Ok(())
        })
    }

    async fn record_sms_sent(
        &self,
        job: &Job,
        sid: &str,
        status: Option<DeliveryStatus>,
        _now: Timestamp,
    ) -> Result<(), StoreError> {
        self.run(StoreOp::RecordSmsSent, |state| {
            let JobPayload::SendSms(sms) = &job.payload else {
                return Err(StoreError::Corrupt(format!("{} is not an SMS", job.job_id)));
            };
            let record = SentSmsRecord {
                conversation: sms.conversation.clone(),
                message_id: sms.message_id.clone(),
                job_id: job.job_id.clone(),
                agent: sms.agent.clone(),
                agent_wamid: sms.agent_wamid.clone(),
            };
            state.sent_sms.insert(sid.to_owned(), record);
            let Some(leg) = state.leg_mut(job) else {
                // Erased while sending: the record goes again, as in the adapter.
                state.sent_sms.remove(sid);
                return Ok(());
            };
            leg.mark_sent(sid);
            // A status callback may have overtaken this write: keep what it recorded.
            if leg.status.is_none() {
                leg.status = status;
            }
            Ok(())
        })
    }

    async fn record_job_sent(&self, job: &Job, provider_id: &str, _now: Timestamp) -> Result<(), StoreError> {
        self.run(StoreOp::RecordJobSent, |state| {
            if let Some(leg) = state.leg_mut(job) {
                leg.mark_sent(provider_id);
            }
            Ok(())
        })
    }

    async fn record_job_failed(
        &self,
        job: &Job,
        failure: &LegFailure,
        notices: &[Job],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.run(StoreOp::RecordJobFailed, |state| {
            // same rule as dynamodb/legs.rs: the only condition is that the leg exists, so a
            // finished leg is marked failed too.
            if !state.check_leg_write(state.leg(job).is_some(), notices)? {
                return Ok(());
            }
            if let Some(leg) = state.leg_mut(job) {
                leg.give_back(LegState::Failed, failure);
                leg.uncertain_since_ms = None;
            }
            state.record_notices(notices, now);
            Ok(())
        })
    }

    async fn release_job(&self, job: &Job, failure: &LegFailure, _now: Timestamp) -> Result<(), StoreError> {
        self.run(StoreOp::ReleaseJob, |state| {
            // same rule as dynamodb/legs.rs: only a claimed leg (`sending`) can be given back,
            // whoever holds it; anything else is left as it is.
            if let Some(leg) = state.leg_mut(job).filter(|leg| leg.state == LegState::Sending) {
                leg.give_back(LegState::Retry, failure);
                leg.uncertain_since_ms = None;
            }
            Ok(())
        })
    }

    async fn hand_back_untried(&self, job: &Job, _now: Timestamp) -> Result<(), StoreError> {
        self.run(StoreOp::HandBackUntried, |state| {
            // same rule as dynamodb/legs.rs: a claimed leg goes back to `retry`, its claim
            // not counted; its last error stays.
            if let Some(leg) = state.leg_mut(job).filter(|leg| leg.state == LegState::Sending && leg.attempts > 0) {
                leg.state = LegState::Retry;
                leg.attempts -= 1;
                leg.lease_until_ms = None;
                leg.uncertain_since_ms = None;
            }
            Ok(())
        })
    }

    async fn mark_job_uncertain(
        &self,
        job: &Job,
        failure: &LegFailure,
        since: Timestamp,
        _now: Timestamp,
    ) -> Result<(), StoreError> {
        self.run(StoreOp::MarkJobUncertain, |state| {
            // same rule as dynamodb/legs.rs: only a claimed leg (`sending`) can be given back.
            if let Some(leg) = state.leg_mut(job).filter(|leg| leg.state == LegState::Sending) {
                leg.give_back(LegState::Uncertain, failure);
                leg.uncertain_since_ms = Some(since.as_millisecond());
            }
            Ok(())
        })
    }

    async fn job_leg(&self, job: &Job) -> Result<Option<ThreadLeg>, StoreError> {
        self.run(StoreOp::JobLeg, |state| Ok(state.leg(job).map(|leg| leg.thread_leg(&job.job_id))))
    }
}

impl State {
    fn claim_job(&mut self, job: &Job, now: Timestamp, lease_until: Timestamp, owner: &str) -> Claim {
        if let JobPayload::AutoReply(reply) = &job.payload {
            // same rule as dynamodb/legs.rs: an automated reply's leg is created when first
            // claimed (its id is the reply's "at most once" key), not with its message, and
            // only while its conversation exists (not after an erasure).
            if !self.conversations.contains_key(&reply.conversation) {
                return Claim::Missing;
            }
            self.standalone_legs.entry(job.job_id.clone()).or_insert_with(|| Leg::new(job));
        }
        let now_ms = now.as_millisecond();
        let Some(leg) = self.leg_mut(job) else {
            return Claim::Missing;
        };
        // same rule as dynamodb/legs.rs: free to take when never tried, given back, uncertain
        // (the claimer finds out before sending), held by a lease that ran out, or by this
        // owner's own.
        let free = match leg.state {
            LegState::Queued | LegState::Retry | LegState::Uncertain => true,
            LegState::Sending => {
                leg.lease_until_ms.is_some_and(|until| until < now_ms) || leg.lease_owner.as_deref() == Some(owner)
            }
            LegState::Sent | LegState::Failed => false,
        };
        if !free {
            return match leg.state {
                LegState::Sending => Claim::Busy { until: leg.lease_until_ms.and_then(from_ms).unwrap_or(now) },
                state => Claim::AlreadyDone { state },
            };
        }
        let before = leg.clone();
        leg.state = LegState::Sending;
        leg.lease_until_ms = Some(lease_until.as_millisecond());
        leg.attempts = leg.attempts.saturating_add(1);
        leg.claimed_at_ms = Some(now_ms);
        leg.lease_owner = Some(owner.to_owned());
        // `uncertain_since_ms` stays through the claim, as in the adapter.
        claimed_from(&before, owner, now)
    }

    /// Checks a leg's conditional write made with notices' items and their outbox entry, all
    /// or nothing (`dynamodb/legs.rs`'s `write_leg_with`): `Ok(false)` when the leg's
    /// condition fails (nothing is written, notices included), an error when a notice's item
    /// exists already.
    pub(super) fn check_leg_write(&self, leg_condition_holds: bool, notices: &[Job]) -> Result<bool, StoreError> {
        let mut conditions = Conditions::default();
        conditions.push(!leg_condition_holds);
        for notice in notices {
            conditions.push(self.has_standalone(notice));
        }
        if conditions.failed(0) {
            return Ok(false);
        }
        if conditions.any_failed() {
            return Err(conditions.cancelled());
        }
        Ok(true)
    }

    /// Notices' own items and the outbox entry that offers them to the queue.
    pub(super) fn record_notices(&mut self, notices: &[Job], now: Timestamp) {
        self.put_standalone(notices);
        self.record_outbox(notices, now);
    }
}

/// What a successful claim took over, from the leg as it was before (`dynamodb/legs.rs`'s
/// `claimed_from`).
fn claimed_from(before: &Leg, owner: &str, now: Timestamp) -> Claim {
    let attempts = before.attempts;
    // This very claim, sent again after its answer was lost: nothing happened in between, so
    // nothing can have been sent. Compared in milliseconds, what the store keeps.
    let same_claim = before.state == LegState::Sending
        && before.lease_owner.as_deref() == Some(owner)
        && before.claimed_at_ms == Some(now.as_millisecond());
    let doubt = LegDoubt {
        state: Some(before.state),
        same_claim,
        uncertain_since: before.uncertain_since_ms.and_then(from_ms),
        claimed_at: before.claimed_at_ms.and_then(from_ms),
    };
    Claim::took_over(attempts, before.provider_id.clone(), doubt.assess())
}
