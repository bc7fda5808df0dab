//! The delivery worker's use case (SPEC §4.4, §6, §9): take one job, send it once, and
//! record what happened on its leg.

use std::time::Duration;

use jiff::Timestamp;

use crate::domain::delivery::agent_window_open;
use crate::domain::whatsapp_message::agent_copy;
use crate::domain::{
    ErrorClass, ForwardToAgent, Job, JobPayload, Line, Lines, NotifyAgent, ProviderFailure, SendSms, notices,
};
use crate::ports::{
    Claim, ConversationStore, DeliveryQueue, ForwardedVia, LegFailure, QueueError, SmsProvider, StoreError,
    WhatsAppClient,
};

/// How long a claimed job is ours. Longer than one send with its timeouts, so a slow send
/// is not taken over; short enough that a crashed worker's job moves on soon.
pub const CLAIM_LEASE: Duration = Duration::from_secs(120);

/// Everything the worker sends with, built once per cold start.
pub struct Deliverer<S, W, P, Q> {
    pub lines: Lines,
    pub store: S,
    pub whatsapp: W,
    pub sms: P,
    pub queue: Q,
    /// `PUBLIC_BASE_URL/sms/status`: where the SMS provider reports delivery.
    pub status_callback_url: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Delivered {
    /// Sent; `provider_id` is the copy's wamid or SMS sid.
    Sent { provider_id: String, via: Option<ForwardedVia> },
    /// Done by an earlier delivery of the same job: acknowledged, nothing sent.
    AlreadyDone,
    /// The job's record no longer exists (erased): acknowledged, nothing sent.
    Dropped,
    /// Failed for good; recorded on the leg (and the agent told, for their replies).
    Failed { class: ErrorClass, reason: String },
}

#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    /// Try the job again later (the queue redelivers it).
    #[error("will retry: {reason}")]
    Retry { reason: String, retry_after: Option<Duration> },
    /// Needs an operator: kept failing on the queue until it reaches the DLQ.
    #[error("escalated: {reason}")]
    Escalate { reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

impl<S, W, P, Q> Deliverer<S, W, P, Q>
where
    S: ConversationStore,
    W: WhatsAppClient,
    P: SmsProvider,
    Q: DeliveryQueue,
{
    pub async fn deliver(&self, job: &Job, now: Timestamp) -> Result<Delivered, DeliverError> {
        let line_id = match &job.payload {
            JobPayload::ForwardToAgent(f) => &f.conversation.line,
            JobPayload::SendSms(s) => &s.conversation.line,
            JobPayload::NotifyAgent(n) => &n.line,
        };
        let Some(line) = self.lines.by_id(line_id) else {
            return Err(DeliverError::Escalate { reason: format!("line `{line_id}` is not configured") });
        };
        match self.store.claim_job(job, now, CLAIM_LEASE).await? {
            Claim::Claimed => {}
            Claim::AlreadyDone { .. } => return Ok(Delivered::AlreadyDone),
            Claim::Missing => return Ok(Delivered::Dropped),
            Claim::Busy => {
                return Err(DeliverError::Retry { reason: "another delivery holds the job".into(), retry_after: None });
            }
        }
        match &job.payload {
            JobPayload::ForwardToAgent(forward) => self.forward_to_agent(line, job, forward, now).await,
            JobPayload::SendSms(sms) => self.send_sms(line, job, sms, now).await,
            JobPayload::NotifyAgent(notice) => self.notify_agent(line, job, notice, now).await,
        }
    }

    async fn forward_to_agent(
        &self,
        line: &Line,
        job: &Job,
        forward: &ForwardToAgent,
        now: Timestamp,
    ) -> Result<Delivered, DeliverError> {
        let Some(context) = self.store.forward_context(&forward.conversation, &forward.agent).await? else {
            return Ok(Delivered::Dropped);
        };
        let window_open = agent_window_open(context.agent_last_inbound_at, now);
        let copy = agent_copy(line, &context.handle, forward, window_open);
        let mut result = self.whatsapp.send(&line.whatsapp_phone_number_id, &forward.agent, &copy).await;
        let mut via = if window_open { ForwardedVia::Text } else { ForwardedVia::Template };

        // 131047: the agent's window closed after all; the template reaches them anyway.
        if let Err(failure) = &result
            && copy.is_free_form_text()
            && ErrorClass::of(failure) == ErrorClass::Fallback
        {
            let template = agent_copy(line, &context.handle, forward, false);
            result = self.whatsapp.send(&line.whatsapp_phone_number_id, &forward.agent, &template).await;
            via = ForwardedVia::Template;
        }
        match result {
            Ok(wamid) => {
                self.store.record_forwarded(job, &wamid, via, now).await?;
                Ok(Delivered::Sent { provider_id: wamid.as_str().to_owned(), via: Some(via) })
            }
            Err(failure) => self.fail(job, &failure, Vec::new(), now).await,
        }
    }

    async fn send_sms(&self, line: &Line, job: &Job, sms: &SendSms, now: Timestamp) -> Result<Delivered, DeliverError> {
        // The leg rides in the callback URL, so a report that overtakes our record finds it.
        let callback = format!("{}?job={}", self.status_callback_url, job.job_id);
        match self.sms.send(&line.sms_number, &sms.conversation.customer, &sms.text, &callback).await {
            Ok(accepted) => {
                self.store.record_sms_sent(job, &accepted.id, accepted.status, now).await?;
                Ok(Delivered::Sent { provider_id: accepted.id, via: None })
            }
            Err(failure) => {
                // The agent sees a refused reply on their message, like a failed delivery.
                let code = match &failure {
                    ProviderFailure::Rejected { code, .. } => *code,
                    _ => None,
                };
                let notices =
                    notices::delivery_result(crate::domain::DeliveryStatus::Failed, None, code, &sms.agent_wamid)
                        .into_iter()
                        .enumerate()
                        .map(|(i, text)| {
                            Job::notice(format!("{}:refused:{i}", job.job_id), line.id.clone(), sms.agent.clone(), text)
                        })
                        .collect();
                self.fail(job, &failure, notices, now).await
            }
        }
    }

    async fn notify_agent(
        &self,
        line: &Line,
        job: &Job,
        notice: &NotifyAgent,
        now: Timestamp,
    ) -> Result<Delivered, DeliverError> {
        match self.whatsapp.send(&line.whatsapp_phone_number_id, &notice.agent, &notice.message).await {
            Ok(wamid) => {
                self.store.record_job_sent(job, wamid.as_str(), now).await?;
                Ok(Delivered::Sent { provider_id: wamid.as_str().to_owned(), via: None })
            }
            Err(failure) => self.fail(job, &failure, Vec::new(), now).await,
        }
    }

    /// Records a failed attempt by its class (SPEC §9); `notices` go out only if it is final.
    async fn fail(
        &self,
        job: &Job,
        failure: &ProviderFailure,
        notices: Vec<Job>,
        now: Timestamp,
    ) -> Result<Delivered, DeliverError> {
        let class = ErrorClass::of(failure);
        let (code, retry_after) = match failure {
            ProviderFailure::Rejected { code, retry_after, .. } => (*code, *retry_after),
            _ => (None, None),
        };
        let reason = failure.to_string();
        let leg_failure = |class: &'static str| LegFailure { class, code, reason: reason.clone() };
        match class {
            ErrorClass::Retry => {
                self.store.release_job(job, &leg_failure("retry"), now).await?;
                Err(DeliverError::Retry { reason, retry_after })
            }
            ErrorClass::Escalate => {
                self.store.release_job(job, &leg_failure("escalate"), now).await?;
                Err(DeliverError::Escalate { reason })
            }
            // A fallback that failed again as a fallback can't be helped by retrying.
            ErrorClass::Permanent | ErrorClass::Fallback => {
                self.store.record_job_failed(job, &leg_failure("permanent"), &notices, now).await?;
                self.queue.enqueue(&notices).await?;
                Ok(Delivered::Failed { class, reason })
            }
        }
    }
}
