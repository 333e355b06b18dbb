#!/usr/bin/env bash
# Run lifeboat's whole test suite the way CI does. The integration tests use real loop
# devices, mounts, nix, sshd and tmux, so this installs what is missing (scripts/deps.sh)
# and runs the tests in a private mount namespace: nothing they mount can leak into the
# host's mount table.
# Extra arguments go to `cargo nextest run` (e.g. a test filter).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/deps.sh

exec unshare -m --propagation private cargo nextest run --workspace --no-fail-fast "$@"
