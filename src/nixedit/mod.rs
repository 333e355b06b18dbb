//! Lossless edits of NixOS module files for `recover`: the `hardware-config` step drops
//! generated `fileSystems` entries that would clash with the repository's own (or that are
//! lifeboat's inspection mount), and `boot-safety` rewrites a volume's device path and says
//! which Nix lines make the `/nix` bind bootable.
//!
//! Edits go through a real Nix parser (`rnix`) so that only the bytes of the bindings in
//! question change: comments, formatting and everything else stay as the operator wrote
//! them, and every result is parsed again before it is returned.

mod boot;
mod edit;
mod find;

use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};

use rnix::ast;
use rowan::ast::AstNode;

pub use boot::{
    BootFix, PATHS_NEEDED_FOR_BOOT, bind_snippet, boot_fix_snippet, holding_mount,
    mounted_in_stage1, store_boot_fixes,
};
pub use edit::{drop_file_systems, nix_string, rewrite_device, rewrite_strings};

/// What a `fileSystems` entry says about the options lifeboat checks. From a source file
/// each is `None` unless it is written as a literal; from `nix eval --json` of
/// `config.fileSystems` (which this deserializes from) they are the evaluated values.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MountFields {
    pub device: Option<String>,
    pub fs_type: Option<String>,
    pub options: Option<Vec<String>>,
    pub needed_for_boot: Option<bool>,
    /// `label`: NixOS mounts `/dev/disk/by-label/<label>` when `device` is not set.
    pub label: Option<String>,
}

/// One binding in a file that defines all or part of `fileSystems."<mount_point>"`
/// (`fileSystems."/home".device = …;` is one binding; a mount may have several).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredMount {
    pub mount_point: String,
    /// Byte range of the whole `path = value;` binding in the source.
    pub range: Range<usize>,
    /// 1-based line where the binding starts, for messages.
    pub line: usize,
    /// The options this binding sets to literals (through `lib.mkIf`, `lib.mkForce` and
    /// the like, so a conditional value counts as set).
    pub fields: MountFields,
}

/// The result of an edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edited {
    /// The whole new file.
    pub text: String,
    /// The mount points whose bindings were removed or changed, in source order, each once.
    pub mounts: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NixEditError {
    #[error("line {line}, column {column}: {message}")]
    Parse {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("no fileSystems entry has the device \"{device}\"")]
    DeviceNotFound { device: String },
    #[error(
        "the device of fileSystems.\"{mount_point}\" at line {line}, column {column} is `{expr}`, \
         not a plain string, so lifeboat cannot tell whether it is \"{device}\" and will not \
         rewrite it: change it by hand"
    )]
    DeviceNotLiteral {
        device: String,
        mount_point: String,
        line: usize,
        column: usize,
        expr: String,
    },
    #[error(
        "the edited text would not parse (line {line}, column {column}: {message}); \
         lifeboat refuses the edit"
    )]
    EditUnparsable {
        line: usize,
        column: usize,
        message: String,
    },
}

/// Every `fileSystems."<mount>"` binding declared in `source`, in source order.
pub fn file_systems_mounts(source: &str) -> Result<Vec<DeclaredMount>, NixEditError> {
    let root = parse(source)?;
    Ok(find::bindings(&root)
        .iter()
        .map(|binding| {
            let range = text_range(binding.node.syntax());
            DeclaredMount {
                mount_point: binding.mount_point.clone(),
                line: position(source, range.start).0,
                range,
                fields: MountFields {
                    device: single_literal(binding, "device", string_value),
                    fs_type: single_literal(binding, "fsType", string_value),
                    options: single_literal(binding, "options", string_list),
                    needed_for_boot: single_literal(binding, "neededForBoot", bool_value),
                    label: single_literal(binding, "label", string_value),
                },
            }
        })
        .collect())
}

/// The `.nix` files of the repository at `repo`, `.git` left out.
pub fn nix_files(repo: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![repo.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let mut entries: Vec<_> = fs::read_dir(&dir).into_iter().flatten().flatten().collect();
        entries.sort_by_key(fs::DirEntry::file_name);
        for entry in entries {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) && entry.file_name() != ".git" {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "nix") {
                files.push(path);
            }
        }
    }
    files
}

/// The `.nix` files of a repository, read once, for finding where a string is set.
pub struct Sources(Vec<(PathBuf, String)>);

impl Sources {
    /// The readable `.nix` files of the repository at `repo`.
    pub fn read(repo: &Path) -> Sources {
        Sources(
            nix_files(repo)
                .into_iter()
                .filter_map(|file| Some((file.clone(), fs::read_to_string(&file).ok()?)))
                .collect(),
        )
    }

    /// The first file, and the 1-based line in it, whose string literal is `needle`
    /// (`whole`) or holds it ([`string_lines`]).
    pub fn find_string(&self, needle: &str, whole: bool) -> Option<(&Path, usize)> {
        self.0.iter().find_map(|(file, text)| {
            let line = *string_lines(text, needle, whole).ok()?.first()?;
            Some((file.as_path(), line))
        })
    }
}

/// The 1-based lines of the string literals in `source` that are `needle` (`whole`) or
/// hold it in their text (the line where it occurs), in source order: where a NixOS
/// module sets an address, or a udev rule names a MAC.
pub fn string_lines(source: &str, needle: &str, whole: bool) -> Result<Vec<usize>, NixEditError> {
    let root = parse(source)?;
    Ok(root
        .syntax()
        .descendants()
        .filter_map(ast::Str::cast)
        .filter_map(|string| {
            let range = text_range(string.syntax());
            let offset = if whole {
                (find::literal_str(&string).as_deref() == Some(needle)).then_some(range.start)?
            } else {
                range.start + source.get(range.clone())?.find(needle)?
            };
            Some(position(source, offset).0)
        })
        .collect())
}

/// The syntax tree of `source`, or its first parse error with line and column.
fn parse(source: &str) -> Result<ast::Root, NixEditError> {
    let parsed = rnix::Root::parse(source);
    match parsed.errors().first() {
        Some(error) => {
            let (offset, message) = describe(source, error);
            let (line, column) = position(source, offset);
            Err(NixEditError::Parse {
                line,
                column,
                message,
            })
        }
        None => Ok(parsed.tree()),
    }
}

/// Where a parse error is and what it says, in words rather than token kinds.
fn describe(source: &str, error: &rnix::ParseError) -> (usize, String) {
    use rnix::ParseError as E;
    // An error range may span many tokens; its first says what went wrong.
    let at = |range: &rnix::TextRange| {
        let range = usize::from(range.start())..usize::from(range.end());
        let text = source.get(range.clone()).unwrap_or_default();
        let first = rnix::tokenize(text)
            .find(|(kind, _)| *kind != rnix::SyntaxKind::TOKEN_WHITESPACE)
            .map_or(text, |(_, token)| token);
        (range.start, first.to_owned())
    };
    match error {
        E::Unexpected(range) | E::UnexpectedWanted(_, range, _) => {
            let (offset, text) = at(range);
            (offset, format!("unexpected `{text}`"))
        }
        E::UnexpectedExtra(range) => {
            let (offset, text) = at(range);
            (
                offset,
                format!("unexpected `{text}` after the end of the expression"),
            )
        }
        E::UnexpectedDoubleBind(range) => (at(range).0, "a pattern is bound twice".to_owned()),
        E::DuplicatedArgs(range, name) => {
            (at(range).0, format!("the argument `{name}` is duplicated"))
        }
        E::UnexpectedEOF | E::UnexpectedEOFWanted(_) => {
            (source.len(), "unexpected end of file".to_owned())
        }
        other => (source.len(), other.to_string()),
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    (
        before.matches('\n').count() + 1,
        before[line_start..].chars().count() + 1,
    )
}

fn text_range(node: &rnix::SyntaxNode) -> Range<usize> {
    let range = node.text_range();
    usize::from(range.start())..usize::from(range.end())
}

/// The value of option `field` in `binding` when it is one literal that `read` understands.
fn single_literal<T>(
    binding: &find::Binding,
    field: &str,
    read: impl Fn(&ast::Expr) -> Option<T>,
) -> Option<T> {
    let values: Vec<ast::Expr> = find::field_values(binding, field)
        .into_iter()
        .flat_map(find::alternatives)
        .collect();
    match values.as_slice() {
        [only] => read(only),
        _ => None,
    }
}

fn string_value(expr: &ast::Expr) -> Option<String> {
    match expr {
        ast::Expr::Str(string) => find::literal_str(string),
        _ => None,
    }
}

fn string_list(expr: &ast::Expr) -> Option<Vec<String>> {
    match expr {
        ast::Expr::List(list) => list.items().map(|item| string_value(&item)).collect(),
        _ => None,
    }
}

fn bool_value(expr: &ast::Expr) -> Option<bool> {
    match expr {
        ast::Expr::Ident(ident) => match ident.syntax().text().to_string().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        _ => None,
    }
}
