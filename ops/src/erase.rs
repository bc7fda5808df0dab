//! `bridge-ops erase`: a customer's data removed on request (docs/operating.md). The work is
//! the store's (`shared::adapters::dynamodb::erasure`); this prints what was done, in
//! counts: never a text, and the number only masked.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use shared::adapters::dynamodb::erasure::{ErasureReport, ErasureRequest, ItemKind};

pub fn render(request: &ErasureRequest, report: &ErasureReport) -> String {
    let scope = request.line.as_ref().map_or_else(|| "every line".to_owned(), |line| format!("line {line}"));
    let (verb, cleared, found) = if report.dry_run {
        ("would erase", "would clear", "dry run: nothing changed")
    } else {
        ("erased", "cleared", "done")
    };
    let mut out = format!("{verb} {} on {scope} ({found})\n", request.customer.masked());
    let _ = writeln!(out, "  items scanned: {}", report.scanned);
    let total: usize = report.deleted.values().sum();
    let _ = writeln!(
        out,
        "  {} {total} item(s){}",
        if report.dry_run { "to delete:" } else { "deleted:" },
        counts(&report.deleted)
    );
    if !report.stripped.is_empty() {
        let _ = writeln!(out, "  {cleared} the customer from:{}", counts(&report.stripped));
    }
    if !report.kept.is_empty() {
        let _ = writeln!(
            out,
            "  kept (the number is also one of the deployment's agents or lines):{}",
            counts(&report.kept)
        );
    }
    if !report.dry_run {
        let _ = writeln!(out, "  tombstone: {} (no number; kept 30 days)", report.tombstone);
    }
    out
}

fn counts(counts: &BTreeMap<ItemKind, usize>) -> String {
    counts.iter().map(|(kind, count)| format!("\n    {count:>5}  {}", kind.as_str())).collect()
}
