//! The end screen of predestroy and recover: predestroy's "ready / not ready" with what
//! to do about each blocker; what recover did and what comes next.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use crate::report::RunStatus;
use crate::summary::Blocker;
use crate::tui::end::{EndReport, RecoverEnd, Verdict, remedy};
use crate::tui::state::FlowView;
use crate::tui::theme::Theme;
use crate::tui::widgets::{safe, wrap_words};

/// The end screen in place of the steps. Every line is wrapped here, so that the screen
/// knows how far it can scroll, and records that in the report's scroll.
pub fn render(frame: &mut Frame, area: Rect, view: &FlowView, end: &EndReport, theme: Theme) {
    let text = Text {
        width: usize::from(area.width.saturating_sub(2)),
        theme,
    };
    let (title, style, body) = match &end.verdict {
        Verdict::Predestroy { ready: true, .. } => ready(text),
        Verdict::Predestroy {
            ready: false,
            blockers,
        } => not_ready(blockers, text),
        Verdict::Recover(RecoverEnd::Rebooting {
            host,
            system,
            build,
        }) => rebooting(host, system.as_deref(), build.as_deref(), text),
        Verdict::Recover(RecoverEnd::DryRun) => recover_dry_run(text),
        Verdict::Recover(RecoverEnd::Halted {
            status,
            step,
            title,
            why,
        }) => halted(*status, step, title, why, text),
    };
    let mut lines = Vec::new();
    if view.dry_run {
        lines.extend(text.line(
            "Dry run: the steps that would change something were skipped; nothing changed.",
            theme.warn(),
        ));
    }
    lines.extend(body);
    if !end.warnings.is_empty() {
        lines.push(Line::raw(""));
        lines.extend(text.line("Warnings, to read before going on:", theme.warn()));
        for (step, message) in &end.warnings {
            lines.extend(text.item(
                Span::styled(format!("  ! {step}: "), theme.warn()),
                &safe(message),
            ));
        }
    }
    let rows = usize::from(area.height.saturating_sub(2));
    let last_first = lines.len().saturating_sub(rows);
    end.scroll.max.set(last_first);
    let first = end.scroll.first.min(last_first);
    let more = if last_first > 0 {
        format!(
            " (lines {}–{} of {}, ↑↓ scroll)",
            first + 1,
            (first + rows).min(lines.len()),
            lines.len()
        )
    } else {
        String::new()
    };
    let block = Block::bordered()
        .title(format!(" {title}{more} "))
        .title_style(style)
        .border_style(style);
    let shown: Vec<Line> = lines.into_iter().skip(first).collect();
    frame.render_widget(Paragraph::new(shown).block(block), area);
}

/// The end screen's title, its style, and its lines.
type Parts = (String, Style, Vec<Line<'static>>);

/// How the lines are laid out: the width they wrap at, the styles.
#[derive(Clone, Copy)]
struct Text {
    width: usize,
    theme: Theme,
}

impl Text {
    /// `body` after `prefix`, its wrapped lines indented under the body's start.
    fn item(self, prefix: Span<'static>, body: &str) -> Vec<Line<'static>> {
        self.styled_item(prefix, body, Style::new())
    }

    fn styled_item(self, prefix: Span<'static>, body: &str, style: Style) -> Vec<Line<'static>> {
        let indent = prefix.width();
        let mut prefix = Some(prefix);
        wrap_words(body, self.width.saturating_sub(indent))
            .into_iter()
            .map(|part| {
                let lead = prefix
                    .take()
                    .unwrap_or_else(|| Span::raw(" ".repeat(indent)));
                Line::from(vec![lead, Span::styled(part, style)])
            })
            .collect()
    }

    /// A paragraph of one style.
    fn line(self, body: &str, style: Style) -> Vec<Line<'static>> {
        self.styled_item(Span::raw(""), body, style)
    }

    /// One thing to do next, indented.
    fn todo(self, lead: &str, body: &str) -> Vec<Line<'static>> {
        self.item(
            Span::styled(format!("  {lead} "), self.theme.accent()),
            body,
        )
    }

    fn next(self) -> Line<'static> {
        Line::styled("Next:", self.theme.title())
    }
}

fn ready(text: Text) -> Parts {
    let theme = text.theme;
    let mut lines = text.line("READY: this VPS can be destroyed.", theme.ok());
    lines.extend(text.line(
        "Every check passed: the config is in its remote, and everything else that matters \
         is on the volume.",
        Style::new(),
    ));
    lines.extend([Line::raw(""), text.next()]);
    lines.extend(text.todo(
        "1.",
        "Keep the volume: protect it from deletion \
         (hcloud volume enable-protection VOLUME delete).",
    ));
    lines.extend(text.todo(
        "2.",
        "Destroy this server; create the new one with the volume attached.",
    ));
    lines.extend(text.todo("3.", "On the new server, run lifeboat recover."));
    ("✓ predestroy: ready".into(), theme.ok(), lines)
}

fn not_ready(blockers: &[Blocker], text: Text) -> Parts {
    let theme = text.theme;
    let mut lines = text.line(
        &format!(
            "NOT READY: do not destroy this VPS yet. {} blocker(s):",
            blockers.len()
        ),
        theme.bad(),
    );
    lines.push(Line::raw(""));
    for blocker in blockers {
        lines.extend(text.item(
            Span::styled(format!("✗ {}: ", safe(blocker.step)), theme.bad()),
            &safe(&blocker.why),
        ));
        lines.extend(text.item(Span::styled("    → ", theme.accent()), &remedy(blocker)));
    }
    lines.extend([Line::raw(""), text.next()]);
    lines.extend(text.todo(
        "→",
        "Do what each blocker says, then run lifeboat predestroy again (r re-runs it here).",
    ));
    ("✗ predestroy: not ready".into(), theme.bad(), lines)
}

fn rebooting(host: &str, system: Option<&str>, build: Option<&str>, text: Text) -> Parts {
    let theme = text.theme;
    let mut lines = text.line(
        "Recovered: the system is rebuilt and the machine is rebooting into it.",
        theme.ok(),
    );
    lines.extend(text.item(Span::styled("  Host    ", theme.title()), &safe(host)));
    if let Some(system) = system {
        lines.extend(text.item(Span::styled("  System  ", theme.title()), &safe(system)));
    }
    if let Some(build) = build {
        lines.extend(text.item(Span::styled("  Build   ", theme.title()), &safe(build)));
    }
    lines.extend([Line::raw(""), text.next()]);
    lines.extend(text.todo(
        "→",
        "After the boot, log in and run lifeboat verify (or lifeboat recover --resume, \
         which verifies): it checks that /home, /nix and the system came back, and reads \
         back the marker predestroy left on the volume.",
    ));
    ("✓ recover: rebooting".into(), theme.ok(), lines)
}

fn recover_dry_run(text: Text) -> Parts {
    let mut lines = text.line(
        "Each step lists exactly what it would do (Tab).",
        Style::new(),
    );
    lines.extend([Line::raw(""), text.next()]);
    lines.extend(text.todo("→", "Run lifeboat recover without --dry-run to do it."));
    ("recover: dry run".into(), text.theme.warn(), lines)
}

fn halted(status: RunStatus, step: &str, title: &str, why: &str, text: Text) -> Parts {
    let theme = text.theme;
    let (symbol, verb, style, what_next) = match status {
        RunStatus::Stopped => (
            "!",
            "stopped",
            theme.warn(),
            "It was not confirmed, so nothing was changed there. When ready, run lifeboat \
             recover --resume (r re-runs it here) and confirm it.",
        ),
        RunStatus::Interrupted => (
            "!",
            "interrupted",
            theme.warn(),
            "Mounts were undone. Run lifeboat recover --resume (r re-runs it here) to go on.",
        ),
        RunStatus::Passed => (
            "!",
            "ended",
            theme.warn(),
            "Run lifeboat recover --resume (r re-runs it here) to go on.",
        ),
        RunStatus::Refused => (
            "⊘",
            "refused",
            theme.bad(),
            "A check that protects data said no. Fix what it says (Tab shows the steps and \
             the last output), then run lifeboat recover --resume (r re-runs it here).",
        ),
        RunStatus::Failed => (
            "✗",
            "failed",
            theme.bad(),
            "Fix what it says (Tab shows the steps and the last output), then run lifeboat \
             recover --resume (r re-runs it here).",
        ),
    };
    let mut lines = text.item(
        Span::styled(format!("{title} ({step}) {verb}: "), style),
        &safe(why),
    );
    lines.push(Line::raw(""));
    lines.extend(text.line(
        "The steps before it are done and stay done; nothing after it ran. Every step is \
         safe to run again, and those already done pass quickly.",
        Style::new(),
    ));
    lines.extend([Line::raw(""), text.next()]);
    lines.extend(text.todo("→", what_next));
    (format!("{symbol} recover {verb} at {step}"), style, lines)
}
