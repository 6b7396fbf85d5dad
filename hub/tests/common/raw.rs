//! A WebSocket client at the byte level, for tests of what a library would
//! not let a client do: bad frame headers, half headers, raw close frames.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct RawLive {
    pub stream: TcpStream,
    /// Bytes read and not yet consumed.
    buf: Vec<u8>,
}

/// One frame as the server sent it.
#[derive(Debug, PartialEq)]
pub struct Frame {
    pub fin: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl Frame {
    /// The close code of a Close frame, if its payload has one.
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode == 0x8 && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

/// What the next read brought.
#[derive(Debug, PartialEq)]
pub enum Read {
    Frame(Frame),
    /// The server closed the TCP connection.
    Eof,
}

impl RawLive {
    /// Connects and completes the opening handshake; panics unless `101`.
    pub async fn connect(addr: SocketAddr) -> RawLive {
        let mut live = RawLive::request(
            addr,
            &format!(
                "GET /live HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ),
        )
        .await;
        let head = live.response_head().await;
        assert!(head.starts_with("HTTP/1.1 101"), "handshake: {head}");
        live
    }

    /// Sends `request` as is on a new connection.
    pub async fn request(addr: SocketAddr, request: &str) -> RawLive {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.write_all(request.as_bytes()).await.expect("request");
        RawLive {
            stream,
            buf: Vec::new(),
        }
    }

    /// The response's status line and headers.
    pub async fn response_head(&mut self) -> String {
        loop {
            if let Some(at) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..at]).into_owned();
                self.buf.drain(..at + 4);
                return head;
            }
            assert!(self.fill().await, "closed before the response head");
        }
    }

    /// The status code of the response.
    pub async fn status(&mut self) -> u16 {
        let head = self.response_head().await;
        head.split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status in {head:?}"))
    }

    /// Reads more; false at end of stream.
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(10), self.stream.read(&mut chunk))
            .await
            .expect("something within 10 s")
            .unwrap_or(0);
        self.buf.extend_from_slice(&chunk[..n]);
        n > 0
    }

    /// Sends raw bytes.
    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("send");
    }

    /// Sends one masked frame (a zero mask key leaves the payload as is).
    pub async fn send_frame(&mut self, fin: bool, opcode: u8, payload: &[u8]) {
        let mut frame = vec![if fin { 0x80 } else { 0 } | opcode];
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n <= 0xffff => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&[0, 0, 0, 0]);
        frame.extend_from_slice(payload);
        self.send_bytes(&frame).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.send_frame(true, 0x1, text.as_bytes()).await;
    }

    /// The next frame the server sends, or the end of the connection.
    pub async fn read(&mut self) -> Read {
        loop {
            if let Some(frame) = self.parse() {
                return Read::Frame(frame);
            }
            if !self.fill().await {
                assert!(self.buf.is_empty(), "a partial frame before the end");
                return Read::Eof;
            }
        }
    }

    /// The next frame; panics at the end of the connection.
    pub async fn frame(&mut self) -> Frame {
        match self.read().await {
            Read::Frame(f) => f,
            Read::Eof => panic!("expected a frame, the connection ended"),
        }
    }

    /// The next text frame as JSON, skipping pings.
    pub async fn json(&mut self) -> serde_json::Value {
        loop {
            let f = self.frame().await;
            match f.opcode {
                0x9 | 0xA => continue,
                0x1 => return serde_json::from_slice(&f.payload).expect("json"),
                _ => panic!("expected a text frame, got {f:?}"),
            }
        }
    }

    fn parse(&mut self) -> Option<Frame> {
        let b = &self.buf;
        if b.len() < 2 {
            return None;
        }
        assert_eq!(b[1] & 0x80, 0, "server frames are not masked");
        let (len, head) = match b[1] & 0x7f {
            126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
            127 if b.len() >= 10 => {
                let mut n = [0u8; 8];
                n.copy_from_slice(&b[2..10]);
                (u64::from_be_bytes(n) as usize, 10)
            }
            126 | 127 => return None,
            n => (n as usize, 2),
        };
        if b.len() < head + len {
            return None;
        }
        let frame = Frame {
            fin: b[0] & 0x80 != 0,
            opcode: b[0] & 0x0f,
            payload: b[head..head + len].to_vec(),
        };
        self.buf.drain(..head + len);
        Some(frame)
    }
}
