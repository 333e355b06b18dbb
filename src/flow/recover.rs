//! The steps of `lifeboat recover`: rebuild a fresh VPS from the volume and the git
//! remote, and prove it will boot before rebooting. Each step needs the one before: a
//! rebuild is a sequence, and every step is safe to run again. The inspection mount is
//! undone by `hardware-config`, the private read-write mount by `reboot`, either by the
//! runner's cleanup when the run ends earlier.

use super::ids::RecoverStep;
use super::ids::StepId::Recover;
use super::step::StepDef;

step_table!(RecoverStep);

/// What each step is: its title, what it does, what it needs.
const fn def(step: RecoverStep) -> StepDef {
    use RecoverStep::*;
    let id = Recover(step);
    match step {
        Preflight => StepDef {
            id,
            title: "Preflight",
            explains: "Running as root, on NixOS, with every program of [commands] present, and the \
                       remote reachable when its URL is already known.",
            requires: &[],
            cleanup: false,
            remedy: None,
        },
        FindVolume => StepDef {
            id,
            title: "Find the volume",
            explains: "The DEVICE of the config, else the one by-id link matching [discovery].pattern. \
                       A mount left by a killed run is undone first.",
            requires: &[Recover(Preflight)],
            cleanup: false,
            remedy: None,
        },
        InspectVolume => StepDef {
            id,
            title: "Inspect the volume",
            explains: "Identifies it without writing (never formats), mounts it read-only, checks the \
                       layout, and reads the recovery card: with it no config file is needed.",
            requires: &[Recover(FindVolume)],
            cleanup: false,
            remedy: None,
        },
        RestoreHostIdentity => StepDef {
            id,
            title: "Restore the host identity",
            explains: "Puts back what predestroy saved of the old machine, each copy checked against \
                       the card's SHA-256 first: sshd's host keys (the fresh ones moved aside, \
                       never deleted), so clients and sops-nix or agenix know this machine; the \
                       old ids of /var/lib/nixos for every name this machine has not given one (a \
                       name with two ids is reported, never overwritten); the carried paths with \
                       their owners.",
            requires: &[Recover(InspectVolume)],
            cleanup: false,
            remedy: None,
        },
        CloneConfig => StepDef {
            id,
            title: "Clone the config",
            explains: "Clones [config_repo] into its path with the key from the volume, ssh-agent or a \
                       token from the environment. An existing clone of the same remote is \
                       fast-forwarded; anything else there is moved aside, never deleted. The mirror on \
                       the volume stands in when the remote cannot be reached.",
            requires: &[Recover(InspectVolume)],
            cleanup: false,
            remedy: None,
        },
        HardwareConfig => StepDef {
            id,
            title: "Hardware config",
            explains: "With the inspection mount gone, generates hardware-configuration.nix, drops the \
                       fileSystems entries the repository declares itself or that are the inspection \
                       mount, shows the diff and stages it so the flake can see it.",
            requires: &[Recover(CloneConfig)],
            cleanup: false,
            remedy: None,
        },
        BootSafety => StepDef {
            id,
            title: "Boot safety",
            explains: "Evaluates the flake before building: the host exists, each volume device exists \
                       here with its filesystem, the volume holding the Nix store is mounted in stage 1, \
                       /nix is a bind of it, the user's uid owns the home on the volume, every other \
                       boot filesystem's device is here, and the network, sshd and keys let you back in.",
            requires: &[Recover(HardwareConfig)],
            cleanup: false,
            remedy: None,
        },
        MountVolume => StepDef {
            id,
            title: "Mount the volume",
            explains: "Mounts the volume that holds the Nix store read-write at a private place of \
                       lifeboat's ([state].dir/volume), never where the new system mounts it: the \
                       first write to the volume. Recorded before it is made, undone at the end of \
                       every run and before the reboot.",
            requires: &[Recover(BootSafety)],
            cleanup: false,
            remedy: None,
        },
        Build => StepDef {
            id,
            title: "Build",
            explains: "nixos-rebuild build of the flake's host, with progress from Nix's log. The \
                       old system's closure is first copied from the volume's store in one nix \
                       copy, and the store is a trusted extra substituter: what the old machine \
                       built is copied from it, not built or downloaded again. Checks first that \
                       the root disk has room for a system the size of the old one.",
            requires: &[Recover(MountVolume)],
            cleanup: false,
            remedy: None,
        },
        ClosureOnVolume => StepDef {
            id,
            title: "System on the volume",
            explains: "The new system must be in the store that becomes /nix after the reboot, the one \
                       on the volume, before any boot entry points at it: nix copy puts what is \
                       missing of its closure there.",
            requires: &[Recover(Build)],
            cleanup: false,
            remedy: None,
        },
        Boot => StepDef {
            id,
            title: "Install to boot",
            explains: "Shows what changes from the old system to the new, then nixos-rebuild boot: \
                       the boot entry, nothing activated or mounted (switch would mount the volume \
                       over the store it just built into). The new system becomes the newest \
                       generation of the volume's system profile.",
            // No boot entry for a machine that would come up without its host keys and ids.
            requires: &[Recover(ClosureOnVolume), Recover(RestoreHostIdentity)],
            cleanup: false,
            remedy: None,
        },
        Reboot => StepDef {
            id,
            title: "Reboot",
            explains: "Undoes the private mount, records that verify is due, then runs the reboot \
                       command. After it, lifeboat verify (or recover --resume) checks that \
                       everything came back.",
            requires: &[Recover(Boot)],
            cleanup: false,
            remedy: None,
        },
    }
}
