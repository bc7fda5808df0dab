//! `template.yaml` is a valid SAM template (cfn-lint included), deploys exactly the
//! functions of this workspace on the routes their routers serve, and holds together where
//! a linter can't see: each function may read exactly the secrets it is given, nothing is
//! granted on every resource, every alarm notifies, and the alarms and the dashboard only
//! name metrics the bridge emits, with the dimensions it emits them with.

#![allow(clippy::unwrap_used)] // a failed unwrap is the test failing

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{Value, json};

const SAM_REQUIREMENTS: &str = include_str!("../sam-requirements.txt");

/// The bridge's custom metrics (namespace `SmsWhatsAppBridge`), each with its one dimension
/// and, where the set is closed, its values: what `shared/src/telemetry.rs` callers emit.
/// Keep in step with them (a `shared::telemetry::METRICS` list may replace this one).
const NAMESPACE: &str = "SmsWhatsAppBridge";
const JOB_KINDS: &[&str] = &["forward_to_agent", "send_sms", "notify_agent", "auto_reply"];
const METRICS: &[(&str, &str, Option<&[&str]>)] = &[
    ("MessagesRelayed", "kind", Some(JOB_KINDS)),
    ("DeliveryFailed", "class", Some(&["retry", "permanent", "escalate"])),
    ("RelayLatencyMs", "direction", Some(&["to_agent", "to_customer"])),
    ("DuplicateWebhook", "source", Some(&["twilio", "twilio_status", "aws_sms", "aws_sms_status", "whatsapp"])),
    ("SignatureRejected", "source", Some(&["twilio", "meta"])),
    ("JobsDeadLettered", "reason", Some(&["escalate", "undecodable", "expired"])),
    ("NoticeUndeliverable", "reason", Some(&["window_closed"])),
    ("MediaNotForwarded", "kind", None),
    ("AutoReplySent", "reason", None),
    ("OptedOutRefused", "kind", Some(JOB_KINDS)),
    ("WhatsAppMessagesBilled", "category", Some(&["service", "utility", "marketing", "authentication", "other"])),
    ("LineTemplateChanged", "concern", Some(&["stopped", "recategorized", "restored", "other"])),
    ("AmbiguousSend", "provider", Some(&["whatsapp", "sms"])),
    ("AmbiguousResolved", "outcome", Some(&["found", "not_found", "resent_unverified"])),
    ("WebhookItemSkipped", "source", Some(&["meta", "twilio_status", "aws_sms", "aws_sms_status"])),
    ("OutboxDeferred", "source", Some(&["webhook"])),
    ("OutboxSwept", "source", Some(&["schedule", "local"])),
    ("LinesRefreshed", "outcome", Some(&["reloaded", "invalid", "not_found", "unavailable", "timeout"])),
    ("FormerAgentRefused", "kind", Some(&["forward_to_agent", "send_sms"])),
    ("Digests", "outcome", Some(&["parked", "sent"])),
];

/// The secrets each function reads (docs/configuration.md),
/// each given in AWS as `<NAME>_PARAM`, the name of an SSM SecureString.
const SECRETS: &[(&str, &[&str])] = &[
    (
        "functions/sms-webhook",
        &[
            "TWILIO_AUTH_TOKEN_PARAM",
            "META_ACCESS_TOKEN_PARAM",
            "TWILIO_WEBHOOK_SHARED_KEY_PARAM",
            "MEDIA_LINK_KEY_PARAM",
        ],
    ),
    ("functions/whatsapp-webhook", &["META_APP_SECRET_PARAM", "META_VERIFY_TOKEN_PARAM"]),
    ("functions/delivery-worker", &["META_ACCESS_TOKEN_PARAM", "TWILIO_AUTH_TOKEN_PARAM", "MEDIA_LINK_KEY_PARAM"]),
];
const PLAIN_SECRETS: &[&str] = &[
    "TWILIO_AUTH_TOKEN",
    "TWILIO_WEBHOOK_SHARED_KEY",
    "MEDIA_LINK_KEY",
    "META_APP_SECRET",
    "META_ACCESS_TOKEN",
    "META_VERIFY_TOKEN",
];
/// Set when the deployment has a Twilio account (`TwilioAccountSid` given): the Twilio
/// settings, whose secrets' parameters keep their default names.
const TWILIO_CONDITION: &str = "HasTwilioAccount";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

fn template() -> String {
    std::fs::read_to_string(workspace().join("template.yaml")).unwrap()
}

fn sam_site() -> PathBuf {
    bridge_emulator::install_pinned("aws-sam-cli", SAM_REQUIREMENTS).unwrap()
}

/// The template as SAM itself reads it: the SAM CLI's YAML loader turns CloudFormation's
/// short-form tags (`!Ref X`, `!GetAtt A.B`, `!Sub ..`) into their long forms
/// (`{"Ref": "X"}`, `{"Fn::GetAtt": ["A", "B"]}`), printed here as JSON. No YAML crate
/// needed, and no second parser that could read the template differently from SAM.
fn parsed() -> &'static Value {
    static PARSED: OnceLock<Value> = OnceLock::new();
    PARSED.get_or_init(|| {
        let output = Command::new(bridge_emulator::python())
            .arg("-c")
            .arg("import json, sys; from samcli.yamlhelper import yaml_parse; print(json.dumps(yaml_parse(open(sys.argv[1]).read())))")
            .arg(workspace().join("template.yaml"))
            .env("PYTHONPATH", sam_site())
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice(&output.stdout).unwrap()
    })
}

fn resources(of_type: &str) -> Vec<(&'static str, &'static Value)> {
    parsed()["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == of_type)
        .map(|(id, r)| (id.as_str(), r))
        .collect()
}

fn ref_to(name: &str) -> Value {
    json!({ "Ref": name })
}

/// Both branches of every `Fn::If` (less `AWS::NoValue`), so a conditional grant is checked too.
fn unconditional(value: &Value) -> Vec<&Value> {
    match value.get("Fn::If").and_then(Value::as_array) {
        Some(branches) => {
            branches[1..].iter().filter(|b| **b != ref_to("AWS::NoValue")).flat_map(unconditional).collect()
        }
        None => vec![value],
    }
}

fn as_list(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().collect(),
        one => vec![one],
    }
}

fn strings(value: &Value) -> BTreeSet<String> {
    as_list(value).into_iter().map(|v| v.as_str().unwrap().to_owned()).collect()
}

/// Every statement of the role a function runs with.
fn role_statements(function: &Value) -> Vec<&'static Value> {
    let role_id = function["Properties"]["Role"]["Fn::GetAtt"][0].as_str().expect("each function names its own role");
    let role = &parsed()["Resources"][role_id];
    assert_eq!(role["Type"], "AWS::IAM::Role");
    as_list(&role["Properties"]["Policies"])
        .into_iter()
        .flat_map(unconditional)
        .flat_map(|policy| as_list(&policy["PolicyDocument"]["Statement"]))
        .collect()
}

#[test]
fn sam_validate_lint_passes() {
    let output = Command::new(bridge_emulator::python())
        .args(["-c", "import sys; from samcli.cli.main import cli; sys.argv[0] = 'sam'; cli()"])
        .args(["validate", "--lint", "--template-file", "template.yaml", "--region", "us-east-1"])
        .current_dir(workspace())
        .env("PYTHONPATH", sam_site())
        .env("SAM_CLI_TELEMETRY", "0")
        .output()
        .unwrap();
    let printed = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success() && printed.contains("is a valid SAM Template"), "{printed}");
}

#[test]
fn every_workspace_function_is_deployed_with_cargo_lambda_on_arm64() {
    let template = template();
    let functions: Vec<String> = std::fs::read_dir(workspace().join("functions"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(functions.len(), 3);
    for function in &functions {
        assert!(template.contains(&format!("CodeUri: functions/{function}\n")), "{function} is not deployed");
    }
    assert_eq!(template.matches("CodeUri: ").count(), functions.len(), "a deployed function is not in the workspace");
    assert_eq!(template.matches("BuildMethod: rust-cargolambda").count(), functions.len());
    assert!(template.contains("Runtime: provided.al2023") && template.contains("Architectures: [arm64]"));
    assert!(template.contains("FunctionResponseTypes: [ReportBatchItemFailures]"));
}

#[test]
fn the_api_routes_are_the_routers_routes() {
    let template = template();
    let served: Vec<_> = sms_webhook::ROUTES.iter().chain(whatsapp_webhook::ROUTES).collect();
    for (method, path) in &served {
        assert!(template.contains(&format!("RouteKey: {method} {path}\n")), "{method} {path} is not routed");
    }
    assert_eq!(template.matches("RouteKey: ").count(), served.len(), "a route no function serves");
}

#[test]
fn each_function_may_read_exactly_the_secrets_it_is_given() {
    let parameters = &parsed()["Parameters"];
    let globals = &parsed()["Globals"]["Function"]["Environment"]["Variables"];
    assert_eq!(globals["BRIDGE_LINES_PARAM"], ref_to("BridgeLinesParameter"));
    let functions = resources("AWS::Serverless::Function");
    assert_eq!(functions.len(), SECRETS.len());
    for (id, function) in functions {
        let variables = function["Properties"]["Environment"]["Variables"].as_object().unwrap();
        // A plain secret is only declared empty, for `sam local invoke --env-vars` to fill.
        for plain in PLAIN_SECRETS {
            if let Some(value) = variables.get(*plain) {
                assert_eq!(value, "", "{id}: {plain} in plain text; give {plain}_PARAM instead");
            }
        }
        let given: BTreeSet<&str> = variables.keys().map(String::as_str).filter(|k| k.ends_with("_PARAM")).collect();
        let code_uri = function["Properties"]["CodeUri"].as_str().unwrap();
        let (_, reads) = SECRETS.iter().find(|(uri, _)| *uri == code_uri).unwrap();
        assert_eq!(given, reads.iter().copied().collect(), "{id}: the secrets its code reads");

        // Each `_PARAM` names a template parameter holding an SSM parameter name ("/..."); an
        // optional secret is set only under its condition (`!If [Has..., !Ref P, NoValue]`),
        // and granted under the same condition.
        let mut arns = BTreeSet::new();
        let mut optional_arns = BTreeSet::new();
        for variable in &given {
            let value = &variables[*variable];
            let (parameter, condition) = match value.get("Fn::If") {
                Some(when) => {
                    assert_eq!(
                        when[2],
                        ref_to("AWS::NoValue"),
                        "{id}: {variable} is unset, not empty, without its secret"
                    );
                    (when[1]["Ref"].as_str().expect("a !Ref to a template parameter"), when[0].as_str())
                }
                None => (value["Ref"].as_str().expect("a _PARAM is a !Ref to a template parameter"), None),
            };
            let declared = &parameters[parameter];
            let default = declared["Default"].as_str().unwrap();
            let pattern = declared["AllowedPattern"].as_str().unwrap_or_default();
            assert!(
                pattern.starts_with("^/") || pattern.starts_with("^(/") || pattern.starts_with("^((/"),
                "{parameter}: AllowedPattern must require /"
            );
            // The name keeps its leading slash: parameter/sms-whatsapp-bridge/...
            let arn =
                format!("arn:${{AWS::Partition}}:ssm:${{AWS::Region}}:${{AWS::AccountId}}:parameter${{{parameter}}}");
            match condition {
                None => {
                    assert!(default.starts_with('/'), "{parameter}: default must start with /");
                    arns.insert(arn);
                }
                Some(TWILIO_CONDITION) => {
                    assert!(default.starts_with('/'), "{parameter}: default must start with /");
                    let defined = &parsed()["Conditions"][TWILIO_CONDITION];
                    assert_eq!(defined, &json!({ "Fn::Not": [{ "Fn::Equals": [ref_to("TwilioAccountSid"), ""] }] }));
                    optional_arns.insert((TWILIO_CONDITION.to_owned(), arn));
                }
                Some(condition) => {
                    assert!(default.is_empty(), "{parameter}: an optional secret is off by default");
                    let defined = &parsed()["Conditions"][condition];
                    assert_eq!(defined["Fn::Not"][0]["Fn::Equals"][0], ref_to(parameter), "{condition}");
                    optional_arns.insert((condition.to_owned(), arn));
                }
            }
        }

        let statements = role_statements(function);
        let ssm: Vec<_> =
            statements.iter().filter(|s| strings(&s["Action"]).iter().any(|a| a.starts_with("ssm:"))).collect();
        assert_eq!(ssm.len(), 1, "{id}: one statement grants its secrets");
        let actions = strings(&ssm[0]["Action"]);
        assert!(actions.contains("ssm:GetParameters"), "{id}: the cold start reads with one GetParameters");
        assert!(actions.iter().all(|a| a == "ssm:GetParameters" || a == "ssm:GetParameter"), "{id}: {actions:?}");
        // The secrets' parameters, and the lines' parameter when one is given (every
        // function reads BRIDGE_LINES_PARAM, set in Globals).
        let lines_arn = "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${BridgeLinesParameter}";
        let mut granted = BTreeSet::new();
        let mut optional_granted = BTreeSet::new();
        let mut lines_granted = false;
        for resource in as_list(&ssm[0]["Resource"]) {
            match (resource.get("Fn::Sub"), resource.get("Fn::If")) {
                (Some(arn), _) => {
                    granted.insert(arn.as_str().unwrap().to_owned());
                }
                (None, Some(when)) if when[0] == "HasBridgeLinesParameter" => {
                    assert_eq!(when[1]["Fn::Sub"], lines_arn, "{id}");
                    assert_eq!(when[2], ref_to("AWS::NoValue"), "{id}");
                    lines_granted = true;
                }
                (None, Some(when)) => {
                    assert_eq!(when[2], ref_to("AWS::NoValue"), "{id}");
                    let condition = when[0].as_str().unwrap().to_owned();
                    optional_granted.insert((condition, when[1]["Fn::Sub"].as_str().unwrap().to_owned()));
                }
                _ => panic!("{id}: {resource}"),
            }
        }
        assert_eq!(granted, arns, "{id}: exactly the parameters named in its environment");
        assert_eq!(optional_granted, optional_arns, "{id}: each optional secret, under its own condition");
        assert!(lines_granted, "{id}: reads BRIDGE_LINES_PARAM but may not read it");

        // A customer managed key only through SSM; the AWS managed aws/ssm needs no grant.
        for kms in statements.iter().filter(|s| strings(&s["Action"]).iter().any(|a| a.starts_with("kms:"))) {
            assert_eq!(strings(&kms["Action"]), BTreeSet::from(["kms:Decrypt".to_owned()]), "{id}");
            assert_eq!(kms["Resource"], ref_to("SecretsKmsKeyArn"), "{id}");
            assert_eq!(
                kms["Condition"]["StringEquals"]["kms:ViaService"],
                json!({ "Fn::Sub": "ssm.${AWS::Region}.amazonaws.com" }),
                "{id}"
            );
        }
    }
}

/// What active tracing needs, on "*": X-Ray takes no resource ARN for them.
const XRAY_WRITE: &[&str] = &["xray:PutTraceSegments", "xray:PutTelemetryRecords"];

#[test]
fn nothing_is_granted_on_every_resource() {
    fn walk(value: &Value, path: &str) {
        match value {
            Value::Object(map) => {
                // X-Ray's write actions have no resource to name (the one exception, optional).
                let xray_only =
                    map.get("Action").is_some_and(|a| strings(a).iter().all(|a| XRAY_WRITE.contains(&a.as_str())));
                for (key, inner) in map {
                    // A key policy's "*" is the key itself (the AWS SMS topics' key, checked in
                    // only_the_sms_service_may_publish_to_the_aws_sms_topics).
                    if key == "KeyPolicy" {
                        continue;
                    }
                    if (key == "Resource" || key == "NotResource") && !xray_only {
                        assert!(!as_list(inner).contains(&&json!("*")), "{path}.{key} is \"*\"");
                    }
                    walk(inner, &format!("{path}.{key}"));
                }
            }
            Value::Array(items) => items.iter().enumerate().for_each(|(i, item)| walk(item, &format!("{path}[{i}]"))),
            _ => {}
        }
    }
    walk(parsed(), "");
    // SAM's generated role would attach AWSLambdaBasicExecutionRole (logs on "*").
    for (id, function) in resources("AWS::Serverless::Function") {
        assert!(function["Properties"]["Role"].is_object(), "{id} has no role of its own");
        assert!(function["Properties"].get("Policies").is_none(), "{id}: Policies are ignored beside a Role");
        let logs: Vec<_> = role_statements(function)
            .into_iter()
            .filter(|s| strings(&s["Action"]).iter().any(|a| a.starts_with("logs:")))
            .collect();
        let log_group = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"].as_str().unwrap();
        assert_eq!(logs.len(), 1);
        assert_eq!(
            logs[0]["Resource"],
            json!({ "Fn::GetAtt": [log_group, "Arn"] }),
            "{id} writes to its own log group"
        );
    }
}

#[test]
fn every_alarm_notifies_the_topic_when_an_email_is_given() {
    let topic = &parsed()["Resources"]["AlarmTopic"];
    assert_eq!(topic["Type"], "AWS::SNS::Topic");
    assert_eq!(topic["Condition"], "HasAlarmEmail");
    assert_eq!(topic["Properties"]["Subscription"], json!([{ "Protocol": "email", "Endpoint": ref_to("AlarmEmail") }]));
    assert_eq!(parsed()["Parameters"]["AlarmEmail"]["Default"], "", "no email, no topic");
    let notify = json!({ "Fn::If": ["HasAlarmEmail", [ref_to("AlarmTopic")], ref_to("AWS::NoValue")] });
    let alarms = resources("AWS::CloudWatch::Alarm");
    assert!(alarms.len() >= 10);
    for (id, alarm) in alarms {
        assert_eq!(alarm["Properties"]["AlarmActions"], notify, "{id}");
        assert_eq!(alarm["Properties"]["OKActions"], notify, "{id}");
        assert!(alarm["Properties"]["TreatMissingData"].is_string(), "{id}: say what no data means");
    }
}

#[test]
fn the_alarms_spec_10_asks_for_exist() {
    let alarmed: Vec<(String, String, Value)> = resources("AWS::CloudWatch::Alarm")
        .into_iter()
        .map(|(_, a)| {
            let p = &a["Properties"];
            (p["Namespace"].as_str().unwrap_or("").to_owned(), p["MetricName"].as_str().unwrap_or("").to_owned(), {
                let dimensions = p["Dimensions"].as_array().cloned().unwrap_or_default();
                dimensions.first().map(|d| d["Value"].clone()).unwrap_or(Value::Null)
            })
        })
        .collect();
    let has = |namespace: &str, metric: &str, dimension: Value| {
        assert!(
            alarmed.iter().any(|(n, m, d)| n == namespace && m == metric && *d == dimension),
            "no alarm on {namespace} {metric} {dimension}"
        );
    };
    has(
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        json!({ "Fn::GetAtt": ["DeliveryDeadLetterQueue", "QueueName"] }),
    );
    has("AWS/SQS", "ApproximateAgeOfOldestMessage", json!({ "Fn::GetAtt": ["DeliveryQueue", "QueueName"] }));
    for (id, _) in resources("AWS::Serverless::Function") {
        has("AWS/Lambda", "Errors", ref_to(id));
        has("AWS/Lambda", "Throttles", ref_to(id));
    }
    has(NAMESPACE, "DeliveryFailed", json!("escalate"));
    has(NAMESPACE, "RelayLatencyMs", json!("to_agent"));
    has(NAMESPACE, "RelayLatencyMs", json!("to_customer"));
}

/// One use of a custom metric: its name and its dimensions (name, value; the value is
/// `None` in a SEARCH expression, which matches every value).
type MetricUse = (String, Vec<(String, Option<String>)>);

fn alarm_metric_uses() -> Vec<(String, MetricUse)> {
    let mut uses = Vec::new();
    for (id, alarm) in resources("AWS::CloudWatch::Alarm") {
        let p = &alarm["Properties"];
        let stats = std::iter::once(p).chain(
            p["Metrics"].as_array().into_iter().flatten().map(|m| &m["MetricStat"]["Metric"]).filter(|m| m.is_object()),
        );
        for metric in stats.filter(|m| m["Namespace"] == NAMESPACE) {
            let dimensions = as_list(&metric["Dimensions"])
                .into_iter()
                .filter(|d| !d.is_null())
                .map(|d| (d["Name"].as_str().unwrap().to_owned(), Some(d["Value"].as_str().unwrap().to_owned())))
                .collect();
            uses.push((id.to_owned(), (metric["MetricName"].as_str().unwrap().to_owned(), dimensions)));
        }
    }
    uses
}

/// The dashboard's JSON, with every `${...}` of its `!Sub` replaced by a number (valid
/// both inside a string and as a value).
fn dashboard() -> Value {
    let (_, dashboard) = resources("AWS::CloudWatch::Dashboard").pop().expect("a dashboard");
    let mut body = dashboard["Properties"]["DashboardBody"]["Fn::Sub"].as_str().expect("a !Sub body").to_owned();
    while let Some(start) = body.find("${") {
        let end = start + body[start..].find('}').unwrap();
        body.replace_range(start..=end, "0");
    }
    serde_json::from_str(&body).unwrap()
}

fn dashboard_metric_uses() -> Vec<(String, MetricUse)> {
    let mut uses = Vec::new();
    for widget in dashboard()["widgets"].as_array().unwrap() {
        let title = widget["properties"]["title"].as_str().unwrap_or("?").to_owned();
        for line in widget["properties"]["metrics"].as_array().into_iter().flatten() {
            let line = line.as_array().unwrap();
            if let Some(expression) = line[0].get("expression").and_then(Value::as_str) {
                if expression.contains(NAMESPACE) {
                    uses.push((title.clone(), search_expression(expression)));
                }
                continue;
            }
            let names: Vec<&str> = line.iter().filter_map(Value::as_str).collect();
            assert!(!names.contains(&"."), "{title}: write metrics out in full, so this test can read them");
            if names[0] != NAMESPACE {
                continue;
            }
            let dimensions =
                names[2..].chunks(2).map(|pair| (pair[0].to_owned(), Some(pair.get(1).unwrap().to_string()))).collect();
            uses.push((title.clone(), (names[1].to_owned(), dimensions)));
        }
    }
    uses
}

/// `SEARCH('{SmsWhatsAppBridge,kind} MetricName="X"', ...)`: the metric and its dimension set.
fn search_expression(expression: &str) -> MetricUse {
    let schema = expression.split_once(&format!("{{{NAMESPACE},")).unwrap().1.split_once('}').unwrap().0;
    let name = expression.split_once("MetricName=\"").unwrap().1.split_once('"').unwrap().0;
    (name.to_owned(), schema.split(',').map(|d| (d.trim().to_owned(), None)).collect())
}

#[test]
fn alarms_and_dashboard_name_only_metrics_the_bridge_emits() {
    let uses: Vec<_> = alarm_metric_uses().into_iter().chain(dashboard_metric_uses()).collect();
    assert!(uses.len() > 20, "{uses:?}");
    for (r#where, (name, dimensions)) in &uses {
        let Some((_, dimension, values)) = METRICS.iter().find(|(n, _, _)| n == name) else {
            panic!("{where}: {NAMESPACE} {name} is not a metric the bridge emits");
        };
        // CloudWatch matches the whole dimension set: one more or one less finds nothing.
        let [(used, value)] = dimensions.as_slice() else {
            panic!("{where}: {name} is emitted with exactly one dimension, {dimension}; not {dimensions:?}");
        };
        assert_eq!(used, dimension, "{where}: {name}");
        if let (Some(value), Some(values)) = (value, values) {
            assert!(values.contains(&value.as_str()), "{where}: {name} {dimension}={value} is never emitted");
        }
    }
    let on_dashboard: BTreeSet<String> = dashboard_metric_uses().into_iter().map(|(_, (name, _))| name).collect();
    for (name, _, _) in METRICS {
        assert!(on_dashboard.contains(*name), "{name} is not on the dashboard");
    }
}

#[test]
fn the_dashboard_shows_latency_percentiles_queues_and_functions() {
    let dashboard = dashboard();
    let lines: Vec<&Value> = dashboard["widgets"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|w| w["properties"]["metrics"].as_array().into_iter().flatten())
        .collect();
    let shown = |namespace: &str, metric: &str, dimension_value: &str, stat: Option<&str>| {
        lines.iter().any(|line| {
            let line = line.as_array().unwrap();
            line[0] == namespace
                && line[1] == metric
                && line.get(3).and_then(Value::as_str) == Some(dimension_value)
                && stat.is_none_or(|s| line.last().unwrap()["stat"] == s)
        })
    };
    for direction in ["to_agent", "to_customer"] {
        for p in ["p50", "p95", "p99"] {
            assert!(shown(NAMESPACE, "RelayLatencyMs", direction, Some(p)), "{direction} {p}");
        }
    }
    // Placeholders are "0" after dashboard(): every queue line names one of the two queues.
    for metric in ["ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"] {
        assert!(shown("AWS/SQS", metric, "0", None), "{metric}");
    }
    let body = parsed()["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"].as_str().unwrap();
    for queue in ["${DeliveryQueue.QueueName}", "${DeliveryDeadLetterQueue.QueueName}"] {
        assert!(body.matches(queue).count() >= 2, "{queue}: depth and age");
    }
    for function in resources("AWS::Serverless::Function").into_iter().map(|(id, _)| format!("${{{id}}}")) {
        assert!(body.matches(&function).count() >= 3, "{function}: errors, throttles, duration");
    }
    for metric in ["Errors", "Throttles", "Duration"] {
        assert!(shown("AWS/Lambda", metric, "0", None), "{metric}");
    }
}

/// The outbox sweep (docs/guarantees.md, "Recorded means delivered") runs on a schedule that invokes the
/// worker with the event it parses, at most every 3 minutes (inside SQS's five-minute
/// deduplication window), and the worker may read GSI2 and delete what it swept.
#[test]
fn the_outbox_sweep_is_scheduled_and_may_do_its_work() {
    let functions = resources("AWS::Serverless::Function");
    let (_, worker) = functions.iter().find(|(id, _)| *id == "DeliveryWorkerFunction").unwrap();
    let schedules: Vec<&Value> =
        worker["Properties"]["Events"].as_object().unwrap().values().filter(|e| e["Type"] == "ScheduleV2").collect();
    let [schedule] = schedules.as_slice() else { panic!("one schedule: {schedules:?}") };
    let input: Value = serde_json::from_str(schedule["Properties"]["Input"].as_str().unwrap()).unwrap();
    assert!(matches!(delivery_worker::WorkerEvent::parse(input), Ok(delivery_worker::WorkerEvent::SweepOutbox)));
    assert_eq!(parsed()["Parameters"]["OutboxSweepMinutes"]["MaxValue"], 3);
    let statements = role_statements(worker);
    let sweep = statements.iter().find(|s| s["Sid"] == "SweepOutbox").expect("the sweep's permissions");
    assert_eq!(
        strings(&sweep["Action"]),
        ["dynamodb:BatchWriteItem", "dynamodb:DeleteItem", "dynamodb:Query"].map(String::from).into()
    );
    let index = parsed()["Resources"]["BridgeTable"]["Properties"]["GlobalSecondaryIndexes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["IndexName"] == shared::adapters::dynamodb::OUTBOX_INDEX)
        .expect("the outbox index");
    assert_eq!(index["Projection"]["ProjectionType"], "KEYS_ONLY");
}

/// The WhatsApp webhook forgets an agent's old user id (`forget_agent_user_id`, a
/// `DeleteItem`) when WhatsApp reports it changed; without the action the change would fail
/// on every delivery Meta retries, and moto checks no permissions.
#[test]
fn the_whatsapp_webhook_may_forget_an_agents_old_user_id() {
    let functions = resources("AWS::Serverless::Function");
    let (_, webhook) = functions.iter().find(|(id, _)| *id == "WhatsAppWebhookFunction").unwrap();
    let statements = role_statements(webhook);
    let routing = statements.iter().find(|s| s["Sid"] == "RouteAgentMessages").expect("its table permissions");
    assert!(strings(&routing["Action"]).contains("dynamodb:DeleteItem"), "{routing}");
}

#[test]
fn the_worker_reserves_the_concurrency_its_queue_may_use() {
    let functions = resources("AWS::Serverless::Function");
    let is_worker =
        |f: &Value| f["Properties"]["Events"].as_object().is_some_and(|e| e.values().any(|e| e["Type"] == "SQS"));
    let (workers, webhooks): (Vec<_>, Vec<_>) = functions.into_iter().partition(|(_, f)| is_worker(f));
    let [(_, worker)] = workers.as_slice() else { panic!("one worker") };
    assert_eq!(
        worker["Properties"]["ReservedConcurrentExecutions"],
        json!({ "Fn::If": ["ReservesWorkerConcurrency", ref_to("WorkerMaximumConcurrency"), ref_to("AWS::NoValue")] })
    );
    assert_eq!(parsed()["Parameters"]["ReserveWorkerConcurrency"]["Default"], "yes");
    for event in worker["Properties"]["Events"].as_object().unwrap().values().filter(|e| e["Type"] == "SQS") {
        assert_eq!(event["Properties"]["ScalingConfig"]["MaximumConcurrency"], ref_to("WorkerMaximumConcurrency"));
    }
    // The webhooks absorb the providers' bursts; the HTTP API stage throttles them.
    for (id, webhook) in webhooks {
        assert!(webhook["Properties"].get("ReservedConcurrentExecutions").is_none(), "{id}");
    }
}

#[test]
fn the_metric_list_is_the_one_the_bridge_declares() {
    let listed: Vec<(&str, &str)> = METRICS.iter().map(|(name, dimension, _)| (*name, *dimension)).collect();
    assert_eq!(listed, shared::telemetry::METRICS);
}

/// Every metric the code emits is declared (so the alarms and the dashboard can know it),
/// and every declared metric is emitted somewhere.
#[test]
fn the_code_emits_exactly_the_declared_metrics() {
    let mut sources = Vec::new();
    for dir in
        ["shared/src", "functions/sms-webhook/src", "functions/whatsapp-webhook/src", "functions/delivery-worker/src"]
    {
        collect_rust_sources(&workspace().join(dir), &mut sources);
    }
    let code: String = sources.iter().map(|path| std::fs::read_to_string(path).unwrap()).collect();
    let mut emitted = BTreeSet::new();
    for call in ["telemetry::count(\"", "telemetry::metric(\""] {
        for (at, _) in code.match_indices(call) {
            let rest = &code[at + call.len()..];
            emitted.insert(rest[..rest.find('"').unwrap()].to_owned());
        }
    }
    if code.contains("telemetry::relay_latency(") {
        emitted.insert("RelayLatencyMs".to_owned());
    }
    let declared: BTreeSet<String> = shared::telemetry::METRICS.iter().map(|(name, _)| name.to_string()).collect();
    assert_eq!(emitted, declared);
}

fn collect_rust_sources(dir: &Path, into: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_rust_sources(&path, into);
        } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("telemetry.rs") {
            into.push(path);
        }
    }
}

/// `sam local invoke --env-vars events/<function>.env.json` only overrides variables the
/// template declares (for the function or in Globals): every one a file sets must be there,
/// and each file is for one deployed function. That the files hold everything a cold start
/// needs is local-stack/tests/sam_env.rs.
#[test]
fn every_sample_environment_variable_is_declared_for_sam_local() {
    let globals = parsed()["Globals"]["Function"]["Environment"]["Variables"].as_object().unwrap();
    assert_eq!(globals["EMULATOR_ENDPOINT_URL"], "", "empty in AWS");
    let functions = resources("AWS::Serverless::Function");
    let mut files = 0;
    for entry in std::fs::read_dir(workspace().join("events")).unwrap() {
        let path = entry.unwrap().path();
        let Some(name) = path.file_name().unwrap().to_str().unwrap().strip_suffix(".env.json") else { continue };
        files += 1;
        let env: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let sections = env.as_object().unwrap();
        assert_eq!(sections.len(), 1, "{name}: one function per file");
        let (id, variables) = sections.iter().next().unwrap();
        let (_, function) =
            functions.iter().find(|(logical, _)| logical == id).unwrap_or_else(|| panic!("{id} is not a function"));
        assert_eq!(function["Properties"]["CodeUri"], format!("functions/{name}"), "{name}.env.json is for {id}");
        let declared = function["Properties"]["Environment"]["Variables"].as_object().unwrap();
        for variable in variables.as_object().unwrap().keys() {
            assert!(
                declared.contains_key(variable) || globals.contains_key(variable),
                "{id}: {variable} is set in events/{name}.env.json but not declared"
            );
        }
    }
    assert_eq!(files, functions.len(), "an env file per function");
}

/// `EnableAccessLogs` and `EnableTracing` are off by default; on, the HTTP API writes one JSON
/// line per request (with the caller's IP) to a log group of its own kept `LogRetentionDays`,
/// and every function is traced, its role allowed exactly X-Ray's two write actions.
#[test]
fn access_logs_and_tracing_are_options_off_by_default() {
    for (parameter, condition) in [("EnableAccessLogs", "LogsApiAccess"), ("EnableTracing", "TracesFunctions")] {
        let declared = &parsed()["Parameters"][parameter];
        assert_eq!(declared["Default"], "no", "{parameter}");
        assert_eq!(declared["AllowedValues"], json!(["yes", "no"]), "{parameter}");
        assert_eq!(parsed()["Conditions"][condition], json!({ "Fn::Equals": [ref_to(parameter), "yes"] }));
    }

    let group = &parsed()["Resources"]["ApiAccessLogGroup"];
    assert_eq!(group["Type"], "AWS::Logs::LogGroup");
    assert_eq!(group["Condition"], "LogsApiAccess");
    assert_eq!(group["Properties"]["RetentionInDays"], ref_to("LogRetentionDays"));
    let settings = &parsed()["Resources"]["HttpApiStage"]["Properties"]["AccessLogSettings"]["Fn::If"];
    assert_eq!(settings[0], "LogsApiAccess");
    assert_eq!(settings[2], ref_to("AWS::NoValue"));
    assert_eq!(settings[1]["DestinationArn"], json!({ "Fn::GetAtt": ["ApiAccessLogGroup", "Arn"] }));
    let line = access_log_line();
    for (key, variable) in [
        ("requestId", "$context.requestId"),
        ("ip", "$context.identity.sourceIp"),
        ("routeKey", "$context.routeKey"),
        ("status", "$context.status"),
        ("requestTime", "$context.requestTime"),
        ("userAgent", "$context.identity.userAgent"),
        ("integrationError", "$context.integration.error"),
    ] {
        assert_eq!(line[key], variable, "the access log's {key}");
    }

    let globals = &parsed()["Globals"]["Function"];
    assert_eq!(globals["Tracing"], json!({ "Fn::If": ["TracesFunctions", "Active", "PassThrough"] }));
    for (id, function) in resources("AWS::Serverless::Function") {
        assert!(function["Properties"].get("Tracing").is_none(), "{id}: traced as Globals says");
        let role_id = function["Properties"]["Role"]["Fn::GetAtt"][0].as_str().unwrap();
        let traced: Vec<&Value> = as_list(&parsed()["Resources"][role_id]["Properties"]["Policies"])
            .into_iter()
            .filter(|p| p.get("Fn::If").is_some_and(|when| when[0] == "TracesFunctions"))
            .collect();
        let [policy] = traced.as_slice() else { panic!("{id}: one policy under TracesFunctions") };
        assert_eq!(policy["Fn::If"][2], ref_to("AWS::NoValue"), "{id}");
        let statements = as_list(&policy["Fn::If"][1]["PolicyDocument"]["Statement"]);
        let [statement] = statements.as_slice() else { panic!("{id}: one statement") };
        assert_eq!(strings(&statement["Action"]), XRAY_WRITE.iter().map(|a| a.to_string()).collect(), "{id}");
        assert_eq!(statement["Resource"], "*", "{id}");
    }
}

/// The access log format as the JSON line API Gateway writes, each value the `$context`
/// variable that fills it.
fn access_log_line() -> Value {
    let settings = &parsed()["Resources"]["HttpApiStage"]["Properties"]["AccessLogSettings"]["Fn::If"];
    serde_json::from_str(settings[1]["Format"].as_str().unwrap()).expect("the access log format is JSON")
}

fn query(id: &str) -> &'static Value {
    let query = &parsed()["Resources"][id];
    assert_eq!(query["Type"], "AWS::Logs::QueryDefinition", "{id}");
    query
}

/// Every `prefix.name` a query string names.
fn fields_named(query: &str, prefix: &str) -> BTreeSet<String> {
    query
        .match_indices(prefix)
        .filter(|(at, _)| *at == 0 || !query.as_bytes()[at - 1].is_ascii_alphanumeric())
        .map(|(at, _)| {
            query[at + prefix.len()..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect()
        })
        .collect()
}

/// The three saved queries read the log groups they are about, and only fields the bridge
/// writes: an event's fields (`fields.x`) are named by the functions' `tracing` calls, the
/// worker's span fields (`span.x`) by its job span, and the forged-webhooks query reads the
/// access log's keys (so it exists only with access logs on).
#[test]
fn the_saved_queries_read_fields_the_functions_log() {
    assert_eq!(resources("AWS::Logs::QueryDefinition").len(), 3);
    let log_groups =
        |id: &str| -> Vec<Value> { as_list(&query(id)["Properties"]["LogGroupNames"]).into_iter().cloned().collect() };
    assert_eq!(
        log_groups("ConversationJourneyQuery"),
        ["SmsWebhookLogGroup", "WhatsAppWebhookLogGroup", "DeliveryWorkerLogGroup"].map(ref_to)
    );
    assert_eq!(log_groups("FailedDeliveriesQuery"), [ref_to("DeliveryWorkerLogGroup")]);
    assert_eq!(log_groups("ForgedWebhooksQuery"), [ref_to("ApiAccessLogGroup")]);
    assert_eq!(query("ForgedWebhooksQuery")["Condition"], "LogsApiAccess");

    let mut sources = Vec::new();
    for dir in
        ["shared/src", "functions/sms-webhook/src", "functions/whatsapp-webhook/src", "functions/delivery-worker/src"]
    {
        collect_rust_sources(&workspace().join(dir), &mut sources);
    }
    let code: String = sources.iter().map(|path| std::fs::read_to_string(path).unwrap()).collect();
    let worker = std::fs::read_to_string(workspace().join("functions/delivery-worker/src/lib.rs")).unwrap();
    let job_span = &worker[worker.find("info_span!(\n            \"job\"").expect("the worker's job span")..];
    let job_span = &job_span[..job_span.find(");").unwrap()];
    for id in ["ConversationJourneyQuery", "FailedDeliveriesQuery"] {
        let text = query(id)["Properties"]["QueryString"].as_str().unwrap();
        let fields = fields_named(text, "fields.");
        assert!(fields.contains("outcome"), "{id}: {fields:?}");
        for field in fields.iter().filter(|f| *f != "message") {
            assert!(
                code.contains(&format!("{field} = ")) || code.contains(&format!("            {field},\n")),
                "{id}: no log line has the field {field}"
            );
        }
        for field in fields_named(text, "span.") {
            assert!(job_span.contains(&format!("{field} =")), "{id}: the job span has no {field}");
        }
    }
    let journey = query("ConversationJourneyQuery")["Properties"]["QueryString"].as_str().unwrap();
    assert!(journey.contains("filter fields.handle = ") && journey.contains(" or span.handle = "), "{journey}");
    let failures = query("FailedDeliveriesQuery")["Properties"]["QueryString"].as_str().unwrap();
    for outcome in ["retry", "failed", "escalate"] {
        assert!(worker.contains(&format!("outcome = \"{outcome}\"")), "the worker logs no {outcome}");
        assert!(failures.contains(&format!("\"{outcome}\"")), "{failures}");
    }

    let forged = query("ForgedWebhooksQuery")["Properties"]["QueryString"].as_str().unwrap();
    let line = access_log_line();
    for key in ["status", "ip", "routeKey", "requestTime", "userAgent"] {
        assert!(line.get(key).is_some() && forged.contains(key), "{key}");
    }
    assert!(forged.contains("filter status = \"403\""), "a refused signature is a 403: {forged}");
}

/// SECURITY.md's "At rest" table: the table's TTL reads `expires_at`, which every item carries
/// (`erasure::every_item_kind_the_bridge_writes_expires`); encryption and retention everywhere.
#[test]
fn what_holds_personal_data_is_encrypted_and_expires_as_security_md_says() {
    let tables = resources("AWS::DynamoDB::Table");
    assert_eq!(tables.len(), 1);
    let table = &tables[0].1["Properties"];
    assert_eq!(table["TimeToLiveSpecification"]["AttributeName"], "expires_at");
    assert_eq!(table["TimeToLiveSpecification"]["Enabled"], true);
    assert_eq!(table["SSESpecification"]["SSEEnabled"], true);
    assert_eq!(table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"], true);
    // The queues: encrypted, the DLQ keeping jobs 14 days, the queue 4 (SECURITY.md's table).
    let mut retention: Vec<i64> = resources("AWS::SQS::Queue")
        .iter()
        .map(|(id, queue)| {
            assert_eq!(queue["Properties"]["SqsManagedSseEnabled"], true, "{id}");
            queue["Properties"]["MessageRetentionPeriod"].as_i64().unwrap()
        })
        .collect();
    retention.sort_unstable();
    retention.dedup();
    assert_eq!(retention, [4 * 24 * 3600, 14 * 24 * 3600]);
    // Every log group the stack makes keeps its lines `LogRetentionDays`.
    for (id, group) in resources("AWS::Logs::LogGroup") {
        assert_eq!(group["Properties"]["RetentionInDays"], ref_to("LogRetentionDays"), "{id}");
    }
}

/// The resources an AWS End User Messaging SMS line needs (docs/aws-sms.md), made only when
/// `AwsSmsPhoneNumberArns` names a number.
const AWS_SMS_RESOURCES: &[&str] = &[
    "AwsSmsTopicKey",
    "AwsSmsInboundTopic",
    "AwsSmsEventsTopic",
    "AwsSmsInboundTopicPolicy",
    "AwsSmsEventsTopicPolicy",
    "AwsSmsConfigurationSet",
    "AwsSmsInboundSubscription",
    "AwsSmsEventsSubscription",
    "AwsSmsInboundInvokePermission",
    "AwsSmsEventsInvokePermission",
    "AwsSmsMediaBucket",
    "AwsSmsFailedEventsQueue",
    "AwsSmsFailedEventsDestination",
    "AwsSmsFailedEventsAlarm",
];
const AWS_SMS_CONDITION: &str = "HasAwsSmsLines";

fn resource(id: &str) -> &'static Value {
    let found = &parsed()["Resources"][id];
    assert!(found.is_object(), "no resource {id}");
    found
}

fn if_aws_sms(value: Value) -> Value {
    json!({ "Fn::If": [AWS_SMS_CONDITION, value, ref_to("AWS::NoValue")] })
}

/// A Twilio-only stack (the parameter empty, its default) deploys exactly what it did before
/// AWS SMS lines existed: every AWS SMS resource is under `HasAwsSmsLines`, and nothing else
/// names one of them, or sets an AWS SMS variable, outside an `!If` on the same condition.
#[test]
fn aws_sms_resources_exist_only_for_aws_sms_lines() {
    let parameter = &parsed()["Parameters"]["AwsSmsPhoneNumberArns"];
    assert_eq!(parameter["Type"], "CommaDelimitedList");
    assert_eq!(parameter["Default"], "", "off by default");
    assert_eq!(
        parsed()["Conditions"][AWS_SMS_CONDITION],
        json!({ "Fn::Not": [{ "Fn::Equals": [{ "Fn::Join": ["", ref_to("AwsSmsPhoneNumberArns")] }, ""] }] })
    );
    let conditional: BTreeSet<&str> = parsed()["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Condition"] == AWS_SMS_CONDITION)
        .map(|(id, _)| id.as_str())
        .collect();
    assert_eq!(conditional, AWS_SMS_RESOURCES.iter().copied().collect(), "the AWS SMS resources, and only them");
    for of_type in
        ["AWS::SMSVOICE::ConfigurationSet", "AWS::SNS::Subscription", "AWS::KMS::Key", "AWS::SNS::TopicPolicy"]
    {
        for (id, _) in resources(of_type) {
            assert!(conditional.contains(id), "{id} ({of_type}) is made for a Twilio-only stack");
        }
    }

    /// Every name of an AWS SMS resource (`Ref`, `GetAtt`, `${..}` in a `Sub`) reached
    /// without passing the `true` branch of an `!If` on the condition.
    fn unguarded(value: &Value, path: &str, found: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(when) = map.get("Fn::If").filter(|w| w[0] == AWS_SMS_CONDITION) {
                    return unguarded(&when[2], &format!("{path}.else"), found);
                }
                for (key, inner) in map {
                    let named = match (key.as_str(), inner) {
                        ("Ref", Value::String(name)) => vec![name.clone()],
                        ("Fn::GetAtt", attribute) => vec![attribute[0].as_str().unwrap_or_default().to_owned()],
                        ("Fn::Sub", sub) => {
                            let text = sub.as_str().or_else(|| sub[0].as_str()).unwrap_or_default();
                            text.split("${").skip(1).map(|s| s.split(['}', '.']).next().unwrap().to_owned()).collect()
                        }
                        _ => Vec::new(),
                    };
                    found.extend(
                        named
                            .into_iter()
                            .filter(|n| AWS_SMS_RESOURCES.contains(&n.as_str()))
                            .map(|n| format!("{path}: {n}")),
                    );
                    unguarded(inner, &format!("{path}.{key}"), found);
                }
            }
            Value::Array(items) => {
                items.iter().enumerate().for_each(|(i, item)| unguarded(item, &format!("{path}[{i}]"), found))
            }
            _ => {}
        }
    }
    let mut found = Vec::new();
    for (id, resource) in parsed()["Resources"].as_object().unwrap() {
        if !conditional.contains(id.as_str()) {
            unguarded(resource, id, &mut found);
        }
    }
    for (id, output) in parsed()["Outputs"].as_object().unwrap() {
        if output["Condition"] != AWS_SMS_CONDITION {
            unguarded(output, id, &mut found);
        }
    }
    assert!(found.is_empty(), "named outside HasAwsSmsLines: {found:?}");

    // The variables the code reads for AWS lines are set only under the condition.
    let config = std::fs::read_to_string(workspace().join("shared/src/config.rs")).unwrap();
    let variables = |id: &str| resource(id)["Properties"]["Environment"]["Variables"].clone();
    for (function, variable, value) in [
        ("SmsWebhookFunction", "AWS_SMS_INBOUND_TOPIC_ARN", ref_to("AwsSmsInboundTopic")),
        ("SmsWebhookFunction", "AWS_SMS_EVENTS_TOPIC_ARN", ref_to("AwsSmsEventsTopic")),
        ("DeliveryWorkerFunction", "AWS_SMS_CONFIGURATION_SET", ref_to("AwsSmsConfigurationSet")),
    ] {
        assert!(config.contains(&format!("\"{variable}\"")), "the code reads no {variable}");
        assert_eq!(variables(function)[variable], if_aws_sms(value), "{function}: {variable}");
    }
    assert!(variables("WhatsAppWebhookFunction").get("AWS_SMS_CONFIGURATION_SET").is_none());
}

/// Each topic's policy lets the SMS service publish, for this account only (the condition keys
/// AWS recommends against the confused deputy), and nobody else; the events topic only for
/// this stack's configuration set. The key that encrypts them lets the SMS service encrypt and
/// nothing more.
#[test]
fn only_the_sms_service_may_publish_to_the_aws_sms_topics() {
    let in_this_account = json!({ "Fn::Sub": "arn:${AWS::Partition}:sms-voice:${AWS::Region}:${AWS::AccountId}:*" });
    let configuration_set = resource("AwsSmsConfigurationSet");
    let set_name = &configuration_set["Properties"]["ConfigurationSetName"];
    assert!(set_name.is_object(), "named by the template, so the events topic's policy can name it");
    let this_set = json!({ "Fn::Sub": [
        "arn:${AWS::Partition}:sms-voice:${AWS::Region}:${AWS::AccountId}:configuration-set/${Name}",
        { "Name": set_name }
    ] });
    for (topic, policy, source) in [
        ("AwsSmsInboundTopic", "AwsSmsInboundTopicPolicy", &in_this_account),
        ("AwsSmsEventsTopic", "AwsSmsEventsTopicPolicy", &this_set),
    ] {
        assert_eq!(resource(topic)["Type"], "AWS::SNS::Topic");
        assert_eq!(resource(topic)["Properties"]["KmsMasterKeyId"], ref_to("AwsSmsTopicKey"), "{topic}: encrypted");
        let policies: Vec<_> = resources("AWS::SNS::TopicPolicy")
            .into_iter()
            .filter(|(_, p)| as_list(&p["Properties"]["Topics"]).contains(&&ref_to(topic)))
            .collect();
        let [(id, found)] = policies.as_slice() else { panic!("{topic}: one policy, not {policies:?}") };
        assert_eq!(*id, policy);
        assert_eq!(found["Properties"]["Topics"], json!([ref_to(topic)]), "{policy}: its own topic alone");
        let statements = as_list(&found["Properties"]["PolicyDocument"]["Statement"]);
        let [statement] = statements.as_slice() else { panic!("{policy}: one statement") };
        assert_eq!(statement["Effect"], "Allow");
        assert_eq!(statement["Principal"], json!({ "Service": "sms-voice.amazonaws.com" }), "{policy}");
        assert_eq!(statement["Action"], "sns:Publish", "{policy}");
        assert_eq!(statement["Resource"], ref_to(topic), "{policy}");
        assert_eq!(
            statement["Condition"],
            json!({
                "StringEquals": { "aws:SourceAccount": ref_to("AWS::AccountId") },
                "ArnLike": { "aws:SourceArn": source }
            }),
            "{policy}"
        );
    }
    // The event destination exists once its topic's policy does, and sends every text and
    // MMS event (TEXT_QUEUED and TEXT_PENDING included: docs/aws-sms.md) to the events topic.
    assert_eq!(configuration_set["DependsOn"], "AwsSmsEventsTopicPolicy");
    let destinations = as_list(&configuration_set["Properties"]["EventDestinations"]);
    let [destination] = destinations.as_slice() else { panic!("one event destination") };
    assert_eq!(destination["Enabled"], true);
    assert_eq!(destination["MatchingEventTypes"], json!(["TEXT_ALL", "MEDIA_ALL"]));
    assert_eq!(destination["SnsDestination"], json!({ "TopicArn": ref_to("AwsSmsEventsTopic") }));

    let key = resource("AwsSmsTopicKey");
    assert_eq!(key["Properties"]["EnableKeyRotation"], true);
    let statements = as_list(&key["Properties"]["KeyPolicy"]["Statement"]);
    let by_service: Vec<_> = statements.iter().filter(|s| s["Principal"].get("Service").is_some()).collect();
    let [service] = by_service.as_slice() else { panic!("one service may use the key") };
    assert_eq!(service["Principal"], json!({ "Service": "sms-voice.amazonaws.com" }));
    assert_eq!(strings(&service["Action"]), ["kms:Decrypt", "kms:GenerateDataKey*"].map(String::from).into());
    assert_eq!(service["Condition"]["StringEquals"]["aws:SourceAccount"], ref_to("AWS::AccountId"));
    assert_eq!(service["Condition"]["ArnLike"]["aws:SourceArn"], in_this_account);
    for other in statements.iter().filter(|s| s["Principal"].get("Service").is_none()) {
        assert_eq!(
            other["Principal"],
            json!({ "AWS": { "Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root" } }),
            "only the account itself administers the key"
        );
    }
}

/// The worker may send AWS SMS only from the lines' numbers (the parameter's ARNs) and with
/// the stack's configuration set: no pool, sender id, other number or action; no other function
/// may send.
#[test]
fn the_worker_may_send_aws_sms_only_from_the_lines_numbers() {
    let sends = ["sms-voice:SendMediaMessage", "sms-voice:SendTextMessage"].map(String::from);
    for (id, function) in resources("AWS::Serverless::Function") {
        let role_id = function["Properties"]["Role"]["Fn::GetAtt"][0].as_str().unwrap();
        let policies = as_list(&parsed()["Resources"][role_id]["Properties"]["Policies"]);
        let sms: Vec<&Value> = policies
            .iter()
            .flat_map(|p| unconditional(p))
            .flat_map(|p| as_list(&p["PolicyDocument"]["Statement"]))
            .filter(|s| strings(&s["Action"]).iter().any(|a| a.starts_with("sms-voice:")))
            .collect();
        if id != "DeliveryWorkerFunction" {
            assert!(sms.is_empty(), "{id} may send SMS through AWS");
            continue;
        }
        let guarded: Vec<_> =
            policies.iter().filter(|p| p.get("Fn::If").is_some_and(|w| w[0] == AWS_SMS_CONDITION)).collect();
        let [policy] = guarded.as_slice() else { panic!("{id}: one policy under {AWS_SMS_CONDITION}") };
        assert_eq!(policy["Fn::If"][2], ref_to("AWS::NoValue"));
        let mut granted = BTreeSet::new();
        for statement in &sms {
            assert_eq!(statement["Effect"], "Allow");
            assert_eq!(strings(&statement["Action"]), sends.clone().into(), "{statement}");
            assert!(statement.get("NotResource").is_none() && statement.get("NotAction").is_none());
            granted.insert(statement["Resource"].to_string());
        }
        assert_eq!(
            granted,
            BTreeSet::from([
                ref_to("AwsSmsPhoneNumberArns").to_string(),
                json!({ "Fn::GetAtt": ["AwsSmsConfigurationSet", "Arn"] }).to_string()
            ]),
            "the lines' numbers and the configuration set, nothing else"
        );
    }
    let pattern = parsed()["Parameters"]["AwsSmsPhoneNumberArns"]["AllowedPattern"].as_str().unwrap();
    // MMS media: the worker puts and reads objects under mms/ in the stack's bucket only.
    let worker = resource("DeliveryWorkerRole");
    let s3: Vec<&Value> = as_list(&worker["Properties"]["Policies"])
        .iter()
        .flat_map(|p| unconditional(p))
        .flat_map(|p| as_list(&p["PolicyDocument"]["Statement"]))
        .filter(|s| strings(&s["Action"]).iter().any(|a| a.starts_with("s3:")))
        .collect();
    assert_eq!(s3.len(), 1, "{s3:?}");
    assert_eq!(strings(&s3[0]["Action"]), BTreeSet::from(["s3:GetObject".to_owned(), "s3:PutObject".to_owned()]));
    assert_eq!(s3[0]["Resource"], json!({ "Fn::Sub": "${AwsSmsMediaBucket.Arn}/mms/*" }));
    // A phone number's ARN, whose id can't be an IAM wildcard (`*`, `?`).
    assert!(pattern.contains(":sms-voice:") && pattern.ends_with(":phone-number/[a-zA-Z0-9_-]+)?$"), "{pattern}");
}

/// The SMS webhook is subscribed to the two AWS SMS topics and SNS may invoke it for those
/// two only; its environment names each topic for what it carries.
#[test]
fn the_sms_webhook_takes_exactly_the_two_aws_sms_topics() {
    let webhook = json!({ "Fn::GetAtt": ["SmsWebhookFunction", "Arn"] });
    let subscribed: BTreeSet<String> = resources("AWS::SNS::Subscription")
        .into_iter()
        .filter(|(_, s)| s["Properties"]["Protocol"] == "lambda")
        .map(|(id, s)| {
            assert_eq!(s["Properties"]["Endpoint"], webhook, "{id}");
            s["Properties"]["TopicArn"]["Ref"].as_str().unwrap().to_owned()
        })
        .collect();
    let topics = BTreeSet::from(["AwsSmsEventsTopic".to_owned(), "AwsSmsInboundTopic".to_owned()]);
    assert_eq!(subscribed, topics);
    let invokers: BTreeSet<String> = resources("AWS::Lambda::Permission")
        .into_iter()
        .filter(|(_, p)| p["Properties"]["Principal"] == "sns.amazonaws.com")
        .map(|(id, p)| {
            assert_eq!(p["Properties"]["FunctionName"], ref_to("SmsWebhookFunction"), "{id}");
            assert_eq!(p["Properties"]["Action"], "lambda:InvokeFunction", "{id}");
            p["Properties"]["SourceArn"]["Ref"].as_str().expect("one topic, by name").to_owned()
        })
        .collect();
    assert_eq!(invokers, topics, "SNS may invoke the webhook for these topics only");
    let functions = resources("AWS::Serverless::Function");
    for (id, function) in &functions {
        let sns_events = function["Properties"]["Events"]
            .as_object()
            .map_or(0, |events| events.values().filter(|e| e["Type"] == "SNS").count());
        assert_eq!(sns_events, 0, "{id}: a SAM SNS event can't be conditional");
    }
}

/// A deployment without a Twilio account (`TwilioAccountSid` empty, every line on AWS SMS)
/// gets no Twilio setting, and signs media links with `MediaLinkKeyParameter`'s key, which the
/// template then requires; the worker that signs and the webhook that checks get the same.
#[test]
fn a_deployment_without_twilio_gets_no_twilio_settings_and_a_media_link_key() {
    let sid = &parsed()["Parameters"]["TwilioAccountSid"];
    assert_eq!(sid["Default"], "");
    let pattern = sid["AllowedPattern"].as_str().unwrap();
    assert!(pattern.starts_with("^(") && pattern.ends_with(")?$"), "empty or a SID: {pattern}");
    assert_eq!(parsed()["Parameters"]["MediaLinkKeyParameter"]["Default"], "");
    let twilio = |value: Value| json!({ "Fn::If": [TWILIO_CONDITION, value, ref_to("AWS::NoValue")] });
    let keyed = json!({ "Fn::If": ["HasMediaLinkKey", ref_to("MediaLinkKeyParameter"), ref_to("AWS::NoValue")] });
    for id in ["SmsWebhookFunction", "DeliveryWorkerFunction"] {
        let variables = &resource(id)["Properties"]["Environment"]["Variables"];
        assert_eq!(variables["TWILIO_ACCOUNT_SID"], twilio(ref_to("TwilioAccountSid")), "{id}");
        assert_eq!(variables["TWILIO_AUTH_TOKEN_PARAM"], twilio(ref_to("TwilioAuthTokenParameter")), "{id}");
        assert_eq!(variables["MEDIA_LINK_KEY_PARAM"], keyed, "{id}");
    }
    let rule = &parsed()["Rules"]["MediaLinksHaveAKey"]["Assertions"][0]["Assert"]["Fn::Or"];
    assert_eq!(
        rule,
        &json!([
            { "Fn::Not": [{ "Fn::Equals": [ref_to("TwilioAccountSid"), ""] }] },
            { "Fn::Not": [{ "Fn::Equals": [ref_to("MediaLinkKeyParameter"), ""] }] }
        ])
    );
    let secrets = std::fs::read_to_string(workspace().join("shared/src/secrets.rs")).unwrap();
    assert!(secrets.contains("\"MEDIA_LINK_KEY\""), "MEDIA_LINK_KEY_PARAM is read from SSM");
}

/// The MMS media bucket: private, encrypted, its objects gone after three days, and the
/// configuration set reporting MMS events (MEDIA_ALL) beside the texts'.
#[test]
fn the_mms_media_bucket_is_private_and_forgets() {
    let bucket = &resource("AwsSmsMediaBucket")["Properties"];
    let block = &bucket["PublicAccessBlockConfiguration"];
    for setting in ["BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"] {
        assert_eq!(block[setting], true, "{setting}");
    }
    let rule = &bucket["LifecycleConfiguration"]["Rules"][0];
    assert_eq!((rule["Status"].as_str(), rule["Prefix"].as_str()), (Some("Enabled"), Some("mms/")));
    assert!(rule["ExpirationInDays"].as_i64().is_some_and(|days| days <= 7), "{rule}");
    assert!(bucket["BucketEncryption"].is_object());
    let destination = &resource("AwsSmsConfigurationSet")["Properties"]["EventDestinations"][0];
    assert_eq!(
        strings(&destination["MatchingEventTypes"]),
        BTreeSet::from(["MEDIA_ALL".to_owned(), "TEXT_ALL".to_owned()])
    );
    let worker = &resource("DeliveryWorkerFunction")["Properties"]["Environment"]["Variables"];
    assert_eq!(
        worker["AWS_SMS_MEDIA_BUCKET"],
        json!({ "Fn::If": [AWS_SMS_CONDITION, ref_to("AwsSmsMediaBucket"), ref_to("AWS::NoValue")] })
    );
}

/// An SNS event the SMS webhook keeps failing on is parked in a queue the webhook may send to
/// (and nothing else), with an alarm, not dropped after Lambda's retries.
#[test]
fn a_failed_aws_sms_event_is_parked_not_dropped() {
    let destination = &resource("AwsSmsFailedEventsDestination")["Properties"];
    assert_eq!(destination["FunctionName"], ref_to("SmsWebhookFunction"));
    assert_eq!(
        destination["DestinationConfig"]["OnFailure"]["Destination"],
        json!({ "Fn::GetAtt": ["AwsSmsFailedEventsQueue", "Arn"] })
    );
    let role = resource("SmsWebhookRole");
    let parked: Vec<&Value> = as_list(&role["Properties"]["Policies"])
        .iter()
        .flat_map(|p| unconditional(p))
        .flat_map(|p| as_list(&p["PolicyDocument"]["Statement"]))
        .filter(|s| s["Resource"] == json!({ "Fn::GetAtt": ["AwsSmsFailedEventsQueue", "Arn"] }))
        .collect();
    assert_eq!(parked.len(), 1, "{parked:?}");
    assert_eq!(strings(&parked[0]["Action"]), BTreeSet::from(["sqs:SendMessage".to_owned()]), "only send to it");
    let alarm = &resource("AwsSmsFailedEventsAlarm")["Properties"];
    assert_eq!(alarm["Dimensions"][0]["Value"], json!({ "Fn::GetAtt": ["AwsSmsFailedEventsQueue", "QueueName"] }));
}
