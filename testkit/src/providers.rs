//! `FakeWhatsApp` and `FakeSms`, in-memory twins of the provider ports
//! (`shared::ports::WhatsAppClient`, `shared::ports::SmsProvider`), for use-case tests.
//!
//! Each call takes the next scripted [`Outcome`] (accept by default): accepted with a
//! generated id, refused (`ProviderFailure::NotSent`, `Rejected`, `Ambiguous`), or accepted
//! with its answer lost on the way back ([`Outcome::AcceptLoseAnswer`]: the provider has the
//! message, the caller gets `Ambiguous`) or never given ([`Outcome::AcceptHang`]: the call
//! never returns, for a caller that cuts it off). Every call and every message the provider
//! accepted is recorded, so a test counts what a recipient really received; the SMS twin's
//! `find_sent` answers from the accepted messages, as Twilio's Messages list does through
//! the adapter (`adapters/twilio/messages.rs`), with its clock slack: messages created up to
//! a minute before `since` are listed too.
//!
//! Clones share one state, as handles on one provider do.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use shared::domain::WhatsAppMessage;
use shared::domain::{
    DeliveryStatus, E164, JobId, PhoneNumberId, ProviderFailure, SendTracking, SmsOrigin, Wamid, WhatsAppRecipient,
};
use shared::ports::{AcceptedSms, SentLookup, SmsProvider, SmsTracking, WhatsAppClient};

/// What the provider does with one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepts the message and answers with a new id.
    Accept,
    /// Refuses the call: nothing is sent, the caller gets this failure.
    Fail(ProviderFailure),
    /// Accepts the message (it is sent) and the answer is lost: the caller gets
    /// `ProviderFailure::Ambiguous`, as after a timeout once the request was sent.
    AcceptLoseAnswer,
    /// Accepts the message and never answers: the call stays pending until the caller
    /// drops it (the deliverer's deadline cuts it off). Never script it for a caller
    /// without a timeout.
    AcceptHang,
}

impl Outcome {
    /// The request never reached the provider.
    pub fn not_sent() -> Self {
        Self::Fail(ProviderFailure::NotSent("connection refused (scripted)".into()))
    }

    /// An HTTP error answer with the provider's code, if any.
    pub fn rejected(http_status: u16, code: Option<i64>) -> Self {
        Self::Fail(ProviderFailure::Rejected {
            http_status,
            code,
            message: format!("scripted HTTP {http_status}"),
            retry_after: None,
        })
    }

    /// HTTP 429 with a `Retry-After`.
    pub fn throttled(retry_after: Duration) -> Self {
        Self::Fail(ProviderFailure::Rejected {
            http_status: 429,
            code: None,
            message: "scripted: too many requests".into(),
            retry_after: Some(retry_after),
        })
    }

    /// No readable answer, and the provider did not take the message.
    pub fn ambiguous() -> Self {
        Self::Fail(ProviderFailure::Ambiguous("timed out (scripted; not accepted)".into()))
    }

    /// Whether the provider takes the message.
    fn accepts(&self) -> bool {
        matches!(self, Self::Accept | Self::AcceptLoseAnswer | Self::AcceptHang)
    }
}

/// The scripted outcomes, used up in order; accepting when none are left.
#[derive(Debug, Default)]
struct Script(VecDeque<Outcome>);

impl Script {
    fn next(&mut self) -> Outcome {
        self.0.pop_front().unwrap_or(Outcome::Accept)
    }
}

fn lost_answer() -> ProviderFailure {
    ProviderFailure::Ambiguous("accepted, but the answer was lost (scripted)".into())
}

/// A WhatsApp send as the provider saw it, accepted or not.
#[derive(Debug, Clone, PartialEq)]
pub struct WhatsAppCall {
    pub from: PhoneNumberId,
    pub to: WhatsAppRecipient,
    pub message: WhatsAppMessage,
    /// `biz_opaque_callback_data`, echoed on the message's status webhooks.
    pub tracking: Option<String>,
    /// What the call was scripted to do.
    pub outcome: Outcome,
    /// When the call came, on the test's clock (for pacing).
    pub at: Instant,
}

/// A WhatsApp message the provider accepted: the agent has it.
#[derive(Debug, Clone, PartialEq)]
pub struct SentWhatsApp {
    pub wamid: Wamid,
    pub from: PhoneNumberId,
    pub to: WhatsAppRecipient,
    pub message: WhatsAppMessage,
    pub tracking: Option<String>,
    /// Whether the caller got the answer (`false`: lost, or never given).
    pub answered: bool,
    pub at: Instant,
}

impl SentWhatsApp {
    /// The jobs its tracking names (what Meta echoes on its status webhooks).
    pub fn jobs(&self) -> Vec<JobId> {
        self.tracking.as_deref().and_then(SendTracking::parse).map(|t| t.jobs).unwrap_or_default()
    }
}

#[derive(Debug, Default)]
struct WhatsAppState {
    script: Script,
    calls: Vec<WhatsAppCall>,
    sent: Vec<SentWhatsApp>,
}

/// The WhatsApp Cloud API in memory. Clones share one state.
#[derive(Debug, Clone, Default)]
pub struct FakeWhatsApp {
    state: Arc<Mutex<WhatsAppState>>,
}

impl FakeWhatsApp {
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues outcomes for the next calls, in order, after those already queued.
    pub fn script(&self, outcomes: impl IntoIterator<Item = Outcome>) {
        self.lock().script.0.extend(outcomes);
    }

    /// The next call fails with `failure`, sending nothing.
    pub fn fail_next(&self, failure: ProviderFailure) {
        self.script([Outcome::Fail(failure)]);
    }

    /// The next call is accepted and its answer lost.
    pub fn lose_next_answer(&self) {
        self.script([Outcome::AcceptLoseAnswer]);
    }

    /// Every call, in order, accepted or not.
    pub fn calls(&self) -> Vec<WhatsAppCall> {
        self.lock().calls.clone()
    }

    /// How many calls were made.
    pub fn call_count(&self) -> usize {
        self.lock().calls.len()
    }

    /// Every message accepted, in order: what the agents received.
    pub fn sent(&self) -> Vec<SentWhatsApp> {
        self.lock().sent.clone()
    }

    /// The messages accepted for `to`.
    pub fn sent_to(&self, to: impl Into<WhatsAppRecipient>) -> Vec<SentWhatsApp> {
        let to = to.into();
        self.lock().sent.iter().filter(|m| m.to == to).cloned().collect()
    }

    /// How many accepted messages carry `job` in their tracking: more than one is a
    /// duplicate the agent received.
    pub fn sends_of(&self, job: &JobId) -> usize {
        self.lock().sent.iter().filter(|m| m.jobs().contains(job)).count()
    }

    /// The message accepted as `wamid`.
    pub fn find(&self, wamid: &Wamid) -> Option<SentWhatsApp> {
        self.lock().sent.iter().find(|m| &m.wamid == wamid).cloned()
    }

    fn lock(&self) -> MutexGuard<'_, WhatsAppState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl WhatsAppClient for FakeWhatsApp {
    async fn send(
        &self,
        from: &PhoneNumberId,
        to: &WhatsAppRecipient,
        message: &WhatsAppMessage,
        tracking: Option<&str>,
    ) -> Result<Wamid, ProviderFailure> {
        let (outcome, wamid) = {
            let mut state = self.lock();
            let outcome = state.script.next();
            let at = Instant::now();
            state.calls.push(WhatsAppCall {
                from: from.clone(),
                to: to.clone(),
                message: message.clone(),
                tracking: tracking.map(str::to_owned),
                outcome: outcome.clone(),
                at,
            });
            let wamid = if outcome.accepts() {
                let wamid = new_wamid(state.sent.len() + 1)?;
                state.sent.push(SentWhatsApp {
                    wamid: wamid.clone(),
                    from: from.clone(),
                    to: to.clone(),
                    message: message.clone(),
                    tracking: tracking.map(str::to_owned),
                    answered: outcome == Outcome::Accept,
                    at,
                });
                Some(wamid)
            } else {
                None
            };
            (outcome, wamid)
        };
        match (outcome, wamid) {
            (Outcome::Accept, Some(wamid)) => Ok(wamid),
            (Outcome::Fail(failure), _) => Err(failure),
            (Outcome::AcceptHang, _) => std::future::pending().await,
            (Outcome::AcceptLoseAnswer | Outcome::Accept, _) => Err(lost_answer()),
        }
    }
}

/// A wamid in Meta's shape, unique within one fake.
fn new_wamid(n: usize) -> Result<Wamid, ProviderFailure> {
    Wamid::parse(&format!("wamid.FAKE{n:020}")).map_err(ProviderFailure::NotSent)
}

/// An SMS send as the provider saw it, accepted or not.
#[derive(Debug, Clone, PartialEq)]
pub struct SmsCall {
    pub from: E164,
    pub to: E164,
    pub body: String,
    pub media_urls: Vec<String>,
    pub status_callback: Option<String>,
    pub outcome: Outcome,
    pub at: Instant,
}

/// An SMS the provider accepted: the customer has it.
#[derive(Debug, Clone, PartialEq)]
pub struct SentSms {
    /// Twilio's `SM…` sid.
    pub id: String,
    pub from: E164,
    pub to: E164,
    pub body: String,
    pub media_urls: Vec<String>,
    pub status_callback: Option<String>,
    pub status: Option<DeliveryStatus>,
    /// Whether the caller got the answer (`false`: lost, or never given).
    pub answered: bool,
    /// Twilio's `DateCreated`, on the wall clock: what `find_sent`'s `since` compares with.
    pub created: Timestamp,
    /// When the call came, on the test's clock (for pacing).
    pub at: Instant,
}

impl SentSms {
    /// The job its status callback names (`…?job=<id>`).
    pub fn job(&self) -> Option<JobId> {
        let url = self.status_callback.as_deref()?;
        let (_, query) = url.split_once('?')?;
        query.split('&').find_map(|pair| JobId::parse(pair.strip_prefix("job=")?).ok())
    }
}

#[derive(Debug)]
struct SmsState {
    script: Script,
    /// How long before `since` a listed message may have been created.
    list_slack: SignedDuration,
    /// Failures for the next `find_sent` calls, in order.
    find_failures: VecDeque<ProviderFailure>,
    calls: Vec<SmsCall>,
    sent: Vec<SentSms>,
    find_calls: usize,
}

impl Default for SmsState {
    fn default() -> Self {
        Self {
            script: Script::default(),
            list_slack: FakeSms::LIST_SLACK,
            find_failures: VecDeque::new(),
            calls: Vec::new(),
            sent: Vec::new(),
            find_calls: 0,
        }
    }
}

/// Twilio's Messages API in memory: sends, and the list of what it sent. Clones share one
/// state.
#[derive(Debug, Clone, Default)]
pub struct FakeSms {
    state: Arc<Mutex<SmsState>>,
}

impl FakeSms {
    /// The status an accepted message answers with, as Twilio's `queued`.
    pub const ACCEPTED_STATUS: Option<DeliveryStatus> = Some(DeliveryStatus::Queued);
    /// The Twilio adapter's clock slack: its list also holds messages created this long
    /// before `since` (Twilio's `DateCreated` has whole seconds, and clocks differ).
    pub const LIST_SLACK: SignedDuration = SignedDuration::from_secs(60);

    pub fn new() -> Self {
        Self::default()
    }

    /// Queues outcomes for the next sends, in order, after those already queued.
    pub fn script(&self, outcomes: impl IntoIterator<Item = Outcome>) {
        self.lock().script.0.extend(outcomes);
    }

    /// The next send fails with `failure`, sending nothing.
    pub fn fail_next(&self, failure: ProviderFailure) {
        self.script([Outcome::Fail(failure)]);
    }

    /// The next send is accepted and its answer lost.
    pub fn lose_next_answer(&self) {
        self.script([Outcome::AcceptLoseAnswer]);
    }

    /// Lists messages created up to `slack` before `since` (default [`Self::LIST_SLACK`];
    /// zero: exactly the port's "at or after `since`").
    pub fn set_list_slack(&self, slack: SignedDuration) {
        self.lock().list_slack = slack;
    }

    /// The next `find_sent` call fails with `failure`.
    pub fn fail_next_find(&self, failure: ProviderFailure) {
        self.lock().find_failures.push_back(failure);
    }

    /// Every send call, in order, accepted or not.
    pub fn calls(&self) -> Vec<SmsCall> {
        self.lock().calls.clone()
    }

    pub fn call_count(&self) -> usize {
        self.lock().calls.len()
    }

    /// How many times the list was asked.
    pub fn find_calls(&self) -> usize {
        self.lock().find_calls
    }

    /// Every message accepted, in order: what the customers received.
    pub fn sent(&self) -> Vec<SentSms> {
        self.lock().sent.clone()
    }

    pub fn sent_to(&self, to: &E164) -> Vec<SentSms> {
        self.lock().sent.iter().filter(|m| &m.to == to).cloned().collect()
    }

    /// How many accepted messages name `job` in their status callback: more than one is a
    /// duplicate the customer received.
    pub fn sends_of(&self, job: &JobId) -> usize {
        self.lock().sent.iter().filter(|m| m.job().as_ref() == Some(job)).count()
    }

    fn lock(&self) -> MutexGuard<'_, SmsState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl SmsProvider for FakeSms {
    async fn send(
        &self,
        from: SmsOrigin<'_>,
        to: &E164,
        body: &str,
        media_urls: &[String],
        tracking: Option<SmsTracking<'_>>,
    ) -> Result<AcceptedSms, ProviderFailure> {
        let (from, status_callback) = (from.number, tracking.map(|t| t.status_callback));
        let (outcome, id) = {
            let mut state = self.lock();
            let outcome = state.script.next();
            let at = Instant::now();
            state.calls.push(SmsCall {
                from: from.clone(),
                to: to.clone(),
                body: body.to_owned(),
                media_urls: media_urls.to_vec(),
                status_callback: status_callback.map(str::to_owned),
                outcome: outcome.clone(),
                at,
            });
            let id = if outcome.accepts() {
                let id = format!("SM{:032x}", state.sent.len() + 1);
                state.sent.push(SentSms {
                    id: id.clone(),
                    from: from.clone(),
                    to: to.clone(),
                    body: body.to_owned(),
                    media_urls: media_urls.to_vec(),
                    status_callback: status_callback.map(str::to_owned),
                    status: Self::ACCEPTED_STATUS,
                    answered: outcome == Outcome::Accept,
                    created: Timestamp::now(),
                    at,
                });
                Some(id)
            } else {
                None
            };
            (outcome, id)
        };
        match (outcome, id) {
            (Outcome::Accept, Some(id)) => Ok(AcceptedSms { id, status: Self::ACCEPTED_STATUS }),
            (Outcome::Fail(failure), _) => Err(failure),
            (Outcome::AcceptHang, _) => std::future::pending().await,
            (Outcome::AcceptLoseAnswer | Outcome::Accept, _) => Err(lost_answer()),
        }
    }

    async fn find_sent(
        &self,
        from: SmsOrigin<'_>,
        to: &E164,
        body: &str,
        since: Timestamp,
    ) -> Result<SentLookup, ProviderFailure> {
        let from = from.number;
        let mut state = self.lock();
        state.find_calls += 1;
        if let Some(failure) = state.find_failures.pop_front() {
            return Err(failure);
        }
        let earliest = since - state.list_slack;
        // Newest first, as Twilio lists them.
        Ok(SentLookup::Listed(
            state
                .sent
                .iter()
                .rev()
                .filter(|m| &m.from == from && &m.to == to && m.body == body && m.created >= earliest)
                .map(|m| AcceptedSms { id: m.id.clone(), status: m.status })
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use jiff::{SignedDuration, Timestamp};
    use shared::domain::{
        E164, JobId, LineId, PhoneNumberId, ProviderFailure, SendTracking, SmsOrigin, SmsSender, WhatsAppMessage,
        WhatsAppRecipient,
    };
    use shared::ports::{AcceptedSms, SentLookup, SmsProvider, SmsTracking, WhatsAppClient};

    use super::{FakeSms, FakeWhatsApp, Outcome};

    fn phone_id() -> PhoneNumberId {
        PhoneNumberId::parse("106540352242922").unwrap()
    }

    fn agent() -> WhatsAppRecipient {
        WhatsAppRecipient::parse("14155550111").unwrap()
    }

    fn number(n: &str) -> E164 {
        E164::parse(n).unwrap()
    }

    fn twilio(number: &E164) -> SmsOrigin<'_> {
        SmsOrigin { number, provider: SmsSender::Twilio }
    }

    fn list_of(lookup: SentLookup) -> Vec<AcceptedSms> {
        match lookup {
            SentLookup::Listed(listed) => listed,
            SentLookup::Unsupported => panic!("the fake lists what it sent"),
        }
    }

    #[tokio::test]
    async fn whatsapp_accepts_by_default_then_follows_its_script_in_order() {
        let wa = FakeWhatsApp::new();
        let job = JobId::parse("m1.0").unwrap();
        let tracking = SendTracking {
            line: LineId::parse("main").unwrap(),
            handle: None,
            jobs: vec![job.clone()],
            part_handles: Vec::new(),
        }
        .encode();
        let hi = WhatsAppMessage::text("hi");
        let first = wa.send(&phone_id(), &agent(), &hi, Some(&tracking)).await.unwrap();
        wa.script([Outcome::rejected(503, None), Outcome::throttled(Duration::from_secs(7)), Outcome::not_sent()]);
        let refused = wa.send(&phone_id(), &agent(), &hi, Some(&tracking)).await.unwrap_err();
        assert!(matches!(refused, ProviderFailure::Rejected { http_status: 503, .. }));
        let throttled = wa.send(&phone_id(), &agent(), &hi, None).await.unwrap_err();
        assert!(matches!(throttled, ProviderFailure::Rejected { retry_after: Some(d), .. } if d.as_secs() == 7));
        assert!(matches!(wa.send(&phone_id(), &agent(), &hi, None).await, Err(ProviderFailure::NotSent(_))));
        let last = wa.send(&phone_id(), &agent(), &hi, None).await.unwrap();

        assert_ne!(first, last, "ids are unique");
        assert_eq!(wa.call_count(), 5);
        assert_eq!(wa.sent().len(), 2, "only accepted messages are sent");
        assert_eq!(wa.sends_of(&job), 1, "refused calls don't count as sends");
        assert_eq!(wa.find(&first).unwrap().jobs(), vec![job]);
        assert_eq!(wa.sent_to(agent()).len(), 2);
    }

    #[tokio::test]
    async fn whatsapp_lost_answer_is_sent_but_answers_ambiguous() {
        let wa = FakeWhatsApp::new();
        wa.lose_next_answer();
        wa.fail_next(ProviderFailure::Ambiguous("x".into()));
        let hi = WhatsAppMessage::text("hi");
        assert!(matches!(wa.send(&phone_id(), &agent(), &hi, None).await, Err(ProviderFailure::Ambiguous(_))));
        assert!(matches!(wa.send(&phone_id(), &agent(), &hi, None).await, Err(ProviderFailure::Ambiguous(_))));
        let sent = wa.sent();
        assert_eq!(sent.len(), 1, "the lost answer's message went out, the plain ambiguous one didn't");
        assert!(!sent[0].answered);
    }

    #[tokio::test]
    async fn whatsapp_hang_records_the_send_and_never_answers() {
        let wa = FakeWhatsApp::new();
        wa.script([Outcome::AcceptHang]);
        let hi = WhatsAppMessage::text("hi");
        let cut = tokio::time::timeout(Duration::from_millis(5), wa.send(&phone_id(), &agent(), &hi, None)).await;
        assert!(cut.is_err(), "still pending");
        assert_eq!(wa.sent().len(), 1);
        assert!(!wa.sent()[0].answered);
    }

    #[tokio::test]
    async fn clones_share_scripts_and_records() {
        let (wa, sms) = (FakeWhatsApp::new(), FakeSms::new());
        let (wa2, sms2) = (wa.clone(), sms.clone());
        wa2.script([Outcome::rejected(400, Some(131026))]);
        sms2.script([Outcome::rejected(400, Some(21610))]);
        assert!(wa.send(&phone_id(), &agent(), &WhatsAppMessage::text("x"), None).await.is_err());
        let line = number("+14155550100");
        assert!(sms.send(twilio(&line), &number("+14155550134"), "x", &[], None).await.is_err());
        assert_eq!((wa2.call_count(), sms2.call_count()), (1, 1));
        assert!(wa2.sent().is_empty() && sms2.sent().is_empty());
    }

    #[tokio::test]
    async fn sms_records_its_callback_and_lists_what_it_accepted() {
        let sms = FakeSms::new();
        let (from, to, other) = (number("+14155550100"), number("+14155550134"), number("+14155550135"));
        let since = Timestamp::now();
        let callback = "https://bridge.example.com/sms/status?job=m1.0";
        let job = JobId::parse("m1.0").unwrap();
        let tracking = Some(SmsTracking { job: &job, status_callback: callback });
        let first = sms.send(twilio(&from), &to, "ok", &[], tracking).await.unwrap();
        sms.lose_next_answer();
        assert!(matches!(sms.send(twilio(&from), &to, "ok", &[], tracking).await, Err(ProviderFailure::Ambiguous(_))));
        sms.send(twilio(&from), &to, "other text", &[], None).await.unwrap();
        sms.send(twilio(&from), &other, "ok", &[], None).await.unwrap();

        assert_eq!(sms.sends_of(&job), 2, "the lost answer's message was sent too");
        let listed = list_of(sms.find_sent(twilio(&from), &to, "ok", since).await.unwrap());
        assert_eq!(listed.len(), 2, "same from, to and body only");
        assert_eq!(listed[1].id, first.id, "newest first");
        assert_eq!(listed[0].status, FakeSms::ACCEPTED_STATUS);
        let later = Timestamp::now() + SignedDuration::from_secs(1);
        let found = list_of(sms.find_sent(twilio(&from), &to, "ok", later).await.unwrap());
        assert_eq!(found.len(), 2, "within the adapter's slack");
        sms.set_list_slack(SignedDuration::ZERO);
        let found = list_of(sms.find_sent(twilio(&from), &to, "ok", later).await.unwrap());
        assert!(found.is_empty(), "created before `since`");

        sms.fail_next_find(ProviderFailure::NotSent("down".into()));
        assert!(sms.find_sent(twilio(&from), &to, "ok", since).await.is_err());
        assert_eq!(sms.find_calls(), 4);
        assert_eq!(sms.sent_to(&to).len(), 3);
        assert_eq!(sms.calls()[0].status_callback.as_deref(), Some(callback));
    }
}
