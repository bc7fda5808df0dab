//! Use cases: what the bridge does, written against the ports.

pub mod deliver_job;
pub mod receive_sms;
