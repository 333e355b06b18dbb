//! The rehearsal's comparison of the nixpkgs the pushed `flake.lock` pins with the one the
//! running system was built from: when they differ, recovery day builds or downloads most
//! of the system again instead of taking it from the volume's store.

use serde_json::Value;

/// The revision of nixpkgs the lock pins: the `rev` of the node the root's `nixpkgs` input
/// names.
pub fn locked_revision(lock: &Value) -> Option<&str> {
    let root = lock.get("root").and_then(Value::as_str).unwrap_or("root");
    let nodes = lock.get("nodes")?;
    let node = nodes.get(root)?.get("inputs")?.get("nixpkgs")?.as_str()?;
    nodes.get(node)?.get("locked")?.get("rev")?.as_str()
}

/// The short revision a NixOS version ends with (`25.11.20251130.abc1234`); none for a
/// version built without one (`25.11pre-git`, `25.11`).
pub fn running_revision(version: &str) -> Option<&str> {
    let last = version.split_whitespace().next()?.rsplit('.').next()?;
    (last.len() >= 7 && last.bytes().all(|b| b.is_ascii_hexdigit())).then_some(last)
}

/// The warning when the lock pins another nixpkgs than the running system `version` was
/// built from; none when they agree or either is unknown.
pub fn compare(lock: &Value, version: &str) -> Option<String> {
    let locked = locked_revision(lock)?;
    let running = running_revision(version)?;
    if locked.starts_with(running) {
        return None;
    }
    Some(format!(
        "the pushed flake.lock pins nixpkgs {}, but the running system ({}) was built from \
         {running}: on recovery day most of the system is built or downloaded again instead \
         of taken from the volume's store. Build and switch this machine to the pushed commit \
         now to have it there",
        &locked[..locked.len().min(12)],
        crate::escape::escape_bytes(version.trim().as_bytes())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(rev: &str) -> Value {
        serde_json::json!({
            "nodes": {
                "root": { "inputs": { "nixpkgs": "nixpkgs_2" } },
                "nixpkgs_2": { "locked": { "type": "github", "rev": rev } }
            },
            "root": "root",
            "version": 7
        })
    }

    #[test]
    fn the_running_revision_is_the_versions_last_part() {
        assert_eq!(running_revision("25.11.20251130.abc1234"), Some("abc1234"));
        assert_eq!(
            running_revision("25.11.20251130.abc1234 (Xantusia)\n"),
            Some("abc1234")
        );
        assert_eq!(running_revision("25.11pre-git"), None);
        assert_eq!(running_revision("25.11"), None);
    }

    #[test]
    fn another_nixpkgs_is_a_warning_with_both_revisions() {
        let rev = "abc1234def5678abc1234def5678abc1234def56";
        assert_eq!(compare(&lock(rev), "25.11.20251130.abc1234"), None);
        let warning = compare(&lock(rev), "25.11.20251101.0123456").unwrap();
        assert!(warning.contains("abc1234def56"), "{warning}");
        assert!(warning.contains("0123456"), "{warning}");
        // Unknown on either side: nothing to say.
        assert_eq!(compare(&lock(rev), "25.11"), None);
        assert_eq!(
            compare(&serde_json::json!({}), "25.11.20251101.0123456"),
            None
        );
    }
}
