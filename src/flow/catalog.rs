//! The lookups that need every flow's table: a step's definition and refresh rule, a flow's
//! steps. They sit above the flows' modules, which define their steps knowing only the ids
//! (`flow/ids.rs`) and what a definition is (`flow/step.rs`).

use super::ids::{FlowKind, StepId};
use super::step::{RefreshRule, StepDef};
use super::{inspect, predestroy, recover, verify};

impl StepId {
    /// What `predestroy --refresh` does with the step's change; only predestroy is refreshed.
    pub const fn refresh_rule(self) -> RefreshRule {
        match self {
            StepId::Predestroy(step) => predestroy::refresh_rule(step),
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
}

impl FlowKind {
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
