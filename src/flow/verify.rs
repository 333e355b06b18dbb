//! The steps of `lifeboat verify`: after the reboot, everything came back.

use super::ids::StepId::Verify;
use super::ids::VerifyStep;
use super::step::StepDef;

step_table!(VerifyStep);

/// What each step is: its title, what it does, what it needs.
const fn def(step: VerifyStep) -> StepDef {
    use VerifyStep::*;
    let id = Verify(step);
    match step {
        HomeMounted => StepDef {
            id,
            title: "Volume mounted",
            explains: "Each [[volume]].mount is mounted from that volume's device (compared by device \
                       number) with its filesystem.",
            requires: &[],
            cleanup: false,
            remedy: None,
        },
        NixBound => StepDef {
            id,
            title: "/nix bound from the volume",
            explains: "[nix_store].target is a bind mount of [nix_store].source on the volume, so the \
                       store survives the next rebuild.",
            requires: &[Verify(HomeMounted)],
            cleanup: false,
            remedy: None,
        },
        OwnerUid => StepDef {
            id,
            title: "Owner uid",
            explains: "The user's home on the volume belongs to the uid the new system gives the user; \
                       a reassigned uid leaves the data owned by someone else.",
            requires: &[Verify(HomeMounted)],
            cleanup: false,
            remedy: None,
        },
        HostIdentity => StepDef {
            id,
            title: "Host identity",
            explains: "The old machine's identity came back: each SSH host key has the fingerprint \
                       the recovery card recorded (clients and sops-nix or agenix see the old \
                       machine), each carried path is back with the owner and mode of its saved \
                       copy, and the user's uid came from the restored id map or the \
                       configuration.",
            requires: &[Verify(HomeMounted)],
            cleanup: false,
            remedy: None,
        },
        PersistenceMarker => StepDef {
            id,
            title: "Persistence marker",
            explains: "The marker predestroy wrote on the volume is there, with the nonce the recovery \
                       card recorded: this is the same volume, with its data.",
            requires: &[Verify(HomeMounted)],
            cleanup: false,
            remedy: None,
        },
        ClosureOnVolume => StepDef {
            id,
            title: "System in the volume's store",
            explains: "The running system is in the store on the volume, so the next boot finds it.",
            requires: &[Verify(HomeMounted)],
            cleanup: false,
            remedy: None,
        },
        Generations => StepDef {
            id,
            title: "System generations",
            explains: "The running system is the newest generation of the system profile, and no \
                       older generation mounts a root disk this machine does not have (rolling back \
                       to one boots a disk that no longer exists); deleting those and rewriting the \
                       boot menu is offered.",
            requires: &[Verify(ClosureOnVolume)],
            cleanup: false,
            remedy: None,
        },
    }
}
