//! The two-phone page in a real browser (issue 6): the local stack starts as a newcomer starts
//! it (its own emulator and provider simulator), headless Chromium opens the page, the
//! customer texts, the agent swipe-replies, the SMS arrives and the agent's message turns
//! blue-ticked (read by the bridge), the stored thread shows the leg delivered, Claim works, a
//! `/list` pick focuses the agent, a reaction shows, the agent hides their number behind a
//! username and is still relayed, and an opt-out request's Opt out button opts the customer out.
//! `tests/browser/two_phones.mjs` drives the browser (playwright-core, pinned by its
//! package-lock.json) and saves `target/two-phones.png`.
//!
//! What it needs, it installs: Debian's `chromium` and `fonts-noto-color-emoji` packages
//! (apt, when missing; `$CHROMIUM` names another browser) and playwright-core (npm ci, into
//! the pinned tools' folder). Debian's security archive keeps only the newest Chromium, so the browser
//! can't be pinned to a version; the test prints the one it used.

#![allow(clippy::unwrap_used)] // a failed unwrap is the test failing

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::LocalStack;
use sha2::{Digest, Sha256};

const BROWSER_TEST_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser");

#[test]
fn a_customer_and_an_agent_talk_through_the_page() {
    let chromium = chromium();
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

/// `$CHROMIUM`, else `/usr/bin/chromium`, installed from Debian's packages if missing.
fn chromium() -> PathBuf {
    let path = std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    let mut missing = Vec::new();
    if !path.exists() && std::env::var_os("CHROMIUM").is_none() {
        missing.push("chromium");
    }
    if !Path::new(EMOJI_FONT).exists() {
        missing.push("fonts-noto-color-emoji");
    }
    if !missing.is_empty() {
        eprintln!("installing Debian's {} (first run only)", missing.join(" and "));
        let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        let apt = |args: &[&str]| {
            let mut command = if root { Command::new("apt-get") } else { Command::new("sudo") };
            if !root {
                command.args(["-n", "apt-get"]);
            }
            let status = command.args(args).env("DEBIAN_FRONTEND", "noninteractive").status();
            assert!(
                status.is_ok_and(|s| s.success()),
                "apt-get {args:?} failed: install Debian's {missing:?}, or set CHROMIUM to a Chromium binary"
            );
        };
        apt(&["update", "-qq"]);
        apt(&[&["install", "-y", "-qq", "--no-install-recommends"][..], &missing[..]].concat());
    }
    let version = Command::new(&path).arg("--version").output().unwrap();
    eprintln!("browser: {}", String::from_utf8_lossy(&version.stdout).trim());
    path
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
