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
    ("AmbiguousRedelivery", "kind"),
    ("JobsDeadLettered", "reason"),
    ("NoticeUndeliverable", "reason"),
    ("MediaNotForwarded", "kind"),
    ("AutoReplySent", "reason"),
    ("OptedOutRefused", "kind"),
];

/// Emits one metric (unit `Count` unless given) with its dimensions.
pub fn metric(name: &str, value: f64, unit: &str, dimensions: &[(&str, &str)]) {
    println!("{}", emf_line(name, value, unit, dimensions, now_ms()));
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
        let line = emf_line("AmbiguousRedelivery", 1.0, "Count", &[("kind", "send_sms")], 1_764_072_000_000);
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["_aws"]["Timestamp"], 1_764_072_000_000u64);
        let directive = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], NAMESPACE);
        assert_eq!(directive["Dimensions"], json!([["kind"]]));
        assert_eq!(directive["Metrics"][0]["Name"], "AmbiguousRedelivery");
        // Every dimension and metric named in the directive is a top-level member.
        assert_eq!(v["kind"], "send_sms");
        assert_eq!(v["AmbiguousRedelivery"], 1.0);
    }
}
