//! The steps of `lifeboat predestroy`: prove it is safe to destroy this VPS.
//!
//! The volume checks come before anything is written onto the volume, so a `/home` on the
//! root disk never receives a mirror, lists or a card that would die with it.

use super::ids::PredestroyStep;
use super::ids::StepId::Predestroy;
use super::step::{RefreshRule, StepDef};

step_table!(PredestroyStep);

/// What `predestroy --refresh` does with each step's change: it makes those that only write
/// lifeboat's own files on the volume, never touches the repository, and leaves the backup
/// (it writes to the backup server) to the predestroy run made by hand.
pub const fn refresh_rule(step: PredestroyStep) -> RefreshRule {
    use PredestroyStep::*;
    match step {
        ConfigMirror | PackageLists | HostIdentity | PersistenceMarker | RecoveryCard => {
            RefreshRule::Make
        }
        Backup => RefreshRule::Leave,
        // The checks change nothing; the repository is the operator's.
        ConfigRepoCommitted | ConfigRepoPushed | Rehearsal | HomeOnVolume | NixOnVolume
        | DockerOnVolume | RootDiskAudit => RefreshRule::Block,
    }
}

/// What each step is: its title, what it does, what it needs.
const fn def(step: PredestroyStep) -> StepDef {
    use PredestroyStep::*;
    let id = Predestroy(step);
    match step {
        ConfigRepoCommitted => StepDef {
            id,
            title: "Config committed",
            explains: "[config_repo].path is a git repository with no uncommitted change to tracked \
                       files and no untracked file: the root disk and anything only on it go with \
                       the VPS. Changes are committed on confirmation; untracked files are never \
                       committed blindly (they may be secrets) but copied to <user>/.lifeboat/ on the \
                       volume, private.",
            requires: &[],
            cleanup: false,
            remedy: Some(
                "commit the changes in the config repository, or run again and let lifeboat \
                   commit them (untracked files are copied to the volume, never committed)",
            ),
        },
        ConfigRepoPushed => StepDef {
            id,
            title: "Config pushed",
            explains: "The branch equals its upstream on the remote. Commits not pushed are pushed on \
                       confirmation; a branch behind or diverged is explained and never forced.",
            requires: &[Predestroy(ConfigRepoCommitted)],
            cleanup: false,
            remedy: Some(
                "push the branch to its remote; a branch behind or diverged must be merged by \
                   hand (lifeboat never forces a push)",
            ),
        },
        Rehearsal => StepDef {
            id,
            title: "Recovery rehearsed",
            explains: "What recover will do, done now while mistakes are cheap: the pushed \
                       branch is cloned fresh from the remote with the credentials recover uses \
                       into a scratch directory (removed afterwards), this machine's hardware \
                       configuration is generated into it, and the host's whole system is \
                       evaluated and checked as recover's boot-safety checks it: it must mount \
                       the volume in stage 1 and give the user the home's uid. Its flake.lock \
                       must not depend on this machine's root disk; inputs fetched over SSH and \
                       another nixpkgs than the running system's are named. Changes nothing on \
                       the machine beyond what any evaluation adds to the Nix store (the \
                       flake's source and the system's derivations).",
            requires: &[Predestroy(ConfigRepoPushed)],
            cleanup: false,
            remedy: Some(
                "fix what the rehearsal names in the config repository (commit and push any \
                 file it imports; move an input off the root disk, nix flake lock), then run \
                 predestroy again",
            ),
        },
        HomeOnVolume => StepDef {
            id,
            title: "/home on the volume",
            explains: "Each [[volume]].mount is mounted from that volume's device (by device number) \
                       with the configured filesystem.",
            requires: &[],
            cleanup: false,
            remedy: Some(
                "mount each volume where [[volume]].mount says (fileSystems in the NixOS \
                   config), switch, and run again",
            ),
        },
        NixOnVolume => StepDef {
            id,
            title: "/nix bound from the volume",
            explains: "[nix_store].target is a bind mount of [nix_store].source on the volume.",
            requires: &[],
            cleanup: false,
            remedy: Some(
                "bind /nix from [nix_store].source on the volume (a fileSystems entry with the \
                   bind option), or mount the store's own volume at /nix, switch, reboot, and run \
                   again",
            ),
        },
        DockerOnVolume => StepDef {
            id,
            title: "Docker data on the volume",
            explains: "When [docker] is configured: its data root is on the volume, and so is the \
                       running daemon's root dir.",
            requires: &[],
            cleanup: false,
            remedy: Some(
                "put Docker's data root on the volume ([docker].data_root), restart Docker, and \
                   run again",
            ),
        },
        RootDiskAudit => StepDef {
            id,
            title: "Nothing lost with the root disk",
            explains: "Walks [host].root (its own filesystem only) and lists what dies with the \
                       root disk, group by group with sizes and file counts: each service's \
                       directory under /var/lib, /root, what was put in /etc, /srv, /opt, \
                       /usr/local and other leftovers, and passwords set with passwd. The store, \
                       the volumes, what NixOS makes anew and /etc/nixos are left out; logs and \
                       caches are shown as disposable, what lifeboat carries as carried, \
                       [host].accept as accepted. Anything else keeps the machine from ready.",
            requires: &[Predestroy(HomeOnVolume), Predestroy(NixOnVolume)],
            cleanup: false,
            remedy: Some(
                "declare each lost path on the volume in the NixOS config (a service's data \
                   directory under the volume, or a bind mount from it), or list it in \
                   [host].carry for lifeboat to carry a copy, or in [host].accept to accept its \
                   loss; then run again",
            ),
        },
        ConfigMirror => StepDef {
            id,
            title: "Config mirror on the volume",
            explains: "A bare mirror of the config repository at <user>/nixos-config-backup.git, \
                       updated on every run, so recover can clone from the volume when the remote \
                       cannot be reached.",
            requires: &[Predestroy(ConfigRepoCommitted), Predestroy(HomeOnVolume)],
            cleanup: false,
            remedy: None,
        },
        PackageLists => StepDef {
            id,
            title: "Package lists",
            explains: "What is installed, saved under <user>/.lifeboat/: the user's nix-env -q, \
                       home-manager packages, and the running system's requisites.",
            requires: &[Predestroy(HomeOnVolume)],
            cleanup: false,
            remedy: None,
        },
        HostIdentity => StepDef {
            id,
            title: "Host identity saved",
            explains: "What dies with the root disk but the next machine must be: sshd's host keys \
                       (clients pin them; sops-nix and agenix decrypt with them), /var/lib/nixos \
                       (the uid and gid maps that give users their ids back) and the paths \
                       [host].carry lists, copied to lifeboat-host/ at the top of the volume, \
                       readable by root alone, with modes, owners and times. The card records \
                       sizes, SHA-256 and the keys' fingerprints, never their content.",
            requires: &[Predestroy(HomeOnVolume)],
            cleanup: false,
            remedy: Some(
                "make room on the volume or fix what the step names, then run predestroy again",
            ),
        },
        PersistenceMarker => StepDef {
            id,
            title: "Persistence marker",
            explains: "A marker with a random nonce and the time on the volume; verify reads it back \
                       after the rebuild.",
            requires: &[Predestroy(HomeOnVolume)],
            cleanup: false,
            remedy: None,
        },
        RecoveryCard => StepDef {
            id,
            title: "Recovery card",
            explains: "<user>/.lifeboat/recovery.toml: repository, branch, pushed commit, flake host, \
                       user, uid, volumes, the /nix bind, hostname and versions — what recover needs \
                       on a fresh machine without a config.",
            requires: &[Predestroy(ConfigRepoPushed), Predestroy(HomeOnVolume)],
            cleanup: false,
            remedy: None,
        },
        Backup => StepDef {
            id,
            title: "Backup",
            explains: "With [backup].rsync_target: rsync of the home there, keeping hard links, ACLs, \
                       xattrs and numeric ids, never deleting at the target.",
            requires: &[Predestroy(HomeOnVolume)],
            cleanup: false,
            remedy: Some(
                "check that [backup].rsync_target can be reached and written, then run again",
            ),
        },
    }
}
