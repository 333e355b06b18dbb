//! The steps of `lifeboat inspect`: a read-only look at a volume.

use super::ids::InspectStep;
use super::ids::StepId::Inspect;
use super::step::StepDef;

step_table!(InspectStep);

/// What each step is: its title, what it does, what it needs.
const fn def(step: InspectStep) -> StepDef {
    use InspectStep::*;
    let id = Inspect(step);
    match step {
        FindVolume => StepDef {
            id,
            title: "Find the volume",
            explains: "Takes the DEVICE argument, else the configured [[volume]].device, else the one \
                       by-id link matching [discovery].pattern. Also undoes a read-only mount that an \
                       earlier, killed run left behind.",
            requires: &[],
            cleanup: false,
            remedy: None,
        },
        IdentifyVolume => StepDef {
            id,
            title: "Identify the volume",
            explains: "Reads the superblock without writing: filesystem type, UUID, label, size, and \
                       whether the journal needs recovery. A blank device or another filesystem is \
                       refused: lifeboat never formats.",
            requires: &[Inspect(FindVolume)],
            cleanup: false,
            remedy: None,
        },
        MountReadonly => StepDef {
            id,
            title: "Mount read-only",
            explains: "Mounts the volume at [inspect].mountpoint with ro,nosuid,nodev,noexec and the \
                       filesystem's no-journal-replay option, so not one byte of the device changes. A \
                       volume that is already mounted is inspected where it is.",
            requires: &[Inspect(IdentifyVolume)],
            cleanup: false,
            remedy: None,
        },
        CheckLayout => StepDef {
            id,
            title: "Check the layout",
            explains: "Looks for the user's home, .ssh and its permissions, projects, .config, the Nix \
                       store and database, the Docker data root, the config backup, the persistence \
                       marker and recovery card, and the owner uid of the home.",
            requires: &[Inspect(MountReadonly)],
            cleanup: false,
            remedy: None,
        },
        Measure => StepDef {
            id,
            title: "Measure sizes",
            explains: "Disk usage and file count of each top-level entry and each entry of the user's \
                       home, like du -sB1 -x: hard links once, symlinks not followed, never leaving \
                       the volume.",
            requires: &[Inspect(CheckLayout)],
            cleanup: false,
            remedy: None,
        },
        Unmount => StepDef {
            id,
            title: "Unmount",
            explains: "Undoes the inspection mount, whatever happened before.",
            requires: &[],
            cleanup: true,
            remedy: None,
        },
    }
}
