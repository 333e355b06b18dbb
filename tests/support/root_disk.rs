//! A machine's root disk for tests: a directory standing in for `/` (`[host].root`), with
//! what a real NixOS root disk holds that dies with it: sshd's host keys (real ones, made by
//! `ssh-keygen`) and its config naming them, `/var/lib/nixos` with real-format id maps, a
//! PostgreSQL data directory owned by its user, root's hand-written `authorized_keys`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::sh;

/// The uid NixOS gives `postgres` (`ids.uids.postgres`).
pub const POSTGRES_UID: u32 = 71;

/// The host keys a root disk holds, as sshd's config names them: two of the kind whose
/// files have one size (an ECDSA or RSA key's varies with its numbers).
pub const HOST_KEYS: [&str; 2] = [
    "etc/ssh/ssh_host_ed25519_key",
    "etc/ssh/ssh_host_backup_ed25519_key",
];

/// [`HOST_KEYS`] made afresh by `ssh-keygen` under `root` (`label` in their comments), and
/// sshd's config naming them.
fn host_keys(root: &Path, label: &str) {
    fs::create_dir_all(root.join("etc/ssh")).unwrap();
    for key in HOST_KEYS {
        sh(&format!(
            "ssh-keygen -q -t ed25519 -N '' -C root@{label} -f {}",
            root.join(key).display()
        ));
    }
    let host_keys: String = HOST_KEYS
        .iter()
        .map(|k| format!("HostKey /{k}\n"))
        .collect();
    fs::write(
        root.join("etc/ssh/sshd_config"),
        format!("UsePAM yes\n{host_keys}"),
    )
    .unwrap();
}

/// Make a root disk at `root` for a machine whose user `qwe` had `uid`; `label` tells the
/// keys of two machines apart (in their comments).
pub fn make(root: &Path, label: &str, uid: u32) -> PathBuf {
    host_keys(root, label);
    let nixos = root.join("var/lib/nixos");
    fs::create_dir_all(&nixos).unwrap();
    fs::write(
        nixos.join("uid-map"),
        format!("{{\"postgres\":{POSTGRES_UID},\"qwe\":{uid}}}"),
    )
    .unwrap();
    fs::write(nixos.join("gid-map"), "{\"postgres\":71,\"users\":100}").unwrap();
    fs::write(nixos.join("declarative-users"), "[\"postgres\",\"qwe\"]").unwrap();
    fs::write(nixos.join("declarative-groups"), "[\"postgres\",\"users\"]").unwrap();
    let data = root.join("var/lib/postgresql/16");
    fs::create_dir_all(data.join("base/1")).unwrap();
    fs::write(data.join("PG_VERSION"), "16\n").unwrap();
    fs::write(data.join("base/1/1259"), vec![7u8; 64 * 1024]).unwrap();
    sh(&format!(
        "chown -R {POSTGRES_UID}:{POSTGRES_UID} {0} && chmod 700 {0}/16",
        root.join("var/lib/postgresql").display()
    ));
    fs::create_dir_all(root.join("root/.ssh")).unwrap();
    fs::write(
        root.join("root/.ssh/authorized_keys"),
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHandWrittenKeyOfTheOperatorxxxxxxxxxxxxxx op@laptop\n",
    )
    .unwrap();
    fs::set_permissions(root.join("root/.ssh"), fs::Permissions::from_mode(0o700)).unwrap();
    root.to_path_buf()
}

/// A fresh machine's root disk at `root`: host keys of its own, sshd's config naming them,
/// and NixOS's id maps as a first boot leaves them (no user of the volume's yet).
pub fn fresh(root: &Path, label: &str) -> PathBuf {
    host_keys(root, label);
    let nixos = root.join("var/lib/nixos");
    fs::create_dir_all(&nixos).unwrap();
    fs::write(nixos.join("uid-map"), "{}").unwrap();
    fs::write(nixos.join("gid-map"), "{\"users\":100}").unwrap();
    fs::write(nixos.join("declarative-users"), "[]").unwrap();
    fs::write(nixos.join("declarative-groups"), "[\"users\"]").unwrap();
    root.to_path_buf()
}
