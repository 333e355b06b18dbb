//! `measure`: disk usage and file count per top-level entry and per entry of the home.

use std::ffi::OsStr;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::errno::Errno;

use crate::escape::shown;
use crate::exec::scan::{self, PartialRow, ScanError, ScanProgress, ScanReport, SizeRow};
use crate::flow::Outcome;
use crate::report::Unit;
use crate::summary::TreeRow;

use super::context::StepContext;

/// How often the growing tree goes to the front end: often enough to watch, seldom enough
/// that a walk of 200,000 files sends a few dozen trees, not thousands.
const TREE_EVERY: Duration = Duration::from_millis(100);

/// Scan `root`, expanding the user's home, with progress events, the tree as it grows, and
/// Ctrl-C honoured.
pub fn measure(
    root: &Path,
    user: Option<&str>,
    ctx: &StepContext,
) -> Result<(Vec<TreeRow>, Outcome), Outcome> {
    let last_tree = Mutex::new(None);
    let report: ScanReport = scan::scan(
        root,
        user.map(OsStr::new),
        &|progress| {
            ctx.progress(progress.files, None, Unit::Files);
            if due(&last_tree) {
                ctx.partial_tree(&partial_tree(progress));
            }
        },
        ctx.cancel,
    )
    .map_err(|e| match e {
        ScanError::Cancelled => Outcome::Interrupted,
        ScanError::Io {
            ref path,
            ref source,
        } => match source.raw_os_error().map(Errno::from_raw) {
            Some(errno) if device_failed(errno) => Outcome::Failed(device_failure(path, errno, 0)),
            _ => Outcome::Failed(format!("cannot scan the volume: {e}")),
        },
    })?;
    if let Some((path, errno)) = report.unreadable.iter().find(|(_, e)| device_failed(*e)) {
        let more = report.unreadable.len() - 1;
        return Err(Outcome::Failed(device_failure(
            &root.join(path),
            *errno,
            more,
        )));
    }
    let rows: Vec<TreeRow> = report.rows.iter().map(tree_row).collect();
    let finished: Vec<PartialRow<TreeRow>> = rows.iter().cloned().map(PartialRow::walked).collect();
    ctx.partial_tree(&finished);
    let largest = rows
        .iter()
        .filter(|r| !r.path.contains('/'))
        .max_by_key(|r| r.bytes);
    let summary = match largest {
        Some(r) => format!(
            "{} entries measured; the largest is {} ({}, {} files)",
            rows.len(),
            r.path,
            super::identify::human_bytes(r.bytes),
            r.files
        ),
        None => "the volume is empty".to_string(),
    };
    for (path, why) in report.unreadable.iter().take(20) {
        ctx.output(format!("could not read {}: {}", shown(path), why.desc()));
    }
    let outcome = if report.unreadable.is_empty() {
        Outcome::Passed(summary)
    } else {
        Outcome::Warning(format!(
            "{summary}; {} entries could not be read, so the figures are lower bounds",
            report.unreadable.len()
        ))
    };
    Ok((rows, outcome))
}

/// Errors that say the device failed, not one entry: the volume went away or its disk is
/// failing, so no figure can be trusted.
fn device_failed(errno: Errno) -> bool {
    matches!(errno, Errno::EIO | Errno::ENXIO | Errno::ENODEV)
}

/// What a device failing under the walk means, and what to do.
fn device_failure(path: &Path, errno: Errno, more: usize) -> String {
    let more = match more {
        0 => String::new(),
        n => format!(", and {n} more entries could not be read"),
    };
    format!(
        "the device stopped answering while the volume was read: {}: {} ({errno:?}){more}. \
         The figures would be wrong, so none are given. The volume may have been detached, \
         or its disk is failing: check `dmesg` and the volume's attachment (`hcloud volume \
         describe`). Copy what matters off it before anything else, and do not write to it \
         or run fsck on it until it is copied",
        shown(path),
        errno.desc()
    )
}

fn tree_row(row: &SizeRow) -> TreeRow {
    TreeRow {
        path: shown(&row.path),
        bytes: row.bytes,
        files: row.files,
    }
}

/// The tree as far as the walk has come, for the wizard to show it growing.
fn partial_tree(progress: &ScanProgress<'_>) -> Vec<PartialRow<TreeRow>> {
    progress
        .rows()
        .iter()
        .map(|partial| partial.map(tree_row))
        .collect()
}

/// Whether [`TREE_EVERY`] has passed since the last tree went out (and note that one goes now).
fn due(last: &Mutex<Option<Instant>>) -> bool {
    let mut last = last
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let due = last.is_none_or(|at| at.elapsed() >= TREE_EVERY);
    if due {
        *last = Some(Instant::now());
    }
    due
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use super::*;
    use crate::flow::{InspectStep, StepId};
    use crate::journal::Journal;
    use crate::report::Event;
    use crate::steps::context::{EventSink, JournalHandle};

    /// Keeps the trees; drops the events.
    #[derive(Default)]
    struct Trees(Mutex<Vec<Vec<PartialRow<TreeRow>>>>);

    impl EventSink for Trees {
        fn emit(&self, _: &Event) {}

        fn partial_tree(&self, rows: &[PartialRow<TreeRow>]) {
            self.0.lock().unwrap().push(rows.to_vec());
        }
    }

    #[test]
    fn the_last_tree_sent_is_the_final_one_with_nothing_walking() {
        let tmp = tempfile::tempdir().unwrap();
        for dir in ["qwe/nix/store", "qwe/projects", "srv"] {
            std::fs::create_dir_all(tmp.path().join(dir)).unwrap();
            std::fs::write(tmp.path().join(dir).join("f"), [0u8; 9000]).unwrap();
        }
        let sink = Trees::default();
        let cancel = AtomicBool::new(false);
        let journal = JournalHandle::new(Journal::new("inspect", "test".into(), None), None);
        let ctx = StepContext {
            flow: "inspect",
            step: StepId::Inspect(InspectStep::Measure),
            sink: &sink,
            cancel: &cancel,
            dry_run: false,
            journal: &journal,
        };
        let (rows, _) = measure(tmp.path(), Some("qwe"), &ctx).unwrap();
        let trees = sink.0.into_inner().unwrap();
        let last = trees.last().expect("a tree was sent");
        assert!(last.iter().all(|r| !r.walking), "{last:?}");
        let last: Vec<TreeRow> = last.iter().map(|r| r.row.clone()).collect();
        assert_eq!(last, rows);
        assert!(rows.iter().any(|r| r.path == "qwe/nix"), "{rows:?}");
    }

    #[test]
    fn a_failing_device_is_named_with_the_path_and_the_error() {
        let message = device_failure(Path::new("/mnt/data/qwe/src"), Errno::EIO, 3);
        assert!(
            message.contains("/mnt/data/qwe/src: I/O error (EIO), and 3 more"),
            "{message}"
        );
        assert!(device_failed(Errno::EIO) && !device_failed(Errno::EACCES));
    }
}
