//! Who a WhatsApp message is from, now that a user may have a username and no phone number
//! in webhooks (Meta, "Business-scoped user IDs", updated 2026-11-05; system messages
//! reference, updated 2026-08-11; both read 2026-12-05).
//!
//! Every user has a business-scoped user id (BSUID, `US.13491208655302741918`): stable for
//! one business portfolio, new when the user changes phone number. The phone number (`wa_id`)
//! may be missing when the user adopted a username. An agent is configured by phone and
//! recognised by phone or by the BSUID the bridge learnt for them; a stranger is answered at
//! whichever id they have.

use std::fmt;

use super::phone::WaId;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserIdError {
    #[error("must be a two-letter country code, '.', then 1 to 128 letters or digits")]
    NotUserId,
}

/// Longest id part Meta documents after the country code.
const MAX_ID_CHARS: usize = 128;

/// A business-scoped user id, or a parent one (`US.ENT.…`): `CC.` then up to 128 letters or
/// digits. Opaque, and personal data: `Debug` and `masked()` show only its country and end.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserId(String);

impl UserId {
    pub fn parse(input: &str) -> Result<Self, UserIdError> {
        let (country, rest) = input.split_once('.').ok_or(UserIdError::NotUserId)?;
        let id = rest.strip_prefix("ENT.").unwrap_or(rest);
        let country_ok = country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase());
        let id_ok = (1..=MAX_ID_CHARS).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric());
        if country_ok && id_ok { Ok(Self(input.to_owned())) } else { Err(UserIdError::NotUserId) }
    }

    /// For logs: `US.***18`. The country and the last two characters, nothing a number
    /// could be read from.
    pub fn masked(&self) -> String {
        let tail: String = self.0.chars().rev().take(2).collect::<Vec<_>>().into_iter().rev().collect();
        format!("{}.***{tail}", &self.0[..2])
    }
}

impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserId({})", self.masked())
    }
}

string_newtype!(UserId, UserIdError);

/// The sender of a WhatsApp message: a phone number, a user id, or both; never neither.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhatsAppUser {
    phone: Option<WaId>,
    user_id: Option<UserId>,
}

impl WhatsAppUser {
    /// `None` when there is no id at all: nobody to recognise or answer.
    pub fn new(phone: Option<WaId>, user_id: Option<UserId>) -> Option<Self> {
        (phone.is_some() || user_id.is_some()).then_some(Self { phone, user_id })
    }

    pub fn by_phone(phone: WaId) -> Self {
        Self { phone: Some(phone), user_id: None }
    }

    pub fn phone(&self) -> Option<&WaId> {
        self.phone.as_ref()
    }

    pub fn user_id(&self) -> Option<&UserId> {
        self.user_id.as_ref()
    }

    /// Where an answer goes: the phone number when there is one (Meta recommends it), else
    /// the user id.
    pub fn recipient(&self) -> WhatsAppRecipient {
        match (&self.phone, &self.user_id) {
            (Some(phone), _) => WhatsAppRecipient::Phone(phone.clone()),
            (None, Some(id)) => WhatsAppRecipient::User(id.clone()),
            (None, None) => unreachable!("WhatsAppUser::new refuses a user with no id"),
        }
    }

    /// For logs.
    pub fn masked(&self) -> String {
        self.recipient().masked()
    }
}

/// Who a message is sent to: `to` with a phone number, or `recipient` with a user id (Cloud
/// API "Messages" reference). Stored as the id's own text, so a job recorded when only phone
/// numbers existed still reads.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum WhatsAppRecipient {
    Phone(WaId),
    User(UserId),
}

impl WhatsAppRecipient {
    pub fn parse(input: &str) -> Result<Self, UserIdError> {
        match WaId::parse(input) {
            Ok(phone) => Ok(Self::Phone(phone)),
            Err(_) => UserId::parse(input).map(Self::User),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Phone(phone) => phone.as_str(),
            Self::User(id) => id.as_str(),
        }
    }

    pub fn phone(&self) -> Option<&WaId> {
        match self {
            Self::Phone(phone) => Some(phone),
            Self::User(_) => None,
        }
    }

    pub fn masked(&self) -> String {
        match self {
            Self::Phone(phone) => phone.masked(),
            Self::User(id) => id.masked(),
        }
    }
}

impl fmt::Debug for WhatsAppRecipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WhatsAppRecipient({})", self.masked())
    }
}

/// A recipient is that agent when it is their phone number.
impl PartialEq<WaId> for WhatsAppRecipient {
    fn eq(&self, other: &WaId) -> bool {
        self.phone() == Some(other)
    }
}

impl From<WaId> for WhatsAppRecipient {
    fn from(phone: WaId) -> Self {
        Self::Phone(phone)
    }
}

impl From<&WaId> for WhatsAppRecipient {
    fn from(phone: &WaId) -> Self {
        Self::Phone(phone.clone())
    }
}

impl TryFrom<String> for WhatsAppRecipient {
    type Error = UserIdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<WhatsAppRecipient> for String {
    fn from(value: WhatsAppRecipient) -> Self {
        value.as_str().to_owned()
    }
}

/// What a `system` message says changed about a user's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityChange {
    /// `user_changed_number`: the user's new phone number (their BSUID changes with it).
    Number { new_phone: WaId },
    /// `user_changed_user_id`: the user's new BSUID; no phone number is included.
    UserId { new_user_id: UserId },
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn user_ids_as_meta_documents_them() {
        for ok in ["US.13491208655302741918", "US.ENT.11815799212886844830", "BR.1A2B3C4D5E6F", "DE.x"] {
            assert_eq!(UserId::parse(ok).unwrap().as_str(), ok);
        }
        for bad in [
            "",
            "14155550111",
            "us.1349",
            "USA.1349",
            "US.",
            "US.ENT.",
            "US.13-49",
            "US.1349.5",
            &format!("US.{}", "1".repeat(129)),
            "U1.1349",
        ] {
            assert_eq!(UserId::parse(bad), Err(UserIdError::NotUserId), "{bad:?}");
        }
    }

    #[test]
    fn a_recipient_is_a_phone_when_it_can_be() {
        let phone = WhatsAppRecipient::parse("14155550111").unwrap();
        assert_eq!(phone.phone().map(WaId::as_str), Some("14155550111"));
        let user = WhatsAppRecipient::parse("US.13491208655302741918").unwrap();
        assert_eq!(user.phone(), None);
        assert!(WhatsAppRecipient::parse("+14155550111").is_err());
        // Stored as the bare id: jobs written before user ids existed still read.
        assert_eq!(serde_json::to_string(&phone).unwrap(), "\"14155550111\"");
        assert_eq!(serde_json::from_str::<WhatsAppRecipient>("\"US.13491208655302741918\"").unwrap(), user);
    }

    #[test]
    fn a_user_is_answered_by_phone_first() {
        let phone = WaId::parse("14155550111").unwrap();
        let id = UserId::parse("US.13491208655302741918").unwrap();
        assert_eq!(WhatsAppUser::new(None, None), None);
        let both = WhatsAppUser::new(Some(phone.clone()), Some(id.clone())).unwrap();
        assert_eq!(both.recipient(), WhatsAppRecipient::Phone(phone));
        let username_only = WhatsAppUser::new(None, Some(id.clone())).unwrap();
        assert_eq!(username_only.recipient(), WhatsAppRecipient::User(id));
        assert_eq!(username_only.masked(), "US.***18");
    }

    proptest! {
        #[test]
        fn masked_user_ids_hold_no_run_of_digits(id in "[A-Z]{2}\\.[0-9]{1,40}") {
            let masked = UserId::parse(&id).unwrap().masked();
            prop_assert!(!masked.as_bytes().windows(3).any(|w| w.iter().all(u8::is_ascii_digit)), "{}", masked);
            let debug = format!("{:?}", UserId::parse(&id).unwrap());
            prop_assert!(id.len() <= 5 || !debug.contains(&id[3..]), "{}", debug);
        }

        #[test]
        fn parse_never_panics(s in "\\PC*") {
            let _ = UserId::parse(&s);
            let _ = WhatsAppRecipient::parse(&s);
        }
    }
}
