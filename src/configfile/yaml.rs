//! The YAML layer: parse with positions (anchors, aliases and merge keys resolved by
//! [`load`]), expand `${VAR}`, index every key path to its line and column, and
//! deserialize one section or entry at a time so that one bad entry does not hide the
//! errors of the next.

mod load;

use std::collections::{BTreeMap, HashMap};

use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode};
use marked_yaml::{Marker, Node, Span};
use serde::de::DeserializeOwned;

use super::Diagnostic;

/// A position in the config file (1-based line and column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl From<&Marker> for Position {
    fn from(marker: &Marker) -> Self {
        Self {
            line: marker.line(),
            column: marker.column(),
        }
    }
}

/// Where each key path starts in the file, for errors found after deserialization.
#[derive(Debug, Default, Clone)]
pub struct Positions(HashMap<String, Position>);

impl Positions {
    /// The position of `path`, or of its nearest ancestor that has one.
    pub fn of(&self, path: &str) -> Position {
        let mut path = path;
        loop {
            if let Some(position) = self.0.get(path) {
                return *position;
            }
            match path.rfind(['.', '[']) {
                Some(cut) => path = path.get(..cut).unwrap_or_default(),
                None => return Position { line: 1, column: 1 },
            }
        }
    }

    fn index(&mut self, node: &Node, path: &str) {
        match node {
            Node::Scalar(_) => {}
            Node::Mapping(map) => {
                for (key, value) in map.iter() {
                    let child = join(path, key.as_str());
                    if let Some(start) = key.span().start() {
                        self.0.insert(child.clone(), start.into());
                    }
                    self.index(value, &child);
                }
            }
            Node::Sequence(seq) => {
                for (i, value) in seq.iter().enumerate() {
                    let child = format!("{path}[{i}]");
                    if let Some(start) = value.span().start() {
                        self.0.insert(child.clone(), start.into());
                    }
                    self.index(value, &child);
                }
            }
        }
    }
}

/// Joins a key onto a path with a dot.
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// A parsed file: its root mapping and the position index.
#[derive(Debug)]
pub struct Document {
    pub root: MarkedMappingNode,
    pub positions: Positions,
}

/// Parses `text`; on a syntax error returns the single diagnostic the parser can give.
/// Anchors, aliases and merge keys are resolved (see [`load`]).
pub fn parse(text: &str) -> Result<Document, Diagnostic> {
    let root = match load::load(text) {
        Ok(Some(Node::Mapping(map))) => map,
        Ok(None) => MarkedMappingNode::new_empty(Span::new_blank()),
        Ok(Some(_)) => {
            return Err(syntax_error(
                Position { line: 1, column: 1 },
                "top level must be a mapping",
            ));
        }
        Err(error) => return Err(syntax_error(error.position, error.message)),
    };
    let mut positions = Positions::default();
    positions.index(&Node::Mapping(root.clone()), "");
    Ok(Document { root, positions })
}

fn syntax_error(position: Position, message: impl Into<String>) -> Diagnostic {
    Diagnostic {
        position,
        path: String::new(),
        message: message.into(),
    }
}

/// Replaces `${VAR}` in every scalar (keys excluded) with the variable's value; `$${`
/// stands for a literal `${`. Unset variables are reported at the scalar's position.
pub fn expand_env(
    node: &mut Node,
    path: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<Diagnostic>,
) {
    match node {
        Node::Scalar(scalar) => {
            if !scalar.as_str().contains('$') {
                return;
            }
            match expand(scalar.as_str(), lookup) {
                Ok(expanded) => {
                    let span = *scalar.span();
                    let may_coerce = scalar.may_coerce();
                    let mut replaced = MarkedScalarNode::new(span, expanded);
                    replaced.set_coerce(may_coerce);
                    *scalar = replaced;
                }
                Err(message) => errors.push(Diagnostic {
                    position: scalar
                        .span()
                        .start()
                        .map(Position::from)
                        .unwrap_or_default(),
                    path: path.to_owned(),
                    message,
                }),
            }
        }
        Node::Mapping(map) => {
            for (key, value) in map.iter_mut() {
                expand_env(value, &join(path, key.as_str()), lookup, errors);
            }
        }
        Node::Sequence(seq) => {
            for (i, value) in seq.iter_mut().enumerate() {
                expand_env(value, &format!("{path}[{i}]"), lookup, errors);
            }
        }
    }
}

/// Expands one string. Pure, so it is tested directly.
pub fn expand(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        let (before, tail) = rest.split_at(at);
        out.push_str(before);
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = tail.strip_prefix("${") {
            let end = after
                .find('}')
                .ok_or_else(|| "unterminated `${` (write `$${` for a literal)".to_owned())?;
            let (inner, after_name) = after.split_at(end);
            // `${NAME:-default}`: the default when NAME is unset or empty, as in shells
            // and Docker Compose.
            let (name, default) = match inner.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (inner, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("invalid environment variable name `{name}`"));
            }
            let value = match (lookup(name), default) {
                (Some(value), Some(default)) if value.is_empty() => default.to_owned(),
                (Some(value), _) => value,
                (None, Some(default)) => default.to_owned(),
                (None, None) => return Err(format!("environment variable `{name}` is not set")),
            };
            out.push_str(&value);
            rest = after_name.get(1..).unwrap_or_default();
        } else {
            out.push('$');
            rest = tail.get(1..).unwrap_or_default();
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Deserializes `node` (found at `path`) into `T`, turning failures into diagnostics.
///
/// serde stops at the first error, so after each one the offending key is removed and
/// decoding retried: every bad key of a section is reported, and the rest of the section
/// still decodes (the removed keys take their defaults, so they cause no follow-on errors).
pub fn decode<T: DeserializeOwned>(
    node: &Node,
    path: &str,
    positions: &Positions,
    errors: &mut Vec<Diagnostic>,
) -> Option<T> {
    let mut node = std::borrow::Cow::Borrowed(node);
    for _ in 0..MAX_ERRORS_PER_SECTION {
        let error = match marked_yaml::from_node::<T>(&node) {
            Ok(value) => return Some(value),
            Err(error) => error,
        };
        let inner_path = error
            .path()
            .filter(|p| !p.is_empty() && *p != ".")
            .map(str::to_owned);
        let full_path = match &inner_path {
            Some(inner) => join(path, inner),
            None => path.to_owned(),
        };
        let position = error
            .start_mark()
            .map(|m| Position::from(&m))
            .unwrap_or_else(|| positions.of(&full_path));
        errors.push(Diagnostic {
            position,
            path: full_path,
            message: describe(&error),
        });
        let removed = inner_path.is_some_and(|inner| remove(node.to_mut(), &inner));
        if !removed {
            return None;
        }
    }
    None
}

/// More errors than this in one section are not worth listing.
const MAX_ERRORS_PER_SECTION: usize = 64;

/// Removes the node at `path` (`a.b[2].c`, as serde_path_to_error prints it).
fn remove(node: &mut Node, path: &str) -> bool {
    let mut segments: Vec<Segment<'_>> = Vec::new();
    for part in path.split('.') {
        let (key, indices) = part
            .split_once('[')
            .map_or((part, ""), |(k, rest)| (k, rest));
        if !key.is_empty() {
            segments.push(Segment::Key(key));
        }
        for index in indices.split('[').filter(|s| !s.is_empty()) {
            match index.trim_end_matches(']').parse() {
                Ok(i) => segments.push(Segment::Index(i)),
                Err(_) => return false,
            }
        }
    }
    let Some((last, parents)) = segments.split_last() else {
        return false;
    };
    let mut current = node;
    for segment in parents {
        let next = match (segment, current) {
            (Segment::Key(key), Node::Mapping(map)) => map
                .iter_mut()
                .find(|(k, _)| k.as_str() == *key)
                .map(|(_, v)| v),
            (Segment::Index(i), Node::Sequence(seq)) => seq.get_mut(*i),
            _ => None,
        };
        match next {
            Some(next) => current = next,
            None => return false,
        }
    }
    match (last, current) {
        (Segment::Key(key), Node::Mapping(map)) => {
            let before = map.len();
            map.retain(|k, _| k.as_str() != *key);
            map.len() < before
        }
        (Segment::Index(i), Node::Sequence(seq)) if *i < seq.len() => {
            seq.remove(*i);
            true
        }
        _ => false,
    }
}

enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

fn describe(error: &marked_yaml::FromNodeError) -> String {
    use marked_yaml::Error as E;
    match &**error {
        E::UnknownFieldError(field, expected, _) => {
            format!(
                "unknown key `{field}` (expected one of: {})",
                expected.join(", ")
            )
        }
        E::NotBoolean(_) => "expected a boolean (true or false)".to_owned(),
        E::IntegerParseFailure(e, _) => format!("expected an integer: {e}"),
        E::FloatParseFailure(e, _) => format!("expected a number: {e}"),
        E::Other(message, _) => lowercase_first(message),
    }
}

fn lowercase_first(message: &str) -> String {
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Deserializes every entry of a mapping section independently.
pub fn decode_map<T: DeserializeOwned>(
    node: &Node,
    path: &str,
    positions: &Positions,
    errors: &mut Vec<Diagnostic>,
) -> BTreeMap<String, T> {
    let mut out = BTreeMap::new();
    let Some(map) = expect_mapping(node, path, positions, errors) else {
        return out;
    };
    for (key, value) in map.iter() {
        let entry_path = join(path, key.as_str());
        if let Some(entry) = decode(value, &entry_path, positions, errors) {
            out.insert(key.as_str().to_owned(), entry);
        }
    }
    out
}

/// Deserializes every entry of a sequence section independently.
pub fn decode_seq<T: DeserializeOwned + Default>(
    node: &Node,
    path: &str,
    positions: &Positions,
    errors: &mut Vec<Diagnostic>,
) -> Vec<T> {
    let Some(seq) = node.as_sequence() else {
        errors.push(Diagnostic {
            position: positions.of(path),
            path: path.to_owned(),
            message: "expected a list".to_owned(),
        });
        return Vec::new();
    };
    seq.iter()
        .enumerate()
        .map(|(i, value)| {
            // A bad entry still takes its slot so later indices stay true to the file.
            decode(value, &format!("{path}[{i}]"), positions, errors).unwrap_or_default()
        })
        .collect()
}

/// `node` as a mapping, or an "expected a mapping" error at `path`.
pub fn expect_mapping<'a>(
    node: &'a Node,
    path: &str,
    positions: &Positions,
    errors: &mut Vec<Diagnostic>,
) -> Option<&'a MarkedMappingNode> {
    let map = node.as_mapping();
    if map.is_none() {
        errors.push(Diagnostic {
            position: positions.of(path),
            path: path.to_owned(),
            message: "expected a mapping".to_owned(),
        });
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("abc".to_owned()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_variables_and_escapes() {
        assert_eq!(expand("a ${TOKEN} b", &env).unwrap(), "a abc b");
        assert_eq!(expand("${TOKEN}${TOKEN}", &env).unwrap(), "abcabc");
        assert_eq!(expand("x$${TOKEN}", &env).unwrap(), "x${TOKEN}");
        assert_eq!(expand("cost $5", &env).unwrap(), "cost $5");
        assert_eq!(expand("${EMPTY}", &env).unwrap(), "");
        assert_eq!(expand("密码${TOKEN}结束", &env).unwrap(), "密码abc结束");
        assert_eq!(expand("${NOPE:-/}", &env).unwrap(), "/");
        assert_eq!(expand("${EMPTY:-/host}", &env).unwrap(), "/host");
        assert_eq!(expand("${TOKEN:-x}", &env).unwrap(), "abc");
        assert_eq!(expand("${NOPE:-}", &env).unwrap(), "");
    }

    #[test]
    fn reports_unset_and_malformed_variables() {
        assert!(
            expand("${NOPE}", &env)
                .unwrap_err()
                .contains("`NOPE` is not set")
        );
        assert!(
            expand("${TOKEN", &env)
                .unwrap_err()
                .contains("unterminated")
        );
        assert!(expand("${A-B}", &env).unwrap_err().contains("invalid"));
    }

    #[test]
    fn positions_fall_back_to_the_nearest_ancestor() {
        let doc = parse("a:\n  b:\n    c: 1\nlist:\n  - x: 1\n").unwrap();
        assert_eq!(doc.positions.of("a.b.c"), Position { line: 3, column: 5 });
        assert_eq!(doc.positions.of("a.b.zzz"), Position { line: 2, column: 3 });
        assert_eq!(
            doc.positions.of("list[0].x"),
            Position { line: 5, column: 5 }
        );
    }

    #[test]
    fn blank_file_is_an_empty_mapping() {
        assert!(parse("# nothing here\n").unwrap().root.is_empty());
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let error = parse("a: 1\na: 2\n").unwrap_err();
        assert!(error.message.contains("duplicate key `a`"), "{error:?}");
        assert_eq!(error.position.line, 2);
    }
}
