//! A full volume, the failure from outside that every write onto the volume can meet (the
//! lists, the marker, the card, the mirror, the closure copy). Each step says the same:
//! which volume, what ENOSPC means, that the earlier file was kept, and what to do.

use std::io;
use std::path::Path;

use crate::escape::shown;
use crate::exec::host::space;

/// What tools print when a write met a full filesystem: the kernel's ENOSPC and EDQUOT
/// texts, and SQLite's (Nix's store database).
const FULL_TEXTS: [&str; 3] = [
    "No space left on device",
    "Disk quota exceeded",
    "database or disk is full",
];

/// Is `err` a full filesystem (ENOSPC), or a quota that is full for this user (EDQUOT)?
/// By kind, which survives the wrapping that adds a path (tempfile's does).
pub fn is_full(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

/// Does a tool's error text say that it met a full filesystem?
pub fn says_full(text: &str) -> bool {
    FULL_TEXTS.iter().any(|full| text.contains(full))
}

/// Below this many bytes left for users, a filesystem counts as full: some tools (SQLite
/// in Nix's store database) report a full disk only as "disk I/O error".
const NEARLY_FULL: u64 = 1 << 20;

/// Is the filesystem holding `path` full, for a tool whose error text may not say so?
pub fn looks_full(path: &Path) -> bool {
    space(path).is_ok_and(|space| space.available < NEARLY_FULL)
}

/// What a full volume means and what to do about it, as sentences.
pub fn volume_full(mount: &Path) -> String {
    let mount = shown(mount);
    format!(
        "The volume at {mount} is full (ENOSPC: no space left on device). Free space on it \
         (`du -xh -d 2 {mount} | sort -h | tail` shows what takes it) or grow the volume \
         (`hcloud volume resize`, then `resize2fs`), then run lifeboat again."
    )
}

/// Why writing `path` onto the volume mounted at `mount` failed; for a full volume, with
/// the fact that the file there before is unchanged (writes replace files whole or not at all).
pub fn write_failed(path: &Path, mount: &Path, err: &io::Error) -> String {
    if is_full(err) {
        format!(
            "cannot write {}: no space left. {} Nothing was replaced: a file that was there \
             keeps what it held.",
            shown(path),
            volume_full(mount)
        )
    } else {
        format!("cannot write {}: {err}", shown(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enospc_and_edquot_are_full_and_the_message_names_the_volume() {
        let full = io::Error::from_raw_os_error(libc::ENOSPC);
        assert!(is_full(&full));
        assert!(is_full(&io::Error::from_raw_os_error(libc::EDQUOT)));
        assert!(!is_full(&io::Error::from_raw_os_error(libc::EACCES)));
        let wrapped = io::Error::new(full.kind(), "writing /home/qwe/.lifeboat-x.tmp");
        assert!(is_full(&wrapped));
        let message = write_failed(Path::new("/home/qwe/x"), Path::new("/home"), &full);
        assert!(message.contains("/home/qwe/x") && message.contains("volume at /home is full"));
        assert!(message.contains("ENOSPC") && message.contains("Free space"));
        let denied = io::Error::from_raw_os_error(libc::EACCES);
        let message = write_failed(Path::new("/home/qwe/x"), Path::new("/home"), &denied);
        assert!(!message.contains("full"), "{message}");
    }

    #[test]
    fn tool_texts_that_say_full_are_recognised() {
        assert!(says_full(
            "cannot extend packfile '/h/p.pack': No space left on device"
        ));
        assert!(says_full(
            "error: SQLite database '/h/db.sqlite': database or disk is full"
        ));
        assert!(!says_full("error: connection refused"));
    }

    #[test]
    fn a_filesystem_with_room_does_not_look_full() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!looks_full(dir.path()));
    }
}
