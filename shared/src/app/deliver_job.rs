//! The delivery worker's use case (SPEC §4.4, §6, §9): take a job, send it once, record
//! what happened on its leg.
//!
//! Each leg goes queued → sending (claimed with a lease) → sent | retry | failed. The
//! guarantee: a job whose leg is recorded `sent` or `failed` is never sent again. The one
//! window a copy can go twice is a worker stopping after the provider accepted the send and
//! before the record: the redelivery reclaims the expired lease and sends again, and counts
//! it (`AmbiguousRedelivery`). The record is the very next write after the send.

use std::time::{Duration, Instant};

use jiff::Timestamp;
use tokio::sync::Mutex;

use crate::domain::delivery::agent_window_open;
use crate::domain::media::{MediaLinks, MediaSource, WhatsAppMediaKind};
use crate::domain::pacing::Pacer;
use crate::domain::whatsapp_message::{CopyFacts, agent_copy, annotated_text};
use crate::domain::{
    AutoReply, DeliveryStatus, ErrorClass, ForwardToAgent, Job, JobPayload, Line, Lines, NotifyAgent, ProviderFailure,
    SendSms, WhatsAppMessage, notices,
};
use crate::ports::{
    Claim, ConversationStore, DeliveryQueue, ForwardedVia, LegFailure, QueueError, SmsProvider, StoreError,
    WhatsAppClient,
};
use crate::telemetry;

/// The provider's code for "the recipient opted out" (Twilio 21610); the bridge records
/// its own refusals with it too, so agents read one reason.
pub const OPTED_OUT_CODE: i64 = 21610;

/// How long a claimed job is ours. Longer than one send with its timeouts, so a slow send
/// is not taken over; short enough that a crashed worker's job moves on soon.
pub const CLAIM_LEASE: Duration = Duration::from_secs(120);

/// Messages per second per sending number (SPEC §9): WhatsApp's Cloud API allows 80 per
/// business number; SMS depends on the number (1 for a US long code, 3 toll-free, 100 short
/// code). Per worker process: divide the provider's limit by the worker's concurrency.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SendRates {
    pub whatsapp_per_second: f64,
    pub sms_per_second: f64,
}

impl Default for SendRates {
    fn default() -> Self {
        Self { whatsapp_per_second: 80.0, sms_per_second: 1.0 }
    }
}

/// A step of a job after which tests can make the worker stop dead, to prove what a
/// redelivery does (issue 4's failpoints).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failpoint {
    AfterClaim,
    AfterSend,
    AfterRecord,
}

/// Everything the worker sends with, built once per cold start.
pub struct Deliverer<S, W, P, Q> {
    pub lines: Lines,
    pub store: S,
    pub whatsapp: W,
    pub sms: P,
    pub queue: Q,
    /// `PUBLIC_BASE_URL/sms/status`: where the SMS provider reports delivery.
    pub status_callback_url: String,
    pub rates: SendRates,
    /// Signs the links providers fetch relayed media from (SPEC §4.6, §5.6).
    pub media_links: Option<MediaLinks>,
    pacer: Mutex<Pacer>,
    failpoint: Option<Failpoint>,
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
    /// Try the job again later, after the backoff.
    #[error("will retry: {reason}")]
    Retry { reason: String, retry_after: Option<Duration> },
    /// Needs an operator: straight to the dead-letter queue.
    #[error("escalated: {reason}")]
    Escalate { reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// A failpoint stopped the worker (tests only).
    #[error("stopped at {0:?}")]
    Stopped(Failpoint),
}

impl<S, W, P, Q> Deliverer<S, W, P, Q>
where
    S: ConversationStore,
    W: WhatsAppClient,
    P: SmsProvider,
    Q: DeliveryQueue,
{
    #[allow(clippy::too_many_arguments)] // the worker's whole wiring, once
    pub fn new(
        lines: Lines,
        store: S,
        whatsapp: W,
        sms: P,
        queue: Q,
        status_callback_url: String,
        rates: SendRates,
    ) -> Self {
        Self {
            lines,
            store,
            whatsapp,
            sms,
            queue,
            status_callback_url,
            rates,
            media_links: None,
            pacer: Mutex::default(),
            failpoint: None,
        }
    }

    pub fn with_media_links(mut self, links: MediaLinks) -> Self {
        self.media_links = Some(links);
        self
    }

    /// Stops every job at `step` (tests of the delivery guarantee).
    pub fn with_failpoint(mut self, step: Failpoint) -> Self {
        self.failpoint = Some(step);
        self
    }

    pub async fn deliver(&self, job: &Job, now: Timestamp) -> Result<Delivered, DeliverError> {
        self.deliver_run(std::slice::from_ref(job), now).await
    }

    /// Delivers consecutive jobs of one order group. Forwards to one agent are coalesced
    /// into one WhatsApp message (SPEC §9: a burst of SMS from one customer must not trip
    /// WhatsApp's ~1 message / 6 s pair limit); any other run holds exactly one job.
    pub async fn deliver_run(&self, jobs: &[Job], now: Timestamp) -> Result<Delivered, DeliverError> {
        let Some(first) = jobs.first() else { return Ok(Delivered::AlreadyDone) };
        let line_id = match &first.payload {
            JobPayload::ForwardToAgent(f) => &f.conversation.line,
            JobPayload::SendSms(s) => &s.conversation.line,
            JobPayload::NotifyAgent(n) => &n.line,
            JobPayload::AutoReply(a) => &a.conversation.line,
        };
        let Some(line) = self.lines.by_id(line_id) else {
            return Err(DeliverError::Escalate { reason: format!("line `{line_id}` is not configured") });
        };
        // An automated reply's leg is made by its first claim: a conversation erased meanwhile
        // must not get a new item holding the customer's number back.
        if let JobPayload::AutoReply(reply) = &first.payload
            && self.store.conversation(&reply.conversation).await?.is_none()
        {
            return Ok(Delivered::Dropped);
        }
        let (mut claimed, mut done_before) = (Vec::new(), false);
        for job in jobs {
            match self.store.claim_job(job, now, CLAIM_LEASE).await? {
                Claim::Claimed => claimed.push(job),
                Claim::Reclaimed => {
                    telemetry::count("AmbiguousRedelivery", &[("kind", job.kind())]);
                    tracing::warn!(job_id = %job.job_id, "reclaimed after an expired lease: the copy may go twice");
                    claimed.push(job);
                }
                Claim::AlreadyDone { .. } => done_before = true,
                Claim::Missing => {}
                Claim::Busy => {
                    return Err(DeliverError::Retry {
                        reason: "another delivery holds the job".into(),
                        retry_after: None,
                    });
                }
            }
        }
        self.stop_at(Failpoint::AfterClaim)?;
        let Some(first) = claimed.first() else {
            // Done before, or erased since: nothing to send.
            return Ok(if done_before { Delivered::AlreadyDone } else { Delivered::Dropped });
        };
        match &first.payload {
            JobPayload::ForwardToAgent(_) => self.forward_to_agent(line, &claimed, now).await,
            JobPayload::SendSms(sms) => self.send_sms(line, first, sms, now).await,
            JobPayload::NotifyAgent(notice) => self.notify_agent(line, first, notice, now).await,
            JobPayload::AutoReply(reply) => self.auto_reply(line, first, reply, now).await,
        }
    }

    fn stop_at(&self, step: Failpoint) -> Result<(), DeliverError> {
        if self.failpoint == Some(step) { Err(DeliverError::Stopped(step)) } else { Ok(()) }
    }

    /// Waits for the sender's next slot (SPEC §9 pacing).
    async fn pace(&self, sender: &str, per_second: f64) {
        let slot = self.pacer.lock().await.reserve(sender, per_second, Instant::now());
        tokio::time::sleep_until(slot.into()).await;
    }

    async fn forward_to_agent(&self, line: &Line, jobs: &[&Job], now: Timestamp) -> Result<Delivered, DeliverError> {
        let forwards: Vec<&ForwardToAgent> = jobs
            .iter()
            .filter_map(|j| match &j.payload {
                JobPayload::ForwardToAgent(f) => Some(f),
                _ => None,
            })
            .collect();
        let first = forwards[0];
        let Some(context) = self.store.forward_context(&first.conversation, &first.agent).await? else {
            return Ok(Delivered::Dropped);
        };
        tracing::Span::current().record("handle", context.handle.as_str());
        let combined = coalesce(&forwards);
        let window_open = agent_window_open(context.agent_last_inbound_at, context.agent_window_closed_at, now);
        let copy =
            agent_copy(line, &context.handle, &combined, CopyFacts { window_open, opted_out: context.opted_out });
        self.pace(line.whatsapp_phone_number_id.as_str(), self.rates.whatsapp_per_second).await;
        let mut result = self.whatsapp.send(&line.whatsapp_phone_number_id, &first.agent, &copy).await;
        let mut via = if window_open { ForwardedVia::Text } else { ForwardedVia::Template };

        // 131047: the agent's window closed after all. Remember it, and send the template.
        if let Err(failure) = &result
            && copy.is_free_form_text()
            && ErrorClass::of(failure) == ErrorClass::Fallback
        {
            self.store.mark_window_closed(&line.id, &first.agent, now).await?;
            let template = agent_copy(
                line,
                &context.handle,
                &combined,
                CopyFacts { window_open: false, opted_out: context.opted_out },
            );
            self.pace(line.whatsapp_phone_number_id.as_str(), self.rates.whatsapp_per_second).await;
            result = self.whatsapp.send(&line.whatsapp_phone_number_id, &first.agent, &template).await;
            via = ForwardedVia::Template;
        }
        match result {
            Ok(wamid) => {
                self.stop_at(Failpoint::AfterSend)?;
                for job in jobs {
                    self.store.record_forwarded(job, &wamid, via, now).await?;
                }
                self.stop_at(Failpoint::AfterRecord)?;
                if via == ForwardedVia::Text {
                    self.forward_media(line, &context.handle, &forwards, now).await;
                }
                Ok(Delivered::Sent { provider_id: wamid.as_str().to_owned(), via: Some(via) })
            }
            Err(failure) => self.fail(jobs, &failure, Vec::new(), now).await,
        }
    }

    /// The customer's pictures, audio, video and documents, each as WhatsApp media the Cloud
    /// API fetches through the bridge's signed link, after the copy that names them. A
    /// medium that fails is counted and logged, never the copy's failure: the copy already
    /// lists it, and the agent can ask the customer.
    async fn forward_media(
        &self,
        line: &Line,
        handle: &crate::domain::Handle,
        forwards: &[&ForwardToAgent],
        now: Timestamp,
    ) {
        let Some(links) = &self.media_links else { return };
        for forward in forwards {
            let customer = forward.conversation.customer.pretty();
            for (i, item) in forward.media.iter().enumerate() {
                let Some(kind) = WhatsAppMediaKind::for_content_type(&item.content_type) else { continue };
                // Numbered as the copy names them: "[image 1/2]".
                let message = WhatsAppMessage::Media {
                    kind,
                    link: links.link(MediaSource::Sms, &item.url, now),
                    caption: Some(format!("{handle} · {customer} ({}/{})", i + 1, forward.media.len())),
                };
                self.pace(line.whatsapp_phone_number_id.as_str(), self.rates.whatsapp_per_second).await;
                if let Err(failure) = self.whatsapp.send(&line.whatsapp_phone_number_id, &forward.agent, &message).await
                {
                    telemetry::count("MediaNotForwarded", &[("kind", kind.as_str())]);
                    tracing::warn!(error = %failure, kind = kind.as_str(), "a customer's media did not reach the agent");
                }
            }
        }
    }

    async fn send_sms(&self, line: &Line, job: &Job, sms: &SendSms, now: Timestamp) -> Result<Delivered, DeliverError> {
        let Some(conversation) = self.store.conversation(&sms.conversation).await? else {
            return Ok(Delivered::Dropped);
        };
        tracing::Span::current().record("handle", conversation.handle.as_str());
        let handle = conversation.handle.to_string();
        // The agent sees a refused reply on their message, like a failed delivery.
        let tell_agent = |code: Option<i64>| -> Vec<Job> {
            notices::delivery_result(DeliveryStatus::Failed, None, code, &sms.agent_wamid)
                .into_iter()
                .enumerate()
                .map(|(i, text)| {
                    let fallback = template_fallback(Some(&handle), &sms.conversation.customer, &text, &sms.text);
                    Job::notice(format!("{}:refused:{i}", job.job_id), line.id.clone(), sms.agent.clone(), text)
                        .with_template_fallback(fallback)
                })
                .collect()
        };
        // SPEC §6: nothing is texted to an opted-out customer, whatever queued it.
        if conversation.opted_out {
            return self.refuse_opted_out(job, tell_agent(Some(OPTED_OUT_CODE)), now).await;
        }
        // The leg rides in the callback URL, so a report that overtakes our record finds it.
        let callback = format!("{}?job={}", self.status_callback_url, job.job_id);
        self.pace(line.sms_number.as_str(), self.rates.sms_per_second).await;
        let media_urls: Vec<String> = match &self.media_links {
            Some(links) => sms.media.iter().map(|m| links.link(MediaSource::WhatsApp, &m.id, now)).collect(),
            None => Vec::new(),
        };
        match self.sms.send(&line.sms_number, &sms.conversation.customer, &sms.text, &media_urls, Some(&callback)).await
        {
            Ok(accepted) => {
                self.stop_at(Failpoint::AfterSend)?;
                self.store.record_sms_sent(job, &accepted.id, accepted.status, now).await?;
                self.stop_at(Failpoint::AfterRecord)?;
                Ok(Delivered::Sent { provider_id: accepted.id, via: None })
            }
            Err(failure) => {
                let code = match &failure {
                    ProviderFailure::Rejected { code, .. } => *code,
                    _ => None,
                };
                self.note_carrier_opt_out(&sms.conversation, code, now).await?;
                self.fail(&[job], &failure, tell_agent(code), now).await
            }
        }
    }

    /// The bridge's own text to a customer (SPEC §7): never to an opted-out customer unless
    /// it answers a keyword; no status callback (nobody waits for its result).
    async fn auto_reply(
        &self,
        line: &Line,
        job: &Job,
        reply: &AutoReply,
        now: Timestamp,
    ) -> Result<Delivered, DeliverError> {
        let Some(conversation) = self.store.conversation(&reply.conversation).await? else {
            return Ok(Delivered::Dropped);
        };
        tracing::Span::current().record("handle", conversation.handle.as_str());
        if conversation.opted_out && !reply.reason.allowed_when_opted_out() {
            return self.refuse_opted_out(job, Vec::new(), now).await;
        }
        self.pace(line.sms_number.as_str(), self.rates.sms_per_second).await;
        match self.sms.send(&line.sms_number, &reply.conversation.customer, &reply.text, &[], None).await {
            Ok(accepted) => {
                self.stop_at(Failpoint::AfterSend)?;
                self.store.record_job_sent(job, &accepted.id, now).await?;
                self.stop_at(Failpoint::AfterRecord)?;
                telemetry::count("AutoReplySent", &[("reason", reply.reason.as_str())]);
                Ok(Delivered::Sent { provider_id: accepted.id, via: None })
            }
            Err(failure) => {
                if let ProviderFailure::Rejected { code, .. } = &failure {
                    self.note_carrier_opt_out(&reply.conversation, *code, now).await?;
                }
                self.fail(&[job], &failure, Vec::new(), now).await
            }
        }
    }

    /// The job would text an opted-out customer: it ends failed, with `notices` about it.
    async fn refuse_opted_out(&self, job: &Job, notices: Vec<Job>, now: Timestamp) -> Result<Delivered, DeliverError> {
        let reason = "customer opted out of SMS (texted STOP)".to_owned();
        let failure = LegFailure { class: "permanent", code: Some(OPTED_OUT_CODE), reason: reason.clone() };
        self.store.record_job_failed(job, &failure, &notices, now).await?;
        self.queue.enqueue(&notices).await?;
        telemetry::count("OptedOutRefused", &[("kind", job.kind())]);
        Ok(Delivered::Failed { class: ErrorClass::Permanent, reason })
    }

    /// 21610: the carrier says the customer opted out (e.g. STOP sent to another of the
    /// business's numbers, or handled by the provider): remember it (SPEC §6).
    async fn note_carrier_opt_out(
        &self,
        conversation: &crate::domain::ConversationKey,
        code: Option<i64>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        if code == Some(OPTED_OUT_CODE) {
            self.store.mark_opted_out(conversation, now).await?;
        }
        Ok(())
    }

    async fn notify_agent(
        &self,
        line: &Line,
        job: &Job,
        notice: &NotifyAgent,
        now: Timestamp,
    ) -> Result<Delivered, DeliverError> {
        self.pace(line.whatsapp_phone_number_id.as_str(), self.rates.whatsapp_per_second).await;
        let mut result = self.whatsapp.send(&line.whatsapp_phone_number_id, &notice.agent, &notice.message).await;
        // Outside the agent's window, a notice about a conversation goes as the template
        // rather than failing silently (SPEC §4.4; issue 4).
        if let (Err(failure), Some(parameters)) = (&result, &notice.fallback)
            && ErrorClass::of(failure) == ErrorClass::Fallback
        {
            self.store.mark_window_closed(&line.id, &notice.agent, now).await?;
            let template = WhatsAppMessage::Template {
                name: line.template.name.clone(),
                language: line.template.language.clone(),
                parameters: parameters.clone(),
            };
            result = self.whatsapp.send(&line.whatsapp_phone_number_id, &notice.agent, &template).await;
        }
        match result {
            Ok(wamid) => {
                self.stop_at(Failpoint::AfterSend)?;
                self.store.record_job_sent(job, wamid.as_str(), now).await?;
                self.stop_at(Failpoint::AfterRecord)?;
                Ok(Delivered::Sent { provider_id: wamid.as_str().to_owned(), via: None })
            }
            Err(failure) => {
                if ErrorClass::of(&failure) == ErrorClass::Fallback {
                    // Nothing else reaches them until they write again: say so loudly.
                    telemetry::count("NoticeUndeliverable", &[("reason", "window_closed")]);
                    tracing::error!(job_id = %job.job_id, "notice could not reach the agent: their 24 h window is closed");
                }
                self.fail(&[job], &failure, Vec::new(), now).await
            }
        }
    }

    /// Records a failed attempt by its class (SPEC §9); `notices` go out only if it is final.
    async fn fail(
        &self,
        jobs: &[&Job],
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
                for job in jobs {
                    self.store.release_job(job, &leg_failure("retry"), now).await?;
                }
                Err(DeliverError::Retry { reason, retry_after })
            }
            ErrorClass::Escalate => {
                for job in jobs {
                    self.store.release_job(job, &leg_failure("escalate"), now).await?;
                }
                Err(DeliverError::Escalate { reason })
            }
            // A fallback that failed again as a fallback can't be helped by retrying.
            ErrorClass::Permanent | ErrorClass::Fallback => {
                for (i, job) in jobs.iter().enumerate() {
                    let with = if i == 0 { notices.as_slice() } else { &[] };
                    self.store.record_job_failed(job, &leg_failure("permanent"), with, now).await?;
                }
                self.queue.enqueue(&notices).await?;
                Ok(Delivered::Failed { class, reason })
            }
        }
    }
}

/// One forward standing for several consecutive texts of the same customer, each with its
/// attachments and keyword note in place.
fn coalesce(forwards: &[&ForwardToAgent]) -> ForwardToAgent {
    let mut combined = forwards[0].clone();
    if forwards.len() > 1 {
        combined.text = forwards.iter().map(|f| annotated_text(f)).collect::<Vec<_>>().join("\n");
        combined.attachments = Vec::new();
        combined.keyword = None;
    }
    combined
}

/// The line template's parameters for a notice about a reply: handle, customer, and the
/// notice in words with the start of the reply it is about.
pub fn template_fallback(
    handle: Option<&str>,
    customer: &crate::domain::E164,
    notice: &WhatsAppMessage,
    reply: &str,
) -> Vec<String> {
    let words = match notice {
        WhatsAppMessage::Reaction { emoji, .. } => emoji.clone(),
        WhatsAppMessage::Text { body, .. } => body.clone(),
        other => format!("{other:?}"),
    };
    let start: String = reply.chars().take(60).collect();
    vec![handle.unwrap_or("#?").to_owned(), customer.pretty(), format!("{words} (your reply: \u{201c}{start}\u{201d})")]
}
