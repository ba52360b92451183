//! Write payloads as they travel through the queue: plain normalized lines, or — as the ingest
//! writes them — one gzip member of those lines behind a small frame that carries their count.
//!
//! Compressing once at ingest (ISA-L's igzip, level 1) means the drains neither count lines nor
//! compress per cluster: a batch for a gzip-speaking cluster is the concatenation of its records'
//! members (influxd reads concatenated members as one body), and the queue stores, syncs and
//! reads about a fifth of the bytes. Plain payloads (earlier versions, dead-letter replays, tests)
//! are read as before.
//!
//! Frame: [`FRAME_MAGIC`] (4 bytes), the line count (`u32`, little-endian), one gzip member.
//! The magic starts with a NUL byte, which a plain payload never starts with: its first line
//! starts with a measurement, and the scanner skips leading NULs before it.

use bytes::{BufMut, Bytes, BytesMut};

/// First bytes of a framed payload.
pub const FRAME_MAGIC: [u8; 4] = *b"\0lpz";
const HEADER: usize = 8;

/// A write payload, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// Normalized lines as written.
    Plain(Bytes),
    /// One gzip member of `lines` normalized lines.
    Gzip {
        /// Lines in the member.
        lines: usize,
        /// The member (a complete gzip stream).
        member: Bytes,
    },
}

/// Frames `lines` (normalized, `count` of them) as one gzip member.
pub fn pack(lines: &[u8], count: usize) -> Bytes {
    let member = crate::gzip::compress(lines);
    let mut out = BytesMut::with_capacity(HEADER + member.len());
    out.put_slice(&FRAME_MAGIC);
    out.put_u32_le(u32::try_from(count).unwrap_or(u32::MAX));
    out.put_slice(&member);
    out.freeze()
}

/// Reads a payload: framed or plain.
pub fn read(payload: &Bytes) -> Payload {
    if payload.len() >= HEADER && payload[..4] == FRAME_MAGIC {
        let mut n = [0u8; 4];
        n.copy_from_slice(&payload[4..HEADER]);
        Payload::Gzip {
            lines: u32::from_le_bytes(n) as usize,
            member: payload.slice(HEADER..),
        }
    } else {
        Payload::Plain(payload.clone())
    }
}

/// The normalized lines of a payload, decompressed if framed.
///
/// # Errors
/// The reason, when a framed payload's member does not decompress.
pub fn plain_lines(payload: &Bytes) -> Result<Bytes, String> {
    match read(payload) {
        Payload::Plain(lines) => Ok(lines),
        Payload::Gzip { member, .. } => crate::gzip::decompress(&member),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framed_payloads_round_trip_and_plain_ones_stay_plain() {
        let lines = b"cpu,host=a v=1 1\nmem free=2i 2\n".repeat(1000);
        let framed = pack(&lines, 2000);
        assert!(framed.len() < lines.len() / 10, "{}", framed.len());
        match read(&framed) {
            Payload::Gzip { lines: n, member } => {
                assert_eq!(n, 2000);
                assert_eq!(crate::gzip::decompress(&member).unwrap(), lines);
            }
            Payload::Plain(_) => panic!("framed payload read as plain"),
        }
        assert_eq!(plain_lines(&framed).unwrap(), lines);
        let plain = Bytes::from_static(b"cpu v=1 1\n");
        assert_eq!(read(&plain), Payload::Plain(plain.clone()));
        assert_eq!(plain_lines(&plain).unwrap(), plain);
        // Too short to be a frame, and empty.
        assert_eq!(
            read(&Bytes::from_static(b"\0lpz")),
            Payload::Plain(Bytes::from_static(b"\0lpz"))
        );
        assert_eq!(read(&Bytes::new()), Payload::Plain(Bytes::new()));
    }

    #[test]
    fn members_concatenate_into_one_body() {
        let a = pack(b"a v=1 1\n", 1);
        let b = pack(b"b v=2 2\n", 1);
        let mut body = Vec::new();
        for p in [&a, &b] {
            let Payload::Gzip { member, .. } = read(p) else {
                panic!("not framed")
            };
            body.extend_from_slice(&member);
        }
        assert_eq!(
            &crate::gzip::decompress(&body).unwrap()[..],
            b"a v=1 1\nb v=2 2\n"
        );
    }

    #[test]
    fn a_corrupt_member_is_an_error() {
        let mut framed = pack(&b"cpu v=1 1\n".repeat(100), 100).to_vec();
        let at = framed.len() - 6;
        framed[at] ^= 0xff;
        assert!(plain_lines(&Bytes::from(framed.clone())).is_err());
        framed.truncate(framed.len() / 2);
        assert!(plain_lines(&Bytes::from(framed)).is_err());
    }
}
