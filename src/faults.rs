//! Fault injection for the reliability tests, so a test can stop lifeboat at a known point
//! and check that nothing is left behind. `LIFEBOAT_FAULT` holds one fault:
//!
//! - `pause:<step>`: wait before that step until the run is interrupted or killed;
//! - `panic:<step>`: panic before that step;
//! - `pause-in:<point>[@<step>]`: wait *inside* an operation, the first time `<point>` is
//!   reached (with `@<step>`, only once that step has begun), until SIGINT, SIGTERM or
//!   SIGHUP arrives or the process is killed. It says `LIFEBOAT_FAULT: paused in <point>`
//!   on stderr when it waits. The points are listed at [`Point`].
//!
//! All of this is compiled only with the `fault-injection` cargo feature, which the tests
//! turn on (`scripts/test.sh`). Without it, as lifeboat is built and shipped, every hook is
//! an empty inline function that the compiler removes: `LIFEBOAT_FAULT` is never read.
//! With it and without the variable, a hook costs one `OnceLock` read, so hooks can sit on
//! hot paths such as the scan.

use std::ffi::OsStr;

#[cfg(feature = "fault-injection")]
pub use injected::{before_step, pause_in};

/// Called before each step runs. Built without `fault-injection`: nothing.
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn before_step(_step: &str, _cancel: &std::sync::atomic::AtomicBool) {}

/// Called where the work passes `point`. Built without `fault-injection`: nothing.
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn pause_in(_point: Point<'_>) {}

/// A place inside an operation where `pause-in:<point>` stops a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point<'a> {
    /// `scan`: the measuring walk has counted some entries.
    Scan,
    /// `git-transfer`: a clone or fetch has received objects, before it checks anything out.
    GitTransfer,
    /// `copy`: a copying command (rsync, `nix copy`) has started and printed something.
    Copy,
    /// `activation`: a command that must not be stopped half-way (`nixos-rebuild boot`)
    /// has started and printed something.
    Activation,
    /// `half-write:<file name>`: half of an atomically written file's temporary is written.
    HalfWrite(&'a OsStr),
    /// `write:<file name>`: the temporary is written whole and synced, not yet renamed.
    Write(&'a OsStr),
}

/// The real hooks, built with the `fault-injection` feature.
#[cfg(feature = "fault-injection")]
mod injected {
    use std::ffi::OsStr;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, OnceLock};
    use std::thread;
    use std::time::Duration;

    use super::Point;

    const VARIABLE: &str = "LIFEBOAT_FAULT";

    #[derive(Debug, PartialEq, Eq)]
    enum Fault {
        Pause(String),
        Panic(String),
        PauseIn {
            point: String,
            after: Option<String>,
        },
    }

    impl Point<'_> {
        fn is(&self, name: &str) -> bool {
            let file = |prefix: &str| name.strip_prefix(prefix).map(OsStr::new);
            match self {
                Point::Scan => name == "scan",
                Point::GitTransfer => name == "git-transfer",
                Point::Copy => name == "copy",
                Point::Activation => name == "activation",
                Point::HalfWrite(f) => file("half-write:") == Some(f),
                Point::Write(f) => file("write:") == Some(f),
            }
        }
    }

    fn parse(value: &str) -> Option<Fault> {
        match value.split_once(':')? {
            ("pause", step) => Some(Fault::Pause(step.to_string())),
            ("panic", step) => Some(Fault::Panic(step.to_string())),
            ("pause-in", spec) => {
                let (point, after) = match spec.rsplit_once('@') {
                    Some((point, step)) => (point, Some(step.to_string())),
                    None => (spec, None),
                };
                Some(Fault::PauseIn {
                    point: point.to_string(),
                    after,
                })
            }
            _ => None,
        }
    }

    fn configured() -> Option<&'static Fault> {
        static FAULT: OnceLock<Option<Fault>> = OnceLock::new();
        FAULT
            .get_or_init(|| std::env::var(VARIABLE).ok().as_deref().and_then(parse))
            .as_ref()
    }

    /// The `@<step>` of a `pause-in` fault has begun.
    static STEP_BEGUN: AtomicBool = AtomicBool::new(false);
    /// The `pause-in` point was reached once; later arrivals pass.
    static FIRED: AtomicBool = AtomicBool::new(false);

    /// Called before each step runs.
    pub fn before_step(step: &str, cancel: &AtomicBool) {
        match configured() {
            Some(Fault::Pause(at)) if at == step => {
                while !cancel.load(Ordering::Relaxed) {
                    thread::sleep(Duration::from_millis(10));
                }
            }
            Some(Fault::Panic(at)) if at == step => panic!("{VARIABLE}: panic before {step}"),
            Some(Fault::PauseIn {
                after: Some(at), ..
            }) if at == step => {
                STEP_BEGUN.store(true, Ordering::SeqCst);
            }
            _ => {}
        }
    }

    /// Called where the work passes `point`.
    pub fn pause_in(point: Point<'_>) {
        let Some(Fault::PauseIn { point: at, after }) = configured() else {
            return;
        };
        let armed = after.is_none() || STEP_BEGUN.load(Ordering::SeqCst);
        if point.is(at) && armed && !FIRED.swap(true, Ordering::SeqCst) {
            wait_for_signal(at);
        }
    }

    /// Wait until one of the signals that cancel a run arrives; the run's own handlers see it
    /// too, so it goes on as an interrupted run would.
    fn wait_for_signal(point: &str) {
        let signalled = Arc::new(AtomicBool::new(false));
        for signal in [
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGHUP,
        ] {
            // Registration fails only for forbidden signals, which these are not.
            let _ = signal_hook::flag::register(signal, Arc::clone(&signalled));
        }
        eprintln!("{VARIABLE}: paused in {point}");
        while !signalled.load(Ordering::Relaxed) {
            thread::sleep(Duration::from_millis(10));
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn fault_specs_parse() {
            assert_eq!(parse("pause:measure"), Some(Fault::Pause("measure".into())));
            assert_eq!(
                parse("panic:check-layout"),
                Some(Fault::Panic("check-layout".into()))
            );
            assert_eq!(
                parse("pause-in:write:journal.json@build"),
                Some(Fault::PauseIn {
                    point: "write:journal.json".into(),
                    after: Some("build".into())
                })
            );
            assert_eq!(
                parse("pause-in:scan"),
                Some(Fault::PauseIn {
                    point: "scan".into(),
                    after: None
                })
            );
            assert_eq!(parse("explode:measure"), None);
            assert_eq!(parse("measure"), None);
        }

        #[test]
        fn points_match_their_names_only() {
            assert!(Point::Scan.is("scan"));
            assert!(Point::Copy.is("copy"));
            assert!(Point::GitTransfer.is("git-transfer"));
            let card = OsStr::new("recovery.toml");
            assert!(Point::Write(card).is("write:recovery.toml"));
            assert!(Point::HalfWrite(card).is("half-write:recovery.toml"));
            assert!(!Point::Write(card).is("half-write:recovery.toml"));
            assert!(!Point::Write(card).is("write:journal.json"));
            assert!(!Point::Scan.is("copy"));
        }
    }
}
