//! What a practice volume is made with: its owner, size, name and contents.

/// What goes on the practice volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeContents {
    /// ext4 with the seed's layout.
    Seed,
    /// ext4 with the seed layout, then a committed journal transaction left unreplayed (a
    /// crash-like state: a plain `ro` mount would replay it and write to the device).
    SeedNeedsRecovery,
    /// All zero bytes: an unformatted volume.
    Blank,
    /// Formatted by this program instead (e.g. "mkfs.ext2", "mkswap"): the wrong filesystem.
    OtherFilesystem(String),
}

/// Who owns the practice volume, how big it is, what it is called and what is on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeSpec {
    pub user: String,
    pub uid: u32,
    pub size_bytes: u64,
    /// ext4 label (at most 16 bytes).
    pub label: String,
    /// Names the by-id link `scsi-0HC_Volume_<volume_id>`, as Hetzner does.
    pub volume_id: u64,
    pub contents: VolumeContents,
}

impl Default for VolumeSpec {
    fn default() -> Self {
        VolumeSpec {
            user: "qwe".to_string(),
            uid: 1000,
            size_bytes: 256 << 20,
            label: "lifeboat-demo".to_string(),
            volume_id: 100_000_001,
            contents: VolumeContents::Seed,
        }
    }
}
