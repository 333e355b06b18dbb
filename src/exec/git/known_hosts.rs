//! Checking an SSH server's host key against OpenSSH known_hosts files, the way `ssh`
//! does: plain and hashed (`|1|salt|hash`) host names, `[host]:port`, wildcards,
//! negation, `@revoked`. libgit2 only reads `~/.ssh/known_hosts`; lifeboat must also trust
//! the copy on the volume, so it checks the key itself.

use std::fs;
use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// A host key as the server presented it.
#[derive(Clone, PartialEq, Eq)]
pub struct HostKey {
    /// The SSH wire encoding (what known_hosts stores in base64).
    pub blob: Vec<u8>,
}

impl HostKey {
    /// The key type named inside the blob, e.g. `ssh-ed25519`.
    pub fn key_type(&self) -> String {
        key_type_of(&self.blob).unwrap_or_else(|| "unknown".to_string())
    }

    /// `SHA256:<base64>`, exactly as `ssh-keygen -lf` and `ssh` print it.
    pub fn fingerprint(&self) -> String {
        format!(
            "SHA256:{}",
            STANDARD_NO_PAD.encode(Sha256::digest(&self.blob))
        )
    }

    /// `<type> <base64>`, the key part of a known_hosts line.
    pub fn openssh(&self) -> String {
        format!("{} {}", self.key_type(), STANDARD.encode(&self.blob))
    }

    /// The known_hosts line that trusts this key for `host` (as the error names it), for
    /// the flow to append once the operator has accepted the key.
    pub fn known_hosts_line(&self, host: &str) -> String {
        format!("{host} {}", self.openssh())
    }
}

impl std::fmt::Debug for HostKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HostKey({} {})", self.key_type(), self.fingerprint())
    }
}

/// What the known_hosts files say about a host's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A line for this host holds exactly this key.
    Known,
    /// No line for this host holds this key or another key of its type. `other_types`
    /// lists key types the files do know for the host (the server offered a different one).
    Unknown { other_types: Vec<String> },
    /// A line for this host holds a different key of the same type, or marks this key
    /// `@revoked`: someone may be in the middle.
    Changed { file: PathBuf, line: usize },
}

/// Check `key` for `host_name` (`host` or `[host]:port`, see
/// [`super::url::SshEndpoint::known_hosts_name`]) against every file in `files`.
/// Missing or unreadable files count as empty: a fresh machine has none.
pub fn check(files: &[PathBuf], host_name: &str, key: &HostKey) -> Verdict {
    let host_name = host_name.to_ascii_lowercase();
    let key_type = key.key_type();
    let mut known = false;
    let mut changed = None;
    let mut other_types = Vec::new();
    for file in files {
        let Ok(text) = fs::read_to_string(file) else {
            continue;
        };
        for (index, line) in text.lines().enumerate() {
            let Some(entry) = Entry::parse(line) else {
                continue;
            };
            if !entry.matches_host(&host_name) {
                continue;
            }
            let here = || Verdict::Changed {
                file: file.clone(),
                line: index + 1,
            };
            match entry.marker {
                Marker::CertAuthority => {}
                Marker::Revoked if entry.blob == key.blob => return here(),
                Marker::Revoked => {}
                Marker::None if entry.blob == key.blob => known = true,
                Marker::None if key_type_of(&entry.blob).as_deref() == Some(&key_type) => {
                    changed.get_or_insert_with(here);
                }
                Marker::None => other_types.extend(key_type_of(&entry.blob)),
            }
        }
    }
    if known {
        return Verdict::Known;
    }
    if let Some(changed) = changed {
        return changed;
    }
    other_types.sort();
    other_types.dedup();
    Verdict::Unknown { other_types }
}

#[derive(Debug, PartialEq, Eq)]
enum Marker {
    None,
    CertAuthority,
    Revoked,
}

/// One usable known_hosts line.
struct Entry<'a> {
    marker: Marker,
    hosts: &'a str,
    blob: Vec<u8>,
}

impl<'a> Entry<'a> {
    fn parse(line: &'a str) -> Option<Entry<'a>> {
        let mut fields = line.split_whitespace();
        let mut first = fields.next()?;
        if first.starts_with('#') {
            return None;
        }
        let marker = match first {
            "@cert-authority" => Marker::CertAuthority,
            "@revoked" => Marker::Revoked,
            _ => Marker::None,
        };
        if marker != Marker::None {
            first = fields.next()?;
        }
        let _key_type = fields.next()?;
        let blob = STANDARD.decode(fields.next()?).ok()?;
        Some(Entry {
            marker,
            hosts: first,
            blob,
        })
    }

    /// OpenSSH's rule: some pattern matches and no negated pattern does.
    fn matches_host(&self, host_name: &str) -> bool {
        if let Some(hashed) = self.hosts.strip_prefix("|1|") {
            return hashed_matches(hashed, host_name);
        }
        let mut matched = false;
        for pattern in self.hosts.split(',') {
            let pattern = pattern.to_ascii_lowercase();
            match pattern.strip_prefix('!') {
                Some(negated) if wildcard_match(negated, host_name) => return false,
                Some(_) => {}
                None => matched |= wildcard_match(&pattern, host_name),
            }
        }
        matched
    }
}

/// `salt|hash`, both base64: HMAC-SHA1 of the host name keyed with the salt.
fn hashed_matches(salt_and_hash: &str, host_name: &str) -> bool {
    let Some((salt, hash)) = salt_and_hash.split_once('|') else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (STANDARD.decode(salt), STANDARD.decode(hash)) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(&salt) else {
        return false;
    };
    mac.update(host_name.as_bytes());
    mac.verify_slice(&hash).is_ok()
}

/// `*` matches any run of characters, `?` exactly one.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut backtrack = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                backtrack = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match backtrack {
                Some((star, from)) => {
                    pi = star + 1;
                    ti = from + 1;
                    backtrack = Some((star, from + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// The first string of an SSH wire-format key: its type.
fn key_type_of(blob: &[u8]) -> Option<String> {
    let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
    let name = blob.get(4..4 + len)?;
    String::from_utf8(name.to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(key_type: &str, body: &[u8]) -> Vec<u8> {
        let mut blob = (key_type.len() as u32).to_be_bytes().to_vec();
        blob.extend_from_slice(key_type.as_bytes());
        blob.extend_from_slice(&(body.len() as u32).to_be_bytes());
        blob.extend_from_slice(body);
        blob
    }

    fn key(key_type: &str, body: &[u8]) -> HostKey {
        HostKey {
            blob: blob(key_type, body),
        }
    }

    fn file_with(lines: &str) -> (tempfile::TempDir, Vec<PathBuf>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        fs::write(&path, lines).unwrap();
        (dir, vec![path])
    }

    fn hashed_name(salt: &[u8], host: &str) -> String {
        let mut mac = Hmac::<Sha1>::new_from_slice(salt).unwrap();
        mac.update(host.as_bytes());
        let hash = mac.finalize().into_bytes();
        format!("|1|{}|{}", STANDARD.encode(salt), STANDARD.encode(hash))
    }

    #[test]
    fn plain_and_port_forms_match_only_their_host() {
        let k = key("ssh-ed25519", b"one");
        let (_d, files) = file_with(&format!(
            "# comment\n\nexample.com,10.0.0.1 {}\n[127.0.0.1]:2222 {}\n",
            k.openssh(),
            k.openssh()
        ));
        assert_eq!(check(&files, "example.com", &k), Verdict::Known);
        assert_eq!(check(&files, "EXAMPLE.com", &k), Verdict::Known);
        assert_eq!(check(&files, "[127.0.0.1]:2222", &k), Verdict::Known);
        assert!(matches!(
            check(&files, "127.0.0.1", &k),
            Verdict::Unknown { .. }
        ));
        assert!(matches!(
            check(&files, "[example.com]:2222", &k),
            Verdict::Unknown { .. }
        ));
    }

    #[test]
    fn hashed_entries_match_by_hmac() {
        let k = key("ssh-ed25519", b"one");
        let line = format!(
            "{} {}\n",
            hashed_name(b"0123456789abcdefghij", "[h.example]:2200"),
            k.openssh()
        );
        let (_d, files) = file_with(&line);
        assert_eq!(check(&files, "[h.example]:2200", &k), Verdict::Known);
        assert!(matches!(
            check(&files, "h.example", &k),
            Verdict::Unknown { .. }
        ));
    }

    #[test]
    fn another_key_of_the_same_type_is_a_change_with_its_line() {
        let presented = key("ssh-ed25519", b"new");
        let stored = key("ssh-ed25519", b"old");
        let (_d, files) = file_with(&format!(
            "other {}\nhost {}\n",
            presented.openssh(),
            stored.openssh()
        ));
        assert_eq!(
            check(&files, "host", &presented),
            Verdict::Changed {
                file: files[0].clone(),
                line: 2
            }
        );
    }

    #[test]
    fn a_key_of_another_type_leaves_the_presented_one_unknown() {
        let presented = key("ecdsa-sha2-nistp256", b"e");
        let stored = key("ssh-ed25519", b"d");
        let (_d, files) = file_with(&format!("host {}\n", stored.openssh()));
        assert_eq!(
            check(&files, "host", &presented),
            Verdict::Unknown {
                other_types: vec!["ssh-ed25519".into()]
            }
        );
    }

    #[test]
    fn one_matching_line_in_any_file_is_enough() {
        let presented = key("ssh-ed25519", b"k");
        let (_d1, mut files) = file_with(&format!("host {}\n", key("ssh-ed25519", b"x").openssh()));
        let (_d2, second) = file_with(&format!("host {}\n", presented.openssh()));
        files.extend(second);
        files.push(PathBuf::from("/nonexistent/known_hosts"));
        assert_eq!(check(&files, "host", &presented), Verdict::Known);
    }

    #[test]
    fn wildcards_negation_revocation_and_cert_authorities() {
        let k = key("ssh-ed25519", b"k");
        let (_d, files) = file_with(&format!(
            "*.example.com,!bad.example.com {k}\n@cert-authority * {k}\n@revoked gone.example.org {k}\n",
            k = k.openssh()
        ));
        assert_eq!(check(&files, "git.example.com", &k), Verdict::Known);
        assert!(matches!(
            check(&files, "bad.example.com", &k),
            Verdict::Unknown { .. }
        ));
        assert!(matches!(
            check(&files, "gone.example.org", &k),
            Verdict::Changed { line: 3, .. }
        ));
        assert!(wildcard_match("h?st*", "host.x"));
        assert!(!wildcard_match("h?st", "hoost"));
    }

    #[test]
    fn fingerprints_look_like_openssh() {
        let k = key("ssh-ed25519", b"k");
        let fp = k.fingerprint();
        assert!(fp.starts_with("SHA256:"), "{fp}");
        assert!(!fp.ends_with('='), "{fp}");
        assert_eq!(fp.len(), "SHA256:".len() + 43);
        assert_eq!(k.key_type(), "ssh-ed25519");
    }
}
