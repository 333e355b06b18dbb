//! Practice volumes: a sparse-file ext4 image on a loop device with the seed's layout,
//! a by-id directory pointing at it and a config that points at all of it.
//! `lifeboat demo` and the integration tests build their volumes with this same code,
//! so every test scenario is one an operator can practise on.
//!
//! This is the only place in lifeboat that creates a filesystem, and it does so only on
//! an image file it has just created itself (`create_new`, never an existing file). The
//! seed's tree is copied in by `mkfs.ext4 -d`, so building a volume mounts nothing.

use std::collections::BTreeSet;
use std::fs;
use std::io::{ErrorKind, Write};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{FileExt, PermissionsExt, lchown, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use nix::errno::Errno;
use nix::mount::{MntFlags, umount2};
use nix::sys::stat::{UtimensatFlags, utimensat};
use nix::sys::time::TimeSpec;
use serde::{Deserialize, Serialize};

/// The file that marks a directory as a sandbox; [`Sandbox::clean`] removes nothing without it.
const MANIFEST: &str = "lifeboat-sandbox.json";
const MANIFEST_FORMAT: &str = "lifeboat-sandbox/1";
const IMAGE: &str = "volume.img";
/// Where the seed tree is assembled before `mkfs.ext4 -d` copies it in; removed afterwards.
const STAGING: &str = "staging";
/// A copy of a filesystem block, written into the journal by `SeedNeedsRecovery`.
const JOURNAL_BLOCK: &str = "journal-block";
const BY_ID_PREFIX: &str = "scsi-0HC_Volume_";
/// How much of a failed tool's stderr an error keeps.
const STDERR_TAIL_BYTES: usize = 2000;

/// What goes on the practice volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeContents {
    /// ext4 with the seed's layout.
    Seed,
    /// ext4 with the seed layout, then a committed journal transaction left unreplayed (a
    /// crash-like state: a plain `ro` mount would replay it and write to the device).
    SeedNeedsRecovery,
    /// All zero bytes: an unformatted volume.
    Blank,
    /// Formatted by this program instead (e.g. "mkfs.ext2", "mkswap"): the wrong filesystem.
    OtherFilesystem(String),
}

/// Who owns the practice volume, how big it is, what it is called and what is on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeSpec {
    pub user: String,
    pub uid: u32,
    pub size_bytes: u64,
    /// ext4 label (at most 16 bytes).
    pub label: String,
    /// Names the by-id link `scsi-0HC_Volume_<volume_id>`, as Hetzner does.
    pub volume_id: u64,
    pub contents: VolumeContents,
}

impl Default for VolumeSpec {
    fn default() -> Self {
        VolumeSpec {
            user: "qwe".to_string(),
            uid: 1000,
            size_bytes: 256 << 20,
            label: "lifeboat-demo".to_string(),
            volume_id: 100_000_001,
            contents: VolumeContents::Seed,
        }
    }
}

/// A practice volume attached to a loop device, with everything it needs under one directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sandbox {
    /// Root of the sandbox; everything lives under it.
    pub dir: PathBuf,
    /// `dir/volume.img`, a sparse file.
    pub image: PathBuf,
    /// `/dev/loopN` backed by `image`.
    pub loop_device: PathBuf,
    /// `dir/by-id`: the `[discovery].by_id_dir` of the config.
    pub by_id_dir: PathBuf,
    /// `dir/by-id/scsi-0HC_Volume_<volume_id>` pointing at the loop device.
    pub by_id_link: PathBuf,
    /// `dir/mnt`: the `[inspect].mountpoint` of the config.
    pub mountpoint: PathBuf,
    /// `dir/state`: the `[state].dir` of the config.
    pub state_dir: PathBuf,
    /// `dir/lifeboat.toml`, pointing at all of the above.
    pub config_path: PathBuf,
}

/// Why a sandbox could not be created, opened or cleaned.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("`{program}` is not installed{}", package.map(|p| format!(" (Debian package `{p}`)")).unwrap_or_default())]
    MissingTool {
        program: String,
        package: Option<&'static str>,
    },
    #[error("`{command}` failed ({status}): {stderr_tail}")]
    CommandFailed {
        command: String,
        status: ExitStatus,
        stderr_tail: String,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a lifeboat sandbox (no valid {MANIFEST}); refusing to touch it", dir.display())]
    NotASandbox { dir: PathBuf },
    #[error("{}: exists and is not an empty directory", dir.display())]
    NotEmpty { dir: PathBuf },
    #[error("{}: the sandbox was never completed; clean it and create it again", dir.display())]
    Incomplete { dir: PathBuf },
    #[error("invalid volume spec: {0}")]
    InvalidSpec(String),
    #[error("unmounting {}: {source}", path.display())]
    Unmount { path: PathBuf, source: Errno },
    #[error("{}: still mounted after unmounting; nothing was removed", path.display())]
    StillMounted { path: PathBuf },
    #[error("{}: {message}", path.display())]
    Unexpected { path: PathBuf, message: String },
    #[error("{error}; cleaning up after it also failed: {cleanup}")]
    CleanupFailed {
        error: Box<SandboxError>,
        cleanup: Box<SandboxError>,
    },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> SandboxError + '_ {
    move |source| SandboxError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Sandbox {
    /// Make a new sandbox in `dir`, which must not exist or be empty. A failure halfway
    /// undoes everything made so far.
    pub fn create(dir: &Path, spec: &VolumeSpec) -> Result<Sandbox, SandboxError> {
        validate(spec)?;
        claim_dir(dir)?;
        let dir = fs::canonicalize(dir).map_err(io_error(dir))?;
        let mut sandbox = Sandbox::at(&dir, spec.volume_id, PathBuf::new());
        let built = Manifest::new(spec.volume_id, None)
            .write(&dir)
            .and_then(|()| sandbox.build(spec));
        match built {
            Ok(()) => Ok(sandbox),
            Err(error) => match Sandbox::clean(&dir) {
                Ok(()) => Err(error),
                Err(cleanup) => Err(SandboxError::CleanupFailed {
                    error: Box::new(error),
                    cleanup: Box::new(cleanup),
                }),
            },
        }
    }

    /// An existing sandbox, from its manifest. Re-attaches the image when no loop device
    /// holds it any more (after a reboot).
    pub fn open(dir: &Path) -> Result<Sandbox, SandboxError> {
        let dir = fs::canonicalize(dir).map_err(io_error(dir))?;
        let manifest = Manifest::read(&dir)?;
        let recorded = manifest
            .loop_device
            .ok_or_else(|| SandboxError::Incomplete { dir: dir.clone() })?;
        let mut sandbox = Sandbox::at(&dir, manifest.volume_id, recorded);
        let attached = loops_backed_by(&sandbox.image)?;
        if attached.contains(&sandbox.loop_device) {
            return Ok(sandbox);
        }
        sandbox.loop_device = match attached.into_iter().next() {
            Some(device) => device,
            None => attach(&sandbox.image)?,
        };
        sandbox.link_by_id()?;
        Manifest::new(manifest.volume_id, Some(sandbox.loop_device.clone())).write(&dir)?;
        Ok(sandbox)
    }

    /// Undo every trace of the sandbox in `dir`: unmount everything under it, detach every
    /// loop device backed by its image, remove the directory. Refuses a directory without
    /// the manifest; a directory that is already gone is fine.
    pub fn clean(dir: &Path) -> Result<(), SandboxError> {
        let dir = match fs::canonicalize(dir) {
            Ok(dir) => dir,
            Err(error) if error.kind() == ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(io_error(dir)(error)),
        };
        Manifest::read(&dir)?;
        unmount_all_under(&dir)?;
        for device in loops_backed_by(&dir.join(IMAGE))? {
            run(Command::new("losetup").arg("-d").arg(&device), b"")?;
        }
        fs::remove_dir_all(&dir).map_err(io_error(&dir))
    }

    fn at(dir: &Path, volume_id: u64, loop_device: PathBuf) -> Sandbox {
        let by_id_dir = dir.join("by-id");
        Sandbox {
            dir: dir.to_path_buf(),
            image: dir.join(IMAGE),
            loop_device,
            by_id_link: by_id_dir.join(format!("{BY_ID_PREFIX}{volume_id}")),
            by_id_dir,
            mountpoint: dir.join("mnt"),
            state_dir: dir.join("state"),
            config_path: dir.join("lifeboat.toml"),
        }
    }

    /// Everything after the manifest; the manifest records the loop device last, which
    /// marks the sandbox complete.
    fn build(&mut self, spec: &VolumeSpec) -> Result<(), SandboxError> {
        for dir in [&self.by_id_dir, &self.mountpoint, &self.state_dir] {
            fs::create_dir(dir).map_err(io_error(dir))?;
        }
        create_image(&self.image, spec.size_bytes)?;
        fill(&self.dir, &self.image, spec)?;
        self.loop_device = attach(&self.image)?;
        self.link_by_id()?;
        self.write_config(spec)?;
        Manifest::new(spec.volume_id, Some(self.loop_device.clone())).write(&self.dir)
    }

    /// Point the by-id link at the current loop device, replacing a stale one.
    fn link_by_id(&self) -> Result<(), SandboxError> {
        if fs::symlink_metadata(&self.by_id_link).is_ok() {
            fs::remove_file(&self.by_id_link).map_err(io_error(&self.by_id_link))?;
        }
        symlink(&self.loop_device, &self.by_id_link).map_err(io_error(&self.by_id_link))
    }

    fn write_config(&self, spec: &VolumeSpec) -> Result<(), SandboxError> {
        let home = Path::new("/home").join(&spec.user);
        let config = ConfigFile {
            user: &spec.user,
            uid: spec.uid,
            volume: [VolumeEntry {
                device: &self.by_id_link,
                mount: Path::new("/home"),
                fs_type: "ext4",
            }],
            nix_store: NixStoreEntry {
                source: home.join("nix"),
            },
            inspect: InspectEntry {
                mountpoint: &self.mountpoint,
            },
            discovery: DiscoveryEntry {
                by_id_dir: &self.by_id_dir,
                pattern: "scsi-0HC_Volume_*",
            },
            state: StateEntry {
                dir: &self.state_dir,
            },
            docker: DockerEntry {
                data_root: home.join("docker"),
            },
        };
        let body = toml::to_string(&config).map_err(|error| SandboxError::Unexpected {
            path: self.config_path.clone(),
            message: format!("cannot write the config: {error}"),
        })?;
        let text = format!(
            "# lifeboat config for the practice volume in {}\n\n{body}",
            self.dir.display()
        );
        fs::write(&self.config_path, text).map_err(io_error(&self.config_path))
    }
}

/// Mount points at or below `dir` in this process's mount namespace, in mount order.
pub fn mounts_under(dir: &Path) -> Result<Vec<PathBuf>, SandboxError> {
    let mountinfo = Path::new("/proc/self/mountinfo");
    let text = fs::read(mountinfo).map_err(io_error(mountinfo))?;
    Ok(text
        .split(|&b| b == b'\n')
        .filter_map(|line| line.split(|&b| b == b' ').nth(4))
        .map(|field| PathBuf::from(std::ffi::OsString::from_vec(unescape_octal(field))))
        .filter(|mount_point| mount_point.starts_with(dir))
        .collect())
}

/// Decode the `\040`-style escapes the kernel puts in mountinfo fields.
fn unescape_octal(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let digits = field.get(i + 1..i + 4);
        let code = digits
            .filter(|_| field[i] == b'\\')
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| u8::from_str_radix(d, 8).ok());
        match code {
            Some(byte) => {
                out.push(byte);
                i += 4;
            }
            None => {
                out.push(field[i]);
                i += 1;
            }
        }
    }
    out
}

/// Unmount everything under `dir`, newest first; a busy mount is detached lazily.
fn unmount_all_under(dir: &Path) -> Result<(), SandboxError> {
    for mount_point in mounts_under(dir)?.iter().rev() {
        let unmounted = match umount2(mount_point, MntFlags::empty()) {
            Err(Errno::EBUSY) => umount2(mount_point, MntFlags::MNT_DETACH),
            other => other,
        };
        match unmounted {
            // Gone already: a lazy detach of a parent takes its children along.
            Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => {}
            Err(source) => {
                return Err(SandboxError::Unmount {
                    path: mount_point.clone(),
                    source,
                });
            }
        }
    }
    match mounts_under(dir)?.into_iter().next() {
        Some(path) => Err(SandboxError::StillMounted { path }),
        None => Ok(()),
    }
}

/// Loop devices whose backing file is `image`, from `/sys/block/loop*/loop/backing_file`.
fn loops_backed_by(image: &Path) -> Result<Vec<PathBuf>, SandboxError> {
    let sys_block = Path::new("/sys/block");
    let mut devices = Vec::new();
    for entry in fs::read_dir(sys_block).map_err(io_error(sys_block))? {
        let name = entry.map_err(io_error(sys_block))?.file_name();
        let Some(name) = name.to_str().filter(|n| n.starts_with("loop")) else {
            continue;
        };
        // Unattached loop devices have no backing_file.
        let Ok(backing) = fs::read_to_string(sys_block.join(name).join("loop/backing_file")) else {
            continue;
        };
        let backing = backing.trim_end_matches('\n');
        let backing = backing.strip_suffix(" (deleted)").unwrap_or(backing);
        if Path::new(backing) == image {
            devices.push(Path::new("/dev").join(name));
        }
    }
    devices.sort();
    Ok(devices)
}

/// `losetup --find --show image`: the loop device it attached.
fn attach(image: &Path) -> Result<PathBuf, SandboxError> {
    let out = run(
        Command::new("losetup")
            .args(["--find", "--show"])
            .arg(image),
        b"",
    )?;
    Ok(PathBuf::from(out.trim()))
}

fn validate(spec: &VolumeSpec) -> Result<(), SandboxError> {
    let user_ok = spec
        .user
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && spec
            .user
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !user_ok {
        return Err(SandboxError::InvalidSpec(format!(
            "user {:?} is not a plain user name ([a-z_][a-z0-9_-]*)",
            spec.user
        )));
    }
    if spec.label.len() > 16 {
        return Err(SandboxError::InvalidSpec(format!(
            "label {:?} is longer than ext4's 16 bytes",
            spec.label
        )));
    }
    if spec.size_bytes == 0 {
        return Err(SandboxError::InvalidSpec("size_bytes is 0".to_string()));
    }
    Ok(())
}

/// Make sure `dir` is ours to fill: absent (then created) or an empty directory.
fn claim_dir(dir: &Path) -> Result<(), SandboxError> {
    match fs::read_dir(dir).map(|mut entries| entries.next().is_none()) {
        Ok(true) => Ok(()),
        Ok(false) => Err(SandboxError::NotEmpty {
            dir: dir.to_path_buf(),
        }),
        Err(error) if error.kind() == ErrorKind::NotFound => {
            fs::create_dir_all(dir).map_err(io_error(dir))
        }
        Err(error) if error.kind() == ErrorKind::NotADirectory => Err(SandboxError::NotEmpty {
            dir: dir.to_path_buf(),
        }),
        Err(error) => Err(io_error(dir)(error)),
    }
}

/// A new sparse file of `size` bytes; never an existing file.
fn create_image(image: &Path, size: u64) -> Result<(), SandboxError> {
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(image)
        .map_err(io_error(image))?;
    file.set_len(size).map_err(io_error(image))
}

fn fill(dir: &Path, image: &Path, spec: &VolumeSpec) -> Result<(), SandboxError> {
    match &spec.contents {
        VolumeContents::Blank => Ok(()),
        VolumeContents::OtherFilesystem(program) => {
            run(Command::new(program).arg(image), b"").map(drop)
        }
        VolumeContents::Seed => make_seed(dir, image, spec),
        VolumeContents::SeedNeedsRecovery => {
            make_seed(dir, image, spec)?;
            leave_journal_unreplayed(dir, image)
        }
    }
}

/// Stage the seed tree and let `mkfs.ext4 -d` copy it into the new image.
fn make_seed(dir: &Path, image: &Path, spec: &VolumeSpec) -> Result<(), SandboxError> {
    let staging = dir.join(STAGING);
    seed_layout(spec).write(&staging, spec.uid)?;
    run(
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-L", &spec.label, "-E", "root_owner=0:0", "-d"])
            .arg(&staging)
            .arg(image),
        b"",
    )?;
    fs::remove_dir_all(&staging).map_err(io_error(&staging))
}

/// Commit a journal transaction that is never replayed, as a crash would leave it. The
/// transaction rewrites the root directory's block with its own contents, so replaying it
/// changes the device (the superblock and that block are written) but not the files.
fn leave_journal_unreplayed(dir: &Path, image: &Path) -> Result<(), SandboxError> {
    let unexpected = |message: String| SandboxError::Unexpected {
        path: image.to_path_buf(),
        message,
    };
    let header = run(Command::new("dumpe2fs").arg("-h").arg(image), b"")?;
    let block_size: u64 = superblock_field(&header, "Block size")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| unexpected("dumpe2fs shows no block size".to_string()))?;
    let blocks = run(
        Command::new("debugfs").args(["-R", "blocks /"]).arg(image),
        b"",
    )?;
    let block: u64 = blocks
        .split_whitespace()
        .next()
        .and_then(|b| b.parse().ok())
        .ok_or_else(|| unexpected(format!("debugfs names no block of /: {blocks:?}")))?;

    let mut contents = vec![0; block_size as usize];
    let file = fs::File::open(image).map_err(io_error(image))?;
    file.read_exact_at(&mut contents, block * block_size)
        .map_err(io_error(image))?;
    let copy = dir.join(JOURNAL_BLOCK);
    fs::write(&copy, &contents).map_err(io_error(&copy))?;
    let script = format!("jo\njw -b {block} {JOURNAL_BLOCK}\njc\n");
    run(
        Command::new("debugfs")
            .args(["-w", "-f", "-"])
            .arg(image)
            .current_dir(dir),
        script.as_bytes(),
    )?;
    fs::remove_file(&copy).map_err(io_error(&copy))?;

    // debugfs exits 0 even when a request fails: check the result.
    let header = run(Command::new("dumpe2fs").arg("-h").arg(image), b"")?;
    let flagged = superblock_field(&header, "Filesystem features")
        .is_some_and(|f| f.split_whitespace().any(|f| f == "needs_recovery"));
    let journal_start = superblock_field(&header, "Journal start");
    if !flagged || matches!(journal_start, None | Some("0")) {
        return Err(unexpected(format!(
            "the journal was not left needing recovery (needs_recovery: {flagged}, journal start: {journal_start:?})"
        )));
    }
    Ok(())
}

/// The value of `key:` in `dumpe2fs -h` output.
fn superblock_field<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    header.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        (k.trim() == key).then(|| v.trim())
    })
}

/// Run a tool to completion, feeding it `stdin`; its stdout when it exits 0.
fn run(command: &mut Command, stdin: &[u8]) -> Result<String, SandboxError> {
    let program = command.get_program().to_string_lossy().into_owned();
    let described = std::iter::once(program.clone())
        .chain(command.get_args().map(|a| a.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| match source.kind() {
            ErrorKind::NotFound => SandboxError::MissingTool {
                package: debian_package(&program),
                program: program.clone(),
            },
            _ => io_error(Path::new(&program))(source),
        })?;
    if let Some(mut input) = child.stdin.take() {
        input
            .write_all(stdin)
            .map_err(io_error(Path::new(&program)))?;
    }
    let output = child
        .wait_with_output()
        .map_err(io_error(Path::new(&program)))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let start = stderr.len().saturating_sub(STDERR_TAIL_BYTES);
        let start = (start..stderr.len())
            .find(|&i| stderr.is_char_boundary(i))
            .unwrap_or(stderr.len());
        return Err(SandboxError::CommandFailed {
            command: described,
            status: output.status,
            stderr_tail: stderr[start..].trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The Debian package that provides a tool this module runs.
fn debian_package(program: &str) -> Option<&'static str> {
    match program {
        "mkfs.ext4" | "mkfs.ext3" | "mkfs.ext2" | "mke2fs" | "debugfs" | "dumpe2fs" => {
            Some("e2fsprogs")
        }
        "losetup" => Some("mount"),
        "mkswap" => Some("util-linux"),
        "mkfs.xfs" => Some("xfsprogs"),
        "mkfs.btrfs" => Some("btrfs-progs"),
        "mkfs.vfat" | "mkfs.fat" => Some("dosfstools"),
        _ => None,
    }
}

/// What the sandbox's directory holds, so [`Sandbox::open`] and [`Sandbox::clean`] know it.
#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    format: String,
    volume_id: u64,
    /// Set as the last step of `create`: a manifest without it is a half-made sandbox.
    loop_device: Option<PathBuf>,
}

impl Manifest {
    fn new(volume_id: u64, loop_device: Option<PathBuf>) -> Manifest {
        Manifest {
            format: MANIFEST_FORMAT.to_string(),
            volume_id,
            loop_device,
        }
    }

    fn read(dir: &Path) -> Result<Manifest, SandboxError> {
        let not_a_sandbox = || SandboxError::NotASandbox {
            dir: dir.to_path_buf(),
        };
        let text = fs::read(dir.join(MANIFEST)).map_err(|_| not_a_sandbox())?;
        serde_json::from_slice::<Manifest>(&text)
            .ok()
            .filter(|m| m.format == MANIFEST_FORMAT)
            .ok_or_else(not_a_sandbox)
    }

    /// Write atomically (temporary file, then rename), so the manifest is never half there.
    fn write(&self, dir: &Path) -> Result<(), SandboxError> {
        let path = dir.join(MANIFEST);
        let temporary = dir.join(format!("{MANIFEST}.new"));
        let text = serde_json::to_vec_pretty(self).map_err(|error| SandboxError::Io {
            path: path.clone(),
            source: error.into(),
        })?;
        fs::write(&temporary, text).map_err(io_error(&temporary))?;
        fs::rename(&temporary, &path).map_err(io_error(&path))
    }
}

/// The part of the `lifeboat.toml` schema that a sandbox sets; the rest keeps its defaults.
#[derive(Serialize)]
struct ConfigFile<'a> {
    user: &'a str,
    uid: u32,
    volume: [VolumeEntry<'a>; 1],
    nix_store: NixStoreEntry,
    inspect: InspectEntry<'a>,
    discovery: DiscoveryEntry<'a>,
    state: StateEntry<'a>,
    docker: DockerEntry,
}

#[derive(Serialize)]
struct VolumeEntry<'a> {
    device: &'a Path,
    mount: &'a Path,
    fs_type: &'a str,
}

#[derive(Serialize)]
struct NixStoreEntry {
    source: PathBuf,
}

#[derive(Serialize)]
struct InspectEntry<'a> {
    mountpoint: &'a Path,
}

#[derive(Serialize)]
struct DiscoveryEntry<'a> {
    by_id_dir: &'a Path,
    pattern: &'a str,
}

#[derive(Serialize)]
struct StateEntry<'a> {
    dir: &'a Path,
}

#[derive(Serialize)]
struct DockerEntry {
    data_root: PathBuf,
}

// ---------------------------------------------------------------------------------------
// The seed layout: pure data, then written to a staging directory.

const CONFIGURATION_NIX: &str =
    include_str!("../tests/fixtures/nixos/configuration.seed-style.nix");
const FLAKE_NIX: &str = include_str!("../tests/fixtures/nixos/flake.seed-style.nix");
/// The user, uid and volume id that the fixtures were captured with.
const FIXTURE_USER: &str = "qwe";
const FIXTURE_UID_LINE: &str = "uid = 1000;";
const FIXTURE_VOLUME_ID: &str = "103912881";

/// Nix's base-32 alphabet (no e, o, u, t), used in store path hashes.
const NIX32: &[u8] = b"0123456789abcdfghijklmnpqrsvwxyz";
const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
/// Nix sets every store file's mtime to 1.
const STORE_MTIME: i64 = 1;
/// Everything else gets one fixed time (2025-06-01T00:00:00Z), so the layout never varies.
const SEED_MTIME: i64 = 1_748_736_000;

/// The packages of the fake store: (name, version). With the user environment, 40 paths.
const STORE_PACKAGES: [(&str, &str); 39] = [
    ("glibc", "2.40-66"),
    ("bash", "5.2p37"),
    ("coreutils", "9.5"),
    ("zlib", "1.3.1"),
    ("openssl", "3.3.2"),
    ("curl", "8.11.0"),
    ("git", "2.47.1"),
    ("gnused", "4.9"),
    ("gnugrep", "3.11"),
    ("gawk", "5.3.1"),
    ("findutils", "4.10.0"),
    ("diffutils", "3.10"),
    ("gnutar", "1.35"),
    ("gzip", "1.13"),
    ("xz", "5.6.3"),
    ("bzip2", "1.0.8"),
    ("ncurses", "6.4.20221231"),
    ("readline", "8.2p13"),
    ("sqlite", "3.46.1"),
    ("python3", "3.12.8"),
    ("perl", "5.40.0"),
    ("openssh", "9.9p1"),
    ("tmux", "3.5a"),
    ("neovim", "0.10.2"),
    ("ripgrep", "14.1.1"),
    ("fd", "10.2.0"),
    ("htop", "3.3.0"),
    ("jq", "1.7.1"),
    ("less", "668"),
    ("which", "2.21"),
    ("util-linux", "2.39.4"),
    ("systemd", "256.10"),
    ("docker", "27.3.1"),
    ("containerd", "1.7.23"),
    ("rsync", "3.3.0"),
    ("nix", "2.24.11"),
    ("home-manager", "25.11"),
    ("acl", "2.3.2"),
    ("libffi", "3.4.6"),
];

/// License texts shared by many store paths: deduplicated into `.links` like `nix-store --optimise`.
const LICENSES: [&str; 3] = [
    "GNU GENERAL PUBLIC LICENSE\nVersion 3, 29 June 2007\n\n(practice copy made by lifeboat)\n",
    "MIT License\n\nPermission is hereby granted, free of charge, to any person obtaining a copy\n(practice copy made by lifeboat)\n",
    "BSD 3-Clause License\n\nRedistribution and use in source and binary forms, with or without\n(practice copy made by lifeboat)\n",
];

/// A small deterministic generator (splitmix64) for names and filler bytes.
struct Filler(u64);

impl Filler {
    /// Seeded by a name (FNV-1a), so a name always gets the same bytes.
    fn for_name(name: &str) -> Filler {
        Filler(name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        }))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }

    fn chars(&mut self, alphabet: &[u8], len: usize) -> String {
        (0..len)
            .map(|_| char::from(alphabet[(self.next() % alphabet.len() as u64) as usize]))
            .collect()
    }
}

/// One entry of the seed tree, relative to the volume's root.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Dir {
        path: PathBuf,
        mode: u32,
    },
    File {
        path: PathBuf,
        mode: u32,
        contents: Vec<u8>,
    },
    /// `head` followed by a hole up to `len` bytes.
    Sparse {
        path: PathBuf,
        mode: u32,
        len: u64,
        head: Vec<u8>,
    },
    Symlink {
        path: PathBuf,
        target: PathBuf,
    },
    HardLink {
        path: PathBuf,
        original: PathBuf,
    },
}

impl Node {
    fn path(&self) -> &Path {
        match self {
            Node::Dir { path, .. }
            | Node::File { path, .. }
            | Node::Sparse { path, .. }
            | Node::Symlink { path, .. }
            | Node::HardLink { path, .. } => path,
        }
    }
}

/// The seed tree as a list of nodes; parents always come before their children.
#[derive(Debug, PartialEq, Eq)]
struct Layout {
    nodes: Vec<Node>,
    dirs: BTreeSet<PathBuf>,
    /// `<user>/nix/store`: what is inside it is read-only and has mtime 1, as in Nix.
    store: PathBuf,
}

impl Layout {
    fn dir(&mut self, path: impl Into<PathBuf>, mode: u32) {
        let path = path.into();
        if self.dirs.contains(&path) {
            return;
        }
        self.parent_of(&path);
        self.dirs.insert(path.clone());
        self.nodes.push(Node::Dir { path, mode });
    }

    fn file(&mut self, path: impl Into<PathBuf>, mode: u32, contents: impl Into<Vec<u8>>) {
        let path = path.into();
        self.parent_of(&path);
        self.nodes.push(Node::File {
            path,
            mode,
            contents: contents.into(),
        });
    }

    fn sparse(&mut self, path: impl Into<PathBuf>, mode: u32, len: u64, head: Vec<u8>) {
        let path = path.into();
        self.parent_of(&path);
        self.nodes.push(Node::Sparse {
            path,
            mode,
            len,
            head,
        });
    }

    fn symlink(&mut self, path: impl Into<PathBuf>, target: impl Into<PathBuf>) {
        let path = path.into();
        self.parent_of(&path);
        self.nodes.push(Node::Symlink {
            path,
            target: target.into(),
        });
    }

    fn hard_link(&mut self, path: impl Into<PathBuf>, original: impl Into<PathBuf>) {
        let path = path.into();
        self.parent_of(&path);
        self.nodes.push(Node::HardLink {
            path,
            original: original.into(),
        });
    }

    /// Create missing parents: read-only inside store paths, 0755 elsewhere.
    fn parent_of(&mut self, path: &Path) {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            let mode = if self.in_store_path(parent) {
                0o555
            } else {
                0o755
            };
            self.dir(parent.to_path_buf(), mode);
        }
    }

    fn in_store_path(&self, path: &Path) -> bool {
        path.strip_prefix(&self.store)
            .is_ok_and(|rest| rest.components().next().is_some() && !rest.starts_with(".links"))
    }

    fn mtime(&self, path: &Path) -> i64 {
        if path.starts_with(&self.store) && path != self.store {
            STORE_MTIME
        } else {
            SEED_MTIME
        }
    }

    /// Create the tree under `root` (which must not exist), then give every entry its
    /// owner and fixed mtime.
    fn write(&self, root: &Path, uid: u32) -> Result<(), SandboxError> {
        fs::create_dir(root).map_err(io_error(root))?;
        set_mode(root, 0o755)?;
        for node in &self.nodes {
            write_node(root, node)?;
        }
        for node in &self.nodes {
            let path = root.join(node.path());
            lchown(&path, Some(uid), Some(uid)).map_err(io_error(&path))?;
            let mtime = TimeSpec::new(self.mtime(node.path()), 0);
            utimensat(
                nix::fcntl::AT_FDCWD,
                &path,
                &mtime,
                &mtime,
                UtimensatFlags::NoFollowSymlink,
            )
            .map_err(|errno| io_error(&path)(errno.into()))?;
        }
        Ok(())
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<(), SandboxError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io_error(path))
}

fn write_node(root: &Path, node: &Node) -> Result<(), SandboxError> {
    let path = root.join(node.path());
    match node {
        Node::Dir { mode, .. } => {
            fs::create_dir(&path).map_err(io_error(&path))?;
            set_mode(&path, *mode)
        }
        Node::File { mode, contents, .. } => {
            fs::write(&path, contents).map_err(io_error(&path))?;
            set_mode(&path, *mode)
        }
        Node::Sparse {
            mode, len, head, ..
        } => {
            let mut file = fs::File::create(&path).map_err(io_error(&path))?;
            file.write_all(head).map_err(io_error(&path))?;
            file.set_len(*len).map_err(io_error(&path))?;
            set_mode(&path, *mode)
        }
        Node::Symlink { target, .. } => symlink(target, &path).map_err(io_error(&path)),
        Node::HardLink { original, .. } => {
            fs::hard_link(root.join(original), &path).map_err(io_error(&path))
        }
    }
}

/// The seed's layout for `spec.user`: home, SSH keys, projects, dotfiles, a backup of the
/// NixOS config, a Nix store with hard-linked duplicates, the Nix database and Docker's root.
fn seed_layout(spec: &VolumeSpec) -> Layout {
    let home = PathBuf::from(&spec.user);
    let mut layout = Layout {
        nodes: Vec::new(),
        dirs: BTreeSet::new(),
        store: home.join("nix/store"),
    };
    layout.dir(&home, 0o755);
    add_dotfiles(&mut layout, &home, &spec.user);
    add_projects(&mut layout, &home.join("projects"));
    let backup = home.join("nixos-config-backup");
    let configuration = CONFIGURATION_NIX
        .replace(FIXTURE_VOLUME_ID, &spec.volume_id.to_string())
        .replace(FIXTURE_UID_LINE, &format!("uid = {};", spec.uid))
        .replace(FIXTURE_USER, &spec.user);
    layout.file(backup.join("flake.nix"), 0o644, FLAKE_NIX);
    layout.file(backup.join("configuration.nix"), 0o644, configuration);
    let user_environment = add_store(&mut layout);
    add_nix_var(&mut layout, &home.join("nix/var/nix"), &user_environment);
    layout.dir(home.join("docker/volumes"), 0o755);
    layout.dir(home.join("docker/containers"), 0o755);
    layout
}

fn add_dotfiles(layout: &mut Layout, home: &Path, user: &str) {
    let mut filler = Filler::for_name("ssh");
    let ssh = home.join(".ssh");
    layout.dir(&ssh, 0o700);
    let public = format!(
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{} {user}@laptop\n",
        filler.chars(BASE64, 43)
    );
    layout.file(ssh.join("authorized_keys"), 0o600, public.clone());
    let body: Vec<String> = (0..5).map(|_| filler.chars(BASE64, 70)).collect();
    let private = format!(
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA{}\n-----END OPENSSH PRIVATE KEY-----\n",
        body.join("\n")
    );
    layout.file(ssh.join("id_ed25519"), 0o600, private);
    layout.file(ssh.join("id_ed25519.pub"), 0o644, public);
    let known_hosts = format!(
        "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n\
         backup-server ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{}\n",
        filler.chars(BASE64, 43)
    );
    layout.file(ssh.join("known_hosts"), 0o644, known_hosts);
    layout.file(
        home.join(".bashrc"),
        0o644,
        "export EDITOR=nvim\nalias ll='ls -l'\n",
    );
    let config = home.join(".config");
    let git_config = format!(
        "[user]\n\tname = {user}\n\temail = {user}@example.org\n[init]\n\tdefaultBranch = main\n"
    );
    layout.file(config.join("git/config"), 0o644, git_config);
    layout.file(
        config.join("nvim/init.lua"),
        0o644,
        "vim.opt.number = true\nvim.opt.expandtab = true\n",
    );
    layout.file(
        config.join("htop/htoprc"),
        0o644,
        "# Beware! This file is rewritten by htop when settings are changed in the interface.\nfields=0 48 17 18 38 39 40 2 46 47 49 1\n",
    );
}

fn add_projects(layout: &mut Layout, projects: &Path) {
    add_repo(
        layout,
        &projects.join("webapp"),
        &[
            ("README.md", "# webapp\n\nA small web service.\n"),
            (
                "Cargo.toml",
                "[package]\nname = \"webapp\"\nversion = \"0.3.1\"\nedition = \"2021\"\n",
            ),
            ("src/main.rs", "fn main() {\n    println!(\"hello\");\n}\n"),
        ],
    );
    add_repo(
        layout,
        &projects.join("notes"),
        &[
            ("README.md", "# notes\n"),
            (
                "2025/server-rebuild.md",
                "- detach the volume before destroying the server\n",
            ),
        ],
    );
}

/// A repository-like tree: work files plus the skeleton of a `.git` directory.
fn add_repo(layout: &mut Layout, root: &Path, files: &[(&str, &str)]) {
    for (path, contents) in files {
        layout.file(root.join(path), 0o644, *contents);
    }
    let git = root.join(".git");
    let head = Filler::for_name(&root.to_string_lossy()).chars(b"0123456789abcdef", 40);
    layout.file(git.join("HEAD"), 0o644, "ref: refs/heads/main\n");
    layout.file(
        git.join("config"),
        0o644,
        "[core]\n\trepositoryformatversion = 0\n\tbare = false\n",
    );
    layout.file(git.join("refs/heads/main"), 0o644, format!("{head}\n"));
    layout.dir(git.join("objects/pack"), 0o755);
}

/// The fake store: 39 packages and a user environment linking to them, with duplicate
/// license files hard-linked to `.links`. Returns the user environment's store path name.
fn add_store(layout: &mut Layout) -> String {
    let store = layout.store.clone();
    let links = store.join(".links");
    let shared: Vec<PathBuf> = LICENSES
        .iter()
        .map(|text| {
            let path = links.join(Filler::for_name(text).chars(NIX32, 52));
            layout.file(&path, 0o444, *text);
            path
        })
        .collect();
    let names: Vec<String> = STORE_PACKAGES
        .iter()
        .map(|(name, version)| store_name(&format!("{name}-{version}")))
        .collect();
    for (index, ((name, version), path_name)) in STORE_PACKAGES.iter().zip(&names).enumerate() {
        let path = store.join(path_name);
        let mut filler = Filler::for_name(path_name);
        let script = format!(
            "#!/nix/store/{}/bin/bash\n# {name} {version}, a practice store path made by lifeboat\n",
            names[1]
        );
        layout.file(path.join("bin").join(name), 0o555, script);
        let major = version.split(['.', '-', 'p']).next().unwrap_or(version);
        let library = format!("lib{name}.so.{major}");
        let library_len = 4096 * (1 + index % 8);
        layout.file(
            path.join("lib").join(&library),
            0o444,
            filler.bytes(library_len),
        );
        layout.symlink(path.join(format!("lib/lib{name}.so")), library);
        let readme = format!("{name} {version}\n");
        layout.file(
            path.join("share/doc").join(name).join("README"),
            0o444,
            readme,
        );
        let license = path.join("share/licenses").join(name).join("COPYING");
        layout.hard_link(license, shared[index % shared.len()].clone());
    }
    add_big_files(layout, &store, &names);

    let environment = store_name("user-environment");
    let environment_path = store.join(&environment);
    for ((name, _), path_name) in STORE_PACKAGES.iter().zip(&names) {
        let target = Path::new("/nix/store")
            .join(path_name)
            .join("bin")
            .join(name);
        layout.symlink(environment_path.join("bin").join(name), target);
    }
    layout.file(environment_path.join("manifest.nix"), 0o444, "[ ]\n");
    environment
}

/// A few files that make sizes non-trivial: a sparse locale archive and two dense libraries.
fn add_big_files(layout: &mut Layout, store: &Path, names: &[String]) {
    let glibc = store.join(&names[0]);
    let head = Filler::for_name("locale-archive").bytes(256 << 10);
    layout.sparse(
        glibc.join("lib/locale/locale-archive"),
        0o444,
        32 << 20,
        head,
    );
    let python = store.join(&names[19]);
    let dense = Filler::for_name("libpython").bytes(2 << 20);
    layout.file(python.join("lib/libpython3.12.so.1.0"), 0o444, dense);
    let systemd = store.join(&names[31]);
    let dense = Filler::for_name("libsystemd-shared").bytes(1 << 20);
    layout.file(
        systemd.join("lib/systemd/libsystemd-shared-256.so"),
        0o444,
        dense,
    );
}

/// `<32 nix32 chars>-<name>`, the same for the same name every time.
fn store_name(name: &str) -> String {
    format!("{}-{name}", Filler::for_name(name).chars(NIX32, 32))
}

fn add_nix_var(layout: &mut Layout, var: &Path, user_environment: &str) {
    let mut database = b"SQLite format 3\0".to_vec();
    database.extend(Filler::for_name("db.sqlite").bytes((64 << 10) - database.len()));
    layout.file(var.join("db/db.sqlite"), 0o644, database);
    let profiles = var.join("profiles");
    layout.symlink(profiles.join("default"), "default-1-link");
    layout.symlink(
        profiles.join("default-1-link"),
        Path::new("/nix/store").join(user_environment),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed() -> Layout {
        seed_layout(&VolumeSpec::default())
    }

    #[test]
    fn the_seed_layout_is_the_same_every_time() {
        assert_eq!(seed(), seed());
    }

    #[test]
    fn the_store_has_forty_paths_named_like_nix() {
        let layout = seed();
        let paths: BTreeSet<&Path> = layout
            .dirs
            .iter()
            .filter(|d| d.parent() == Some(layout.store.as_path()) && !d.ends_with(".links"))
            .map(PathBuf::as_path)
            .collect();
        assert_eq!(paths.len(), 40);
        for path in paths {
            let name = path.file_name().unwrap().to_str().unwrap();
            let (hash, rest) = name.split_at(32);
            assert!(hash.bytes().all(|b| NIX32.contains(&b)), "{name}");
            assert!(rest.starts_with('-') && rest.len() > 1, "{name}");
        }
    }

    #[test]
    fn every_parent_comes_before_its_children() {
        let layout = seed();
        let mut seen = BTreeSet::new();
        for node in &layout.nodes {
            let parent = node.path().parent().unwrap();
            assert!(
                parent.as_os_str().is_empty() || seen.contains(parent),
                "{node:?} before its parent"
            );
            if let Node::HardLink { original, .. } = node {
                assert!(
                    seen.contains(original.as_path()),
                    "{node:?} before its original"
                );
            }
            seen.insert(node.path().to_path_buf());
        }
    }

    #[test]
    fn the_config_backup_is_rewritten_for_the_user() {
        let spec = VolumeSpec {
            user: "ops".to_string(),
            uid: 1234,
            volume_id: 42,
            ..VolumeSpec::default()
        };
        let layout = seed_layout(&spec);
        let contents = layout
            .nodes
            .iter()
            .find_map(|node| match node {
                Node::File { path, contents, .. } if path.ends_with("configuration.nix") => {
                    Some(String::from_utf8(contents.clone()).unwrap())
                }
                _ => None,
            })
            .unwrap();
        assert!(contents.contains("users.users.ops"), "{contents}");
        assert!(contents.contains("uid = 1234;"), "{contents}");
        assert!(contents.contains("scsi-0HC_Volume_42\""), "{contents}");
        assert!(!contents.contains("qwe"), "{contents}");
    }

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(
            unescape_octal(br"/tmp/a\040b\134c"),
            b"/tmp/a b\\c".to_vec()
        );
        assert_eq!(unescape_octal(br"/x\04"), br"/x\04".to_vec());
    }

    #[test]
    fn dumpe2fs_fields_are_found_by_exact_key() {
        let header = "Journal start:            1\nJournal sequence: 0x1\nBlock size:  1024\n";
        assert_eq!(superblock_field(header, "Journal start"), Some("1"));
        assert_eq!(superblock_field(header, "Block size"), Some("1024"));
        assert_eq!(superblock_field(header, "Journal"), None);
    }

    #[test]
    fn a_bad_user_name_is_refused_before_anything_is_made() {
        let spec = VolumeSpec {
            user: "../etc".to_string(),
            ..VolumeSpec::default()
        };
        assert!(matches!(validate(&spec), Err(SandboxError::InvalidSpec(_))));
    }
}
