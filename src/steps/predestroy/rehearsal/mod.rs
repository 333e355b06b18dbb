//! predestroy's `rehearsal`: what recover will do, done now while the old machine still
//! runs and every mistake is cheap. The pushed commit of the branch recover clones is cloned
//! fresh (the same credentials and host-key checks) into `[state].dir/rehearsal`, removed
//! afterwards and by the next run after a kill. Then, in that clone and nowhere else:
//! `flake.lock`'s inputs are checked (`inputs.rs`), this machine's hardware configuration
//! is generated and staged as recover generates the new machine's, the host's whole system
//! is evaluated in one `nix eval` with boot-safety's facts, which are judged as recover
//! judges them, and the nixpkgs it pins is compared with the running system's
//! (`nixpkgs.rs`). The checkout in `[config_repo].path` is only read.

mod explain;
mod inputs;
mod nixpkgs;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use serde_json::Value;

use crate::card::CardRehearsal;
use crate::config::Config;
use crate::escape::shown;
use crate::exec::git::{self, Credentials};
use crate::exec::host::CURRENT_SYSTEM;
use crate::exec::probe::{self, Contents, DeviceProbe};
use crate::flow::Outcome;
use crate::report::Action;
use crate::steps::context::StepContext;
use crate::steps::recover::blocker;
use crate::steps::recover::boot_safety::{self, Attached, Depth, Verdict};
use crate::steps::recover::hardware;
use crate::steps::recover::network::authorized_keys;
use crate::steps::recover::secrets::CarriedKey;

use super::settings::Settings;

/// The rehearsal's clone, lifeboat's own scratch space.
fn clone_dir(cfg: &Config) -> PathBuf {
    cfg.state.dir.join("rehearsal")
}

/// `cfg` with the clone in place of the checkout: what recover's code reads and evaluates.
fn in_clone(cfg: &Config) -> Config {
    let mut clone = cfg.clone();
    clone.config_repo.path = clone_dir(cfg);
    clone
}

/// What the rehearsal runs, for the plan and `--dry-run`.
pub fn actions(cfg: &Config, url: &str) -> Vec<Action> {
    let clone = in_clone(cfg);
    vec![
        Action::Git {
            op: "clone".into(),
            url: git::redact_url(url),
            path: shown(&clone.config_repo.path),
        },
        hardware::command(cfg).describe(),
        boot_safety::eval_command(&clone, &cfg.config_repo.host(), Depth::WholeSystem).describe(),
    ]
}

/// Clone the pushed branch, rehearse the recovery in the clone, remove the clone. The
/// outcome, and on success what to record on the card.
pub fn run(
    cfg: &Config,
    settings: &Settings,
    url: &str,
    creds: &Credentials,
    ctx: &StepContext,
) -> (Outcome, Option<CardRehearsal>) {
    let dir = clone_dir(cfg);
    // A killed run's clone: lifeboat's own, made to be thrown away.
    if let Err(e) = remove(&dir) {
        let why = format!("cannot remove the earlier rehearsal {}: {e}", shown(&dir));
        return (Outcome::Failed(why), None);
    }
    let branch = &cfg.config_repo.branch;
    let cloned = git::clone(url, branch, &dir, creds, &mut |_| {}, ctx.cancel);
    let (outcome, rehearsed) = match cloned {
        Ok(commit) => match rehearse(cfg, settings, &commit, ctx) {
            Ok((outcome, rehearsed)) => (outcome, Some(rehearsed)),
            Err(outcome) => (outcome, None),
        },
        Err(_) if cancelled(ctx) => (Outcome::Interrupted, None),
        Err(e) => (
            Outcome::Failed(format!(
                "the pushed branch {branch} could not be cloned as recover will clone it: {e}. \
                 Recovery must not depend on the mirror on the volume: make the remote \
                 reachable with the key recover will use"
            )),
            None,
        ),
    };
    // Left behind, the clone is removed by the next rehearsal; a pass says so, a blocker
    // stays one.
    let Err(e) = remove(&dir) else {
        return (outcome, rehearsed);
    };
    let left = format!("the clone {} could not be removed ({e})", shown(&dir));
    match outcome {
        Outcome::Passed(message) => (Outcome::Warning(format!("{message}; {left}")), rehearsed),
        other => {
            ctx.output(left);
            (other, rehearsed)
        }
    }
}

fn cancelled(ctx: &StepContext) -> bool {
    ctx.cancel.load(Ordering::Relaxed)
}

/// Remove `dir` when it is there.
fn remove(dir: &Path) -> std::io::Result<()> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Rehearse the recovery of `commit`, cloned: the verdict with what the card records, or
/// the blocker. Messages name files by their place in the checkout, where they are fixed.
fn rehearse(
    cfg: &Config,
    settings: &Settings,
    commit: &str,
    ctx: &StepContext,
) -> Result<(Outcome, CardRehearsal), Outcome> {
    let clone = in_clone(cfg);
    let dir = &clone.config_repo.path;
    let in_checkout = |text: String| {
        text.replace(
            &dir.display().to_string(),
            &cfg.config_repo.path.display().to_string(),
        )
    };
    let short = &commit[..commit.len().min(12)];
    let host = cfg.config_repo.host();
    let lock = read_lock(dir, short)?;
    let mut warnings = inputs::check(cfg, lock.as_ref(), short).map_err(Outcome::Failed)?;
    let volume = &settings.volume;
    let probed = probe::probe_device(&volume.device).map_err(|e| {
        Outcome::Failed(format!(
            "the volume's device cannot be read to rehearse with it: {e}"
        ))
    })?;
    stage_hardware(&clone, &probed, ctx).map_err(|outcome| match outcome {
        Outcome::Failed(why) => Outcome::Failed(in_checkout(why)),
        other => other,
    })?;
    let facts = match boot_safety::evaluate(&clone, &host, Depth::WholeSystem, ctx) {
        Ok(facts) => facts,
        Err(_) if cancelled(ctx) => return Err(Outcome::Interrupted),
        Err(failure) => {
            return Err(Outcome::Failed(explain::eval_failure(
                cfg, &host, short, &failure,
            )));
        }
    };
    let owner_uid = fs::symlink_metadata(&settings.home).ok().map(|m| m.uid());
    let attached = Attached {
        path: &volume.device,
        dev: probed.dev,
        owner_uid,
        volume_keys: authorized_keys(&settings.home),
        carried_keys: CarriedKey::to_be_saved(cfg),
        // The configuration runs here now: its addresses are this machine's.
        old_server: Vec::new(),
    };
    let verdict = boot_safety::judge(&clone, &host, &facts, &attached);
    warnings
        .extend(boot_warnings(verdict, short).map_err(|why| Outcome::Failed(in_checkout(why)))?);
    let proved = proof(cfg, &host, short, settings, owner_uid);
    if let Some(lock) = &lock
        && let Ok(version) = fs::read_to_string(Path::new(CURRENT_SYSTEM).join("nixos-version"))
        && let Some(warning) = nixpkgs::compare(lock, &version)
    {
        warnings.push(warning);
    }
    let rehearsed = CardRehearsal {
        commit: commit.to_string(),
        host,
        drv_path: facts.system().unwrap_or_default().to_string(),
    };
    let outcome = if warnings.is_empty() {
        Outcome::Passed(proved)
    } else {
        Outcome::Warning(in_checkout(format!(
            "{proved}; but: {}",
            warnings.join("; ")
        )))
    };
    Ok((outcome, rehearsed))
}

/// Generate this machine's hardware configuration into the clone and stage it, as recover
/// does on the new machine (`volume`'s own mounts left out).
fn stage_hardware(clone: &Config, volume: &DeviceProbe, ctx: &StepContext) -> Result<(), Outcome> {
    let uuid = match &volume.contents {
        Contents::Filesystem(fs) => Some(fs.uuid.as_str()),
        _ => None,
    };
    let generated = hardware::generate(clone, uuid, ctx).map_err(|outcome| match outcome {
        _ if cancelled(ctx) => Outcome::Interrupted,
        Outcome::Failed(why) => Outcome::Failed(format!(
            "this machine's hardware configuration, generated as recover will generate the \
             new machine's: {why}"
        )),
        other => other,
    })?;
    hardware::write(&clone.config_repo.path, &generated)
        .map(|_| ())
        .map_err(Outcome::Failed)
}

/// boot-safety's verdict on the clone: what deserves a look, or the blocker. The edits
/// recover offers on the new machine (a moved device, another server's addresses) only
/// need saying here.
fn boot_warnings(verdict: Verdict, short: &str) -> Result<Vec<String>, String> {
    match verdict {
        Verdict::Safe(_, warnings) => Ok(warnings),
        Verdict::Blocked(blockers) => Err(format!(
            "the pushed commit {short}, recovered: {}",
            blocker::describe(&blockers)
        )),
        Verdict::EvalFailed(why) => Err(why),
        Verdict::DeviceMoved(rewrite) => Ok(vec![format!(
            "it mounts {} from {}, which is not on this machine: recover will offer to \
             rewrite it in {}",
            rewrite.mount,
            rewrite.old,
            shown(&rewrite.file)
        )]),
        Verdict::Renumber(renumber) => Ok(vec![renumber.problems.join("; ")]),
    }
}

/// The pushed `flake.lock`, when the commit has one.
fn read_lock(dir: &Path, short: &str) -> Result<Option<Value>, Outcome> {
    let Ok(bytes) = fs::read(dir.join("flake.lock")) else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|_| {
        Outcome::Failed(format!(
            "the pushed commit {short}'s flake.lock is not JSON: nix flake lock, commit, push"
        ))
    })
}

/// What a passing rehearsal proved, in one line.
fn proof(
    cfg: &Config,
    host: &str,
    short: &str,
    settings: &Settings,
    owner_uid: Option<u32>,
) -> String {
    let store = match cfg.store_place() {
        Some(crate::config::StorePlace::Bind { .. }) => " in stage 1 for the /nix bind",
        _ => "",
    };
    let uid = owner_uid.map_or(String::new(), |uid| {
        format!(", gives {} uid {uid}", settings.user)
    });
    format!(
        "the pushed commit {short} evaluates, with this machine's hardware configuration, to a \
         system ({host}) that mounts the volume{store}{uid} and can be logged into over SSH"
    )
}
