//! `backup`: an rsync of the home to `[backup].rsync_target`, keeping hard links, ACLs,
//! xattrs and numeric ids, and never deleting anything at the target.

use crate::escape::{escape_bytes, shown};
use crate::exec::process::{self, CommandSpec, ProcessError};
use crate::flow::Outcome;
use crate::report::Unit;
use crate::steps::context::StepContext;

use super::settings::Settings;

/// rsync's "some files vanished before they could be transferred": a live home changes.
const VANISHED: i32 = 24;

/// The exact rsync command.
pub fn command(settings: &Settings, target: &str) -> CommandSpec {
    let source = format!("{}/", settings.home.display());
    CommandSpec::new(
        "rsync",
        [
            "--archive",
            "--hard-links",
            "--acls",
            "--xattrs",
            "--numeric-ids",
            "--info=progress2",
            "--no-inc-recursive",
            &source,
            target,
        ],
    )
    .package("rsync")
    .copies()
}

/// Run the backup with progress in bytes.
pub fn run(settings: &Settings, target: &str, ctx: &StepContext) -> Outcome {
    let spec = command(settings, target);
    let mut on_line = |line: process::Line<'_>| {
        if let Some((done, total)) = progress(line.bytes) {
            ctx.progress(done, total, Unit::Bytes);
        }
    };
    match ctx.run_streaming(&spec, &mut on_line) {
        Ok(finished) if finished.status.success() => Outcome::Passed(format!(
            "{} copied to {}",
            shown(&settings.home),
            escape_bytes(target.as_bytes())
        )),
        Ok(finished) if finished.code() == Some(VANISHED) => Outcome::Warning(format!(
            "copied to {}, but some files vanished while rsync ran (the home is in use); run \
             predestroy again when it is quiet",
            escape_bytes(target.as_bytes())
        )),
        Ok(finished) => Outcome::Failed(
            finished
                .ensure_success()
                .map_or_else(|e| e.to_string(), |_| String::new()),
        ),
        Err(ProcessError::Cancelled { .. }) => Outcome::Interrupted,
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

/// Bytes done and, from the percentage, the total, from an `--info=progress2` line such as
/// `  1,234,567  45%  10.00MB/s  0:00:01 (xfr#5, to-chk=10/20)`. rsync separates updates
/// with carriage returns; the last complete one counts.
fn progress(line: &[u8]) -> Option<(u64, Option<u64>)> {
    let text = String::from_utf8_lossy(line);
    text.split('\r').rev().find_map(|update| {
        let mut fields = update.split_whitespace();
        let done: u64 = fields.next()?.replace(',', "").parse().ok()?;
        let percent: u64 = fields.next()?.strip_suffix('%')?.parse().ok()?;
        let total = (percent > 0).then(|| done * 100 / percent);
        Some((done, total))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress2_updates_are_read() {
        let line = b"\r          32,768   0%    0.00kB/s    0:00:00  \r      1,000,000  50%   10.00MB/s    0:00:01 (xfr#5, to-chk=10/20)";
        assert_eq!(progress(line), Some((1_000_000, Some(2_000_000))));
        assert_eq!(progress(b"sending incremental file list"), None);
        assert_eq!(progress(b"  0  0%  0.00kB/s"), Some((0, None)));
    }

    #[test]
    fn the_command_never_deletes() {
        let settings = super::super::settings::example();
        let spec = command(&settings, "backup:/b/");
        let argv = spec.argv();
        assert!(argv.iter().all(|a| !a.contains("delete")));
        assert_eq!(&argv[argv.len() - 2..], ["/home/qwe/", "backup:/b/"]);
    }
}
