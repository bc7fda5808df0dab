//! The two-phone page in a real browser (issue 6): the local stack starts as a newcomer starts
//! it (its own emulator and provider simulator), headless Chromium opens the page, the
//! customer texts, the agent swipe-replies, the SMS arrives and the agent's message turns
//! blue-ticked (read by the bridge), the stored thread shows the leg delivered, Claim works, a
//! `/list` pick focuses the agent, a reaction shows, the agent hides their number behind a
//! username and is still relayed, and an opt-out request's Opt out button opts the customer out.
//! `tests/browser/two_phones.mjs` drives the browser (playwright-core, pinned by its
//! package-lock.json) and saves `target/two-phones.png`.
//!
//! What it needs, it installs where it can: Debian's `chromium` and `fonts-noto-color-emoji`
//! packages (apt, as root or with passwordless sudo; `$CHROMIUM` names another browser) and
//! playwright-core (npm ci, into the pinned tools' folder). Debian's security archive keeps
//! only the newest Chromium, so the browser can't be pinned to a version; the test prints the
//! one it used. Where it can't (a laptop without root, macOS, no Node.js), it says what to
//! install and skips, unless `CI` is set: CI must run it (`.ci/run` sets it).

#![allow(clippy::unwrap_used)] // a failed unwrap is the test failing

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::LocalStack;
use sha2::{Digest, Sha256};

const BROWSER_TEST_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser");

#[test]
fn a_customer_and_an_agent_talk_through_the_page() {
    let chromium = match chromium().and_then(|chromium| node().map(|()| chromium)) {
        Ok(chromium) => chromium,
        Err(missing) if std::env::var_os("CI").is_none() => {
            eprintln!("SKIPPED the browser test: {missing}");
            return;
        }
        Err(missing) => panic!("the browser test can't run in CI: {missing}"),
    };
    let node_modules = playwright_core();
    let mut stack = LocalStack::start(&[], &[]);

    let screenshot = bridge_emulator::tools_dir().parent().unwrap().join("two-phones.png");
    let output = Command::new("node")
        .arg(Path::new(BROWSER_TEST_DIR).join("two_phones.mjs"))
        .args(["--url", &format!("{}/", stack.base())])
        .arg("--chromium")
        .arg(&chromium)
        .arg("--screenshot")
        .arg(&screenshot)
        .env("NODE_PATH", &node_modules)
        .output()
        .expect("node runs (Node.js 20 or newer)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    stack.stop();
    assert!(output.status.success(), "the browser test failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("0 failed"), "{stdout}");
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 10_000, "a real screenshot at {}", screenshot.display());
}

/// Without a colour emoji font, ✅ and ❌ are empty boxes in the screenshot.
const EMOJI_FONT: &str = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf";

/// `$CHROMIUM`, else `/usr/bin/chromium`, installed from Debian's packages if missing and
/// apt can run; otherwise what to install, as the error.
fn chromium() -> Result<PathBuf, String> {
    let path = std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    let mut missing = Vec::new();
    if !path.exists() {
        if std::env::var_os("CHROMIUM").is_some() {
            return Err(format!("CHROMIUM={} doesn't exist", path.display()));
        }
        missing.push("chromium");
    }
    if !Path::new(EMOJI_FONT).exists() && path.starts_with("/usr/bin") {
        missing.push("fonts-noto-color-emoji");
    }
    if !missing.is_empty() {
        let how = format!(
            "install Debian's {} (sudo apt-get install {}), or set CHROMIUM to a Chromium or Chrome \
             binary (macOS: CHROMIUM=\"/Applications/Google Chrome.app/Contents/MacOS/Google Chrome\")",
            missing.join(" and "),
            missing.join(" ")
        );
        if apt().is_none() {
            return Err(how);
        }
        eprintln!("installing Debian's {} (first run only)", missing.join(" and "));
        let install = [&["install", "-y", "-qq", "--no-install-recommends"][..], &missing[..]].concat();
        for args in [&["update", "-qq"][..], &install[..]] {
            let Some(mut apt_get) = apt() else { return Err(how) };
            let status = apt_get.args(args).env("DEBIAN_FRONTEND", "noninteractive").status();
            if !status.is_ok_and(|s| s.success()) {
                return Err(format!("apt-get {args:?} failed: {how}"));
            }
        }
    }
    let version = Command::new(&path).arg("--version").output().map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!("browser: {}", String::from_utf8_lossy(&version.stdout).trim());
    Ok(path)
}

/// apt-get as root, or through passwordless sudo; `None` where neither works (a laptop
/// without root, macOS).
fn apt() -> Option<Command> {
    Command::new("apt-get").arg("--version").output().ok()?;
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if root {
        return Some(Command::new("apt-get"));
    }
    let sudo = Command::new("sudo").args(["-n", "true"]).output().is_ok_and(|o| o.status.success());
    sudo.then(|| {
        let mut command = Command::new("sudo");
        command.args(["-n", "apt-get"]);
        command
    })
}

/// Node.js 20 or newer and npm, which drive the browser.
fn node() -> Result<(), String> {
    let version =
        Command::new("node").arg("--version").output().map_err(|_| "install Node.js 20 or newer".to_owned())?;
    let text = String::from_utf8_lossy(&version.stdout);
    let major: u32 = text.trim().trim_start_matches('v').split('.').next().and_then(|m| m.parse().ok()).unwrap_or(0);
    if major < 20 {
        return Err(format!("Node.js 20 or newer is needed, found {}", text.trim()));
    }
    Command::new("npm").arg("--version").output().map_err(|_| "install npm (it comes with Node.js)".to_owned())?;
    Ok(())
}

/// playwright-core at the version its package-lock.json pins, installed once per lock file
/// into `browser-test-<hash>` of the pinned tools' folder
/// (`bridge_emulator::pinned_tools_dir`); returns its `node_modules`.
fn playwright_core() -> PathBuf {
    let lock = std::fs::read(Path::new(BROWSER_TEST_DIR).join("package-lock.json")).unwrap();
    let digest = hex::encode(&Sha256::digest(&lock)[..6]);
    let tools = bridge_emulator::pinned_tools_dir();
    let dir = tools.join(format!("browser-test-{digest}"));
    if !dir.join(".installed").exists() {
        eprintln!("installing pinned playwright-core into {} (first run only)", dir.display());
        // Parallel runs each install into their own folder; the first rename wins.
        let staging = tools.join(format!("browser-test-{digest}.{}.partial", std::process::id()));
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir_all(&staging).unwrap();
        for file in ["package.json", "package-lock.json"] {
            std::fs::copy(Path::new(BROWSER_TEST_DIR).join(file), staging.join(file)).unwrap();
        }
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"])
            .current_dir(&staging)
            .status()
            .expect("npm runs (Node.js 20 or newer)");
        assert!(status.success(), "npm ci of the browser test's package-lock.json failed");
        std::fs::write(staging.join(".installed"), &lock).unwrap();
        if std::fs::rename(&staging, &dir).is_err() {
            let _ = std::fs::remove_dir_all(&staging);
        }
    }
    dir.join("node_modules")
}
