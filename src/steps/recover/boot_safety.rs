//! `boot-safety`: evaluate the flake before anything is built and refuse a configuration
//! that would not come back with the volume: the host exists, each volume device exists
//! here with its filesystem, the filesystem holding the Nix store is mounted in stage 1,
//! `/nix` is a bind of it, the user's uid owns the home on the volume, every other
//! filesystem mounted at boot names a device this machine has, and the operator can get
//! back in over the network (`network.rs`). Every fact comes from one `nix eval`. Each
//! blocker comes with the exact Nix lines to add or change.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::config::{Config, StorePlace};
use crate::escape::{escape_bytes, shown};
use crate::exec::netfacts;
use crate::exec::process::{self, CommandSpec, Line, LongLines, Piece};
use crate::nixedit::{self, MountFields};
use crate::nixlog::{self, KnownError};
use crate::report::Stream;
use crate::steps::context::StepContext;

use super::blocker::{Blocker, Place};
use super::network;
use super::secrets::{self, CarriedKey};
use crate::steps::host_identity::mapped_uid;

/// The flags every `nix` call of lifeboat's passes: a fresh system may not enable flakes.
const FEATURES: [&str; 2] = ["--extra-experimental-features", "nix-command flakes"];

/// What the volume looks like on this machine, as the earlier steps found it.
pub struct Attached<'a> {
    /// The device path found (a by-id link when there is one).
    pub path: &'a Path,
    pub dev: (u32, u32),
    /// Owner uid of `<user>/` on the volume.
    pub owner_uid: Option<u32>,
    /// The keys in `<user>/.ssh/authorized_keys` on the volume.
    pub volume_keys: usize,
    /// The host keys carried from the old machine.
    pub carried_keys: Vec<CarriedKey>,
    /// The old server's public addresses, as the card records them.
    pub old_server: Vec<std::net::IpAddr>,
}

/// The device string the repository declares for a volume that is now attached elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrite {
    pub file: PathBuf,
    pub mount: String,
    pub old: String,
    pub new: String,
}

/// The edit that gives the configuration this machine's addresses and MAC in place of the
/// old server's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Renumber {
    pub file: PathBuf,
    /// The file as it is, and as the edit leaves it.
    pub before: String,
    pub after: String,
    /// What it fixes.
    pub problems: Vec<String>,
}

/// The verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Safe, with what deserves a look anyway.
    Safe(String, Vec<String>),
    /// The flake cannot be evaluated, with why.
    EvalFailed(String),
    Blocked(Vec<Blocker>),
    /// Only the device path moved; rewriting it makes the configuration safe.
    DeviceMoved(Rewrite),
    /// Only the addresses and MAC are the old server's; the edit makes them this machine's.
    Renumber(Renumber),
}

/// The function `boot-safety` applies to the flake's `nixosConfigurations`: every fact it
/// judges, from one evaluation. For a host the flake lacks, the hosts it has. A fact read
/// with `tryEval` is `null` when it does not evaluate, so one broken option does not hide
/// the others; `fileSystems` is read plainly, since the build would fail on it too. With
/// [`Depth::WholeSystem`], `@system@` becomes the whole system's `drvPath`, read plainly too.
const FACTS: &str = r#"configurations: let
  host = @host@;
  user = @user@;
  try = value: let tried = builtins.tryEval (builtins.deepSeq value value); in if tried.success then tried.value else null;
in if !(configurations ? ${host}) then { hosts = builtins.attrNames configurations; } else let
  config = configurations.${host}.config;
  users = try (builtins.attrNames (config.users.users or { }));
in {@system@
  fileSystems = builtins.mapAttrs (_: fs: {
    device = fs.device or null; fsType = fs.fsType or null; options = fs.options or null;
    neededForBoot = fs.neededForBoot or null; label = fs.label or null;
  }) (config.fileSystems or { });
  user = if user == null || users == null || !(builtins.elem user users) then null
    else { uid = try (config.users.users.${user}.uid or null); };
  network = let
    net = config.networking or { };
    addresses = i: map (a: { address = a.address or null; prefixLength = a.prefixLength or null; })
      ((i.ipv4.addresses or [ ]) ++ (i.ipv6.addresses or [ ]));
    gateway = g: if g == null then null else if builtins.isString g then g else g.address or null;
  in try {
    defaultGateway = gateway (net.defaultGateway or null); defaultGateway6 = gateway (net.defaultGateway6 or null);
    useDHCP = net.useDHCP or null; dhcpcd = net.dhcpcd.enable or null;
    useNetworkd = net.useNetworkd or null; predictableNames = net.usePredictableInterfaceNames or null;
    interfaces = builtins.mapAttrs (_: i: { useDHCP = i.useDHCP or null; addresses = addresses i; })
      (net.interfaces or { });
    networks = builtins.mapAttrs (_: n: {
      name = n.matchConfig.Name or null; mac = n.matchConfig.MACAddress or null;
      address = (n.address or [ ]) ++ (let a = n.networkConfig.Address or [ ]; in if builtins.isList a then a else [ a ]);
      dhcp = n.networkConfig.DHCP or n.DHCP or null;
    }) (config.systemd.network.networks or { });
    udevRules = config.services.udev.extraRules or null;
  };
  secrets = try {
    sopsSecrets = builtins.length (builtins.attrNames (config.sops.secrets or { }));
    ageSecrets = builtins.length (builtins.attrNames (config.age.secrets or { }));
    sopsAgeKeys = config.sops.age.sshKeyPaths or null;
    sopsGnupgKeys = config.sops.gnupg.sshKeyPaths or null;
    ageIdentities = config.age.identityPaths or null;
  };
  login = let
    ssh = config.services.openssh or { };
    firewall = config.networking.firewall or { };
  in try {
    sshd = ssh.enable or null; ports = ssh.ports or null; openFirewall = ssh.openFirewall or null;
    passwordAuthentication = ssh.settings.PasswordAuthentication or null;
    firewall = firewall.enable or null; allowedPorts = firewall.allowedTCPPorts or null;
    allowedRanges = firewall.allowedTCPPortRanges or null;
    keys = builtins.listToAttrs (map (u: { name = u; value = let
        keys = config.users.users.${u}.openssh.authorizedKeys or { };
      in builtins.length (keys.keys or [ ]) + builtins.length (keys.keyFiles or [ ]); })
      (builtins.filter (u: u != null && builtins.elem u users) [ "root" user ]));
  };
}"#;

/// How far an evaluation goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// The facts boot-safety judges; the build evaluates the rest.
    Facts,
    /// The facts and the whole system's `drvPath`: every module evaluated, nothing built.
    WholeSystem,
}

/// The Nix function of [`FACTS`] for `host` and the config's user, on one line.
fn facts_function(cfg: &Config, host: &str, depth: Depth) -> String {
    let user = cfg
        .user
        .as_deref()
        .map_or("null".into(), nixedit::nix_string);
    let function = FACTS.split_whitespace().collect::<Vec<_>>().join(" ");
    function
        .replace("@host@", &nixedit::nix_string(host))
        .replace("@user@", &user)
        .replace(
            "@system@",
            match depth {
                Depth::Facts => "",
                Depth::WholeSystem => " system = config.system.build.toplevel.drvPath;",
            },
        )
}

/// `nix eval --json <repo>#nixosConfigurations --apply <the facts function>`.
pub fn eval_command(cfg: &Config, host: &str, depth: Depth) -> CommandSpec {
    let flake = format!("{}#nixosConfigurations", cfg.config_repo.path.display());
    let mut args: Vec<String> = ["eval", "--json"].map(String::from).to_vec();
    args.extend(FEATURES.map(String::from));
    args.push(flake);
    args.extend(["--apply".to_string(), facts_function(cfg, host, depth)]);
    CommandSpec::from_prefix(&cfg.commands.nix, args).package("nix")
}

/// What the evaluation gives: the host's facts, or the hosts the flake has.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Facts {
    /// Present only when the flake has no such host.
    hosts: Option<Vec<String>>,
    /// The system's `drvPath`, when the evaluation went that far ([`Depth::WholeSystem`]).
    system: Option<String>,
    #[serde(default)]
    file_systems: BTreeMap<String, MountFields>,
    /// `None` when the configuration has no such user (or lifeboat knows none).
    user: Option<UserFacts>,
    /// `None` when they do not evaluate.
    network: Option<network::Network>,
    login: Option<network::Login>,
    secrets: Option<secrets::Secrets>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct UserFacts {
    uid: Option<u64>,
}

/// The most stderr lines of a `nix eval` kept: its error comes first, a flood after it
/// must not grow memory.
const EVAL_STDERR_LINES: usize = 200;
/// The most lines of Nix's error shown in the step's message.
const ERROR_LINES: usize = 8;

/// Why an evaluation gave no facts.
#[derive(Debug)]
pub enum EvalFailure {
    /// Nix failed; the first lines of its stderr.
    Nix(Vec<String>),
    /// Nix could not be run, or printed no facts.
    Other(String),
}

impl EvalFailure {
    /// The failures lifeboat recognises in Nix's messages. Nix's bare "attribute 'x'
    /// missing" inside `host`'s own configuration is an option it lacks, not another host.
    pub fn known(&self, host: &str) -> Vec<KnownError> {
        let EvalFailure::Nix(stderr) = self else {
            return Vec::new();
        };
        let text = stderr.join("\n");
        nixlog::summarise_errors([text.as_str()])
            .into_iter()
            .filter(|known| !known.names_another_host(Some(host)))
            .collect()
    }

    /// Nix's error as one line (see [`nix_error`]), files named by their place in `repo`.
    pub fn error(&self, repo: &Path) -> String {
        match self {
            EvalFailure::Nix(stderr) => nix_error(stderr, repo),
            EvalFailure::Other(why) => why.clone(),
        }
    }

    /// What recover says: the known causes, else Nix's error with how to see the rest.
    fn explained(&self, cfg: &Config, host: &str) -> String {
        let repo = &cfg.config_repo.path;
        let error = self.error(repo);
        let EvalFailure::Nix(_) = self else {
            return error;
        };
        let known: Vec<String> = self.known(host).iter().map(ToString::to_string).collect();
        if known.is_empty() {
            format!(
                "the flake does not evaluate (nixosConfigurations.{host}): {error}. Nothing was \
                 built. Fix the repository (commit and push the fix), then run recover again; \
                 `nix eval --show-trace {}#nixosConfigurations.{host}.config` shows the whole trace",
                shown(repo)
            )
        } else {
            format!("{} ({error})", known.join("; "))
        }
    }
}

/// Evaluate the facts of `host` (and with [`Depth::WholeSystem`] its system) in one `nix
/// eval`.
pub fn evaluate(
    cfg: &Config,
    host: &str,
    depth: Depth,
    ctx: &StepContext,
) -> Result<Facts, EvalFailure> {
    let spec = eval_command(cfg, host, depth).capture_stdout();
    let mut stderr = Vec::new();
    let mut long = LongLines::default();
    let finished = process::run_streaming(
        &spec,
        &mut |piece: Line<'_>| {
            if let Piece::Show(line) = long.sort(piece)
                && line.stream == Stream::Stderr
                && stderr.len() < EVAL_STDERR_LINES
            {
                stderr.push(String::from_utf8_lossy(line.bytes).into_owned());
            }
        },
        ctx.cancel,
    )
    .map_err(|e| EvalFailure::Other(e.to_string()))?;
    if !finished.status.success() {
        return Err(EvalFailure::Nix(stderr));
    }
    serde_json::from_slice(&finished.stdout_captured.unwrap_or_default()).map_err(|e| {
        EvalFailure::Other(format!(
            "nix eval of nixosConfigurations.{host} printed no facts lifeboat can read: {e}"
        ))
    })
}

/// Nix's error as one escaped line: the `error:` line, the lines that continue its text and
/// where it happened (`at FILE:LINE:COLUMN:`), without the code excerpt Nix draws under
/// it nor its hint to use `--show-trace`. Files in the store copy of the flake are named by
/// their place in the repository.
fn nix_error(stderr: &[String], repo: &Path) -> String {
    let lines: Vec<String> = stderr
        .iter()
        .map(|l| nixlog::strip_ansi(l).trim().to_string())
        .skip_while(|l| !l.starts_with("error:"))
        // Nix's hint to use --show-trace: lifeboat says which command shows the trace.
        .filter(|l| !l.is_empty() && !is_code_excerpt(l) && !l.starts_with("(use '--show-trace'"))
        .take(ERROR_LINES)
        .map(|l| escape_bytes(in_repository(&l, repo).as_bytes()))
        .collect();
    if lines.is_empty() {
        let last = stderr
            .last()
            .map(|l| nixlog::strip_ansi(l))
            .unwrap_or_default();
        return escape_bytes(last.trim().as_bytes());
    }
    lines.join(" ")
}

/// A line of the source excerpt Nix prints under an error: `   3|   oops = ;` or `    |  ^`.
fn is_code_excerpt(line: &str) -> bool {
    line.trim_start_matches(|c: char| c.is_ascii_digit())
        .starts_with('|')
}

/// `line` with `/nix/store/<hash>-source` (the flake's copy in the store) replaced by the
/// repository's path.
fn in_repository(line: &str, repo: &Path) -> String {
    const STORE: &str = "/nix/store/";
    const HASH: usize = 32;
    const SOURCE: &str = "-source";
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(start) = rest.find(STORE) {
        let after = &rest[start + STORE.len()..];
        let is_source = after.len() > HASH
            && after.is_char_boundary(HASH)
            && after[..HASH].bytes().all(|b| b.is_ascii_alphanumeric())
            && after[HASH..].starts_with(SOURCE);
        if is_source {
            out.push_str(&rest[..start]);
            out.push_str(&repo.display().to_string());
            rest = &after[HASH + SOURCE.len()..];
        } else {
            out.push_str(&rest[..start + STORE.len()]);
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

fn device_number(path: &Path) -> Option<(u32, u32)> {
    let meta = fs::metadata(path).ok()?;
    meta.file_type().is_block_device().then(|| {
        let rdev = meta.rdev();
        (
            nix::sys::stat::major(rdev) as u32,
            nix::sys::stat::minor(rdev) as u32,
        )
    })
}

/// Where the repository declares `mount` with a binding whose fields `matches` accepts.
fn declaring(repo: &Path, mount: &str, matches: impl Fn(&MountFields) -> bool) -> Option<Place> {
    nixedit::nix_files(repo).into_iter().find_map(|file| {
        let text = fs::read_to_string(&file).unwrap_or_default();
        let line = nixedit::file_systems_mounts(&text)
            .unwrap_or_default()
            .into_iter()
            .find(|m| m.mount_point == mount && matches(&m.fields))?
            .line;
        Some(Place { file, line })
    })
}

/// The repository file that declares `mount` with device `device`.
fn declaring_file(repo: &Path, mount: &str, device: &str) -> Option<PathBuf> {
    declaring(repo, mount, |fields| {
        fields.device.as_deref() == Some(device)
    })
    .map(|p| p.file)
}

/// The device a `fileSystems` entry mounts, when it is a device in `/dev` that must be
/// there at boot: not a bind, not `nofail`, not a filesystem without a device.
fn boot_device(entry: &MountFields) -> Option<String> {
    let options = entry.options.as_deref().unwrap_or_default();
    if options
        .iter()
        .any(|o| o == "bind" || o == "rbind" || o == "nofail")
        || entry.fs_type.as_deref() == Some("none")
    {
        return None;
    }
    let device = match (&entry.device, &entry.label) {
        (Some(device), _) => device.clone(),
        (None, Some(label)) => format!("/dev/disk/by-label/{label}"),
        (None, None) => return None,
    };
    device.starts_with("/dev/").then_some(device)
}

/// The stable names of this machine's block devices, as the new system would name them
/// (`/dev/disk/by-uuid/…`, `/dev/disk/by-label/…`), each with the device it points at.
fn device_candidates(cfg: &Config) -> Vec<String> {
    let mut out = Vec::new();
    for kind in ["by-uuid", "by-label"] {
        let dir = cfg.discovery.dev_dir.join("disk").join(kind);
        let mut names: Vec<_> = fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        names.sort();
        for name in names {
            let target = fs::read_link(dir.join(&name))
                .ok()
                .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()));
            let shown_name = escape_bytes(name.as_encoded_bytes());
            out.push(match target {
                Some(target) => format!(
                    "/dev/disk/{kind}/{shown_name} ({})",
                    escape_bytes(target.as_bytes())
                ),
                None => format!("/dev/disk/{kind}/{shown_name}"),
            });
        }
    }
    out
}

/// Every `fileSystems` entry (the volumes' aside, checked on their own) whose device is
/// not on this machine: the boot would stop in stage 1's emergency shell.
fn missing_devices(cfg: &Config, file_systems: &BTreeMap<String, MountFields>) -> Vec<Blocker> {
    let volumes: Vec<String> = cfg
        .volumes
        .iter()
        .map(|v| v.mount.display().to_string())
        .collect();
    let mut candidates = None;
    let mut blockers = Vec::new();
    for (mount, entry) in file_systems {
        if volumes.contains(mount) {
            continue;
        }
        let Some(device) = boot_device(entry) else {
            continue;
        };
        if cfg.discovery.on_this_machine(Path::new(&device)).exists() {
            continue;
        }
        let place = declaring(&cfg.config_repo.path, mount, |fields| match &entry.device {
            Some(_) => fields.device.as_deref() == Some(device.as_str()),
            None => fields.label.is_some() && fields.label == entry.label,
        });
        let candidates = candidates.get_or_insert_with(|| device_candidates(cfg));
        let mount_shown = escape_bytes(mount.as_bytes());
        blockers.push(Blocker {
            problem: format!(
                "fileSystems.\"{mount_shown}\" mounts {}{}, which does not exist on this machine: the boot would stop in stage 1's emergency shell; this machine has {}",
                escape_bytes(device.as_bytes()),
                place.map(|p| format!(" (set at {p})")).unwrap_or_default(),
                if candidates.is_empty() {
                    "no device under /dev/disk/by-uuid or by-label".to_string()
                } else {
                    candidates.join(", ")
                }
            ),
            nix: format!(
                "fileSystems.\"{mount_shown}\".device = \"/dev/disk/by-uuid/<one of this machine's>\"; (or remove the entry and let hardware-configuration.nix declare it)"
            ),
        });
    }
    blockers
}

/// Evaluate the flake's host and judge it.
pub fn check(cfg: &Config, host: &str, attached: &Attached, ctx: &StepContext) -> Verdict {
    match evaluate(cfg, host, Depth::Facts, ctx) {
        Ok(facts) => judge(cfg, host, &facts, attached),
        Err(failure) => Verdict::EvalFailed(failure.explained(cfg, host)),
    }
}

impl Facts {
    /// The system's `drvPath`, when evaluated ([`Depth::WholeSystem`]).
    pub fn system(&self) -> Option<&str> {
        self.system.as_deref()
    }
}

/// Judge the evaluated facts of `host` against the attached volume and this machine.
pub fn judge(cfg: &Config, host: &str, facts: &Facts, attached: &Attached) -> Verdict {
    if let Some(hosts) = &facts.hosts {
        return missing_host(host, hosts);
    }
    let file_systems = &facts.file_systems;
    let mut blockers = missing_devices(cfg, file_systems);
    let mut rewrite = None;
    for volume in &cfg.volumes {
        let mount = volume.mount.display().to_string();
        // The volume found and inspected, or another one of the config (the store's own).
        let (by_id, volume_dev) = match device_number(&volume.device) {
            Some(dev) if dev != attached.dev => (volume.device.display().to_string(), dev),
            _ => (attached.path.display().to_string(), attached.dev),
        };
        let Some(entry) = file_systems.get(&mount) else {
            blockers.push(Blocker {
                problem: format!("the configuration does not mount the volume at {mount}"),
                nix: format!(
                    "fileSystems.\"{mount}\" = {{ device = \"{by_id}\"; fsType = \"{}\"; neededForBoot = true; }};",
                    volume.fs_type
                ),
            });
            continue;
        };
        let device = entry.device.clone().unwrap_or_default();
        match device_number(Path::new(&device)) {
            Some(dev) if dev == volume_dev => {}
            Some(_) => blockers.push(Blocker {
                problem: format!(
                    "fileSystems.\"{mount}\".device is {}, another device than the attached volume {by_id}",
                    escape_bytes(device.as_bytes())
                ),
                nix: format!("fileSystems.\"{mount}\".device = \"{by_id}\";"),
            }),
            None => match declaring_file(&cfg.config_repo.path, &mount, &device) {
                Some(file) if device != by_id => {
                    rewrite = Some(Rewrite {
                        file,
                        mount: mount.clone(),
                        old: device.clone(),
                        new: by_id.clone(),
                    });
                }
                _ => blockers.push(Blocker {
                    problem: format!(
                        "fileSystems.\"{mount}\".device is {}, which does not exist on this machine: the boot would stop in emergency mode",
                        escape_bytes(device.as_bytes())
                    ),
                    nix: format!("fileSystems.\"{mount}\".device = \"{by_id}\";"),
                }),
            },
        }
        if entry.fs_type.as_deref() != Some(volume.fs_type.as_str()) {
            blockers.push(Blocker {
                problem: format!(
                    "fileSystems.\"{mount}\".fsType is {:?}, the volume holds {}",
                    entry.fs_type, volume.fs_type
                ),
                nix: format!("fileSystems.\"{mount}\".fsType = \"{}\";", volume.fs_type),
            });
        }
    }
    // A store on a volume of its own is mounted at /nix, which stage 1 always mounts; a bind
    // needs the volume it comes from mounted in stage 1 too.
    let place = cfg.store_place();
    if let Some(StorePlace::Bind { .. }) = &place
        && let Some(source) = cfg.nix_store_source()
    {
        let target = cfg.nix_store.target.display().to_string();
        for fix in nixedit::store_boot_fixes(file_systems, &source.display().to_string(), &target) {
            let place = declaring(&cfg.config_repo.path, &fix.mount_point, |_| true)
                .map(|place| format!(" (its entry is at {place})"))
                .unwrap_or_default();
            blockers.push(Blocker {
                problem: format!("{}{place}", fix.problem),
                nix: fix.nix.trim_end().to_string(),
            });
        }
    }
    if let Some(blocker) = uid_blocker(cfg, facts.user.as_ref(), attached.owner_uid) {
        blockers.push(blocker);
    }
    if let Some(secrets) = &facts.secrets {
        blockers.extend(secrets::blockers(
            secrets,
            &cfg.host.root,
            &attached.carried_keys,
        ));
    }
    let mut warnings = Vec::new();
    let renumber = reach(cfg, facts, attached, &mut blockers, &mut warnings);
    if let (Some(renumber), None) = (renumber, &rewrite) {
        return Verdict::Renumber(renumber);
    }
    match (blockers.is_empty(), rewrite) {
        (true, Some(rewrite)) => Verdict::DeviceMoved(rewrite),
        (true, None) => Verdict::Safe(
            match place {
                Some(StorePlace::OwnVolume { .. }) => format!(
                    "{host} mounts the volumes, the store's own at /nix, gives the user the uid that owns the home, and can be reached and logged into over SSH"
                ),
                _ => format!(
                    "{host} mounts the volume, mounts it in stage 1 for the /nix bind, gives the user the uid that owns the home, and can be reached and logged into over SSH"
                ),
            },
            warnings,
        ),
        (false, _) => Verdict::Blocked(blockers),
    }
}

/// The network and login checks: this machine's interfaces against the new system's. When
/// the only blockers are the old server's addresses and MAC, and each is a literal in one
/// file, the edit of that file that gives it this machine's instead.
fn reach(
    cfg: &Config,
    facts: &Facts,
    attached: &Attached,
    blockers: &mut Vec<Blocker>,
    warnings: &mut Vec<String>,
) -> Option<Renumber> {
    let sources = nixedit::Sources::read(&cfg.config_repo.path);
    let find = |needle: &str, whole: bool| {
        sources
            .find_string(needle, whole)
            .map(|(file, line)| Place {
                file: file.to_path_buf(),
                line,
            })
    };
    let mut judged = network::Judged::default();
    match (&facts.network, netfacts::read()) {
        (Some(net), Ok(machine)) => {
            judged = network::judge_network(net, &machine, &attached.old_server, &find);
        }
        (None, _) => warnings.push(
            "the configuration's networking options do not evaluate on their own; the network was not checked".into(),
        ),
        (_, Err(why)) => warnings.push(format!(
            "this machine's network could not be read ({}); the network was not checked",
            escape_bytes(why.as_bytes())
        )),
    }
    let login = match &facts.login {
        Some(login) => network::judge_login(login, cfg.user.as_deref(), attached.volume_keys),
        None => {
            warnings.push(
                "the configuration's sshd, firewall and key options do not evaluate on their own; logging in was not checked".into(),
            );
            Vec::new()
        }
    };
    let renumber = (blockers.is_empty() && login.is_empty() && judged.fixable)
        .then(|| renumber(&judged, &find))
        .flatten();
    blockers.extend(judged.blockers);
    blockers.extend(login);
    warnings.extend(judged.warnings);
    renumber
}

/// The edit of the one file that holds every literal `judged` would change.
fn renumber(
    judged: &network::Judged,
    find: &dyn Fn(&str, bool) -> Option<Place>,
) -> Option<Renumber> {
    let mut file = None;
    for fix in &judged.fixes {
        let place = find(&fix.old, fix.whole)?;
        if file.get_or_insert_with(|| place.file.clone()) != &place.file {
            return None;
        }
    }
    let file = file?;
    let before = fs::read_to_string(&file).ok()?;
    let edits: Vec<(&str, &str, bool)> = judged
        .fixes
        .iter()
        .map(|f| (f.old.as_str(), f.new.as_str(), f.whole))
        .collect();
    let after = nixedit::rewrite_strings(&before, &edits).ok()??;
    Some(Renumber {
        file,
        before,
        after,
        problems: judged.blockers.iter().map(|b| b.problem.clone()).collect(),
    })
}

fn missing_host(host: &str, hosts: &[String]) -> Verdict {
    let names: Vec<String> = hosts.iter().map(|n| escape_bytes(n.as_bytes())).collect();
    Verdict::Blocked(vec![Blocker {
        problem: format!(
            "the flake has no host {host}; it has: {}",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        ),
        nix: "set [config_repo].flake_host in lifeboat.toml to one of them".into(),
    }])
}

fn uid_blocker(cfg: &Config, declared: Option<&UserFacts>, owner: Option<u32>) -> Option<Blocker> {
    let user = cfg.user.as_deref()?;
    let owner = owner?;
    let pin = format!("users.users.{user}.uid = {owner};");
    match declared.map(|u| u.uid) {
        Some(Some(uid)) if uid == u64::from(owner) => None,
        Some(Some(uid)) => Some(Blocker {
            problem: format!(
                "the configuration gives {user} uid {uid}, but the home on the volume belongs to uid {owner}: the files would belong to someone else"
            ),
            nix: pin,
        }),
        // Without a fixed uid NixOS gives the user its id from /var/lib/nixos/uid-map,
        // which restore-host-identity put back.
        Some(None) if mapped_uid(&cfg.host.root, user) == Some(owner) => None,
        Some(None) => Some(Blocker {
            problem: format!(
                "the configuration does not pin {user}'s uid, and the restored id map does not give it {owner}: a fresh system may give another uid than {owner}, which owns the home on the volume"
            ),
            nix: pin,
        }),
        None => Some(Blocker {
            problem: format!("the configuration has no user {user}"),
            nix: format!("users.users.{user} = {{ isNormalUser = true; uid = {owner}; }};"),
        }),
    }
}

/// Rewrite the device string and commit it.
pub fn apply(cfg: &Config, rewrite: &Rewrite) -> Result<String, String> {
    let text =
        fs::read_to_string(&rewrite.file).map_err(|e| format!("{}: {e}", shown(&rewrite.file)))?;
    let edited =
        nixedit::rewrite_device(&text, &rewrite.old, &rewrite.new).map_err(|e| e.to_string())?;
    crate::exec::atomic::write_atomic(&rewrite.file, edited.text.as_bytes(), 0o644)
        .map_err(|e| format!("{}: {e}", shown(&rewrite.file)))?;
    let message = format!(
        "Mount {} from the attached volume {}\n\nThe volume's device path changed (a new volume or provider).\nCommitted by lifeboat recover.",
        rewrite.mount, rewrite.new
    );
    let commit = crate::exec::git::commit_all_tracked(&cfg.config_repo.path, &message)
        .map_err(|e| e.to_string())?;
    Ok(format!(
        "rewrote fileSystems.\"{}\".device in {} to {} and committed {}",
        rewrite.mount,
        shown(&rewrite.file),
        rewrite.new,
        &commit[..commit.len().min(12)]
    ))
}

/// Write the renumbered file and commit it.
pub fn apply_renumber(cfg: &Config, renumber: &Renumber) -> Result<String, String> {
    let now = fs::read_to_string(&renumber.file)
        .map_err(|e| format!("{}: {e}", shown(&renumber.file)))?;
    if now != renumber.before {
        return Err(format!(
            "{} changed since it was read; run recover again",
            shown(&renumber.file)
        ));
    }
    crate::exec::atomic::write_atomic(&renumber.file, renumber.after.as_bytes(), 0o644)
        .map_err(|e| format!("{}: {e}", shown(&renumber.file)))?;
    let name = renumber
        .file
        .strip_prefix(&cfg.config_repo.path)
        .unwrap_or(&renumber.file)
        .display()
        .to_string();
    let message = format!(
        "Give {name} this server's addresses and MAC\n\nThe configuration had the addresses of the server it was written on.\nCommitted by lifeboat recover."
    );
    let commit = crate::exec::git::commit_all_tracked(&cfg.config_repo.path, &message)
        .map_err(|e| e.to_string())?;
    Ok(format!(
        "rewrote {} to this machine's addresses and MAC and committed {}",
        shown(&renumber.file),
        &commit[..commit.len().min(12)]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unpinned_uid_is_safe_when_the_restored_id_map_gives_the_homes_owner() {
        let root = tempfile::tempdir().unwrap();
        let mut cfg = Config {
            user: Some("qwe".into()),
            ..Config::default()
        };
        cfg.host.root = root.path().to_path_buf();
        let unpinned = UserFacts { uid: None };
        let map = root.path().join("var/lib/nixos/uid-map");
        assert!(
            uid_blocker(&cfg, Some(&unpinned), Some(1000)).is_some(),
            "no map"
        );
        fs::create_dir_all(map.parent().unwrap()).unwrap();
        fs::write(&map, r#"{"qwe":1000}"#).unwrap();
        assert_eq!(uid_blocker(&cfg, Some(&unpinned), Some(1000)), None);
        fs::write(&map, r#"{"qwe":1001}"#).unwrap();
        let blocker = uid_blocker(&cfg, Some(&unpinned), Some(1000)).unwrap();
        assert!(
            blocker
                .problem
                .contains("restored id map does not give it 1000"),
            "{blocker:?}"
        );
    }

    #[test]
    fn only_devices_needed_at_boot_are_checked() {
        let entry = |device: Option<&str>, fs_type: &str, options: &[&str], label: Option<&str>| {
            boot_device(&MountFields {
                device: device.map(String::from),
                fs_type: Some(fs_type.into()),
                options: Some(options.iter().map(ToString::to_string).collect()),
                needed_for_boot: None,
                label: label.map(String::from),
            })
        };
        let uuid = "/dev/disk/by-uuid/5c0f";
        assert_eq!(
            entry(Some(uuid), "ext4", &["defaults"], None).as_deref(),
            Some(uuid)
        );
        assert_eq!(entry(Some(uuid), "ext4", &["nofail"], None), None);
        assert_eq!(entry(Some("/home/qwe/nix"), "none", &["bind"], None), None);
        assert_eq!(entry(Some("/srv/a"), "ext4", &["bind"], None), None);
        assert_eq!(entry(Some("tmpfs"), "tmpfs", &[], None), None);
        assert_eq!(entry(Some("server:/export"), "nfs", &[], None), None);
        assert_eq!(
            entry(None, "vfat", &[], Some("BOOT")).as_deref(),
            Some("/dev/disk/by-label/BOOT")
        );
        assert_eq!(entry(None, "ext4", &[], None), None);
    }

    #[test]
    fn nix_errors_keep_their_text_and_place_without_the_excerpt() {
        let stderr: Vec<String> = [
            "warning: Git tree '/etc/nixos' is dirty",
            "\u{1b}[31;1merror:\u{1b}[0m syntax error, unexpected ';'",
            "",
            "       at /nix/store/591dmnxf6hy5kr8zcgjn33ypw9qlm2bh-source/c.nix:3:10:",
            "",
            "            2|   a = 1;",
            "            3|   oops = ;",
            "             |          ^",
            "(use '--show-trace' to show detailed location information)",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            nix_error(&stderr, Path::new("/etc/nixos")),
            "error: syntax error, unexpected ';' at /etc/nixos/c.nix:3:10:"
        );
        let thrown = ["error: no disks \u{7}x", "       (second)"].map(String::from);
        assert_eq!(
            nix_error(&thrown, Path::new("/r")),
            "error: no disks \\u{7}x (second)"
        );
    }
}
