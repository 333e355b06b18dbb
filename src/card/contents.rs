//! What the recovery card holds: the types it is written and read as.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Bumped when the card changes incompatibly.
pub const FORMAT: u32 = 1;

/// Everything `recover` needs, as `predestroy` saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryCard {
    pub format: u32,
    /// RFC 3339 time of writing.
    pub written_at: String,
    pub lifeboat_version: String,
    pub hostname: String,
    /// `nixos-version` of the system that wrote the card, when known.
    pub nixos_version: Option<String>,
    pub user: String,
    pub uid: u32,
    pub repository: CardRepository,
    pub volumes: Vec<CardVolume>,
    pub nix_store: CardNixStore,
    /// The running system's closure, for a sense of what a rebuild will fetch.
    pub store: Option<CardStore>,
    /// The nonce of the persistence marker written with this card.
    pub persistence_nonce: Option<String>,
    /// What predestroy saved of the root disk (host keys, NixOS's id maps, carried paths),
    /// under `<first volume>/lifeboat-host/files/`: never the content, only what proves it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub saved: Vec<CardSaved>,
    /// The store path predestroy ran from, when it ran from a Nix store: the fresh VPS can
    /// take lifeboat from the volume's store without the network (the recovery sheet says how).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifeboat_store_path: Option<PathBuf>,
    /// The old machine's public addresses and MACs: a new server gets new ones (unless the
    /// operator keeps the Primary IPs), so recover can name a configuration that pins these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<CardNetwork>,
    /// What predestroy's rehearsal proved: this commit evaluated, on the old machine, to
    /// this system with the volume mounted in stage 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rehearsal: Option<CardRehearsal>,
}

/// The commit predestroy rehearsed the recovery with, and the system it evaluated to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardRehearsal {
    pub commit: String,
    pub host: String,
    /// The system's `drvPath`.
    pub drv_path: String,
}

/// The public side of the old machine's network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardNetwork {
    /// `address/prefix` of each public address.
    pub addresses: Vec<String>,
    /// The MACs of the interfaces that carry them.
    pub macs: Vec<String>,
}

impl CardNetwork {
    /// This machine's, as the kernel has it.
    pub fn of(facts: &crate::exec::netfacts::NetFacts) -> CardNetwork {
        let mut network = CardNetwork::default();
        for interface in &facts.interfaces {
            let public: Vec<String> = interface
                .addresses
                .iter()
                .filter(|(address, _)| crate::exec::netfacts::is_public(*address))
                .map(|(address, prefix)| format!("{address}/{prefix}"))
                .collect();
            if public.is_empty() {
                continue;
            }
            network.addresses.extend(public);
            network.macs.extend(interface.mac.clone());
        }
        network
    }

    /// The addresses without their prefix.
    pub fn ips(&self) -> Vec<std::net::IpAddr> {
        self.addresses
            .iter()
            .filter_map(|a| a.split('/').next()?.parse().ok())
            .collect()
    }
}

/// One path of the old machine that predestroy saved onto the volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardSaved {
    /// Where it was on the machine (absolute); the copy is at the same path under the
    /// saved directory.
    pub path: PathBuf,
    pub reason: SavedReason,
    /// Regular files in it (1 for a file) and their bytes.
    pub files: u64,
    pub bytes: u64,
    /// SHA-256 of the copy: of the file, or of a directory's listing (names, kinds, modes,
    /// owners, each file's SHA-256), so recover can tell a damaged copy.
    pub sha256: String,
    /// A host key's public fingerprint (`SHA256:…`), as `ssh-keygen -l` shows it.
    pub fingerprint: Option<String>,
}

/// Why a path was saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SavedReason {
    HostKey,
    NixosIds,
    Listed,
}

/// Where the NixOS config lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardRepository {
    /// The remote's URL, with any credentials removed.
    pub url: String,
    pub branch: String,
    /// The commit that was pushed.
    pub commit: String,
    pub flake_host: String,
}

/// One volume and where it is mounted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardVolume {
    pub device: PathBuf,
    pub uuid: String,
    pub mount: PathBuf,
    pub fs_type: String,
}

/// The `/nix` bind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardNixStore {
    pub source: PathBuf,
    pub target: PathBuf,
}

/// Size of the running system's closure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardStore {
    pub paths: u64,
    pub bytes: u64,
}

/// A card as predestroy writes one, for the tests of the code that reads it.
#[cfg(test)]
pub(super) fn example() -> RecoveryCard {
    RecoveryCard {
        format: FORMAT,
        written_at: "2026-11-26T09:00:00Z".into(),
        lifeboat_version: "0.1.0".into(),
        hostname: "devserver".into(),
        nixos_version: Some("25.11".into()),
        user: "qwe".into(),
        uid: 1000,
        repository: CardRepository {
            url: "git@github.com:qwe/nixos-config.git".into(),
            branch: "main".into(),
            commit: "0123456789abcdef0123456789abcdef01234567".into(),
            flake_host: "devserver".into(),
        },
        volumes: vec![CardVolume {
            device: "/dev/disk/by-id/scsi-0HC_Volume_103912881".into(),
            uuid: "0b5c6a3e-0000-4000-8000-000000000001".into(),
            mount: "/home".into(),
            fs_type: "ext4".into(),
        }],
        nix_store: CardNixStore {
            source: "/home/qwe/nix".into(),
            target: "/nix".into(),
        },
        store: Some(CardStore {
            paths: 1234,
            bytes: 5_000_000_000,
        }),
        persistence_nonce: Some("00ff".into()),
        lifeboat_store_path: None,
        network: Some(CardNetwork {
            addresses: vec!["203.0.113.7/32".into(), "2001:db8:7::7/64".into()],
            macs: vec!["96:00:01:02:03:04".into()],
        }),
        rehearsal: None,
        saved: vec![CardSaved {
            path: "/etc/ssh/ssh_host_ed25519_key".into(),
            reason: SavedReason::HostKey,
            files: 1,
            bytes: 411,
            sha256: "0".repeat(64),
            fingerprint: Some("SHA256:abc".into()),
        }],
    }
}
