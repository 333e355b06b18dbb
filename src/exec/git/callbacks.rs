//! Credentials, host-key checks and progress for one network operation: the libgit2
//! callbacks, and the state they leave behind so a failure becomes a precise [`GitError`].

use std::cell::RefCell;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use git2::{CertificateCheckStatus, Cred, CredentialType, ErrorClass, ErrorCode, RemoteCallbacks};

use super::error::{Cause, GitError};
use super::known_hosts::{self, HostKey, Verdict};
use super::url::{SshEndpoint, redact_url, ssh_endpoint};

/// Where a transfer is, for a progress bar. libgit2 calls often; callers throttle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferProgress {
    pub phase: Phase,
    /// Objects (or deltas, while resolving) done so far, of `total`.
    pub done: usize,
    pub total: usize,
    /// Bytes received (or sent) so far.
    pub bytes: usize,
}

/// Which part of a transfer [`TransferProgress`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Objects arriving from the remote.
    Receiving,
    /// Deltas being resolved locally after they arrived.
    Resolving,
    /// Objects going to the remote (push).
    Sending,
}

/// The SSH user when the URL names none: the one every git forge uses.
const DEFAULT_SSH_USER: &str = "git";
/// The HTTPS user when the URL names none: GitHub's, accepted with any token elsewhere too.
const DEFAULT_TOKEN_USER: &str = "x-access-token";
/// How much of the remote's own messages (`remote: …`) a rejection quotes.
const REMOTE_MESSAGES_MAX: usize = 2000;

/// An HTTPS token held in memory only: never written, never printed (its `Debug` names
/// where it came from, not what it is).
#[derive(Clone)]
pub struct Token {
    secret: String,
    source: String,
}

impl Token {
    /// A token and a description of where it came from (for messages).
    pub fn new(secret: impl Into<String>, source: impl Into<String>) -> Token {
        Token {
            secret: secret.into(),
            source: source.into(),
        }
    }

    /// The token in environment variable `var` (e.g. `LIFEBOAT_GIT_TOKEN`), if set and not empty.
    pub fn from_env(var: &str) -> Option<Token> {
        let secret = std::env::var(var).ok().filter(|s| !s.is_empty())?;
        Some(Token::new(secret, format!("${var}")))
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({}, ***)", self.source)
    }
}

/// What lifeboat may authenticate with, and which SSH host keys it trusts. Methods are
/// tried in this order, each once per operation: the SSH key file (read where it lies,
/// e.g. on the read-only inspection mount; never copied), ssh-agent, the HTTPS token.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// A private key without a passphrase (for one with a passphrase, use ssh-agent).
    pub ssh_key: Option<PathBuf>,
    /// Ask the agent at `$SSH_AUTH_SOCK`, when that is set.
    pub ssh_agent: bool,
    /// Password for HTTPS, with the URL's user or `x-access-token`.
    pub https_token: Option<Token>,
    /// known_hosts files whose keys are trusted (missing ones count as empty).
    pub known_hosts: Vec<PathBuf>,
    /// A `SHA256:…` fingerprint the operator accepted for a host whose key is not known.
    /// It never overrides a changed key.
    pub accepted_host_key: Option<String>,
}

impl Credentials {
    /// The system's known_hosts files: `/etc/ssh/ssh_known_hosts` and `~/.ssh/known_hosts`.
    pub fn system_known_hosts() -> Vec<PathBuf> {
        let mut files = vec![PathBuf::from("/etc/ssh/ssh_known_hosts")];
        if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
            files.push(PathBuf::from(home).join(".ssh/known_hosts"));
        }
        files
    }

    /// `text` without URL secrets or the token.
    pub(super) fn scrub(&self, text: &str) -> String {
        let text = redact_url(text);
        match &self.https_token {
            Some(token) if !token.secret.is_empty() => text.replace(&token.secret, "***"),
            _ => text,
        }
    }

    fn agent_available(&self) -> bool {
        self.ssh_agent && std::env::var_os("SSH_AUTH_SOCK").is_some_and(|s| !s.is_empty())
    }
}

/// Why the private key at `path` cannot be used without a passphrase, if it cannot.
fn unusable_key(path: &Path) -> Option<String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => return Some(format!("cannot be read: {e}")),
    };
    let protected = "has a passphrase: load it into ssh-agent instead".to_string();
    if text.contains("ENCRYPTED") {
        return Some(protected);
    }
    let body: String = text
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    let decoded = STANDARD.decode(body.trim()).ok()?;
    // openssh-key-v1: the magic, then the cipher name as an SSH string ("none" when clear).
    let rest = decoded.strip_prefix(b"openssh-key-v1\0")?;
    let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    (rest.get(4..4 + len)? != b"none").then_some(protected)
}

/// libgit2's own words when libssh2 refuses or cannot use a credential (besides
/// `ErrorCode::Auth`, which the credentials callback returns when it has nothing left).
const SSH_AUTH_FAILURES: [&str; 4] = [
    "failed to authenticate ssh session",
    "error authenticating",
    "callback failed to initialize ssh credentials",
    "remote rejected authentication",
];

fn is_auth_failure(error: &git2::Error) -> bool {
    let message = error.message().to_ascii_lowercase();
    error.code() == ErrorCode::Auth
        || (error.class() == ErrorClass::Ssh
            && SSH_AUTH_FAILURES.iter().any(|m| message.starts_with(m)))
}

/// What the callbacks saw during one operation.
#[derive(Default)]
struct State {
    username_sent: bool,
    key_tried: bool,
    agent_tried: bool,
    token_tried: bool,
    tried: Vec<String>,
    asked_for_credentials: bool,
    /// Why the host key was refused: [`GitError::HostKeyUnknown`] or `HostKeyChanged`.
    host_key_refusal: Option<GitError>,
    cancelled: bool,
    rejected: Vec<String>,
    remote_messages: String,
}

/// One network operation's callbacks and what they recorded.
pub(super) struct Session<'a> {
    creds: &'a Credentials,
    url: String,
    state: RefCell<State>,
    progress: RefCell<&'a mut dyn FnMut(TransferProgress)>,
    cancel: &'a AtomicBool,
}

impl<'a> Session<'a> {
    pub(super) fn new(
        creds: &'a Credentials,
        url: &str,
        progress: &'a mut dyn FnMut(TransferProgress),
        cancel: &'a AtomicBool,
    ) -> Session<'a> {
        Session {
            creds,
            url: url.to_string(),
            state: RefCell::default(),
            progress: RefCell::new(progress),
            cancel,
        }
    }

    /// The URL without secrets, for messages.
    pub(super) fn shown_url(&self) -> String {
        self.creds.scrub(&self.url)
    }

    /// The callbacks for libgit2; they borrow this session.
    pub(super) fn callbacks(&self) -> RemoteCallbacks<'_> {
        let mut callbacks = RemoteCallbacks::new();
        callbacks
            .credentials(|_url, user, allowed| self.credential(user, allowed))
            .certificate_check(|cert, host| self.certificate(cert, host))
            .transfer_progress(|p| self.transfer(&p))
            .sideband_progress(|text| self.remote_message(text))
            .push_transfer_progress(|done, total, bytes| {
                self.report(Phase::Sending, done, total, bytes);
            })
            .push_update_reference(|refname, status| {
                if let Some(status) = status {
                    let line = format!("{refname}: {status}");
                    self.state.borrow_mut().rejected.push(line);
                }
                Ok(())
            })
            .push_negotiation(|_| {
                if self.cancelled() {
                    Err(git2::Error::from_str("cancelled"))
                } else {
                    Ok(())
                }
            });
        callbacks
    }

    fn credential(&self, user: Option<&str>, allowed: CredentialType) -> Result<Cred, git2::Error> {
        let mut st = self.state.borrow_mut();
        st.asked_for_credentials = true;
        if allowed.contains(CredentialType::USERNAME) && !st.username_sent {
            st.username_sent = true;
            return Cred::username(DEFAULT_SSH_USER);
        }
        if allowed.contains(CredentialType::SSH_KEY) {
            let user = user.unwrap_or(DEFAULT_SSH_USER);
            if let Some(key) = self.creds.ssh_key.as_ref().filter(|_| !st.key_tried) {
                st.key_tried = true;
                // libgit2 gives up (instead of asking again) when libssh2 cannot load the
                // key, so a key that cannot work is skipped here and the agent still gets its turn.
                match unusable_key(key) {
                    Some(why) => st.tried.push(format!("SSH key {} ({why})", key.display())),
                    None => {
                        st.tried.push(format!("SSH key {}", key.display()));
                        return Cred::ssh_key(user, None, key, None);
                    }
                }
            }
            if self.creds.agent_available() && !st.agent_tried {
                st.agent_tried = true;
                st.tried.push("ssh-agent".to_string());
                return Cred::ssh_key_from_agent(user);
            }
        }
        if allowed.contains(CredentialType::USER_PASS_PLAINTEXT)
            && let Some(token) = self.creds.https_token.as_ref().filter(|_| !st.token_tried)
        {
            st.token_tried = true;
            st.tried.push(format!("token from {}", token.source));
            return Cred::userpass_plaintext(user.unwrap_or(DEFAULT_TOKEN_USER), &token.secret);
        }
        Err(git2::Error::new(
            ErrorCode::Auth,
            ErrorClass::Callback,
            "no more credentials to try",
        ))
    }

    /// `host` is the one libgit2 connected to; it differs from the URL's only when a
    /// `url.<base>.insteadOf` rule rewrote the URL, and then the port is taken to be 22.
    fn certificate(
        &self,
        cert: &git2::cert::Cert<'_>,
        host: &str,
    ) -> Result<CertificateCheckStatus, git2::Error> {
        // X.509 (HTTPS): libgit2 has already checked it against the system's CAs.
        let Some(hostkey) = cert.as_hostkey() else {
            return Ok(CertificateCheckStatus::CertificatePassthrough);
        };
        let refuse = |why: &str| git2::Error::new(ErrorCode::Certificate, ErrorClass::Ssh, why);
        let Some(blob) = hostkey.hostkey() else {
            return Err(refuse("no SSH host key to check"));
        };
        let endpoint = ssh_endpoint(&self.url)
            .filter(|e| e.host.eq_ignore_ascii_case(host))
            .unwrap_or_else(|| SshEndpoint {
                host: host.to_ascii_lowercase(),
                port: 22,
            });
        let key = HostKey {
            blob: blob.to_vec(),
        };
        let host = endpoint.known_hosts_name();
        let verdict = known_hosts::check(&self.creds.known_hosts, &host, &key);
        let accepted = self.creds.accepted_host_key.as_deref() == Some(&key.fingerprint());
        let refusal = match verdict {
            Verdict::Known => return Ok(CertificateCheckStatus::CertificateOk),
            Verdict::Unknown { .. } if accepted => {
                return Ok(CertificateCheckStatus::CertificateOk);
            }
            Verdict::Unknown { other_types } => GitError::HostKeyUnknown {
                host,
                key,
                other_types,
            },
            Verdict::Changed { file, line } => GitError::HostKeyChanged {
                host,
                key,
                file,
                line,
            },
        };
        self.state.borrow_mut().host_key_refusal = Some(refusal);
        Err(refuse("the SSH host key is not trusted"))
    }

    fn transfer(&self, p: &git2::Progress<'_>) -> bool {
        if p.received_objects() > 0 {
            crate::faults::pause_in(crate::faults::Point::GitTransfer);
        }
        if self.cancelled() {
            return false;
        }
        if p.received_objects() < p.total_objects() {
            let (done, total) = (p.received_objects(), p.total_objects());
            self.report(Phase::Receiving, done, total, p.received_bytes());
        } else {
            let (done, total) = (p.indexed_deltas(), p.total_deltas());
            self.report(Phase::Resolving, done, total, p.received_bytes());
        }
        true
    }

    fn report(&self, phase: Phase, done: usize, total: usize, bytes: usize) {
        let progress = TransferProgress {
            phase,
            done,
            total,
            bytes,
        };
        (self.progress.borrow_mut())(progress);
    }

    fn remote_message(&self, text: &[u8]) -> bool {
        {
            let mut st = self.state.borrow_mut();
            if st.remote_messages.len() < REMOTE_MESSAGES_MAX {
                st.remote_messages.push_str(&String::from_utf8_lossy(text));
            }
        }
        !self.cancelled()
    }

    /// True once cancellation was asked for; remembered so the error says "cancelled".
    fn cancelled(&self) -> bool {
        let cancelled = self.cancel.load(Ordering::Relaxed);
        if cancelled {
            self.state.borrow_mut().cancelled = true;
        }
        cancelled
    }

    /// Refs the remote refused during a push, each with the remote's reason, and what
    /// else the remote said.
    pub(super) fn rejections(&self) -> Option<String> {
        let st = self.state.borrow();
        if st.rejected.is_empty() {
            return None;
        }
        let mut reason = st.rejected.join("; ");
        if st
            .rejected
            .iter()
            .any(|r| r.contains("fast-forward") || r.contains("fetch first"))
        {
            reason.push_str(
                " (the remote has commits this branch does not have: fetch, merge or rebase, then push again; lifeboat never forces)",
            );
        }
        let said = self.creds.scrub(st.remote_messages.trim());
        if !said.is_empty() {
            reason.push_str(&format!("; the remote said: {said}"));
        }
        Some(reason)
    }

    /// The precise error for a failed operation, from what the callbacks saw.
    pub(super) fn error(&self, op: &'static str, error: &git2::Error) -> GitError {
        let mut st = self.state.borrow_mut();
        if st.cancelled {
            return GitError::Cancelled;
        }
        if let Some(refusal) = st.host_key_refusal.take() {
            return refusal;
        }
        let url = self.shown_url();
        let cause = Cause::scrubbed(error, self.creds.scrub(error.message()));
        if is_auth_failure(error) {
            let tried = if st.tried.is_empty() {
                "nothing: no SSH key, ssh-agent or token was given".to_string()
            } else {
                st.tried.join(", ")
            };
            return GitError::AuthRefused { url, tried, cause };
        }
        // SSH errors before authentication are the connection's; after it, the server's
        // (e.g. "does not appear to be a git repository").
        let connection_failed = match error.class() {
            ErrorClass::Net | ErrorClass::Os => true,
            ErrorClass::Ssh => !st.asked_for_credentials,
            _ => false,
        };
        match connection_failed {
            true => GitError::Unreachable { url, cause },
            false => GitError::Git {
                op,
                target: url,
                cause,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_token() {
        let creds = Credentials {
            https_token: Some(Token::new("ghp_supersecret", "$LIFEBOAT_GIT_TOKEN")),
            ..Credentials::default()
        };
        let shown = format!("{creds:?} {:#?}", creds);
        assert!(!shown.contains("supersecret"), "{shown}");
        assert!(shown.contains("$LIFEBOAT_GIT_TOKEN"), "{shown}");
    }

    #[test]
    fn scrub_removes_the_token_wherever_it_appears() {
        let creds = Credentials {
            https_token: Some(Token::new("tok123", "test")),
            ..Credentials::default()
        };
        assert_eq!(
            creds.scrub("auth with tok123 at https://u:tok123@h/r failed"),
            "auth with *** at https://u:***@h/r failed"
        );
    }

    #[test]
    fn each_method_is_offered_once_then_the_callback_gives_up() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("id_ed25519");
        std::fs::write(&key, "a key libssh2 will judge").unwrap();
        let creds = Credentials {
            ssh_key: Some(key.clone()),
            https_token: Some(Token::new("tok", "test")),
            ..Credentials::default()
        };
        let cancel = AtomicBool::new(false);
        let mut sink = |_| {};
        let session = Session::new(&creds, "ssh://git@h/r", &mut sink, &cancel);
        let ssh = CredentialType::SSH_KEY;
        assert!(session.credential(None, CredentialType::USERNAME).is_ok());
        assert!(session.credential(Some("git"), ssh).is_ok());
        let Err(refused) = session.credential(Some("git"), ssh) else {
            panic!("a third SSH attempt was offered");
        };
        assert_eq!(refused.code(), ErrorCode::Auth);
        let https = CredentialType::USER_PASS_PLAINTEXT;
        assert!(session.credential(None, https).is_ok());
        assert!(session.credential(None, https).is_err());
        let error = session.error("fetch", &refused);
        let text = error.to_string();
        assert!(matches!(error, GitError::AuthRefused { .. }), "{text}");
        let expected = format!("SSH key {}, token from test", key.display());
        assert!(text.contains(&expected), "{text}");
    }

    #[test]
    fn keys_that_cannot_work_without_a_passphrase_are_recognised() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        assert!(unusable_key(&missing).unwrap().contains("cannot be read"));
        let pem = dir.path().join("pem");
        std::fs::write(
            &pem,
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n",
        )
        .unwrap();
        assert!(unusable_key(&pem).unwrap().contains("passphrase"));
        let openssh = |cipher: &str| {
            let mut body = b"openssh-key-v1\0".to_vec();
            body.extend_from_slice(&(cipher.len() as u32).to_be_bytes());
            body.extend_from_slice(cipher.as_bytes());
            let text = format!(
                "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
                STANDARD.encode(body)
            );
            let path = dir.path().join(cipher);
            std::fs::write(&path, text).unwrap();
            unusable_key(&path)
        };
        assert_eq!(openssh("none"), None);
        assert!(openssh("aes256-ctr").unwrap().contains("passphrase"));
    }

    #[test]
    fn no_credentials_at_all_says_so() {
        let creds = Credentials::default();
        let cancel = AtomicBool::new(false);
        let mut sink = |_| {};
        let session = Session::new(&creds, "https://h/r", &mut sink, &cancel);
        let Err(refused) = session.credential(None, CredentialType::USER_PASS_PLAINTEXT) else {
            panic!("a credential was offered where none was given");
        };
        let text = session.error("fetch", &refused).to_string();
        assert!(text.contains("no SSH key, ssh-agent or token"), "{text}");
    }
}
