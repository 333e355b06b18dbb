//! How lifeboat authenticates to the config repository's remote, the same in predestroy
//! and recover: the SSH key named by `[config_repo].ssh_key` where it lies on the volume
//! (never copied), ssh-agent, or an HTTPS token from the environment (never written
//! anywhere); host keys from the volume's known_hosts and the system's.

use std::path::Path;

use crate::config::Config;
use crate::exec::git::{Credentials, Token};

/// Where an HTTPS token for the config remote is read from.
pub const TOKEN_VARIABLE: &str = "LIFEBOAT_GIT_TOKEN";
/// The bare mirror of the config that predestroy keeps in the home, for recover.
pub const MIRROR: &str = "nixos-config-backup.git";

/// The credentials for `cfg`, with the volume's root when it is mounted.
pub fn for_repo(cfg: &Config, volume_root: Option<&Path>) -> Credentials {
    let mut known_hosts = Credentials::system_known_hosts();
    if let (Some(root), Some(user)) = (volume_root, &cfg.user) {
        known_hosts.insert(0, root.join(user).join(".ssh/known_hosts"));
    }
    Credentials {
        ssh_key: cfg
            .config_repo
            .ssh_key
            .as_ref()
            .zip(volume_root)
            .map(|(key, root)| root.join(key)),
        ssh_agent: true,
        https_token: Token::from_env(TOKEN_VARIABLE),
        known_hosts,
        accepted_host_key: None,
    }
}
