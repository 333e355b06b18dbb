#!/usr/bin/env bash
# Install what building and testing lifeboat needs, when it is missing: Debian packages
# and cargo-nextest. Safe to run again; it installs nothing that is already there.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Debian packages the tests drive (losetup and mount come from `mount` on Debian), the
# tools that make the other filesystems and signatures the device probe is checked against,
# what building the vendored libgit2 with SSH and HTTPS needs (pkg-config, libssl-dev), and
# git itself, which sshd runs as `git-upload-pack`/`git-receive-pack` for the SSH remotes.
packages=(e2fsprogs util-linux mount nix-bin tmux openssh-server openssh-client rsync git
    pkg-config libssl-dev
    dosfstools xfsprogs btrfs-progs squashfs-tools cryptsetup-bin xorriso fdisk)
missing=()
for package in "${packages[@]}"; do
    if ! dpkg -s "$package" 2>/dev/null | grep -q '^Status: install ok installed'; then
        missing+=("$package")
    fi
done
if ((${#missing[@]} > 0)); then
    echo "installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y "${missing[@]}"
fi

# Loop devices back the practice volumes.
if [[ ! -e /dev/loop-control ]]; then
    modprobe loop || echo "warning: modprobe loop failed; volume tests will fail without loop devices" >&2
fi

if ! cargo nextest --version >/dev/null 2>&1; then
    cargo install cargo-nextest --locked
fi

