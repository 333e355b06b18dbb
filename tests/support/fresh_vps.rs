//! The `lifeboat recover` test scenario: a fresh NixOS VPS with the old volume attached.
//! Include it next to `mod support;` with `#[path = "support/fresh_vps.rs"] mod fresh_vps;`.
//!
//! Everything lives under the sandbox's directory `<dir>`:
//! - the practice volume (a real loop device, by-id link `<dir>/by-id/scsi-0HC_Volume_…`),
//!   carrying what `predestroy` leaves: the recovery card, the persistence marker, a mirror
//!   of the config repository, and the old machine's Nix store at `qwe/nix` with a real
//!   database;
//! - the old machine's last system in that store: before the scenario starts, the "old VPS"
//!   built the same flake with its own hardware configuration (root filesystem
//!   [`OLD_ROOT_UUID`]) with the volume's `qwe/nix` bound over `/nix`, and made it
//!   generation 1 of the volume's system profile (`qwe/nix/var/nix/profiles/system-1-link`
//!   → `/nix/store/…`; see [`FreshVps::old_system`], [`FreshVps::volume_profile`]);
//! - with [`FreshVpsOptions::store_volume`], the seed's "Multiple Volumes" layout instead: a
//!   second loop volume (by-id link `<dir>/by-id/scsi-0HC_Volume_2`) holds the store at its
//!   root (`store/`, `var/nix/db`, `var/nix/profiles`), declared as its own filesystem at
//!   `<dir>/nix`, and the home volume has no `qwe/nix`;
//! - `remote.git`, a bare repository over `file://` holding a self-contained flake
//!   (fixtures/recover/flake.nix) whose `nixosConfigurations.devserver` declares the
//!   volume at `<dir>/home` and the store at `<dir>/nix`, and whose system depends on an
//!   "expensive" derivation that counts its builds in `<dir>/expensive-builds`
//!   ([`FreshVps::expensive_builds`]; the old machine's build makes it 1);
//! - `home/` (the fresh machine's empty `/home`), `nix/` (where the store goes after the
//!   reboot), `etc-nixos/` (`[config_repo].path`), `mnt/` (inspection), `state/`;
//! - `bin/` with stand-ins for `nixos-rebuild` (`build`, `boot`, `switch`),
//!   `nixos-generate-config` and `reboot`, which log their argv to `calls.log`;
//! - `host-nix/`, bound over `/nix` in every namespace the scenario runs in (the fresh
//!   machine's root disk store), so the real `nix eval`, `nix build`, `nix copy` and
//!   `nix-env` never write to the host's store; `root/`, the `HOME` there;
//! - the machine's state across namespaces, left by the stand-ins: `boot-entry` (the system
//!   the last `nixos-rebuild boot` or `switch` installed in the boot loader; either also sets
//!   `host-nix/var/nix/profiles/system`), `home-mounted` and `nix-bound` (a switch mounted
//!   the new system's filesystems: the volume at the home and the store at the store target,
//!   so every later namespace mounts them again), `current-system` (what the switch
//!   activated, or after the reboot the boot entry's system) and `rebooted` (the new
//!   system's mounts: the volume at the home and the store at the store target).
//!
//! Everything that mounts runs in `unshare -m --propagation private`: a read-write mount
//! of the volume is never visible to tests running in parallel.

// Every test binary compiles this module for itself and uses only part of it.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nixos_lifeboat::card::{
    CardNixStore, CardRepository, CardSaved, CardVolume, FORMAT, RecoveryCard,
};
use nixos_lifeboat::config::Config;
use nixos_lifeboat::marker::PersistenceMarker;
use nixos_lifeboat::sandbox::{VolumeContents, VolumeSpec};
use nixos_lifeboat::steps::host_identity;
use serde_json::Value;

use crate::support::{TestSandbox, lifeboat_bin, require_private_mount_namespace};
pub use crate::support::{git, quote, sh};

const FLAKE_NIX: &str = include_str!("../fixtures/recover/flake.nix");
const CONFIGURATION_NIX: &str = include_str!("../fixtures/recover/configuration.nix");
const NIXOS_REBUILD: &str = include_str!("../fixtures/recover/bin/nixos-rebuild");
const NIXOS_GENERATE_CONFIG: &str = include_str!("../fixtures/recover/bin/nixos-generate-config");
const REBOOT: &str = include_str!("../fixtures/recover/bin/reboot");
/// What a Hetzner VPS's `nixos-generate-config` gives with no volume mounted.
pub const HARDWARE_PLAIN: &str =
    include_str!("../fixtures/nixos/hardware-configuration.hetzner-cx.nix");
/// The root filesystem's UUID in [`HARDWARE_PLAIN`] (the fresh VPS's root disk).
pub const FRESH_ROOT_UUID: &str = "849b340d-b31e-4604-b2eb-bd8422c06919";
/// The old VPS's root filesystem, in the hardware configuration its system was built with.
pub const OLD_ROOT_UUID: &str = "5c0ff1d2-7a3e-4b8f-9e21-0d4c6b8a7f13";
/// The by-id name of the store volume of [`FreshVpsOptions::store_volume`].
pub const STORE_VOLUME_NAME: &str = "scsi-0HC_Volume_2";
/// The same with the volume mounted at `/home` and at `/mnt/data`.
const HARDWARE_VOLUME_MOUNTED: &str =
    include_str!("../fixtures/nixos/hardware-configuration.hetzner-cx.volume-mounted.nix");
const SWITCH_OK: &str = include_str!("../fixtures/nixos-rebuild/switch-ok.stderr");
const SWITCH_UNITS_FAILED: &str =
    include_str!("../fixtures/nixos-rebuild/switch-units-failed.exit4.stderr");

/// Nix settings for every command run in the scenario (lifeboat's own `nix` calls included):
/// no sandbox and no substituters (offline), and builds as root without the nixbld users:
/// every namespace has a user pool of its own, and Nix kills whatever runs as the build
/// user it picks, so scenarios running at the same time would kill each other's builders.
const NIX_CONFIG_OFFLINE: &str = "sandbox = false\nsubstituters =\nbuild-users-group =";
/// Added to [`NIX_CONFIG_OFFLINE`] unless a test asks for flakes to be off.
const NIX_CONFIG_FLAKES: &str = "\nexperimental-features = nix-command flakes";

/// The user, uid and flake host of the scenario.
pub const USER: &str = "qwe";
pub const UID: u32 = 1000;
pub const HOST: &str = "devserver";

/// What the scenario looks like; `Default` is the happy path.
#[derive(Debug, Clone)]
pub struct FreshVpsOptions<'a> {
    /// `predestroy` left a recovery card on the volume (the marker and mirror are always there).
    pub with_card: bool,
    /// configuration.nix sets `neededForBoot = true` on the home filesystem.
    pub needed_for_boot: bool,
    /// configuration.nix declares the `/nix` bind (`<dir>/nix` from `<home>/qwe/nix`).
    pub nix_bind: bool,
    /// The uid configuration.nix gives the user (the volume's files belong to 1000).
    pub flake_uid: u32,
    /// The device configuration.nix declares for the home; `None` is the attached volume's
    /// by-id link, anything else simulates "the data moved to a volume with a new id".
    pub flake_device: Option<PathBuf>,
    /// Create `[config_repo].path` first, holding an installer's `configuration.nix` with
    /// this text (and the plain hardware configuration), as a fresh NixOS install has.
    pub existing_etc_nixos: Option<&'a str>,
    /// The lifeboat.toml of [`FreshVps::config`] gives user, uid, volume, store and
    /// repository; when false, only what the card cannot know (config-less recover).
    pub full_config: bool,
    /// `NIX_CONFIG` turns flakes on for every `nix` call; false leaves them off, as on a
    /// fresh NixOS, so only calls that pass `--extra-experimental-features` work.
    pub flakes_enabled: bool,
    /// The old VPS built the flake, with its own hardware configuration (root filesystem
    /// [`OLD_ROOT_UUID`]), into the volume's store and made it generation 1 of the volume's
    /// system profile; this builds the expensive derivation once. False leaves the store
    /// with an empty database and no system profile.
    pub old_machine: bool,
    /// The volume's store keeps its Nix database; false removes its `var/nix/db` after the
    /// old machine's build: store paths that no database knows, which Nix cannot use.
    pub volume_store_db: bool,
    /// The seed's "Multiple Volumes" layout: the store on a second volume of its own (by-id
    /// [`STORE_VOLUME_NAME`]) holding it at its root and declared as the filesystem at
    /// `<dir>/nix` (`neededForBoot`) instead of the bind from `<home>/qwe/nix`; the config
    /// has two `[[volume]]`s and a `[nix_store]` with only a `target`.
    pub store_volume: bool,
    /// More of configuration.nix (sops-nix's options, say).
    pub extra_config: &'a str,
    /// predestroy saved the old machine's identity (host keys, id maps, a carried
    /// PostgreSQL); false leaves the card without it, as a card from before it was saved.
    pub saved_identity: bool,
}

impl Default for FreshVpsOptions<'_> {
    fn default() -> Self {
        FreshVpsOptions {
            with_card: true,
            needed_for_boot: true,
            nix_bind: true,
            flake_uid: UID,
            flake_device: None,
            existing_etc_nixos: None,
            full_config: true,
            flakes_enabled: true,
            old_machine: true,
            volume_store_db: true,
            store_volume: false,
            extra_config: "",
            saved_identity: true,
        }
    }
}

/// A fresh VPS with the old volume attached and the config's remote reachable.
pub struct FreshVps {
    /// The store volume's own sandbox (its loop device), with
    /// [`FreshVpsOptions::store_volume`]; first, so it is cleaned before the main one.
    pub store_sandbox: Option<Box<TestSandbox>>,
    pub sandbox: TestSandbox,
    /// The sandbox's directory; everything below lives in it.
    pub dir: PathBuf,
    /// The fresh machine's `/home`: the volume's mount point, empty and unmounted at first.
    pub home: PathBuf,
    /// Where `/nix` is bound from `<home>/qwe/nix` after the reboot (`[nix_store].target`).
    pub nix: PathBuf,
    /// `[config_repo].path`, the machine's `/etc/nixos`.
    pub etc_nixos: PathBuf,
    /// `[inspect].mountpoint`.
    pub mnt: PathBuf,
    /// `[state].dir`.
    pub state: PathBuf,
    /// The stand-ins, first on `PATH`.
    pub bin: PathBuf,
    /// The bare remote (`file://<remote>`).
    pub remote: PathBuf,
    /// A clone of the remote that [`FreshVps::push_file`] commits from.
    pub author: PathBuf,
    /// Bound over `/nix` in every namespace of the scenario.
    pub host_nix: PathBuf,
    /// What the stand-in `nixos-generate-config --show-hardware-config` prints; replace it
    /// to simulate another capture.
    pub hardware_capture: PathBuf,
    /// The by-id link of the attached volume.
    pub device: PathBuf,
    /// This machine's `/dev` as lifeboat sees it (`[discovery].dev_dir`): its root disk is
    /// `disk/by-uuid/<FRESH_ROOT_UUID>`, a link to the volume's loop device (any block
    /// device will do; nothing mounts it).
    pub dev: PathBuf,
    /// The persistence marker's nonce on the volume.
    pub marker_nonce: String,
    full_config: bool,
    nix_config: String,
    old_system: Option<PathBuf>,
    /// The old machine's root disk (tests/support/root_disk.rs), whose identity predestroy
    /// saved on the volume (host keys, id maps, `/var/lib/postgresql` carried).
    pub old_root: PathBuf,
    /// This machine's root disk (`[host].root`), fresh: host keys of its own.
    pub root: PathBuf,
    /// What predestroy saved, as the card lists it.
    saved: Vec<CardSaved>,
}

/// A system profile as `nix-env -p PROFILE --set` leaves it: `(N, target of system-N-link)`
/// for every generation, by N (the targets are `/nix/store/…` paths), and the generation the
/// `system` link points at (`system -> system-N-link`), when there is one.
pub type SystemProfile = (Vec<(u32, String)>, Option<u32>);

/// The store path of the generation `system` points at.
pub fn profile_system(profile: &SystemProfile) -> Option<&str> {
    let current = profile.1?;
    profile
        .0
        .iter()
        .find(|(n, _)| *n == current)
        .map(|(_, target)| target.as_str())
}

/// A profile from the `NAME TARGET` lines of its directory.
fn parse_profile(listing: &str) -> SystemProfile {
    let generation = |link: &str| -> Option<u32> {
        link.strip_prefix("system-")?
            .strip_suffix("-link")?
            .parse()
            .ok()
    };
    let mut profile: SystemProfile = (Vec::new(), None);
    for (name, target) in listing.lines().filter_map(|l| l.split_once(' ')) {
        if name == "system" {
            profile.1 = generation(target);
        } else if let Some(n) = generation(name) {
            profile.0.push((n, target.to_string()));
        }
    }
    profile.0.sort();
    profile
}

impl FreshVps {
    /// Build the scenario; panics when any part cannot be made.
    pub fn new(options: FreshVpsOptions) -> FreshVps {
        require_private_mount_namespace();
        let sandbox = TestSandbox::new(&VolumeSpec::default());
        let dir = sandbox.dir.clone();
        // The store volume: an empty ext4 of its own, linked into the same by-id directory.
        let store_sandbox = options.store_volume.then(|| {
            Box::new(TestSandbox::new(&VolumeSpec {
                size_bytes: 128 << 20,
                label: "lifeboat-store".into(),
                volume_id: 2,
                contents: VolumeContents::OtherFilesystem("mkfs.ext4".into()),
                ..VolumeSpec::default()
            }))
        });
        if let Some(store) = &store_sandbox {
            symlink(
                &store.loop_device,
                sandbox.by_id_dir.join(STORE_VOLUME_NAME),
            )
            .unwrap();
        }
        let vps = FreshVps {
            home: dir.join("home"),
            nix: dir.join("nix"),
            etc_nixos: dir.join("etc-nixos"),
            mnt: sandbox.mountpoint.clone(),
            state: sandbox.state_dir.clone(),
            bin: dir.join("bin"),
            remote: dir.join("remote.git"),
            author: dir.join("author"),
            host_nix: dir.join("host-nix"),
            hardware_capture: dir.join("hardware-capture.nix"),
            device: sandbox.by_id_link.clone(),
            dev: dir.join("dev"),
            marker_nonce: String::new(),
            full_config: options.full_config,
            nix_config: if options.flakes_enabled {
                format!("{NIX_CONFIG_OFFLINE}{NIX_CONFIG_FLAKES}")
            } else {
                NIX_CONFIG_OFFLINE.to_string()
            },
            old_system: None,
            old_root: crate::support::root_disk::make(&dir.join("old-root-disk"), "old", UID),
            root: crate::support::root_disk::fresh(&dir.join("root-disk"), "new"),
            saved: Vec::new(),
            dir,
            store_sandbox,
            sandbox,
        };
        for d in [
            &vps.home,
            &vps.nix,
            &vps.bin,
            &vps.host_nix,
            &vps.dir.join("root"),
        ] {
            fs::create_dir_all(d).unwrap();
        }
        let by_uuid = vps.dev.join("disk/by-uuid");
        fs::create_dir_all(&by_uuid).unwrap();
        symlink(&vps.sandbox.loop_device, by_uuid.join(FRESH_ROOT_UUID)).unwrap();
        vps.write_stand_ins();
        vps.make_remote(&options);
        if let Some(text) = options.existing_etc_nixos {
            fs::create_dir_all(&vps.etc_nixos).unwrap();
            fs::write(vps.etc_nixos.join("configuration.nix"), text).unwrap();
            fs::write(
                vps.etc_nixos.join("hardware-configuration.nix"),
                HARDWARE_PLAIN,
            )
            .unwrap();
        }
        let mut vps = vps.write_volume(options.with_card, options.saved_identity);
        vps.old_machine(&options);
        vps
    }

    /// The remote's URL, as the card and the config give it.
    pub fn url(&self) -> String {
        format!("file://{}", self.remote.display())
    }

    /// The store path's base name the flake's toplevel gets (its hash varies with the flake).
    pub fn system_name(&self) -> String {
        format!("nixos-system-{HOST}-25.11")
    }

    /// Commit `contents` as `path` in the remote's branch; returns the new commit.
    pub fn push_file(&self, path: &str, contents: &str) -> String {
        fs::write(self.author.join(path), contents).unwrap();
        git(&self.author, &format!("add {}", quote(path)));
        git(
            &self.author,
            &format!("commit -q -m {}", quote(&format!("Edit {path}"))),
        );
        git(&self.author, "push -q origin main");
        git(&self.author, "rev-parse HEAD")
    }

    /// Remove `path` from the remote's branch; returns the new commit.
    pub fn push_removal(&self, path: &str) -> String {
        git(&self.author, &format!("rm -q {}", quote(path)));
        git(
            &self.author,
            &format!("commit -q -m {}", quote(&format!("Remove {path}"))),
        );
        git(&self.author, "push -q origin main");
        git(&self.author, "rev-parse HEAD")
    }

    /// The remote branch's head commit.
    pub fn remote_head(&self) -> String {
        git(&self.remote, "rev-parse main")
    }

    /// Write the scenario's lifeboat.toml (full or card-completed, as the options said).
    pub fn config(&self) -> PathBuf {
        let path = self.dir.join("recover.toml");
        let head = if self.full_config {
            format!("user = \"{USER}\"\nuid = {UID}\n\n")
        } else {
            String::new()
        };
        let mut text = format!(
            "{head}[commands]\n\
             nixos_rebuild = [\"{bin}/nixos-rebuild\"]\n\
             nixos_generate_config = [\"{bin}/nixos-generate-config\"]\n\
             reboot = [\"{bin}/reboot\"]\n\
             nix = [\"nix\"]\n\n\
             [inspect]\nmountpoint = \"{mnt}\"\n\n\
             [discovery]\nby_id_dir = \"{by_id}\"\ndev_dir = \"{dev}\"\n\n\
             [state]\ndir = \"{state}\"\n\n\
             [config_repo]\npath = \"{etc_nixos}\"\n",
            bin = self.bin.display(),
            mnt = self.mnt.display(),
            by_id = self.sandbox.by_id_dir.display(),
            dev = self.dev.display(),
            state = self.state.display(),
            etc_nixos = self.etc_nixos.display(),
        );
        if self.full_config {
            text.push_str(&format!(
                "url = \"{url}\"\nbranch = \"main\"\nflake_host = \"{HOST}\"\n\n\
                 [[volume]]\ndevice = \"{device}\"\nmount = \"{home}\"\n\n",
                url = self.url(),
                device = self.device.display(),
                home = self.home.display(),
            ));
            match self.store_device() {
                // The store volume is recognised by its mount being the store target.
                Some(store) => text.push_str(&format!(
                    "[[volume]]\ndevice = \"{store}\"\nmount = \"{nix}\"\n\n\
                     [nix_store]\ntarget = \"{nix}\"\n",
                    store = store.display(),
                    nix = self.nix.display(),
                )),
                None => text.push_str(&format!(
                    "[nix_store]\nsource = \"{home}/{USER}/nix\"\ntarget = \"{nix}\"\n",
                    home = self.home.display(),
                    nix = self.nix.display(),
                )),
            }
        }
        text.push_str(&format!("\n[host]\nroot = \"{}\"\n", self.root.display()));
        fs::write(&path, text).unwrap();
        path
    }

    /// `lifeboat -c <config> recover --json ARGS` in a namespace of its own: exit code and
    /// the JSON events. Its stderr is kept in `<dir>/recover.stderr`.
    pub fn run(&self, args: &[&str]) -> (i32, Vec<Value>) {
        self.run_with(&self.config(), args)
    }

    /// [`FreshVps::run`] with another config file.
    pub fn run_with(&self, config: &Path, args: &[&str]) -> (i32, Vec<Value>) {
        self.run_env(config, "", args)
    }

    /// [`FreshVps::run_with`] with `env` (`NAME=value …`) set for lifeboat.
    pub fn run_env(&self, config: &Path, env: &str, args: &[&str]) -> (i32, Vec<Value>) {
        self.run_script(config, "", env, args)
    }

    /// [`FreshVps::run_with`] after `prelude` (shell lines) ran in the run's namespace, to
    /// change the machine for this run only (a read-only bind, say).
    pub fn run_after(&self, config: &Path, prelude: &str, args: &[&str]) -> (i32, Vec<Value>) {
        self.run_script(config, prelude, "", args)
    }

    /// [`FreshVps::run`] in a network namespace of its own, after `network` (shell lines
    /// with `ip`) made its interfaces: this machine's network for the run.
    pub fn run_in_network(&self, network: &str, args: &[&str]) -> (i32, Vec<Value>) {
        self.run_in(&self.config(), "", "", Some(network), args)
    }

    fn run_script(
        &self,
        config: &Path,
        prelude: &str,
        env: &str,
        args: &[&str],
    ) -> (i32, Vec<Value>) {
        self.run_in(config, prelude, env, None, args)
    }

    fn run_in(
        &self,
        config: &Path,
        prelude: &str,
        env: &str,
        network: Option<&str>,
        args: &[&str],
    ) -> (i32, Vec<Value>) {
        let events_file = self.dir.join("events.jsonl");
        let args: Vec<String> = args.iter().map(|a| quote(a)).collect();
        let run = format!(
            "env {env} {bin} -c {config} recover --json {args}",
            bin = quote(&lifeboat_bin().to_string_lossy()),
            config = quote(&config.to_string_lossy()),
            args = args.join(" "),
        );
        let run = match network {
            Some(network) => format!(
                "unshare -n sh -ec {}",
                quote(&format!("{network}\nexec {run}"))
            ),
            None => run,
        };
        let script = format!(
            "{prelude}\nset +e\n{run} >{events} 2>{stderr}\necho $?",
            events = quote(&events_file.to_string_lossy()),
            stderr = quote(&self.dir.join("recover.stderr").to_string_lossy()),
        );
        let code: i32 = self.shell(&script).parse().unwrap();
        let text = fs::read_to_string(&events_file).unwrap();
        let events = text
            .lines()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: not JSON: {line}"))
            })
            .collect();
        (code, events)
    }

    /// The last run's stderr.
    pub fn stderr(&self) -> String {
        fs::read_to_string(self.dir.join("recover.stderr")).unwrap_or_default()
    }

    /// Run `script` (`sh -ec`) in a fresh mount namespace with the scenario's `/nix` bound,
    /// the stand-ins first on `PATH`, `NIX_CONFIG` set and `HOME` an empty `<dir>/root` (root's
    /// home on a fresh machine: no git identity, no Nix caches). The home is empty, unless a
    /// `nixos-rebuild switch` mounted the volume there before (see [`FreshVps::home_mounted`]);
    /// after the stand-in reboot, the store target is bound from the volume too.
    /// Its trimmed stdout, or a panic with its stderr.
    pub fn shell(&self, script: &str) -> String {
        let out = self.shell_output(script);
        assert!(
            out.status.success(),
            "{script}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// [`FreshVps::shell`] without the panic: the whole output, whatever the exit status.
    pub fn shell_output(&self, script: &str) -> std::process::Output {
        self.shell_command(script).output().unwrap()
    }

    /// The command [`FreshVps::shell`] runs, for a test that starts it and signals what it
    /// runs while it is going.
    pub fn shell_command(&self, script: &str) -> Command {
        let mut command = Command::new("unshare");
        command
            .args(["-m", "--propagation", "private", "sh", "-ec"])
            .arg(self.shell_script(script))
            .envs(self.shell_env())
            .stdin(Stdio::null());
        command
    }

    /// The environment [`FreshVps::shell_command`] runs in: `PATH`, `NIX_CONFIG`, `HOME`.
    pub fn shell_env(&self) -> [(&'static str, String); 3] {
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        [
            ("PATH", path),
            ("NIX_CONFIG", self.nix_config.clone()),
            ("HOME", self.dir.join("root").display().to_string()),
        ]
    }

    /// The script [`FreshVps::shell_command`] runs in its namespace: the machine's mounts,
    /// then `script` (for a test that runs it in a terminal of its own).
    pub fn shell_script(&self, script: &str) -> String {
        let home = quote(&self.home.to_string_lossy());
        let nix = quote(&self.nix.to_string_lossy());
        let mut machine = String::new();
        if self.home_mounted() || self.rebooted() {
            let device = quote(&self.sandbox.loop_device.to_string_lossy());
            machine.push_str(&format!("mount {device} {home}\n"));
        }
        if self.nix_bound() || self.rebooted() {
            match self.store_loop_device() {
                Some(device) => machine.push_str(&format!(
                    "mount {} {nix}\n",
                    quote(&device.to_string_lossy())
                )),
                None => machine.push_str(&format!("mount --bind {home}/{USER}/nix {nix}\n")),
            }
        }
        format!(
            "mount --bind {host_nix} /nix\n{machine}{script}",
            host_nix = quote(&self.host_nix.to_string_lossy())
        )
    }

    /// Whether the machine has the volume mounted at the home: a `nixos-rebuild switch`
    /// mounted it (activation mounts `fileSystems`), and it stays until the reboot. Every
    /// namespace of the scenario then starts with it mounted, as later runs would find it.
    pub fn home_mounted(&self) -> bool {
        self.dir.join("home-mounted").exists()
    }

    /// Whether the machine has the volume's store at the store target: a `nixos-rebuild
    /// switch` bound `<home>/qwe/nix` there (or mounted the store volume there), burying
    /// what the fresh machine had built at that path. Like [`FreshVps::home_mounted`], every
    /// later namespace of the scenario starts with it.
    pub fn nix_bound(&self) -> bool {
        self.dir.join("nix-bound").exists()
    }

    /// Whether the stand-in reboot ran: from then on the machine runs the new system, whose
    /// `fileSystems` mount the volume at the home and the volume's store at the store target.
    pub fn rebooted(&self) -> bool {
        self.dir.join("rebooted").exists()
    }

    /// The system the machine runs: the one the last `nixos-rebuild switch` (exit 0 or 4)
    /// activated; after the reboot, the boot entry's ([`FreshVps::boot_entry`]) if it is in
    /// the volume's store, where stage 2 looks for it once the store is the volume's, and
    /// none otherwise (the boot stops in stage 1).
    pub fn current_system(&self) -> Option<PathBuf> {
        if self.rebooted() {
            let entry = self.boot_entry()?;
            return self.boot_entry_in_volume_store().then_some(entry);
        }
        fs::read_link(self.dir.join("current-system")).ok()
    }

    /// Whether the boot entry's system is in the volume's store, so the next boot finds it.
    pub fn boot_entry_in_volume_store(&self) -> bool {
        self.boot_entry()
            .and_then(|entry| Some(entry.file_name()?.to_string_lossy().into_owned()))
            .is_some_and(|name| self.in_volume_store(&name))
    }

    /// The system the boot loader starts at the next boot: what the last `nixos-rebuild
    /// boot` (exit 0) or `switch` (past its build) installed.
    pub fn boot_entry(&self) -> Option<PathBuf> {
        fs::read_link(self.dir.join("boot-entry")).ok()
    }

    /// Forget the mounts a switch left (as a reboot into a system without them would).
    pub fn forget_home_mount(&self) {
        let _ = fs::remove_file(self.dir.join("home-mounted"));
        let _ = fs::remove_file(self.dir.join("nix-bound"));
    }

    /// The stand-ins' calls, one argv a line (`nixos-rebuild build --flake …`, `reboot`).
    pub fn calls(&self) -> Vec<String> {
        fs::read_to_string(self.dir.join("calls.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Make the stand-in's next `nixos-rebuild ACTION` exit with `code` ("build", "boot" or
    /// "switch").
    pub fn set_exit(&self, action: &str, code: i32) {
        fs::write(self.dir.join(format!("{action}-exit")), code.to_string()).unwrap();
    }

    /// The by-id link of the store volume (`<dir>/by-id/scsi-0HC_Volume_2`), with
    /// [`FreshVpsOptions::store_volume`].
    pub fn store_device(&self) -> Option<PathBuf> {
        self.store_sandbox
            .as_ref()
            .map(|_| self.sandbox.by_id_dir.join(STORE_VOLUME_NAME))
    }

    /// The store volume's loop device ([`FreshVpsOptions::store_volume`]).
    pub fn store_loop_device(&self) -> Option<&Path> {
        self.store_sandbox
            .as_ref()
            .map(|store| store.loop_device.as_path())
    }

    /// Where the volume's store directory (`store/`, `var/nix/…`) is seen once
    /// [`FreshVps::mount_volume_store`] ran: `<home>/qwe/nix`, or the store target itself
    /// for the store volume.
    pub fn volume_store_dir(&self) -> PathBuf {
        match self.store_sandbox {
            Some(_) => self.nix.clone(),
            None => self.home.join(USER).join("nix"),
        }
    }

    /// Shell lines that make [`FreshVps::volume_store_dir`] readable in a namespace of the
    /// scenario: the volume holding the store mounted read-only where the machine would
    /// mount it, unless it is mounted there already.
    pub fn mount_volume_store(&self) -> String {
        let (device, at) = match self.store_loop_device() {
            Some(device) => (device, &self.nix),
            None => (self.sandbox.loop_device.as_path(), &self.home),
        };
        format!(
            "mountpoint -q {at} || mount -o ro,noload {device} {at}\n",
            at = quote(&at.to_string_lossy()),
            device = quote(&device.to_string_lossy()),
        )
    }

    /// Run `script` like [`FreshVps::shell`] in a namespace whose `/nix` is the volume's
    /// store, mounted read-write (`<volume>/qwe/nix` bound over `/nix`, or the store volume
    /// mounted there), as on the old machine and after the reboot: `nix-store`, `nix-env`,
    /// `nix path-info` and store paths' symlinks then see the volume's store and database.
    /// The volume is mounted at `<dir>/volume-rw` for it (the store volume: nowhere else).
    pub fn with_volume_store(&self, script: &str) -> String {
        let rw = self.dir.join("volume-rw");
        fs::create_dir_all(&rw).unwrap();
        let store = match self.store_loop_device() {
            Some(device) => format!("mount {} /nix\n", quote(&device.to_string_lossy())),
            None => format!(
                "mount {dev} {rw}\nmount --bind {rw}/{USER}/nix /nix\n",
                dev = quote(&self.sandbox.loop_device.to_string_lossy()),
                rw = quote(&rw.to_string_lossy()),
            ),
        };
        let out = self.shell(&format!("{store}{script}"));
        fs::remove_dir(&rw).unwrap();
        out
    }

    /// Whether `store/<name>` exists in the volume's store (`<home>/qwe/nix/store/<name>`,
    /// or the store volume's `store/<name>`).
    pub fn in_volume_store(&self, name: &str) -> bool {
        let path = self.volume_store_dir().join("store").join(name);
        self.shell(&format!(
            "{mount}[ -e {path} ] && echo yes || echo no",
            mount = self.mount_volume_store(),
            path = quote(&path.to_string_lossy())
        )) == "yes"
    }

    /// The volume's system profile (`var/nix/profiles/system*` of its store), as the old
    /// machine left it and recover extends it: its generations and the one `system` points
    /// at ([`SystemProfile`]).
    pub fn volume_profile(&self) -> SystemProfile {
        let profiles = self.volume_store_dir().join("var/nix/profiles");
        parse_profile(&self.shell(&format!(
            "{mount}cd {profiles} 2>/dev/null || exit 0\n\
             for link in system system-*-link; do\n\
             [ -L \"$link\" ] && printf '%s %s\\n' \"$link\" \"$(readlink \"$link\")\"\n\
             done\ntrue",
            mount = self.mount_volume_store(),
            profiles = quote(&profiles.to_string_lossy())
        )))
    }

    /// The fresh machine's own system profile (`/nix/var/nix/profiles/system*` of its root
    /// disk, the scenario's `host-nix`), which `nixos-rebuild boot` and `switch` set.
    pub fn root_profile(&self) -> SystemProfile {
        let profiles = self.host_nix.join("var/nix/profiles");
        let listing: String = fs::read_dir(&profiles)
            .into_iter()
            .flatten()
            .filter_map(|entry| {
                let entry = entry.ok()?;
                let target = fs::read_link(entry.path()).ok()?;
                Some(format!(
                    "{} {}\n",
                    entry.file_name().to_string_lossy(),
                    target.display()
                ))
            })
            .collect();
        parse_profile(&listing)
    }

    /// The old machine's last system (`/nix/store/…-nixos-system-devserver-25.11`, built
    /// with [`OLD_ROOT_UUID`] as its root filesystem), in the volume's store and generation 1
    /// of its system profile. Panics without [`FreshVpsOptions::old_machine`].
    pub fn old_system(&self) -> PathBuf {
        self.old_system
            .clone()
            .expect("the scenario has no old machine")
    }

    /// How many times the flake's expensive derivation was built, on any machine of the
    /// scenario (the old machine's build counts one).
    pub fn expensive_builds(&self) -> usize {
        fs::read_to_string(self.dir.join("expensive-builds"))
            .unwrap_or_default()
            .lines()
            .count()
    }

    /// Read a file from the volume, mounted read-only for the moment in a namespace of its own
    /// (or as the machine has it mounted, after a switch).
    pub fn volume_file(&self, rel: &str) -> Option<String> {
        let out = self.shell(&format!(
            "mountpoint -q {home} || mount -o ro,noload {dev} {home}\ncat {file} 2>/dev/null || true",
            dev = quote(&self.sandbox.loop_device.to_string_lossy()),
            home = quote(&self.home.to_string_lossy()),
            file = quote(&self.home.join(rel).to_string_lossy())
        ));
        (!out.is_empty()).then_some(out)
    }

    /// Write `contents` at `rel` on the volume, owned by the user with `mode`, through a
    /// read-write mount in a namespace of its own (as the old machine left the file).
    /// Missing parent directories are made as the user's, mode 0700 (like `~/.ssh`).
    pub fn write_volume_file(&self, rel: &str, contents: &str, mode: u32) {
        let staged = self.dir.join("volume-file");
        fs::write(&staged, contents).unwrap();
        let rw = self.dir.join("rw");
        fs::create_dir_all(&rw).unwrap();
        self.shell(&format!(
            "mount {dev} {rw}\n\
             target={rw}/{rel}\nparent=$(dirname \"$target\")\n\
             if [ ! -d \"$parent\" ]; then mkdir -p \"$parent\"; chown {UID}:100 \"$parent\"; chmod 700 \"$parent\"; fi\n\
             cp {staged} \"$target\"\nchown {UID}:100 \"$target\"\nchmod {mode:o} \"$target\"\n\
             umount {rw}",
            dev = quote(&self.sandbox.loop_device.to_string_lossy()),
            rw = quote(&rw.to_string_lossy()),
            rel = quote(rel),
            staged = quote(&staged.to_string_lossy()),
        ));
        fs::remove_file(&staged).unwrap();
        fs::remove_dir(&rw).unwrap();
    }

    fn write_stand_ins(&self) {
        let fill = |text: &str| {
            text.replace("@dir@", &self.dir.to_string_lossy())
                .replace("@home@", &self.home.to_string_lossy())
                .replace("@nix@", &self.nix.to_string_lossy())
                .replace("@device@", &self.device.to_string_lossy())
        };
        for (name, text) in [
            ("nixos-rebuild", NIXOS_REBUILD),
            ("nixos-generate-config", NIXOS_GENERATE_CONFIG),
            ("reboot", REBOOT),
        ] {
            let path = self.bin.join(name);
            fs::write(&path, fill(text)).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        }
        // Activation output: the capture without its build lines and its last line, which
        // the stand-in prints after its mounts.
        let activation: String = SWITCH_OK
            .lines()
            .filter(|l| !l.starts_with("building") && !l.starts_with("Done."))
            .map(|l| format!("{l}\n"))
            .collect();
        fs::write(self.dir.join("activation-ok.stderr"), activation).unwrap();
        fs::write(
            self.dir.join("activation-units-failed.stderr"),
            SWITCH_UNITS_FAILED,
        )
        .unwrap();
        let capture = HARDWARE_VOLUME_MOUNTED
            .replace("\"/home\"", &format!("\"{}\"", self.home.display()))
            .replace("\"/mnt/data\"", &format!("\"{}\"", self.mnt.display()));
        fs::write(&self.hardware_capture, capture).unwrap();
    }

    /// The flake's configuration.nix for these options.
    fn configuration_nix(&self, options: &FreshVpsOptions) -> String {
        let device = options.flake_device.as_ref().unwrap_or(&self.device);
        let needed_for_boot = if options.needed_for_boot {
            "    neededForBoot = true;\n"
        } else {
            ""
        };
        let nix_bind = match (self.store_device(), options.nix_bind) {
            (_, false) => String::new(),
            (Some(store), true) => format!(
                "\n  fileSystems.\"{nix}\" = {{\n    device = \"{store}\";\n    \
                 fsType = \"ext4\";\n    neededForBoot = true;\n  }};\n",
                nix = self.nix.display(),
                store = store.display()
            ),
            (None, true) => format!(
                "\n  fileSystems.\"{nix}\" = {{\n    device = \"{home}/{USER}/nix\";\n    \
                 fsType = \"none\";\n    options = [ \"bind\" ];\n  }};\n",
                nix = self.nix.display(),
                home = self.home.display()
            ),
        };
        CONFIGURATION_NIX
            .replace("@home@", &self.home.to_string_lossy())
            .replace("@device@", &device.to_string_lossy())
            .replace("@needed_for_boot@", needed_for_boot)
            .replace("@nix_bind@", &nix_bind)
            .replace("@uid@", &options.flake_uid.to_string())
            .replace("@extra@", options.extra_config)
    }

    fn make_remote(&self, options: &FreshVpsOptions) {
        sh(&format!(
            "git init -q --bare -b main {remote}\ngit clone -q {remote} {author} 2>/dev/null",
            remote = quote(&self.remote.to_string_lossy()),
            author = quote(&self.author.to_string_lossy())
        ));
        let system = format!("{}-linux", std::env::consts::ARCH);
        fs::write(
            self.author.join("flake.nix"),
            FLAKE_NIX
                .replace("@system@", &system)
                .replace("@dir@", &self.dir.to_string_lossy()),
        )
        .unwrap();
        fs::write(
            self.author.join("configuration.nix"),
            self.configuration_nix(options),
        )
        .unwrap();
        fs::write(
            self.author.join("hardware-configuration.nix"),
            HARDWARE_PLAIN,
        )
        .unwrap();
        git(&self.author, "add -A");
        git(
            &self.author,
            "commit -q -m 'devserver: volume at /home, store bound from it'",
        );
        git(&self.author, "push -q -u origin main");
    }

    /// What `predestroy` leaves on the volume, written in a namespace of its own: marker,
    /// card (when asked) and the config mirror. With a store volume, the home volume has no
    /// store of its own (`qwe/nix` removed).
    fn write_volume(mut self, with_card: bool, saved_identity: bool) -> FreshVps {
        let payload = self.dir.join("payload");
        let lifeboat_dir = payload.join(USER).join(".lifeboat");
        fs::create_dir_all(&lifeboat_dir).unwrap();
        // predestroy's host-identity step, from the old machine's root disk.
        let mut old = Config::default();
        old.host.root = self.old_root.clone();
        old.host.carry = vec!["/var/lib/postgresql".into()];
        let carried = host_identity::carried(&old);
        let saved_dir = payload.join(host_identity::SAVED_DIR);
        if saved_identity {
            let saved = host_identity::save::save(&old, &carried, &saved_dir)
                .unwrap_or_else(|failed| panic!("{}: {}", failed.path.display(), failed.error));
            self.saved = saved.entries;
        } else {
            fs::create_dir_all(&saved_dir).unwrap();
        }
        let marker = PersistenceMarker::new("devserver").unwrap();
        fs::write(
            lifeboat_dir.join("persistence-marker"),
            marker.to_toml().unwrap(),
        )
        .unwrap();
        self.marker_nonce = marker.nonce.clone();
        if with_card {
            fs::write(
                lifeboat_dir.join("recovery.toml"),
                self.card().to_toml().unwrap(),
            )
            .unwrap();
        }
        let rw = self.dir.join("rw");
        fs::create_dir_all(&rw).unwrap();
        let no_store = if self.store_sandbox.is_some() {
            format!("rm -rf {}/{USER}/nix\n", quote(&rw.to_string_lossy()))
        } else {
            String::new()
        };
        self.shell(&format!(
            "mount {dev} {rw}\n\
             cp -a {payload}/{USER}/.lifeboat {rw}/{USER}/\n\
             chown -R {UID}:100 {rw}/{USER}/.lifeboat\nchmod 700 {rw}/{USER}/.lifeboat\n\
             chmod 600 {rw}/{USER}/.lifeboat/*\n\
             cp -a {payload}/{saved} {rw}/\n\
             git clone -q --mirror {remote} {rw}/{USER}/nixos-config-backup.git\n\
             {no_store}umount {rw}",
            dev = quote(&self.sandbox.loop_device.to_string_lossy()),
            rw = quote(&rw.to_string_lossy()),
            payload = payload.display(),
            saved = host_identity::SAVED_DIR,
            remote = quote(&self.remote.to_string_lossy()),
        ));
        fs::remove_dir_all(&payload).unwrap();
        fs::remove_dir(&rw).unwrap();
        self
    }

    /// The volume's store as the old VPS left it, made in a namespace whose `/nix` is that
    /// store (`<volume>/qwe/nix` bound over it, or the store volume mounted there): a real
    /// Nix database (the practice volume's is a stand-in Nix cannot open) and, with an old
    /// machine, its last `nixos-rebuild switch`: the flake built with the old machine's
    /// hardware configuration ([`OLD_ROOT_UUID`]) and set as the system profile's
    /// generation 1. Then the database goes when the options say so.
    fn old_machine(&mut self, options: &FreshVpsOptions) {
        let old = self.dir.join("old-machine");
        let flake = old.join("flake");
        fs::create_dir_all(&flake).unwrap();
        fs::create_dir_all(old.join("root")).unwrap();
        for file in ["flake.nix", "configuration.nix"] {
            fs::copy(self.author.join(file), flake.join(file)).unwrap();
        }
        fs::write(
            flake.join("hardware-configuration.nix"),
            HARDWARE_PLAIN.replace(FRESH_ROOT_UUID, OLD_ROOT_UUID),
        )
        .unwrap();
        let reset_db = if self.store_sandbox.is_some() {
            ""
        } else {
            // The practice volume's database is a stand-in that Nix cannot open.
            "rm -f /nix/var/nix/db/db.sqlite\n"
        };
        let build = if options.old_machine {
            format!(
                "json=$(nix build --extra-experimental-features 'nix-command flakes' --no-link \
                 --json {installable})\n\
                 system=$(printf '%s' \"$json\" | sed -n 's/.*\"out\":\"\\([^\"]*\\)\".*/\\1/p')\n\
                 nix-env -p /nix/var/nix/profiles/system --set \"$system\"\necho \"$system\"\n",
                installable = quote(&format!(
                    "path:{}#nixosConfigurations.{HOST}.config.system.build.toplevel",
                    flake.display()
                )),
            )
        } else {
            "nix --extra-experimental-features nix-command store ping >/dev/null\n".to_string()
        };
        let drop_db = if options.volume_store_db {
            ""
        } else {
            "rm -rf /nix/var/nix/db\n"
        };
        let out = self.with_volume_store(&format!(
            "export HOME={home}\n{reset_db}{build}{drop_db}",
            home = quote(&old.join("root").to_string_lossy()),
        ));
        if options.old_machine {
            let system = out.lines().last().unwrap_or_default();
            assert!(system.starts_with("/nix/store/"), "the old build: {out}");
            self.old_system = Some(PathBuf::from(system));
        }
        fs::remove_dir_all(&old).unwrap();
    }

    /// The card `predestroy` would have written for this machine.
    fn card(&self) -> RecoveryCard {
        let uuid = |device: &Path| {
            sh(&format!(
                "blkid -s UUID -o value {}",
                quote(&device.to_string_lossy())
            ))
        };
        let mut volumes = vec![CardVolume {
            device: self.device.clone(),
            uuid: uuid(&self.sandbox.loop_device),
            mount: self.home.clone(),
            fs_type: "ext4".into(),
        }];
        if let (Some(device), Some(store)) = (self.store_device(), self.store_loop_device()) {
            volumes.push(CardVolume {
                device,
                uuid: uuid(store),
                mount: self.nix.clone(),
                fs_type: "ext4".into(),
            });
        }
        // predestroy writes `[nix_store].source` as the config gives it or derives it
        // (`<first volume>/<user>/nix`), whatever the layout.
        RecoveryCard {
            format: FORMAT,
            written_at: "2026-11-26T09:00:00Z".into(),
            lifeboat_version: env!("CARGO_PKG_VERSION").into(),
            hostname: HOST.into(),
            nixos_version: Some("25.11".into()),
            user: USER.into(),
            uid: UID,
            repository: CardRepository {
                url: self.url(),
                branch: "main".into(),
                commit: self.remote_head(),
                flake_host: HOST.into(),
            },
            volumes,
            nix_store: CardNixStore {
                source: self.home.join(USER).join("nix"),
                target: self.nix.clone(),
            },
            store: None,
            saved: self.saved.clone(),
            lifeboat_store_path: None,
            // The old server's public side, as the network tests' nixos-infect file has it.
            network: Some(nixos_lifeboat::card::CardNetwork {
                addresses: vec!["198.51.100.9/32".into(), "2a01:4f8:c17:1::1/64".into()],
                macs: vec!["96:00:01:02:03:04".into()],
            }),
            persistence_nonce: Some(self.marker_nonce.clone()),
            rehearsal: None,
        }
    }
}

/// The summary event, which comes last.
pub fn summary(events: &[Value]) -> &Value {
    let last = events.last().expect("events");
    assert_eq!(last["event"], "summary", "{last}");
    last
}

/// Status and message of step `id` in the summary.
pub fn step<'a>(events: &'a [Value], id: &str) -> (&'a str, &'a str) {
    let step = summary(events)["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no step {id}"));
    (
        step["status"].as_str().unwrap(),
        step["message"].as_str().unwrap(),
    )
}
