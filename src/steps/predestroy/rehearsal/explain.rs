//! Why the pushed commit does not evaluate, in the operator's terms: a file the flake
//! imports that `/etc/nixos` has but the pushed commit lacks (untracked, ignored, staged or
//! only committed here), an attribute that does not exist, or another failure lifeboat
//! knows; files are named by their place in the checkout, where the fix is made.

use std::path::Path;

use crate::config::Config;
use crate::escape::{escape_bytes, shown};
use crate::exec::git::{self, FileState};
use crate::nixlog::KnownError;
use crate::steps::recover::boot_safety::EvalFailure;

/// The blocker for a failed evaluation of the pushed commit `short`.
pub fn eval_failure(cfg: &Config, host: &str, short: &str, failure: &EvalFailure) -> String {
    let repo = &cfg.config_repo.path;
    let error = failure.error(repo);
    let mut causes: Vec<String> = failure
        .known(host)
        .iter()
        .map(|known| match known {
            KnownError::UntrackedInFlake { file } => missing_file(repo, file),
            other => other.to_string(),
        })
        .collect();
    if causes.is_empty()
        && let Some(attribute) = missing_attribute(&error)
    {
        causes.push(format!(
            "the configuration reads the attribute '{attribute}', which does not exist (a \
             typo, or an option or package the pinned inputs do not have)"
        ));
    }
    let causes = if causes.is_empty() {
        String::new()
    } else {
        format!(": {}", causes.join("; "))
    };
    format!(
        "the pushed commit {short} does not evaluate as nixosConfigurations.{host}{causes} \
         ({error}). Recovery would stop there: fix it in {}, commit and push, then run \
         predestroy again",
        shown(repo)
    )
}

/// A file the pushed commit imports but does not hold, with what it is in the checkout.
fn missing_file(repo: &Path, file: &str) -> String {
    let shown_file = escape_bytes(file.as_bytes());
    if !repo.join(file).exists() {
        return format!(
            "it imports {shown_file}, which is neither in the pushed commit nor in {}",
            shown(repo)
        );
    }
    const COMMIT: &str = "commit and push it";
    let (state, fix) = match git::file_state(repo, Path::new(file)) {
        Ok(state @ FileState::Ignored) => (
            state.to_string(),
            "stop ignoring it (.gitignore) and commit it, or move what it holds into a tracked file",
        ),
        Ok(state) => (state.to_string(), COMMIT),
        Err(_) => ("not in the pushed commit".to_string(), COMMIT),
    };
    format!(
        "it imports {shown_file}, which {} has but the pushed commit does not: there it is \
         {state}; {fix}",
        shown(repo)
    )
}

/// The attribute of Nix's "attribute 'x' missing".
fn missing_attribute(error: &str) -> Option<&str> {
    let rest = &error[error.find("attribute '")? + "attribute '".len()..];
    let end = rest.find("' missing")?;
    Some(&rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_attribute_is_named() {
        assert_eq!(
            missing_attribute("error: attribute 'enabel' missing at /etc/nixos/a.nix:3:5:"),
            Some("enabel")
        );
        assert_eq!(missing_attribute("error: undefined variable 'x'"), None);
    }
}
