//! `measure`: disk usage and file count per top-level entry and per entry of the home.

use std::ffi::OsStr;
use std::path::Path;

use nix::errno::Errno;

use serde::Serialize;

use crate::escape::shown;
use crate::exec::scan::{self, ScanError, ScanReport};
use crate::flow::Outcome;
use crate::report::Unit;

use super::StepContext;

/// A row of the size tree as the summary reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TreeRow {
    /// Relative to the volume root, escaped (`qwe/nix`).
    pub path: String,
    pub bytes: u64,
    pub files: u64,
}

/// Scan `root`, expanding the user's home, with progress events and Ctrl-C honoured.
pub fn measure(
    root: &Path,
    user: Option<&str>,
    ctx: &StepContext,
) -> Result<(Vec<TreeRow>, Outcome), Outcome> {
    let report: ScanReport = scan::scan(
        root,
        user.map(OsStr::new),
        &|files| ctx.progress(files, None, Unit::Files),
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
    let rows: Vec<TreeRow> = report
        .rows
        .iter()
        .map(|r| TreeRow {
            path: shown(&r.path),
            bytes: r.bytes,
            files: r.files,
        })
        .collect();
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

#[cfg(test)]
mod tests {
    use super::*;

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
