//! Reading the host's small virtual files into one buffer reused across collections, so
//! a collection does not allocate a new string per file.
//!
//! `std::fs::read` asks for the file's size (`statx`, `lseek`) before reading; procfs and
//! sysfs report 0 or 4096 whatever the content, so those calls buy nothing. Here a file
//! costs `openat`, `read` until end of file, `close` — and a sysfs attribute (at most one
//! page) a single `read`.

use std::fs::File;
use std::io::{ErrorKind, Read as _};
use std::path::Path;

use super::Error;

/// A reusable read buffer; hand out one `&str` at a time.
#[derive(Debug, Default)]
pub(crate) struct Reader {
    bytes: Vec<u8>,
    lossy: String,
}

impl Reader {
    pub(crate) fn new() -> Self {
        Self {
            bytes: Vec::with_capacity(64 * 1024),
            lossy: String::new(),
        }
    }

    /// The whole file; bytes that are not UTF-8 (a mount point, an interface alias)
    /// become U+FFFD.
    pub(crate) fn read(&mut self, path: &Path) -> Result<&str, Error> {
        self.fill(path, false).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        Ok(self.text())
    }

    /// Reads `path` into `bytes`: until end of file, or with `one_read` a single read
    /// (sysfs serves an attribute, at most a page, in one).
    fn fill(&mut self, path: &Path, one_read: bool) -> std::io::Result<()> {
        // Zeroed before each read (no unsafe): a page for an attribute, more for tables.
        let chunk = if one_read { 4096 } else { 16 * 1024 };
        self.bytes.clear();
        let mut file = File::open(path)?;
        loop {
            let start = self.bytes.len();
            self.bytes.resize(start + chunk, 0);
            let result = file.read(self.bytes.get_mut(start..).unwrap_or_default());
            let read = *result.as_ref().unwrap_or(&0);
            self.bytes.truncate(start + read);
            match result {
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
                Ok(0) => return Ok(()),
                Ok(_) if one_read => return Ok(()),
                Ok(_) => {}
            }
        }
    }

    fn text(&mut self) -> &str {
        match std::str::from_utf8(&self.bytes) {
            Ok(text) => text,
            Err(_) => {
                self.lossy = String::from_utf8_lossy(&self.bytes).into_owned();
                &self.lossy
            }
        }
    }

    /// A one-value attribute file (sysfs, `/proc/sys`), without the trailing newline.
    pub(crate) fn value(&mut self, path: &Path) -> Result<&str, Error> {
        self.fill(path, true).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        Ok(self.text().trim())
    }

    /// A one-number attribute file; `None` when it cannot be read or parsed (sysfs
    /// answers `EINVAL` for the carrier of a device that is down).
    pub(crate) fn number(&mut self, path: &Path) -> Option<f64> {
        parse_number(self.value(path).ok()?)
    }
}

/// A decimal or `0x` hexadecimal integer, or a float.
pub(crate) fn parse_number(text: &str) -> Option<f64> {
    if let Some(hex) = text.strip_prefix("0x") {
        return u64::from_str_radix(hex, 16).ok().map(|n| n as f64);
    }
    text.parse::<i64>()
        .map(|n| n as f64)
        .or_else(|_| text.parse::<f64>())
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_reuses_the_buffer() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::write(&a, "a longer first file\n").unwrap();
        std::fs::write(&b, b"0x1003\n").unwrap();
        let mut reader = Reader::new();
        assert_eq!(reader.read(&a).unwrap(), "a longer first file\n");
        assert_eq!(reader.value(&b).unwrap(), "0x1003");
        assert_eq!(reader.number(&b), Some(4099.0));
        assert!(reader.read(&dir.path().join("missing")).is_err());
        // Larger than one chunk: read to the end.
        let big = "x".repeat(40_000);
        std::fs::write(&a, &big).unwrap();
        assert_eq!(reader.read(&a).unwrap(), big);
        std::fs::write(&a, "").unwrap();
        assert_eq!(reader.read(&a).unwrap(), "");
        assert_eq!(reader.value(&a).unwrap(), "");
        std::fs::write(&a, b"/mnt/\xff\n").unwrap();
        assert_eq!(reader.value(&a).unwrap(), "/mnt/\u{fffd}");
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_number("-1"), Some(-1.0));
        assert_eq!(parse_number("1500"), Some(1500.0));
        assert_eq!(parse_number("0x0"), Some(0.0));
        assert_eq!(parse_number("0.5"), Some(0.5));
        assert_eq!(parse_number("up"), None);
        assert_eq!(parse_number(""), None);
    }
}
