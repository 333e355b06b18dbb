//! The wizard's whole state and the pure function that moves it on. Keys, flow events
//! and ticks come in as [`Msg`]s; what the loop must do (start a flow, answer a question,
//! cancel) goes out as [`Effect`]s. Nothing here does I/O, so every screen state can be
//! built in a test from synthetic messages.

use std::time::Duration;

use crate::exec::scan::PartialRow;
use crate::flow::{self, Assent, FlowKind, Question};
use crate::report::{Action, Event, FileDiff, RunStatus, StepStatus, Unit};

use crate::summary::TreeRow;

use super::diff::{DiffView, Diffs};
use super::end::EndReport;
use super::facts::HomeFacts;
use super::keys::Key;
use super::output::OutputLog;
use super::results::InspectResults;
use super::scroll;
use super::step_view::StepView;

/// What a flow's worker reports.
#[derive(Debug, Clone)]
pub enum FromWorker {
    Event(Event),
    /// The step asks for confirmation; the loop holds the reply channel.
    Ask {
        step: &'static str,
        question: Question,
    },
    /// A diff the step produced (its lines came as output events too).
    Diff {
        step: &'static str,
        diff: FileDiff,
    },
    /// The run is over (the summary event came before this).
    Ended(RunStatus),
    /// The run could not start (the lock is held, the state directory is unwritable).
    CouldNotStart(String),
    /// Inspect's size tree as far as the walk has come.
    Tree(Vec<PartialRow<TreeRow>>),
}

/// Everything that moves the state on.
#[derive(Debug, Clone)]
pub enum Msg {
    Key(Key),
    /// Time since the wizard started; running steps show how long they have run.
    Tick(Duration),
    /// A message from the worker and when it arrived (time since start).
    Worker(Duration, FromWorker),
    /// SIGTERM or SIGHUP: cancel like Ctrl-C.
    Signal,
    /// What the home screen shows, read afresh.
    HomeFacts(HomeFacts),
}

/// What the loop must do after an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Start (or re-run) a flow on a worker thread.
    Start(FlowKind),
    /// Answer the pending confirmation.
    Answer(flow::Msg),
    /// Set the cancel flag the driver and the running step check.
    Cancel,
    /// Read the home screen's facts again (a run may have changed them).
    RefreshHome,
}

/// The four flows, in the order an operator meets them, as the home screen lists them.
pub const HOME_FLOWS: &[FlowKind] = &[
    FlowKind::Predestroy,
    FlowKind::Recover,
    FlowKind::Inspect,
    FlowKind::Verify,
];

/// The flows the practice sandbox offers: the read-only ones. Predestroy and recover
/// work on this machine's /etc/nixos, system and reboot, which no practice may touch.
pub const PRACTICE_FLOWS: &[FlowKind] = &[FlowKind::Inspect, FlowKind::Verify];

/// A flow's one line on the home screen.
pub fn flow_line(kind: FlowKind) -> &'static str {
    match kind {
        FlowKind::Predestroy => "Before destroying this VPS: prove nothing would be lost",
        FlowKind::Recover => "On the new VPS: rebuild it from the volume and the git remote",
        FlowKind::Inspect => "A read-only look at a volume: identity, layout, sizes",
        FlowKind::Verify => "After the reboot: check that everything came back",
    }
}

/// Which screen is up.
#[derive(Debug, Clone)]
pub enum Screen {
    Home,
    Flow(Box<FlowView>),
}

/// The wizard.
#[derive(Debug, Clone)]
pub struct State {
    pub screen: Screen,
    /// What lifeboat sees on this machine; `None` when opened straight on a flow.
    pub home: Option<HomeFacts>,
    /// This machine's name: what the operator types to confirm what cannot be undone.
    pub hostname: String,
    pub home_selected: usize,
    /// The flows the home screen offers ([`HOME_FLOWS`], or [`PRACTICE_FLOWS`] in the demo).
    pub flows: &'static [FlowKind],
    /// The modal over the screen, if one is open: it takes every key.
    pub overlay: Option<Overlay>,
    pub quit: Quit,
    /// A one-line message for the operator (a cancel on its way).
    pub notice: Option<String>,
    pub now: Duration,
    /// How the last run ended: the process exit code.
    pub last_status: Option<RunStatus>,
}

/// A modal over the screen. One at a time: the operator opens help or the quit prompt
/// only when none is open, and a step's question takes the place of help but waits under
/// the quit prompt (`State::ask`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overlay {
    /// The keys; any key closes it.
    Help,
    /// A step's question, with what runs if the operator agrees.
    Confirm(Confirmation),
    /// `q` while a step runs asks first. A question that came while it was open waits under
    /// it: it is cancelled with the run, or put to the operator if they stay.
    QuitPrompt { waiting: Option<Box<Confirmation>> },
}

impl Overlay {
    /// The question on screen or waiting under the quit prompt.
    pub fn confirmation(&self) -> Option<&Confirmation> {
        match self {
            Overlay::Confirm(confirm) => Some(confirm),
            Overlay::QuitPrompt { waiting } => waiting.as_deref(),
            Overlay::Help => None,
        }
    }
}

/// Whether the wizard is on its way out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quit {
    No,
    /// Quit once the worker has cleaned up and ended.
    WhenIdle,
}

/// Where a run stands, as the flow screen shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunPhase {
    Running,
    Ended(RunStatus),
    CouldNotStart(String),
}

/// The latest progress count of the running step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepProgress {
    pub step: &'static str,
    pub done: u64,
    pub total: Option<u64>,
    pub unit: Unit,
}

/// A question put to the operator, with exactly what will run if they agree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmation {
    pub step: &'static str,
    pub question: String,
    pub actions: Vec<Action>,
    /// For what cannot be undone (moving /etc/nixos aside, installing to boot, rebooting): the
    /// word (the hostname) the operator must type; `None` for a plain yes/no.
    pub word: Option<String>,
    /// What the operator has typed so far.
    pub typed: String,
    /// The first line shown of the step's diff, when it has one.
    pub diff_scroll: usize,
}

/// Which half of the flow screen is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowTab {
    Steps,
    Results,
}

/// The flow screen: one layout for every flow.
#[derive(Debug, Clone)]
pub struct FlowView {
    pub kind: FlowKind,
    pub dry_run: bool,
    pub steps: Vec<StepView>,
    pub selected: usize,
    /// The selection follows the active step until the operator moves it.
    pub follow: bool,
    pub output: OutputLog,
    pub progress: Option<StepProgress>,
    pub phase: RunPhase,
    pub results: Option<InspectResults>,
    /// Predestroy's and recover's end screen, once the summary came.
    pub end: Option<EndReport>,
    pub tab: FlowTab,
    pub diffs: Diffs,
    /// The diff view, shown in place of the steps and results.
    pub diff: Option<DiffView>,
}

impl FlowView {
    /// A run of `kind` that has just started: every step pending.
    pub fn new(kind: FlowKind) -> FlowView {
        FlowView {
            kind,
            dry_run: false,
            steps: kind
                .steps()
                .iter()
                .map(|def| StepView {
                    def,
                    status: StepStatus::Pending,
                    message: String::new(),
                    not_done: None,
                    actions: Vec::new(),
                    started: None,
                    took: None,
                })
                .collect(),
            selected: 0,
            follow: true,
            output: OutputLog::default(),
            progress: None,
            phase: RunPhase::Running,
            results: None,
            end: None,
            tab: FlowTab::Steps,
            diffs: Diffs::default(),
            diff: None,
        }
    }

    /// The steps that failed or refused, for the failure view (a checklist reports all).
    pub fn failed_steps(&self) -> impl Iterator<Item = &StepView> {
        self.steps
            .iter()
            .filter(|s| matches!(s.status, StepStatus::Failed | StepStatus::Refused))
    }

    fn running(&self) -> bool {
        self.phase == RunPhase::Running
    }

    fn event(&mut self, at: Duration, event: Event) {
        match event {
            Event::Plan { dry_run, steps, .. } => {
                self.dry_run = dry_run;
                for planned in steps {
                    if let Some(step) = self
                        .steps
                        .iter_mut()
                        .find(|s| s.def.id.as_str() == planned.id)
                    {
                        step.actions = planned.actions;
                    }
                }
            }
            Event::Step {
                step,
                status,
                message,
                ..
            } => self.step_changed(at, step, status, message),
            Event::Output {
                step, stream, line, ..
            } => self.output.push(step, stream, line),
            Event::Progress {
                step,
                done,
                total,
                unit,
                ..
            } => {
                self.progress = Some(StepProgress {
                    step,
                    done,
                    total,
                    unit,
                });
            }
            Event::Summary {
                status,
                steps,
                details,
                ..
            } => {
                // The final word on every step, also those the engine skipped without
                // running (they get no step event of their own).
                for summary in steps {
                    if let Some(step) = self
                        .steps
                        .iter_mut()
                        .find(|s| s.def.id.as_str() == summary.id)
                    {
                        step.status = summary.status;
                        step.message = summary.message;
                        step.not_done = summary.not_done;
                        step.took = Some(Duration::from_millis(summary.duration_ms));
                    }
                }
                if self.kind == FlowKind::Inspect {
                    self.results = InspectResults::after_summary(&details, self.results.take());
                }
                self.end = EndReport::from_summary(status, self.dry_run, &self.steps, &details);
            }
        }
    }

    fn step_changed(&mut self, at: Duration, id: &str, status: StepStatus, message: String) {
        let Some(index) = self.steps.iter().position(|s| s.def.id.as_str() == id) else {
            return;
        };
        let step = &mut self.steps[index];
        match status {
            StepStatus::Running => {
                step.started.get_or_insert(at);
            }
            StepStatus::Passed
            | StepStatus::Warning
            | StepStatus::Failed
            | StepStatus::Refused
            | StepStatus::Skipped => {
                step.took = step.started.map(|s| at.saturating_sub(s));
                if self.progress.as_ref().is_some_and(|p| p.step == id) {
                    self.progress = None;
                }
            }
            StepStatus::Pending | StepStatus::NeedsConfirmation => {}
        }
        step.status = status;
        step.message = message;
        if self.follow {
            self.selected = index;
        }
    }

    /// The walk went on: the tree grows in place (before the summary, it is all there is).
    fn tree_grew(&mut self, rows: Vec<PartialRow<TreeRow>>) {
        if self.kind != FlowKind::Inspect {
            return;
        }
        match &mut self.results {
            Some(results) => results.tree.replace_rows(rows),
            None => self.results = Some(InspectResults::growing(rows)),
        }
    }

    /// `step`'s question as the operator sees it, with the step's planned actions.
    fn confirmation(&self, step: &'static str, question: Question, hostname: &str) -> Confirmation {
        let actions = self
            .steps
            .iter()
            .find(|s| s.def.id.as_str() == step)
            .map(|s| s.actions.clone())
            .unwrap_or_default();
        let word = (question.assent == Assent::TypedHostname).then(|| hostname.to_string());
        Confirmation {
            step,
            question: question.text,
            actions,
            word,
            typed: String::new(),
            diff_scroll: 0,
        }
    }

    fn ended(&mut self, at: Duration, status: RunStatus) {
        self.phase = RunPhase::Ended(status);
        // A step still running when the run ended (the worker stopped on an internal
        // error) did not finish: say so instead of showing it running forever.
        for step in &mut self.steps {
            if matches!(
                step.status,
                StepStatus::Running | StepStatus::NeedsConfirmation
            ) {
                step.status = StepStatus::Failed;
                step.message = "did not finish: the run stopped here".into();
                step.took = step.started.map(|s| at.saturating_sub(s));
            }
        }
        self.progress = None;
        if status == RunStatus::Passed && self.results.is_some() || self.end.is_some() {
            self.tab = FlowTab::Results;
        }
        if let Some(index) = self
            .steps
            .iter()
            .position(|s| matches!(s.status, StepStatus::Failed | StepStatus::Refused))
        {
            self.selected = index;
        }
    }

    fn key(&mut self, key: Key) -> Vec<Effect> {
        if self.output.typing() {
            self.output.search_key(key);
            return Vec::new();
        }
        if self.tab == FlowTab::Results
            && self.results.is_none()
            && let Some(end) = &mut self.end
            && let Some(first) =
                scroll::scrolled(end.scroll.first, scroll::vi(key), end.scroll.max.get() + 1)
        {
            end.scroll.first = first;
            return Vec::new();
        }
        match (self.tab, key) {
            (FlowTab::Results, Key::Up | Key::Char('k')) => self.tree(super::results::SizeTree::up),
            (FlowTab::Results, Key::Down | Key::Char('j')) => {
                self.tree(super::results::SizeTree::down);
            }
            (FlowTab::Results, Key::Enter | Key::Right | Key::Left) => {
                self.tree(super::results::SizeTree::toggle);
            }
            (FlowTab::Results, Key::Char('s')) => self.tree(super::results::SizeTree::cycle_sort),
            (FlowTab::Steps, Key::Up | Key::Char('k')) => {
                self.follow = false;
                self.selected = self.selected.saturating_sub(1);
            }
            (FlowTab::Steps, Key::Down | Key::Char('j')) => {
                self.follow = false;
                self.selected = (self.selected + 1).min(self.steps.len().saturating_sub(1));
            }
            (_, Key::Tab) if self.has_results() => {
                self.tab = match self.tab {
                    FlowTab::Steps => FlowTab::Results,
                    FlowTab::Results => FlowTab::Steps,
                };
            }
            (FlowTab::Steps, Key::PageUp) => self.output.scroll_back(PAGE),
            (FlowTab::Steps, Key::PageDown) => self.output.scroll_forward(PAGE),
            (FlowTab::Steps, Key::End) => self.output.follow_tail(),
            (FlowTab::Steps, Key::Home) => self.output.scroll_back(self.output.len()),
            (FlowTab::Steps, Key::Char('/')) => self.output.start_search(),
            (FlowTab::Steps, Key::Char('n')) => self.output.next_hit(),
            (FlowTab::Steps, Key::Char('N')) => self.output.previous_hit(),
            (FlowTab::Steps, Key::Esc) => self.output.clear_search(),
            (FlowTab::Steps, Key::Char('d')) => self.open_diff(),
            (_, Key::Char('r')) if !self.running() => return vec![Effect::Start(self.kind)],
            _ => {}
        }
        Vec::new()
    }

    /// Is there a results or end screen to switch to?
    pub fn has_results(&self) -> bool {
        self.results.is_some() || self.end.is_some()
    }

    /// The selected step's diff, if it has one.
    pub fn selected_diff(&self) -> Option<&FileDiff> {
        self.diffs
            .get(self.steps.get(self.selected)?.def.id.as_str())
    }

    fn open_diff(&mut self) {
        if self.selected_diff().is_some() {
            let step = self.steps[self.selected].def.id.as_str();
            self.diff = Some(DiffView { step, scroll: 0 });
        }
    }

    /// A key while the diff view is open: scroll it, or close it with Esc or `q`.
    fn diff_key(&mut self, key: Key) {
        let Some(view) = &mut self.diff else {
            return;
        };
        let len = self.diffs.get(view.step).map_or(0, |d| d.lines.len());
        match key {
            Key::Esc | Key::Char('q') => self.diff = None,
            _ => {
                if let Some(first) = scroll::scrolled(view.scroll, scroll::vi(key), len) {
                    view.scroll = first;
                }
            }
        }
    }

    fn tree(&mut self, change: impl FnOnce(&mut super::results::SizeTree)) {
        if let Some(results) = &mut self.results {
            change(&mut results.tree);
        }
    }
}

impl Confirmation {
    /// A key while the question is open: scroll the step's diff (`diff_len` lines), type
    /// the word, or answer.
    fn key(&mut self, key: Key, diff_len: Option<usize>) -> Option<flow::Msg> {
        if let Some(len) = diff_len
            && let Some(first) = scroll::scrolled(self.diff_scroll, key, len)
        {
            self.diff_scroll = first;
            return None;
        }
        match (&self.word, key) {
            (_, Key::Esc) => Some(flow::Msg::Declined),
            (None, Key::Char('y' | 'Y')) => Some(flow::Msg::Confirmed),
            (None, Key::Char('n' | 'N')) => Some(flow::Msg::Declined),
            (Some(word), Key::Enter) if self.typed == *word => Some(flow::Msg::Confirmed),
            (Some(_), Key::Char(c)) => {
                self.typed.push(c);
                None
            }
            (Some(_), Key::Backspace) => {
                self.typed.pop();
                None
            }
            _ => None,
        }
    }
}

/// How far PgUp/PgDn move the output.
const PAGE: usize = 10;

impl State {
    /// The home screen over what lifeboat found on this machine, offering `flows`.
    pub fn home(facts: HomeFacts, flows: &'static [FlowKind]) -> State {
        let hostname = facts.hostname.clone();
        State {
            flows,
            // Inspect first: it is read-only, the safe thing to try.
            home_selected: flows
                .iter()
                .position(|k| *k == FlowKind::Inspect)
                .unwrap_or(0),
            ..State::with_screen(Screen::Home, Some(facts), hostname)
        }
    }

    /// Straight on a flow that is starting (`lifeboat inspect` on a terminal).
    pub fn flow(kind: FlowKind, hostname: String) -> State {
        State::with_screen(Screen::Flow(Box::new(FlowView::new(kind))), None, hostname)
    }

    fn with_screen(screen: Screen, home: Option<HomeFacts>, hostname: String) -> State {
        State {
            screen,
            home,
            hostname,
            home_selected: 0,
            flows: HOME_FLOWS,
            overlay: None,
            quit: Quit::No,
            notice: None,
            now: Duration::ZERO,
            last_status: None,
        }
    }

    /// Is a flow running (so quitting must cancel and wait for its cleanup)?
    pub fn running(&self) -> bool {
        matches!(&self.screen, Screen::Flow(view) if view.running())
    }

    /// Ready to leave: asked to quit and nothing runs any more.
    pub fn done(&self) -> bool {
        self.quit == Quit::WhenIdle && !self.running()
    }

    /// The process exit code: the last run's, 0 when none ran.
    pub fn exit_code(&self) -> i32 {
        match (&self.screen, self.last_status) {
            (Screen::Flow(view), _) if matches!(view.phase, RunPhase::CouldNotStart(_)) => {
                RunStatus::Failed.exit_code()
            }
            (_, Some(status)) => status.exit_code(),
            (_, None) => 0,
        }
    }

    /// Apply `msg`; return what the loop must do.
    pub fn update(&mut self, msg: Msg) -> Vec<Effect> {
        match msg {
            Msg::Tick(now) => {
                self.now = now;
                Vec::new()
            }
            Msg::Worker(at, from) => {
                self.now = self.now.max(at);
                self.worker(at, from)
            }
            Msg::Signal | Msg::Key(Key::Ctrl('c')) => self.cancel_and_quit(),
            Msg::HomeFacts(facts) => {
                self.home = Some(facts);
                Vec::new()
            }
            Msg::Key(key) => self.key(key),
        }
    }

    fn worker(&mut self, at: Duration, from: FromWorker) -> Vec<Effect> {
        let Screen::Flow(view) = &mut self.screen else {
            return Vec::new();
        };
        match from {
            FromWorker::Event(event) => view.event(at, event),
            FromWorker::Ask { step, question } => {
                if self.quit == Quit::WhenIdle {
                    return vec![Effect::Answer(flow::Msg::Cancel)];
                }
                let confirm = view.confirmation(step, question, &self.hostname);
                self.ask(confirm);
            }
            FromWorker::Ended(status) => {
                view.ended(at, status);
                self.last_status = Some(status);
                // Nothing is left to answer or to cancel; help may stay.
                if self.overlay != Some(Overlay::Help) {
                    self.overlay = None;
                }
            }
            FromWorker::Diff { step, diff } => view.diffs.insert(step, diff),
            FromWorker::CouldNotStart(why) => view.phase = RunPhase::CouldNotStart(why),
            FromWorker::Tree(rows) => view.tree_grew(rows),
        }
        Vec::new()
    }

    /// Put a step's question to the operator. It takes the place of help, but not of the
    /// quit prompt: a `y` meant for quitting must not confirm a change, so the question
    /// waits under the prompt.
    fn ask(&mut self, confirm: Confirmation) {
        match &mut self.overlay {
            Some(Overlay::QuitPrompt { waiting }) => *waiting = Some(Box::new(confirm)),
            _ => self.overlay = Some(Overlay::Confirm(confirm)),
        }
    }

    fn cancel_and_quit(&mut self) -> Vec<Effect> {
        self.quit = Quit::WhenIdle;
        // The quit prompt is answered and a question is cancelled with the run; help stays.
        let asked = match self.overlay.take() {
            Some(Overlay::Help) => {
                self.overlay = Some(Overlay::Help);
                false
            }
            overlay => overlay.is_some_and(|o| o.confirmation().is_some()),
        };
        if !self.running() {
            return Vec::new();
        }
        self.notice = Some("Cancelling: the running step stops and cleans up…".into());
        let mut effects = vec![Effect::Cancel];
        if asked {
            effects.push(Effect::Answer(flow::Msg::Cancel));
        }
        effects
    }

    fn key(&mut self, key: Key) -> Vec<Effect> {
        if self.quit == Quit::WhenIdle {
            return Vec::new();
        }
        match self.overlay.take() {
            Some(prompt @ Overlay::QuitPrompt { .. }) if matches!(key, Key::Char('y' | 'Y')) => {
                self.overlay = Some(prompt);
                return self.cancel_and_quit();
            }
            // Staying: the question that came meanwhile is put now.
            Some(Overlay::QuitPrompt { waiting }) => {
                self.overlay = waiting.map(|confirm| Overlay::Confirm(*confirm));
                return Vec::new();
            }
            Some(Overlay::Confirm(mut confirm)) => {
                let diff_len = match &self.screen {
                    Screen::Flow(view) => view.diffs.get(confirm.step).map(|d| d.lines.len()),
                    Screen::Home => None,
                };
                return match confirm.key(key, diff_len) {
                    Some(answer) => vec![Effect::Answer(answer)],
                    None => {
                        self.overlay = Some(Overlay::Confirm(confirm));
                        Vec::new()
                    }
                };
            }
            Some(Overlay::Help) => return Vec::new(),
            None => {}
        }
        if let Screen::Flow(view) = &mut self.screen
            && view.diff.is_some()
            && key != Key::Char('?')
        {
            view.diff_key(key);
            return Vec::new();
        }
        let typing = matches!(&self.screen, Screen::Flow(view) if view.output.typing());
        match key {
            Key::Char('?') if !typing => {
                self.overlay = Some(Overlay::Help);
                Vec::new()
            }
            Key::Char('q') if !typing => {
                if self.running() {
                    self.overlay = Some(Overlay::QuitPrompt { waiting: None });
                } else {
                    self.quit = Quit::WhenIdle;
                }
                Vec::new()
            }
            _ => {
                self.notice = None;
                self.screen_key(key)
            }
        }
    }

    fn screen_key(&mut self, key: Key) -> Vec<Effect> {
        let running = self.running();
        match &mut self.screen {
            Screen::Home => self.home_key(key),
            Screen::Flow(view) => {
                if key == Key::Esc && !running && !view.output.searching() && self.home.is_some() {
                    self.screen = Screen::Home;
                    return vec![Effect::RefreshHome];
                }
                let effects = view.key(key);
                if effects.iter().any(|c| matches!(c, Effect::Start(_))) {
                    self.screen = Screen::Flow(Box::new(FlowView::new(view.kind)));
                }
                effects
            }
        }
    }

    fn home_key(&mut self, key: Key) -> Vec<Effect> {
        let last = self.flows.len().saturating_sub(1);
        match key {
            Key::Up | Key::Char('k') => self.home_selected = self.home_selected.saturating_sub(1),
            Key::Down | Key::Char('j') => self.home_selected = (self.home_selected + 1).min(last),
            Key::Enter => {
                if let Some(&kind) = self.flows.get(self.home_selected) {
                    self.screen = Screen::Flow(Box::new(FlowView::new(kind)));
                    return vec![Effect::Start(kind)];
                }
            }
            _ => {}
        }
        Vec::new()
    }
}
