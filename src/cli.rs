//! The command line (ARCHITECTURE.md, "Command line": scripts and tests rely on it).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Destroy and rebuild a NixOS VPS without losing the data on its volume.
#[derive(Debug, Parser)]
#[command(name = "lifeboat", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub options: Options,
    /// Without a command: the terminal wizard's home screen.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Options every flow takes.
#[derive(Debug, Clone, Args)]
pub struct Options {
    /// Config file [default: /etc/lifeboat.toml when it exists, else built-in defaults]
    #[arg(short = 'c', long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// No TUI: progress for people on stderr, a summary on stdout
    #[arg(long, global = true)]
    pub headless: bool,
    /// No TUI: one JSON event per line on stdout
    #[arg(long, global = true)]
    pub json: bool,
    /// Answer yes to every confirmation
    #[arg(long, global = true)]
    pub yes: bool,
    /// Print every action with its exact command, mount options or git operation; change nothing
    #[arg(long, global = true)]
    pub dry_run: bool,
    /// Continue the flow recorded in the journal
    #[arg(long, global = true)]
    pub resume: bool,
    /// `predestroy --refresh` (set from the subcommand): unattended, headless.
    #[arg(skip)]
    pub refresh: bool,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Before destroying this VPS: prove nothing would be lost
    Predestroy {
        /// Unattended, for a timer: refresh lifeboat's own files on the volume without
        /// asking, never commit or push, report the rest; exit 0 when ready, 1 when not
        #[arg(long)]
        refresh: bool,
    },
    /// On the new VPS: rebuild it from the volume and the git remote
    Recover,
    /// A read-only look at a volume: identity, layout, sizes
    Inspect {
        /// The device (a path such as /dev/disk/by-id/scsi-0HC_Volume_123); found by
        /// config or discovery when omitted
        device: Option<PathBuf>,
    },
    /// After the reboot: check that everything came back
    Verify,
    /// Try lifeboat safely on a practice volume (a loop device built from a sparse file)
    Demo {
        /// Remove every trace of the practice sandbox instead
        #[arg(long)]
        clean: bool,
        /// Where the sandbox lives
        #[arg(long, value_name = "DIR", default_value = "/var/tmp/lifeboat-demo")]
        dir: PathBuf,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_options_go_before_or_after_the_command() {
        let cli = Cli::try_parse_from(["lifeboat", "--json", "inspect", "/dev/sdb", "--dry-run"])
            .unwrap();
        assert!(cli.options.json && cli.options.dry_run);
        assert!(matches!(
            cli.command,
            Some(Command::Inspect { device: Some(_) })
        ));
        let cli = Cli::try_parse_from(["lifeboat", "recover", "-c", "/x.toml", "--yes"]).unwrap();
        assert_eq!(cli.options.config, Some(PathBuf::from("/x.toml")));
        assert!(cli.options.yes);
    }
}
