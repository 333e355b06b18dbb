//! Runs a flow: feeds the engine's effects to the runner and the runner's outcomes back
//! to the engine, reporting every change as an event and recording it in the journal.
//! The same loop serves every front end; only `ask` and the sink differ.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::flow::{Effect, Flow, Msg, Outcome, Question, StepId, StepState};
use crate::report::{Event, PlannedStep, RunStatus, StepSummary};
use crate::steps::context::{EventSink, JournalHandle, StepContext};
use crate::steps::runner::Runner;

/// What the driver needs besides the flow and its runner.
pub struct Driver<'a> {
    pub sink: &'a dyn EventSink,
    pub journal: &'a JournalHandle,
    pub cancel: &'a AtomicBool,
    pub dry_run: bool,
}

impl Driver<'_> {
    /// Run the flow to its end. `ask` puts a confirmation question to the operator and
    /// answers with `Confirmed`, `Declined` or `Cancel`.
    pub fn drive(
        &self,
        flow: &mut Flow,
        runner: &mut dyn Runner,
        ask: &mut dyn FnMut(StepId, &Question) -> Msg,
    ) -> RunStatus {
        let started = Instant::now();
        let flow_id = flow.kind.id();
        self.sink.emit(&Event::Plan {
            flow: flow_id,
            dry_run: self.dry_run,
            steps: flow
                .steps
                .iter()
                .map(|step| PlannedStep {
                    id: step.def.id.as_str(),
                    title: step.def.title,
                    actions: runner.actions(step.def.id),
                })
                .collect(),
        });
        let mut durations = vec![Duration::ZERO; flow.steps.len()];
        let mut effects = flow.update(Msg::Start);
        loop {
            let Some(effect) = effects.pop() else {
                // The engine always ends with Finish; an empty list would be a bug there.
                return RunStatus::Failed;
            };
            effects = match effect {
                Effect::Run { step, confirmed } => {
                    self.report_step(flow, step);
                    let def = flow.steps[step].def;
                    let ctx = StepContext {
                        flow: flow_id,
                        step: def.id,
                        sink: self.sink,
                        cancel: self.cancel,
                        dry_run: self.dry_run,
                        journal: self.journal,
                    };
                    let timer = Instant::now();
                    crate::faults::before_step(def.id.as_str(), self.cancel);
                    let outcome = if self.cancel.load(Ordering::Relaxed) && !def.cleanup {
                        Outcome::Interrupted
                    } else {
                        runner.run(def.id, confirmed, &ctx)
                    };
                    durations[step] += timer.elapsed();
                    if self.cancel.load(Ordering::Relaxed) {
                        // A signal before or while the step ran ends the run interrupted,
                        // even when the step finished (a cleanup step always runs).
                        flow.update(Msg::Cancel);
                    }
                    let next = flow.update(Msg::Finished(outcome));
                    self.report_step(flow, step);
                    next
                }
                Effect::AskConfirmation { step, question } => {
                    // The step's needs-confirmation state was reported when it finished.
                    let msg = if self.cancel.load(Ordering::Relaxed) {
                        Msg::Cancel
                    } else {
                        ask(flow.steps[step].def.id, &question)
                    };
                    let next = flow.update(msg);
                    self.report_step(flow, step);
                    next
                }
                Effect::Finish(status) => {
                    self.clean_up(flow, runner);
                    self.summarise(flow, runner, status, &durations, started.elapsed());
                    return status;
                }
            };
        }
    }

    /// Let the runner undo what its steps left behind, reporting under the last step run.
    fn clean_up(&self, flow: &Flow, runner: &mut dyn Runner) {
        let last = flow
            .steps
            .iter()
            .rev()
            .find(|s| !matches!(s.state, StepState::Pending | StepState::Skipped(_)))
            .unwrap_or(&flow.steps[0]);
        let ctx = StepContext {
            flow: flow.kind.id(),
            step: last.def.id,
            sink: self.sink,
            cancel: self.cancel,
            dry_run: self.dry_run,
            journal: self.journal,
        };
        runner.clean_up(&ctx);
    }

    /// Emit the step's current state and record it in the journal.
    fn report_step(&self, flow: &Flow, index: usize) {
        let step = &flow.steps[index];
        let (status, message) = (step.state.status(), step.state.message());
        self.sink.emit(&Event::Step {
            flow: flow.kind.id(),
            step: step.def.id.as_str(),
            status,
            message: message.clone(),
        });
        self.record(flow, |j| {
            j.record_step(step.def.id.as_str(), status, &message);
        });
    }

    fn summarise(
        &self,
        flow: &Flow,
        runner: &dyn Runner,
        status: RunStatus,
        durations: &[Duration],
        total: Duration,
    ) {
        self.record(flow, |j| j.finished = Some(status));
        let steps = flow
            .steps
            .iter()
            .zip(durations)
            .map(|(step, took)| StepSummary {
                id: step.def.id.as_str(),
                status: step.state.status(),
                message: step.state.message().clone(),
                duration_ms: millis(*took),
                not_done: step.state.not_done(),
            })
            .collect();
        self.sink.emit(&Event::Summary {
            flow: flow.kind.id(),
            status,
            dry_run: self.dry_run,
            duration_ms: millis(total),
            steps,
            details: Box::new(runner.details(flow)),
        });
    }

    /// Journal updates that fail are reported but do not stop a flow: what needs the
    /// journal for safety (mount records) checks its own writes.
    fn record(&self, flow: &Flow, change: impl FnOnce(&mut crate::journal::Journal)) {
        if let Err(e) = self.journal.update(change) {
            let step = flow
                .current()
                .map_or("summary", |i| flow.steps[i].def.id.as_str());
            self.sink.emit(&Event::Output {
                flow: flow.kind.id(),
                step,
                stream: crate::report::Stream::Stderr,
                line: e.to_string(),
            });
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
