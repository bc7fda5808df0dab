//! Erasure on request (docs/operating.md, "Erase a customer's data"): every item that holds a
//! customer's number goes, an agent's focus on them is cleared, and a number-free tombstone
//! records that it happened. `bridge-ops erase` calls it.
//!
//! Items are found by a scan of the whole table, not by following keys: an item kind that a
//! future change adds can't be forgotten, and a scan costs little for a rare request (a 1 GB
//! table is about 131,000 read units, $0.02 on demand at $0.125 per million, AWS DynamoDB
//! pricing read 2026-12-06). An item holds the customer if any of its strings holds their
//! number: E.164, its digits, or inside a `wamid` (base64 that holds the number it was sent
//! to or from). Every text of theirs the bridge keeps sits in an item that also names them
//! (its conversation, or a job to or about them), so the texts go with the number.
//!
//! What jobs still in flight do afterwards (docs/guarantees.md): a job's claim needs its leg,
//! which went with its message, so it sends nothing; an automated reply's leg is created only
//! while its conversation exists; and a send already under way when the erasure ran deletes
//! the lookup record it writes once it finds its leg gone (`legs.rs`, `record_or_undo`).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use jiff::Timestamp;
use sha2::{Digest, Sha256};

use super::attrs::*;
use super::{DynamoStore, unavailable};
use crate::domain::{E164, LineId};
use crate::ports::StoreError;

/// How long the tombstone of an erasure is kept: longer than any job can wait in the queue
/// and the dead-letter queue (4 + 14 days), so an operator asked "was it done?" can answer
/// for that long.
const TOMBSTONE_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// What an erasure covers: the customer, on one line or on every line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasureRequest {
    pub customer: E164,
    /// `None`: every line of the deployment.
    pub line: Option<LineId>,
}

/// The kinds of items the bridge writes, by their key (`mod.rs`'s table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ItemKind {
    Conversation,
    Message,
    Handle,
    CopyRoute,
    SmsRecord,
    DedupeMarker,
    Agent,
    AgentUserId,
    DutyRoster,
    SendSlot,
    ParkedCopy,
    Notice,
    OutboxEntry,
    NonAgentMarker,
    Tombstone,
    Unknown,
}

impl ItemKind {
    pub fn of(pk: &str, sk: &str) -> Self {
        let prefix = pk.split_once('#').map_or(pk, |(prefix, _)| prefix);
        match prefix {
            "CONV" if sk == "META" => Self::Conversation,
            "CONV" => Self::Message,
            "HANDLE" => Self::Handle,
            "WAMID" => Self::CopyRoute,
            "SMS" => Self::SmsRecord,
            "SEEN" => Self::DedupeMarker,
            "AGENT" => Self::Agent,
            "AGENTID" => Self::AgentUserId,
            "DUTY" => Self::DutyRoster,
            "PACE" => Self::SendSlot,
            "DIGEST" => Self::ParkedCopy,
            "JOB" => Self::Notice,
            "OUTBOX" => Self::OutboxEntry,
            "NONAGENT" => Self::NonAgentMarker,
            "ERASED" => Self::Tombstone,
            _ => Self::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Conversation => "conversation",
            Self::Message => "message",
            Self::Handle => "handle",
            Self::CopyRoute => "copy route (WAMID#)",
            Self::SmsRecord => "SMS record (SMS#)",
            Self::DedupeMarker => "dedupe marker",
            Self::Agent => "agent's focus",
            Self::AgentUserId => "agent user id",
            Self::DutyRoster => "duty roster",
            Self::SendSlot => "send slot",
            Self::ParkedCopy => "copy parked for a digest",
            Self::Notice => "notice or automated reply",
            Self::OutboxEntry => "outbox entry",
            Self::NonAgentMarker => "non-agent marker",
            Self::Tombstone => "tombstone",
            Self::Unknown => "unknown kind",
        }
    }

    /// What an erasure does with an item of this kind that holds the customer.
    fn treatment(self) -> Treatment {
        match self {
            // An agent's item stays; what in it names the customer goes.
            Self::Agent => Treatment::Strip,
            // These hold the deployment's own numbers (agents, lines): the customer is an
            // agent or a line of the bridge too, which an erasure doesn't undo.
            Self::AgentUserId | Self::DutyRoster | Self::SendSlot | Self::Tombstone => Treatment::Keep,
            _ => Treatment::Delete,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Treatment {
    Delete,
    Strip,
    Keep,
}

/// What an erasure found and did, by kind: counts only, never contents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErasureReport {
    pub deleted: BTreeMap<ItemKind, usize>,
    /// Items kept with the attributes that named the customer removed (an agent's focus).
    pub stripped: BTreeMap<ItemKind, usize>,
    /// Items that name the number but belong to the deployment (the customer is also an agent).
    pub kept: BTreeMap<ItemKind, usize>,
    pub scanned: usize,
    /// The tombstone's key: `ERASED#<line or *>#<digest>`.
    pub tombstone: String,
    pub dry_run: bool,
}

/// The forms a number takes inside the items: E.164 and WhatsApp ids both hold its digits.
struct NumberForms {
    digits: String,
}

impl NumberForms {
    fn new(customer: &E164) -> Self {
        Self { digits: customer.as_str().trim_start_matches('+').to_owned() }
    }

    fn in_text(&self, text: &str) -> bool {
        text.contains(&self.digits) || wamid_holds(text, &self.digits)
    }

    fn in_value(&self, value: &AttributeValue) -> bool {
        match value {
            AttributeValue::S(text) => self.in_text(text),
            AttributeValue::Ss(texts) => texts.iter().any(|t| self.in_text(t)),
            AttributeValue::L(values) => values.iter().any(|v| self.in_value(v)),
            AttributeValue::M(map) => map.iter().any(|(name, v)| self.in_text(name) || self.in_value(v)),
            _ => false,
        }
    }
}

/// A `wamid.` id anywhere in `text` whose base64 decodes to bytes holding `digits`.
fn wamid_holds(text: &str, digits: &str) -> bool {
    text.match_indices("wamid.").any(|(at, prefix)| {
        let encoded: String = text[at + prefix.len()..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '-' | '_'))
            .collect();
        // Whole four-character groups decode without padding rules; the number sits near
        // the start of the id (it follows a three-byte header).
        let whole = &encoded[..encoded.len() / 4 * 4];
        let standard = base64::engine::general_purpose::STANDARD_NO_PAD.decode(whole);
        let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(whole);
        [standard, url_safe].into_iter().flatten().any(|bytes| String::from_utf8_lossy(&bytes).contains(digits))
    })
}

/// The number-free key of an erasure's tombstone: a digest of the line and the number, so
/// an operator can check "was this customer erased?" by recomputing it. A digest of a phone
/// number can be guessed by trying numbers, so it is kept only `TOMBSTONE_TTL`.
pub fn tombstone_key(request: &ErasureRequest) -> String {
    let line = request.line.as_ref().map_or("*", LineId::as_str);
    let digest = Sha256::digest(format!("erased\0{line}\0{}", request.customer.as_str()));
    format!("ERASED#{line}#{}", hex::encode(&digest[..16]))
}

impl DynamoStore {
    /// Erases everything the table holds about `request.customer` (on `request.line`, or on
    /// every line), or with `dry_run` only counts it. Safe to run again: a second run finds
    /// nothing left.
    pub async fn erase_customer(&self, request: &ErasureRequest, dry_run: bool) -> Result<ErasureReport, StoreError> {
        let now = Timestamp::now();
        let forms = NumberForms::new(&request.customer);
        let mut report = ErasureReport { tombstone: tombstone_key(request), dry_run, ..Default::default() };
        if !dry_run {
            self.write_tombstone(&report, request, now, "started").await?;
        }
        // The conversations first, by key: jobs still queued find them gone from here on.
        let conversations = self.conversations_of(request).await?;
        for key_item in &conversations {
            self.erase_item(key_item, ItemKind::Conversation, &forms, dry_run, &mut report).await?;
        }
        let mut start = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(unavailable)?;
            for item in out.items.unwrap_or_default() {
                report.scanned += 1;
                let kind = ItemKind::of(opt_s(&item, "PK").unwrap_or_default(), opt_s(&item, "SK").unwrap_or_default());
                if kind == ItemKind::Conversation && conversations.iter().any(|c| same_key(c, &item)) {
                    continue;
                }
                if holds_customer(&item, request, &forms) {
                    self.erase_item(&item, kind, &forms, dry_run, &mut report).await?;
                }
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        if !dry_run {
            self.write_tombstone(&report, request, now, "done").await?;
        }
        Ok(report)
    }

    /// The customer's `META` items (one per line), read by key.
    async fn conversations_of(&self, request: &ErasureRequest) -> Result<Vec<Item>, StoreError> {
        let Some(line) = &request.line else {
            // Every line: the scan finds them (their keys hold the number).
            return Ok(Vec::new());
        };
        let key_prefix = format!("CONV#{}#{}", line.as_str(), request.customer.as_str());
        Ok(self.get(key_prefix, "META").await?.into_iter().collect())
    }

    async fn erase_item(
        &self,
        item: &Item,
        kind: ItemKind,
        forms: &NumberForms,
        dry_run: bool,
        report: &mut ErasureReport,
    ) -> Result<(), StoreError> {
        let item_key = key(get_s(item, "PK")?, get_s(item, "SK")?);
        match kind.treatment() {
            Treatment::Keep => *report.kept.entry(kind).or_default() += 1,
            Treatment::Delete => {
                if !dry_run {
                    self.delete_item(item_key).await?;
                }
                *report.deleted.entry(kind).or_default() += 1;
            }
            Treatment::Strip => {
                let named: Vec<&String> = item
                    .iter()
                    .filter(|(name, value)| !is_key(name) && forms.in_value(value))
                    .map(|(n, _)| n)
                    .collect();
                let mut names = named.clone();
                // A focus is three attributes: the customer, their handle and since when.
                if named.iter().any(|n| n.starts_with("focus_")) {
                    names.extend(item.keys().filter(|n| n.starts_with("focus_")));
                }
                if named.iter().any(|n| n.starts_with("pending_")) {
                    names.extend(item.keys().filter(|n| n.starts_with("pending_")));
                }
                names.sort();
                names.dedup();
                if !dry_run && !names.is_empty() {
                    let placeholders: Vec<String> = (0..names.len()).map(|i| format!("#a{i}")).collect();
                    let mut update = self
                        .client
                        .update_item()
                        .table_name(&self.table)
                        .set_key(Some(item_key))
                        .update_expression(format!("REMOVE {}", placeholders.join(", ")));
                    for (placeholder, name) in placeholders.iter().zip(&names) {
                        update = update.expression_attribute_names(placeholder, name.as_str());
                    }
                    update.send().await.map_err(unavailable)?;
                }
                *report.stripped.entry(kind).or_default() += 1;
            }
        }
        Ok(())
    }

    async fn write_tombstone(
        &self,
        report: &ErasureReport,
        request: &ErasureRequest,
        now: Timestamp,
        state: &str,
    ) -> Result<(), StoreError> {
        let counts = |counts: &BTreeMap<ItemKind, usize>| {
            AttributeValue::M(counts.iter().map(|(kind, count)| (kind.as_str().to_owned(), n(*count))).collect())
        };
        let item = HashMap::from([
            pk(report.tombstone.clone()),
            sk("ERASED"),
            ("line".into(), s(request.line.as_ref().map_or("*", LineId::as_str))),
            ("state".into(), s(state)),
            ("erased_at".into(), s(now.to_string())),
            ("deleted".into(), counts(&report.deleted)),
            ("stripped".into(), counts(&report.stripped)),
            ("expires_at".into(), expires(now, TOMBSTONE_TTL)),
        ]);
        self.put_item(item).await
    }
}

fn is_key(name: &str) -> bool {
    matches!(name, "PK" | "SK")
}

fn same_key(a: &Item, b: &Item) -> bool {
    a.get("PK") == b.get("PK") && a.get("SK") == b.get("SK")
}

/// Whether `item` holds the customer, within the request's line when it names one. An item
/// that names no line (an automated reply's leg, a provider's record) counts by the number.
fn holds_customer(item: &Item, request: &ErasureRequest, forms: &NumberForms) -> bool {
    if !item.iter().any(|(_, value)| forms.in_value(value)) {
        return false;
    }
    let Some(line) = &request.line else { return true };
    match item_line(item) {
        Some(found) => found == line.as_str(),
        None => true,
    }
}

/// The line an item belongs to, where its key or attributes say.
fn item_line(item: &Item) -> Option<&str> {
    opt_s(item, "PK")
        .and_then(line_in_key)
        .or_else(|| opt_s(item, "conversation").and_then(line_in_key))
        .or_else(|| opt_s(item, "line"))
}

/// The line named by a key that starts with one (`CONV#<line>#…`, `AGENT#<line>#…`).
fn line_in_key(text: &str) -> Option<&str> {
    let (prefix, rest) = text.split_once('#')?;
    match prefix {
        "CONV" | "HANDLE" | "AGENT" | "AGENTID" | "NONAGENT" => rest.split('#').next(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn forms() -> NumberForms {
        NumberForms::new(&E164::parse("+14155550134").unwrap())
    }

    #[test]
    fn the_number_is_found_in_every_form() {
        let forms = forms();
        // A wamid's base64: a short header, the number's digits, then an id.
        let wamid_of = |digits: &str| {
            let mut bytes = vec![0x1c, 0x18, 0x0b];
            bytes.extend(digits.as_bytes());
            bytes.extend([0x15, 0x02, 0x00, 0x11, 0x18, 0x12, 0x33, 0x41]);
            format!("wamid.{}", base64::engine::general_purpose::STANDARD.encode(bytes))
        };
        let theirs = wamid_of("14155550134");
        assert!(!theirs.contains("14155550134"));
        for text in ["+14155550134", "CONV#main#+14155550134", "{\"to\":\"14155550134\"}", theirs.as_str()] {
            assert!(forms.in_text(text), "{text}");
        }
        assert!(forms.in_text(&format!("WAMID#{theirs}")), "inside a key");
        assert!(!forms.in_text(&wamid_of("14155550199")), "a wamid of another number");
        assert!(!forms.in_text("+14155550135"));
        let nested = AttributeValue::M(HashMap::from([(
            "legs".to_owned(),
            AttributeValue::L(vec![AttributeValue::S("+14155550134".into())]),
        )]));
        assert!(forms.in_value(&nested));
    }

    #[test]
    fn a_line_restricted_erasure_leaves_other_lines_alone() {
        let request = ErasureRequest {
            customer: E164::parse("+14155550134").unwrap(),
            line: Some(LineId::parse("main").unwrap()),
        };
        let forms = forms();
        let item = |pk_value: &str, attrs: &[(&str, &str)]| -> Item {
            let mut item = HashMap::from([pk(pk_value.to_owned()), sk("X")]);
            item.extend(attrs.iter().map(|(k, v)| ((*k).to_owned(), s(*v))));
            item
        };
        assert!(holds_customer(&item("CONV#main#+14155550134", &[]), &request, &forms));
        assert!(!holds_customer(&item("CONV#other#+14155550134", &[]), &request, &forms));
        assert!(holds_customer(
            &item("SEEN#twilio#SM1", &[("conversation", "CONV#main#+14155550134")]),
            &request,
            &forms
        ));
        assert!(!holds_customer(
            &item("SEEN#twilio#SM2", &[("conversation", "CONV#other#+14155550134")]),
            &request,
            &forms
        ));
        assert!(holds_customer(&item("JOB#j1", &[("to", "+14155550134")]), &request, &forms));
        assert!(!holds_customer(&item("JOB#j2", &[("to", "+14155550199")]), &request, &forms));
    }

    #[test]
    fn kinds_come_from_keys_and_the_deployment_s_own_items_are_kept() {
        assert_eq!(ItemKind::of("CONV#main#+1", "META"), ItemKind::Conversation);
        assert_eq!(ItemKind::of("CONV#main#+1", "MSG#x"), ItemKind::Message);
        assert_eq!(ItemKind::of("DUTY#main", "DUTY").treatment(), Treatment::Keep);
        assert_eq!(ItemKind::of("AGENT#main#1", "AGENT").treatment(), Treatment::Strip);
        assert_eq!(ItemKind::of("WHAT#x", "Y").treatment(), Treatment::Delete);
    }

    #[test]
    fn the_tombstone_key_holds_no_number() {
        let request = ErasureRequest { customer: E164::parse("+14155550134").unwrap(), line: None };
        let key = tombstone_key(&request);
        assert!(key.starts_with("ERASED#*#") && !forms().in_text(&key), "{key}");
        assert_eq!(key, tombstone_key(&request), "stable: an operator can recompute it");
    }
}
