//! Nix's `--log-format internal-json` turned into what the operator needs to see: messages,
//! build progress, which derivation is building and its log, and explanations for the
//! failures lifeboat knows (NIX-FACTS.md, "Nix internal-json" and "Flakes and git").
//!
//! The stream is untrusted and changes between Nix versions: unknown actions and numbers are
//! ignored, a line that is not valid `@nix` JSON is passed through as a plain line, and
//! nothing here panics or grows without bound.

use std::collections::HashMap;

use serde_json::{Map, Value};

/// What a line of `nix … --log-format internal-json` stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A line that is not `@nix` JSON (nixos-rebuild's own output, activation), untouched.
    Plain(Vec<u8>),
    /// A message for the operator. `level`: 0 error, 1 warning, 2 notice, 3 info, 4+ chatter.
    Message {
        level: u64,
        /// The text without ANSI escape sequences.
        text: String,
        /// The text as Nix sent it, colours included, for a front end that renders them.
        coloured: String,
    },
    /// The counts changed.
    Progress(Progress),
    /// Nix started building `drv`.
    BuildStarted { drv: String },
    /// A line of a build's log; `drv` is `None` when the build's start was not seen.
    BuildLog { drv: Option<String>, line: String },
    /// A build entered a phase (`unpackPhase`, `buildPhase`…).
    Phase { drv: Option<String>, phase: String },
}

/// Build and download counts, as Nix's own progress bar shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub built: u64,
    pub total_builds: u64,
    pub downloaded: u64,
    pub total_downloads: u64,
    /// Builds running now.
    pub running: u64,
}

/// Activity types (`start.type`) lifeboat reads.
const ACT_COPY_PATHS: u64 = 103;
const ACT_BUILDS: u64 = 104;
const ACT_BUILD: u64 = 105;

/// Result types (`result.type`) lifeboat reads.
const RES_BUILD_LOG_LINE: u64 = 101;
const RES_SET_PHASE: u64 = 104;
const RES_PROGRESS: u64 = 105;
const RES_POST_BUILD_LOG_LINE: u64 = 107;

/// How many running activities are remembered; a stream that starts more without stopping
/// them loses the derivation names of the extra ones, nothing else.
const MAX_ACTIVITIES: usize = 4096;

/// The line prefix of internal-json records.
const PREFIX: &[u8] = b"@nix ";

/// What lifeboat remembers of a running activity.
#[derive(Debug, Clone)]
struct Activity {
    kind: u64,
    drv: Option<String>,
}

/// The parser: feed it the lines of Nix's stderr one at a time, in order.
#[derive(Debug, Default)]
pub struct NixLog {
    activities: HashMap<u64, Activity>,
    progress: Progress,
}

impl NixLog {
    pub fn new() -> NixLog {
        NixLog::default()
    }

    /// The counts so far.
    pub fn progress(&self) -> Progress {
        self.progress
    }

    /// Read one line (without its newline). `None` for records that change nothing the
    /// operator sees. A piece of a line that was cut for length comes back as `Plain`.
    pub fn feed(&mut self, line: &[u8]) -> Option<Item> {
        let Some(json) = line.strip_prefix(PREFIX) else {
            return Some(Item::Plain(line.to_vec()));
        };
        // Nix may pass a build's invalid UTF-8 through; keep the rest of the record.
        match serde_json::from_str::<Value>(&String::from_utf8_lossy(json)) {
            Ok(Value::Object(record)) => self.record(&record),
            _ => Some(Item::Plain(line.to_vec())),
        }
    }

    fn record(&mut self, record: &Map<String, Value>) -> Option<Item> {
        match record.get("action")?.as_str()? {
            "start" => self.start(record),
            "stop" => {
                self.activities.remove(&record.get("id")?.as_u64()?);
                None
            }
            "result" => self.result(record),
            "msg" => message(record),
            _ => None,
        }
    }

    fn start(&mut self, record: &Map<String, Value>) -> Option<Item> {
        let id = record.get("id")?.as_u64()?;
        let kind = record.get("type")?.as_u64()?;
        let drv = (kind == ACT_BUILD)
            .then(|| string_field(record, 0))
            .flatten();
        if self.activities.len() < MAX_ACTIVITIES || self.activities.contains_key(&id) {
            self.activities.insert(
                id,
                Activity {
                    kind,
                    drv: drv.clone(),
                },
            );
        }
        drv.map(|drv| Item::BuildStarted { drv })
    }

    fn result(&mut self, record: &Map<String, Value>) -> Option<Item> {
        let id = record.get("id")?.as_u64()?;
        let activity = self.activities.get(&id)?.clone();
        match record.get("type")?.as_u64()? {
            RES_BUILD_LOG_LINE | RES_POST_BUILD_LOG_LINE => Some(Item::BuildLog {
                drv: activity.drv,
                line: string_field(record, 0)?,
            }),
            RES_SET_PHASE => Some(Item::Phase {
                drv: activity.drv,
                phase: string_field(record, 0)?,
            }),
            RES_PROGRESS => self.update_progress(activity.kind, record),
            _ => None,
        }
    }

    /// `progress [done, expected, running, failed]` of the builds or copyPaths activity: the
    /// counts. (`setExpected` is not read: Nix sends byte totals with it, not counts.) A total
    /// below its done count is raised to it, so that no front end shows more than all done.
    fn update_progress(&mut self, kind: u64, record: &Map<String, Value>) -> Option<Item> {
        let done = number_field(record, 0)?;
        let expected = number_field(record, 1)?.max(done);
        let mut progress = self.progress;
        match kind {
            ACT_BUILDS => {
                progress.built = done;
                progress.total_builds = expected;
                progress.running = number_field(record, 2)?;
            }
            ACT_COPY_PATHS => {
                progress.downloaded = done;
                progress.total_downloads = expected;
            }
            _ => return None,
        }
        self.changed(progress)
    }

    fn changed(&mut self, progress: Progress) -> Option<Item> {
        (progress != self.progress).then(|| {
            self.progress = progress;
            Item::Progress(progress)
        })
    }
}

fn message(record: &Map<String, Value>) -> Option<Item> {
    let coloured = record.get("msg")?.as_str()?.to_string();
    Some(Item::Message {
        level: record.get("level").and_then(Value::as_u64).unwrap_or(0),
        text: strip_ansi(&coloured),
        coloured,
    })
}

fn field(record: &Map<String, Value>, index: usize) -> Option<&Value> {
    record.get("fields")?.as_array()?.get(index)
}

fn string_field(record: &Map<String, Value>, index: usize) -> Option<String> {
    field(record, index)?.as_str().map(String::from)
}

fn number_field(record: &Map<String, Value>, index: usize) -> Option<u64> {
    field(record, index)?.as_u64()
}

/// `text` without ANSI escape sequences (CSI `ESC [ … final`, OSC `ESC ] … BEL|ESC \`,
/// nF like `ESC ( B`, and two-character `ESC x`). Other control characters stay: the caller
/// escapes them.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('[') => {
                // Parameters and intermediates run up to a final byte in @..~.
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            Some(']') => {
                while let Some(c) = chars.next() {
                    if c == '\x07' || (c == '\x1b' && chars.next_if_eq(&'\\').is_some()) {
                        break;
                    }
                }
            }
            // nF sequences: intermediates in ' '..'/' up to a final byte (`ESC ( B`).
            Some(' '..='/') => {
                for c in chars.by_ref() {
                    if !(' '..='/').contains(&c) {
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// A failure lifeboat recognises in Nix's or nixos-rebuild's messages, with what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KnownError {
    /// The flake is a git repository and `file` (relative to it) is not tracked, so Nix
    /// does not see it; typically a freshly generated `hardware-configuration.nix`.
    UntrackedInFlake { file: String },
    /// The configuration repository at `path` belongs to another user.
    RepositoryOwnership { path: String },
    /// `fileSystems."<mount_point>"` is defined twice.
    DuplicateFileSystem {
        mount_point: String,
        in_hardware_configuration: bool,
    },
    /// The flake has no `nixosConfigurations` entry called `host`.
    HostNotInFlake { host: String },
}

impl std::fmt::Display for KnownError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KnownError::UntrackedInFlake { file } => write!(
                f,
                "{file} is not tracked by git, and a flake only sees tracked files: `git add {file}` in the configuration repository"
            ),
            KnownError::RepositoryOwnership { path } => write!(
                f,
                "the repository {path} belongs to another user: run as its owner, or `git config --global --add safe.directory {path}`"
            ),
            KnownError::DuplicateFileSystem {
                mount_point,
                in_hardware_configuration,
            } => {
                write!(f, "fileSystems.\"{mount_point}\" is defined twice")?;
                if *in_hardware_configuration {
                    write!(
                        f,
                        ", once in hardware-configuration.nix: nixos-generate-config wrote an entry for a mount it saw; remove that entry (or regenerate with --no-filesystems)"
                    )?;
                }
                Ok(())
            }
            KnownError::HostNotInFlake { host } => write!(
                f,
                "the flake has no nixosConfigurations.\"{host}\": check the host name against flake.nix (`nix flake show`)"
            ),
        }
    }
}

/// The known failures among `messages` (message texts or plain lines, colours allowed),
/// each once, in the order first seen.
pub fn summarise_errors<'a>(messages: impl IntoIterator<Item = &'a str>) -> Vec<KnownError> {
    let mut known = Vec::new();
    for message in messages {
        let text = strip_ansi(message);
        for error in recognise(&text) {
            if !known.contains(&error) {
                known.push(error);
            }
        }
    }
    known
}

/// Every known failure one message describes.
fn recognise(text: &str) -> Vec<KnownError> {
    [
        untracked,
        ownership,
        duplicate_file_system,
        host_not_in_flake,
    ]
    .iter()
    .filter_map(|recogniser| recogniser(text))
    .collect()
}

fn untracked(text: &str) -> Option<KnownError> {
    // Nix ≥ 2.20: Path 'f' in the repository "/etc/nixos" is not tracked by Git.
    let file = between(text, "Path '", "' in the repository")
        .filter(|_| text.contains("is not tracked by Git"))
        .or_else(|| {
            // Nix 2.8: getting status of '/nix/store/…-source/f': No such file or directory
            let path = between(text, "getting status of '", "': No such file or directory")?;
            let (store_dir, file) = path.split_once("-source/")?;
            store_dir.starts_with("/nix/store/").then_some(file)
        })?;
    Some(KnownError::UntrackedInFlake {
        file: file.to_string(),
    })
}

fn ownership(text: &str) -> Option<KnownError> {
    let path = between(text, "repository path '", "' is not owned by current user")
        .or_else(|| between(text, "unsafe repository ('", "' is owned by someone else"))
        .or_else(|| between(text, "dubious ownership in repository at '", "'"))?;
    Some(KnownError::RepositoryOwnership {
        path: path.to_string(),
    })
}

fn duplicate_file_system(text: &str) -> Option<KnownError> {
    let (option, _) = text.split_once("has conflicting definition values")?;
    let mount_point = between(option, "fileSystems.\"", "\"")?;
    Some(KnownError::DuplicateFileSystem {
        mount_point: mount_point.to_string(),
        in_hardware_configuration: text.contains("hardware-configuration.nix"),
    })
}

fn host_not_in_flake(text: &str) -> Option<KnownError> {
    let attribute = between(text, "does not provide attribute '", "'")
        .or_else(|| between(text, "attribute '", "' missing"))?;
    let host = between(attribute, "nixosConfigurations.\"", "\"")
        .or_else(|| {
            let rest = attribute.split_once("nixosConfigurations.")?.1;
            rest.split('.').next()
        })
        .unwrap_or(attribute);
    Some(KnownError::HostNotInFlake {
        host: host.to_string(),
    })
}

/// The text between the first `start` and the next `end` after it.
fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let rest = &text[text.find(start)? + start.len()..];
    Some(&rest[..rest.find(end)?])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ansi_sequences_are_stripped_and_other_text_stays() {
        assert_eq!(
            strip_ansi(
                "\x1b[35;1mwarning:\x1b[0m a\x1b]8;;http://x\x1b\\link\x1b]8;;\x07 b\x1b(B\tc"
            ),
            "warning: alink b\tc"
        );
        assert_eq!(strip_ansi("cut \x1b["), "cut ");
    }

    #[test]
    fn between_finds_the_first_pair() {
        assert_eq!(between("a 'x' b 'y'", "'", "'"), Some("x"));
        assert_eq!(between("a 'x", "'", "'"), None);
    }

    #[test]
    fn a_total_is_never_below_its_done_count() {
        let mut log = NixLog::new();
        let lines = [
            r#"@nix {"action":"start","id":1,"type":103}"#,
            r#"@nix {"action":"start","id":2,"type":104}"#,
            r#"@nix {"action":"result","id":1,"type":105,"fields":[5,0,0,0]}"#,
            r#"@nix {"action":"result","id":2,"type":105,"fields":[3,1,1,0]}"#,
        ];
        for line in lines {
            log.feed(line.as_bytes());
        }
        let progress = log.progress();
        assert_eq!((progress.downloaded, progress.total_downloads), (5, 5));
        assert_eq!((progress.built, progress.total_builds), (3, 3));
    }

    #[test]
    fn activities_are_forgotten_on_stop_and_never_pile_up() {
        let mut log = NixLog::new();
        for id in 0..MAX_ACTIVITIES as u64 + 100 {
            let start = format!(
                r#"@nix {{"action":"start","id":{id},"type":105,"fields":["/nix/store/{id}.drv"]}}"#
            );
            log.feed(start.as_bytes());
        }
        assert_eq!(log.activities.len(), MAX_ACTIVITIES);
        for id in 0..10 {
            log.feed(format!(r#"@nix {{"action":"stop","id":{id}}}"#).as_bytes());
        }
        assert_eq!(log.activities.len(), MAX_ACTIVITIES - 10);
    }
}
