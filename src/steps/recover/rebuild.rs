//! `build` and `switch`: nixos-rebuild of the flake's host, its output followed live:
//! progress from Nix's JSON log, plain lines passed through, known failures explained.

use std::collections::VecDeque;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use crate::config::Config;
use crate::escape::{escape_bytes, escape_text, shown};
use crate::exec::process::{self, CommandSpec, Line, ProcessError};
use crate::flow::Outcome;
use crate::nixlog::{self, Item, NixLog};
use crate::report::{Action, Stream, Unit};
use crate::steps::{StepContext, each_line, no_space};

/// `switch-to-configuration`: switched, but some units failed.
const UNITS_FAILED: i32 = 4;

fn rebuild(cfg: &Config, action: &str, host: &str, extra: &[&str]) -> CommandSpec {
    let flake = format!("{}#{host}", cfg.config_repo.path.display());
    let args = [action.to_string(), "--flake".to_string(), flake]
        .into_iter()
        .chain(extra.iter().map(|a| a.to_string()));
    // nixos-rebuild build leaves its ./result link in the working directory.
    CommandSpec::from_prefix(&cfg.commands.nixos_rebuild, args)
        .current_dir(cfg.state.dir.clone())
        .package("nixos-rebuild")
}

/// `nixos-rebuild build --flake PATH#HOST --log-format internal-json -v`.
pub fn build_command(cfg: &Config, host: &str) -> CommandSpec {
    rebuild(cfg, "build", host, &["--log-format", "internal-json", "-v"])
}

/// `nixos-rebuild switch --flake PATH#HOST`.
/// Never stopped half-way: a system half-activated is worse than a late stop.
pub fn switch_command(cfg: &Config, host: &str) -> CommandSpec {
    rebuild(cfg, "switch", host, &[]).uninterruptible()
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

/// Build; the system's store path, or the failure explained.
pub fn build(cfg: &Config, host: &str, ctx: &StepContext) -> Result<PathBuf, Outcome> {
    let spec = build_command(cfg, host);
    let mut log = NixLog::new();
    let mut errors = Errors::default();
    let mut last_stdout = String::new();
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
                    errors.push(text.to_string());
                }
                if level <= 3 {
                    ctx.output(escape_text(&text));
                }
            }
            Some(Item::Progress(p)) => {
                ctx.progress(p.built, Some(p.total_builds), Unit::Derivations)
            }
            Some(Item::BuildStarted { drv }) => {
                ctx.output(format!("building {}", escape_text(&drv)))
            }
            Some(Item::BuildLog { line, .. }) => ctx.output_text(&line),
            Some(Item::Phase { .. }) | None => {}
        },
    });
    let streamed = ctx.run_streaming(&spec, &mut on_line);
    drop(on_line);
    let finished = match streamed {
        Ok(finished) => finished,
        Err(ProcessError::Cancelled { .. }) => return Err(Outcome::Interrupted),
        Err(e) => return Err(Outcome::Failed(e.to_string())),
    };
    if !finished.status.success() {
        return Err(Outcome::Failed(explain_failure(
            "build",
            host,
            finished.status,
            &errors,
        )));
    }
    if last_stdout.starts_with("/nix/store/") {
        return Ok(PathBuf::from(last_stdout));
    }
    fs::read_link(cfg.state.dir.join("result"))
        .map_err(|_| Outcome::Failed("nixos-rebuild build succeeded but named no system".into()))
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
                "A derivation failed to build{kinds}. Nothing was switched: this machine runs \
                 what it ran. The output above names the derivation; `nix log <drv>` shows \
                 its whole log; {FIX}"
            )
        }
        None => format!(
            "nixos-rebuild was killed before it finished; nothing is rebooted. Run recover \
             again; if the {what} keeps being killed, look for the cause (`dmesg` shows the \
             out-of-memory killer)"
        ),
        Some(_) if what == "switch" => "The new system was built, but activating it failed: \
             this machine may run parts of both systems, and it was not rebooted. The output \
             above and `journalctl -b -p err` say what failed; fix it and run recover again, \
             or go back with `nixos-rebuild switch --rollback`"
            .to_string(),
        Some(_) => format!(
            "The configuration did not evaluate, or nixos-rebuild failed before building \
             anything. Nothing was switched; {FIX}"
        ),
    }
}

/// Is `system` what this machine runs already?
pub fn running(system: &Path) -> bool {
    fs::canonicalize(super::CURRENT_SYSTEM).is_ok_and(|current| current == system)
}

/// Switch to the built system. Exit 4 is a warning: switched, with failed units.
pub fn switch(cfg: &Config, host: &str, ctx: &StepContext) -> Outcome {
    let spec = switch_command(cfg, host);
    let mut units_failed = None;
    let mut errors = Errors::default();
    let mut on_line = each_line(ctx, |line: Line<'_>| {
        let text = escape_bytes(line.bytes);
        if text.contains("the following units failed") {
            units_failed = Some(text.clone());
        }
        errors.push_if_error(&String::from_utf8_lossy(line.bytes));
        ctx.output(text);
    });
    let streamed = ctx.run_streaming(&spec, &mut on_line);
    drop(on_line);
    match streamed {
        Ok(finished) if finished.status.success() => Outcome::Passed("switched".into()),
        Ok(finished) if finished.code() == Some(UNITS_FAILED) => Outcome::Warning(format!(
            "switched, but {} (see `systemctl --failed`; the system itself is in place)",
            units_failed.unwrap_or_else(|| "some units failed".into())
        )),
        Ok(finished) => Outcome::Failed(explain_failure("switch", host, finished.status, &errors)),
        Err(ProcessError::Cancelled { .. }) => Outcome::Interrupted,
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

/// `nix copy` of `system`'s closure into the store whose directory is `<root>/nix/store`.
pub fn copy_command(cfg: &Config, root: &Path, system: &Path) -> CommandSpec {
    let args = [
        "copy".to_string(),
        "--extra-experimental-features".to_string(),
        "nix-command flakes".to_string(),
        "--no-check-sigs".to_string(),
        "--to".to_string(),
        format!("local?root={}", root.display()),
        system.display().to_string(),
    ];
    CommandSpec::from_prefix(&cfg.commands.nix, args)
        .package("nix")
        .copies()
}

/// Copy the closure into the store under `root`, on the volume mounted at `mount`.
pub fn copy(
    cfg: &Config,
    root: &Path,
    mount: &Path,
    system: &Path,
    ctx: &StepContext,
) -> Result<(), Outcome> {
    let spec = copy_command(cfg, root, system);
    let mut on_line = each_line(ctx, |line: Line<'_>| ctx.output(escape_bytes(line.bytes)));
    match ctx.run_streaming(&spec, &mut on_line) {
        Ok(finished) if finished.status.success() => Ok(()),
        Ok(finished) => {
            let failed = format!(
                "nix copy into {} failed ({}): {}",
                shown(root),
                process::describe_status(finished.status),
                finished.stderr_tail.last().cloned().unwrap_or_default()
            );
            let full =
                no_space::says_full(&finished.stderr_tail.join("\n")) || no_space::looks_full(root);
            Err(Outcome::Failed(if full {
                format!(
                    "{failed}. {} The new system is built and switched to, but it is not in \
                     the volume's store yet, and a reboot needs it there: do not reboot \
                     before this step passes.",
                    no_space::volume_full(mount)
                )
            } else {
                failed
            }))
        }
        Err(ProcessError::Cancelled { .. }) => Err(Outcome::Interrupted),
        Err(e) => Err(Outcome::Failed(e.to_string())),
    }
}
