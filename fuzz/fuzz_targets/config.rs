//! Fuzzes the config loader (`Config::parse`); the checks are in `nixos_lifeboat::fuzz_targets::config`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nixos_lifeboat::fuzz_targets::config(data));
