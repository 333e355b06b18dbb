//! A context for running a step in a unit test: events go nowhere, the journal stays in memory.

use std::sync::atomic::AtomicBool;

use crate::flow::StepId;
use crate::journal::Journal;
use crate::report::Event;

use super::context::{EventSink, JournalHandle, StepContext};

struct Quiet;

impl EventSink for Quiet {
    fn emit(&self, _: &Event) {}
}

/// Call `f` with a context for `step`.
pub fn with_context<T>(step: StepId, f: impl FnOnce(&StepContext) -> T) -> T {
    let cancel = AtomicBool::new(false);
    let flow = step.flow().id();
    let journal = JournalHandle::new(Journal::new(flow, "test".into(), None), None);
    f(&StepContext {
        flow,
        step,
        sink: &Quiet,
        cancel: &cancel,
        dry_run: false,
        journal: &journal,
    })
}
