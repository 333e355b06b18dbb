//! One step as the flow screen and the end screen show it.

use std::time::Duration;

use crate::flow::StepDef;
use crate::report::{Action, StepStatus};
use crate::summary::NotDone;

/// One step on the flow screen.
#[derive(Debug, Clone)]
pub struct StepView {
    pub def: &'static StepDef,
    pub status: StepStatus,
    pub message: String,
    /// Why it did no work, when the engine knows (from the summary).
    pub not_done: Option<NotDone>,
    /// The exact actions from the plan event.
    pub actions: Vec<Action>,
    pub started: Option<Duration>,
    pub took: Option<Duration>,
}
