//! `lifeboat demo`: a practice sandbox (a sparse-file ext4 volume with the seed's layout
//! on a loop device, a by-id directory, a config pointing at both) and a flow run in it,
//! so lifeboat can be tried without going near real data: on a terminal the wizard opens
//! on it, else inspect runs headless (`app` runs the flow). `--clean` removes every trace.

use std::path::Path;

use crate::cli::Options;
use crate::config::Config;
use crate::escape::shown;
use crate::exit;
use crate::sandbox::{Sandbox, VolumeSpec};

/// A practice sandbox, ready for a flow: its config and what to say after the run.
pub struct Practice {
    pub cfg: Config,
    sandbox: Sandbox,
}

impl Practice {
    /// What the operator can try next, and how to remove the sandbox.
    pub fn afterword(&self) -> String {
        format!(
            "\nThat was a practice volume: {} on {}.\nTry more: lifeboat -c {} inspect \
             --headless (or --json, --dry-run)\nRemove it: lifeboat demo --clean",
            shown(&self.sandbox.image),
            shown(&self.sandbox.loop_device),
            shown(&self.sandbox.config_path)
        )
    }
}

/// Build (or reuse) the sandbox in `dir` for a flow to run on; or clean it away. `Err` is
/// the exit code when there is nothing more to run (cleaned, a dry run, a failure).
pub fn prepare(options: &Options, clean: bool, dir: &Path) -> Result<Practice, i32> {
    if !nix::unistd::geteuid().is_root() {
        eprintln!(
            "lifeboat demo needs root: it attaches a loop device and mounts it read-only. \
             Run it with sudo."
        );
        return Err(exit::FAILED);
    }
    if clean {
        return Err(match Sandbox::clean(dir) {
            Ok(()) => {
                println!(
                    "Removed the practice sandbox {} and its loop device.",
                    shown(dir)
                );
                exit::PASSED
            }
            Err(e) => {
                eprintln!("lifeboat demo --clean: {e}");
                exit::FAILED
            }
        });
    }
    if options.dry_run {
        println!(
            "Would create {0}/volume.img (sparse), put an ext4 filesystem with a practice \
             layout on it, attach it to a loop device, link it from {0}/by-id, write \
             {0}/lifeboat.toml and inspect the volume read-only.",
            shown(dir)
        );
        return Err(exit::PASSED);
    }
    let sandbox = match Sandbox::open(dir).or_else(|_| {
        eprintln!("Building a practice volume in {} ...", shown(dir));
        Sandbox::create(dir, &VolumeSpec::default())
    }) {
        Ok(sandbox) => sandbox,
        Err(e) => {
            eprintln!("lifeboat demo: {e}");
            return Err(exit::FAILED);
        }
    };
    let cfg = match Config::load(&sandbox.config_path) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("lifeboat demo: the sandbox's config does not load: {e}");
            return Err(exit::USAGE);
        }
    };
    Ok(Practice { cfg, sandbox })
}
