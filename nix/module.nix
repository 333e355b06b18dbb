# The NixOS module: lifeboat on the system path, /etc/lifeboat.toml written from Nix, and a
# timer that keeps what the volume holds for a rebuild fresh (`predestroy --refresh`), so a
# machine lost without warning can still be rebuilt from its volume.
#
# flake.nix exports it as `nixosModules.default`, with this flake's package as the default
# of `services.lifeboat.package`.
{
  config,
  lib,
  pkgs,
  ...
}:

let
  cfg = config.services.lifeboat;
  format = pkgs.formats.toml { };
  configFile = "/etc/lifeboat.toml";

  # The node exporter's textfile collector, when this machine runs one. Read with `or` so
  # the module also evaluates where the prometheus options are not declared.
  node = config.services.prometheus.exporters.node or { };
  # textfile is one of node_exporter's default collectors: on unless disabled.
  textfileCollector =
    (node.enable or false)
    && !(lib.elem "textfile" (node.disabledCollectors or [ ]));
  # The directory it reads: `--collector.textfile.directory=DIR` or `… DIR` in extraFlags
  # (which NixOS joins with spaces into the command line); the last one given wins.
  textfileFlag = builtins.match ''.*--collector\.textfile\.directory[= ]+["']?([^ "']+).*'' (
    lib.concatStringsSep " " (node.extraFlags or [ ])
  );
  textfileDirectory = if textfileFlag == null then null else lib.head textfileFlag;
  fallbackTextfileDirectory = "/var/lib/prometheus-node-exporter-text-files";

  # What the refresh writes: the volumes (lifeboat's files on them), the config repository
  # (fetching updates its remote-tracking branch; nothing is committed or pushed), the state
  # directory (journal, lock, verdict) and the metrics directory.
  settingOr = path: default: lib.attrByPath path default cfg.settings;
  volumeMounts = map (volume: volume.mount) (settingOr [ "volume" ] [ ]);
  stateDir = settingOr [ "state" "dir" ] "/var/lib/lifeboat";
  # Where the metrics go: metricsDir, unless the settings give `[metrics].dir` themselves.
  writtenMetricsDir = settingOr [ "metrics" "dir" ] null;
  writablePaths =
    (if volumeMounts == [ ] then [ "/home" ] else volumeMounts)
    ++ [
      (settingOr [ "config_repo" "path" ] "/etc/nixos")
      stateDir
    ]
    ++ lib.optional (writtenMetricsDir != null) writtenMetricsDir;
in
{
  options.services.lifeboat = {
    enable = lib.mkEnableOption "lifeboat, the wizard that destroys and rebuilds this VPS without losing its volume";

    package = lib.mkOption {
      type = lib.types.package;
      default = pkgs.callPackage ./package.nix { };
      defaultText = lib.literalMD "this flake's `packages.<system>.default` (built with the system's `pkgs` when the module is imported on its own)";
      description = "The lifeboat package put on the system path and run by the refresh.";
    };

    settings = lib.mkOption {
      type = format.type;
      default = { };
      example = lib.literalExpression ''
        {
          user = "qwe";
          uid = 1000;
          volume = [
            { device = "/dev/disk/by-id/scsi-0HC_Volume_103912881"; mount = "/home"; }
          ];
          nix_store.source = "/home/qwe/nix";
          config_repo = {
            url = "git@github.com:qwe/nixos-config.git";
            flake_host = "devserver";
            ssh_key = "qwe/.ssh/id_ed25519";
          };
          backup.rsync_target = "backup-server:/backups/qwe/";
        }
      '';
      description = ''
        The contents of /etc/lifeboat.toml, which lifeboat reads by default. Every key of
        lifeboat's `assets/lifeboat.toml` can be set; `[[volume]]` tables are a list
        `volume = [ { … } ]`. Unknown keys are errors when lifeboat loads the file.
      '';
    };

    refresh = {
      enable = lib.mkEnableOption ''
        a timer running `lifeboat predestroy --refresh`: it rewrites lifeboat's own files on
        the volume (config mirror, package lists, recovery card, marker, saved host identity)
        and reports every blocker, never committing or pushing the configuration; the unit
        fails when the machine is not ready to be lost'';

      onCalendar = lib.mkOption {
        type = lib.types.str;
        default = "daily";
        example = "*-*-* 04:00:00";
        description = "When the refresh runs (systemd.time(7) calendar event).";
      };

      randomizedDelaySec = lib.mkOption {
        type = lib.types.str;
        default = "1h";
        description = "Random delay before each refresh, so a fleet does not push and rsync at once.";
      };
    };

    metricsDir = lib.mkOption {
      type = lib.types.nullOr lib.types.str;
      default =
        if !textfileCollector then
          null
        else if textfileDirectory != null then
          textfileDirectory
        else
          fallbackTextfileDirectory;
      defaultText = lib.literalMD ''
        with `services.prometheus.exporters.node` enabled and its textfile collector not
        disabled, the directory given as `--collector.textfile.directory` in its `extraFlags`,
        else `${fallbackTextfileDirectory}`; otherwise `null`
      '';
      description = ''
        Where the refresh writes its verdict in Prometheus' text format (`lifeboat_ready`,
        `lifeboat_blockers`, …) for node_exporter's textfile collector; `null` writes none.
        Rendered into the settings as `[metrics].dir`.
      '';
    };
  };

  config = lib.mkIf cfg.enable (
    lib.mkMerge [
      {
        environment.systemPackages = [ cfg.package ];
        environment.etc."lifeboat.toml".source = format.generate "lifeboat.toml" cfg.settings;
        services.lifeboat.settings = lib.mkIf (cfg.metricsDir != null) {
          metrics.dir = lib.mkDefault cfg.metricsDir;
        };
        warnings = lib.optional (textfileCollector && textfileDirectory == null && cfg.metricsDir != null) ''
          services.lifeboat: the node exporter's textfile collector reads no directory, so
          lifeboat's readiness metrics in ${cfg.metricsDir} are not exported. Add
          "--collector.textfile.directory=${cfg.metricsDir}" to
          services.prometheus.exporters.node.extraFlags.
        '';
      }

      (lib.mkIf cfg.refresh.enable {
        # Both must exist before the service starts, to be bound writable into its view
        # of the system. The state directory is private to root, as lifeboat makes it; the
        # metrics directory is read by the node exporter's own user.
        systemd.tmpfiles.rules = [
          "d ${stateDir} 0700 root root -"
        ]
        ++ lib.optional (writtenMetricsDir != null) "d ${writtenMetricsDir} 0755 root root -";

        systemd.services.lifeboat-refresh = {
          description = "lifeboat: refresh what the volume holds for a rebuild and check readiness";
          wants = [ "network-online.target" ];
          after = [
            "network-online.target"
            "local-fs.target"
          ];
          # The timer starts it; a `nixos-rebuild switch` must not.
          restartIfChanged = false;
          # nix-env and nix-store for the package lists, rsync and ssh for the backup, and
          # the system's own programs (docker, home-manager) as an operator's shell has them.
          path = [
            config.nix.package
            pkgs.rsync
            pkgs.openssh
            "/run/current-system/sw"
          ];
          environment = {
            # Nix through the daemon: the store's database is read-only in here.
            NIX_REMOTE = "daemon";
            # root's ~/.ssh/known_hosts, trusted for the config remote as in a root shell.
            HOME = "/root";
          };
          serviceConfig = {
            Type = "oneshot";
            # Exit 1 (not ready) leaves the unit failed, where `systemctl --failed` and
            # unit-state alerts see it.
            ExecStart = "${cfg.package}/bin/lifeboat --config ${configFile} predestroy --refresh --headless";
            Nice = 10;
            IOSchedulingClass = "idle";

            # Hardening, as far as a root tool that reads the whole disk allows.
            # The root disk is read (its audit, host keys, /var/lib/nixos, the carried paths)
            # and only these are written; `-`: a path missing now is no reason not to run.
            ProtectSystem = "strict";
            ReadWritePaths = map (path: "-${path}") writablePaths;
            PrivateTmp = true;
            NoNewPrivileges = true;
            ProtectKernelTunables = true;
            ProtectKernelModules = true;
            ProtectKernelLogs = true;
            ProtectControlGroups = true;
            ProtectClock = true;
            ProtectHostname = true;
            LockPersonality = true;
            RestrictNamespaces = true;
            RestrictRealtime = true;
            RestrictAddressFamilies = [
              "AF_UNIX"
              "AF_INET"
              "AF_INET6"
              "AF_NETLINK"
            ];
            SystemCallArchitectures = "native";
            # @mount: a run undoes a mount an interrupted run recorded in the journal.
            # EPERM rather than a kill, so a refused call is reported as a failed step.
            SystemCallFilter = [
              "@system-service"
              "@mount"
            ];
            SystemCallErrorNumber = "EPERM";
            # Reading files of any owner, copying them with their owners, modes, times and
            # xattrs (trusted.* needs CAP_SYS_ADMIN, as does undoing a mount).
            CapabilityBoundingSet = [
              "CAP_CHOWN"
              "CAP_DAC_OVERRIDE"
              "CAP_DAC_READ_SEARCH"
              "CAP_FOWNER"
              "CAP_FSETID"
              "CAP_SYS_ADMIN"
            ];

            # What could not be tightened:
            # - ProtectHome: /home is the volume, where the refresh writes.
            # - PrivateNetwork, IPAddressDeny: it fetches from the config's remote and rsyncs
            #   the home to the backup target.
            # - PrivateDevices: the volume is identified by its device and its
            #   /dev/disk/by-id link.
            # - User=/DynamicUser=, PrivateUsers: it reads files of every user and keeps
            #   their owners, as root.
            # - RestrictSUIDSGID: carried paths keep their modes, set-id bits included.
            # - MemoryDenyWriteExecute: it applies to the programs it runs too (nix, rsync,
            #   ssh, docker, home-manager), whose needs are theirs.
          };
        };

        systemd.timers.lifeboat-refresh = {
          description = "lifeboat: keep the volume ready for a rebuild";
          wantedBy = [ "timers.target" ];
          timerConfig = {
            OnCalendar = cfg.refresh.onCalendar;
            # A refresh missed while the machine was off runs at the next boot.
            Persistent = true;
            RandomizedDelaySec = cfg.refresh.randomizedDelaySec;
          };
        };
      })
    ]
  );
}
