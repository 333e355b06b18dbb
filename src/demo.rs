//! `lifeboat demo`: a practice sandbox (a sparse-file ext4 volume with the seed's layout
//! on a loop device, a by-id directory, a config pointing at both) and a flow run in it,
//! so lifeboat can be tried without going near real data: on a terminal the wizard opens
//! on it, else inspect runs headless. `--clean` removes every trace.

use crate::exit;
use std::path::Path;

use crate::app;
use crate::cli::Options;
use crate::config::Config;
use crate::escape::shown;
use crate::sandbox::{Sandbox, VolumeSpec};

/// Build (or reuse) the sandbox in `dir` and open the wizard on it (or inspect its volume
/// headless); or clean it away.
pub fn run(options: &Options, clean: bool, dir: &Path) -> i32 {
    if !nix::unistd::geteuid().is_root() {
        eprintln!(
            "lifeboat demo needs root: it attaches a loop device and mounts it read-only. \
             Run it with sudo."
        );
        return exit::FAILED;
    }
    if clean {
        return match Sandbox::clean(dir) {
            Ok(()) => {
                println!(
                    "Removed the practice sandbox {} and its loop device.",
                    shown(dir)
                );
                0
            }
            Err(e) => {
                eprintln!("lifeboat demo --clean: {e}");
                1
            }
        };
    }
    if options.dry_run {
        println!(
            "Would create {0}/volume.img (sparse), put an ext4 filesystem with a practice \
             layout on it, attach it to a loop device, link it from {0}/by-id, write \
             {0}/lifeboat.toml and inspect the volume read-only.",
            shown(dir)
        );
        return exit::PASSED;
    }
    let sandbox = match Sandbox::open(dir).or_else(|_| {
        eprintln!("Building a practice volume in {} ...", shown(dir));
        Sandbox::create(dir, &VolumeSpec::default())
    }) {
        Ok(sandbox) => sandbox,
        Err(e) => {
            eprintln!("lifeboat demo: {e}");
            return exit::FAILED;
        }
    };
    let cfg = match Config::load(&sandbox.config_path) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("lifeboat demo: the sandbox's config does not load: {e}");
            return exit::USAGE;
        }
    };
    let wizard = crate::tui::wanted(options);
    let code = if wizard {
        crate::tui::practice(options, cfg)
    } else {
        app::inspect(options, cfg, None)
    };
    if !options.json {
        eprintln!(
            "\nThat was a practice volume: {} on {}.\nTry more: lifeboat -c {} inspect \
             --headless (or --json, --dry-run)\nRemove it: lifeboat demo --clean",
            shown(&sandbox.image),
            shown(&sandbox.loop_device),
            shown(&sandbox.config_path)
        );
    }
    code
}
