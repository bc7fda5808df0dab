//! A conversation is one customer of one line (ARCHITECTURE.md). Agents name it by a short handle
//! such as `#K7`, unique within the line.

use std::fmt;

use super::line::LineId;
use super::phone::E164;

/// Characters a handle is made of: no `0/O`, `1/I/L`, easy to read and type on a phone.
const HANDLE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
pub const HANDLE_MIN_LEN: usize = 2;
pub const HANDLE_MAX_LEN: usize = 6;

#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Handle(String);

impl Handle {
    /// Accepts `K7`, `#K7` or `#k7`.
    pub fn parse(input: &str) -> Result<Self, String> {
        let raw = input.strip_prefix('#').unwrap_or(input).to_ascii_uppercase();
        let ok =
            (HANDLE_MIN_LEN..=HANDLE_MAX_LEN).contains(&raw.len()) && raw.bytes().all(|b| HANDLE_ALPHABET.contains(&b));
        if ok { Ok(Self(raw)) } else { Err(format!("`{input}` is not a conversation handle")) }
    }

    /// A random handle of `len` characters. Uniqueness is not decided here: the store
    /// reserves it with a conditional write and the caller draws again on a collision.
    pub fn random(len: usize, rng: &mut fastrand::Rng) -> Self {
        let len = len.clamp(HANDLE_MIN_LEN, HANDLE_MAX_LEN);
        Self((0..len).map(|_| HANDLE_ALPHABET[rng.usize(..HANDLE_ALPHABET.len())] as char).collect())
    }

    /// Length to draw after `collisions` failed reservations: short while the line has
    /// room, longer as it fills up, so reserving never loops for long.
    pub fn length_after_collisions(collisions: u32) -> usize {
        (HANDLE_MIN_LEN + (collisions / 2) as usize).min(HANDLE_MAX_LEN)
    }
}

/// Shown with the `#`, as agents type it.
impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

string_newtype!(Handle, String);

/// Identifies a conversation: one customer of one line.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ConversationKey {
    pub line: LineId,
    pub customer: E164,
}

/// A message's id: a UUIDv7, so ids sort by creation time within a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MessageId(String);

impl MessageId {
    pub fn new_v7() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }

    pub fn parse(input: &str) -> Result<Self, String> {
        uuid::Uuid::parse_str(input)
            .map(|u| Self(u.hyphenated().to_string()))
            .map_err(|_| format!("`{input}` is not a message id"))
    }

    /// When the id was made (a UUIDv7 carries its creation time to the millisecond): when
    /// the bridge first recorded the message.
    pub fn created_at(&self) -> Option<jiff::Timestamp> {
        let (seconds, nanos) = uuid::Uuid::parse_str(&self.0).ok()?.get_timestamp()?.to_unix();
        jiff::Timestamp::new(i64::try_from(seconds).ok()?, i32::try_from(nanos).ok()?).ok()
    }
}

string_newtype!(MessageId, String);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_what_agents_type() {
        for input in ["K7", "#K7", "#k7", "k7"] {
            assert_eq!(Handle::parse(input).unwrap().as_str(), "K7");
        }
        assert_eq!(Handle::parse("k7").unwrap().to_string(), "#K7");
        for bad in ["", "#", "K", "#K0", "KI", "ABCDEFG", "K 7", "#É7"] {
            assert!(Handle::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn grows_with_collisions_up_to_the_maximum() {
        assert_eq!(Handle::length_after_collisions(0), 2);
        assert_eq!(Handle::length_after_collisions(1), 2);
        assert_eq!(Handle::length_after_collisions(2), 3);
        assert_eq!(Handle::length_after_collisions(100), HANDLE_MAX_LEN);
    }

    proptest! {
        #[test]
        fn random_handles_parse_back(seed in any::<u64>(), len in 0usize..10) {
            let mut rng = fastrand::Rng::with_seed(seed);
            let handle = Handle::random(len, &mut rng);
            prop_assert_eq!(Handle::parse(&handle.to_string()).unwrap(), handle);
        }
    }

    #[test]
    fn message_ids_sort_by_creation() {
        let before = jiff::Timestamp::now();
        let a = MessageId::new_v7();
        let made = a.created_at().unwrap();
        assert!(made >= before - jiff::SignedDuration::from_millis(1) && made <= jiff::Timestamp::now(), "{made}");
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = MessageId::new_v7();
        assert!(a < b);
        assert_eq!(MessageId::parse(a.as_str()).unwrap(), a);
        assert!(MessageId::parse("MSG#1").is_err());
    }
}
