//! What a flow and its steps are: the flows lifeboat knows ([`FlowKind`]), a step of any
//! flow ([`StepId`]), its definition ([`StepDef`]) and what an unattended refresh does with
//! its change ([`RefreshRule`]), and `flow_steps!`, with which each flow's module declares
//! its steps.

use std::fmt;

use super::inspect::{self, InspectStep};
use super::predestroy::{self, PredestroyStep};
use super::recover::{self, RecoverStep};
use super::verify::{self, VerifyStep};

/// Declares the enum of a flow's steps: each variant with the id events and the journal
/// name it by, `ALL` in the order the flow runs them, and the flow's `STEPS`, each made by
/// the module's `def` (an exhaustive match, so a new variant cannot lack its definition).
macro_rules! flow_steps {
    ($(#[$meta:meta])* $name:ident for $flow:ident { $($variant:ident = $id:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $(#[doc = concat!("`", $id, "`")] $variant,)+
        }

        impl $name {
            /// Every step, in the order the flow runs them.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The id the events and the journal name the step by.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $id,)+
                }
            }
        }

        impl TryFrom<StepId> for $name {
            type Error = StepId;

            /// The step, when `id` is one of this flow's.
            fn try_from(id: StepId) -> Result<$name, StepId> {
                match id {
                    StepId::$flow(step) => Ok(step),
                    other => Err(other),
                }
            }
        }

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

/// A step of any flow: which flow, and which of its steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepId {
    Inspect(InspectStep),
    Predestroy(PredestroyStep),
    Recover(RecoverStep),
    Verify(VerifyStep),
}

impl StepId {
    /// The id the events and the journal name the step by (ARCHITECTURE.md, "Steps and how to add one").
    pub const fn as_str(self) -> &'static str {
        match self {
            StepId::Inspect(step) => step.as_str(),
            StepId::Predestroy(step) => step.as_str(),
            StepId::Recover(step) => step.as_str(),
            StepId::Verify(step) => step.as_str(),
        }
    }

    /// What `predestroy --refresh` does with the step's change; only predestroy is refreshed.
    pub const fn refresh_rule(self) -> RefreshRule {
        match self {
            StepId::Predestroy(step) => super::predestroy::refresh_rule(step),
            StepId::Inspect(_) | StepId::Recover(_) | StepId::Verify(_) => RefreshRule::Block,
        }
    }

    /// The step's definition.
    pub fn def(self) -> &'static StepDef {
        // `STEPS` holds each flow's steps in the order of their enum's variants.
        match self {
            StepId::Inspect(step) => &inspect::STEPS[step as usize],
            StepId::Predestroy(step) => &predestroy::STEPS[step as usize],
            StepId::Recover(step) => &recover::STEPS[step as usize],
            StepId::Verify(step) => &verify::STEPS[step as usize],
        }
    }

    /// The flow the step belongs to.
    pub fn flow(self) -> FlowKind {
        match self {
            StepId::Inspect(_) => FlowKind::Inspect,
            StepId::Predestroy(_) => FlowKind::Predestroy,
            StepId::Recover(_) => FlowKind::Recover,
            StepId::Verify(_) => FlowKind::Verify,
        }
    }
}

impl fmt::Display for StepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The flows lifeboat knows, each with its fixed list of steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowKind {
    Inspect,
    Predestroy,
    Recover,
    Verify,
}

impl FlowKind {
    /// The flow's id as the command line and the JSON events name it.
    pub fn id(self) -> &'static str {
        match self {
            FlowKind::Inspect => "inspect",
            FlowKind::Predestroy => "predestroy",
            FlowKind::Recover => "recover",
            FlowKind::Verify => "verify",
        }
    }

    /// The steps, in the order they run.
    pub fn steps(self) -> &'static [StepDef] {
        match self {
            FlowKind::Inspect => &inspect::STEPS,
            FlowKind::Predestroy => &predestroy::STEPS,
            FlowKind::Recover => &recover::STEPS,
            FlowKind::Verify => &verify::STEPS,
        }
    }

    /// The flow's step with the id `name`, if it has one.
    pub fn step_named(self, name: &str) -> Option<StepId> {
        self.steps()
            .iter()
            .map(|def| def.id)
            .find(|id| id.as_str() == name)
    }
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
