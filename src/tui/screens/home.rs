//! The home screen: what lifeboat sees on this machine, and the four flows.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use crate::flow::FlowKind;
use crate::steps::identify::human_bytes;
use crate::tui::facts::{EtcNixos, HomeFacts, JournalFact};
use crate::tui::state::{HOME_FLOWS, State, flow_line};
use crate::tui::theme::Theme;
use crate::tui::widgets::{key_hints, pointer, safe};

/// The home screen.
pub fn render(frame: &mut Frame, area: Rect, state: &State, theme: Theme) {
    let machine_lines = state
        .home
        .as_ref()
        .map(|facts| {
            // The practice sandbox offers no predestroy: no readiness to speak of.
            let readiness = state.flows.contains(&FlowKind::Predestroy);
            machine_lines(facts, readiness, theme)
        })
        .unwrap_or_default();
    let machine_height = u16::try_from(machine_lines.len() + 3).unwrap_or(u16::MAX);
    let [title, machine, flows, hints] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Max(machine_height),
        Constraint::Min(
            u16::try_from(state.flows.len())
                .unwrap_or(u16::MAX)
                .saturating_add(2),
        ),
        Constraint::Length(1),
    ])
    .areas(area);
    super::title::render(
        frame,
        title,
        vec![Span::raw("· a wizard to destroy and rebuild this VPS")],
        state,
        theme,
    );
    frame.render_widget(
        Paragraph::new(machine_lines)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(" This machine ")),
        machine,
    );
    render_flows(frame, flows, state, theme);
    key_hints::render(
        frame,
        hints,
        &[
            ("↑↓", "choose"),
            ("Enter", "start"),
            ("?", "help"),
            ("q", "quit"),
        ],
        theme,
    );
}

fn label(text: &str, theme: Theme) -> Span<'static> {
    Span::styled(format!(" {text:<11}"), theme.title())
}

fn machine_lines(facts: &HomeFacts, with_readiness: bool, theme: Theme) -> Vec<Line<'static>> {
    let mut lines = vec![
        Line::from(vec![
            label("Host", theme),
            Span::raw(safe(&facts.hostname).into_owned()),
        ]),
        Line::from(vec![
            label("OS", theme),
            Span::raw(safe(&facts.os).into_owned()),
        ]),
        Line::from(vec![label("Memory", theme), Span::raw(memory_line(facts))]),
        Line::from(vec![label("Disks", theme), Span::raw(disks_line(facts))]),
        Line::from(vec![
            label("/etc/nixos", theme),
            etc_nixos(&facts.etc_nixos, theme),
        ]),
    ];
    let discovery = safe(&facts.discovery).into_owned();
    match &facts.volumes {
        Err(why) => lines.push(Line::from(vec![
            label("Volumes", theme),
            Span::styled(format!("cannot look: {}", safe(why)), theme.warn()),
        ])),
        Ok(found) if found.is_empty() => lines.push(Line::from(vec![
            label("Volumes", theme),
            Span::styled(format!("none match {discovery}"), theme.warn()),
        ])),
        Ok(found) => {
            lines.push(Line::from(vec![
                label("Volumes", theme),
                Span::styled(format!("matching {discovery}"), theme.dim()),
            ]));
            for volume in found {
                let mounted = if volume.mounted_at.is_empty() {
                    Span::styled("not mounted", theme.dim())
                } else {
                    Span::styled(
                        format!("mounted at {}", safe(&volume.mounted_at.join(", "))),
                        theme.ok(),
                    )
                };
                lines.push(Line::from(vec![
                    Span::raw(format!(
                        "   {} → {}  ",
                        safe(&volume.link),
                        safe(&volume.device)
                    )),
                    mounted,
                ]));
            }
        }
    }
    lines.push(Line::from(vec![
        label("Journal", theme),
        journal(&facts.journal, theme),
    ]));
    if with_readiness {
        lines.push(Line::from(vec![
            label("Readiness", theme),
            readiness(facts, theme),
        ]));
    }
    lines
}

/// "3.0 GiB available of 4.0 GiB · up 3 h 12 min": an evaluation of a NixOS system takes
/// about 1 GB.
fn memory_line(facts: &HomeFacts) -> String {
    let memory = facts.memory.map_or_else(
        || "unknown".to_string(),
        |(available, total)| {
            format!(
                "{} available of {}",
                human_bytes(available),
                human_bytes(total)
            )
        },
    );
    let minutes = facts.uptime / 60;
    let up = match minutes {
        m if m < 60 => format!("{m} min"),
        m if m < 48 * 60 => format!("{} h {} min", m / 60, m % 60),
        m => format!("{} d {} h", m / (24 * 60), m / 60 % 24),
    };
    format!("{memory} · up {up}")
}

/// "/ 30.0 GiB free of 38.0 GiB · /home 80.0 GiB free of 100 GiB".
fn disks_line(facts: &HomeFacts) -> String {
    if facts.disks.is_empty() {
        return "unknown".into();
    }
    facts
        .disks
        .iter()
        .map(|disk| {
            format!(
                "{} {} free of {}",
                safe(&disk.mount),
                human_bytes(disk.available),
                human_bytes(disk.total)
            )
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

/// The last `predestroy --refresh`, or that there has never been one.
fn readiness(facts: &HomeFacts, theme: Theme) -> Span<'static> {
    match &facts.readiness {
        None => Span::styled(
            "never checked: `lifeboat predestroy --refresh` (a daily timer) keeps it current",
            theme.dim(),
        ),
        Some(fact) => Span::styled(
            format!("last check {}", safe(&fact.line)),
            if fact.ready { theme.ok() } else { theme.warn() },
        ),
    }
}

fn etc_nixos(state: &EtcNixos, theme: Theme) -> Span<'static> {
    match state {
        EtcNixos::Missing => Span::styled("missing", theme.warn()),
        EtcNixos::Directory => Span::raw("a directory, not a git repository"),
        EtcNixos::GitRepo => Span::styled("a git repository", theme.ok()),
        EtcNixos::Unreadable(why) => {
            Span::styled(format!("cannot read: {}", safe(why)), theme.warn())
        }
    }
}

fn journal(fact: &JournalFact, theme: Theme) -> Span<'static> {
    match fact {
        JournalFact::Clean => Span::styled("no unfinished run", theme.dim()),
        JournalFact::Unreadable(why) => Span::styled(safe(why).into_owned(), theme.warn()),
        JournalFact::Unfinished(run) => Span::styled(
            format!(
                "the last {} run ({}) did not finish{}: resume it with `lifeboat {} --resume`",
                safe(&run.flow),
                safe(&run.run_id),
                run.last_step
                    .as_ref()
                    .map(|s| format!(" after {}", safe(s)))
                    .unwrap_or_default(),
                safe(&run.flow)
            ),
            theme.warn(),
        ),
    }
}

/// The practice sandbox says why two flows are missing.
fn flows_title(flows: &[FlowKind]) -> &'static str {
    if flows.len() < HOME_FLOWS.len() {
        " Flows on the practice volume: the read-only ones "
    } else {
        " Flows "
    }
}

fn render_flows(frame: &mut Frame, area: Rect, state: &State, theme: Theme) {
    let selected = state.home_selected;
    let lines: Vec<Line> = state
        .flows
        .iter()
        .enumerate()
        .map(|(i, kind)| {
            let line = Line::from(vec![
                Span::styled(
                    format!("{}{:<12}", pointer(i == selected), kind.id()),
                    theme.accent(),
                ),
                Span::raw(flow_line(*kind)),
            ]);
            if i == selected {
                line.style(theme.selected())
            } else {
                line
            }
        })
        .collect();
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(flows_title(state.flows))),
        area,
    );
}
