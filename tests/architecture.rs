//! ARCHITECTURE.md and the README's "Changing it" are the map of the code: each names every
//! top-level module of the library, so a new module cannot go unmentioned. And the modules
//! use each other without a circle.

// Tests and benchmarks stop at the first thing they cannot set up: unwrap says where.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

fn read(file: &str) -> String {
    fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).unwrap()
}

/// The `pub mod` names of src/lib.rs.
fn modules() -> Vec<String> {
    read("src/lib.rs")
        .lines()
        .filter_map(|line| line.strip_prefix("pub mod "))
        .map(|name| name.trim_end_matches(';').to_string())
        .collect()
}

fn assert_names_every_module(text: &str, what: &str) {
    let modules = modules();
    assert!(modules.len() > 10, "{modules:?}");
    let missing: Vec<&String> = modules
        .iter()
        .filter(|m| !text.contains(&format!("`{m}`")))
        .collect();
    assert!(missing.is_empty(), "{what} does not name {missing:?}");
}

#[test]
fn the_architecture_names_every_top_level_module() {
    assert_names_every_module(&read("ARCHITECTURE.md"), "ARCHITECTURE.md");
}

#[test]
fn the_readme_names_every_top_level_module_where_it_says_how_to_change_it() {
    let readme = read("README.md");
    let changing = readme
        .split("## Changing it")
        .nth(1)
        .expect("a \"Changing it\" section");
    assert_names_every_module(changing, "README's \"Changing it\"");
}

/// No module imports a module that imports it back, directly or through others: the modules
/// of `src/` and what each one uses form a graph without a circle, so each can be read, and
/// changed, knowing only the modules below it.
///
/// The graph is built from the source text. A module is a file: `src/a/b.rs` and
/// `src/a/b/mod.rs` are `a::b`; an inline `mod tests { … }` belongs to its file, so its
/// `use super::*` is the file using itself; the crate roots (`lib.rs`, `main.rs`) only
/// declare modules and are left out. A module uses another when it names it in a path:
/// `use crate::…`, `use super::…`, `use self::…`, a `use` or a path in code that starts with
/// a child module's name, and `crate::…`/`super::…` paths in code. A path leads to the
/// deepest module it names (`crate::steps::recover::boot_safety::Attached` to
/// `steps::recover::boot_safety`), and an item that module only imports leads on to the
/// module it was imported from: what counts is where the item is defined.
///
/// Declaring a child (`mod x;`) is structure, not use, and so is re-exporting a child's item
/// (`pub use x::Item;`) when the parent's own code does not use it: a parent that only
/// gathers its children's items under its name is not a circle with them, and neither is a
/// child using what its parent defines while the parent uses none of its children. What is
/// one is a child needing something the parent defines in its own body while the parent
/// uses that child; the shared item belongs in a module of its own that both use.
///
/// Comments, doc comments and literals are blanked before scanning: an intra-doc link names
/// a module without needing it. Nor does a visibility (`pub(in crate::steps)`) use one.
#[test]
fn no_module_imports_a_module_that_imports_it_back() {
    let mut graph = Graph::of_sources();
    assert!(
        graph.edges.values().map(BTreeMap::len).sum::<usize>() > 300,
        "the scan found too few uses to be reading the code"
    );
    // The scan's own rules, each on a use that stands for it.
    assert!(graph.uses("tui::state", "report"), "`use crate::…`");
    assert!(
        graph.uses("steps", "steps::inspect"),
        "a child's name in code"
    );
    assert!(
        graph.uses("steps::recover", "flow::engine"),
        "an item re-exported by `flow` leads to the module that defines it"
    );
    assert!(
        !graph.uses("flow", "flow::engine"),
        "a re-export the parent's own code does not use is no use"
    );
    let circles: Vec<String> = graph
        .components()
        .into_iter()
        .filter(|component| component.len() > 1)
        .map(|component| graph.describe(&component))
        .collect();
    assert!(
        circles.is_empty(),
        "modules that import each other, with where each uses the next:\n\n{}",
        circles.join("\n")
    );
    // And the search finds a circle where there is one: `tui::state` uses `report`; a use
    // back makes one.
    graph.edges.entry("report".into()).or_default().insert(
        "tui::state".into(),
        Evidence {
            file: "src/report.rs".into(),
            line: 0,
            path: "crate::tui::state".into(),
        },
    );
    assert!(
        graph.components().iter().any(|component| {
            component.contains(&"report".to_string())
                && component.contains(&"tui::state".to_string())
        }),
        "a use back is found as a circle"
    );
}

/// A place a module names another: the file, the line and the path as written.
struct Evidence {
    file: String,
    line: usize,
    path: String,
}

/// A token of blanked source: an identifier, `::` or one punctuation character.
struct Token {
    text: String,
    line: usize,
}

/// A path named in a module, as written, with where.
#[derive(Clone)]
struct Named {
    segments: Vec<String>,
    /// How many inline modules (`mod tests { … }`) the path sits in: its first `super`s
    /// leave those, not the file's module.
    inline: usize,
    line: usize,
}

/// One file's module and what it names.
struct Source {
    module: String,
    file: String,
    /// Paths of `use` declarations, but for re-exports of a named item, and paths in code.
    uses: Vec<Named>,
    /// Re-exports (`pub use`, `pub(crate) use`): the name given and the path.
    reexports: Vec<(String, Named)>,
    /// Every `use` of the file's own scope, re-export or not: the name it brings in and the
    /// path, by which a path through this module reaches the module it names.
    imports: Vec<(String, Named)>,
    /// The identifiers of the code outside `use` declarations.
    words: BTreeSet<String>,
}

struct Graph {
    modules: BTreeSet<String>,
    /// For each module, what it names in its file scope: name → absolute path.
    imports: BTreeMap<String, BTreeMap<String, Vec<String>>>,
    edges: BTreeMap<String, BTreeMap<String, Evidence>>,
}

impl Graph {
    fn of_sources() -> Graph {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        rust_files(&root.join("src"), &mut files);
        let sources: Vec<Source> = files
            .iter()
            .filter_map(|file| {
                let relative = file.strip_prefix(root).unwrap().to_str().unwrap();
                let module = module_of(relative)?;
                Some(Source::read(
                    module,
                    relative,
                    &fs::read_to_string(file).unwrap(),
                ))
            })
            .collect();
        let mut graph = Graph {
            modules: sources.iter().map(|s| s.module.clone()).collect(),
            imports: BTreeMap::new(),
            edges: BTreeMap::new(),
        };
        for source in &sources {
            let imports = source
                .imports
                .iter()
                .filter_map(|(name, named)| {
                    Some((name.clone(), graph.absolute(&source.module, named)?))
                })
                .collect();
            graph.imports.insert(source.module.clone(), imports);
        }
        for source in &sources {
            let used_reexports = source
                .reexports
                .iter()
                .filter(|(name, _)| source.words.contains(name))
                .map(|(_, named)| named);
            for named in source.uses.iter().chain(used_reexports) {
                let Some(path) = graph.absolute(&source.module, named) else {
                    continue;
                };
                let target = graph.defining_module(path);
                if target.is_empty() || target == source.module {
                    continue;
                }
                let evidence = Evidence {
                    file: source.file.clone(),
                    line: named.line,
                    path: named.segments.join("::"),
                };
                graph
                    .edges
                    .entry(source.module.clone())
                    .or_default()
                    .entry(target)
                    .or_insert(evidence);
            }
        }
        graph
    }

    fn uses(&self, from: &str, to: &str) -> bool {
        self.edges
            .get(from)
            .is_some_and(|used| used.contains_key(to))
    }

    /// The path from the crate root that `named`, written in `module`, stands for; `None`
    /// for a path outside the crate (`std::…`, another crate, a local enum's variants).
    fn absolute(&self, module: &str, named: &Named) -> Option<Vec<String>> {
        let mut base: Vec<String> = module.split("::").map(String::from).collect();
        let mut segments = named.segments.as_slice();
        match segments.first()?.as_str() {
            "crate" => {
                base.clear();
                segments = &segments[1..];
            }
            "super" | "self" => {
                let mut inline = named.inline;
                while let Some(first) = segments.first() {
                    match first.as_str() {
                        "self" => {}
                        "super" if inline > 0 => inline -= 1,
                        "super" => {
                            base.pop()?;
                        }
                        _ => break,
                    }
                    segments = &segments[1..];
                }
            }
            child if named.inline == 0 && self.modules.contains(&format!("{module}::{child}")) => {}
            _ => return None,
        }
        base.extend(segments.iter().cloned());
        Some(base)
    }

    /// The deepest module `path` names, followed through the imports of that module to
    /// where the item it names is defined.
    fn defining_module(&self, mut path: Vec<String>) -> String {
        for _ in 0..16 {
            let depth = (0..=path.len())
                .rev()
                .find(|&n| n == 0 || self.modules.contains(&path[..n].join("::")))
                .unwrap();
            let module = path[..depth].join("::");
            let imported = path
                .get(depth)
                .and_then(|name| self.imports.get(&module)?.get(name));
            match imported {
                Some(target) if *target != path[..=depth] => {
                    path = target.iter().chain(&path[depth + 1..]).cloned().collect();
                }
                _ => return module,
            }
        }
        panic!("imports in a loop at {path:?}")
    }

    /// The strongly connected components (Tarjan's algorithm): each circle lies within one.
    fn components(&self) -> Vec<Vec<String>> {
        struct Walk<'g> {
            graph: &'g Graph,
            index: BTreeMap<&'g str, usize>,
            low: BTreeMap<&'g str, usize>,
            stack: Vec<&'g str>,
            found: Vec<Vec<String>>,
        }
        impl<'g> Walk<'g> {
            fn visit(&mut self, module: &'g str) {
                let n = self.index.len();
                self.index.insert(module, n);
                self.low.insert(module, n);
                self.stack.push(module);
                for next in self
                    .graph
                    .edges
                    .get(module)
                    .into_iter()
                    .flat_map(BTreeMap::keys)
                {
                    if !self.index.contains_key(next.as_str()) {
                        self.visit(next);
                        self.low
                            .insert(module, self.low[module].min(self.low[next.as_str()]));
                    } else if self.stack.contains(&next.as_str()) {
                        self.low
                            .insert(module, self.low[module].min(self.index[next.as_str()]));
                    }
                }
                if self.low[module] == self.index[module] {
                    let at = self.stack.iter().rposition(|m| *m == module).unwrap();
                    let mut component: Vec<String> =
                        self.stack.drain(at..).map(String::from).collect();
                    component.sort();
                    self.found.push(component);
                }
            }
        }
        let mut walk = Walk {
            graph: self,
            index: BTreeMap::new(),
            low: BTreeMap::new(),
            stack: Vec::new(),
            found: Vec::new(),
        };
        for module in &self.modules {
            if !walk.index.contains_key(module.as_str()) {
                walk.visit(module);
            }
        }
        walk.found
    }

    /// A component's modules and each use between them, with where it is.
    fn describe(&self, component: &[String]) -> String {
        let mut text = format!("{}\n", component.join(", "));
        for from in component {
            for (to, evidence) in self.edges.get(from).into_iter().flatten() {
                if component.contains(to) {
                    text += &format!(
                        "  {from} -> {to}: {}:{} `{}`\n",
                        evidence.file, evidence.line, evidence.path
                    );
                }
            }
        }
        text
    }
}

fn rust_files(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
}

/// `src/a/b.rs` and `src/a/b/mod.rs` → `a::b`; the crate roots → `None`.
fn module_of(file: &str) -> Option<String> {
    let path = file.strip_prefix("src/")?.strip_suffix(".rs")?;
    if path == "lib" || path == "main" {
        return None;
    }
    let path = path.strip_suffix("/mod").unwrap_or(path);
    Some(path.replace('/', "::"))
}

impl Source {
    fn read(module: String, file: &str, text: &str) -> Source {
        let tokens = tokens(&blanked(text));
        let mut source = Source {
            module,
            file: file.to_string(),
            uses: Vec::new(),
            reexports: Vec::new(),
            imports: Vec::new(),
            words: BTreeSet::new(),
        };
        let text_of = |i: usize| tokens.get(i).map_or("", |t: &Token| t.text.as_str());
        // The brace depth at which each enclosing inline module opened.
        let mut inline: Vec<usize> = Vec::new();
        let mut depth = 0;
        let mut i = 0;
        while i < tokens.len() {
            match text_of(i) {
                "{" => depth += 1,
                "}" => {
                    depth -= 1;
                    if inline.last() == Some(&depth) {
                        inline.pop();
                    }
                }
                "mod" if text_of(i + 2) == "{" => {
                    inline.push(depth);
                    depth += 1;
                    i += 3;
                    continue;
                }
                "use" => {
                    let reexport = text_of(i.wrapping_sub(1)) == "pub"
                        || (text_of(i.wrapping_sub(1)) == ")"
                            && text_of(i.wrapping_sub(4)) == "pub");
                    let at_file_level = depth == 0;
                    let line = tokens[i].line;
                    i += 1;
                    let mut paths = Vec::new();
                    use_tree(&tokens, &mut i, Vec::new(), &mut paths);
                    for (segments, name) in paths {
                        let named = Named {
                            segments,
                            inline: inline.len(),
                            line,
                        };
                        if let Some(name) = &name
                            && at_file_level
                        {
                            source.imports.push((name.clone(), named.clone()));
                        }
                        match name {
                            Some(name) if reexport => source.reexports.push((name, named)),
                            _ => source.uses.push(named),
                        }
                    }
                    continue;
                }
                word if is_identifier(word) => {
                    source.words.insert(word.to_string());
                    let starts_path = !matches!(text_of(i.wrapping_sub(1)), "::" | ".")
                        && text_of(i + 1) == "::"
                        && is_identifier(text_of(i + 2));
                    // `pub(in crate::a)` says who may see an item: no use of `a`.
                    let visibility = text_of(i.wrapping_sub(1)) == "in"
                        && text_of(i.wrapping_sub(2)) == "("
                        && text_of(i.wrapping_sub(3)) == "pub";
                    if starts_path && !visibility {
                        let line = tokens[i].line;
                        let mut segments = vec![word.to_string()];
                        while text_of(i + 1) == "::" && is_identifier(text_of(i + 2)) {
                            segments.push(text_of(i + 2).to_string());
                            i += 2;
                        }
                        source.uses.push(Named {
                            segments,
                            inline: inline.len(),
                            line,
                        });
                    }
                }
                _ => {}
            }
            i += 1;
        }
        source
    }
}

/// Reads a `use` tree from `tokens[*i]` up to its end (`,`, `}` or `;`, not consumed
/// except `;`), adding each path it imports with the name it brings in (`None` for `*`).
fn use_tree(
    tokens: &[Token],
    i: &mut usize,
    mut prefix: Vec<String>,
    out: &mut Vec<(Vec<String>, Option<String>)>,
) {
    let text_of = |i: usize| tokens.get(i).map_or(";", |t: &Token| t.text.as_str());
    if text_of(*i) == "::" {
        *i += 1;
    }
    loop {
        match text_of(*i) {
            "{" => {
                *i += 1;
                while text_of(*i) != "}" {
                    use_tree(tokens, i, prefix.clone(), out);
                    if text_of(*i) == "," {
                        *i += 1;
                    }
                }
                *i += 1;
                break;
            }
            "*" => {
                *i += 1;
                out.push((prefix, None));
                break;
            }
            word => {
                prefix.push(word.to_string());
                *i += 1;
                if text_of(*i) == "::" {
                    *i += 1;
                    continue;
                }
                if word == "self" {
                    prefix.pop();
                }
                let mut name = prefix.last().cloned();
                if text_of(*i) == "as" {
                    name = Some(text_of(*i + 1).to_string());
                    *i += 2;
                }
                out.push((prefix, name));
                break;
            }
        }
    }
    if text_of(*i) == ";" {
        *i += 1;
    }
}

fn is_identifier(text: &str) -> bool {
    text.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
}

/// Identifiers, `::` and single punctuation characters, each with its line.
fn tokens(code: &str) -> Vec<Token> {
    let chars: Vec<char> = code.chars().collect();
    let mut tokens = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            tokens.push(Token { text, line });
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            tokens.push(Token {
                text: "::".to_string(),
                line,
            });
            i += 2;
        } else {
            tokens.push(Token {
                text: c.to_string(),
                line,
            });
            i += 1;
        }
    }
    tokens
}

/// The source with comments, strings and character literals turned to spaces, lines kept.
fn blanked(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out: Vec<char> = Vec::with_capacity(chars.len());
    let blank = |out: &mut Vec<char>, from: &[char]| {
        out.extend(from.iter().map(|&c| if c == '\n' { '\n' } else { ' ' }));
    };
    let identifier = |c: char| c.is_alphanumeric() || c == '_';
    let mut i = 0;
    while i < chars.len() {
        let rest = &chars[i..];
        let after_word = i > 0 && identifier(chars[i - 1]);
        let end = if rest.starts_with(&['/', '/']) {
            rest.iter().position(|&c| c == '\n').unwrap_or(rest.len())
        } else if rest.starts_with(&['/', '*']) {
            let mut nesting = 0;
            let mut j = 0;
            loop {
                if rest[j..].starts_with(&['/', '*']) {
                    nesting += 1;
                    j += 2;
                } else if rest[j..].starts_with(&['*', '/']) {
                    nesting -= 1;
                    j += 2;
                    if nesting == 0 {
                        break j;
                    }
                } else {
                    j += 1;
                }
            }
        } else if !after_word && (rest.starts_with(&['r', '"']) || rest.starts_with(&['r', '#'])) {
            raw_string_end(&rest[1..]).map_or(0, |n| n + 1)
        } else if !after_word
            && (rest.starts_with(&['b', 'r', '"']) || rest.starts_with(&['b', 'r', '#']))
        {
            raw_string_end(&rest[2..]).map_or(0, |n| n + 2)
        } else if rest[0] == '"' {
            let mut j = 1;
            while rest[j] != '"' {
                j += if rest[j] == '\\' { 2 } else { 1 };
            }
            j + 1
        } else if rest[0] == '\'' && rest.get(1) == Some(&'\\') {
            2 + rest[2..].iter().position(|&c| c == '\'').unwrap() + 1
        } else if rest[0] == '\'' && rest.get(2) == Some(&'\'') {
            3
        } else {
            0
        };
        if end == 0 {
            out.push(chars[i]);
            i += 1;
        } else {
            blank(&mut out, &rest[..end]);
            i += end;
        }
    }
    out.into_iter().collect()
}

/// The length of a raw string from its `#`s or opening quote, `None` if it is not one
/// (`r#ident`, a raw identifier).
fn raw_string_end(rest: &[char]) -> Option<usize> {
    let hashes = rest.iter().take_while(|&&c| c == '#').count();
    if rest.get(hashes) != Some(&'"') {
        return None;
    }
    let closing: Vec<char> = std::iter::once('"')
        .chain(std::iter::repeat_n('#', hashes))
        .collect();
    let body = hashes + 1;
    let at = (body..rest.len()).find(|&j| rest[j..].starts_with(&closing))?;
    Some(at + closing.len())
}
