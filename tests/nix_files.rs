//! The Nix side of lifeboat: `flake.nix`, the NixOS module (`nix/module.nix`) and the
//! package (`nix/package.nix`), checked with the real `nix-instantiate` (Debian's nix-bin, as
//! scripts/test.sh installs it).
//!
//! Every `.nix` file of the repository is parsed. The flake and the module are evaluated
//! with nixpkgs' real `lib` — `lib.evalModules` for the module — where
//! `LIFEBOAT_NIXPKGS_LIB` names its directory (scripts/test.sh sets it when the directory
//! is there); without it those tests say they were skipped and pass. nixpkgs' package set is
//! not available offline, so packages are stand-ins (tests/fixtures/module/fake-pkgs.nix) and
//! the package itself is not built here.

// Tests and benchmarks stop at the first thing they cannot set up: unwrap says where.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use nixos_lifeboat::config::Config;
use serde_json::{Value, json};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Files holding `@field@` placeholders that the tests fill in before Nix sees them, with a
/// value for each field that makes them the Nix they become.
const TEMPLATES: &[(&str, &[(&str, &str)])] = &[
    (
        "tests/fixtures/recover/configuration.nix",
        &[
            ("@home@", "/home"),
            ("@device@", "/dev/disk/by-id/scsi-0HC_Volume_1"),
            ("@needed_for_boot@", "    neededForBoot = true;\n"),
            ("@nix_bind@", ""),
            ("@uid@", "1000"),
            ("@extra@", ""),
        ],
    ),
    (
        "tests/fixtures/recover/flake.nix",
        &[("@system@", "x86_64-linux"), ("@dir@", "/tmp/recover")],
    ),
];

/// Every `.nix` file below `dir`, leaving out build output and git's own directory.
fn nix_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        let name = entry.file_name();
        if entry.file_type().unwrap().is_dir() {
            if name != "target" && name != ".git" {
                nix_files(&path, found);
            }
        } else if path.extension().is_some_and(|e| e == "nix") {
            found.push(path);
        }
    }
}

/// The `@field@` placeholders in `text` (a field is lower case letters and `_`).
fn placeholders(text: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('@') {
        let after = &rest[start + 1..];
        match after.find('@') {
            Some(end)
                if end > 0
                    && after[..end]
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b == b'_') =>
            {
                found.push(&rest[start..start + end + 2]);
                rest = &after[end + 1..];
            }
            _ => rest = after,
        }
    }
    found
}

fn nix_instantiate(args: &[&str]) -> std::process::Output {
    Command::new("nix-instantiate")
        .args(args)
        .output()
        .expect("nix-instantiate (Debian's nix-bin; scripts/deps.sh installs it)")
}

#[test]
fn every_nix_file_in_the_repository_parses() {
    let mut files = Vec::new();
    nix_files(repo(), &mut files);
    files.sort();
    let relative: Vec<String> = files
        .iter()
        .map(|f| f.strip_prefix(repo()).unwrap().display().to_string())
        .collect();
    for expected in ["flake.nix", "nix/module.nix", "nix/package.nix"] {
        assert!(
            relative.iter().any(|f| f == expected),
            "{expected} not among {relative:?}"
        );
    }
    let scratch = tempfile::tempdir().unwrap();
    for (file, name) in files.iter().zip(&relative) {
        let mut text = fs::read_to_string(file).unwrap();
        let fields: Vec<String> = placeholders(&text).into_iter().map(String::from).collect();
        let parsed = if fields.is_empty() {
            file.clone()
        } else {
            let (_, values) = TEMPLATES
                .iter()
                .find(|(template, _)| template == name)
                .unwrap_or_else(|| {
                    panic!("{name} has placeholders {fields:?}: add it to TEMPLATES")
                });
            for field in fields {
                let (_, value) = values
                    .iter()
                    .find(|(f, _)| *f == field.as_str())
                    .unwrap_or_else(|| panic!("{name}: no value for {field} in TEMPLATES"));
                text = text.replace(&field, value);
            }
            let filled = scratch.path().join(name.replace('/', "_"));
            fs::write(&filled, text).unwrap();
            filled
        };
        let output = nix_instantiate(&["--parse", parsed.to_str().unwrap()]);
        assert!(
            output.status.success(),
            "{name} does not parse:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn placeholders_are_fields_between_at_signs() {
    assert_eq!(
        placeholders("uid = @uid@; a@b.c \"@home@\" @@ x@Y@"),
        ["@uid@", "@home@"]
    );
}

/// nixpkgs' `lib/` from `LIFEBOAT_NIXPKGS_LIB`, or `None` after saying the test is skipped.
fn nixpkgs_lib(test: &str) -> Option<PathBuf> {
    let Some(dir) = std::env::var_os("LIFEBOAT_NIXPKGS_LIB") else {
        eprintln!(
            "SKIPPED {test}: LIFEBOAT_NIXPKGS_LIB is not set (nixpkgs' lib/ directory; \
             scripts/test.sh sets it when ../shared/nixpkgs-lib/lib is there)"
        );
        return None;
    };
    let dir = PathBuf::from(dir);
    assert!(
        dir.join("default.nix").is_file(),
        "LIFEBOAT_NIXPKGS_LIB={} is not nixpkgs' lib/ directory",
        dir.display()
    );
    Some(dir)
}

/// `nix-instantiate --eval --strict --json` of a fixture under tests/fixtures/module/.
fn eval(fixture: &str, args: &[(&str, &str)]) -> Value {
    let file = repo().join("tests/fixtures/module").join(fixture);
    let mut argv = vec!["--eval", "--strict", "--json", file.to_str().unwrap()];
    for (name, value) in args {
        argv.extend(["--arg", name, value]);
    }
    let output = nix_instantiate(&argv);
    assert!(
        output.status.success(),
        "evaluating {fixture} with {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn eval_flake(lib: &Path) -> Value {
    eval("eval-flake.nix", &[("nixpkgsLib", lib.to_str().unwrap())])
}

/// The module as the flake exports it, on a machine whose own module is `machine` (a Nix
/// expression); `prometheus` declares the node exporter's options as NixOS has them.
fn eval_module(lib: &Path, machine: &str, prometheus: bool) -> Value {
    let prometheus = if prometheus { "true" } else { "false" };
    eval(
        "eval-module.nix",
        &[
            ("nixpkgsLib", lib.to_str().unwrap()),
            ("machine", machine),
            ("prometheus", prometheus),
        ],
    )
}

#[test]
fn the_flake_has_nixpkgs_alone_and_a_package_app_shell_and_module_per_system() {
    let Some(lib) =
        nixpkgs_lib("the_flake_has_nixpkgs_alone_and_a_package_app_shell_and_module_per_system")
    else {
        return;
    };
    let flake = eval_flake(&lib);
    assert_eq!(flake["inputs"], json!(["nixpkgs"]));
    assert_eq!(
        flake["outputs"],
        json!(["apps", "checks", "devShells", "nixosModules", "packages"])
    );
    let systems = ["aarch64-linux", "x86_64-linux"];
    for system in systems {
        assert_eq!(flake["packages"][system], json!(["default", "lifeboat"]));
        assert_eq!(flake["apps"][system], json!(["default", "lifeboat"]));
        assert_eq!(flake["devShells"][system], json!(["default"]));
        assert_eq!(flake["checks"][system], json!(["lifeboat"]));
    }
    assert_eq!(flake["nixosModules"], json!(["default", "lifeboat"]));

    let app = &flake["app"];
    assert_eq!(app["type"], "app");
    let program = app["program"].as_str().unwrap();
    assert!(
        program.starts_with("/nix/store/") && program.ends_with("-lifeboat-0.1.0/bin/lifeboat"),
        "{program}"
    );
}

#[test]
fn the_package_is_built_from_cargo_lock_and_checks_only_what_a_build_sandbox_can_run() {
    let Some(lib) = nixpkgs_lib(
        "the_package_is_built_from_cargo_lock_and_checks_only_what_a_build_sandbox_can_run",
    ) else {
        return;
    };
    let package = &eval_flake(&lib)["package"];
    assert_eq!(package["pname"], "lifeboat");
    assert_eq!(package["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        package["name"],
        format!("lifeboat-{}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(package["lockFile"], "Cargo.lock");
    assert_eq!(package["mainProgram"], "lifeboat");
    // git2 with vendored libgit2, SSH and HTTPS: OpenSSL, found with pkg-config.
    assert_eq!(package["nativeBuildInputs"], json!(["pkg-config"]));
    assert_eq!(package["buildInputs"], json!(["openssl"]));
    // The integration tests need root, loop devices and mounts.
    assert_eq!(package["cargoTestFlags"], json!(["--lib"]));
    assert_eq!(
        package["nativeCheckInputs"],
        json!(["git", "openssh", "squashfsTools", "xorriso"])
    );
    // Each unit test left out is one that exists, where its path says.
    let skipped = package["checkFlags"].as_array().unwrap();
    assert!(!skipped.is_empty());
    for flag in skipped {
        let test = flag.as_str().unwrap().strip_prefix("--skip=").unwrap();
        let (module, function) = test.rsplit_once("::tests::").unwrap();
        let path = repo().join("src").join(module.replace("::", "/"));
        let source = fs::read_to_string(path.with_extension("rs"))
            .or_else(|_| fs::read_to_string(path.join("mod.rs")))
            .unwrap_or_else(|e| panic!("{test}: no source for {module}: {e}"));
        assert!(
            source.contains(&format!("fn {function}()")),
            "{test}: no such unit test"
        );
    }
}

/// The nixpkgs package that provides what each Debian package of scripts/deps.sh gives the
/// tests.
const NIXPKGS_FOR_DEBIAN: &[(&str, &str)] = &[
    ("e2fsprogs", "e2fsprogs"),
    ("util-linux", "util-linux"),
    ("mount", "util-linux"),
    ("fdisk", "util-linux"),
    ("nix-bin", "nix"),
    ("tmux", "tmux"),
    ("openssh-server", "openssh"),
    ("openssh-client", "openssh"),
    ("rsync", "rsync"),
    ("git", "git"),
    ("pkg-config", "pkg-config"),
    ("libssl-dev", "openssl"),
    ("dosfstools", "dosfstools"),
    ("xfsprogs", "xfsprogs"),
    ("btrfs-progs", "btrfs-progs"),
    ("squashfs-tools", "squashfsTools"),
    ("cryptsetup-bin", "cryptsetup"),
    ("xorriso", "xorriso"),
];

/// The Debian packages scripts/deps.sh installs (its `packages=(…)` array).
fn debian_packages() -> Vec<String> {
    let script = fs::read_to_string(repo().join("scripts/deps.sh")).unwrap();
    let start = script.find("packages=(").expect("packages=( in deps.sh") + "packages=(".len();
    let end = start + script[start..].find(')').unwrap();
    script[start..end]
        .split_whitespace()
        .map(String::from)
        .collect()
}

#[test]
fn the_dev_shell_has_every_tool_the_test_scripts_install() {
    let Some(lib) = nixpkgs_lib("the_dev_shell_has_every_tool_the_test_scripts_install") else {
        return;
    };
    let shell: Vec<String> = serde_json::from_value(eval_flake(&lib)["shell"].clone()).unwrap();
    let debian = debian_packages();
    assert!(debian.len() > 10, "{debian:?}");
    for package in debian {
        let (_, nixpkgs) = NIXPKGS_FOR_DEBIAN
            .iter()
            .find(|(d, _)| *d == package)
            .unwrap_or_else(|| panic!("scripts/deps.sh installs {package}: name its nixpkgs package in NIXPKGS_FOR_DEBIAN and add it to the flake's devShell"));
        assert!(
            shell.iter().any(|s| s == nixpkgs),
            "the devShell lacks {nixpkgs} (Debian's {package}): {shell:?}"
        );
    }
    for tool in ["cargo", "rustc", "rustfmt", "clippy", "cargo-nextest"] {
        assert!(shell.iter().any(|s| s == tool), "{tool} not in {shell:?}");
    }
}

fn refresh_service(config: &Value) -> &Value {
    &config["services"]["lifeboat-refresh"]
}

#[test]
fn the_refresh_runs_predestroy_refresh_headless_on_a_persistent_timer() {
    let Some(lib) =
        nixpkgs_lib("the_refresh_runs_predestroy_refresh_headless_on_a_persistent_timer")
    else {
        return;
    };
    let config = eval_module(
        &lib,
        "{ services.lifeboat = { enable = true; refresh.enable = true; }; }",
        false,
    );
    let service = refresh_service(&config);
    let exec = service["serviceConfig"]["ExecStart"].as_str().unwrap();
    assert!(
        exec.starts_with("/nix/store/") && exec.contains("-lifeboat-0.1.0/bin/lifeboat "),
        "{exec}"
    );
    assert!(
        exec.ends_with(" --config /etc/lifeboat.toml predestroy --refresh --headless"),
        "{exec}"
    );
    assert_eq!(service["serviceConfig"]["Type"], "oneshot");
    assert_eq!(service["serviceConfig"]["ProtectSystem"], "strict");
    assert_eq!(
        service["serviceConfig"]["ReadWritePaths"],
        json!(["-/home", "-/etc/nixos", "-/var/lib/lifeboat"])
    );
    assert_eq!(service["restartIfChanged"], false);

    let timer = &config["timers"]["lifeboat-refresh"];
    assert_eq!(timer["wantedBy"], json!(["timers.target"]));
    assert_eq!(timer["timerConfig"]["OnCalendar"], "daily");
    assert_eq!(timer["timerConfig"]["Persistent"], true);
    assert_eq!(timer["timerConfig"]["RandomizedDelaySec"], "1h");

    assert_eq!(config["packages"], json!(["lifeboat-0.1.0"]));
    assert_eq!(
        config["tmpfiles"],
        json!(["d /var/lib/lifeboat 0700 root root -"])
    );
    assert_eq!(config["metricsDir"], Value::Null);
    assert_eq!(config["warnings"], json!([]));

    let config = eval_module(
        &lib,
        r#"{ services.lifeboat = {
              enable = true;
              refresh = { enable = true; onCalendar = "*-*-* 04:00:00"; randomizedDelaySec = "15min"; };
              settings.volume = [ { device = "/dev/disk/by-id/scsi-0HC_Volume_1"; mount = "/data"; } ];
              settings.state.dir = "/srv/lifeboat";
            }; }"#,
        false,
    );
    let timer = &config["timers"]["lifeboat-refresh"]["timerConfig"];
    assert_eq!(timer["OnCalendar"], "*-*-* 04:00:00");
    assert_eq!(timer["RandomizedDelaySec"], "15min");
    assert_eq!(
        refresh_service(&config)["serviceConfig"]["ReadWritePaths"],
        json!(["-/data", "-/etc/nixos", "-/srv/lifeboat"])
    );
}

#[test]
fn a_disabled_module_sets_nothing_and_no_refresh_means_no_units() {
    let Some(lib) = nixpkgs_lib("a_disabled_module_sets_nothing_and_no_refresh_means_no_units")
    else {
        return;
    };
    let nothing = json!({
        "services": {}, "timers": {}, "tmpfiles": [], "etc": {}, "packages": [],
        "warnings": [], "metricsDir": null,
    });
    let set = |machine: &str, prometheus: bool| {
        let mut config = eval_module(&lib, machine, prometheus);
        config.as_object_mut().unwrap().remove("settingsExample");
        config
    };
    let config = set(
        r#"{ services.lifeboat = { enable = false; refresh.enable = true; settings.user = "qwe"; }; }"#,
        false,
    );
    assert_eq!(config, nothing);
    assert_eq!(set("{ }", true), nothing);

    let config = eval_module(&lib, "{ services.lifeboat.enable = true; }", false);
    assert_eq!(config["services"], json!({}));
    assert_eq!(config["timers"], json!({}));
    assert_eq!(config["tmpfiles"], json!([]));
    assert_eq!(config["packages"], json!(["lifeboat-0.1.0"]));
    assert_eq!(
        config["etc"]["lifeboat.toml"]["source"],
        json!({ "generated": "lifeboat.toml", "value": {} })
    );
}

/// The settings the module hands `formats.toml`, rendered to TOML as nixpkgs' generator
/// would, written to a file in `dir`.
fn rendered_config(config: &Value, dir: &Path) -> PathBuf {
    let source = &config["etc"]["lifeboat.toml"]["source"];
    assert_eq!(source["generated"], "lifeboat.toml");
    let file = dir.join("lifeboat.toml");
    fs::write(&file, toml::to_string(&source["value"]).unwrap()).unwrap();
    file
}

#[test]
fn settings_given_in_nix_come_out_as_a_config_lifeboat_loads() {
    let Some(lib) = nixpkgs_lib("settings_given_in_nix_come_out_as_a_config_lifeboat_loads") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // The example the option's documentation shows, and a key it leaves out.
    let example = eval_module(&lib, "{ }", false)["settingsExample"].clone();
    let example = example.as_str().unwrap();
    assert!(example.contains("volume = ["), "{example}");
    let config = eval_module(
        &lib,
        &format!(
            r#"{{ services.lifeboat = {{
                  enable = true;
                  settings = {example} // {{ host.carry = [ "/var/lib/postgresql" ]; }};
                }}; }}"#
        ),
        false,
    );
    let file = rendered_config(&config, dir.path());
    let loaded = Config::load(&file).unwrap();
    assert_eq!(loaded.user.as_deref(), Some("qwe"));
    assert_eq!(loaded.uid, Some(1000));
    assert_eq!(loaded.volumes.len(), 1);
    assert_eq!(
        loaded.volumes[0].device,
        Path::new("/dev/disk/by-id/scsi-0HC_Volume_103912881")
    );
    assert_eq!(loaded.volumes[0].mount, Path::new("/home"));
    assert_eq!(loaded.volumes[0].fs_type, "ext4");
    assert_eq!(
        loaded.nix_store.source.as_deref(),
        Some(Path::new("/home/qwe/nix"))
    );
    assert_eq!(
        loaded.config_repo.url.as_deref(),
        Some("git@github.com:qwe/nixos-config.git")
    );
    assert_eq!(loaded.config_repo.flake_host.as_deref(), Some("devserver"));
    assert_eq!(loaded.config_repo.path, Path::new("/etc/nixos"));
    assert_eq!(
        loaded.backup.unwrap().rsync_target,
        "backup-server:/backups/qwe/"
    );
    assert_eq!(loaded.host.carry, [PathBuf::from("/var/lib/postgresql")]);

    // The binary takes it too: a dry-run inspect gets past the config to its plan (and
    // fails at the volume, which this machine does not have).
    let run = lifeboat_dry_run(&file);
    assert_ne!(run.status.code(), Some(2), "{run:?}");
    assert!(run.stdout.starts_with(b"{\"event\":\"plan\""), "{run:?}");

    // A key lifeboat does not know is caught by the same loader.
    let config = eval_module(
        &lib,
        r#"{ services.lifeboat = { enable = true; settings.config_repo.flake = "devserver"; }; }"#,
        false,
    );
    let file = rendered_config(&config, dir.path());
    let error = Config::load(&file).unwrap_err();
    assert!(error.to_string().contains("flake"), "{error}");
    let run = lifeboat_dry_run(&file);
    assert_eq!(run.status.code(), Some(2), "{run:?}");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("bad config") && stderr.contains("config_repo.flake"),
        "{stderr}"
    );
}

/// `lifeboat -c FILE inspect --dry-run --json`: loads the config, changes nothing.
fn lifeboat_dry_run(config: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .args([
            "-c",
            config.to_str().unwrap(),
            "inspect",
            "--dry-run",
            "--json",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn every_key_of_the_example_config_can_be_set_from_nix() {
    let Some(lib) = nixpkgs_lib("every_key_of_the_example_config_can_be_set_from_nix") else {
        return;
    };
    let asset = repo().join("assets/lifeboat.toml");
    let example: toml::Table = toml::from_str(&fs::read_to_string(&asset).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let json_file = dir.path().join("settings.json");
    fs::write(&json_file, serde_json::to_string(&example).unwrap()).unwrap();
    let config = eval_module(
        &lib,
        &format!(
            "{{ services.lifeboat = {{ enable = true; settings = builtins.fromJSON (builtins.readFile {}); }}; }}",
            json_file.display()
        ),
        false,
    );
    let rendered_dir = tempfile::tempdir().unwrap();
    let rendered = Config::load(&rendered_config(&config, rendered_dir.path())).unwrap();
    assert_eq!(rendered, Config::load(&asset).unwrap());
}

#[test]
fn the_metrics_go_where_the_node_exporters_textfile_collector_reads() {
    let Some(lib) = nixpkgs_lib("the_metrics_go_where_the_node_exporters_textfile_collector_reads")
    else {
        return;
    };
    let machine = |node: &str| {
        format!(
            "{{ services.lifeboat = {{ enable = true; refresh.enable = true; }}; \
               services.prometheus.exporters.node = {{ {node} }}; }}"
        )
    };
    let metrics = |node: &str| eval_module(&lib, &machine(node), true);

    // No node exporter: no metrics.
    let config = metrics("enable = false;");
    assert_eq!(config["metricsDir"], Value::Null);
    assert_eq!(config["etc"]["lifeboat.toml"]["source"]["value"], json!({}));

    // Its textfile directory, given either way NixOS passes extraFlags.
    for flags in [
        r#"[ "--collector.systemd" "--collector.textfile.directory=/var/lib/node-text" ]"#,
        r#"[ "--collector.textfile.directory /var/lib/node-text" ]"#,
        r#"[ "--collector.textfile.directory" "/var/lib/node-text" ]"#,
    ] {
        let config = metrics(&format!(
            r#"enable = true; enabledCollectors = [ "systemd" "textfile" ]; extraFlags = {flags};"#
        ));
        assert_eq!(config["metricsDir"], "/var/lib/node-text", "{flags}");
        assert_eq!(
            config["etc"]["lifeboat.toml"]["source"]["value"],
            json!({ "metrics": { "dir": "/var/lib/node-text" } })
        );
        let service = refresh_service(&config);
        assert_eq!(
            service["serviceConfig"]["ReadWritePaths"],
            json!([
                "-/home",
                "-/etc/nixos",
                "-/var/lib/lifeboat",
                "-/var/lib/node-text"
            ])
        );
        assert_eq!(
            config["tmpfiles"],
            json!([
                "d /var/lib/lifeboat 0700 root root -",
                "d /var/lib/node-text 0755 root root -"
            ])
        );
        assert_eq!(config["warnings"], json!([]));
    }

    // textfile is a default collector: on unless disabled, and with no directory it reads
    // none, which the module says.
    let config = metrics("enable = true;");
    assert_eq!(
        config["metricsDir"],
        "/var/lib/prometheus-node-exporter-text-files"
    );
    let warnings = config["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0].as_str().unwrap().contains(
            "\"--collector.textfile.directory=/var/lib/prometheus-node-exporter-text-files\""
        ),
        "{warnings:?}"
    );
    let config = metrics(
        r#"enable = true; disabledCollectors = [ "textfile" ];
           extraFlags = [ "--collector.textfile.directory=/var/lib/node-text" ];"#,
    );
    assert_eq!(config["metricsDir"], Value::Null);

    // Set by hand, without the prometheus options declared at all.
    let config = eval_module(
        &lib,
        r#"{ services.lifeboat = { enable = true; metricsDir = "/run/metrics"; }; }"#,
        false,
    );
    assert_eq!(
        config["etc"]["lifeboat.toml"]["source"]["value"],
        json!({ "metrics": { "dir": "/run/metrics" } })
    );
    // lifeboat's loader takes the rendered file, the directory as the module set it.
    let rendered_dir = tempfile::tempdir().unwrap();
    let loaded = Config::load(&rendered_config(&config, rendered_dir.path())).unwrap();
    assert_eq!(
        loaded.metrics.map(|m| m.dir),
        Some(PathBuf::from("/run/metrics"))
    );
    // An explicit [metrics].dir in the settings wins over the option.
    let config = eval_module(
        &lib,
        r#"{ services.lifeboat = { enable = true; refresh.enable = true; metricsDir = "/run/metrics";
              settings.metrics.dir = "/srv/metrics"; }; }"#,
        false,
    );
    assert_eq!(
        config["etc"]["lifeboat.toml"]["source"]["value"],
        json!({ "metrics": { "dir": "/srv/metrics" } })
    );
    assert_eq!(
        refresh_service(&config)["serviceConfig"]["ReadWritePaths"][3],
        "-/srv/metrics"
    );
}
