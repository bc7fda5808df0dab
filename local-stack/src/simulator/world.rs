//! What the simulated phones and provider accounts hold: every SMS to and from customers,
//! every WhatsApp message to and from agents, the media files, the agents' 24-hour windows,
//! which agents hide their number behind a username, and Twilio's and AWS's opt-out lists. In memory,
//! bounded, for one local session.

use std::collections::{BTreeSet, HashMap, VecDeque};

use jiff::Timestamp;
use serde::Serialize;

/// Messages kept per phone kind; the oldest go first.
const MAX_MESSAGES: usize = 5_000;
/// Media bytes kept in all; the oldest files go first.
const MAX_MEDIA_BYTES: usize = 256 * 1024 * 1024;

/// A file a phone sent or received, as the page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct MediaRef {
    pub content_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Where the page can load it (`/_sim/media/<id>`), once the simulator holds it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
}

/// One SMS, seen from the customer's phone.
#[derive(Debug, Clone, Serialize, Default)]
pub struct SmsRecord {
    /// Twilio's message sid, or AWS's `MessageId` / `inboundMessageId`.
    pub id: String,
    /// The business number.
    pub line: String,
    pub customer: String,
    /// `in` (customer → business) or `out` (business → customer).
    pub direction: &'static str,
    pub body: String,
    pub media: Vec<MediaRef>,
    pub at: String,
    /// Outbound: queued, sent, delivered, undelivered or failed.
    pub status: Option<String>,
    pub error_code: Option<i64>,
    /// AWS lines: the latest delivery event's type (`TEXT_DELIVERED`, `TEXT_UNREACHABLE`...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// Inbound: what the bridge's webhook answered (none while it is being posted). On an AWS
    /// line, what its SNS handler made of the notification: 200 handled, 422 refused, 500 failed.
    pub webhook_status: Option<u16>,
    /// Who sent an outbound SMS: the bridge, or the provider itself (`twilio`, `aws`:
    /// keyword answers).
    pub sender: &'static str,
    pub segments: Option<usize>,
    /// Why an inbound text never reached the bridge (AWS answered a keyword itself).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One WhatsApp message, seen from an agent's phone.
#[derive(Debug, Clone, Serialize, Default)]
pub struct WaRecord {
    pub id: String,
    pub agent: String,
    /// `to_agent` (sent by the business through the Cloud API) or `from_agent`.
    pub direction: &'static str,
    /// text, template, buttons, list, image, video, audio, document, sticker, reaction,
    /// button_reply, list_reply.
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buttons: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub list: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media: Option<MediaRef>,
    /// The message this one quotes (swipe-reply) or answers (button and list replies).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reaction_to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emoji: Option<String>,
    pub at: String,
    /// To the agent: sent, delivered, read or failed.
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<serde_json::Value>,
    /// From the agent: what the bridge's webhook answered.
    pub webhook_status: Option<u16>,
    /// From the agent: read by the business (blue ticks). `marked` when the business marked
    /// this message read, `earlier` when it marked a later one: WhatsApp marks the earlier
    /// messages of the chat read with it (Cloud API, "Mark messages as read").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_by_business: Option<&'static str>,
    /// To the agent: the send's `biz_opaque_callback_data`, echoed on its statuses.
    #[serde(skip)]
    pub tracking: Option<String>,
}

#[derive(Clone)]
pub struct Blob {
    pub content_type: String,
    pub name: Option<String>,
    pub bytes: Vec<u8>,
}

#[derive(Default)]
pub struct World {
    pub sms: VecDeque<SmsRecord>,
    pub whatsapp: VecDeque<WaRecord>,
    blobs: HashMap<String, Blob>,
    blob_order: VecDeque<String>,
    blob_bytes: usize,
    /// When each agent last wrote to the business number (their 24-hour window).
    agent_last_message: HashMap<String, Timestamp>,
    /// (opt-out list, customer) pairs the provider won't deliver to: the customer texted
    /// STOP. Twilio's lists are per business number, AWS's default list is the account's.
    opted_out: BTreeSet<(String, String)>,
    /// Agents who adopted a username and hide their number: their webhooks carry only their
    /// business-scoped user id.
    number_hidden: BTreeSet<String>,
    /// Customers the page offers, in the order they first appeared.
    pub customers: Vec<String>,
    /// Sends answered with a simulated error (`--fail-rate`).
    pub failures_injected: u64,
}

impl World {
    pub fn add_sms(&mut self, record: SmsRecord) {
        self.note_customer(&record.customer);
        self.sms.push_back(record);
        if self.sms.len() > MAX_MESSAGES {
            self.sms.pop_front();
        }
    }

    pub fn sms_mut(&mut self, id: &str) -> Option<&mut SmsRecord> {
        self.sms.iter_mut().rev().find(|m| m.id == id)
    }

    pub fn add_whatsapp(&mut self, record: WaRecord) {
        self.whatsapp.push_back(record);
        if self.whatsapp.len() > MAX_MESSAGES {
            self.whatsapp.pop_front();
        }
    }

    pub fn whatsapp_mut(&mut self, id: &str) -> Option<&mut WaRecord> {
        self.whatsapp.iter_mut().rev().find(|m| m.id == id)
    }

    /// The business marked the agent's message `id` read, and with it the earlier messages of
    /// that agent's chat. `false` when no agent sent a message with that id.
    pub fn mark_read_by_business(&mut self, id: &str) -> bool {
        let Some(position) = self.whatsapp.iter().rposition(|m| m.id == id && m.direction == "from_agent") else {
            return false;
        };
        let agent = self.whatsapp[position].agent.clone();
        self.whatsapp[position].read_by_business = Some("marked");
        for earlier in self.whatsapp.range_mut(..position) {
            if earlier.agent == agent && earlier.direction == "from_agent" && earlier.read_by_business.is_none() {
                earlier.read_by_business = Some("earlier");
            }
        }
        true
    }

    /// The message an agent sent with this id.
    pub fn agents_message(&self, id: &str) -> Option<&WaRecord> {
        self.whatsapp.iter().rev().find(|m| m.id == id && m.direction == "from_agent")
    }

    pub fn set_number_hidden(&mut self, agent: &str, hidden: bool) {
        if hidden {
            self.number_hidden.insert(agent.to_owned());
        } else {
            self.number_hidden.remove(agent);
        }
    }

    pub fn number_hidden(&self, agent: &str) -> bool {
        self.number_hidden.contains(agent)
    }

    pub fn note_customer(&mut self, customer: &str) {
        if !self.customers.iter().any(|c| c == customer) {
            self.customers.push(customer.to_owned());
        }
    }

    pub fn put_blob(&mut self, id: &str, blob: Blob) {
        self.blob_bytes += blob.bytes.len();
        if let Some(old) = self.blobs.insert(id.to_owned(), blob) {
            self.blob_bytes -= old.bytes.len();
        } else {
            self.blob_order.push_back(id.to_owned());
        }
        while self.blob_bytes > MAX_MEDIA_BYTES {
            let Some(oldest) = self.blob_order.pop_front() else { break };
            if let Some(old) = self.blobs.remove(&oldest) {
                self.blob_bytes -= old.bytes.len();
            }
        }
    }

    pub fn blob(&self, id: &str) -> Option<&Blob> {
        self.blobs.get(id)
    }

    pub fn agent_wrote(&mut self, agent: &str, at: Timestamp) {
        self.agent_last_message.insert(agent.to_owned(), at);
    }

    /// WhatsApp's customer service window: free-form messages reach a user only within 24
    /// hours of their last message to the business.
    pub fn window_open(&self, agent: &str, now: Timestamp) -> bool {
        self.agent_last_message
            .get(agent)
            .is_some_and(|last| now.duration_since(*last) < jiff::SignedDuration::from_hours(24))
    }

    pub fn set_opted_out(&mut self, line: &str, customer: &str, opted_out: bool) {
        let key = (line.to_owned(), customer.to_owned());
        if opted_out {
            self.opted_out.insert(key);
        } else {
            self.opted_out.remove(&key);
        }
    }

    pub fn is_opted_out(&self, line: &str, customer: &str) -> bool {
        self.opted_out.contains(&(line.to_owned(), customer.to_owned()))
    }

    pub fn opted_out_customers(&self, line: &str) -> Vec<String> {
        self.opted_out.iter().filter(|(l, _)| l == line).map(|(_, c)| c.clone()).collect()
    }
}

/// Now, to the millisecond (what the page's `Date` reads).
pub fn now_string() -> String {
    Timestamp::from_millisecond(Timestamp::now().as_millisecond()).map(|t| t.to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(size: usize) -> Blob {
        Blob { content_type: "image/png".into(), name: None, bytes: vec![0; size] }
    }

    #[test]
    fn media_is_bounded_and_the_oldest_files_go_first() {
        let mut world = World::default();
        let third = MAX_MEDIA_BYTES / 3 + 1;
        for id in ["a", "b", "c"] {
            world.put_blob(id, blob(third));
        }
        assert!(world.blob("a").is_none(), "the oldest went");
        assert!(world.blob("b").is_some() && world.blob("c").is_some());
        world.put_blob("b", blob(10));
        assert_eq!(world.blob_bytes, third + 10);
    }

    #[test]
    fn an_agents_window_is_open_for_24_hours_after_they_write() {
        let mut world = World::default();
        let now = Timestamp::now();
        assert!(!world.window_open("14155550111", now));
        world.agent_wrote("14155550111", now - jiff::SignedDuration::from_hours(23));
        assert!(world.window_open("14155550111", now));
        assert!(!world.window_open("14155550111", now + jiff::SignedDuration::from_hours(2)));
    }

    fn from(agent: &str, id: &str) -> WaRecord {
        WaRecord { id: id.into(), agent: agent.into(), direction: "from_agent", ..WaRecord::default() }
    }

    #[test]
    fn a_read_mark_reads_the_agents_earlier_messages_too() {
        let mut world = World::default();
        world.add_whatsapp(from("14155550111", "wamid.a1"));
        world.add_whatsapp(from("14155550112", "wamid.b1"));
        world.add_whatsapp(WaRecord {
            id: "wamid.to".into(),
            agent: "14155550111".into(),
            direction: "to_agent",
            ..WaRecord::default()
        });
        world.add_whatsapp(from("14155550111", "wamid.a2"));
        world.add_whatsapp(from("14155550111", "wamid.a3"));
        assert!(world.mark_read_by_business("wamid.a2"));
        let read =
            |world: &World, id: &str| world.whatsapp.iter().find(|m| m.id == id).and_then(|m| m.read_by_business);
        assert_eq!(read(&world, "wamid.a2"), Some("marked"));
        assert_eq!(read(&world, "wamid.a1"), Some("earlier"));
        assert_eq!(read(&world, "wamid.a3"), None, "a later message stays unread");
        assert_eq!(read(&world, "wamid.b1"), None, "another agent's chat is not touched");
        assert_eq!(read(&world, "wamid.to"), None, "the business's own messages are not the agent's");
        // Marking the later one explicitly; the first stays `earlier`, the marked one `marked`.
        assert!(world.mark_read_by_business("wamid.a3"));
        assert_eq!((read(&world, "wamid.a2"), read(&world, "wamid.a1")), (Some("marked"), Some("earlier")));
        assert!(!world.mark_read_by_business("wamid.to"), "not a message the business received");
        assert!(!world.mark_read_by_business("wamid.unknown"));
    }

    #[test]
    fn an_agent_hides_their_number_until_they_show_it_again() {
        let mut world = World::default();
        assert!(!world.number_hidden("14155550111"));
        world.set_number_hidden("14155550111", true);
        assert!(world.number_hidden("14155550111") && !world.number_hidden("14155550112"));
        world.set_number_hidden("14155550111", false);
        assert!(!world.number_hidden("14155550111"));
    }

    #[test]
    fn opt_out_is_per_business_number() {
        let mut world = World::default();
        world.set_opted_out("+14155550100", "+14155550134", true);
        assert!(world.is_opted_out("+14155550100", "+14155550134"));
        assert!(!world.is_opted_out("+14155550101", "+14155550134"));
        assert_eq!(world.opted_out_customers("+14155550100"), ["+14155550134"]);
        world.set_opted_out("+14155550100", "+14155550134", false);
        assert!(world.opted_out_customers("+14155550100").is_empty());
    }
}
