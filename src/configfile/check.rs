//! The [`Checker`]: validates one value at a time against the file's positions and
//! collects every problem, so a configuration's errors are reported all at once.

use std::path::Path;
use std::time::Duration;

use regex::Regex;

use super::bounds::{self, Span};
use super::yaml::{Positions, join};
use super::{Diagnostic, Secret, parse_bytes, parse_duration};

/// Collects positioned errors while values are validated. Every helper reports a bad
/// value at its key and returns a usable default (or `None`), so validation goes on.
pub struct Checker<'a> {
    positions: &'a Positions,
    read_file: &'a dyn Fn(&Path) -> std::io::Result<String>,
    errors: Vec<Diagnostic>,
}

impl<'a> Checker<'a> {
    /// `read_file` reads `*_file` secrets (the only outside access validation has).
    pub fn new(
        positions: &'a Positions,
        read_file: &'a dyn Fn(&Path) -> std::io::Result<String>,
    ) -> Self {
        Self {
            positions,
            read_file,
            errors: Vec::new(),
        }
    }

    /// The errors found so far.
    pub fn finish(self) -> Vec<Diagnostic> {
        self.errors
    }

    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    pub fn error(&mut self, path: &str, message: impl Into<String>) {
        self.errors.push(Diagnostic {
            position: self.positions.of(path),
            path: path.to_owned(),
            message: message.into(),
        });
    }

    pub fn required<'s>(
        &mut self,
        path: &str,
        key: &str,
        value: Option<&'s str>,
    ) -> Option<&'s str> {
        match value {
            Some(v) if !v.trim().is_empty() => Some(v),
            _ => {
                self.error(&join(path, key), format!("missing key `{key}`"));
                None
            }
        }
    }

    pub fn url(&mut self, path: &str, key: &str, value: Option<&str>) -> Option<Secret> {
        let value = self.required(path, key, value)?;
        let ok = value.split_once("://").is_some_and(|(scheme, rest)| {
            matches!(scheme, "http" | "https" | "socks5") && !rest.is_empty()
        });
        if !ok {
            // The URL may carry a token: do not echo it.
            self.error(&join(path, key), "expected an http:// or https:// URL");
            return None;
        }
        Some(Secret::new(value))
    }

    /// A secret given inline as `key` or read from the file named by `key_file`.
    pub fn secret(
        &mut self,
        path: &str,
        key: &str,
        value: Option<&String>,
        file: Option<&String>,
    ) -> Option<Secret> {
        match (value, file) {
            (Some(_), Some(_)) => {
                self.error(
                    &join(path, key),
                    format!("set either `{key}` or `{key}_file`, not both"),
                );
                None
            }
            (Some(value), None) => Some(Secret::new(value.as_str())),
            (None, Some(file)) => {
                let file_key = join(path, &format!("{key}_file"));
                match (self.read_file)(Path::new(file)) {
                    Ok(content) => Some(Secret::new(content.trim_end_matches(['\n', '\r']))),
                    Err(error) => {
                        self.error(&file_key, format!("cannot read `{file}`: {error}"));
                        None
                    }
                }
            }
            (None, None) => None,
        }
    }

    /// The contents of the file `file` named at `path.key` (a CA certificate), read
    /// through the sources validation was given.
    pub fn file(&mut self, path: &str, key: &str, file: &str) -> Option<String> {
        match (self.read_file)(Path::new(file)) {
            Ok(content) => Some(content),
            Err(error) => {
                self.error(&join(path, key), format!("cannot read `{file}`: {error}"));
                None
            }
        }
    }

    /// A duration within `span`; on any error, `default` (itself within `span`).
    pub fn duration_in(
        &mut self,
        path: &str,
        value: Option<&str>,
        default: Duration,
        span: Span,
    ) -> Duration {
        let Some(text) = value else {
            return default;
        };
        match parse_duration(text).and_then(|d| span.check(d, text.trim()).map(|()| d)) {
            Ok(duration) => duration,
            Err(message) => {
                self.error(path, message);
                default
            }
        }
    }

    /// Reports `value` when it is outside `range`.
    pub fn number<T>(&mut self, path: &str, range: &std::ops::RangeInclusive<T>, value: T)
    where
        T: PartialOrd + std::fmt::Display + Copy,
    {
        if let Err(message) = bounds::check_number(range, value) {
            self.error(path, message);
        }
    }

    /// A size within `range`; on any error, `default`.
    pub fn bytes(
        &mut self,
        path: &str,
        value: Option<&str>,
        default: usize,
        range: &std::ops::RangeInclusive<usize>,
    ) -> usize {
        let Some(text) = value else {
            return default;
        };
        let checked = parse_bytes(text).and_then(|n| {
            bounds::check_number(range, n)
                .map(|()| n)
                .map_err(|message| format!("{message} bytes"))
        });
        checked.unwrap_or_else(|message| {
            self.error(path, message);
            default
        })
    }

    pub fn regex(&mut self, path: &str, pattern: &str) -> Regex {
        Regex::new(pattern).unwrap_or_else(|error| {
            self.error(path, format!("invalid regular expression: {error}"));
            Regex::new("$^").unwrap_or_else(|_| unreachable!("the never-matching regex is valid"))
        })
    }
}
