//! One live connection's way out: its socket's write side, shared by the
//! connection's own task (replies, pings, the close) and the fan-out
//! (session states) so that whole frames never interleave; the bytes the
//! kernel could not take yet; and, per followed session, the newest state
//! already sent, so that a connection only ever gets newer states. Over
//! HTTPS the outlet also holds the connection's TLS state: frames are
//! sealed under the same lock, and reads are opened through it.

use std::io::{self, IoSlice, Read, Write};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use smallvec::SmallVec;
use socket2::SockRef;
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::core::Subscription;
use crate::live::frames::{FrameCache, Framed, Framing};

pub struct Outlet {
    /// The connection's socket. Its reads belong to the connection's task;
    /// its writes happen under `out`.
    tcp: TcpStream,
    // A std lock: it is held for non-blocking writes and bookkeeping only,
    // never across an `.await`.
    out: Mutex<Out>,
    /// Woken when bytes wait for the socket, or a write failed: the
    /// connection's task then waits for the socket to drain, reading
    /// nothing more from its client meanwhile. That is what bounds
    /// `pending`: at most what one turn of that task wrote (an answer, a
    /// pong, the newest states) waits, never a growing queue.
    blocked: Notify,
}

struct Out {
    /// The connection's TLS state, when it came over HTTPS.
    tls: Option<Box<rustls::ServerConnection>>,
    /// Set when the connection ended: a sweep may hold the outlet a moment
    /// longer, but writes nothing more to it.
    closed: bool,
    /// Set before the connection's Close frame is written: no state may
    /// follow it on the wire (RFC 6455 §5.5.1).
    closing: bool,
    /// Set by a failed write, for the connection's task to notice.
    broken: bool,
    /// Bytes the kernel did not take yet; they leave before anything else.
    pending: Vec<u8>,
    /// Most connections follow one session: it lives here, with no
    /// allocation (and no cache miss) of its own.
    follows: SmallVec<[Follow; 1]>,
}

struct Follow {
    session: Uuid,
    updates: Subscription,
    /// Version of the newest state written (or queued in `pending`).
    sent: Option<(u64, u32)>,
}

impl Outlet {
    pub fn new(tcp: TcpStream, tls: Option<rustls::ServerConnection>) -> Outlet {
        Outlet {
            tcp,
            out: Mutex::new(Out {
                tls: tls.map(Box::new),
                closed: false,
                closing: false,
                broken: false,
                pending: Vec::new(),
                follows: SmallVec::new(),
            }),
            blocked: Notify::new(),
        }
    }

    /// The socket, for the connection's task to wait on.
    pub fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// Reads what the client sent (opened, over TLS) into `buf`; `Ok(0)`
    /// at the end of the stream.
    pub fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        if self.lock().tls.is_none() {
            loop {
                ready!(self.tcp.poll_read_ready(cx))?;
                match self.tcp.try_read(buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    read => return Poll::Ready(read),
                }
            }
        }
        loop {
            {
                let mut guard = self.lock();
                let Some(tls) = guard.tls.as_mut() else {
                    return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
                };
                match tls.reader().read(buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    read => return Poll::Ready(read),
                }
            }
            ready!(self.tcp.poll_read_ready(cx))?;
            // One TLS record at most at a time: what it opens is read out
            // before more is taken from the socket.
            let mut sealed = [0u8; 4096];
            let n = match self.tcp.try_read(&mut sealed) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            };
            let mut guard = self.lock();
            let Out {
                tls,
                pending,
                broken,
                closed,
                ..
            } = &mut *guard;
            let Some(tls) = tls.as_mut() else {
                return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
            };
            let mut rest = &sealed[..n];
            loop {
                // An empty read tells rustls the stream ended.
                tls.read_tls(&mut rest)?;
                let processed = tls.process_new_packets();
                // What rustls has to say back (an alert, a key update) goes
                // out like any frame.
                let mut reply = Vec::new();
                while tls.wants_write() {
                    tls.write_tls(&mut reply)?;
                }
                if !reply.is_empty() && !*closed {
                    self.push(pending, broken, &reply)?;
                }
                if let Err(e) = processed {
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, e)));
                }
                if rest.is_empty() {
                    break;
                }
            }
        }
    }

    /// Writes `bytes` (already sealed) after anything still waiting.
    fn queue(&self, out: &mut Out, bytes: &[u8]) -> io::Result<()> {
        self.push(&mut out.pending, &mut out.broken, bytes)
    }

    fn push(&self, pending: &mut Vec<u8>, broken: &mut bool, bytes: &[u8]) -> io::Result<()> {
        let mut rest = bytes;
        if pending.is_empty() {
            let n = write_some(&self.tcp, &[IoSlice::new(bytes)], broken)?;
            rest = &bytes[n..];
            if rest.is_empty() {
                return Ok(());
            }
        }
        pending.extend_from_slice(rest);
        self.blocked.notify_one();
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, Out> {
        // Nothing is left half-updated by a panic under this lock that a
        // later write could not live with.
        self.out.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes `bytes` (whole frames) after anything still waiting.
    pub fn write(&self, bytes: &[u8]) -> io::Result<()> {
        let mut guard = self.lock();
        let out = &mut *guard;
        if out.closed {
            return Err(io::ErrorKind::NotConnected.into());
        }
        match seal(out, &[bytes])? {
            Some(sealed) => self.queue(out, &sealed),
            None => self.queue(out, bytes),
        }
    }

    /// Sends the newest state of every followed session that moved since
    /// its last one, all in one write — unless bytes are waiting: the
    /// connection's task then sends the newest when the socket drains, so
    /// a slow reader gets fewer states, never stale ones. `offered` is a
    /// state the caller already holds framed (the fan-out's), saving a
    /// lookup.
    pub fn send_news(&self, cache: &FrameCache, offered: Option<(Uuid, &Arc<Framed>)>) {
        let mut guard = self.lock();
        if guard.pending.is_empty() && !guard.closed && !guard.closing {
            self.news(&mut guard, cache, offered);
        }
    }

    /// From now on no session state is written here: the connection's
    /// Close frame is the last thing its client receives.
    pub fn closing(&self) {
        self.lock().closing = true;
    }

    /// Writes what waits, then any news. `Ok(true)`: bytes still wait for
    /// the socket to become writable.
    pub fn drain(&self, cache: &FrameCache) -> io::Result<bool> {
        let mut guard = self.lock();
        let out = &mut *guard;
        if out.broken {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        if out.closed {
            return Err(io::ErrorKind::NotConnected.into());
        }
        if !out.pending.is_empty() {
            let n = write_some(&self.tcp, &[IoSlice::new(&out.pending)], &mut out.broken)?;
            out.pending.drain(..n);
            if !out.pending.is_empty() {
                return Ok(true);
            }
            // An idle connection keeps no buffer.
            out.pending = Vec::new();
        }
        if out.closing {
            return Ok(false);
        }
        self.news(out, cache, None);
        Ok(!out.pending.is_empty())
    }

    /// The news of `out`'s follows, written at once; what the kernel does
    /// not take waits in `pending`.
    fn news(&self, out: &mut Out, cache: &FrameCache, offered: Option<(Uuid, &Arc<Framed>)>) {
        // One followed session (the common case) needs no allocation.
        let mut first: Option<Bytes> = None;
        let mut more: Vec<Bytes> = Vec::new();
        for follow in &mut out.follows {
            let taken;
            let framed = match offered {
                Some((session, framed)) if session == follow.session => framed,
                _ if !follow.updates.has_news() && follow.sent.is_some() => continue,
                _ => match follow.updates.newest() {
                    Some(state) => {
                        taken = cache.framed(&state);
                        &taken
                    }
                    None => continue,
                },
            };
            if follow.sent.is_some_and(|sent| sent >= framed.version()) {
                continue;
            }
            // A follower that saw the session before gets what changed (at
            // the close, `session_closed` alone, as the seed sends it); a
            // new one gets the whole snapshot.
            let frames = match follow.sent {
                Some(_) => framed.bytes(Framing::Change),
                None => framed.bytes(Framing::Snapshot),
            };
            follow.sent = Some(framed.version());
            match first {
                None => first = Some(frames),
                Some(_) => more.push(frames),
            }
        }
        let Some(first) = first else {
            return;
        };
        if out.tls.is_some() {
            let frames: Vec<&[u8]> = std::iter::once(&first)
                .chain(&more)
                .map(|b| &b[..])
                .collect();
            let queued = seal(out, &frames).and_then(|sealed| match sealed {
                Some(sealed) => self.queue(out, &sealed),
                None => Ok(()),
            });
            if queued.is_err() {
                out.broken = true;
                self.blocked.notify_one();
            }
            return;
        }
        let written = if more.is_empty() {
            write_some(&self.tcp, &[IoSlice::new(&first)], &mut out.broken)
        } else {
            let slices: Vec<IoSlice<'_>> = std::iter::once(&first)
                .chain(&more)
                .map(|b| IoSlice::new(b))
                .collect();
            write_some(&self.tcp, &slices, &mut out.broken)
        };
        let Ok(mut skip) = written else {
            self.blocked.notify_one();
            return;
        };
        for frames in std::iter::once(&first).chain(&more) {
            if skip >= frames.len() {
                skip -= frames.len();
            } else {
                out.pending.extend_from_slice(&frames[skip..]);
                skip = 0;
            }
        }
        if !out.pending.is_empty() {
            self.blocked.notify_one();
        }
    }

    /// Waits until bytes wait for the socket or a write failed.
    pub async fn blocked(&self) {
        self.blocked.notified().await;
    }

    pub fn follow(&self, session: Uuid, updates: Subscription) {
        self.lock().follows.push(Follow {
            session,
            updates,
            sent: None,
        });
    }

    /// Stops following `session`; its states are no longer written here.
    pub fn unfollow(&self, session: Uuid) -> bool {
        let mut out = self.lock();
        let before = out.follows.len();
        out.follows.retain(|f| f.session != session);
        out.follows.len() != before
    }

    pub fn follows(&self, session: Uuid) -> bool {
        self.lock().follows.iter().any(|f| f.session == session)
    }

    pub fn follow_count(&self) -> usize {
        self.lock().follows.len()
    }

    /// Writes nothing more and lets go of every subscription; returns the
    /// sessions that were followed. The socket closes with the last holder
    /// of the outlet (a sweep in progress may hold it a moment longer).
    pub fn close(&self) -> Vec<Uuid> {
        let mut out = self.lock();
        // Over TLS the stream ends with close_notify, so that the client
        // sees a clean end rather than a cut (best effort: the socket may
        // be gone already).
        if !out.closed
            && let Some(tls) = out.tls.as_mut()
        {
            tls.send_close_notify();
            let mut last = Vec::new();
            while tls.wants_write() {
                if tls.write_tls(&mut last).is_err() {
                    break;
                }
            }
            if out.pending.is_empty() && !last.is_empty() {
                let mut broken = false;
                let _ = write_some(&self.tcp, &[IoSlice::new(&last)], &mut broken);
            }
        }
        out.closed = true;
        out.pending = Vec::new();
        out.follows.drain(..).map(|f| f.session).collect()
    }
}

/// `frames` sealed as TLS records, when the connection is over TLS.
fn seal(out: &mut Out, frames: &[&[u8]]) -> io::Result<Option<Vec<u8>>> {
    let Some(tls) = out.tls.as_mut() else {
        return Ok(None);
    };
    let mut sealed = Vec::new();
    for frame in frames {
        let mut rest = *frame;
        while !rest.is_empty() {
            // rustls takes a bounded amount at a time; what it sealed is
            // taken out before it is given more.
            let n = tls.writer().write(rest)?;
            rest = &rest[n..];
            let mut drained = false;
            while tls.wants_write() {
                tls.write_tls(&mut sealed)?;
                drained = true;
            }
            if n == 0 && !drained {
                return Err(io::ErrorKind::WriteZero.into());
            }
        }
    }
    Ok(Some(sealed))
}

/// One non-blocking write; a full socket wrote nothing.
fn write_some(tcp: &TcpStream, slices: &[IoSlice<'_>], broken: &mut bool) -> io::Result<usize> {
    // send(2) rather than write(2)/writev(2): the socket call skips the
    // file layer, a measurable share of the work when thousands of
    // sockets each get one small frame per tally.
    let socket = SockRef::from(tcp);
    let sent = tcp.try_io(Interest::WRITABLE, || match slices {
        [one] => socket.send(one),
        _ => socket.send_vectored(slices),
    });
    match sent {
        Ok(n) => Ok(n),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            ) =>
        {
            Ok(0)
        }
        Err(e) => {
            *broken = true;
            Err(e)
        }
    }
}
