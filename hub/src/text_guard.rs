//! Keeps a text frame that is not valid UTF-8 from ending a live connection.
//!
//! tungstenite rejects such a frame, and tokio-tungstenite then ends the
//! stream for good; the live protocol promises instead that a bad message
//! gets an error and the connection stays open. This reader sits between
//! the socket and tungstenite and watches the client's frames: a complete
//! (unfragmented) text frame whose payload is not UTF-8 is handed on as a
//! text frame holding U+FFFD alone — not JSON, so the client is answered
//! "JSON invalide" (JSON must be UTF-8), and nothing of it is acted on.
//! Every other byte passes through unchanged. Fragmented text messages are
//! left to tungstenite (browsers never fragment messages this small).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What stands in for an invalid payload.
const REPLACEMENT: &[u8] = "\u{FFFD}".as_bytes();
const OPCODE_TEXT: u8 = 0x1;
/// Read from the socket at most this much at a time.
const CHUNK: usize = 1024;

enum State {
    /// Collecting a frame header (2 to 14 bytes).
    Header,
    /// Passing `remaining` payload bytes through.
    Pass { remaining: u64 },
    /// Holding a whole small text frame until its UTF-8 can be checked.
    Text {
        header: Vec<u8>,
        payload: Vec<u8>,
        len: usize,
    },
}

pub struct TextGuard<S> {
    inner: S,
    /// Largest text frame checked; larger ones pass through (and are
    /// refused by tungstenite's size limit).
    limit: usize,
    state: State,
    header: Vec<u8>,
    /// Bytes ready for the reader.
    ready: Vec<u8>,
    ready_from: usize,
}

impl<S> TextGuard<S> {
    pub fn new(inner: S, limit: usize) -> TextGuard<S> {
        TextGuard {
            inner,
            limit,
            state: State::Header,
            header: Vec::new(),
            ready: Vec::new(),
            ready_from: 0,
        }
    }

    /// Needed header length once the first two bytes are known.
    fn header_len(b1: u8) -> usize {
        let ext = match b1 & 0x7F {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let mask = if b1 & 0x80 != 0 { 4 } else { 0 };
        2 + ext + mask
    }

    fn payload_len(header: &[u8]) -> u64 {
        match header[1] & 0x7F {
            126 => u64::from(u16::from_be_bytes([header[2], header[3]])),
            127 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&header[2..10]);
                u64::from_be_bytes(b)
            }
            n => u64::from(n),
        }
    }

    /// Runs the frame parser over bytes just read.
    fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match &mut self.state {
                State::Header => {
                    self.header.push(bytes[0]);
                    bytes = &bytes[1..];
                    if self.header.len() < 2 || self.header.len() < Self::header_len(self.header[1])
                    {
                        continue;
                    }
                    let header = std::mem::take(&mut self.header);
                    let len = Self::payload_len(&header);
                    let fin = header[0] & 0x80 != 0;
                    let masked = header[1] & 0x80 != 0;
                    let text = header[0] & 0x0F == OPCODE_TEXT;
                    if fin && masked && text && len <= self.limit as u64 {
                        let len = len as usize;
                        self.state = State::Text {
                            header,
                            payload: Vec::with_capacity(len),
                            len,
                        };
                        self.finish_text_if_complete();
                    } else {
                        self.ready.extend_from_slice(&header);
                        self.state = if len == 0 {
                            State::Header
                        } else {
                            State::Pass { remaining: len }
                        };
                    }
                }
                State::Pass { remaining } => {
                    let n = (*remaining).min(bytes.len() as u64) as usize;
                    self.ready.extend_from_slice(&bytes[..n]);
                    bytes = &bytes[n..];
                    *remaining -= n as u64;
                    if *remaining == 0 {
                        self.state = State::Header;
                    }
                }
                State::Text { payload, len, .. } => {
                    let n = (*len - payload.len()).min(bytes.len());
                    payload.extend_from_slice(&bytes[..n]);
                    bytes = &bytes[n..];
                    self.finish_text_if_complete();
                }
            }
        }
    }

    fn finish_text_if_complete(&mut self) {
        let State::Text { payload, len, .. } = &self.state else {
            return;
        };
        if payload.len() < *len {
            return;
        }
        let State::Text {
            header, payload, ..
        } = std::mem::replace(&mut self.state, State::Header)
        else {
            return;
        };
        let mask_at = header.len() - 4;
        let mask = [
            header[mask_at],
            header[mask_at + 1],
            header[mask_at + 2],
            header[mask_at + 3],
        ];
        let unmasked: Vec<u8> = payload
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ mask[i % 4])
            .collect();
        if std::str::from_utf8(&unmasked).is_ok() {
            self.ready.extend_from_slice(&header);
            self.ready.extend_from_slice(&payload);
        } else {
            // FIN + text, masked, with the replacement as payload.
            self.ready.push(0x80 | OPCODE_TEXT);
            self.ready.push(0x80 | REPLACEMENT.len() as u8);
            self.ready.extend_from_slice(&mask);
            self.ready
                .extend(REPLACEMENT.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for TextGuard<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.ready_from < this.ready.len() {
                let n = (this.ready.len() - this.ready_from).min(buf.remaining());
                buf.put_slice(&this.ready[this.ready_from..this.ready_from + n]);
                this.ready_from += n;
                if this.ready_from == this.ready.len() {
                    // An idle connection keeps no buffer: clients send
                    // little, so freeing it costs nothing that matters.
                    this.ready = Vec::new();
                    this.ready_from = 0;
                }
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [0u8; CHUNK];
            let mut read = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
            if read.filled().is_empty() {
                return Poll::Ready(Ok(())); // end of stream
            }
            this.feed(read.filled());
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for TextGuard<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked_frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [1u8, 2, 3, 4];
        let mut f = vec![first];
        if payload.len() < 126 {
            f.push(0x80 | payload.len() as u8);
        } else {
            f.push(0x80 | 126);
            f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        }
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        f
    }

    fn through(bytes: &[u8], step: usize) -> Vec<u8> {
        let mut g = TextGuard::new(tokio::io::empty(), 4096);
        for chunk in bytes.chunks(step) {
            g.feed(chunk);
        }
        g.ready
    }

    #[test]
    fn valid_frames_pass_unchanged_however_they_are_cut() {
        let mut stream = masked_frame(0x81, br#"{"action":"subscribe"}"#);
        stream.extend(masked_frame(0x82, &[0xFF, 0xFE, 0x00]));
        stream.extend(masked_frame(0x89, b"ping"));
        stream.extend(masked_frame(0x81, "é".repeat(200).as_bytes()));
        stream.extend(masked_frame(0x81, b""));
        for step in [1, 2, 3, 7, 1000] {
            assert_eq!(through(&stream, step), stream, "step {step}");
        }
    }

    #[test]
    fn invalid_text_becomes_a_replacement_character() {
        let bad = masked_frame(0x81, &[b'{', 0xFF, b'}']);
        let good = masked_frame(0x81, b"{}");
        let mut stream = bad.clone();
        stream.extend(&good);
        let mut expected = masked_frame(0x81, REPLACEMENT);
        expected.extend(&good);
        for step in [1, 4, 1000] {
            assert_eq!(through(&stream, step), expected, "step {step}");
        }
    }

    #[test]
    fn large_and_fragmented_frames_pass_through() {
        let big = masked_frame(0x81, &vec![0xFF; 5000]);
        assert_eq!(through(&big, 100), big);
        let fragment = masked_frame(0x01, &[0xFF]);
        assert_eq!(through(&fragment, 1), fragment);
    }
}
