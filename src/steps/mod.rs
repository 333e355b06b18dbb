//! Step runners: the code that checks or does what a step of a flow stands for.
//! They do their I/O through `exec/` and report through a
//! [`StepContext`](context::StepContext).

pub mod context;
pub mod credentials;
pub mod find_volume;
pub mod generations;
pub mod host_identity;
pub mod identify;
pub mod inspect;
pub mod layout;
pub mod measure;
pub mod no_space;
pub mod on_volume;
pub mod predestroy;
pub mod readonly_mount;
pub mod recover;
pub mod runner;
#[cfg(test)]
pub mod testing;
pub mod verify;
pub mod volume_store;

use std::path::PathBuf;

use crate::config::Config;
use crate::flow::FlowKind;

use runner::Runner;

/// The runner of flow `kind`: the one place where a flow is wired to its steps' code.
/// `device` is inspect's DEVICE argument.
pub fn runner_for(kind: FlowKind, cfg: Config, device: Option<PathBuf>) -> Box<dyn Runner + Send> {
    match kind {
        FlowKind::Inspect => Box::new(inspect::InspectRunner::new(cfg, device)),
        FlowKind::Predestroy => Box::new(predestroy::PredestroyRunner::new(cfg)),
        FlowKind::Recover => Box::new(recover::RecoverRunner::new(cfg)),
        FlowKind::Verify => Box::new(verify::VerifyRunner::new(cfg)),
    }
}
