//! Reading request bodies within limits: the raw size and, for `Content-Encoding: gzip`, the
//! decompressed size are both capped, so a gzip bomb costs at most `max_bytes` of memory.

use std::io::Read;

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;

use super::error::ApiError;

/// Reads the whole body, refusing more than `max_bytes`.
///
/// # Errors
/// [`ApiError::BodyTooLarge`] above the cap (by `Content-Length` before reading, or while
/// reading), [`ApiError::BadBody`] when the connection fails mid-body.
pub async fn read_raw(
    body: Body,
    content_length: Option<u64>,
    max_bytes: usize,
) -> Result<Bytes, ApiError> {
    if content_length.is_some_and(|n| n > max_bytes as u64) {
        return Err(ApiError::BodyTooLarge);
    }
    let cap = content_length.map_or(64 * 1024, |n| usize::try_from(n).unwrap_or(max_bytes));
    let mut buf = BytesMut::with_capacity(cap.min(max_bytes));
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ApiError::BadBody(format!("reading request body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > max_bytes {
                return Err(ApiError::BodyTooLarge);
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

/// Decompresses a gzip body (one or more concatenated members), refusing more than `max_bytes`
/// of output.
///
/// # Errors
/// [`ApiError::BodyTooLarge`] above the cap, [`ApiError::BadBody`] for corrupt input, worded as
/// InfluxDB's Go `gzip` reader words it where they overlap (`gzip: invalid header`).
pub fn gunzip(raw: &[u8], max_bytes: usize) -> Result<Bytes, ApiError> {
    if raw.len() < 2 || raw[0] != 0x1f || raw[1] != 0x8b {
        // Go's gzip reader reports an empty body as EOF and a bad magic as invalid header.
        return Err(ApiError::BadBody(if raw.is_empty() {
            "EOF".into()
        } else {
            "gzip: invalid header".into()
        }));
    }
    let mut out = Vec::with_capacity((raw.len() * 4).min(max_bytes));
    let limit = u64::try_from(max_bytes)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let mut decoder = flate2::read::MultiGzDecoder::new(raw).take(limit);
    decoder
        .read_to_end(&mut out)
        .map_err(|e| ApiError::BadBody(format!("gzip: {e}")))?;
    if out.len() > max_bytes {
        return Err(ApiError::BodyTooLarge);
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gunzip_reads_concatenated_members() {
        let mut body = gz(b"a v=1 1\n");
        body.extend(gz(b"b v=2 2\n"));
        assert_eq!(&gunzip(&body, 1000).unwrap()[..], b"a v=1 1\nb v=2 2\n");
    }

    #[test]
    fn gunzip_caps_output_of_a_bomb() {
        let bomb = gz(&vec![b'a'; 10_000_000]);
        assert!(bomb.len() < 20_000);
        assert_eq!(gunzip(&bomb, 1_000_000), Err(ApiError::BodyTooLarge));
        assert_eq!(gunzip(&bomb, 10_000_000).unwrap().len(), 10_000_000);
    }

    #[test]
    fn gunzip_rejects_corrupt_input() {
        assert_eq!(
            gunzip(b"not gzip", 100),
            Err(ApiError::BadBody("gzip: invalid header".into()))
        );
        let mut truncated = gz(b"some line protocol that is long enough");
        truncated.truncate(truncated.len() - 6);
        assert!(matches!(
            gunzip(&truncated, 1000),
            Err(ApiError::BadBody(_))
        ));
    }

    #[tokio::test]
    async fn read_raw_enforces_the_cap() {
        let body = Body::from(vec![b'x'; 100]);
        assert_eq!(read_raw(body, None, 99).await, Err(ApiError::BodyTooLarge));
        let body = Body::from(vec![b'x'; 100]);
        assert_eq!(read_raw(body, Some(100), 100).await.unwrap().len(), 100);
        assert_eq!(
            read_raw(Body::empty(), Some(1000), 100).await,
            Err(ApiError::BodyTooLarge)
        );
    }
}
