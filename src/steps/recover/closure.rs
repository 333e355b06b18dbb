//! The old system's closure as `nix path-info --json` gives it: each path with its size,
//! which `room` checks against the root disk and `build` counts what it copied by.

use std::collections::HashMap;

/// The old system's closure in the volume's store: each path's NAR size. What the build
/// copies from it is counted in these sizes (Nix reports no bytes for a local copy).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Closure {
    sizes: HashMap<String, u64>,
}

impl Closure {
    /// The whole closure's size.
    pub fn total(&self) -> u64 {
        self.sizes.values().sum()
    }

    /// The bytes of those of `paths` in the closure.
    pub fn bytes_of<'a>(&self, paths: impl IntoIterator<Item = &'a str>) -> u64 {
        paths
            .into_iter()
            .filter_map(|path| self.sizes.get(path))
            .sum()
    }
}

/// Each path's `narSize` from `nix path-info --json`: a list of objects with their `path`
/// (Nix before 2.19) or an object keyed by path (later). A path Nix says is not valid has
/// no size and makes the answer unusable.
pub fn closure_of(json: &[u8]) -> Option<Closure> {
    let value: serde_json::Value = serde_json::from_slice(json).ok()?;
    let size = |info: &serde_json::Value| info.get("narSize")?.as_u64();
    let sizes: Option<HashMap<String, u64>> = match &value {
        serde_json::Value::Array(list) => list
            .iter()
            .map(|info| Some((info.get("path")?.as_str()?.to_string(), size(info)?)))
            .collect(),
        serde_json::Value::Object(map) => map
            .iter()
            .map(|(path, info)| Some((path.clone(), size(info)?)))
            .collect(),
        _ => None,
    };
    sizes
        .filter(|sizes| !sizes.is_empty())
        .map(|sizes| Closure { sizes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_shapes_of_path_info_give_each_paths_size() {
        let old = br#"[{"path":"/nix/store/a-top","narSize":520},{"path":"/nix/store/b-lib","narSize":300}]"#;
        let closure = closure_of(old).unwrap();
        assert_eq!(closure.total(), 820);
        assert_eq!(
            closure.bytes_of(["/nix/store/b-lib", "/nix/store/c-new"]),
            300
        );
        let new = br#"{"/nix/store/a-top":{"narSize":520},"/nix/store/b-lib":{"narSize":42}}"#;
        assert_eq!(closure_of(new).unwrap().total(), 562);
        // Nix 2.8 answers a path that is not valid with `"valid":false` and no size.
        let invalid = br#"[{"path":"/nix/store/a-top","valid":false}]"#;
        assert_eq!(closure_of(invalid), None);
        assert_eq!(closure_of(b"[]"), None);
        assert_eq!(closure_of(b"not json"), None);
    }
}
