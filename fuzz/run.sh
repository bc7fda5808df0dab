#!/usr/bin/env bash
# Runs each fuzz target for SECONDS, one after another, in one process each (the machine's
# other core stays free), and prints each target's final figures.
#
#   fuzz/run.sh SECONDS [TARGET...]     # no TARGET: every target in fuzz/fuzz_targets/
#
# Seeds are read from fuzz/corpus/<target>/ and never written; what a run adds goes to
# fuzz/target/corpus/<target>/ (git-ignored) and is reused by the next run. Crashes go to
# fuzz/artifacts/<target>/, full logs to fuzz/target/logs/<target>.log. Needs a nightly
# toolchain and cargo-fuzz (fuzz/README.md). Exits non-zero if any target failed.
set -euo pipefail

if [[ $# -lt 1 || ! $1 =~ ^[0-9]+$ ]]; then
    echo "usage: $0 SECONDS [TARGET...]" >&2
    exit 2
fi
seconds=$1
shift

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    targets=()
    for file in fuzz/fuzz_targets/*.rs; do
        targets+=("$(basename "$file" .rs)")
    done
fi

mkdir -p fuzz/target/logs
failed=()
summary=()
for target in "${targets[@]}"; do
    out=fuzz/target/corpus/$target
    log=fuzz/target/logs/$target.log
    mkdir -p "$out"
    echo "== $target: ${seconds}s" >&2
    status=0
    # -timeout: an input that takes 10 s is a hang worth reporting, not a slow unit.
    cargo +nightly fuzz run "$target" "$out" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        >"$log" 2>&1 || status=$?
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
    execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?')
    rate=$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?')
    corpus=$(find "$out" -type f | wc -l | tr -d ' ')
    if [[ $status -ne 0 ]]; then
        failed+=("$target")
        echo "!! $target failed (exit $status); see $log and fuzz/artifacts/$target/" >&2
        grep -E 'panicked at|ERROR: libFuzzer|SUMMARY|Test unit written' "$log" >&2 || true
    fi
    summary+=("$target: execs=$execs exec/s=$rate corpus_dir=$corpus exit=$status | $last")
done

echo
printf '%s\n' "${summary[@]}"
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "failed: ${failed[*]}" >&2
    exit 1
fi
