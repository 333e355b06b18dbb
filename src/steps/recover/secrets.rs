//! boot-safety's check of what sops-nix and agenix decrypt with: the SSH host keys by
//! default (`sops.age.sshKeyPaths`, `sops.gnupg.sshKeyPaths`, `age.identityPaths`). On the
//! fresh machine those paths hold keys of its own unless the old machine's were carried and
//! restored; with the wrong key, activation fails ("0 successful groups required, got 0",
//! "no identity matched any of the recipients") and every service that needs a secret
//! stays down.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::card::{CardSaved, SavedReason};
use crate::config::Config;
use crate::escape::shown;
use crate::steps::host_identity::{self, on_machine, save::fingerprint};

use super::blocker::Blocker;

/// What the configuration decrypts with, as the evaluation gives it (`null` where the
/// module is not imported).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Secrets {
    /// How many secrets each declares: without any, nothing needs a key.
    #[serde(default)]
    pub sops_secrets: u64,
    #[serde(default)]
    pub age_secrets: u64,
    pub sops_age_keys: Option<Vec<String>>,
    pub sops_gnupg_keys: Option<Vec<String>>,
    pub age_identities: Option<Vec<String>>,
}

impl Secrets {
    /// The key paths secrets are decrypted with, each once.
    fn key_paths(&self) -> Vec<(&'static str, PathBuf)> {
        let mut paths: Vec<(&'static str, PathBuf)> = Vec::new();
        let mut add = |tool: &'static str, list: &Option<Vec<String>>| {
            for path in list.iter().flatten() {
                let path = PathBuf::from(path);
                if !paths.iter().any(|(_, p)| *p == path) {
                    paths.push((tool, path));
                }
            }
        };
        if self.sops_secrets > 0 {
            add("sops-nix", &self.sops_age_keys);
            add("sops-nix", &self.sops_gnupg_keys);
        }
        if self.age_secrets > 0 {
            add("agenix", &self.age_identities);
        }
        paths
    }
}

/// A host key carried from the old machine: its path and the fingerprint it had there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarriedKey {
    pub path: PathBuf,
    pub fingerprint: Option<String>,
}

impl CarriedKey {
    /// The host keys the recovery card says predestroy saved.
    pub fn from_card(saved: &[CardSaved]) -> Vec<CarriedKey> {
        saved
            .iter()
            .filter(|s| s.reason == SavedReason::HostKey)
            .map(|s| CarriedKey {
                path: s.path.clone(),
                fingerprint: s.fingerprint.clone(),
            })
            .collect()
    }

    /// The host keys predestroy's `host-identity` will save from this machine, with the
    /// fingerprints they have now.
    pub fn to_be_saved(cfg: &Config) -> Vec<CarriedKey> {
        host_identity::host_keys(&cfg.host.root)
            .into_iter()
            .map(|path| CarriedKey {
                fingerprint: fingerprint(&public_half(&on_machine(&cfg.host.root, &path))),
                path,
            })
            .collect()
    }
}

/// `<key>.pub`.
fn public_half(key: &Path) -> PathBuf {
    PathBuf::from(format!("{}.pub", key.display()))
}

/// A blocker for each key the secrets need that this machine does not have as the old
/// machine had it: missing, not carried, or carried but not put back.
pub fn blockers(secrets: &Secrets, root: &Path, carried_keys: &[CarriedKey]) -> Vec<Blocker> {
    secrets
        .key_paths()
        .into_iter()
        .filter_map(|(tool, path)| {
            let here = on_machine(root, &path);
            let public = public_half(&here);
            let carried = carried_keys.iter().find(|k| k.path == path);
            let problem = match carried {
                _ if !here.exists() => format!(
                    "{tool} decrypts the secrets with {}, which this machine does not have",
                    shown(&path)
                ),
                None => format!(
                    "{tool} decrypts the secrets with {}, which was not carried from the old \
                     machine: the key there now is this machine's own, and cannot decrypt what \
                     was encrypted for the old one",
                    shown(&path)
                ),
                Some(entry) => match (&entry.fingerprint, fingerprint(&public)) {
                    (Some(old), Some(now)) if *old != now => format!(
                        "{tool} decrypts the secrets with {}, which is {now} here, not the old \
                         machine's {old}: restore-host-identity did not put it back",
                        shown(&path)
                    ),
                    _ => return None,
                },
            };
            Some(Blocker {
                problem,
                nix: format!(
                    "put back the old key (run recover again and confirm restore-host-identity, or \
                     copy it from the old machine's backup to {}), or re-encrypt the secrets for \
                     this machine's key ({}) and push",
                    shown(&path),
                    if tool == "agenix" {
                        "add its public key to secrets.nix, then `agenix -r`"
                    } else {
                        "add its age key (`ssh-to-age < key.pub`) to .sops.yaml, then `sops updatekeys`"
                    }
                ),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn saved(path: &str, fingerprint: &str) -> CarriedKey {
        CarriedKey {
            path: path.into(),
            fingerprint: Some(fingerprint.into()),
        }
    }

    #[test]
    fn only_keys_of_declared_secrets_are_checked_and_each_once() {
        let secrets = Secrets {
            sops_secrets: 0,
            age_secrets: 2,
            sops_age_keys: Some(vec!["/etc/ssh/a".into()]),
            age_identities: Some(vec!["/etc/ssh/b".into(), "/etc/ssh/b".into()]),
            ..Secrets::default()
        };
        assert_eq!(
            secrets.key_paths(),
            [("agenix", PathBuf::from("/etc/ssh/b"))]
        );
    }

    #[test]
    fn a_key_missing_not_carried_or_not_restored_is_a_blocker() {
        let root = tempfile::tempdir().unwrap();
        let key = "/etc/ssh/ssh_host_ed25519_key";
        let here = on_machine(root.path(), Path::new(key));
        let secrets = Secrets {
            sops_secrets: 1,
            sops_age_keys: Some(vec![key.into()]),
            ..Secrets::default()
        };
        let missing = blockers(&secrets, root.path(), &[]);
        assert!(missing[0].problem.contains("does not have"), "{missing:?}");
        fs::create_dir_all(here.parent().unwrap()).unwrap();
        fs::write(&here, "fresh").unwrap();
        let fresh = blockers(&secrets, root.path(), &[]);
        assert!(fresh[0].problem.contains("was not carried"), "{fresh:?}");
        assert!(fresh[0].nix.contains("sops updatekeys"), "{fresh:?}");
        // Carried; this machine's own public half says it was not put back.
        fs::write(
            format!("{}.pub", here.display()),
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl x\n",
        )
        .unwrap();
        let now = fingerprint(Path::new(&format!("{}.pub", here.display()))).unwrap();
        let stale = blockers(&secrets, root.path(), &[saved(key, "SHA256:old")]);
        assert!(
            stale[0].problem.contains("did not put it back"),
            "{stale:?}"
        );
        assert_eq!(blockers(&secrets, root.path(), &[saved(key, &now)]), []);
    }
}
