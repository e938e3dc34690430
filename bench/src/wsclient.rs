//! A lean WebSocket client for the load generator (RFC 6455, client side, no extensions).
//!
//! The subscribers must cost the machine as little as possible, since they share its two cores
//! with the servers they measure: one buffer per connection, allocated once and reused
//! without zeroing, frames parsed in place, nothing allocated per frame, and the caller handles
//! every frame of one read with one timestamp.

use anyhow::{anyhow, bail, Context};
use base64::Engine;
use std::net::{Ipv4Addr, SocketAddr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Largest frame accepted from a server.
const MAX_FRAME: usize = 16 << 20;
/// Largest HTTP upgrade response accepted.
const MAX_HANDSHAKE: usize = 16 << 10;

/// Frame opcodes.
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;
const CONTINUATION: u8 = 0x0;

/// A frame received from the server (data frames are whole messages: fragments are joined).
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A text or binary message.
    Data(&'a [u8]),
    /// A ping: answer it with [`WsClient::pong`].
    Ping(&'a [u8]),
    /// The server closed the connection: code and reason.
    Close(u16, String),
}

/// One client WebSocket connection.
pub struct WsClient {
    stream: TcpStream,
    /// Received bytes live in `buf[start..end]`.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Largest size `buf` grows to when reads keep filling it.
    max_buf: usize,
    /// A fragmented message being joined.
    fragments: Vec<u8>,
    /// A data frame was just returned from `fragments`: clear it on the next call.
    fragments_done: bool,
    /// State of the masking-key generator.
    mask_state: u32,
    /// Frame being written.
    out: Vec<u8>,
}

impl WsClient {
    /// TCP connect to `addr` from `source` (bind before connect, so connections can be spread
    /// over many source addresses), then the HTTP upgrade for `path`.
    pub async fn connect(
        addr: SocketAddr,
        source: Option<Ipv4Addr>,
        path: &str,
        read_buffer: usize,
        seed: u64,
    ) -> anyhow::Result<WsClient> {
        let socket = TcpSocket::new_v4()?;
        if let Some(source) = source {
            socket
                .bind(SocketAddr::new(source.into(), 0))
                .with_context(|| format!("binding to {source}"))?;
        }
        let stream = socket
            .connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let max_buf = read_buffer.max(512);
        let mut client = WsClient {
            stream,
            buf: vec![0; max_buf.min(4096)],
            start: 0,
            end: 0,
            max_buf,
            fragments: Vec::new(),
            fragments_done: false,
            mask_state: (seed as u32 ^ (seed >> 32) as u32) | 1,
            out: Vec::new(),
        };
        client.handshake(addr, path).await?;
        Ok(client)
    }

    async fn handshake(&mut self, addr: SocketAddr, path: &str) -> anyhow::Result<()> {
        let mut key = [0u8; 16];
        for chunk in key.chunks_mut(4) {
            chunk.copy_from_slice(&self.next_mask());
        }
        let key = base64::engine::general_purpose::STANDARD.encode(key);
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        self.stream.write_all(request.as_bytes()).await?;
        loop {
            if let Some(at) = memchr::memmem::find(&self.buf[..self.end], b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..at]).into_owned();
                let status = head.lines().next().unwrap_or("");
                if !status.starts_with("HTTP/1.1 101") {
                    bail!("WebSocket upgrade refused: {status}");
                }
                self.start = at + 4;
                return Ok(());
            }
            if self.end == self.buf.len() {
                if self.buf.len() >= MAX_HANDSHAKE {
                    bail!("WebSocket upgrade response over {MAX_HANDSHAKE} bytes");
                }
                self.buf.resize(self.buf.len() * 2, 0);
            }
            let n = self.stream.read(&mut self.buf[self.end..]).await?;
            if n == 0 {
                bail!("connection closed during the WebSocket upgrade");
            }
            self.end += n;
        }
    }

    fn next_mask(&mut self) -> [u8; 4] {
        // xorshift32: masking keys need not be secret here, only present.
        let mut x = self.mask_state;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.mask_state = x;
        x.to_le_bytes()
    }

    /// Reads once from the socket into the buffer (waiting for data). Returns false when the
    /// server closed the TCP connection.
    pub async fn fill(&mut self) -> anyhow::Result<bool> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                // A frame larger than the buffer, or reads that keep filling it: grow.
                let wanted = (self.buf.len() * 2).max(self.needed());
                if wanted > MAX_FRAME + 14 {
                    bail!("frame over {MAX_FRAME} bytes");
                }
                self.buf.resize(wanted.max(self.buf.len() + 1), 0);
            }
        }
        let n = self.stream.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        if n > 0 && self.end == self.buf.len() && self.buf.len() < self.max_buf {
            // Busy connection: a larger buffer means fewer reads.
            let bigger = (self.buf.len() * 2).min(self.max_buf);
            self.buf.resize(bigger, 0);
        }
        Ok(n > 0)
    }

    /// Bytes the frame at `start` needs in all, as far as its header tells.
    fn needed(&self) -> usize {
        match parse_header(&self.buf[self.start..self.end]) {
            Ok(Some(h)) => h.header_len + h.payload_len,
            _ => self.buf.len(),
        }
    }

    /// The next complete frame in the buffer, or `None` when more must be read.
    pub fn next_frame(&mut self) -> anyhow::Result<Option<Frame<'_>>> {
        if self.fragments_done {
            self.fragments.clear();
            self.fragments_done = false;
        }
        loop {
            let Some(h) = parse_header(&self.buf[self.start..self.end])? else {
                return Ok(None);
            };
            if h.payload_len > MAX_FRAME {
                bail!("frame of {} bytes is over {MAX_FRAME}", h.payload_len);
            }
            let total = h.header_len + h.payload_len;
            if self.end - self.start < total {
                return Ok(None);
            }
            let from = self.start + h.header_len;
            let to = self.start + total;
            self.start = to;
            if let Some(mask) = h.mask {
                for (i, b) in self.buf[from..to].iter_mut().enumerate() {
                    *b ^= mask[i % 4];
                }
            }
            match h.opcode {
                TEXT | BINARY if h.fin && self.fragments.is_empty() => {
                    return Ok(Some(Frame::Data(&self.buf[from..to])));
                }
                TEXT | BINARY | CONTINUATION => {
                    if h.opcode != CONTINUATION && !self.fragments.is_empty() {
                        bail!("a new message began inside a fragmented one");
                    }
                    if self.fragments.len() + h.payload_len > MAX_FRAME {
                        bail!("fragmented message over {MAX_FRAME} bytes");
                    }
                    self.fragments.extend_from_slice(&self.buf[from..to]);
                    if h.fin {
                        self.fragments_done = true;
                        return Ok(Some(Frame::Data(&self.fragments)));
                    }
                }
                PING => return Ok(Some(Frame::Ping(&self.buf[from..to]))),
                PONG => {}
                CLOSE => {
                    let body = &self.buf[from..to];
                    let code = if body.len() >= 2 {
                        u16::from_be_bytes([body[0], body[1]])
                    } else {
                        1005
                    };
                    let reason = String::from_utf8_lossy(body.get(2..).unwrap_or(&[])).into_owned();
                    return Ok(Some(Frame::Close(code, reason)));
                }
                other => bail!("unknown WebSocket opcode {other:#x}"),
            }
        }
    }

    /// Sends a text message.
    pub async fn send_text(&mut self, data: &[u8]) -> anyhow::Result<()> {
        self.send(TEXT, data).await
    }

    /// Sends a binary message.
    pub async fn send_binary(&mut self, data: &[u8]) -> anyhow::Result<()> {
        self.send(BINARY, data).await
    }

    /// Answers a ping.
    pub async fn pong(&mut self, data: &[u8]) -> anyhow::Result<()> {
        self.send(PONG, data).await
    }

    /// Sends a close frame (normal closure) and does not wait for the answer.
    pub async fn close(&mut self) -> anyhow::Result<()> {
        self.send(CLOSE, &1000u16.to_be_bytes()).await
    }

    async fn send(&mut self, opcode: u8, data: &[u8]) -> anyhow::Result<()> {
        let mask = self.next_mask();
        self.out.clear();
        self.out.push(0x80 | opcode);
        match data.len() {
            n if n < 126 => self.out.push(0x80 | n as u8),
            n if n <= 0xFFFF => {
                self.out.push(0x80 | 126);
                self.out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                self.out.push(0x80 | 127);
                self.out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        self.out.extend_from_slice(&mask);
        self.out
            .extend(data.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream
            .write_all(&self.out)
            .await
            .map_err(|e| anyhow!("write failed: {e}"))
    }
}

/// A frame header.
struct Header {
    fin: bool,
    opcode: u8,
    mask: Option<[u8; 4]>,
    header_len: usize,
    payload_len: usize,
}

/// Parses the frame header at the start of `b`; `None` when incomplete.
fn parse_header(b: &[u8]) -> anyhow::Result<Option<Header>> {
    if b.len() < 2 {
        return Ok(None);
    }
    if b[0] & 0x70 != 0 {
        bail!("reserved bits set in a frame (no extension was negotiated)");
    }
    let (fin, opcode) = (b[0] & 0x80 != 0, b[0] & 0x0F);
    let masked = b[1] & 0x80 != 0;
    let (mut header_len, payload_len) = match b[1] & 0x7F {
        126 => {
            if b.len() < 4 {
                return Ok(None);
            }
            (4, usize::from(u16::from_be_bytes([b[2], b[3]])))
        }
        127 => {
            if b.len() < 10 {
                return Ok(None);
            }
            let mut len = [0u8; 8];
            len.copy_from_slice(&b[2..10]);
            let len = u64::from_be_bytes(len);
            (10, usize::try_from(len).unwrap_or(usize::MAX))
        }
        n => (2, usize::from(n)),
    };
    let mask = if masked {
        if b.len() < header_len + 4 {
            return Ok(None);
        }
        let mut m = [0u8; 4];
        m.copy_from_slice(&b[header_len..header_len + 4]);
        header_len += 4;
        Some(m)
    } else {
        None
    };
    Ok(Some(Header {
        fin,
        opcode,
        mask,
        header_len,
        payload_len,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![(if fin { 0x80 } else { 0 }) | opcode];
        match payload.len() {
            n if n < 126 => f.push(n as u8),
            n if n <= 0xFFFF => {
                f.push(126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(payload);
        f
    }

    /// A client whose buffer is filled by hand (the socket is a real, unused loopback one).
    async fn client_with(bytes: &[u8]) -> WsClient {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let mut buf = bytes.to_vec();
        buf.resize(bytes.len() + 16, 0);
        WsClient {
            stream,
            end: bytes.len(),
            buf,
            start: 0,
            max_buf: 1 << 16,
            fragments: Vec::new(),
            fragments_done: false,
            mask_state: 7,
            out: Vec::new(),
        }
    }

    #[tokio::test]
    async fn frames_are_cut_and_fragments_joined() {
        let big = vec![b'x'; 70_000];
        let mut bytes = frame(true, TEXT, b"hello");
        bytes.extend(frame(false, TEXT, b"ab"));
        bytes.extend(frame(true, PING, b"p"));
        bytes.extend(frame(true, CONTINUATION, b"cd"));
        bytes.extend(frame(true, BINARY, &big));
        bytes.extend(frame(true, CLOSE, b"\x03\xe8bye"));
        bytes.extend(frame(true, TEXT, b"partial")[..4].iter().copied());
        let mut c = client_with(&bytes).await;
        assert_eq!(c.next_frame().unwrap(), Some(Frame::Data(b"hello")));
        assert_eq!(c.next_frame().unwrap(), Some(Frame::Ping(b"p")));
        assert_eq!(c.next_frame().unwrap(), Some(Frame::Data(b"abcd")));
        assert_eq!(c.next_frame().unwrap(), Some(Frame::Data(&big[..])));
        assert_eq!(
            c.next_frame().unwrap(),
            Some(Frame::Close(1000, "bye".into()))
        );
        assert_eq!(c.next_frame().unwrap(), None);
    }

    #[tokio::test]
    async fn masked_server_frames_are_unmasked_and_bad_ones_refused() {
        let mask = [1u8, 2, 3, 4];
        let mut f = vec![0x81, 0x80 | 3];
        f.extend_from_slice(&mask);
        f.extend(b"abc".iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        let mut c = client_with(&f).await;
        assert_eq!(c.next_frame().unwrap(), Some(Frame::Data(b"abc")));
        let mut c = client_with(&[0xC1, 0x00]).await;
        assert!(c.next_frame().is_err());
    }
}
