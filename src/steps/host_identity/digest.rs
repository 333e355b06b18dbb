//! What a saved copy is, in one SHA-256: a file's content, or a directory's listing (each
//! entry's relative name, kind, mode, owner, and a file's own SHA-256 or a link's target),
//! so that predestroy can record it on the card and recover and verify can tell a copy
//! that is not what was saved.

use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use sha2::{Digest, Sha256};

/// A tree's digest and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeDigest {
    /// Lower-case hex SHA-256.
    pub sha256: String,
    /// Regular files and their bytes.
    pub files: u64,
    pub bytes: u64,
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The digest of `path` (never following a symlink).
pub fn digest(path: &Path) -> io::Result<TreeDigest> {
    let meta = fs::symlink_metadata(path)?;
    if meta.is_file() {
        let sha = file_sha256(path)?;
        return Ok(TreeDigest {
            sha256: hex(&sha),
            files: 1,
            bytes: meta.len(),
        });
    }
    let mut listing = Sha256::new();
    let (mut files, mut bytes) = (0, 0);
    walk(path, Path::new(""), &mut |relative, meta, full| {
        listing.update(relative.as_os_str().as_bytes());
        let kind = if meta.is_dir() {
            "d".to_string()
        } else if meta.file_type().is_symlink() {
            format!("l {}", fs::read_link(full)?.display())
        } else if meta.is_file() {
            files += 1;
            bytes += meta.len();
            format!("f {}", hex(&file_sha256(full)?))
        } else {
            "other".to_string()
        };
        listing.update(
            format!(
                "\0{kind}\0{:o}\0{}\0{}\n",
                meta.mode() & 0o7777,
                meta.uid(),
                meta.gid()
            )
            .as_bytes(),
        );
        Ok(())
    })?;
    Ok(TreeDigest {
        sha256: hex(&listing.finalize()),
        files,
        bytes,
    })
}

/// Call `visit` for every entry under `dir` (not `dir` itself), parents before children,
/// names sorted, symlinks not followed.
pub fn walk(
    dir: &Path,
    relative: &Path,
    visit: &mut dyn FnMut(&Path, &fs::Metadata, &Path) -> io::Result<()>,
) -> io::Result<()> {
    let mut entries: Vec<fs::DirEntry> = fs::read_dir(dir)?.collect::<io::Result<_>>()?;
    entries.sort_by_key(fs::DirEntry::file_name);
    for entry in entries {
        let full = entry.path();
        let meta = fs::symlink_metadata(&full)?;
        let rel = relative.join(entry.file_name());
        visit(&rel, &meta, &full)?;
        if meta.is_dir() {
            walk(&full, &rel, visit)?;
        }
    }
    Ok(())
}

fn file_sha256(path: &Path) -> io::Result<[u8; 32]> {
    let mut hasher = Sha256::new();
    let mut file = fs::File::open(path)?;
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        match io::Read::read(&mut file, &mut buffer) {
            Ok(0) => return Ok(hasher.finalize().into()),
            Ok(read) => hasher.update(&buffer[..read]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_tree_digest_changes_with_content_mode_and_names() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("postgresql");
        fs::create_dir_all(tree.join("base")).unwrap();
        fs::write(tree.join("base/1"), "rows").unwrap();
        fs::write(tree.join("PG_VERSION"), "16\n").unwrap();
        let first = digest(&tree).unwrap();
        assert_eq!((first.files, first.bytes), (2, 7));
        assert_eq!(
            digest(&tree).unwrap(),
            first,
            "the same tree, the same digest"
        );
        fs::write(tree.join("base/1"), "rowz").unwrap();
        let content = digest(&tree).unwrap();
        assert_ne!(content.sha256, first.sha256);
        fs::set_permissions(tree.join("base/1"), fs::Permissions::from_mode(0o600)).unwrap();
        assert_ne!(digest(&tree).unwrap().sha256, content.sha256);
        let file = digest(&tree.join("PG_VERSION")).unwrap();
        assert_eq!(file.files, 1);
        assert_eq!(file.sha256, hex(&Sha256::digest(b"16\n")));
    }
}
