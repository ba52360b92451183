//! Request bodies: `ingest::body::gunzip` and `ingest::body::read_raw`.
//!
//! Input layout: byte 0 picks the mode, bytes 1..4 the limit (`max_bytes`, little-endian, up to
//! 16 MiB), the rest is the mode's payload.
//! - mode 0: the payload is a `Content-Encoding: gzip` body as received;
//! - mode 1: the payload is `[members, repeat lo, repeat hi, damage, pos lo, pos hi, byte]` then
//!   plain data: the data, repeated, is gzipped into 1-4 members (levels and header fields
//!   vary), then the damage is applied (none, truncate, flip a byte, append or insert bytes);
//! - mode 2: the payload describes a raw body in frames for `read_raw`: a content-length mode
//!   byte and three length bytes, then frames (`n` then `n` bytes; 0xfe a connection error, 0xfd
//!   a trailers frame).
//!
//! Checked: no panic; the decompressed output never exceeds the limit; `gunzip` agrees with an
//! independent RFC 1952 decoder (own header and trailer parsing and CRC-32, `miniz_oxide` for
//! inflate rather than flate2's zlib-rs): valid bodies decode to exactly their data, corrupt
//! ones are `BadBody` with Go's wording (`EOF` for an empty body, `gzip: invalid header` for a
//! bad magic, `gzip: ...` otherwise), bodies whose output passes the limit before any fault are
//! `BodyTooLarge` (or `BadBody` if a fault follows); an intact body built in mode 1 decodes to
//! its data, or is `BodyTooLarge` when the data is larger than the limit. `read_raw` returns exactly the body when it fits,
//! `BodyTooLarge` when the content length or the bytes read pass the limit, `BadBody` when the
//! connection fails first.

#![no_main]

use std::collections::VecDeque;
use std::future::Future as _;
use std::io::Write as _;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use fluxroute::ingest::body::{gunzip, read_raw};
use fluxroute::ingest::error::ApiError;
use http_body::Frame;
use libfuzzer_sys::fuzz_target;
use miniz_oxide::inflate::core::decompress;
use miniz_oxide::inflate::core::inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF;
use miniz_oxide::inflate::core::DecompressorOxide;
use miniz_oxide::inflate::TINFLStatus;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let max = usize::from(data[1]) | usize::from(data[2]) << 8 | usize::from(data[3]) << 16;
    let payload = &data[4..];
    match data[0] % 3 {
        0 => check_gunzip(payload, max),
        1 => check_built(payload, max),
        _ => check_read_raw(payload, max),
    }
});

/// What an RFC 1952 decoder makes of a body.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Valid; the decompressed bytes (at most the limit).
    Data(Vec<u8>),
    /// The output passed the limit before any error was found.
    TooLarge,
    /// Not a valid gzip body; `produced` bytes came out before the fault was found.
    Corrupt { produced: usize },
}

fn check_gunzip(raw: &[u8], max: usize) {
    let want = reference_gunzip(raw, max);
    let got = gunzip(raw, max);
    match (&got, &want) {
        (Ok(out), Verdict::Data(data)) if out[..] == data[..] => {}
        (Err(ApiError::BodyTooLarge), Verdict::TooLarge) => {}
        // Corrupt, but more than the limit came out before the fault: decoders notice faults at
        // slightly different points (zlib-rs may stop at a full output buffer first, miniz_oxide
        // at the end of the input first), so either refusal is right.
        (Err(ApiError::BodyTooLarge), Verdict::Corrupt { produced }) if *produced > max => {}
        (Err(ApiError::BadBody(message)), Verdict::Corrupt { .. } | Verdict::TooLarge) => {
            let expected_prefix = if raw.is_empty() {
                "EOF"
            } else if raw.len() < 2 || raw[..2] != [0x1f, 0x8b] {
                "gzip: invalid header"
            } else {
                "gzip: "
            };
            assert!(
                message.starts_with(expected_prefix),
                "corrupt body reported as {message:?}, expected {expected_prefix:?}..."
            );
        }
        _ => panic!(
            "gunzip (limit {max}) returned {}, the reference decoder {}",
            describe(&got),
            match &want {
                Verdict::Data(d) => format!("{} bytes", d.len()),
                other => format!("{other:?}"),
            }
        ),
    }
    if let Ok(out) = &got {
        assert!(out.len() <= max, "{} bytes out, limit {max}", out.len());
    }
}

fn describe(r: &Result<Bytes, ApiError>) -> String {
    match r {
        Ok(b) => format!("{} bytes", b.len()),
        Err(e) => format!("{e:?}"),
    }
}

fn check_built(payload: &[u8], max: usize) {
    let (header, plain) = payload.split_at(payload.len().min(7));
    let h = |i: usize| header.get(i).copied().unwrap_or(0);
    let members = 1 + usize::from(h(0) % 4);
    let repeat = 1 + (usize::from(h(1)) | usize::from(h(2)) << 8) % 512;
    let (damage, pos, byte) = (h(3) % 5, usize::from(h(4)) | usize::from(h(5)) << 8, h(6));

    // At most 256 KiB of data keeps the run fast (level 9 is slow); bombs still pass small
    // limits by far.
    let data = plain.repeat(repeat.min((256 << 10) / plain.len().max(1)).max(1));
    let mut body = Vec::new();
    let chunk = data.len().div_ceil(members).max(1);
    let mut parts: Vec<&[u8]> = data.chunks(chunk).collect();
    if parts.is_empty() {
        parts.push(&[]);
    }
    for (i, part) in parts.iter().enumerate() {
        let level = [0, 1, 6, 9][(usize::from(h(0) >> 2) + i) % 4];
        let mut builder = flate2::GzBuilder::new();
        if h(0) & 0x40 != 0 {
            builder = builder
                .filename("body.lp")
                .comment("fuzz")
                .extra(vec![1, 2, 3]);
        }
        let mut encoder = builder.write(Vec::new(), flate2::Compression::new(level));
        encoder.write_all(part).expect("writing to a Vec");
        body.extend(encoder.finish().expect("writing to a Vec"));
    }

    if damage == 0 {
        // Intact: exactly the data, or too large.
        let got = gunzip(&body, max);
        if data.len() <= max {
            assert!(
                matches!(&got, Ok(out) if out[..] == data[..]),
                "intact body of {} bytes (limit {max}): {}",
                data.len(),
                describe(&got)
            );
            assert_eq!(reference_gunzip(&body, max), Verdict::Data(data));
        } else {
            assert_eq!(got, Err(ApiError::BodyTooLarge), "{} bytes", data.len());
        }
        return;
    }
    match damage {
        1 => body.truncate(pos % (body.len() + 1)),
        2 => {
            let at = pos % body.len();
            body[at] ^= byte | 1;
        }
        3 => body.extend(std::iter::repeat_n(byte, 1 + pos % 16)),
        _ => body.insert(pos % (body.len() + 1), byte),
    }
    check_gunzip(&body, max);
}

/// An independent RFC 1952 decoder (multi-member), stopping once the output passes `max`.
///
/// Inflate is miniz_oxide's core decoder over one growing output buffer per member (its
/// streaming API, with a ring buffer, lets a distance reach before the start of the output,
/// which zlib and Go refuse).
fn reference_gunzip(raw: &[u8], max: usize) -> Verdict {
    let mut out = Vec::new();
    let mut rest = raw;
    loop {
        let Some(start) = header_len(rest) else {
            return Verdict::Corrupt {
                produced: out.len(),
            };
        };
        let member = &rest[start..];
        // Room for one byte past the limit tells "too large" apart.
        let room = max - out.len() + 1;
        let mut decoder = DecompressorOxide::new();
        let mut buf = vec![0u8; room.min(64 * 1024)];
        let (mut read, mut written) = (0, 0);
        loop {
            let (status, r, w) = decompress(
                &mut decoder,
                &member[read..],
                &mut buf,
                written,
                TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF,
            );
            read += r;
            written += w;
            match status {
                TINFLStatus::Done => break,
                TINFLStatus::HasMoreOutput if buf.len() < room => {
                    buf.resize((buf.len() * 2).min(room), 0);
                }
                TINFLStatus::HasMoreOutput => return Verdict::TooLarge,
                _ => {
                    return Verdict::Corrupt {
                        produced: out.len() + written,
                    }
                }
            }
        }
        if written >= room {
            return Verdict::TooLarge;
        }
        let data = &buf[..written];
        out.extend_from_slice(data);
        let trailer = &member[read..];
        let le = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        if trailer.len() < 8
            || le(&trailer[..4]) != crc32(data)
            || le(&trailer[4..8]) != data.len() as u32
        {
            return Verdict::Corrupt {
                produced: out.len(),
            };
        }
        rest = &trailer[8..];
        if rest.is_empty() {
            return Verdict::Data(out);
        }
    }
}

/// Length of the member header at the start of `b` (magic, deflate, optional extra, name,
/// comment and header CRC), or `None` when it is not a valid header.
///
/// Reserved flag bits make a header invalid, as RFC 1952 asks and flate2 does. (Go's reader,
/// and so influxd, ignores them, and refuses names and comments of 512 bytes or more: two
/// known differences on bodies no client sends.)
fn header_len(b: &[u8]) -> Option<usize> {
    const FHCRC: u8 = 2;
    const FEXTRA: u8 = 4;
    const FNAME: u8 = 8;
    const FCOMMENT: u8 = 16;
    const RESERVED: u8 = 0xe0;
    if b.len() < 10 || b[0] != 0x1f || b[1] != 0x8b || b[2] != 8 || b[3] & RESERVED != 0 {
        return None;
    }
    let flags = b[3];
    let mut at = 10;
    if flags & FEXTRA != 0 {
        let len = usize::from(*b.get(at)?) | usize::from(*b.get(at + 1)?) << 8;
        at += 2 + len;
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            at += b.get(at..)?.iter().position(|&c| c == 0)? + 1;
        }
    }
    if flags & FHCRC != 0 {
        let stored = u16::from(*b.get(at)?) | u16::from(*b.get(at + 1)?) << 8;
        if stored != (crc32(&b[..at]) & 0xffff) as u16 {
            return None;
        }
        at += 2;
    }
    (at <= b.len()).then_some(at)
}

/// CRC-32 (IEEE, reflected), bit by bit.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A request body delivered frame by frame, every frame ready at once.
struct Frames(VecDeque<Result<Frame<Bytes>, std::io::Error>>);

impl http_body::Body for Frames {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        Poll::Ready(self.get_mut().0.pop_front())
    }
}

fn check_read_raw(payload: &[u8], max: usize) {
    let (header, mut rest) = payload.split_at(payload.len().min(4));
    let h = |i: usize| header.get(i).copied().unwrap_or(0);
    let mut frames = VecDeque::new();
    // What read_raw must answer, judged frame by frame.
    let mut body = Vec::new();
    let mut want: Option<Result<(), ApiError>> = None;
    while let Some((&n, tail)) = rest.split_first() {
        rest = tail;
        match n {
            0xfe => {
                frames.push_back(Err(std::io::Error::other("connection reset")));
                want.get_or_insert(Err(ApiError::BadBody(String::new())));
            }
            0xfd => {
                frames.push_back(Ok(Frame::trailers(http::HeaderMap::new())));
            }
            n => {
                let (chunk, tail) = rest.split_at(rest.len().min(usize::from(n)));
                rest = tail;
                frames.push_back(Ok(Frame::data(Bytes::copy_from_slice(chunk))));
                if want.is_none() {
                    if body.len() + chunk.len() > max {
                        want = Some(Err(ApiError::BodyTooLarge));
                    }
                    body.extend_from_slice(chunk);
                }
            }
        }
    }
    let declared = u64::from(h(1)) | u64::from(h(2)) << 8 | u64::from(h(3)) << 16;
    let content_length = match h(0) % 3 {
        0 => None,
        1 => Some(body.len() as u64),
        _ => Some(declared),
    };
    if content_length.is_some_and(|n| n > max as u64) {
        want = Some(Err(ApiError::BodyTooLarge));
    }
    let future = read_raw(axum::body::Body::new(Frames(frames)), content_length, max);
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(std::task::Waker::noop());
    let Poll::Ready(got) = future.as_mut().poll(&mut cx) else {
        panic!("read_raw is pending on a body whose frames are all ready");
    };
    match (want, got) {
        (None, Ok(out)) => assert!(out[..] == body[..], "read_raw returned other bytes"),
        (Some(Err(ApiError::BodyTooLarge)), Err(ApiError::BodyTooLarge)) => {}
        (Some(Err(ApiError::BadBody(_))), Err(ApiError::BadBody(message))) => {
            assert!(message.starts_with("reading request body: "), "{message:?}");
        }
        (want, got) => panic!(
            "read_raw (limit {max}, content length {content_length:?}): got {}, expected {want:?}",
            describe(&got)
        ),
    }
}
