//! The `lifeboat predestroy` test scenario: the machine about to be destroyed, with the
//! volume (a real loop device) mounted at a home, `/nix` bound from the store on it (a real
//! Nix store, built into by nix-build), a config repository with a bare remote over
//! file://, a stand-in home-manager, and rsync to a local directory. Every run happens in a
//! mount namespace of its own, where `/nix` and `/run` may be bound without touching the
//! host. Include it next to `mod support;` with
//! `#[path = "support/predestroy_host.rs"] mod predestroy_host;`.

// Every test binary compiles this module for itself and uses only part of it.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use nixos_lifeboat::sandbox::VolumeSpec;
use serde_json::Value;

use crate::support::{TestSandbox, lifeboat_bin, require_private_mount_namespace};
pub use crate::support::{git, sh};

/// The machine about to be destroyed.
pub struct Host {
    pub sandbox: TestSandbox,
    pub home: PathBuf,
    pub repo: PathBuf,
    pub remote: PathBuf,
    pub backup: PathBuf,
    pub bin: PathBuf,
    /// The "running system": a store path nix-build made in the volume's store.
    pub system: String,
    /// The machine's root disk (`[host].root`), with host keys and id maps of its own
    /// (tests/support/root_disk.rs).
    pub root: PathBuf,
}

/// The recover scenario's flake (tests/fixtures/recover): the rehearsal evaluates it.
const FLAKE_NIX: &str = include_str!("../fixtures/recover/flake.nix");
const CONFIGURATION_NIX: &str = include_str!("../fixtures/recover/configuration.nix");
/// The hardware configuration the flake was committed with.
const HARDWARE_PLAIN: &str =
    include_str!("../fixtures/nixos/hardware-configuration.hetzner-cx.nix");
/// What `nixos-generate-config --show-hardware-config` shows on a Hetzner VPS with the volume
/// mounted at the home ([`Host::new`] puts the `/nix` bind in place of its second mount).
const HARDWARE_CAPTURE: &str =
    include_str!("../fixtures/nixos/hardware-configuration.hetzner-cx.volume-mounted.nix");
/// The root filesystem's UUID in [`HARDWARE_CAPTURE`].
const ROOT_UUID: &str = "849b340d-b31e-4604-b2eb-bd8422c06919";
const GENERATE_CONFIG: &str = include_str!("../fixtures/recover/bin/nixos-generate-config");

const DERIVATION: &str = r#"derivation {
  name = "nixos-system-devserver-test";
  system = builtins.currentSystem;
  builder = "/bin/sh";
  args = [ "-c" "echo 25.11 > $out" ];
}"#;

impl Host {
    pub fn new(nix_bound: bool) -> Host {
        require_private_mount_namespace();
        let sandbox = TestSandbox::new(&VolumeSpec::default());
        let dir = sandbox.dir.clone();
        let (home, repo, remote, backup, bin) = (
            dir.join("home"),
            dir.join("etc-nixos"),
            dir.join("remote.git"),
            dir.join("backup"),
            dir.join("bin"),
        );
        for d in [&home, &backup, &bin] {
            fs::create_dir_all(d).unwrap();
        }
        fs::write(dir.join("system.nix"), DERIVATION).unwrap();
        let home_manager = bin.join("home-manager");
        fs::write(
            &home_manager,
            "#!/bin/sh\necho hello-2.12.1\necho ripgrep-14.1.0\n",
        )
        .unwrap();
        fs::set_permissions(&home_manager, fs::Permissions::from_mode(0o755)).unwrap();
        let generate = bin.join("nixos-generate-config");
        fs::write(
            &generate,
            GENERATE_CONFIG.replace("@dir@", &dir.to_string_lossy()),
        )
        .unwrap();
        fs::set_permissions(&generate, fs::Permissions::from_mode(0o755)).unwrap();
        let second_mount = HARDWARE_CAPTURE
            .find("  fileSystems.\"/mnt/data\"")
            .unwrap();
        let after = second_mount + HARDWARE_CAPTURE[second_mount..].find("};\n").unwrap() + 3;
        // On this machine the volume's second mount is /nix, bound from the store on it:
        // nixos-generate-config writes a bind as the source path, fsType "none", "bind".
        let nix_bind = format!(
            "  fileSystems.\"/nix\" =\n    {{ device = \"{}/qwe/nix\";\n      fsType = \"none\";\n      \
             options = [ \"bind\" ];\n    }};\n",
            home.display()
        );
        let capture = format!(
            "{}{nix_bind}{}",
            &HARDWARE_CAPTURE[..second_mount],
            &HARDWARE_CAPTURE[after..]
        )
        .replace("\"/home\"", &format!("\"{}\"", home.display()));
        fs::write(dir.join("hardware-capture.nix"), capture).unwrap();
        let by_uuid = dir.join("dev/disk/by-uuid");
        fs::create_dir_all(&by_uuid).unwrap();
        std::os::unix::fs::symlink(&sandbox.loop_device, by_uuid.join(ROOT_UUID)).unwrap();
        sh(&format!("git init -q --bare -b main {}", remote.display()));
        sh(&format!(
            "git clone -q {} {}",
            remote.display(),
            repo.display()
        ));
        let system = format!("{}-linux", std::env::consts::ARCH);
        let flake = FLAKE_NIX
            .replace("@system@", &system)
            .replace("@dir@", &dir.to_string_lossy());
        fs::write(repo.join("flake.nix"), flake).unwrap();
        fs::write(
            repo.join("configuration.nix"),
            configuration(&home, &sandbox.by_id_link),
        )
        .unwrap();
        fs::write(repo.join("hardware-configuration.nix"), HARDWARE_PLAIN).unwrap();
        git(&repo, "add -A");
        git(&repo, "commit -q -m init");
        git(&repo, "push -q -u origin main");
        let root = crate::support::root_disk::make(&dir.join("root-disk"), "old", 1000);
        nixos_parts(&root);
        let mut host = Host {
            root,
            sandbox,
            home,
            repo,
            remote,
            backup,
            bin,
            system: String::new(),
        };
        // A real Nix store on the volume: the practice volume's database is a stand-in.
        // Built as root, without the nixbld users, by nix-build and by nix-env (which
        // builds the profile's user environment): every namespace has a user pool of its
        // own, and Nix kills whatever runs as the build user it picks, so concurrent tests
        // would kill each other's builders (seen as "failed due to signal 9").
        let options =
            "--option sandbox false --option substituters '' --option build-users-group ''";
        host.system = host.in_namespace(
            nix_bound,
            &format!(
                "rm -f {home}/qwe/nix/var/nix/db/db.sqlite\n\
                 p=$(nix-build --no-out-link {options} {dir}/system.nix)\n\
                 nix-env {options} -p {home}/qwe/.nix-profile -i $p >/dev/null\necho $p",
                home = host.home.display(),
                dir = dir.display()
            ),
        );
        host
    }

    pub fn config(&self) -> PathBuf {
        self.config_with("")
    }

    /// The config, with `extra` lines in its `[config_repo]` table; the root disk's
    /// PostgreSQL data and `/root` are accepted losses ([`ACCEPTED`]).
    pub fn config_with(&self, extra: &str) -> PathBuf {
        self.config_with_host(extra, ACCEPTED)
    }

    /// The config, with `extra` lines in its `[config_repo]` table and `host` lines (instead
    /// of [`ACCEPTED`]) in its `[host]` table, whose `root` is the fake root.
    pub fn config_with_host(&self, extra: &str, host: &str) -> PathBuf {
        let path = self.sandbox.dir.join("predestroy.toml");
        let text = format!(
            "user = \"qwe\"\nuid = 1000\n\n[[volume]]\ndevice = \"{dev}\"\nmount = \"{home}\"\n\n\
             [nix_store]\nsource = \"{home}/qwe/nix\"\ntarget = \"/nix\"\n\n\
             [config_repo]\npath = \"{repo}\"\nurl = \"file://{remote}\"\nbranch = \"main\"\n\
             flake_host = \"devserver\"\n{extra}\n[state]\ndir = \"{state}\"\n\n\
             [backup]\nrsync_target = \"{backup}/\"\n\n[host]\nroot = \"{root}\"\n{host}\n\n\
             [discovery]\ndev_dir = \"{dev_dir}\"\n",
            dev = self.sandbox.by_id_link.display(),
            home = self.home.display(),
            repo = self.repo.display(),
            remote = self.remote.display(),
            state = self.sandbox.state_dir.display(),
            backup = self.backup.display(),
            root = self.root.display(),
            dev_dir = self.sandbox.dir.join("dev").display(),
            extra = extra,
            host = host,
        );
        fs::write(&path, text).unwrap();
        path
    }

    /// Run `script` where the volume is mounted at the home, `/nix` bound from it (when
    /// `nix_bound`), and `/run/current-system` names the system; its trimmed stdout, or a
    /// panic with its stderr.
    pub fn in_namespace(&self, nix_bound: bool, script: &str) -> String {
        let out = self.namespace_command(nix_bound, script).output().unwrap();
        assert!(
            out.status.success(),
            "{script}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// The command [`Host::in_namespace`] runs, for a test that starts it and signals what
    /// it runs while it is going.
    pub fn namespace_command(&self, nix_bound: bool, script: &str) -> Command {
        let full = self.namespace_script(nix_bound, script);
        let mut command = Command::new("unshare");
        command.args(["-m", "--propagation", "private", "sh", "-ec", &full]);
        command
    }

    /// The shell script [`Host::namespace_command`] runs in its namespace: the mounts, then
    /// `script` (for a test that runs it in a terminal of its own).
    pub fn namespace_script(&self, nix_bound: bool, script: &str) -> String {
        let run = self.sandbox.dir.join("run");
        fs::create_dir_all(&run).unwrap();
        let bind_nix = if nix_bound {
            format!("mount --bind {}/qwe/nix /nix\n", self.home.display())
        } else {
            String::new()
        };
        format!(
            "mount {dev} {home}\n{bind_nix}mount --bind {run} /run\n\
             [ -z '{system}' ] || ln -sfn '{system}' /run/current-system\n\
             export PATH={bin}:$PATH\n{script}",
            dev = self.sandbox.loop_device.display(),
            home = self.home.display(),
            run = run.display(),
            system = self.system,
            bin = self.bin.display(),
        )
    }

    /// `lifeboat predestroy --json ARGS` on this host: exit code and events.
    pub fn predestroy(&self, nix_bound: bool, args: &str) -> (i32, Vec<Value>) {
        self.predestroy_with(&self.config(), nix_bound, args)
    }

    /// [`Host::predestroy`] with another config file.
    pub fn predestroy_with(&self, config: &Path, nix_bound: bool, args: &str) -> (i32, Vec<Value>) {
        self.predestroy_after("", config, nix_bound, args)
    }

    /// [`Host::predestroy_with`], after `before` ran in the same namespace (mounts there
    /// are the run's).
    pub fn predestroy_after(
        &self,
        before: &str,
        config: &Path,
        nix_bound: bool,
        args: &str,
    ) -> (i32, Vec<Value>) {
        let out_file = self.sandbox.dir.join("events.jsonl");
        let script = format!(
            "{before}\nset +e\n{bin} -c {config} predestroy --json {args} > {out} 2>{out}.err\n\
             echo $?",
            bin = lifeboat_bin().display(),
            config = config.display(),
            out = out_file.display()
        );
        let code: i32 = self.in_namespace(nix_bound, &script).parse().unwrap();
        let text = fs::read_to_string(&out_file).unwrap();
        let events = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (code, events)
    }

    /// Dirty tree, an untracked secret, and a local commit the remote lacks.
    pub fn make_dirty_and_unpushed(&self) {
        fs::write(self.repo.join("hosts.nix"), "{ }\n").unwrap();
        git(&self.repo, "add hosts.nix");
        git(&self.repo, "commit -q -m hosts");
        let configuration = self.repo.join("configuration.nix");
        let text = fs::read_to_string(&configuration).unwrap();
        fs::write(
            configuration,
            format!("{text}# Logins by key only, soon.\n"),
        )
        .unwrap();
        fs::write(self.repo.join("secrets.nix"), "{ token = \"s3cret\"; }\n").unwrap();
    }

    /// Replace `old` by `new` in the repository's configuration.nix and commit it (not
    /// pushed) with `message`.
    pub fn change_configuration(&self, old: &str, new: &str, message: &str) {
        let path = self.repo.join("configuration.nix");
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains(old), "configuration.nix has no {old:?}");
        fs::write(&path, text.replace(old, new)).unwrap();
        git(&self.repo, &format!("commit -q -am '{message}'"));
    }

    /// Read a file from the volume (mounted for the moment in a namespace of its own).
    pub fn volume_file(&self, rel: &str) -> Option<String> {
        let path = self.home.join(rel);
        let out = self.in_namespace(
            false,
            &format!("cat {} 2>/dev/null || true", path.display()),
        );
        (!out.is_empty()).then_some(out)
    }

    pub fn volume_stat(&self, rel: &str) -> String {
        self.in_namespace(
            false,
            &format!("stat -c '%u %a' {}", self.home.join(rel).display()),
        )
    }
}

/// The flake's configuration.nix: the volume at `home` from `device`, mounted in stage 1
/// (`neededForBoot`) for the `/nix` bind, and the bind.
fn configuration(home: &Path, device: &Path) -> String {
    let nix_bind = format!(
        "\n  fileSystems.\"/nix\" = {{\n    device = \"{}/qwe/nix\";\n    fsType = \"none\";\n    \
         options = [ \"bind\" ];\n  }};\n",
        home.display()
    );
    CONFIGURATION_NIX
        .replace("@home@", &home.to_string_lossy())
        .replace("@device@", &device.to_string_lossy())
        .replace("@needed_for_boot@", "    neededForBoot = true;\n")
        .replace("@nix_bind@", &nix_bind)
        .replace("@uid@", "1000")
        .replace("@extra@", "")
}

/// The `[host]` line of the default config: what the root disk holds besides the host's
/// identity (tests/support/root_disk.rs) is accepted, so a run on it can end ready.
pub const ACCEPTED: &str = "accept = [\"/var/lib/postgresql\", \"/root\"]";

/// What a NixOS root disk holds besides what dies with it: `/etc` made of links into
/// `/etc/static` (sshd's config among them, moved there and linked back by a relative link,
/// which stays inside the fake root) and the files NixOS writes, a log (disposable), the
/// links NixOS puts in `/bin` and `/usr/bin`, an empty `/srv`, and a `/proc` the walk must
/// leave out.
pub fn nixos_parts(root: &Path) {
    use std::os::unix::fs::symlink;
    for dir in [
        "etc/static/ssh",
        "srv",
        "bin",
        "usr/bin",
        "var/empty",
        "proc/1",
    ] {
        fs::create_dir_all(root.join(dir)).unwrap();
    }
    fs::rename(
        root.join("etc/ssh/sshd_config"),
        root.join("etc/static/ssh/sshd_config"),
    )
    .unwrap();
    symlink(
        "../static/ssh/sshd_config",
        root.join("etc/ssh/sshd_config"),
    )
    .unwrap();
    let files = [
        (
            "etc/passwd",
            "root:x:0:0::/root:/bin/sh\nqwe:x:1000:100::/home/qwe:/bin/sh\n",
        ),
        ("etc/group", "root:x:0:\nusers:x:100:qwe\n"),
        ("etc/shadow", "root:!:1::::::\nqwe:!:1::::::\n"),
        ("etc/NIXOS", ""),
        ("etc/.clean", "sudoers\n"),
        ("etc/sudoers", "root ALL=(ALL:ALL) SETENV: ALL\n"),
        ("etc/static/hostname", "devserver\n"),
        ("var/log/journal/system.journal", "journal entries\n"),
        ("proc/1/status", "Name: init\n"),
    ];
    for (rel, text) in files {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
    let links = [
        ("etc/hostname", "/etc/static/hostname"),
        (
            "bin/sh",
            "/nix/store/00000000000000000000000000000000-bash/bin/sh",
        ),
        (
            "usr/bin/env",
            "/nix/store/00000000000000000000000000000000-coreutils/bin/env",
        ),
        ("var/run", "../run"),
    ];
    for (rel, target) in links {
        symlink(target, root.join(rel)).unwrap();
    }
}
