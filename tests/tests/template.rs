//! `template.yaml` is a valid SAM template (cfn-lint included) and deploys exactly the
//! functions of this workspace on the routes their routers serve.

#![allow(clippy::unwrap_used)] // a failed unwrap is the test failing

use std::path::{Path, PathBuf};
use std::process::Command;

const SAM_REQUIREMENTS: &str = include_str!("../sam-requirements.txt");

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

fn template() -> String {
    std::fs::read_to_string(workspace().join("template.yaml")).unwrap()
}

#[test]
fn sam_validate_lint_passes() {
    let site = shared::emulator::install_pinned("aws-sam-cli", SAM_REQUIREMENTS).unwrap();
    let output = Command::new(shared::emulator::python())
        .args(["-c", "import sys; from samcli.cli.main import cli; sys.argv[0] = 'sam'; cli()"])
        .args(["validate", "--lint", "--template-file", "template.yaml", "--region", "us-east-1"])
        .current_dir(workspace())
        .env("PYTHONPATH", site)
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
