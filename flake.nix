{
  description = "lifeboat: a terminal wizard that destroys and rebuilds a NixOS VPS without losing the data on its volume";

  # nixpkgs alone: a rescue tool should need nothing more to evaluate.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: lib.genAttrs systems (system: f system nixpkgs.legacyPackages.${system});
    in
    {
      packages = forAllSystems (
        system: pkgs: {
          lifeboat = pkgs.callPackage ./nix/package.nix { };
          default = self.packages.${system}.lifeboat;
        }
      );

      apps = forAllSystems (
        system: pkgs:
        let
          app = {
            type = "app";
            program = "${self.packages.${system}.lifeboat}/bin/lifeboat";
            meta.description = "lifeboat: predestroy, recover, inspect, verify, demo";
          };
        in
        {
          lifeboat = app;
          default = app;
        }
      );

      # What building, linting and the test suite (scripts/test.sh) use: the Rust
      # toolchain, cargo-nextest, and the programs the integration tests drive.
      devShells = forAllSystems (
        system: pkgs: {
          default = pkgs.mkShell {
            inputsFrom = [ self.packages.${system}.lifeboat ];
            packages = with pkgs; [
              cargo
              rustc
              rustfmt
              clippy
              cargo-nextest
              # volumes on loop devices, mounts, namespaces (losetup, mount, unshare, fdisk)
              util-linux
              e2fsprogs
              # the other filesystems and signatures the device probe is checked against
              dosfstools
              xfsprogs
              btrfs-progs
              squashfsTools
              cryptsetup
              xorriso
              # git remotes over file:// and SSH, the backup, the wizard in a terminal
              git
              openssh
              rsync
              tmux
              nix
            ];
          };
        }
      );

      # `nix flake check` builds the package, which runs the unit tests.
      checks = forAllSystems (
        system: pkgs: {
          lifeboat = self.packages.${system}.lifeboat;
        }
      );

      nixosModules = {
        default = self.nixosModules.lifeboat;
        lifeboat =
          { lib, pkgs, ... }:
          let
            system = pkgs.stdenv.hostPlatform.system;
          in
          {
            imports = [ ./nix/module.nix ];
            # This flake's build for the machine's system; elsewhere, the module's own
            # default builds it with the system's nixpkgs.
            services.lifeboat.package = lib.mkIf (self.packages ? ${system}) (
              lib.mkDefault self.packages.${system}.lifeboat
            );
          };
      };
    };
}
