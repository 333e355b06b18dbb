//! One internal-json record, read from its JSON text as far as lifeboat looks into it.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::escape::Text;

/// The members of an internal-json record lifeboat reads, strings borrowed from the line
/// where they hold no escapes. Read straight from the text rather than through a
/// `serde_json::Value` tree: a build prints a million of these, and building the tree was
/// most of the cost of following one. Any JSON object is a record (members of other types
/// or shapes than expected read as absent, the last of duplicate keys counts); anything
/// else is not.
#[derive(Debug, Default)]
pub(super) struct Record<'a> {
    pub(super) action: Field<'a>,
    pub(super) id: Field<'a>,
    pub(super) kind: Field<'a>,
    pub(super) level: Field<'a>,
    pub(super) msg: Field<'a>,
    pub(super) fields: Field<'a>,
}

impl<'a> Record<'a> {
    /// The `fields` list; empty when there is none.
    pub(super) fn fields(&mut self) -> &mut [Field<'a>] {
        match &mut self.fields {
            Field::List(list) => list,
            _ => &mut [],
        }
    }
}

/// A JSON value as far as lifeboat looks into it.
#[derive(Debug, Default, PartialEq)]
pub(super) enum Field<'a> {
    Str(Text<'a>),
    Number(u64),
    List(Vec<Field<'a>>),
    /// Absent, or anything else (negative or fractional numbers, objects, booleans, null).
    #[default]
    Other,
}

impl<'a> Field<'a> {
    /// The string, moved out (the field is left `Other`).
    pub(super) fn take_str(&mut self) -> Option<Text<'a>> {
        match std::mem::take(self) {
            Field::Str(text) => Some(text),
            _ => None,
        }
    }

    pub(super) fn as_str(&self) -> Option<&str> {
        match self {
            Field::Str(text) => Some(text),
            _ => None,
        }
    }

    pub(super) fn as_u64(&self) -> Option<u64> {
        match self {
            Field::Number(n) => Some(*n),
            _ => None,
        }
    }
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
