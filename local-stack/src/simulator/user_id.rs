//! The simulated WhatsApp users' business-scoped user ids and usernames (Meta,
//! "Business-scoped user IDs", updated 2026-11-05).
//!
//! Every messages webhook names its sender by user id (`messages[].from_user_id`,
//! `contacts[].user_id`), and status webhooks their recipient (`recipient_user_id`); a user
//! who adopted a username may have no phone number in webhooks at all. A real user id is
//! opaque and stable for one business portfolio; here it is derived from the number, so the
//! same phone keeps the same id across restarts, and it never holds the number's digits: the
//! bridge may log an id, never a number.

use sha2::{Digest, Sha256};

/// The country part of every simulated id (Meta's ids start with the user's country).
const COUNTRY: &str = "US";
/// Digits after the country, as in Meta's example `US.13491208655302741918`.
const ID_DIGITS: usize = 20;
/// A run this long shared with the number would let the number be read from the id.
const SHARED_DIGITS_ALLOWED: usize = 6;

/// The business-scoped user id of the WhatsApp user with this number (`wa_id`, digits).
pub fn business_scoped_user_id(wa_id: &str) -> String {
    let mut attempt: u32 = 0;
    loop {
        let digest = Sha256::new()
            .chain_update(b"simulated business-scoped user id\0")
            .chain_update(attempt.to_be_bytes())
            .chain_update(wa_id.as_bytes())
            .finalize();
        let digits: String = digest.iter().map(|byte| char::from(b'0' + byte % 10)).take(ID_DIGITS).collect();
        // A hash rarely repeats a stretch of the number; when it does, the next one is used.
        if !shares_a_run(&digits, wa_id) {
            return format!("{COUNTRY}.{digits}");
        }
        attempt += 1;
    }
}

/// The username a simulated user shows instead of their number: `@` and their profile name
/// in lower case, letters and digits only (`Ana` → `@ana`).
pub fn username(profile_name: &str) -> String {
    let handle: String =
        profile_name.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect();
    format!("@{handle}")
}

/// Whether `id` holds more than [`SHARED_DIGITS_ALLOWED`] consecutive digits of `number`.
fn shares_a_run(id: &str, number: &str) -> bool {
    let number: Vec<char> = number.chars().filter(char::is_ascii_digit).collect();
    let run = SHARED_DIGITS_ALLOWED + 1;
    number.windows(run).any(|window| id.contains(&window.iter().collect::<String>()))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn an_id_is_stable_per_number_and_shaped_like_metas() {
        let ana = business_scoped_user_id("14155550111");
        assert_eq!(ana, business_scoped_user_id("14155550111"));
        assert_ne!(ana, business_scoped_user_id("14155550112"));
        let (country, id) = ana.split_once('.').unwrap_or_default();
        assert_eq!(country, "US");
        assert!(id.len() == ID_DIGITS && id.bytes().all(|b| b.is_ascii_digit()), "{ana}");
        // What the bridge accepts as a user id: two capitals, '.', 1 to 128 letters or digits.
        assert!(shared::domain::UserId::parse(&ana).is_ok(), "{ana}");
    }

    #[test]
    fn a_username_is_the_profile_name_in_lower_case() {
        assert_eq!(username("Ana"), "@ana");
        assert_eq!(username("User 0199"), "@user0199");
    }

    proptest! {
        #[test]
        fn an_id_never_holds_a_stretch_of_the_number(number in "[1-9][0-9]{6,14}") {
            let id = business_scoped_user_id(&number);
            prop_assert!(!shares_a_run(&id, &number), "{} holds part of {}", id, number);
            // The forms a log check looks for: the whole number and its national part.
            prop_assert!(!id.contains(&number) && !id.contains(&number[1..]), "{}", id);
        }
    }
}
