//! The events a flow run produces (the `--json` contract of DESIGN.md) and the
//! actions a step describes before it runs.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Something a step will do to the machine, described exactly, before it does it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Action {
    Command {
        argv: Vec<String>,
    },
    Git {
        op: String,
        url: String,
        path: String,
    },
    Mount {
        device: String,
        target: String,
        options: Vec<String>,
    },
    Write {
        path: String,
    },
    Move {
        from: String,
        to: String,
    },
}

impl Action {
    /// One line for people: what `--dry-run` and the headless front end print.
    pub fn describe(&self) -> String {
        match self {
            Action::Command { argv } => format!("run {}", argv.join(" ")),
            Action::Git { op, url, path } => format!("git {op} {url} {path}"),
            Action::Mount {
                device,
                target,
                options,
            } => format!("mount -o {} {device} {target}", options.join(",")),
            Action::Write { path } => format!("write {path}"),
            Action::Move { from, to } => format!("move {from} to {to}"),
        }
    }
}

/// A step as the plan event lists it.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedStep {
    pub id: &'static str,
    pub title: &'static str,
    pub actions: Vec<Action>,
}

/// How a step stands, as events and the summary name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepStatus {
    Pending,
    Running,
    Passed,
    Warning,
    Failed,
    Skipped,
    Refused,
    NeedsConfirmation,
}

/// How a whole run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    Passed,
    Failed,
    Refused,
    Stopped,
    Interrupted,
}

impl RunStatus {
    /// The process exit code of DESIGN.md for this outcome.
    pub fn exit_code(self) -> i32 {
        match self {
            RunStatus::Passed => 0,
            RunStatus::Failed => 1,
            RunStatus::Refused => 3,
            RunStatus::Stopped => 4,
            RunStatus::Interrupted => 130,
        }
    }
}

/// Which output stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// What a progress count counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    Files,
    Bytes,
    Objects,
    Derivations,
}

/// One step's line in the summary.
#[derive(Debug, Clone, Serialize)]
pub struct StepSummary {
    pub id: &'static str,
    pub status: StepStatus,
    pub message: String,
    pub duration_ms: u64,
}

/// A file's changes as a unified diff (escaped lines), the committed version against the
/// new one: for a front end that can show more than lines (the TUI's diff view). Not part
/// of the JSON contract; the same lines are emitted as output too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDiff {
    /// The file, as shown to people.
    pub file: String,
    pub lines: Vec<String>,
}

/// One event of a run; `--json` prints each as one line.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum Event {
    Plan {
        flow: &'static str,
        dry_run: bool,
        steps: Vec<PlannedStep>,
    },
    Step {
        flow: &'static str,
        step: &'static str,
        status: StepStatus,
        message: String,
    },
    Output {
        flow: &'static str,
        step: &'static str,
        stream: Stream,
        line: String,
    },
    Progress {
        flow: &'static str,
        step: &'static str,
        done: u64,
        total: Option<u64>,
        unit: Unit,
    },
    Summary {
        flow: &'static str,
        status: RunStatus,
        dry_run: bool,
        duration_ms: u64,
        steps: Vec<StepSummary>,
        /// Flow-specific facts (`volume`, `layout`, `tree` for inspect).
        #[serde(flatten)]
        details: Map<String, Value>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_serialise_to_the_contract_shapes() {
        let plan = Event::Plan {
            flow: "inspect",
            dry_run: true,
            steps: vec![PlannedStep {
                id: "mount-readonly",
                title: "Mount read-only",
                actions: vec![Action::Mount {
                    device: "/dev/loop0".into(),
                    target: "/mnt/data".into(),
                    options: vec!["ro".into(), "nosuid".into()],
                }],
            }],
        };
        assert_eq!(
            serde_json::to_value(&plan).unwrap(),
            json!({"event":"plan","flow":"inspect","dry_run":true,"steps":[{"id":"mount-readonly",
              "title":"Mount read-only","actions":[{"kind":"mount","device":"/dev/loop0",
              "target":"/mnt/data","options":["ro","nosuid"]}]}]})
        );
        let step = Event::Step {
            flow: "inspect",
            step: "find-volume",
            status: StepStatus::NeedsConfirmation,
            message: String::new(),
        };
        assert_eq!(
            serde_json::to_value(&step).unwrap()["status"],
            json!("needs-confirmation")
        );
        let progress = Event::Progress {
            flow: "inspect",
            step: "measure",
            done: 5,
            total: None,
            unit: Unit::Files,
        };
        assert_eq!(
            serde_json::to_value(&progress).unwrap(),
            json!({"event":"progress","flow":"inspect","step":"measure","done":5,"total":null,"unit":"files"})
        );
    }

    #[test]
    fn summary_flattens_flow_details() {
        let mut details = Map::new();
        details.insert("volume".into(), json!({"fs_type":"ext4"}));
        let summary = Event::Summary {
            flow: "inspect",
            status: RunStatus::Refused,
            dry_run: false,
            duration_ms: 3,
            steps: vec![],
            details,
        };
        let value = serde_json::to_value(&summary).unwrap();
        assert_eq!(value["event"], "summary");
        assert_eq!(value["status"], "refused");
        assert_eq!(value["volume"]["fs_type"], "ext4");
    }

    #[test]
    fn exit_codes_follow_the_contract() {
        assert_eq!(RunStatus::Passed.exit_code(), 0);
        assert_eq!(RunStatus::Failed.exit_code(), 1);
        assert_eq!(RunStatus::Refused.exit_code(), 3);
        assert_eq!(RunStatus::Stopped.exit_code(), 4);
        assert_eq!(RunStatus::Interrupted.exit_code(), 130);
    }
}
