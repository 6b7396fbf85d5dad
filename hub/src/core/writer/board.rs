//! What readers see of the writer's memory: restored at start, published
//! after each commit, and the memory put back when a batch is undone.

use std::sync::Arc;

use tokio::sync::watch;
use uuid::Uuid;

use super::{Batch, Core, CoreSession};
use crate::core::hub::Published;
use crate::core::rules::Outcome;
use crate::core::session::{Electorate, SessionState, Status};
use crate::core::store::Loaded;
use crate::core::tally::Tally;

impl Core {
    pub fn restore(&mut self, loaded: Loaded) {
        let mut registry = self.board.write();
        for entry in loaded.voters {
            let i = registry.roll.len();
            registry.roll_index.insert(entry.code.clone(), i);
            registry.roll.push(entry.clone());
            self.roll.push(entry);
        }
        self.meetings = loaded.meetings;
        registry.meetings = self.meetings.clone();
        for stored in loaded.sessions {
            let meta = Arc::new(stored.meta);
            let mut tally = Tally::new(meta.kind.shape());
            for b in &stored.ballots {
                let groups = match meta.electorate {
                    Electorate::Roll => self.roll.get(&b.voter).map(|e| e.groups.as_slice()),
                    Electorate::Open => None,
                };
                tally.add(&b.ballot, 1, groups.unwrap_or(&[]));
            }
            let state = SessionState {
                status: stored.status,
                position: stored.position,
                opened_at: stored.opened_at,
                closes_at: stored.closes_at,
                closed_at: stored.closed_at,
                result: stored.result,
                elected: stored.elected,
                tally,
                seq: stored.seq,
            };
            let id = meta.id;
            registry.order.push(id);
            registry
                .sessions
                .insert(id, watch::Sender::new(Published::of(&meta, &state)));
            self.sessions.insert(id, CoreSession { meta, state });
        }
    }

    /// Takes the stored state of sessions another writer may have changed.
    pub fn refresh(&mut self, states: Vec<(Uuid, SessionState)>) {
        for (id, state) in states {
            if let Some(session) = self.sessions.get_mut(&id) {
                session.state = state;
            }
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
        self.roll.truncate(batch.roll_len);
        if let Some(meetings) = &batch.meetings {
            self.meetings = meetings.clone();
        }
    }

    /// Shows readers what the batch committed.
    pub fn publish(&self, batch: &Batch) {
        let mut registry = self.board.write();
        for (id, before) in &batch.before {
            let Some(session) = self.sessions.get(id) else {
                if batch.deleted.contains(id) {
                    tracing::info!(session = %id, "draft deleted");
                    registry.sessions.remove(id);
                    registry.order.retain(|s| s != id);
                }
                continue;
            };
            let published = Published::of(&session.meta, &session.state);
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
        let added = self.roll.added_since(batch.roll_len);
        if !added.is_empty() {
            tracing::info!(added = added.len(), "voters registered");
            for entry in added {
                let i = registry.roll.len();
                registry.roll_index.insert(entry.code.clone(), i);
                registry.roll.push(entry.clone());
            }
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
