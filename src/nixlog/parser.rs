//! The model: the parser that reads Nix's stream line by line, what it yields ([`Item`]),
//! and what it counts ([`BuildProgress`], [`Transfers`]).

use std::borrow::Cow;
use std::collections::HashMap;
use std::rc::Rc;

use crate::escape::Text;

use super::ansi::strip_ansi;
use super::quick::{QuickTail, quick_result};
use super::record::{Field, Record};

/// What a line of `nix … --log-format internal-json` stands for. Text is borrowed from the
/// line where it can be: a build prints a million of these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item<'a> {
    /// A line that is not `@nix` JSON (nixos-rebuild's own output, activation), untouched.
    Plain(Cow<'a, [u8]>),
    /// A message for the operator. `level`: 0 error, 1 warning, 2 notice, 3 info, 4+ chatter.
    Message {
        level: u64,
        /// The text without ANSI escape sequences.
        text: String,
        /// The text as Nix sent it, colours included, for a front end that renders them.
        coloured: String,
    },
    /// The counts changed.
    Progress(BuildProgress),
    /// Nix started building `drv`.
    BuildStarted { drv: Rc<str> },
    /// A line of a build's log; `drv` is `None` when the build's start was not seen.
    BuildLog {
        drv: Option<Rc<str>>,
        line: Text<'a>,
    },
    /// A build entered a phase (`unpackPhase`, `buildPhase`…).
    Phase {
        drv: Option<Rc<str>>,
        phase: Text<'a>,
    },
    /// Nix started copying the store path `path` (empty when the record named none), from a
    /// local store (for lifeboat, the volume's) or else from a binary cache; yielded once
    /// for each path [`NixLog::transfers`] counts.
    Copying { from_local: bool, path: Rc<str> },
}

impl Item<'_> {
    /// The item with its text copied out of the line, to keep after the next line.
    pub fn into_owned(self) -> Item<'static> {
        match self {
            Item::Plain(bytes) => Item::Plain(Cow::Owned(bytes.into_owned())),
            Item::Message {
                level,
                text,
                coloured,
            } => Item::Message {
                level,
                text,
                coloured,
            },
            Item::Progress(progress) => Item::Progress(progress),
            Item::BuildStarted { drv } => Item::BuildStarted { drv },
            Item::BuildLog { drv, line } => Item::BuildLog {
                drv,
                line: line.into_owned(),
            },
            Item::Phase { drv, phase } => Item::Phase {
                drv,
                phase: phase.into_owned(),
            },
            Item::Copying { from_local, path } => Item::Copying { from_local, path },
        }
    }
}

/// Build and download counts, as Nix's own progress bar shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BuildProgress {
    pub built: u64,
    pub total_builds: u64,
    pub downloaded: u64,
    pub total_downloads: u64,
    /// Builds running now.
    pub running: u64,
}

/// Store paths and bytes one kind of transfer moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Moved {
    /// The paths' NAR sizes as Nix's progress reported them: a path too small for Nix to
    /// report progress on adds nothing. (Fields in alphabetical order, as the summary's
    /// JSON has them.)
    pub bytes: u64,
    pub paths: u64,
}

/// What a build took from where, as Nix's log told it: what the volume's store spared, and
/// what had to be downloaded or built again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Transfers {
    /// Copied from a local store: the volume's, given as a substituter.
    pub from_local: Moved,
    /// Copied from anything else: a binary cache such as https://cache.nixos.org.
    pub downloaded: Moved,
    /// Derivations built.
    pub built: u64,
}

impl std::ops::Add for Moved {
    type Output = Moved;

    fn add(self, other: Moved) -> Moved {
        Moved {
            bytes: self.bytes + other.bytes,
            paths: self.paths + other.paths,
        }
    }
}

/// Two commands' transfers together (a copy before a build, and the build).
impl std::ops::Add for Transfers {
    type Output = Transfers;

    fn add(self, other: Transfers) -> Transfers {
        Transfers {
            from_local: self.from_local + other.from_local,
            downloaded: self.downloaded + other.downloaded,
            built: self.built + other.built,
        }
    }
}

/// Activity types (`start.type`) lifeboat reads.
const ACT_COPY_PATH: u64 = 100;
const ACT_COPY_PATHS: u64 = 103;
const ACT_BUILDS: u64 = 104;
const ACT_BUILD: u64 = 105;

/// Result types (`result.type`) lifeboat reads.
const RES_BUILD_LOG_LINE: u64 = 101;
const RES_SET_PHASE: u64 = 104;
const RES_PROGRESS: u64 = 105;
const RES_POST_BUILD_LOG_LINE: u64 = 107;

/// How many running activities are remembered; a stream that starts more without stopping
/// them loses the derivation names and copied bytes of the extra ones, nothing else.
const MAX_ACTIVITIES: usize = 4096;

/// The line prefix of internal-json records.
pub(super) const PREFIX: &[u8] = b"@nix ";

/// What lifeboat remembers of a running activity.
#[derive(Debug, Clone)]
struct Activity {
    kind: u64,
    drv: Option<Rc<str>>,
    /// A copyPath's transfer so far.
    copy: Option<Copied>,
}

/// A copyPath activity: whether its source is a local store, and the bytes counted for it.
#[derive(Debug, Clone, Copy)]
struct Copied {
    from_local: bool,
    bytes: u64,
}

/// The parser: feed it the lines of Nix's stderr one at a time, in order.
#[derive(Debug, Default)]
pub struct NixLog {
    activities: HashMap<u64, Activity>,
    /// The activity the last result was for: a build's log lines come in runs from one
    /// build, and this spares hashing its id for each.
    last: Option<(u64, Activity)>,
    quick_tail: QuickTail,
    progress: BuildProgress,
    transfers: Transfers,
}

impl NixLog {
    pub fn new() -> NixLog {
        NixLog::default()
    }

    /// The counts so far.
    pub fn progress(&self) -> BuildProgress {
        self.progress
    }

    /// What was copied and built so far. Each copyPath and build activity counts once, when
    /// it starts (again under the same id while it runs: once); a copy's bytes are the
    /// largest NAR size its progress reported.
    pub fn transfers(&self) -> Transfers {
        self.transfers
    }

    /// Read one line (without its newline). `None` for records that change nothing the
    /// operator sees. A piece of a line that was cut for length comes back as `Plain`.
    pub fn feed<'a>(&mut self, line: &'a [u8]) -> Option<Item<'a>> {
        let plain = || Some(Item::Plain(Cow::Borrowed(line)));
        let Some(json) = line.strip_prefix(PREFIX) else {
            return plain();
        };
        if let Some(quick) = quick_result(json, &mut self.quick_tail) {
            return self.result(quick.id, quick.kind, &mut [quick.field]);
        }
        match std::str::from_utf8(json) {
            Ok(text) => self.feed_json(text).unwrap_or_else(|_| plain()),
            // Nix may pass a build's invalid UTF-8 through; keep the rest of the record.
            Err(_) => {
                let text = String::from_utf8_lossy(json);
                let item = self.feed_json(&text).map(|item| item.map(Item::into_owned));
                item.unwrap_or_else(|_| plain())
            }
        }
    }

    /// The item of a record's JSON text; `Err` when it is no JSON object.
    fn feed_json<'a>(&mut self, text: &'a str) -> Result<Option<Item<'a>>, serde_json::Error> {
        let mut record = serde_json::from_str::<Record>(text)?;
        Ok(self.record(&mut record))
    }

    fn record<'a>(&mut self, record: &mut Record<'a>) -> Option<Item<'a>> {
        match record.action.as_str()? {
            "start" => self.start(record),
            "stop" => {
                let id = record.id.as_u64()?;
                self.forget(id);
                self.activities.remove(&id);
                None
            }
            "result" => {
                let (id, kind) = (record.id.as_u64()?, record.kind.as_u64()?);
                self.result(id, kind, record.fields())
            }
            "msg" => message(record),
            _ => None,
        }
    }

    fn start<'a>(&mut self, record: &mut Record<'a>) -> Option<Item<'a>> {
        let id = record.id.as_u64()?;
        let kind = record.kind.as_u64()?;
        // The same activity started again (Nix does not, a stream may) is not counted again.
        let again = self
            .activities
            .get(&id)
            .filter(|running| running.kind == kind);
        let counted = again.is_some();
        let mut copy = again.and_then(|running| running.copy);
        let mut item = None;
        let fields = record.fields();
        let text = |index: usize| fields.get(index).and_then(Field::as_str);
        let drv: Option<Rc<str>> = (kind == ACT_BUILD).then(|| text(0).map(Rc::from)).flatten();
        match kind {
            ACT_BUILD if !counted => self.transfers.built = self.transfers.built.saturating_add(1),
            ACT_COPY_PATH if !counted => {
                // fields: [path, source store URI, destination store URI].
                let from_local = text(1).is_some_and(is_local_store);
                let moved = self.transfers.moved(from_local);
                moved.paths = moved.paths.saturating_add(1);
                copy = Some(Copied {
                    from_local,
                    bytes: 0,
                });
                let path = Rc::from(text(0).unwrap_or_default());
                item = Some(Item::Copying { from_local, path });
            }
            _ => {}
        }
        self.forget(id);
        if self.activities.len() < MAX_ACTIVITIES || self.activities.contains_key(&id) {
            self.activities.insert(
                id,
                Activity {
                    kind,
                    drv: drv.clone(),
                    copy,
                },
            );
        }
        item.or(drv.map(|drv| Item::BuildStarted { drv }))
    }

    /// Drop the remembered last activity if it is `id`, which starts anew or stops.
    fn forget(&mut self, id: u64) {
        if self.last.as_ref().is_some_and(|(last, _)| *last == id) {
            self.last = None;
        }
    }

    /// The running activity `id`, from the last one or the map.
    fn activity(&mut self, id: u64) -> Option<&Activity> {
        if self.last.as_ref().is_none_or(|(last, _)| *last != id) {
            let activity = self.activities.get(&id)?.clone();
            self.last = Some((id, activity));
        }
        self.last.as_ref().map(|(_, activity)| activity)
    }

    fn result<'a>(&mut self, id: u64, kind: u64, fields: &mut [Field<'a>]) -> Option<Item<'a>> {
        let activity = self.activity(id)?;
        let text = |fields: &mut [Field<'a>]| fields.first_mut()?.take_str();
        match kind {
            RES_BUILD_LOG_LINE | RES_POST_BUILD_LOG_LINE => Some(Item::BuildLog {
                drv: activity.drv.clone(),
                line: text(fields)?,
            }),
            RES_SET_PHASE => Some(Item::Phase {
                drv: activity.drv.clone(),
                phase: text(fields)?,
            }),
            RES_PROGRESS => match activity.kind {
                ACT_COPY_PATH => {
                    self.copy_progress(id, fields);
                    None
                }
                kind => self.update_progress(kind, fields),
            },
            _ => None,
        }
    }

    /// `progress [done, expected, running, failed]` of the builds or copyPaths activity: the
    /// counts. (`setExpected` is not read: Nix sends byte totals with it, not counts.) A total
    /// below its done count is raised to it, so that no front end shows more than all done.
    fn update_progress(&mut self, kind: u64, fields: &[Field<'_>]) -> Option<Item<'static>> {
        let number = |index: usize| fields.get(index)?.as_u64();
        let done = number(0)?;
        let expected = number(1)?.max(done);
        let mut progress = self.progress;
        match kind {
            ACT_BUILDS => {
                progress.built = done;
                progress.total_builds = expected;
                progress.running = number(2)?;
            }
            ACT_COPY_PATHS => {
                progress.downloaded = done;
                progress.total_downloads = expected;
            }
            _ => return None,
        }
        self.changed(progress)
    }

    /// `progress [done, expected, …]` of copyPath `id`: `expected` is the path's NAR size,
    /// counted once at its largest.
    fn copy_progress(&mut self, id: u64, fields: &[Field<'_>]) {
        let Some(expected) = fields.get(1).and_then(Field::as_u64) else {
            return;
        };
        let Some(Activity {
            copy: Some(copy), ..
        }) = self.activities.get_mut(&id)
        else {
            return;
        };
        if expected <= copy.bytes {
            return;
        }
        let moved = self.transfers.moved(copy.from_local);
        moved.bytes = moved.bytes.saturating_add(expected - copy.bytes);
        copy.bytes = expected;
        // The last activity is a copy of the map's entry: keep the two alike.
        if let Some((last, activity)) = &mut self.last
            && *last == id
        {
            activity.copy = Some(*copy);
        }
    }

    fn changed(&mut self, progress: BuildProgress) -> Option<Item<'static>> {
        (progress != self.progress).then(|| {
            self.progress = progress;
            Item::Progress(progress)
        })
    }
}

impl Transfers {
    fn moved(&mut self, from_local: bool) -> &mut Moved {
        if from_local {
            &mut self.from_local
        } else {
            &mut self.downloaded
        }
    }
}

/// Whether the store URI `uri` (a copyPath's source) is a local store rather than a binary
/// cache. Nix 2.8 renders `local?root=/x` as `local`; newer Nix as `local?root=/x` or `/x`.
/// A `nix copy` from the machine's own store reads `local`, `daemon` or `auto` too.
fn is_local_store(uri: &str) -> bool {
    let name = uri.split_once('?').map_or(uri, |(name, _)| name);
    matches!(name, "local" | "auto" | "daemon")
        || uri.starts_with("unix://")
        || uri.starts_with('/')
}

fn message(record: &Record<'_>) -> Option<Item<'static>> {
    let coloured = record.msg.as_str()?.to_string();
    Some(Item::Message {
        level: record.level.as_u64().unwrap_or(0),
        text: strip_ansi(&coloured),
        coloured,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nixlog::quick::quick_path_agrees;

    #[test]
    fn the_quick_path_reads_what_the_parser_reads_or_leaves_it() {
        let lines = [
            r#"{"action":"result","fields":["make[1]: Entering"],"id":12,"type":101}"#,
            r#"{"action":"result","fields":["\u001b[1;35mwarn\u001b[0m \"q\" \\ \t é"],"id":0,"type":101}"#,
            r#"{"action":"result","fields":[""],"id":18446744073709551615,"type":104}"#,
            r#"{"action":"result","fields":["\/\b\f\n\r\t\u00e9\u00E9\ud83d\ude00\uD83D\uDE00"],"id":1,"type":101}"#,
            r#"{"action":"result","fields":["\\"],"id":1,"type":101}"#,
            "{\"action\":\"result\",\"fields\":[\"del \x7f, bell \\u0007\"],\"id\":1,\"type\":101}",
            r#"{"action":"result","fields":["a\"],"id":1,"type":101}"#,
            r#"{"action":"result","fields":["x"],"id":18446744073709551616,"type":101}"#,
            r#"{"action":"result","fields":["x"],"id":01,"type":101}"#,
            r#"{"action":"result","fields":["x"],"id":-1,"type":101}"#,
            r#"{"action":"result","fields":["x"],"id":1,"type":101} "#,
            r#"{"action":"result","fields":["x"],"id":1,"type":101}}"#,
            r#"{"action":"result","fields":["x"],"id":1,"type":101"#,
            r#"{"action":"result","fields":["x"],"id":1.5,"type":101}"#,
            r#"{"action":"result","fields":["a"#,
            r#"{"action":"result","fields":["a\"#,
            r#"{"action":"result","fields":["x",1],"id":1,"type":101}"#,
        ];
        // One end remembered from line to line, as a build's log is read.
        let mut tail = QuickTail::default();
        for (index, line) in lines.into_iter().enumerate() {
            // Nix's own shapes take the quick path; what it leaves, the parser reads.
            let quick = quick_result(line.as_bytes(), &mut tail);
            assert_eq!(quick.is_some(), index < 6, "{line}");
            if let Some(quick) = quick {
                let record: serde_json::Value = serde_json::from_str(line).unwrap();
                assert_eq!(record["id"].as_u64(), Some(quick.id), "{line}");
                assert_eq!(record["type"].as_u64(), Some(quick.kind), "{line}");
            }
            assert!(quick_path_agrees(line), "{line}");
        }
        // Strings JSON does not allow: neither reads them.
        let strings = [
            r#""\ud800""#,
            r#""\udc00""#,
            r#""\ud83d\u0041""#,
            r#""\ud83d""#,
            r#""\u00e""#,
            r#""\u+0e9""#,
            r#""\"#,
            r#""\x""#,
            "\"raw\ttab\"",
        ];
        for string in strings {
            let line = format!(r#"{{"action":"result","fields":[{string}],"id":1,"type":101}}"#);
            assert!(
                quick_result(line.as_bytes(), &mut QuickTail::default()).is_none(),
                "{line}"
            );
            assert!(serde_json::from_str::<Record>(&line).is_err(), "{line}");
        }
        // A string that is not UTF-8 is left to the parser, which reads it replaced.
        let line = b"@nix {\"action\":\"result\",\"fields\":[\"caf\xe9\"],\"id\":1,\"type\":101}";
        assert!(quick_result(&line[PREFIX.len()..], &mut QuickTail::default()).is_none());
        let mut log = NixLog::new();
        log.feed(br#"@nix {"action":"start","id":1,"level":3,"text":"","type":105}"#);
        assert_eq!(
            log.feed(line),
            Some(Item::BuildLog {
                drv: None,
                line: Text::Other(Cow::Borrowed("caf\u{fffd}"))
            })
        );
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

    #[test]
    fn copies_beyond_the_cap_are_counted_without_their_bytes() {
        let mut log = NixLog::new();
        let copies = MAX_ACTIVITIES as u64 + 100;
        for id in 0..copies {
            let start = format!(
                r#"@nix {{"action":"start","id":{id},"type":100,"fields":["/nix/store/{id}","local","local"]}}"#
            );
            log.feed(start.as_bytes());
            let result =
                format!(r#"@nix {{"action":"result","id":{id},"type":105,"fields":[1,10,0,0]}}"#);
            log.feed(result.as_bytes());
        }
        let from_local = log.transfers().from_local;
        assert_eq!(from_local.paths, copies);
        assert_eq!(from_local.bytes, MAX_ACTIVITIES as u64 * 10);
    }
}
