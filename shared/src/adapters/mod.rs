//! Adapters: the ports implemented over AWS and the providers' HTTP APIs.

pub mod dynamodb;
pub mod sqs;
pub mod twilio;
pub mod whatsapp;
