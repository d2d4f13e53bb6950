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

/// One YAML node of the subset, as JSON sees it. A collection's children
/// sit in its [`Tree`] (so that a document costs a few allocations, not one
/// per collection).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Node<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    /// Its items, in [`Tree`]'s `items`.
    Sequence(Span),
    /// Its entries in document order, in [`Tree`]'s `entries`; keys are
    /// unique (the reader declines a repeated key).
    Mapping(Span),
}

/// Where a collection's children sit in a [`Tree`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Span {
    start: u32,
    len: u32,
}

impl Span {
    fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.start as usize + self.len as usize
    }
}

/// One document: its root node and the children of all its collections.
#[derive(Debug, Default)]
pub(super) struct Tree<'a> {
    root: Option<Node<'a>>,
    items: Vec<Node<'a>>,
    entries: Vec<(Cow<'a, str>, Node<'a>)>,
}

impl<'a> Tree<'a> {
    /// The root node (null for an empty document).
    pub(super) fn root(&self) -> NodeRef<'_, 'a> {
        const NULL: &Node<'static> = &Node::Null;
        NodeRef {
            tree: self,
            node: self.root.as_ref().unwrap_or(NULL),
        }
    }

    /// Empties the tree, keeping its allocations.
    pub(super) fn clear(&mut self) {
        self.root = None;
        self.items.clear();
        self.entries.clear();
    }
}

/// Builds a [`Tree`]: a collection's children are gathered on a stack while
/// it is read (its nested collections are finished, and moved into the
/// tree, before it is), then moved into the tree together.
#[derive(Debug, Default)]
pub(super) struct TreeBuilder<'a> {
    tree: Tree<'a>,
    item_stack: Vec<Node<'a>>,
    entry_stack: Vec<(Cow<'a, str>, Node<'a>)>,
}

/// Reading a collection's children can only fail with this much overflow.
fn span(start: usize, len: usize) -> Option<Span> {
    Some(Span {
        start: u32::try_from(start).ok()?,
        len: u32::try_from(len).ok()?,
    })
}

impl<'a> TreeBuilder<'a> {
    /// Empties the builder for the next document (keeping allocations).
    pub(super) fn start(&mut self) {
        self.tree.clear();
        self.item_stack.clear();
        self.entry_stack.clear();
    }

    /// Takes back a finished tree's allocations for the next documents.
    pub(super) fn recycle(&mut self, tree: Tree<'a>) {
        if tree.items.capacity() + tree.entries.capacity()
            > self.tree.items.capacity() + self.tree.entries.capacity()
        {
            self.tree = tree;
        }
        self.tree.clear();
    }

    /// Where the next sequence's items start on the stack.
    pub(super) fn item_mark(&self) -> usize {
        self.item_stack.len()
    }

    /// Where the next mapping's entries start on the stack.
    pub(super) fn entry_mark(&self) -> usize {
        self.entry_stack.len()
    }

    pub(super) fn push_item(&mut self, item: Node<'a>) {
        self.item_stack.push(item);
    }

    pub(super) fn push_entry(&mut self, key: Cow<'a, str>, value: Node<'a>) {
        self.entry_stack.push((key, value));
    }

    /// The sequence of the items pushed since `mark`.
    pub(super) fn sequence(&mut self, mark: usize) -> Option<Node<'a>> {
        let start = self.tree.items.len();
        let span = span(start, self.item_stack.len() - mark)?;
        self.tree.items.extend(self.item_stack.drain(mark..));
        Some(Node::Sequence(span))
    }

    /// The mapping of the entries pushed since `mark`; `None` when a key is
    /// repeated.
    pub(super) fn mapping(&mut self, mark: usize) -> Option<Node<'a>> {
        if has_repeated_key(&self.entry_stack[mark..]) {
            return None;
        }
        let start = self.tree.entries.len();
        let span = span(start, self.entry_stack.len() - mark)?;
        self.tree.entries.extend(self.entry_stack.drain(mark..));
        Some(Node::Mapping(span))
    }

    /// The finished tree with root `root`.
    pub(super) fn finish(&mut self, root: Node<'a>) -> Tree<'a> {
        let mut tree = std::mem::take(&mut self.tree);
        tree.root = Some(root);
        tree
    }
}

/// A node with the tree that holds its children.
#[derive(Debug, Clone, Copy)]
pub(super) struct NodeRef<'t, 'a> {
    tree: &'t Tree<'a>,
    node: &'t Node<'a>,
}

impl<'t, 'a> NodeRef<'t, 'a> {
    pub(super) fn node(&self) -> &'t Node<'a> {
        self.node
    }

    /// Whether this is the null node (an empty document reads as one).
    pub(super) fn is_null(&self) -> bool {
        matches!(self.node, Node::Null)
    }

    fn at(&self, node: &'t Node<'a>) -> NodeRef<'t, 'a> {
        NodeRef {
            tree: self.tree,
            node,
        }
    }

    /// The items when this is a sequence.
    pub(super) fn items(&self) -> Option<impl Iterator<Item = NodeRef<'t, 'a>> + '_> {
        match self.node {
            Node::Sequence(span) => Some(self.tree.items[span.range()].iter().map(|n| self.at(n))),
            _ => None,
        }
    }

    fn entries(&self) -> &'t [(Cow<'a, str>, Node<'a>)] {
        match self.node {
            Node::Mapping(span) => &self.tree.entries[span.range()],
            _ => &[],
        }
    }

    /// The value of `key` when this is a mapping that has it.
    pub(super) fn get(&self, key: &str) -> Option<NodeRef<'t, 'a>> {
        self.entries()
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| self.at(v))
    }

    /// The same document as a JSON value (what the full path builds).
    #[cfg(test)]
    pub(super) fn to_value(self) -> serde_json::Value {
        use serde_json::Value;
        match self.node {
            Node::Null => Value::Null,
            Node::Bool(b) => Value::Bool(*b),
            Node::Number(n) => Value::Number(n.clone()),
            Node::String(s) => Value::String(s.to_string()),
            Node::Sequence(_) => Value::Array(
                self.items()
                    .into_iter()
                    .flatten()
                    .map(|n| n.to_value())
                    .collect(),
            ),
            Node::Mapping(_) => Value::Object(
                self.entries()
                    .iter()
                    .map(|(k, v)| (k.to_string(), self.at(v).to_value()))
                    .collect(),
            ),
        }
    }
}

/// Whether two keys of a mapping are equal; most mappings are small, so
/// pairs are compared directly below a few entries.
fn has_repeated_key(entries: &[(Cow<'_, str>, Node<'_>)]) -> bool {
    if entries.len() <= 8 {
        return entries
            .iter()
            .enumerate()
            .any(|(i, (a, _))| entries[..i].iter().any(|(b, _)| a == b));
    }
    let mut sorted: Vec<&str> = entries.iter().map(|(k, _)| k.as_ref()).collect();
    sorted.sort_unstable();
    sorted.windows(2).any(|pair| pair[0] == pair[1])
}

type Error = serde_json::Error;

/// Mirrors `serde_json::Value`'s `Deserializer`: `deserialize_any` by kind,
/// `Option` (null is `None`), newtype structs; every other request goes
/// through `deserialize_any`, whose visitor then accepts or refuses the kind
/// as it does for a JSON value.
impl<'de> de::Deserializer<'de> for NodeRef<'de, '_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.node {
            Node::Null => visitor.visit_unit(),
            Node::Bool(b) => visitor.visit_bool(*b),
            Node::Number(n) => n.deserialize_any(visitor),
            Node::String(s) => visitor.visit_borrowed_str(s),
            Node::Sequence(span) => {
                let items = &self.tree.items[span.range()];
                let mut access = SeqAccess {
                    tree: self.tree,
                    items: items.iter(),
                };
                let value = visitor.visit_seq(&mut access)?;
                // What serde_json does with elements left over.
                match access.items.len() {
                    0 => Ok(value),
                    _ => Err(de::Error::invalid_length(items.len(), &"fewer elements")),
                }
            }
            Node::Mapping(span) => {
                let entries = &self.tree.entries[span.range()];
                let mut access = MapAccess {
                    tree: self.tree,
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
        match self.node {
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

    /// Skipped without walking the node, as serde_json skips a value.
    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
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
        identifier
    }
}

impl<'de> IntoDeserializer<'de, Error> for NodeRef<'de, '_> {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

struct SeqAccess<'de, 'a> {
    tree: &'de Tree<'a>,
    items: std::slice::Iter<'de, Node<'a>>,
}

impl<'de> de::SeqAccess<'de> for SeqAccess<'de, '_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        let tree = self.tree;
        self.items
            .next()
            .map(|node| seed.deserialize(NodeRef { tree, node }))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct MapAccess<'de, 'a> {
    tree: &'de Tree<'a>,
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
            Some(node) => seed.deserialize(NodeRef {
                tree: self.tree,
                node,
            }),
            None => Err(de::Error::custom("value is missing")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}
