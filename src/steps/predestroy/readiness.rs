//! The verdict of the last `predestroy --refresh`: kept in the state directory for the
//! wizard's home screen ("last readiness check: 5 h ago — ready"), and written in
//! Prometheus' text format for node_exporter's textfile collector, so that a fleet alerts
//! on `lifeboat_ready == 0` or a stale timestamp with the monitoring it already runs.

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::exec::atomic::write_atomic;
use crate::exec::host::space;
use crate::summary::PredestroyDetails;

/// The verdict's file in the state directory.
pub const FILE: &str = "readiness.json";
/// The metrics file in `[metrics].dir` (node_exporter reads `*.prom`).
pub const METRICS_FILE: &str = "lifeboat.prom";

/// What one refresh concluded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Readiness {
    /// Unix seconds.
    pub checked_at: i64,
    pub ready: bool,
    /// `step: why` for each blocker.
    pub blockers: Vec<String>,
}

impl Readiness {
    /// The verdict of `details`, now.
    pub fn of(details: &PredestroyDetails) -> Readiness {
        Readiness {
            checked_at: jiff::Timestamp::now().as_second(),
            ready: details.ready,
            blockers: details
                .blockers
                .iter()
                .map(|b| format!("{}: {}", b.step, b.why))
                .collect(),
        }
    }
}

/// Keep `readiness` in the state directory and, with `[metrics].dir`, write the metrics;
/// the lines to report.
pub fn record(cfg: &Config, readiness: &Readiness) -> Vec<String> {
    let mut said = Vec::new();
    let state = cfg.state.dir.join(FILE);
    let kept = serde_json::to_vec(readiness)
        .map_err(io::Error::other)
        .and_then(|json| write_atomic(&state, &json, 0o600));
    if let Err(e) = kept {
        said.push(format!(
            "cannot keep the verdict in {}: {e}",
            state.display()
        ));
    }
    if let Some(metrics) = &cfg.metrics {
        let path = metrics.dir.join(METRICS_FILE);
        let used = cfg
            .volumes
            .first()
            .map(|v| (v.mount.as_path(), space(&v.mount).ok().map(|s| s.used)));
        match write_atomic(&path, metrics_text(readiness, used).as_bytes(), 0o644) {
            Ok(()) => said.push(format!("wrote the readiness metrics to {}", path.display())),
            Err(e) => said.push(format!("cannot write the metrics {}: {e}", path.display())),
        }
    }
    said
}

/// The last refresh's verdict, when there was one.
pub fn load(state_dir: &Path) -> Option<Readiness> {
    let bytes = std::fs::read(state_dir.join(FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The verdict in Prometheus' text exposition format.
pub fn metrics_text(readiness: &Readiness, volume: Option<(&Path, Option<u64>)>) -> String {
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, samples: &[(String, String)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    gauge(
        "lifeboat_ready",
        "1 when the last predestroy --refresh found this VPS safe to destroy, else 0.",
        &[(String::new(), u8::from(readiness.ready).to_string())],
    );
    gauge(
        "lifeboat_blockers",
        "What keeps this VPS from being safe to destroy, as the last refresh counted it.",
        &[(String::new(), readiness.blockers.len().to_string())],
    );
    gauge(
        "lifeboat_last_refresh_timestamp_seconds",
        "When the last predestroy --refresh ran (Unix time).",
        &[(String::new(), readiness.checked_at.to_string())],
    );
    if let Some((mount, Some(used))) = volume {
        gauge(
            "lifeboat_volume_used_bytes",
            "Bytes in use on the volume that holds the data.",
            &[(
                format!(
                    "{{mount=\"{}\"}}",
                    label_value(&mount.display().to_string())
                ),
                used.to_string(),
            )],
        );
    }
    out
}

/// A label value with `\`, `"` and newlines escaped, as the format wants.
fn label_value(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// "5 h ago — ready", "2 d ago — not ready: 2 blockers", for the home screen.
pub fn describe(readiness: &Readiness, now: i64) -> String {
    let ago = now.saturating_sub(readiness.checked_at).max(0);
    let ago = match ago {
        s if s < 120 => format!("{s} s"),
        s if s < 2 * 3600 => format!("{} min", s / 60),
        s if s < 2 * 86_400 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86_400),
    };
    if readiness.ready {
        format!("{ago} ago — ready")
    } else {
        format!("{ago} ago — not ready: {}", readiness.blockers.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text format's rules lifeboat's file must keep: every sample's metric declared by
    /// a TYPE line before it, names and values well formed, label values quoted.
    fn parse(text: &str) -> Vec<(String, f64)> {
        let mut typed = Vec::new();
        let mut samples = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(["gauge", "counter"].contains(&kind), "{line}");
                typed.push(name.to_string());
            } else if line.starts_with("# HELP ") {
            } else {
                let (series, value) = line.rsplit_once(' ').unwrap();
                let name = series.split('{').next().unwrap();
                assert!(
                    name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "{line}"
                );
                assert!(typed.iter().any(|t| t == name), "no TYPE before {line}");
                if let Some(labels) = series.strip_prefix(name)
                    && !labels.is_empty()
                {
                    assert!(labels.starts_with('{') && labels.ends_with("\"}"), "{line}");
                }
                samples.push((name.to_string(), value.parse().unwrap()));
            }
        }
        samples
    }

    #[test]
    fn the_metrics_parse_and_hold_the_verdict() {
        let readiness = Readiness {
            checked_at: 1_796_600_000,
            ready: false,
            blockers: vec!["config-repo-pushed: 1 commit not pushed".into()],
        };
        let text = metrics_text(&readiness, Some((Path::new("/home"), Some(4096))));
        let samples = parse(&text);
        assert_eq!(
            samples,
            [
                ("lifeboat_ready".to_string(), 0.0),
                ("lifeboat_blockers".to_string(), 1.0),
                (
                    "lifeboat_last_refresh_timestamp_seconds".to_string(),
                    1_796_600_000.0
                ),
                ("lifeboat_volume_used_bytes".to_string(), 4096.0),
            ]
        );
        assert!(text.contains("lifeboat_volume_used_bytes{mount=\"/home\"} 4096"));
    }

    #[test]
    fn the_home_screen_line_says_how_long_ago_and_what() {
        let ready = Readiness {
            checked_at: 1000,
            ready: true,
            blockers: Vec::new(),
        };
        assert_eq!(describe(&ready, 1000 + 5 * 3600), "5 h ago — ready");
        let not = Readiness {
            ready: false,
            blockers: vec!["backup: no target".into()],
            ..ready
        };
        assert_eq!(
            describe(&not, 1030),
            "30 s ago — not ready: backup: no target"
        );
    }
}
