//! A flow run on its own thread, through the same [`Driver`] as the headless front end:
//! events go to the UI over a channel, a confirmation is a request the UI answers on a
//! reply channel, and the cancel flag is the one Ctrl-C sets.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::thread::{self, JoinHandle};

use crossbeam_channel::{Sender, bounded};

use crate::driver::Driver;
use crate::exec::scan::PartialRow;
use crate::flow::{self, Flow, FlowKind, Question, StepId};
use crate::frontend::headless::Tee;
use crate::report::{Event, FileDiff, RunStatus, Stream};
use crate::session::Session;
use crate::steps::context::EventSink;
use crate::steps::runner::Runner;
use crate::summary::TreeRow;

use super::facts::HomeFacts;
use super::state::FromWorker;

/// What the worker sends: a report, and for a question the channel to answer on.
pub struct Envelope {
    pub msg: FromWorker,
    pub reply: Option<Sender<flow::Msg>>,
}

/// What the wizard needs from this machine, behind a trait so the loop holds no config.
pub trait Machine: Send + Sync {
    /// Open the session and build the runner of a run of `kind` (on the worker thread).
    fn prepare(&self, kind: FlowKind) -> Result<(Session, Box<dyn Runner + Send>), String>;
    /// Read what the home screen shows.
    fn facts(&self) -> HomeFacts;
}

/// How a run is started.
pub struct RunSpec {
    pub kind: FlowKind,
    pub assume_yes: bool,
    pub dry_run: bool,
}

/// Forwards every event to the UI.
struct ChannelSink(Sender<Envelope>);

impl EventSink for ChannelSink {
    fn emit(&self, event: &Event) {
        // The UI gone means the process is on its way out; the transcript still has it.
        let _ = self.0.send(Envelope {
            msg: FromWorker::Event(event.clone()),
            reply: None,
        });
    }

    fn diff(&self, step: &'static str, diff: &FileDiff) {
        let _ = self.0.send(Envelope {
            msg: FromWorker::Diff {
                step,
                diff: diff.clone(),
            },
            reply: None,
        });
    }

    fn partial_tree(&self, rows: &[PartialRow<TreeRow>]) {
        let _ = self.0.send(Envelope {
            msg: FromWorker::Tree(rows.to_vec()),
            reply: None,
        });
    }
}

/// Start `spec` on a new thread; its reports go to `to_ui`.
pub fn spawn(
    spec: RunSpec,
    machine: Arc<dyn Machine>,
    cancel: Arc<AtomicBool>,
    to_ui: Sender<Envelope>,
) -> std::io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name("lifeboat-flow".into())
        .spawn(move || {
            let report = |msg| {
                let _ = to_ui.send(Envelope { msg, reply: None });
            };
            let (session, mut runner) = match machine.prepare(spec.kind) {
                Ok(prepared) => prepared,
                Err(why) => return report(FromWorker::CouldNotStart(why)),
            };
            let status = catch_unwind(AssertUnwindSafe(|| {
                drive(&spec, &session, runner.as_mut(), &cancel, &to_ui)
            }))
            .unwrap_or_else(|payload| {
                let what = payload
                    .downcast_ref::<&str>()
                    .map(std::string::ToString::to_string)
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                report(FromWorker::Event(Event::Output {
                    flow: spec.kind.id(),
                    step: super::output::RUN_LEVEL,
                    stream: Stream::Stderr,
                    line: crate::escape::escape_bytes(
                        format!("lifeboat stopped on an internal error: {what}").as_bytes(),
                    ),
                }));
                RunStatus::Failed
            });
            report(FromWorker::Ended(status));
        })
}

fn drive(
    spec: &RunSpec,
    session: &Session,
    runner: &mut dyn Runner,
    cancel: &AtomicBool,
    to_ui: &Sender<Envelope>,
) -> RunStatus {
    let channel = ChannelSink(to_ui.clone());
    let mut sinks: Vec<&dyn EventSink> = vec![&channel];
    if let Some(transcript) = &session.transcript {
        sinks.push(transcript);
    }
    let tee = Tee::new(sinks);
    let driver = Driver {
        sink: &tee,
        journal: &session.journal,
        cancel,
        dry_run: spec.dry_run,
    };
    let mut flow = Flow::new(spec.kind, spec.assume_yes);
    driver.drive(&mut flow, runner, &mut |step, question| {
        ask(step, question, to_ui)
    })
}

/// Put the question to the UI and wait for the answer; a UI that is gone cancels.
fn ask(step: StepId, question: &Question, to_ui: &Sender<Envelope>) -> flow::Msg {
    let (reply, answer) = bounded(1);
    let sent = to_ui.send(Envelope {
        msg: FromWorker::Ask {
            step: step.as_str(),
            question: question.clone(),
        },
        reply: Some(reply),
    });
    match sent {
        Ok(()) => answer.recv().unwrap_or(flow::Msg::Cancel),
        Err(_) => flow::Msg::Cancel,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{InspectStep, Outcome};
    use crate::report::Action;
    use crate::steps::context::StepContext;
    use crate::steps::runner::FlowRunner;
    use crate::summary::{FlowDetails, InspectDetails};
    use crossbeam_channel::Receiver;
    use std::time::Duration;

    /// Passes every step; `mount-readonly` shows a diff and asks first.
    struct Asking;

    impl FlowRunner for Asking {
        type Step = InspectStep;

        fn actions(&self, _: InspectStep) -> Vec<Action> {
            Vec::new()
        }

        fn run(&mut self, step: InspectStep, confirmed: bool, ctx: &StepContext) -> Outcome {
            if step == InspectStep::MountReadonly && !confirmed {
                ctx.diff("f.nix".into(), vec!["+a".into()]);
                Outcome::NeedsConfirmation(Question::key("mount it?"))
            } else {
                Outcome::Passed(String::new())
            }
        }

        fn details(&self, _: &Flow) -> FlowDetails {
            FlowDetails::Inspect(InspectDetails::default())
        }

        fn human_summary(&self, _: &Flow) -> Vec<String> {
            Vec::new()
        }
    }

    struct Fake(tempfile::TempDir);

    impl Machine for Fake {
        fn prepare(&self, kind: FlowKind) -> Result<(Session, Box<dyn Runner + Send>), String> {
            let session =
                Session::open(self.0.path(), kind.id(), false).map_err(|e| e.to_string())?;
            Ok((session, Box::new(Asking)))
        }

        fn facts(&self) -> HomeFacts {
            unreachable!("the worker never reads the home screen's facts")
        }
    }

    /// Run inspect with the fake runner, answering its question with `answer`; the status.
    fn run_answering(answer: flow::Msg) -> RunStatus {
        let (to_ui, from_worker): (_, Receiver<Envelope>) = bounded(64);
        let machine = Arc::new(Fake(tempfile::tempdir().unwrap()));
        let spec = RunSpec {
            kind: FlowKind::Inspect,
            assume_yes: false,
            dry_run: false,
        };
        let handle = spawn(spec, machine, Arc::new(AtomicBool::new(false)), to_ui).unwrap();
        let mut asked = false;
        let mut diffed = false;
        let status = loop {
            let envelope = from_worker.recv_timeout(Duration::from_secs(30)).unwrap();
            match envelope.msg {
                FromWorker::Ask { step, .. } => {
                    assert_eq!(step, "mount-readonly");
                    assert!(diffed, "the diff comes before the question");
                    asked = true;
                    envelope.reply.unwrap().send(answer.clone()).unwrap();
                }
                FromWorker::Ended(status) => break status,
                FromWorker::Diff { step, diff } => {
                    assert_eq!(
                        (step, diff.lines.as_slice()),
                        ("mount-readonly", &["+a".to_string()][..])
                    );
                    diffed = true;
                }
                FromWorker::Event(_) | FromWorker::Tree(_) => {}
                FromWorker::CouldNotStart(why) => panic!("{why}"),
            }
        };
        handle.join().unwrap();
        assert!(asked, "the question reached the UI");
        status
    }

    #[test]
    fn the_answer_to_a_question_goes_back_to_the_flow() {
        assert_eq!(run_answering(flow::Msg::Confirmed), RunStatus::Passed);
        assert_eq!(run_answering(flow::Msg::Declined), RunStatus::Stopped);
        assert_eq!(run_answering(flow::Msg::Cancel), RunStatus::Interrupted);
    }
}
