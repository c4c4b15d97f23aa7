//! `Content-Encoding` (gzip, deflate, br, zstd): decoding what hoopctl
//! must read, whole (request bodies, JSON answers) or as a stream (SSE).

use std::io::Write;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unsupported Content-Encoding {0:?}")]
    Unsupported(String),
    #[error("could not decode the {0} body: {1}")]
    Corrupt(String, std::io::Error),
}

/// A push decoder: compressed bytes in, plain bytes out.
pub enum Decoder {
    Identity,
    Gzip(Box<flate2::write::GzDecoder<Vec<u8>>>),
    Deflate(Box<flate2::write::ZlibDecoder<Vec<u8>>>),
    Brotli(Box<brotli::DecompressorWriter<Vec<u8>>>),
    Zstd(Box<zstd::stream::write::Decoder<'static, Vec<u8>>>),
}

impl Decoder {
    /// For a `Content-Encoding` value (`None` or `identity`: pass-through).
    pub fn new(encoding: Option<&str>) -> Result<Self, Error> {
        let enc = encoding
            .map(|e| e.trim().to_ascii_lowercase())
            .unwrap_or_default();
        Ok(match enc.as_str() {
            "" | "identity" => Self::Identity,
            "gzip" | "x-gzip" => Self::Gzip(Box::new(flate2::write::GzDecoder::new(Vec::new()))),
            "deflate" => Self::Deflate(Box::new(flate2::write::ZlibDecoder::new(Vec::new()))),
            "br" => Self::Brotli(Box::new(brotli::DecompressorWriter::new(
                Vec::new(),
                64 * 1024,
            ))),
            "zstd" => Self::Zstd(Box::new(
                zstd::stream::write::Decoder::new(Vec::new())
                    .map_err(|e| Error::Corrupt(enc.clone(), e))?,
            )),
            other => return Err(Error::Unsupported(other.to_string())),
        })
    }

    pub fn is_identity(&self) -> bool {
        matches!(self, Self::Identity)
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Identity => "identity",
            Self::Gzip(_) => "gzip",
            Self::Deflate(_) => "deflate",
            Self::Brotli(_) => "br",
            Self::Zstd(_) => "zstd",
        }
    }

    /// Decodes one chunk; returns what is plain so far (the chunk itself,
    /// not a copy, when nothing is encoded).
    pub fn push_bytes(&mut self, chunk: bytes::Bytes) -> Result<bytes::Bytes, Error> {
        match self {
            Self::Identity => Ok(chunk),
            _ => self.push(&chunk).map(bytes::Bytes::from),
        }
    }

    /// Decodes one chunk; returns what is plain so far.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<u8>, Error> {
        let name = self.name().to_string();
        let err = |e| Error::Corrupt(name.clone(), e);
        match self {
            Self::Identity => Ok(chunk.to_vec()),
            Self::Gzip(d) => {
                d.write_all(chunk).map_err(err)?;
                d.flush().map_err(err)?;
                Ok(std::mem::take(d.get_mut()))
            }
            Self::Deflate(d) => {
                d.write_all(chunk).map_err(err)?;
                d.flush().map_err(err)?;
                Ok(std::mem::take(d.get_mut()))
            }
            Self::Brotli(d) => {
                d.write_all(chunk).map_err(err)?;
                d.flush().map_err(err)?;
                Ok(std::mem::take(d.get_mut()))
            }
            Self::Zstd(d) => {
                d.write_all(chunk).map_err(err)?;
                d.flush().map_err(err)?;
                Ok(std::mem::take(d.get_mut()))
            }
        }
    }
}

impl Decoder {
    /// The end of the input: fails when it was truncated or not encoded at all.
    pub fn finish(self) -> Result<Vec<u8>, Error> {
        let name = self.name().to_string();
        let err = |e| Error::Corrupt(name.clone(), e);
        match self {
            Self::Identity => Ok(Vec::new()),
            Self::Gzip(mut d) => {
                d.try_finish().map_err(err)?;
                Ok(std::mem::take(d.get_mut()))
            }
            Self::Deflate(mut d) => {
                d.try_finish().map_err(err)?;
                Ok(std::mem::take(d.get_mut()))
            }
            Self::Brotli(d) => d
                .into_inner()
                .map_err(|_| err(std::io::Error::other("truncated brotli stream"))),
            Self::Zstd(mut d) => {
                d.flush().map_err(err)?;
                Ok(std::mem::take(d.get_mut()))
            }
        }
    }
}

/// Decodes a whole body.
pub fn decode_all(encoding: Option<&str>, body: &[u8]) -> Result<Vec<u8>, Error> {
    let mut d = Decoder::new(encoding)?;
    let mut out = d.push(body)?;
    out.extend(d.finish()?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn every_encoding_round_trips_in_small_pieces() {
        let data: Vec<u8> = (0..50_000u32)
            .flat_map(|i| format!("event: ping\ndata: {i}\n\n").into_bytes())
            .collect();
        let br = {
            let mut w = brotli::CompressorWriter::new(Vec::new(), 4096, 5, 22);
            w.write_all(&data).unwrap();
            w.into_inner()
        };
        let zl = {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(&data).unwrap();
            e.finish().unwrap()
        };
        for (enc, bytes) in [
            ("gzip", gzip(&data)),
            ("deflate", zl),
            ("br", br),
            ("zstd", zstd::encode_all(&data[..], 3).unwrap()),
            ("identity", data.clone()),
        ] {
            let mut d = Decoder::new(Some(enc)).unwrap();
            let mut out = Vec::new();
            for piece in bytes.chunks(7) {
                out.extend(d.push(piece).unwrap());
            }
            assert_eq!(out, data, "{enc}");
        }
        assert!(Decoder::new(Some("compress")).is_err());
        assert!(decode_all(Some("gzip"), b"not gzip").is_err());
    }
}
