//! CloudWatch Embedded Metric Format: a metric is a JSON line on stdout that CloudWatch
//! Logs turns into a metric (namespace `SmsWhatsAppBridge`). No API call, no client.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

pub const NAMESPACE: &str = "SmsWhatsAppBridge";

/// Every metric the bridge emits, with its one dimension: the alarms and the dashboard in
/// `template.yaml` may only use these (a test checks).
pub const METRICS: &[(&str, &str)] = &[
    ("MessagesRelayed", "kind"),
    ("DeliveryFailed", "class"),
    ("RelayLatencyMs", "direction"),
    ("DuplicateWebhook", "source"),
    ("SignatureRejected", "source"),
    ("JobsDeadLettered", "reason"),
    ("NoticeUndeliverable", "reason"),
    ("MediaNotForwarded", "kind"),
    ("AutoReplySent", "reason"),
    ("OptedOutRefused", "kind"),
    // WhatsApp messages Meta bills, by category, counted on their `sent` report.
    ("WhatsAppMessagesBilled", "category"),
    // A line's template paused, disabled, re-categorised or restored (Meta's template webhooks).
    ("LineTemplateChanged", "concern"),
    // A send whose answer was lost, and how it was settled (docs/guarantees.md).
    ("AmbiguousSend", "provider"),
    ("AmbiguousResolved", "outcome"),
    // An item of a webhook that couldn't be read: skipped, its neighbours handled.
    ("WebhookItemSkipped", "source"),
    // Jobs recorded but not enqueued by a webhook, and outbox entries the sweep enqueued.
    ("OutboxDeferred", "source"),
    ("OutboxSwept", "source"),
    // The lines' SSM parameter read again (`app::live_lines`): `reloaded`, or why the lines
    // in force were kept (`invalid`, `not_found`, `unavailable`, `timeout`).
    ("LinesRefreshed", "outcome"),
    // A copy to, or a reply from, an agent removed from the line since it was queued.
    ("FormerAgentRefused", "kind"),
    // Copies parked under WhatsApp's pair limit, and digests sent (docs/using.md).
    ("Digests", "outcome"),
];

/// Emits one metric (unit `Count` unless given) with its dimensions.
pub fn metric(name: &str, value: f64, unit: &str, dimensions: &[(&str, &str)]) {
    println!("{}", emf_line(name, value, unit, dimensions, now_ms()));
    if unit == "Count" {
        let key = (name.to_owned(), dimensions.first().map(|(_, v)| (*v).to_owned()).unwrap_or_default());
        *TOTALS.lock().unwrap_or_else(std::sync::PoisonError::into_inner).entry(key).or_default() += value;
    }
}

/// What this process has counted so far, by metric and dimension value: the soak and the
/// tests read it (CloudWatch gets the EMF lines).
static TOTALS: std::sync::Mutex<std::collections::BTreeMap<(String, String), f64>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

/// The total this process has counted of `name` with the dimension value `value`.
pub fn counted(name: &str, value: &str) -> f64 {
    TOTALS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(&(name.to_owned(), value.to_owned()))
        .copied()
        .unwrap_or_default()
}

pub fn count(name: &str, dimensions: &[(&str, &str)]) {
    metric(name, 1.0, "Count", dimensions);
}

/// How long a message took through the bridge, from its arrival at a webhook to the
/// provider accepting its copy: `direction` is `to_agent` or `to_customer`.
pub fn relay_latency(direction: &str, milliseconds: f64) {
    metric("RelayLatencyMs", milliseconds.max(0.0), "Milliseconds", &[("direction", direction)]);
}

fn now_ms() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or_default()
}

fn emf_line(name: &str, value: f64, unit: &str, dimensions: &[(&str, &str)], timestamp_ms: u128) -> String {
    let mut root = Map::new();
    let dimension_names: Vec<&str> = dimensions.iter().map(|(k, _)| *k).collect();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [dimension_names],
                "Metrics": [{ "Name": name, "Unit": unit }],
            }],
        }),
    );
    for (key, value) in dimensions {
        root.insert((*key).to_owned(), Value::String((*value).to_owned()));
    }
    root.insert(name.to_owned(), json!(value));
    Value::Object(root).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_embedded_metric_format() {
        let line = emf_line("AmbiguousSend", 1.0, "Count", &[("provider", "sms")], 1_764_072_000_000);
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["_aws"]["Timestamp"], 1_764_072_000_000u64);
        let directive = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], NAMESPACE);
        assert_eq!(directive["Dimensions"], json!([["provider"]]));
        assert_eq!(directive["Metrics"][0]["Name"], "AmbiguousSend");
        // Every dimension and metric named in the directive is a top-level member.
        assert_eq!(v["provider"], "sms");
        assert_eq!(v["AmbiguousSend"], 1.0);
    }
}
