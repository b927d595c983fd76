//! The top-level modules of `src/` form no dependency cycle (ARCHITECTURE.md, "Module
//! dependencies").
//!
//! Reads the source tree, turns every path that names another top-level module —
//! `crate::x`, `crate::{x, y}`, or a `super::` chain climbing to the crate root — into an
//! edge, and fails naming the cycle and the line of each edge. Comments, string contents
//! and test code (`tests.rs` files and `#[cfg(test)] mod …` blocks) do not count: a test
//! may reach across modules without the shipped code depending on it.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// From a module to the modules it names, each with one place that names it.
type Graph = BTreeMap<String, BTreeMap<String, String>>;

#[test]
fn the_top_level_modules_form_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = graph_of(&src);
    // The reader works: it sees edges the code is known to have.
    for (from, to) in [("cli", "app"), ("http", "config"), ("notify", "outbox")] {
        assert!(
            graph.get(from).is_some_and(|edges| edges.contains_key(to)),
            "expected an edge {from} -> {to} in {graph:#?}"
        );
    }
    let back_arrows = edges_on_cycles(&graph);
    assert!(
        back_arrows.is_empty(),
        "these module dependencies lie on a cycle:\n  {}",
        back_arrows.join("\n  ")
    );
}

#[test]
fn the_checker_finds_a_cycle_through_every_kind_of_path() {
    let files = [
        ("a.rs", "use crate::{b::X, c};\nfn f() { crate::c::g() }\n"),
        (
            "b/mod.rs",
            "mod inner;\n// use crate::a;\nconst S: &str = \"crate::a\";\n",
        ),
        ("b/inner.rs", "use super::super::c::Y;\n"),
        (
            "c.rs",
            "pub fn g() { crate::a::h() }\n#[cfg(test)]\nmod tests {\n    use crate::b;\n}\n",
        ),
        ("d.rs", "#[cfg(test)]\nmod tests;\n"),
        ("d/tests.rs", "use crate::a;\n"),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let path = dir.path().join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
    let graph = graph_of(dir.path());
    let edges = |from: &str| -> Vec<&str> { graph[from].keys().map(String::as_str).collect() };
    assert_eq!(edges("a"), ["b", "c"]);
    assert_eq!(edges("b"), ["c"], "comments and strings are not edges");
    assert_eq!(edges("c"), ["a"], "test code is not an edge");
    assert!(edges("d").is_empty(), "tests.rs is test code");
    assert_eq!(
        edges_on_cycles(&graph),
        [
            "a -> b (src/a.rs:1)",
            "a -> c (src/a.rs:1)",
            "b -> c (src/b/inner.rs:1)",
            "c -> a (src/c.rs:1)",
        ]
    );
}

/// The dependency graph of the top-level modules under `src`.
fn graph_of(src: &Path) -> Graph {
    let mut graph = Graph::new();
    let mut modules = Vec::new();
    for path in entries(src) {
        let Some(name) = path.file_stem().map(|s| s.to_string_lossy().into_owned()) else {
            continue;
        };
        let is_module = path.is_dir() || path.extension().is_some_and(|e| e == "rs");
        if is_module && name != "main" && name != "lib" && !modules.contains(&name) {
            modules.push(name);
        }
    }
    for module in &modules {
        let edges = graph.entry(module.clone()).or_default();
        for file in files_of(src, module) {
            let relative = file.strip_prefix(src).unwrap_or(&file).to_path_buf();
            let text = fs::read_to_string(&file)
                .unwrap_or_else(|error| panic!("reading {}: {error}", file.display()));
            for (line, target) in references(&relative, &text) {
                if &target != module && modules.contains(&target) {
                    let place = format!("src/{}:{line}", relative.display());
                    edges.entry(target).or_insert(place);
                }
            }
        }
    }
    graph
}

/// The paths in a directory.
fn entries(dir: &Path) -> Vec<PathBuf> {
    let listing =
        fs::read_dir(dir).unwrap_or_else(|error| panic!("listing {}: {error}", dir.display()));
    listing
        .map(|entry| {
            entry
                .unwrap_or_else(|error| panic!("listing {}: {error}", dir.display()))
                .path()
        })
        .collect()
}

/// The non-test source files of a top-level module.
fn files_of(src: &Path, module: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![src.join(format!("{module}.rs")), src.join(module)];
    while let Some(path) = pending.pop() {
        if path.is_dir() {
            pending.extend(entries(&path));
        } else if path.is_file()
            && path.extension().is_some_and(|e| e == "rs")
            && path.file_name().is_some_and(|n| n != "tests.rs")
        {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// Every top-level module a file's code names, with its line.
fn references(relative: &Path, text: &str) -> Vec<(usize, String)> {
    let code = without_test_modules(&code_only(text));
    let tokens = tokens(&code);
    let here = module_path(relative);
    let mut found = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let (line, ref word) = tokens[i];
        let root_at = if word == "crate" || word == "$crate" {
            Some(i + 1)
        } else if word == "super" && (i == 0 || tokens[i - 1].1 != "::") {
            climb_to_root(&tokens, i, here.len())
        } else {
            None
        };
        if let Some(at) = root_at.filter(|&at| token(&tokens, at) == "::") {
            if token(&tokens, at + 1) == "{" {
                found.extend(group_heads(&tokens, at + 2).into_iter().map(|m| (line, m)));
            } else {
                found.push((line, token(&tokens, at + 1).to_owned()));
            }
        }
        i += 1;
    }
    found
}

fn token(tokens: &[(usize, String)], at: usize) -> &str {
    tokens.get(at).map_or("", |(_, t)| t.as_str())
}

/// For `super::super::…` starting at `start` in a file `depth` modules deep: the index
/// just after the last `super` if the chain reaches the crate root.
fn climb_to_root(tokens: &[(usize, String)], start: usize, depth: usize) -> Option<usize> {
    let mut at = start;
    let mut climbed = 0;
    while token(tokens, at) == "super" {
        climbed += 1;
        if climbed == depth {
            return Some(at + 1);
        }
        if token(tokens, at + 1) != "::" {
            return None;
        }
        at += 2;
    }
    None
}

/// The first name of each element of a `{a::b, c, d::{e, f}}` group starting at `at`.
fn group_heads(tokens: &[(usize, String)], mut at: usize) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 1;
    let mut expect_head = true;
    while depth > 0 && at < tokens.len() {
        match token(tokens, at) {
            "{" => depth += 1,
            "}" => depth -= 1,
            "," if depth == 1 => expect_head = true,
            word if expect_head && depth == 1 => {
                heads.push(word.to_owned());
                expect_head = false;
            }
            _ => {}
        }
        at += 1;
    }
    heads
}

/// The module path of a file relative to `src`: `a/b/mod.rs` and `a/b.rs` are `[a, b]`.
fn module_path(relative: &Path) -> Vec<String> {
    let mut path: Vec<String> = relative
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if path.last().is_some_and(|last| last == "mod") {
        path.pop();
    }
    path
}

/// Identifiers (with a leading `$` kept), `::` and single punctuation, each with its line.
fn tokens(code: &str) -> Vec<(usize, String)> {
    let bytes = code.as_bytes();
    let mut tokens = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        if byte == b'\n' {
            line += 1;
            i += 1;
        } else if byte.is_ascii_whitespace() {
            i += 1;
        } else if byte == b'$' || byte == b'_' || byte.is_ascii_alphanumeric() {
            let start = i;
            i += 1;
            while i < bytes.len() && (bytes[i] == b'_' || bytes[i].is_ascii_alphanumeric()) {
                i += 1;
            }
            tokens.push((line, String::from_utf8_lossy(&bytes[start..i]).into_owned()));
        } else if bytes[i..].starts_with(b"::") {
            tokens.push((line, "::".to_owned()));
            i += 2;
        } else {
            tokens.push((line, char::from(byte).to_string()));
            i += 1;
        }
    }
    tokens
}

/// The text with comments removed and the contents of string and character literals
/// blanked; newlines and indentation are kept.
fn code_only(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let rest = &bytes[i..];
        if rest.starts_with(b"//") {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
        } else if rest.starts_with(b"/*") {
            let mut depth = 0;
            while i < bytes.len() {
                if bytes[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if bytes[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    keep_newline(&mut out, bytes[i]);
                    i += 1;
                }
            }
        } else if let Some(hashes) = raw_string_start(rest) {
            let close: Vec<u8> = std::iter::once(b'"').chain(vec![b'#'; hashes]).collect();
            i += hashes + 2 + usize::from(rest[0] == b'b');
            while i < bytes.len() && !bytes[i..].starts_with(&close) {
                keep_newline(&mut out, bytes[i]);
                i += 1;
            }
            out.extend_from_slice(b"\"\"");
            i += close.len();
        } else if bytes[i] == b'"' {
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' {
                keep_newline(&mut out, bytes[i]);
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            out.extend_from_slice(b"\"\"");
            i += 1;
        } else if bytes[i] == b'\'' && rest.get(1) == Some(&b'\\') {
            // An escaped character literal: skip to its closing quote.
            i += 2;
            while i < bytes.len() && bytes[i] != b'\'' {
                i += 1;
            }
            i += 1;
        } else if bytes[i] == b'\'' && rest.get(2) == Some(&b'\'') {
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn keep_newline(out: &mut Vec<u8>, byte: u8) {
    if byte == b'\n' {
        out.push(b'\n');
    }
}

/// `r"`, `r#"`, `br##"` …: the number of `#`s.
fn raw_string_start(rest: &[u8]) -> Option<usize> {
    let after_b = if rest.first() == Some(&b'b') {
        &rest[1..]
    } else {
        rest
    };
    let after_r = after_b.strip_prefix(b"r")?;
    let hashes = after_r.iter().take_while(|&&b| b == b'#').count();
    (after_r.get(hashes) == Some(&b'"')).then_some(hashes)
}

/// The code without `#[cfg(test)] mod name { … }` blocks (rustfmt-formatted: the block
/// ends at the first later line that is its indentation followed by `}`).
fn without_test_modules(code: &str) -> String {
    let lines: Vec<&str> = code.lines().collect();
    let mut kept = Vec::with_capacity(lines.len());
    let mut i = 0;
    while i < lines.len() {
        let next = lines.get(i + 1).map_or("", |l| l.trim_start());
        if lines[i].trim() == "#[cfg(test)]" && next.starts_with("mod ") && next.ends_with('{') {
            let indent = lines[i + 1].len() - next.len();
            let end = lines
                .iter()
                .skip(i + 2)
                .position(|l| l.len() == indent + 1 && l.ends_with('}'))
                .map_or(lines.len(), |offset| i + 2 + offset);
            // Keep line numbers: blank the block.
            kept.extend(std::iter::repeat_n("", end + 1 - i));
            i = end + 1;
        } else {
            kept.push(lines[i]);
            i += 1;
        }
    }
    kept.join("\n")
}

/// Every edge that lies on a cycle (its target reaches back to its source), as
/// "from -> to (where)".
fn edges_on_cycles(graph: &Graph) -> Vec<String> {
    let mut found = Vec::new();
    for (from, edges) in graph {
        for (to, place) in edges {
            if reaches(graph, to, from) {
                found.push(format!("{from} -> {to} ({place})"));
            }
        }
    }
    found
}

fn reaches(graph: &Graph, from: &str, to: &str) -> bool {
    let mut seen = vec![from.to_owned()];
    let mut pending = vec![from.to_owned()];
    while let Some(module) = pending.pop() {
        if module == to {
            return true;
        }
        for next in graph
            .get(&module)
            .into_iter()
            .flat_map(|edges| edges.keys())
        {
            if !seen.contains(next) {
                seen.push(next.clone());
                pending.push(next.clone());
            }
        }
    }
    false
}
