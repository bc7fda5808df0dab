//! Send slots per sender, shared by every worker instance (`Deliveries::reserve_send_slot`,
//! `domain::pacing`): one `PACE#<sender>` item holds the sender's `next` send time, in
//! microseconds, and each reservation moves it on by one interval with a conditional update;
//! the slot itself (up to the pace's tolerance ahead of `next`) is the domain rule's.

use std::time::Duration;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};
use jiff::Timestamp;

use super::attrs::*;
use super::{DynamoStore, unavailable};
use crate::domain::pacing::{self, SendPace, SlotOffer, SlotReservation};
use crate::ports::StoreError;

/// An idle sender's item only needs to outlive a burst.
const PACE_TTL: Duration = Duration::from_secs(24 * 3600);

/// Reservations that lost a race to another instance before giving up (each loss means
/// the other one moved on: the next try sees its slot).
const MAX_TRIES: usize = 8;

impl DynamoStore {
    pub(super) async fn reserve_slot(
        &self,
        sender: &str,
        pace: SendPace,
        now: Timestamp,
    ) -> Result<SlotReservation, StoreError> {
        // Any wait at all: the next slot, however far.
        match self.offer_slot(sender, pace, now, Duration::MAX).await? {
            SlotOffer::Reserved(reservation) => Ok(reservation),
            SlotOffer::Busy { .. } => Err(StoreError::Conflict),
        }
    }

    /// The sender's next slot if it starts within `within`: a busy sender's is the one after
    /// the last reserved, an idle one's is now (each a conditional update, tried again when
    /// another instance got there first); a slot further off is answered with the time it
    /// starts, nothing written.
    pub(super) async fn offer_slot(
        &self,
        sender: &str,
        pace: SendPace,
        now: Timestamp,
        within: Duration,
    ) -> Result<SlotOffer, StoreError> {
        let key = key(format!("PACE#{sender}"), "PACE");
        let (now_us, step) = (now.as_microsecond(), pace.interval_us());
        let within_us = i64::try_from(within.as_micros()).unwrap_or(i64::MAX);
        // The slot starts `tolerance` before `next`: it is within reach while `next` is.
        let latest = now_us.saturating_add(within_us).saturating_add(pace.tolerance_us());
        let expires = expires(now, PACE_TTL);
        for _ in 0..MAX_TRIES {
            let busy = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key.clone()))
                .update_expression("SET next_us = next_us + :step, expires_at = :expires")
                .condition_expression("next_us >= :now AND next_us <= :latest")
                .expression_attribute_values(":step", n(step))
                .expression_attribute_values(":now", n(now_us))
                .expression_attribute_values(":latest", n(latest))
                .expression_attribute_values(":expires", expires.clone())
                .return_values(ReturnValue::UpdatedNew)
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .send()
                .await;
            match busy {
                Ok(out) => {
                    let Some(next) = out.attributes.as_ref().and_then(|a| opt_n(a, "next_us")) else {
                        return Err(StoreError::Corrupt("a send slot without next_us".into()));
                    };
                    return Ok(SlotOffer::Reserved(pacing::reserve(Some(next.saturating_sub(step)), now_us, pace)));
                }
                Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                    let next = match e.into_err() {
                        UpdateItemError::ConditionalCheckFailedException(c) => {
                            c.item.as_ref().and_then(|item| opt_n(item, "next_us"))
                        }
                        _ => None,
                    };
                    if let Some(next) = next
                        && next > latest
                    {
                        return Ok(pacing::offer(Some(next), now_us, within_us, pace));
                    }
                }
                Err(e) => return Err(unavailable(e)),
            }
            let idle = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key.clone()))
                .update_expression("SET next_us = :next, expires_at = :expires")
                .condition_expression("attribute_not_exists(next_us) OR next_us < :now")
                .expression_attribute_values(":next", n(now_us.saturating_add(step)))
                .expression_attribute_values(":now", n(now_us))
                .expression_attribute_values(":expires", expires.clone())
                .send()
                .await;
            match idle {
                Ok(_) => return Ok(SlotOffer::Reserved(pacing::reserve(None, now_us, pace))),
                Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {}
                Err(e) => return Err(unavailable(e)),
            }
        }
        Err(StoreError::Conflict)
    }

    pub(super) async fn give_back_slot(
        &self,
        sender: &str,
        slot: SlotReservation,
        pace: SendPace,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("PACE#{sender}"), "PACE")))
            .update_expression("SET next_us = :slot")
            .condition_expression("next_us = :after")
            .expression_attribute_values(":slot", n(pacing::given_back(slot, pace)))
            .expression_attribute_values(":after", n(slot.next_us))
            .send()
            .await;
        match result {
            // Someone reserved after it: the slot stays spent.
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }
}
