//! The two edits: removing `fileSystems` bindings and rewriting a device string.

use std::ops::Range;

use rnix::ast::{self, InterpolPart};
use rowan::ast::AstNode;

use super::find::{self, alternatives, literal_str};
use super::{Edited, NixEditError, parse, position, text_range};

/// `source` without the `fileSystems` bindings of `mounts` (those that it has), for a
/// generated `hardware-configuration.nix` whose entries the repository already declares
/// or that come from lifeboat's own inspection mount. A binding on lines of its own
/// goes with its indentation and line break, and a blank line left doubled (or against a
/// brace) goes too; every other byte stays.
pub fn drop_file_systems(source: &str, mounts: &[&str]) -> Result<Edited, NixEditError> {
    let mut text = source.to_owned();
    let mut root = parse(source)?;
    let mut dropped: Vec<String> = Vec::new();
    // One binding at a time, parsing again after each, so that each removal sees the
    // blank lines the previous one left.
    while let Some(binding) = find::bindings(&root)
        .into_iter()
        .find(|binding| mounts.contains(&binding.mount_point.as_str()))
    {
        let span = removal_span(&text, text_range(binding.node.syntax()));
        text.replace_range(span, "");
        if !dropped.contains(&binding.mount_point) {
            dropped.push(binding.mount_point);
        }
        root = reparse(&text)?;
    }
    Ok(Edited {
        text,
        mounts: dropped,
    })
}

/// `source` with every `device = "<old_device>"` of a `fileSystems` entry set to
/// `new_device`, for a volume that now has another by-id path. Refuses when no entry has
/// that device as a plain string, naming an entry whose device is an expression that
/// might be it.
pub fn rewrite_device(
    source: &str,
    old_device: &str,
    new_device: &str,
) -> Result<Edited, NixEditError> {
    let root = parse(source)?;
    let mut edits: Vec<(Range<usize>, String)> = Vec::new();
    let mut unreadable = None;
    for binding in find::bindings(&root) {
        let devices = find::field_values(&binding, "device");
        for value in devices.into_iter().flat_map(alternatives) {
            match device_match(&value, old_device) {
                DeviceMatch::Equal => {
                    edits.push((text_range(value.syntax()), binding.mount_point.clone()));
                }
                DeviceMatch::Maybe => {
                    unreadable.get_or_insert_with(|| {
                        not_literal(source, &value, &binding.mount_point, old_device)
                    });
                }
                DeviceMatch::Different => {}
            }
        }
    }
    if edits.is_empty() {
        return Err(unreadable.unwrap_or_else(|| NixEditError::DeviceNotFound {
            device: old_device.to_owned(),
        }));
    }
    edits.sort_by_key(|(range, _)| range.start);
    let literal = nix_string(new_device);
    let mut text = source.to_owned();
    for (range, _) in edits.iter().rev() {
        text.replace_range(range.clone(), &literal);
    }
    reparse(&text)?;
    let mut mounts: Vec<String> = Vec::new();
    for (_, mount) in edits {
        if !mounts.contains(&mount) {
            mounts.push(mount);
        }
    }
    Ok(Edited { text, mounts })
}

/// `source` with each string literal whose value is `old` (`whole`), or whose text holds
/// `old` (not `whole`: a MAC in a udev rule), changed to hold `new` instead, for a
/// configuration that still has another server's addresses. Every other byte stays;
/// `None` when no literal matched.
pub fn rewrite_strings(
    source: &str,
    edits: &[(&str, &str, bool)],
) -> Result<Option<String>, NixEditError> {
    let root = parse(source)?;
    let mut changes: Vec<(Range<usize>, String)> = Vec::new();
    for string in root.syntax().descendants().filter_map(ast::Str::cast) {
        // A string inside another's interpolation is edited with the outer one, if at all.
        if string
            .syntax()
            .ancestors()
            .skip(1)
            .any(|n| ast::Str::can_cast(n.kind()))
        {
            continue;
        }
        let range = text_range(string.syntax());
        let literal = literal_str(&string);
        let mut text = source[range.clone()].to_string();
        let mut changed = false;
        for (old, new, whole) in edits {
            if *whole && literal.as_deref() == Some(*old) {
                text = nix_string(new);
                changed = true;
                break;
            }
            if !*whole && !old.is_empty() && text.contains(*old) {
                text = text.replace(*old, new);
                changed = true;
            }
        }
        if changed {
            changes.push((range, text));
        }
    }
    if changes.is_empty() {
        return Ok(None);
    }
    let mut text = source.to_owned();
    for (range, new) in changes.iter().rev() {
        text.replace_range(range.clone(), new);
    }
    reparse(&text)?;
    Ok(Some(text))
}

/// `value` as a Nix string literal: `"` + value with `\`, `"`, `${` and control
/// characters escaped + `"`.
pub fn nix_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' if chars.peek() == Some(&'{') => out.push_str("\\$"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A parse of edited text; an error here means the edit broke the file.
fn reparse(text: &str) -> Result<ast::Root, NixEditError> {
    parse(text).map_err(|error| match error {
        NixEditError::Parse {
            line,
            column,
            message,
        } => NixEditError::EditUnparsable {
            line,
            column,
            message,
        },
        other => other,
    })
}

/// The bytes to remove with the binding at `binding`: whole lines when the binding has its
/// lines to itself, otherwise the binding and the blanks that separate it from its
/// neighbour on the line.
fn removal_span(text: &str, binding: Range<usize>) -> Range<usize> {
    let line_start = line_start(text, binding.start);
    let line_end = text[binding.end..]
        .find('\n')
        .map_or(text.len(), |newline| binding.end + newline);
    let before = &text[line_start..binding.start];
    let after = &text[binding.end..line_end];
    if !is_blank(after) {
        let gap = after.len() - after.trim_start().len();
        return binding.start..binding.end + gap;
    }
    if !is_blank(before) {
        let gap = before.len() - before.trim_end().len();
        return binding.start - gap..binding.end;
    }
    let end = (line_end + 1).min(text.len());
    collapse_blank_lines(text, line_start..end)
}

/// `lines` (whole lines) widened by one neighbouring blank line when removing them alone
/// would leave two blank lines together, or a blank line just inside a brace or bracket.
fn collapse_blank_lines(text: &str, lines: Range<usize>) -> Range<usize> {
    let previous = (lines.start > 0).then(|| {
        let start = line_start(text, lines.start - 1);
        start..lines.start
    });
    let next_end = text[lines.end..]
        .find('\n')
        .map_or(text.len(), |newline| lines.end + newline + 1);
    let next = (lines.end < text.len()).then_some(lines.end..next_end);
    let previous_text = previous.clone().map(|range| text[range].trim());
    let next_text = next.clone().map(|range| text[range].trim());
    let opens = |line: Option<&str>| line.is_none_or(|line| line.ends_with(['{', '[']));
    let closes = |line: Option<&str>| line.is_none_or(|line| line.starts_with(['}', ']']));
    match (previous, next) {
        (_, Some(next))
            if next_text == Some("") && (previous_text == Some("") || opens(previous_text)) =>
        {
            lines.start..next.end
        }
        (Some(previous), _) if previous_text == Some("") && closes(next_text) => {
            previous.start..lines.end
        }
        _ => lines,
    }
}

/// Byte offset of the start of the line that holds `offset`.
fn line_start(text: &str, offset: usize) -> usize {
    text[..offset].rfind('\n').map_or(0, |newline| newline + 1)
}

fn is_blank(text: &str) -> bool {
    text.trim().is_empty()
}

enum DeviceMatch {
    Equal,
    /// An expression (an interpolated string, a variable) that may evaluate to the device.
    Maybe,
    Different,
}

fn device_match(value: &ast::Expr, device: &str) -> DeviceMatch {
    match value {
        ast::Expr::Str(string) => match literal_str(string) {
            Some(text) if text == device => DeviceMatch::Equal,
            Some(_) => DeviceMatch::Different,
            None if fits_template(string, device) => DeviceMatch::Maybe,
            None => DeviceMatch::Different,
        },
        ast::Expr::Ident(ident) if ident.syntax().text() == "null" => DeviceMatch::Different,
        _ => DeviceMatch::Maybe,
    }
}

/// Whether an interpolated string could evaluate to `device`: its literal parts appear in
/// `device` in order, the first at the start and the last at the end.
fn fits_template(string: &ast::Str, device: &str) -> bool {
    let parts = string.normalized_parts();
    let mut rest = device;
    for (index, part) in parts.iter().enumerate() {
        let InterpolPart::Literal(literal) = part else {
            continue;
        };
        let first = index == 0;
        let last = index + 1 == parts.len();
        let found = match (first, last) {
            (true, _) => rest.starts_with(literal.as_str()).then_some(0),
            (false, true) => rest
                .ends_with(literal.as_str())
                .then(|| rest.len() - literal.len()),
            (false, false) => rest.find(literal.as_str()),
        };
        match found {
            Some(at) => rest = &rest[at + literal.len()..],
            None => return false,
        }
    }
    true
}

fn not_literal(source: &str, value: &ast::Expr, mount_point: &str, device: &str) -> NixEditError {
    let range = text_range(value.syntax());
    let (line, column) = position(source, range.start);
    NixEditError::DeviceNotLiteral {
        device: device.to_owned(),
        mount_point: mount_point.to_owned(),
        line,
        column,
        expr: source[range].to_owned(),
    }
}
