//! `nixlog` against captures of real Nix and nixos-rebuild runs (tests/fixtures/nix,
//! tests/fixtures/nixos-rebuild) and against hostile input.

// Tests and benchmarks stop at the first thing they cannot set up: unwrap says where.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};

use nixos_lifeboat::nixlog::{
    BuildProgress, Item, KnownError, Moved, NixLog, Transfers, summarise_errors,
};

fn fixtures(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(dir);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {}", dir.display());
    files
}

fn fixture(name: &str) -> Vec<u8> {
    fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
    .unwrap()
}

fn lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes
        .strip_suffix(b"\n")
        .unwrap_or(bytes)
        .split(|&b| b == b'\n')
}

fn parse(bytes: &[u8]) -> Vec<Item<'static>> {
    let mut log = NixLog::new();
    lines(bytes)
        .filter_map(|line| log.feed(line).map(Item::into_owned))
        .collect()
}

/// What a whole log copied and built.
fn transfers(bytes: &[u8]) -> Transfers {
    let mut log = NixLog::new();
    lines(bytes).for_each(|line| drop(log.feed(line)));
    log.transfers()
}

#[test]
fn every_internal_json_capture_parses_without_a_plain_line() {
    let captures = fixtures("nix")
        .into_iter()
        .filter(|file| file.to_string_lossy().ends_with(".internal-json.stderr"));
    for file in captures {
        let items = parse(&fs::read(&file).unwrap());
        assert!(!items.is_empty(), "{}", file.display());
        for item in &items {
            assert!(
                !matches!(item, Item::Plain(_)),
                "{}: {item:?}",
                file.display()
            );
        }
    }
}

#[test]
fn plain_nixos_rebuild_output_passes_through_untouched() {
    for file in fixtures("nixos-rebuild") {
        let bytes = fs::read(&file).unwrap();
        let expected: Vec<Item> = lines(&bytes).map(|l| Item::Plain(l.into())).collect();
        assert_eq!(parse(&bytes), expected, "{}", file.display());
    }
}

#[test]
fn four_derivations_build_to_four_of_four() {
    let items = parse(&fixture("nix/build-4-derivations.internal-json.stderr"));
    let progress: Vec<BuildProgress> = items
        .iter()
        .filter_map(|item| match item {
            Item::Progress(p) => Some(*p),
            _ => None,
        })
        .collect();
    let last = *progress.last().unwrap();
    assert_eq!(
        last,
        BuildProgress {
            built: 4,
            total_builds: 4,
            downloaded: 0,
            total_downloads: 0,
            running: 0,
        }
    );
    // Only changes are reported, and the counts never go backwards.
    assert!(progress.windows(2).all(|w| w[0] != w[1]));
    assert!(progress.windows(2).all(|w| w[0].built <= w[1].built));
    assert!(progress.iter().any(|p| p.running == 1));

    let started: Vec<&str> = items
        .iter()
        .filter_map(|item| match item {
            Item::BuildStarted { drv } => Some(drv.as_ref()),
            _ => None,
        })
        .collect();
    assert_eq!(started.len(), 4);
    assert!(started[0].ends_with("-lib-a-1.0.drv"));
    assert!(started[3].ends_with("-nixos-system-devserver-25.11.drv"));

    let logs: Vec<(&str, &str)> = items
        .iter()
        .filter_map(|item| match item {
            Item::BuildLog { drv, line } => Some((drv.as_deref().unwrap(), line.as_ref())),
            _ => None,
        })
        .collect();
    assert_eq!(logs.len(), 20);
    assert_eq!(logs[0], (started[0], "building lib-a-1.0"));
    assert_eq!(
        logs[19],
        (started[3], "warning-from-nixos-system-devserver-25.11")
    );

    assert!(items.contains(&Item::Message {
        level: 3,
        text: "these 4 derivations will be built:".into(),
        coloured: "these 4 derivations will be built:".into(),
    }));
    assert_eq!(
        transfers(&fixture("nix/build-4-derivations.internal-json.stderr")),
        Transfers {
            built: 4,
            ..Transfers::default()
        }
    );
}

/// nix-build with the volume's store as `extra-substituters 'local?root=…&trusted=1'`: dep
/// comes from it (nix 2.8 names the store `local`), top is built.
#[test]
fn a_path_substituted_from_a_local_store_counts_as_from_local() {
    let bytes = fixture("nix/substitute-from-local-store.internal-json.stderr");
    assert_eq!(
        transfers(&bytes),
        Transfers {
            from_local: Moved {
                paths: 1,
                bytes: 300_280,
            },
            downloaded: Moved::default(),
            built: 1,
        }
    );
    let copying: Vec<Item> = parse(&bytes)
        .into_iter()
        .filter(|item| matches!(item, Item::Copying { .. }))
        .collect();
    assert_eq!(
        copying,
        [Item::Copying {
            from_local: true,
            path: "/nix/store/76fp0z0j2g5g2rpvki2ll8xsmx6152w7-dep".into(),
        }]
    );
}

/// `nix copy --to 'local?root=…'` copies from the machine's store, a local one too; top is
/// too small for Nix to report its bytes.
#[test]
fn nix_copy_counts_as_from_local() {
    assert_eq!(
        transfers(&fixture("nix/copy-to-local-store.internal-json.stderr")),
        Transfers {
            from_local: Moved { paths: 1, bytes: 0 },
            ..Transfers::default()
        }
    );
}

/// Shaped after substitute-from-local-store.internal-json.stderr, with the source a binary
/// cache as Nix names it, and the download's fileTransfer activity (whose progress counts the
/// compressed download, not the path) inside the copy; a second, tiny path reports no
/// progress.
const DOWNLOAD: &str = r#"@nix {"action":"start","fields":["/nix/store/76fp0z0j2g5g2rpvki2ll8xsmx6152w7-dep","https://cache.nixos.org"],"id":40123584479237,"level":0,"text":"","type":108}
@nix {"action":"start","fields":["/nix/store/76fp0z0j2g5g2rpvki2ll8xsmx6152w7-dep","https://cache.nixos.org","local"],"id":40123584479238,"level":3,"text":"copying path '/nix/store/76fp0z0j2g5g2rpvki2ll8xsmx6152w7-dep' from 'https://cache.nixos.org'","type":100}
@nix {"action":"start","fields":["https://cache.nixos.org/nar/1b2m3ayn3vq7gnlqfrq0qckixq3ykpxm3q8mh11bhfm8ympq64jz.nar.xz"],"id":40123584479239,"level":4,"text":"downloading 'https://cache.nixos.org/nar/1b2m3ayn3vq7gnlqfrq0qckixq3ykpxm3q8mh11bhfm8ympq64jz.nar.xz'","type":101}
@nix {"action":"result","fields":[0,0,0,0],"id":40123584479239,"type":105}
@nix {"action":"result","fields":[8,300280,0,0],"id":40123584479238,"type":105}
@nix {"action":"result","fields":[1032,1032,0,0],"id":40123584479239,"type":105}
@nix {"action":"stop","id":40123584479239}
@nix {"action":"result","fields":[262376,300280,0,0],"id":40123584479238,"type":105}
@nix {"action":"result","fields":[300273,300280,0,0],"id":40123584479238,"type":105}
@nix {"action":"stop","id":40123584479238}
@nix {"action":"stop","id":40123584479237}
@nix {"action":"start","fields":["/nix/store/8vjx6iwljkks4bjmkpi7nmp1aa2qrnmf-top-2","https://cache.nixos.org"],"id":40123584479240,"level":0,"text":"","type":108}
@nix {"action":"start","fields":["/nix/store/8vjx6iwljkks4bjmkpi7nmp1aa2qrnmf-top-2","https://cache.nixos.org","local"],"id":40123584479241,"level":3,"text":"copying path '/nix/store/8vjx6iwljkks4bjmkpi7nmp1aa2qrnmf-top-2' from 'https://cache.nixos.org'","type":100}
@nix {"action":"stop","id":40123584479241}
@nix {"action":"stop","id":40123584479240}
"#;

#[test]
fn a_path_from_a_binary_cache_counts_as_downloaded() {
    let copied = transfers(DOWNLOAD.as_bytes());
    assert_eq!(
        copied,
        Transfers {
            from_local: Moved::default(),
            downloaded: Moved {
                paths: 2,
                bytes: 300_280,
            },
            built: 0,
        }
    );
    assert_eq!(
        serde_json::to_value(copied).unwrap(),
        serde_json::json!({
            "from_local": {"paths": 0, "bytes": 0},
            "downloaded": {"paths": 2, "bytes": 300_280},
            "built": 0,
        })
    );
    let copying: Vec<Item> = parse(DOWNLOAD.as_bytes())
        .into_iter()
        .filter(|item| matches!(item, Item::Copying { .. }))
        .collect();
    assert_eq!(
        copying,
        [
            Item::Copying {
                from_local: false,
                path: "/nix/store/76fp0z0j2g5g2rpvki2ll8xsmx6152w7-dep".into(),
            },
            Item::Copying {
                from_local: false,
                path: "/nix/store/8vjx6iwljkks4bjmkpi7nmp1aa2qrnmf-top-2".into(),
            },
        ]
    );
}

/// A copy's source store as Nix 2.8 and later name it: a local store (the volume's, or the
/// machine's own) or anything else.
#[test]
fn a_copy_is_classified_by_its_source_store() {
    let sources = [
        ("local", true),
        ("local?root=/mnt/vol/qwe", true),
        ("local?root=/mnt/vol/qwe&trusted=1", true),
        ("/mnt/vol/qwe", true),
        ("auto", true),
        ("daemon", true),
        ("unix:///nix/var/nix/daemon-socket/socket", true),
        ("https://cache.nixos.org", false),
        ("http://10.0.0.1:5000", false),
        ("s3://bucket?region=eu-west-1", false),
        ("file:///mnt/cache", false),
        ("ssh://builder", false),
        ("ssh-ng://builder", false),
        ("localhost", false),
        ("", false),
    ];
    for (id, (source, from_local)) in sources.into_iter().enumerate() {
        let mut log = NixLog::new();
        let start = format!(
            r#"@nix {{"action":"start","fields":["/nix/store/x-p","{source}","local"],"id":{id},"level":3,"text":"","type":100}}"#
        );
        assert_eq!(
            log.feed(start.as_bytes()),
            Some(Item::Copying {
                from_local,
                path: "/nix/store/x-p".into()
            }),
            "{source}"
        );
        let progress =
            format!(r#"@nix {{"action":"result","fields":[8,1000,0,0],"id":{id},"type":105}}"#);
        assert_eq!(log.feed(progress.as_bytes()), None);
        let moved = Moved {
            paths: 1,
            bytes: 1000,
        };
        let transfers = log.transfers();
        let (local, downloaded) = (transfers.from_local, transfers.downloaded);
        let expected = if from_local {
            (moved, Moved::default())
        } else {
            (Moved::default(), moved)
        };
        assert_eq!((local, downloaded), expected, "{source}");
    }
    // Nix always names the source; a record that does not is still one path, not local.
    let mut log = NixLog::new();
    let item = log.feed(br#"@nix {"action":"start","fields":[],"id":1,"type":100}"#);
    assert_eq!(
        item,
        Some(Item::Copying {
            from_local: false,
            path: "".into()
        })
    );
    assert_eq!(log.transfers().downloaded.paths, 1);
}

/// An id started again while it runs is the same copy or build: counted once, its bytes at
/// their largest. Stopped, its late results count nothing.
#[test]
fn an_activity_started_again_counts_once() {
    let mut log = NixLog::new();
    for line in [
        r#"@nix {"action":"start","fields":["/nix/store/x-p","local","local"],"id":5,"type":100}"#,
        r#"@nix {"action":"result","fields":[8,1000,0,0],"id":5,"type":105}"#,
        r#"@nix {"action":"start","fields":["/nix/store/x-p","local","local"],"id":5,"type":100}"#,
        r#"@nix {"action":"result","fields":[8,1000,0,0],"id":5,"type":105}"#,
        r#"@nix {"action":"result","fields":[8,1500,0,0],"id":5,"type":105}"#,
        r#"@nix {"action":"result","fields":[8,1200,0,0],"id":5,"type":105}"#,
        r#"@nix {"action":"start","fields":["/nix/store/y.drv","",1,1],"id":8,"type":105}"#,
        r#"@nix {"action":"start","fields":["/nix/store/y.drv","",1,1],"id":8,"type":105}"#,
        r#"@nix {"action":"stop","id":5}"#,
        r#"@nix {"action":"result","fields":[8,9000,0,0],"id":5,"type":105}"#,
    ] {
        log.feed(line.as_bytes());
    }
    assert_eq!(
        log.transfers(),
        Transfers {
            from_local: Moved {
                paths: 1,
                bytes: 1500,
            },
            downloaded: Moved::default(),
            built: 1,
        }
    );
}

#[test]
fn messages_lose_their_colours_but_keep_them_aside() {
    let items = parse(&fixture(
        "nix/build-offline-substituter.internal-json.stderr",
    ));
    let Some(Item::Message {
        level,
        text,
        coloured,
    }) = items.iter().find(|i| matches!(i, Item::Message { .. }))
    else {
        panic!("no message");
    };
    assert_eq!(*level, 1);
    assert!(
        text.starts_with(
            "warning: error: unable to download 'https://cache.nixos.org/nix-cache-info'"
        ),
        "{text}"
    );
    assert!(!text.contains('\x1b'));
    assert!(
        coloured.starts_with("\x1b[35;1mwarning:\x1b[0m"),
        "{coloured}"
    );
    let last = items.iter().rev().find_map(|i| match i {
        Item::Progress(p) => Some(*p),
        _ => None,
    });
    assert_eq!(last.map(|p| (p.built, p.total_builds)), Some((1, 1)));
}

#[test]
fn phases_and_logs_name_their_derivation() {
    let mut log = NixLog::new();
    let start = br#"@nix {"action":"start","fields":["/nix/store/x-hello.drv","",1,1],"id":7,"level":3,"text":"building","type":105}"#;
    assert_eq!(
        log.feed(start),
        Some(Item::BuildStarted {
            drv: "/nix/store/x-hello.drv".into()
        })
    );
    assert_eq!(
        log.feed(br#"@nix {"action":"result","fields":["buildPhase"],"id":7,"type":104}"#),
        Some(Item::Phase {
            drv: Some("/nix/store/x-hello.drv".into()),
            phase: "buildPhase".into()
        })
    );
    log.feed(br#"@nix {"action":"stop","id":7}"#);
    // After the stop the activity is forgotten: a late result is ignored.
    assert_eq!(
        log.feed(br#"@nix {"action":"result","fields":["late"],"id":7,"type":101}"#),
        None
    );

    // An id started again (without a stop) names its new derivation from then on.
    for drv in ["/nix/store/y-one.drv", "/nix/store/z-two.drv"] {
        let start = format!(r#"@nix {{"action":"start","fields":["{drv}"],"id":8,"type":105}}"#);
        log.feed(start.as_bytes());
        assert_eq!(
            log.feed(br#"@nix {"action":"result","fields":["x"],"id":8,"type":101}"#),
            Some(Item::BuildLog {
                drv: Some(drv.into()),
                line: "x".into()
            })
        );
    }
}

#[test]
fn unknown_actions_and_numbers_are_ignored() {
    let mut log = NixLog::new();
    log.feed(br#"@nix {"action":"start","id":1,"level":0,"text":"","type":104}"#);
    log.feed(br#"@nix {"action":"result","fields":[1,3,1,0],"id":1,"type":105}"#);
    let before = log.progress();
    for line in [
        r#"@nix {"action":"frobnicate","id":1}"#,
        r#"@nix {"action":"start","id":2,"level":0,"text":"new thing","type":999}"#,
        r#"@nix {"action":"result","fields":[9,9,9,9],"id":2,"type":105}"#,
        r#"@nix {"action":"result","fields":[9,9,9,9],"id":1,"type":999}"#,
        r#"@nix {"action":"result","fields":[9,9,9,9],"id":12345,"type":105}"#,
        r#"@nix {"action":"result","fields":["x","y"],"id":1,"type":105}"#,
        r#"@nix {"action":"result","fields":[101,77],"id":1,"type":106}"#,
        r#"@nix {"action":"result","id":1,"type":105}"#,
        r#"@nix {"action":"start","id":-3,"type":105,"fields":[42]}"#,
        r#"@nix {"action":"stop"}"#,
        r#"@nix {"action":7}"#,
        r#"@nix {}"#,
        r#"@nix {"action":"msg","level":0}"#,
    ] {
        assert_eq!(log.feed(line.as_bytes()), None, "{line}");
    }
    assert_eq!(log.progress(), before);
    assert_eq!(
        log.feed(br#"@nix {"action":"result","fields":[2,3,0,0],"id":1,"type":105}"#),
        Some(Item::Progress(BuildProgress {
            built: 2,
            total_builds: 3,
            ..BuildProgress::default()
        }))
    );
}

#[test]
fn garbage_after_the_prefix_is_a_plain_line() {
    let mut log = NixLog::new();
    for line in [
        &b"@nix {not json"[..],
        b"@nix ",
        b"@nix 42",
        b"@nix [\"action\"]",
        b"@nix {\"action\":\"msg\",\"msg\":\"cut here",
        b"@nix{\"action\":\"msg\",\"level\":0,\"msg\":\"no space\"}",
        b"@nixos is not a prefix",
    ] {
        assert_eq!(log.feed(line), Some(Item::Plain(line.into())));
    }
}

#[test]
fn bytes_that_are_not_utf8_survive() {
    let mut log = NixLog::new();
    let plain = b"activation: caf\xe9 \xff\x1b[0m";
    assert_eq!(log.feed(plain), Some(Item::Plain(plain.into())));
    let record = b"@nix {\"action\":\"msg\",\"level\":0,\"msg\":\"bad \xff byte\"}";
    assert_eq!(
        log.feed(record),
        Some(Item::Message {
            level: 0,
            text: "bad \u{fffd} byte".into(),
            coloured: "bad \u{fffd} byte".into(),
        })
    );
}

/// A small deterministic generator: the same "random" input every run.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Random byte lines, random `@nix` lines, and fixture lines with random bytes changed,
/// cut or repeated: the parser never panics.
#[test]
fn random_lines_never_panic() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let corpus: Vec<Vec<u8>> = fixtures("nix")
        .into_iter()
        .chain(fixtures("nixos-rebuild"))
        .flat_map(|file| {
            let bytes = fs::read(file).unwrap();
            lines(&bytes).map(<[u8]>::to_vec).collect::<Vec<_>>()
        })
        .collect();
    const ALPHABET: &[u8] = b"{}[]\":,0123456789-.eE actionstrfldmsgypeiu\\\x1b\xff\x00@nix";
    let mut log = NixLog::new();
    let mut lines_seen = 0;
    for _ in 0..20_000 {
        let mut line = match rng.below(3) {
            0 => (0..rng.below(200)).map(|_| rng.next() as u8).collect(),
            1 => {
                let mut line = b"@nix ".to_vec();
                line.extend((0..rng.below(120)).map(|_| ALPHABET[rng.below(ALPHABET.len())]));
                line
            }
            _ => corpus[rng.below(corpus.len())].clone(),
        };
        for _ in 0..rng.below(4) {
            if line.is_empty() {
                break;
            }
            let at = rng.below(line.len());
            match rng.below(3) {
                0 => line[at] = rng.next() as u8,
                1 => line.truncate(at),
                _ => line.insert(at, ALPHABET[rng.below(ALPHABET.len())]),
            }
        }
        log.feed(&line);
        let _ = summarise_errors([String::from_utf8_lossy(&line).as_ref()]);
        lines_seen += 1;
    }
    assert_eq!(lines_seen, 20_000);
}

fn summarise_fixture(name: &str) -> Vec<KnownError> {
    let text = String::from_utf8(fixture(name)).unwrap();
    summarise_errors([text.as_str()])
}

#[test]
fn an_untracked_hardware_configuration_says_git_add() {
    for name in [
        "nixos-rebuild/flake-untracked-hardware.nix-2.8.stderr",
        "nixos-rebuild/flake-untracked-hardware.nix-2.20plus.stderr",
    ] {
        let known = summarise_fixture(name);
        assert_eq!(
            known,
            [KnownError::UntrackedInFlake {
                file: "hardware-configuration.nix".into()
            }],
            "{name}"
        );
        assert!(
            known[0]
                .to_string()
                .contains("git add hardware-configuration.nix")
        );
    }
}

#[test]
fn a_repository_of_another_user_is_recognised() {
    let expected = KnownError::RepositoryOwnership {
        path: "/etc/nixos".into(),
    };
    assert_eq!(
        summarise_fixture("nixos-rebuild/git-dubious-ownership.stderr"),
        std::slice::from_ref(&expected)
    );
    for git_says in [
        "fatal: unsafe repository ('/etc/nixos' is owned by someone else)",
        "fatal: detected dubious ownership in repository at '/etc/nixos'",
    ] {
        assert_eq!(
            summarise_errors([git_says]),
            std::slice::from_ref(&expected),
            "{git_says}"
        );
    }
    assert!(expected.to_string().contains("safe.directory /etc/nixos"));
}

#[test]
fn a_second_home_file_system_points_at_hardware_configuration() {
    let known = summarise_fixture("nixos-rebuild/eval-duplicate-home.stderr");
    assert_eq!(
        known,
        [KnownError::DuplicateFileSystem {
            mount_point: "/home".into(),
            in_hardware_configuration: true,
        }]
    );
    assert!(known[0].to_string().contains("hardware-configuration.nix"));
}

#[test]
fn a_host_missing_from_the_flake_is_named() {
    let nix_says = [
        "error: flake 'git+file:///etc/nixos' does not provide attribute 'packages.x86_64-linux.nixosConfigurations.\"devserver\".config.system.build.toplevel', 'legacyPackages.x86_64-linux.nixosConfigurations.\"devserver\".config.system.build.toplevel' or 'nixosConfigurations.\"devserver\".config.system.build.toplevel'",
        "\x1b[31;1merror:\x1b[0m attribute '\x1b[35;1mdevserver\x1b[0m' missing",
        "error: flake 'path:/etc/nixos' does not provide attribute 'nixosConfigurations.devserver.config'",
    ];
    for message in nix_says {
        assert_eq!(
            summarise_errors([message]),
            [KnownError::HostNotInFlake {
                host: "devserver".into()
            }],
            "{message}"
        );
    }
}

#[test]
fn ordinary_output_explains_nothing_and_each_failure_is_named_once() {
    let ok = String::from_utf8(fixture("nixos-rebuild/switch-ok.stderr")).unwrap();
    assert_eq!(summarise_errors(ok.lines()), []);
    let twice = "error: attribute 'devserver' missing";
    assert_eq!(summarise_errors([twice, "building...", twice]).len(), 1);
}

#[test]
fn messages_from_an_internal_json_run_feed_the_summary() {
    let mut log = NixLog::new();
    let record = br#"@nix {"action":"msg","level":0,"msg":"\u001b[31;1merror:\u001b[0m Path '\u001b[35;1mhardware-configuration.nix\u001b[0m' in the repository \"/etc/nixos\" is not tracked by Git."}"#;
    let Some(Item::Message { text, .. }) = log.feed(record) else {
        panic!("not a message");
    };
    assert_eq!(
        summarise_errors([text.as_str()]),
        [KnownError::UntrackedInFlake {
            file: "hardware-configuration.nix".into()
        }]
    );
}
