//! Finding the bindings that define `fileSystems."<mount>"` in a NixOS module's syntax
//! tree, in the forms people write: one binding per mount, one per option, a
//! `fileSystems = { … }` set, under `config`, and through the `lib.mk*` wrappers.

use rnix::ast::{self, BinOpKind, HasEntry, InterpolPart};
use rowan::ast::AstNode;

/// One binding that defines all or part of `fileSystems."<mount_point>"`.
pub(super) struct Binding {
    pub mount_point: String,
    /// The whole `path = value;` binding.
    pub node: ast::AttrpathValue,
    /// The names in the binding's own path after the mount point (`device` in
    /// `fileSystems."/home".device = …`); `None` stands for a name that is computed.
    pub rest: Vec<Option<String>>,
}

/// Every `fileSystems` binding of the module in `root`, in source order.
pub(super) fn bindings(root: &ast::Root) -> Vec<Binding> {
    let mut out = Vec::new();
    if let Some(expr) = root.expr() {
        scan_module(expr, &mut out);
    }
    out
}

/// The expressions assigned to option `field` of the mount that `binding` defines, as
/// written (still inside any `lib.mk*` wrapper).
pub(super) fn field_values(binding: &Binding, field: &str) -> Vec<ast::Expr> {
    let mut out = Vec::new();
    if let Some(value) = binding.node.value() {
        collect_field(&binding.rest, value, field, &mut out);
    }
    out
}

/// The value of a string without interpolations, unescaped.
pub(super) fn literal_str(string: &ast::Str) -> Option<String> {
    string
        .normalized_parts()
        .into_iter()
        .map(|part| match part {
            InterpolPart::Literal(text) => Some(text),
            InterpolPart::Interpolation(_) => None,
        })
        .collect()
}

/// The expressions `expr` evaluates to as far as the module system is concerned: it looks
/// through parentheses, a module's `{ config, … }:` function, `let … in`, `with`,
/// `assert`, both sides of `//` and of `if … then … else`, and the `lib.mkIf`,
/// `lib.mkForce`, `lib.mkDefault`, `lib.mkOverride` and `lib.mkMerge` wrappers.
pub(super) fn alternatives(expr: ast::Expr) -> Vec<ast::Expr> {
    use ast::Expr;
    let inner: Vec<Option<Expr>> = match &expr {
        Expr::Paren(paren) => vec![paren.expr()],
        Expr::Lambda(lambda) => vec![lambda.body()],
        Expr::LetIn(let_in) => vec![let_in.body()],
        Expr::With(with) => vec![with.body()],
        Expr::Assert(assert) => vec![assert.body()],
        Expr::IfElse(if_else) => vec![if_else.body(), if_else.else_body()],
        Expr::BinOp(op) if op.operator() == Some(BinOpKind::Update) => vec![op.lhs(), op.rhs()],
        Expr::Apply(apply) => match unwrap_mk(apply) {
            Some(Wrapped::One(arg)) => vec![Some(arg)],
            Some(Wrapped::Merge(Expr::List(list))) => list.items().map(Some).collect(),
            Some(Wrapped::Merge(_)) | None => return vec![expr],
        },
        _ => return vec![expr],
    };
    inner.into_iter().flatten().flat_map(alternatives).collect()
}

fn scan_module(expr: ast::Expr, out: &mut Vec<Binding>) {
    for value in alternatives(expr) {
        if let ast::Expr::AttrSet(set) = value {
            scan_module_set(&set, out);
        }
    }
}

fn scan_module_set(set: &ast::AttrSet, out: &mut Vec<Binding>) {
    for entry in set.attrpath_values() {
        let names = attr_names(&entry);
        match names.as_slice() {
            [Some(config)] if config == "config" => {
                if let Some(value) = entry.value() {
                    scan_module(value, out);
                }
            }
            [Some(config), Some(fs), after @ ..] if config == "config" && fs == "fileSystems" => {
                file_systems(after, &entry, out);
            }
            [Some(fs), after @ ..] if fs == "fileSystems" => file_systems(after, &entry, out),
            _ => {}
        }
    }
}

/// The bindings of `entry`, whose path goes on with `after` past `fileSystems`.
fn file_systems(after: &[Option<String>], entry: &ast::AttrpathValue, out: &mut Vec<Binding>) {
    match after {
        [] => {
            for value in entry.value().into_iter().flat_map(alternatives) {
                let ast::Expr::AttrSet(set) = value else {
                    continue;
                };
                for inner in set.attrpath_values() {
                    if let [Some(mount_point), rest @ ..] = attr_names(&inner).as_slice() {
                        out.push(Binding {
                            mount_point: mount_point.clone(),
                            rest: rest.to_vec(),
                            node: inner.clone(),
                        });
                    }
                }
            }
        }
        [Some(mount_point), rest @ ..] => out.push(Binding {
            mount_point: mount_point.clone(),
            node: entry.clone(),
            rest: rest.to_vec(),
        }),
        [None, ..] => {}
    }
}

fn collect_field(path: &[Option<String>], value: ast::Expr, field: &str, out: &mut Vec<ast::Expr>) {
    match path {
        [] => {
            for alternative in alternatives(value) {
                let ast::Expr::AttrSet(set) = alternative else {
                    continue;
                };
                for entry in set.attrpath_values() {
                    if let Some(inner) = entry.value() {
                        collect_field(&attr_names(&entry), inner, field, out);
                    }
                }
            }
        }
        [Some(name)] if name == field => out.push(value),
        _ => {}
    }
}

/// The names of a binding's path; `None` for one that is computed.
fn attr_names(entry: &ast::AttrpathValue) -> Vec<Option<String>> {
    entry
        .attrpath()
        .map(|path| path.attrs().map(attr_name).collect())
        .unwrap_or_default()
}

fn attr_name(attr: ast::Attr) -> Option<String> {
    match attr {
        ast::Attr::Ident(ident) => Some(ident.syntax().text().to_string()),
        ast::Attr::Str(string) => literal_str(&string),
        ast::Attr::Dynamic(dynamic) => match dynamic.expr()? {
            ast::Expr::Str(string) => literal_str(&string),
            _ => None,
        },
    }
}

/// What a `lib.mk*` call wraps.
enum Wrapped {
    /// The value of `mkIf cond v`, `mkForce v`, `mkDefault v`, `mkOverride p v`.
    One(ast::Expr),
    /// The argument of `mkMerge`, a list of values when it is written out.
    Merge(ast::Expr),
}

fn unwrap_mk(apply: &ast::Apply) -> Option<Wrapped> {
    let arg = apply.argument()?;
    let (head, args_before) = match apply.lambda()? {
        ast::Expr::Apply(inner) => (inner.lambda()?, 1),
        head => (head, 0),
    };
    match (function_name(&head)?.as_str(), args_before) {
        ("mkMerge", 0) => Some(Wrapped::Merge(arg)),
        ("mkForce" | "mkDefault" | "mkVMOverride", 0) | ("mkIf" | "mkOverride", 1) => {
            Some(Wrapped::One(arg))
        }
        _ => None,
    }
}

/// `mkIf` for `mkIf`, `lib.mkIf` and `lib.modules.mkIf`.
fn function_name(head: &ast::Expr) -> Option<String> {
    match head {
        ast::Expr::Ident(ident) => Some(ident.syntax().text().to_string()),
        ast::Expr::Select(select) if select.default_expr().is_none() => {
            attr_name(select.attrpath()?.attrs().last()?)
        }
        _ => None,
    }
}
