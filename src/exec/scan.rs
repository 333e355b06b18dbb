//! Parallel size walk of a mounted tree, with the semantics of `du -sB1 -x`.
//!
//! One walk feeds every row. Each directory is a work item that a pool of threads (several per
//! core: a freshly mounted volume is cold, and blocked lookups want company) opens with `openat`
//! relative to its parent's descriptor, lists with raw `getdents64`, and `fstatat`s entry by
//! entry in inode order, never following symlinks. Subdirectories are not stat'ed by the lister:
//! the worker that opens one `fstat`s it. A busy worker hands the older half of its pending
//! directories, or part of a large listing's stats, to the queue when another worker is idle.
//!
//! Each inode is counted once per row, like `du` does per argument: only inodes with more than
//! one link are remembered, in a set keyed by (device, inode, row). A row keeps to the device of
//! its own entry (`du -x` from that entry), so a mount point below a row counts in no row above it.
//!
//! While the walk goes on, each worker adds what it counted for a directory to its rows' shared
//! totals once it is done with that directory, and every row counts the directories still waiting
//! in it: a row whose count is back to zero is final. The progress callback reads those, so a
//! front end can show the rows growing ([`ScanProgress::rows`]).
//!
//! Descriptors stay bounded: a directory's descriptor lives only while some of its
//! subdirectories wait to be opened, and past a budget (about half the soft `RLIMIT_NOFILE`) children
//! are reopened by their path from the root instead, in `openat2` chunks that refuse symlinks.
//! Nothing recurses, so depth only costs the memory of the pending items' name chains.

use std::collections::HashSet;
use std::ffi::{CStr, OsStr};
use std::hash::{BuildHasherDefault, Hasher};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::{Acquire, Release};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag, openat, openat2};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat};

/// Disk usage of one reported entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SizeRow {
    /// Relative to the scanned root, e.g. `qwe/nix`.
    pub path: PathBuf,
    /// Allocated bytes (`st_blocks * 512`), each inode once: equals `du -sB1 -x <root>/<path>`.
    pub bytes: u64,
    /// Inodes counted: equals `du --inodes -sx <root>/<path>`.
    pub files: u64,
}

/// The result of a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanReport {
    /// One row per top-level entry of the root, and one per entry under `expand` when given.
    /// Sorted by path (component-wise, so `qwe/nix` follows `qwe`).
    pub rows: Vec<SizeRow>,
    /// Entries that could not be read (path relative to root, and the error); the scan goes
    /// on past them. A directory that cannot be opened still counts itself, as with `du`.
    /// Sorted by path. The errno tells a denied entry from a failing device (EIO).
    pub unreadable: Vec<(PathBuf, Errno)>,
}

impl ScanReport {
    /// Inodes counted in the top-level rows: the final count the progress callback sees.
    pub fn top_level_files(&self) -> u64 {
        self.rows
            .iter()
            .filter(|r| r.path.components().count() == 1)
            .map(|r| r.files)
            .sum()
    }
}

/// How far a walk has come, as the progress callback sees it.
pub struct ScanProgress<'a> {
    /// Inodes counted in the top-level rows so far.
    pub files: u64,
    rows: Option<&'a LiveRows>,
}

impl ScanProgress<'_> {
    /// Every row with what has been counted in it so far, in path order (empty until the root
    /// has been listed). Built on request: a caller that does not want the rows pays nothing.
    pub fn rows(&self) -> Vec<PartialRow> {
        let Some(live) = self.rows else {
            return Vec::new();
        };
        let mut rows: Vec<PartialRow> = live
            .paths
            .iter()
            .zip(&live.counts)
            .map(|(path, count)| {
                // Acquire: a row seen walked shows every directory's figures added before it.
                let walking = count.pending.load(Acquire) != 0;
                PartialRow {
                    row: SizeRow {
                        path: path.clone(),
                        bytes: count.bytes.load(Relaxed),
                        files: count.files.load(Relaxed),
                    },
                    walking,
                }
            })
            .collect();
        rows.sort_by(|a, b| a.row.path.cmp(&b.row.path));
        rows
    }
}

/// A row while the walk goes on: its figures never exceed the final ones and equal them
/// once it is no longer `walking`. `R` is the row as the walk has it ([`SizeRow`]) or as
/// it is shown (the summary's tree row, its path escaped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartialRow<R = SizeRow> {
    pub row: R,
    /// Directories under the row are still being walked: its figures will still grow.
    pub walking: bool,
}

impl<R> PartialRow<R> {
    /// A row whose walk is over.
    pub fn walked(row: R) -> PartialRow<R> {
        PartialRow {
            row,
            walking: false,
        }
    }

    /// The same row in another shape.
    pub fn map<S>(&self, shape: impl FnOnce(&R) -> S) -> PartialRow<S> {
        PartialRow {
            row: shape(&self.row),
            walking: self.walking,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("scan cancelled")]
    Cancelled,
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Walk `root` without following symlinks or leaving its filesystem.
/// `progress` sees how far the walk has come (called from worker threads, at most about every
/// 50 ms, and once at the end with the final figures, no row walking any more).
pub fn scan(
    root: &Path,
    expand: Option<&OsStr>,
    progress: &(dyn Fn(&ScanProgress<'_>) + Sync),
    cancel: &AtomicBool,
) -> Result<ScanReport, ScanError> {
    let walk = Walk {
        expand,
        ..Walk::default()
    };
    scan_reporting_every(root, &walk, progress, cancel, PROGRESS_EVERY)
}

/// What a walk takes: the rows of [`scan`], and optionally fewer.
#[derive(Debug, Clone, Copy, Default)]
pub struct Walk<'a> {
    /// The directory (an entry of the root) whose entries get rows of their own too.
    pub expand: Option<&'a OsStr>,
    /// Every row keeps to the root's own filesystem: an entry of the root (or of the expanded
    /// directory) that is a mount point counts nothing and is not walked. Without it, each row
    /// keeps to the filesystem of its own entry (`du -x` from that entry).
    pub one_filesystem: bool,
    /// Entries of the root or of the expanded directory (relative paths such as `proc` or
    /// `lib/systemd`) that get no row and are not walked.
    pub skip: &'a [PathBuf],
}

/// [`scan`] as `walk` says.
pub fn scan_walk(
    root: &Path,
    walk: &Walk<'_>,
    progress: &(dyn Fn(&ScanProgress<'_>) + Sync),
    cancel: &AtomicBool,
) -> Result<ScanReport, ScanError> {
    scan_reporting_every(root, walk, progress, cancel, PROGRESS_EVERY)
}

/// [`scan_walk`], reporting progress at most every `every`.
fn scan_reporting_every(
    root: &Path,
    walk: &Walk<'_>,
    progress: &(dyn Fn(&ScanProgress<'_>) + Sync),
    cancel: &AtomicBool,
    every: Duration,
) -> Result<ScanReport, ScanError> {
    let io_err = |errno: Errno| ScanError::Io {
        path: root.to_path_buf(),
        source: errno.into(),
    };
    let expand = walk.expand;
    let threads = worker_threads();
    let root_fd = nix::fcntl::open(root, ROOT_FLAGS, Mode::empty()).map_err(io_err)?;
    let device = if walk.one_filesystem {
        Some(fstat(&root_fd).map_err(io_err)?.st_dev)
    } else {
        None
    };
    let shared = Shared {
        device,
        skip: walk.skip,
        root: Arc::new(DirFd {
            fd: root_fd,
            hold: Hold::Root,
        }),
        budget: Arc::new(FdBudget {
            held: AtomicUsize::new(0),
            limit: fd_budget(threads),
        }),
        links: LinkSet::new(),
        cancel,
        progress: Throttle::new(progress, every),
        live: OnceLock::new(),
    };

    // The root and the expanded directory are listed here, alone, because their entries make rows.
    let mut rows = Vec::new();
    let mut first = Worker::new(&shared);
    let root_dir = Arc::clone(&shared.root);
    let split = Some(Split::new(&mut rows, true));
    first
        .list(&root_dir, None, Rows::default(), split)
        .map_err(io_err)?;
    if let Some(name) = expand {
        let found = first.stack.iter().position(|work| {
            matches!(work, Work::Dir(item)
                if item.node.parent.is_none() && item.node.name.to_bytes() == name.as_bytes())
        });
        if let Some(Work::Dir(item)) = found.map(|pos| first.stack.swap_remove(pos)) {
            first.visit(item, Some(Split::new(&mut rows, false)));
        }
    }
    shared
        .live
        .get_or_init(|| LiveRows::new(rows, &mut first.totals, &first.stack));
    shared.counted(std::mem::take(&mut first.counted));

    let pool = Pool::new(threads, std::mem::take(&mut first.stack));
    let mut workers = run_pool(&shared, &pool).map_err(|e| ScanError::Io {
        path: root.to_path_buf(),
        source: e,
    })?;
    if cancel.load(Relaxed) {
        return Err(ScanError::Cancelled);
    }
    workers.push(first);
    progress(&shared.snapshot());
    let unreadable = workers.into_iter().flat_map(|w| w.unreadable).collect();
    Ok(merge(shared.live.into_inner(), unreadable))
}

/// Cold caches want more blocking lookups in flight than there are cores.
fn worker_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    (cores * THREADS_PER_CORE).clamp(2, MAX_THREADS)
}

/// Directory descriptors that may be kept open for pending children: half of the soft limit
/// left after each worker's own few (the one it lists, and two while reopening by path).
fn fd_budget(threads: usize) -> usize {
    let soft = usize::try_from(open_files_limit()).unwrap_or(usize::MAX);
    (soft.saturating_sub(3 * threads + 32) / 2).min(8192)
}

/// The soft `RLIMIT_NOFILE`, or the traditional 1024 when it cannot be read.
fn open_files_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 1024,
        rlim_max: 1024,
    };
    // SAFETY: getrlimit writes one `rlimit` into the struct we pass and reads nothing else.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    if rc == 0 { limit.rlim_cur } else { 1024 }
}

/// Blocking lookups in flight per core: a freshly mounted volume is all cold cache, and on a
/// 2-core machine 16 threads walked a cold ext4 fastest, while warm walks cost no more CPU.
const THREADS_PER_CORE: usize = 8;
const MAX_THREADS: usize = 64;
/// Bytes handed to one `getdents64` call.
const DIRENT_BUF: usize = 64 * 1024;
/// Longest path given to one `openat2` when reopening by path (PATH_MAX is 4096 with the NUL).
const PATH_CHUNK: usize = 4000;
const PROGRESS_EVERY: Duration = Duration::from_millis(50);
const LINK_SHARDS: usize = 64;
const DT_UNKNOWN: u8 = 0;
const DT_DIR: u8 = 4;
/// A `getdents` batch is shared with idle workers only when each gets at least this many stats.
const SHARE_MIN: usize = 64;

/// Start the workers over `pool` and wait for them all; a thread that cannot start stops the rest.
fn run_pool<'s>(shared: &'s Shared<'s>, pool: &'s Pool) -> std::io::Result<Vec<Worker<'s>>> {
    std::thread::scope(|scope| {
        let mut handles = Vec::with_capacity(pool.threads);
        let mut failure = None;
        for i in 0..pool.threads {
            let spawned = std::thread::Builder::new()
                .name(format!("scan-{i}"))
                .spawn_scoped(scope, move || {
                    let mut worker = Worker::new(shared);
                    worker.pool = Some(pool);
                    worker.run();
                    worker
                });
            match spawned {
                Ok(handle) => handles.push(handle),
                Err(e) => {
                    pool.stop();
                    failure = Some(e);
                    break;
                }
            }
        }
        let workers = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect();
        failure.map_or(Ok(workers), Err)
    })
}

/// The rows' final totals and the errors, in path order.
fn merge(live: Option<LiveRows>, mut unreadable: Vec<(PathBuf, Errno)>) -> ScanReport {
    let mut rows: Vec<SizeRow> = live
        .map(|live| {
            live.paths
                .into_iter()
                .zip(live.counts)
                .map(|(path, count)| SizeRow {
                    path,
                    bytes: count.bytes.into_inner(),
                    files: count.files.into_inner(),
                })
                .collect()
        })
        .unwrap_or_default();
    rows.sort_by(|a, b| a.path.cmp(&b.path));
    unreadable.sort_by(|a, b| a.0.cmp(&b.0));
    ScanReport { rows, unreadable }
}

/// The root itself may be reached through a symlink (it is the caller's path); nothing below it is.
const ROOT_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_CLOEXEC);
const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);
const PATH_FLAGS: OFlag = OFlag::O_PATH
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

/// State every worker reads.
struct Shared<'a> {
    /// The root's device, when every row keeps to it.
    device: Option<u64>,
    /// Entries that make no row and are not walked.
    skip: &'a [PathBuf],
    root: Arc<DirFd>,
    budget: Arc<FdBudget>,
    links: LinkSet,
    cancel: &'a AtomicBool,
    progress: Throttle<'a>,
    /// The rows' shared totals, set once the root (and the expanded directory) are listed.
    live: OnceLock<LiveRows>,
}

impl Shared<'_> {
    /// Add to the progress count, and report when it is due.
    fn counted(&self, n: u64) {
        if self.progress.add(n) {
            (self.progress.report)(&self.snapshot());
        }
    }

    fn snapshot(&self) -> ScanProgress<'_> {
        ScanProgress {
            files: self.progress.total.load(Relaxed),
            rows: self.live.get(),
        }
    }

    /// A directory or a batch of stats is about to wait in `rows`.
    fn pending(&self, rows: Rows) {
        if let Some(live) = self.live.get() {
            for r in rows.iter() {
                if let Some(count) = live.counts.get(r.index()) {
                    count.pending.fetch_add(1, Relaxed);
                }
            }
        }
    }
}

/// Every row's path and its totals so far, shared by the workers.
struct LiveRows {
    paths: Vec<PathBuf>,
    counts: Vec<LiveCount>,
}

#[derive(Default)]
struct LiveCount {
    bytes: AtomicU64,
    files: AtomicU64,
    /// Directories and stat batches of this row not yet done.
    pending: AtomicUsize,
}

impl LiveRows {
    /// The rows as the first listing left them: its totals, and its pending directories.
    fn new(paths: Vec<PathBuf>, totals: &mut Vec<Totals>, stack: &[Work]) -> LiveRows {
        let counts: Vec<LiveCount> = paths.iter().map(|_| LiveCount::default()).collect();
        for (count, t) in counts.iter().zip(totals.drain(..)) {
            count.bytes.store(t.bytes, Relaxed);
            count.files.store(t.files, Relaxed);
        }
        for work in stack {
            for r in work.rows().iter() {
                if let Some(count) = counts.get(r.index()) {
                    count.pending.fetch_add(1, Relaxed);
                }
            }
        }
        LiveRows { paths, counts }
    }
}

/// Counts descriptors kept open for pending children, so wide or deep trees cannot exhaust them.
struct FdBudget {
    held: AtomicUsize,
    limit: usize,
}

impl FdBudget {
    fn try_reserve(&self) -> bool {
        if self.held.fetch_add(1, Relaxed) < self.limit {
            true
        } else {
            self.held.fetch_sub(1, Relaxed);
            false
        }
    }
}

/// Whether a directory descriptor may be handed to its children.
enum Hold {
    Root,
    Reserved(Arc<FdBudget>),
    Private,
}

/// An open directory; children open relative to it while it is shared.
struct DirFd {
    fd: OwnedFd,
    hold: Hold,
}

impl DirFd {
    fn for_children(self: &Arc<Self>) -> Option<Arc<Self>> {
        match self.hold {
            Hold::Private => None,
            Hold::Root | Hold::Reserved(_) => Some(Arc::clone(self)),
        }
    }
}

impl Drop for DirFd {
    fn drop(&mut self) {
        if let Hold::Reserved(budget) = &self.hold {
            budget.held.fetch_sub(1, Relaxed);
        }
    }
}

/// A directory's name and its parent's, for error paths and for reopening by path.
struct PathNode {
    parent: Option<Arc<PathNode>>,
    name: Box<CStr>,
}

impl PathNode {
    /// Names from the root's child down to this node.
    fn chain(&self) -> Vec<&CStr> {
        let mut names = Vec::new();
        let mut node = Some(self);
        while let Some(n) = node {
            names.push(&*n.name);
            node = n.parent.as_deref();
        }
        names.reverse();
        names
    }
}

/// Unlink the chain iteratively: a directory 10,000 levels down must not drop recursively.
impl Drop for PathNode {
    fn drop(&mut self) {
        let mut next = self.parent.take();
        while let Some(node) = next.and_then(Arc::into_inner) {
            let mut node = node;
            next = node.parent.take();
        }
    }
}

/// Path relative to the root of `name` inside the directory `node` (the root when `None`).
fn relative_path(node: Option<&PathNode>, name: Option<&CStr>) -> PathBuf {
    let mut path = PathBuf::new();
    for part in node
        .map(PathNode::chain)
        .unwrap_or_default()
        .into_iter()
        .chain(name)
    {
        path.push(OsStr::from_bytes(part.to_bytes()));
    }
    path
}

/// What a worker does next: a directory to walk, or part of a large listing to stat.
enum Work {
    Dir(Item),
    Stats(StatBatch),
}

impl Work {
    /// The rows this work counts toward (and keeps pending until it is done).
    fn rows(&self) -> Rows {
        match self {
            Work::Dir(item) => item.rows,
            Work::Stats(batch) => batch.rows,
        }
    }
}

/// Names from one directory listing, to `fstatat` and count.
struct StatBatch {
    dir: Arc<DirFd>,
    node: Option<Arc<PathNode>>,
    rows: Rows,
    /// NUL-terminated names, one after the other.
    names: Vec<u8>,
}

impl StatBatch {
    fn new<'n>(
        dir: &Arc<DirFd>,
        node: Option<&Arc<PathNode>>,
        rows: Rows,
        names: impl Iterator<Item = &'n CStr>,
    ) -> Self {
        let mut bytes = Vec::new();
        for name in names {
            bytes.extend_from_slice(name.to_bytes_with_nul());
        }
        StatBatch {
            dir: Arc::clone(dir),
            node: node.cloned(),
            rows,
            names: bytes,
        }
    }
}

/// A directory waiting to be opened, listed and counted.
struct Item {
    node: Arc<PathNode>,
    /// Open relative to this; `None` when the parent's descriptor was not kept (reopen by path).
    parent: Option<Arc<DirFd>>,
    rows: Rows,
}

/// A row an entry counts toward, and the device `du -x` keeps to for it (set by the row's own entry).
#[derive(Clone, Copy, Default)]
struct RowRef {
    id: u32,
    dev: Option<u64>,
    top: bool,
}

impl RowRef {
    fn index(self) -> usize {
        usize::try_from(self.id).unwrap_or(usize::MAX)
    }
}

/// The rows an entry counts toward: its top-level row and, under `expand`, its second-level row.
#[derive(Clone, Copy, Default)]
struct Rows {
    refs: [RowRef; 2],
    len: usize,
}

impl Rows {
    /// Add the row `id`, keeping to `dev` when given (else to its own entry's device).
    fn with(mut self, id: u32, top: bool, dev: Option<u64>) -> Self {
        if let Some(slot) = self.refs.get_mut(self.len) {
            *slot = RowRef { id, dev, top };
            self.len += 1;
        }
        self
    }

    /// The rows an entry on `dev` stays in; a row that has no device yet takes this one.
    fn on_dev(self, dev: u64) -> Self {
        let mut kept = Rows::default();
        for r in self.iter() {
            if r.dev.is_none_or(|d| d == dev) {
                kept.refs[kept.len] = RowRef {
                    dev: Some(dev),
                    ..r
                };
                kept.len += 1;
            }
        }
        kept
    }

    fn iter(&self) -> impl Iterator<Item = RowRef> + '_ {
        self.refs.iter().take(self.len).copied()
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// While listing the root or the expanded directory: every entry starts a row.
struct Split<'p> {
    paths: &'p mut Vec<PathBuf>,
    top: bool,
}

impl<'p> Split<'p> {
    fn new(paths: &'p mut Vec<PathBuf>, top: bool) -> Self {
        Split { paths, top }
    }
}

#[derive(Clone, Copy, Default)]
struct Totals {
    bytes: u64,
    files: u64,
}

/// Inodes with several links already counted, per row, like `du`'s hash of (device, inode).
struct LinkSet {
    shards: Vec<Mutex<LinkShard>>,
}

/// (device, inode, row) of multiply-linked inodes already counted.
type LinkShard = HashSet<(u64, u64, u32), BuildHasherDefault<FxHasher>>;

impl LinkSet {
    fn new() -> Self {
        LinkSet {
            shards: (0..LINK_SHARDS).map(|_| Mutex::default()).collect(),
        }
    }

    /// True the first time this inode is seen for this row.
    fn insert(&self, dev: u64, ino: u64, row: u32) -> bool {
        let mix = (ino ^ u64::from(row)).wrapping_mul(FX_SEED) >> 58;
        let shard = &self.shards[usize::try_from(mix).unwrap_or(0) % LINK_SHARDS];
        lock(shard).insert((dev, ino, row))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

/// The multiply-rotate hash rustc uses: the keys are integers, SipHash would be wasted on them.
#[derive(Default)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(FX_SEED);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Throttled progress: a shared total, reported by whichever worker first sees `every` pass.
struct Throttle<'a> {
    report: &'a (dyn Fn(&ScanProgress<'_>) + Sync),
    total: AtomicU64,
    last_ms: AtomicU64,
    every_ms: u64,
    start: Instant,
}

impl<'a> Throttle<'a> {
    fn new(report: &'a (dyn Fn(&ScanProgress<'_>) + Sync), every: Duration) -> Self {
        Throttle {
            report,
            total: AtomicU64::new(0),
            last_ms: AtomicU64::new(0),
            every_ms: u64::try_from(every.as_millis()).unwrap_or(u64::MAX),
            start: Instant::now(),
        }
    }

    /// Add `n` to the total; true when this caller is the one to report it.
    fn add(&self, n: u64) -> bool {
        if n == 0 {
            return false;
        }
        self.total.fetch_add(n, Relaxed);
        crate::faults::pause_in(crate::faults::Point::Scan);
        let now = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.last_ms.load(Relaxed);
        now >= last.saturating_add(self.every_ms)
            && self
                .last_ms
                .compare_exchange(last, now, Relaxed, Relaxed)
                .is_ok()
    }
}

/// The shared queue idle workers take from, and busy workers give to when someone is idle.
struct Pool {
    queue: Mutex<Queue>,
    wake: Condvar,
    idle: AtomicUsize,
    threads: usize,
}

struct Queue {
    items: Vec<Work>,
    idle: usize,
    done: bool,
}

impl Pool {
    fn new(threads: usize, items: Vec<Work>) -> Self {
        Pool {
            queue: Mutex::new(Queue {
                items,
                idle: 0,
                done: false,
            }),
            wake: Condvar::new(),
            idle: AtomicUsize::new(0),
            threads: threads.max(1),
        }
    }

    /// Block until there is work, or return `None` once every worker is idle and the queue empty.
    fn take(&self) -> Option<Work> {
        let mut queue = lock(&self.queue);
        loop {
            if queue.done {
                return None;
            }
            if let Some(item) = queue.items.pop() {
                return Some(item);
            }
            queue.idle += 1;
            self.idle.store(queue.idle, Relaxed);
            if queue.idle == self.threads {
                queue.done = true;
                self.wake.notify_all();
                return None;
            }
            queue = self
                .wake
                .wait(queue)
                .unwrap_or_else(PoisonError::into_inner);
            queue.idle -= 1;
            self.idle.store(queue.idle, Relaxed);
        }
    }

    fn wants_work(&self) -> bool {
        self.idle.load(Relaxed) > 0
    }

    /// Move the older half of a worker's stack (the larger subtrees, usually) to the queue.
    fn share(&self, stack: &mut Vec<Work>) {
        let half = stack.len() / 2;
        self.give(stack.drain(..half));
    }

    fn give(&self, work: impl IntoIterator<Item = Work>) {
        lock(&self.queue).items.extend(work);
        self.wake.notify_all();
    }

    fn stop(&self) {
        lock(&self.queue).done = true;
        self.wake.notify_all();
    }
}

/// One thread's part of the walk: its pending directories, and what it counted in the current one
/// (added to the rows' shared totals when that is done).
struct Worker<'s> {
    shared: &'s Shared<'s>,
    /// Where to share work; `None` while the root is listed, before the pool starts.
    pool: Option<&'s Pool>,
    stack: Vec<Work>,
    /// The non-directories of the current `getdents` batch: inode and name offset.
    to_stat: Vec<(u64, usize)>,
    totals: Vec<Totals>,
    unreadable: Vec<(PathBuf, Errno)>,
    buf: Vec<u8>,
    /// Inodes counted in top-level rows since the last progress report.
    counted: u64,
}

impl<'s> Worker<'s> {
    fn new(shared: &'s Shared<'s>) -> Self {
        Worker {
            shared,
            pool: None,
            stack: Vec::new(),
            to_stat: Vec::new(),
            totals: Vec::new(),
            unreadable: Vec::new(),
            buf: vec![0; DIRENT_BUF],
            counted: 0,
        }
    }

    fn run(&mut self) {
        let Some(pool) = self.pool else { return };
        while let Some(work) = self.stack.pop().or_else(|| pool.take()) {
            let rows = work.rows();
            match work {
                Work::Dir(item) => self.visit(item, None),
                Work::Stats(batch) => self.stat_batch(&batch),
            }
            self.done(rows);
            self.shared.counted(std::mem::take(&mut self.counted));
            if self.shared.cancel.load(Relaxed) {
                pool.stop();
                return;
            }
            if self.stack.len() > 1 && pool.wants_work() {
                pool.share(&mut self.stack);
            }
        }
    }

    /// Add what the work just done counted to its rows, then take it off their pending count
    /// (Release: whoever sees a row walked sees these figures).
    fn done(&mut self, rows: Rows) {
        let Some(live) = self.shared.live.get() else {
            return;
        };
        for r in rows.iter() {
            let (Some(count), Some(t)) =
                (live.counts.get(r.index()), self.totals.get_mut(r.index()))
            else {
                continue;
            };
            let t = std::mem::take(t);
            if t.files > 0 {
                count.bytes.fetch_add(t.bytes, Relaxed);
                count.files.fetch_add(t.files, Relaxed);
            }
        }
        for r in rows.iter() {
            if let Some(count) = live.counts.get(r.index()) {
                count.pending.fetch_sub(1, Release);
            }
        }
    }

    fn stat_batch(&mut self, batch: &StatBatch) {
        let children_parent = Some(Arc::clone(&batch.dir));
        for name in batch.names.split_inclusive(|&b| b == 0) {
            if let Ok(name) = CStr::from_bytes_with_nul(name) {
                let node = batch.node.as_ref();
                self.entry(
                    &batch.dir,
                    node,
                    name,
                    DT_UNKNOWN,
                    batch.rows,
                    &children_parent,
                );
            }
        }
    }

    /// Open a pending directory, count it, and list it (pushing its subdirectories).
    fn visit(&mut self, item: Item, split: Option<Split<'_>>) {
        let opened = self.open(&item).and_then(|fd| Ok((fstat(&fd)?, fd)));
        let (st, fd) = match opened {
            Ok(found) => found,
            Err(errno) => return self.unopenable(&item, errno),
        };
        let rows = item.rows.on_dev(st.st_dev);
        if rows.is_empty() {
            return;
        }
        self.count(&st, rows);
        let hold = if self.shared.budget.try_reserve() {
            Hold::Reserved(Arc::clone(&self.shared.budget))
        } else {
            Hold::Private
        };
        let dir = Arc::new(DirFd { fd, hold });
        if let Err(errno) = self.list(&dir, Some(&item.node), rows, split) {
            self.note(relative_path(Some(&item.node), None), errno);
        }
    }

    fn open(&self, item: &Item) -> nix::Result<OwnedFd> {
        self.in_parent(item, |dir, name| {
            openat(dir, name, DIR_FLAGS, Mode::empty())
        })
    }

    /// A directory that would not open still counts itself when it can be stat'ed (as `du` does);
    /// one that turned into something else meanwhile is simply counted as what it is now.
    fn unopenable(&mut self, item: &Item, open_error: Errno) {
        let path = || relative_path(Some(&item.node), None);
        match self.in_parent(item, |dir, name| {
            fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
        }) {
            Ok(st) => {
                let rows = item.rows.on_dev(st.st_dev);
                if !rows.is_empty() {
                    self.count(&st, rows);
                }
                if is_dir(&st) {
                    self.note(path(), open_error);
                }
            }
            Err(errno) => self.note(path(), errno),
        }
    }

    /// Run `f` on the item's parent directory and its name, reopening the parent by path if needed.
    fn in_parent<T>(
        &self,
        item: &Item,
        f: impl FnOnce(BorrowedFd<'_>, &CStr) -> nix::Result<T>,
    ) -> nix::Result<T> {
        let name = &*item.node.name;
        match (&item.parent, &item.node.parent) {
            (Some(dir), _) => f(dir.fd.as_fd(), name),
            (None, None) => f(self.shared.root.fd.as_fd(), name),
            (None, Some(parent)) => {
                let dir = open_by_path(self.shared.root.fd.as_fd(), parent)?;
                f(dir.as_fd(), name)
            }
        }
    }

    /// List `dir`, counting its non-directories and pushing its subdirectories.
    fn list(
        &mut self,
        dir: &Arc<DirFd>,
        node: Option<&Arc<PathNode>>,
        rows: Rows,
        mut split: Option<Split<'_>>,
    ) -> nix::Result<()> {
        let children_parent = dir.for_children();
        let mut buf = std::mem::take(&mut self.buf);
        let result = loop {
            if self.shared.cancel.load(Relaxed) {
                break Ok(());
            }
            let len = match getdents(dir.fd.as_fd(), &mut buf) {
                Ok(0) => break Ok(()),
                Ok(len) => len,
                Err(errno) => break Err(errno),
            };
            let batch = buf.get(..len).unwrap_or_default();
            for entry in Dirents::new(batch) {
                if matches!(entry.name.to_bytes(), b"." | b"..") {
                    continue;
                }
                match split.as_mut() {
                    Some(s) => {
                        let path = relative_path(node.map(|n| &**n), Some(entry.name));
                        if self.shared.skip.contains(&path) {
                            continue;
                        }
                        let id = u32::try_from(s.paths.len()).unwrap_or(u32::MAX);
                        s.paths.push(path);
                        let rows = rows.with(id, s.top, self.shared.device);
                        self.entry(dir, node, entry.name, entry.d_type, rows, &children_parent);
                    }
                    None if entry.d_type == DT_DIR => {
                        self.entry(dir, node, entry.name, entry.d_type, rows, &children_parent);
                    }
                    None => self.to_stat.push((entry.ino, entry.name_at)),
                }
            }
            self.stat_listed(dir, node, rows, &children_parent, batch);
        };
        self.buf = buf;
        result
    }

    /// Stat the non-directories of one `getdents` batch in inode order (the inode table is read
    /// in order on a cold cache), handing part of them to idle workers when the batch is large.
    fn stat_listed(
        &mut self,
        dir: &Arc<DirFd>,
        node: Option<&Arc<PathNode>>,
        rows: Rows,
        children_parent: &Option<Arc<DirFd>>,
        listing: &[u8],
    ) {
        let mut to_stat = std::mem::take(&mut self.to_stat);
        to_stat.sort_unstable_by_key(|&(ino, _)| ino);
        let mut mine = to_stat.as_slice();
        if let (Some(pool), Some(shared_dir)) = (self.pool, children_parent) {
            let idle = pool.idle.load(Relaxed);
            let chunks = (idle + 1).min(mine.len() / SHARE_MIN);
            if chunks > 1 {
                let size = mine.len().div_ceil(chunks);
                let (kept, given) = mine.split_at(size);
                pool.give(given.chunks(size).map(|chunk| {
                    let names = chunk.iter().filter_map(|&(_, at)| name_at(listing, at));
                    self.shared.pending(rows);
                    Work::Stats(StatBatch::new(shared_dir, node, rows, names))
                }));
                mine = kept;
            }
        }
        for name in mine.iter().filter_map(|&(_, at)| name_at(listing, at)) {
            self.entry(dir, node, name, DT_UNKNOWN, rows, children_parent);
        }
        to_stat.clear();
        self.to_stat = to_stat;
    }

    /// Count one listed entry, or queue it when it is a directory.
    fn entry(
        &mut self,
        dir: &DirFd,
        node: Option<&Arc<PathNode>>,
        name: &CStr,
        d_type: u8,
        rows: Rows,
        children_parent: &Option<Arc<DirFd>>,
    ) {
        let shared = self.shared;
        let push = |stack: &mut Vec<Work>| {
            shared.pending(rows);
            stack.push(Work::Dir(Item {
                node: Arc::new(PathNode {
                    parent: node.cloned(),
                    name: name.into(),
                }),
                parent: children_parent.clone(),
                rows,
            }));
        };
        if d_type == DT_DIR {
            return push(&mut self.stack);
        }
        match fstatat(dir.fd.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) if is_dir(&st) => push(&mut self.stack),
            Ok(st) => {
                let rows = rows.on_dev(st.st_dev);
                if !rows.is_empty() {
                    self.count(&st, rows);
                }
            }
            Err(errno) => self.note(relative_path(node.map(|n| &**n), Some(name)), errno),
        }
    }

    /// Add an inode to each of its rows, once per row for inodes with several links.
    fn count(&mut self, st: &FileStat, rows: Rows) {
        let bytes = u64::try_from(st.st_blocks).unwrap_or(0) * 512;
        let linked = st.st_nlink > 1 && !is_dir(st);
        for row in rows.iter() {
            if linked && !self.shared.links.insert(st.st_dev, st.st_ino, row.id) {
                continue;
            }
            let index = usize::try_from(row.id).unwrap_or(usize::MAX);
            if index >= self.totals.len() {
                self.totals.resize(index + 1, Totals::default());
            }
            let t = &mut self.totals[index];
            t.bytes += bytes;
            t.files += 1;
            self.counted += u64::from(row.top);
        }
    }

    fn note(&mut self, path: PathBuf, errno: Errno) {
        self.unreadable.push((path, errno));
    }
}

fn is_dir(st: &FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFDIR
}

/// Reopen a directory (as an `O_PATH` handle) by its path from the root, a chunk at a time so no
/// single path exceeds PATH_MAX, refusing symlinks on the way.
fn open_by_path(root: BorrowedFd<'_>, node: &PathNode) -> nix::Result<OwnedFd> {
    let mut base: Option<OwnedFd> = None;
    let mut path = Vec::with_capacity(PATH_CHUNK + 256);
    for name in node.chain() {
        if !path.is_empty() && path.len() + 1 + name.to_bytes().len() > PATH_CHUNK {
            let from = base.as_ref().map_or(root, |fd| fd.as_fd());
            base = Some(open_chunk(from, &mut path)?);
            path.clear();
        }
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(name.to_bytes());
    }
    open_chunk(base.as_ref().map_or(root, |fd| fd.as_fd()), &mut path)
}

fn open_chunk(from: BorrowedFd<'_>, path: &mut Vec<u8>) -> nix::Result<OwnedFd> {
    path.push(0);
    let how = OpenHow::new()
        .flags(PATH_FLAGS)
        .resolve(ResolveFlag::RESOLVE_NO_SYMLINKS);
    let opened = CStr::from_bytes_with_nul(path)
        .map_err(|_| Errno::EINVAL)
        .and_then(|cpath| openat2(from, cpath, how));
    path.pop();
    opened
}

/// Fill `buf` with the next batch of `linux_dirent64` records; 0 at the end of the directory.
fn getdents(dir: BorrowedFd<'_>, buf: &mut [u8]) -> nix::Result<usize> {
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`, which we own mutably.
    let n = unsafe {
        libc::syscall(
            libc::SYS_getdents64,
            dir.as_raw_fd(),
            buf.as_mut_ptr(),
            buf.len(),
        )
    };
    Errno::result(n).map(|n| usize::try_from(n).unwrap_or(0))
}

/// One record of a `getdents64` batch.
struct DirEntry<'b> {
    ino: u64,
    d_type: u8,
    name: &'b CStr,
    /// Where the name starts in the batch, to find it again with [`name_at`].
    name_at: usize,
}

/// The records of a `getdents64` batch, parsed from bytes without unsafe.
struct Dirents<'b> {
    buf: &'b [u8],
    pos: usize,
}

impl<'b> Dirents<'b> {
    fn new(buf: &'b [u8]) -> Self {
        Dirents { buf, pos: 0 }
    }
}

impl<'b> Iterator for Dirents<'b> {
    type Item = DirEntry<'b>;

    fn next(&mut self) -> Option<Self::Item> {
        // struct linux_dirent64 { u64 d_ino; i64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
        let record = self.buf.get(self.pos..)?;
        let ino = u64::from_ne_bytes(record.get(..8)?.try_into().ok()?);
        let reclen = usize::from(u16::from_ne_bytes([*record.get(16)?, *record.get(17)?]));
        let record = record.get(..reclen)?;
        let entry = DirEntry {
            ino,
            d_type: *record.get(18)?,
            name: CStr::from_bytes_until_nul(record.get(19..)?).ok()?,
            name_at: self.pos + 19,
        };
        self.pos += reclen;
        Some(entry)
    }
}

fn name_at(listing: &[u8], at: usize) -> Option<&CStr> {
    CStr::from_bytes_until_nul(listing.get(at..)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Directories two levels deep in several rows, files hard-linked within and across rows.
    fn tree(root: &Path) {
        for (top, dirs) in [
            ("big", 40),
            ("qwe/nix", 25),
            ("qwe/projects", 10),
            ("small", 1),
        ] {
            for i in 0..dirs {
                let dir = root.join(format!("{top}/d{i}/e"));
                std::fs::create_dir_all(&dir).unwrap();
                for j in 0..20 {
                    std::fs::write(dir.join(format!("f{j}")), vec![7u8; 5000]).unwrap();
                }
            }
        }
        std::fs::write(root.join("top-file"), b"x").unwrap();
        std::fs::hard_link(root.join("big/d0/e/f0"), root.join("big/d1/e/link")).unwrap();
        std::fs::hard_link(root.join("big/d0/e/f1"), root.join("qwe/projects/link")).unwrap();
    }

    #[test]
    fn partial_rows_never_exceed_the_final_ones_and_end_equal_to_them() {
        let tmp = tempfile::tempdir().unwrap();
        tree(tmp.path());
        let seen = Mutex::new(Vec::new());
        let walk = Walk {
            expand: Some(OsStr::new("qwe")),
            ..Walk::default()
        };
        let report = scan_reporting_every(
            tmp.path(),
            &walk,
            &|p| seen.lock().unwrap().push((p.files, p.rows())),
            &AtomicBool::new(false),
            Duration::ZERO,
        )
        .unwrap();
        let seen = seen.into_inner().unwrap();
        let paths: Vec<&Path> = report.rows.iter().map(|r| r.path.as_path()).collect();
        assert_eq!(
            paths,
            ["big", "qwe", "qwe/nix", "qwe/projects", "small", "top-file"].map(Path::new)
        );
        let mut walking = 0;
        for (_, rows) in &seen {
            assert_eq!(rows.len(), report.rows.len());
            for (partial, last) in rows.iter().zip(&report.rows) {
                assert_eq!(partial.row.path, last.path);
                assert!(partial.row.bytes <= last.bytes, "{partial:?} > {last:?}");
                assert!(partial.row.files <= last.files, "{partial:?} > {last:?}");
                if partial.walking {
                    walking += 1;
                } else {
                    assert_eq!(&partial.row, last, "a row seen walked is final");
                }
            }
        }
        assert!(walking > 0, "no report came while rows were walked");
        let (files, rows) = seen.last().unwrap();
        assert!(rows.iter().all(|r| !r.walking));
        let last: Vec<SizeRow> = rows.iter().map(|r| r.row.clone()).collect();
        assert_eq!(last, report.rows);
        assert_eq!(*files, report.top_level_files());
    }

    #[test]
    fn dirents_parser_stops_on_truncated_records() {
        let mut rec = vec![0u8; 24];
        rec[16..18].copy_from_slice(&24u16.to_ne_bytes());
        rec[18] = DT_DIR;
        rec[19..22].copy_from_slice(b"abc");
        let mut two = rec.clone();
        two.extend_from_slice(&rec[..20]);
        let names: Vec<_> = Dirents::new(&two)
            .map(|e| (e.name.to_owned(), e.d_type, name_at(&two, e.name_at)))
            .collect();
        assert_eq!(names, vec![(c"abc".to_owned(), DT_DIR, Some(c"abc"))]);
    }
}
