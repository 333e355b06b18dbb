//! `preflight`: can this machine run a recovery at all? Root, NixOS, the programs of
//! `[commands]`, and the remote when its URL is already known.

use std::path::Path;

use crate::config::Config;
use crate::exec::git::{self, Credentials};
use crate::flow::Outcome;
use crate::steps::identify::human_bytes;

/// The NixOS package that provides each program lifeboat may run.
fn package_of(program: &str) -> &'static str {
    match program {
        "nixos-rebuild" => {
            "nixos-rebuild (part of every NixOS system; on others: nixos-rebuild from nixpkgs)"
        }
        "nixos-generate-config" => "nixos-install-tools",
        "nix" => "nix",
        "systemctl" => "systemd",
        _ => "the package that provides it",
    }
}

/// Is `program` runnable: a path that exists, or a name found on `PATH`?
fn found(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).is_file();
    }
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}

/// Below this much memory available, evaluating and building a NixOS system may fail.
const ENOUGH_MEMORY: u64 = 3 << 29;

/// What to say when `available` of `total` bytes is too little for an evaluation of a
/// NixOS system (about 1 GB) and the build after it.
fn low_memory((available, total): (u64, u64)) -> Option<String> {
    (available < ENOUGH_MEMORY).then(|| {
        format!(
            "only {} of {} memory is available: evaluating a NixOS system takes about 1 GB, \
             and the out-of-memory killer would stop the build half-way; add swap first \
             (`fallocate -l 2G /swapfile && chmod 600 /swapfile && mkswap /swapfile && swapon \
             /swapfile`) or stop what else runs",
            human_bytes(available),
            human_bytes(total)
        )
    })
}

/// Check the machine; warnings for what only might matter.
pub fn check(cfg: &Config, creds: &Credentials) -> Outcome {
    if !nix::unistd::geteuid().is_root() {
        return Outcome::Failed(
            "recover mounts volumes, writes /etc/nixos and installs the system to boot: run it as root"
                .into(),
        );
    }
    let commands = &cfg.commands;
    let missing: Vec<String> = [
        &commands.nixos_rebuild,
        &commands.nixos_generate_config,
        &commands.nix,
        &commands.reboot,
    ]
    .into_iter()
    .filter_map(|argv| argv.first())
    .filter(|program| !found(program))
    .map(|program| {
        let name = Path::new(program)
            .file_name()
            .map_or(program.clone(), |n| n.to_string_lossy().into_owned());
        format!("{program} (NixOS package: {})", package_of(&name))
    })
    .collect();
    if !missing.is_empty() {
        return Outcome::Failed(format!("missing programs: {}", missing.join(", ")));
    }
    let mut notes = Vec::new();
    if let Some(note) = crate::exec::host::memory().and_then(low_memory) {
        notes.push(note);
    }
    if !Path::new("/etc/NIXOS").exists() {
        notes.push(
            "this does not look like NixOS (no /etc/NIXOS): installing a system to boot will not work here"
                .to_string(),
        );
    }
    match &cfg.config_repo.url {
        Some(url) => match git::ls_remote_reachable(url, creds) {
            Ok(_) => {}
            Err(e) => notes.push(format!(
                "the remote did not answer yet ({e}); clone-config tries again with the key on \
                 the volume, and offers the mirror there only if the remote cannot be reached"
            )),
        },
        None => notes.push("the repository URL will come from the recovery card".into()),
    }
    if notes.is_empty() {
        Outcome::Passed("root, NixOS, all programs present, the remote answers".into())
    } else {
        Outcome::Warning(notes.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_little_memory_is_said_with_the_numbers_and_the_fix() {
        assert_eq!(low_memory((4 << 30, 8 << 30)), None);
        let note = low_memory((700 << 20, 1 << 30)).unwrap();
        assert!(note.contains("700.0 MiB of 1.0 GiB"), "{note}");
        assert!(note.contains("swapon"), "{note}");
    }
}
