//! By-id discovery: the links in `/dev/disk/by-id` (or the configured directory) whose
//! names match the discovery pattern, each resolved to its device.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// An entry of the by-id directory that matches the discovery pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub link: PathBuf,
    pub resolved: PathBuf,
}

/// Entries of `dir` whose file name satisfies `matches`, sorted by name, each resolved.
///
/// A dangling link (a volume detached while udev has not yet removed its link) names no device
/// and is left out. Names that are not UTF-8 cannot satisfy a text pattern and are left out.
/// A missing `dir` is an error of kind `NotFound`; any other failure to resolve a matching entry
/// is an error that names the entry.
pub fn discover(dir: &Path, matches: &dyn Fn(&str) -> bool) -> std::io::Result<Vec<Candidate>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if !entry.file_name().to_str().is_some_and(matches) {
            continue;
        }
        let link = entry.path();
        match fs::canonicalize(&link) {
            Ok(resolved) => found.push(Candidate { link, resolved }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", link.display()))),
        }
    }
    found.sort_by(|a, b| a.link.cmp(&b.link));
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;

    fn s(path: &Path) -> &str {
        path.to_str().unwrap()
    }

    #[test]
    fn discovery_lists_matching_resolvable_links_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let by_id = dir.path().join("by-id");
        let devices = dir.path().join("devices");
        fs::create_dir_all(&by_id).unwrap();
        fs::create_dir_all(&devices).unwrap();
        for device in ["sdb", "sdc", "sdd", "vda"] {
            File::create(devices.join(device)).unwrap();
        }
        let link = |name: &str, target: &str| {
            std::os::unix::fs::symlink(target, by_id.join(name)).unwrap();
        };
        link("scsi-0HC_Volume_2", s(&devices.join("sdb")));
        link("scsi-0HC_Volume_10", "../devices/sdc");
        link("scsi-0HC_Volume_3", "../devices/gone");
        link("scsi-0HC_Volume_4", "../devices/sdd");
        link("virtio-root", "../devices/vda");

        let pattern = glob::Pattern::new("scsi-0HC_Volume_*").unwrap();
        let found = discover(&by_id, &|name| pattern.matches(name)).unwrap();
        let real = |device: &str| fs::canonicalize(devices.join(device)).unwrap();
        let expected: Vec<Candidate> = [
            ("scsi-0HC_Volume_10", "sdc"),
            ("scsi-0HC_Volume_2", "sdb"),
            ("scsi-0HC_Volume_4", "sdd"),
        ]
        .into_iter()
        .map(|(name, device)| Candidate {
            link: by_id.join(name),
            resolved: real(device),
        })
        .collect();
        assert_eq!(found, expected);
        assert!(discover(&by_id, &|_| false).unwrap().is_empty());
    }

    #[test]
    fn discovery_in_a_missing_directory_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let error = discover(&dir.path().join("by-id"), &|_| true).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
    }
}
