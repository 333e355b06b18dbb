//! Lossless Nix edits for `recover`: the fixtures are real `nixos-generate-config` captures
//! and the seed's configuration.nix.

// Tests and benchmarks stop at the first thing they cannot set up: unwrap says where.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fs;

use nixos_lifeboat::nixedit::{
    BootFix, DeclaredMount, MountFields, NixEditError, bind_snippet, boot_fix_snippet,
    drop_file_systems, file_systems_mounts, holding_mount, mounted_in_stage1, nix_string,
    rewrite_device, rewrite_strings, store_boot_fixes, string_lines,
};

const SEED_DEVICE: &str = "/dev/disk/by-id/scsi-0HC_Volume_103912881";

fn fixture(name: &str) -> String {
    fs::read_to_string(format!("tests/fixtures/nixos/{name}")).unwrap()
}

/// Mount points and fields, without where they are: what must survive an edit.
fn summary(mounts: &[DeclaredMount]) -> Vec<(String, MountFields)> {
    mounts
        .iter()
        .map(|mount| (mount.mount_point.clone(), mount.fields.clone()))
        .collect()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(std::string::ToString::to_string).collect()
}

fn fields(device: Option<&str>, fs_type: Option<&str>) -> MountFields {
    MountFields {
        device: device.map(String::from),
        fs_type: fs_type.map(String::from),
        ..MountFields::default()
    }
}

#[test]
fn dropping_the_volume_entries_gives_the_plain_capture() {
    let plain = fixture("hardware-configuration.hetzner-cx.nix");
    let mounted = fixture("hardware-configuration.hetzner-cx.volume-mounted.nix");

    let edited = drop_file_systems(&mounted, &["/home", "/mnt/data"]).unwrap();

    assert_eq!(edited.mounts, strings(&["/home", "/mnt/data"]));
    assert_eq!(
        summary(&file_systems_mounts(&edited.text).unwrap()),
        summary(&file_systems_mounts(&plain).unwrap())
    );
    // The two captures differ only in the volume entries and one comment line that the
    // second capture does not have: with that line taken out, the texts are equal.
    let comment = "  # networking.interfaces.enp1s0.useDHCP = lib.mkDefault true;\n";
    assert!(plain.contains(comment));
    assert_eq!(edited.text, plain.replacen(comment, "", 1));
}

#[test]
fn dropping_keeps_every_byte_outside_the_removed_lines() {
    let mounted = fixture("hardware-configuration.hetzner-cx.volume-mounted.nix");
    let found = file_systems_mounts(&mounted).unwrap();
    let home = found.iter().find(|m| m.mount_point == "/home").unwrap();
    let data = found.iter().find(|m| m.mount_point == "/mnt/data").unwrap();
    assert_eq!((home.line, data.line), (21, 26));

    let edited = drop_file_systems(&mounted, &["/mnt/data", "/home"]).unwrap();

    // Removed: from the start of the /home line through the blank line after /mnt/data.
    let first_line = mounted[..home.range.start].rfind('\n').unwrap() + 1;
    let after_blank = data.range.end + "\n\n".len();
    assert_eq!(&mounted[data.range.end..after_blank], "\n\n");
    let expected = format!("{}{}", &mounted[..first_line], &mounted[after_blank..]);
    assert_eq!(edited.text, expected);
    assert_eq!(edited.mounts, strings(&["/home", "/mnt/data"]));
}

#[test]
fn dropping_nothing_that_is_there_changes_nothing() {
    let plain = fixture("hardware-configuration.hetzner-cx.nix");
    let edited = drop_file_systems(&plain, &["/home", "/mnt/data"]).unwrap();
    assert_eq!(edited.text, plain);
    assert!(edited.mounts.is_empty());
}

#[test]
fn the_seed_configuration_declares_home_and_the_nix_bind() {
    let seed = fixture("configuration.seed-style.nix");
    let found = file_systems_mounts(&seed).unwrap();
    assert_eq!(
        summary(&found),
        vec![
            ("/home".to_owned(), fields(Some(SEED_DEVICE), Some("ext4"))),
            (
                "/nix".to_owned(),
                MountFields {
                    options: Some(strings(&["bind"])),
                    ..fields(Some("/home/qwe/nix"), Some("none"))
                }
            ),
        ]
    );
    let home = &found[0];
    assert_eq!(home.line, 7);
    assert!(seed[home.range.clone()].starts_with("fileSystems.\"/home\" = {"));
    assert!(seed[home.range.clone()].ends_with("};"));
}

/// The mount points and literal fields a source must yield.
type Expected = Vec<(&'static str, MountFields)>;

/// Each form people write: a name, a source and what it declares.
fn declaration_forms() -> Vec<(&'static str, &'static str, Expected)> {
    let ext4 = |device| fields(Some(device), Some("ext4"));
    vec![
        (
            "a set per mount",
            r#"{ fileSystems."/home" = { device = "/dev/vdb"; fsType = "ext4"; }; }"#,
            vec![("/home", ext4("/dev/vdb"))],
        ),
        (
            "a binding per option",
            "{\n  fileSystems.\"/home\".device = \"/dev/vdb\";\n  fileSystems.\"/home\".neededForBoot = true;\n}\n",
            vec![
                ("/home", fields(Some("/dev/vdb"), None)),
                (
                    "/home",
                    MountFields {
                        needed_for_boot: Some(true),
                        ..MountFields::default()
                    },
                ),
            ],
        ),
        (
            "one fileSystems set",
            r#"{ fileSystems = { "/home" = { device = "/dev/vdb"; fsType = "ext4"; }; "/nix".options = [ "bind" "nofail" ]; }; }"#,
            vec![
                ("/home", ext4("/dev/vdb")),
                (
                    "/nix",
                    MountFields {
                        options: Some(strings(&["bind", "nofail"])),
                        ..MountFields::default()
                    },
                ),
            ],
        ),
        (
            "a module function with let and with",
            "{ config, lib, ... }:\nlet disk = \"/dev/vdc\"; in\nwith lib;\n{\n  fileSystems.\"/srv\" = { device = disk; fsType = \"xfs\"; neededForBoot = false; };\n}\n",
            vec![(
                "/srv",
                MountFields {
                    needed_for_boot: Some(false),
                    ..fields(None, Some("xfs"))
                },
            )],
        ),
        (
            "mkIf, mkForce and mkDefault",
            r#"{ lib, config, ... }: {
  fileSystems."/home" = lib.mkIf config.volume.enable { device = lib.mkForce "/dev/vdb"; fsType = "ext4"; };
  fileSystems."/boot".options = lib.mkOverride 10 [ "umask=0077" ];
}"#,
            vec![
                ("/home", ext4("/dev/vdb")),
                (
                    "/boot",
                    MountFields {
                        options: Some(strings(&["umask=0077"])),
                        ..MountFields::default()
                    },
                ),
            ],
        ),
        (
            "a wrapped fileSystems set",
            r#"{ lib, ... }: { fileSystems = lib.mkForce { "/data" = { device = "/dev/vdd"; fsType = lib.mkDefault "ext4"; }; }; }"#,
            vec![("/data", ext4("/dev/vdd"))],
        ),
        (
            "under config, mkMerge and //",
            r#"{ lib, config, ... }: {
  options.volume.enable = lib.mkEnableOption "the volume";
  config = lib.mkMerge [
    { fileSystems."/home" = { device = "/dev/vdb"; fsType = "ext4"; }; }
    (lib.mkIf config.volume.enable ({ fileSystems."/nix".device = "/home/qwe/nix"; } // { fileSystems."/srv".fsType = "ext4"; }))
  ];
}"#,
            vec![
                ("/home", ext4("/dev/vdb")),
                ("/nix", fields(Some("/home/qwe/nix"), None)),
                ("/srv", fields(None, Some("ext4"))),
            ],
        ),
        (
            "config.fileSystems and a literal in ${}",
            r#"{ config.fileSystems."/home" = { device = "/dev/vdb"; fsType = "ext4"; }; config.fileSystems.${"/srv"}.fsType = "ext4"; }"#,
            vec![
                ("/home", ext4("/dev/vdb")),
                ("/srv", fields(None, Some("ext4"))),
            ],
        ),
        (
            "things that are not fileSystems",
            r#"{ config, name, ... }: {
  services.foo.fileSystems."/home".device = "/dev/vdb";
  fileSystems.${name}.fsType = "ext4";
  fileSystems."/home".device = "/dev/disk/by-id/${config.volumeId}";
  environment.etc."fileSystems".text = "";
}"#,
            vec![("/home", MountFields::default())],
        ),
    ]
}

#[test]
fn every_declaration_form_is_found() {
    for (form, source, expected) in declaration_forms() {
        let found = file_systems_mounts(source).unwrap_or_else(|e| panic!("{form}: {e}"));
        let expected: Vec<(String, MountFields)> = expected
            .into_iter()
            .map(|(mount, fields)| (mount.to_owned(), fields))
            .collect();
        assert_eq!(summary(&found), expected, "{form}");
        for mount in &found {
            let binding = &source[mount.range.clone()];
            assert!(binding.ends_with(';'), "{form}: {binding}");
            assert!(binding.trim() == binding, "{form}: {binding:?}");
        }
    }
}

#[test]
fn every_declaration_form_can_be_dropped() {
    for (form, source, expected) in declaration_forms() {
        for (mount, _) in &expected {
            let edited = drop_file_systems(source, &[mount]).unwrap();
            let left = file_systems_mounts(&edited.text).unwrap();
            assert!(
                left.iter().all(|m| m.mount_point != *mount),
                "{form}: {mount} left in {}",
                edited.text
            );
            assert_eq!(
                left.len(),
                expected.iter().filter(|(m, _)| m != mount).count(),
                "{form}: {}",
                edited.text
            );
            assert_eq!(edited.mounts, strings(&[mount]));
        }
    }
}

#[test]
fn dropping_a_binding_that_shares_its_line_keeps_the_neighbours() {
    let source = "{\n  fileSystems = { \"/a\" = { fsType = \"tmpfs\"; }; \"/b\".fsType = \"ext4\"; };\n  x = 1; fileSystems.\"/c\".fsType = \"ext4\"; # why\n}\n";
    let edited = drop_file_systems(source, &["/a", "/c"]).unwrap();
    assert_eq!(
        edited.text,
        "{\n  fileSystems = { \"/b\".fsType = \"ext4\"; };\n  x = 1; # why\n}\n"
    );
    let edited = drop_file_systems(source, &["/b"]).unwrap();
    assert_eq!(
        edited.text,
        "{\n  fileSystems = { \"/a\" = { fsType = \"tmpfs\"; }; };\n  x = 1; fileSystems.\"/c\".fsType = \"ext4\"; # why\n}\n"
    );
}

#[test]
fn dropping_leaves_no_blank_hole_at_a_brace() {
    let source = "{\n  fileSystems.\"/a\".fsType = \"ext4\";\n\n  x = 1;\n\n  fileSystems.\"/b\".fsType = \"ext4\";\n}\n";
    let edited = drop_file_systems(source, &["/a", "/b"]).unwrap();
    assert_eq!(edited.text, "{\n  x = 1;\n}\n");
}

#[test]
fn dropping_every_option_binding_of_a_mount() {
    let source = "{\n  # the volume\n  fileSystems.\"/home\".device = \"/dev/vdb\";\n  fileSystems.\"/home\".fsType = \"ext4\";\n  fileSystems.\"/\".fsType = \"ext4\";\n}\n";
    let edited = drop_file_systems(source, &["/home"]).unwrap();
    assert_eq!(
        edited.text,
        "{\n  # the volume\n  fileSystems.\"/\".fsType = \"ext4\";\n}\n"
    );
    assert_eq!(edited.mounts, strings(&["/home"]));
}

#[test]
fn rewriting_the_seed_volume_device() {
    let seed = fixture("configuration.seed-style.nix");
    let new = "/dev/disk/by-id/scsi-0HC_Volume_555";

    let edited = rewrite_device(&seed, SEED_DEVICE, new).unwrap();

    assert_eq!(edited.mounts, strings(&["/home"]));
    assert_eq!(edited.text, seed.replacen(SEED_DEVICE, new, 1));
    let home = &file_systems_mounts(&edited.text).unwrap()[0];
    assert_eq!(home.fields.device.as_deref(), Some(new));
}

#[test]
fn rewriting_a_device_used_twice_changes_both() {
    let mounted = fixture("hardware-configuration.hetzner-cx.volume-mounted.nix");
    let old = "/dev/disk/by-uuid/1f6c2a9e-3d0b-4c55-9a0e-6b7f3e2d8c41";
    let edited = rewrite_device(&mounted, old, "/dev/vdz").unwrap();
    assert_eq!(edited.mounts, strings(&["/home", "/mnt/data"]));
    assert_eq!(edited.text, mounted.replace(old, "/dev/vdz"));
}

#[test]
fn rewriting_escapes_the_new_device() {
    let source = "{ fileSystems.\"/home\".device = ''/dev/vdb''; }";
    let weird = "/dev/a\"b\\c${d}$e";
    let edited = rewrite_device(source, "/dev/vdb", weird).unwrap();
    assert_eq!(
        edited.text,
        format!(
            "{{ fileSystems.\"/home\".device = {}; }}",
            nix_string(weird)
        )
    );
    let found = file_systems_mounts(&edited.text).unwrap();
    assert_eq!(found[0].fields.device.as_deref(), Some(weird));
}

#[test]
fn rewriting_a_device_that_is_not_there_is_refused() {
    let seed = fixture("configuration.seed-style.nix");
    let error = rewrite_device(&seed, "/dev/vdz", "/dev/vdy").unwrap_err();
    assert_eq!(
        error,
        NixEditError::DeviceNotFound {
            device: "/dev/vdz".to_owned()
        }
    );
    // A string equal to the device outside a fileSystems entry is not a device.
    let source = "{ services.x.device = \"/dev/vdz\"; fileSystems.\"/\".device = \"/dev/vda\"; }";
    assert!(matches!(
        rewrite_device(source, "/dev/vdz", "/dev/vdy"),
        Err(NixEditError::DeviceNotFound { .. })
    ));
}

#[test]
fn rewriting_a_device_written_as_an_expression_is_refused() {
    let interpolated = "{ config, ... }:\n{\n  fileSystems.\"/\".device = \"/dev/vda\";\n  fileSystems.\"/home\".device = \"/dev/disk/by-id/scsi-0HC_Volume_${config.volumeId}\";\n}\n";
    let error = rewrite_device(interpolated, SEED_DEVICE, "/dev/vdb").unwrap_err();
    assert_eq!(
        error,
        NixEditError::DeviceNotLiteral {
            device: SEED_DEVICE.to_owned(),
            mount_point: "/home".to_owned(),
            line: 4,
            column: 32,
            expr: "\"/dev/disk/by-id/scsi-0HC_Volume_${config.volumeId}\"".to_owned(),
        }
    );
    // An interpolation that cannot produce the device is just another device.
    let other = interpolated.replace("scsi-0HC", "virtio-");
    assert!(matches!(
        rewrite_device(&other, SEED_DEVICE, "/dev/vdb"),
        Err(NixEditError::DeviceNotFound { .. })
    ));
    let variable = "let volume = \"/dev/vdb\"; in { fileSystems.\"/home\".device = volume; }";
    assert!(matches!(
        rewrite_device(variable, "/dev/vdb", "/dev/vdc"),
        Err(NixEditError::DeviceNotLiteral {
            line: 1,
            column: 60,
            ..
        })
    ));
}

#[test]
fn parse_errors_say_where() {
    let broken = "{ config, ... }:\n{\n  fileSystems.\"/home\" = {\n    device = \"/dev/vdb\"\n    fsType = \"ext4\";\n  };\n}\n";
    let expected = NixEditError::Parse {
        line: 5,
        column: 12,
        message: "unexpected `=`".to_owned(),
    };
    assert_eq!(file_systems_mounts(broken).unwrap_err(), expected);
    assert_eq!(drop_file_systems(broken, &["/home"]).unwrap_err(), expected);
    assert_eq!(
        rewrite_device(broken, "/dev/vdb", "/dev/vdc").unwrap_err(),
        expected
    );
    assert_eq!(expected.to_string(), "line 5, column 12: unexpected `=`");

    let unfinished = "{\n  fileSystems.\"/home\".device = \"/dev/vdb\";\n  x = ";
    assert!(matches!(
        file_systems_mounts(unfinished).unwrap_err(),
        NixEditError::Parse {
            line: 3,
            column: 7,
            ..
        }
    ));
    let unicode = "# ‘nixos-generate-config’\n{ x = \"é\"; }}";
    assert!(matches!(
        file_systems_mounts(unicode).unwrap_err(),
        NixEditError::Parse {
            line: 2,
            column: 13,
            ..
        }
    ));
}

#[test]
fn the_boot_snippets_are_nix_that_says_what_they_mean() {
    assert_eq!(
        boot_fix_snippet("/home"),
        "fileSystems.\"/home\".neededForBoot = true;\n"
    );
    let found = file_systems_mounts(&format!("{{\n{}}}", boot_fix_snippet("/home"))).unwrap();
    assert_eq!(found[0].mount_point, "/home");
    assert_eq!(found[0].fields.needed_for_boot, Some(true));

    let bind = bind_snippet("/nix", "/home/qwe/nix");
    let seed = fixture("configuration.seed-style.nix");
    let seed_bind = &file_systems_mounts(&seed).unwrap()[1];
    let found = file_systems_mounts(&format!("{{\n{bind}}}")).unwrap();
    assert_eq!(summary(&found), summary(std::slice::from_ref(seed_bind)));
}

/// `config.fileSystems` of the seed as `nix eval --json` prints it (abridged).
const SEED_EVAL: &str = r#"{
  "/": {"autoFormat": false, "depends": [], "device": "/dev/disk/by-uuid/849b340d", "fsType": "ext4",
        "label": null, "mountPoint": "/", "neededForBoot": false, "options": ["defaults"]},
  "/home": {"device": "/dev/disk/by-id/scsi-0HC_Volume_103912881", "fsType": "ext4",
            "mountPoint": "/home", "neededForBoot": false, "options": ["defaults"]},
  "/nix": {"device": "/home/qwe/nix", "fsType": "none", "mountPoint": "/nix",
           "neededForBoot": false, "options": ["bind"]}
}"#;

fn seed_eval() -> BTreeMap<String, MountFields> {
    serde_json::from_str(SEED_EVAL).unwrap()
}

#[test]
fn the_seed_needs_home_in_stage_one() {
    let file_systems = seed_eval();
    assert_eq!(file_systems["/nix"].options, Some(strings(&["bind"])));

    let fixes = store_boot_fixes(&file_systems, "/home/qwe/nix", "/nix");

    assert_eq!(
        fixes,
        vec![BootFix {
            mount_point: "/home".to_owned(),
            problem: "/home holds /home/qwe/nix, which stage 1 bind-mounts at /nix, but stage 1 \
                      does not mount /home"
                .to_owned(),
            nix: boot_fix_snippet("/home"),
        }]
    );
}

#[test]
fn a_seed_with_needed_for_boot_has_no_blockers() {
    let mut file_systems = seed_eval();
    if let Some(home) = file_systems.get_mut("/home") {
        home.needed_for_boot = Some(true);
    }
    assert!(store_boot_fixes(&file_systems, "/home/qwe/nix", "/nix").is_empty());
    // A store on a filesystem stage 1 mounts anyway needs nothing either.
    file_systems.insert("/var".to_owned(), fields(Some("/dev/vdc"), Some("ext4")));
    assert!(store_boot_fixes(&file_systems, "/var/nix", "/nix").len() == 1);
    file_systems.insert(
        "/nix".to_owned(),
        MountFields {
            options: Some(strings(&["bind"])),
            ..fields(Some("/var/nix"), Some("none"))
        },
    );
    assert!(store_boot_fixes(&file_systems, "/var/nix", "/nix").is_empty());
}

#[test]
fn a_missing_or_wrong_nix_bind_is_a_blocker() {
    let mut file_systems = seed_eval();
    file_systems.get_mut("/home").unwrap().needed_for_boot = Some(true);
    file_systems.get_mut("/nix").unwrap().device = Some("/home/other/nix".to_owned());
    let fixes = store_boot_fixes(&file_systems, "/home/qwe/nix", "/nix");
    assert_eq!(fixes.len(), 1);
    assert_eq!(fixes[0].mount_point, "/nix");
    assert_eq!(
        fixes[0].problem,
        "/nix is not a bind mount of /home/qwe/nix"
    );
    assert_eq!(fixes[0].nix, bind_snippet("/nix", "/home/qwe/nix"));

    file_systems.get_mut("/nix").unwrap().device = Some("/home/qwe/nix".to_owned());
    file_systems.get_mut("/nix").unwrap().options = Some(strings(&["defaults"]));
    assert_eq!(
        store_boot_fixes(&file_systems, "/home/qwe/nix", "/nix").len(),
        1
    );

    file_systems.remove("/nix");
    file_systems.get_mut("/home").unwrap().needed_for_boot = None;
    let fixes = store_boot_fixes(&file_systems, "/home/qwe/nix", "/nix");
    let mounts: Vec<&str> = fixes.iter().map(|f| f.mount_point.as_str()).collect();
    assert_eq!(mounts, ["/nix", "/home"]);
    assert_eq!(
        fixes[0].problem,
        "/nix is not declared; it must be a bind mount of /home/qwe/nix"
    );
}

#[test]
fn the_holding_mount_is_the_longest_whole_component_prefix() {
    let mounts = ["/", "/ho", "/home", "/home/qwe/nix/store"];
    assert_eq!(holding_mount("/home/qwe/nix", mounts), Some("/home"));
    assert_eq!(holding_mount("/home", mounts), Some("/home"));
    assert_eq!(holding_mount("/homework", mounts), Some("/"));
    assert_eq!(holding_mount("/home/qwe/nix", ["/home/"]), Some("/home/"));
    assert_eq!(holding_mount("/srv", ["/home"]), None);
    assert!(mounted_in_stage1("/var/lib", &MountFields::default()));
    assert!(!mounted_in_stage1("/home", &MountFields::default()));
}

/// nixos-infect's networking.nix: the old server's addresses and MAC become this one's,
/// every other byte (comments, layout, the gateway) as it was, and each literal is found
/// by its line first.
#[test]
fn addresses_and_a_mac_in_a_udev_rule_are_rewritten_in_place() {
    let source = "{ lib, ... }: {\n  # populated at runtime\n  networking.interfaces.eth0 = {\n    \
                  ipv4.addresses = [ { address=\"198.51.100.9\"; prefixLength=32; } ];\n    \
                  ipv4.routes = [ { address = \"172.31.1.1\"; prefixLength = 32; } ];\n  };\n  \
                  services.udev.extraRules = ''\n    ATTR{address}==\"96:00:01:02:03:04\", NAME=\"eth0\"\n  '';\n  \
                  # 198.51.100.9 in a comment stays\n}\n";
    assert_eq!(string_lines(source, "198.51.100.9", true), Ok(vec![4]));
    assert_eq!(
        string_lines(source, "96:00:01:02:03:04", false),
        Ok(vec![8])
    );
    assert_eq!(string_lines(source, "198.51.100", true), Ok(vec![]));
    let edited = rewrite_strings(
        source,
        &[
            ("198.51.100.9", "203.0.113.7", true),
            ("96:00:01:02:03:04", "96:00:0a:0b:0c:0d", false),
        ],
    )
    .unwrap()
    .unwrap();
    let expected = source
        .replacen("\"198.51.100.9\"", "\"203.0.113.7\"", 1)
        .replace("96:00:01:02:03:04", "96:00:0a:0b:0c:0d");
    assert_eq!(edited, expected);
    assert!(edited.contains("# 198.51.100.9 in a comment stays"));
    assert_eq!(
        rewrite_strings(source, &[("10.0.0.1", "10.0.0.2", true)]),
        Ok(None)
    );
}
