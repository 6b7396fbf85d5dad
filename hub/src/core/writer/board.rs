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

use crate::core::store::{Loaded, StoredSession};
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
        let mut completed = batch.completed.as_slice();
        for a in &batch.appended {
            let (heads, rest) = completed.split_at(a.completed.min(completed.len()));
            completed = rest;
            let leaves = &mut registry.logs.entry(a.session).or_default().leaves;
            // The writer's heads belong to these leaves only if the view
            // holds every leaf before this one; a view that does not would
            // prove against another tree than the one signed.
            if leaves.len() as u64 == a.index {
                leaves.push_hashed(a.leaf, heads);
            } else {
                tracing::error!(session = %a.session, index = a.index, held = leaves.len(), "a log's published leaves are out of step with the writer's");
                leaves.push(a.leaf);
            }
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
pub(super) struct Rebuilt {
    pub session: CoreSession,
    pub log: Option<(super::log::SessionLog, LogView)>,
    pub voted: Option<HashSet<String>>,
}

impl Rebuilt {
    pub(super) fn of(stored: StoredSession) -> Rebuilt {
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
pub(super) fn state_of(stored: &StoredSession, tally: Tally) -> SessionState {
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
