//! The seed layout written onto practice volumes: a home with dotfiles, projects, a
//! config backup and a Nix store shaped like an optimised real one.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{PermissionsExt, lchown, symlink};
use std::path::{Path, PathBuf};

use nix::sys::stat::{UtimensatFlags, utimensat};
use nix::sys::time::TimeSpec;

use super::error::{SandboxError, io_error};
use super::spec::VolumeSpec;

const CONFIGURATION_NIX: &str =
    include_str!("../../tests/fixtures/nixos/configuration.seed-style.nix");
const FLAKE_NIX: &str = include_str!("../../tests/fixtures/nixos/flake.seed-style.nix");
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
pub(super) struct Layout {
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
    pub(super) fn write(&self, root: &Path, uid: u32) -> Result<(), SandboxError> {
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
pub(super) fn seed_layout(spec: &VolumeSpec) -> Layout {
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
}
