//! Send slots per sender, shared by every worker instance (`Deliveries::reserve_send_slot`,
//! `domain::pacing`): one `PACE#<sender>` item holds when the sender may send next, in
//! microseconds, and each reservation moves it on by one interval with a conditional update.

use std::time::Duration;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::ReturnValue;
use jiff::Timestamp;

use super::attrs::*;
use super::{DynamoStore, unavailable};
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
        interval: Duration,
        now: Timestamp,
    ) -> Result<Timestamp, StoreError> {
        let key = key(format!("PACE#{sender}"), "PACE");
        let (now_us, step) = (now.as_microsecond(), i64::try_from(interval.as_micros()).unwrap_or(i64::MAX));
        let expires = expires(now, PACE_TTL);
        for _ in 0..MAX_TRIES {
            // A busy sender: the slot after the last one reserved.
            let busy = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key.clone()))
                .update_expression("SET next_us = next_us + :step, expires_at = :expires")
                .condition_expression("next_us >= :now")
                .expression_attribute_values(":step", n(step))
                .expression_attribute_values(":now", n(now_us))
                .expression_attribute_values(":expires", expires.clone())
                .return_values(ReturnValue::UpdatedNew)
                .send()
                .await;
            match busy {
                Ok(out) => {
                    let Some(next) = out.attributes.as_ref().and_then(|a| opt_n(a, "next_us")) else {
                        return Err(StoreError::Corrupt("a send slot without next_us".into()));
                    };
                    return slot(next.saturating_sub(step));
                }
                Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {}
                Err(e) => return Err(unavailable(e)),
            }
            // An idle sender (or a new one): the slot is now.
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
                Ok(_) => return Ok(now),
                // Another instance reserved meanwhile: take the slot after its one.
                Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {}
                Err(e) => return Err(unavailable(e)),
            }
        }
        Err(StoreError::Conflict)
    }
}

impl DynamoStore {
    pub(super) async fn give_back_slot(
        &self,
        sender: &str,
        slot: Timestamp,
        interval: Duration,
    ) -> Result<(), StoreError> {
        let step = i64::try_from(interval.as_micros()).unwrap_or(i64::MAX);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("PACE#{sender}"), "PACE")))
            .update_expression("SET next_us = :slot")
            .condition_expression("next_us = :after")
            .expression_attribute_values(":slot", n(slot.as_microsecond()))
            .expression_attribute_values(":after", n(slot.as_microsecond().saturating_add(step)))
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

fn slot(us: i64) -> Result<Timestamp, StoreError> {
    Timestamp::from_microsecond(us).map_err(|e| StoreError::Corrupt(e.to_string()))
}
