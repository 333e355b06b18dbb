//! The git module against real repositories: bare remotes over `file://` and over SSH to a
//! real sshd on 127.0.0.1. The fixtures are made with the git command line, so what the
//! module reads and writes is checked by a second implementation.

// Tests and benchmarks stop at the first thing they cannot set up: unwrap says where.
#![allow(clippy::unwrap_used)]

mod support;

use std::fs;
use std::os::unix::fs::chown;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

use nixos_lifeboat::exec::git::{
    self, Change, Credentials, GitError, Phase, Relation, TransferProgress,
};
use support::sshd::{
    Agent, Sshd, fingerprint, free_port, generate_key, generate_key_with_passphrase,
};

/// Run git with a fixed identity (the machine's global one must not matter) and return stdout.
fn git_in(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=Fixture",
            "-c",
            "user.email=fixture@example.org",
        ])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "protocol.file.allow=always",
        ])
        .args(args)
        .output()
        .expect("run git (scripts/test.sh installs it)");
    assert!(
        output.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// A bare remote and a clone of it with one pushed commit on `main`.
struct Fixture {
    dir: tempfile::TempDir,
    remote: PathBuf,
    work: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::Builder::new()
            .prefix("lifeboat-git-")
            .tempdir()
            .unwrap();
        let remote = dir.path().join("remote.git");
        let work = dir.path().join("work");
        git_in(dir.path(), &["init", "-q", "--bare", "remote.git"]);
        git_in(dir.path(), &["clone", "-q", &url(&remote), "work"]);
        fs::write(work.join("flake.nix"), "{\n  outputs = _: { };\n}\n").unwrap();
        fs::write(work.join("configuration.nix"), "{ ... }: { }\n").unwrap();
        fs::write(work.join(".gitignore"), "*.log\nresult\n").unwrap();
        git_in(&work, &["add", "."]);
        git_in(&work, &["commit", "-q", "-m", "initial"]);
        git_in(&work, &["push", "-q", "-u", "origin", "main"]);
        Fixture { dir, remote, work }
    }

    fn url(&self) -> String {
        url(&self.remote)
    }

    /// A second clone that adds a commit on the remote's `main`.
    fn commit_on_remote(&self, name: &str) -> String {
        let other = self.dir.path().join(format!("other-{name}"));
        git_in(
            self.dir.path(),
            &["clone", "-q", &self.url(), other.to_str().unwrap()],
        );
        fs::write(other.join(name), name).unwrap();
        git_in(&other, &["add", name]);
        git_in(&other, &["commit", "-q", "-m", name]);
        git_in(&other, &["push", "-q", "origin", "main"]);
        git_in(&other, &["rev-parse", "HEAD"])
    }

    fn commit_locally(&self, name: &str) -> String {
        fs::write(self.work.join(name), name).unwrap();
        git_in(&self.work, &["add", name]);
        git_in(&self.work, &["commit", "-q", "-m", name]);
        git_in(&self.work, &["rev-parse", "HEAD"])
    }

    fn remote_head(&self) -> String {
        git_in(&self.remote, &["rev-parse", "main"])
    }
}

fn url(path: &Path) -> String {
    format!("file://{}", path.display())
}

fn no_cancel() -> AtomicBool {
    AtomicBool::new(false)
}

fn ignore(_: TransferProgress) {}

fn fetch(f: &Fixture) {
    git::fetch(
        &f.work,
        "origin",
        "main",
        &Credentials::default(),
        &mut ignore,
        &no_cancel(),
    )
    .unwrap();
}

#[test]
fn a_clean_repository_reports_its_branch_and_head() {
    let f = Fixture::new();
    let status = git::status(&f.work).unwrap();
    assert_eq!(status.branch.as_deref(), Some("main"));
    assert_eq!(status.head, Some(git_in(&f.work, &["rev-parse", "HEAD"])));
    assert!(status.is_clean(), "{status:?}");
}

#[test]
fn changed_tracked_files_and_untracked_unignored_files_are_listed_apart() {
    let f = Fixture::new();
    fs::write(f.work.join("flake.nix"), "{ changed = true; }\n").unwrap();
    fs::remove_file(f.work.join("configuration.nix")).unwrap();
    fs::write(f.work.join("staged.nix"), "{ }\n").unwrap();
    git_in(&f.work, &["add", "staged.nix"]);
    fs::create_dir_all(f.work.join("secrets/deep")).unwrap();
    fs::write(f.work.join("secrets/deep/wifi.key"), "psk").unwrap();
    fs::write(f.work.join("build.log"), "ignored").unwrap();

    let status = git::status(&f.work).unwrap();
    let mut changed: Vec<(String, Change)> = status
        .changed
        .iter()
        .map(|c| (c.path.display().to_string(), c.change))
        .collect();
    changed.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        changed,
        vec![
            ("configuration.nix".to_string(), Change::Deleted),
            ("flake.nix".to_string(), Change::Modified),
            ("staged.nix".to_string(), Change::Added),
        ]
    );
    assert_eq!(
        status.untracked,
        vec![PathBuf::from("secrets/deep/wifi.key")]
    );
    assert!(!status.is_clean());
}

#[test]
fn a_directory_that_is_no_repository_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let err = git::status(dir.path()).unwrap_err();
    assert!(matches!(err, GitError::NotARepository { .. }), "{err}");
    let missing = dir.path().join("missing");
    assert!(matches!(
        git::status(&missing),
        Err(GitError::NotARepository { .. })
    ));
}

#[test]
fn a_repository_owned_by_another_user_is_explained_with_safe_directory() {
    let f = Fixture::new();
    chown(&f.work, Some(54321), Some(54321)).unwrap();
    let err = git::status(&f.work).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, GitError::NotOwned { .. }), "{text}");
    assert_eq!(err.cause().map(|c| c.code), Some(git2::ErrorCode::Owner));
    assert!(text.contains("safe.directory"), "{text}");
    assert!(text.contains("54321"), "{text}");
    assert!(text.contains(&f.work.display().to_string()), "{text}");
}

#[test]
fn commit_all_tracked_commits_tracked_changes_only_after_a_truthful_summary() {
    let f = Fixture::new();
    git_in(&f.work, &["config", "user.name", "Repo Owner"]);
    git_in(&f.work, &["config", "user.email", "owner@example.org"]);
    fs::write(
        f.work.join("flake.nix"),
        "{\n  outputs = _: { x = 1; };\n  y = 2;\n}\n",
    )
    .unwrap();
    fs::remove_file(f.work.join("configuration.nix")).unwrap();
    fs::write(f.work.join("secret.key"), "never commit me").unwrap();

    let summary = git::diff_summary(&f.work).unwrap();
    let flake = summary
        .files
        .iter()
        .find(|d| d.path == Path::new("flake.nix"))
        .unwrap();
    assert_eq!((flake.insertions, flake.deletions), (2, 1));
    let conf = summary
        .files
        .iter()
        .find(|d| d.path == Path::new("configuration.nix"))
        .unwrap();
    assert_eq!((conf.change, conf.deletions), (Change::Deleted, 1));
    assert_eq!(summary.files.len(), 2, "{summary:?}");
    assert_eq!((summary.insertions, summary.deletions), (2, 2));

    let id = git::commit_all_tracked(&f.work, "lifeboat: commit before destroy").unwrap();
    assert_eq!(id, git_in(&f.work, &["rev-parse", "HEAD"]));
    assert_eq!(
        git_in(&f.work, &["log", "-1", "--format=%an <%ae>|%s"]),
        "Repo Owner <owner@example.org>|lifeboat: commit before destroy"
    );
    let committed = git_in(&f.work, &["show", "--name-status", "--format=", "HEAD"]);
    assert_eq!(committed, "D\tconfiguration.nix\nM\tflake.nix");
    assert_eq!(git_in(&f.work, &["status", "--porcelain"]), "?? secret.key");

    let status = git::status(&f.work).unwrap();
    assert!(status.changed.is_empty(), "{status:?}");
    assert_eq!(status.untracked, vec![PathBuf::from("secret.key")]);
    let again = git::commit_all_tracked(&f.work, "again").unwrap_err();
    assert!(matches!(again, GitError::NothingToCommit { .. }), "{again}");
}

#[test]
fn ahead_then_pushed_equals_the_remote() {
    let f = Fixture::new();
    assert_eq!(git::ahead_behind(&f.work, "main").unwrap(), Relation::Equal);
    let head = f.commit_locally("a.nix");
    f.commit_locally("b.nix");
    assert_eq!(
        git::ahead_behind(&f.work, "main").unwrap(),
        Relation::Ahead(2)
    );
    let mut sent = Vec::new();
    git::push(
        &f.work,
        "origin",
        "main",
        &Credentials::default(),
        &mut |p| sent.push(p),
        &no_cancel(),
    )
    .unwrap();
    assert_ne!(f.remote_head(), head);
    assert_eq!(f.remote_head(), git_in(&f.work, &["rev-parse", "HEAD"]));
    assert_eq!(git::ahead_behind(&f.work, "main").unwrap(), Relation::Equal);
    assert!(sent.iter().all(|p| p.phase == Phase::Sending), "{sent:?}");
}

#[test]
fn behind_shows_only_after_a_fetch() {
    let f = Fixture::new();
    f.commit_on_remote("remote.nix");
    assert_eq!(git::ahead_behind(&f.work, "main").unwrap(), Relation::Equal);
    fetch(&f);
    assert_eq!(
        git::ahead_behind(&f.work, "main").unwrap(),
        Relation::Behind(1)
    );
}

#[test]
fn a_diverged_branch_is_reported_and_its_push_rejected_without_force() {
    let f = Fixture::new();
    let theirs = f.commit_on_remote("remote.nix");
    f.commit_locally("local.nix");
    fetch(&f);
    assert_eq!(
        git::ahead_behind(&f.work, "main").unwrap(),
        Relation::Diverged {
            ahead: 1,
            behind: 1
        }
    );
    let err = git::push(
        &f.work,
        "origin",
        "main",
        &Credentials::default(),
        &mut ignore,
        &no_cancel(),
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, GitError::PushRejected { .. }), "{text}");
    assert!(text.contains("never forces"), "{text}");
    assert_eq!(f.remote_head(), theirs);
}

#[test]
fn a_branch_without_upstream_gets_one_when_pushed() {
    let f = Fixture::new();
    git_in(&f.work, &["switch", "-q", "-c", "laptop"]);
    assert_eq!(
        git::ahead_behind(&f.work, "laptop").unwrap(),
        Relation::NoUpstream
    );
    git::push(
        &f.work,
        "origin",
        "laptop",
        &Credentials::default(),
        &mut ignore,
        &no_cancel(),
    )
    .unwrap();
    assert_eq!(
        git::ahead_behind(&f.work, "laptop").unwrap(),
        Relation::Equal
    );
    assert_eq!(
        git_in(&f.work, &["rev-parse", "--abbrev-ref", "laptop@{upstream}"]),
        "origin/laptop"
    );
    let missing = git::ahead_behind(&f.work, "nope").unwrap_err();
    assert!(
        matches!(missing, GitError::NoSuchBranch { .. }),
        "{missing}"
    );
}

#[test]
fn clone_reports_progress_and_checks_out_the_branch() {
    let f = Fixture::new();
    for i in 0..20 {
        f.commit_locally(&format!("module-{i}.nix"));
    }
    git_in(&f.work, &["push", "-q", "origin", "main"]);
    let dest = f.dir.path().join("clone");
    let mut events = Vec::new();
    let id = git::clone(
        &f.url(),
        "main",
        &dest,
        &Credentials::default(),
        &mut |p| events.push(p),
        &no_cancel(),
    )
    .unwrap();
    assert_eq!(id, f.remote_head());
    assert_eq!(
        git_in(&dest, &["rev-parse", "--abbrev-ref", "HEAD"]),
        "main"
    );
    assert!(dest.join("module-19.nix").exists());
    let received: Vec<&TransferProgress> = events
        .iter()
        .filter(|p| p.phase == Phase::Receiving)
        .collect();
    assert!(!received.is_empty(), "{events:?}");
    let total = received[0].total;
    assert!(total > 40, "{events:?}");
    assert!(
        received.windows(2).all(|w| w[0].done <= w[1].done),
        "{events:?}"
    );
    assert!(events.last().unwrap().bytes > 0, "{events:?}");

    let err = git::clone(
        &f.url(),
        "main",
        &dest,
        &Credentials::default(),
        &mut ignore,
        &no_cancel(),
    )
    .unwrap_err();
    assert!(matches!(err, GitError::DestinationExists { .. }), "{err}");
    let err = git::clone(
        &f.url(),
        "nope",
        &f.dir.path().join("c2"),
        &Credentials::default(),
        &mut ignore,
        &no_cancel(),
    )
    .unwrap_err();
    assert!(matches!(err, GitError::NoSuchRemoteBranch { .. }), "{err}");
    let nowhere = url(&f.dir.path().join("nowhere.git"));
    let err = git::clone(
        &nowhere,
        "main",
        &f.dir.path().join("c3"),
        &Credentials::default(),
        &mut ignore,
        &no_cancel(),
    )
    .unwrap_err();
    assert!(matches!(err, GitError::Unreachable { .. }), "{err}");
}

#[test]
fn a_cancelled_clone_stops_and_leaves_no_checkout() {
    let f = Fixture::new();
    for i in 0..20 {
        f.commit_locally(&format!("module-{i}.nix"));
    }
    git_in(&f.work, &["push", "-q", "origin", "main"]);
    let dest = f.dir.path().join("clone");
    let cancel = no_cancel();
    let mut calls = 0;
    let err = git::clone(
        &f.url(),
        "main",
        &dest,
        &Credentials::default(),
        &mut |_| {
            calls += 1;
            cancel.store(true, Ordering::Relaxed);
        },
        &cancel,
    )
    .unwrap_err();
    assert!(matches!(err, GitError::Cancelled), "{err}");
    assert_eq!(calls, 1);
    assert!(!dest.exists());
    assert!(!f.dir.path().join(".lifeboat-clone.clone").exists());
}

#[test]
fn what_a_killed_clone_left_aside_is_removed_by_the_next_clone() {
    let f = Fixture::new();
    let dest = f.dir.path().join("clone");
    let staging = f.dir.path().join(".lifeboat-clone.clone");
    fs::create_dir_all(staging.join(".git/objects")).unwrap();
    fs::write(staging.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
    fs::create_dir(&dest).unwrap();
    let commit = git::clone(
        &f.url(),
        "main",
        &dest,
        &Credentials::default(),
        &mut ignore,
        &no_cancel(),
    )
    .unwrap();
    assert_eq!(git_in(&dest, &["rev-parse", "HEAD"]), commit);
    assert!(!staging.exists());
}

#[test]
fn fast_forward_brings_a_clean_clone_up_to_the_remote_and_refuses_otherwise() {
    let f = Fixture::new();
    let creds = Credentials::default();
    assert_eq!(
        git::fast_forward(&f.work, "origin", "main", &creds, &mut ignore, &no_cancel()).unwrap(),
        Relation::Equal
    );
    let theirs = f.commit_on_remote("remote.nix");
    fs::write(f.work.join("untracked.txt"), "kept").unwrap();
    assert_eq!(
        git::fast_forward(&f.work, "origin", "main", &creds, &mut ignore, &no_cancel()).unwrap(),
        Relation::Behind(1)
    );
    assert_eq!(git_in(&f.work, &["rev-parse", "HEAD"]), theirs);
    assert_eq!(
        fs::read_to_string(f.work.join("remote.nix")).unwrap(),
        "remote.nix"
    );
    assert_eq!(
        git_in(&f.work, &["status", "--porcelain"]),
        "?? untracked.txt"
    );

    fs::write(f.work.join("flake.nix"), "dirty").unwrap();
    let err = git::fast_forward(&f.work, "origin", "main", &creds, &mut ignore, &no_cancel())
        .unwrap_err();
    assert!(
        matches!(&err, GitError::LocalChanges { files, .. } if files == &[PathBuf::from("flake.nix")]),
        "{err}"
    );
    git_in(&f.work, &["checkout", "--", "flake.nix"]);

    f.commit_on_remote("again.nix");
    let ours = f.commit_locally("local.nix");
    let err = git::fast_forward(&f.work, "origin", "main", &creds, &mut ignore, &no_cancel())
        .unwrap_err();
    assert!(
        matches!(
            err,
            GitError::Diverged {
                ahead: 1,
                behind: 1,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(git_in(&f.work, &["rev-parse", "HEAD"]), ours);

    git_in(&f.work, &["switch", "-q", "-c", "other"]);
    let err = git::fast_forward(&f.work, "origin", "main", &creds, &mut ignore, &no_cancel())
        .unwrap_err();
    assert!(matches!(err, GitError::WrongBranch { .. }), "{err}");
}

#[test]
fn the_mirror_holds_every_branch_and_tag_and_follows_the_source() {
    let f = Fixture::new();
    git_in(&f.work, &["branch", "laptop"]);
    git_in(&f.work, &["branch", "old"]);
    git_in(&f.work, &["tag", "v1"]);
    let mirror_dir = f.dir.path().join("volume/qwe/nixos-config-backup.git");
    fs::create_dir_all(mirror_dir.parent().unwrap()).unwrap();
    assert_eq!(git::mirror_updated_at(&mirror_dir).unwrap(), None);

    let before = jiff::Timestamp::now();
    let first = git::mirror_to(&f.work, &mirror_dir).unwrap();
    assert_eq!((first.branches, first.tags), (3, 1));
    assert_eq!(
        git_in(&mirror_dir, &["rev-parse", "--is-bare-repository"]),
        "true"
    );
    let updated = git::mirror_updated_at(&mirror_dir).unwrap().unwrap();
    assert!(
        updated >= before.round(jiff::Unit::Second).unwrap() - jiff::SignedDuration::from_secs(1)
    );

    let head = f.commit_locally("new.nix");
    git_in(&f.work, &["branch", "-D", "old"]);
    git_in(&f.work, &["tag", "v2"]);
    let second = git::mirror_to(&f.work, &mirror_dir).unwrap();
    assert_eq!((second.branches, second.tags), (2, 2));
    assert_eq!(git_in(&mirror_dir, &["rev-parse", "main"]), head);
    assert!(second.updated_at >= first.updated_at);

    let restored = f.dir.path().join("restored");
    let id = git::clone(
        &url(&mirror_dir),
        "main",
        &restored,
        &Credentials::default(),
        &mut ignore,
        &no_cancel(),
    )
    .unwrap();
    assert_eq!(id, head);
}

#[test]
fn remote_urls_are_read_and_compared_across_spellings() {
    let f = Fixture::new();
    let origin = git::remote_url(&f.work, "origin").unwrap().unwrap();
    assert!(
        git::same_remote(&origin, f.remote.to_str().unwrap()),
        "{origin}"
    );
    assert_eq!(git::remote_url(&f.work, "upstream").unwrap(), None);
    let err = git::fetch(
        &f.work,
        "upstream",
        "main",
        &Credentials::default(),
        &mut ignore,
        &no_cancel(),
    )
    .unwrap_err();
    assert!(matches!(err, GitError::NoSuchRemote { .. }), "{err}");
}

/// An SSH remote: a bare repository served by a real sshd, a client key in a directory
/// standing in for the volume, and a known_hosts file there.
struct SshRemote {
    fixture: Fixture,
    sshd: Sshd,
    volume: tempfile::TempDir,
    key: PathBuf,
    known_hosts: PathBuf,
}

impl SshRemote {
    fn new() -> SshRemote {
        let fixture = Fixture::new();
        let sshd = Sshd::start();
        let volume = tempfile::tempdir().unwrap();
        fs::create_dir_all(volume.path().join("qwe/.ssh")).unwrap();
        let key = generate_key(&volume.path().join("qwe/.ssh"), "id_ed25519");
        sshd.authorize(&key);
        let known_hosts = volume.path().join("qwe/.ssh/known_hosts");
        fs::write(&known_hosts, sshd.known_hosts_line()).unwrap();
        SshRemote {
            fixture,
            sshd,
            volume,
            key,
            known_hosts,
        }
    }

    fn url(&self) -> String {
        self.sshd.url(&self.fixture.remote)
    }

    fn creds(&self) -> Credentials {
        Credentials {
            ssh_key: Some(self.key.clone()),
            known_hosts: vec![self.known_hosts.clone()],
            ..Credentials::default()
        }
    }

    fn clone_with(&self, creds: &Credentials) -> Result<String, GitError> {
        let dest = self.volume.path().join(format!("clone-{}", free_port()));
        git::clone(&self.url(), "main", &dest, creds, &mut ignore, &no_cancel())
    }
}

#[test]
fn ssh_clone_and_push_with_the_key_on_the_volume() {
    let r = SshRemote::new();
    let dest = r.volume.path().join("etc-nixos");
    let mut events = Vec::new();
    let id = git::clone(
        &r.url(),
        "main",
        &dest,
        &r.creds(),
        &mut |p| events.push(p),
        &no_cancel(),
    )
    .unwrap_or_else(|e| panic!("{e}\nsshd log:\n{}", r.sshd.log()));
    assert_eq!(id, r.fixture.remote_head());
    assert!(!events.is_empty());

    fs::write(dest.join("hardware-configuration.nix"), "{ }\n").unwrap();
    git_in(&dest, &["add", "hardware-configuration.nix"]);
    git::commit_all_tracked(&dest, "hardware").unwrap();
    git::push(
        &dest,
        "origin",
        "main",
        &r.creds(),
        &mut ignore,
        &no_cancel(),
    )
    .unwrap();
    assert_eq!(
        r.fixture.remote_head(),
        git_in(&dest, &["rev-parse", "HEAD"])
    );
    assert_eq!(
        git::ls_remote_reachable(&r.url(), &r.creds()).unwrap(),
        vec!["main".to_string()]
    );

    let theirs = r.fixture.commit_on_remote("elsewhere.nix");
    fs::write(
        dest.join("configuration.nix"),
        "{ ... }: { networking.hostName = \"vps\"; }\n",
    )
    .unwrap();
    git::commit_all_tracked(&dest, "local").unwrap();
    let err = git::push(
        &dest,
        "origin",
        "main",
        &r.creds(),
        &mut ignore,
        &no_cancel(),
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, GitError::PushRejected { .. }), "{text}");
    assert!(text.contains("never forces"), "{text}");
    assert_eq!(r.fixture.remote_head(), theirs);
}

#[test]
fn a_push_the_server_refuses_says_why() {
    let r = SshRemote::new();
    let hook = r.fixture.remote.join("hooks/pre-receive");
    fs::write(
        &hook,
        "#!/bin/sh\necho 'config is frozen for the migration' >&2\nexit 1\n",
    )
    .unwrap();
    fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let before = r.fixture.remote_head();
    r.fixture.commit_locally("local.nix");
    // The fixture's clone pushes over file://, which runs no hooks: point it at sshd.
    git_in(&r.fixture.work, &["remote", "set-url", "origin", &r.url()]);
    let err = git::push(
        &r.fixture.work,
        "origin",
        "main",
        &r.creds(),
        &mut ignore,
        &no_cancel(),
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, GitError::PushRejected { .. }), "{text}");
    assert!(
        text.contains("config is frozen for the migration"),
        "{text}"
    );
    assert_eq!(r.fixture.remote_head(), before);
}

#[test]
fn an_unknown_host_key_carries_its_fingerprint_and_can_be_accepted() {
    let r = SshRemote::new();
    let creds = Credentials {
        known_hosts: vec![r.volume.path().join("missing_known_hosts")],
        ..r.creds()
    };
    let err = git::ls_remote_reachable(&r.url(), &creds).unwrap_err();
    let GitError::HostKeyUnknown { host, key, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(key.fingerprint(), r.sshd.fingerprint());
    assert_eq!(key.fingerprint(), fingerprint(&r.sshd.host_key));
    assert_eq!(host, &format!("[127.0.0.1]:{}", r.sshd.port));
    assert!(err.to_string().contains(&r.sshd.fingerprint()), "{err}");
    assert_eq!(key.known_hosts_line(host) + "\n", r.sshd.known_hosts_line());

    let accepted = Credentials {
        accepted_host_key: Some(key.fingerprint()),
        ..creds
    };
    r.clone_with(&accepted).unwrap();
}

#[test]
fn a_changed_host_key_is_refused_even_when_a_fingerprint_was_accepted() {
    let r = SshRemote::new();
    let impostor_dir = tempfile::tempdir().unwrap();
    let impostor = generate_key(impostor_dir.path(), "impostor");
    let public = fs::read_to_string(impostor.with_extension("pub")).unwrap();
    let mut fields = public.split_whitespace();
    let line = format!(
        "# earlier entry\n[127.0.0.1]:{} {} {}\n",
        r.sshd.port,
        fields.next().unwrap(),
        fields.next().unwrap()
    );
    fs::write(&r.known_hosts, line).unwrap();
    let creds = Credentials {
        accepted_host_key: Some(r.sshd.fingerprint()),
        ..r.creds()
    };
    let err = r.clone_with(&creds).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, GitError::HostKeyChanged { line: 2, .. }),
        "{text}"
    );
    assert!(
        text.contains("CHANGED") && text.contains(&r.sshd.fingerprint()),
        "{text}"
    );
}

#[test]
fn a_key_the_server_does_not_know_is_refused_as_authentication() {
    let r = SshRemote::new();
    let wrong = generate_key(r.volume.path(), "wrong");
    let creds = Credentials {
        ssh_key: Some(wrong.clone()),
        ..r.creds()
    };
    let err = git::ls_remote_reachable(&r.url(), &creds).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, GitError::AuthRefused { .. }), "{text}");
    assert!(text.contains(&wrong.display().to_string()), "{text}");
}

#[test]
fn a_missing_repository_behind_ssh_is_not_an_authentication_problem() {
    let r = SshRemote::new();
    let missing = r.sshd.url(&r.volume.path().join("missing.git"));
    let err = git::ls_remote_reachable(&missing, &r.creds()).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, GitError::Git { .. }), "{text}");
    assert!(
        text.contains("does not appear to be a git repository"),
        "{text}"
    );
    assert!(text.contains(&missing), "{text}");
}

#[test]
fn a_closed_port_is_unreachable() {
    let r = SshRemote::new();
    let closed = format!("ssh://root@127.0.0.1:{}/srv/repo.git", free_port());
    let err = git::ls_remote_reachable(&closed, &r.creds()).unwrap_err();
    assert!(matches!(err, GitError::Unreachable { .. }), "{err}");
}

#[test]
fn a_key_with_a_passphrase_is_skipped_with_the_reason() {
    let r = SshRemote::new();
    let locked = generate_key_with_passphrase(r.volume.path(), "locked", "correct horse");
    r.sshd.authorize(&locked);
    let creds = Credentials {
        ssh_key: Some(locked),
        ..r.creds()
    };
    let err = git::ls_remote_reachable(&r.url(), &creds).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, GitError::AuthRefused { .. }), "{text}");
    assert!(
        text.contains("has a passphrase: load it into ssh-agent"),
        "{text}"
    );
}

#[test]
fn ssh_agent_gets_its_turn_after_a_key_file_that_fails() {
    let r = SshRemote::new();
    let agent = Agent::start();
    agent.add(&r.key);
    // SAFETY: nextest runs each test in a process of its own, and no other thread of this
    // one reads the environment while it is set (libssh2 reads it later, on this thread).
    unsafe { std::env::set_var("SSH_AUTH_SOCK", &agent.socket) };
    let wrong = generate_key(r.volume.path(), "wrong");
    let locked = generate_key_with_passphrase(r.volume.path(), "locked", "pw");
    let missing = r.volume.path().join("missing");
    for key in [wrong, locked, missing] {
        let creds = Credentials {
            ssh_key: Some(key.clone()),
            ssh_agent: true,
            ..r.creds()
        };
        let heads = git::ls_remote_reachable(&r.url(), &creds)
            .unwrap_or_else(|e| panic!("with {}: {e}", key.display()));
        assert_eq!(heads, vec!["main".to_string()]);
    }
    let without_agent = Credentials {
        ssh_key: None,
        ..r.creds()
    };
    let err = git::ls_remote_reachable(&r.url(), &without_agent).unwrap_err();
    assert!(matches!(err, GitError::AuthRefused { .. }), "{err}");
}

/// An HTTP server on 127.0.0.1 that refuses every request with 401 (Basic) and reports
/// each request's `Authorization` header; it stops when the returned flag is set.
fn refusing_http_server() -> (
    u16,
    std::sync::mpsc::Receiver<Option<String>>,
    std::sync::Arc<AtomicBool>,
) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let stop_server = stop.clone();
    std::thread::spawn(move || {
        while !stop_server.load(Ordering::Relaxed) {
            let Ok((stream, _)) = listener.accept() else {
                std::thread::sleep(std::time::Duration::from_millis(10));
                continue;
            };
            stream.set_nonblocking(false).unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut authorization = None;
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                if let Some(value) = line.strip_prefix("Authorization: ") {
                    authorization = Some(value.trim().to_string());
                }
                line.clear();
            }
            let _ = tx.send(authorization);
            let mut stream = stream;
            let _ = stream.write_all(
                b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\n\
                  Content-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    (port, rx, stop)
}

#[test]
fn the_https_token_is_sent_as_a_password_and_never_shown() {
    use base64::Engine;
    let (port, requests, stop) = refusing_http_server();
    let secret = "tok-SECRET-4711";
    let creds = Credentials {
        https_token: Some(git::Token::new(secret, "$LIFEBOAT_GIT_TOKEN")),
        ..Credentials::default()
    };
    let basic = |user: &str| {
        let pair = format!("{user}:{secret}");
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    };
    for (url, user) in [
        (
            format!("http://127.0.0.1:{port}/qwe/cfg.git"),
            "x-access-token",
        ),
        (format!("http://qwe@127.0.0.1:{port}/qwe/cfg.git"), "qwe"),
    ] {
        let err = git::ls_remote_reachable(&url, &creds).unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(matches!(err, GitError::AuthRefused { .. }), "{text}");
        assert!(text.contains("token from $LIFEBOAT_GIT_TOKEN"), "{text}");
        assert!(!text.contains(secret), "{text}");
        let seen: Vec<Option<String>> = requests.try_iter().collect();
        assert!(seen.contains(&Some(basic(user))), "{seen:?}");
        // Offered once: no retry loop with a refused token.
        let with_token = seen.iter().filter(|a| **a == Some(basic(user))).count();
        assert_eq!(with_token, 1, "{seen:?}");
    }
    let in_url = format!("http://qwe:{secret}@127.0.0.1:{port}/qwe/cfg.git");
    let err = git::ls_remote_reachable(&in_url, &Credentials::default()).unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(!text.contains(secret), "{text}");
    assert!(text.contains("http://qwe:***@127.0.0.1"), "{text}");
    stop.store(true, Ordering::Relaxed);
}

#[test]
fn ssh_transfers_stop_when_cancelled() {
    let r = SshRemote::new();
    for i in 0..20 {
        r.fixture.commit_locally(&format!("module-{i}.nix"));
    }
    git_in(&r.fixture.work, &["push", "-q", "origin", "main"]);
    let cancel = no_cancel();
    let dest = r.volume.path().join("clone");
    let mut calls = 0;
    let err = git::clone(
        &r.url(),
        "main",
        &dest,
        &r.creds(),
        &mut |_| {
            calls += 1;
            cancel.store(true, Ordering::Relaxed);
        },
        &cancel,
    )
    .unwrap_err();
    assert!(matches!(err, GitError::Cancelled), "{err}");
    assert!(calls <= 1, "{calls} progress reports after cancelling");
    assert!(!dest.join("flake.nix").exists());

    // Cancelled before it starts: stopped at the first callback, the server's own
    // messages ("Enumerating objects") included.
    let dest = r.volume.path().join("clone-2");
    let err = git::clone(&r.url(), "main", &dest, &r.creds(), &mut ignore, &cancel).unwrap_err();
    assert!(matches!(err, GitError::Cancelled), "{err}");

    let before = r.fixture.remote_head();
    git_in(&r.fixture.work, &["remote", "set-url", "origin", &r.url()]);
    r.fixture.commit_locally("late.nix");
    let err = git::push(
        &r.fixture.work,
        "origin",
        "main",
        &r.creds(),
        &mut ignore,
        &cancel,
    )
    .unwrap_err();
    assert!(matches!(err, GitError::Cancelled), "{err}");
    assert_eq!(r.fixture.remote_head(), before);
}

/// libssh2 asks for an ed25519 host key first (libgit2 steers that only from
/// `~/.ssh/known_hosts`), so a host that the given files know only by another key type is
/// unknown, and the error names the type they do know.
#[test]
fn a_host_known_only_by_another_key_type_is_unknown_and_says_so() {
    let fixture = Fixture::new();
    let sshd = Sshd::start_with_host_keys(&["ed25519", "ecdsa"]);
    let volume = tempfile::tempdir().unwrap();
    let key = generate_key(volume.path(), "id");
    sshd.authorize(&key);
    let known_hosts = volume.path().join("known_hosts");
    let creds = Credentials {
        ssh_key: Some(key),
        known_hosts: vec![known_hosts.clone()],
        ..Credentials::default()
    };
    let url = sshd.url(&fixture.remote);
    fs::write(&known_hosts, sshd.known_hosts_line_for(&sshd.host_keys[1])).unwrap();
    let err = git::ls_remote_reachable(&url, &creds).unwrap_err();
    let GitError::HostKeyUnknown {
        key, other_types, ..
    } = &err
    else {
        panic!("{err}");
    };
    assert_eq!(key.fingerprint(), fingerprint(&sshd.host_keys[0]));
    assert_eq!(other_types, &["ecdsa-sha2-nistp256".to_string()]);
    assert!(
        err.to_string().contains("only by ecdsa-sha2-nistp256 keys"),
        "{err}"
    );

    fs::write(&known_hosts, sshd.known_hosts_line_for(&sshd.host_keys[0])).unwrap();
    git::ls_remote_reachable(&url, &creds).unwrap();
}
