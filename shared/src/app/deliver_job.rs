//! The delivery worker's use case (SPEC §4.4, §9): take one job, send its copy once, and
//! record what happened on the message's leg.

use std::time::Duration;

use jiff::Timestamp;

use crate::domain::delivery::{agent_copy, agent_window_open};
use crate::domain::{AgentCopy, ErrorClass, ForwardToAgent, Job, JobPayload, Lines, ProviderFailure, Wamid};
use crate::ports::{Claim, ConversationStore, ForwardedVia, LegFailure, StoreError, WhatsAppClient};

/// How long a claimed job is ours. Longer than one send with its timeouts, so a slow send
/// is not taken over; short enough that a crashed worker's job moves on soon.
pub const CLAIM_LEASE: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, PartialEq)]
pub enum Delivered {
    Sent {
        wamid: Wamid,
        via: ForwardedVia,
    },
    /// Done by an earlier delivery of the same job: acknowledged, nothing sent.
    AlreadyDone,
    /// The job's message no longer exists (erased): acknowledged, nothing sent.
    Dropped,
    /// Failed for good; recorded on the leg.
    Failed {
        class: ErrorClass,
        reason: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    /// Try the job again later (the queue redelivers it).
    #[error("will retry: {reason}")]
    Retry {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Needs an operator: kept failing on the queue until it reaches the DLQ.
    #[error("escalated: {reason}")]
    Escalate { reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub async fn deliver_job<S: ConversationStore, W: WhatsAppClient>(
    store: &S,
    whatsapp: &W,
    lines: &Lines,
    job: &Job,
    now: Timestamp,
) -> Result<Delivered, DeliverError> {
    match &job.payload {
        JobPayload::ForwardToAgent(forward) => forward_to_agent(store, whatsapp, lines, job, forward, now).await,
    }
}

async fn forward_to_agent<S: ConversationStore, W: WhatsAppClient>(
    store: &S,
    whatsapp: &W,
    lines: &Lines,
    job: &Job,
    forward: &ForwardToAgent,
    now: Timestamp,
) -> Result<Delivered, DeliverError> {
    let Some(line) = lines.by_id(&forward.conversation.line) else {
        return Err(DeliverError::Escalate {
            reason: format!("line `{}` is not configured", forward.conversation.line),
        });
    };
    match store.claim_job(job, now, CLAIM_LEASE).await? {
        Claim::Claimed => {}
        Claim::AlreadyDone { .. } => return Ok(Delivered::AlreadyDone),
        Claim::Missing => return Ok(Delivered::Dropped),
        Claim::Busy => {
            return Err(DeliverError::Retry {
                reason: "another delivery holds the job".into(),
                retry_after: None,
            });
        }
    }
    let Some(context) = store.forward_context(&forward.conversation, &forward.agent).await? else {
        return Ok(Delivered::Dropped);
    };
    let window_open = agent_window_open(context.agent_last_inbound_at, now);
    let copy = agent_copy(line, &context.handle, forward, window_open);
    let mut result = whatsapp
        .send(&line.whatsapp_phone_number_id, &forward.agent, &copy)
        .await;
    let mut via = if window_open {
        ForwardedVia::Text
    } else {
        ForwardedVia::Template
    };

    // 131047: the agent's window closed after all; the template reaches them anyway.
    if let (Err(failure), AgentCopy::Text { .. }) = (&result, &copy)
        && ErrorClass::of(failure) == ErrorClass::Fallback
    {
        let template = agent_copy(line, &context.handle, forward, false);
        result = whatsapp
            .send(&line.whatsapp_phone_number_id, &forward.agent, &template)
            .await;
        via = ForwardedVia::Template;
    }

    match result {
        Ok(wamid) => {
            store.record_forwarded(job, &wamid, via, now).await?;
            Ok(Delivered::Sent { wamid, via })
        }
        Err(failure) => fail(store, job, &failure, now).await,
    }
}

async fn fail<S: ConversationStore>(
    store: &S,
    job: &Job,
    failure: &ProviderFailure,
    now: Timestamp,
) -> Result<Delivered, DeliverError> {
    let class = ErrorClass::of(failure);
    let (code, retry_after) = match failure {
        ProviderFailure::Rejected { code, retry_after, .. } => (*code, *retry_after),
        _ => (None, None),
    };
    let reason = failure.to_string();
    let leg_failure = |class: &'static str| LegFailure {
        class,
        code,
        reason: reason.clone(),
    };
    match class {
        ErrorClass::Retry => {
            store.release_job(job, &leg_failure("retry"), now).await?;
            Err(DeliverError::Retry { reason, retry_after })
        }
        ErrorClass::Escalate => {
            store.release_job(job, &leg_failure("escalate"), now).await?;
            Err(DeliverError::Escalate { reason })
        }
        // A fallback that failed again as a fallback can't be helped by retrying.
        ErrorClass::Permanent | ErrorClass::Fallback => {
            store.record_job_failed(job, &leg_failure("permanent"), now).await?;
            Ok(Delivered::Failed { class, reason })
        }
    }
}
