//! Nix's `--log-format internal-json` turned into what the operator needs to see: messages,
//! build progress, which derivation is building and its log, and explanations for the
//! failures lifeboat knows (NIX-FACTS.md, "Nix internal-json" and "Flakes and git").
//!
//! The stream is untrusted and changes between Nix versions: unknown actions and numbers are
//! ignored, a line that is not valid `@nix` JSON is passed through as a plain line, and
//! nothing here panics or grows without bound.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::escape::{find_byte, has_byte, has_less_than};

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
        let text = match std::str::from_utf8(json) {
            Ok(text) => Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(json),
        };
        match quick_result(&text).map_or_else(|| serde_json::from_str::<Record>(&text), Ok) {
            Ok(record) => self.record(&record),
            Err(_) => Some(Item::Plain(line.to_vec())),
        }
    }

    fn record(&mut self, record: &Record) -> Option<Item> {
        match record.action.as_str()? {
            "start" => self.start(record),
            "stop" => {
                self.activities.remove(&record.id.as_u64()?);
                None
            }
            "result" => self.result(record),
            "msg" => message(record),
            _ => None,
        }
    }

    fn start(&mut self, record: &Record) -> Option<Item> {
        let id = record.id.as_u64()?;
        let kind = record.kind.as_u64()?;
        let drv = (kind == ACT_BUILD)
            .then(|| record.string_field(0))
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

    fn result(&mut self, record: &Record) -> Option<Item> {
        let id = record.id.as_u64()?;
        let activity = self.activities.get(&id)?;
        match record.kind.as_u64()? {
            RES_BUILD_LOG_LINE | RES_POST_BUILD_LOG_LINE => Some(Item::BuildLog {
                line: record.string_field(0)?,
                drv: activity.drv.clone(),
            }),
            RES_SET_PHASE => Some(Item::Phase {
                phase: record.string_field(0)?,
                drv: activity.drv.clone(),
            }),
            RES_PROGRESS => {
                let kind = activity.kind;
                self.update_progress(kind, record)
            }
            _ => None,
        }
    }

    /// `progress [done, expected, running, failed]` of the builds or copyPaths activity: the
    /// counts. (`setExpected` is not read: Nix sends byte totals with it, not counts.) A total
    /// below its done count is raised to it, so that no front end shows more than all done.
    fn update_progress(&mut self, kind: u64, record: &Record) -> Option<Item> {
        let done = record.number_field(0)?;
        let expected = record.number_field(1)?.max(done);
        let mut progress = self.progress;
        match kind {
            ACT_BUILDS => {
                progress.built = done;
                progress.total_builds = expected;
                progress.running = record.number_field(2)?;
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

fn message(record: &Record) -> Option<Item> {
    let coloured = record.msg.as_str()?.to_string();
    Some(Item::Message {
        level: record.level.as_u64().unwrap_or(0),
        text: strip_ansi(&coloured),
        coloured,
    })
}

/// The members of an internal-json record lifeboat reads, strings borrowed from the line
/// where they hold no escapes. Read straight from the text rather than through a
/// `serde_json::Value` tree: a build prints a million of these, and building the tree was
/// most of the cost of following one. Any JSON object is a record (members of other types
/// or shapes than expected read as absent, the last of duplicate keys counts); anything
/// else is not.
#[derive(Debug, Default)]
struct Record<'a> {
    action: Field<'a>,
    id: Field<'a>,
    kind: Field<'a>,
    level: Field<'a>,
    msg: Field<'a>,
    fields: Field<'a>,
}

impl Record<'_> {
    fn field(&self, index: usize) -> Option<&Field<'_>> {
        match &self.fields {
            Field::List(list) => list.get(index),
            _ => None,
        }
    }

    fn string_field(&self, index: usize) -> Option<String> {
        self.field(index)?.as_str().map(String::from)
    }

    fn number_field(&self, index: usize) -> Option<u64> {
        self.field(index)?.as_u64()
    }
}

/// A JSON value as far as lifeboat looks into it.
#[derive(Debug, Default)]
enum Field<'a> {
    Str(Cow<'a, str>),
    Number(u64),
    List(Vec<Field<'a>>),
    /// Absent, or anything else (negative or fractional numbers, objects, booleans, null).
    #[default]
    Other,
}

impl Field<'_> {
    fn as_str(&self) -> Option<&str> {
        match self {
            Field::Str(text) => Some(text),
            _ => None,
        }
    }

    fn as_u64(&self) -> Option<u64> {
        match self {
            Field::Number(n) => Some(*n),
            _ => None,
        }
    }
}

/// The record nearly every line of a build is, `{"action":"result","fields":["…"],"id":N,
/// "type":N}` exactly as Nix writes it (a log line, a phase), read without the general
/// parser, which cost half of following a build. `None` for anything else, even the same
/// record spaced differently: the general parser reads those, and rejects what is not JSON.
fn quick_result(text: &str) -> Option<Record<'_>> {
    let rest = text.strip_prefix(r#"{"action":"result","fields":["#)?;
    let (field, rest) = quick_string(rest)?;
    let rest = rest.strip_prefix(r#"],"id":"#)?;
    let (id, rest) = quick_number(rest)?;
    let rest = rest.strip_prefix(r#","type":"#)?;
    let (kind, rest) = quick_number(rest)?;
    (rest == "}").then(|| Record {
        action: Field::Str(Cow::Borrowed("result")),
        id: Field::Number(id),
        kind: Field::Number(kind),
        fields: Field::List(vec![Field::Str(field)]),
        ..Record::default()
    })
}

/// The JSON string `text` starts with, and what follows it. Borrowed when it holds no
/// escapes; with escapes serde_json decodes it (and refuses what JSON does not allow).
fn quick_string(text: &str) -> Option<(Cow<'_, str>, &str)> {
    let bytes = text.as_bytes();
    if bytes.first() != Some(&b'"') {
        return None;
    }
    let special = |b: u8| b == b'"' || b == b'\\' || b < 0x20;
    let word = |w: u64| has_byte(w, b'"') || has_byte(w, b'\\') || has_less_than(w, 0x20);
    let at = 1 + find_byte(&bytes[1..], word, special)?;
    match bytes[at] {
        b'"' => Some((Cow::Borrowed(&text[1..at]), &text[at + 1..])),
        b'\\' => {
            let mut i = at;
            while i < bytes.len() && bytes[i] != b'"' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            let quoted = text.get(..=i)?;
            let decoded = serde_json::from_str::<String>(quoted).ok()?;
            Some((Cow::Owned(decoded), &text[i + 1..]))
        }
        _ => None,
    }
}

/// The unsigned JSON number `text` starts with (no leading zero, fits in a u64), and the rest.
fn quick_number(text: &str) -> Option<(u64, &str)> {
    let mut n: u64 = 0;
    let mut digits = 0;
    for b in text.bytes().take_while(u8::is_ascii_digit) {
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        digits += 1;
    }
    if digits == 0 || (digits > 1 && text.starts_with('0')) {
        return None;
    }
    Some((n, &text[digits..]))
}

/// The record's member names lifeboat reads.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum Key {
    Action,
    Id,
    #[serde(rename = "type")]
    Kind,
    Level,
    Msg,
    Fields,
    #[serde(other)]
    Other,
}

impl<'de> Deserialize<'de> for Record<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(RecordVisitor)
    }
}

struct RecordVisitor;

impl<'de> Visitor<'de> for RecordVisitor {
    type Value = Record<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Record<'de>, A::Error> {
        let mut record = Record::default();
        while let Some(key) = map.next_key::<Key>()? {
            let slot = match key {
                Key::Action => &mut record.action,
                Key::Id => &mut record.id,
                Key::Kind => &mut record.kind,
                Key::Level => &mut record.level,
                Key::Msg => &mut record.msg,
                Key::Fields => &mut record.fields,
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            *slot = map.next_value()?;
        }
        Ok(record)
    }
}

impl<'de> Deserialize<'de> for Field<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(FieldVisitor)
    }
}

struct FieldVisitor;

impl<'de> Visitor<'de> for FieldVisitor {
    type Value = Field<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Field<'de>, E> {
        Ok(Field::Str(Cow::Borrowed(text)))
    }

    fn visit_str<E>(self, text: &str) -> Result<Field<'de>, E> {
        Ok(Field::Str(Cow::Owned(text.to_string())))
    }

    fn visit_string<E>(self, text: String) -> Result<Field<'de>, E> {
        Ok(Field::Str(Cow::Owned(text)))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Field<'de>, E> {
        Ok(Field::Number(n))
    }

    fn visit_i64<E>(self, _: i64) -> Result<Field<'de>, E> {
        Ok(Field::Other)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Field<'de>, E> {
        Ok(Field::Other)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Field<'de>, E> {
        Ok(Field::Other)
    }

    fn visit_unit<E>(self) -> Result<Field<'de>, E> {
        Ok(Field::Other)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Field<'de>, A::Error> {
        let mut list = Vec::new();
        while let Some(item) = seq.next_element()? {
            list.push(item);
        }
        Ok(Field::List(list))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Field<'de>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Field::Other)
    }
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

impl KnownError {
    /// Whether this is a missing host other than `host` (none when `None`): Nix's bare
    /// "attribute 'x' missing" is read as a missing host, but inside a configuration that
    /// does evaluate as `host`, it is an option or attribute the configuration lacks.
    pub fn names_another_host(&self, host: Option<&str>) -> bool {
        matches!(self, KnownError::HostNotInFlake { host: h } if Some(h.as_str()) != host)
    }
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
    fn the_quick_path_reads_what_the_parser_reads_or_leaves_it() {
        let lines = [
            r#"{"action":"result","fields":["make[1]: Entering"],"id":12,"type":101}"#,
            r#"{"action":"result","fields":["\u001b[1;35mwarn\u001b[0m \"q\" \\ \t é"],"id":0,"type":101}"#,
            r#"{"action":"result","fields":[""],"id":18446744073709551615,"type":104}"#,
            r#"{"action":"result","fields":["a\"],"id":1,"type":101}"#,
            r#"{"action":"result","fields":["x"],"id":18446744073709551616,"type":101}"#,
            r#"{"action":"result","fields":["x"],"id":01,"type":101}"#,
            r#"{"action":"result","fields":["x"],"id":-1,"type":101}"#,
            r#"{"action":"result","fields":["x"],"id":1,"type":101} "#,
            r#"{"action":"result","fields":["x"],"id":1,"type":101}}"#,
            r#"{"action":"result","fields":["x"],"id":1,"type":101"#,
            r#"{"action":"result","fields":["x"],"id":1.5,"type":101}"#,
            r#"{"action":"result","fields":["\ud800"],"id":1,"type":101}"#,
            r#"{"action":"result","fields":["\x"],"id":1,"type":101}"#,
            r#"{"action":"result","fields":["a"#,
            r#"{"action":"result","fields":["a\"#,
            "{\"action\":\"result\",\"fields\":[\"raw\ttab\"],\"id\":1,\"type\":101}",
            r#"{"action":"result","fields":["x",1],"id":1,"type":101}"#,
        ];
        for (index, line) in lines.into_iter().enumerate() {
            let slow = serde_json::from_str::<Record>(line).ok();
            let quick = quick_result(line);
            // Nix's own shapes take the quick path; what it leaves, the parser reads.
            assert_eq!(quick.is_some(), index < 3, "{line}");
            if quick.is_some() {
                assert_eq!(format!("{quick:?}"), format!("{slow:?}"), "{line}");
            }
        }
    }

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
