//! The volume's own Nix store, seen through recover's private read-write mount: the store
//! that becomes `/nix` after the reboot. It feeds the build (what the old machine built is
//! copied, not built or downloaded again), receives the new system's closure, and keeps the
//! system profile whose newest generation the rebooted machine runs.
//!
//! Store paths are named as the machine sees them after the reboot (`/nix/store/…`), also
//! in the profile's links; their files are under [`VolumeStore::nix_dir`] until then.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::escape::shown;
use crate::exec::atomic;

/// The system profile's directory and name inside the store's state.
const PROFILES: &str = "var/nix/profiles";
const SYSTEM: &str = "system";

/// The store in the directory that becomes `/nix` after the reboot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeStore {
    /// `<mount>/qwe/nix` (the bind's source) or `<mount>` (a volume of its own).
    pub nix_dir: PathBuf,
}

/// One generation of the system profile: its number and the system it links to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    pub number: u32,
    pub system: PathBuf,
}

impl VolumeStore {
    pub fn new(nix_dir: PathBuf) -> VolumeStore {
        VolumeStore { nix_dir }
    }

    /// The store as Nix addresses it: `local?root=R` when the directory is `R/nix` (the
    /// bind's source), else with its store and state directories named
    /// (`local?real=…/store&state=…/var/nix`).
    pub fn uri(&self) -> String {
        match self.nix_dir.parent() {
            Some(root) if self.nix_dir.file_name() == Some("nix".as_ref()) => {
                format!("local?root={}", root.display())
            }
            _ => format!(
                "local?real={}&state={}",
                self.nix_dir.join("store").display(),
                self.nix_dir.join("var/nix").display()
            ),
        }
    }

    /// The store as an extra substituter whose unsigned (locally built) paths are accepted
    /// from it alone, as `nixos-install` does. Never `require-sigs = false`: that would
    /// drop the check for every substituter, the network ones included.
    pub fn substituter(&self) -> String {
        format!("{}&trusted=1", self.uri())
    }

    /// Why Nix could not use this store, if it could not: lifeboat looks before Nix opens
    /// it, since Nix would make an empty database where there is none (and then build
    /// or download everything).
    pub fn unusable(&self) -> Option<String> {
        let store = self.nix_dir.join("store");
        let db = self.nix_dir.join("var/nix/db/db.sqlite");
        if !store.is_dir() {
            return Some(format!("{} is not a directory", shown(&store)));
        }
        let mut magic = [0u8; 16];
        let read = fs::File::open(&db).and_then(|mut file| {
            use std::io::Read;
            file.read_exact(&mut magic)
        });
        match read {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Some(format!("it has no database ({} is missing)", shown(&db)))
            }
            Err(e) => Some(format!("its database {} cannot be read: {e}", shown(&db))),
            Ok(()) if &magic != b"SQLite format 3\0" => Some(format!(
                "its database {} is not an SQLite database",
                shown(&db)
            )),
            Ok(()) => None,
        }
    }

    fn profiles(&self) -> PathBuf {
        self.nix_dir.join(PROFILES)
    }

    /// Every generation of the system profile, oldest first, and the one `system` points
    /// at. Both empty when the profile was never made.
    pub fn generations(&self) -> io::Result<(Vec<Generation>, Option<u32>)> {
        let dir = self.profiles();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), None)),
            Err(e) => return Err(e),
        };
        let mut generations = Vec::new();
        for entry in entries {
            let entry = entry?;
            let Some(number) = generation_number(&entry.file_name().to_string_lossy()) else {
                continue;
            };
            if let Ok(system) = fs::read_link(entry.path()) {
                generations.push(Generation { number, system });
            }
        }
        generations.sort_by_key(|g| g.number);
        let current = fs::read_link(dir.join(SYSTEM))
            .ok()
            .and_then(|link| generation_number(&link.file_name()?.to_string_lossy()));
        Ok((generations, current))
    }

    /// The system the profile points at now: on recovery day, the old machine's.
    pub fn current_system(&self) -> Option<PathBuf> {
        let (generations, current) = self.generations().ok()?;
        let current = current?;
        generations
            .into_iter()
            .find(|g| g.number == current)
            .map(|g| g.system)
    }

    /// Make `system` the newest generation and point the profile at it, as Nix writes a
    /// profile: `system-<N>-link` → the store path, `system` → `system-<N>-link`. Each link
    /// is replaced atomically, so a run stopped between the two leaves the new generation
    /// beside the profile, and the next run only points the profile at it. Returns the
    /// generation's number and whether anything was written.
    pub fn add_generation(&self, system: &Path) -> io::Result<(u32, bool)> {
        let dir = self.profiles();
        let (generations, current) = self.generations()?;
        let newest = generations.last();
        let (number, new) = match newest {
            Some(g) if g.system == system && current == Some(g.number) => {
                return Ok((g.number, false));
            }
            Some(g) if g.system == system => (g.number, false),
            Some(g) => (g.number + 1, true),
            None => (1, true),
        };
        fs::create_dir_all(&dir)?;
        let link = format!("{SYSTEM}-{number}-link");
        if new {
            atomic::symlink_atomic(system, &dir.join(&link))?;
        }
        atomic::symlink_atomic(Path::new(&link), &dir.join(SYSTEM))?;
        Ok((number, true))
    }
}

/// `N` of `system-N-link`.
fn generation_number(name: &str) -> Option<u32> {
    name.strip_prefix("system-")?
        .strip_suffix("-link")?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bind_source_is_addressed_by_its_root_a_volume_of_its_own_by_its_directories() {
        let bind = VolumeStore::new("/var/lib/lifeboat/volume/qwe/nix".into());
        assert_eq!(bind.uri(), "local?root=/var/lib/lifeboat/volume/qwe");
        assert_eq!(
            bind.substituter(),
            "local?root=/var/lib/lifeboat/volume/qwe&trusted=1"
        );
        let own = VolumeStore::new("/var/lib/lifeboat/volume".into());
        assert_eq!(
            own.uri(),
            "local?real=/var/lib/lifeboat/volume/store&state=/var/lib/lifeboat/volume/var/nix"
        );
    }

    fn store_with_profile(links: &[(&str, &str)]) -> (tempfile::TempDir, VolumeStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = VolumeStore::new(dir.path().join("nix"));
        let profiles = store.profiles();
        fs::create_dir_all(&profiles).unwrap();
        for (name, target) in links {
            std::os::unix::fs::symlink(target, profiles.join(name)).unwrap();
        }
        (dir, store)
    }

    #[test]
    fn a_new_system_becomes_the_next_generation_and_the_old_ones_stay() {
        let (_dir, store) = store_with_profile(&[
            ("system-1-link", "/nix/store/a-old"),
            ("system-2-link", "/nix/store/b-older-but-newer"),
            ("system", "system-2-link"),
        ]);
        assert_eq!(
            store.current_system(),
            Some(PathBuf::from("/nix/store/b-older-but-newer"))
        );
        let new = Path::new("/nix/store/c-new");
        assert_eq!(store.add_generation(new).unwrap(), (3, true));
        let profiles = store.profiles();
        assert_eq!(fs::read_link(profiles.join("system-3-link")).unwrap(), new);
        assert_eq!(
            fs::read_link(profiles.join("system")).unwrap(),
            Path::new("system-3-link")
        );
        assert_eq!(store.current_system().as_deref(), Some(new));
        let (generations, current) = store.generations().unwrap();
        assert_eq!(generations.len(), 3);
        assert_eq!(current, Some(3));
        // Again: nothing new.
        assert_eq!(store.add_generation(new).unwrap(), (3, false));
        let names: Vec<_> = fs::read_dir(&profiles)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(names.is_empty(), "temporaries left: {names:?}");
    }

    #[test]
    fn a_generation_written_before_a_kill_is_pointed_at_not_written_twice() {
        let (_dir, store) = store_with_profile(&[
            ("system-1-link", "/nix/store/a-old"),
            ("system-2-link", "/nix/store/c-new"),
            ("system", "system-1-link"),
        ]);
        assert_eq!(
            store.add_generation(Path::new("/nix/store/c-new")).unwrap(),
            (2, true)
        );
        assert_eq!(store.generations().unwrap().1, Some(2));
        assert!(!store.profiles().join("system-3-link").exists());
    }

    #[test]
    fn a_store_without_a_profile_gets_generation_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = VolumeStore::new(dir.path().join("nix"));
        assert_eq!(store.current_system(), None);
        assert_eq!(
            store.add_generation(Path::new("/nix/store/c-new")).unwrap(),
            (1, true)
        );
        assert_eq!(store.generations().unwrap().1, Some(1));
    }

    #[test]
    fn a_store_nix_cannot_use_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let store = VolumeStore::new(dir.path().join("nix"));
        assert!(store.unusable().unwrap().contains("not a directory"));
        fs::create_dir_all(dir.path().join("nix/store")).unwrap();
        assert!(store.unusable().unwrap().contains("no database"));
        fs::create_dir_all(dir.path().join("nix/var/nix/db")).unwrap();
        let db = dir.path().join("nix/var/nix/db/db.sqlite");
        fs::write(&db, b"this is no database at all").unwrap();
        assert!(store.unusable().unwrap().contains("not an SQLite database"));
        fs::write(&db, b"SQLite format 3\0 and pages").unwrap();
        assert_eq!(store.unusable(), None);
    }
}
