//! The diffs a run produced (the generated hardware config against the committed one),
//! which one is open, how far it is scrolled, and what each line is, for its colour. Pure.

use crate::report::FileDiff;

/// The diffs of a run, the latest per step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diffs(Vec<(&'static str, FileDiff)>);

impl Diffs {
    /// Keep `diff` as `step`'s, in place of an earlier one (a step asked again).
    pub fn insert(&mut self, step: &'static str, diff: FileDiff) {
        match self.0.iter_mut().find(|(s, _)| *s == step) {
            Some(entry) => entry.1 = diff,
            None => self.0.push((step, diff)),
        }
    }

    pub fn get(&self, step: &str) -> Option<&FileDiff> {
        self.0.iter().find(|(s, _)| *s == step).map(|(_, d)| d)
    }
}

/// The diff view, open over the flow screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiffView {
    pub step: &'static str,
    /// The first line shown.
    pub scroll: usize,
}

/// What a line of a unified diff is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    /// `--- committed` / `+++ generated`, before the first hunk.
    File,
    /// `@@ -1,3 +1,4 @@`, and notes such as `\ No newline at end of file`.
    Hunk,
    Added,
    Removed,
    Context,
}

/// The kind of each of `lines`. A removed line that reads `--- x` is still a removal:
/// file headers come only before the first hunk.
pub fn kinds(lines: &[String]) -> Vec<LineKind> {
    let mut in_hunk = false;
    lines
        .iter()
        .map(|line| {
            if line.starts_with("@@") {
                in_hunk = true;
                LineKind::Hunk
            } else if !in_hunk && (line.starts_with("---") || line.starts_with("+++")) {
                LineKind::File
            } else if line.starts_with('+') {
                LineKind::Added
            } else if line.starts_with('-') {
                LineKind::Removed
            } else if line.starts_with('\\') {
                LineKind::Hunk
            } else {
                LineKind::Context
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_told_apart_by_position_not_only_prefix() {
        let lines: Vec<String> = [
            "--- committed",
            "+++ generated",
            "@@ -1,2 +1,2 @@",
            " a",
            "--- x",
            "+b",
            "\\ No newline at end of file",
        ]
        .map(String::from)
        .to_vec();
        use LineKind::*;
        assert_eq!(
            kinds(&lines),
            [File, File, Hunk, Context, Removed, Added, Hunk]
        );
    }

    #[test]
    fn a_step_that_asks_again_replaces_its_diff() {
        let diff = |line: &str| FileDiff {
            file: "f".into(),
            lines: vec![line.into()],
        };
        let mut diffs = Diffs::default();
        diffs.insert("hardware-config", diff("+a"));
        diffs.insert("hardware-config", diff("+b"));
        assert_eq!(diffs.get("hardware-config"), Some(&diff("+b")));
        assert_eq!(diffs.get("boot"), None);
    }
}
