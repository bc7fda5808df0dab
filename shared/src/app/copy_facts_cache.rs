//! What a warm SMS webhook last saw of the facts that decide a text's copies
//! (`domain::copies`), so that the common text costs no read of its own (docs/using.md,
//! "Fewer copies"):
//!
//! - the line's duty roster (`/away`, `/back`), trusted for `DUTY_FRESH` (the SMS webhook's
//!   `DUTY_ROSTER_CACHE_SECONDS`): a change reaches copies within that. A stale roster costs at most a copy too many (an agent just away)
//!   or one fewer for an agent just back while others are on duty: nothing is missed;
//! - each conversation's claim, as a guess only: the store appends the text only if the
//!   claim is still the guessed one (`ClaimAssumed`), so a stale guess costs a retry, never
//!   a copy in the wrong place.
//!
//! Losing it (a cold start) costs one read.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use jiff::{SignedDuration, Timestamp};

use crate::domain::copies::CopyFacts;
use crate::domain::{ConversationKey, LineId, WaId};

/// How long a read duty roster decides copies, unless configured.
pub const DUTY_FRESH: SignedDuration = SignedDuration::from_secs(30);
/// Claims remembered per instance; past this, forgotten all at once (each then costs one
/// failed append to learn again, if claimed).
const MAX_CLAIMS: usize = 10_000;

#[derive(Debug)]
pub struct CopyFactsCache {
    duty_fresh: SignedDuration,
    seen: Mutex<Seen>,
}

impl Default for CopyFactsCache {
    fn default() -> Self {
        Self::with_duty_fresh(DUTY_FRESH)
    }
}

#[derive(Debug, Default)]
struct Seen {
    away: HashMap<LineId, (BTreeSet<WaId>, Timestamp)>,
    claims: HashMap<ConversationKey, Option<WaId>>,
}

impl CopyFactsCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// A roster read decides for `duty_fresh`; zero reads it for every text.
    pub fn with_duty_fresh(duty_fresh: SignedDuration) -> Self {
        Self { duty_fresh, seen: Mutex::default() }
    }

    /// The facts to decide on without a read, if the line's roster was read within
    /// the configured freshness of `now`. The claim is a guess: unclaimed unless seen otherwise.
    pub fn facts(&self, conversation: &ConversationKey, now: Timestamp) -> Option<CopyFacts> {
        let seen = self.lock();
        let (away, read_at) = seen.away.get(&conversation.line)?;
        let fresh = now.duration_since(*read_at) < self.duty_fresh && *read_at <= now;
        fresh.then(|| CopyFacts { claimed_by: seen.claims.get(conversation).cloned().flatten(), away: away.clone() })
    }

    /// Facts just read from the store, at `now`.
    pub fn remember(&self, conversation: &ConversationKey, facts: &CopyFacts, now: Timestamp) {
        let mut seen = self.lock();
        seen.away.insert(conversation.line.clone(), (facts.away.clone(), now));
        remember_claim(&mut seen, conversation, facts.claimed_by.clone());
    }

    /// The store refused a text because the conversation's claim is `claimed_by`.
    pub fn claim_is(&self, conversation: &ConversationKey, claimed_by: Option<WaId>) {
        remember_claim(&mut self.lock(), conversation, claimed_by);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn remember_claim(seen: &mut Seen, conversation: &ConversationKey, claimed_by: Option<WaId>) {
    // Unclaimed is the guess for a conversation not remembered: no entry needed.
    if claimed_by.is_none() {
        seen.claims.remove(conversation);
        return;
    }
    if seen.claims.len() >= MAX_CLAIMS {
        seen.claims.clear();
    }
    seen.claims.insert(conversation.clone(), claimed_by);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::E164;

    fn conversation(customer: &str) -> ConversationKey {
        ConversationKey { line: LineId::parse("demo").unwrap(), customer: E164::parse(customer).unwrap() }
    }

    fn agent(n: u8) -> WaId {
        WaId::parse(&format!("1415555011{n}")).unwrap()
    }

    #[test]
    fn nothing_is_known_before_a_read() {
        assert_eq!(CopyFactsCache::new().facts(&conversation("+14155550134"), Timestamp::now()), None);
    }

    #[test]
    fn a_read_roster_decides_for_the_whole_line_until_it_is_stale() {
        let cache = CopyFactsCache::new();
        let t = Timestamp::now();
        let away = BTreeSet::from([agent(1)]);
        cache.remember(&conversation("+14155550134"), &CopyFacts { claimed_by: None, away: away.clone() }, t);
        let other = conversation("+14155550199");
        let just_before = t + DUTY_FRESH - SignedDuration::from_millis(1);
        assert_eq!(cache.facts(&other, just_before), Some(CopyFacts { claimed_by: None, away }));
        assert_eq!(cache.facts(&other, t + DUTY_FRESH), None, "stale: read again");
        assert_eq!(cache.facts(&other, t - SignedDuration::from_secs(1)), None, "a clock that went back: read");
    }

    #[test]
    fn a_freshness_of_zero_reads_for_every_text() {
        let cache = CopyFactsCache::with_duty_fresh(SignedDuration::ZERO);
        let (k7, t) = (conversation("+14155550134"), Timestamp::now());
        cache.remember(&k7, &CopyFacts::default(), t);
        assert_eq!(cache.facts(&k7, t), None);
    }

    #[test]
    fn a_claim_is_remembered_per_conversation_and_forgotten_when_released() {
        let cache = CopyFactsCache::new();
        let (k7, other, t) = (conversation("+14155550134"), conversation("+14155550199"), Timestamp::now());
        cache.remember(&k7, &CopyFacts { claimed_by: Some(agent(0)), away: BTreeSet::new() }, t);
        assert_eq!(cache.facts(&k7, t).unwrap().claimed_by, Some(agent(0)));
        assert_eq!(cache.facts(&other, t).unwrap().claimed_by, None, "another conversation: guessed unclaimed");
        cache.claim_is(&k7, Some(agent(2)));
        assert_eq!(cache.facts(&k7, t).unwrap().claimed_by, Some(agent(2)));
        cache.claim_is(&k7, None);
        assert_eq!(cache.facts(&k7, t).unwrap().claimed_by, None);
    }
}
