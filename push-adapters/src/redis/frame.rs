//! RESP2, as much as a subscriber needs: encoding commands, and reading the frames Redis sends
//! in subscribe mode (simple strings, errors, integers, bulk strings, and one level of arrays).
//!
//! The reader pulls from a buffered stream one frame at a time, so a slow consumer slows the
//! socket down (Redis then applies its own output-buffer limit) instead of buffering without
//! bound here. A bulk string longer than the reader's limit is skipped without being stored and
//! reported as [`Frame::TooLarge`], keeping the stream in step.

use bytes::Bytes;
use std::io;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

/// Longest header line (`*3`, `$12`, `-ERR ...`, `+OK`) accepted.
const MAX_LINE_BYTES: u64 = 64 * 1024;
/// Most elements an array may announce: subscribe-mode frames have three or four.
const MAX_ARRAY_LEN: i64 = 1024;

/// One RESP2 value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// `+OK`
    Simple(String),
    /// `-ERR ...`
    Error(String),
    /// `:1`
    Integer(i64),
    /// `$5\r\nhello`
    Bulk(Bytes),
    /// `$-1` or `*-1`
    Null,
    /// A bulk string over the reader's limit, skipped: its announced length.
    TooLarge(u64),
    /// `*N` followed by N non-array frames.
    Array(Vec<Frame>),
}

impl Frame {
    /// The bytes of a bulk or simple string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Frame::Bulk(bytes) => Some(bytes),
            Frame::Simple(text) => Some(text.as_bytes()),
            _ => None,
        }
    }
}

/// Encodes a command as a RESP array of bulk strings.
pub fn command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Reads frames from a buffered stream.
pub struct FrameReader<R> {
    reader: R,
    max_bulk: u64,
}

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

impl<R: AsyncBufRead + Unpin> FrameReader<R> {
    /// A reader that skips bulk strings over `max_bulk` bytes.
    pub fn new(reader: R, max_bulk: usize) -> Self {
        FrameReader {
            reader,
            max_bulk: max_bulk as u64,
        }
    }

    /// The next frame; `Ok(None)` when the stream ended cleanly between frames. Not cancel-safe:
    /// a frame read half-way is lost with the future.
    pub async fn read_frame(&mut self) -> io::Result<Option<Frame>> {
        let Some(line) = self.read_line().await? else {
            return Ok(None);
        };
        match line.split_first() {
            Some((b'*', count)) => {
                let count = parse_int(count)?;
                if count < 0 {
                    return Ok(Some(Frame::Null));
                }
                if count > MAX_ARRAY_LEN {
                    return Err(invalid(format!("array of {count} elements announced")));
                }
                let mut items = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    let line = self.read_line().await?.ok_or_else(eof_in_frame)?;
                    if line.first() == Some(&b'*') {
                        return Err(invalid("nested array in a subscribe-mode frame"));
                    }
                    items.push(self.scalar(&line).await?);
                }
                Ok(Some(Frame::Array(items)))
            }
            _ => Ok(Some(self.scalar(&line).await?)),
        }
    }

    /// A non-array frame whose header line is `line`.
    async fn scalar(&mut self, line: &[u8]) -> io::Result<Frame> {
        let (kind, rest) = line
            .split_first()
            .ok_or_else(|| invalid("empty RESP line"))?;
        let text = || String::from_utf8_lossy(rest).into_owned();
        match kind {
            b'+' => Ok(Frame::Simple(text())),
            b'-' => Ok(Frame::Error(text())),
            b':' => Ok(Frame::Integer(parse_int(rest)?)),
            b'$' => {
                let len = parse_int(rest)?;
                if len < 0 {
                    return Ok(Frame::Null);
                }
                let len = len as u64;
                if len > self.max_bulk {
                    self.skip(len + 2).await?;
                    return Ok(Frame::TooLarge(len));
                }
                let mut body = vec![0; len as usize + 2];
                self.reader
                    .read_exact(&mut body)
                    .await
                    .map_err(|e| match e.kind() {
                        io::ErrorKind::UnexpectedEof => eof_in_frame(),
                        _ => e,
                    })?;
                if !body.ends_with(b"\r\n") {
                    return Err(invalid("bulk string not followed by CRLF"));
                }
                body.truncate(len as usize);
                Ok(Frame::Bulk(Bytes::from(body)))
            }
            other => Err(invalid(format!(
                "unexpected RESP type byte {:?}",
                char::from(*other)
            ))),
        }
    }

    /// One CRLF-terminated line without its CRLF; `None` at a clean end of stream.
    async fn read_line(&mut self) -> io::Result<Option<Vec<u8>>> {
        let mut line = Vec::new();
        let n = (&mut self.reader)
            .take(MAX_LINE_BYTES)
            .read_until(b'\n', &mut line)
            .await?;
        if n == 0 {
            return Ok(None);
        }
        if !line.ends_with(b"\r\n") {
            return Err(if n as u64 >= MAX_LINE_BYTES {
                invalid("RESP line too long")
            } else {
                eof_in_frame()
            });
        }
        line.truncate(line.len() - 2);
        Ok(Some(line))
    }

    /// Reads and drops `len` bytes.
    async fn skip(&mut self, len: u64) -> io::Result<()> {
        let copied =
            tokio::io::copy(&mut (&mut self.reader).take(len), &mut tokio::io::sink()).await?;
        if copied < len {
            return Err(eof_in_frame());
        }
        Ok(())
    }
}

fn eof_in_frame() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "connection closed in the middle of a frame",
    )
}

fn parse_int(digits: &[u8]) -> io::Result<i64> {
    std::str::from_utf8(digits)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            invalid(format!(
                "invalid RESP integer {:?}",
                String::from_utf8_lossy(digits)
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads every frame of `input`, fed one byte at a time to exercise partial reads.
    async fn frames(input: &[u8], max_bulk: usize) -> io::Result<Vec<Frame>> {
        let reader = tokio::io::BufReader::with_capacity(1, input);
        let mut reader = FrameReader::new(reader, max_bulk);
        let mut out = Vec::new();
        while let Some(frame) = reader.read_frame().await? {
            out.push(frame);
        }
        Ok(out)
    }

    fn bulk(text: &str) -> Frame {
        Frame::Bulk(Bytes::copy_from_slice(text.as_bytes()))
    }

    #[test]
    fn encodes_commands() {
        assert_eq!(
            command(&[b"SUBSCRIBE", b"herald:notify"]),
            b"*2\r\n$9\r\nSUBSCRIBE\r\n$13\r\nherald:notify\r\n"
        );
    }

    #[tokio::test]
    async fn reads_subscribe_mode_frames() {
        let input = b"*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n\
            *3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$7\r\n{\"a\":1}\r\n\
            *4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\nc1\r\n$0\r\n\r\n\
            +PONG\r\n-ERR wrong\r\n$-1\r\n*2\r\n$4\r\npong\r\n$0\r\n\r\n";
        let got = frames(input, 1024).await.unwrap();
        assert_eq!(
            got,
            vec![
                Frame::Array(vec![bulk("subscribe"), bulk("c"), Frame::Integer(1)]),
                Frame::Array(vec![bulk("message"), bulk("c"), bulk("{\"a\":1}")]),
                Frame::Array(vec![bulk("pmessage"), bulk("c*"), bulk("c1"), bulk("")]),
                Frame::Simple("PONG".into()),
                Frame::Error("ERR wrong".into()),
                Frame::Null,
                Frame::Array(vec![bulk("pong"), bulk("")]),
            ]
        );
    }

    #[tokio::test]
    async fn skips_bulk_strings_over_the_limit_and_stays_in_step() {
        let mut input = b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$20\r\n".to_vec();
        input.extend_from_slice(&[b'x'; 20]);
        input.extend_from_slice(b"\r\n*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$2\r\nok\r\n");
        let got = frames(&input, 10).await.unwrap();
        assert_eq!(
            got[0],
            Frame::Array(vec![bulk("message"), bulk("c"), Frame::TooLarge(20)])
        );
        assert_eq!(
            got[1],
            Frame::Array(vec![bulk("message"), bulk("c"), bulk("ok")])
        );
    }

    #[tokio::test]
    async fn refuses_malformed_input() {
        for input in [
            &b"?what\r\n"[..],
            b"$5\r\nhel",
            b"$3\r\nhello\r\n",
            b"*2\r\n*1\r\n:1\r\n",
            b":12x\r\n",
            b"*3\r\n$1\r\na\r\n",
            b"+no newline",
        ] {
            assert!(
                frames(input, 1024).await.is_err(),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        assert_eq!(frames(b"", 1024).await.unwrap(), vec![]);
    }
}
