#!/usr/bin/env bash
# Measure lifeboat side by side with the standard tools, in the same run, as ratios (issue 6),
# and print one table of it all at the end:
#   - the size scan (benches/scan.rs) against `du -s` and `diskus`, warm and cold cache, on a
#     generated Nix-store-like tree on a loop-mounted ext4, and its peak memory growth;
#   - following a build's log (benches/log.rs): 1,000,000 lines of Nix internal-json through
#     recover's build step and the headless front end, against `cat` of the log into a file
#     (and `cat | cat`, the floor for anything that reads it from a pipe), and lifeboat's
#     peak memory for 100,000 and 1,000,000 lines;
#   - recovery (benches/recovery.rs): a real `lifeboat recover` on the fresh-VPS scenario of the
#     tests, with an old system of 2,000 store paths (1 GB) in the volume's store on a loop
#     device: the `build` step against the same build without the volume's store and against
#     a plain `nix copy --from` of the same paths (the floor), and `closure-on-volume` against
#     a plain `nix copy --to`;
#   - the wizard (benches/tui.rs, criterion): drawing the flow screen with a 10,000-line log
#     at 120x40; and (benches/first_frame.rs) the real binary's first frame on a terminal
#     against `less`;
#   - start-up: `lifeboat --help` and `lifeboat inspect --dry-run` against `true` and `du --version`.
# Needs root (loop device, mount, dropping caches). Env: LIFEBOAT_BENCH_FILES (default 200000;
# e.g. 2000 for a smoke run), LIFEBOAT_BENCH_LINES (default 1000000), LIFEBOAT_BENCH_PATHS and
# LIFEBOAT_BENCH_PATH_KIB (the recovery's old system: default 2000 paths of 512 KiB; e.g. 50
# and 64 for a smoke run), LIFEBOAT_BENCH_RUNS (default 5; 20 for the first frame, 3 for the
# recovery). Everything it makes is removed on exit, also after a failure or Ctrl-C.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ $EUID -ne 0 ]]; then
    echo "scripts/bench.sh needs root: it attaches a loop device, mounts it and drops caches" >&2
    exit 2
fi

scripts/deps.sh
export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v diskus >/dev/null; then
    cargo install diskus --locked
fi
if ! command -v hyperfine >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y hyperfine ||
        { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y hyperfine; } ||
        echo "hyperfine not installed; timing start-up with a shell loop instead" >&2
fi
if ! command -v less >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y less ||
        { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y less; }
fi

cargo build --release
cargo bench --no-run
lifeboat="${CARGO_TARGET_DIR:-$PWD/target}/release/lifeboat"

work=$(mktemp -d /var/tmp/lifeboat-bench.XXXXXX)
loop=""
demo=""
cleanup() {
    set +e
    if [[ -n $demo ]]; then
        "$lifeboat" demo --clean --dir "$demo" >/dev/null
    fi
    if [[ -n $loop ]]; then
        losetup -d "$loop"
    fi
    # The recovery benchmark's volume, had it no chance to detach it itself.
    losetup -l -n -O NAME,BACK-FILE | awk -v work="$work/" 'index($2, work) == 1 { print $1 }' |
        while read -r device; do losetup -d "$device"; done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "machine: $(nproc) cores; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
# Each benchmark adds its rows to the summary table (benches/common/mod.rs).
export LIFEBOAT_BENCH_SUMMARY="$work/summary.tsv"

# The scan: a sparse ext4 image with plenty of inodes, on a loop device with direct I/O so
# that a cold run reads the (virtual) disk as a real volume would, not the host's page cache.
truncate -s 6G "$work/volume.img"
mkfs.ext4 -q -F -i 4096 "$work/volume.img"
loop=$(losetup -f --show --direct-io=on "$work/volume.img")
mkdir "$work/mnt"
unshare -m --propagation private bash -c '
    set -euo pipefail
    mount "$1" "$2"
    trap "umount \"\$2\"" EXIT
    LIFEBOAT_BENCH_DIR="$2" cargo bench --bench scan
' bench "$loop" "$work/mnt"

# Following a build's log; its logs and transcripts go to the work directory.
LIFEBOAT_BENCH_DIR="$work" cargo bench --bench log

# Recovery: its scenario (volume image, stores, repository) goes to the work directory.
TMPDIR="$work" cargo bench --bench recovery

# The wizard: drawing the flow screen.
cargo bench --bench tui

# Start-up, on a practice volume (built by `lifeboat demo`, which inspects it once).
demo="$work/demo"
unshare -m --propagation private "$lifeboat" demo --dir "$demo" --json >/dev/null
config="$demo/lifeboat.toml"
LIFEBOAT_BENCH_CONFIG="$config" cargo bench --bench first_frame
names=("true" "du --version" "lifeboat --help" "lifeboat inspect --dry-run")
commands=("true" "du --version" "$lifeboat --help" "$lifeboat -c $config inspect --dry-run --json")

# Prints "name<TAB>mean ms" for each command.
startup_means() {
    if command -v hyperfine >/dev/null; then
        local args=() i
        for i in "${!names[@]}"; do
            args+=(--command-name "${names[$i]}" "${commands[$i]}")
        done
        hyperfine --shell=none --style=none --warmup 20 --min-runs 200 \
            --export-csv "$work/startup.csv" "${args[@]}" >/dev/null
        awk -F, 'NR > 1 { printf "%s\t%f\n", $1, $2 * 1000 }' "$work/startup.csv"
    else
        local i run start runs=200 argv
        for i in "${!names[@]}"; do
            # Plain words; the program by its path, so that `true` is not the shell's builtin.
            read -ra argv <<<"${commands[$i]}"
            argv[0]=$(type -P "${argv[0]}")
            start=$(date +%s%N)
            for ((run = 0; run < runs; run++)); do
                "${argv[@]}" >/dev/null
            done
            printf '%s\t%f\n' "${names[$i]}" "$((($(date +%s%N) - start) / runs))e-6"
        done
    fi
}

startup_means >"$work/startup.tsv"
echo
echo "start-up: mean wall ms per run$(command -v hyperfine >/dev/null && echo ' (hyperfine)')"
awk -F'\t' '
    { name[NR] = $1; mean[NR] = $2 }
    END {
        printf "%-28s %9s %9s %14s\n", "command", "mean", "/ true", "/ du --version"
        for (i = 1; i <= NR; i++)
            printf "%-28s %9.2f %9.2f %14.2f\n", name[i], mean[i], mean[i] / mean[1], mean[i] / mean[2]
    }' "$work/startup.tsv"
awk -F'\t' '
    NR == 2 { du = $2 }
    NR > 2 { printf "start-up: %s\t%.1f ms\tdu --version %.1f ms\t%.2f\t\n", $1, $2, du, $2 / du }
' "$work/startup.tsv" >>"$LIFEBOAT_BENCH_SUMMARY"

echo
echo "summary: lifeboat against the reference tools, in this run"
awk -F'\t' '
    BEGIN { printf "%-44s %10s  %-24s %6s  %s\n", "measure", "lifeboat", "reference", "ratio", "target" }
    { printf "%-44s %10s  %-24s %6s  %s\n", $1, $2, $3, $4, $5 }
' "$LIFEBOAT_BENCH_SUMMARY"
echo
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
