//! What other hubs on a shared store changed, read into this one: the
//! sessions whose stored `seq` moved (only what changed, when the store can
//! tell; else the whole session), the drafts they deleted, the roll when
//! its version moved — inside a batch's transaction under its locks, or on
//! a notification (`Writer::follow`, which writes nothing).

use std::sync::Arc;

use uuid::Uuid;

use super::board::{Rebuilt, state_of};
use super::{Batch, Core, CoreSession, Writer};
use crate::core::error::HubError;
use crate::core::roll::Roll;
use crate::core::session::Electorate;
use crate::core::store::{Locked, StoreError, Txn};

impl Writer {
    /// Reads again the sessions another hub changed since this one saw
    /// them, and shows them to readers. Nothing is written: the read-only
    /// transaction is dropped.
    pub(super) fn follow(&mut self, ids: &[Uuid]) -> Result<(), HubError> {
        let mut batch = Batch {
            roll_len: self.core.roll.len(),
            ..Batch::default()
        };
        let read = self.store.begin().and_then(|mut txn| {
            self.core.catch_up_roll(&mut *txn, &mut batch, false)?;
            if let Locked::Seqs(seqs) = txn.seqs(ids)? {
                self.core.forget_missing(ids, &seqs, &mut batch);
                self.core.refresh(seqs, &mut *txn, &mut batch, |_| true)?;
            }
            Ok(())
        });
        if let Err(e) = read {
            // Memory goes back to what readers see; the next follow reads
            // it again.
            self.core.undo(&batch);
            return Err(e.into());
        }
        if !batch.reloaded.is_empty()
            || !batch.caught_up.is_empty()
            || !batch.deleted.is_empty()
            || batch.roll_before.is_some()
        {
            // New sessions from another hub change the agenda's list.
            batch.listed |= batch.before.iter().any(|(_, before)| before.is_none());
            self.core.publish(&batch);
        }
        Ok(())
    }
}

impl Core {
    /// Reads again, inside the batch's transaction and under its locks,
    /// the sessions another hub changed since this one last saw them (their
    /// stored `seq` is not the one in memory, or this hub never saw them).
    /// `told`: another hub said these changed (a notification): read even
    /// at the same `seq`, for what moves without one (a place on the
    /// agenda).
    pub fn refresh(
        &mut self,
        seqs: Vec<(Uuid, u64)>,
        txn: &mut dyn Txn,
        batch: &mut Batch,
        told: impl Fn(Uuid) -> bool,
    ) -> Result<(), StoreError> {
        for (id, seq) in seqs {
            if !told(id) && self.sessions.get(&id).is_some_and(|s| s.state.seq == seq) {
                continue;
            }
            if self.catch_up(id, txn, batch)? {
                continue;
            }
            let Some(stored) = txn.session(id)? else {
                continue;
            };
            let Rebuilt {
                session,
                log,
                voted,
            } = Rebuilt::of(stored);
            if !batch.before.iter().any(|(s, _)| *s == id) {
                let before = self
                    .sessions
                    .get(&id)
                    .map(|s| (s.meta.clone(), s.state.clone()));
                batch.before.push((id, before));
            }
            if !batch.log_before.iter().any(|(s, _)| *s == id) {
                batch.log_before.push((id, self.logs.get(&id).cloned()));
            }
            let view = match log {
                Some((log, view)) => {
                    self.logs.insert(id, log);
                    Some(view)
                }
                None => {
                    self.logs.remove(&id);
                    None
                }
            };
            if let Some(voted) = &voted {
                self.voted.insert(id, voted.clone());
            }
            self.sessions.insert(id, session);
            batch.reloaded.push((id, view, voted));
        }
        Ok(())
    }

    /// Sessions asked for that the store no longer has (a draft another hub
    /// deleted): gone from memory too, and from readers once published.
    pub fn forget_missing(&mut self, asked: &[Uuid], found: &[(Uuid, u64)], batch: &mut Batch) {
        let gone: Vec<Uuid> = if asked.is_empty() {
            self.sessions
                .keys()
                .filter(|id| !found.iter().any(|(f, _)| f == *id))
                .copied()
                .collect()
        } else {
            asked
                .iter()
                .filter(|id| self.sessions.contains_key(id) && !found.iter().any(|(f, _)| f == *id))
                .copied()
                .collect()
        };
        for id in gone {
            if let Some(session) = self.sessions.remove(&id) {
                batch.before.push((id, Some((session.meta, session.state))));
                batch.log_before.push((id, self.logs.remove(&id)));
                batch.deleted.push(id);
                batch.listed = true;
            }
        }
    }

    /// Reads only what another hub changed in session `id` since this one
    /// saw it: its row and stored tally, who voted since, its log's new
    /// entries. False when the store cannot tell, or this hub never saw
    /// the session: it is then read whole.
    fn catch_up(
        &mut self,
        id: Uuid,
        txn: &mut dyn Txn,
        batch: &mut Batch,
    ) -> Result<bool, StoreError> {
        let Some(known) = self.sessions.get(&id) else {
            return Ok(false);
        };
        let logged = self.logs.get(&id).map(|l| l.frontier.size());
        let Some(changes) = txn.changes(id, known.state.seq, logged)? else {
            return Ok(false);
        };
        if !batch.before.iter().any(|(s, _)| *s == id) {
            batch
                .before
                .push((id, Some((known.meta.clone(), known.state.clone()))));
        }
        if !batch.log_before.iter().any(|(s, _)| *s == id) {
            batch.log_before.push((id, self.logs.get(&id).cloned()));
        }
        let stored = changes.session;
        let meta = Arc::new(stored.meta.clone());
        let mut leaves = Vec::with_capacity(changes.entries.len());
        if let Some(log) = self.logs.get_mut(&id) {
            for entry in &changes.entries {
                let leaf = crate::core::audit::tree::leaf_hash(entry.as_bytes());
                log.frontier.push(leaf);
                leaves.push(leaf);
            }
        }
        let voted = if meta.electorate == Electorate::Roll {
            self.voted
                .entry(id)
                .or_default()
                .extend(changes.voted.iter().cloned());
            changes.voted
        } else {
            Vec::new()
        };
        let state = state_of(&stored, changes.tally);
        self.sessions.insert(id, CoreSession { meta, state });
        batch.caught_up.push((id, leaves, changes.head, voted));
        Ok(true)
    }

    /// Reads again, inside the batch's transaction, the roll, attendance
    /// and meetings when another hub changed them (the store's roll
    /// version is not the one this hub last saw).
    /// `exclusive`: the batch changes the roll, and holds its version
    /// until it commits (others that only read it wait for that, not for
    /// each other).
    pub fn catch_up_roll(
        &mut self,
        txn: &mut dyn Txn,
        batch: &mut Batch,
        exclusive: bool,
    ) -> Result<(), StoreError> {
        let Some(version) = txn.roll_version(exclusive)? else {
            return Ok(());
        };
        batch.roll_version = Some(version);
        if self.roll_seen == Some(version) {
            return Ok(());
        }
        let loaded = txn.roll()?;
        let mut roll = Roll::default();
        for member in loaded.voters {
            roll.put(member);
        }
        let before = (
            std::mem::replace(&mut self.roll, roll),
            std::mem::replace(&mut self.present, loaded.present.into_iter().collect()),
            std::mem::replace(&mut self.checked, loaded.checked.into_iter().collect()),
            std::mem::replace(&mut self.meetings, loaded.meetings),
        );
        batch.roll_before.get_or_insert(Box::new(before));
        batch.roll_len = batch.roll_len.min(self.roll.len());
        self.roll_seen = Some(version);
        Ok(())
    }

    /// After a batch that changed the roll: the version it leaves in the
    /// store is this hub's own doing, not news to read again.
    pub fn saw_own_roll(&mut self, txn: &mut dyn Txn, batch: &Batch) -> Result<(), StoreError> {
        let changed = batch.roll_len != self.roll.len()
            || !batch.members_before.is_empty()
            || !batch.presence.is_empty()
            || !batch.checked.is_empty()
            || batch.meetings.is_some();
        if changed && let Some(before) = batch.roll_version {
            // Held since the batch began: the one change since is its own.
            // Anything else means another hub's change to read again.
            let after = txn.roll_version(true)?;
            self.roll_seen = after.filter(|a| *a == before + 1);
        }
        Ok(())
    }
}
