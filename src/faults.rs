//! Fault injection for the reliability tests: `LIFEBOAT_FAULT=pause:<step>` makes a run
//! wait before that step until it is interrupted or killed, and `LIFEBOAT_FAULT=panic:<step>`
//! makes it panic there, so a test can stop lifeboat at a known point and check that
//! nothing is left behind. Without the variable these are no-ops.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

const VARIABLE: &str = "LIFEBOAT_FAULT";

#[derive(Debug, PartialEq, Eq)]
enum Fault {
    Pause(String),
    Panic(String),
}

fn parse(value: &str) -> Option<Fault> {
    match value.split_once(':')? {
        ("pause", step) => Some(Fault::Pause(step.to_string())),
        ("panic", step) => Some(Fault::Panic(step.to_string())),
        _ => None,
    }
}

fn configured() -> Option<&'static Fault> {
    static FAULT: OnceLock<Option<Fault>> = OnceLock::new();
    FAULT
        .get_or_init(|| std::env::var(VARIABLE).ok().as_deref().and_then(parse))
        .as_ref()
}

/// Called before each step runs.
pub fn before_step(step: &str, cancel: &AtomicBool) {
    match configured() {
        Some(Fault::Pause(at)) if at == step => {
            while !cancel.load(Ordering::Relaxed) {
                thread::sleep(Duration::from_millis(10));
            }
        }
        Some(Fault::Panic(at)) if at == step => panic!("{VARIABLE}: panic before {step}"),
        _ => {}
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
        assert_eq!(parse("explode:measure"), None);
        assert_eq!(parse("measure"), None);
    }
}
