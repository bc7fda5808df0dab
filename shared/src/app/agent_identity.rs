//! Which agent a WhatsApp user is, when WhatsApp may leave out their phone number
//! (docs/using.md, "Agents and customers with a WhatsApp username").
//!
//! An agent is configured by phone number. The bridge learns the business-scoped user id
//! (BSUID) that goes with it from the agent's own messages (which carry both) and from the
//! status reports of sends to their number (`recipient_id` and `recipient_user_id`), so a
//! later message with the user id only is still theirs. Sends to agents stay by phone, as Meta
//! recommends.

use std::collections::HashSet;
use std::sync::Mutex;

use jiff::Timestamp;

use crate::domain::{Line, LineId, UserId, WaId, WhatsAppStatusReport, WhatsAppUser};
use crate::ports::{Agents, StoreError};

/// The user ids this process already wrote, so a warm function learns each once instead of
/// writing on every message and status report. Losing it (a cold start) costs one write.
#[derive(Debug, Default)]
pub struct LearntUserIds(Mutex<HashSet<(LineId, UserId, WaId)>>);

impl LearntUserIds {
    pub fn new() -> Self {
        Self::default()
    }

    fn knows(&self, entry: &(LineId, UserId, WaId)) -> bool {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).contains(entry)
    }

    fn remember(&self, entry: (LineId, UserId, WaId)) {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(entry);
    }

    fn forget(&self, line: &LineId, user_id: &UserId) {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .retain(|(l, id, _)| !(l == line && id == user_id));
    }
}

/// The configured agent `sender` is, if any. A phone number decides when there is one; a user
/// id alone counts only if it was learnt for an agent the line still lists.
pub async fn recognise<S: Agents>(
    store: &S,
    line: &Line,
    sender: &WhatsAppUser,
    now: Timestamp,
    learnt: &LearntUserIds,
) -> Result<Option<WaId>, StoreError> {
    if let Some(phone) = sender.phone() {
        if !line.agents.contains(phone) {
            return Ok(None);
        }
        if let Some(user_id) = sender.user_id() {
            learn(store, &line.id, user_id, phone, now, learnt).await?;
        }
        return Ok(Some(phone.clone()));
    }
    let Some(user_id) = sender.user_id() else { return Ok(None) };
    Ok(store.agent_by_user_id(&line.id, user_id).await?.filter(|agent| line.agents.contains(agent)))
}

/// A status report on a send to an agent's number that names their user id: learnt.
/// Returns whether the report was about an agent with a user id.
pub async fn learn_from_status<S: Agents>(
    store: &S,
    line: &Line,
    report: &WhatsAppStatusReport,
    now: Timestamp,
    learnt: &LearntUserIds,
) -> Result<bool, StoreError> {
    match (&report.recipient, &report.recipient_user_id) {
        (Some(phone), Some(user_id)) if line.agents.contains(phone) => {
            learn(store, &line.id, user_id, phone, now, learnt).await?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// An agent's user id changed (`user_changed_user_id`): the old one is forgotten, the new
/// one learnt. Safe to repeat.
pub async fn user_id_changed<S: Agents>(
    store: &S,
    line: &Line,
    agent: &WaId,
    old: Option<&UserId>,
    new: &UserId,
    now: Timestamp,
    learnt: &LearntUserIds,
) -> Result<(), StoreError> {
    if let Some(old) = old.filter(|old| *old != new) {
        store.forget_agent_user_id(&line.id, old).await?;
        learnt.forget(&line.id, old);
    }
    learn(store, &line.id, new, agent, now, learnt).await
}

/// An agent changed number (`user_changed_number`): WhatsApp gives them a new user id with
/// it, so the old one no longer names them. Safe to repeat.
pub async fn number_changed<S: Agents>(
    store: &S,
    line: &Line,
    old: Option<&UserId>,
    learnt: &LearntUserIds,
) -> Result<(), StoreError> {
    if let Some(old) = old {
        store.forget_agent_user_id(&line.id, old).await?;
        learnt.forget(&line.id, old);
    }
    Ok(())
}

async fn learn<S: Agents>(
    store: &S,
    line: &LineId,
    user_id: &UserId,
    agent: &WaId,
    now: Timestamp,
    learnt: &LearntUserIds,
) -> Result<(), StoreError> {
    let entry = (line.clone(), user_id.clone(), agent.clone());
    if learnt.knows(&entry) {
        return Ok(());
    }
    store.learn_agent_user_id(line, user_id, agent, now).await?;
    learnt.remember(entry);
    Ok(())
}
