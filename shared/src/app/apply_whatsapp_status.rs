//! A WhatsApp status report on something the line sent (docs/using.md): the leg's status
//! moves forward, a send whose answer the worker lost learns its wamid, and a copy WhatsApp
//! refused late with 131047 is forwarded again as the template.

use std::collections::HashMap;

use jiff::Timestamp;

use crate::app::receive_whatsapp::HandleError;
use crate::app::retry_budget::RetryBudget;
use crate::domain::{
    ConversationKey, DeliveryStatus, ErrorClass, ForwardToAgent, Handle, Job, JobKind, JobPayload, Line, SendTracking,
    WaId, Wamid, WhatsAppStatusReport,
};
use crate::ports::{
    Agents, Conversations, DeliveryQueue, ForwardedCopy, LegAddress, LegRef, Routing, StatusChange, StatusLog,
    StoreError,
};

/// What a WhatsApp status report changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusHandled {
    pub change: StatusChange,
    /// Copies forwarded again as the template (an asynchronous 131047).
    pub resent_as_template: usize,
    /// Legs that learnt their send went out (the report named them; the worker had lost
    /// the send's answer, or hadn't recorded it yet).
    pub noted: usize,
}

/// A delivery report on something the line sent. Only forwarded copies are tracked; reports
/// on the bridge's own notices are acknowledged and dropped.
///
/// WhatsApp accepts a free-form copy and reports only later, as a `failed` status with
/// 131047, that the agent's 24 h window had closed. Then the copy is forwarded again as the
/// template (docs/using.md, "nothing is lost"): the agent's window is marked closed, each message
/// the copy carried gets a template leg, and those jobs are enqueued. A replayed report
/// offers the same jobs again; the worker sends each once.
///
/// A store error is tried again within `budget` (each step is safe to repeat: a status that
/// already advanced changes nothing, and the re-sends keep their job ids).
pub async fn apply_whatsapp_status<S, Q>(
    store: &S,
    queue: &Q,
    line: &Line,
    report: &WhatsAppStatusReport,
    now: Timestamp,
    budget: &RetryBudget,
) -> Result<Option<StatusHandled>, HandleError>
where
    S: Routing + StatusLog + Agents + Conversations,
    Q: DeliveryQueue,
{
    let Some(status) = report.status.tracked() else {
        return Ok(None);
    };
    let transient = |e: &HandleError| matches!(e, HandleError::Store(e) if e.is_transient());
    budget.retry(|| apply_once(store, queue, line, report, status, now), transient).await
}

async fn apply_once<S, Q>(
    store: &S,
    queue: &Q,
    line: &Line,
    report: &WhatsAppStatusReport,
    status: DeliveryStatus,
    now: Timestamp,
) -> Result<Option<StatusHandled>, HandleError>
where
    S: Routing + StatusLog + Agents + Conversations,
    Q: DeliveryQueue,
{
    // The bridge's own notices (no handle, jobs of their own) never have a copy record:
    // their reports skip the lookup (issue 17: a status that can change nothing reads less).
    let notice_only = report.tracking.as_ref().is_some_and(|t| t.is_notices_only());
    let mut copy = if notice_only { None } else { store.find_forwarded_copy(&report.wamid).await? };
    // A failure reported before the worker recorded the copy (Meta can answer a send with
    // `failed` within milliseconds, 131047 above all): the tracking names its legs, so they
    // learn the send as any lost answer would, and the failure is then handled as the
    // copy's. Acknowledged unhandled, its template re-send would be lost.
    if copy.is_none()
        && status == DeliveryStatus::Failed
        && !notice_only
        && let Some(tracking) = &report.tracking
        && note_tracked_send(store, line, tracking, report, now).await? > 0
    {
        copy = store.find_forwarded_copy(&report.wamid).await?;
    }
    let Some(copy) = copy else {
        // Not recorded (yet): a notice, or a send whose answer the worker never got. If the
        // send carried the bridge's tracking, its legs learn that it went out.
        if status != DeliveryStatus::Failed
            && let Some(tracking) = &report.tracking
        {
            let noted = note_tracked_send(store, line, tracking, report, now).await?;
            if noted > 0 {
                return Ok(Some(StatusHandled { change: StatusChange::Missing, resent_as_template: 0, noted }));
            }
        }
        return Ok(None);
    };
    if copy.conversation.line != line.id {
        // Another line's copy: not this number's to report on.
        return Ok(None);
    }
    // A copy's route exists once its send is recorded: `sent` says nothing new (issue 17:
    // no write; the copy's `delivered`, `read` or `failed` still is).
    if status.only_says_taken() {
        return Ok(Some(StatusHandled { change: StatusChange::NothingNew, resent_as_template: 0, noted: 0 }));
    }
    // A digest's status is each of its copies' (docs/using.md, "A busy line: digests").
    let mut change = StatusChange::NothingNew;
    for (i, leg) in copy.legs().iter().enumerate() {
        let changed =
            store.advance_leg_status(leg, status, report.error_code, Some(report.wamid.as_str()), &[], now).await?;
        if i == 0 {
            change = changed;
        }
    }
    let failed_now = matches!(change, StatusChange::Advanced)
        || matches!(change, StatusChange::Unchanged { current: Some(DeliveryStatus::Failed) });
    let window_closed = status == DeliveryStatus::Failed
        && report.error_code.and_then(ErrorClass::of_code) == Some(ErrorClass::Fallback);
    let mut resent_as_template = 0;
    if failed_now && window_closed {
        store.mark_window_closed(&line.id, &copy.agent, now).await?;
        let mut jobs = Vec::new();
        for conversation in copy.conversations() {
            jobs.extend(template_resends(store, line, &conversation, &copy.agent, &report.wamid).await?);
        }
        queue.enqueue(&jobs).await?;
        resent_as_template = jobs.len();
    }
    Ok(Some(StatusHandled { change, resent_as_template, noted: 0 }))
}

/// The legs a tracked send delivered (`SendTracking`) learn its wamid: each unfinished one
/// keeps it, and its next delivery records the send instead of sending again. Returns how
/// many legs took it.
async fn note_tracked_send<S: Routing + StatusLog>(
    store: &S,
    line: &Line,
    tracking: &SendTracking,
    report: &WhatsAppStatusReport,
    now: Timestamp,
) -> Result<usize, StoreError> {
    let wamid = &report.wamid;
    if tracking.line != line.id {
        return Ok(0);
    }
    // Each job's conversation, by its handle (one for a copy, one per job for a digest).
    let mut conversations: HashMap<&Handle, Option<ConversationKey>> = HashMap::new();
    for index in 0..tracking.jobs.len() {
        if let Some(handle) = tracking.handle_of(index)
            && !conversations.contains_key(handle)
        {
            conversations.insert(handle, store.find_handle(&line.id, handle).await?);
        }
    }
    let mut noted = 0;
    let mut copies = Vec::new();
    for (index, job_id) in tracking.jobs.iter().enumerate() {
        let conversation = tracking.handle_of(index).and_then(|h| conversations.get(h).cloned().flatten());
        let leg = match (job_id.message_id(), conversation) {
            (Some(message_id), Some(conversation)) => {
                LegRef::Message(LegAddress { conversation, message_id, job_id: job_id.clone() })
            }
            (None, _) => LegRef::Standalone(job_id.clone()),
            (Some(_), None) => continue,
        };
        if store.note_sent_as(&leg, wamid.as_str(), now).await? {
            noted += 1;
            if let (LegRef::Message(address), Some(agent)) = (&leg, &report.recipient) {
                copies.push(ForwardedCopy {
                    conversation: address.conversation.clone(),
                    message_id: address.message_id.clone(),
                    job_id: address.job_id.clone(),
                    agent: agent.clone(),
                    digest: Vec::new(),
                });
            }
        }
    }
    // A forwarded copy: the agent may swipe-reply to it before the worker records it. A
    // digest's record lists every part it could name, never one part alone.
    let route = if tracking.part_handles.is_empty() {
        copies.into_iter().next()
    } else {
        ForwardedCopy::digest_of_copies(&copies)
    };
    if let Some(route) = route {
        store.record_copy_route(&route, wamid, now).await?;
    }
    Ok(noted)
}

/// The template re-sends of every message a (possibly coalesced) free-form copy carried,
/// each with its leg added to its message.
async fn template_resends<S: Conversations + StatusLog>(
    store: &S,
    line: &Line,
    conversation: &ConversationKey,
    agent: &WaId,
    wamid: &Wamid,
) -> Result<Vec<Job>, StoreError> {
    let mut jobs = Vec::new();
    for message in store.thread(conversation).await? {
        let carried = message.legs.iter().find(|leg| {
            leg.kind == JobKind::ForwardToAgent
                && leg.to == agent.as_str()
                && leg.provider_id.as_deref() == Some(wamid.as_str())
        });
        let Some(carried) = carried else { continue };
        let job = Job {
            job_id: carried.job_id.template_resend(),
            attempt: 0,
            payload: JobPayload::ForwardToAgent(ForwardToAgent::of_message(
                line,
                conversation.clone(),
                message.message_id.clone(),
                agent.clone(),
                &message.body,
                &message.attachments,
                message.at,
            )),
        };
        store.add_leg(&job).await?;
        jobs.push(job);
    }
    Ok(jobs)
}
