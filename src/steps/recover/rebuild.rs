//! `build` and `switch`: nixos-rebuild of the flake's host, its output followed live:
//! progress from Nix's JSON log, plain lines passed through, known failures explained.

use std::fs;
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::escape::{escape_bytes, shown};
use crate::exec::process::{self, CommandSpec, Line, ProcessError};
use crate::flow::Outcome;
use crate::nixlog::{self, Item, NixLog};
use crate::report::{Action, Stream, Unit};
use crate::steps::StepContext;

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
pub fn switch_command(cfg: &Config, host: &str) -> CommandSpec {
    rebuild(cfg, "switch", host, &[])
}

/// The plan's action for a command.
pub fn action(spec: &CommandSpec) -> Action {
    spec.describe()
}

/// Build; the system's store path, or the failure explained.
pub fn build(cfg: &Config, host: &str, ctx: &StepContext) -> Result<PathBuf, Outcome> {
    let spec = build_command(cfg, host);
    let mut log = NixLog::new();
    let mut errors = Errors::default();
    let mut last_stdout = String::new();
    let mut on_line = |line: Line<'_>| match line.stream {
        Stream::Stdout => {
            last_stdout = String::from_utf8_lossy(line.bytes).trim().to_string();
            ctx.output(escape_bytes(line.bytes));
        }
        Stream::Stderr => match log.feed(line.bytes) {
            Some(Item::Plain(bytes)) => ctx.output(escape_bytes(&bytes)),
            Some(Item::Message { level, text, .. }) => {
                if level == 0 {
                    errors.note(&text);
                }
                if level <= 3 {
                    ctx.output(escape_bytes(text.as_bytes()));
                }
            }
            Some(Item::Progress(p)) => {
                ctx.progress(p.built, Some(p.total_builds), Unit::Derivations)
            }
            Some(Item::BuildStarted { drv }) => {
                ctx.output(format!("building {}", escape_bytes(drv.as_bytes())))
            }
            Some(Item::BuildLog { line, .. }) => ctx.output(escape_bytes(line.as_bytes())),
            Some(Item::Phase { .. }) | None => {}
        },
    };
    let finished = match process::run_streaming(&spec, &mut on_line, ctx.cancel) {
        Ok(finished) => finished,
        Err(ProcessError::Cancelled { .. }) => return Err(Outcome::Interrupted),
        Err(e) => return Err(Outcome::Failed(e.to_string())),
    };
    if !finished.status.success() {
        return Err(Outcome::Failed(explain_failure(
            "build",
            &process::describe_status(finished.status),
            &errors,
        )));
    }
    if last_stdout.starts_with("/nix/store/") {
        return Ok(PathBuf::from(last_stdout));
    }
    fs::read_link(cfg.state.dir.join("result"))
        .map_err(|_| Outcome::Failed("nixos-rebuild build succeeded but named no system".into()))
}

/// The errors a command printed, kept small however many there are: the known failures
/// among them (each once, in the order first seen) and the last one.
#[derive(Default)]
struct Errors {
    known: Vec<nixlog::KnownError>,
    last: Option<String>,
}

impl Errors {
    fn note(&mut self, message: &str) {
        for error in nixlog::summarise_errors([message]) {
            if !self.known.contains(&error) {
                self.known.push(error);
            }
        }
        self.last = Some(message.to_string());
    }
}

/// What went wrong, with the known failures explained.
fn explain_failure(what: &str, status: &str, errors: &Errors) -> String {
    let known: Vec<String> = errors.known.iter().map(ToString::to_string).collect();
    let last = errors
        .last
        .as_ref()
        .map(|e| escape_bytes(e.as_bytes()))
        .unwrap_or_default();
    if known.is_empty() {
        format!("nixos-rebuild {what} failed ({status}): {last}")
    } else {
        format!(
            "nixos-rebuild {what} failed ({status}): {}",
            known.join("; ")
        )
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
    let mut on_line = |line: Line<'_>| {
        let text = escape_bytes(line.bytes);
        if text.contains("the following units failed") {
            units_failed = Some(text.clone());
        }
        if text.contains("error") {
            errors.note(&String::from_utf8_lossy(line.bytes));
        }
        ctx.output(text);
    };
    match process::run_streaming(&spec, &mut on_line, ctx.cancel) {
        Ok(finished) if finished.status.success() => Outcome::Passed("switched".into()),
        Ok(finished) if finished.code() == Some(UNITS_FAILED) => Outcome::Warning(format!(
            "switched, but {} (see `systemctl --failed`; the system itself is in place)",
            units_failed.unwrap_or_else(|| "some units failed".into())
        )),
        Ok(finished) => Outcome::Failed(explain_failure(
            "switch",
            &process::describe_status(finished.status),
            &errors,
        )),
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
    CommandSpec::from_prefix(&cfg.commands.nix, args).package("nix")
}

/// Copy the closure, following Nix's JSON progress when it prints any.
pub fn copy(cfg: &Config, root: &Path, system: &Path, ctx: &StepContext) -> Result<(), Outcome> {
    let spec = copy_command(cfg, root, system);
    let mut on_line = |line: Line<'_>| ctx.output(escape_bytes(line.bytes));
    match process::run_streaming(&spec, &mut on_line, ctx.cancel) {
        Ok(finished) if finished.status.success() => Ok(()),
        Ok(finished) => Err(Outcome::Failed(format!(
            "nix copy into {} failed ({}): {}",
            shown(root),
            process::describe_status(finished.status),
            finished.stderr_tail.last().cloned().unwrap_or_default()
        ))),
        Err(ProcessError::Cancelled { .. }) => Err(Outcome::Interrupted),
        Err(e) => Err(Outcome::Failed(e.to_string())),
    }
}
