//! The steps of `lifeboat inspect`: a read-only look at a volume.

use super::StepDef;

/// In order, each needing the one before; `unmount` needs nothing and is a cleanup step,
/// so it runs whatever happened before it.
pub static STEPS: &[StepDef] = &[
    StepDef {
        id: "find-volume",
        title: "Find the volume",
        explains: "Takes the DEVICE argument, else the configured [[volume]].device, else the one \
                   by-id link matching [discovery].pattern. Also undoes a read-only mount that an \
                   earlier, killed run left behind.",
        requires: &[],
        cleanup: false,
    },
    StepDef {
        id: "identify-volume",
        title: "Identify the volume",
        explains: "Reads the superblock without writing: filesystem type, UUID, label, size, and \
                   whether the journal needs recovery. A blank device or another filesystem is \
                   refused: lifeboat never formats.",
        requires: &["find-volume"],
        cleanup: false,
    },
    StepDef {
        id: "mount-readonly",
        title: "Mount read-only",
        explains: "Mounts the volume at [inspect].mountpoint with ro,nosuid,nodev,noexec and the \
                   filesystem's no-journal-replay option, so not one byte of the device changes. A \
                   volume that is already mounted is inspected where it is.",
        requires: &["identify-volume"],
        cleanup: false,
    },
    StepDef {
        id: "check-layout",
        title: "Check the layout",
        explains: "Looks for the user's home, .ssh and its permissions, projects, .config, the Nix \
                   store and database, the Docker data root, the config backup, the persistence \
                   marker and recovery card, and the owner uid of the home.",
        requires: &["mount-readonly"],
        cleanup: false,
    },
    StepDef {
        id: "measure",
        title: "Measure sizes",
        explains: "Disk usage and file count of each top-level entry and each entry of the user's \
                   home, like du -sB1 -x: hard links once, symlinks not followed, never leaving \
                   the volume.",
        requires: &["check-layout"],
        cleanup: false,
    },
    StepDef {
        id: "unmount",
        title: "Unmount",
        explains: "Undoes the inspection mount, whatever happened before.",
        requires: &[],
        cleanup: true,
    },
];
