//! `build`, `closure-on-volume` and `boot`: nixos-rebuild of the flake's host and `nix copy`
//! from and into the volume's store, their output followed live: progress from Nix's JSON log, plain
//! lines passed through, what came from where counted, known failures explained.
//!
//! recover never runs `nixos-rebuild switch`: switch-to-configuration mounts every new
//! `fileSystems` entry at once, and on a fresh VPS that binds the volume's store over `/nix`
//! mid-switch, hiding the system it has just built (ARCHITECTURE.md, "Facts about the
//! tools"). `boot` activates nothing.

use std::collections::VecDeque;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::rc::Rc;

use crate::config::{Config, VolumeConfig};
use crate::escape::{escape_bytes, escape_text, shown};
use crate::exec::process::{self, CommandSpec, Finished, Line, ProcessError};
use crate::flow::Outcome;
use crate::nixlog::{self, Item, NixLog, Transfers};
use crate::report::{Action, Stream, Unit};
use crate::steps::context::{StepContext, each_line};
use crate::steps::no_space;

use crate::steps::volume_store::VolumeStore;

use super::closure::Closure;

/// Both flakes features, for lifeboat's own `nix` calls (a fresh NixOS has them off).
const FEATURES: &str = "nix-command flakes";

fn rebuild(cfg: &Config, action: &str, host: &str, extra: &[&str]) -> CommandSpec {
    let flake = format!("{}#{host}", cfg.config_repo.path.display());
    let args = [action.to_string(), "--flake".to_string(), flake]
        .into_iter()
        .chain(extra.iter().map(std::string::ToString::to_string));
    // nixos-rebuild build leaves its ./result link in the working directory.
    CommandSpec::from_prefix(&cfg.commands.nixos_rebuild, args)
        .current_dir(cfg.state.dir.clone())
        .package("nixos-rebuild")
}

/// `nixos-rebuild build --flake PATH#HOST --log-format internal-json -v`, with the volume's
/// store as a trusted extra substituter when it can be used. (The Python nixos-rebuild
/// keeps only the last `--option`: this is the only one.)
pub fn build_command(cfg: &Config, host: &str, substituter: Option<&str>) -> CommandSpec {
    let mut extra = vec!["--log-format", "internal-json", "-v"];
    if let Some(substituter) = substituter {
        extra.extend(["--option", "extra-substituters", substituter]);
    }
    rebuild(cfg, "build", host, &extra)
}

/// `nixos-rebuild boot --flake PATH#HOST`: the system profile and the boot entry, nothing
/// activated. Never stopped half-way: a boot loader half-installed is worse than a late stop.
pub fn boot_command(cfg: &Config, host: &str) -> CommandSpec {
    rebuild(cfg, "boot", host, &[]).uninterruptible()
}

/// The plan's action for a command.
pub fn action(spec: &CommandSpec) -> Action {
    spec.describe()
}

/// The most error lines a failed rebuild keeps for its message (the last ones).
const ERROR_LINES: usize = 10;

/// Nix's exit codes for a failed build: 100, plus 1 for a timeout, 2 for a hash mismatch
/// and 4 for a `--check` mismatch.
const BUILD_FAILED: i32 = 100;

/// The last [`ERROR_LINES`] lines of a command's output that hold an error, as it printed
/// them (escaped when shown).
#[derive(Default)]
struct Errors(VecDeque<String>);

impl Errors {
    fn push(&mut self, text: String) {
        if self.0.len() == ERROR_LINES {
            self.0.pop_front();
        }
        self.0.push_back(text);
    }

    fn push_if_error(&mut self, text: &str) {
        if text.contains("error") {
            self.push(text.to_string());
        }
    }
}

/// What a build made and took from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    pub system: PathBuf,
    pub transfers: Transfers,
}

/// A command whose stderr is Nix's JSON log, followed to its end: its output shown, its
/// error lines kept for the failure's message, its transfers counted.
struct Followed {
    finished: Finished,
    errors: Errors,
    transfers: Transfers,
    last_stdout: String,
    /// The paths a copy from the volume's store copied ([`Shown::BytesFetched`] only).
    fetched: Vec<Rc<str>>,
}

impl Followed {
    /// The last error it printed (else its last line on stderr), escaped.
    fn last_error(&self) -> String {
        let said = self
            .errors
            .0
            .back()
            .or_else(|| self.finished.stderr_tail.last())
            .map(String::as_str)
            .unwrap_or_default();
        escape_bytes(nixlog::strip_ansi(said).trim().as_bytes())
    }
}

/// Which of Nix's counts a followed command shows as its progress.
#[derive(Clone, Copy)]
enum Shown {
    /// Derivations built of those to build (a build).
    Builds,
    /// Bytes copied so far into the volume's store.
    BytesCopied,
    /// Bytes copied so far from the volume's store.
    BytesFetched,
    Nothing,
}

/// Run `spec`, showing what it prints and its `progress`.
fn follow(spec: &CommandSpec, ctx: &StepContext, progress: Shown) -> Result<Followed, Outcome> {
    let mut log = NixLog::new();
    let mut errors = Errors::default();
    let mut last_stdout = String::new();
    let mut fetched = Vec::new();
    let mut on_line = each_line(ctx, |line: Line<'_>| match line.stream {
        Stream::Stdout => {
            last_stdout = String::from_utf8_lossy(line.bytes).trim().to_string();
            ctx.output(escape_bytes(line.bytes));
        }
        Stream::Stderr => match log.feed(line.bytes) {
            Some(Item::Plain(bytes)) => {
                errors.push_if_error(&String::from_utf8_lossy(&bytes));
                ctx.output(escape_bytes(&bytes));
            }
            Some(Item::Message { level, text, .. }) => {
                if level == 0 {
                    errors.push(text.clone());
                }
                if level <= 3 {
                    ctx.output(escape_text(&text));
                }
            }
            Some(Item::Progress(p)) => match progress {
                Shown::Builds => ctx.progress(p.built, Some(p.total_builds), Unit::Derivations),
                Shown::BytesCopied | Shown::BytesFetched => {
                    ctx.progress(log.transfers().from_local.bytes, None, Unit::Bytes);
                }
                Shown::Nothing => {}
            },
            Some(Item::BuildStarted { drv }) => {
                ctx.output(format!("building {}", escape_text(&drv)));
            }
            Some(Item::BuildLog { line, .. }) => ctx.output_text(&line),
            Some(Item::Copying { from_local, path }) => {
                let path_rc = Rc::clone(&path);
                let path = escape_text(&path);
                ctx.output(match (progress, from_local) {
                    (Shown::BytesCopied, _) => format!("copying {path} into the volume's store"),
                    (_, true) => format!("copying {path} from the volume's store"),
                    (_, false) => format!("downloading {path} from a binary cache"),
                });
                if let Shown::BytesFetched = progress {
                    fetched.push(path_rc);
                }
                if let Shown::BytesCopied | Shown::BytesFetched = progress {
                    ctx.progress(log.transfers().from_local.bytes, None, Unit::Bytes);
                }
            }
            Some(Item::Phase { .. }) | None => {}
        },
    });
    let streamed = ctx.run_streaming(spec, &mut on_line);
    drop(on_line);
    match streamed {
        Ok(finished) => Ok(Followed {
            finished,
            errors,
            transfers: log.transfers(),
            last_stdout,
            fetched,
        }),
        Err(ProcessError::Cancelled { .. }) => Err(Outcome::Interrupted),
        Err(e) => Err(Outcome::Failed(e.to_string())),
    }
}

/// Build; the system's store path and what the build took from where, or the failure
/// explained.
pub fn build(
    cfg: &Config,
    host: &str,
    substituter: Option<&str>,
    ctx: &StepContext,
) -> Result<Built, Outcome> {
    let spec = build_command(cfg, host, substituter);
    let followed = follow(&spec, ctx, Shown::Builds)?;
    if !followed.finished.status.success() {
        return Err(Outcome::Failed(explain_failure(
            "build",
            host,
            followed.finished.status,
            &followed.errors,
        )));
    }
    let system = if followed.last_stdout.starts_with("/nix/store/") {
        PathBuf::from(&followed.last_stdout)
    } else {
        fs::read_link(cfg.state.dir.join("result")).map_err(|_| {
            Outcome::Failed("nixos-rebuild build succeeded but named no system".into())
        })?
    };
    Ok(Built {
        system,
        transfers: followed.transfers,
    })
}

/// What went wrong: the exit status, what Nix said (the known failures explained), what
/// the exit status means for this machine and what to do. Nix's "attribute 'x' missing"
/// names a missing host only when `x` is the host built.
fn explain_failure(what: &str, host: &str, status: ExitStatus, errors: &Errors) -> String {
    let known: Vec<String> = nixlog::summarise_errors(errors.0.iter().map(String::as_str))
        .iter()
        .filter(|known| !known.names_another_host(Some(host)))
        .map(ToString::to_string)
        .collect();
    let said = if known.is_empty() {
        let lines: Vec<String> = errors
            .0
            .iter()
            .map(|e| escape_bytes(nixlog::strip_ansi(e).trim().as_bytes()))
            .collect();
        lines.join(" ")
    } else {
        known.join("; ")
    };
    format!(
        "nixos-rebuild {what} failed ({}): {said}. {}",
        process::describe_status(status),
        meaning(what, status.code())
    )
}

/// What nixos-rebuild's exit code says happened to this machine, and what to do.
fn meaning(what: &str, code: Option<i32>) -> String {
    const FIX: &str = "fix the configuration, commit and push it, then run recover again";
    match code {
        Some(code) if (BUILD_FAILED..BUILD_FAILED + 8).contains(&code) => {
            let bits = code - BUILD_FAILED;
            let kinds: Vec<&str> = [
                (1, "a build timed out"),
                (
                    2,
                    "a download's hash did not match the one the configuration gives",
                ),
                (4, "a rebuild with --check gave different output"),
            ]
            .iter()
            .filter(|(bit, _)| bits & bit != 0)
            .map(|(_, kind)| *kind)
            .collect();
            let kinds = if kinds.is_empty() {
                String::new()
            } else {
                format!(" ({})", kinds.join(", "))
            };
            format!(
                "A derivation failed to build{kinds}. Nothing was installed to boot: this \
                 machine boots what it booted. The output above names the derivation; `nix \
                 log <drv>` shows its whole log; {FIX}"
            )
        }
        None => format!(
            "nixos-rebuild was killed before it finished; nothing is rebooted. Run recover \
             again; if the {what} keeps being killed, look for the cause (`dmesg` shows the \
             out-of-memory killer)"
        ),
        Some(_) if what == "boot" => "The new system is built and in the volume's store, \
             but installing it to boot failed (most often the boot loader: is /boot mounted, \
             and has it room? `df -h /boot`). Nothing was activated and the machine was not \
             rebooted; do not reboot by hand. Fix what the output above names and run \
             recover again: it installs the entry again"
            .to_string(),
        Some(_) => format!(
            "The configuration did not evaluate, or nixos-rebuild failed before building \
             anything. Nothing was installed to boot; {FIX}"
        ),
    }
}

/// Install the built system to boot: the root disk's system profile and the boot entry.
/// Nothing is activated and nothing mounted until the reboot.
pub fn boot(cfg: &Config, host: &str, ctx: &StepContext) -> Outcome {
    let spec = boot_command(cfg, host);
    let followed = match follow(&spec, ctx, Shown::Nothing) {
        Ok(followed) => followed,
        Err(outcome) => return outcome,
    };
    if followed.finished.status.success() {
        Outcome::Passed("installed the boot entry".into())
    } else {
        Outcome::Failed(explain_failure(
            "boot",
            host,
            followed.finished.status,
            &followed.errors,
        ))
    }
}

/// `nix copy` of `system`'s closure into the volume's store (only what is missing there
/// is copied; the paths are the store's own, so no signature is needed).
pub fn copy_command(cfg: &Config, store: &VolumeStore, system: &Path) -> CommandSpec {
    nix_copy(cfg, "--to", store, system)
}

/// `nix copy` of the old system's closure from the volume's store into this machine's:
/// what `build` would otherwise take from it as a substituter, copied all at once (Nix
/// before 2.16 substitutes only `max-jobs` paths at a time; `nix copy` copies in
/// parallel).
pub fn fetch_command(cfg: &Config, store: &VolumeStore, old: &Path) -> CommandSpec {
    nix_copy(cfg, "--from", store, old)
}

fn nix_copy(cfg: &Config, direction: &str, store: &VolumeStore, path: &Path) -> CommandSpec {
    let args = [
        "copy".to_string(),
        "--extra-experimental-features".to_string(),
        FEATURES.to_string(),
        "--no-check-sigs".to_string(),
        "--log-format".to_string(),
        "internal-json".to_string(),
        "-v".to_string(),
        direction.to_string(),
        store.uri(),
        path.display().to_string(),
    ];
    CommandSpec::from_prefix(&cfg.commands.nix, args)
        .package("nix")
        .copies()
}

/// Copy the old system's closure from the volume's store into this machine's, before the
/// build; what was copied. A copy that fails is said and left to the build, which still
/// has the volume's store as a substituter.
pub fn fetch(
    cfg: &Config,
    store: &VolumeStore,
    old: &Path,
    closure: Option<&Closure>,
    ctx: &StepContext,
) -> Result<Transfers, Outcome> {
    let spec = fetch_command(cfg, store, old);
    let mut followed = follow(&spec, ctx, Shown::BytesFetched)?;
    // Nix reports no bytes for a copy between local stores: the paths' NAR sizes instead.
    if let Some(closure) = closure {
        followed.transfers.from_local.bytes =
            closure.bytes_of(followed.fetched.iter().map(|p| &**p));
    }
    if !followed.finished.status.success() {
        ctx.output(format!(
            "copying the old system {} from the volume's store failed ({}, Nix's error is \
             above): the build takes what it needs from that store itself",
            shown(old),
            process::describe_status(followed.finished.status),
        ));
    }
    Ok(followed.transfers)
}

/// Copy the closure into the volume's store, on `volume`; the paths copied and their bytes.
pub fn copy(
    cfg: &Config,
    store: &VolumeStore,
    volume: &VolumeConfig,
    system: &Path,
    ctx: &StepContext,
) -> Result<Transfers, Outcome> {
    let spec = copy_command(cfg, store, system);
    let followed = follow(&spec, ctx, Shown::BytesCopied)?;
    if followed.finished.status.success() {
        return Ok(followed.transfers);
    }
    let failed = format!(
        "nix copy into {} failed ({}): {}",
        shown(&store.nix_dir),
        process::describe_status(followed.finished.status),
        followed.last_error()
    );
    let full = followed.errors.0.iter().any(|e| no_space::says_full(e))
        || no_space::says_full(&followed.finished.stderr_tail.join("\n"))
        || no_space::looks_full(&store.nix_dir);
    Err(Outcome::Failed(if full {
        format!(
            "{failed}. {} Until the reboot it is not mounted there: `mount {} /mnt` to look. \
             The new system is built, but it is not in the volume's store yet, and nothing \
             was installed to boot: a reboot needs it there. Make room on the volume and run \
             recover again.",
            no_space::volume_full(&volume.mount),
            shown(&volume.device)
        )
    } else {
        failed
    }))
}

/// `nix path-info PATH` in the volume's store: fails when the path is not valid there (with
/// `--json` Nix 2.8 says `"valid":false` and succeeds, so validity is asked without it).
pub fn validity_command(cfg: &Config, store: &VolumeStore, path: &Path) -> CommandSpec {
    path_info(cfg, store, path, &[])
}

/// `nix path-info --json -r PATH` in the volume's store: each path of the closure with its
/// NAR size.
pub fn closure_command(cfg: &Config, store: &VolumeStore, path: &Path) -> CommandSpec {
    path_info(cfg, store, path, &["--json", "-r"]).capture_stdout()
}

fn path_info(cfg: &Config, store: &VolumeStore, path: &Path, extra: &[&str]) -> CommandSpec {
    let args = ["path-info", "--extra-experimental-features", FEATURES]
        .into_iter()
        .chain(extra.iter().copied())
        .map(String::from)
        .chain([
            "--store".to_string(),
            store.uri(),
            path.display().to_string(),
        ]);
    CommandSpec::from_prefix(&cfg.commands.nix, args).package("nix")
}

/// `nix store diff-closures OLD NEW` in the volume's store, where both systems are once the
/// new one is copied.
pub fn diff_closures_command(
    cfg: &Config,
    store: &VolumeStore,
    old: &Path,
    new: &Path,
) -> CommandSpec {
    let args = [
        "store".to_string(),
        "diff-closures".to_string(),
        "--extra-experimental-features".to_string(),
        FEATURES.to_string(),
        "--store".to_string(),
        store.uri(),
        old.display().to_string(),
        new.display().to_string(),
    ];
    CommandSpec::from_prefix(&cfg.commands.nix, args)
        .package("nix")
        .capture_stdout()
}
