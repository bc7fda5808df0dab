//! `bridge-ops` as an operator runs it: the binary, its output and its exit status. One
//! module per file beside this one.

#![allow(clippy::unwrap_used)] // a failed unwrap is the test failing

mod customer_data;
mod lines;
