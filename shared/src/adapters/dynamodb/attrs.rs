//! Keys and attribute values: how the bridge's types are spelled in the table.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use jiff::Timestamp;

use crate::domain::{ConversationKey, E164, Handle, Job, LineId, MessageId, WaId};
use crate::ports::{LegFailure, StoreError};

pub type Item = HashMap<String, AttributeValue>;

pub fn conv_pk(key: &ConversationKey) -> String {
    format!("CONV#{}#{}", key.line.as_str(), key.customer.as_str())
}

/// The conversation a `CONV#<line>#<customer>` key names (line ids never contain `#`).
pub fn parse_conv_pk(pk: &str) -> Result<ConversationKey, StoreError> {
    let corrupt = || StoreError::Corrupt(format!("not a conversation key: {pk}"));
    let (line, customer) = pk.strip_prefix("CONV#").and_then(|rest| rest.split_once('#')).ok_or_else(corrupt)?;
    Ok(ConversationKey {
        line: LineId::parse(line).map_err(|_| corrupt())?,
        customer: E164::parse(customer).map_err(|_| corrupt())?,
    })
}

pub fn msg_sk(id: &MessageId) -> String {
    format!("MSG#{}", id.as_str())
}

pub fn handle_pk(line: &LineId, handle: &Handle) -> String {
    format!("HANDLE#{}#{}", line.as_str(), handle.as_str())
}

pub fn seen_pk(provider: &str, id: &str) -> String {
    format!("SEEN#{provider}#{id}")
}

pub fn agent_pk(line: &LineId, agent: &WaId) -> String {
    format!("AGENT#{}#{}", line.as_str(), agent.as_str())
}

pub fn open_conversations_pk(line: &LineId) -> String {
    format!("OPEN#{}", line.as_str())
}

/// Sorts by time as a string: zero-padded epoch milliseconds.
pub fn sortable_time(at: Timestamp) -> String {
    format!("{:015}", at.as_millisecond().max(0))
}

pub fn key(pk_value: impl Into<String>, sk_value: impl Into<String>) -> Item {
    HashMap::from([pk(pk_value.into()), sk(sk_value)])
}

pub fn pk(value: String) -> (String, AttributeValue) {
    ("PK".to_owned(), AttributeValue::S(value))
}

pub fn sk(value: impl Into<String>) -> (String, AttributeValue) {
    ("SK".to_owned(), AttributeValue::S(value.into()))
}

pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub fn expires(from: Timestamp, after: Duration) -> AttributeValue {
    n(from.as_second() + i64::try_from(after.as_secs()).unwrap_or(i64::MAX / 2))
}

pub fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    opt_s(item, name).ok_or_else(|| StoreError::Corrupt(format!("missing string attribute `{name}`")))
}

pub fn opt_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v),
        _ => None,
    }
}

pub fn opt_n(item: &Item, name: &str) -> Option<i64> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

pub fn opt_m<'a>(item: &'a Item, name: &str) -> Option<&'a Item> {
    match item.get(name) {
        Some(AttributeValue::M(m)) => Some(m),
        _ => None,
    }
}

pub fn timestamp_ms(item: &Item, name: &str) -> Result<Option<Timestamp>, StoreError> {
    opt_n(item, name)
        .map(|ms| Timestamp::from_millisecond(ms).map_err(|_| StoreError::Corrupt(format!("bad `{name}`: {ms}"))))
        .transpose()
}

/// A new leg: the job's progress record, before any attempt.
pub fn new_leg(job: &Job) -> AttributeValue {
    AttributeValue::M(HashMap::from([
        ("kind".to_owned(), s(job.kind().as_str())),
        ("to".to_owned(), s(job.recipient())),
        ("state".to_owned(), s("queued")),
        ("attempts".to_owned(), n(0)),
    ]))
}

pub fn failure_value(failure: &LegFailure, now: Timestamp) -> AttributeValue {
    let mut m = HashMap::from([
        ("class".to_owned(), s(failure.class.as_str())),
        ("reason".to_owned(), s(&failure.reason)),
        ("at".to_owned(), s(now.to_string())),
    ]);
    if let Some(code) = failure.code {
        m.insert("code".into(), n(code));
    }
    AttributeValue::M(m)
}

/// The jobs stored in a dedupe marker or elsewhere as a list of JSON strings.
pub fn jobs_value(jobs: &[Job]) -> AttributeValue {
    AttributeValue::L(jobs.iter().map(|j| s(j.encode())).collect())
}

pub fn parse_jobs(item: &Item, name: &str) -> Result<Vec<Job>, StoreError> {
    match item.get(name) {
        Some(AttributeValue::L(jobs)) => jobs
            .iter()
            .map(|j| match j {
                AttributeValue::S(json) => Job::decode(json).map_err(|e| StoreError::Corrupt(e.to_string())),
                _ => Err(StoreError::Corrupt("job is not a string".into())),
            })
            .collect(),
        _ => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversation_keys_round_trip() {
        let key =
            ConversationKey { line: LineId::parse("main-2").unwrap(), customer: E164::parse("+447700900123").unwrap() };
        assert_eq!(parse_conv_pk(&conv_pk(&key)).unwrap(), key);
        for bad in ["CONV#main", "HANDLE#main#K7", "CONV#main#447700900123", "CONV##+447700900123"] {
            assert!(parse_conv_pk(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sortable_times_sort_as_strings() {
        let a = sortable_time(Timestamp::from_millisecond(999).unwrap());
        let b = sortable_time(Timestamp::from_millisecond(1_764_072_000_000).unwrap());
        assert!(a < b && a.len() == b.len());
    }
}
