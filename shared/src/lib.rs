//! The SMS ⇄ WhatsApp bridge's shared library: the pure domain, the ports, the use cases,
//! and the adapters every function is built from.

pub mod adapters;
pub mod app;
pub mod aws;
pub mod config;
pub mod domain;
pub mod logging;
pub mod ports;
pub mod secrets;
pub mod telemetry;
