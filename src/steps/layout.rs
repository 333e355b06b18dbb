//! `check-layout`: does the volume hold what the seed's setup puts there? Every path is
//! looked at with lstat: nothing on the volume is followed or opened beyond listing.

use std::fs::{self, Metadata};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::escape::shown;
pub use crate::summary::{Check, LayoutReport, Status};

/// What the layout check needs to know besides the volume.
#[derive(Debug, Clone)]
pub struct Expectations {
    /// The configured user; `None` lets the check recognise the home on the volume.
    pub user: Option<String>,
    pub uid: Option<u32>,
    /// The Nix store bind source, relative to the volume root (`qwe/nix`), when known.
    pub nix_dir: Option<PathBuf>,
    /// The Docker data root relative to the volume root; `Err` with the configured path
    /// when it is configured but not on the volume.
    pub docker_dir: Option<Result<PathBuf, PathBuf>>,
}

/// Check the layout under `root` (the mounted volume).
pub fn check(root: &Path, want: &Expectations) -> LayoutReport {
    let (user, user_from) = match &want.user {
        Some(user) => (Some(user.clone()), "config"),
        None => (recognise_user(root), "volume"),
    };
    let Some(user) = user else {
        return LayoutReport {
            user: None,
            user_from,
            checks: vec![Check {
                id: "home",
                path: String::new(),
                status: Status::Missing,
                detail: "no user is configured and no home holding nix/store was found on the \
                         volume; set user in lifeboat.toml"
                    .into(),
            }],
        };
    };
    let home = PathBuf::from(&user);
    let nix = want.nix_dir.clone().unwrap_or_else(|| home.join("nix"));
    let mut checks = vec![
        check_home(root, &home, want.uid),
        check_ssh(root, &home.join(".ssh")),
        directory(root, "projects", &home.join("projects")),
        directory(root, "config", &home.join(".config")),
        check_store(root, &nix.join("store")),
        check_nix_db(root, &nix.join("var/nix/db")),
    ];
    if let Some(docker) = &want.docker_dir {
        checks.push(check_docker(root, docker));
    }
    checks.push(check_config_backup(root, &home));
    let lifeboat_dir = home.join(".lifeboat");
    checks.push(optional(
        root,
        "persistence-marker",
        &lifeboat_dir.join("persistence-marker"),
    ));
    checks.push(optional(
        root,
        "recovery-card",
        &lifeboat_dir.join("recovery.toml"),
    ));
    LayoutReport {
        user: Some(user),
        user_from,
        checks,
    }
}

/// The one top-level directory holding `nix/store`, if exactly one does.
fn recognise_user(root: &Path) -> Option<String> {
    let entries = fs::read_dir(root).ok()?;
    let mut homes = entries.filter_map(Result::ok).filter(|e| {
        let store = e.path().join("nix/store");
        fs::symlink_metadata(&store).is_ok_and(|m| m.is_dir())
            && e.file_type().is_ok_and(|t| t.is_dir())
    });
    let first = homes.next()?;
    if homes.next().is_some() {
        return None;
    }
    first.file_name().into_string().ok()
}

fn stat(root: &Path, rel: &Path) -> Option<Metadata> {
    fs::symlink_metadata(root.join(rel)).ok()
}

fn item(id: &'static str, rel: &Path, status: Status, detail: impl Into<String>) -> Check {
    Check {
        id,
        path: shown(rel),
        status,
        detail: detail.into(),
    }
}

fn mode(meta: &Metadata) -> u32 {
    meta.permissions().mode() & 0o7777
}

/// Found when `rel` is a directory (not a symlink to one).
fn directory(root: &Path, id: &'static str, rel: &Path) -> Check {
    match stat(root, rel) {
        Some(meta) if meta.is_dir() => item(id, rel, Status::Found, ""),
        Some(meta) if meta.file_type().is_symlink() => item(
            id,
            rel,
            Status::Wrong,
            "a symlink, not a directory (not followed)",
        ),
        Some(_) => item(id, rel, Status::Wrong, "not a directory"),
        None => item(id, rel, Status::Missing, "not on the volume"),
    }
}

fn check_home(root: &Path, home: &Path, uid: Option<u32>) -> Check {
    let found = directory(root, "home", home);
    let Some(meta) = stat(root, home).filter(|_| found.status == Status::Found) else {
        return found;
    };
    let owner = meta.uid();
    match uid {
        Some(expected) if expected != owner => item(
            "home",
            home,
            Status::Wrong,
            format!(
                "owned by uid {owner}, but the config gives the user uid {expected}: after \
                 recovery the files would belong to someone else. Set the uid in the NixOS \
                 config to {owner} (or chown -R the home)"
            ),
        ),
        _ => item(
            "home",
            home,
            Status::Found,
            format!("owner uid {owner}, mode {:04o}", mode(&meta)),
        ),
    }
}

fn check_ssh(root: &Path, ssh: &Path) -> Check {
    let found = directory(root, "ssh", ssh);
    let Some(meta) = stat(root, ssh).filter(|_| found.status == Status::Found) else {
        return found;
    };
    if mode(&meta) & 0o022 != 0 {
        return item(
            "ssh",
            ssh,
            Status::Wrong,
            format!(
                "mode {:04o}: group or others can write it, and sshd refuses keys then \
                 (chmod 700 it)",
                mode(&meta)
            ),
        );
    }
    let mut loose = Vec::new();
    let mut files = 0;
    for entry in fs::read_dir(root.join(ssh)).into_iter().flatten().flatten() {
        files += 1;
        let name = entry.file_name();
        let Ok(meta) = entry.metadata() else { continue };
        let text = name.to_string_lossy();
        let private = text.starts_with("id_") && !text.ends_with(".pub");
        let too_open = if private { 0o077 } else { 0o022 };
        if meta.is_file() && mode(&meta) & too_open != 0 {
            loose.push(format!("{} ({:04o})", shown(Path::new(&name)), mode(&meta)));
        }
    }
    if loose.is_empty() {
        item(
            "ssh",
            ssh,
            Status::Found,
            format!("mode {:04o}, {files} entries", mode(&meta)),
        )
    } else {
        item(
            "ssh",
            ssh,
            Status::Wrong,
            format!(
                "too open for ssh: {} (chmod 600 private keys, 644 at most for the rest)",
                loose.join(", ")
            ),
        )
    }
}

fn check_store(root: &Path, store: &Path) -> Check {
    let found = directory(root, "nix-store", store);
    if found.status != Status::Found {
        return found;
    }
    let paths = fs::read_dir(root.join(store))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name() != ".links")
        .count();
    item(
        "nix-store",
        store,
        Status::Found,
        format!("{paths} store paths"),
    )
}

fn check_nix_db(root: &Path, db: &Path) -> Check {
    let found = directory(root, "nix-db", db);
    if found.status != Status::Found {
        return found;
    }
    match stat(root, &db.join("db.sqlite")) {
        Some(meta) if meta.is_file() => item("nix-db", db, Status::Found, "db.sqlite present"),
        _ => item(
            "nix-db",
            db,
            Status::Wrong,
            "no db.sqlite: Nix would not know the store's paths",
        ),
    }
}

fn check_docker(root: &Path, docker: &Result<PathBuf, PathBuf>) -> Check {
    match docker {
        Ok(rel) => directory(root, "docker", rel),
        Err(configured) => item(
            "docker",
            configured,
            Status::Wrong,
            "[docker].data_root is not under the volume's mount: it would be lost with the root disk",
        ),
    }
}

fn check_config_backup(root: &Path, home: &Path) -> Check {
    let names = ["nixos-config-backup", "nixos-config-backup.git"];
    for name in names {
        let rel = home.join(name);
        if stat(root, &rel).is_some_and(|m| m.is_dir()) {
            return item("config-backup", &rel, Status::Found, "");
        }
    }
    item(
        "config-backup",
        &home.join(names[0]),
        Status::Missing,
        "no copy of /etc/nixos on the volume; lifeboat predestroy keeps one",
    )
}

fn optional(root: &Path, id: &'static str, rel: &Path) -> Check {
    match stat(root, rel) {
        Some(meta) if meta.is_file() => item(id, rel, Status::Found, ""),
        Some(_) => item(id, rel, Status::Wrong, "not a regular file"),
        None => item(id, rel, Status::Absent, "written by lifeboat predestroy"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn seed(root: &Path) {
        for dir in [
            "qwe/.ssh",
            "qwe/projects",
            "qwe/.config",
            "qwe/nix/store/abc-hello",
            "qwe/nix/var/nix/db",
            "qwe/nixos-config-backup",
        ] {
            fs::create_dir_all(root.join(dir)).unwrap();
        }
        fs::write(root.join("qwe/nix/var/nix/db/db.sqlite"), "x").unwrap();
        fs::set_permissions(root.join("qwe/.ssh"), fs::Permissions::from_mode(0o700)).unwrap();
        fs::write(root.join("qwe/.ssh/id_ed25519"), "key").unwrap();
        fs::set_permissions(
            root.join("qwe/.ssh/id_ed25519"),
            fs::Permissions::from_mode(0o600),
        )
        .unwrap();
    }

    fn want() -> Expectations {
        Expectations {
            user: None,
            uid: None,
            nix_dir: None,
            docker_dir: None,
        }
    }

    fn status(report: &LayoutReport, id: &str) -> Status {
        report.checks.iter().find(|c| c.id == id).unwrap().status
    }

    #[test]
    fn a_seed_layout_is_found_and_the_user_recognised() {
        let dir = tempfile::tempdir().unwrap();
        seed(dir.path());
        let report = check(dir.path(), &want());
        assert_eq!(report.user.as_deref(), Some("qwe"));
        assert_eq!(report.user_from, "volume");
        assert_eq!(report.problems().count(), 0, "{report:?}");
        assert_eq!(status(&report, "persistence-marker"), Status::Absent);
        assert!(
            report
                .checks
                .iter()
                .find(|c| c.id == "nix-store")
                .unwrap()
                .detail
                .starts_with("1 ")
        );
    }

    #[test]
    fn wrong_owner_uid_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        seed(dir.path());
        let owner = fs::metadata(dir.path().join("qwe")).unwrap().uid();
        let report = check(
            dir.path(),
            &Expectations {
                user: Some("qwe".into()),
                uid: Some(owner + 1),
                ..want()
            },
        );
        assert_eq!(status(&report, "home"), Status::Wrong);
    }

    #[test]
    fn loose_ssh_permissions_are_wrong() {
        let dir = tempfile::tempdir().unwrap();
        seed(dir.path());
        fs::set_permissions(
            dir.path().join("qwe/.ssh/id_ed25519"),
            fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let report = check(dir.path(), &want());
        assert_eq!(status(&report, "ssh"), Status::Wrong);
        fs::set_permissions(
            dir.path().join("qwe/.ssh"),
            fs::Permissions::from_mode(0o777),
        )
        .unwrap();
        assert_eq!(status(&check(dir.path(), &want()), "ssh"), Status::Wrong);
    }

    #[test]
    fn symlinks_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        seed(dir.path());
        fs::remove_dir(dir.path().join("qwe/projects")).unwrap();
        symlink("/", dir.path().join("qwe/projects")).unwrap();
        assert_eq!(
            status(&check(dir.path(), &want()), "projects"),
            Status::Wrong
        );
    }

    #[test]
    fn missing_items_and_docker_off_the_volume_are_problems() {
        let dir = tempfile::tempdir().unwrap();
        seed(dir.path());
        fs::remove_dir_all(dir.path().join("qwe/nix/var")).unwrap();
        let report = check(
            dir.path(),
            &Expectations {
                user: Some("qwe".into()),
                docker_dir: Some(Err("/var/lib/docker".into())),
                ..want()
            },
        );
        assert_eq!(status(&report, "nix-db"), Status::Missing);
        assert_eq!(status(&report, "docker"), Status::Wrong);
        assert_eq!(report.problems().count(), 2);
    }

    #[test]
    fn no_user_anywhere_is_one_missing_item() {
        let dir = tempfile::tempdir().unwrap();
        let report = check(dir.path(), &want());
        assert_eq!(report.user, None);
        assert_eq!(report.problems().count(), 1);
    }
}
