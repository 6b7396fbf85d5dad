//! What readers see of the writer's memory: restored at start, published
//! after each commit, and the memory put back when a batch is undone.

use std::sync::Arc;

use tokio::sync::watch;
use uuid::Uuid;

use super::{Batch, Core, CoreSession};
use crate::core::hub::{LogView, Published};
use crate::core::rules::Outcome;
use crate::core::session::{Electorate, SessionState, Status};
use std::collections::HashSet;

use crate::core::roll::Roll;
use crate::core::store::{Loaded, StoreError, StoredSession, Txn};
use crate::core::tally::Tally;

impl Core {
    pub fn restore(&mut self, loaded: Loaded) {
        for member in loaded.voters {
            self.roll.put(member);
        }
        self.present = loaded.present.into_iter().collect();
        self.checked = loaded.checked.into_iter().collect();
        self.meetings = loaded.meetings;
        for stored in loaded.sessions {
            let Rebuilt {
                session,
                log,
                voted,
            } = Rebuilt::of(stored);
            let id = session.meta.id;
            if let Some((log, view)) = log {
                self.logs.insert(id, log);
                self.board.write().logs.insert(id, view);
            }
            if let Some(voted) = voted {
                self.voted.insert(id, voted);
            }
            self.sessions.insert(id, session);
        }
        let mut registry = self.board.write();
        registry.roll = self.roll.clone();
        registry.present = self.present.clone();
        registry.voted = self.voted.clone();
        registry.meetings = self.meetings.clone();
        let mut ids: Vec<(&Uuid, &CoreSession)> = self.sessions.iter().collect();
        ids.sort_by_key(|(_, s)| s.meta.created_at);
        for (id, session) in ids {
            let presence = self.presence_of(session);
            registry.order.push(*id);
            registry.sessions.insert(
                *id,
                watch::Sender::new(Published::of(&session.meta, &session.state, presence)),
            );
        }
    }

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
        told: bool,
    ) -> Result<(), StoreError> {
        for (id, seq) in seqs {
            if !told && self.sessions.get(&id).is_some_and(|s| s.state.seq == seq) {
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

    /// Puts memory back as it was before the batch.
    pub fn undo(&mut self, batch: &Batch) {
        for (id, before) in batch.before.iter().rev() {
            match before {
                Some((meta, state)) => {
                    self.sessions.insert(
                        *id,
                        CoreSession {
                            meta: meta.clone(),
                            state: state.clone(),
                        },
                    );
                }
                None => {
                    self.sessions.remove(id);
                }
            }
        }
        for member in batch.members_before.iter().rev() {
            self.roll.put(member.clone());
        }
        self.roll.truncate(batch.roll_len);
        for (member, present) in batch.presence.iter().rev() {
            if *present {
                self.present.remove(member);
            } else {
                self.present.insert(member.clone());
            }
        }
        for (session, member) in &batch.voted {
            if let Some(voted) = self.voted.get_mut(session) {
                voted.remove(member);
            }
        }
        for (session, before) in batch.log_before.iter().rev() {
            match before {
                Some(log) => self.logs.insert(*session, log.clone()),
                None => self.logs.remove(session),
            };
        }
        for (member, before) in batch.checked.iter().rev() {
            match before {
                Some(was) => self.checked.insert(member.clone(), *was),
                None => self.checked.remove(member),
            };
        }
        if let Some((present, checked)) = &batch.present_before {
            self.present = present.clone();
            self.checked = checked.clone();
        }
        if let Some(meetings) = &batch.meetings {
            self.meetings = meetings.clone();
        }
        // Last: the roll as it was before another hub's changes were read.
        if let Some(before) = &batch.roll_before {
            (self.roll, self.present, self.checked, self.meetings) = (**before).clone();
            // Read again next time.
            self.roll_seen = None;
        }
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

    /// Shows readers what the batch committed.
    pub fn publish(&self, batch: &Batch) {
        let mut registry = self.board.write();
        if batch.roll_before.is_some() {
            // Another hub changed the roll: readers get it whole.
            registry.roll = self.roll.clone();
            registry.present = self.present.clone();
            registry.meetings = self.meetings.clone();
            registry.roll_version += 1;
        }
        // The roll first: sessions' standings may count who is present.
        let added = self.roll.added_since(batch.roll_len);
        if !added.is_empty() {
            tracing::info!(added = added.len(), "voters registered");
        }
        for member in added {
            registry.roll.put(member.clone());
        }
        for before in &batch.members_before {
            if let Some(member) = self.roll.by_id(&before.id) {
                registry.roll.put(member.clone());
            }
        }
        let attendance_moved = !batch.presence.is_empty()
            || batch.present_before.is_some()
            || batch.roll_before.is_some()
            || !batch.members_before.is_empty()
            || !added.is_empty();
        if attendance_moved {
            registry.roll_version += 1;
        }
        // Presence changes one member at a time (a ballot checks its voter
        // in): readers get the changes, not a copy of everyone present.
        if batch.present_before.is_some() || batch.roll_before.is_some() {
            registry.present = self.present.clone();
        } else {
            for (member, present) in &batch.presence {
                if *present {
                    registry.present.insert(member.clone());
                } else {
                    registry.present.remove(member);
                }
            }
        }
        // Attendance is a walk over the roll: once per batch at most, and
        // only for a vote whose rule counts who is there.
        let room = std::cell::OnceCell::new();
        let presence_of = |session: &CoreSession| {
            session
                .meta
                .rule
                .quorum_present
                .map(|_| *room.get_or_init(|| self.attendance().presence()))
        };
        for (id, before) in &batch.before {
            let Some(session) = self.sessions.get(id) else {
                if batch.deleted.contains(id) {
                    tracing::info!(session = %id, "draft deleted");
                    registry.sessions.remove(id);
                    registry.order.retain(|s| s != id);
                }
                continue;
            };
            let published = Published::of(&session.meta, &session.state, presence_of(session));
            match before {
                None => {
                    tracing::info!(session = %id, title = %session.meta.title, status = session.state.status.as_str(), "session created");
                    registry.order.push(*id);
                    registry.sessions.insert(*id, watch::Sender::new(published));
                }
                Some((_, before)) => {
                    if session.state.status != before.status {
                        tracing::info!(
                            session = %id,
                            status = session.state.status.as_str(),
                            result = session.state.result.map(Outcome::as_str).unwrap_or(""),
                            ballots = session.state.tally.ballots,
                            "session {}",
                            if session.state.status == Status::Closed { "closed" } else { "opened" }
                        );
                    }
                    if let Some(live) = registry.sessions.get(id) {
                        live.send_replace(published);
                    }
                }
            }
        }
        // Who is present moved: open votes with a quorum of those present
        // stand differently.
        if attendance_moved {
            for (id, session) in &self.sessions {
                let counts_presence = session.meta.rule.quorum_present.is_some();
                if counts_presence
                    && session.state.status == Status::Open
                    && !batch.before.iter().any(|(b, _)| b == id)
                    && let Some(live) = registry.sessions.get(id)
                {
                    // The same seq, as a newer version: subscribers get it.
                    let replay = live.borrow().replay + 1;
                    let mut again = Published::clone(&Published::of(
                        &session.meta,
                        &session.state,
                        presence_of(session),
                    ));
                    again.replay = replay;
                    live.send_replace(Arc::new(again));
                }
            }
        }
        // Sessions read again from the store: their log and who voted, as
        // stored, before what this batch added to them.
        for (id, view, voted) in &batch.reloaded {
            match view {
                Some(view) => registry.logs.insert(*id, view.clone()),
                None => registry.logs.remove(id),
            };
            if let Some(voted) = voted {
                registry.voted.insert(*id, voted.clone());
            }
        }
        // What other hubs added to sessions this one follows, before what
        // this batch added.
        for (id, leaves, head, voted) in &batch.caught_up {
            let view = registry.logs.entry(*id).or_default();
            for leaf in leaves {
                view.leaves.push(*leaf);
            }
            if head.is_some() {
                view.head = *head;
            }
            if !voted.is_empty() {
                registry
                    .voted
                    .entry(*id)
                    .or_default()
                    .extend(voted.iter().cloned());
            }
        }
        for (session, member) in &batch.voted {
            registry
                .voted
                .entry(*session)
                .or_default()
                .insert(member.clone());
        }
        for (session, leaf) in &batch.appended {
            registry
                .logs
                .entry(*session)
                .or_default()
                .leaves
                .push(*leaf);
        }
        for (session, head) in &batch.heads {
            registry.logs.entry(*session).or_default().head = Some(*head);
        }
        if batch.meetings.is_some() {
            tracing::info!(meeting = %self.current_meeting(), "a new meeting began");
            registry.meetings = self.meetings.clone();
        }
        drop(registry);
        if batch.listed {
            self.board.lobby.send_modify(|v| *v += 1);
        }
        self.board.tick();
    }
}

/// A session as its stored rows make it: its tally counted from its
/// ballots (each with the weight and groups it was cast with), its log (the
/// writer's frontier and the readers' view), and who voted (roll sessions).
struct Rebuilt {
    session: CoreSession,
    log: Option<(super::log::SessionLog, LogView)>,
    voted: Option<HashSet<String>>,
}

impl Rebuilt {
    fn of(stored: StoredSession) -> Rebuilt {
        let meta = Arc::new(stored.meta.clone());
        let mut tally = Tally::new(meta.kind.shape());
        for b in &stored.ballots {
            tally.add(&b.ballot, b.weight, &b.groups);
        }
        for b in &stored.secret {
            tally.add(&b.ballot, b.weight, &[]);
        }
        let log = stored.log.as_ref().map(|stored_log| {
            let (log, leaves) = super::log::SessionLog::restore(stored_log);
            let view = LogView {
                leaves: crate::core::audit::tree::Levels::of(&leaves),
                head: stored_log.head,
            };
            (log, view)
        });
        let voted = (meta.electorate == Electorate::Roll).then(|| {
            stored
                .ballots
                .iter()
                .map(|b| b.voter.clone())
                .chain(stored.voted.iter().cloned())
                .collect()
        });
        let state = state_of(&stored, tally);
        Rebuilt {
            session: CoreSession { meta, state },
            log,
            voted,
        }
    }
}

/// Where a stored session stands, with its tally.
fn state_of(stored: &StoredSession, tally: Tally) -> SessionState {
    SessionState {
        status: stored.status,
        position: stored.position,
        opened_at: stored.opened_at,
        closes_at: stored.closes_at,
        closed_at: stored.closed_at,
        result: stored.result,
        elected: stored.elected.clone(),
        tally,
        seq: stored.seq,
    }
}
