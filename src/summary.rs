//! What a flow found, as the summary event gives it after its steps: typed, so the front
//! ends match on it (the JSON contract flattens it into the summary, ARCHITECTURE.md
//! "Events"). Fields of every struct here, nested ones included, are in alphabetical order:
//! the order the JSON has always had them in.

use serde::Serialize;

use crate::nixlog::Moved;

/// The facts of one flow's run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum FlowDetails {
    Inspect(InspectDetails),
    Predestroy(PredestroyDetails),
    Recover(RecoverDetails),
    Verify(VerifyDetails),
}

/// What inspect found: each part once the step that finds it has run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InspectDetails {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layout: Option<LayoutReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tree: Option<Vec<TreeRow>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume: Option<VolumeSummary>,
}

/// The volume's identity card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumeSummary {
    /// The path found (often a by-id link), escaped.
    pub device: String,
    pub fs_size_bytes: u64,
    pub fs_type: String,
    /// Whether it was inspected where the system had it mounted.
    pub in_place: Option<bool>,
    /// Raw from the superblock: escaped when shown.
    pub label: String,
    pub mounted_at: Option<String>,
    pub needs_recovery: bool,
    pub resolved: String,
    pub size_bytes: u64,
    pub used_bytes: u64,
    pub uuid: String,
}

/// How one expected item stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Found,
    /// Expected and not there.
    Missing,
    /// There, but not as it should be (permissions, owner, type).
    Wrong,
    /// Optional and not there (written by `lifeboat predestroy`).
    Absent,
}

/// One item of the checklist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub detail: String,
    pub id: &'static str,
    /// Relative to the volume root, escaped for display.
    pub path: String,
    pub status: Status,
}

/// The whole checklist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayoutReport {
    pub checks: Vec<Check>,
    pub user: Option<String>,
    /// `config` or `volume` (recognised from a home holding `nix/store`).
    pub user_from: &'static str,
}

impl LayoutReport {
    /// The items that need the operator's attention.
    pub fn problems(&self) -> impl Iterator<Item = &Check> {
        self.checks
            .iter()
            .filter(|c| matches!(c.status, Status::Missing | Status::Wrong))
    }
}

/// A row of the size tree as the summary reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TreeRow {
    pub bytes: u64,
    pub files: u64,
    /// Relative to the volume root, escaped (`qwe/nix`).
    pub path: String,
}

/// predestroy's verdict.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PredestroyDetails {
    /// Each step that stands between this machine and "ready", with why.
    pub blockers: Vec<Blocker>,
    pub ready: bool,
    /// What dies with the root disk, group by group, once `root-disk-audit` has run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_disk: Option<Vec<RootDiskGroup>>,
}

/// One group of files on the root disk (a service's directory under `/var/lib`, `/root`, an
/// entry of `/etc`, …) and what becomes of it when the disk is destroyed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RootDiskGroup {
    /// Allocated bytes, each inode once (`du -sB1 -x`).
    pub bytes: u64,
    pub class: RootDiskClass,
    /// Inodes counted (`du --inodes -sx`).
    pub files: u64,
    /// What else the operator must know about it (whose passwords, why it is not carried).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The path as the machine sees it, such as `/var/lib/postgresql` (escaped).
    pub path: String,
}

/// What becomes of a group of files when the root disk is destroyed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RootDiskClass {
    /// Gone, and nothing says that is fine: it keeps predestroy from "ready".
    Lost,
    /// Listed in `[host].accept`.
    Accepted,
    /// Logs, caches and state that a fresh machine makes anew.
    Disposable,
    /// lifeboat copies it onto the volume and puts it back.
    Carried,
}

impl RootDiskClass {
    pub fn as_str(self) -> &'static str {
        match self {
            RootDiskClass::Lost => "lost",
            RootDiskClass::Accepted => "accepted",
            RootDiskClass::Disposable => "disposable",
            RootDiskClass::Carried => "carried",
        }
    }
}

/// A step that keeps predestroy from "ready".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Blocker {
    pub step: &'static str,
    pub why: String,
    /// Why it did no work, when the engine knows: what the front ends act on.
    #[serde(skip)]
    pub not_done: Option<NotDone>,
}

/// Why a step ended without doing its work, for a front end to act on (its message says
/// it in words). Not part of the JSON contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotDone {
    /// It waits for this step, which did not pass.
    Unmet(&'static str),
    /// The flow was interrupted before it: it did not run.
    NotRun,
    /// The operator did not agree to its change.
    Declined,
    /// Ctrl-C or SIGTERM cut it short, or came while its question was open.
    Interrupted,
}

/// What recover did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RecoverDetails {
    /// What the build took from where, once it ran.
    pub build: Option<BuildReport>,
    /// What `closure-on-volume` copied into the volume's store.
    pub copied_to_volume: Option<Moved>,
    /// The system this machine runs.
    pub current_system: Option<String>,
    /// The volume's system profile generation that is the new system.
    pub generation: Option<u32>,
    pub host: String,
    /// The system the volume's profile pointed at before: the old machine's.
    pub old_system: Option<String>,
    /// Whether a recovery card on the volume filled in the config.
    pub recovery_card: bool,
    /// The system built.
    pub system: Option<String>,
}

/// What a build took from where.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BuildReport {
    /// Derivations built here.
    pub built: u64,
    /// Store paths downloaded from a binary cache.
    pub downloaded: Moved,
    /// Store paths copied from the volume's store.
    pub from_volume: Moved,
}

/// What verify read besides its checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyDetails {
    /// Why the recovery card could not be used, or where card and config disagree.
    pub notes: Vec<String>,
    /// The recovery card read, escaped.
    pub recovery_card: Option<String>,
    pub user: Option<String>,
}
