//! A gzip body assembled from separately compressed parts, so that the large, rarely
//! changing part (the SQL series) is compressed once per snapshot and the small part
//! that changes every second (host, relay and lookout's own metrics) alone per refresh.
//!
//! This is the technique of zlib's `gzjoin`: each part is a raw deflate stream; all but
//! the last end with a sync flush (byte-aligned, no final block), the last with a final
//! block; one gzip header goes in front, and the trailer's CRC-32 is the parts' CRCs
//! combined, its length their sum. The result is a single-member gzip stream any
//! decoder reads.

use std::io::{self, Write};

use bytes::Bytes;
use flate2::write::DeflateEncoder;
use flate2::{Compression, Crc, CrcWriter};

/// Gzip header: deflate, no name or time, unknown OS (RFC 1952, section 2.3).
const HEADER: [u8; 10] = [0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0xff];

/// One compressed part and the CRC-32 and length of its plain text. (The SQL segment
/// cache keeps plain text in the same shape, with `crc` unused.)
#[derive(Debug, Default)]
pub struct Part {
    /// Raw deflate data.
    pub bytes: Bytes,
    pub crc: Crc,
}

/// Compresses what is written into it into a [`Part`].
pub struct PartWriter {
    inner: CrcWriter<DeflateEncoder<Vec<u8>>>,
}

impl std::fmt::Debug for PartWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartWriter").finish_non_exhaustive()
    }
}

impl Default for PartWriter {
    fn default() -> Self {
        Self {
            inner: CrcWriter::new(DeflateEncoder::new(Vec::new(), Compression::fast())),
        }
    }
}

impl Write for PartWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl PartWriter {
    /// A part that more parts may follow: ends with a sync flush.
    pub fn middle(mut self) -> io::Result<Part> {
        self.inner.flush()?;
        let crc = crc_of(&self.inner);
        let bytes = std::mem::take(self.inner.get_mut().get_mut());
        Ok(Part {
            bytes: Bytes::from(bytes),
            crc,
        })
    }

    /// The part that ends the stream: ends with the final block.
    pub fn last(self) -> io::Result<Part> {
        let crc = crc_of(&self.inner);
        let bytes = self.inner.into_inner().finish()?;
        Ok(Part {
            bytes: Bytes::from(bytes),
            crc,
        })
    }
}

fn crc_of<W: Write>(writer: &CrcWriter<W>) -> Crc {
    let mut crc = Crc::new();
    crc.combine(writer.crc());
    crc
}

/// The chunks of one gzip member: header, the parts in order (only the last made by
/// [`PartWriter::last`]), trailer.
pub fn member(parts: &[&Part]) -> Vec<Bytes> {
    let mut crc = Crc::new();
    let mut chunks = Vec::with_capacity(parts.len() + 2);
    chunks.push(Bytes::from_static(&HEADER));
    for part in parts {
        crc.combine(&part.crc);
        if !part.bytes.is_empty() {
            chunks.push(part.bytes.clone());
        }
    }
    let mut trailer = Vec::with_capacity(8);
    trailer.extend_from_slice(&crc.sum().to_le_bytes());
    trailer.extend_from_slice(&crc.amount().to_le_bytes());
    chunks.push(Bytes::from(trailer));
    chunks
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    fn part(text: &str, last: bool) -> Part {
        let mut writer = PartWriter::default();
        writer.write_all(text.as_bytes()).unwrap();
        if last { writer.last() } else { writer.middle() }.unwrap()
    }

    #[test]
    fn joined_parts_are_one_gzip_stream() {
        let big: String = (0..20_000)
            .map(|i| format!("shop_wallet{{wid=\"w{i}\"}} {i}.5\n"))
            .collect();
        let parts = [
            part(&big, false),
            part("", false),
            part("lookout_up 1\n# EOF\n", true),
        ];
        let chunks = member(&parts.iter().collect::<Vec<_>>());
        let body: Vec<u8> = chunks.concat();
        let mut plain = String::new();
        let mut decoder = flate2::read::MultiGzDecoder::new(body.as_slice());
        decoder.read_to_string(&mut plain).unwrap();
        assert_eq!(plain, format!("{big}lookout_up 1\n# EOF\n"));
        // One member, checked by the strict single-member decoder too (CRC and length).
        let mut strict = Vec::new();
        flate2::read::GzDecoder::new(body.as_slice())
            .read_to_end(&mut strict)
            .unwrap();
        assert_eq!(strict.len(), plain.len());
        assert!(
            body.len() < big.len() / 4,
            "{} of {}",
            body.len(),
            big.len()
        );
    }

    #[test]
    fn a_damaged_crc_is_refused() {
        let parts = [part("a 1\n", false), part("b 2\n", true)];
        let mut body: Vec<u8> = member(&parts.iter().collect::<Vec<_>>()).concat();
        let at = body.len() - 8;
        body[at] ^= 1;
        let mut out = Vec::new();
        assert!(
            flate2::read::GzDecoder::new(body.as_slice())
                .read_to_end(&mut out)
                .is_err()
        );
    }
}
