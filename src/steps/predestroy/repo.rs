//! `config-repo-committed`, `config-repo-pushed`, `config-mirror`: the NixOS config must be
//! in the remote (and, as a fallback, on the volume) before the root disk goes.

use std::fs;
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::escape::shown;
use crate::exec::atomic::{private_dir, write_atomic_owned};
use crate::exec::git::{self, Credentials, GitError, Relation, RepoStatus, TransferProgress};
use crate::flow::{Assent, Outcome};
use crate::report::{Action, Unit};
use crate::steps::context::{Change, StepContext, ask_before};
use crate::steps::credentials;
use crate::steps::no_space;

use super::settings::Settings;

const REMOTE: &str = "origin";

/// The plan's git actions for the repository.
pub fn plan_commit(cfg: &Config) -> Vec<Action> {
    vec![git_action("commit", cfg, &cfg.config_repo.path)]
}

pub fn plan_push(cfg: &Config) -> Vec<Action> {
    vec![git_action("push", cfg, &cfg.config_repo.path)]
}

pub fn plan_mirror(cfg: &Config, settings: Option<&Settings>) -> Vec<Action> {
    settings
        .map(|s| git_action("mirror", cfg, &s.home.join(credentials::MIRROR)))
        .into_iter()
        .collect()
}

fn git_action(op: &str, cfg: &Config, path: &Path) -> Action {
    Action::Git {
        op: op.into(),
        url: cfg
            .config_repo
            .url
            .as_deref()
            .map(git::redact_url)
            .unwrap_or_else(|| REMOTE.into()),
        path: shown(path),
    }
}

fn failed(e: &GitError) -> Outcome {
    match e {
        GitError::Cancelled => Outcome::Interrupted,
        other => Outcome::Failed(other.to_string()),
    }
}

/// The repository's state, on the configured branch.
fn status(cfg: &Config) -> Result<RepoStatus, Outcome> {
    let path = &cfg.config_repo.path;
    let status = git::status(path).map_err(|e| failed(&e))?;
    let branch = &cfg.config_repo.branch;
    match &status.branch {
        Some(on) if on == branch => Ok(status),
        on => Err(Outcome::Failed(format!(
            "{} is on {}, but [config_repo].branch is {branch}: switch to it (git -C {} switch \
             {branch}) or set the branch in lifeboat.toml",
            shown(path),
            on.as_deref().unwrap_or("a detached HEAD"),
            shown(path)
        ))),
    }
}

/// Untracked files not yet saved, byte for byte, under `<home>/.lifeboat/untracked/`.
fn unsaved(repo: &Path, untracked: &[PathBuf], settings: Option<&Settings>) -> Vec<PathBuf> {
    untracked
        .iter()
        .filter(|rel| {
            let saved = settings.map(|s| untracked_dir(s).join(rel));
            match (fs::read(repo.join(rel)), saved.map(fs::read)) {
                (Ok(now), Some(Ok(copy))) => now != copy,
                _ => true,
            }
        })
        .cloned()
        .collect()
}

fn untracked_dir(settings: &Settings) -> PathBuf {
    settings.lifeboat_dir().join("untracked")
}

fn list(paths: impl Iterator<Item = String>) -> String {
    paths.collect::<Vec<_>>().join(", ")
}

/// `config-repo-committed`.
pub fn committed(
    cfg: &Config,
    settings: Option<&Settings>,
    confirmed: bool,
    ctx: &StepContext,
) -> Outcome {
    let repo = &cfg.config_repo.path;
    let st = match status(cfg) {
        Ok(st) => st,
        Err(outcome) => return outcome,
    };
    let unsaved = unsaved(repo, &st.untracked, settings);
    if st.changed.is_empty() && unsaved.is_empty() {
        let note = if st.untracked.is_empty() {
            String::new()
        } else {
            format!(
                "; {} untracked file(s) are saved on the volume",
                st.untracked.len()
            )
        };
        return Outcome::Passed(format!("{} is clean{note}", shown(repo)));
    }
    let mut plan = Vec::new();
    if !st.changed.is_empty() {
        let diff = git::diff_summary(repo).map_err(|e| failed(&e));
        let summary = match diff {
            Ok(d) => format!(
                "{} file(s), +{} -{}: {}",
                d.files.len(),
                d.insertions,
                d.deletions,
                list(d.files.iter().map(|f| shown(&f.path)))
            ),
            Err(outcome) => return outcome,
        };
        plan.push(format!("commit the changes to tracked files ({summary})"));
    }
    if !unsaved.is_empty() {
        let Some(settings) = settings else {
            return Outcome::Failed(format!(
                "untracked files would be lost with the root disk ({}), and they cannot be \
                 saved on the volume because user and volume are not configured",
                list(unsaved.iter().map(|p| shown(p)))
            ));
        };
        plan.push(format!(
            "copy the untracked files {} to {} (private; not committed, as they may be secrets)",
            list(unsaved.iter().map(|p| shown(p))),
            shown(&untracked_dir(settings))
        ));
    }
    if let Some(outcome) = ask_before(
        ctx,
        confirmed,
        &Change::new(plan.join("; and "), Assent::Key),
    ) {
        return outcome;
    }
    let mut done = Vec::new();
    if !st.changed.is_empty() {
        let message = "Save uncommitted changes before destroying this machine\n\nCommitted by lifeboat predestroy.";
        match git::commit_all_tracked(repo, message) {
            Ok(commit) => done.push(format!("committed {}", &commit[..commit.len().min(12)])),
            Err(e) => return failed(&e),
        }
    }
    if let Some(settings) = settings.filter(|_| !unsaved.is_empty()) {
        if let Err(why) = save_untracked(repo, &unsaved, settings) {
            return Outcome::Failed(why);
        }
        ctx.output(format!(
            "saved {} untracked file(s) in {}",
            unsaved.len(),
            shown(&untracked_dir(settings))
        ));
        done.push(format!(
            "saved {} untracked file(s) on the volume",
            unsaved.len()
        ));
    }
    Outcome::Passed(done.join("; "))
}

/// Copy each untracked file to the private directory on the volume, owned by the user.
fn save_untracked(repo: &Path, files: &[PathBuf], settings: &Settings) -> Result<(), String> {
    let root = untracked_dir(settings);
    for rel in files {
        let target = root.join(rel);
        let parent = target.parent().unwrap_or(&root);
        let mount = &settings.volume.mount;
        private_dir(parent, settings.owner())
            .map_err(|e| no_space::write_failed(parent, mount, &e))?;
        let bytes = fs::read(repo.join(rel))
            .map_err(|e| format!("cannot read {}: {e}", shown(&repo.join(rel))))?;
        write_atomic_owned(&target, &bytes, 0o600, settings.owner())
            .map_err(|e| no_space::write_failed(&target, mount, &e))?;
    }
    Ok(())
}

/// Transfer progress as progress events (objects).
fn progress_to<'a>(ctx: &'a StepContext<'a>) -> impl FnMut(TransferProgress) + 'a {
    move |p: TransferProgress| ctx.progress(p.done as u64, Some(p.total as u64), Unit::Objects)
}

/// `config-repo-pushed`.
pub fn pushed(cfg: &Config, creds: &Credentials, confirmed: bool, ctx: &StepContext) -> Outcome {
    let repo = &cfg.config_repo.path;
    let branch = &cfg.config_repo.branch;
    if !ctx.dry_run && !confirmed {
        let mut progress = progress_to(ctx);
        if let Err(e) = git::fetch(repo, REMOTE, branch, creds, &mut progress, ctx.cancel) {
            return failed(&e);
        }
    }
    let relation = match git::ahead_behind(repo, branch) {
        Ok(relation) => relation,
        Err(e) => return failed(&e),
    };
    let remote_branch = format!("{REMOTE}/{branch}");
    let to_push = match relation {
        Relation::Equal => {
            return Outcome::Passed(format!("{branch} equals {remote_branch}"));
        }
        Relation::Behind(n) => {
            return Outcome::Failed(format!(
                "{branch} is {n} commit(s) behind {remote_branch}: the remote has changes this \
                 machine does not. Bring them in (git -C {} pull --ff-only), check that the \
                 result still builds, and run predestroy again.",
                shown(repo)
            ));
        }
        Relation::Diverged { ahead, behind } => {
            return Outcome::Failed(format!(
                "{branch} and {remote_branch} have diverged ({ahead} local and {behind} remote \
                 commits of their own): merge or rebase by hand, then run predestroy again. \
                 lifeboat never forces a push."
            ));
        }
        Relation::Ahead(n) => format!("push {n} commit(s) of {branch} to {REMOTE}"),
        Relation::NoUpstream => format!("push {branch} to {REMOTE} (it has no upstream yet)"),
    };
    if let Some(outcome) = ask_before(ctx, confirmed, &Change::new(&to_push, Assent::Key)) {
        return outcome;
    }
    let mut progress = progress_to(ctx);
    if let Err(e) = git::push(repo, REMOTE, branch, creds, &mut progress, ctx.cancel) {
        return failed(&e);
    }
    match git::ahead_behind(repo, branch) {
        Ok(Relation::Equal) => Outcome::Passed(format!("pushed: {branch} equals {remote_branch}")),
        Ok(other) => Outcome::Failed(format!(
            "pushed, but {branch} and {remote_branch} still differ ({other:?})"
        )),
        Err(e) => failed(&e),
    }
}

/// `config-mirror`.
/// The mirror stays root's, like the repository it copies: git refuses to open a repository
/// another user owns, and recover, which clones from it, runs as root.
pub fn mirror(cfg: &Config, settings: &Settings, confirmed: bool, ctx: &StepContext) -> Outcome {
    let dir = settings.home.join(credentials::MIRROR);
    let change = format!(
        "update the bare mirror {} with every branch and tag of {}",
        shown(&dir),
        shown(&cfg.config_repo.path)
    );
    if let Some(outcome) = ask_before(ctx, confirmed, &Change::new(&change, Assent::Key)) {
        return outcome;
    }
    match git::mirror_to(&cfg.config_repo.path, &dir) {
        Ok(m) => Outcome::Passed(format!(
            "{} holds {} branch(es) and {} tag(s), updated {}",
            shown(&m.dir),
            m.branches,
            m.tags,
            m.updated_at
        )),
        Err(e) if no_space::says_full(&e.to_string()) => Outcome::Failed(format!(
            "cannot update the mirror: {e}. {} The mirror keeps the branches it had: git \
             moves a branch only after its objects are written.",
            no_space::volume_full(&settings.volume.mount)
        )),
        Err(e) => failed(&e),
    }
}

/// The commit HEAD is on, for the recovery card.
pub fn head(cfg: &Config) -> Option<String> {
    git::status(&cfg.config_repo.path).ok()?.head
}

/// The remote's URL, redacted, for the recovery card.
pub fn remote_url(cfg: &Config) -> Option<String> {
    clone_url(cfg).map(|u| git::redact_url(&u))
}

/// The URL recover will clone: the config's, else the repository's remote.
pub fn clone_url(cfg: &Config) -> Option<String> {
    match &cfg.config_repo.url {
        Some(url) => Some(url.clone()),
        None => git::remote_url(&cfg.config_repo.path, REMOTE)
            .ok()
            .flatten(),
    }
}
