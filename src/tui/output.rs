//! The live output of a run: bounded scrollback that follows the tail unless the operator
//! scrolled back, with a search over what is kept. Pure state.

use std::collections::VecDeque;

use crate::report::Stream;

use super::keys::Key;

/// How many lines are kept; older ones are dropped.
pub const SCROLLBACK: usize = 10_000;

/// The step name of lines about the run rather than one step (as the driver names them).
pub const RUN_LEVEL: &str = "summary";

/// One line of a step's output (already escaped by the step that produced it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputLine {
    pub step: &'static str,
    pub stream: Stream,
    pub text: String,
}

/// Where a search stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Search {
    Off,
    /// The operator is typing the query after `/`.
    Typing(String),
    /// The query, and the line of the current hit (if any line matches).
    Active {
        query: String,
        hit: Option<usize>,
    },
}

/// Bounded scrollback with a scroll position and a search.
#[derive(Debug, Clone)]
pub struct OutputLog {
    lines: VecDeque<OutputLine>,
    cap: usize,
    /// Lines scrolled back from the tail; 0 follows the tail.
    back: usize,
    pub search: Search,
}

impl Default for OutputLog {
    fn default() -> Self {
        OutputLog::with_capacity(SCROLLBACK)
    }
}

impl OutputLog {
    /// A log that keeps at most `cap` lines.
    pub fn with_capacity(cap: usize) -> OutputLog {
        OutputLog {
            lines: VecDeque::new(),
            cap: cap.max(1),
            back: 0,
            search: Search::Off,
        }
    }

    /// Lines kept.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// No output yet.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Lines scrolled back from the tail (0 while following it).
    pub fn back(&self) -> usize {
        self.back
    }

    /// Every line kept, oldest first.
    pub fn lines(&self) -> impl DoubleEndedIterator<Item = &OutputLine> {
        self.lines.iter()
    }

    /// The last `count` lines of `steps` and of the run itself, oldest first: what the
    /// failure view shows.
    pub fn tail_of(&self, steps: &[&str], count: usize) -> Vec<&OutputLine> {
        let mut tail: Vec<_> = self
            .lines
            .iter()
            .rev()
            .filter(|l| l.step == RUN_LEVEL || steps.contains(&l.step))
            .take(count)
            .collect();
        tail.reverse();
        tail
    }

    /// The `height` lines the pane shows, with their index in the log.
    pub fn window(&self, height: usize) -> impl Iterator<Item = (usize, &OutputLine)> {
        let end = self.lines.len().saturating_sub(self.back);
        let start = end.saturating_sub(height);
        self.lines.iter().enumerate().skip(start).take(end - start)
    }

    /// Append a line; a view scrolled back stays on the lines it shows.
    pub fn push(&mut self, step: &'static str, stream: Stream, text: String) {
        if self.lines.len() == self.cap {
            self.lines.pop_front();
            if let Search::Active { hit, .. } = &mut self.search {
                *hit = hit.and_then(|h| h.checked_sub(1));
            }
        }
        if self.back > 0 {
            self.back = (self.back + 1).min(self.cap - 1);
        }
        self.lines.push_back(OutputLine { step, stream, text });
    }

    /// PgUp: older lines (the view stops at the oldest).
    pub fn scroll_back(&mut self, by: usize) {
        self.back = (self.back + by).min(self.lines.len().saturating_sub(1));
    }

    /// PgDn: newer lines, back to the tail.
    pub fn scroll_forward(&mut self, by: usize) {
        self.back = self.back.saturating_sub(by);
    }

    /// End: show new lines as they come.
    pub fn follow_tail(&mut self) {
        self.back = 0;
    }

    /// Is the operator typing a query?
    pub fn typing(&self) -> bool {
        matches!(self.search, Search::Typing(_))
    }

    /// Is a search being typed or shown?
    pub fn searching(&self) -> bool {
        !matches!(self.search, Search::Off)
    }

    /// `/`: start typing a query.
    pub fn start_search(&mut self) {
        self.search = Search::Typing(String::new());
    }

    /// Esc: no search any more.
    pub fn clear_search(&mut self) {
        self.search = Search::Off;
    }

    /// A key while typing the query: Enter searches from the tail backwards, Esc gives up.
    pub fn search_key(&mut self, key: Key) {
        let Search::Typing(query) = &mut self.search else {
            return;
        };
        match key {
            Key::Char(c) => query.push(c),
            Key::Backspace => {
                query.pop();
            }
            Key::Esc => self.search = Search::Off,
            Key::Enter if query.is_empty() => self.search = Search::Off,
            Key::Enter => {
                let query = std::mem::take(query);
                let hit = self.find_before(&query, self.lines.len());
                self.search = Search::Active { query, hit };
                self.show_hit();
            }
            _ => {}
        }
    }

    /// The next older hit (wrapping to the newest).
    pub fn next_hit(&mut self) {
        if let Search::Active { query, hit } = &self.search {
            let from = hit.unwrap_or(self.lines.len());
            let found = self
                .find_before(query, from)
                .or_else(|| self.find_before(query, self.lines.len()));
            self.set_hit(found);
        }
    }

    /// The next newer hit (wrapping to the oldest).
    pub fn previous_hit(&mut self) {
        if let Search::Active { query, hit } = &self.search {
            let from = hit.map_or(0, |h| h + 1);
            let found = self
                .find_from(query, from)
                .or_else(|| self.find_from(query, 0));
            self.set_hit(found);
        }
    }

    /// Does line `index` match the active search?
    pub fn is_hit(&self, index: usize) -> bool {
        matches!(&self.search, Search::Active { hit: Some(h), .. } if *h == index)
    }

    fn set_hit(&mut self, found: Option<usize>) {
        if let Search::Active { hit, .. } = &mut self.search {
            *hit = found;
        }
        self.show_hit();
    }

    fn show_hit(&mut self) {
        if let Search::Active { hit: Some(h), .. } = self.search {
            self.back = self.lines.len().saturating_sub(h + 1);
        }
    }

    fn find_before(&self, query: &str, end: usize) -> Option<usize> {
        (0..end.min(self.lines.len()))
            .rev()
            .find(|&i| self.lines[i].text.contains(query))
    }

    fn find_from(&self, query: &str, start: usize) -> Option<usize> {
        (start..self.lines.len()).find(|&i| self.lines[i].text.contains(query))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_of(n: usize, cap: usize) -> OutputLog {
        let mut log = OutputLog::with_capacity(cap);
        for i in 0..n {
            log.push("measure", Stream::Stdout, format!("line {i}"));
        }
        log
    }

    fn shown(log: &OutputLog, height: usize) -> Vec<String> {
        log.window(height).map(|(_, l)| l.text.clone()).collect()
    }

    #[test]
    fn scrollback_is_bounded_and_follows_the_tail() {
        let log = log_of(25, 20);
        assert_eq!(log.len(), 20);
        assert_eq!(shown(&log, 2), ["line 23", "line 24"]);
    }

    #[test]
    fn a_view_scrolled_back_stays_put_while_lines_arrive() {
        let mut log = log_of(10, 100);
        log.scroll_back(3);
        assert_eq!(shown(&log, 2), ["line 5", "line 6"]);
        log.push("measure", Stream::Stdout, "new".into());
        assert_eq!(shown(&log, 2), ["line 5", "line 6"]);
        log.follow_tail();
        assert_eq!(shown(&log, 1), ["new"]);
    }

    #[test]
    fn search_jumps_to_the_newest_hit_then_older_ones() {
        let mut log = log_of(30, 100);
        log.start_search();
        for c in "line 1".chars() {
            log.search_key(Key::Char(c));
        }
        log.search_key(Key::Enter);
        assert!(log.is_hit(19));
        assert_eq!(shown(&log, 1), ["line 19"]);
        log.next_hit();
        assert!(log.is_hit(18));
        log.previous_hit();
        assert!(log.is_hit(19));
    }

    #[test]
    fn a_search_without_hits_keeps_the_view() {
        let mut log = log_of(5, 100);
        log.start_search();
        log.search_key(Key::Char('z'));
        log.search_key(Key::Enter);
        assert_eq!(
            log.search,
            Search::Active {
                query: "z".into(),
                hit: None
            }
        );
        assert_eq!(log.back(), 0);
    }
}
