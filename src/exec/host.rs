//! Facts about this machine that several steps name.

/// The machine's host name (the flake host when none is configured), or `localhost`.
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Memory available for new work and in all, in bytes (`MemAvailable`, `MemTotal`).
pub fn memory() -> Option<(u64, u64)> {
    let mut system = sysinfo::System::new();
    system.refresh_memory();
    let total = system.total_memory();
    (total > 0).then(|| (system.available_memory(), total))
}

/// Seconds since the machine booted.
pub fn uptime() -> u64 {
    sysinfo::System::uptime()
}
