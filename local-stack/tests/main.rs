//! The local stack binary over the wire: started as a newcomer starts it, driven through
//! its page's API, the providers' endpoints and a headless browser.
//!
//! One test binary for the crate (one link, one emulator, tests in parallel); each
//! module is one file of this directory.

#![allow(clippy::unwrap_used)] // a failed unwrap is the test failing

mod aws_sms;
mod browser;
mod cli;
mod common;
mod log_safety;
mod ready;
mod sam_env;
mod simulator;
