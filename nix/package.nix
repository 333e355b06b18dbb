# lifeboat built from this repository with nixpkgs' Rust tooling: `pkgs.callPackage
# ./nix/package.nix { }` (flake.nix does so for each system).
{
  lib,
  rustPlatform,
  pkg-config,
  openssl,
  git,
  openssh,
  squashfsTools,
  xorriso,
}:

let
  manifest = (lib.importTOML ../Cargo.toml).package;
in
rustPlatform.buildRustPackage {
  pname = "lifeboat";
  inherit (manifest) version;

  # Only what cargo reads: the manifest names every test and bench target, so their files
  # must be there, and the library includes fixtures from tests/ and the example config.
  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.unions [
      ../Cargo.toml
      ../Cargo.lock
      ../src
      ../tests
      ../benches
      ../assets
    ];
  };

  cargoLock.lockFile = ../Cargo.lock;

  # git2 builds its vendored libgit2 with SSH and HTTPS (Cargo.toml): libssh2 and zlib
  # come vendored through their -sys crates, OpenSSL is found with pkg-config.
  nativeBuildInputs = [ pkg-config ];
  buildInputs = [ openssl ];

  # The check phase runs the library's unit tests only. The integration tests under tests/
  # need what a build sandbox does not have: root, loop devices with real ext4 volumes,
  # mounts inside a private mount namespace, an sshd on 127.0.0.1, tmux and a Nix store of
  # their own (scripts/test.sh runs them, as root, in `unshare -m`).
  cargoTestFlags = [ "--lib" ];
  # What some unit tests run: git for staging, ssh-keygen for fingerprints, and the tools
  # that make the filesystem images the device probe is checked against.
  nativeCheckInputs = [
    git
    openssh
    squashfsTools
    xorriso
  ];
  # The few unit tests that need root (they give files other owners) or a loop device.
  checkFlags = map (test: "--skip=${test}") [
    "exec::atomic::tests::a_copy_keeps_mode_owner_and_time_and_says_its_digest"
    "exec::atomic::tests::owned_files_and_private_dirs_belong_to_the_owner"
    "steps::host_identity::save::tests::a_host_key_that_is_a_symlink_or_not_a_key_is_said_and_not_saved"
    "exec::probe::tests::a_loop_device_is_probed_without_being_written"
  ];

  meta = {
    description = manifest.description;
    license = lib.licenses.mit;
    mainProgram = "lifeboat";
    platforms = lib.platforms.linux;
  };
}
