use std::io::Write;

use super::*;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn br(data: &[u8]) -> Vec<u8> {
    let mut w = brotli::CompressorWriter::new(Vec::new(), 4096, 5, 22);
    w.write_all(data).unwrap();
    w.into_inner()
}

fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).unwrap()
}

/// `data` in every encoding (identity last).
fn all(data: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("gzip", gzip(data)),
        ("deflate", zlib(data)),
        ("br", br(data)),
        ("zstd", zstd(data)),
        ("identity", data.to_vec()),
    ]
}

/// [`decode_bytes`] of a slice, as a vector.
fn decode_all(enc: Option<&str>, body: &[u8], limit: usize) -> Result<Vec<u8>, Error> {
    decode_bytes(enc, Bytes::copy_from_slice(body), limit).map(|b| b.to_vec())
}

/// Decodes `bytes` fed in `step`-byte chunks; checks every piece is bounded.
fn decode_in_pieces(enc: &str, bytes: &[u8], step: usize, limit: usize) -> Result<Vec<u8>, Error> {
    let mut d = Decoder::with_limit(Some(enc), limit)?;
    let mut out = Vec::new();
    let mut take = |d: &mut Decoder| -> Result<(), Error> {
        while let Some(p) = d.next_piece()? {
            assert!(p.len() <= PIECE.max(step), "{enc}: a piece of {}", p.len());
            out.extend_from_slice(&p);
        }
        Ok(())
    };
    for piece in bytes.chunks(step) {
        d.feed(Bytes::copy_from_slice(piece));
        take(&mut d)?;
    }
    d.end();
    take(&mut d)?;
    Ok(out)
}

#[test]
fn every_encoding_round_trips_in_small_pieces() {
    let data: Vec<u8> = (0..50_000u32)
        .flat_map(|i| format!("event: ping\ndata: {i}\n\n").into_bytes())
        .collect();
    for (enc, bytes) in all(&data) {
        for step in [1, 7, 4096, bytes.len()] {
            let out = decode_in_pieces(enc, &bytes, step, usize::MAX).unwrap();
            assert!(out == data, "{enc} in {step}-byte chunks");
        }
    }
    assert!(Decoder::with_limit(Some("compress"), 10).is_err());
    assert!(decode_all(Some("gzip"), b"not gzip", 100).is_err());
}

#[test]
fn output_that_fills_the_last_piece_exactly_is_complete() {
    // The end of the stream is then seen by a step that makes no progress.
    for len in [PIECE, 3 * PIECE, PIECE - 1, PIECE + 1] {
        let data: Vec<u8> = (0..len).map(|i| (i % 7) as u8).collect();
        for (enc, bytes) in all(&data) {
            for step in [1, 5000, bytes.len()] {
                let out = decode_in_pieces(enc, &bytes, step, usize::MAX)
                    .unwrap_or_else(|e| panic!("{enc}, {len} bytes in {step}-byte chunks: {e}"));
                assert!(out == data, "{enc}, {len}");
            }
            assert_eq!(decode_all(Some(enc), &bytes, len).unwrap().len(), len);
        }
    }
}

#[test]
fn exactly_the_limit_passes_and_one_byte_more_fails() {
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    for (enc, bytes) in all(&data) {
        let ok = decode_all(Some(enc), &bytes, data.len()).unwrap();
        assert_eq!(ok.len(), data.len(), "{enc}");
        let err = decode_all(Some(enc), &bytes, data.len() - 1).unwrap_err();
        assert!(
            matches!(err, Error::TooLarge { limit } if limit == data.len() - 1),
            "{enc}: {err}"
        );
        // The same through the streaming interface, in small chunks.
        assert!(
            decode_in_pieces(enc, &bytes, 1000, data.len()).is_ok(),
            "{enc}"
        );
        assert!(matches!(
            decode_in_pieces(enc, &bytes, 1000, data.len() - 1),
            Err(Error::TooLarge { .. })
        ));
        let b = decode_bytes(Some(enc), Bytes::from(bytes.clone()), data.len()).unwrap();
        assert_eq!(b.len(), data.len());
        assert!(decode_bytes(Some(enc), Bytes::from(bytes), data.len() - 1).is_err());
    }
}

#[test]
fn a_bomb_stops_at_the_limit_in_bounded_pieces() {
    // 32 MiB of zeros: a few KB compressed (zstd about 1 KB).
    let zeros = vec![0u8; 32 << 20];
    let limit = 1 << 20;
    for (enc, bytes) in all(&zeros) {
        if enc == "identity" {
            continue;
        }
        assert!(bytes.len() < 64 * 1024, "{enc}: {}", bytes.len());
        // The whole bomb in ONE chunk: it still comes out piece by piece.
        let mut d = Decoder::with_limit(Some(enc), limit).unwrap();
        d.feed(Bytes::from(bytes));
        let mut largest = 0;
        let err = loop {
            match d.next_piece() {
                Ok(Some(p)) => largest = largest.max(p.len()),
                Ok(None) => panic!("{enc}: the bomb decoded within the limit"),
                Err(e) => break e,
            }
        };
        assert!(
            matches!(err, Error::TooLarge { limit: l } if l == limit),
            "{enc}: {err}"
        );
        assert!(largest <= PIECE, "{enc}: piece of {largest}");
        // It decoded no more than the limit and one piece of slack.
        assert!(d.produced() <= limit + 1, "{enc}: {}", d.produced());
        assert!(d.scratch.len() <= PIECE);
    }
}

#[test]
fn truncated_and_trailing_data_are_errors() {
    let data = b"{\"type\":\"message\"}".repeat(100);
    for (enc, bytes) in all(&data) {
        if enc == "identity" {
            continue;
        }
        let cut = &bytes[..bytes.len() - 3];
        let err = decode_all(Some(enc), cut, usize::MAX).unwrap_err();
        assert!(matches!(err, Error::Corrupt(..)), "{enc}: {err}");
        if enc == "deflate" || enc == "br" {
            let mut more = bytes.clone();
            more.extend_from_slice(b"garbage");
            let err = decode_all(Some(enc), &more, usize::MAX).unwrap_err();
            assert!(matches!(err, Error::Corrupt(..)), "{enc}: {err}");
        }
    }
    // gzip and zstd allow several members / frames, one after the other.
    for (enc, one) in [("gzip", gzip(b"abc")), ("zstd", zstd(b"abc"))] {
        let two = [one.clone(), one].concat();
        assert_eq!(
            decode_all(Some(enc), &two, 100).unwrap(),
            b"abcabc",
            "{enc}"
        );
    }
    // A gzip checksum that does not match.
    let mut bad = gzip(&data);
    let n = bad.len();
    bad[n - 8] ^= 1;
    assert!(decode_all(Some("gzip"), &bad, usize::MAX).is_err());
}

#[test]
fn gzip_headers_with_every_field_and_a_bound() {
    let mut e = flate2::GzBuilder::new()
        .filename("a.json")
        .comment("a comment")
        .extra(vec![1, 2, 3])
        .write(Vec::new(), flate2::Compression::default());
    e.write_all(b"hello").unwrap();
    let bytes = e.finish().unwrap();
    assert_eq!(decode_in_pieces("gzip", &bytes, 1, 100).unwrap(), b"hello");
    // A file name that never ends.
    let mut endless = vec![0x1f, 0x8b, 0x08, 0x08, 0, 0, 0, 0, 0, 0xff];
    endless.extend(std::iter::repeat_n(b'a', MAX_GZIP_HEADER + 10));
    let err = decode_all(Some("gzip"), &endless, usize::MAX).unwrap_err();
    assert!(err.to_string().contains("header longer"), "{err}");
    let err = decode_in_pieces("gzip", &endless, 1000, usize::MAX).unwrap_err();
    assert!(err.to_string().contains("header longer"), "{err}");
}

#[test]
fn a_zstd_window_over_the_bound_is_refused() {
    // A frame that asks for a 64 MiB window (level 19, long distance).
    let data = vec![7u8; 1 << 20];
    let mut enc = zstd::stream::Encoder::new(Vec::new(), 3).unwrap();
    enc.set_parameter(zstd::stream::raw::CParameter::WindowLog(26))
        .unwrap();
    enc.include_contentsize(false).unwrap();
    enc.write_all(&data).unwrap();
    let bytes = enc.finish().unwrap();
    let err = decode_all(Some("zstd"), &bytes, usize::MAX).unwrap_err();
    assert!(matches!(err, Error::Corrupt("zstd", _)), "{err}");
    // Within the bound it decodes.
    let mut enc = zstd::stream::Encoder::new(Vec::new(), 3).unwrap();
    enc.set_parameter(zstd::stream::raw::CParameter::WindowLog(
        ZSTD_WINDOW_LOG_MAX,
    ))
    .unwrap();
    enc.write_all(&data).unwrap();
    let bytes = enc.finish().unwrap();
    assert_eq!(decode_all(Some("zstd"), &bytes, usize::MAX).unwrap(), data);
}
