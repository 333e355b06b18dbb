//! The one table scripts/bench.sh prints at the end: each benchmark adds its rows to the
//! file named by `LIFEBOAT_BENCH_SUMMARY` (tab-separated), when it is set.

use std::fs::OpenOptions;
use std::io::Write;

/// Add a row: what was measured, lifeboat's figure, the reference's (named), their ratio and
/// the target it is held to.
pub fn summary_row(what: &str, lifeboat: &str, reference: &str, ratio: f64, target: &str) {
    let Some(path) = std::env::var_os("LIFEBOAT_BENCH_SUMMARY") else {
        return;
    };
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open the summary");
    writeln!(
        file,
        "{what}\t{lifeboat}\t{reference}\t{ratio:.2}\t{target}"
    )
    .expect("write the summary");
}
