//! ARCHITECTURE.md and the README's "Changing it" are the map of the code: each names every
//! top-level module of the library, so a new module cannot go unmentioned.

// Tests and benchmarks stop at the first thing they cannot set up: unwrap says where.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::Path;

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
