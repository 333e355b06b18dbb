//! `clone-config`: put the NixOS config repository at `[config_repo].path`. A clone of the
//! same remote is fast-forwarded; anything else there is moved aside to a dated sibling,
//! never deleted. When the remote cannot be reached, the mirror `predestroy` keeps on the
//! volume stands in (after the operator agreed), and `origin` is pointed back at the remote.

use std::path::{Path, PathBuf};

use nix::errno::Errno;

use crate::card::CardRehearsal;
use crate::escape::{escape_bytes, shown};
use crate::exec::git::{self, Credentials, GitError, HostKey, Relation, TransferProgress};
use crate::flow::{Assent, Outcome, Question};
use crate::report::{Action, Unit};
use crate::steps::context::{Change, StepContext};

const REMOTE: &str = "origin";

/// What the step will do with the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    Clone,
    FastForward,
    MoveAsideAndClone { aside: PathBuf },
}

/// A question the step is waiting on, remembered until the confirmed run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pending {
    /// The plan itself.
    Plan(Plan),
    /// Trust this host key and try again.
    HostKey {
        host: String,
        key_type: String,
        fingerprint: String,
    },
    /// Clone from the mirror on the volume instead of the unreachable remote.
    Mirror(PathBuf),
}

impl Pending {
    /// How much agreeing takes: the hostname typed out when it moves the path aside
    /// (trusting a host key goes on with the plan as it stands then).
    pub fn assent(&self, target: &Target) -> Assent {
        let moves_aside = match self {
            Pending::Plan(planned) => matches!(planned, Plan::MoveAsideAndClone { .. }),
            Pending::HostKey { .. } => matches!(plan(target), Plan::MoveAsideAndClone { .. }),
            Pending::Mirror(_) => false,
        };
        if moves_aside {
            Assent::TypedHostname
        } else {
            Assent::Key
        }
    }
}

/// Where the repository goes and where from.
pub struct Target<'a> {
    pub path: &'a Path,
    pub url: &'a str,
    pub branch: &'a str,
    /// `<volume>/<user>/nixos-config-backup.git`, when the volume is mounted.
    pub mirror: Option<PathBuf>,
    /// Where the volume is mounted for inspection, so that advice can name its files.
    pub volume_root: Option<&'a Path>,
}

/// Decide what to do with the path.
pub fn plan(target: &Target) -> Plan {
    if !target.path.exists() {
        return Plan::Clone;
    }
    let same = git::remote_url(target.path, REMOTE)
        .ok()
        .flatten()
        .is_some_and(|url| git::same_remote(&url, target.url));
    if same {
        return Plan::FastForward;
    }
    Plan::MoveAsideAndClone {
        aside: crate::exec::atomic::aside_path(target.path),
    }
}

/// The plan's actions.
pub fn actions(target: &Target, plan: &Plan) -> Vec<Action> {
    let git = |op: &str| Action::Git {
        op: op.into(),
        url: git::redact_url(target.url),
        path: shown(target.path),
    };
    match plan {
        Plan::Clone => vec![git("clone")],
        Plan::FastForward => vec![git("fast-forward")],
        Plan::MoveAsideAndClone { aside } => vec![
            Action::Move {
                from: shown(target.path),
                to: shown(aside),
            },
            git("clone"),
        ],
    }
}

/// What the plan does, as the operator is asked about it.
pub fn change(target: &Target, plan: &Plan) -> String {
    let url = git::redact_url(target.url);
    match plan {
        Plan::Clone => format!(
            "clone {url} ({}) into {}",
            target.branch,
            shown(target.path)
        ),
        Plan::FastForward => format!(
            "fast-forward {} (a clone of {url}) to the remote's {}",
            shown(target.path),
            target.branch
        ),
        Plan::MoveAsideAndClone { aside } => format!(
            "move {} aside to {} (nothing is deleted) and clone {url} ({}) there",
            shown(target.path),
            shown(aside),
            target.branch
        ),
    }
}

/// The step's first question and what it waits on. An SSH server is met before anything is
/// asked (listing its refs changes nothing), so that an unknown host key is asked about with
/// its fingerprint together with the plan, even by a run that stops at that question, and a
/// changed one fails the step at once. Every other error is left to [`run`], which knows
/// what to do with it (the mirror for an unreachable remote).
pub fn first_question(
    target: &Target,
    creds: &Credentials,
) -> Result<(Pending, Question), Outcome> {
    let plan = plan(target);
    writable(target, &plan)?;
    let planned = change(target, &plan);
    let pending = match git::ls_remote_reachable(target.url, creds) {
        Err(e @ GitError::HostKeyChanged { .. }) => return Err(refused_changed_key(&e, target)),
        Err(GitError::HostKeyUnknown { host, key, .. }) => trust(host, &key),
        _ => Pending::Plan(plan),
    };
    let mut asked = follow_up(target, &pending);
    // Trusting the key goes on with the plan: one question for both.
    if let Pending::HostKey { .. } = pending {
        asked = asked.followed_by(&planned);
    }
    Ok((pending, asked.question()))
}

/// The directory the plan writes in: the clone itself for a fast-forward; otherwise the
/// nearest existing directory above the path, where the clone (or the copy moved aside) goes.
fn written_dir<'a>(target: &'a Target, plan: &Plan) -> &'a Path {
    match plan {
        Plan::FastForward => target.path,
        Plan::Clone | Plan::MoveAsideAndClone { .. } => target
            .path
            .ancestors()
            .skip(1)
            .find(|dir| dir.is_dir())
            .unwrap_or(Path::new("/")),
    }
}

/// Refuse a plan whose directory cannot be written, before anything is moved: a read-only
/// `/etc` (NixOS with `system.etc.overlay.mutable = false`) would otherwise fail halfway.
fn writable(target: &Target, plan: &Plan) -> Result<(), Outcome> {
    let dir = written_dir(target, plan);
    let why = match nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK) {
        Ok(()) => return Ok(()),
        Err(Errno::EROFS) => "is on a read-only filesystem (EROFS)".to_string(),
        Err(errno) => format!("cannot be written ({}: {})", errno, errno.desc()),
    };
    Err(Outcome::Failed(format!(
        "{} {why}, so the config cannot be put at {}; nothing was moved or cloned. Make it \
         writable (`mount -o remount,rw` the filesystem holding it; on NixOS, \
         system.etc.overlay.mutable = false makes /etc read-only), or set [config_repo].path \
         in lifeboat.toml to a writable place, then run recover again",
        shown(dir),
        shown(target.path)
    )))
}

/// The question whether to trust `key`, the host key `host` presented.
fn trust(host: String, key: &HostKey) -> Pending {
    Pending::HostKey {
        host,
        key_type: key.key_type(),
        fingerprint: key.fingerprint(),
    }
}

/// Carry out what the operator agreed to. Returns the outcome, or a further question.
pub fn run(
    target: &Target,
    pending: Pending,
    creds: &mut Credentials,
    ctx: &StepContext,
) -> Result<Outcome, Pending> {
    let mut progress =
        |p: TransferProgress| ctx.progress(p.done as u64, Some(p.total as u64), Unit::Objects);
    if let Pending::Plan(plan) = &pending
        && let Err(outcome) = writable(target, plan)
    {
        return Ok(outcome);
    }
    let result = match &pending {
        Pending::HostKey { fingerprint, .. } => {
            creds.accepted_host_key = Some(fingerprint.clone());
            return run(target, Pending::Plan(plan(target)), creds, ctx);
        }
        Pending::Mirror(mirror) => {
            let url = mirror.to_string_lossy().into_owned();
            clone_into(target, &url, creds, &mut progress, ctx).and_then(|commit| {
                git::set_remote_url(target.path, REMOTE, target.url)?;
                Ok(format!(
                    "cloned {commit} from the mirror {} (the remote could not be reached); \
                     origin points at {} again",
                    shown(mirror),
                    git::redact_url(target.url)
                ))
            })
        }
        Pending::Plan(Plan::FastForward) => update(target, creds, &mut progress, ctx),
        Pending::Plan(Plan::Clone) => clone_into(target, target.url, creds, &mut progress, ctx)
            .map(|commit| format!("cloned {commit} into {}", shown(target.path))),
        Pending::Plan(Plan::MoveAsideAndClone { aside }) => {
            if let Err(e) = std::fs::rename(target.path, aside) {
                return Ok(Outcome::Failed(format!(
                    "cannot move {} aside to {}: {e}",
                    shown(target.path),
                    shown(aside)
                )));
            }
            ctx.output(format!("moved {} to {}", shown(target.path), shown(aside)));
            clone_into(target, target.url, creds, &mut progress, ctx)
                .map(|commit| format!("cloned {commit} into {}", shown(target.path)))
        }
    };
    match result {
        Ok(message) => Ok(Outcome::Passed(message)),
        Err(GitError::HostKeyUnknown { host, key, .. }) => Err(trust(host, &key)),
        Err(GitError::Unreachable { cause, .. }) => match &target.mirror {
            Some(mirror) if mirror.is_dir() && !matches!(pending, Pending::Mirror(_)) => {
                ctx.output(format!("the remote cannot be reached: {cause}"));
                Err(Pending::Mirror(mirror.clone()))
            }
            _ => Ok(Outcome::Failed(format!(
                "cannot reach {}: {cause}; and there is no mirror on the volume to clone from",
                git::redact_url(target.url)
            ))),
        },
        Err(GitError::Cancelled) => Ok(Outcome::Interrupted),
        Err(e @ GitError::HostKeyChanged { .. }) => Ok(refused_changed_key(&e, target)),
        Err(e) => Ok(Outcome::Failed(e.to_string())),
    }
}

/// A passing clone, said against what predestroy rehearsed: the same commit is named as
/// rehearsed; another one is a warning, since what changed since was never evaluated on the
/// old machine.
pub fn against_rehearsal(
    repo: &Path,
    rehearsal: Option<&CardRehearsal>,
    outcome: Outcome,
) -> Outcome {
    let (Outcome::Passed(message), Some(rehearsal)) = (&outcome, rehearsal) else {
        return outcome;
    };
    let Some(head) = git::status(repo).ok().and_then(|status| status.head) else {
        return outcome;
    };
    let rehearsed = escape_bytes(rehearsal.commit.as_bytes());
    let short = |commit: &str| commit.chars().take(12).collect::<String>();
    if head == rehearsal.commit {
        return Outcome::Passed(format!("{message}; predestroy rehearsed this commit"));
    }
    Outcome::Warning(format!(
        "{message}; predestroy rehearsed {}, not {}: what changed since was never evaluated on \
         the old machine (boot-safety checks it here)",
        short(&rehearsed),
        short(&head)
    ))
}

/// A changed host key fails the step. When the key it disagrees with is pinned in the
/// volume's known_hosts, the advice names that file as it lies on the volume: the
/// inspection mount it was read from is read-only and gone once the run ends.
fn refused_changed_key(error: &GitError, target: &Target) -> Outcome {
    let mut message = error.to_string();
    if let GitError::HostKeyChanged { file, .. } = error
        && let Some(on_volume) = target
            .volume_root
            .and_then(|root| file.strip_prefix(root).ok())
    {
        message.push_str(&format!(
            "; that file is {} on the volume, which this run mounts read-only and never \
             changes: mount the volume read-write (at /mnt, say), run the command with \
             -f /mnt/{}, unmount it and run lifeboat recover again",
            shown(on_volume),
            shown(on_volume)
        ));
    }
    Outcome::Failed(message)
}

/// The question for a pending follow-up.
pub fn follow_up_question(target: &Target, pending: &Pending) -> Question {
    follow_up(target, pending).question()
}

/// What a pending step asks about.
fn follow_up(target: &Target, pending: &Pending) -> Change {
    let assent = pending.assent(target);
    match pending {
        Pending::HostKey {
            host,
            key_type,
            fingerprint,
        } => Change::new("trust it", assent).because(format!(
            "the SSH host key of {host} is not known: {key_type} {fingerprint}. Compare it with \
             the fingerprint your git host publishes"
        )),
        Pending::Mirror(mirror) => {
            let age = git::mirror_updated_at(mirror)
                .ok()
                .flatten()
                .map(|t| {
                    let hours = jiff::Timestamp::now().duration_since(t).as_hours();
                    format!("updated {t}, {hours} hour(s) ago")
                })
                .unwrap_or_else(|| "of unknown age".into());
            Change::new(
                format!(
                    "clone from the mirror on the volume {} instead ({age})",
                    shown(mirror)
                ),
                assent,
            )
            .then("Commits pushed after that are not in it.")
        }
        Pending::Plan(plan) => Change::new(change(target, plan), assent),
    }
}

/// Bring an existing clone of the remote up to date. One already at the remote's head is
/// left as it is, with the changes an earlier run made (the staged hardware config).
fn update(
    target: &Target,
    creds: &Credentials,
    progress: &mut dyn FnMut(TransferProgress),
    ctx: &StepContext,
) -> Result<String, GitError> {
    git::fetch(
        target.path,
        REMOTE,
        target.branch,
        creds,
        progress,
        ctx.cancel,
    )?;
    if git::ahead_behind(target.path, target.branch)? == Relation::Equal {
        return Ok(format!(
            "{} is a clone of the remote, already at its {}",
            shown(target.path),
            target.branch
        ));
    }
    let before = git::fast_forward(
        target.path,
        REMOTE,
        target.branch,
        creds,
        progress,
        ctx.cancel,
    )?;
    Ok(format!(
        "{} is a clone of the remote; it was {before:?} against it and is now at its {}",
        shown(target.path),
        target.branch
    ))
}

fn clone_into(
    target: &Target,
    url: &str,
    creds: &Credentials,
    progress: &mut dyn FnMut(TransferProgress),
    ctx: &StepContext,
) -> Result<String, GitError> {
    git::clone(url, target.branch, target.path, creds, progress, ctx.cancel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clone_of_another_commit_than_the_rehearsed_one_is_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path();
        let git = |args: &str| {
            let out = std::process::Command::new("sh")
                .arg("-ec")
                .arg(format!(
                    "cd {} && git -c user.name=T -c user.email=t@e {args}",
                    repo.display()
                ))
                .output()
                .unwrap();
            assert!(out.status.success(), "git {args}");
            String::from_utf8(out.stdout).unwrap().trim().to_string()
        };
        git("init -q -b main");
        git("commit -q --allow-empty -m one");
        let head = git("rev-parse HEAD");
        let cloned = || Outcome::Passed("cloned".into());
        let rehearsal = |commit: &str| CardRehearsal {
            commit: commit.into(),
            host: "devserver".into(),
            drv_path: "/nix/store/x-nixos-system-devserver-25.11.drv".into(),
        };
        assert_eq!(against_rehearsal(repo, None, cloned()), cloned());
        assert_eq!(
            against_rehearsal(repo, Some(&rehearsal(&head)), cloned()),
            Outcome::Passed("cloned; predestroy rehearsed this commit".into())
        );
        let other = "0123456789abcdef0123456789abcdef01234567";
        let Outcome::Warning(warning) = against_rehearsal(repo, Some(&rehearsal(other)), cloned())
        else {
            panic!("another commit than the rehearsed one passed");
        };
        assert!(
            warning.contains(&format!("rehearsed 0123456789ab, not {}", &head[..12])),
            "{warning}"
        );
        // A failed clone stays what it was.
        let failed = Outcome::Failed("unreachable".into());
        assert_eq!(
            against_rehearsal(repo, Some(&rehearsal(other)), failed.clone()),
            failed
        );
    }

    #[test]
    fn only_what_moves_the_path_aside_wants_the_hostname() {
        let dir = tempfile::tempdir().unwrap();
        let target = Target {
            path: dir.path(),
            url: "/nowhere.git",
            branch: "main",
            mirror: None,
            volume_root: None,
        };
        let key = Pending::HostKey {
            host: "git.example".into(),
            key_type: "ssh-ed25519".into(),
            fingerprint: "SHA256:x".into(),
        };
        assert_eq!(key.assent(&target), Assent::TypedHostname);
        assert_eq!(
            Pending::Plan(plan(&target)).assent(&target),
            Assent::TypedHostname
        );
        assert_eq!(
            Pending::Mirror(dir.path().join("m.git")).assent(&target),
            Assent::Key
        );
        let absent = dir.path().join("absent");
        let fresh = Target {
            path: &absent,
            ..target
        };
        assert_eq!(key.assent(&fresh), Assent::Key);
        assert_eq!(Pending::Plan(Plan::FastForward).assent(&fresh), Assent::Key);
    }
}
