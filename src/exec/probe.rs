//! What a block device holds: its size, its device number, and the filesystem its superblock
//! names (or another signature, or nothing).
//!
//! Everything here only reads: a volume holding someone's `/home` is opened read-only and never
//! exclusively (it may be mounted), and nothing is written to it.

use std::fs::{self, File, FileType, Metadata};
use std::io;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// What the first bytes of a device say it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contents {
    /// A filesystem lifeboat can describe (ext2/3/4 in detail; others by name only).
    Filesystem(FsIdentity),
    /// Another recognised signature: `"swap"`, `"LUKS"`, `"xfs"`, `"btrfs"`, `"vfat"`, `"dos partition table"`, `"gpt partition table"`…
    Other(String),
    /// Only zero bytes where signatures live: no filesystem.
    Blank,
    /// Data, but no signature lifeboat recognises.
    Unknown,
}

/// Identity of a filesystem, read from its superblock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsIdentity {
    /// `ext4`, `ext3`, `ext2` (as blkid names them), or another type name.
    pub fs_type: String,
    /// Lower-case hyphenated UUID, as `blkid -s UUID` prints it.
    pub uuid: String,
    /// Volume label; empty when none.
    pub label: String,
    /// Filesystem size in bytes (blocks × block size).
    pub fs_size_bytes: u64,
    /// Bytes the superblock counts as used (its counters lag behind a mounted filesystem).
    pub used_bytes: u64,
    /// The journal holds transactions that a normal mount would replay (writes to the device).
    pub needs_recovery: bool,
}

/// A device path, what it resolves to, and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceProbe {
    /// The path given (often a by-id symlink).
    pub path: PathBuf,
    /// The path after resolving symlinks (`/dev/loop3`, `/dev/sdb`).
    pub resolved: PathBuf,
    /// `st_rdev` split into (major, minor).
    pub dev: (u32, u32),
    /// Size of the block device in bytes.
    pub size_bytes: u64,
    /// What the first [`HEAD_LEN`] bytes of the device hold.
    pub contents: Contents,
}

/// Why a device could not be probed; `path` is always the path the caller gave.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("{path}: no such device")]
    Missing { path: PathBuf },
    #[error("{path}: not a block device ({kind})")]
    NotBlockDevice { path: PathBuf, kind: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// How many bytes of a device [`probe_device`] reads: enough for every signature [`identify`]
/// knows (the farthest is btrfs, at 64 KiB + 0x40).
pub const HEAD_LEN: usize = 256 * 1024;

/// Classify the first bytes of a device (at least 128 KiB when the device has them). Pure.
///
/// Signatures are tried in a fixed order so that a filesystem wins over a partition-table guess,
/// as blkid would have it (an ISO image with a hybrid MBR is `iso9660`, a FAT boot sector is not
/// a DOS partition table). An empty `head` is `Blank`: it holds no byte that is not zero.
pub fn identify(head: &[u8]) -> Contents {
    named(head, BEFORE_EXT)
        .or_else(|| ext(head))
        .or_else(|| named(head, AFTER_EXT))
        .or_else(|| vfat(head))
        .or_else(|| partition_table(head))
        .unwrap_or_else(|| {
            if head.iter().all(|&b| b == 0) {
                Contents::Blank
            } else {
                Contents::Unknown
            }
        })
}

/// A signature recognised by name only: any of `magics` at any of `offsets`.
struct Signature {
    name: &'static str,
    offsets: &'static [usize],
    magics: &'static [&'static [u8]],
}

const fn sig(
    name: &'static str,
    offsets: &'static [usize],
    magics: &'static [&'static [u8]],
) -> Signature {
    Signature {
        name,
        offsets,
        magics,
    }
}

/// Where swap and hibernation signatures sit: 10 bytes before the end of the first page, for
/// every page size Linux has.
const PAGE_ENDS: &[usize] = &[0xff6, 0x1ff6, 0x3ff6, 0x7ff6, 0xfff6];

/// Signatures that live at the very start or far past an ext superblock.
const BEFORE_EXT: &[Signature] = &[
    sig("LUKS", &[0], &[b"LUKS\xba\xbe"]),
    sig("xfs", &[0], &[b"XFSB"]),
    sig("squashfs", &[0], &[b"hsqs", b"sqsh"]),
    sig("btrfs", &[0x10040], &[b"_BHRfS_M"]),
];

/// Signatures checked after ext and before the boot-sector guesses.
const AFTER_EXT: &[Signature] = &[
    sig("iso9660", &[0x8001], &[b"CD001"]),
    sig("swap", PAGE_ENDS, &[b"SWAPSPACE2", b"SWAP-SPACE"]),
    sig("swsuspend", PAGE_ENDS, HIBERNATION_MAGICS),
    sig("ntfs", &[3], &[b"NTFS    "]),
    sig("exfat", &[3], &[b"EXFAT   "]),
];

/// A swap area holding a hibernation image (blkid's `swsuspend`).
const HIBERNATION_MAGICS: &[&[u8]] = &[
    b"S1SUSPEND",
    b"S2SUSPEND",
    b"ULSUSPEND",
    b"LINHIB0001",
    b"\xed\xc3\x02\xe9\x98\x56\xe5\x0c",
];

/// The name of the first signature of `table` found in `head`.
fn named(head: &[u8], table: &[Signature]) -> Option<Contents> {
    table
        .iter()
        .find(|sig| {
            sig.offsets
                .iter()
                .any(|&at| sig.magics.iter().any(|magic| has_at(head, at, magic)))
        })
        .map(|sig| Contents::Other(sig.name.to_owned()))
}

/// `magic` is at byte `at` of `bytes` (false when `bytes` is too short).
fn has_at(bytes: &[u8], at: usize, magic: &[u8]) -> bool {
    at.checked_add(magic.len())
        .and_then(|end| bytes.get(at..end))
        .is_some_and(|found| found == magic)
}

fn le16(bytes: &[u8], at: usize) -> Option<u16> {
    bytes
        .get(at..at.checked_add(2)?)?
        .try_into()
        .ok()
        .map(u16::from_le_bytes)
}

fn le32(bytes: &[u8], at: usize) -> Option<u32> {
    bytes
        .get(at..at.checked_add(4)?)?
        .try_into()
        .ok()
        .map(u32::from_le_bytes)
}

/// Where the ext2/3/4 superblock starts, and how long it is.
const EXT_SB_AT: usize = 1024;
const EXT_SB_LEN: usize = 1024;
const EXT_MAGIC: u16 = 0xEF53;
/// Largest `s_log_block_size` ext allows: 64 KiB blocks.
const EXT_MAX_LOG_BLOCK_SIZE: u32 = 6;

const COMPAT_HAS_JOURNAL: u32 = 0x4;
const INCOMPAT_FILETYPE: u32 = 0x2;
const INCOMPAT_RECOVER: u32 = 0x4;
const INCOMPAT_JOURNAL_DEV: u32 = 0x8;
const INCOMPAT_META_BG: u32 = 0x10;
const INCOMPAT_64BIT: u32 = 0x80;
const RO_COMPAT_SPARSE_SUPER: u32 = 0x1;
const RO_COMPAT_LARGE_FILE: u32 = 0x2;
const RO_COMPAT_BTREE_DIR: u32 = 0x4;
/// Features ext3 understands; any other feature makes the filesystem ext4 (libblkid's rule).
const EXT3_INCOMPAT: u32 = INCOMPAT_FILETYPE | INCOMPAT_RECOVER | INCOMPAT_META_BG;
const EXT3_RO_COMPAT: u32 = RO_COMPAT_SPARSE_SUPER | RO_COMPAT_LARGE_FILE | RO_COMPAT_BTREE_DIR;

/// An ext2/3/4 superblock at byte 1024, described; `None` when there is none (or `head` ends
/// before the superblock does).
fn ext(head: &[u8]) -> Option<Contents> {
    let sb = head.get(EXT_SB_AT..EXT_SB_AT + EXT_SB_LEN)?;
    if le16(sb, 0x38)? != EXT_MAGIC {
        return None;
    }
    let compat = le32(sb, 0x5C)?;
    let incompat = le32(sb, 0x60)?;
    let ro_compat = le32(sb, 0x64)?;
    if incompat & INCOMPAT_JOURNAL_DEV != 0 {
        return Some(Contents::Other("jbd".to_owned()));
    }
    let log_block_size = le32(sb, 0x18)?;
    if log_block_size > EXT_MAX_LOG_BLOCK_SIZE {
        return Some(Contents::Other(
            "ext superblock with an impossible block size".to_owned(),
        ));
    }
    let block_size = 1024u64 << log_block_size;
    let wide = incompat & INCOMPAT_64BIT != 0;
    let blocks = split_count(sb, 0x04, 0x150, wide)?;
    let free = split_count(sb, 0x0C, 0x158, wide)?;
    let has_journal = compat & COMPAT_HAS_JOURNAL != 0;
    let fs_type = if incompat & !EXT3_INCOMPAT != 0 || ro_compat & !EXT3_RO_COMPAT != 0 {
        "ext4"
    } else if has_journal {
        "ext3"
    } else {
        "ext2"
    };
    Some(Contents::Filesystem(FsIdentity {
        fs_type: fs_type.to_owned(),
        uuid: uuid_string(sb.get(0x68..0x78)?),
        label: label_string(sb.get(0x78..0x88)?),
        fs_size_bytes: blocks.saturating_mul(block_size),
        used_bytes: blocks.saturating_sub(free).saturating_mul(block_size),
        needs_recovery: has_journal && incompat & INCOMPAT_RECOVER != 0,
    }))
}

/// A block counter stored as a low half and, on 64-bit filesystems, a high half.
fn split_count(sb: &[u8], lo_at: usize, hi_at: usize, wide: bool) -> Option<u64> {
    let hi = if wide { le32(sb, hi_at)? } else { 0 };
    Some(u64::from(hi) << 32 | u64::from(le32(sb, lo_at)?))
}

/// `8-4-4-4-12` lower-case hex, bytes in on-disk order, as blkid prints an ext UUID.
fn uuid_string(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(36);
    for (i, byte) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// A fixed-size label field: up to the first NUL, trailing whitespace dropped (as blkid does).
fn label_string(field: &[u8]) -> String {
    let text = field.split(|&b| b == 0).next().unwrap_or_default();
    String::from_utf8_lossy(text)
        .trim_end_matches(|c: char| c.is_ascii_whitespace())
        .to_owned()
}

const BOOT_SIGNATURE_AT: usize = 510;

/// A FAT boot sector: the `FAT..` marker of FAT12/16 (0x36) or FAT32 (0x52), the 0x55AA boot
/// signature, and a sane sector and cluster size.
fn vfat(head: &[u8]) -> Option<Contents> {
    let marker = has_at(head, 0x36, b"FAT") || has_at(head, 0x52, b"FAT32");
    let sector_size = le16(head, 0x0B)?;
    let cluster_sectors = *head.get(0x0D)?;
    let fats = *head.get(0x10)?;
    let sane = (512..=4096).contains(&sector_size)
        && sector_size.is_power_of_two()
        && cluster_sectors.is_power_of_two()
        && fats > 0;
    (marker && sane && has_at(head, BOOT_SIGNATURE_AT, b"\x55\xaa"))
        .then(|| Contents::Other("vfat".to_owned()))
}

const MBR_ENTRIES_AT: usize = 446;
const MBR_ENTRY_LEN: usize = 16;
const MBR_TYPE_GPT_PROTECTIVE: u8 = 0xEE;

/// A GPT header (LBA 1 with 512- or 4096-byte sectors, or a protective MBR), else an MBR whose
/// four entries have valid boot flags.
fn partition_table(head: &[u8]) -> Option<Contents> {
    let entries: Vec<&[u8]> = (0..4)
        .filter_map(|i| {
            let at = MBR_ENTRIES_AT + i * MBR_ENTRY_LEN;
            head.get(at..at + MBR_ENTRY_LEN)
        })
        .collect();
    let mbr = has_at(head, BOOT_SIGNATURE_AT, b"\x55\xaa") && entries.len() == 4;
    let protective = mbr
        && entries
            .iter()
            .any(|e| e.get(4) == Some(&MBR_TYPE_GPT_PROTECTIVE));
    if has_at(head, 512, b"EFI PART") || has_at(head, 4096, b"EFI PART") || protective {
        return Some(Contents::Other("gpt partition table".to_owned()));
    }
    let boot_flags_valid = entries.iter().all(|e| matches!(e.first(), Some(0 | 0x80)));
    (mbr && boot_flags_valid).then(|| Contents::Other("dos partition table".to_owned()))
}

/// Resolve, stat, size and identify a block device without writing to it.
///
/// The device is opened `O_RDONLY|O_CLOEXEC` (never for writing, never `O_EXCL`: it may be
/// mounted), its size taken with `BLKGETSIZE64`, and its first [`HEAD_LEN`] bytes read with
/// `pread`. A dangling symlink is `Missing`. What is read is the device as opened: if the path
/// was swapped for something else between `stat` and `open`, that is `NotBlockDevice` too.
pub fn probe_device(path: &Path) -> Result<DeviceProbe, ProbeError> {
    let io_error = |source| ProbeError::Io {
        path: path.to_path_buf(),
        source,
    };
    let resolved = fs::canonicalize(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => ProbeError::Missing {
            path: path.to_path_buf(),
        },
        _ => io_error(e),
    })?;
    require_block_device(path, &fs::metadata(&resolved).map_err(io_error)?)?;
    // File::open is O_RDONLY|O_CLOEXEC: no write access, no O_EXCL.
    let file = File::open(&resolved).map_err(io_error)?;
    let opened = file.metadata().map_err(io_error)?;
    require_block_device(path, &opened)?;
    let size_bytes = device_size(&file).map_err(io_error)?;
    let head = read_head(&file, size_bytes).map_err(io_error)?;
    let rdev = opened.rdev();
    // Linux majors and minors are 32 bits wide at most; the casts lose nothing.
    let dev = (
        nix::sys::stat::major(rdev) as u32,
        nix::sys::stat::minor(rdev) as u32,
    );
    Ok(DeviceProbe {
        path: path.to_path_buf(),
        resolved,
        dev,
        size_bytes,
        contents: identify(&head),
    })
}

fn require_block_device(path: &Path, meta: &Metadata) -> Result<(), ProbeError> {
    if meta.file_type().is_block_device() {
        return Ok(());
    }
    Err(ProbeError::NotBlockDevice {
        path: path.to_path_buf(),
        kind: file_kind(meta.file_type()).to_owned(),
    })
}

/// What a non-block-device path is, in words for an error message.
fn file_kind(kind: FileType) -> &'static str {
    if kind.is_file() {
        "regular file"
    } else if kind.is_dir() {
        "directory"
    } else if kind.is_char_device() {
        "character device"
    } else if kind.is_fifo() {
        "fifo"
    } else if kind.is_socket() {
        "socket"
    } else if kind.is_symlink() {
        "symbolic link"
    } else {
        "unknown file type"
    }
}

mod ioctl {
    // BLKGETSIZE64 = _IOR(0x12, 114, size_t); the kernel writes a u64 (size_t is 64 bits on the
    // targets lifeboat runs on).
    nix::ioctl_read!(blkgetsize64, 0x12, 114, u64);
}

fn device_size(file: &File) -> io::Result<u64> {
    let mut size = 0u64;
    // SAFETY: the descriptor is open for the whole call, and BLKGETSIZE64 writes exactly one u64
    // into `size`, which outlives the call.
    unsafe { ioctl::blkgetsize64(file.as_raw_fd(), &mut size) }?;
    Ok(size)
}

/// The first [`HEAD_LEN`] bytes of the device (fewer if it is smaller or ends early).
fn read_head(file: &File, size: u64) -> io::Result<Vec<u8>> {
    let len = usize::try_from(size).map_or(HEAD_LEN, |size| size.min(HEAD_LEN));
    let mut head = vec![0; len];
    let mut filled = 0;
    while let Some(rest) = head.get_mut(filled..).filter(|rest| !rest.is_empty()) {
        match file.read_at(rest, filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    head.truncate(filled);
    Ok(head)
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::noise::noise;
    use sha2::{Digest, Sha256};
    use std::collections::BTreeMap;
    use std::io::Read;
    use std::process::Command;

    const MIB: u64 = 1024 * 1024;
    const UUID: &str = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";
    const LABEL: &str = "home vol";

    /// Full path of a tool on PATH or in the sbin directories.
    fn tool(name: &str) -> Option<PathBuf> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .chain(["/usr/sbin".into(), "/sbin".into()])
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    }

    fn output(argv: &[&str]) -> std::process::Output {
        let program = tool(argv[0]).unwrap_or_else(|| panic!("{} is not installed", argv[0]));
        Command::new(program).args(&argv[1..]).output().unwrap()
    }

    fn run(argv: &[&str]) -> String {
        let out = output(argv);
        assert!(
            out.status.success(),
            "{argv:?}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Every tool must be installed: scripts/test.sh installs their Debian packages.
    fn require(tools: &[&str]) {
        let missing: Vec<_> = tools.iter().filter(|t| tool(t).is_none()).collect();
        assert!(
            missing.is_empty(),
            "{missing:?} not installed: run the tests through scripts/test.sh, which installs them"
        );
    }

    fn s(path: &Path) -> &str {
        path.to_str().unwrap()
    }

    fn sparse(dir: &Path, size: u64) -> PathBuf {
        let img = dir.join("img");
        File::create(&img).unwrap().set_len(size).unwrap();
        img
    }

    fn head_of(img: &Path) -> Vec<u8> {
        let mut head = Vec::new();
        File::open(img)
            .unwrap()
            .take(HEAD_LEN as u64)
            .read_to_end(&mut head)
            .unwrap();
        head
    }

    /// `blkid -p -o export` as a map, values unescaped; empty when blkid finds nothing.
    fn blkid(img: &Path) -> BTreeMap<String, String> {
        let out = output(&["blkid", "-p", "-o", "export", s(img)]);
        assert!(
            out.status.success() || out.status.code() == Some(2),
            "blkid: {}",
            out.status
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let unescape = |value: &str| {
            let mut chars = value.chars();
            let mut out = String::new();
            while let Some(c) = chars.next() {
                out.extend(if c == '\\' { chars.next() } else { Some(c) });
            }
            out
        };
        text.lines()
            .filter_map(|line| line.split_once('='))
            .map(|(key, value)| (key.to_owned(), unescape(value)))
            .collect()
    }

    /// `dumpe2fs -h` as a map of its `Key: value` lines.
    fn dumpe2fs(img: &Path) -> BTreeMap<String, String> {
        run(&["dumpe2fs", "-h", s(img)])
            .lines()
            .filter_map(|line| line.split_once(':'))
            .map(|(key, value)| (key.to_owned(), value.trim().to_owned()))
            .collect()
    }

    fn fs_identity(contents: Contents) -> FsIdentity {
        match contents {
            Contents::Filesystem(id) => id,
            other => panic!("expected a filesystem, got {other:?}"),
        }
    }

    fn mkfs_ext(dir: &Path, mkfs: &str, size: u64, extra: &[&str]) -> PathBuf {
        let img = sparse(dir, size);
        let mut argv = vec![mkfs, "-q", "-F", "-L", LABEL, "-U", UUID];
        argv.extend(extra);
        argv.push(s(&img));
        run(&argv);
        img
    }

    /// identify agrees with blkid on type, UUID and label, and with dumpe2fs on the sizes.
    fn check_ext(mkfs: &str, size: u64, extra: &[&str], expected_type: &str) {
        let dir = tempfile::tempdir().unwrap();
        let img = mkfs_ext(dir.path(), mkfs, size, extra);
        let id = fs_identity(identify(&head_of(&img)));
        let tags = blkid(&img);
        assert_eq!(id.fs_type, expected_type);
        assert_eq!(tags["TYPE"], id.fs_type);
        assert_eq!(id.uuid, UUID);
        assert_eq!(tags["UUID"], id.uuid);
        assert_eq!(id.label, LABEL);
        assert_eq!(tags["LABEL"], id.label);
        let sb = dumpe2fs(&img);
        let field = |key: &str| sb[key].parse::<u64>().unwrap();
        let block_size = field("Block size");
        assert_eq!(id.fs_size_bytes, field("Block count") * block_size);
        assert_eq!(id.fs_size_bytes, size);
        assert_eq!(
            id.used_bytes,
            (field("Block count") - field("Free blocks")) * block_size
        );
        assert!(id.used_bytes > 0 && id.used_bytes < id.fs_size_bytes);
        assert!(!id.needs_recovery);
        assert!(!sb["Filesystem features"].contains("needs_recovery"));
    }

    #[test]
    fn ext4_with_1k_blocks_matches_blkid() {
        check_ext("mkfs.ext4", 64 * MIB, &[], "ext4");
    }

    #[test]
    fn ext4_with_4k_blocks_matches_blkid() {
        check_ext("mkfs.ext4", 2048 * MIB, &["-b", "4096"], "ext4");
    }

    #[test]
    fn ext4_without_journal_is_still_ext4() {
        check_ext("mkfs.ext4", 64 * MIB, &["-O", "^has_journal"], "ext4");
    }

    #[test]
    fn ext3_matches_blkid() {
        check_ext("mkfs.ext3", 64 * MIB, &[], "ext3");
    }

    #[test]
    fn ext2_matches_blkid() {
        check_ext("mkfs.ext2", 64 * MIB, &["-b", "4096"], "ext2");
    }

    #[test]
    fn needs_recovery_is_reported_as_dumpe2fs_shows_it() {
        let dir = tempfile::tempdir().unwrap();
        let img = mkfs_ext(dir.path(), "mkfs.ext4", 64 * MIB, &[]);
        run(&["debugfs", "-w", "-R", "feature needs_recovery", s(&img)]);
        assert!(
            dumpe2fs(&img)["Filesystem features"]
                .split(' ')
                .any(|f| f == "needs_recovery")
        );
        let id = fs_identity(identify(&head_of(&img)));
        assert!(id.needs_recovery);
        assert_eq!(blkid(&img)["UUID"], id.uuid);
    }

    /// Bytes of the superblock field at `at`, inside a whole-device head.
    fn sb_field(head: &mut [u8], at: usize) -> &mut [u8] {
        &mut head[EXT_SB_AT + at..EXT_SB_AT + at + 4]
    }

    #[test]
    fn block_counts_use_their_high_halves_only_on_64bit_filesystems() {
        let dir = tempfile::tempdir().unwrap();
        let img = mkfs_ext(dir.path(), "mkfs.ext4", 64 * MIB, &["-O", "64bit"]);
        let mut head = head_of(&img);
        let before = fs_identity(identify(&head));
        sb_field(&mut head, 0x150).copy_from_slice(&2u32.to_le_bytes());
        sb_field(&mut head, 0x158).copy_from_slice(&1u32.to_le_bytes());
        let wide = fs_identity(identify(&head));
        assert_eq!(wide.fs_size_bytes, before.fs_size_bytes + (2 << 32) * 1024);
        assert_eq!(wide.used_bytes, before.used_bytes + (1 << 32) * 1024);
        let incompat = u32::from_le_bytes(sb_field(&mut head, 0x60).try_into().unwrap());
        sb_field(&mut head, 0x60).copy_from_slice(&(incompat & !INCOMPAT_64BIT).to_le_bytes());
        assert_eq!(
            fs_identity(identify(&head)).fs_size_bytes,
            before.fs_size_bytes
        );
    }

    #[test]
    fn an_absurd_block_size_is_not_taken_for_a_filesystem() {
        let dir = tempfile::tempdir().unwrap();
        let img = mkfs_ext(dir.path(), "mkfs.ext4", 64 * MIB, &[]);
        let mut head = head_of(&img);
        for log in [7u32, 40, 64, u32::MAX] {
            sb_field(&mut head, 0x18).copy_from_slice(&log.to_le_bytes());
            assert!(
                matches!(identify(&head), Contents::Other(name) if name.contains("block size"))
            );
        }
    }

    #[test]
    fn labels_stop_at_nul_and_lose_trailing_spaces_like_blkid() {
        assert_eq!(label_string(b"data\0garbage\0\0\0\0"), "data");
        assert_eq!(label_string(b"data  \0\0\0\0\0\0\0\0\0\0"), "data");
        assert_eq!(
            label_string(b"a b \xff\0\0\0\0\0\0\0\0\0\0\0"),
            "a b \u{fffd}"
        );
        assert_eq!(label_string(b"sixteen-chars-ok"), "sixteen-chars-ok");
    }

    /// Make an image with `make(dir, img)`, then check identify's name and blkid's `key=value`.
    fn check_other(
        tools: &[&str],
        size: u64,
        make: &dyn Fn(&Path, &Path),
        ours: &str,
        blkid_tag: (&str, &str),
    ) {
        require(tools);
        let dir = tempfile::tempdir().unwrap();
        let img = sparse(dir.path(), size);
        make(dir.path(), &img);
        assert_eq!(identify(&head_of(&img)), Contents::Other(ours.to_owned()));
        let (key, value) = blkid_tag;
        assert_eq!(blkid(&img).get(key).map(String::as_str), Some(value));
    }

    #[test]
    fn swap_at_every_page_size_is_recognised() {
        for page in ["4096", "16384", "65536"] {
            let make = |_: &Path, img: &Path| drop(run(&["mkswap", "-p", page, s(img)]));
            check_other(&["mkswap"], 64 * MIB, &make, "swap", ("TYPE", "swap"));
        }
    }

    #[test]
    fn vfat_of_each_fat_size_is_not_a_partition_table() {
        for (bits, size) in [("12", 4 * MIB), ("16", 64 * MIB), ("32", 300 * MIB)] {
            let make = |_: &Path, img: &Path| drop(run(&["mkfs.vfat", "-F", bits, s(img)]));
            check_other(&["mkfs.vfat"], size, &make, "vfat", ("TYPE", "vfat"));
        }
    }

    #[test]
    fn xfs_is_recognised() {
        let make = |_: &Path, img: &Path| drop(run(&["mkfs.xfs", "-q", s(img)]));
        check_other(&["mkfs.xfs"], 400 * MIB, &make, "xfs", ("TYPE", "xfs"));
    }

    #[test]
    fn btrfs_is_recognised() {
        let make = |_: &Path, img: &Path| drop(run(&["mkfs.btrfs", "-q", s(img)]));
        check_other(
            &["mkfs.btrfs"],
            200 * MIB,
            &make,
            "btrfs",
            ("TYPE", "btrfs"),
        );
    }

    #[test]
    fn an_external_ext_journal_is_not_a_filesystem() {
        let make = |_: &Path, img: &Path| {
            drop(run(&["mkfs.ext4", "-q", "-F", "-O", "journal_dev", s(img)]));
        };
        check_other(&["mkfs.ext4"], 16 * MIB, &make, "jbd", ("TYPE", "jbd"));
    }

    #[test]
    fn luks_is_recognised() {
        let make = |dir: &Path, img: &Path| {
            let key = dir.join("key");
            fs::write(&key, "secret").unwrap();
            let argv = [
                "--batch-mode",
                "--type",
                "luks2",
                "--pbkdf",
                "pbkdf2",
                "--pbkdf-force-iterations",
                "1000",
            ];
            run(&[
                &["cryptsetup", "luksFormat"],
                &argv[..],
                &["--key-file", s(&key), s(img)],
            ]
            .concat());
        };
        check_other(
            &["cryptsetup"],
            20 * MIB,
            &make,
            "LUKS",
            ("TYPE", "crypto_LUKS"),
        );
    }

    /// A directory with one file, for the image builders that pack a tree.
    fn tree(dir: &Path) -> PathBuf {
        let src = dir.join("src");
        fs::create_dir(&src).unwrap();
        fs::write(src.join("file"), "contents").unwrap();
        src
    }

    #[test]
    fn squashfs_is_recognised() {
        let make = |dir: &Path, img: &Path| {
            run(&[
                "mksquashfs",
                s(&tree(dir)),
                s(img),
                "-quiet",
                "-noappend",
                "-no-progress",
            ]);
        };
        check_other(&["mksquashfs"], 0, &make, "squashfs", ("TYPE", "squashfs"));
    }

    #[test]
    fn iso9660_wins_over_its_hybrid_mbr() {
        let make = |dir: &Path, img: &Path| {
            fs::remove_file(img).unwrap();
            run(&[
                "xorriso",
                "-as",
                "mkisofs",
                "-quiet",
                "-o",
                s(img),
                s(&tree(dir)),
            ]);
            let mut bytes = fs::read(img).unwrap();
            write_mbr(&mut bytes);
            fs::write(img, bytes).unwrap();
        };
        check_other(&["xorriso"], 0, &make, "iso9660", ("TYPE", "iso9660"));
    }

    /// One Linux partition from sector 2048 to the end of a 64 MiB disk, and the boot signature.
    fn write_mbr(bytes: &mut [u8]) {
        let entry = &mut bytes[MBR_ENTRIES_AT..MBR_ENTRIES_AT + MBR_ENTRY_LEN];
        entry[4] = 0x83;
        entry[8..12].copy_from_slice(&2048u32.to_le_bytes());
        entry[12..16].copy_from_slice(&(64 * 2048 - 2048u32).to_le_bytes());
        bytes[510..512].copy_from_slice(b"\x55\xaa");
    }

    #[test]
    fn an_mbr_is_a_dos_partition_table() {
        let make = |_: &Path, img: &Path| {
            let mut sector = [0u8; 512];
            write_mbr(&mut sector);
            File::options()
                .write(true)
                .open(img)
                .unwrap()
                .write_all_at(&sector, 0)
                .unwrap();
        };
        check_other(
            &[],
            64 * MIB,
            &make,
            "dos partition table",
            ("PTTYPE", "dos"),
        );
    }

    #[test]
    fn a_gpt_is_a_gpt_partition_table() {
        let make = |_: &Path, img: &Path| {
            let mut sfdisk = Command::new(tool("sfdisk").unwrap())
                .args(["-q", s(img)])
                .stdin(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            io::Write::write_all(&mut sfdisk.stdin.take().unwrap(), b"label: gpt\n,,L\n").unwrap();
            assert!(sfdisk.wait().unwrap().success());
        };
        check_other(
            &["sfdisk"],
            64 * MIB,
            &make,
            "gpt partition table",
            ("PTTYPE", "gpt"),
        );
    }

    #[test]
    fn zeros_are_blank_and_noise_is_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let img = sparse(dir.path(), 4 * MIB);
        assert_eq!(identify(&head_of(&img)), Contents::Blank);
        assert!(!blkid(&img).contains_key("TYPE"));
        assert_eq!(identify(&[]), Contents::Blank);
        assert_eq!(identify(&noise(7, HEAD_LEN)), Contents::Unknown);
        let mut one_byte = vec![0; HEAD_LEN];
        one_byte[HEAD_LEN - 1] = 1;
        assert_eq!(identify(&one_byte), Contents::Unknown);
    }

    #[test]
    fn truncated_and_random_heads_never_panic() {
        let dir = tempfile::tempdir().unwrap();
        let img = mkfs_ext(dir.path(), "mkfs.ext4", 64 * MIB, &[]);
        let head = head_of(&img);
        for len in 0..=2048 {
            let found = identify(&head[..len]);
            assert_eq!(
                matches!(found, Contents::Filesystem(_)),
                len == 2048,
                "length {len}"
            );
        }
        for len in (2048..HEAD_LEN).step_by(4093) {
            assert!(matches!(identify(&head[..len]), Contents::Filesystem(_)));
        }
        // Random bytes, and random bytes carrying each known magic, cut at many lengths.
        let planted: Vec<(usize, &[u8])> = BEFORE_EXT
            .iter()
            .chain(AFTER_EXT)
            .flat_map(|sig| {
                sig.offsets
                    .iter()
                    .flat_map(|&at| sig.magics.iter().map(move |&magic| (at, magic)))
            })
            .chain([
                (EXT_SB_AT + 0x38, &b"\x53\xef"[..]),
                (510, b"\x55\xaa"),
                (512, b"EFI PART"),
                (0x52, b"FAT32"),
            ])
            .collect();
        for seed in 0..64u64 {
            let mut bytes = noise(seed, HEAD_LEN);
            let (at, magic) = planted[seed as usize % planted.len()];
            bytes[at..at + magic.len()].copy_from_slice(magic);
            for len in [
                0, 1, 511, 512, 1100, 2047, 2048, 4096, 0x10047, 0x10048, HEAD_LEN,
            ] {
                let _ = identify(&bytes[..len]);
            }
            let len = noise(seed, 8)
                .iter()
                .fold(0usize, |acc, &b| acc * 256 + usize::from(b))
                % HEAD_LEN;
            let _ = identify(&bytes[..len]);
        }
    }

    /// A loop device over an image, detached when dropped (also when a test panics).
    struct Loop(PathBuf);

    impl Loop {
        fn attach(img: &Path) -> Loop {
            Loop(PathBuf::from(
                run(&["losetup", "-f", "--show", s(img)]).trim(),
            ))
        }
    }

    impl Drop for Loop {
        fn drop(&mut self) {
            let detached = Command::new(tool("losetup").unwrap())
                .arg("-d")
                .arg(&self.0)
                .status();
            if !detached.is_ok_and(|status| status.success()) {
                eprintln!("could not detach {}", self.0.display());
            }
        }
    }

    fn sha256(path: &Path) -> Vec<u8> {
        Sha256::digest(fs::read(path).unwrap()).to_vec()
    }

    #[test]
    fn a_loop_device_is_probed_without_being_written() {
        let dir = tempfile::tempdir().unwrap();
        let img = mkfs_ext(dir.path(), "mkfs.ext4", 16 * MIB, &[]);
        let before = sha256(&img);
        let device = Loop::attach(&img);
        let link = dir.path().join("scsi-0HC_Volume_1");
        std::os::unix::fs::symlink(&device.0, &link).unwrap();

        let probe = probe_device(&device.0).unwrap();
        assert_eq!(probe.path, device.0);
        assert_eq!(probe.resolved, device.0);
        let size: u64 = run(&["blockdev", "--getsize64", s(&device.0)])
            .trim()
            .parse()
            .unwrap();
        assert_eq!(probe.size_bytes, size);
        assert_eq!(probe.size_bytes, 16 * MIB);
        let stat = run(&["stat", "-c", "%t:%T", s(&device.0)]);
        let (major, minor) = stat.trim().split_once(':').unwrap();
        let hex = |n| u32::from_str_radix(n, 16).unwrap();
        assert_eq!(probe.dev, (hex(major), hex(minor)));
        let id = fs_identity(probe.contents.clone());
        assert_eq!(
            (id.fs_type.as_str(), id.uuid.as_str(), id.label.as_str()),
            ("ext4", UUID, LABEL)
        );

        let through_link = probe_device(&link).unwrap();
        assert_eq!(through_link.path, link);
        assert_eq!(
            DeviceProbe {
                path: device.0.clone(),
                ..through_link
            },
            probe
        );

        drop(device);
        assert_eq!(sha256(&img), before);
    }

    #[test]
    fn what_is_not_a_block_device_is_refused_by_kind() {
        let dir = tempfile::tempdir().unwrap();
        let file = sparse(dir.path(), MIB);
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let cases = [
            (file.as_path(), "regular file"),
            (dir.path(), "directory"),
            (Path::new("/dev/null"), "character device"),
            (&fifo, "fifo"),
        ];
        for (path, expected) in cases {
            match probe_device(path) {
                Err(ProbeError::NotBlockDevice {
                    path: reported,
                    kind,
                }) => {
                    assert_eq!((reported.as_path(), kind.as_str()), (path, expected));
                }
                other => panic!("{}: {other:?}", path.display()),
            }
        }
    }

    #[test]
    fn missing_paths_and_dangling_links_are_missing() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("scsi-0HC_Volume_404");
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink(&missing, &dangling).unwrap();
        for path in [&missing, &dangling] {
            assert!(
                matches!(probe_device(path), Err(ProbeError::Missing { path: p }) if p == *path)
            );
        }
        let message = probe_device(&missing).unwrap_err().to_string();
        assert_eq!(message, format!("{}: no such device", missing.display()));
    }
}
