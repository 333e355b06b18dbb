//! What the benchmarks that generate their input (a store-like tree, a build's log) share:
//! a deterministic generator, their size from the environment, and this process's peak
//! memory.

use std::fs;

/// A tiny deterministic generator (xorshift), so every run makes the same input.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A store path's hash: 32 characters of Nix's base-32 alphabet.
    pub fn hash(&mut self) -> String {
        const ALPHABET: &[u8] = b"0123456789abcdfghijklmnpqrsvwxyz";
        (0..32)
            .map(|_| ALPHABET[self.below(32) as usize] as char)
            .collect()
    }
}

/// This process's peak resident set in KiB (VmHWM), which unlike `ru_maxrss` is not
/// inherited across `exec`.
pub fn peak_rss_kib() -> u64 {
    let status = fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .expect("VmHWM")
}

/// The number in environment variable `name`, or `default`.
pub fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
