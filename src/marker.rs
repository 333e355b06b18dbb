//! The persistence marker: `<user>/.lifeboat/persistence-marker` on the volume, with a
//! random nonce and the time it was written. `predestroy` writes it (and records the nonce
//! in the recovery card); `verify` reads it back after the rebuild, proving the volume
//! that came back is the one that was there before — the seed's persistence test, made
//! checkable.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The marker's contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersistenceMarker {
    /// 128 random bits, hex.
    pub nonce: String,
    /// RFC 3339 time of writing.
    pub written_at: String,
    /// The machine that wrote it.
    pub hostname: String,
}

impl PersistenceMarker {
    /// Where the marker lies, relative to the volume's root.
    pub fn relative_path(user: &str) -> PathBuf {
        Path::new(user).join(".lifeboat/persistence-marker")
    }

    /// A new marker with a fresh nonce.
    pub fn new(hostname: &str) -> io::Result<PersistenceMarker> {
        let mut bytes = [0u8; 16];
        File::open("/dev/urandom")?.read_exact(&mut bytes)?;
        Ok(PersistenceMarker {
            nonce: bytes.iter().map(|b| format!("{b:02x}")).collect(),
            written_at: jiff::Timestamp::now().to_string(),
            hostname: hostname.to_string(),
        })
    }

    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        Ok(format!(
            "# lifeboat persistence marker: `lifeboat verify` checks it after the rebuild.\n{}",
            toml::to_string(self)?
        ))
    }

    /// Parse a marker; `None` when the text is not one.
    pub fn parse(text: &str) -> Option<PersistenceMarker> {
        toml::from_str(text).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_have_fresh_nonces_and_read_back() {
        let a = PersistenceMarker::new("devserver").unwrap();
        let b = PersistenceMarker::new("devserver").unwrap();
        assert_ne!(a.nonce, b.nonce);
        assert_eq!(a.nonce.len(), 32);
        assert_eq!(PersistenceMarker::parse(&a.to_toml().unwrap()), Some(a));
        assert_eq!(PersistenceMarker::parse("nonce = 3"), None);
    }
}
