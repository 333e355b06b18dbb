//! `measure`: disk usage and file count per top-level entry and per entry of the home.

use std::ffi::OsStr;
use std::path::Path;

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
        ScanError::Io { .. } => Outcome::Failed(format!("cannot scan the volume: {e}")),
    })?;
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
        ctx.output(format!("could not read {}: {why}", shown(path)));
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
