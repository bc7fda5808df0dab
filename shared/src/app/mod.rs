//! Use cases: what the bridge does, written against the ports.

pub mod agent_identity;
pub mod apply_sms_status;
pub mod apply_whatsapp_status;
pub mod copy_facts_cache;
pub mod deliver_job;
pub mod live_lines;
pub mod receive_sms;
pub mod receive_whatsapp;
pub mod retry_budget;
pub mod sweep_outbox;
