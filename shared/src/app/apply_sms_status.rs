//! An SMS status callback (docs/using.md): the leg's status moves forward only, and the agent who
//! wrote the reply sees the result on their WhatsApp message (✅, or ❌ with the reason).

use jiff::Timestamp;

use crate::app::deliver_job::template_fallback;
use crate::app::receive_sms::enqueue_or_leave_to_outbox;
use crate::app::retry_budget::RetryBudget;
use crate::domain::{ConversationKey, DeliveryStatus, E164, Job, JobId, Lines, ReportedStatus, notices};
use crate::ports::{DeliveryQueue, LegAddress, Routing, StatusChange, StatusLog, StoreError};

/// What a status callback says, provider-neutral.
#[derive(Debug, Clone)]
pub struct SmsStatusReport {
    /// The provider's id of the SMS.
    pub sid: String,
    pub status: ReportedStatus,
    pub error_code: Option<i64>,
    /// The leg, when the callback URL names it (the bridge's own `?job=`).
    pub job: Option<JobId>,
    /// Sender (the line's number) and recipient (the customer).
    pub from: Option<E164>,
    pub to: Option<E164>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusHandled {
    Advanced {
        status: DeliveryStatus,
        notices: usize,
    },
    Unchanged {
        current: Option<DeliveryStatus>,
    },
    /// A status that says nothing about delivery (`receiving`...).
    Ignored,
    /// No leg for this SMS: acknowledged, nothing changed.
    Unknown,
}

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub async fn apply_sms_status<S: Routing + StatusLog, Q: DeliveryQueue>(
    store: &S,
    queue: &Q,
    lines: &Lines,
    report: &SmsStatusReport,
    now: Timestamp,
    budget: &RetryBudget,
) -> Result<StatusHandled, StatusError> {
    let Some(status) = report.status.tracked() else {
        return Ok(StatusHandled::Ignored);
    };
    // Every store call is retried within the budget: Twilio doesn't send a status callback
    // again, so an error answered here loses the agent's ✅ or ❌.
    let Some(address) = locate(store, lines, report, budget).await? else {
        return Ok(StatusHandled::Unknown);
    };
    let read_leg = || store.outbound_leg(&address.conversation, &address.message_id, &address.job_id);
    let Some(leg) = budget.retry(read_leg, StoreError::is_transient).await? else {
        return Ok(StatusHandled::Unknown);
    };
    // A line gone from the configuration since: the default receipt.
    let receipts = lines.by_id(&address.conversation.line).map(|line| line.delivery_receipts).unwrap_or_default();
    let notices_after = |previous| -> Vec<Job> {
        notices::delivery_result(status, previous, report.error_code, &leg.agent_wamid, receipts)
            .into_iter()
            .enumerate()
            .map(|(i, text)| {
                let key = format!("{}:{}:{i}", address.job_id.as_str(), status.as_str());
                let handle = leg.handle.as_ref().map(|h| h.to_string());
                let fallback = template_fallback(handle.as_deref(), &address.conversation.customer, &text, &leg.body);
                Job::notice(key, address.conversation.line.clone(), leg.agent.clone(), text)
                    .with_template_fallback(fallback)
            })
            .collect()
    };
    let notices = notices_after(leg.status);
    // The sid is kept on a leg without one: a report on a send whose answer the worker
    // lost tells it the SMS went out (the `?job=` in the callback URL names the leg).
    let advance = || store.advance_leg_status(&address, status, report.error_code, Some(&report.sid), &notices, now);
    let change = if status.worth_recording(leg.status, leg.send_recorded) {
        budget.retry(advance, StoreError::is_transient).await?
    } else if status.advances(leg.status) {
        // `sent` on a send the worker recorded: no write (issue 17).
        StatusChange::NothingNew
    } else {
        StatusChange::Unchanged { current: leg.status }
    };
    match change {
        StatusChange::Advanced => {
            // Recorded with the status, in its outbox entry: the sweep sends what this can't.
            enqueue_or_leave_to_outbox(queue, &notices, budget).await;
            Ok(StatusHandled::Advanced { status, notices: notices.len() })
        }
        StatusChange::Unchanged { current } => {
            // A replay of the report that advanced it, whose notices may never have been
            // enqueued: offer the ones that report recorded and nobody sent (same ids).
            if current == Some(status) {
                let recorded = notices_after(None);
                let unsent = budget.retry(|| store.unsent_jobs(&recorded), StoreError::is_transient).await?;
                enqueue_or_leave_to_outbox(queue, &unsent, budget).await;
            }
            Ok(StatusHandled::Unchanged { current })
        }
        StatusChange::NothingNew => Ok(StatusHandled::Unchanged { current: leg.status }),
        StatusChange::Missing => Ok(StatusHandled::Unknown),
    }
}

/// The leg from the callback URL (race-free: it is known before the SMS is sent), else from
/// the provider's id recorded after the send.
async fn locate<S: Routing>(
    store: &S,
    lines: &Lines,
    report: &SmsStatusReport,
    budget: &RetryBudget,
) -> Result<Option<LegAddress>, StoreError> {
    if let (Some(job), Some(from), Some(to)) = (&report.job, &report.from, &report.to)
        && let (Some(line), Some(message_id)) = (lines.by_sms_number(from), job.message_id())
    {
        let conversation = ConversationKey { line: line.id.clone(), customer: to.clone() };
        return Ok(Some(LegAddress { conversation, message_id, job_id: job.clone() }));
    }
    let sms = budget.retry(|| store.find_sent_sms(&report.sid), StoreError::is_transient).await?;
    Ok(sms.map(|sms| LegAddress { conversation: sms.conversation, message_id: sms.message_id, job_id: sms.job_id }))
}
