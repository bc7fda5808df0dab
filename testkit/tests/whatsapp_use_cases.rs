//! Use-case tests for an agent's WhatsApp message (`app::receive_whatsapp`) and a WhatsApp
//! status report (`app::apply_whatsapp_status`), on the in-memory store and queue
//! (`bridge_testkit::memory`): what each looks up, records, enqueues and answers, rule by
//! rule (docs/using.md, docs/guarantees.md). No emulator, no HTTP; they run in milliseconds.
//!
//! The routing rules themselves are laws in `shared/src/domain/routing.rs`; these cases
//! prove the use case wires them to the store and the queue.

#![allow(clippy::unwrap_used)] // a failed unwrap is the test failing

#[path = "whatsapp_use_cases/buttons.rs"]
mod buttons;
#[path = "whatsapp_use_cases/commands.rs"]
mod commands;
#[path = "whatsapp_use_cases/content.rs"]
mod content;
#[path = "whatsapp_use_cases/copies.rs"]
mod copies;
#[path = "whatsapp_use_cases/digests.rs"]
mod digests;
#[path = "whatsapp_use_cases/erased.rs"]
mod erased;
#[path = "whatsapp_use_cases/fixture.rs"]
mod fixture;
#[path = "whatsapp_use_cases/identity.rs"]
mod identity;
#[path = "whatsapp_use_cases/opt_out.rs"]
mod opt_out;
#[path = "whatsapp_use_cases/recording.rs"]
mod recording;
#[path = "whatsapp_use_cases/routing.rs"]
mod routing;
#[path = "whatsapp_use_cases/statuses.rs"]
mod statuses;
