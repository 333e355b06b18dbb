//! Practice volumes: a sparse-file ext4 image on a loop device with the seed's layout,
//! a by-id directory pointing at it and a config that points at all of it.
//! `lifeboat demo` and the integration tests build their volumes with this same code,
//! so every test scenario is one an operator can practise on.
//!
//! This is the only place in lifeboat that creates a filesystem, and it does so only on
//! an image file it has just created itself (`create_new`, never an existing file). The
//! seed's tree is copied in by `mkfs.ext4 -d`, so building a volume mounts nothing.

use std::fs;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{FileExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::errno::Errno;
use nix::mount::{MntFlags, umount2};
use serde::{Deserialize, Serialize};

use crate::exec::mountinfo;

mod error;
mod seed;
mod spec;

pub use error::SandboxError;
pub use spec::{VolumeContents, VolumeSpec};

use error::{MANIFEST, io_error};
use seed::seed_layout;

const MANIFEST_FORMAT: &str = "lifeboat-sandbox/1";
const IMAGE: &str = "volume.img";
/// Where the seed tree is assembled before `mkfs.ext4 -d` copies it in; removed afterwards.
const STAGING: &str = "staging";
/// A copy of a filesystem block, written into the journal by `SeedNeedsRecovery`.
const JOURNAL_BLOCK: &str = "journal-block";
const BY_ID_PREFIX: &str = "scsi-0HC_Volume_";
/// How much of a failed tool's stderr an error keeps.
const STDERR_TAIL_BYTES: usize = 2000;

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
    let table = mountinfo::read_mountinfo().map_err(io_error(Path::new("/proc/self/mountinfo")))?;
    Ok(table
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|mount_point| mount_point.starts_with(dir))
        .collect())
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
            Ok(()) | Err(Errno::EINVAL | Errno::ENOENT) => {}
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

#[cfg(test)]
mod tests {
    use super::*;

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
