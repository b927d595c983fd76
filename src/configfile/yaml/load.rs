//! YAML text → a positioned `marked_yaml::Node` tree, with anchors, aliases and merge
//! keys (`<<: *defaults`) resolved.
//!
//! marked-yaml's own loader refuses anchors, so this one reads yaml-rust2's parser events
//! (the parser marked-yaml is built on) and builds the same node types. An alias becomes
//! a copy of its anchor's node, keeping the anchor's positions, so an error in a value
//! that came through an alias or a merge names the line where that value is written.
//! Merge keys follow the YAML 1.1 merge spec: the mapping's own keys win, then the
//! merged mappings in the order listed.

use std::collections::{HashMap, HashSet};

use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode, MarkedSequenceNode};
use marked_yaml::{Marker, Node, Span};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker as YamlMarker, TScalarStyle};

use super::Position;

/// More nodes than this (counting every copy an alias makes) is refused, so a few lines
/// of nested aliases cannot expand into gigabytes.
const MAX_NODES: usize = 1_000_000;

/// A syntax problem and where it is.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct LoadError {
    pub(super) position: Position,
    pub(super) message: String,
}

/// Parses one document. `Ok(None)` for a file without one (empty or only comments).
pub(super) fn load(text: &str) -> Result<Option<Node>, LoadError> {
    let mut events = Events::default();
    Parser::new_from_str(text)
        .load(&mut events, false)
        .map_err(|error| LoadError {
            position: position(*error.marker()),
            message: format!("invalid YAML: {}", error.info()),
        })?;
    let mut builder = Builder {
        events: events.list.into_iter(),
        anchors: HashMap::new(),
        nodes: 0,
    };
    builder.document()
}

#[derive(Default)]
struct Events {
    list: Vec<(Event, YamlMarker)>,
}

impl MarkedEventReceiver for Events {
    fn on_event(&mut self, event: Event, mark: YamlMarker) {
        self.list.push((event, mark));
    }
}

fn position(mark: YamlMarker) -> Position {
    Position {
        line: mark.line().max(1),
        column: mark.col() + 1,
    }
}

fn marker(mark: YamlMarker) -> Marker {
    Marker::new(0, mark.index(), mark.line(), mark.col() + 1)
}

fn error(mark: YamlMarker, message: impl Into<String>) -> LoadError {
    LoadError {
        position: position(mark),
        message: message.into(),
    }
}

struct Builder {
    events: std::vec::IntoIter<(Event, YamlMarker)>,
    anchors: HashMap<usize, Node>,
    nodes: usize,
}

/// Where a mapping key came from: the `<<` merge key or an ordinary key.
enum Key {
    Merge,
    Plain(MarkedScalarNode),
}

impl Builder {
    fn next(&mut self) -> Result<(Event, YamlMarker), LoadError> {
        self.events.next().ok_or_else(|| LoadError {
            position: Position { line: 1, column: 1 },
            message: "invalid YAML: unexpected end of the document".to_owned(),
        })
    }

    fn document(&mut self) -> Result<Option<Node>, LoadError> {
        loop {
            let (event, mark) = self.next()?;
            match event {
                Event::StreamStart => {}
                Event::StreamEnd => return Ok(None),
                Event::DocumentStart => {
                    let (event, mark) = self.next()?;
                    return self.node(event, mark).map(Some);
                }
                _ => return Err(error(mark, "invalid YAML: expected a document")),
            }
        }
    }

    /// Counts one more node (copies made by aliases included).
    fn count(&mut self, mark: YamlMarker, nodes: usize) -> Result<(), LoadError> {
        self.nodes = self.nodes.saturating_add(nodes);
        if self.nodes > MAX_NODES {
            return Err(error(
                mark,
                format!(
                    "the document expands to more than {MAX_NODES} nodes (aliases of aliases?)"
                ),
            ));
        }
        Ok(())
    }

    fn node(&mut self, event: Event, mark: YamlMarker) -> Result<Node, LoadError> {
        self.count(mark, 1)?;
        let (node, anchor) = match event {
            Event::Scalar(value, _, anchor, tag) => {
                refuse_tag(tag.as_ref(), mark)?;
                let node =
                    Node::Scalar(MarkedScalarNode::new(Span::new_start(marker(mark)), value));
                (node, anchor)
            }
            Event::SequenceStart(anchor, tag) => {
                refuse_tag(tag.as_ref(), mark)?;
                (self.sequence(mark)?, anchor)
            }
            Event::MappingStart(anchor, tag) => {
                refuse_tag(tag.as_ref(), mark)?;
                (self.mapping(mark)?, anchor)
            }
            Event::Alias(anchor) => {
                let node = self
                    .anchors
                    .get(&anchor)
                    .cloned()
                    .ok_or_else(|| error(mark, "alias of an anchor not defined before it"))?;
                self.count(mark, size(&node))?;
                return Ok(node);
            }
            _ => return Err(error(mark, "invalid YAML: unexpected event")),
        };
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        Ok(node)
    }

    fn sequence(&mut self, start: YamlMarker) -> Result<Node, LoadError> {
        let mut items = Vec::new();
        loop {
            let (event, mark) = self.next()?;
            if matches!(event, Event::SequenceEnd) {
                let span = Span::new_with_marks(marker(start), marker(mark));
                return Ok(Node::Sequence(MarkedSequenceNode::new(span, items)));
            }
            items.push(self.node(event, mark)?);
        }
    }

    fn mapping(&mut self, start: YamlMarker) -> Result<Node, LoadError> {
        let mut map = MarkedMappingNode::new_empty(Span::new_start(marker(start)));
        let mut own: HashSet<String> = HashSet::new();
        let mut merges: Vec<MarkedMappingNode> = Vec::new();
        loop {
            let (event, mark) = self.next()?;
            let key = match event {
                Event::MappingEnd => {
                    let span = Span::new_with_marks(marker(start), marker(mark));
                    let mut merged = MarkedMappingNode::new_empty(span);
                    // The mapping's own keys first, then each merged mapping's new keys.
                    for (key, value) in map.iter() {
                        merged.insert(key.clone(), value.clone());
                    }
                    for source in &merges {
                        for (key, value) in source.iter() {
                            if !merged.contains_key(key) {
                                merged.insert(key.clone(), value.clone());
                            }
                        }
                    }
                    return Ok(Node::Mapping(merged));
                }
                Event::Scalar(value, style, anchor, tag) => {
                    refuse_tag(tag.as_ref(), mark)?;
                    if anchor > 0 {
                        return Err(error(mark, "anchors on mapping keys are not supported"));
                    }
                    if value == "<<" && style == TScalarStyle::Plain {
                        Key::Merge
                    } else {
                        Key::Plain(MarkedScalarNode::new(Span::new_start(marker(mark)), value))
                    }
                }
                _ => return Err(error(mark, "mapping keys must be plain strings")),
            };
            let (event, value_mark) = self.next()?;
            let value = self.node(event, value_mark)?;
            match key {
                Key::Merge => merges.extend(merge_sources(value, value_mark)?),
                Key::Plain(key) => {
                    if !own.insert(key.as_str().to_owned()) {
                        return Err(error(mark, format!("duplicate key `{}`", key.as_str())));
                    }
                    map.insert(key, value);
                }
            }
        }
    }
}

/// The mappings a `<<` value names: one mapping, or a list of them.
fn merge_sources(value: Node, mark: YamlMarker) -> Result<Vec<MarkedMappingNode>, LoadError> {
    let wrong = || {
        error(
            mark,
            "a merge key `<<` takes a mapping or a list of mappings",
        )
    };
    match value {
        Node::Mapping(map) => Ok(vec![map]),
        Node::Sequence(list) => list
            .iter()
            .map(|item| item.as_mapping().cloned().ok_or_else(wrong))
            .collect(),
        Node::Scalar(_) => Err(wrong()),
    }
}

fn refuse_tag(tag: Option<&Tag>, mark: YamlMarker) -> Result<(), LoadError> {
    match tag {
        Some(_) => Err(error(mark, "YAML tags are not supported")),
        None => Ok(()),
    }
}

/// Nodes in `node`, itself included.
fn size(node: &Node) -> usize {
    match node {
        Node::Scalar(_) => 1,
        Node::Sequence(list) => 1 + list.iter().map(size).sum::<usize>(),
        Node::Mapping(map) => 1 + map.values().map(size).sum::<usize>(),
    }
}
