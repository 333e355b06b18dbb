//! predestroy's `host-identity`: copy what [`super::carried`] lists into the saved directory
//! at the top of the volume, keeping modes, owners and times, each file written atomically,
//! and describe each copy for the card (sizes, SHA-256, host keys' fingerprints) — never
//! its content.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::card::CardSaved;
use crate::config::Config;
use crate::escape::shown;
use crate::exec::atomic::{copy_atomic, private_dir, symlink_atomic};
use crate::exec::git::HostKey;

use super::digest::{self, walk};
use super::{Carried, Reason, on_machine, saved_path};

/// What was saved, and what was not with why.
#[derive(Debug, Default)]
pub struct Saved {
    pub entries: Vec<CardSaved>,
    /// Paths left out: a host key that is not one, a listed path that is missing.
    pub left_out: Vec<String>,
}

/// A failed write: the path and the error, for the full-volume message.
pub struct WriteFailed {
    pub path: PathBuf,
    pub error: io::Error,
}

/// Save `carried` from the machine (under `[host].root`) into `saved_dir`.
pub fn save(cfg: &Config, carried: &[Carried], saved_dir: &Path) -> Result<Saved, WriteFailed> {
    let failed = |path: &Path| {
        let path = path.to_path_buf();
        move |error| WriteFailed { path, error }
    };
    private_dir(saved_dir, (0, 0)).map_err(failed(saved_dir))?;
    let mut saved = Saved::default();
    for item in carried {
        let from = on_machine(&cfg.host.root, &item.path);
        let Ok(meta) = fs::symlink_metadata(&from) else {
            if item.reason == Reason::Listed {
                saved.left_out.push(format!(
                    "{} is listed in [host].carry but is not on this machine",
                    shown(&item.path)
                ));
            }
            continue;
        };
        if item.reason == Reason::HostKey
            && let Some(why) = not_a_private_key(&from, &meta)
        {
            saved
                .left_out
                .push(format!("{} was not saved: {why}", shown(&item.path)));
            continue;
        }
        let to = saved_path(saved_dir, &item.path);
        copy_tree(&from, &to, 0o700).map_err(|(path, error)| WriteFailed { path, error })?;
        let summary = digest::digest(&to).map_err(failed(&to))?;
        let public = PathBuf::from(format!("{}.pub", item.path.display()));
        let fingerprint = (item.reason == Reason::HostKey)
            .then(|| fingerprint(&on_machine(&cfg.host.root, &public)))
            .flatten();
        saved.entries.push(CardSaved {
            path: item.path.clone(),
            reason: item.reason,
            files: summary.files,
            bytes: summary.bytes,
            sha256: summary.sha256,
            fingerprint,
        });
        // The public half goes with the private key, so the restored pair matches.
        let public_from = on_machine(&cfg.host.root, &public);
        if item.reason == Reason::HostKey && public_from.is_file() {
            let public_to = saved_path(saved_dir, &public);
            let sha = copy_atomic(&public_from, &public_to).map_err(failed(&public_to))?;
            saved.entries.push(CardSaved {
                path: public,
                reason: Reason::HostKey,
                files: 1,
                bytes: fs::metadata(&public_to).map_or(0, |m| m.len()),
                sha256: digest::hex(&sha),
                fingerprint: None,
            });
        }
    }
    Ok(saved)
}

/// Why the file at `path` is not a private key sshd could use.
fn not_a_private_key(path: &Path, meta: &fs::Metadata) -> Option<String> {
    if meta.file_type().is_symlink() {
        return Some("it is a symlink, not the key itself".into());
    }
    if !meta.is_file() {
        return Some("it is not a regular file".into());
    }
    let head = fs::read(path).ok()?;
    let head = String::from_utf8_lossy(&head[..head.len().min(100)]).into_owned();
    (!(head.starts_with("-----BEGIN ") && head.contains("PRIVATE KEY-----")))
        .then(|| "it is not a private key (no PEM or OpenSSH private key header)".into())
}

/// `SHA256:…` of the public key in `public` (`<type> <base64> [comment]`).
pub fn fingerprint(public: &Path) -> Option<String> {
    let text = fs::read_to_string(public).ok()?;
    let blob = STANDARD.decode(text.split_whitespace().nth(1)?).ok()?;
    Some(HostKey { blob }.fingerprint())
}

/// Copy `from` (a file, a symlink or a directory tree) to `to`, keeping modes, owners and
/// times; missing parents of `to` made root's with `parent_mode`. Files written atomically;
/// a directory's mode and owner set once its content is in.
pub fn copy_tree(from: &Path, to: &Path, parent_mode: u32) -> Result<(), (PathBuf, io::Error)> {
    let at = |path: &Path| {
        let path = path.to_path_buf();
        move |error| (path, error)
    };
    if let Some(parent) = to.parent() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(parent_mode)
            .create(parent)
            .map_err(at(parent))?;
    }
    let meta = fs::symlink_metadata(from).map_err(at(from))?;
    copy_entry(from, to, &meta)?;
    if !meta.is_dir() {
        return Ok(());
    }
    let mut dirs = vec![(to.to_path_buf(), meta)];
    walk(from, Path::new(""), &mut |relative, meta, full| {
        let target = to.join(relative);
        copy_entry(full, &target, meta).map_err(|(_, e)| e)?;
        if meta.is_dir() {
            dirs.push((target, meta.clone()));
        }
        Ok(())
    })
    .map_err(at(from))?;
    // Deepest first, so a read-only directory is made so after its content.
    for (dir, meta) in dirs.iter().rev() {
        keep_owner_and_mode(dir, meta).map_err(at(dir))?;
    }
    Ok(())
}

fn copy_entry(from: &Path, to: &Path, meta: &fs::Metadata) -> Result<(), (PathBuf, io::Error)> {
    let at = |error| (to.to_path_buf(), error);
    if meta.is_dir() {
        match fs::create_dir(to) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(at(e)),
            _ => {}
        }
        // Private while it fills; its own mode once it is full.
        fs::set_permissions(to, fs::Permissions::from_mode(0o700)).map_err(at)?;
    } else if meta.file_type().is_symlink() {
        let target = fs::read_link(from).map_err(at)?;
        symlink_atomic(&target, to).map_err(at)?;
        std::os::unix::fs::lchown(to, Some(meta.uid()), Some(meta.gid())).map_err(at)?;
    } else if meta.is_file() {
        copy_atomic(from, to).map_err(at)?;
    }
    // Sockets, fifos and devices are not data: left out.
    Ok(())
}

fn keep_owner_and_mode(dir: &Path, meta: &fs::Metadata) -> io::Result<()> {
    std::os::unix::fs::chown(dir, Some(meta.uid()), Some(meta.gid()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    fs::File::open(dir)?.set_times(fs::FileTimes::new().set_modified(meta.modified()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::host_identity::carried;

    #[test]
    fn a_host_key_that_is_a_symlink_or_not_a_key_is_said_and_not_saved() {
        let root = tempfile::tempdir().unwrap();
        let ssh = root.path().join("etc/ssh");
        fs::create_dir_all(&ssh).unwrap();
        fs::write(
            ssh.join("elsewhere"),
            "-----BEGIN OPENSSH PRIVATE KEY-----\n",
        )
        .unwrap();
        std::os::unix::fs::symlink(ssh.join("elsewhere"), ssh.join("ssh_host_rsa_key")).unwrap();
        fs::write(ssh.join("ssh_host_ed25519_key"), "not a key\n").unwrap();
        let mut cfg = Config::default();
        cfg.host.root = root.path().to_path_buf();
        cfg.host.carry = vec!["/srv/missing".into()];
        let volume = tempfile::tempdir().unwrap();
        let saved_dir = volume.path().join("lifeboat-host");
        let Ok(saved) = save(&cfg, &carried(&cfg), &saved_dir) else {
            panic!("the save failed");
        };
        assert!(saved.entries.is_empty(), "{:?}", saved.entries);
        let said = saved.left_out.join("\n");
        assert!(
            said.contains("ssh_host_rsa_key was not saved: it is a symlink"),
            "{said}"
        );
        assert!(
            said.contains("ssh_host_ed25519_key was not saved: it is not a private key"),
            "{said}"
        );
        assert!(
            said.contains("/srv/missing is listed in [host].carry but is not on this machine"),
            "{said}"
        );
        assert!(!saved_path(&saved_dir, Path::new("/etc/ssh/ssh_host_rsa_key")).exists());
        let meta = fs::metadata(&saved_dir).unwrap();
        assert_eq!((meta.uid(), meta.mode() & 0o777), (0, 0o700));
    }

    #[test]
    fn fingerprints_are_ssh_keygens() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key");
        let made = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key)
            .status()
            .unwrap();
        assert!(made.success());
        let listed = std::process::Command::new("ssh-keygen")
            .arg("-lf")
            .arg(&key)
            .output()
            .unwrap();
        let listed = String::from_utf8(listed.stdout).unwrap();
        let ours = fingerprint(&dir.path().join("key.pub")).unwrap();
        assert!(listed.contains(&ours), "{listed} vs {ours}");
    }
}
