//! The size walk against the real `du`: every row must equal `du -sB1 -x` and `du --inodes -sx`.

// Tests and benchmarks stop at the first thing they cannot set up: unwrap says where.
#![allow(clippy::unwrap_used)]

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;

use nix::fcntl::{OFlag, open, openat};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::{Mode, mkdirat};
use nixos_lifeboat::exec::scan::{ScanError, ScanReport, Walk, scan, scan_walk};

fn run_scan(root: &Path, expand: Option<&str>) -> ScanReport {
    scan(
        root,
        expand.map(OsStr::new),
        &|_| {},
        &AtomicBool::new(false),
    )
    .unwrap()
}

/// The number `du` prints first, ignoring its exit status (it is 1 after unreadable entries).
fn du_number(prefix: &[&str], args: &[&str], path: &Path) -> u64 {
    let (program, wrapper) = prefix.split_first().unwrap_or((&"du", &[]));
    let out = Command::new(program)
        .args(wrapper)
        .args(if prefix.is_empty() {
            &[][..]
        } else {
            &["du"][..]
        })
        .args(args)
        .arg(path)
        .output()
        .unwrap();
    let end = out
        .stdout
        .iter()
        .position(|&b| b == b'\t')
        .unwrap_or_else(|| {
            panic!(
                "du {args:?} {path:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    std::str::from_utf8(&out.stdout[..end])
        .unwrap()
        .parse()
        .unwrap()
}

/// Every row equals du run on it (through `prefix`, e.g. a setpriv wrapper), and the rows are
/// exactly the root's entries plus those of `root/expand`, in path order.
fn assert_matches_du(root: &Path, expand: Option<&str>, report: &ScanReport, prefix: &[&str]) {
    let mut expected = names(root, Path::new(""));
    if let Some(name) = expand.filter(|n| fs::symlink_metadata(root.join(n)).unwrap().is_dir()) {
        expected.extend(names(&root.join(name), Path::new(name)));
    }
    expected.sort();
    let got: Vec<&Path> = report.rows.iter().map(|r| r.path.as_path()).collect();
    assert_eq!(
        got,
        expected.iter().map(PathBuf::as_path).collect::<Vec<_>>()
    );
    for row in &report.rows {
        let full = root.join(&row.path);
        let du_bytes = du_number(prefix, &["-sB1", "-x"], &full);
        let du_files = du_number(prefix, &["--inodes", "-sx"], &full);
        assert_eq!(
            (row.bytes, row.files),
            (du_bytes, du_files),
            "row {:?}",
            row.path
        );
    }
}

fn names(dir: &Path, prefix: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| prefix.join(e.unwrap().file_name()))
        .collect()
}

fn write(path: &Path, len: usize) {
    fs::write(path, vec![0x5a; len]).unwrap();
}

fn hostile_names() -> Vec<OsString> {
    vec![
        OsString::from("new\nline"),
        OsString::from("esc\x1b[31mred\x1b[0m"),
        OsString::from_vec(b"bad\xff\xfeutf8".to_vec()),
        OsString::from(" lead space"),
    ]
}

/// A home-like tree: `qwe` holds `nix` and `projects`, with every kind of entry du meets.
fn build_tree(root: &Path) {
    let qwe = root.join("qwe");
    let store = qwe.join("nix/store");
    let hello = store.join("aaaa-hello-1.0");
    let lib = store.join("bbbb-libfoo-2.1");
    let projects = qwe.join("projects");
    for dir in [
        hello.join("bin"),
        lib.join("lib"),
        projects.join("src/deeper/still"),
        qwe.join("empty-dir"),
    ] {
        fs::create_dir_all(dir).unwrap();
    }
    for (i, len) in [0, 1, 511, 4095, 4096, 4097, 65_537, 1_000_000]
        .into_iter()
        .enumerate()
    {
        write(&projects.join(format!("src/deeper/f{i}")), len);
        write(&lib.join(format!("lib/l{i}.so")), len * 2);
    }
    write(&hello.join("bin/hello"), 30_000);
    write(&projects.join("src/shared-with-nix"), 70_000);
    write(&projects.join("shared-with-other"), 90_000);
    write(&qwe.join(".bashrc"), 300);
    fs::File::create(root.join("empty-file")).unwrap();

    // Hard links: twice inside nix; across nix and projects; across the top-level entries.
    fs::hard_link(hello.join("bin/hello"), lib.join("lib/hello-again")).unwrap();
    fs::hard_link(hello.join("bin/hello"), hello.join("bin/hello-alias")).unwrap();
    fs::hard_link(
        projects.join("src/shared-with-nix"),
        store.join("shared-with-projects"),
    )
    .unwrap();
    fs::create_dir(root.join("other")).unwrap();
    fs::hard_link(
        projects.join("shared-with-other"),
        root.join("other/linked"),
    )
    .unwrap();
    fs::hard_link(qwe.join(".bashrc"), root.join("bashrc-at-top")).unwrap();

    // A sparse file: 64 MiB long, two small extents allocated.
    let sparse = fs::File::create(projects.join("sparse.img")).unwrap();
    sparse.set_len(64 << 20).unwrap();
    nix::sys::uio::pwrite(&sparse, &[1u8; 10_000], 10 << 20).unwrap();

    symlink("projects/src/shared-with-nix", qwe.join("to-file")).unwrap();
    symlink("projects", qwe.join("to-dir")).unwrap();
    symlink("/", root.join("to-root")).unwrap();
    symlink("/", qwe.join("nix/to-root")).unwrap();
    symlink("does/not/exist", root.join("dangling")).unwrap();
    symlink("loop-b", root.join("loop-a")).unwrap();
    symlink("loop-a", root.join("loop-b")).unwrap();
    symlink("x".repeat(300), projects.join("long-target")).unwrap();
    nix::unistd::mkfifo(&root.join("fifo"), Mode::from_bits_truncate(0o644)).unwrap();
    nix::unistd::mkfifo(&projects.join("fifo"), Mode::from_bits_truncate(0o600)).unwrap();
    drop(std::os::unix::net::UnixListener::bind(qwe.join("socket")).unwrap());

    for name in hostile_names() {
        write(&root.join(&name), 5000);
        fs::create_dir(qwe.join(&name)).unwrap();
        write(&qwe.join(&name).join(&name), 7000);
    }
}

#[test]
fn rows_match_du_on_a_tree_with_every_kind_of_entry() {
    let tmp = tempfile::tempdir().unwrap();
    build_tree(tmp.path());
    let report = run_scan(tmp.path(), Some("qwe"));
    assert!(report.unreadable.is_empty(), "{:?}", report.unreadable);
    assert_matches_du(tmp.path(), Some("qwe"), &report, &[]);

    // The file linked into both nix and projects counts in each of them, and once in qwe.
    let row = |p: &str| report.rows.iter().find(|r| r.path == Path::new(p)).unwrap();
    assert!(row("qwe").bytes < row("qwe/nix").bytes + row("qwe/projects").bytes);
    assert_eq!(row("qwe/to-dir").files, 1);
}

#[test]
fn expand_that_is_missing_or_not_a_directory_adds_no_rows() {
    let tmp = tempfile::tempdir().unwrap();
    build_tree(tmp.path());
    for expand in [
        None,
        Some("nothing-here"),
        Some("to-root"),
        Some("empty-file"),
    ] {
        let report = run_scan(tmp.path(), expand);
        assert_eq!(report.rows.len(), names(tmp.path(), Path::new("")).len());
        assert_matches_du(tmp.path(), None, &report, &[]);
    }
}

#[test]
fn empty_symlinked_and_missing_roots() {
    let tmp = tempfile::tempdir().unwrap();
    let report = run_scan(tmp.path(), Some("qwe"));
    assert_eq!(
        report,
        ScanReport {
            rows: vec![],
            unreadable: vec![]
        }
    );
    let missing = tmp.path().join("missing");
    let err = scan(&missing, None, &|_| {}, &AtomicBool::new(false)).unwrap_err();
    assert!(
        matches!(&err, ScanError::Io { path, .. } if *path == missing),
        "{err:?}"
    );
}

/// Unmounts (lazily) when dropped, so a failing test leaves nothing mounted.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = umount2(&self.0, MntFlags::MNT_DETACH);
    }
}

fn mount_tmpfs(at: &Path) -> Mounted {
    fs::create_dir_all(at).unwrap();
    mount(
        Some("tmpfs"),
        at,
        Some("tmpfs"),
        MsFlags::empty(),
        Some("size=64m"),
    )
    .unwrap();
    Mounted(at.to_path_buf())
}

/// Mounting is only safe in a mount namespace of our own: some ancestor process (the shell
/// that ran `unshare`) must be in another one. (PID 1's namespace link may not be readable.)
fn assert_private_mount_namespace() {
    let ns = |pid: u32| fs::read_link(format!("/proc/{pid}/ns/mnt")).ok();
    let parent = |pid: u32| -> Option<u32> {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat.rsplit_once(") ")?.1.split(' ').nth(1)?.parse().ok()
    };
    let own = ns(std::process::id());
    let mut pid = std::process::id();
    while let Some(ppid) = parent(pid).filter(|&p| p > 1) {
        if ns(ppid).is_some_and(|other| Some(other) != own) {
            return;
        }
        pid = ppid;
    }
    panic!("run tests via `unshare -m --propagation private cargo nextest run`");
}

#[test]
fn other_filesystems_are_not_entered_like_du_x() {
    assert_private_mount_namespace();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    build_tree(root);
    // Mount points (and a file to cover) exist before the mounts, to compare with afterwards.
    for dir in ["qwe/nix/store/mnt", "qwe/mnt", "top-mnt"] {
        fs::create_dir(root.join(dir)).unwrap();
    }
    write(&root.join("qwe/projects/covered"), 10);
    let before = run_scan(root, Some("qwe"));

    let mut mounts = Vec::new();
    // Inside a row, as a row of its own (and a mount inside that), and at the top level.
    for at in ["qwe/nix/store/mnt", "qwe/mnt", "qwe/mnt/inner", "top-mnt"] {
        mounts.push(mount_tmpfs(&root.join(at)));
        write(&root.join(at).join("big"), 3 << 20);
        fs::create_dir(root.join(at).join("sub")).unwrap();
        write(&root.join(at).join("sub/small"), 100);
    }
    // A file from another filesystem bind-mounted over a file.
    fs::write(root.join("top-mnt/source"), b"bound").unwrap();
    let covered = root.join("qwe/projects/covered");
    let bind = MsFlags::MS_BIND;
    mount(
        Some(&root.join("top-mnt/source")),
        &covered,
        None::<&str>,
        bind,
        None::<&str>,
    )
    .unwrap();
    mounts.push(Mounted(covered));

    let after = run_scan(root, Some("qwe"));
    assert!(after.unreadable.is_empty(), "{:?}", after.unreadable);
    assert_matches_du(root, Some("qwe"), &after, &[]);
    let row = |report: &ScanReport, p: &str| {
        let found = report.rows.iter().find(|r| r.path == Path::new(p));
        found.unwrap().clone()
    };
    // qwe loses its two mount-point directories and the covered file, and gains nothing.
    assert_eq!(row(&after, "qwe").files, row(&before, "qwe").files - 3);
    assert!(row(&after, "qwe").bytes < row(&before, "qwe").bytes);
    // A row that is a mount point counts its own filesystem, but not the one mounted inside.
    assert_eq!(row(&after, "qwe/mnt").files, 4);
    assert_eq!(row(&after, "top-mnt").files, 5);
    drop(mounts);
}

#[test]
fn a_walk_of_one_filesystem_leaves_mount_points_and_skipped_entries_out() {
    assert_private_mount_namespace();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    build_tree(root);
    for dir in ["skipped", "qwe/skipped"] {
        fs::create_dir_all(root.join(dir)).unwrap();
        write(&root.join(dir).join("file"), 5000);
    }
    let mut mounts = Vec::new();
    // A mount point at the top level and one in the expanded directory, each a row.
    for at in ["top-mnt", "qwe/mnt"] {
        mounts.push(mount_tmpfs(&root.join(at)));
        write(&root.join(at).join("big"), 3 << 20);
    }
    let skip = [PathBuf::from("skipped"), PathBuf::from("qwe/skipped")];
    let walk = Walk {
        expand: Some(OsStr::new("qwe")),
        one_filesystem: true,
        skip: &skip,
    };
    let report = scan_walk(root, &walk, &|_| {}, &AtomicBool::new(false)).unwrap();
    let row = |p: &str| report.rows.iter().find(|r| r.path == Path::new(p)).cloned();
    // The mount points keep their rows, with nothing counted in them.
    for at in ["top-mnt", "qwe/mnt"] {
        let found = row(at).unwrap();
        assert_eq!((found.bytes, found.files), (0, 0), "{at}");
    }
    assert_eq!(row("skipped"), None);
    assert_eq!(row("qwe/skipped"), None);
    // Every other row is what du -x gives; qwe lacks the skipped directory and its file.
    let full = run_scan(root, Some("qwe"));
    let qwe = |rows: &[nixos_lifeboat::exec::scan::SizeRow]| {
        rows.iter()
            .find(|r| r.path == Path::new("qwe"))
            .unwrap()
            .files
    };
    assert_eq!(qwe(&report.rows), qwe(&full.rows) - 2);
    for r in &report.rows {
        if !["top-mnt", "qwe/mnt", "qwe"]
            .map(Path::new)
            .contains(&r.path.as_path())
        {
            assert_eq!(Some(r), full.rows.iter().find(|f| f.path == r.path));
        }
    }
    drop(mounts);
}

/// Capabilities are per thread and inherited by the threads it spawns: without the DAC ones,
/// root is refused by mode bits like anyone else. `du` runs under setpriv for the same view.
fn set_dac_override(on: bool) {
    const CAP_DAC_OVERRIDE: u32 = 1;
    const CAP_DAC_READ_SEARCH: u32 = 2;
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut header = Header {
        version: 0x2008_0522,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget/capset read and write exactly these two version-3 structs.
    unsafe {
        assert_eq!(
            libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()),
            0
        );
        let dac = (1 << CAP_DAC_OVERRIDE) | (1 << CAP_DAC_READ_SEARCH);
        data[0].effective = if on {
            data[0].effective | dac
        } else {
            data[0].effective & !dac
        };
        assert_eq!(
            libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()),
            0
        );
    }
}

#[test]
fn unreadable_directories_are_reported_and_still_count_themselves() {
    let tmp = tempfile::tempdir().unwrap();
    let u = tmp.path().join("u");
    for dir in ["no-read", "no-search/inner", "ok"] {
        fs::create_dir_all(u.join(dir)).unwrap();
    }
    write(&u.join("no-read/hidden"), 50_000);
    write(&u.join("no-search/unstatable"), 50_000);
    write(&u.join("ok/fine"), 50_000);
    fs::set_permissions(u.join("no-read"), fs::Permissions::from_mode(0o300)).unwrap();
    fs::set_permissions(u.join("no-search"), fs::Permissions::from_mode(0o600)).unwrap();

    set_dac_override(false);
    let result = scan(
        tmp.path(),
        Some(OsStr::new("u")),
        &|_| {},
        &AtomicBool::new(false),
    );
    set_dac_override(true);
    let report = result.unwrap();
    let setpriv = [
        "setpriv",
        "--inh-caps=-all",
        "--bounding-set=-dac_override,-dac_read_search",
    ];
    assert_matches_du(tmp.path(), Some("u"), &report, &setpriv);
    let unreadable = report.unreadable;
    let paths: Vec<&Path> = unreadable.iter().map(|(p, _)| p.as_path()).collect();
    assert_eq!(
        paths,
        ["u/no-read", "u/no-search/inner", "u/no-search/unstatable"].map(Path::new)
    );
    assert!(
        unreadable
            .iter()
            .all(|(_, why)| *why == nix::errno::Errno::EACCES),
        "{unreadable:?}"
    );
}

#[test]
fn a_set_cancel_flag_stops_the_scan() {
    let tmp = tempfile::tempdir().unwrap();
    build_tree(tmp.path());
    let result = scan(
        tmp.path(),
        Some(OsStr::new("qwe")),
        &|_| {},
        &AtomicBool::new(true),
    );
    assert!(matches!(result, Err(ScanError::Cancelled)), "{result:?}");
}

#[test]
fn progress_ends_at_the_inodes_of_the_top_level_rows() {
    let tmp = tempfile::tempdir().unwrap();
    build_tree(tmp.path());
    for i in 0..200 {
        let dir = tmp.path().join(format!("qwe/projects/many/{i}"));
        fs::create_dir_all(&dir).unwrap();
        for j in 0..50 {
            fs::File::create(dir.join(j.to_string())).unwrap();
        }
    }
    let seen = Mutex::new(Vec::new());
    let last_rows = Mutex::new(Vec::new());
    let report = scan(
        tmp.path(),
        Some(OsStr::new("qwe")),
        &|p| {
            seen.lock().unwrap().push(p.files);
            *last_rows.lock().unwrap() = p.rows();
        },
        &AtomicBool::new(false),
    )
    .unwrap();
    let seen = seen.into_inner().unwrap();
    let last_rows = last_rows.into_inner().unwrap();
    assert!(last_rows.iter().all(|r| !r.walking), "{last_rows:?}");
    assert_eq!(
        last_rows.into_iter().map(|r| r.row).collect::<Vec<_>>(),
        report.rows,
        "the last progress report has the final rows"
    );
    let top = report.top_level_files();
    assert!(top > 10_000);
    assert!(!seen.is_empty());
    assert!(seen.iter().all(|&n| n <= top), "{seen:?} > {top}");
    assert_eq!(seen.last(), Some(&top));
}

/// Build `levels` nested directories `d` under `base` with *at calls (the paths pass PATH_MAX),
/// each with a small file and a few empty side directories.
fn deep_chain(base: &Path, levels: usize, sides: usize) {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let mode = Mode::from_bits_truncate(0o755);
    let mut dir: OwnedFd = open(base, flags, Mode::empty()).unwrap();
    for level in 0..levels {
        mkdirat(&dir, "d", mode).unwrap();
        dir = openat(&dir, "d", flags, Mode::empty()).unwrap();
        for side in 0..sides {
            mkdirat(&dir, format!("side{side}").as_str(), mode).unwrap();
        }
        let create = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_CLOEXEC;
        let file = openat(&dir, "f", create, Mode::from_bits_truncate(0o644)).unwrap();
        fs::File::from(file)
            .write_all(&vec![7u8; level % 9000])
            .unwrap();
    }
}

#[test]
fn a_tree_ten_thousand_levels_deep_matches_du() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir(tmp.path().join("deep")).unwrap();
    deep_chain(&tmp.path().join("deep"), 10_000, 0);
    write(&tmp.path().join("beside"), 10);
    let report = run_scan(tmp.path(), Some("deep"));
    assert!(report.unreadable.is_empty(), "{:?}", report.unreadable);
    assert_matches_du(tmp.path(), Some("deep"), &report, &[]);
    assert_eq!(report.rows[1].files, 1 + 10_000 * 2);
}

/// With few descriptors allowed, pending directories are reopened by their path (in chunks, as
/// the paths pass PATH_MAX) instead of from a kept parent descriptor: the totals stay exact.
#[test]
fn a_low_descriptor_limit_still_matches_du() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir(tmp.path().join("comb")).unwrap();
    deep_chain(&tmp.path().join("comb"), 2_500, 3);
    let set_limit = |soft: libc::rlim_t, hard: libc::rlim_t| {
        let limit = libc::rlimit {
            rlim_cur: soft,
            rlim_max: hard,
        };
        // SAFETY: setrlimit reads the struct. The limit is process-wide: nextest runs each test
        // in a process of its own, and the old limit is back as soon as the scan is done.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
    };
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut old) }, 0);
    assert!(old.rlim_max >= 100);
    set_limit(100, old.rlim_max);
    let report = scan(
        tmp.path(),
        Some(OsStr::new("comb")),
        &|_| {},
        &AtomicBool::new(false),
    );
    set_limit(old.rlim_cur, old.rlim_max);
    let report = report.unwrap();
    assert!(report.unreadable.is_empty(), "{:?}", report.unreadable);
    assert_matches_du(tmp.path(), Some("comb"), &report, &[]);
}

/// A directory too large for one worker: its stats are shared out in batches, and the hard links
/// among them (and to a second row) still count once per row.
#[test]
fn a_large_directory_matches_du() {
    let tmp = tempfile::tempdir().unwrap();
    let big = tmp.path().join("qwe/big");
    fs::create_dir_all(&big).unwrap();
    fs::create_dir(tmp.path().join("qwe/other")).unwrap();
    for i in 0..6000 {
        let file = big.join(format!("file-{i:05}-{}", "n".repeat(40)));
        match i % 10 {
            0 if i > 0 => fs::hard_link(
                big.join(format!("file-{:05}-{}", i - 10, "n".repeat(40))),
                &file,
            )
            .unwrap(),
            1 => write(&file, 9000),
            2 => symlink("target", &file).unwrap(),
            3 => fs::create_dir(&file).unwrap(),
            _ => write(&file, i % 5000),
        }
        if i % 100 == 5 {
            fs::hard_link(&file, tmp.path().join(format!("qwe/other/{i}"))).unwrap();
        }
    }
    let report = run_scan(tmp.path(), Some("qwe"));
    assert!(report.unreadable.is_empty(), "{:?}", report.unreadable);
    assert_matches_du(tmp.path(), Some("qwe"), &report, &[]);
}
