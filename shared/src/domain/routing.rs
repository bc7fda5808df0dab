//! Where an agent's WhatsApp message goes (docs/using.md). First match wins:
//!
//! 1. a swipe-reply (`context.id`) to a forwarded copy → that copy's conversation;
//! 2. a leading handle, `#K7 text` → that conversation (an unknown handle asks, rather than
//!    guessing: a typo must never reach the wrong customer);
//! 3. a command, `/…`: `/help`, `/list [page]`, `/close [#K7]`, `/to +E164 text`;
//! 4. the agent's focus, if set within the line's `focus_hours`;
//! 5. otherwise the agent is asked which conversation, and nothing is relayed.
//!
//! Lookups (copy, handle, focus) are the use case's job; this module parses the text and
//! decides from their results, so the precedence is testable without a store.

use std::time::Duration;

use jiff::Timestamp;

use super::conversation::{ConversationKey, Handle};
use super::phone::E164;

/// An agent's text, split into what routing looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentText {
    /// `#K7` at the very start (after spaces), if it has a handle's shape.
    pub handle: Option<Handle>,
    /// `/name args` at the very start.
    pub command: Option<Command>,
    /// The text to relay: without the leading handle, trimmed.
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// Lowercase, without the `/`.
    pub name: String,
    pub args: String,
}

/// Pages of `/list` beyond this are not offered (ten rows each).
pub const LIST_MAX_PAGE: usize = 20;

/// What a command asks for (docs/using.md), its arguments parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentCommand {
    Help,
    /// Open conversations, newest first, ten per page (1-based).
    List {
        page: usize,
    },
    /// Close the named conversation, or the agent's focus.
    Close {
        handle: Option<Handle>,
    },
    /// Give back a claimed conversation (the named one, or the agent's focus): its texts go
    /// to everyone on duty again.
    Unclaim {
        handle: Option<Handle>,
    },
    /// Opt the named customer out, as their STOP would.
    OptOut {
        handle: Handle,
    },
    /// Off duty: no copies until `/back` (unless nobody else is on duty).
    Away,
    /// On duty again.
    Back,
    /// Text a customer, starting the conversation if there is none.
    To {
        customer: E164,
        text: String,
    },
    /// A known command with arguments it can't use; `usage` says how to type it.
    Invalid {
        usage: &'static str,
    },
    Unknown {
        name: String,
    },
}

pub const USAGE_LIST: &str = "/list or /list 2";
pub const USAGE_CLOSE: &str = "/close or /close #K7";
pub const USAGE_UNCLAIM: &str = "/unclaim or /unclaim #K7";
pub const USAGE_OPT_OUT: &str = "/optout #K7";
pub const USAGE_TO: &str = "/to +14155550134 Hello from Acme!";

impl Command {
    pub fn interpret(&self) -> AgentCommand {
        let args = self.args.trim();
        match self.name.as_str() {
            "help" => AgentCommand::Help,
            "list" if args.is_empty() => AgentCommand::List { page: 1 },
            "list" => match args.parse::<usize>() {
                Ok(page) if (1..=LIST_MAX_PAGE).contains(&page) => AgentCommand::List { page },
                _ => AgentCommand::Invalid { usage: USAGE_LIST },
            },
            "close" if args.is_empty() => AgentCommand::Close { handle: None },
            "close" => match handle_argument(args) {
                Some(handle) => AgentCommand::Close { handle: Some(handle) },
                None => AgentCommand::Invalid { usage: USAGE_CLOSE },
            },
            "unclaim" if args.is_empty() => AgentCommand::Unclaim { handle: None },
            "unclaim" => match handle_argument(args) {
                Some(handle) => AgentCommand::Unclaim { handle: Some(handle) },
                None => AgentCommand::Invalid { usage: USAGE_UNCLAIM },
            },
            "optout" => match handle_argument(args) {
                Some(handle) => AgentCommand::OptOut { handle },
                None => AgentCommand::Invalid { usage: USAGE_OPT_OUT },
            },
            "away" => AgentCommand::Away,
            "back" => AgentCommand::Back,
            "to" => {
                let (number, text) = args.split_once(char::is_whitespace).unwrap_or((args, ""));
                match E164::parse(number) {
                    Ok(customer) if !text.trim().is_empty() => {
                        AgentCommand::To { customer, text: text.trim().to_owned() }
                    }
                    _ => AgentCommand::Invalid { usage: USAGE_TO },
                }
            }
            other => AgentCommand::Unknown { name: other.to_owned() },
        }
    }
}

/// `#K7` or `K7` as a command's argument; anything longer is not a handle.
fn handle_argument(args: &str) -> Option<Handle> {
    Handle::parse(args).ok().filter(|_| args.starts_with('#') || !args.contains(' '))
}

impl AgentText {
    pub fn parse(text: &str) -> Self {
        let trimmed = text.trim();
        if let Some(rest) = trimmed.strip_prefix('/') {
            let (name, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric()) {
                let command = Command { name: name.to_ascii_lowercase(), args: args.trim().to_owned() };
                return Self { handle: None, command: Some(command), body: trimmed.to_owned() };
            }
        }
        if trimmed.starts_with('#') {
            let (token, rest) = trimmed.split_once(char::is_whitespace).unwrap_or((trimmed, ""));
            if let Ok(handle) = Handle::parse(token) {
                return Self { handle: Some(handle), command: None, body: rest.trim().to_owned() };
            }
        }
        Self { handle: None, command: None, body: trimmed.to_owned() }
    }
}

/// What the store said about the message's routing clues, in precedence order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RoutingFacts {
    /// The conversation of the forwarded copy the agent swiped, if it is one of this line's.
    pub replied_to: Option<ConversationKey>,
    /// The leading handle, looked up on this line.
    pub handle: Option<HandleLookup>,
    /// The agent's current focus and when it was set.
    pub focus: Option<Focus>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandleLookup {
    Found(ConversationKey),
    Unknown(Handle),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Focus {
    pub conversation: ConversationKey,
    pub handle: Handle,
    pub since: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Relay `text` to the conversation's customer (and focus the agent on it).
    Relay {
        conversation: ConversationKey,
        text: String,
        rule: RouteRule,
    },
    /// Only a handle, no text: switch the agent's focus.
    Focus {
        conversation: ConversationKey,
    },
    Command(Command),
    /// Ask which conversation; keep `text` pending until the agent picks one.
    AskWhich {
        text: String,
        unknown_handle: Option<Handle>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteRule {
    SwipeReply,
    Handle,
    Focus,
    /// The quick-reply button of a forwarded copy.
    QuickReply,
    /// `/to +E164 text`.
    To,
}

impl RouteRule {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SwipeReply => "swipe_reply",
            Self::Handle => "handle",
            Self::Focus => "focus",
            Self::QuickReply => "quick_reply",
            Self::To => "to",
        }
    }
}

pub fn focus_is_current(focus: &Focus, focus_hours: u32, now: Timestamp) -> bool {
    let window = Duration::from_secs(u64::from(focus_hours) * 3600);
    focus.since <= now && now.duration_since(focus.since).unsigned_abs() < window
}

pub fn decide(text: &AgentText, facts: RoutingFacts, focus_hours: u32, now: Timestamp) -> Route {
    if let Some(conversation) = facts.replied_to {
        // The swipe names the conversation; the text goes as typed.
        let full = match &text.handle {
            Some(handle) if !text.body.is_empty() => format!("{handle} {}", text.body),
            Some(handle) => handle.to_string(),
            None => text.body.clone(),
        };
        return Route::Relay { conversation, text: full, rule: RouteRule::SwipeReply };
    }
    match facts.handle {
        Some(HandleLookup::Found(conversation)) if text.body.is_empty() => return Route::Focus { conversation },
        Some(HandleLookup::Found(conversation)) => {
            return Route::Relay { conversation, text: text.body.clone(), rule: RouteRule::Handle };
        }
        Some(HandleLookup::Unknown(handle)) => {
            return Route::AskWhich { text: text.body.clone(), unknown_handle: Some(handle) };
        }
        None => {}
    }
    if let Some(command) = &text.command {
        return Route::Command(command.clone());
    }
    match facts.focus {
        Some(focus) if focus_is_current(&focus, focus_hours, now) => {
            Route::Relay { conversation: focus.conversation, text: text.body.clone(), rule: RouteRule::Focus }
        }
        _ => Route::AskWhich { text: text.body.clone(), unknown_handle: None },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{E164, LineId};
    use proptest::prelude::*;

    fn conv(n: u8) -> ConversationKey {
        ConversationKey {
            line: LineId::parse("main").unwrap(),
            customer: E164::parse(&format!("+1415555010{n}")).unwrap(),
        }
    }

    fn now() -> Timestamp {
        "2026-11-25T12:00:00Z".parse().unwrap()
    }

    fn focus(n: u8, hours_ago: i64) -> Focus {
        Focus {
            conversation: conv(n),
            handle: Handle::parse("F5").unwrap(),
            since: now() - jiff::SignedDuration::from_hours(hours_ago),
        }
    }

    #[test]
    fn parses_handles_commands_and_plain_text() {
        let t = AgentText::parse("  #k7   See you at 9 ");
        assert_eq!((t.handle.unwrap().as_str(), t.body.as_str()), ("K7", "See you at 9"));
        let t = AgentText::parse("#K7");
        assert_eq!((t.handle.unwrap().as_str(), t.body.as_str()), ("K7", ""));
        let t = AgentText::parse("/close #K7");
        assert_eq!(t.command, Some(Command { name: "close".into(), args: "#K7".into() }));
        for plain in
            ["#1 priority for us", "# not a handle", "#hashtagsarefun today", "/ not a command", "http://x/y", "Hello"]
        {
            let t = AgentText::parse(plain);
            assert_eq!((t.handle, t.command, t.body.as_str()), (None, None, plain.trim()), "{plain}");
        }
    }

    #[test]
    fn commands_parse_their_arguments() {
        let cmd = |text: &str| AgentText::parse(text).command.unwrap().interpret();
        assert_eq!(cmd("/help"), AgentCommand::Help);
        assert_eq!(cmd("/HELP me"), AgentCommand::Help);
        assert_eq!(cmd("/list"), AgentCommand::List { page: 1 });
        assert_eq!(cmd("/list 3"), AgentCommand::List { page: 3 });
        for bad in ["/list 0", "/list two", "/list 999"] {
            assert_eq!(cmd(bad), AgentCommand::Invalid { usage: USAGE_LIST }, "{bad}");
        }
        assert_eq!(cmd("/close"), AgentCommand::Close { handle: None });
        assert_eq!(cmd("/close #k7"), AgentCommand::Close { handle: Some(Handle::parse("K7").unwrap()) });
        assert_eq!(cmd("/close K7"), AgentCommand::Close { handle: Some(Handle::parse("K7").unwrap()) });
        assert_eq!(cmd("/close the door"), AgentCommand::Invalid { usage: USAGE_CLOSE });
        assert_eq!(
            cmd("/to +14155550134   Your order is ready "),
            AgentCommand::To { customer: E164::parse("+14155550134").unwrap(), text: "Your order is ready".into() }
        );
        for bad in ["/to", "/to +14155550134", "/to 4155550134 hi", "/to +1 415 555 0134"] {
            assert_eq!(cmd(bad), AgentCommand::Invalid { usage: USAGE_TO }, "{bad}");
        }
        assert_eq!(cmd("/claim"), AgentCommand::Unknown { name: "claim".into() });
        assert_eq!(cmd("/unclaim"), AgentCommand::Unclaim { handle: None });
        assert_eq!(cmd("/unclaim #k7"), AgentCommand::Unclaim { handle: Some(Handle::parse("K7").unwrap()) });
        assert_eq!(cmd("/unclaim it please"), AgentCommand::Invalid { usage: USAGE_UNCLAIM });
        assert_eq!((cmd("/away"), cmd("/Back")), (AgentCommand::Away, AgentCommand::Back));
        assert_eq!(cmd("/optout #K7"), AgentCommand::OptOut { handle: Handle::parse("K7").unwrap() });
        assert_eq!(cmd("/optout"), AgentCommand::Invalid { usage: USAGE_OPT_OUT });
    }

    #[test]
    fn a_swipe_reply_wins_over_everything() {
        let facts = RoutingFacts {
            replied_to: Some(conv(1)),
            handle: Some(HandleLookup::Found(conv(2))),
            focus: Some(focus(3, 0)),
        };
        let route = decide(&AgentText::parse("#K7 hi"), facts, 12, now());
        assert_eq!(route, Route::Relay { conversation: conv(1), text: "#K7 hi".into(), rule: RouteRule::SwipeReply });
    }

    #[test]
    fn a_known_handle_wins_over_focus_and_an_unknown_one_asks() {
        let facts =
            RoutingFacts { handle: Some(HandleLookup::Found(conv(2))), focus: Some(focus(3, 0)), ..Default::default() };
        let route = decide(&AgentText::parse("#K7 hi"), facts, 12, now());
        assert_eq!(route, Route::Relay { conversation: conv(2), text: "hi".into(), rule: RouteRule::Handle });

        let unknown = Handle::parse("K8").unwrap();
        let facts = RoutingFacts {
            handle: Some(HandleLookup::Unknown(unknown.clone())),
            focus: Some(focus(3, 0)),
            ..Default::default()
        };
        let route = decide(&AgentText::parse("#K8 hi"), facts, 12, now());
        assert_eq!(route, Route::AskWhich { text: "hi".into(), unknown_handle: Some(unknown) });

        let facts = RoutingFacts { handle: Some(HandleLookup::Found(conv(2))), ..Default::default() };
        assert_eq!(decide(&AgentText::parse("#K7"), facts, 12, now()), Route::Focus { conversation: conv(2) });
    }

    #[test]
    fn focus_lasts_focus_hours() {
        let text = AgentText::parse("on my way");
        let fresh = RoutingFacts { focus: Some(focus(3, 11)), ..Default::default() };
        assert!(matches!(decide(&text, fresh, 12, now()), Route::Relay { rule: RouteRule::Focus, .. }));
        let stale = RoutingFacts { focus: Some(focus(3, 12)), ..Default::default() };
        assert_eq!(decide(&text, stale, 12, now()), Route::AskWhich { text: "on my way".into(), unknown_handle: None });
        assert_eq!(
            decide(&text, RoutingFacts::default(), 12, now()),
            Route::AskWhich { text: "on my way".into(), unknown_handle: None }
        );
    }

    #[test]
    fn commands_come_before_focus() {
        let facts = RoutingFacts { focus: Some(focus(3, 0)), ..Default::default() };
        assert!(matches!(decide(&AgentText::parse("/list"), facts, 12, now()), Route::Command(_)));
    }

    proptest! {
        #[test]
        fn first_match_wins(
            replied in proptest::option::of(0u8..3),
            handle in proptest::option::of(proptest::option::of(0u8..3)),
            focus_age in proptest::option::of(0i64..30),
            is_command in any::<bool>(),
        ) {
            let text = if is_command { AgentText::parse("/list") } else { AgentText::parse("#K7 hello") };
            let facts = RoutingFacts {
                replied_to: replied.map(conv),
                handle: handle.map(|h| h.map_or(HandleLookup::Unknown(Handle::parse("K7").unwrap()), |n| HandleLookup::Found(conv(n)))),
                focus: focus_age.map(|age| focus(9, age)),
            };
            let route = decide(&text, facts.clone(), 12, now());
            let expected_conversation = facts.replied_to.clone().or(match &facts.handle { Some(HandleLookup::Found(c)) => Some(c.clone()), _ => None });
            match route {
                Route::Relay { conversation, rule, .. } => match rule {
                    RouteRule::SwipeReply => prop_assert_eq!(Some(conversation), facts.replied_to),
                    RouteRule::Handle => { prop_assert!(facts.replied_to.is_none()); prop_assert_eq!(Some(conversation), expected_conversation); }
                    RouteRule::Focus => { prop_assert!(expected_conversation.is_none() && facts.handle.is_none()); prop_assert!(focus_age.unwrap() < 12); }
                    RouteRule::QuickReply | RouteRule::To => prop_assert!(false, "only buttons and commands relay by these"),
                },
                Route::AskWhich { .. } => prop_assert!(facts.replied_to.is_none() && !matches!(facts.handle, Some(HandleLookup::Found(_)))),
                Route::Command(_) => prop_assert!(is_command && facts.replied_to.is_none() && facts.handle.is_none()),
                Route::Focus { .. } => prop_assert!(false, "text is never empty here"),
            }
        }
    }
}
