//! `lifeboat predestroy` on a prepared host (tests/support/predestroy_host.rs): the volume
//! (a real loop device) mounted at a home, `/nix` bound from the store on it (a real Nix
//! store, built into by nix-build), a config repository with a bare remote over file://, a
//! stand-in home-manager, and rsync to a local directory. Every run happens in a mount
//! namespace of its own, where the test may bind `/nix` and `/run` without touching the host.

// Tests and benchmarks stop at the first thing they cannot set up: unwrap says where.
#![allow(clippy::unwrap_used)]

#[path = "support/predestroy_host.rs"]
mod predestroy_host;
mod support;

use support::sshd::{self, Sshd};

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::process::Command;

use nixos_lifeboat::card::RecoveryCard;
use predestroy_host::{ACCEPTED, Host, git, sh};
use serde_json::Value;
use support::lifeboat_bin;

fn summary(events: &[Value]) -> &Value {
    let last = events.last().unwrap();
    assert_eq!(last["event"], "summary");
    last
}

fn step<'a>(events: &'a [Value], id: &str) -> &'a Value {
    summary(events)["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap()
}

fn blockers(events: &[Value]) -> Vec<String> {
    summary(events)["blockers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["step"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn without_yes_every_blocker_is_reported_and_nothing_changes() {
    let host = Host::new(true);
    host.make_dirty_and_unpushed();
    let head = git(&host.repo, "rev-parse HEAD");
    let remote_head = git(&host.remote, "rev-parse main");
    let status = git(&host.repo, "status --porcelain");

    let (code, events) = host.predestroy(true, "");
    assert_eq!(code, 4, "{events:#?}");
    assert_eq!(summary(&events)["ready"], false);
    let blockers = blockers(&events);
    for id in [
        "config-repo-committed",
        "config-repo-pushed",
        "package-lists",
        "recovery-card",
    ] {
        assert!(
            blockers.contains(&id.to_string()),
            "{id} not in {blockers:?}"
        );
    }
    assert_eq!(step(&events, "home-on-volume")["status"], "passed");
    assert_eq!(step(&events, "nix-on-volume")["status"], "passed");
    assert_eq!(step(&events, "docker-on-volume")["status"], "skipped");
    let question = step(&events, "config-repo-committed")["message"]
        .as_str()
        .unwrap();
    assert!(question.contains("not confirmed"), "{question}");

    assert_eq!(git(&host.repo, "rev-parse HEAD"), head);
    assert_eq!(git(&host.remote, "rev-parse main"), remote_head);
    assert_eq!(git(&host.repo, "status --porcelain"), status);
    assert_eq!(host.volume_file("qwe/.lifeboat/recovery.toml"), None);
    assert_eq!(host.volume_file("qwe/nixos-config-backup.git/HEAD"), None);
}

#[test]
fn with_yes_it_commits_pushes_saves_and_ends_ready() {
    let host = Host::new(true);
    host.make_dirty_and_unpushed();
    let (code, events) = host.predestroy(true, "--yes");
    assert_eq!(code, 0, "{events:#?}");
    assert_eq!(summary(&events)["ready"], true, "{:#?}", summary(&events));

    // Committed and pushed: the remote's branch is the local head; the secret stayed local.
    assert_eq!(
        git(&host.repo, "rev-parse HEAD"),
        git(&host.remote, "rev-parse main")
    );
    assert_eq!(git(&host.repo, "status --porcelain"), "?? secrets.nix");
    let committed = git(&host.remote, "show main:configuration.nix");
    assert!(committed.contains("openssh"));

    // The untracked secret is saved on the volume, private to the user.
    assert_eq!(
        host.volume_file("qwe/.lifeboat/untracked/secrets.nix")
            .as_deref(),
        Some("{ token = \"s3cret\"; }")
    );
    assert_eq!(
        host.volume_stat("qwe/.lifeboat/untracked/secrets.nix"),
        "1000 600"
    );
    assert_eq!(host.volume_stat("qwe/.lifeboat"), "1000 700");

    // Lists, marker and card.
    let requisites = host
        .volume_file("qwe/.lifeboat/system-requisites.txt")
        .unwrap();
    assert_eq!(requisites, host.system);
    let nix_env = host
        .volume_file("qwe/.lifeboat/nix-env-packages.txt")
        .unwrap();
    assert_eq!(nix_env, "nixos-system-devserver-test");
    let hm = host
        .volume_file("qwe/.lifeboat/home-manager-packages.txt")
        .unwrap();
    assert!(hm.contains("ripgrep-14.1.0"));
    assert_eq!(
        host.volume_stat("qwe/.lifeboat/system-requisites.txt"),
        "1000 644"
    );
    let card_text = host.volume_file("qwe/.lifeboat/recovery.toml").unwrap();
    let card_path = host.sandbox.dir.join("card.toml");
    fs::write(&card_path, card_text).unwrap();
    let card = RecoveryCard::load(&card_path).unwrap();
    assert_eq!(card.repository.commit, git(&host.repo, "rev-parse HEAD"));
    assert_eq!(
        card.repository.url,
        format!("file://{}", host.remote.display())
    );
    assert_eq!((card.user.as_str(), card.uid), ("qwe", 1000));
    assert_eq!(card.repository.flake_host, "devserver");
    assert_eq!(card.volumes[0].device, host.sandbox.by_id_link);
    assert_eq!(card.store.as_ref().unwrap().paths, 1);
    assert_eq!(card.nixos_version.as_deref(), None);
    // The recovery sheet beside it: this machine's commands, owned by the user.
    let sheet = host.volume_file("qwe/.lifeboat/RECOVERY.md").unwrap();
    for expected in [
        host.sandbox.by_id_link.display().to_string(),
        card.repository.commit.clone(),
        "host `devserver`".to_string(),
        "uid 1000".to_string(),
        "lifeboat recover".to_string(),
        format!("- Rehearsed: commit `{}`", card.repository.commit),
    ] {
        assert!(sheet.contains(&expected), "{expected} not in:\n{sheet}");
    }
    assert_eq!(host.volume_stat("qwe/.lifeboat/RECOVERY.md"), "1000 644");
    let marker = host
        .volume_file("qwe/.lifeboat/persistence-marker")
        .unwrap();
    assert!(marker.contains(card.persistence_nonce.as_deref().unwrap()));

    // The mirror on the volume holds the pushed branch.
    let mirror_head = host.in_namespace(
        false,
        &format!(
            "git -c safe.directory='*' -C {}/qwe/nixos-config-backup.git rev-parse main",
            host.home.display()
        ),
    );
    assert_eq!(mirror_head, git(&host.repo, "rev-parse HEAD"));
    assert_eq!(host.volume_stat("qwe/nixos-config-backup.git"), "0 755");

    // The backup holds the home, hard links kept, nothing deleted at the target.
    let store_link = fs::read_dir(host.backup.join("nix/store/.links"))
        .unwrap()
        .count();
    assert!(store_link > 0);
    let licence = fs::read_dir(host.backup.join("nix/store/.links"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert!(
        fs::metadata(&licence).unwrap().nlink() > 1,
        "hard links were not kept"
    );

    // Running again changes nothing and is still ready.
    let (code, events) = host.predestroy(true, "--yes");
    assert_eq!(code, 0, "{events:#?}");
    assert!(
        step(&events, "config-repo-committed")["message"]
            .as_str()
            .unwrap()
            .contains("clean")
    );
}

#[test]
fn a_branch_behind_or_diverged_is_a_blocker_and_never_forced() {
    let host = Host::new(true);
    let other = host.sandbox.dir.join("other-clone");
    sh(&format!(
        "git clone -q {} {}",
        host.remote.display(),
        other.display()
    ));
    fs::write(other.join("remote-change.nix"), "{ }\n").unwrap();
    git(&other, "add -A");
    git(&other, "commit -q -m remote");
    git(&other, "push -q origin main");
    let remote_head = git(&host.remote, "rev-parse main");

    let (code, events) = host.predestroy(true, "--yes");
    assert_eq!(code, 1, "{events:#?}");
    let pushed = step(&events, "config-repo-pushed");
    assert_eq!(pushed["status"], "failed");
    assert!(
        pushed["message"].as_str().unwrap().contains("behind"),
        "{pushed}"
    );
    assert_eq!(summary(&events)["ready"], false);

    fs::write(host.repo.join("local-change.nix"), "{ }\n").unwrap();
    git(&host.repo, "add -A");
    git(&host.repo, "commit -q -m local");
    let (code, events) = host.predestroy(true, "--yes");
    assert_eq!(code, 1);
    let pushed = step(&events, "config-repo-pushed");
    assert!(
        pushed["message"].as_str().unwrap().contains("diverged"),
        "{pushed}"
    );
    assert_eq!(
        git(&host.remote, "rev-parse main"),
        remote_head,
        "the remote was changed"
    );
}

#[test]
fn nix_not_bound_from_the_volume_is_a_blocker() {
    let host = Host::new(true);
    let (code, events) = host.predestroy(false, "--yes");
    assert_eq!(code, 1, "{events:#?}");
    let nix = step(&events, "nix-on-volume");
    assert_eq!(nix["status"], "failed");
    assert!(
        nix["message"]
            .as_str()
            .unwrap()
            .contains("not a mount point"),
        "{nix}"
    );
    assert!(blockers(&events).contains(&"nix-on-volume".to_string()));
}

/// The seed's "Multiple Volumes": the store is a volume of its own, mounted at /nix (here
/// the same loop device under another name, mounted whole a second time), not a bind.
#[test]
fn a_store_on_a_volume_of_its_own_must_be_mounted_at_nix_from_it() {
    let host = Host::new(true);
    let config = host.sandbox.dir.join("two-volumes.toml");
    let text = fs::read_to_string(host.config())
        .unwrap()
        .replace(
            "\n[nix_store]\n",
            &format!(
                "\n[[volume]]\ndevice = \"{}\"\nmount = \"/nix\"\n\n[nix_store]\n",
                host.sandbox.loop_device.display()
            ),
        )
        .replace(
            &format!("source = \"{}/qwe/nix\"\n", host.home.display()),
            "",
        );
    fs::write(&config, text).unwrap();
    let run = |mount_nix: bool| {
        let out = host.sandbox.dir.join("two-volumes.jsonl");
        let script = format!(
            "{mount}set +e\n{bin} -c {config} predestroy --json >{out} 2>{out}.err\ntrue",
            mount = if mount_nix {
                format!("mount {} /nix\n", host.sandbox.loop_device.display())
            } else {
                String::new()
            },
            bin = lifeboat_bin().display(),
            config = config.display(),
            out = out.display(),
        );
        host.in_namespace(false, &script);
        let events: Vec<Value> = fs::read_to_string(&out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(
            !events.is_empty(),
            "{}",
            fs::read_to_string(out.with_extension("jsonl.err")).unwrap_or_default()
        );
        step(&events, "nix-on-volume").clone()
    };
    let mounted = run(true);
    assert_eq!(mounted["status"], "passed", "{mounted}");
    assert!(
        mounted["message"]
            .as_str()
            .unwrap()
            .contains("/nix is the store's own volume"),
        "{mounted}"
    );
    let unmounted = run(false);
    assert_eq!(unmounted["status"], "failed", "{unmounted}");
    assert!(
        unmounted["message"]
            .as_str()
            .unwrap()
            .contains("/nix is not a mount point"),
        "{unmounted}"
    );
}

#[test]
fn a_home_on_the_root_disk_is_a_blocker_and_nothing_is_written_there() {
    let host = Host::new(true);
    let config = host.config();
    let out = Command::new(lifeboat_bin())
        .args([
            "-c",
            config.to_str().unwrap(),
            "predestroy",
            "--json",
            "--yes",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let events: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let home = step(&events, "home-on-volume");
    assert_eq!(home["status"], "failed");
    assert!(
        home["message"]
            .as_str()
            .unwrap()
            .contains("not a mount point")
    );
    for id in [
        "config-mirror",
        "package-lists",
        "persistence-marker",
        "recovery-card",
        "backup",
    ] {
        assert_eq!(step(&events, id)["status"], "skipped", "{id}");
    }
    assert!(
        !host.home.join("qwe").exists(),
        "something was written on the root disk"
    );
}

#[test]
fn a_token_in_the_url_or_the_environment_never_reaches_events_or_transcript() {
    let host = Host::new(true);
    git(
        &host.repo,
        "remote set-url origin https://lifeboat:url-s3cret@127.0.0.1:9/nixos-config.git",
    );
    let config = host.config();
    let text = fs::read_to_string(&config).unwrap().replace(
        &format!("file://{}", host.remote.display()),
        "https://lifeboat:url-s3cret@127.0.0.1:9/nixos-config.git",
    );
    fs::write(&config, text).unwrap();
    let script = format!(
        "set +e\nLIFEBOAT_GIT_TOKEN=env-s3cret {bin} -c {config} predestroy --json --yes > {out} 2>&1\necho $?",
        bin = lifeboat_bin().display(),
        config = config.display(),
        out = host.sandbox.dir.join("out").display()
    );
    let code = host.in_namespace(true, &script);
    assert_eq!(code, "1");
    let out = fs::read_to_string(host.sandbox.dir.join("out")).unwrap();
    assert!(out.contains("config-repo-pushed"), "{out}");
    assert!(
        out.contains("lifeboat:***@127.0.0.1"),
        "the URL is shown redacted: {out}"
    );
    let transcripts = host.sandbox.state_dir.join("transcripts");
    let mut everything = out.clone();
    for entry in fs::read_dir(&transcripts).unwrap() {
        everything.push_str(&fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    everything.push_str(&fs::read_to_string(host.sandbox.state_dir.join("journal.json")).unwrap());
    assert!(
        !everything.contains("url-s3cret"),
        "the URL's secret leaked"
    );
    assert!(!everything.contains("env-s3cret"), "the token leaked");
}

#[test]
fn it_pushes_over_ssh_with_the_key_and_known_hosts_on_the_volume() {
    let host = Host::new(true);
    let sshd = Sshd::start();
    let keys = host.sandbox.dir.join("keys");
    fs::create_dir(&keys).unwrap();
    let key = sshd::generate_key(&keys, "id_lifeboat");
    sshd.authorize(&key);
    let known_hosts = keys.join("known_hosts");
    fs::write(&known_hosts, format!("{}\n", sshd.known_hosts_line())).unwrap();
    host.in_namespace(
        false,
        &format!(
            "install -o 1000 -m 600 {key} {home}/qwe/.ssh/id_lifeboat\n\
             install -o 1000 -m 644 {known} {home}/qwe/.ssh/known_hosts",
            key = key.display(),
            known = known_hosts.display(),
            home = host.home.display()
        ),
    );
    let url = sshd.url(&host.remote);
    git(&host.repo, &format!("remote set-url origin {url}"));
    fs::write(host.repo.join("ssh.nix"), "{ }\n").unwrap();
    git(&host.repo, "add ssh.nix");
    git(&host.repo, "commit -q -m ssh");
    let config = host.config_with("ssh_key = \"qwe/.ssh/id_lifeboat\"");
    let text = fs::read_to_string(&config)
        .unwrap()
        .replace(&format!("file://{}", host.remote.display()), &url);
    fs::write(&config, text).unwrap();

    let (code, events) = host.predestroy_with(&config, true, "--yes");
    assert_eq!(code, 0, "{events:#?}\n{}", sshd.log());
    assert_eq!(
        git(&host.repo, "rev-parse HEAD"),
        git(&host.remote, "rev-parse main")
    );
    assert!(
        step(&events, "config-repo-pushed")["message"]
            .as_str()
            .unwrap()
            .contains("pushed")
    );
    // The rehearsal cloned over SSH too, with the same key and known hosts.
    assert_eq!(step(&events, "rehearsal")["status"], "passed");
}

/// The host keys, NixOS's id maps and the paths `[host].carry` lists are saved at the top of
/// the volume for root alone, byte for byte with their modes and owners; the card records
/// their sizes, digests and the keys' fingerprints, and no key material reaches an event, the
/// transcript, the journal or the card.
#[test]
fn the_host_identity_is_saved_for_root_alone_and_the_card_proves_it() {
    let host = Host::new(true);
    let config = host.config_with_host(
        "",
        &format!("{ACCEPTED}\ncarry = [\"/var/lib/postgresql\"]"),
    );
    let (code, events) = host.predestroy_with(&config, true, "--yes");
    assert_eq!(code, 0, "{events:#?}");
    let message = step(&events, "host-identity")["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        step(&events, "host-identity")["status"],
        "passed",
        "{message}"
    );
    assert!(message.contains("2 host key(s)"), "{message}");

    // Root's alone, at the top of the volume; each copy byte for byte with mode and owner.
    assert_eq!(host.volume_stat("lifeboat-host"), "0 700");
    for key in support::root_disk::HOST_KEYS {
        let saved = format!("lifeboat-host/files/{key}");
        assert_eq!(
            host.volume_file(&saved).unwrap(),
            fs::read_to_string(host.root.join(key)).unwrap().trim()
        );
        assert_eq!(host.volume_stat(&saved), "0 600");
        assert!(
            host.volume_file(&format!("{saved}.pub")).is_some(),
            "{key}.pub was not saved with it"
        );
    }
    assert!(
        host.volume_file("lifeboat-host/files/var/lib/nixos/uid-map")
            .unwrap()
            .contains("\"qwe\":1000")
    );
    assert_eq!(
        host.volume_stat("lifeboat-host/files/var/lib/postgresql/16"),
        format!("{} 700", support::root_disk::POSTGRES_UID)
    );
    assert_eq!(
        host.volume_stat("lifeboat-host/files/var/lib/postgresql/16/base/1/1259"),
        format!("{} 644", support::root_disk::POSTGRES_UID)
    );

    // The card: what was saved, sizes, digests, fingerprints as ssh-keygen shows them.
    let card_path = host.sandbox.dir.join("card.toml");
    fs::write(
        &card_path,
        host.volume_file("qwe/.lifeboat/recovery.toml").unwrap(),
    )
    .unwrap();
    let card = RecoveryCard::load(&card_path).unwrap();
    let saved: Vec<String> = card
        .saved
        .iter()
        .map(|s| s.path.display().to_string())
        .collect();
    assert_eq!(
        saved,
        [
            "/etc/ssh/ssh_host_ed25519_key",
            "/etc/ssh/ssh_host_ed25519_key.pub",
            "/etc/ssh/ssh_host_backup_ed25519_key",
            "/etc/ssh/ssh_host_backup_ed25519_key.pub",
            "/var/lib/nixos",
            "/var/lib/postgresql",
        ]
    );
    let ed25519 = &card.saved[0];
    let keygen = sh(&format!(
        "ssh-keygen -lf {}",
        host.root.join(support::root_disk::HOST_KEYS[0]).display()
    ));
    let fingerprint = ed25519.fingerprint.as_deref().unwrap();
    assert!(keygen.contains(fingerprint), "{keygen} vs {fingerprint}");
    assert_eq!(ed25519.sha256.len(), 64);
    let postgres = &card.saved[5];
    assert_eq!((postgres.files, postgres.bytes), (2, 3 + 64 * 1024));

    // No key material anywhere lifeboat reports or records.
    let private: Vec<String> = support::root_disk::HOST_KEYS
        .iter()
        .map(|k| {
            let text = fs::read_to_string(host.root.join(k)).unwrap();
            text.lines().nth(1).unwrap().to_string()
        })
        .collect();
    let transcripts: String = fs::read_dir(host.sandbox.state_dir.join("transcripts"))
        .unwrap()
        .map(|e| fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    let journal = fs::read_to_string(host.sandbox.state_dir.join("journal.json")).unwrap();
    let events_text = format!("{events:?}");
    let card_text = fs::read_to_string(&card_path).unwrap();
    for line in &private {
        for (what, text) in [
            ("events", &events_text),
            ("transcript", &transcripts),
            ("card", &card_text),
            ("journal", &journal),
        ] {
            assert!(!text.contains(line.as_str()), "key material in the {what}");
        }
    }
}

/// `predestroy --refresh` for a timer: lifeboat's own files on the volume refreshed without
/// asking, the repository never changed (its changes are blockers), the verdict kept and
/// written for node_exporter, exit 1 then 0; a run holding the lock makes it give way.
#[test]
fn a_refresh_writes_only_its_own_files_and_keeps_the_verdict() {
    let host = Host::new(true);
    host.make_dirty_and_unpushed();
    let metrics = host.sandbox.dir.join("textfile-collector");
    fs::create_dir_all(&metrics).unwrap();
    let config = host.config_with("");
    let mut text = fs::read_to_string(&config).unwrap();
    text.push_str(&format!("\n[metrics]\ndir = \"{}\"\n", metrics.display()));
    fs::write(&config, text).unwrap();
    let remote_before = git(&host.remote, "rev-parse main");
    let status_before = git(&host.repo, "status --porcelain");

    let (code, events) = host.predestroy_with(&config, true, "--refresh");
    assert_eq!(code, 1, "{events:#?}");
    assert_eq!(summary(&events)["ready"], false);
    // The repository is the operator's: nothing committed, nothing pushed.
    assert_eq!(git(&host.remote, "rev-parse main"), remote_before);
    assert_eq!(git(&host.repo, "status --porcelain"), status_before);
    let committed = step(&events, "config-repo-committed");
    assert_eq!(committed["status"], "failed", "{committed}");
    assert!(
        committed["message"]
            .as_str()
            .unwrap()
            .starts_with("--refresh never makes this change"),
        "{committed}"
    );
    // lifeboat's own files on the volume were written without a question.
    for id in ["package-lists", "host-identity", "persistence-marker"] {
        assert_eq!(step(&events, id)["status"], "passed", "{id}: {events:#?}");
    }
    assert!(
        host.volume_file("lifeboat-host/files/var/lib/nixos/uid-map")
            .is_some()
    );
    let kept = fs::read_to_string(host.sandbox.state_dir.join("readiness.json")).unwrap();
    assert!(kept.contains("\"ready\":false"), "{kept}");
    let prom = fs::read_to_string(metrics.join("lifeboat.prom")).unwrap();
    assert!(prom.contains("\nlifeboat_ready 0\n"), "{prom}");
    assert!(prom.contains("lifeboat_volume_used_bytes{mount="), "{prom}");

    // Committed and pushed by the operator: ready, the card refreshed too.
    git(&host.repo, "add -A");
    git(&host.repo, "commit -q -m operator");
    git(&host.repo, "push -q");
    let (code, events) = host.predestroy_with(&config, true, "--refresh");
    assert_eq!(code, 0, "{events:#?}");
    assert_eq!(step(&events, "recovery-card")["status"], "passed");
    assert_eq!(step(&events, "backup")["status"], "warning");
    assert!(
        host.volume_file("qwe/.lifeboat/recovery.toml")
            .unwrap()
            .contains(&git(&host.repo, "rev-parse HEAD"))
    );
    let prom = fs::read_to_string(metrics.join("lifeboat.prom")).unwrap();
    assert!(prom.contains("\nlifeboat_ready 1\n"), "{prom}");

    // Another run holds the lock: the refresh gives way at once and says so.
    let lock = fs::OpenOptions::new()
        .write(true)
        .open(host.sandbox.state_dir.join("lock"))
        .unwrap();
    let held = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusiveNonblock)
        .map_err(|(_, e)| e)
        .unwrap();
    let out = host
        .namespace_command(
            true,
            &format!(
                "{} -c {} predestroy --refresh",
                support::lifeboat_bin().display(),
                config.display()
            ),
        )
        .output()
        .unwrap();
    drop(held);
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("another lifeboat run"), "{said}");
}

/// The card records this server's public addresses and MAC; a configuration that pins them
/// (as nixos-infect's networking.nix does) is warned about, since a new server gets new ones.
#[test]
fn the_card_records_this_servers_addresses_and_a_config_pinning_them_is_warned_about() {
    let host = Host::new(true);
    fs::write(
        host.repo.join("networking.nix"),
        "{ ... }: {\n  networking.interfaces.eth0.ipv4.addresses = [\n    \
         { address = \"203.0.113.7\"; prefixLength = 32; }\n  ];\n}\n",
    )
    .unwrap();
    git(&host.repo, "add -A");
    git(&host.repo, "commit -q -m networking");
    git(&host.repo, "push -q");
    // This server: eth0 with a public address, in a network namespace of its own.
    let network = "ip link add eth0 type veth peer name peer0\n\
                   ip link set eth0 address 96:00:0a:0b:0c:0d\n\
                   ip link set eth0 up\nip link set peer0 up\n\
                   ip addr add 203.0.113.7/32 dev eth0\n";
    let out_file = host.sandbox.dir.join("events.jsonl");
    let run = format!(
        "{} -c {} predestroy --json --yes >{} 2>&1",
        support::lifeboat_bin().display(),
        host.config().display(),
        out_file.display()
    );
    host.in_namespace(
        true,
        &format!(
            "unshare -n sh -ec {} || true",
            support::quote(&format!("{network}{run}"))
        ),
    );
    let events: Vec<Value> = fs::read_to_string(&out_file)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let card = step(&events, "recovery-card");
    assert_eq!(card["status"], "warning", "{card}");
    let message = card["message"].as_str().unwrap();
    assert!(
        message.contains("203.0.113.7 at ") && message.contains("networking.nix:3"),
        "{message}"
    );
    assert!(message.contains("keep its Primary IPs"), "{message}");
    let text = host.volume_file("qwe/.lifeboat/recovery.toml").unwrap();
    assert!(text.contains("203.0.113.7/32"), "{text}");
    assert!(text.contains("96:00:0a:0b:0c:0d"), "{text}");
}

/// What the root disk holds besides the host's identity, PostgreSQL's data and root's
/// `authorized_keys` (tests/support/root_disk.rs): logs, a password set with passwd, and
/// one more of NixOS's links.
fn lived_in(host: &Host) {
    let root = &host.root;
    let write = |rel: &str, bytes: &[u8]| {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, bytes).unwrap();
    };
    write("var/log/nginx/access.log", &vec![b'x'; 20_000]);
    write(
        "etc/shadow",
        b"root:!:19700::::::\nqwe:$y$j9T$F5Jx5fExrKuJdvkcjEnP9/$0QB0Zm3VR1I3AFu8bEm/:19700:0:99999:7:::\n",
    );
    std::os::unix::fs::symlink("/etc/static/nginx", root.join("etc/nginx")).unwrap();
}

/// `du -sB1 -x` and `du --inodes -sx` of the fake root's `rel`.
fn du(host: &Host, rel: &str) -> (u64, u64) {
    let path = host.root.join(rel);
    let number = |args: &str| -> u64 {
        sh(&format!("du {args} {} | cut -f1", path.display()))
            .parse()
            .unwrap()
    };
    (number("-sB1 -x"), number("--inodes -sx"))
}

fn root_disk(events: &[Value]) -> Vec<Value> {
    summary(events)["root_disk"].as_array().unwrap().clone()
}

fn group<'a>(groups: &'a [Value], path: &str) -> &'a Value {
    groups
        .iter()
        .find(|g| g["path"] == path)
        .unwrap_or_else(|| panic!("no {path} in {groups:#?}"))
}

fn output_lines(events: &[Value], step: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["event"] == "output" && e["step"] == step)
        .map(|e| e["line"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn with_its_losses_accepted_the_root_disk_is_ready() {
    let host = Host::new(true);
    let (code, events) = host.predestroy(true, "--yes");
    assert_eq!(code, 0, "{events:#?}");
    let audit = step(&events, "root-disk-audit");
    assert_eq!(audit["status"], "passed", "{audit}");
    let groups = root_disk(&events);
    let classes: Vec<(&str, &str)> = groups
        .iter()
        .map(|g| (g["path"].as_str().unwrap(), g["class"].as_str().unwrap()))
        .collect();
    // /etc's links (sshd's config among them), the files NixOS writes, /bin/sh,
    // /usr/bin/env, an empty /srv and the fake /proc are left out; the host keys and their
    // public halves are carried.
    assert_eq!(
        classes,
        [
            ("/etc/ssh", "carried"),
            ("/root", "accepted"),
            ("/var/lib/nixos", "carried"),
            ("/var/lib/postgresql", "accepted"),
            ("/var/log", "disposable"),
        ]
    );
}

#[test]
fn what_dies_with_the_root_disk_is_listed_and_ready_once_carried_or_accepted() {
    let host = Host::new(true);
    lived_in(&host);
    let config = host.config_with_host("", "");
    let (code, events) = host.predestroy_with(&config, true, "--yes");
    assert_eq!(code, 1, "{events:#?}");
    assert_eq!(summary(&events)["ready"], false);
    assert!(blockers(&events).contains(&"root-disk-audit".to_string()));
    // The other steps ran: the audit blocks, it does not stop the flow.
    assert_eq!(step(&events, "recovery-card")["status"], "passed");

    let groups = root_disk(&events);
    let postgres = group(&groups, "/var/lib/postgresql");
    assert_eq!(postgres["class"], "lost");
    let (bytes, files) = du(&host, "var/lib/postgresql");
    assert_eq!(
        (postgres["bytes"].as_u64(), postgres["files"].as_u64()),
        (Some(bytes), Some(files))
    );
    let root = group(&groups, "/root");
    assert_eq!(root["class"], "lost");
    assert!(
        root["note"]
            .as_str()
            .unwrap()
            .contains("/root/.ssh/authorized_keys"),
        "{root}"
    );
    let log = group(&groups, "/var/log");
    assert_eq!(log["class"], "disposable");
    assert_eq!(log["bytes"].as_u64(), Some(du(&host, "var/log").0));
    let shadow = group(&groups, "/etc/shadow");
    assert_eq!(shadow["class"], "lost");
    let note = shadow["note"].as_str().unwrap();
    assert!(note.contains("qwe") && !note.contains("root"), "{note}");
    assert!(!note.contains("$y$"), "a hash reached the summary: {note}");
    assert_eq!(group(&groups, "/var/lib/nixos")["class"], "carried");
    for left_out in [
        "/etc/nginx",
        "/etc/static",
        "/etc/passwd",
        "/proc",
        "/bin",
        "/usr",
    ] {
        assert!(
            groups.iter().all(|g| g["path"] != left_out),
            "{left_out} in {groups:#?}"
        );
    }

    let audit = step(&events, "root-disk-audit");
    assert_eq!(audit["status"], "failed");
    let why = audit["message"].as_str().unwrap();
    for needed in [
        "/var/lib/postgresql (",
        "/root (",
        "/etc/shadow (",
        "NixOS config",
        "[host].carry",
        "[host].accept",
    ] {
        assert!(why.contains(needed), "{needed} not in {why}");
    }
    let lines = output_lines(&events, "root-disk-audit");
    let shown = |class: &str, path: &str| {
        lines
            .iter()
            .any(|l| l.starts_with(class) && l.contains(&format!(" {path} (")))
    };
    assert!(shown("lost", "/var/lib/postgresql"), "{lines:#?}");
    assert!(shown("disposable", "/var/log"), "{lines:#?}");
    assert!(shown("carried", "/var/lib/nixos"), "{lines:#?}");
    let events_text = fs::read_to_string(host.sandbox.dir.join("events.jsonl")).unwrap();
    assert!(
        !events_text.contains("$y$j9T"),
        "a password hash reached the events"
    );

    // Carried or accepted, every loss is accounted for: ready.
    let config = host.config_with_host(
        "",
        "carry = [\"/var/lib/postgresql\"]\naccept = [\"/root\", \"/etc/shadow\"]",
    );
    let (code, events) = host.predestroy_with(&config, true, "--yes");
    assert_eq!(code, 0, "{events:#?}");
    assert_eq!(summary(&events)["ready"], true);
    assert_eq!(step(&events, "root-disk-audit")["status"], "passed");
    let groups = root_disk(&events);
    assert_eq!(group(&groups, "/var/lib/postgresql")["class"], "carried");
    assert_eq!(group(&groups, "/root")["class"], "accepted");
    assert_eq!(group(&groups, "/etc/shadow")["class"], "accepted");
    assert_eq!(group(&groups, "/var/log")["class"], "disposable");
}

#[test]
fn passwords_are_not_named_when_the_config_turns_mutable_users_off() {
    let host = Host::new(true);
    lived_in(&host);
    host.change_configuration(
        "  system.stateVersion",
        "  users.mutableUsers = false;\n  system.stateVersion",
        "immutable",
    );
    let config = host.config_with_host("", "accept = [\"/var/lib/postgresql\", \"/root\"]");
    let (code, events) = host.predestroy_with(&config, true, "--yes");
    assert_eq!(code, 0, "{events:#?}");
    let groups = root_disk(&events);
    assert!(
        groups.iter().all(|g| g["path"] != "/etc/shadow"),
        "{groups:#?}"
    );
}

#[test]
fn the_walk_keeps_to_the_root_filesystem() {
    let host = Host::new(true);
    lived_in(&host);
    // Another filesystem mounted inside the root, as a data disk at /srv/data would be, and
    // one over a service's directory, as a bind from the volume would be.
    let srv = host.root.join("srv/data");
    let pg = host.root.join("var/lib/postgresql");
    let before = format!(
        "mkdir -p {srv}\nmount -t tmpfs -o size=8m tmpfs {srv}\n\
         head -c 1000000 /dev/zero > {srv}/big\n\
         mount -t tmpfs -o size=8m tmpfs {pg}\n",
        srv = srv.display(),
        pg = pg.display()
    );
    let config = host.config_with_host("", "accept = [\"/root\", \"/etc/shadow\"]");
    let (code, events) = host.predestroy_after(&before, &config, true, "--yes");
    assert_eq!(code, 0, "{events:#?}");
    let groups = root_disk(&events);
    for elsewhere in ["/srv", "/var/lib/postgresql"] {
        assert!(
            groups.iter().all(|g| g["path"] != elsewhere),
            "{elsewhere} in {groups:#?}"
        );
    }
}

/// The rehearsal clones what recover will clone and refuses a flake whose input lives on
/// this machine's root disk; its clone is gone afterwards.
#[test]
fn a_flake_input_on_the_root_disk_is_a_blocker_found_in_the_pushed_commit() {
    let host = Host::new(true);
    let lock = serde_json::json!({
        "nodes": {
            "root": { "inputs": { "secrets": "secrets" } },
            "secrets": { "locked": { "type": "path", "path": "/srv/secrets" }, "original": { "type": "path", "path": "/srv/secrets" } }
        },
        "root": "root",
        "version": 7
    });
    fs::write(host.repo.join("flake.lock"), lock.to_string()).unwrap();
    git(&host.repo, "add flake.lock");
    git(&host.repo, "commit -q -m lock");
    git(&host.repo, "push -q");
    let message = rehearsal_blocker(&host);
    assert!(
        message.contains("input secrets: /srv/secrets is on this machine's root disk"),
        "{message}"
    );

    // Only what was pushed counts: the fix committed but not pushed is pushed by predestroy
    // (--yes) before the rehearsal clones, and then it passes.
    fs::remove_file(host.repo.join("flake.lock")).unwrap();
    git(&host.repo, "commit -q -am 'no path input'");
    let (code, events) = host.predestroy(true, "--yes");
    assert_eq!(code, 0, "{events:#?}");
    assert_eq!(step(&events, "rehearsal")["status"], "passed");
}

/// Run predestroy with `--yes`: not ready, the rehearsal its blocker, its clone gone; the
/// rehearsal's message.
fn rehearsal_blocker(host: &Host) -> String {
    let (code, events) = host.predestroy(true, "--yes");
    assert_eq!(code, 1, "{events:#?}");
    let rehearsal = step(&events, "rehearsal");
    assert_eq!(rehearsal["status"], "failed", "{rehearsal}");
    assert!(
        blockers(&events).iter().any(|b| b == "rehearsal"),
        "{events:#?}"
    );
    assert!(!host.sandbox.state_dir.join("rehearsal").exists());
    rehearsal["message"].as_str().unwrap().to_string()
}

/// What git and the files say of a checkout: the index's bytes, `git status` with ignored
/// files, and every file's content.
fn checkout_state(repo: &std::path::Path) -> String {
    sh(&format!(
        "cd {repo}\nsha256sum .git/index\ngit status --porcelain --ignored\n\
         find . -path ./.git -prune -o -type f -print | sort | xargs sha256sum",
        repo = repo.display()
    ))
}

/// The rehearsal evaluates the pushed commit, not the checkout: a module configuration.nix
/// imports that is only untracked in the checkout blocks it, named with what git makes of
/// it (then only ignored, the same); the checkout and its index are as they were.
#[test]
fn a_module_only_in_the_checkout_blocks_the_rehearsal_and_the_checkout_is_untouched() {
    let host = Host::new(true);
    host.change_configuration(
        "./hardware-configuration.nix ]",
        "./hardware-configuration.nix ./users.nix ]",
        "users in a module of their own",
    );
    fs::write(host.repo.join("users.nix"), "{ }\n").unwrap();
    let before = checkout_state(&host.repo);

    let message = rehearsal_blocker(&host);
    assert!(
        message.contains(&format!(
            "it imports users.nix, which {} has but the pushed commit does not: there it is \
             untracked (never git added); commit and push it",
            host.repo.display()
        )),
        "{message}"
    );
    // predestroy pushed the commit that imports the module; nothing else changed.
    let after = checkout_state(&host.repo);
    assert_eq!(after, before);

    fs::write(host.repo.join(".gitignore"), "users.nix\n").unwrap();
    git(&host.repo, "add .gitignore");
    git(&host.repo, "commit -q -m 'users.nix is private'");
    let message = rehearsal_blocker(&host);
    assert!(
        message.contains("there it is ignored by .gitignore; stop ignoring it"),
        "{message}"
    );
}

/// The pushed commit that does not mount the home in stage 1 blocks the rehearsal with the
/// line to add and where the entry is. A fix committed but not pushed is not rehearsed
/// (the rehearsal waits for the push); pushed, it is, and the card records the rehearsed
/// commit and system. A killed run's clone is removed by the next run.
#[test]
fn a_home_not_mounted_in_stage_1_blocks_the_rehearsal_until_the_fix_is_pushed() {
    let host = Host::new(true);
    host.change_configuration(
        "    neededForBoot = true;\n",
        "",
        "home mounted after stage 1",
    );
    let message = rehearsal_blocker(&host);
    let home = host.home.display();
    assert!(
        message.contains(&format!(
            "{home} holds {home}/qwe/nix, which stage 1 bind-mounts at /nix, but stage 1 does \
             not mount {home} (its entry is at {}:10)",
            host.repo.join("configuration.nix").display()
        )),
        "{message}"
    );
    assert!(message.contains("neededForBoot = true"), "{message}");

    // The fix, committed but not pushed: without --yes nothing is pushed, and the
    // rehearsal does not run on what only this checkout has.
    git(&host.repo, "revert --no-edit HEAD");
    let (code, events) = host.predestroy(true, "");
    assert_eq!(code, 4, "{events:#?}");
    assert_eq!(
        step(&events, "rehearsal")["message"],
        "not run: it needs config-repo-pushed, which did not pass"
    );

    // A killed run's clone, left behind.
    let leftover = host.sandbox.state_dir.join("rehearsal");
    fs::create_dir_all(leftover.join(".git")).unwrap();
    fs::write(leftover.join("flake.nix"), "half a clone").unwrap();
    // Every nix call of lifeboat's, counted: one evaluation gathers every fact.
    let nix = host.bin.join("nix-counted");
    let calls = host.sandbox.dir.join("nix-calls");
    fs::write(
        &nix,
        format!(
            "#!/bin/sh\necho \"$1\" >> {}\nexec nix \"$@\"\n",
            calls.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&nix, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let config = host.config_with(&format!("\n[commands]\nnix = [\"{}\"]", nix.display()));
    let (code, events) = host.predestroy_with(&config, true, "--yes");
    assert_eq!(code, 0, "{events:#?}");
    let rehearsal = step(&events, "rehearsal");
    assert_eq!(rehearsal["status"], "passed", "{rehearsal}");
    let pushed = git(&host.repo, "rev-parse HEAD");
    assert_eq!(
        rehearsal["message"],
        format!(
            "the pushed commit {} evaluates, with this machine's hardware configuration, to a \
             system (devserver) that mounts the volume in stage 1 for the /nix bind, gives qwe \
             uid 1000 and can be logged into over SSH",
            &pushed[..12]
        )
    );
    assert!(!leftover.exists());
    assert_eq!(fs::read_to_string(&calls).unwrap(), "eval\n");
    let card_path = host.sandbox.dir.join("card.toml");
    fs::write(
        &card_path,
        host.volume_file("qwe/.lifeboat/recovery.toml").unwrap(),
    )
    .unwrap();
    let rehearsed = RecoveryCard::load(&card_path).unwrap().rehearsal.unwrap();
    assert_eq!(rehearsed.commit, pushed);
    assert_eq!(rehearsed.host, "devserver");
    assert!(
        rehearsed.drv_path.starts_with("/nix/store/")
            && rehearsed
                .drv_path
                .ends_with("-nixos-system-devserver-25.11.drv"),
        "{rehearsed:?}"
    );
}

/// The pushed flake.lock pins another nixpkgs than the one the running system was built
/// from: recovery day would build or download most of the system again. A warning naming
/// both revisions; the machine is still ready.
#[test]
fn another_nixpkgs_than_the_running_systems_is_a_warning_naming_both() {
    let mut host = Host::new(true);
    let versioned = host.sandbox.dir.join("versioned.nix");
    fs::write(
        &versioned,
        "derivation {\n  name = \"nixos-system-devserver-25.11.20251101.0123456\";\n  \
         system = builtins.currentSystem;\n  builder = \"/bin/sh\";\n  \
         args = [ \"-c\" \"/bin/mkdir $out && echo 25.11.20251101.0123456 > $out/nixos-version\" ];\n}\n",
    )
    .unwrap();
    host.system = host.in_namespace(
        true,
        &format!(
            "nix-build --no-out-link --option sandbox false --option substituters '' \
             --option build-users-group '' {}",
            versioned.display()
        ),
    );
    let rev = "abc1234def5678abc1234def5678abc1234def56";
    let lock = serde_json::json!({
        "nodes": {
            "root": { "inputs": { "nixpkgs": "nixpkgs" } },
            "nixpkgs": {
                "locked": { "type": "github", "owner": "NixOS", "repo": "nixpkgs", "rev": rev },
                "original": { "type": "github", "owner": "NixOS", "repo": "nixpkgs" }
            }
        },
        "root": "root",
        "version": 7
    });
    fs::write(host.repo.join("flake.lock"), lock.to_string()).unwrap();
    git(&host.repo, "add flake.lock");
    git(&host.repo, "commit -q -m 'nixpkgs of December'");
    let (code, events) = host.predestroy(true, "--yes");
    assert_eq!(code, 0, "{events:#?}");
    let rehearsal = step(&events, "rehearsal");
    assert_eq!(rehearsal["status"], "warning", "{rehearsal}");
    let message = rehearsal["message"].as_str().unwrap();
    assert!(
        message.contains(
            "the pushed flake.lock pins nixpkgs abc1234def56, but the running system \
             (25.11.20251101.0123456) was built from 0123456"
        ),
        "{message}"
    );
}

/// An attribute the pushed configuration reads that does not exist is named, with Nix's
/// message and its place in the checkout.
#[test]
fn an_attribute_that_does_not_exist_is_named_with_its_place() {
    let host = Host::new(true);
    host.change_configuration(
        "  services.openssh.enable = true;",
        "  services.openssh.enable = config.services.sshd.enable;",
        "sshd as the old option",
    );
    let message = rehearsal_blocker(&host);
    assert!(
        message.contains("does not evaluate as nixosConfigurations.devserver: the configuration reads the attribute 'sshd', which does not exist"),
        "{message}"
    );
    assert!(
        message.contains(&format!(
            "{}:",
            host.repo.join("configuration.nix").display()
        )),
        "{message}"
    );
}
