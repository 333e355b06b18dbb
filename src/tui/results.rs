//! What inspect found, from its summary (`volume`, `layout`, `tree`), and the size tree's
//! navigation. Pure state.

use std::collections::BTreeSet;

use crate::exec::scan::PartialRow;
use crate::summary::{FlowDetails, LayoutReport, TreeRow, VolumeSummary};

/// How the size tree is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    Size,
    Name,
}

/// The size tree: top-level entries, the ones with children expandable. A row is `qwe` at
/// the top, `qwe/nix` below it; before the summary, some may still be walking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SizeTree {
    rows: Vec<PartialRow<TreeRow>>,
    pub sort: SortBy,
    expanded: BTreeSet<String>,
    pub selected: usize,
}

/// A row as the tree shows it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisibleRow<'a> {
    pub row: &'a TreeRow,
    /// Still being walked: the figures so far, which will grow (never in the summary).
    pub walking: bool,
    pub depth: usize,
    /// `Some(open)` for a row with children.
    pub expanded: Option<bool>,
}

/// Everything inspect's summary carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InspectResults {
    pub volume: Option<VolumeSummary>,
    pub layout: Option<LayoutReport>,
    pub tree: SizeTree,
}

impl InspectResults {
    /// What inspect's summary found; `None` when it found none of it (another flow, or a
    /// run that stopped before identifying the volume).
    pub fn from_details(details: &FlowDetails) -> Option<InspectResults> {
        let FlowDetails::Inspect(found) = details else {
            return None;
        };
        if found.volume.is_none() && found.layout.is_none() && found.tree.is_none() {
            return None;
        }
        let rows = found.tree.iter().flatten().cloned().map(PartialRow::walked);
        Some(InspectResults {
            volume: found.volume.clone(),
            layout: found.layout.clone(),
            tree: SizeTree::new(rows.collect()),
        })
    }

    /// The tree as the walk has grown it, before the summary brings identity and layout.
    pub fn growing(rows: Vec<PartialRow<TreeRow>>) -> InspectResults {
        InspectResults {
            volume: None,
            layout: None,
            tree: SizeTree::new(rows),
        }
    }

    /// [`InspectResults::from_details`], keeping how the operator arranged the tree that
    /// grew during the walk (sort, open rows, selection).
    pub fn after_summary(
        details: &FlowDetails,
        growing: Option<InspectResults>,
    ) -> Option<InspectResults> {
        let mut results = InspectResults::from_details(details)?;
        if let Some(growing) = growing {
            let rows = std::mem::take(&mut results.tree.rows);
            results.tree = growing.tree;
            results.tree.replace_rows(rows);
        }
        Some(results)
    }
}

impl SizeTree {
    /// Sorted by size, the children of the expanded entry (the user's home) shown.
    pub fn new(rows: Vec<PartialRow<TreeRow>>) -> SizeTree {
        let mut tree = SizeTree {
            rows,
            sort: SortBy::Size,
            expanded: BTreeSet::new(),
            selected: 0,
        };
        if let Some(parent) = tree.visible().iter().find(|r| r.expanded.is_some()) {
            let path = parent.row.path.clone();
            tree.expanded.insert(path);
        }
        tree
    }

    /// New figures for the tree (the walk went on): the order follows them, the selection
    /// stays on its row.
    pub fn replace_rows(&mut self, rows: Vec<PartialRow<TreeRow>>) {
        let current = self.selected_path();
        self.rows = rows;
        self.select(current);
    }

    /// Top-level entries still being walked.
    pub fn walking(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| r.walking && !r.row.path.contains('/'))
            .count()
    }

    /// Top-level entries.
    pub fn top_level(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| !r.row.path.contains('/'))
            .count()
    }

    fn selected_path(&self) -> Option<String> {
        self.visible()
            .get(self.selected)
            .map(|r| r.row.path.clone())
    }

    /// Select the row at `path` if it is shown; else keep the index, within the rows.
    fn select(&mut self, path: Option<String>) {
        let visible = self.visible();
        let found = path.and_then(|p| visible.iter().position(|r| r.row.path == p));
        self.selected = found.unwrap_or(self.selected.min(visible.len().saturating_sub(1)));
    }

    /// The sum of the top-level rows: the bars' 100 %.
    pub fn total_bytes(&self) -> u64 {
        self.rows
            .iter()
            .map(|r| &r.row)
            .filter(|r| !r.path.contains('/'))
            .map(|r| r.bytes)
            .sum()
    }

    /// The rows in display order: each top-level entry, then its children when expanded.
    pub fn visible(&self) -> Vec<VisibleRow<'_>> {
        let mut top: Vec<&PartialRow<TreeRow>> = self
            .rows
            .iter()
            .filter(|r| !r.row.path.contains('/'))
            .collect();
        self.order(&mut top);
        let mut out = Vec::new();
        for top in top {
            let prefix = format!("{}/", top.row.path);
            let mut children: Vec<&PartialRow<TreeRow>> = self
                .rows
                .iter()
                .filter(|r| r.row.path.starts_with(&prefix))
                .collect();
            let open = self.expanded.contains(&top.row.path);
            out.push(VisibleRow {
                row: &top.row,
                walking: top.walking,
                depth: 0,
                expanded: (!children.is_empty()).then_some(open),
            });
            if open {
                self.order(&mut children);
                out.extend(children.into_iter().map(|child| VisibleRow {
                    row: &child.row,
                    walking: child.walking,
                    depth: 1,
                    expanded: None,
                }));
            }
        }
        out
    }

    fn order(&self, rows: &mut [&PartialRow<TreeRow>]) {
        match self.sort {
            SortBy::Size => rows.sort_by(|a, b| {
                b.row
                    .bytes
                    .cmp(&a.row.bytes)
                    .then(a.row.path.cmp(&b.row.path))
            }),
            SortBy::Name => rows.sort_by(|a, b| a.row.path.cmp(&b.row.path)),
        }
    }

    /// Select the row above.
    pub fn up(&mut self) {
        self.selected = self.selected.saturating_sub(1);
    }

    /// Select the row below.
    pub fn down(&mut self) {
        self.selected = (self.selected + 1).min(self.visible().len().saturating_sub(1));
    }

    /// Open or close the selected row's children; on a child, close its parent.
    pub fn toggle(&mut self) {
        let Some(row) = self
            .visible()
            .get(self.selected)
            .map(|r| r.row.path.clone())
        else {
            return;
        };
        let parent = row.split('/').next().unwrap_or_default().to_string();
        if !self.expanded.remove(&parent) {
            self.expanded.insert(parent.clone());
        }
        if let Some(at) = self.visible().iter().position(|r| r.row.path == parent) {
            self.selected = at;
        }
    }

    /// Size, then name; the selection stays on its row.
    pub fn cycle_sort(&mut self) {
        let current = self.selected_path();
        self.sort = match self.sort {
            SortBy::Size => SortBy::Name,
            SortBy::Name => SortBy::Size,
        };
        self.select(current);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::InspectDetails;

    fn row(path: &str, bytes: u64) -> PartialRow<TreeRow> {
        PartialRow::walked(TreeRow {
            path: path.into(),
            bytes,
            files: 1,
        })
    }

    fn paths(tree: &SizeTree) -> Vec<&str> {
        tree.visible().iter().map(|r| r.row.path.as_str()).collect()
    }

    #[test]
    fn the_largest_entry_opens_and_children_follow_their_parent() {
        let tree = SizeTree::new(vec![
            row("lost+found", 16),
            row("qwe", 900),
            row("qwe/nix", 800),
            row("qwe/.ssh", 4),
            row("qwe/projects", 96),
        ]);
        assert_eq!(
            paths(&tree),
            ["qwe", "qwe/nix", "qwe/projects", "qwe/.ssh", "lost+found"]
        );
        assert_eq!(tree.total_bytes(), 916);
    }

    #[test]
    fn sorting_by_name_keeps_the_selected_row() {
        let mut tree = SizeTree::new(vec![row("b", 1), row("a", 5), row("c", 3)]);
        tree.down();
        assert_eq!(paths(&tree)[tree.selected], "c");
        tree.cycle_sort();
        assert_eq!(paths(&tree), ["a", "b", "c"]);
        assert_eq!(paths(&tree)[tree.selected], "c");
    }

    #[test]
    fn toggling_a_child_closes_its_parent() {
        let mut tree = SizeTree::new(vec![row("qwe", 9), row("qwe/nix", 8)]);
        tree.down();
        tree.toggle();
        assert_eq!(paths(&tree), ["qwe"]);
        assert_eq!(tree.selected, 0);
        tree.toggle();
        assert_eq!(paths(&tree), ["qwe", "qwe/nix"]);
    }

    fn walking(path: &str, bytes: u64) -> PartialRow<TreeRow> {
        PartialRow {
            walking: true,
            ..row(path, bytes)
        }
    }

    #[test]
    fn a_growing_tree_reorders_and_the_selection_stays_on_its_row() {
        let mut tree = SizeTree::new(vec![walking("a", 5), walking("b", 3), row("c", 1)]);
        tree.down();
        assert_eq!(paths(&tree)[tree.selected], "b");
        assert_eq!(tree.walking(), 2);
        tree.replace_rows(vec![row("a", 6), walking("b", 9), row("c", 1)]);
        assert_eq!(paths(&tree), ["b", "a", "c"]);
        assert_eq!(paths(&tree)[tree.selected], "b");
        assert_eq!(tree.walking(), 1);
    }

    #[test]
    fn the_summary_keeps_the_arrangement_of_the_grown_tree() {
        let mut growing = InspectResults::growing(vec![
            walking("qwe", 5),
            walking("qwe/nix", 4),
            row("lost+found", 16),
        ]);
        assert_eq!(paths(&growing.tree), ["lost+found", "qwe", "qwe/nix"]);
        growing.tree.cycle_sort();
        growing.tree.down();
        let tree_row = |path: &str, bytes, files| TreeRow {
            path: path.into(),
            bytes,
            files,
        };
        let details = FlowDetails::Inspect(InspectDetails {
            tree: Some(vec![
                tree_row("lost+found", 16, 1),
                tree_row("qwe", 900, 9),
                tree_row("qwe/nix", 800, 8),
            ]),
            ..InspectDetails::default()
        });
        let results = InspectResults::after_summary(&details, Some(growing)).unwrap();
        assert_eq!(results.tree.sort, SortBy::Name);
        assert_eq!(paths(&results.tree)[results.tree.selected], "qwe");
        assert_eq!(results.tree.walking(), 0);
        assert_eq!(results.tree.total_bytes(), 916);
    }
}
