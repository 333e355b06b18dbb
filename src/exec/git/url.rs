//! Git remote URLs: redacting secrets before anything is shown, finding the SSH endpoint
//! whose host key must be checked, and telling whether two spellings name one remote.

/// `text` with the secret part of every URL's user info replaced by `***`:
/// `https://user:token@host/…` → `https://user:***@host/…`, and `https://token@host/…`
/// (a token given as the user name) → `https://***@host/…`. SSH user names stay: they
/// are not secrets. Works on a bare URL and on a message that quotes URLs.
pub fn redact_url(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let scheme_start = rest[..at]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || "+-.".contains(c)))
            .map_or(0, |i| i + 1);
        let scheme = &rest[scheme_start..at];
        out.push_str(&rest[..at + 3]);
        rest = &rest[at + 3..];
        let authority_end = rest
            .find(|c: char| "/?#".contains(c) || c.is_whitespace())
            .unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        if let Some(user_end) = authority.rfind('@') {
            out.push_str(&redacted_userinfo(scheme, &authority[..user_end]));
            rest = &rest[user_end..];
        }
    }
    out.push_str(rest);
    out
}

/// The user info of a URL with its secret part hidden.
fn redacted_userinfo(scheme: &str, userinfo: &str) -> String {
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None if scheme.to_ascii_lowercase().starts_with("http") => "***".to_string(),
        None => userinfo.to_string(),
    }
}

/// Where an SSH remote lives: the host and port its host key is looked up under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshEndpoint {
    pub host: String,
    pub port: u16,
}

impl SshEndpoint {
    /// The name known_hosts files use: `host` on port 22, `[host]:port` elsewhere.
    pub fn known_hosts_name(&self) -> String {
        if self.port == 22 {
            self.host.clone()
        } else {
            format!("[{}]:{}", self.host, self.port)
        }
    }
}

/// The parts of a remote URL that identify the repository, whatever the spelling.
#[derive(Debug, PartialEq, Eq)]
struct RemoteId {
    transport: &'static str,
    host: String,
    port: Option<u16>,
    path: String,
}

/// Whether `a` and `b` name the same repository: `git@host:a/b.git`,
/// `ssh://git@host/a/b.git`, `ssh://host:22/a/b/` and `ssh://git@host/a/b` all do.
/// The user name and a trailing `.git` or `/` do not matter; the transport, host, port
/// and path do.
pub fn same_remote(a: &str, b: &str) -> bool {
    remote_id(a) == remote_id(b)
}

/// The SSH endpoint of `url`, or `None` when it is not an SSH URL.
pub fn ssh_endpoint(url: &str) -> Option<SshEndpoint> {
    let id = remote_id(url);
    (id.transport == "ssh").then(|| SshEndpoint {
        host: id.host,
        port: id.port.unwrap_or(22),
    })
}

fn remote_id(url: &str) -> RemoteId {
    let url = url.trim();
    match url.split_once("://") {
        Some((scheme, rest)) => url_id(&scheme.to_ascii_lowercase(), rest),
        None => match scp_like(url) {
            Some((host, path)) => RemoteId {
                transport: "ssh",
                host: host.to_ascii_lowercase(),
                port: Some(22),
                path: clean_path(path),
            },
            None => local_id(url),
        },
    }
}

/// `[user@]host:path` (scp syntax): a colon before any slash.
fn scp_like(url: &str) -> Option<(&str, &str)> {
    let colon = url.find(':')?;
    if url[..colon].contains('/') || colon == 0 {
        return None;
    }
    let host_part = &url[..colon];
    let host = host_part.rsplit_once('@').map_or(host_part, |(_, h)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host, &url[colon + 1..]))
}

fn url_id(scheme: &str, rest: &str) -> RemoteId {
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let transport = match scheme {
        "ssh" | "git+ssh" | "ssh+git" => "ssh",
        "https" => "https",
        "http" => "http",
        "file" => return local_id(path),
        "git" => "git",
        _ => "other",
    };
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = split_host_port(host_port);
    let default_port = match transport {
        "ssh" => Some(22),
        "https" => Some(443),
        "http" => Some(80),
        "git" => Some(9418),
        _ => None,
    };
    RemoteId {
        transport,
        host: host.to_ascii_lowercase(),
        port: port.or(default_port),
        path: clean_path(path),
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn split_host_port(host_port: &str) -> (&str, Option<u16>) {
    if let Some(inner) = host_port.strip_prefix('[') {
        let (host, after) = inner.split_once(']').unwrap_or((inner, ""));
        return (host, after.strip_prefix(':').and_then(|p| p.parse().ok()));
    }
    match host_port.rsplit_once(':') {
        Some((host, port)) => match port.parse() {
            Ok(port) => (host, Some(port)),
            Err(_) => (host_port, None),
        },
        None => (host_port, None),
    }
}

fn local_id(path: &str) -> RemoteId {
    RemoteId {
        transport: "file",
        host: String::new(),
        port: None,
        path: clean_path(path),
    }
}

/// The path without leading `/` or `~/`, trailing `/`, or a trailing `.git`.
fn clean_path(path: &str) -> String {
    let path = path.trim_start_matches('/');
    let path = path.strip_prefix("~/").unwrap_or(path);
    let path = path.trim_end_matches('/');
    path.strip_suffix(".git").unwrap_or(path).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_in_urls_are_redacted_and_ssh_users_kept() {
        assert_eq!(
            redact_url("https://user:s3cr3t@github.com/qwe/cfg.git"),
            "https://user:***@github.com/qwe/cfg.git"
        );
        assert_eq!(
            redact_url("https://ghp_abc123@github.com/qwe/cfg"),
            "https://***@github.com/qwe/cfg"
        );
        assert_eq!(
            redact_url("ssh://git@host:2222/a/b.git"),
            "ssh://git@host:2222/a/b.git"
        );
        assert_eq!(
            redact_url("git@github.com:a/b.git"),
            "git@github.com:a/b.git"
        );
        assert_eq!(
            redact_url("https://github.com/a/b.git"),
            "https://github.com/a/b.git"
        );
    }

    #[test]
    fn urls_inside_messages_are_redacted_too() {
        let message =
            "failed to fetch 'HTTPS://x-access-token:tok@h.example/r' (then http://a:b@c)";
        let redacted = redact_url(message);
        assert!(!redacted.contains("tok@"), "{redacted}");
        assert!(!redacted.contains(":b@"), "{redacted}");
        assert_eq!(
            redacted,
            "failed to fetch 'HTTPS://x-access-token:***@h.example/r' (then http://a:***@c)"
        );
    }

    #[test]
    fn a_password_with_an_at_sign_is_redacted_whole() {
        assert_eq!(redact_url("https://u:p@ss@host/r"), "https://u:***@host/r");
    }

    #[test]
    fn the_spellings_of_one_remote_compare_equal() {
        let forms = [
            "git@github.com:qwe/nixos-config.git",
            "ssh://git@github.com/qwe/nixos-config.git",
            "ssh://git@github.com:22/qwe/nixos-config",
            "ssh://GitHub.com/qwe/nixos-config/",
            "git+ssh://git@github.com/qwe/nixos-config.git",
        ];
        for a in forms {
            for b in forms {
                assert!(same_remote(a, b), "{a} vs {b}");
            }
        }
        assert!(same_remote("/srv/cfg.git", "file:///srv/cfg"));
        assert!(same_remote(
            "https://github.com/qwe/c.git",
            "https://tok@github.com/qwe/c"
        ));
    }

    #[test]
    fn different_hosts_ports_paths_and_transports_differ() {
        let base = "git@github.com:qwe/nixos-config.git";
        for other in [
            "git@gitlab.com:qwe/nixos-config.git",
            "ssh://git@github.com:2222/qwe/nixos-config.git",
            "git@github.com:qwe/other.git",
            "https://github.com/qwe/nixos-config.git",
        ] {
            assert!(!same_remote(base, other), "{other}");
        }
    }

    #[test]
    fn ssh_endpoints_give_the_known_hosts_name() {
        let e = ssh_endpoint("git@GitHub.com:a/b").unwrap();
        assert_eq!(e.known_hosts_name(), "github.com");
        let e = ssh_endpoint("ssh://root@127.0.0.1:2222/srv/r.git").unwrap();
        assert_eq!(e.known_hosts_name(), "[127.0.0.1]:2222");
        let e = ssh_endpoint("ssh://git@[::1]:2200/r").unwrap();
        assert_eq!(
            e,
            SshEndpoint {
                host: "::1".into(),
                port: 2200
            }
        );
        assert_eq!(ssh_endpoint("https://github.com/a/b"), None);
        assert_eq!(ssh_endpoint("/srv/r.git"), None);
        assert_eq!(ssh_endpoint("file:///srv/r.git"), None);
    }
}
