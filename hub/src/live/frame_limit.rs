//! Watches the lengths a client declares in its frame headers, so that a
//! connection fails as soon as a length is known to be wrong — RFC 6455
//! §5.2's 64-bit length with its high bit set (1002), or a message over
//! the limit (1009) — rather than after the masking key or the payload
//! arrive, which is when tungstenite would see it. It reads headers only:
//! payloads pass by uncounted, and everything else about frames is left
//! to tungstenite.

use std::io;

/// Why a declared length fails the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error("a 64-bit frame length with its most significant bit set")]
    BadLength,
    #[error("a message over the size limit")]
    TooBig,
}

impl Violation {
    /// The close code this violation ends the connection with.
    pub fn close_code(self) -> u16 {
        match self {
            Violation::BadLength => 1002,
            Violation::TooBig => 1009,
        }
    }

    /// What the Close frame says.
    pub fn reason(self) -> &'static str {
        match self {
            Violation::BadLength => "bad frame length",
            Violation::TooBig => "message too big (4 KiB at most)",
        }
    }

    /// The violation carried by an I/O error that [`FrameLimit`] raised.
    pub fn of(e: &io::Error) -> Option<Violation> {
        e.get_ref()?.downcast_ref::<Violation>().copied()
    }
}

pub struct FrameLimit {
    /// Largest message (all of its fragments) a client may send.
    max: u64,
    /// The header read so far: 2 bytes, then 2 or 8 of extended length.
    header: [u8; 10],
    have: usize,
    /// Payload and mask bytes still to pass before the next header.
    skip: u64,
    /// Bytes of the data message being received, across its fragments.
    message: u64,
}

impl FrameLimit {
    pub fn new(max: usize) -> FrameLimit {
        FrameLimit {
            max: max as u64,
            header: [0; 10],
            have: 0,
            skip: 0,
            message: 0,
        }
    }

    /// Looks at the next bytes the client sent.
    pub fn check(&mut self, mut bytes: &[u8]) -> Result<(), Violation> {
        while !bytes.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len() as u64);
                self.skip -= n;
                bytes = &bytes[n as usize..];
                continue;
            }
            self.header[self.have] = bytes[0];
            self.have += 1;
            bytes = &bytes[1..];
            if self.have < 2 {
                continue;
            }
            let extended = match self.header[1] & 0x7f {
                126 => 2,
                127 => 8,
                _ => 0,
            };
            if self.have < 2 + extended {
                continue;
            }
            let len = match extended {
                0 => u64::from(self.header[1] & 0x7f),
                2 => u64::from(u16::from_be_bytes([self.header[2], self.header[3]])),
                _ => {
                    if self.header[2] & 0x80 != 0 {
                        return Err(Violation::BadLength);
                    }
                    let mut n = [0u8; 8];
                    n.copy_from_slice(&self.header[2..10]);
                    u64::from_be_bytes(n)
                }
            };
            let fin = self.header[0] & 0x80 != 0;
            let opcode = self.header[0] & 0x0f;
            let control = opcode & 0x8 != 0;
            if control {
                if len > self.max {
                    return Err(Violation::TooBig);
                }
            } else {
                // A new data message starts unless this continues one.
                if opcode != 0 {
                    self.message = 0;
                }
                self.message = self.message.saturating_add(len);
                if self.message > self.max {
                    return Err(Violation::TooBig);
                }
                if fin {
                    self.message = 0;
                }
            }
            let mask = if self.header[1] & 0x80 != 0 { 4 } else { 0 };
            self.skip = len + mask;
            self.have = 0;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(fin: bool, opcode: u8, len: usize) -> Vec<u8> {
        let mut f = vec![if fin { 0x80 } else { 0 } | opcode];
        match len {
            n if n < 126 => f.push(0x80 | n as u8),
            n if n <= 0xffff => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(0x80 | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(&[1, 2, 3, 4]);
        f.extend(std::iter::repeat_n(b'x', len));
        f
    }

    #[test]
    fn frames_within_the_limit_pass_byte_by_byte_or_whole() {
        let mut stream = Vec::new();
        for len in [0, 5, 125, 126, 4096, 300] {
            stream.extend(masked(true, 1, len));
        }
        stream.extend(masked(true, 9, 10));
        stream.extend(masked(false, 1, 2000));
        stream.extend(masked(true, 0, 2096));
        let mut whole = FrameLimit::new(4096);
        assert_eq!(whole.check(&stream), Ok(()));
        let mut bytewise = FrameLimit::new(4096);
        for b in &stream {
            assert_eq!(bytewise.check(std::slice::from_ref(b)), Ok(()));
        }
    }

    #[test]
    fn a_length_is_judged_as_soon_as_it_is_known() {
        let mut limit = FrameLimit::new(4096);
        // No masking key, no payload: the length alone fails it.
        assert_eq!(limit.check(&[0x81, 0xfe, 0x10]), Ok(()));
        assert_eq!(limit.check(&[0x01]), Err(Violation::TooBig));
        let mut limit = FrameLimit::new(4096);
        assert_eq!(
            limit.check(&[0x81, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0]),
            Err(Violation::BadLength)
        );
    }

    #[test]
    fn fragments_add_up() {
        let mut limit = FrameLimit::new(4096);
        assert_eq!(limit.check(&masked(false, 1, 3000)), Ok(()));
        assert_eq!(limit.check(&masked(false, 0, 1000)), Ok(()));
        // A ping between fragments does not count towards the message.
        assert_eq!(limit.check(&masked(true, 9, 100)), Ok(()));
        assert_eq!(
            limit.check(&masked(true, 0, 97)[..4]),
            Err(Violation::TooBig)
        );
    }

    #[test]
    fn the_violation_survives_an_io_error() {
        let e = io::Error::new(io::ErrorKind::InvalidData, Violation::TooBig);
        assert_eq!(Violation::of(&e), Some(Violation::TooBig));
        assert_eq!(Violation::of(&io::Error::other("x")), None);
    }
}
