//! Who gets a copy of a customer's text (docs/using.md, "Fewer copies"). WhatsApp bills the
//! line for each message it sends an agent (docs/operating.md, "What it costs"), so a copy
//! goes only where someone will act on it, and never nowhere:
//!
//! 1. a claimed conversation's texts go to the agent who claimed it (line option
//!    `claimed_copies`, default `claimer`), while that agent is on duty;
//! 2. otherwise to the agents on duty (everyone but those who sent `/away`, or are outside
//!    their own `agent_hours`);
//! 3. when nobody is on duty, to every agent, and the customer gets the line's `no_agent`
//!    reply: nothing is missed.

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde::Deserialize;

use super::line::Line;
use super::phone::WaId;

/// What the store knows that decides the copies: the conversation's claimer and who is away.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyFacts {
    pub claimed_by: Option<WaId>,
    pub away: BTreeSet<WaId>,
}

/// What a text's copies were decided on about the conversation's claim. The webhook decides
/// before it writes, from what it last saw; the store appends the text only if the claim is
/// still that (else `AppendOutcome::ClaimChanged`, and the copies are decided again), so a
/// claim is never missed and reading it costs no call of its own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ClaimAssumed {
    /// Append whatever the claim is: the copies went to everyone (the claim couldn't be read).
    #[default]
    Any,
    Unclaimed,
    ClaimedBy(WaId),
}

impl ClaimAssumed {
    pub fn of(claimed_by: Option<&WaId>) -> Self {
        claimed_by.map_or(Self::Unclaimed, |agent| Self::ClaimedBy(agent.clone()))
    }

    /// Whether a conversation claimed by `claimed_by` is what was assumed.
    pub fn holds_for(&self, claimed_by: Option<&WaId>) -> bool {
        match self {
            Self::Any => true,
            Self::Unclaimed => claimed_by.is_none(),
            Self::ClaimedBy(agent) => claimed_by == Some(agent),
        }
    }
}

/// Line option: where a claimed conversation's texts go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClaimedCopies {
    /// To the agent who claimed it only (while on duty).
    #[default]
    Claimer,
    /// To every agent on duty, as before a claim.
    Everyone,
}

/// Why the copies went where they went: logged, and decides the `no_agent` reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopiedTo {
    /// The conversation's claimer.
    Claimer,
    /// Every agent on duty (all of them when nobody is away).
    OnDuty,
    /// Nobody is on duty (or the line has no agents): to everyone there is.
    NobodyOnDuty,
    /// The store couldn't say who holds the conversation or who is away: to everyone, so
    /// nothing is missed.
    Everyone,
}

impl CopiedTo {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Claimer => "claimer",
            Self::OnDuty => "on_duty",
            Self::NobodyOnDuty => "nobody_on_duty",
            Self::Everyone => "everyone",
        }
    }
}

/// The agents who get a copy, in the line's order, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copies {
    pub agents: Vec<WaId>,
    pub to: CopiedTo,
}

pub fn copies_for(line: &Line, facts: &CopyFacts, now: Timestamp) -> Copies {
    let on_duty = on_duty(line, &facts.away, now);
    if let Some(claimer) = &facts.claimed_by
        && line.claimed_copies == ClaimedCopies::Claimer
        && on_duty.contains(claimer)
    {
        return Copies { agents: vec![claimer.clone()], to: CopiedTo::Claimer };
    }
    if on_duty.is_empty() {
        Copies { agents: line.agents.clone(), to: CopiedTo::NobodyOnDuty }
    } else {
        Copies { agents: on_duty, to: CopiedTo::OnDuty }
    }
}

/// The line's agents who haven't sent `/away` and are inside their own hours (if they have
/// any) at `now`, in the line's order.
pub fn on_duty(line: &Line, away: &BTreeSet<WaId>, now: Timestamp) -> Vec<WaId> {
    line.agents.iter().filter(|agent| !off_duty(line, away, agent, now)).cloned().collect()
}

/// `agent` is away, or outside their hours.
pub fn off_duty(line: &Line, away: &BTreeSet<WaId>, agent: &WaId, now: Timestamp) -> bool {
    away.contains(agent) || line.agent_hours.get(agent).is_some_and(|hours| !hours.is_open(now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn line(agents: usize) -> Line {
        let agents: Vec<String> = (0..agents).map(|n| format!("\"1415555010{n}\"")).collect();
        let json = format!(
            r#"[{{"id": "main", "sms_number": "+14155550100", "sms_provider": "twilio",
                "whatsapp_phone_number_id": "106540352242922", "agents": [{}],
                "template": {{"name": "new_customer_message", "language": "en_US"}}}}]"#,
            agents.join(",")
        );
        super::super::Lines::from_json("BRIDGE_LINES", &json).unwrap().iter().next().unwrap().clone()
    }

    fn agent(n: usize) -> WaId {
        WaId::parse(&format!("1415555010{n}")).unwrap()
    }

    /// A Monday, 12:00 UTC.
    fn noon() -> Timestamp {
        "2026-12-07T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn an_agent_outside_their_own_hours_is_off_duty() {
        let json = r#"{ "time_zone": "Etc/UTC", "weekly": [{ "days": ["mon"], "open": "09:00", "close": "11:00" }] }"#;
        let mut line = line(2);
        line.agent_hours.insert(agent(1), serde_json::from_str(json).unwrap());
        let at_ten = noon() - jiff::SignedDuration::from_hours(2);
        assert_eq!(copies_for(&line, &CopyFacts::default(), at_ten).agents, [agent(0), agent(1)]);
        assert_eq!(copies_for(&line, &CopyFacts::default(), noon()).agents, [agent(0)]);
        // Their claim holds only inside their hours.
        let claimed = CopyFacts { claimed_by: Some(agent(1)), away: BTreeSet::new() };
        assert_eq!(copies_for(&line, &claimed, noon()), Copies { agents: vec![agent(0)], to: CopiedTo::OnDuty });
    }

    #[test]
    fn a_claimed_conversation_is_copied_to_its_claimer_only() {
        let line = line(3);
        let facts = CopyFacts { claimed_by: Some(agent(1)), away: BTreeSet::new() };
        assert_eq!(copies_for(&line, &facts, noon()), Copies { agents: vec![agent(1)], to: CopiedTo::Claimer });
        let everyone = Line { claimed_copies: ClaimedCopies::Everyone, ..line.clone() };
        assert_eq!(copies_for(&everyone, &facts, noon()).agents.len(), 3, "the line's option");
    }

    #[test]
    fn a_claimer_who_went_away_no_longer_holds_the_copies() {
        let line = line(3);
        let facts = CopyFacts { claimed_by: Some(agent(1)), away: BTreeSet::from([agent(1)]) };
        assert_eq!(
            copies_for(&line, &facts, noon()),
            Copies { agents: vec![agent(0), agent(2)], to: CopiedTo::OnDuty }
        );
    }

    #[test]
    fn a_claimer_no_longer_on_the_line_holds_nothing() {
        let facts = CopyFacts { claimed_by: Some(agent(7)), away: BTreeSet::new() };
        assert_eq!(copies_for(&line(2), &facts, noon()).to, CopiedTo::OnDuty);
    }

    #[test]
    fn when_nobody_is_on_duty_everyone_gets_it() {
        let line = line(2);
        let facts = CopyFacts { claimed_by: None, away: BTreeSet::from([agent(0), agent(1)]) };
        assert_eq!(
            copies_for(&line, &facts, noon()),
            Copies { agents: line.agents.clone(), to: CopiedTo::NobodyOnDuty }
        );
        assert_eq!(
            copies_for(&super::super::line::Line { agents: vec![], ..line }, &CopyFacts::default(), noon()).to,
            CopiedTo::NobodyOnDuty
        );
    }

    proptest! {
        /// Laws: copies go to agents of the line only, never to someone away while anyone is
        /// on duty, in the line's order, and never to nobody while the line has agents.
        #[test]
        fn copies_reach_someone_and_only_agents_on_duty_when_there_are(
            agents in 1usize..6,
            away in proptest::collection::btree_set(0usize..6, 0..6),
            claimer in proptest::option::of(0usize..7),
        ) {
            let line = line(agents);
            let facts = CopyFacts { claimed_by: claimer.map(agent), away: away.iter().copied().map(agent).collect() };
            let copies = copies_for(&line, &facts, noon());
            prop_assert!(!copies.agents.is_empty());
            prop_assert!(copies.agents.iter().all(|a| line.agents.contains(a)));
            let positions: Vec<usize> = copies.agents.iter().map(|a| line.agents.iter().position(|b| b == a).unwrap()).collect();
            prop_assert!(positions.windows(2).all(|w| w[0] < w[1]), "line order");
            if copies.to != CopiedTo::NobodyOnDuty {
                prop_assert!(copies.agents.iter().all(|a| !facts.away.contains(a)));
            } else {
                prop_assert!(line.agents.iter().all(|a| facts.away.contains(a)));
            }
        }
    }
}
