#!/usr/bin/env bash
# Fuzz lifeboat's parsers with cargo-fuzz: each target for a set time.
#
#   scripts/fuzz.sh [seconds-per-target] [target...]
#
# Default: 60 s for each of config, nixlog, mountinfo and probe (src/fuzz_targets.rs). Needs a
# nightly toolchain; installs cargo-fuzz when it is missing. Each run starts from the committed
# seeds (fuzz/seeds/<target>/) and the corpus earlier runs grew (fuzz/corpus/<target>/, not
# committed). A crash leaves its input in fuzz/artifacts/<target>/: once fixed, move it to
# fuzz/regressions/<target>/ so that tests/fuzz_corpus.rs replays it on every test run.
#
# Environment: FUZZ_SANITIZER (default `address`; `none` is about twice as fast),
# CARGO_TARGET_DIR (default fuzz/target).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(config nixlog mountinfo probe)
fi
sanitizer=${FUZZ_SANITIZER:-address}
target_dir=${CARGO_TARGET_DIR:-fuzz/target}

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz" >&2
    cargo install --locked cargo-fuzz
fi

cargo +nightly fuzz build --sanitizer "$sanitizer" --target-dir "$target_dir"

crashed=()
for target in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$target"
    log="fuzz/corpus/$target.log"
    echo "fuzz.sh: $target for ${seconds}s (log: $log)" >&2
    status=0
    cargo +nightly fuzz run --sanitizer "$sanitizer" --target-dir "$target_dir" \
        "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1 || status=$?
    grep -E '^#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb' "$log" >&2 || true
    if [ "$status" -ne 0 ]; then
        crashed+=("$target")
        echo "fuzz.sh: $target FAILED (exit $status); reproducer:" >&2
        grep -E 'Test unit written to|^SUMMARY' "$log" >&2 || tail -n 20 "$log" >&2
        echo "  replay: cargo +nightly fuzz run $target <reproducer>" >&2
    fi
done

if [ ${#crashed[@]} -ne 0 ]; then
    echo "fuzz.sh: crashes in: ${crashed[*]}" >&2
    exit 1
fi
echo "fuzz.sh: no crash in ${targets[*]} (${seconds}s each)" >&2
