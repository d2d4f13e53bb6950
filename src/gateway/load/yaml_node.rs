//! The documents the `yaml_subset` reader reads, as a tree that borrows its
//! strings from the text, and a serde `Deserializer` over it.
//!
//! Typing a manifest straight from this tree skips the `serde_json::Value`
//! that the full path builds (a `String` per key, a `BTreeMap` per mapping).
//! The deserializer must give exactly what `serde_json::from_value` gives for
//! the same document as JSON ([`Node::to_value`]) whenever it succeeds; when
//! it fails, the caller reads the text through the full path, which then
//! succeeds or reports the error as it always has. So it may refuse what it
//! does not need (a struct from a sequence, enums, non-string map keys) but
//! must never accept a document differently.

use std::borrow::Cow;

use serde::de::value::BorrowedStrDeserializer;
use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};
use serde::forward_to_deserialize_any;
use serde_json::Number;

/// One YAML node of the subset, as JSON sees it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Node<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Sequence(Vec<Node<'a>>),
    /// Entries in document order; keys are unique (the reader declines a
    /// repeated key).
    Mapping(Vec<(Cow<'a, str>, Node<'a>)>),
}

impl<'a> Node<'a> {
    /// Whether this is the null node (an empty document reads as one).
    pub(super) fn is_null(&self) -> bool {
        matches!(self, Node::Null)
    }

    /// The value of `key` when this is a mapping that has it.
    pub(super) fn get(&self, key: &str) -> Option<&Node<'a>> {
        match self {
            Node::Mapping(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Takes the value of `key` out of a mapping.
    pub(super) fn remove(&mut self, key: &str) -> Option<Node<'a>> {
        match self {
            Node::Mapping(entries) => {
                let at = entries.iter().position(|(k, _)| k == key)?;
                Some(entries.swap_remove(at).1)
            }
            _ => None,
        }
    }

    /// The same document as a JSON value (what the full path builds).
    #[cfg(test)]
    pub(super) fn to_value(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Node::Null => Value::Null,
            Node::Bool(b) => Value::Bool(*b),
            Node::Number(n) => Value::Number(n.clone()),
            Node::String(s) => Value::String(s.to_string()),
            Node::Sequence(items) => Value::Array(items.iter().map(Node::to_value).collect()),
            Node::Mapping(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_value()))
                    .collect(),
            ),
        }
    }
}

/// Whether two keys of a mapping are equal; `keys` is small for most
/// mappings, so pairs are compared directly below a few entries.
pub(super) fn has_repeated_key(keys: &[(Cow<'_, str>, Node<'_>)]) -> bool {
    if keys.len() <= 8 {
        return keys
            .iter()
            .enumerate()
            .any(|(i, (a, _))| keys[..i].iter().any(|(b, _)| a == b));
    }
    let mut sorted: Vec<&str> = keys.iter().map(|(k, _)| k.as_ref()).collect();
    sorted.sort_unstable();
    sorted.windows(2).any(|pair| pair[0] == pair[1])
}

type Error = serde_json::Error;

/// Mirrors `serde_json::Value`'s `Deserializer`: `deserialize_any` by kind,
/// `Option` (null is `None`), newtype structs; every other request goes
/// through `deserialize_any`, whose visitor then accepts or refuses the kind
/// as it does for a JSON value.
impl<'de> de::Deserializer<'de> for &'de Node<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Node::Null => visitor.visit_unit(),
            Node::Bool(b) => visitor.visit_bool(*b),
            Node::Number(n) => n.deserialize_any(visitor),
            Node::String(s) => visitor.visit_borrowed_str(s),
            Node::Sequence(items) => {
                let mut access = SeqAccess {
                    items: items.iter(),
                };
                let value = visitor.visit_seq(&mut access)?;
                // What serde_json does with elements left over.
                match access.items.len() {
                    0 => Ok(value),
                    _ => Err(de::Error::invalid_length(items.len(), &"fewer elements")),
                }
            }
            Node::Mapping(entries) => {
                let mut access = MapAccess {
                    entries: entries.iter(),
                    value: None,
                };
                let value = visitor.visit_map(&mut access)?;
                match access.entries.len() {
                    0 => Ok(value),
                    _ => Err(de::Error::invalid_length(entries.len(), &"fewer entries")),
                }
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Node::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    /// Enums are not in the model; refused so that the full path decides.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Error> {
        Err(de::Error::custom("enums are read through serde_json"))
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct
        identifier ignored_any
    }
}

impl<'de> IntoDeserializer<'de, Error> for &'de Node<'_> {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

struct SeqAccess<'de, 'a> {
    items: std::slice::Iter<'de, Node<'a>>,
}

impl<'de> de::SeqAccess<'de> for SeqAccess<'de, '_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        self.items
            .next()
            .map(|item| seed.deserialize(item))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct MapAccess<'de, 'a> {
    entries: std::slice::Iter<'de, (Cow<'a, str>, Node<'a>)>,
    /// The value of the key just read.
    value: Option<&'de Node<'a>>,
}

impl<'de> de::MapAccess<'de> for MapAccess<'de, '_> {
    type Error = Error;

    /// Keys are strings, read as `visit_borrowed_str` (serde_json's keys also
    /// parse as numbers or booleans on request; the model has none such).
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some(value);
        seed.deserialize(BorrowedStrDeserializer::new(key))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        match self.value.take() {
            Some(value) => seed.deserialize(value),
            None => Err(de::Error::custom("value is missing")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}
