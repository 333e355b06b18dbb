//! The end screen of predestroy and recover: predestroy's "ready / not ready" with what
//! to do about each blocker; what recover did and what comes next.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use crate::report::RunStatus;
use crate::tui::end::{Blocker, EndReport, RecoverEnd, Verdict, remedy};
use crate::tui::state::FlowView;
use crate::tui::theme::Theme;
use crate::tui::widgets::{safe, wrap_words};

/// The end screen in place of the steps.
pub fn render(frame: &mut Frame, area: Rect, view: &FlowView, end: &EndReport, theme: Theme) {
    let text = Text {
        width: usize::from(area.width.saturating_sub(2)),
        theme,
    };
    let (title, style, mut lines) = match &end.verdict {
        Verdict::Predestroy { ready: true, .. } => ready(text),
        Verdict::Predestroy {
            ready: false,
            blockers,
        } => not_ready(blockers, text),
        Verdict::Recover(RecoverEnd::Rebooting { host, system }) => {
            rebooting(host, system.as_deref(), text)
        }
        Verdict::Recover(RecoverEnd::DryRun) => recover_dry_run(text),
        Verdict::Recover(RecoverEnd::Halted {
            status,
            step,
            title,
            why,
        }) => halted(*status, step, title, why, text),
    };
    if view.dry_run {
        lines.insert(
            0,
            Line::styled(
                "Dry run: the steps that would change something were skipped; nothing changed.",
                theme.warn(),
            ),
        );
    }
    if !end.warnings.is_empty() {
        lines.push(Line::raw(""));
        lines.push(Line::styled(
            "Warnings, to read before going on:",
            theme.warn(),
        ));
        for (step, message) in &end.warnings {
            lines.extend(text.item(
                Span::styled(format!("  ! {step}: "), theme.warn()),
                &safe(message),
            ));
        }
    }
    let block = Block::bordered()
        .title(format!(" {title} "))
        .title_style(style)
        .border_style(style);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block),
        area,
    );
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
        let indent = prefix.width();
        let mut prefix = Some(prefix);
        wrap_words(body, self.width.saturating_sub(indent))
            .into_iter()
            .map(|part| {
                let lead = prefix
                    .take()
                    .unwrap_or_else(|| Span::raw(" ".repeat(indent)));
                Line::from(vec![lead, Span::raw(part)])
            })
            .collect()
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
    let mut lines = vec![
        Line::styled("READY: this VPS can be destroyed.", theme.ok()),
        Line::raw(
            "Every check passed: the config is in its remote, and everything else that \
             matters is on the volume.",
        ),
        Line::raw(""),
        text.next(),
    ];
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
    let mut lines = vec![
        Line::styled(
            format!(
                "NOT READY: do not destroy this VPS yet. {} blocker(s):",
                blockers.len()
            ),
            theme.bad(),
        ),
        Line::raw(""),
    ];
    for blocker in blockers {
        lines.extend(text.item(
            Span::styled(format!("✗ {}: ", safe(&blocker.step)), theme.bad()),
            &safe(&blocker.why),
        ));
        lines.extend(text.item(Span::styled("    → ", theme.accent()), &remedy(blocker)));
    }
    lines.push(Line::raw(""));
    lines.push(text.next());
    lines.extend(text.todo(
        "→",
        "Do what each blocker says, then run lifeboat predestroy again (r re-runs it here).",
    ));
    ("✗ predestroy: not ready".into(), theme.bad(), lines)
}

fn rebooting(host: &str, system: Option<&str>, text: Text) -> Parts {
    let theme = text.theme;
    let mut lines = vec![Line::styled(
        "Recovered: the system is rebuilt and the machine is rebooting into it.",
        theme.ok(),
    )];
    lines.push(Line::raw(format!("  Host    {}", safe(host))));
    if let Some(system) = system {
        lines.push(Line::raw(format!("  System  {}", safe(system))));
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
    let mut lines = vec![
        Line::raw("Each step lists exactly what it would do (Tab)."),
        Line::raw(""),
        text.next(),
    ];
    lines.extend(text.todo("→", "Run lifeboat recover without --dry-run to do it."));
    ("recover: dry run".into(), text.theme.warn(), lines)
}

fn halted(status: RunStatus, step: &str, title: &str, why: &str, text: Text) -> Parts {
    let theme = text.theme;
    let (verb, style, what_next) = match status {
        RunStatus::Stopped => (
            "stopped",
            theme.warn(),
            "It was not confirmed, so nothing was changed there. When ready, run lifeboat \
             recover --resume (r re-runs it here) and confirm it.",
        ),
        RunStatus::Interrupted => (
            "interrupted",
            theme.warn(),
            "Mounts were undone. Run lifeboat recover --resume (r re-runs it here) to go on.",
        ),
        RunStatus::Refused => (
            "refused",
            theme.bad(),
            "A check that protects data said no. Fix what it says (Tab shows the steps and \
             the last output), then run lifeboat recover --resume (r re-runs it here).",
        ),
        RunStatus::Passed => (
            "ended",
            theme.warn(),
            "Run lifeboat recover --resume (r re-runs it here) to go on.",
        ),
        RunStatus::Failed => (
            "failed",
            theme.bad(),
            "Fix what it says (Tab shows the steps and the last output), then run lifeboat \
             recover --resume (r re-runs it here).",
        ),
    };
    let mut lines = vec![
        Line::from(vec![
            Span::styled(format!("{title} ({step}) {verb}: "), style),
            Span::raw(safe(why).into_owned()),
        ]),
        Line::raw(""),
        Line::raw(
            "The steps before it are done and stay done; nothing after it ran. Every step is \
             safe to run again, and those already done pass quickly.",
        ),
        Line::raw(""),
        text.next(),
    ];
    lines.extend(text.todo("→", what_next));
    let symbol = match status {
        RunStatus::Failed => "✗",
        RunStatus::Refused => "⊘",
        RunStatus::Passed | RunStatus::Stopped | RunStatus::Interrupted => "!",
    };
    (format!("{symbol} recover {verb} at {step}"), style, lines)
}
