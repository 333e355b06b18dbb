//! The state machine: a flow's steps and their states, `update(msg) -> effects`.

use std::fmt;

use super::ids::{FlowKind, StepId};
use super::step::{RefreshRule, StepDef};
use crate::report::{RunStatus, StepStatus};
use crate::summary::NotDone;

/// Where a step stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepState {
    Pending,
    Running,
    NeedsConfirmation(String),
    Passed(String),
    Warning(String),
    Failed(String),
    Skipped(Skip),
    Refused(String),
    /// Ctrl-C or SIGTERM cut it short while it ran.
    Interrupted,
}

impl StepState {
    /// The status name the events use.
    pub fn status(&self) -> StepStatus {
        match self {
            StepState::Pending => StepStatus::Pending,
            StepState::Running => StepStatus::Running,
            StepState::NeedsConfirmation(_) => StepStatus::NeedsConfirmation,
            StepState::Passed(_) => StepStatus::Passed,
            StepState::Warning(_) => StepStatus::Warning,
            StepState::Failed(_) | StepState::Interrupted => StepStatus::Failed,
            StepState::Skipped(_) => StepStatus::Skipped,
            StepState::Refused(_) => StepStatus::Refused,
        }
    }

    /// Does the step keep the flow from its goal: it failed, was refused, waits for a yes,
    /// or was skipped for a reason that needs a run of its own?
    pub fn blocks(&self) -> bool {
        match self {
            StepState::Failed(_)
            | StepState::Refused(_)
            | StepState::NeedsConfirmation(_)
            | StepState::Interrupted => true,
            StepState::Skipped(skip) => skip.blocks(),
            StepState::Pending
            | StepState::Running
            | StepState::Passed(_)
            | StepState::Warning(_) => false,
        }
    }

    /// The message that goes with the state (empty while pending or running).
    pub fn message(&self) -> String {
        match self {
            StepState::Pending | StepState::Running => String::new(),
            StepState::Skipped(skip) => skip.to_string(),
            StepState::Interrupted => "interrupted".into(),
            StepState::NeedsConfirmation(m)
            | StepState::Passed(m)
            | StepState::Warning(m)
            | StepState::Failed(m)
            | StepState::Refused(m) => m.clone(),
        }
    }

    /// Why the step did no work, when it is the engine's reason rather than the step's own.
    pub fn not_done(&self) -> Option<NotDone> {
        match self {
            StepState::Interrupted | StepState::Skipped(Skip::InterruptedAtQuestion) => {
                Some(NotDone::Interrupted)
            }
            StepState::Skipped(Skip::Unmet(needed)) => Some(NotDone::Unmet(needed.as_str())),
            StepState::Skipped(Skip::FlowInterrupted) => Some(NotDone::NotRun),
            StepState::Skipped(Skip::Declined) => Some(NotDone::Declined),
            _ => None,
        }
    }
}

/// Why a step did not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// A step it needs did not pass (or pass with a warning).
    Unmet(StepId),
    /// Ctrl-C or SIGTERM came before it: after that only cleanup steps run.
    FlowInterrupted,
    /// Ctrl-C or SIGTERM came while its question was open.
    InterruptedAtQuestion,
    /// The operator did not agree to its change.
    Declined,
    /// The step's own reason: nothing to do, or a dry run.
    Because(String),
}

impl Skip {
    /// Does it keep the flow from its goal (the change or check did not happen, and a
    /// run of its own is needed), rather than being a step with nothing to do?
    pub fn blocks(&self) -> bool {
        match self {
            Skip::Unmet(_) | Skip::FlowInterrupted | Skip::Declined => true,
            Skip::InterruptedAtQuestion | Skip::Because(_) => false,
        }
    }
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Skip::Unmet(needed) => write!(f, "not run: it needs {needed}, which did not pass"),
            Skip::FlowInterrupted => f.write_str("not run: the flow was interrupted"),
            Skip::InterruptedAtQuestion => f.write_str("interrupted before confirmation"),
            Skip::Declined => f.write_str("not confirmed: nothing was changed"),
            Skip::Because(why) => f.write_str(why),
        }
    }
}

/// How a step's run ended, as its runner reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Passed(String),
    Warning(String),
    Failed(String),
    /// A check that protects data said no (exit 3).
    Refused(String),
    Skipped(String),
    /// The step would change something; the question to put to the operator.
    NeedsConfirmation(Question),
    /// The step stopped because of Ctrl-C or SIGTERM.
    Interrupted,
}

/// How much it takes to agree to a change. The step that asks declares it, because only
/// the step knows whether its change is hard to take back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assent {
    /// One explicit key (`y`).
    Key,
    /// The operator types this machine's name: moving /etc/nixos aside, installing the
    /// system and rebooting must not happen on a single stray key.
    TypedHostname,
}

/// A question a step puts to the operator before a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub text: String,
    pub assent: Assent,
}

impl Question {
    /// A question answered with one explicit key.
    pub fn key(text: impl Into<String>) -> Question {
        Question {
            text: text.into(),
            assent: Assent::Key,
        }
    }

    /// A question answered by typing the hostname.
    pub fn typed_hostname(text: impl Into<String>) -> Question {
        Question {
            text: text.into(),
            assent: Assent::TypedHostname,
        }
    }
}

/// What can happen to a flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    Start,
    /// The running step finished.
    Finished(Outcome),
    Confirmed,
    Declined,
    /// Ctrl-C or SIGTERM. While a step runs, the step itself learns of it through the
    /// cancel flag; the flow ends interrupted even when that step still finishes (a
    /// cleanup step always does).
    Cancel,
}

/// What the front end must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Run step `step`; `confirmed` once the operator (or `--yes`) agreed to its change.
    Run { step: usize, confirmed: bool },
    /// Put the step's question to the operator, then send `Confirmed` or `Declined`.
    AskConfirmation { step: usize, question: Question },
    /// The flow is over.
    Finish(RunStatus),
}

/// One step of a running flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub def: &'static StepDef,
    pub state: StepState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Ready,
    Running(usize),
    Confirming(usize),
    Done(RunStatus),
}

/// Who agrees to a step's change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Consent {
    /// The operator, at each question.
    Ask,
    /// Every change (`--yes`).
    All,
    /// `predestroy --refresh`, unattended: each step's [`RefreshRule`] decides.
    Refresh,
}

/// A flow in progress: its steps and what has happened so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    pub kind: FlowKind,
    pub steps: Vec<Step>,
    consent: Consent,
    phase: Phase,
    /// Ctrl-C or SIGTERM: from then on only cleanup steps run.
    interrupted: bool,
    /// A change was not confirmed: the run ends `stopped` unless something worse happened.
    declined: bool,
}

impl Flow {
    /// A new flow with every step pending. `assume_yes` answers every confirmation (`--yes`).
    pub fn new(kind: FlowKind, assume_yes: bool) -> Flow {
        Flow::with_consent(
            kind,
            if assume_yes {
                Consent::All
            } else {
                Consent::Ask
            },
        )
    }

    /// A flow run unattended by `predestroy --refresh`: no question is asked; each change is
    /// made or left as its step's [`RefreshRule`] says.
    pub fn refreshing(kind: FlowKind) -> Flow {
        Flow::with_consent(kind, Consent::Refresh)
    }

    fn with_consent(kind: FlowKind, consent: Consent) -> Flow {
        Flow {
            kind,
            steps: kind
                .steps()
                .iter()
                .map(|def| Step {
                    def,
                    state: StepState::Pending,
                })
                .collect(),
            consent,
            phase: Phase::Ready,
            interrupted: false,
            declined: false,
        }
    }

    /// The final status once the flow is over.
    pub fn result(&self) -> Option<RunStatus> {
        match self.phase {
            Phase::Done(status) => Some(status),
            Phase::Ready | Phase::Running(_) | Phase::Confirming(_) => None,
        }
    }

    /// The step running or awaiting confirmation, if any.
    pub fn current(&self) -> Option<usize> {
        match self.phase {
            Phase::Running(i) | Phase::Confirming(i) => Some(i),
            Phase::Ready | Phase::Done(_) => None,
        }
    }

    /// Apply `msg`; return what the front end must do. Messages that do not fit the
    /// current phase change nothing.
    pub fn update(&mut self, msg: Msg) -> Vec<Effect> {
        match (self.phase, msg) {
            (Phase::Ready, Msg::Start) => self.advance(0),
            (Phase::Ready, Msg::Cancel) => {
                self.interrupted = true;
                self.advance(0)
            }
            (Phase::Running(i), Msg::Finished(outcome)) => self.finished(i, outcome),
            (Phase::Confirming(i), Msg::Confirmed) => {
                self.steps[i].state = StepState::Running;
                self.phase = Phase::Running(i);
                vec![Effect::Run {
                    step: i,
                    confirmed: true,
                }]
            }
            (Phase::Confirming(i), Msg::Declined) => {
                self.steps[i].state = StepState::Skipped(Skip::Declined);
                self.declined = true;
                self.advance(i + 1)
            }
            (Phase::Confirming(i), Msg::Cancel) => {
                self.steps[i].state = StepState::Skipped(Skip::InterruptedAtQuestion);
                self.interrupted = true;
                self.advance(i + 1)
            }
            (Phase::Running(_), Msg::Cancel) => {
                self.interrupted = true;
                Vec::new()
            }
            (Phase::Ready, Msg::Finished(_) | Msg::Confirmed | Msg::Declined)
            | (Phase::Running(_), Msg::Start | Msg::Confirmed | Msg::Declined)
            | (Phase::Confirming(_), Msg::Start | Msg::Finished(_))
            | (Phase::Done(_), _) => Vec::new(),
        }
    }

    fn finished(&mut self, i: usize, outcome: Outcome) -> Vec<Effect> {
        self.steps[i].state = match outcome {
            Outcome::Passed(m) => StepState::Passed(m),
            Outcome::Warning(m) => StepState::Warning(m),
            Outcome::Skipped(m) => StepState::Skipped(Skip::Because(m)),
            Outcome::Failed(m) => StepState::Failed(m),
            Outcome::Refused(m) => StepState::Refused(m),
            Outcome::Interrupted => {
                self.interrupted = true;
                StepState::Interrupted
            }
            Outcome::NeedsConfirmation(question) => {
                let rule = self.steps[i].def.id.refresh_rule();
                match (self.consent, rule) {
                    (Consent::All, _) | (Consent::Refresh, RefreshRule::Make) => {
                        return vec![Effect::Run {
                            step: i,
                            confirmed: true,
                        }];
                    }
                    (Consent::Refresh, RefreshRule::Block) => StepState::Failed(format!(
                        "--refresh never makes this change: {}",
                        question.text
                    )),
                    (Consent::Refresh, RefreshRule::Leave) => StepState::Warning(format!(
                        "not done by --refresh (it writes outside the volume): {}",
                        question.text
                    )),
                    (Consent::Ask, _) => {
                        self.steps[i].state = StepState::NeedsConfirmation(question.text.clone());
                        self.phase = Phase::Confirming(i);
                        return vec![Effect::AskConfirmation { step: i, question }];
                    }
                }
            }
        };
        self.advance(i + 1)
    }

    /// Run the next step from `from` on whose requirements passed; mark the others
    /// skipped with the reason. After an interruption only cleanup steps run.
    fn advance(&mut self, from: usize) -> Vec<Effect> {
        for i in from..self.steps.len() {
            match self.blocker(i) {
                None => {
                    self.steps[i].state = StepState::Running;
                    self.phase = Phase::Running(i);
                    return vec![Effect::Run {
                        step: i,
                        confirmed: false,
                    }];
                }
                Some(reason) => self.steps[i].state = StepState::Skipped(reason),
            }
        }
        let status = self.final_status();
        self.phase = Phase::Done(status);
        vec![Effect::Finish(status)]
    }

    /// Why step `i` cannot run, if it cannot.
    fn blocker(&self, i: usize) -> Option<Skip> {
        let def = self.steps[i].def;
        if self.interrupted && !def.cleanup {
            return Some(Skip::FlowInterrupted);
        }
        let unmet = def.requires.iter().find(|id| {
            !self.steps.iter().any(|s| {
                s.def.id == **id && matches!(s.state, StepState::Passed(_) | StepState::Warning(_))
            })
        })?;
        Some(Skip::Unmet(*unmet))
    }

    /// The worst thing that happened: interrupted, refused, failed, not confirmed, or passed.
    fn final_status(&self) -> RunStatus {
        let any = |pred: fn(&StepState) -> bool| self.steps.iter().any(|s| pred(&s.state));
        if self.interrupted {
            RunStatus::Interrupted
        } else if any(|s| matches!(s, StepState::Refused(_))) {
            RunStatus::Refused
        } else if any(|s| matches!(s, StepState::Failed(_))) {
            RunStatus::Failed
        } else if self.declined {
            RunStatus::Stopped
        } else {
            RunStatus::Passed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{InspectStep, inspect};

    fn run_all(flow: &mut Flow, outcomes: &mut dyn FnMut(usize, bool) -> Outcome) -> Vec<usize> {
        let mut ran = Vec::new();
        let mut effects = flow.update(Msg::Start);
        while let Some(effect) = effects.pop() {
            effects = match effect {
                Effect::Run { step, confirmed } => {
                    ran.push(step);
                    flow.update(Msg::Finished(outcomes(step, confirmed)))
                }
                Effect::AskConfirmation { .. } => flow.update(Msg::Declined),
                Effect::Finish(_) => Vec::new(),
            };
        }
        ran
    }

    fn index(id: &str) -> usize {
        inspect::STEPS
            .iter()
            .position(|s| s.id.as_str() == id)
            .unwrap()
    }

    #[test]
    fn every_step_runs_in_order_when_all_pass() {
        let mut flow = Flow::new(FlowKind::Inspect, false);
        let ran = run_all(&mut flow, &mut |_, _| Outcome::Passed("ok".into()));
        assert_eq!(ran, (0..inspect::STEPS.len()).collect::<Vec<_>>());
        assert_eq!(flow.result(), Some(RunStatus::Passed));
    }

    #[test]
    fn a_warning_does_not_stop_the_flow() {
        let mut flow = Flow::new(FlowKind::Inspect, false);
        run_all(&mut flow, &mut |_, _| Outcome::Warning("hmm".into()));
        assert_eq!(flow.result(), Some(RunStatus::Passed));
    }

    #[test]
    fn a_failure_skips_the_rest_but_cleanup_still_runs() {
        let mut flow = Flow::new(FlowKind::Inspect, false);
        let failing = index("check-layout");
        let ran = run_all(&mut flow, &mut |i, _| {
            if i == failing {
                Outcome::Failed("broken".into())
            } else {
                Outcome::Passed(String::new())
            }
        });
        assert_eq!(ran, vec![0, 1, 2, failing, index("unmount")]);
        assert_eq!(flow.result(), Some(RunStatus::Failed));
        assert_eq!(
            flow.steps[index("measure")].state,
            StepState::Skipped(Skip::Unmet(StepId::Inspect(InspectStep::CheckLayout)))
        );
    }

    #[test]
    fn a_refusal_ends_with_refused() {
        let mut flow = Flow::new(FlowKind::Inspect, false);
        run_all(&mut flow, &mut |i, _| {
            if i == index("identify-volume") {
                Outcome::Refused("blank".into())
            } else {
                Outcome::Passed(String::new())
            }
        });
        assert_eq!(flow.result(), Some(RunStatus::Refused));
        assert_eq!(
            flow.steps[index("mount-readonly")].state.status(),
            StepStatus::Skipped
        );
    }

    #[test]
    fn an_unconfirmed_change_stops_the_flow_without_running_it() {
        let mut flow = Flow::new(FlowKind::Inspect, false);
        let asking = index("mount-readonly");
        let mut confirmed_runs = 0;
        run_all(&mut flow, &mut |i, confirmed| {
            if confirmed {
                confirmed_runs += 1;
            }
            if i == asking && !confirmed {
                Outcome::NeedsConfirmation(Question::key("mount?"))
            } else {
                Outcome::Passed(String::new())
            }
        });
        assert_eq!(confirmed_runs, 0);
        assert_eq!(flow.result(), Some(RunStatus::Stopped));
        assert_eq!(
            flow.steps[index("unmount")].state.status(),
            StepStatus::Passed
        );
    }

    #[test]
    fn assume_yes_runs_the_change_confirmed() {
        let mut flow = Flow::new(FlowKind::Inspect, true);
        let asking = index("mount-readonly");
        let mut confirmed_runs = Vec::new();
        run_all(&mut flow, &mut |i, confirmed| {
            if confirmed {
                confirmed_runs.push(i);
            }
            if i == asking && !confirmed {
                Outcome::NeedsConfirmation(Question::key("mount?"))
            } else {
                Outcome::Passed(String::new())
            }
        });
        assert_eq!(confirmed_runs, vec![asking]);
        assert_eq!(flow.result(), Some(RunStatus::Passed));
    }

    #[test]
    fn a_refresh_makes_own_file_changes_blocks_repository_ones_and_leaves_the_backup() {
        use super::super::predestroy;
        let at = |id: &str| {
            predestroy::STEPS
                .iter()
                .position(|s| s.id.as_str() == id)
                .unwrap()
        };
        // The checks pass; the repository has an uncommitted change; every write wants to
        // write.
        let changes = [
            "config-repo-committed",
            "config-mirror",
            "package-lists",
            "host-identity",
            "persistence-marker",
            "recovery-card",
            "backup",
        ];
        let mut flow = Flow::refreshing(FlowKind::Predestroy);
        let mut confirmed_runs = Vec::new();
        run_all(&mut flow, &mut |i, confirmed| {
            let id = predestroy::STEPS[i].id.as_str();
            if confirmed {
                confirmed_runs.push(i);
            }
            if changes.contains(&id) && !confirmed {
                Outcome::NeedsConfirmation(Question::key("change?"))
            } else {
                Outcome::Passed(String::new())
            }
        });
        let confirmed: Vec<&str> = confirmed_runs
            .iter()
            .map(|&i| flow.steps[i].def.id.as_str())
            .collect();
        // The mirror and the card record the committed, pushed config: not with a change
        // left uncommitted.
        assert_eq!(
            confirmed,
            ["package-lists", "host-identity", "persistence-marker"]
        );
        let state = |id| &flow.steps[at(id)].state;
        assert!(matches!(
            state("recovery-card"),
            StepState::Skipped(Skip::Unmet(_))
        ));
        assert!(
            matches!(state("config-repo-committed"), StepState::Failed(m) if m.starts_with("--refresh never")),
            "{:?}",
            state("config-repo-committed")
        );
        assert!(matches!(state("backup"), StepState::Warning(_)));
        // Not ready, but never stopped at a question (exit 1, not 4).
        assert_eq!(flow.result(), Some(RunStatus::Failed));
    }

    #[test]
    fn confirmation_then_yes_runs_the_step() {
        let mut flow = Flow::new(FlowKind::Inspect, false);
        flow.update(Msg::Start);
        let effects = flow.update(Msg::Finished(Outcome::NeedsConfirmation(Question::key(
            "go?",
        ))));
        assert_eq!(
            effects,
            vec![Effect::AskConfirmation {
                step: 0,
                question: Question::key("go?")
            }]
        );
        assert_eq!(flow.update(Msg::Start), vec![]);
        assert_eq!(
            flow.update(Msg::Confirmed),
            vec![Effect::Run {
                step: 0,
                confirmed: true
            }]
        );
    }

    #[test]
    fn an_interrupted_step_ends_interrupted_after_cleanup() {
        let mut flow = Flow::new(FlowKind::Inspect, false);
        let measuring = index("measure");
        let ran = run_all(&mut flow, &mut |i, _| {
            if i == measuring {
                Outcome::Interrupted
            } else {
                Outcome::Passed(String::new())
            }
        });
        assert_eq!(ran.last(), Some(&index("unmount")));
        assert_eq!(flow.result(), Some(RunStatus::Interrupted));
    }

    #[test]
    fn cancel_while_asking_skips_the_step_and_cleans_up() {
        let mut flow = Flow::new(FlowKind::Inspect, false);
        flow.update(Msg::Start);
        flow.update(Msg::Finished(Outcome::NeedsConfirmation(Question::key(
            "go?",
        ))));
        let effects = flow.update(Msg::Cancel);
        assert_eq!(
            effects,
            vec![Effect::Run {
                step: index("unmount"),
                confirmed: false
            }]
        );
        flow.update(Msg::Finished(Outcome::Skipped("nothing mounted".into())));
        assert_eq!(flow.result(), Some(RunStatus::Interrupted));
    }

    #[test]
    fn cancel_while_a_step_runs_ends_the_run_interrupted_after_it() {
        let mut flow = Flow::new(FlowKind::Recover, true);
        flow.update(Msg::Start);
        assert!(flow.update(Msg::Cancel).is_empty());
        let effects = flow.update(Msg::Finished(Outcome::Passed("ok".into())));
        assert_eq!(effects, vec![Effect::Finish(RunStatus::Interrupted)]);
        assert_eq!(flow.steps[0].state, StepState::Passed("ok".into()));
        assert!(matches!(flow.steps[1].state, StepState::Skipped(_)));
    }

    #[test]
    fn cancel_during_the_cleanup_step_still_ends_the_run_interrupted() {
        let mut flow = Flow::new(FlowKind::Inspect, true);
        let mut effects = flow.update(Msg::Start);
        while let Some(Effect::Run { step, .. }) = effects.pop() {
            if step == index("unmount") {
                flow.update(Msg::Cancel);
            }
            effects = flow.update(Msg::Finished(Outcome::Passed(String::new())));
        }
        assert_eq!(flow.result(), Some(RunStatus::Interrupted));
        assert!(matches!(
            flow.steps[index("unmount")].state,
            StepState::Passed(_)
        ));
    }

    /// A tiny deterministic generator, so the walk below needs no extra dependency.
    struct XorShift(u64);

    impl XorShift {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    fn random_outcome(rng: &mut XorShift) -> Outcome {
        match rng.below(7) {
            0 => Outcome::Failed("f".into()),
            1 => Outcome::Refused("r".into()),
            2 => Outcome::Skipped("s".into()),
            3 => Outcome::Warning("w".into()),
            4 => Outcome::NeedsConfirmation(Question::key("q")),
            5 if rng.below(4) == 0 => Outcome::Interrupted,
            _ => Outcome::Passed("p".into()),
        }
    }

    /// Thousands of random runs of every flow, with random outcomes, answers and Ctrl-C:
    /// no change runs without its confirmation, no step runs before what it needs passed,
    /// cleanup steps always run once, and every run finishes.
    #[test]
    fn random_runs_keep_the_invariants() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for kind in [
            FlowKind::Inspect,
            FlowKind::Predestroy,
            FlowKind::Recover,
            FlowKind::Verify,
        ] {
            for _ in 0..5000 {
                let yes = rng.below(2) == 0;
                let mut flow = Flow::new(kind, yes);
                let mut confirmed_ok = vec![false; flow.steps.len()];
                let mut runs = vec![0; flow.steps.len()];
                let mut effects = if rng.below(50) == 0 {
                    flow.update(Msg::Cancel)
                } else {
                    flow.update(Msg::Start)
                };
                let mut finished = false;
                for _ in 0..1000 {
                    let Some(effect) = effects.pop() else { break };
                    effects = match effect {
                        Effect::Run { step, confirmed } => {
                            runs[step] += 1;
                            assert!(
                                !confirmed || yes || confirmed_ok[step],
                                "{kind:?}: ran unconfirmed"
                            );
                            for need in flow.steps[step].def.requires {
                                let passed = flow.steps.iter().any(|s| {
                                    s.def.id == *need
                                        && matches!(
                                            s.state,
                                            StepState::Passed(_) | StepState::Warning(_)
                                        )
                                });
                                assert!(
                                    passed,
                                    "{kind:?}: {} ran before {need} passed",
                                    flow.steps[step].def.id
                                );
                            }
                            let outcome = if confirmed {
                                Outcome::Passed("done".into())
                            } else {
                                random_outcome(&mut rng)
                            };
                            flow.update(Msg::Finished(outcome))
                        }
                        Effect::AskConfirmation { step, .. } => {
                            let answer = match rng.below(3) {
                                0 => Msg::Confirmed,
                                1 => Msg::Declined,
                                _ => Msg::Cancel,
                            };
                            confirmed_ok[step] = answer == Msg::Confirmed;
                            flow.update(answer)
                        }
                        Effect::Finish(status) => {
                            assert_eq!(flow.result(), Some(status));
                            finished = true;
                            Vec::new()
                        }
                    };
                }
                assert!(finished, "{kind:?}: the run never finished");
                for (step, count) in flow.steps.iter().zip(&runs) {
                    if step.def.cleanup {
                        assert!(*count >= 1, "{kind:?}: cleanup {} did not run", step.def.id);
                    }
                    assert!(!matches!(
                        step.state,
                        StepState::Pending | StepState::Running
                    ));
                }
            }
        }
    }

    #[test]
    fn messages_after_the_end_change_nothing() {
        let mut flow = Flow::new(FlowKind::Inspect, false);
        run_all(&mut flow, &mut |_, _| Outcome::Passed(String::new()));
        let before = flow.clone();
        for msg in [Msg::Start, Msg::Cancel, Msg::Confirmed, Msg::Declined] {
            assert!(flow.update(msg).is_empty());
        }
        assert_eq!(flow, before);
    }
}
