//! Property checks of the Nix edits over many small generated modules (a fixed xorshift
//! seed, so a failure names a case that reproduces): dropping and rewriting keep the text
//! parseable, change exactly the mounts asked for, and leave every byte outside the removed
//! bindings as it was, apart from the blanks at the seams.

// Tests and benchmarks stop at the first thing they cannot set up: unwrap says where.
#![allow(clippy::unwrap_used)]

use std::ops::Range;

use nixos_lifeboat::nixedit::{
    DeclaredMount, MountFields, NixEditError, drop_file_systems, file_systems_mounts, nix_string,
    rewrite_device,
};

const CASES: u64 = 1500;
const MOUNTS: [&str; 6] = ["/", "/home", "/mnt/data", "/nix", "/srv", "/boot"];
const DEVICES: [&str; 4] = [
    "/dev/disk/by-uuid/849b340d-b31e",
    "/dev/disk/by-id/scsi-0HC_Volume_1",
    "/home/qwe/nix",
    "/dev/vdb",
];
const HEADERS: [&str; 4] = [
    "",
    "{ config, lib, ... }:\n",
    "# Do not modify this file!\n{ config, lib, pkgs, modulesPath, ... }:\n\n",
    "{ lib, ... }:\nlet\n  disk = \"/dev/vdc\";\nin\n",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// A small module: a header, then bindings in the forms of the declaration tests, in the
/// layouts people and `nixos-generate-config` use, at most one blank line apart.
fn module(rng: &mut Rng) -> String {
    let mut out = String::from(rng.pick(&HEADERS));
    let indent = rng.pick(&["  ", "    ", "\t"]);
    out.push_str("{\n");
    let items = rng.below(8);
    for index in 0..items {
        if index > 0 && rng.chance(35) {
            out.push('\n');
        }
        item(rng, indent, &mut out);
    }
    out.push('}');
    if rng.chance(80) {
        out.push('\n');
    }
    out
}

fn item(rng: &mut Rng, indent: &str, out: &mut String) {
    let mount = nix_string(rng.pick(&MOUNTS));
    let device = nix_string(rng.pick(&DEVICES));
    let eq = rng.pick(&[" = ", " = ", "="]);
    let line = match rng.below(9) {
        0 => format!("networking.hostName{eq}\"h\";"),
        1 => "# fileSystems.\"/home\" is on the volume".to_owned(),
        2 => format!(
            "fileSystems.{mount}{eq}{};",
            mount_body(rng, indent, &device)
        ),
        3 => format!("fileSystems.{mount}.device{eq}{device};"),
        4 => format!("fileSystems{eq}{};", set_body(rng, indent)),
        5 => format!("fileSystems.{mount}{eq}lib.mkIf true {{ device = {device}; }};"),
        6 => format!("x = 1; fileSystems.{mount}.fsType{eq}\"ext4\";"),
        7 => format!("fileSystems.{mount}.device{eq}{device}; # moved"),
        _ => format!("fileSystems.{mount}.options{eq}[ \"bind\" ];"),
    };
    out.push_str(indent);
    out.push_str(&line);
    out.push('\n');
}

fn mount_body(rng: &mut Rng, indent: &str, device: &str) -> String {
    match rng.below(3) {
        0 => format!("{{ device = {device}; fsType = \"ext4\"; }}"),
        1 => format!(
            "\n{indent}  {{ device = {device};\n{indent}    fsType = \"ext4\";\n{indent}  }}"
        ),
        _ => format!(
            "{{\n{indent}  device = {device};\n{indent}  fsType = \"none\";\n{indent}  options = [ \"bind\" ];\n{indent}}}"
        ),
    }
}

fn set_body(rng: &mut Rng, indent: &str) -> String {
    let entries: Vec<String> = (0..1 + rng.below(3))
        .map(|_| {
            let mount = nix_string(rng.pick(&MOUNTS));
            let device = nix_string(rng.pick(&DEVICES));
            match rng.below(2) {
                0 => format!("{mount} = {{ device = {device}; }};"),
                _ => format!("{mount}.fsType = \"ext4\";"),
            }
        })
        .collect();
    if rng.chance(50) {
        format!("{{ {} }}", entries.join(" "))
    } else {
        let inner = format!("\n{indent}{indent}");
        format!("{{{inner}{}\n{indent}}}", entries.join(&inner))
    }
}

fn summary(mounts: &[DeclaredMount]) -> Vec<(String, MountFields)> {
    mounts
        .iter()
        .map(|mount| (mount.mount_point.clone(), mount.fields.clone()))
        .collect()
}

/// Each mount point once, in the order of `mounts`.
fn unique_mount_points<'a>(mounts: impl IntoIterator<Item = &'a DeclaredMount>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for mount in mounts {
        if !out.contains(&mount.mount_point) {
            out.push(mount.mount_point.clone());
        }
    }
    out
}

/// `output` is `source` without `removed`, except for blanks next to where they were: the
/// non-blank characters are the same, and each stretch between removed ranges is still
/// there, byte for byte, from its first to its last non-blank character.
fn assert_only_seams_changed(case: u64, source: &str, removed: &[Range<usize>], output: &str) {
    let mut segments = Vec::new();
    let mut at = 0;
    for range in removed {
        segments.push(&source[at..range.start]);
        at = range.end;
    }
    segments.push(&source[at..]);
    let squash = |text: &str| -> String { text.chars().filter(|c| !c.is_whitespace()).collect() };
    assert_eq!(
        squash(output),
        segments.iter().map(|s| squash(s)).collect::<String>(),
        "case {case}"
    );
    let mut from = 0;
    for segment in segments {
        let core = segment.trim();
        let found = output[from..].find(core);
        assert!(found.is_some(), "case {case}: {core:?} lost\n{output}");
        from += found.unwrap_or_default() + core.len();
    }
}

/// Two blank lines in a row, or a blank line just inside a brace.
fn has_blank_hole(text: &str) -> bool {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    lines.windows(2).any(|pair| match pair {
        ["", ""] => true,
        [open, ""] => open.ends_with('{'),
        ["", close] => close.starts_with('}'),
        _ => false,
    })
}

#[test]
fn dropping_keeps_the_rest_of_every_generated_module() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut dropped_any = 0;
    for case in 0..CASES {
        let source = module(&mut rng);
        let before = file_systems_mounts(&source).unwrap_or_else(|e| {
            panic!("case {case}: generated text does not parse: {e}\n{source}")
        });
        assert!(!has_blank_hole(&source), "case {case}: generator\n{source}");
        let drop: Vec<&str> = MOUNTS.into_iter().filter(|_| rng.chance(40)).collect();

        let edited = drop_file_systems(&source, &drop)
            .unwrap_or_else(|e| panic!("case {case}: {e}\n{source}"));

        let (gone, kept): (Vec<&DeclaredMount>, Vec<&DeclaredMount>) = before
            .iter()
            .partition(|mount| drop.contains(&mount.mount_point.as_str()));
        let after = file_systems_mounts(&edited.text)
            .unwrap_or_else(|e| panic!("case {case}: {e}\n{}", edited.text));
        let kept: Vec<DeclaredMount> = kept.into_iter().cloned().collect();
        assert_eq!(
            summary(&after),
            summary(&kept),
            "case {case}\n{source}\n{}",
            edited.text
        );
        assert_eq!(
            edited.mounts,
            unique_mount_points(gone.iter().copied()),
            "case {case}"
        );
        let removed: Vec<Range<usize>> = gone.iter().map(|mount| mount.range.clone()).collect();
        assert_only_seams_changed(case, &source, &removed, &edited.text);
        assert!(
            !has_blank_hole(&edited.text),
            "case {case}: a blank hole\n{source}\n---\n{}",
            edited.text
        );
        if gone.is_empty() {
            assert_eq!(edited.text, source, "case {case}");
        } else {
            dropped_any += 1;
        }
    }
    assert!(
        dropped_any > CASES / 2,
        "only {dropped_any} cases dropped anything"
    );
}

#[test]
fn rewriting_changes_only_the_device_strings_of_every_generated_module() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut rewritten_any = 0;
    for case in 0..CASES {
        let source = module(&mut rng);
        let before = file_systems_mounts(&source).unwrap_or_else(|e| {
            panic!("case {case}: generated text does not parse: {e}\n{source}")
        });
        let present: Vec<&str> = before
            .iter()
            .filter_map(|mount| mount.fields.device.as_deref())
            .collect();
        let old = if present.is_empty() || rng.chance(15) {
            rng.pick(&DEVICES)
        } else {
            present[rng.below(present.len())]
        };
        let new = format!("/dev/disk/by-id/scsi-0HC_Volume_{}", 900_000 + case);

        let result = rewrite_device(&source, old, &new);

        let using: Vec<&DeclaredMount> = before
            .iter()
            .filter(|mount| mount.fields.device.as_deref() == Some(old))
            .collect();
        if using.is_empty() {
            let expected = NixEditError::DeviceNotFound {
                device: old.to_owned(),
            };
            assert_eq!(result, Err(expected), "case {case}\n{source}");
            continue;
        }
        rewritten_any += 1;
        let edited = result.unwrap_or_else(|e| panic!("case {case}: {e}\n{source}"));
        assert_eq!(edited.mounts, unique_mount_points(using), "case {case}");
        assert_eq!(
            edited.text.replace(&nix_string(&new), &nix_string(old)),
            source,
            "case {case}"
        );
        let expected: Vec<(String, MountFields)> = summary(&before)
            .into_iter()
            .map(|(mount, mut fields)| {
                if fields.device.as_deref() == Some(old) {
                    fields.device = Some(new.clone());
                }
                (mount, fields)
            })
            .collect();
        let after = file_systems_mounts(&edited.text)
            .unwrap_or_else(|e| panic!("case {case}: {e}\n{}", edited.text));
        assert_eq!(summary(&after), expected, "case {case}");
    }
    assert!(
        rewritten_any > CASES / 2,
        "only {rewritten_any} cases rewrote anything"
    );
}
