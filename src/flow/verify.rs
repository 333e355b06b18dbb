//! The steps of `lifeboat verify`: after the reboot, everything came back.

use super::StepDef;

/// Every later step reads the volume through its mount, so each needs `home-mounted`.
pub static STEPS: &[StepDef] = &[
    StepDef {
        id: "home-mounted",
        title: "Volume mounted",
        explains: "Each [[volume]].mount is mounted from that volume's device (compared by device \
                   number) with its filesystem.",
        requires: &[],
        cleanup: false,
    },
    StepDef {
        id: "nix-bound",
        title: "/nix bound from the volume",
        explains: "[nix_store].target is a bind mount of [nix_store].source on the volume, so the \
                   store survives the next rebuild.",
        requires: &["home-mounted"],
        cleanup: false,
    },
    StepDef {
        id: "owner-uid",
        title: "Owner uid",
        explains: "The user's home on the volume belongs to the uid the new system gives the user; \
                   a reassigned uid leaves the data owned by someone else.",
        requires: &["home-mounted"],
        cleanup: false,
    },
    StepDef {
        id: "persistence-marker",
        title: "Persistence marker",
        explains: "The marker predestroy wrote on the volume is there, with the nonce the recovery \
                   card recorded: this is the same volume, with its data.",
        requires: &["home-mounted"],
        cleanup: false,
    },
    StepDef {
        id: "closure-on-volume",
        title: "System in the volume's store",
        explains: "The running system is in the store on the volume, so the next boot finds it.",
        requires: &["home-mounted"],
        cleanup: false,
    },
    StepDef {
        id: "generations",
        title: "System generations",
        explains: "The running system is the newest generation of the system profile, and no \
                   older generation mounts a root disk this machine does not have (rolling back \
                   to one boots a disk that no longer exists); deleting those and rewriting the \
                   boot menu is offered.",
        requires: &["closure-on-volume"],
        cleanup: false,
    },
];
