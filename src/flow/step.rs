//! What a step is as its flow defines it ([`StepDef`]) and what an unattended refresh does
//! with its change ([`RefreshRule`]), and `step_table!`, with which each flow's module makes
//! its table of definitions. Steps are named by their ids (`flow/ids.rs`), so a definition
//! needs no other flow's.

use super::ids::StepId;

/// Makes the flow's `STEPS` from the module's `def`, one for each step in the order of the
/// enum's variants: `def` is an exhaustive match, so a new variant cannot lack its
/// definition, and `StepId::def` finds a step's at its variant's index.
macro_rules! step_table {
    ($name:ident) => {
        /// The flow's steps as the engine runs them, in order.
        pub static STEPS: [StepDef; $name::ALL.len()] = {
            let mut defs = [def($name::ALL[0]); $name::ALL.len()];
            let mut i = 1;
            while i < defs.len() {
                defs[i] = def($name::ALL[i]);
                i += 1;
            }
            defs
        };
    };
}

/// A step as a flow declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepDef {
    pub id: StepId,
    pub title: &'static str,
    /// What it checks or does, and why: shown beside the step.
    pub explains: &'static str,
    /// Steps that must have passed (or passed with a warning) for this one to run; when one
    /// did not, this step is skipped and says why. Other failures do not stop it: a
    /// checklist reports every blocker, not just the first.
    pub requires: &'static [StepId],
    /// A cleanup step (such as `unmount`) runs even after the flow was interrupted.
    pub cleanup: bool,
    /// What to do when the step fails or is not run, so that the next run passes: the
    /// advice the end of a run gives for it (predestroy's blockers).
    pub remedy: Option<&'static str>,
}

/// What an unattended refresh does with a step's change (`predestroy --refresh`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshRule {
    /// Make it: it only writes lifeboat's own files on the volume.
    Make,
    /// Leave it undone, a blocker: it changes what the operator owns (the repository).
    Block,
    /// Leave it undone, a warning: it writes outside the volume (the backup server).
    Leave,
}
