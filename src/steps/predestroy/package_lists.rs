//! `package-lists`: what is installed, saved on the volume (the seed's "note what is
//! installed"): the user's `nix-env -q`, `home-manager packages`, and the running system's
//! requisites. A tool that is missing or refuses is a warning that says why.

use std::path::PathBuf;
use std::time::Duration;

use crate::card::CardStore;
use crate::escape::shown;
use crate::exec::atomic::{private_dir, write_atomic_owned};
use crate::exec::host::CURRENT_SYSTEM;
use crate::exec::process::{self, CommandSpec, ProcessError};
use crate::flow::Outcome;
use crate::report::Action;
use crate::steps::context::StepContext;
use crate::steps::no_space;

use super::settings::Settings;

/// No query of these should take long; a hung one must not hold up the checklist.
const QUERY_TIMEOUT: Duration = Duration::from_secs(300);

/// One list: the file it goes to and the command that makes it.
struct List {
    file: &'static str,
    command: CommandSpec,
}

fn lists(settings: &Settings) -> Vec<List> {
    let home = settings.home.display().to_string();
    vec![
        List {
            file: "nix-env-packages.txt",
            command: CommandSpec::new(
                "nix-env",
                ["-q", "--profile", &format!("{home}/.nix-profile")],
            )
            .package("nix"),
        },
        List {
            file: "home-manager-packages.txt",
            command: CommandSpec::new("home-manager", ["packages"])
                .env("HOME", &home)
                .env("USER", &settings.user)
                .package("home-manager"),
        },
        List {
            file: "system-requisites.txt",
            command: CommandSpec::new("nix-store", ["--query", "--requisites", CURRENT_SYSTEM])
                .package("nix"),
        },
    ]
}

/// The commands and files, for the plan.
pub fn plan(settings: &Settings) -> Vec<Action> {
    lists(settings)
        .into_iter()
        .flat_map(|list| {
            let path = settings.lifeboat_dir().join(list.file);
            [
                list.command.describe(),
                Action::Write { path: shown(&path) },
            ]
        })
        .collect()
}

/// What saving the lists produced.
pub struct Saved {
    pub outcome: Outcome,
    /// Size of the running system's closure, for the recovery card.
    pub store: Option<CardStore>,
}

/// Run each query and write what it printed.
pub fn save(settings: &Settings, ctx: &StepContext) -> Saved {
    let mount = &settings.volume.mount;
    if let Err(e) = private_dir(&settings.lifeboat_dir(), settings.owner()) {
        return Saved {
            outcome: Outcome::Failed(no_space::write_failed(&settings.lifeboat_dir(), mount, &e)),
            store: None,
        };
    }
    let mut written = Vec::new();
    let mut warnings = Vec::new();
    let mut store = None;
    for list in lists(settings) {
        let path = settings.lifeboat_dir().join(list.file);
        match query(&list.command, ctx) {
            Ok(stdout) => {
                if let Err(e) = write_atomic_owned(&path, &stdout, 0o644, settings.owner()) {
                    return Saved {
                        outcome: Outcome::Failed(no_space::write_failed(&path, mount, &e)),
                        store,
                    };
                }
                if list.file == "system-requisites.txt" {
                    store = closure_size(&stdout, ctx);
                }
                written.push(path);
            }
            Err(ProcessError::Cancelled { .. }) => {
                return Saved {
                    outcome: Outcome::Interrupted,
                    store,
                };
            }
            Err(e) => warnings.push(explain(list.file, &e)),
        }
    }
    let saved = format!("saved {}", names(&written));
    let outcome = if warnings.is_empty() {
        Outcome::Passed(saved)
    } else {
        Outcome::Warning(format!("{saved}; {}", warnings.join("; ")))
    };
    Saved { outcome, store }
}

fn names(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "no list".into();
    }
    paths
        .iter()
        .map(|p| shown(p))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The command's stdout, when it succeeded.
fn query(command: &CommandSpec, ctx: &StepContext) -> Result<Vec<u8>, ProcessError> {
    let command = command.clone().timeout(QUERY_TIMEOUT);
    let (stdout, finished) = process::capture(&command, ctx.cancel)?;
    finished.ensure_success().map(|_| stdout)
}

fn explain(file: &str, err: &ProcessError) -> String {
    let why = match err {
        ProcessError::Failed { stderr_tail, .. } => stderr_tail
            .iter()
            .find(|l| l.contains("error"))
            .or(stderr_tail.last())
            .cloned()
            .unwrap_or_else(|| err.to_string()),
        other => other.to_string(),
    };
    format!("{file} not saved: {why}")
}

/// Paths and bytes of the closure listed in `requisites` (`nix-store -q --size` of each).
fn closure_size(requisites: &[u8], ctx: &StepContext) -> Option<CardStore> {
    let paths: Vec<String> = requisites
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    if paths.is_empty() {
        return None;
    }
    let command = CommandSpec::new(
        "nix-store",
        ["--query", "--size"]
            .into_iter()
            .map(String::from)
            .chain(paths.iter().cloned()),
    )
    .timeout(QUERY_TIMEOUT);
    let (stdout, finished) = process::capture(&command, ctx.cancel).ok()?;
    finished.ensure_success().ok()?;
    let bytes = String::from_utf8_lossy(&stdout)
        .lines()
        .filter_map(|l| l.trim().parse::<u64>().ok())
        .sum();
    ctx.output(format!(
        "the running system's closure: {} paths, {bytes} bytes",
        paths.len()
    ));
    Some(CardStore {
        paths: paths.len() as u64,
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_names_every_command_and_file() {
        let settings = super::super::settings::example();
        let plan = plan(&settings);
        assert_eq!(plan.len(), 6);
        assert!(
            matches!(&plan[0], Action::Command { argv } if argv.contains(&"nix-env".to_string()))
        );
        assert_eq!(
            plan[5],
            Action::Write {
                path: "/home/qwe/.lifeboat/system-requisites.txt".into()
            }
        );
    }
}
