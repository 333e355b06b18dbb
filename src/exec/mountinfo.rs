//! The mount table: `/proc/self/mountinfo` parsed into entries.
//!
//! It only reads; the parser is pure and takes any bytes (the table is the kernel's, but its
//! paths are anyone's).

use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub mount_id: u32,
    pub parent_id: u32,
    /// Device number of the mounted filesystem.
    pub dev: (u32, u32),
    /// Path inside the filesystem that is mounted here (`/qwe/nix` for a bind).
    pub root: PathBuf,
    pub mount_point: PathBuf,
    /// Per-mount options (`ro`, `nosuid`, …).
    pub options: Vec<String>,
    pub fs_type: String,
    /// Where the filesystem comes from (`/dev/sdb`, `tmpfs`, `none`), lossy UTF-8.
    pub source: String,
    pub super_options: Vec<String>,
}

/// Parse mountinfo text (octal escapes such as `\040` decoded). Pure; malformed lines are skipped.
///
/// Root and mount point are kept as raw bytes (no lossy conversion), so they compare equal to
/// the paths they name. The optional fields (`shared:1`, `master:2`) are read past, not kept.
pub fn parse_mountinfo(text: &[u8]) -> Vec<MountEntry> {
    text.split(|&b| b == b'\n')
        .filter_map(parse_mountinfo_line)
        .collect()
}

/// `36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw,errors=continue`
fn parse_mountinfo_line(line: &[u8]) -> Option<MountEntry> {
    let mut fields = line.split(|&b| b == b' ');
    let mut next = || fields.next().filter(|field| !field.is_empty());
    let mount_id = number(next()?)?;
    let parent_id = number(next()?)?;
    let (major, minor) = split_once(next()?, b':')?;
    let dev = (number(major)?, number(minor)?);
    let root = unescaped_path(next()?);
    let mount_point = unescaped_path(next()?);
    let options = option_list(next()?);
    while next()? != b"-" {}
    let fs_type = unescaped_text(next()?);
    let source = unescaped_text(next()?);
    let super_options = option_list(next()?);
    if fields.next().is_some() {
        return None;
    }
    Some(MountEntry {
        mount_id,
        parent_id,
        dev,
        root,
        mount_point,
        options,
        fs_type,
        source,
        super_options,
    })
}

fn number(field: &[u8]) -> Option<u32> {
    std::str::from_utf8(field).ok()?.parse().ok()
}

fn split_once(field: &[u8], separator: u8) -> Option<(&[u8], &[u8])> {
    let at = field.iter().position(|&b| b == separator)?;
    Some((field.get(..at)?, field.get(at + 1..)?))
}

fn option_list(field: &[u8]) -> Vec<String> {
    field.split(|&b| b == b',').map(unescaped_text).collect()
}

fn unescaped_path(field: &[u8]) -> PathBuf {
    OsString::from_vec(unescape(field)).into()
}

fn unescaped_text(field: &[u8]) -> String {
    String::from_utf8_lossy(&unescape(field)).into_owned()
}

/// Decode the kernel's `\ooo` escapes (space, tab, newline, backslash…); anything else is kept.
fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut rest = field;
    while let [first, tail @ ..] = rest {
        match (first, octal_byte(tail)) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                rest = tail.get(3..).unwrap_or_default();
            }
            _ => {
                out.push(*first);
                rest = tail;
            }
        }
    }
    out
}

/// Three octal digits at the start of `digits` that make a byte (`000`–`377`).
fn octal_byte(digits: &[u8]) -> Option<u8> {
    let [a, b, c, ..] = digits else { return None };
    let value = [a, b, c].into_iter().try_fold(0u16, |value, &digit| {
        matches!(digit, b'0'..=b'7').then(|| value * 8 + u16::from(digit - b'0'))
    })?;
    u8::try_from(value).ok()
}

/// The calling process's mount table.
pub fn read_mountinfo() -> std::io::Result<Vec<MountEntry>> {
    Ok(parse_mountinfo(&fs::read("/proc/self/mountinfo")?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::noise::noise;
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;

    const MOUNTINFO: &[u8] =
        br"22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro
35 22 8:16 / /home rw,nosuid,relatime shared:2 master:7 - ext4 /dev/sdb rw
36 22 8:16 /qwe/nix /nix ro,relatime shared:2 - ext4 /dev/sdb rw
40 35 0:45 / /home/qwe/My\040Drive rw,nodev - fuse.sshfs host:/a\134b\040c rw,user_id=1000
41 22 0:46 / /mnt/tab\011new\012line rw - tmpfs tmpfs rw,size=10\054k
50 22 0:50 / /tmp rw - tmpfs tmpfs rw
51 22 0:51 /\200 /odd\9\400\04 rw - tmpfs tmp\377fs rw
garbage
12 x 1:2 / / rw - ext4 /dev/a rw
13 1 1:2 / / rw shared:1 ext4 /dev/a rw
14 1 1:2 / / rw - ext4 /dev/a
15 1 1:2 / / rw - ext4 /dev/a rw extra
16 1 12 / / rw - ext4 /dev/a rw
17 1 1:2 /  / rw - ext4 /dev/a rw

18 1 1:2 / / rw -
";

    fn entry(id: u32, parent: u32, dev: (u32, u32), root: &str, mount_point: &str) -> MountEntry {
        MountEntry {
            mount_id: id,
            parent_id: parent,
            dev,
            root: root.into(),
            mount_point: mount_point.into(),
            options: vec!["rw".into()],
            fs_type: "ext4".into(),
            source: "/dev/sdb".into(),
            super_options: vec!["rw".into()],
        }
    }

    #[test]
    fn mountinfo_is_parsed_and_malformed_lines_are_skipped() {
        let entries = parse_mountinfo(MOUNTINFO);
        let ids: Vec<u32> = entries.iter().map(|e| e.mount_id).collect();
        assert_eq!(ids, [22, 35, 36, 40, 41, 50, 51]);

        let root = MountEntry {
            options: vec!["rw".into(), "relatime".into()],
            source: "/dev/vda1".into(),
            super_options: vec!["rw".into(), "errors=remount-ro".into()],
            ..entry(22, 1, (259, 2), "/", "/")
        };
        assert_eq!(entries[0], root);
        let home = MountEntry {
            options: vec!["rw".into(), "nosuid".into(), "relatime".into()],
            ..entry(35, 22, (8, 16), "/", "/home")
        };
        assert_eq!(entries[1], home);
        let bind = MountEntry {
            options: vec!["ro".into(), "relatime".into()],
            ..entry(36, 22, (8, 16), "/qwe/nix", "/nix")
        };
        assert_eq!(entries[2], bind);

        let sshfs = &entries[3];
        assert_eq!(sshfs.mount_point, Path::new("/home/qwe/My Drive"));
        assert_eq!(
            (sshfs.fs_type.as_str(), sshfs.source.as_str()),
            ("fuse.sshfs", r"host:/a\b c")
        );
        assert_eq!(sshfs.options, ["rw", "nodev"]);
        assert_eq!(sshfs.super_options, ["rw", "user_id=1000"]);
        assert_eq!(entries[4].mount_point, Path::new("/mnt/tab\tnew\nline"));
        assert_eq!(entries[4].super_options, ["rw", "size=10,k"]);
        assert_eq!(
            entries[5],
            MountEntry {
                fs_type: "tmpfs".into(),
                source: "tmpfs".into(),
                ..entry(50, 22, (0, 50), "/", "/tmp")
            }
        );

        let odd = &entries[6];
        assert_eq!(odd.root.as_os_str().as_bytes(), b"/\x80");
        assert_eq!(odd.mount_point.as_os_str().as_bytes(), br"/odd\9\400\04");
        assert_eq!(
            (odd.fs_type.as_str(), odd.source.as_str()),
            ("tmpfs", "tmp\u{fffd}fs")
        );
    }

    #[test]
    fn cut_or_noisy_mountinfo_never_panics() {
        for len in 0..=MOUNTINFO.len() {
            let cut = &MOUNTINFO[..len];
            let lines = cut.split(|&b| b == b'\n').count();
            assert!(parse_mountinfo(cut).len() <= lines);
        }
        for seed in 0..200u64 {
            let mut text = MOUNTINFO.to_vec();
            for (i, byte) in noise(seed, 64)
                .chunks(2)
                .map(|pair| (usize::from(pair[0]) * 7, pair[1]))
            {
                if let Some(slot) = text.get_mut(i) {
                    *slot = byte;
                }
            }
            let _ = parse_mountinfo(&text);
            let _ = parse_mountinfo(&noise(seed, 4096));
        }
        assert!(parse_mountinfo(b"\\\\\\1 \\12 \\").is_empty());
    }

    #[test]
    fn this_process_has_a_root_mount() {
        let entries = read_mountinfo().unwrap();
        assert!(entries.iter().any(|e| e.mount_point == Path::new("/")));
    }
}
