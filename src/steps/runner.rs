//! The runner of a flow: what the front end drives, step by step.

use crate::flow::{Flow, Outcome, StepId};
use crate::report::Action;
use crate::summary::FlowDetails;

use super::context::StepContext;

/// A flow's step runners, driven step by step by the front end. Implemented for every
/// [`FlowRunner`], which is what a flow's runner implements.
pub trait Runner {
    /// The exact actions step `id` may take, for the plan event and `--dry-run`.
    fn actions(&self, id: StepId) -> Vec<Action>;
    /// Run the step `id`. `confirmed` once the operator agreed to its change.
    fn run(&mut self, id: StepId, confirmed: bool, ctx: &StepContext) -> Outcome;
    /// Flow-specific facts for the summary event, once `flow` is over.
    fn details(&self, flow: &Flow) -> FlowDetails;
    /// The same facts as lines for people (the headless summary on stdout).
    fn human_summary(&self, flow: &Flow) -> Vec<String>;
    /// Undo what a step left for later ones (a mount) when the run ends before they did.
    /// Called once, after the last step, whatever happened.
    fn clean_up(&mut self, _ctx: &StepContext) {}
}

/// The runner of one flow, over that flow's own steps: each runner dispatches with an
/// exhaustive `match`, so a step added to the flow does not compile until it is run.
pub trait FlowRunner {
    /// The flow's step enum.
    type Step: Copy + TryFrom<StepId, Error = StepId>;
    /// The exact actions `step` may take, for the plan event and `--dry-run`.
    fn actions(&self, step: Self::Step) -> Vec<Action>;
    /// Run `step`. `confirmed` once the operator agreed to its change.
    fn run(&mut self, step: Self::Step, confirmed: bool, ctx: &StepContext) -> Outcome;
    /// Flow-specific facts for the summary event, once `flow` is over.
    fn details(&self, flow: &Flow) -> FlowDetails;
    /// The same facts as lines for people (the headless summary on stdout).
    fn human_summary(&self, flow: &Flow) -> Vec<String>;
    /// Undo what a step left for later ones (a mount) when the run ends before they did.
    /// Called once, after the last step, whatever happened.
    fn clean_up(&mut self, _ctx: &StepContext) {}
}

impl<R: FlowRunner> Runner for R {
    fn actions(&self, id: StepId) -> Vec<Action> {
        R::Step::try_from(id).map_or_else(|_| Vec::new(), |step| FlowRunner::actions(self, step))
    }

    fn run(&mut self, id: StepId, confirmed: bool, ctx: &StepContext) -> Outcome {
        match R::Step::try_from(id) {
            Ok(step) => FlowRunner::run(self, step, confirmed, ctx),
            // Only a runner wired to another flow's steps gets here (app::runner wires them).
            Err(id) => Outcome::Failed(format!("{id} is a step of {}", id.flow().id())),
        }
    }

    fn details(&self, flow: &Flow) -> FlowDetails {
        FlowRunner::details(self, flow)
    }

    fn human_summary(&self, flow: &Flow) -> Vec<String> {
        FlowRunner::human_summary(self, flow)
    }

    fn clean_up(&mut self, ctx: &StepContext) {
        FlowRunner::clean_up(self, ctx);
    }
}
