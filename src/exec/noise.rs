//! Test bytes for the parsers of what comes from the machine (the superblock probe, the
//! mount table).

/// A deterministic byte stream (xorshift64), so a failure can be replayed.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}
