//! A published session state as the live door puts it on the wire: its
//! `vote_update` and `session_closed` serialised once, and framed once, for
//! every subscriber. The core publishes domain state only; this cache is
//! the door's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use bytes::Bytes;
use uuid::Uuid;

use crate::core::Published;
use crate::live::protocol::{LiveCounts, LiveEvent, to_json};

/// Which frames of a state a follower gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Everything: `vote_update`, then `session_closed` when closed.
    Snapshot,
    /// What a follower that saw an earlier state needs: `session_closed`
    /// alone once closed (as the seed sends it), else the `vote_update`.
    Change,
}

/// One state's frames, made on first use and shared.
pub struct Framed {
    state: Arc<Published>,
    snapshot: OnceLock<Bytes>,
    change: OnceLock<Bytes>,
}

impl Framed {
    fn new(state: Arc<Published>) -> Framed {
        Framed {
            state,
            snapshot: OnceLock::new(),
            change: OnceLock::new(),
        }
    }

    pub fn version(&self) -> (u64, u32) {
        self.state.version()
    }

    /// Text frames (FIN, unmasked, as a server sends them).
    pub fn bytes(&self, framing: Framing) -> Bytes {
        let state = &self.state;
        match (framing, state.state.result) {
            (Framing::Change, Some(_)) => self
                .change
                .get_or_init(|| frames(&[&session_closed(state)]))
                .clone(),
            (Framing::Snapshot, Some(_)) => self
                .snapshot
                .get_or_init(|| frames(&[&vote_update(state), &session_closed(state)]))
                .clone(),
            (_, None) => self
                .snapshot
                .get_or_init(|| frames(&[&vote_update(state)]))
                .clone(),
        }
    }
}

/// The newest framed state of each followed session.
#[derive(Default)]
pub struct FrameCache {
    // A std lock: held for a lookup or an insert, never while serialising.
    framed: Mutex<HashMap<Uuid, Arc<Framed>>>,
}

impl FrameCache {
    /// The frames of `state`, shared with every other caller for the same
    /// version.
    pub fn framed(&self, state: &Arc<Published>) -> Arc<Framed> {
        let id = state.meta.id;
        let mut framed = self.framed.lock().unwrap_or_else(PoisonError::into_inner);
        match framed.get(&id) {
            Some(f) if f.version() == state.version() => f.clone(),
            // An older state than the one cached (a sweep that started
            // before it): framed apart, the cache keeps the newer.
            Some(f) if f.version() > state.version() => Arc::new(Framed::new(state.clone())),
            _ => {
                let f = Arc::new(Framed::new(state.clone()));
                framed.insert(id, f.clone());
                f
            }
        }
    }

    /// Drops a session no one follows any more.
    pub fn forget(&self, session: Uuid) {
        self.framed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&session);
    }
}

fn counts(published: &Published) -> LiveCounts<'_> {
    let state = &published.state;
    let tally = &state.tally;
    let motion = tally.motion();
    let standing = published.standing.as_ref();
    LiveCounts {
        votes_for: motion.map_or(0, |m| m.votes_for),
        votes_against: motion.map_or(0, |m| m.votes_against),
        votes_total: tally.total(),
        // An election's blank ballots are its abstentions, for seed clients.
        votes_abstain: motion.map_or(tally.blank(), |m| m.votes_abstain),
        seq: state.seq,
        needed: standing.map(|s| s.needed),
        adopted_if_closed_now: standing.map(|s| s.adopted_if_closed_now),
        ballots: tally.ballots,
        grades: tally.grades(),
        groups: standing.map_or(&[], |s| s.groups.as_slice()),
        options: tally.options(),
        closes_at: state.closes_at.filter(|_| state.result.is_none()),
    }
}

fn vote_update(published: &Published) -> String {
    to_json(&LiveEvent::VoteUpdate {
        session_id: published.meta.id,
        counts: counts(published),
    })
}

fn session_closed(published: &Published) -> String {
    let state = &published.state;
    let election = published.meta.kind.election().is_some();
    match state.result {
        Some(result) => to_json(&LiveEvent::SessionClosed {
            session_id: published.meta.id,
            result,
            counts: counts(published),
            elected: election.then_some(state.elected.elected.as_slice()),
            tied: election.then_some(state.elected.tied.as_slice()),
        }),
        None => vote_update(published),
    }
}

fn frames(texts: &[&str]) -> Bytes {
    let mut out = Vec::new();
    for text in texts {
        push_text_frame(&mut out, text.as_bytes());
    }
    Bytes::from(out)
}

fn push_text_frame(out: &mut Vec<u8>, payload: &[u8]) {
    out.push(0x81);
    match payload.len() {
        n if n < 126 => out.push(n as u8),
        n if n <= usize::from(u16::MAX) => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_their_length_in_the_shortest_form() {
        for (len, header) in [
            (0usize, vec![0x81, 0]),
            (125, vec![0x81, 125]),
            (126, vec![0x81, 126, 0, 126]),
            (65_535, vec![0x81, 126, 0xff, 0xff]),
            (65_536, vec![0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]),
        ] {
            let mut out = Vec::new();
            push_text_frame(&mut out, &vec![b'x'; len]);
            assert_eq!(&out[..header.len()], &header[..], "length {len}");
            assert_eq!(out.len(), header.len() + len);
        }
    }
}
