//! Fuzzes the `/proc/self/mountinfo` parser; the checks are in `nixos_lifeboat::fuzz_targets::mountinfo`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nixos_lifeboat::fuzz_targets::mountinfo(data));
