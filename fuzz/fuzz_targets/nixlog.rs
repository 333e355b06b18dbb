//! Fuzzes the Nix internal-json log parser; the checks are in `nixos_lifeboat::fuzz_targets::nixlog`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nixos_lifeboat::fuzz_targets::nixlog(data));
