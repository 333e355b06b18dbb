//! The flow engine: a pure state machine over a flow's steps.
//!
//! `update` takes a message (a step finished, the operator confirmed, Ctrl-C) and returns
//! the effects the front end must carry out (run a step, ask, finish). It never does I/O,
//! so every path through a flow can be tested without a machine.

#[macro_use]
mod step;

mod catalog;
mod engine;
mod ids;
pub mod inspect;
pub mod predestroy;
pub mod recover;
pub mod verify;

pub use engine::{Assent, Effect, Flow, Msg, Outcome, Question, Skip, Step, StepState};
pub use ids::{FlowKind, InspectStep, PredestroyStep, RecoverStep, StepId, VerifyStep};
pub use step::{RefreshRule, StepDef};
