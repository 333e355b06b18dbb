//! Fuzzes the superblock probe (`identify` on a device's first bytes); the checks are in `nixos_lifeboat::fuzz_targets::probe`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nixos_lifeboat::fuzz_targets::probe(data));
