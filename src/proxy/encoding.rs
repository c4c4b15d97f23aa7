//! `Content-Encoding` (gzip, deflate, br, zstd): decoding what hoopctl
//! must read, whole (request bodies, JSON answers) or as a stream (SSE).
//!
//! Owns: the decoders and their limits. Every decoder has an OUTPUT limit
//! and decodes in pieces of at most [`PIECE`] bytes, so memory while
//! decoding is bounded by what the caller keeps plus one piece, never by
//! the expansion ratio of the input (a 33 KB zstd chunk can stand for
//! gigabytes). Going over the limit is [`Error::TooLarge`]; the caller
//! ends the exchange (fail closed).

use bytes::{Buf, Bytes, BytesMut};

/// Most plain bytes one decoding step produces (and the size of the
/// decoder's scratch buffer).
pub const PIECE: usize = 64 * 1024;
/// Largest gzip member header accepted (the optional name, comment and
/// extra field are otherwise unbounded); longer is [`Error::Corrupt`].
pub const MAX_GZIP_HEADER: usize = 64 * 1024;
/// Largest zstd window accepted, as a power of two: 2^23 = 8 MiB, the most
/// RFC 9659 lets an HTTP `zstd` sender use. A frame asking for more would
/// make the decoder allocate that much; it is refused instead.
pub const ZSTD_WINDOW_LOG_MAX: u32 = 23;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unsupported Content-Encoding {0:?}")]
    Unsupported(String),
    #[error("could not decode the {0} body: {1}")]
    Corrupt(&'static str, std::io::Error),
    #[error("the decoded body is larger than {limit} bytes, the most hoopctl decodes")]
    TooLarge { limit: usize },
}

fn corrupt(name: &'static str, why: impl Into<String>) -> Error {
    Error::Corrupt(name, std::io::Error::other(why.into()))
}

type Brotli = brotli::BrotliState<
    brotli::enc::StandardAlloc,
    brotli::enc::StandardAlloc,
    brotli::enc::StandardAlloc,
>;

/// Where a gzip member is.
enum Gz {
    /// Collecting the header (its bytes so far).
    Header(Vec<u8>),
    Body(Box<flate2::Decompress>, flate2::Crc),
    /// Collecting the 8-byte trailer; the body's CRC.
    Trailer(Vec<u8>, flate2::Crc),
    /// A member ended; more input starts another (RFC 1952 2.2).
    Done,
}

enum Codec {
    Identity,
    Gzip(Gz),
    Deflate(Box<flate2::Decompress>),
    Brotli(Box<Brotli>),
    Zstd(Box<zstd::stream::raw::Decoder<'static>>),
}

/// One decoding step: input bytes used, plain bytes written, and whether
/// the compressed stream is complete after it.
struct Step {
    used: usize,
    made: usize,
    complete: bool,
}

/// A pull decoder: compressed chunks in ([`Decoder::feed`]), plain pieces of
/// at most [`PIECE`] bytes out ([`Decoder::next_piece`]), at most `limit`
/// plain bytes in all.
pub struct Decoder {
    codec: Codec,
    name: &'static str,
    /// Compressed input not decoded yet.
    input: Bytes,
    /// No more input comes ([`Decoder::end`]).
    ended: bool,
    /// The compressed stream is complete (so far).
    complete: bool,
    produced: usize,
    limit: usize,
    scratch: Vec<u8>,
}

impl Decoder {
    /// For a `Content-Encoding` value (`None` or `identity`: pass-through),
    /// producing at most `max_output` plain bytes.
    pub fn with_limit(encoding: Option<&str>, max_output: usize) -> Result<Self, Error> {
        let enc = encoding
            .map(|e| e.trim().to_ascii_lowercase())
            .unwrap_or_default();
        let (codec, name) = match enc.as_str() {
            "" | "identity" => (Codec::Identity, "identity"),
            "gzip" | "x-gzip" => (Codec::Gzip(Gz::Header(Vec::new())), "gzip"),
            "deflate" => (
                Codec::Deflate(Box::new(flate2::Decompress::new(true))),
                "deflate",
            ),
            "br" => (
                Codec::Brotli(Box::new(Brotli::new(
                    brotli::enc::StandardAlloc::default(),
                    brotli::enc::StandardAlloc::default(),
                    brotli::enc::StandardAlloc::default(),
                ))),
                "br",
            ),
            "zstd" => {
                let mut d =
                    zstd::stream::raw::Decoder::new().map_err(|e| Error::Corrupt("zstd", e))?;
                d.set_parameter(zstd::stream::raw::DParameter::WindowLogMax(
                    ZSTD_WINDOW_LOG_MAX,
                ))
                .map_err(|e| Error::Corrupt("zstd", e))?;
                (Codec::Zstd(Box::new(d)), "zstd")
            }
            other => return Err(Error::Unsupported(other.to_string())),
        };
        Ok(Self {
            codec,
            name,
            input: Bytes::new(),
            ended: false,
            complete: true,
            produced: 0,
            limit: max_output,
            scratch: Vec::new(),
        })
    }

    pub fn is_identity(&self) -> bool {
        matches!(self.codec, Codec::Identity)
    }

    /// Plain bytes produced so far.
    pub fn produced(&self) -> usize {
        self.produced
    }

    /// Adds compressed input; take the plain pieces with [`Decoder::next_piece`].
    pub fn feed(&mut self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        if self.input.is_empty() {
            self.input = chunk;
        } else {
            let mut joined = BytesMut::with_capacity(self.input.len() + chunk.len());
            joined.extend_from_slice(&self.input);
            joined.extend_from_slice(&chunk);
            self.input = joined.freeze();
        }
    }

    /// Says no more input comes: [`Decoder::next_piece`] then fails if the
    /// stream was cut short.
    pub fn end(&mut self) {
        self.ended = true;
    }

    /// The next plain piece (at most [`PIECE`] bytes; without an encoding,
    /// the chunk as fed); `None` when all the input so far is decoded (and,
    /// after [`Decoder::end`], the stream is complete).
    pub fn next_piece(&mut self) -> Result<Option<Bytes>, Error> {
        if let Codec::Identity = self.codec {
            if self.input.is_empty() {
                return Ok(None);
            }
            let piece = std::mem::take(&mut self.input);
            self.count(piece.len())?;
            return Ok(Some(piece));
        }
        loop {
            // One byte more than the limit allows is enough to know it was passed.
            let room = PIECE.min(self.limit.saturating_sub(self.produced).saturating_add(1));
            if self.scratch.len() < room {
                self.scratch.resize(room, 0);
            }
            let had_input = !self.input.is_empty();
            let step = step(
                &mut self.codec,
                self.name,
                &self.input,
                &mut self.scratch[..room],
            )?;
            self.input.advance(step.used);
            if step.used > 0 || step.made > 0 || step.complete {
                // A call that did nothing says nothing about the stream
                // (zstd asks for a next frame), unless it saw the end.
                self.complete = step.complete;
            }
            if step.made > 0 {
                self.count(step.made)?;
                return Ok(Some(Bytes::copy_from_slice(&self.scratch[..step.made])));
            }
            if step.used > 0 {
                continue;
            }
            if had_input {
                // Input left that the decoder takes no more of.
                return Err(if self.complete {
                    corrupt(self.name, "data after the end of the compressed stream")
                } else {
                    corrupt(self.name, "the decoder made no progress")
                });
            }
            if self.ended && !self.complete {
                return Err(corrupt(self.name, "the compressed stream is truncated"));
            }
            return Ok(None);
        }
    }

    fn count(&mut self, n: usize) -> Result<(), Error> {
        self.produced = self.produced.saturating_add(n);
        if self.produced > self.limit {
            return Err(Error::TooLarge { limit: self.limit });
        }
        Ok(())
    }
}

fn step(
    codec: &mut Codec,
    name: &'static str,
    input: &[u8],
    out: &mut [u8],
) -> Result<Step, Error> {
    match codec {
        Codec::Identity => {
            let n = input.len().min(out.len());
            out[..n].copy_from_slice(&input[..n]);
            Ok(Step {
                used: n,
                made: n,
                complete: true,
            })
        }
        Codec::Deflate(d) => inflate(d, name, input, out),
        Codec::Gzip(gz) => gzip_step(gz, input, out),
        Codec::Brotli(state) => {
            let (mut avail_in, mut in_off) = (input.len(), 0usize);
            let (mut avail_out, mut out_off, mut total) = (out.len(), 0usize, 0usize);
            let r = brotli::BrotliDecompressStream(
                &mut avail_in,
                &mut in_off,
                input,
                &mut avail_out,
                &mut out_off,
                out,
                &mut total,
                state,
            );
            match r {
                brotli::BrotliResult::ResultFailure => Err(corrupt(name, "invalid brotli data")),
                r => Ok(Step {
                    used: in_off,
                    made: out_off,
                    complete: matches!(r, brotli::BrotliResult::ResultSuccess),
                }),
            }
        }
        Codec::Zstd(d) => {
            use zstd::stream::raw::{InBuffer, Operation, OutBuffer};
            let mut inb = InBuffer::around(input);
            let mut outb = OutBuffer::around(out);
            let hint = d
                .run(&mut inb, &mut outb)
                .map_err(|e| Error::Corrupt(name, e))?;
            Ok(Step {
                used: inb.pos(),
                made: outb.pos(),
                // 0: a frame is complete and fully flushed.
                complete: hint == 0,
            })
        }
    }
}

fn inflate(
    d: &mut flate2::Decompress,
    name: &'static str,
    input: &[u8],
    out: &mut [u8],
) -> Result<Step, Error> {
    let (in0, out0) = (d.total_in(), d.total_out());
    let status = d
        .decompress(input, out, flate2::FlushDecompress::None)
        .map_err(|e| Error::Corrupt(name, std::io::Error::other(e)))?;
    Ok(Step {
        used: (d.total_in() - in0) as usize,
        made: (d.total_out() - out0) as usize,
        complete: status == flate2::Status::StreamEnd,
    })
}

/// One gzip step (RFC 1952): header, deflate body with its CRC-32, trailer.
fn gzip_step(gz: &mut Gz, input: &[u8], out: &mut [u8]) -> Result<Step, Error> {
    match gz {
        Gz::Done | Gz::Header(_) if input.is_empty() => Ok(Step {
            used: 0,
            made: 0,
            complete: matches!(gz, Gz::Done),
        }),
        Gz::Done => {
            *gz = Gz::Header(Vec::new());
            gzip_step(gz, input, out)
        }
        Gz::Header(buf) => {
            let before = buf.len();
            let take = input
                .len()
                .min(MAX_GZIP_HEADER + 1 - before.min(MAX_GZIP_HEADER));
            buf.extend_from_slice(&input[..take]);
            match gzip_header_len(buf)? {
                Some(len) => {
                    *gz = Gz::Body(Box::new(flate2::Decompress::new(false)), flate2::Crc::new());
                    Ok(Step {
                        used: len.saturating_sub(before),
                        made: 0,
                        complete: false,
                    })
                }
                None if buf.len() > MAX_GZIP_HEADER => Err(corrupt(
                    "gzip",
                    format!("gzip header longer than {MAX_GZIP_HEADER} bytes"),
                )),
                None => Ok(Step {
                    used: take,
                    made: 0,
                    complete: false,
                }),
            }
        }
        Gz::Body(d, crc) => {
            let s = inflate(d, "gzip", input, out)?;
            crc.update(&out[..s.made]);
            if s.complete {
                let crc = std::mem::replace(crc, flate2::Crc::new());
                *gz = Gz::Trailer(Vec::with_capacity(8), crc);
                if s.used == 0 && s.made == 0 {
                    // The end was seen without progress: read the trailer now.
                    return gzip_step(gz, input, out);
                }
            }
            Ok(Step {
                complete: false,
                ..s
            })
        }
        Gz::Trailer(buf, crc) => {
            let take = input.len().min(8 - buf.len());
            buf.extend_from_slice(&input[..take]);
            if buf.len() < 8 {
                return Ok(Step {
                    used: take,
                    made: 0,
                    complete: false,
                });
            }
            let want_crc = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
            let want_len = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
            if want_crc != crc.sum() || want_len != crc.amount() {
                return Err(corrupt("gzip", "gzip checksum or length mismatch"));
            }
            *gz = Gz::Done;
            Ok(Step {
                used: take,
                made: 0,
                complete: true,
            })
        }
    }
}

/// The length of the gzip header at the start of `buf`, `None` if `buf`
/// holds only part of it.
fn gzip_header_len(buf: &[u8]) -> Result<Option<usize>, Error> {
    const FHCRC: u8 = 0x02;
    const FEXTRA: u8 = 0x04;
    const FNAME: u8 = 0x08;
    const FCOMMENT: u8 = 0x10;
    let check = buf.len().min(3);
    if buf[..check] != [0x1f, 0x8b, 0x08][..check] {
        return Err(corrupt("gzip", "not gzip data (bad magic bytes or method)"));
    }
    if buf.len() < 10 {
        return Ok(None);
    }
    let flags = buf[3];
    if flags & 0xe0 != 0 {
        return Err(corrupt("gzip", "reserved gzip header flags set"));
    }
    let mut at = 10;
    if flags & FEXTRA != 0 {
        let Some(len) = buf.get(at..at + 2) else {
            return Ok(None);
        };
        at += 2 + usize::from(u16::from_le_bytes([len[0], len[1]]));
        if buf.len() < at {
            return Ok(None);
        }
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            match buf[at..].iter().position(|&b| b == 0) {
                Some(i) => at += i + 1,
                None => return Ok(None),
            }
        }
    }
    if flags & FHCRC != 0 {
        at += 2;
        if buf.len() < at {
            return Ok(None);
        }
    }
    Ok(Some(at))
}

/// Decodes a whole body into at most `max_output` plain bytes (no copy
/// when it is not encoded).
pub fn decode_bytes(
    encoding: Option<&str>,
    body: Bytes,
    max_output: usize,
) -> Result<Bytes, Error> {
    let mut d = Decoder::with_limit(encoding, max_output)?;
    if d.is_identity() {
        d.count(body.len())?;
        return Ok(body);
    }
    d.feed(body);
    d.end();
    let mut out = BytesMut::new();
    while let Some(piece) = d.next_piece()? {
        out.extend_from_slice(&piece);
    }
    Ok(out.freeze())
}

#[cfg(test)]
mod tests;
