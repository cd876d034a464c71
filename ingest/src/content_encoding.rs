//! Request body decompression with a hard limit on the decompressed size, so a small
//! compressed body that expands to gigabytes (a "zip bomb") is refused after reading at most
//! the limit.

use std::io::Read;

use bytes::Bytes;

/// Why a body could not be decompressed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DecompressError {
    /// The `Content-Encoding` is not one tracegap reads.
    #[error("unsupported Content-Encoding {0:?} (supported: gzip, deflate, zstd, identity)")]
    Unsupported(String),
    /// The decompressed body would exceed the limit.
    #[error("decompressed body exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The compressed data is corrupt.
    #[error("corrupt {encoding} body: {message}")]
    Corrupt {
        /// The encoding.
        encoding: String,
        /// The decoder's message.
        message: String,
    },
}

/// Decompresses `body` as told by a `Content-Encoding` value, reading at most `limit` bytes.
pub fn decompress(body: Bytes, content_encoding: Option<&str>, limit: usize) -> Result<Bytes, DecompressError> {
    let encoding = content_encoding.unwrap_or("identity").trim().to_ascii_lowercase();
    let corrupt =
        |error: std::io::Error| DecompressError::Corrupt { encoding: encoding.clone(), message: error.to_string() };
    let output = match encoding.as_str() {
        "" | "identity" | "none" => return Ok(body),
        "gzip" | "x-gzip" => read_limited(flate2::read::MultiGzDecoder::new(&body[..]), limit).map_err(corrupt)?,
        "deflate" => read_limited(flate2::read::ZlibDecoder::new(&body[..]), limit).map_err(corrupt)?,
        "zstd" => {
            let decoder = zstd::stream::read::Decoder::new(&body[..]).map_err(corrupt)?;
            read_limited(decoder, limit).map_err(corrupt)?
        }
        other => return Err(DecompressError::Unsupported(other.to_owned())),
    };
    match output {
        Some(output) => Ok(Bytes::from(output)),
        None => Err(DecompressError::TooLarge { limit }),
    }
}

/// Reads everything, or `None` as soon as more than `limit` bytes come out.
fn read_limited(reader: impl Read, limit: usize) -> std::io::Result<Option<Vec<u8>>> {
    let mut output = Vec::new();
    reader.take(limit as u64 + 1).read_to_end(&mut output)?;
    Ok((output.len() <= limit).then_some(output))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Bytes {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(data).unwrap();
        Bytes::from(encoder.finish().unwrap())
    }

    #[test]
    fn gzip_and_zstd_round_trip() {
        let data = b"hello spans".repeat(100);
        assert_eq!(decompress(gzip(&data), Some("gzip"), 1 << 20).unwrap(), Bytes::from(data.clone()));
        let compressed = zstd::stream::encode_all(&data[..], 1).unwrap();
        assert_eq!(decompress(Bytes::from(compressed), Some("zstd"), 1 << 20).unwrap(), Bytes::from(data));
    }

    #[test]
    fn a_bomb_is_refused_at_the_limit() {
        let bomb = gzip(&vec![0u8; 50 << 20]);
        assert!(bomb.len() < 1 << 20, "{} bytes", bomb.len());
        assert_eq!(decompress(bomb, Some("gzip"), 1 << 20), Err(DecompressError::TooLarge { limit: 1 << 20 }));
    }

    #[test]
    fn unknown_encodings_and_corrupt_data_are_named() {
        assert_eq!(
            decompress(Bytes::from_static(b"x"), Some("br"), 10),
            Err(DecompressError::Unsupported("br".into()))
        );
        let error = decompress(Bytes::from_static(b"not gzip at all"), Some("gzip"), 100).unwrap_err();
        assert!(matches!(error, DecompressError::Corrupt { ref encoding, .. } if encoding == "gzip"), "{error}");
    }
}
