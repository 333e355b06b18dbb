#!/usr/bin/env bash
# Run lifeboat's whole test suite the way CI does. The integration tests use real loop
# devices, mounts, nix, sshd and tmux, so this installs what is missing (scripts/deps.sh)
# and runs the tests in a private mount namespace: nothing they mount can leak into the
# host's mount table.
# First, when no filter is given, one test is built without the `fault-injection` feature,
# as lifeboat ships, to show `LIFEBOAT_FAULT` does nothing there
# (tests/faults_compiled_out.rs). Then the whole suite, built with the feature
# (`LIFEBOAT_FAULT`, src/faults.rs), which the reliability tests need; its summary is the
# last line.
# Extra arguments go to the suite's `cargo nextest run` (e.g. a test filter).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/deps.sh

# nixpkgs' lib/, for the tests that evaluate the flake and the NixOS module
# (tests/nix_files.rs); where there is none they say they were skipped.
if [[ -z "${LIFEBOAT_NIXPKGS_LIB:-}" && -f ../shared/nixpkgs-lib/lib/default.nix ]]; then
    LIFEBOAT_NIXPKGS_LIB="$(cd ../shared/nixpkgs-lib/lib && pwd)"
    export LIFEBOAT_NIXPKGS_LIB
fi

status=0
if [[ $# -eq 0 ]]; then
    unshare -m --propagation private \
        cargo nextest run --no-fail-fast --test faults_compiled_out || status=$?
fi
unshare -m --propagation private \
    cargo nextest run --workspace --no-fail-fast --features fault-injection "$@" || status=$?
exit "$status"
