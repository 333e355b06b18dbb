//! Nix's `--log-format internal-json` turned into what the operator needs to see: messages,
//! build progress, which derivation is building and its log, what the build copied from a
//! local store (the volume's), downloaded or built, and explanations for the failures
//! lifeboat knows (NIX-FACTS.md, "Nix internal-json" and "Flakes and git").
//!
//! The stream is untrusted and changes between Nix versions: unknown actions and numbers are
//! ignored, a line that is not valid `@nix` JSON is passed through as a plain line, and
//! nothing here panics or grows without bound.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::escape::{JSON_SPECIAL, Plain, Text};

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
    Progress(Progress),
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
pub struct Progress {
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
    pub paths: u64,
    /// The paths' NAR sizes as Nix's progress reported them: a path too small for Nix to
    /// report progress on adds nothing.
    pub bytes: u64,
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
const PREFIX: &[u8] = b"@nix ";

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
    progress: Progress,
    transfers: Transfers,
}

impl NixLog {
    pub fn new() -> NixLog {
        NixLog::default()
    }

    /// The counts so far.
    pub fn progress(&self) -> Progress {
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

    fn changed(&mut self, progress: Progress) -> Option<Item<'static>> {
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

impl<'a> Record<'a> {
    /// The `fields` list; empty when there is none.
    fn fields(&mut self) -> &mut [Field<'a>] {
        match &mut self.fields {
            Field::List(list) => list,
            _ => &mut [],
        }
    }
}

/// A JSON value as far as lifeboat looks into it.
#[derive(Debug, Default, PartialEq)]
enum Field<'a> {
    Str(Text<'a>),
    Number(u64),
    List(Vec<Field<'a>>),
    /// Absent, or anything else (negative or fractional numbers, objects, booleans, null).
    #[default]
    Other,
}

impl<'a> Field<'a> {
    /// The string, moved out (the field is left `Other`).
    fn take_str(&mut self) -> Option<Text<'a>> {
        match std::mem::take(self) {
            Field::Str(text) => Some(text),
            _ => None,
        }
    }

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

/// Whether [`quick_result`] reads the record `text` as the general parser does, or leaves it
/// to it: for the fuzzer and the tests, which hold the two paths to each other.
/// Both the first time and again, when the end of the record is known from the time before.
pub fn quick_path_agrees(text: &str) -> bool {
    let mut tail = QuickTail::default();
    let Some(quick) = quick_result(text.as_bytes(), &mut tail) else {
        return true;
    };
    let again = quick_result(text.as_bytes(), &mut tail);
    let Ok(mut record) = serde_json::from_str::<Record>(text) else {
        return false;
    };
    let mut agrees = |quick: QuickResult<'_>| {
        record.action.as_str() == Some("result")
            && record.id.as_u64() == Some(quick.id)
            && record.kind.as_u64() == Some(quick.kind)
            && record.fields().len() == 1
            && record.fields()[0].as_str() == quick.field.as_str()
    };
    agrees(quick) && again.is_some_and(agrees)
}

/// A result record read by [`quick_result`].
#[derive(Debug)]
struct QuickResult<'a> {
    id: u64,
    kind: u64,
    field: Field<'a>,
}

/// The record nearly every line of a build is, `{"action":"result","fields":["…"],"id":N,
/// "type":N}` exactly as Nix writes it (a log line, a phase), read without the general
/// parser, which cost half of following a build. `None` for anything else, even the same
/// record spaced differently: the general parser reads those, and rejects what is not JSON.
/// Read from the bytes: only a string that is not [`Plain`] has its UTF-8 checked, and an
/// end the same as the last record's is not read again.
fn quick_result<'a>(json: &'a [u8], last: &mut QuickTail) -> Option<QuickResult<'a>> {
    let rest = json.strip_prefix(br#"{"action":"result","fields":["#)?;
    let (field, rest) = quick_string(rest)?;
    let (id, kind) = last.read(rest)?;
    Some(QuickResult {
        id,
        kind,
        field: Field::Str(field),
    })
}

/// The end of the last record [`quick_result`] read (`],"id":N,"type":N}`) and its numbers:
/// a build's log lines come in runs from one build, and end alike.
#[derive(Debug, Default)]
struct QuickTail {
    text: Vec<u8>,
    id: u64,
    kind: u64,
}

impl QuickTail {
    /// The id and type of the end `text`, remembered for the next record.
    fn read(&mut self, text: &[u8]) -> Option<(u64, u64)> {
        if self.text.is_empty() || text != self.text {
            let rest = text.strip_prefix(br#"],"id":"#)?;
            let (id, rest) = quick_number(rest)?;
            let rest = rest.strip_prefix(br#","type":"#)?;
            let (kind, rest) = quick_number(rest)?;
            if rest != b"}" {
                return None;
            }
            self.text.clear();
            self.text.extend_from_slice(text);
            (self.id, self.kind) = (id, kind);
        }
        Some((self.id, self.kind))
    }
}

/// The JSON string `json` starts with, and what follows it. Borrowed when it holds no
/// escapes; escapes are decoded as serde_json decodes them, and what JSON does not allow
/// (a control character, an unknown escape, a lone surrogate, invalid UTF-8) is `None`.
fn quick_string(json: &[u8]) -> Option<(Text<'_>, &[u8])> {
    let rest = json.strip_prefix(b"\"")?;
    let (plain, after) = Plain::split(rest);
    if let Some(after) = after.strip_prefix(b"\"") {
        return Some((Text::Plain(plain), after));
    }
    let (decoded, after) = decode_string(std::str::from_utf8(rest).ok()?)?;
    Some((Text::Other(decoded), after.as_bytes()))
}

/// The JSON string whose text (after its opening quote) `text` starts with, decoded, and
/// what follows its closing quote.
fn decode_string(mut rest: &str) -> Option<(Cow<'_, str>, &str)> {
    let mut decoded = String::new();
    loop {
        let at = JSON_SPECIAL.find(rest.as_bytes())?;
        let (run, special) = rest.split_at(at);
        if let Some(after) = special.strip_prefix('"') {
            // Nothing decoded so far: no escape, the text is the string.
            if decoded.is_empty() {
                return Some((Cow::Borrowed(run), after));
            }
            decoded.push_str(run);
            return Some((Cow::Owned(decoded), after));
        }
        // A control character is invalid in a JSON string; what is left is a backslash.
        let (c, after) = unescape(special.strip_prefix('\\')?)?;
        // The decoded string is shorter than what is left of the record.
        decoded.reserve(rest.len());
        decoded.push_str(run);
        decoded.push(c);
        rest = after;
    }
}

/// The character of the escape `text` starts with (after its backslash), and the rest.
fn unescape(text: &str) -> Option<(char, &str)> {
    let simple = match text.as_bytes().first()? {
        b'"' => '"',
        b'\\' => '\\',
        b'/' => '/',
        b'b' => '\x08',
        b'f' => '\x0c',
        b'n' => '\n',
        b'r' => '\r',
        b't' => '\t',
        b'u' => return unescape_unicode(&text[1..]),
        _ => return None,
    };
    Some((simple, &text[1..]))
}

/// `XXXX` of `\uXXXX`, or a UTF-16 surrogate pair `XXXX\uYYYY`, and the rest.
fn unescape_unicode(text: &str) -> Option<(char, &str)> {
    let unit = hex4(text)?;
    let rest = &text[4..];
    match unit {
        0xd800..=0xdbff => {
            let low =
                hex4(rest.strip_prefix("\\u")?).filter(|low| (0xdc00..=0xdfff).contains(low))?;
            let c = char::from_u32(0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00))?;
            Some((c, &rest[6..]))
        }
        _ => Some((char::from_u32(unit)?, rest)),
    }
}

/// The four hexadecimal digits `text` starts with, as a number.
fn hex4(text: &str) -> Option<u32> {
    let digits = text.as_bytes().get(..4)?;
    digits.iter().try_fold(0, |n, &b| {
        let digit = char::from(b).to_digit(16)?;
        Some(n << 4 | digit)
    })
}

/// The unsigned JSON number `json` starts with (no leading zero, fits in a u64), and the rest.
fn quick_number(json: &[u8]) -> Option<(u64, &[u8])> {
    let mut n: u64 = 0;
    let mut digits = 0;
    for &b in json.iter().take_while(|b| b.is_ascii_digit()) {
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        digits += 1;
    }
    if digits == 0 || (digits > 1 && json.starts_with(b"0")) {
        return None;
    }
    Some((n, &json[digits..]))
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
        Ok(Field::Str(Text::Other(Cow::Borrowed(text))))
    }

    fn visit_str<E>(self, text: &str) -> Result<Field<'de>, E> {
        Ok(Field::Str(Text::Other(Cow::Owned(text.to_string()))))
    }

    fn visit_string<E>(self, text: String) -> Result<Field<'de>, E> {
        Ok(Field::Str(Text::Other(Cow::Owned(text))))
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
